//! The tools that change the running set of servers and the config file: add, remove, enable,
//! disable, reload and check. Each edit is validated, saved atomically and applied at once;
//! only the servers it touches start or stop.

use std::{sync::Arc, time::Duration};

use rmcp::model::{CallToolResult, JsonObject, PaginatedRequestParams};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{failure, success};
use crate::{backend::Status, config::ServerConfig, hub::Hub, plugins::PluginServerConfig, reload};

/// Arguments of `magg_add_server`, as Magg names them.
#[derive(Debug, Deserialize)]
struct AddServer {
    name: String,
    source: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    command: Option<String>,
    /// More arguments after `command`'s, as a config file's `args` holds them.
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    env: Option<Value>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    enable: Option<bool>,
    #[serde(default)]
    transport: Option<Value>,
    /// A WebAssembly component to mount (a path, relative to the config file's directory).
    #[serde(default)]
    wasm: Option<String>,
    /// What a WebAssembly server may use.
    #[serde(default)]
    grants: Option<Value>,
    /// `"shared"` (the default) or `"session"`: one instance per client session.
    #[serde(default)]
    isolation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Check {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    timeout: Option<f64>,
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    tool: &str,
    args: JsonObject,
) -> Result<T, String> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| format!("Invalid arguments for {tool}: {e}"))
}

/// A JSON object given as an object or as a string holding one (Magg accepts both).
fn object_arg(
    field: &str,
    value: Option<Value>,
) -> Result<Option<serde_json::Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => Err(format!(
                "'{field}' must be a JSON object, e.g. {{\"KEY\": \"value\"}}"
            )),
        },
        Some(_) => Err(format!(
            "'{field}' must be a JSON object, e.g. {{\"KEY\": \"value\"}}"
        )),
    }
}

/// `magg_add_server`: adds a server to the config, starts it, and reports whether it mounted.
/// A server that fails to start is taken out again (as Magg does) and the reason returned.
pub async fn add_server(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let args: AddServer = match parse("magg_add_server", args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let mut server = ServerConfig::new(args.name.clone(), args.source.clone());
    server.prefix = args.prefix.filter(|p| !p.is_empty());
    server.uri = args.uri.filter(|u| !u.is_empty());
    server.notes = args.notes;
    server.enabled = args.enable.unwrap_or(true);
    server.cwd = args.cwd.filter(|c| !c.is_empty()).map(Into::into);
    if let Some(command) = args.command.filter(|c| !c.trim().is_empty()) {
        match server.set_command_line(&command) {
            Ok(true) => {}
            Ok(false) => return failure("'command' is empty"),
            Err(e) => return failure(format!("'command' is {e}")),
        }
    }
    const ARGS_SHAPE: &str = "'args' must be a list of strings, e.g. [\"-y\", \"@scope/server\"]";
    let more = match args.args {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let words: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            match words {
                Some(words) => Some(words).filter(|w| !w.is_empty()),
                None => return failure(ARGS_SHAPE),
            }
        }
        Some(_) => return failure(ARGS_SHAPE),
    };
    match (more, &server.command) {
        (None, _) => {}
        (Some(more), Some(_)) => server.args.extend(more),
        (Some(_), None) => {
            return failure(
                "'args' needs a 'command' to follow: give the program in 'command' (e.g. \"npx\") \
                 or the whole command line there and no 'args'",
            );
        }
    }
    server.wasm = args.wasm.filter(|w| !w.is_empty());
    match args.grants {
        None | Some(Value::Null) => {}
        Some(grants) => match serde_json::from_value::<crate::config::Grants>(grants) {
            Ok(grants) => server.grants = Some(grants),
            Err(e) => {
                return failure(format!(
                    "'grants' is not valid: {e}; write it as {{\"http\": [\"example.com\"],                      \"dirs\": [{{\"path\": \"/data\", \"write\": false}}], \"env\": [\"KEY\"],                      \"memory_mb\": 64, \"timeout_ms\": 30000}}"
                ));
            }
        },
    }
    match args.isolation.as_deref().filter(|i| !i.is_empty()) {
        None => {}
        Some(text) => match crate::config::Isolation::parse(text) {
            Some(isolation) => server.isolation = isolation,
            None => {
                return failure(format!(
                    "'isolation' {text:?} is not an isolation mode: use \"shared\" (one \
                     instance for every client, the default) or \"session\" (one instance per \
                     client session)"
                ));
            }
        },
    }
    let config_dir = hub
        .config()
        .path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    server.resolve_component(&config_dir);
    if server.command.is_none() && server.uri.is_none() && server.component.is_none() {
        return failure(format!(
            "Server '{}' needs a way to run: provide either command (e.g. \"npx -y @scope/server\") or uri (e.g. \"http://localhost:8000/mcp\"), or a WebAssembly component as wasm or as a file:// source ending in .wasm",
            args.name
        ));
    }
    match object_arg("env", args.env) {
        Ok(env) => {
            for (k, v) in env.unwrap_or_default() {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                server.env.insert(k, v);
            }
        }
        Err(e) => return failure(e),
    }
    match object_arg("transport", args.transport) {
        Ok(transport) => server.transport = transport.filter(|t| !t.is_empty()),
        Err(e) => return failure(e),
    }
    let mounted = match add(hub, server.clone()).await {
        Ok(mounted) => mounted,
        Err(e) => return failure(e.to_string()),
    };
    success(json!({
        "action": "server_added",
        "server": {
            "name": server.name,
            "source": server.source,
            "prefix": server.prefix,
            "command": server.command_line(),
            "uri": server.uri,
            "wasm": server.component.as_ref().map(|c| c.display().to_string()),
            "cwd": server.cwd.as_ref().map(|c| c.display().to_string()),
            "notes": server.notes,
            "enabled": server.enabled,
            "isolation": server.isolation.as_str(),
            "mounted": mounted,
        },
        // A config file in mcpServers format is not rewritten: the server runs, unsaved.
        "saved": hub.config().format != crate::config::ConfigFormat::McpServers,
    }))
}

/// Why [`add`] did not add a server.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The config refused the change (the name is taken, the server is invalid, the config is
    /// read-only or cannot be saved); nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The server was added but did not start, so it was taken out again.
    #[error(
        "Failed to mount server '{name}': {reason}. It was not added; check the command or uri and try again."
    )]
    NotMounted {
        /// The server.
        name: String,
        /// Why it did not start.
        reason: String,
    },
}

/// Adds `server` to the config (validated, saved atomically, applied at once; for a config file
/// in `mcpServers` format, applied without saving) and, when it is
/// enabled, waits until it has started: `Some(true)` then, `None` for a disabled server. A
/// server that fails to start is taken out again (as Magg does). What `magg_add_server` and
/// the HTTP management API both do.
pub async fn add(hub: &Arc<Hub>, server: ServerConfig) -> Result<Option<bool>, AddError> {
    let name = server.name.clone();
    let enabled = server.enabled;
    hub.change_servers(move |config| {
        if config.servers.contains_key(&server.name) {
            return Err(format!(
                "Server '{}' already exists; remove it first or pick another name",
                server.name
            ));
        }
        config.servers.insert(server.name.clone(), server);
        Ok(())
    })
    .await
    .map_err(AddError::Refused)?;
    if !enabled {
        return Ok(None);
    }
    let limit = hub
        .settings
        .backend_init_timeout
        .unwrap_or(Duration::from_secs(300));
    match hub
        .wait_started(&name, limit + Duration::from_millis(500))
        .await
    {
        Some(Status::Running) => Ok(Some(true)),
        status => {
            let reason = match status {
                Some(Status::Failed { reason }) => reason,
                Some(Status::Starting) => "it did not finish starting in time".to_owned(),
                _ => "it stopped".to_owned(),
            };
            let _ = hub
                .change_servers(|config| {
                    config.servers.shift_remove(&name);
                    Ok(())
                })
                .await;
            Err(AddError::NotMounted { name, reason })
        }
    }
}

/// Removes the server `name` from the config and stops it (for a config file in `mcpServers`
/// format, without saving). What `magg_remove_server` and the HTTP management API both do.
pub async fn remove(hub: &Arc<Hub>, name: &str) -> Result<(), String> {
    hub.change_servers(|config| {
        config
            .servers
            .shift_remove(name)
            .map(|_| ())
            .ok_or_else(|| format!("Server '{name}' not found"))
    })
    .await
    .map(|_| ())
}

/// `magg_remove_server`.
pub async fn remove_server(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let Named { name } = match parse("magg_remove_server", args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    match remove(hub, &name).await {
        Ok(()) => success(json!({"action": "server_removed", "server": {"name": name}})),
        Err(e) => failure(e),
    }
}

/// `magg_enable_server` (`enable` true) and `magg_disable_server` (false).
pub async fn set_enabled(hub: &Arc<Hub>, args: JsonObject, enable: bool) -> CallToolResult {
    let tool = if enable {
        "magg_enable_server"
    } else {
        "magg_disable_server"
    };
    let Named { name } = match parse(tool, args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let result = hub
        .update_config(|config| {
            let server = config
                .servers
                .get_mut(&name)
                .ok_or_else(|| format!("Server '{name}' not found"))?;
            if server.enabled == enable {
                return Err(format!(
                    "Server '{name}' is already {}",
                    if enable { "enabled" } else { "disabled" }
                ));
            }
            server.enabled = enable;
            Ok(())
        })
        .await;
    if let Err(e) = result {
        return failure(e);
    }
    if enable {
        let limit = hub
            .settings
            .backend_init_timeout
            .unwrap_or(Duration::from_secs(300));
        let mounted = matches!(hub.wait_started(&name, limit).await, Some(Status::Running));
        success(json!({"action": "server_enabled", "server": {"name": name}, "mounted": mounted}))
    } else {
        success(json!({"action": "server_disabled", "server": {"name": name}}))
    }
}

/// `magg_reload_config`: re-reads the config file and applies what changed.
pub async fn reload_config(hub: &Arc<Hub>) -> CallToolResult {
    if !hub.settings.auto_reload {
        return failure("Configuration reload is disabled. Set MAGG_AUTO_RELOAD=true to enable.");
    }
    if hub.settings.read_only {
        return failure("Configuration reload is not allowed in read-only mode.");
    }
    match reload::reload(hub, true).await {
        Ok(diff) => success(json!({
            "message": "Configuration reloaded successfully",
            "config_path": hub.config().path.display().to_string(),
            "read_only": hub.settings.read_only,
            "changes": diff,
        })),
        Err(e) => failure(e.to_string()),
    }
}

/// `magg_check`: pings every mounted server with tools/list and handles the unresponsive ones.
pub async fn check(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let Check { action, timeout } = match parse("magg_check", args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let action = action.unwrap_or_else(|| "report".to_owned());
    if !matches!(
        action.as_str(),
        "report" | "remount" | "unmount" | "disable"
    ) {
        return failure(format!(
            "Invalid action '{action}': use report, remount, unmount or disable"
        ));
    }
    if action == "disable" && hub.settings.read_only {
        return failure("Check action 'disable' is not allowed in read-only mode");
    }
    let limit = Duration::from_secs_f64(timeout.unwrap_or(2.5).clamp(0.1, 300.0));
    let backends = hub.backends();
    let probes = backends.iter().map(|backend| async move {
        let result = match backend.peer() {
            None => json!({"status": "error", "reason": format!("not running ({})", backend.state().status.label())}),
            Some(peer) => {
                let request = rmcp::model::ClientRequest::ListToolsRequest(rmcp::model::ListToolsRequest {
                    method: Default::default(),
                    params: Some(PaginatedRequestParams::default()),
                    extensions: Default::default(),
                });
                match tokio::time::timeout(limit, peer.send_request(request)).await {
                    Ok(Ok(rmcp::model::ServerResult::ListToolsResult(list))) => {
                        json!({"status": "healthy", "tools_count": list.tools.len()})
                    }
                    Ok(Ok(_)) => json!({"status": "error", "reason": "unexpected reply to tools/list"}),
                    Ok(Err(e)) => json!({"status": "error", "reason": e.to_string()}),
                    Err(_) => json!({"status": "timeout", "reason": format!("No response within {}s", limit.as_secs_f64())}),
                }
            }
        };
        (backend.name.clone(), result)
    });
    let mut results: serde_json::Map<String, Value> = futures::future::join_all(probes)
        .await
        .into_iter()
        .collect();
    let unresponsive: Vec<String> = results
        .iter()
        .filter(|(_, r)| r["status"] != json!("healthy"))
        .map(|(n, _)| n.clone())
        .collect();
    let mut actions = Vec::new();
    if action != "report" {
        for name in &unresponsive {
            let done = match action.as_str() {
                "remount" => {
                    if hub.restart(name) {
                        actions.push(format!("Remounted {name}"));
                        "remounted"
                    } else {
                        "remount_failed"
                    }
                }
                "unmount" => {
                    if let Some(backend) = hub.backend(name) {
                        backend.stop();
                    }
                    actions.push(format!("Unmounted {name}"));
                    "unmounted"
                }
                _ => {
                    let disabled = hub
                        .update_config(|config| {
                            if let Some(server) = config.servers.get_mut(name) {
                                server.enabled = false;
                            }
                            Ok(())
                        })
                        .await;
                    match disabled {
                        Ok(_) => {
                            actions.push(format!("Disabled {name}"));
                            "disabled"
                        }
                        Err(e) => {
                            actions.push(format!("Failed to disable {name}: {e}"));
                            "disable_failed"
                        }
                    }
                }
            };
            if let Some(Value::Object(entry)) = results.get_mut(name) {
                entry.insert("action".into(), json!(done));
            }
        }
    }
    success(json!({
        "servers_checked": results.len(),
        "healthy": results.len() - unresponsive.len(),
        "unresponsive": unresponsive.len(),
        "results": results,
        "actions_taken": if actions.is_empty() { Value::Null } else { json!(actions) },
    }))
}

/// How a plugin's command goes into [`add_server_args`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommandForm {
    /// `command` is the whole command line (`npx -y time-mcp`), as `magg_add_server` takes it.
    Line,
    /// `command` is the program and `args` the rest, as a config file holds them.
    Split,
}

/// A plugin's server config as `magg_add_server`'s arguments.
pub(crate) fn add_server_args(config: &PluginServerConfig, form: CommandForm) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(config.name));
    out.insert("source".into(), json!(config.source));
    if let Some(prefix) = &config.prefix {
        out.insert("prefix".into(), json!(prefix));
    }
    if let Some(command) = &config.command {
        match form {
            CommandForm::Line => {
                let mut server = ServerConfig::new(&config.name, &config.source);
                server.command = Some(command.clone());
                server.args = config.args.clone();
                out.insert("command".into(), json!(server.command_line()));
            }
            CommandForm::Split => {
                out.insert("command".into(), json!(command));
                out.insert("args".into(), json!(config.args));
            }
        }
    }
    if let Some(uri) = &config.uri {
        out.insert("uri".into(), json!(uri));
    }
    if !config.env.is_empty() {
        let env: Map<String, Value> = config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        out.insert("env".into(), Value::Object(env));
    }
    if let Some(cwd) = &config.cwd {
        out.insert("cwd".into(), json!(cwd));
    }
    if let Some(notes) = &config.notes {
        out.insert("notes".into(), json!(notes));
    }
    Value::Object(out)
}
