//! magg's own tools (`magg_list_servers`, `magg_status`, and the `proxy` tool): their
//! definitions as the model sees them, and their implementations.
//!
//! Results follow Magg's shape, a JSON object `{"errors": [...] | null, "output": ...}` as text
//! and as `structuredContent`; a failure also sets `isError: true` so the model can tell.

mod proxy;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{backend::Status, config::Settings, hub::Hub};

/// Which of magg's own tools a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnTool {
    /// `magg_list_servers`
    ListServers,
    /// `magg_status`
    Status,
    /// `proxy`
    Proxy,
}

/// magg's own tools, named with the configured self prefix and separator.
pub fn own_tools(settings: &Settings) -> Vec<(Tool, OwnTool)> {
    vec![
        (
            tool(
                settings.prefixed("list_servers"),
                "List every server in magg's config with its live state.\n\n\
                 Returns {\"errors\": null, \"output\": [ {name, source, prefix, enabled, mounted, \
                 status, tools, command | uri, cwd, notes, reason} ]}. `mounted` is true when the \
                 server is connected and its tools are available; `status` is one of running, \
                 starting, failed (with `reason`), stopped. Changes nothing. Use it to see which \
                 servers exist and why one's tools are missing; use magg_status for totals.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("List configured MCP servers")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::ListServers,
        ),
        (
            tool(
                settings.prefixed("status"),
                "Report magg's health: how many servers are configured, enabled, mounted \
                 (connected), starting and failed; how many tools are exposed; each server's \
                 prefix, state, restart count and last failure reason; the config file in use; \
                 and connected clients. Changes nothing.\n\n\
                 Returns {\"errors\": null, \"output\": {\"servers\": {...}, \"tools\": {\"total\": n}, \
                 \"prefixes\": {...}, \"backends\": {name: {status, reason?, tools, pid?, starts}}, ...}}.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("magg status")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::Status,
        ),
        (proxy::definition(), OwnTool::Proxy),
    ]
}

fn tool(
    name: String,
    description: &'static str,
    schema: Value,
    annotations: ToolAnnotations,
) -> Tool {
    let schema = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(name, description, Arc::new(schema)).with_annotations(annotations)
}

/// Runs one of magg's own tools.
pub async fn call_own(
    hub: &Arc<Hub>,
    own: OwnTool,
    arguments: Option<JsonObject>,
    ct: CancellationToken,
) -> Result<CallToolResult, McpError> {
    Ok(match own {
        OwnTool::ListServers => success(list_servers(hub)),
        OwnTool::Status => success(status(hub)),
        OwnTool::Proxy => proxy::call(hub, arguments.unwrap_or_default(), ct).await,
    })
}

/// A Magg-style success result: `{"errors": null, "output": output}`.
pub fn success(output: Value) -> CallToolResult {
    response(json!({"errors": null, "output": output}), false)
}

/// A Magg-style failure result: `{"errors": [message], "output": null}` with `isError: true`.
pub fn failure(message: impl Into<String>) -> CallToolResult {
    response(json!({"errors": [message.into()], "output": null}), true)
}

fn response(body: Value, is_error: bool) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(body.to_string())])
    } else {
        CallToolResult::success(vec![ContentBlock::text(body.to_string())])
    };
    result.structured_content = Some(body);
    result
}

fn list_servers(hub: &Hub) -> Value {
    let config = hub.config();
    let backends = hub.backends();
    let servers: Vec<Value> = config
        .servers
        .values()
        .map(|server| {
            let backend = backends.iter().find(|b| b.name == server.name);
            let state = backend.map(|b| b.state());
            let mut entry = json!({
                "name": server.name,
                "source": server.source,
                "prefix": server.prefix,
                "enabled": server.enabled,
                "mounted": state.as_ref().is_some_and(|s| s.status == Status::Running),
                "status": state.as_ref().map_or("disabled", |s| s.status.label()),
                "tools": state.as_ref().map_or(0, |s| s.tools.len()),
            });
            let obj = entry.as_object_mut();
            if let Some(obj) = obj {
                if let Some(command) = server.command_line() {
                    obj.insert("command".into(), json!(command));
                }
                if let Some(uri) = &server.uri {
                    obj.insert("uri".into(), json!(uri));
                }
                if let Some(cwd) = &server.cwd {
                    obj.insert("cwd".into(), json!(cwd.display().to_string()));
                }
                if let Some(notes) = &server.notes {
                    obj.insert("notes".into(), json!(notes));
                }
                if let Some(Status::Failed { reason }) = state.as_ref().map(|s| &s.status) {
                    obj.insert("reason".into(), json!(reason));
                }
            }
            entry
        })
        .collect();
    Value::Array(servers)
}

fn status(hub: &Hub) -> Value {
    let config = hub.config();
    let snapshot = hub.snapshot();
    let backends = hub.backends();
    let count = |status: &str| {
        backends
            .iter()
            .filter(|b| b.state().status.label() == status)
            .count()
    };
    let enabled = config.servers.values().filter(|s| s.enabled).count();
    let mut details = serde_json::Map::new();
    for backend in &backends {
        let state = backend.state();
        let mut entry = json!({
            "status": state.status.label(),
            "tools": state.tools.len(),
            "prompts": state.prompts.len(),
            "resources": state.resources.len(),
            "starts": state.starts,
        });
        if let Some(obj) = entry.as_object_mut() {
            if let Status::Failed { reason } = &state.status {
                obj.insert("reason".into(), json!(reason));
            }
            if let Some(pid) = state.pid {
                obj.insert("pid".into(), json!(pid));
            }
            if let Some(info) = &state.server_info {
                obj.insert(
                    "server_info".into(),
                    json!({"name": info.name, "version": info.version}),
                );
            }
        }
        details.insert(backend.name.clone(), entry);
    }
    let prefixes: serde_json::Map<String, Value> = backends
        .iter()
        .filter(|b| b.state().status == Status::Running)
        .filter_map(|b| Some((b.name.clone(), json!(b.config.prefix.as_ref()?))))
        .collect();
    json!({
        "servers": {
            "total": config.servers.len(),
            "enabled": enabled,
            "mounted": count("running"),
            "disabled": config.servers.len() - enabled,
            "starting": count("starting"),
            "failed": count("failed"),
        },
        "tools": {"total": snapshot.tools.len()},
        "prompts": {"total": snapshot.prompts.len()},
        "resources": {"total": snapshot.resources.len(), "templates": snapshot.templates.len()},
        "prefixes": prefixes,
        "backends": details,
        "config": {
            "path": config.path.display().to_string(),
            "exists": config.exists,
            "read_only": hub.settings.read_only,
        },
        "sessions": hub.sessions().count(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}
