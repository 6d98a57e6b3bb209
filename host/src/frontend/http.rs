//! Streamable HTTP at `/mcp`: one MCP session per client, all over the same hub.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use super::MaggServer;
use crate::hub::Hub;

/// Largest request body accepted, in bytes; bigger requests get `413 Payload Too Large`.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Binds `host:port` and returns the bound address and a future that serves until `stop`.
pub async fn bind(
    hub: Arc<Hub>,
    host: &str,
    port: u16,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>> + use<>)> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| {
            format!("cannot listen on {host}:{port} (is the port in use? pick another with --port)")
        })?;
    let addr = listener.local_addr()?;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_max_request_body_bytes(MAX_BODY_BYTES);
    if matches!(host, "0.0.0.0" | "::" | "[::]") {
        tracing::warn!(
            "listening on all interfaces: Host header checks are off; put magg behind a proxy that checks them"
        );
        config = config.disable_allowed_hosts();
    } else if !matches!(host, "localhost" | "127.0.0.1" | "::1") {
        config = config.with_allowed_hosts(["localhost", "127.0.0.1", "::1", host]);
    }
    let service = StreamableHttpService::new(
        move || Ok(MaggServer::new(hub.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(session_delete_status));
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("HTTP server failed")
    };
    Ok((addr, serve))
}

/// A session `DELETE` that succeeded answers `204 No Content`: the Python and TypeScript SDKs
/// treat anything but 200 / 204 as a failed termination and log a warning.
async fn session_delete_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_delete = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if is_delete && response.status() == axum::http::StatusCode::ACCEPTED {
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    response
}
