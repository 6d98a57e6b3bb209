//! A server whose tools run inside magg: a WebAssembly component (world
//! `tool-provider-plugin` of `wit/plugin.wit`) mounted by a server entry with `wasm` or a
//! `.wasm` source.
//!
//! The backend knows nothing of WebAssembly: at start the hub hands in a [`Mounter`] (the
//! plugins' runtime), and a component backend asks it for a [`Mount`]. The mount keeps the
//! component's current version, replaces it when its file changes, and runs each call; the
//! backend keeps its tool list in its state like any server's, so prefixes, filters, hooks,
//! kits and list_changed apply unchanged. A call reaches the mount directly from the call
//! route ([`crate::call`]): no process, no pipe, no JSON-RPC framing.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::{Backend, Changed, Status, connect::Outcome};
use crate::{config::ServerConfig, mcp::ToolText};

/// Loads the component of a server entry.
pub trait Mounter: Send + Sync {
    /// Loads `server`'s component, validates it (one instance, `list-tools`) and starts
    /// watching its file; the reason when it cannot.
    fn mount(&self, server: &ServerConfig) -> BoxFuture<'static, Result<Arc<dyn Mount>, String>>;
}

/// A mounted component: its current version, replaced while it serves.
pub trait Mount: Send + Sync + std::fmt::Debug {
    /// The tools of the version serving now.
    fn tools(&self) -> Arc<Vec<ToolText>>;

    /// A receiver that sees every change: a new version serving, or a replacement that failed.
    fn changes(&self) -> watch::Receiver<u64>;

    /// Runs `tool` with `arguments` (a JSON object as text) in a fresh instance of the version
    /// serving now; a fault of the component is an error result naming the server.
    fn call(&self, tool: &str, arguments: String) -> BoxFuture<'static, CallToolResult>;

    /// What `magg_status` shows of it: its file, version, grants and last load error.
    fn status(&self) -> Value;
}

static MOUNTER: OnceLock<Arc<dyn Mounter>> = OnceLock::new();

/// Sets, once per process, what mounts component servers.
pub fn set_mounter(mounter: Arc<dyn Mounter>) {
    let _ = MOUNTER.set(mounter);
}

/// Mounts the component and keeps its tool list current until the backend is stopped.
pub(super) async fn run(
    backend: &Arc<Backend>,
    changes: &mpsc::UnboundedSender<Changed>,
) -> Outcome {
    let Some(mounter) = MOUNTER.get() else {
        return Outcome::Ended {
            reason: "this magg runs no WebAssembly engine, so it cannot mount a .wasm server"
                .to_owned(),
            was_running: false,
        };
    };
    let mounting = mounter.mount(&backend.config);
    let mount = tokio::select! {
        mount = mounting => mount,
        () = backend.stop.cancelled() => return Outcome::Stopped,
    };
    let mount = match mount {
        Ok(mount) => mount,
        Err(reason) => {
            return Outcome::Ended {
                reason,
                was_running: false,
            };
        }
    };
    let mut seen = mount.changes();
    let mut tools = mount.tools();
    tracing::info!(server = %backend.name, tools = tools.len(), "component ready");
    backend.set(changes, |s| {
        s.status = Status::Running;
        s.since = Instant::now();
        s.server_info = Some(Implementation::new(backend.name.clone(), "component"));
        s.capabilities = Some(ServerCapabilities::builder().enable_tools().build());
        s.tools = tools.clone();
        s.component = Some(mount.clone());
    });
    loop {
        tokio::select! {
            () = backend.stop.cancelled() => return Outcome::Stopped,
            changed = seen.changed() => {
                if changed.is_err() {
                    return Outcome::Ended {
                        reason: "the component's loader stopped".to_owned(),
                        was_running: true,
                    };
                }
                let now = mount.tools();
                if now != tools {
                    tools = now;
                    let next = tools.clone();
                    backend.set(changes, |s| s.tools = next);
                }
            }
        }
    }
}
