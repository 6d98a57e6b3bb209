//! What a process supervisor, a load balancer and a scraper ask of magg: `GET /healthz` (the
//! process answers), `GET /readyz` (it is ready for clients) and `GET /metrics` (Prometheus).
//!
//! Health and readiness are open to all (no token, no `Host` check: a kubelet or a load
//! balancer names the pod's address) and say nothing about the catalog beyond server names
//! and states. `/metrics` names servers and tools, so beside `/mcp` it needs the same token as
//! MCP when authentication is on; the admin listener (`--admin-port`), meant for a port that
//! is not public, serves all three to anyone who reaches it.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    backend::Status,
    hub::Hub,
    metrics::{self, BackendSample, Sample},
};

/// The liveness path.
pub const HEALTH_PATH: &str = "/healthz";
/// The readiness path.
pub const READY_PATH: &str = "/readyz";
/// The Prometheus metrics path.
pub const METRICS_PATH: &str = "/metrics";

/// Health and readiness, over `hub`.
pub fn probes(hub: Arc<Hub>) -> axum::Router {
    axum::Router::new()
        .route(HEALTH_PATH, get(health))
        .route(READY_PATH, get(ready))
        .with_state(hub)
}

/// The metrics, over `hub`.
pub fn metrics(hub: Arc<Hub>) -> axum::Router {
    axum::Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(hub)
}

/// Every metric in the text format the scraper asks for: OpenMetrics when its `Accept` names
/// it, else Prometheus' own.
async fn scrape(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = metrics::render(&sample(&hub), openmetrics);
    let media = if openmetrics {
        metrics::OPENMETRICS_TEXT
    } else {
        metrics::PROMETHEUS_TEXT
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// What is sampled rather than counted, now.
fn sample(hub: &Hub) -> Sample {
    let now = SystemTime::now();
    let unix = |ago: Duration| {
        now.checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let backends = hub
        .backends()
        .iter()
        .map(|backend| {
            let state = backend.state();
            BackendSample {
                server: backend.name.clone(),
                state: state.status.label(),
                restarts: u64::from(state.starts.saturating_sub(1)),
                since: unix(state.since.elapsed()),
                tools: i64::try_from(state.tools.len()).unwrap_or(i64::MAX),
                session_instances: i64::try_from(backend.session_instances()).unwrap_or(i64::MAX),
            }
        })
        .collect();
    let sessions = hub
        .sessions()
        .open_by_transport()
        .into_iter()
        .map(|(transport, n)| (transport.label(), i64::try_from(n).unwrap_or(i64::MAX)))
        .collect();
    Sample {
        backends,
        sessions,
        draining: hub.is_draining(),
    }
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
