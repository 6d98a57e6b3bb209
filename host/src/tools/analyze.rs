//! `magg_analyze_servers` (Magg's tool): a summary of the configured servers — their state and
//! tool counts, failures, duplicate tools and overlapping servers, servers that serve nothing,
//! and kits worth loading or making — refined by the client's LLM through sampling when the
//! client offers it.

use std::{collections::BTreeMap, sync::Arc};

use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};

use super::{sampling, success};
use crate::{
    backend::Status,
    hub::Hub,
    kits::{self},
};

/// `magg_analyze_servers`.
pub async fn analyze_servers(hub: &Arc<Hub>) -> CallToolResult {
    let mut analysis = facts(hub);
    if analysis.get("total_servers") == Some(&json!(0)) {
        return success(analysis);
    }
    if let Some(peer) = sampling::client_llm() {
        let prompt = format!(
            "Analyze this magg server configuration and provide insights:\n\n{}\n\nPlease \
             provide:\n1. Overview of the current setup\n2. Any potential issues or conflicts\n\
             3. Suggestions for optimization\n4. Missing capabilities that could be added",
            serde_json::to_string_pretty(&analysis).unwrap_or_default()
        );
        let insight = match sampling::ask(&peer, &prompt, 1000).await {
            Ok(text) if !text.trim().is_empty() => json!(text),
            Ok(_) => Value::Null,
            Err(e) => json!(format!("no insights: {e}")),
        };
        if let Value::Object(map) = &mut analysis
            && !insight.is_null()
        {
            map.insert("insights".into(), insight);
        }
    }
    success(analysis)
}

/// What magg can tell about its servers by itself.
fn facts(hub: &Hub) -> Value {
    let config = hub.config();
    if config.servers.is_empty() {
        return json!({
            "total_servers": 0,
            "analysis": format!(
                "No servers configured yet. Use {} to find one and {} to add it.",
                hub.settings.prefixed("search_servers"),
                hub.settings.prefixed("add_server")
            ),
        });
    }
    let backends = hub.backends();
    let mut servers = Map::new();
    // Tool name on its server → the servers that have it.
    let mut by_tool: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tool_sets: Vec<(String, Vec<String>)> = Vec::new();
    let mut issues = Vec::new();
    let mut mounted = 0;
    for server in config.servers.values() {
        let state = backends
            .iter()
            .find(|b| b.name == server.name)
            .map(|b| b.state());
        let status = state.as_ref().map_or("disabled", |s| s.status.label());
        let tools: Vec<String> = state
            .as_ref()
            .map(|s| s.tools.iter().map(|t| t.name().to_owned()).collect())
            .unwrap_or_default();
        if state.as_ref().is_some_and(|s| s.status == Status::Running) {
            mounted += 1;
        }
        let mut entry = json!({
            "source": server.source,
            "enabled": server.enabled,
            "mounted": status == "running",
            "status": status,
            "command": server.command_line(),
            "uri": server.uri,
            "prefix": server.prefix,
            "notes": server.notes,
            "tools": tools.len(),
        });
        if let Some(Status::Failed { reason }) = state.as_ref().map(|s| &s.status)
            && let Value::Object(map) = &mut entry
        {
            map.insert("reason".into(), json!(reason));
            issues.push(json!({
                "server": server.name,
                "issue": "failed",
                "detail": reason,
                "fix": format!(
                    "fix its command or uri with {}, or turn it off with {}",
                    hub.settings.prefixed("add_server"),
                    hub.settings.prefixed("disable_server")
                ),
            }));
        } else if !server.enabled {
            issues.push(json!({
                "server": server.name,
                "issue": "disabled",
                "fix": format!(
                    "{} to use it, or {} if it is no longer wanted",
                    hub.settings.prefixed("enable_server"),
                    hub.settings.prefixed("remove_server")
                ),
            }));
        } else if status == "running" && tools.is_empty() {
            issues.push(json!({
                "server": server.name,
                "issue": "no tools",
                "detail": "it runs but offers no tools (it may serve only prompts or resources)",
            }));
        }
        for tool in &tools {
            by_tool
                .entry(tool.clone())
                .or_default()
                .push(server.name.clone());
        }
        tool_sets.push((server.name.clone(), tools));
        servers.insert(server.name.clone(), entry);
    }
    let duplicate_tools: Vec<Value> = by_tool
        .iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|(tool, owners)| json!({"tool": tool, "servers": owners}))
        .collect();
    let overlaps = overlaps(&tool_sets);
    let duplicate_servers = same_launch(&config);
    let kits = kit_suggestions(hub, &config);
    json!({
        "total_servers": config.servers.len(),
        "enabled_servers": config.servers.values().filter(|s| s.enabled).count(),
        "mounted_servers": mounted,
        "servers": servers,
        "issues": issues,
        "duplicate_tools": duplicate_tools,
        "overlapping_servers": overlaps,
        "duplicate_servers": duplicate_servers,
        "suggested_kits": kits,
    })
}

/// Pairs of servers that share tool names: (a, b, shared names, share of the smaller set).
fn overlaps(sets: &[(String, Vec<String>)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (a, tools_a)) in sets.iter().enumerate() {
        for (b, tools_b) in &sets[i + 1..] {
            let shared: Vec<&String> = tools_a.iter().filter(|t| tools_b.contains(t)).collect();
            if shared.is_empty() {
                continue;
            }
            let smaller = tools_a.len().min(tools_b.len()).max(1);
            out.push(json!({
                "servers": [a, b],
                "shared_tools": shared,
                "overlap": (shared.len() as f64 / smaller as f64 * 100.0).round() / 100.0,
            }));
        }
    }
    out
}

/// Servers configured twice: the same command line or the same uri under different names.
fn same_launch(config: &crate::config::Config) -> Vec<Value> {
    let mut by_launch: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for server in config.servers.values() {
        let launch = server
            .command_line()
            .or_else(|| server.uri.clone())
            .unwrap_or_default();
        if !launch.is_empty() {
            by_launch
                .entry(launch)
                .or_default()
                .push(server.name.clone());
        }
    }
    by_launch
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(launch, names)| json!({"runs": launch, "servers": names}))
        .collect()
}

/// Kits not loaded yet whose servers are not configured (with what they add), and the
/// servers no kit holds (which `magg kit export` can make into one).
fn kit_suggestions(hub: &Hub, config: &crate::config::Config) -> Value {
    let dirs = kits::kit_dirs(&config.path, kits::shipped_dir().as_deref());
    let (found, _) = kits::discover(&dirs);
    let available: Vec<Value> = found
        .iter()
        .filter(|(name, _)| !config.kits.contains_key(*name))
        .filter(|(_, kit)| kit.servers.keys().any(|s| !config.servers.contains_key(s)))
        .map(|(name, kit)| {
            json!({
                "kit": name,
                "description": kit.description,
                "servers": kit.servers.keys().collect::<Vec<_>>(),
                "load_with": hub.settings.prefixed("load_kit"),
            })
        })
        .collect();
    let loose: Vec<&String> = config
        .servers
        .values()
        .filter(|s| s.kits.is_empty())
        .map(|s| &s.name)
        .collect();
    json!({
        "available": available,
        "servers_in_no_kit": loose,
    })
}
