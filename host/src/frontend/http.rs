//! Streamable HTTP at `/mcp`: one MCP session per client, all over the same hub.
//!
//! rmcp's `StreamableHttpService` speaks the transport. A thin edge in front of it (the
//! middleware [`edge`]) handles what rmcp leaves to the HTTP server or gets wrong:
//! - only `/mcp` (and `/mcp/`) is served; any other path is `404 Not Found`;
//! - `Accept` wildcards admit the media types they cover ([`accept`]);
//! - an unsupported protocol version (`-32022`) or `Mcp-*` headers that contradict the body
//!   (`-32020`) are answered with rmcp's code and a message that says what to send ([`advice`]);
//! - a body that is no single JSON-RPC message gets `400 Bad Request` with a JSON-RPC error,
//!   where rmcp says `415 Unsupported Media Type` ([`body`]);
//! - a request whose first message back is its answer gets that answer as one
//!   `application/json` body; one that is sent progress or a server request first keeps the
//!   event stream ([`reply`]);
//! - a session `DELETE` that succeeded answers `204 No Content`, and one of a session magg does
//!   not have `404 Not Found`;
//! - with authentication on, a request without a valid bearer token gets `401 Unauthorized`
//!   before anything else looks at it ([`bearer`]). Without it, HTTP sessions are
//!   [`Trust::Unauthenticated`]: the call route refuses them the tools that change things;
//! - with `RUST_LOG=magg::access=debug`, each POST is logged with its `Mcp-Method` and
//!   `Mcp-Name` headers and its status ([`crate::telemetry::Access`]);
//! - a POST counts as work in flight until its response has been sent, and while magg drains
//!   before it stops, a new request (or a new event stream) gets `503 Service Unavailable` with
//!   `Retry-After` ([`drain`]); answers and notifications still pass, for the calls in flight.
//!
//! Beside `/mcp`: the legacy SSE transport at `/sse` and `/messages/` ([`sse`]) and multi-mcp's
//! management API at `/mcp_servers` and `/mcp_tools` ([`api`]), each a router of its own.
//! Every route checks `Host` and `Origin` ([`guard`]): a page of another site gets
//! `403 Forbidden`, so it cannot drive magg on localhost (DNS rebinding). Health and readiness
//! ([`ops`]) are open to all, here and on the admin listener ([`bind_admin`]); `/metrics` is
//! checked here like the management API, and open on the admin listener.
//!
//! Sessions are capped and idle ones end ([`sessions`]). magg runs its own accept loop
//! ([`listen`]): HTTP/1.1, optionally over TLS, with limits on header size and on how long a
//! client may take to send a request, and `TCP_NODELAY` on every connection.

mod accept;
mod advice;
mod api;
mod bearer;
mod body;
mod card;
mod drain;
mod guard;
mod listen;
mod ops;
mod reply;
pub(crate) mod sessions;
mod sse;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
pub use listen::{TlsError, tls_acceptor};
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::MaggServer;
use crate::{auth::Gate, hub::Hub, relay::Trust};

/// Largest request body accepted, in bytes; bigger requests get `413 Payload Too Large`.
pub const MAX_BODY_BYTES: usize = crate::pipes::MAX_MESSAGE_BYTES;

/// The path MCP is served at.
const PATH: &str = "/mcp";

/// How often an open event stream carries a keep-alive comment. It also bounds how long the
/// answer to a request is waited for before its headers go out as an event stream
/// ([`reply::prefer_json`]), so a connection is never silent for longer than this.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Binds `host:port` and returns the bound address and a future that serves until `stop`.
/// With `auth`, every request must carry a bearer token it accepts; with `tls`, connections
/// speak HTTPS.
pub async fn bind(
    hub: Arc<Hub>,
    host: &str,
    port: u16,
    auth: Option<Arc<Gate>>,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>> + use<>)> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| {
            format!("cannot listen on {host}:{port} (is the port in use? pick another with --port)")
        })?;
    let addr = listener.local_addr()?;
    let settings = &hub.settings;
    let hub_ops = hub.clone();
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_sse_keep_alive(Some(KEEP_ALIVE));
    if let Some(hosts) = &settings.allowed_hosts {
        config = config.with_allowed_hosts(hosts.iter().map(String::as_str));
    } else if matches!(host, "0.0.0.0" | "::" | "[::]") {
        tracing::warn!(
            "listening on all interfaces: Host header checks are off; put magg behind a proxy that checks them, or list the names clients use in allowed_hosts"
        );
        config = config.disable_allowed_hosts();
    } else if !matches!(host, "localhost" | "127.0.0.1" | "::1") {
        config = config.with_allowed_hosts(["localhost", "127.0.0.1", "::1", host]);
    }
    if let Some(origins) = &settings.allowed_origins {
        config = config
            .with_allowed_origins(origins.iter().map(String::as_str))
            .enforce_origin_validation();
    }
    let places = sessions::Places::new(settings.max_sessions, settings.session_idle_timeout);
    let limits = listen::Limits {
        read_timeout: settings.http_read_timeout,
    };
    let trust = match auth {
        Some(_) => Trust::Full,
        None => Trust::Unauthenticated,
    };
    let hosts = guard::Hosts::new(&config.allowed_hosts, settings.allowed_origins.as_deref());
    let beside = axum::Router::new()
        .merge(sse::router(
            hub.clone(),
            stop.clone(),
            trust,
            places.clone(),
        ))
        .merge(api::router(hub.clone(), trust))
        .merge(ops::metrics(hub.clone()));
    let ended_for = Arc::downgrade(&hub);
    let sessions = Arc::new(sessions::CappedSessions::new(
        places.clone(),
        settings.session_idle_timeout,
        Box::new(move |key| {
            if let Some(hub) = ended_for.upgrade() {
                hub.http_session_ended(key);
            }
        }),
    ));
    sessions.start_sweeping(stop.clone());
    config.session_store = Some(sessions.store());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut card = card::Card {
        hub: hub.clone(),
        check: None,
        scheme,
    };
    let drain = hub.drain_token();
    let edge_hub = hub.clone();
    let service = StreamableHttpService::new(
        move || Ok(MaggServer::with_trust(hub.clone(), trust)),
        sessions.clone(),
        config,
    );
    let mut app = axum::Router::new()
        .route_service(PATH, service.clone())
        .route_service(&format!("{PATH}/"), service)
        .route_layer(axum::middleware::from_fn_with_state(
            (sessions, places, edge_hub),
            edge,
        ))
        .merge(beside);
    // After the merge: every route (MCP, SSE, the management API) needs the token, and is
    // refused to a page of another site (its `Origin`; rmcp checks it for `/mcp` only when
    // `allowed_origins` is set).
    if let Some(gate) = auth {
        let check = bearer::Check { gate, scheme };
        card.check = Some(check.clone());
        app = app
            .route_layer(axum::middleware::from_fn_with_state(
                check.clone(),
                bearer::require,
            ))
            // Where a client learns which authorization server gives tokens: open to all.
            .merge(
                axum::Router::new()
                    .route(bearer::METADATA_PATH, axum::routing::get(bearer::metadata))
                    .route(
                        &format!("{}{PATH}", bearer::METADATA_PATH),
                        axum::routing::get(bearer::metadata),
                    )
                    .with_state(check),
            );
    }
    // The server card: open to all (it shows the catalog only to whom may list it).
    let mut cards = axum::Router::new();
    for path in card::PATHS {
        cards = cards.route(path, axum::routing::get(card::serve));
    }
    let app = app
        .merge(cards.with_state(card))
        .route_layer(axum::middleware::from_fn_with_state(hosts, guard::check))
        // After the checks: a probe needs no token and names the pod's address.
        .merge(ops::probes(hub_ops))
        .fallback(not_found);
    let serve = async move {
        listen::serve(listener, app, limits, tls, drain, stop).await;
        Ok(())
    };
    Ok((addr, serve))
}

/// Binds the admin listener at `host:port` and returns the bound address and a future that
/// serves health, readiness and metrics on it until `stop`: plain HTTP, no token, nothing of MCP, for
/// probes and scrapers on a port that is not public.
pub async fn bind_admin(
    hub: Arc<Hub>,
    host: &str,
    port: u16,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()> + use<>)> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {host}:{port} for the admin endpoints (is the port in use? pick \
                 another with --admin-port)"
            )
        })?;
    let addr = listener.local_addr()?;
    let limits = listen::Limits {
        read_timeout: hub.settings.http_read_timeout,
    };
    let app = ops::probes(hub.clone())
        .merge(ops::metrics(hub))
        .fallback(not_found_admin);
    // Probes keep their answers through the drain (readiness says 503 then): the admin
    // listener closes only at the stop.
    Ok((
        addr,
        listen::serve(listener, app, limits, None, stop.clone(), stop),
    ))
}

/// Every path of the admin listener but its own.
async fn not_found_admin() -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "Not Found: the admin port serves {}, {} and {}; MCP is served on the main port",
            ops::HEALTH_PATH,
            ops::READY_PATH,
            ops::METRICS_PATH
        ),
    )
        .into_response()
}

/// Every path but [`PATH`]: MCP has one endpoint, and a client that adds to it has the wrong
/// URL.
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("Not Found: magg serves MCP at {PATH}"),
    )
        .into_response()
}

/// What stands between the HTTP server and rmcp's service for every request to [`PATH`].
async fn edge(
    State((sessions, places, hub)): State<(
        Arc<sessions::CappedSessions>,
        sessions::Places,
        Arc<Hub>,
    )>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    accept::name_wildcard_types(&mut parts.headers);
    match parts.method {
        Method::POST => {
            let bytes = match body::read(body, MAX_BODY_BYTES).await {
                Ok(bytes) => bytes,
                Err(refusal) => return refusal,
            };
            // Answers and notifications still pass while magg drains: the calls in flight
            // may need them.
            let work = match hub.admit() {
                Some(work) => work,
                None if drain::is_request(&bytes) => return drain::refusal(&bytes),
                None => hub.work(),
            };
            let declared_json = body::declares_json(&parts.headers);
            let access = crate::telemetry::Access::start(&parts.headers);
            // A request that opens a session needs a free place, reserved here so that a
            // full magg answers with a clear 503 before any work.
            let place = match sessions::initialize_id(&bytes) {
                Some(id) if !parts.headers.contains_key("mcp-session-id") => match places.take() {
                    Some(place) => Some(place),
                    None => return places.refusal(id),
                },
                _ => None,
            };
            let request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
            let response = match place {
                Some(place) => {
                    sessions::RESERVED
                        .scope(std::cell::Cell::new(Some(place)), next.run(request))
                        .await
                }
                None => next.run(request).await,
            };
            // rmcp answers 415 both for a wrong Content-Type and for a JSON body it cannot
            // read as a message; only the first is a media type problem.
            if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
                && declared_json
                && let Some(rejection) = body::rejection(&bytes)
            {
                return rejection;
            }
            let response = advice::advise(reply::prefer_json(response, KEEP_ALIVE).await).await;
            let response = drain::counted(response, work);
            if let Some(access) = access {
                access.answered(response.status().as_u16());
            }
            response
        }
        Method::GET if hub.is_draining() => drain::refusal(b""),
        // The Python and TypeScript SDKs treat anything but 200 / 204 as a failed termination
        // and log a warning.
        Method::DELETE => {
            // rmcp answers a DELETE of a session it does not have as if it had ended it.
            let id = parts
                .headers
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok());
            if let Some(id) = id
                && !sessions.knows(&id.into())
            {
                return (
                    StatusCode::NOT_FOUND,
                    format!("Not Found: no session {id} (it has ended, or never existed)"),
                )
                    .into_response();
            }
            let mut response = next.run(Request::from_parts(parts, body)).await;
            if response.status() == StatusCode::ACCEPTED {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            response
        }
        _ => next.run(Request::from_parts(parts, body)).await,
    }
}
