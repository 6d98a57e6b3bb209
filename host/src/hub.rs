//! The running aggregator shared by every frontend: the configured backends, the current catalog
//! snapshot, the connected client sessions, and the task that rebuilds the catalog and tells
//! every session when a list changed.
//!
//! # Design
//! - The hub owns state, not routes: a tools/call goes through [`crate::call`], which reads the
//!   snapshot and backends from here. What else clients ask of backends (resources, prompts,
//!   completions, log levels, subscriptions) is forwarded by [`dispatch`] and [`forward`].
//! - magg's own tools and resources are handed in at start as an [`OwnServer`]; the hub never
//!   names the module that implements them.
//! - The catalog is rebuilt whole after every burst of backend changes, and swapped in at once.
//! - Before magg stops, the hub counts the work in flight and refuses new work while it drains
//!   ([`drain`]); [`Hub::shutdown`] then ends every backend.

mod dispatch;
mod drain;
mod forward;
mod isolation;
mod own;
mod reload_state;
mod runtime;
mod scoped;

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use indexmap::IndexMap;
use tokio::sync::{mpsc, watch};

pub(crate) use self::dispatch::running_peer;
pub use self::{
    drain::Work,
    own::{OwnCall, OwnPrompt, OwnServer},
    reload_state::ReloadState,
};
use crate::{
    backend::{Backend, Changed, Status},
    catalog::{OwnItems, Snapshot},
    config::{self, Config, ServerConfig, Settings},
    plugins::{PluginConfigs, Plugins},
    relay::Sessions,
};

/// How long an edit waits for another process to release the config file's lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Takes the lock of the config file `path` without blocking the runtime: tries again every few
/// milliseconds while another process holds it, up to [`LOCK_WAIT`].
async fn lock_file(path: &std::path::Path) -> Result<config::ConfigLock, String> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config::ConfigLock::try_acquire(path) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(None) => {
                return Err(format!(
                    "could not save the config: another process has held the lock {} for {} s; \
                     try again, or end the process that holds it",
                    config::lock_path(path).display(),
                    LOCK_WAIT.as_secs()
                ));
            }
            Err(e) => return Err(format!("could not save the config: {e}")),
        }
    }
}

/// The running aggregator.
pub struct Hub {
    /// Settings in force (fixed for the life of the process).
    pub settings: Arc<Settings>,
    /// The WebAssembly plugins: tool filters, routing hooks, configure and search plugins.
    pub plugins: Plugins,
    config: RwLock<Config>,
    backends: RwLock<IndexMap<String, Arc<Backend>>>,
    catalog: ArcSwap<Snapshot>,
    /// Counts catalog rebuilds, for callers waiting for a tool to appear.
    rebuilt: watch::Sender<u64>,
    own: Arc<dyn OwnServer>,
    own_items: OwnItems,
    sessions: Arc<Sessions>,
    changes: mpsc::UnboundedSender<Changed>,
    settled: watch::Receiver<bool>,
    started: Instant,
    reload: ReloadState,
    edits: tokio::sync::Mutex<()>,
    rebuilding: tokio::sync::Mutex<()>,
    /// The catalog as each scoped caller sees it.
    scoped: scoped::ScopedSnapshots,
    /// Servers added and removed while running, for a config file magg does not rewrite.
    runtime: runtime::Runtime,
    /// The work in flight, and whether magg is draining before it stops.
    drain: drain::Drain,
}

impl Hub {
    /// Starts every enabled backend of `config` (in parallel, without waiting for them) and the
    /// catalog task; `own` is magg's own server, listed before every backend. Must be called
    /// inside a Tokio runtime.
    pub fn start(config: Config, own: Arc<dyn OwnServer>) -> Arc<Hub> {
        let settings = Arc::new(config.settings.clone());
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (settled_tx, settled) = watch::channel(false);
        let sessions = Arc::new(Sessions::default());
        let own_items = own.items(&settings);
        let plugins = Plugins::new(
            crate::plugins::plugins_dir(&config),
            crate::plugins::cache_dir(),
            PluginConfigs::from_json(config.extra.get("plugins")),
        );
        // Before any backend starts: WebAssembly servers mount on the plugins' engine.
        crate::backend::component::set_mounter(plugins.mounter());
        let backends: IndexMap<String, Arc<Backend>> = config
            .enabled_servers()
            .map(|server| {
                (
                    server.name.clone(),
                    Backend::start(
                        server.clone(),
                        settings.clone(),
                        changes.clone(),
                        sessions.clone(),
                    ),
                )
            })
            .collect();
        let hub = Arc::new(Hub {
            settings,
            plugins,
            config: RwLock::new(config),
            backends: RwLock::new(backends),
            catalog: ArcSwap::from_pointee(Snapshot::default()),
            rebuilt: watch::Sender::new(0),
            own,
            own_items,
            sessions,
            changes,
            settled,
            started: Instant::now(),
            reload: ReloadState::default(),
            edits: tokio::sync::Mutex::new(()),
            rebuilding: tokio::sync::Mutex::new(()),
            scoped: Default::default(),
            runtime: Default::default(),
            drain: Default::default(),
        });
        if let Ok(text) = std::fs::read(&hub.config().path) {
            hub.reload.seen(&text);
        }
        hub.catalog.store(Arc::new(Snapshot::unfiltered(
            1,
            &hub.settings,
            &hub.own_items,
            &hub.backends(),
        )));
        let _ = settled_tx.send(hub.all_settled());
        let weak = Arc::downgrade(&hub);
        hub.plugins.start(move || {
            let weak = weak.clone();
            async move {
                if let Some(hub) = weak.upgrade() {
                    let rebuilt = hub.rebuild().await;
                    tracing::debug!(diff = ?rebuilt.changes, "catalog rebuilt for changed tool filters");
                    hub.announce(&rebuilt);
                }
            }
        });
        tokio::spawn(catalog_task(Arc::downgrade(&hub), changes_rx, settled_tx));
        tokio::spawn(sweep_task(Arc::downgrade(&hub)));
        hub
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

    /// The reloader's memory: what was last applied, and why the last reload failed.
    pub fn reload_state(&self) -> &ReloadState {
        &self.reload
    }

    /// The connected client sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// magg's own server.
    pub fn own(&self) -> &dyn OwnServer {
        &*self.own
    }

    /// Waits until the plugins have loaded, for at most `list_wait` after magg's start, so that a
    /// request right after the start is answered by the plugins a later one would get.
    pub async fn wait_for_plugins(&self) {
        if self.plugins.is_ready() {
            return;
        }
        let list_wait = self.settings.list_wait;
        if let Some(left) = (self.started + list_wait).checked_duration_since(Instant::now()) {
            self.plugins.wait_ready(left).await;
        }
    }

    /// Waits until no backend is still starting, each for at most `list_wait` counted from its
    /// own start (and plugins for `list_wait` after magg's start), so that the lists a client
    /// asks for right after magg or a server started are complete.
    pub async fn wait_for_backends(&self) {
        if *self.settled.borrow() && self.plugins.is_ready() {
            return;
        }
        let list_wait = self.settings.list_wait;
        if let Some(left) = (self.started + list_wait).checked_duration_since(Instant::now()) {
            self.plugins.wait_ready(left).await;
        }
        let deadline = self
            .backends()
            .iter()
            .filter_map(|b| {
                let state = b.state();
                (state.status == Status::Starting).then(|| state.since + list_wait)
            })
            .max();
        let Some(left) = deadline.and_then(|d| d.checked_duration_since(Instant::now())) else {
            return;
        };
        let mut settled = self.settled.clone();
        let _ = tokio::time::timeout(left, settled.wait_for(|s| *s)).await;
    }

    /// The current snapshot once it lists the tool `name`, or once no backend that could serve
    /// it is still starting: each such backend is waited for up to its init timeout
    /// (`backend_init_timeout`), counted from its start.
    pub async fn wait_for_tool(&self, name: &str) -> Arc<Snapshot> {
        let mut rebuilt = self.rebuilt.subscribe();
        let mut waited_for_plugins = false;
        loop {
            let snapshot = self.snapshot();
            if snapshot.tool(name).is_some() {
                return snapshot;
            }
            if !waited_for_plugins {
                // A tool filter that is still loading may list the tool under this name.
                waited_for_plugins = true;
                let list_wait = self.settings.list_wait;
                if let Some(left) =
                    (self.started + list_wait).checked_duration_since(Instant::now())
                {
                    self.plugins.wait_ready(left).await;
                    continue;
                }
            }
            let limit = self
                .settings
                .backend_init_timeout
                .unwrap_or(Duration::from_secs(24 * 3600));
            // A backend still starting, or one whose new state the snapshot does not reflect
            // yet (its rebuild is under way), may bring the tool.
            let read_at = snapshot.read_at;
            let deadline = self
                .backends()
                .iter()
                .filter(|b| b.may_serve_tool(name, &self.settings.prefix_sep))
                .filter_map(|b| {
                    let state = b.state();
                    if state.status == Status::Starting {
                        Some(state.since + limit)
                    } else if read_at.is_none_or(|read| read < state.since) {
                        Some(state.since.max(Instant::now()) + CATALOG_CATCH_UP)
                    } else {
                        None
                    }
                })
                .max();
            let Some(deadline) = deadline else {
                return snapshot;
            };
            let changed = tokio::time::timeout_at(deadline.into(), rebuilt.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return self.snapshot();
            }
        }
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

    /// Makes the running set of backends match `new`: servers that were removed or disabled are
    /// stopped, added or enabled ones started, and a server whose launch settings (source,
    /// prefix, command, args, uri, env, cwd, transport, isolation) changed is restarted, with its
    /// per-session instances. Every other
    /// backend keeps its process and its calls in flight. Settings apply at the next start.
    pub async fn apply_config(&self, new: Config) -> ConfigDiff {
        let mut diff = ConfigDiff::default();
        let old = self.config();
        if new.settings != old.settings {
            tracing::warn!(
                "settings in {} changed; they take effect when magg restarts (servers are applied now)",
                new.path.display()
            );
        }
        {
            let mut backends = match self.backends.write() {
                Ok(b) => b,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut next: IndexMap<String, Arc<Backend>> = IndexMap::new();
            for server in new.enabled_servers() {
                let name = server.name.clone();
                match backends.shift_remove(&name) {
                    Some(backend) if same_launch(&backend.config, server) => {
                        next.insert(name, backend);
                    }
                    Some(backend) => {
                        backend.stop();
                        diff.updated.push(name.clone());
                        next.insert(name, self.start_backend(server));
                    }
                    None => {
                        if old.servers.get(&name).is_some_and(|s| !s.enabled) {
                            diff.enabled.push(name.clone());
                        } else {
                            diff.added.push(name.clone());
                        }
                        next.insert(name, self.start_backend(server));
                    }
                }
            }
            for (name, backend) in backends.drain(..) {
                backend.stop();
                if new.servers.contains_key(&name) {
                    diff.disabled.push(name);
                } else {
                    diff.removed.push(name);
                }
            }
            *backends = next;
        }
        self.plugins
            .set_configs(PluginConfigs::from_json(new.extra.get("plugins")));
        match self.config.write() {
            Ok(mut config) => *config = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        let rebuilt = self.rebuild().await;
        self.announce(&rebuilt);
        if !diff.is_empty() {
            tracing::info!(?diff, "applied config change");
        }
        diff
    }

    /// Changes the config file with `edit` and applies the result. Under the file's lock
    /// ([`config::ConfigLock`]) the file is re-read, `edit` changes what is on disk (so changes
    /// other processes made meanwhile are kept), the result is validated as if read from the
    /// file and written atomically. Edits (and reloads, see [`Hub::lock_edits`]) are serialised;
    /// in read-only mode, or if the edit, the validation or the save fails, nothing changes and
    /// the reason is returned.
    pub async fn update_config<T>(
        &self,
        edit: impl FnOnce(&mut Config) -> Result<T, String>,
    ) -> Result<(T, ConfigDiff), String> {
        if self.settings.read_only {
            return Err(
                "magg is in read-only mode (read_only in the config or MAGG_READ_ONLY), so it does not change its config; \
                 edit the config file by hand or run magg without read-only mode"
                    .to_owned(),
            );
        }
        let _guard = self.edits.lock().await;
        let base = self.config();
        let lock = lock_file(&base.path).await?;
        let (value, saved) = config::edit_locked(&lock, &base, edit).map_err(|e| e.to_string())?;
        if let Ok(text) = std::fs::read(&saved.path) {
            self.reload.seen(&text);
        }
        drop(lock);
        Ok((value, self.apply_config(saved).await))
    }

    /// Holds off config edits (and other reloads) until the guard is dropped, so that a reload
    /// of the file and an edit never apply out of order.
    pub async fn lock_edits(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.edits.lock().await
    }

    /// The backend of the enabled server `name`.
    pub fn backend(&self, name: &str) -> Option<Arc<Backend>> {
        match self.backends.read() {
            Ok(b) => b.get(name).cloned(),
            Err(poisoned) => poisoned.into_inner().get(name).cloned(),
        }
    }

    /// Waits until the backend of `name` has finished starting (or `limit` passed); its status.
    /// Once it has, the catalog reflects that status too, so the server's tools are listed and
    /// callable by the time this returns.
    pub async fn wait_started(&self, name: &str, limit: Duration) -> Option<Status> {
        let deadline = Instant::now() + limit;
        let backend = self.backend(name)?;
        let mut changed = backend.watch();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if backend.state().status != Status::Starting || left.is_zero() {
                break;
            }
            if !matches!(
                tokio::time::timeout(left, changed.changed()).await,
                Ok(Ok(()))
            ) {
                break;
            }
        }
        let (status, since) = {
            let state = backend.state();
            (state.status.clone(), state.since)
        };
        self.wait_catalog_since(since, CATALOG_CATCH_UP).await;
        Some(status)
    }

    /// Waits (up to `limit`) until the catalog was built from backend states read at or after
    /// `since`.
    async fn wait_catalog_since(&self, since: Instant, limit: Duration) {
        let mut rebuilt = self.rebuilt.subscribe();
        let caught_up = |hub: &Self| hub.snapshot().read_at.is_some_and(|read| read >= since);
        let _ = tokio::time::timeout(limit, async {
            while !caught_up(self) {
                if rebuilt.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Stops and starts the backend of `name` again with its current config.
    pub fn restart(&self, name: &str) -> bool {
        let mut backends = match self.backends.write() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(old) = backends.get(name).cloned() else {
            return false;
        };
        old.stop();
        let fresh = self.start_backend(&old.config);
        backends.insert(name.to_owned(), fresh);
        true
    }

    fn start_backend(&self, server: &ServerConfig) -> Arc<Backend> {
        Backend::start(
            server.clone(),
            self.settings.clone(),
            self.changes.clone(),
            self.sessions.clone(),
        )
    }

    /// Rebuilds the catalog from the current backend states, with the tool filters; returns
    /// what changed. Rebuilds are serialised, so the newest always lands last.
    async fn rebuild(&self) -> scoped::Rebuilt {
        let _one_at_a_time = self.rebuilding.lock().await;
        let old = self.catalog.load_full();
        let next = Snapshot::build(
            old.generation + 1,
            &self.settings,
            &self.own_items,
            &self.backends(),
            &self.plugins,
        )
        .await;
        let changes = next.changes_since(&old);
        let generation = next.generation;
        let new = Arc::new(next);
        if self.settings.tool_search != crate::config::ToolSearch::Off {
            // Tool search's index, once per snapshot, off the runtime's threads (5000 tools
            // take about 0.1 s) and before any search can ask for it.
            let snapshot = new.clone();
            let _ = tokio::task::spawn_blocking(move || {
                snapshot.search_index();
            })
            .await;
        }
        self.catalog.store(new.clone());
        self.rebuilt.send_replace(generation);
        scoped::Rebuilt { changes, old, new }
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

/// Which servers a config change touched.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigDiff {
    /// Servers new in the config (and enabled).
    pub added: Vec<String>,
    /// Servers gone from the config.
    pub removed: Vec<String>,
    /// Servers switched from disabled to enabled.
    pub enabled: Vec<String>,
    /// Servers switched from enabled to disabled.
    pub disabled: Vec<String>,
    /// Servers whose launch settings changed, so they were restarted.
    pub updated: Vec<String>,
}

impl ConfigDiff {
    /// Whether nothing changed for the running backends.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.enabled.is_empty()
            && self.disabled.is_empty()
            && self.updated.is_empty()
    }
}

/// Whether two server configs start the same backend (notes, kits and unknown keys aside).
fn same_launch(a: &ServerConfig, b: &ServerConfig) -> bool {
    a.source == b.source
        && a.prefix == b.prefix
        && a.command == b.command
        && a.args == b.args
        && a.uri == b.uri
        && a.env == b.env
        && a.cwd == b.cwd
        && a.transport == b.transport
        && a.isolation == b.isolation
}

/// How long a caller waits for the catalog to reflect a backend state it has seen: a rebuild
/// follows every state change at once, so this bounds only a stalled tool filter.
const CATALOG_CATCH_UP: Duration = Duration::from_secs(10);

/// How often closed client sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Cleans up after client sessions that closed, while the hub lives.
async fn sweep_task(hub: std::sync::Weak<Hub>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { break };
        hub.sweep_sessions().await;
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
        // Whether every backend has settled, as of before the rebuild: the snapshot then holds
        // at least those states. Asked after it, a backend that came up meanwhile would count as
        // settled while the snapshot has none of its tools (its change is still queued), and a
        // list request could be answered without them.
        let all_settled = hub.all_settled();
        let rebuilt = hub.rebuild().await;
        tracing::debug!(?servers, diff = ?rebuilt.changes, "catalog rebuilt");
        hub.announce(&rebuilt);
        release_free_memory();
        let _ = settled.send(all_settled);
    }
}

/// Sets how the allocator holds on to freed memory, once at start: blocks of 256 KiB or more
/// (a page of large tools, a backend's whole tool list) get pages of their own that go back to
/// the system when freed, and free memory at the top of the heap is returned once 512 KiB of
/// it collects. glibc otherwise raises both limits to the largest block freed so far (the
/// second to twice that), and a process that once wrote a large page keeps that much memory
/// for good.
pub fn limit_retained_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; it is called before any thread
    // but this one allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * 1024);
    }
}

/// Gives the allocator's free pages back to the system. A rebuild follows a backend's lists
/// being read: their parsed form is freed once the catalog holds the tools as text, and glibc
/// would otherwise keep those pages for the life of the process.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of glibc's heap back to the kernel; memory in
    // use is not touched, and it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
