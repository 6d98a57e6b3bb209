//! multi-mcp's HTTP management API, on the same paths and in the same shapes, so its scripts
//! work against magg unchanged:
//! - `GET /mcp_servers` → `{"active_servers": [name, ...]}`: the servers that are running;
//! - `POST /mcp_servers` with `{"mcpServers": {name: {...}}}` (entries as in a Claude Desktop
//!   or multi-mcp file) → `{"message": "Added ['name', ...]"}`;
//! - `DELETE /mcp_servers/{name}` → `{"message": "Client 'name' removed successfully"}`, or
//!   `404` with `{"error": "No client named 'name'"}`;
//! - `GET /mcp_tools` → `{"tools": {server: [tool, ...]}}`, each server's tools under the names
//!   the server gives them.
//!
//! Changes take the path `magg_add_server` and `magg_remove_server` take
//! ([`crate::tools::manage`]): validated, saved to the config file atomically, applied at once,
//! and connected clients get `list_changed`. Errors are `{"error": "..."}` naming what is
//! wrong: `400` for a request or server config that is not valid, `403` when magg is
//! read-only, `409` for a name already taken, `415` for a body not sent as JSON, `502` for a
//! server that did not start (it is not added).

use std::{path::Path, sync::Arc};

use axum::{
    Json, Router,
    extract::{self, Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse as _, Response},
    routing::{delete, get},
};
use serde_json::{Map, Value, json};

use super::{MAX_BODY_BYTES, body};
use crate::{
    backend::Status,
    config::{self, ServerConfig},
    hub::Hub,
    relay::Trust,
    tools::manage::{self, AddError},
};

/// The routes of the management API, over `hub`, for clients trusted as `trust`.
pub fn router(hub: Arc<Hub>, trust: Trust) -> Router {
    Router::new()
        .route("/mcp_servers", get(list_servers).post(add_servers))
        .route("/mcp_servers/{name}", delete(remove_server))
        .route("/mcp_tools", get(list_tools))
        .route_layer(axum::middleware::from_fn_with_state(
            (hub.clone(), trust),
            changes_need_trust,
        ))
        .with_state(hub)
}

/// Refuses changes (`POST`, `DELETE`) from a client magg could not authenticate, unless the
/// config allows them: anyone who can reach the port could otherwise have magg run a command of
/// their choosing. Listing stays open.
async fn changes_need_trust(
    State((hub, trust)): State<(Arc<Hub>, Trust)>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let changes = matches!(*request.method(), Method::POST | Method::DELETE);
    if changes
        && let Some(caller) = super::bearer::caller_of(&request)
        && !caller.may_change()
    {
        let scope = caller.view.as_ref().map_or("", |v| v.admin_scope());
        return super::bearer::refused(
            &crate::auth::Refusal::Insufficient {
                needed: vec![scope.to_owned()],
                message: format!(
                    "adding and removing servers needs the scope `{scope}`, which this token \
                     does not have; ask for a token with it"
                ),
            },
            None,
            None,
        );
    }
    if changes && trust != Trust::Full && !hub.settings.allow_unauthenticated_changes {
        return error(
            StatusCode::FORBIDDEN,
            "Adding and removing servers starts and stops processes, and this client is not \
             authenticated, so magg refuses it. Turn authentication on with `magg auth init` and \
             restart magg (then send `Authorization: Bearer <token>`, made with `magg auth \
             token`), or allow changes without authentication with \
             \"allow_unauthenticated_changes\": true in the config file (or \
             MAGG_ALLOW_UNAUTHENTICATED_CHANGES=1).",
        );
    }
    next.run(request).await
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The running servers, in config order.
fn running(hub: &Hub) -> Vec<(String, Arc<crate::backend::Backend>)> {
    hub.config()
        .servers
        .keys()
        .filter_map(|name| Some((name.clone(), hub.backend(name)?)))
        .filter(|(_, backend)| backend.state().status == Status::Running)
        .collect()
}

/// `GET /mcp_servers`.
async fn list_servers(State(hub): State<Arc<Hub>>, request: Request) -> Response {
    let names: Vec<String> = match visible_tools(&hub, &request) {
        Some(visible) => visible.keys().cloned().collect(),
        None => running(&hub).into_iter().map(|(name, _)| name).collect(),
    };
    Json(json!({"active_servers": names})).into_response()
}

/// `GET /mcp_tools`.
async fn list_tools(State(hub): State<Arc<Hub>>, request: Request) -> Response {
    let tools: Map<String, Value> = match visible_tools(&hub, &request) {
        Some(visible) => visible,
        None => running(&hub)
            .into_iter()
            .map(|(name, backend)| {
                let names: Vec<Value> = backend
                    .state()
                    .tools
                    .iter()
                    .map(|t| json!(t.name()))
                    .collect();
                (name, Value::Array(names))
            })
            .collect(),
    };
    Json(json!({"tools": tools})).into_response()
}

/// For a caller whose scopes limit what it sees: the running servers of which it sees tools,
/// each with those tools' names on the server.
fn visible_tools(hub: &Hub, request: &Request) -> Option<Map<String, Value>> {
    let caller = super::bearer::caller_of(request)?;
    let view = caller.view.as_ref()?;
    let snapshot = hub.snapshot_for(Some(view));
    let running: Vec<String> = running(hub).into_iter().map(|(name, _)| name).collect();
    let mut tools = Map::new();
    for name in running {
        let names: Vec<Value> = snapshot
            .tools
            .iter()
            .filter_map(|t| match &t.route {
                crate::catalog::ToolRoute::Backend(route) if route.backend.name == name => {
                    Some(json!(route.name))
                }
                _ => None,
            })
            .collect();
        if !names.is_empty() {
            tools.insert(name, Value::Array(names));
        }
    }
    Some(tools)
}

/// `DELETE /mcp_servers/{name}`.
async fn remove_server(
    State(hub): State<Arc<Hub>>,
    extract::Path(name): extract::Path<String>,
) -> Response {
    if !hub.config().servers.contains_key(&name) {
        return error(StatusCode::NOT_FOUND, format!("No client named '{name}'"));
    }
    match manage::remove(&hub, &name).await {
        Ok(()) => Json(json!({"message": format!("Client '{name}' removed successfully")}))
            .into_response(),
        Err(e) => error(refused_status(&hub), e),
    }
}

/// The status of a change the config refused.
fn refused_status(hub: &Hub) -> StatusCode {
    if hub.settings.read_only {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// `POST /mcp_servers`.
async fn add_servers(State(hub): State<Arc<Hub>>, request: Request) -> Response {
    if !body::declares_json(request.headers()) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json): {\"mcpServers\": {\"name\": {...}}}",
        );
    }
    let bytes = match body::read(request.into_body(), MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let servers = match servers_of(&bytes) {
        Ok(servers) => servers,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let config = hub.config();
    if let Some(taken) = servers
        .iter()
        .find(|s| config.servers.contains_key(&s.name))
    {
        return error(
            StatusCode::CONFLICT,
            format!(
                "Server '{0}' already exists; remove it first (DELETE /mcp_servers/{0}) or pick another name",
                taken.name
            ),
        );
    }
    let mut added = Vec::new();
    let mut failed: Vec<(StatusCode, String)> = Vec::new();
    for server in servers {
        let name = server.name.clone();
        match manage::add(&hub, server).await {
            Ok(_) => added.push(name),
            Err(e @ AddError::Refused(_)) => failed.push((refused_status(&hub), e.to_string())),
            Err(e @ AddError::NotMounted { .. }) => {
                failed.push((StatusCode::BAD_GATEWAY, e.to_string()))
            }
        }
    }
    let message = format!("Added {}", python_list(&added));
    match failed.first() {
        None => Json(json!({"message": message})).into_response(),
        Some((status, _)) => {
            let errors: Vec<&str> = failed.iter().map(|(_, e)| e.as_str()).collect();
            let mut body = json!({"error": errors.join("; ")});
            if !added.is_empty() {
                body["message"] = json!(message);
            }
            (*status, Json(body)).into_response()
        }
    }
}

/// The servers of a POST body, read as the servers of an `mcpServers` file are (the same
/// checks and messages, `${VAR}` interpolated, each prefix derived from its name).
fn servers_of(bytes: &[u8]) -> Result<Vec<ServerConfig>, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!("the body is not JSON ({e}); send {{\"mcpServers\": {{\"name\": {{...}}}}}}")
    })?;
    let Some(servers) = root.get("mcpServers") else {
        return Err("Missing 'mcpServers' in payload".to_owned());
    };
    if servers.as_object().is_some_and(Map::is_empty) {
        return Err("'mcpServers' names no server to add".to_owned());
    }
    // Only the servers are read (settings in the body are no business of this request). The
    // body itself is parsed when it can be, so errors give its own lines and columns.
    let text = match (std::str::from_utf8(bytes), root.get("servers")) {
        (Ok(text), None) => text.to_owned(),
        _ => json!({"mcpServers": servers}).to_string(),
    };
    let parsed = config::parse_str(Path::new("request body"), &text, &config::process_env)
        .map_err(|e| e.to_string())?;
    Ok(parsed.servers.into_values().collect())
}

/// `['a', 'b']`: names as multi-mcp (Python) writes a list of them.
fn python_list(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|name| {
            if name.contains('\'') && !name.contains('"') {
                format!("\"{name}\"")
            } else {
                format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_as_python_prints_a_list() {
        assert_eq!(python_list(&[]), "[]");
        assert_eq!(python_list(&["a".into(), "b-c".into()]), "['a', 'b-c']");
        assert_eq!(python_list(&["it's".into()]), "[\"it's\"]");
    }

    #[test]
    fn a_body_without_mcp_servers_is_refused_as_multi_mcp_refuses_it() {
        assert_eq!(
            servers_of(br#"{"servers": {}}"#).unwrap_err(),
            "Missing 'mcpServers' in payload"
        );
        assert!(servers_of(b"{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn servers_are_read_as_in_an_mcp_servers_file() {
        let servers =
            servers_of(br#"{"mcpServers": {"my-calc": {"command": "python", "args": ["calc.py"]}, "weather": {"url": "http://127.0.0.1:9080/sse"}}}"#)
                .expect("valid");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].prefix.as_deref(), Some("mycalc"));
        assert_eq!(servers[1].uri.as_deref(), Some("http://127.0.0.1:9080/sse"));
        let bad = servers_of(br#"{"mcpServers": {"broken": {"args": ["x"]}}}"#).unwrap_err();
        assert!(bad.contains("broken") && bad.contains("command"), "{bad}");
    }
}
