//! What a process supervisor and a load balancer ask of magg: `GET /healthz` (the process
//! answers) and `GET /readyz` (it is ready for clients). Both are open to all (no token, no
//! `Host` check: a kubelet or a load balancer names the pod's address), say nothing about
//! the catalog beyond server names and states, and are served beside `/mcp` and on the
//! separate admin listener (`--admin-port`).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::get,
};
use serde_json::json;

use crate::{backend::Status, hub::Hub};

/// The liveness path.
pub const HEALTH_PATH: &str = "/healthz";
/// The readiness path.
pub const READY_PATH: &str = "/readyz";

/// The routes of this module, over `hub`.
pub fn router(hub: Arc<Hub>) -> axum::Router {
    axum::Router::new()
        .route(HEALTH_PATH, get(health))
        .route(READY_PATH, get(ready))
        .with_state(hub)
}

/// 200 while the process can answer at all.
async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

/// 200 once every enabled backend has finished its first start (running, or failed and
/// retried in the background), 503 before that and once magg is draining for shutdown. The
/// body names the servers still starting, so an operator sees what readiness waits for.
async fn ready(State(hub): State<Arc<Hub>>) -> Response {
    let readiness = Readiness::of(&hub);
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        json!({
            "status": if readiness.ready() { "ready" } else { "not ready" },
            "draining": readiness.draining,
            "starting": readiness.starting,
            "running": readiness.running,
            "failed": readiness.failed,
        }),
    )
}

/// Where the backends are, as readiness sees them.
struct Readiness {
    draining: bool,
    /// Servers in their first start.
    starting: Vec<String>,
    running: usize,
    failed: Vec<String>,
}

impl Readiness {
    fn of(hub: &Hub) -> Readiness {
        let mut out = Readiness {
            draining: hub.is_draining(),
            starting: Vec::new(),
            running: 0,
            failed: Vec::new(),
        };
        for backend in hub.backends() {
            let state = backend.state();
            match &state.status {
                Status::Running => out.running += 1,
                Status::Failed { .. } => out.failed.push(backend.name.clone()),
                // A restart after the first start does not take the replica out: its other
                // servers still serve.
                Status::Starting if state.starts <= 1 => out.starting.push(backend.name.clone()),
                Status::Starting | Status::Stopped => {}
            }
        }
        out.starting.sort();
        out.failed.sort();
        out
    }

    fn ready(&self) -> bool {
        !self.draining && self.starting.is_empty()
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}
