//! The running aggregator shared by every frontend: the configured backends, the current catalog
//! snapshot, the connected client sessions, and the task that rebuilds the catalog and tells
//! every session when a list changed.

mod dispatch;

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use indexmap::IndexMap;
use rmcp::{RoleServer, model::Tool, service::Peer};
use tokio::sync::{mpsc, watch};

pub use self::dispatch::error_result;
use crate::{
    backend::{Backend, Changed, Status},
    catalog::{ListChanges, Snapshot},
    config::{Config, Settings},
    plugins::Hooks,
    tools::{self, OwnTool},
};

/// The running aggregator.
pub struct Hub {
    /// Settings in force (fixed for the life of the process).
    pub settings: Arc<Settings>,
    /// Routing hooks and tool filters applied on the call path.
    pub hooks: Hooks,
    config: RwLock<Config>,
    backends: RwLock<IndexMap<String, Arc<Backend>>>,
    catalog: ArcSwap<Snapshot>,
    own_tools: Vec<(Tool, OwnTool)>,
    sessions: Sessions,
    changes: mpsc::UnboundedSender<Changed>,
    settled: watch::Receiver<bool>,
    started: Instant,
}

impl Hub {
    /// Starts every enabled backend of `config` (in parallel, without waiting for them) and the
    /// catalog task. Must be called inside a Tokio runtime.
    pub fn start(config: Config) -> Arc<Hub> {
        let settings = Arc::new(config.settings.clone());
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (settled_tx, settled) = watch::channel(false);
        let own_tools = tools::own_tools(&settings);
        let backends: IndexMap<String, Arc<Backend>> = config
            .enabled_servers()
            .map(|server| {
                (
                    server.name.clone(),
                    Backend::start(server.clone(), settings.clone(), changes.clone()),
                )
            })
            .collect();
        let hub = Arc::new(Hub {
            settings,
            hooks: Hooks::default(),
            config: RwLock::new(config),
            backends: RwLock::new(backends),
            catalog: ArcSwap::from_pointee(Snapshot::default()),
            own_tools,
            sessions: Sessions::default(),
            changes,
            settled,
            started: Instant::now(),
        });
        hub.rebuild();
        let _ = settled_tx.send(hub.all_settled());
        tokio::spawn(catalog_task(Arc::downgrade(&hub), changes_rx, settled_tx));
        hub
    }

    /// The current catalog snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.catalog.load_full()
    }

    /// The configuration the hub runs on.
    pub fn config(&self) -> Config {
        match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The running backends, in config order.
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        match self.backends.read() {
            Ok(b) => b.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }

    /// The connected client sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Waits, within the `list_wait` grace period after start, until no backend is still
    /// starting, so that the first lists a client asks for are complete. Never waits after it.
    pub async fn wait_for_backends(&self) {
        if *self.settled.borrow() {
            return;
        }
        let deadline = self.started + self.settings.list_wait;
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        let mut settled = self.settled.clone();
        let _ = tokio::time::timeout(left, settled.wait_for(|s| *s)).await;
    }

    /// Stops every backend and waits (briefly) for their processes to end.
    pub async fn shutdown(&self) {
        let backends = self.backends();
        for backend in &backends {
            backend.stop();
        }
        let all_stopped = async {
            for backend in &backends {
                while backend.state().status != Status::Stopped {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), all_stopped).await;
    }

    /// Rebuilds the catalog from the current backend states; returns what changed.
    fn rebuild(&self) -> ListChanges {
        let old = self.catalog.load_full();
        let mut next = Snapshot::build(
            old.generation + 1,
            &self.settings,
            &self.own_tools,
            &self.backends(),
        );
        next.tools = self.hooks.filter_tools(std::mem::take(&mut next.tools));
        let changes = next.changes_since(&old);
        self.catalog.store(Arc::new(next));
        changes
    }

    fn all_settled(&self) -> bool {
        self.backends()
            .iter()
            .all(|b| b.state().status != Status::Starting)
    }

    /// The channel backends report their changes on.
    pub fn changes(&self) -> mpsc::UnboundedSender<Changed> {
        self.changes.clone()
    }
}

/// Rebuilds the catalog after every burst of backend changes and tells every session.
async fn catalog_task(
    hub: std::sync::Weak<Hub>,
    mut changes: mpsc::UnboundedReceiver<Changed>,
    settled: watch::Sender<bool>,
) {
    while let Some(first) = changes.recv().await {
        let mut servers = vec![first.server];
        while let Ok(more) = changes.try_recv() {
            servers.push(more.server);
        }
        let Some(hub) = hub.upgrade() else { break };
        let diff = hub.rebuild();
        tracing::debug!(?servers, ?diff, "catalog rebuilt");
        if diff.any() {
            hub.sessions.notify(diff);
        }
        let _ = settled.send(hub.all_settled());
    }
}

/// Every connected client session, for list_changed fan-out.
#[derive(Default)]
pub struct Sessions {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Sessions {
    /// Adds a session that has just initialized.
    pub fn add(&self, peer: Peer<RoleServer>) {
        if let Ok(mut peers) = self.peers.lock() {
            peers.retain(|p| !p.is_transport_closed());
            peers.push(peer);
        }
    }

    /// How many sessions are connected.
    pub fn count(&self) -> usize {
        match self.peers.lock() {
            Ok(mut peers) => {
                peers.retain(|p| !p.is_transport_closed());
                peers.len()
            }
            Err(_) => 0,
        }
    }

    /// Sends the list_changed notifications for `changes` to every session.
    pub fn notify(&self, changes: ListChanges) {
        let peers: Vec<Peer<RoleServer>> = match self.peers.lock() {
            Ok(mut peers) => {
                peers.retain(|p| !p.is_transport_closed());
                peers.clone()
            }
            Err(_) => return,
        };
        for peer in peers {
            tokio::spawn(async move {
                if changes.tools {
                    let _ = peer.notify_tool_list_changed().await;
                }
                if changes.prompts {
                    let _ = peer.notify_prompt_list_changed().await;
                }
                if changes.resources {
                    let _ = peer.notify_resource_list_changed().await;
                }
            });
        }
    }
}
