//! `magg_search_servers`: every search provider asked at once, each within its own time limit
//! (`plugins.<name>.timeout_ms`, 10 s by default), and their results merged into one ranked
//! list (see [`merge`]). A provider that fails or times out is named in `sources` with why;
//! the others' results are returned all the same.

mod merge;

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject};
use serde::Deserialize;
use serde_json::{Map, json};

use super::{failure, success};
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
    // Right after start the plugins may still be compiling: `search` waits for them rather
    // than find no providers.
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
    let mut found = Vec::new();
    let mut sources = Map::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(results) => {
                sources.insert(outcome.plugin.clone(), json!({"results": results.len()}));
                found.extend(
                    results
                        .into_iter()
                        .take(limit as usize)
                        .enumerate()
                        .map(|(i, r)| merge::Found::new(&outcome.plugin, i, r)),
                );
            }
            Err(error) => {
                sources.insert(outcome.plugin.clone(), json!({"error": error}));
            }
        }
    }
    let (results, servers) = merge::merge(&args.query, found, limit as usize);
    success(json!({
        "query": args.query,
        "results": results,
        "total": results.len(),
        "found": servers,
        "sources": sources,
    }))
}
