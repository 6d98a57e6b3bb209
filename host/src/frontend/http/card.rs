//! magg's server card (MCP SEP-2127): `GET /.well-known/mcp/server-card.json` (and
//! `/.well-known/mcp/server-card`, the SEP's own path), open to every client, with CORS. Like
//! `/mcp`, it answers pages of other origins only when `allowed_origins` names them, so a web
//! page cannot read what a local magg aggregates.
//!
//! The card says what magg is and how to connect (streamable HTTP at `/mcp`, legacy SSE at
//! `/sse`, and whether a bearer token is needed). What magg aggregates — its tools, prompts and
//! resources and the servers behind them — is in the card only when the client could list them
//! anyway: always without authentication, and with authentication on only for a request whose
//! token magg accepts (and then only what that token's scopes show).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use serde_json::{Value, json};

use super::bearer::{self, Check};
use crate::{backend::Status, hub::Hub};

/// The card's path, as magg's issue asks for it, and the SEP's own.
pub(super) const PATHS: [&str; 2] = [
    "/.well-known/mcp/server-card.json",
    "/.well-known/mcp/server-card",
];

/// The protocol versions magg speaks to clients.
const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// What the card handler needs.
#[derive(Clone)]
pub(super) struct Card {
    pub(super) hub: Arc<Hub>,
    /// The bearer check, when authentication is on.
    pub(super) check: Option<Check>,
    /// `http` or `https`.
    pub(super) scheme: &'static str,
}

/// `GET` of the card.
pub(super) async fn serve(State(card): State<Card>, request: Request) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let origin = format!("{}://{host}", card.scheme);
    // What the request may see of the catalog: everything without authentication; with it,
    // its token's view, or nothing without a token magg accepts.
    let view = match &card.check {
        None => Some(None),
        Some(check) => match bearer::token(headers.get(header::AUTHORIZATION)) {
            Ok(token) => check
                .gate
                .check(token, &check.resource(headers))
                .await
                .ok()
                .map(|caller| caller.view),
            Err(_) => None,
        },
    };
    let body = describe(&card.hub, &origin, card.check.is_some(), view);
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    // The catalog changes while magg runs; a card that lists it must not be cached long.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// The card itself. `view` is `None` when the catalog is withheld, `Some(None)` for all of it.
fn describe(
    hub: &Hub,
    origin: &str,
    auth: bool,
    view: Option<Option<Arc<crate::auth::access::View>>>,
) -> Value {
    let authentication = json!({"required": auth, "schemes": if auth { json!(["bearer", "oauth2"]) } else { json!([]) }});
    let mut card = json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json",
        "name": "magg/magg",
        "version": env!("CARGO_PKG_VERSION"),
        "title": "magg",
        "description": "A meta-MCP server: many MCP servers behind one, each under its own \
                        prefix, with tools to search for, add, remove and configure servers \
                        while the session goes on.",
        "remotes": [
            {
                "type": "streamable-http",
                "url": format!("{origin}/mcp"),
                "supportedProtocolVersions": PROTOCOL_VERSIONS,
                "authentication": authentication,
            },
            {
                "type": "sse",
                "url": format!("{origin}/sse"),
                "supportedProtocolVersions": ["2024-11-05"],
                "authentication": authentication,
            },
        ],
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "completions": {},
            "logging": {},
        },
    });
    let Some(view) = view else {
        card["_meta"] = json!({"magg": {"catalog": "withheld: send a bearer token to see what magg aggregates"}});
        return card;
    };
    let snapshot = hub.snapshot_for(view.as_ref());
    let tools: Vec<Value> = snapshot
        .tools
        .iter()
        .filter_map(|t| serde_json::from_str(&t.text.json()).ok())
        .collect();
    card["tools"] = Value::Array(tools);
    card["prompts"] = json!(snapshot.prompts);
    card["resources"] = json!(snapshot.resources);
    let servers: Vec<Value> = hub
        .backends()
        .iter()
        .filter(|b| {
            // A scoped token sees the servers it has something of.
            view.is_none()
                || snapshot.tools.iter().any(|t| match &t.route {
                    crate::catalog::ToolRoute::Backend(r) => r.backend.name == b.name,
                    crate::catalog::ToolRoute::Own(_) => false,
                })
        })
        .map(|b| {
            let state = b.state();
            json!({
                "name": b.name,
                "prefix": b.config.prefix,
                "running": state.status == Status::Running,
                "tools": state.tools.len(),
            })
        })
        .collect();
    card["_meta"] = json!({"magg": {"servers": servers}});
    card
}
