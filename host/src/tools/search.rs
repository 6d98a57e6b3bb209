//! `magg_search_servers`: every search provider's results, merged.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{discover::config_json, failure, success};
use crate::hub::Hub;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchServers {
    query: String,
    #[serde(default = "five")]
    limit: u32,
}

fn five() -> u32 {
    5
}

/// `magg_search_servers`: every search provider's results, merged.
pub async fn search_servers(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let args: SearchServers = match super::manage::parse("magg_search_servers", args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    if args.query.trim().is_empty() {
        return failure("'query' is empty: say what kind of server to look for, e.g. \"time\"");
    }
    let limit = args.limit.clamp(1, 50);
    let outcomes = hub.plugins.search(&args.query, limit).await;
    if outcomes.is_empty() {
        return failure(format!(
            "No search provider plugins are loaded. Put a search provider (e.g. mcp-registry.wasm \
             or npm-search.wasm from magg's plugins) in the plugins directory ({}) and grant it \
             its host with plugins.<name>.allow_hosts in the config.",
            hub.plugins
                .dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "none configured: set plugins_dir or use --plugins".to_owned())
        ));
    }
    let mut results = Vec::new();
    let mut sources = Map::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(found) => {
                sources.insert(outcome.plugin.clone(), json!({"results": found.len()}));
                for r in found.into_iter().take(limit as usize) {
                    let mut item = Map::new();
                    item.insert("source".into(), json!(r.source));
                    item.insert("name".into(), json!(r.name));
                    item.insert("description".into(), json!(r.description));
                    if let Some(url) = r.url {
                        item.insert("url".into(), json!(url));
                    }
                    if let Some(cmd) = r.install_command {
                        item.insert("install_command".into(), json!(cmd));
                    }
                    if !r.tags.is_empty() {
                        item.insert("tags".into(), json!(r.tags));
                    }
                    if let Some(config) = &r.install {
                        item.insert("config".into(), config_json(config));
                    }
                    results.push(Value::Object(item));
                }
            }
            Err(error) => {
                sources.insert(outcome.plugin.clone(), json!({"error": error}));
            }
        }
    }
    success(json!({
        "query": args.query,
        "results": results,
        "total": results.len(),
        "sources": sources,
    }))
}
