//! The loaded plugins: which of the bundled plugins and the files of the plugins directory
//! are serving, which failed to load and why, and the loop that watches the directory and
//! swaps in a new set.
//!
//! The plugins built into magg ([`super::bundled`]) come first; a file of the same name in the
//! plugins directory replaces one, and a config entry with `enabled: false` turns one off.
//!
//! One loop does every load and unload, so they never race. A change to the directory (a
//! file added, rewritten in place, renamed over, or removed) is debounced, then the directory
//! is rescanned: unchanged files keep their loaded plugin, changed files are compiled off the
//! async executor (or loaded from the disk cache) and instantiated once to validate, and the
//! new set replaces the old one in one atomic swap. A file that fails leaves its previous
//! version serving, and the reason is kept for `magg_status` and the log.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};

use super::{
    AfterText, Decision, FailurePolicy, HookRun, Kind, PluginError, SearchOutcome, ToolCall,
    bindings::{configure, types},
    calls::SpareHook,
    config::{PluginConfig, PluginConfigs},
    instance::{Call, Prepared, Runtime},
};

/// How long the directory must be quiet before a rescan.
const DEBOUNCE: Duration = Duration::from_millis(40);
/// How long a search or a configure suggestion waits for the first load of the plugins.
const FIRST_LOAD_WAIT: Duration = Duration::from_secs(30);

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Built into magg.
    Bundled(&'static [u8]),
    /// A file of the plugins directory.
    File(PathBuf),
}

impl Origin {
    /// `bundled` or `user`, as `magg_status` and `magg plugin list` show it.
    fn as_str(&self) -> &'static str {
        match self {
            Origin::Bundled(_) => "bundled",
            Origin::File(_) => "user",
        }
    }

    /// Its file, or what stands for it.
    fn describe(&self) -> String {
        match self {
            Origin::Bundled(_) => "(built into magg)".to_owned(),
            Origin::File(path) => path.display().to_string(),
        }
    }
}

/// One plugin that is serving.
pub(crate) struct Plugin {
    /// The plugin's name: its file name without `.wasm`.
    pub name: String,
    /// Where it comes from.
    origin: Origin,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time when loaded.
    modified: Option<SystemTime>,
    /// Whether it is a user's file in place of a bundled plugin of the same name.
    replaces_bundled: bool,
    /// Its config entry.
    pub config: Arc<PluginConfig>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) prepared: Arc<Prepared>,
    faults: AtomicU64,
    last_fault: Mutex<Option<String>>,
    /// A routing hook's instance for its next call, made ahead of it (see `calls.rs`).
    pub(crate) spare: Mutex<Option<SpareHook>>,
    /// Whether a spare is being made.
    pub(crate) refilling: AtomicBool,
}

impl Plugin {
    /// The kinds it exports.
    pub fn kinds(&self) -> &[Kind] {
        &self.prepared.kinds
    }

    pub(crate) fn policy(&self, kind: Kind) -> FailurePolicy {
        self.config.policy(kind.default_policy())
    }

    pub(crate) fn record_fault(&self, e: &PluginError) {
        self.faults.fetch_add(1, Ordering::Relaxed);
        crate::metrics::count_plugin_fault(&self.name, e.kind);
        if let Ok(mut last) = self.last_fault.lock() {
            *last = Some(e.detail.clone());
        }
    }

    fn status(&self) -> PluginStatus {
        PluginStatus {
            name: self.name.clone(),
            file: self.origin.describe(),
            origin: self.origin.as_str(),
            replaces_bundled: self.replaces_bundled,
            state: "loaded",
            kinds: self.kinds().iter().map(|k| k.as_str()).collect(),
            sha256: Some(self.prepared.hash.clone()),
            size: Some(self.size),
            from_cache: Some(self.prepared.from_cache),
            error: None,
            faults: self.faults.load(Ordering::Relaxed),
            allow_hosts: self.config.hosts().to_vec(),
            last_fault: self.last_fault.lock().ok().and_then(|l| l.clone()),
        }
    }
}

/// The plugins serving at one moment, in file-name order.
#[derive(Default)]
pub(crate) struct PluginSet {
    plugins: Vec<Arc<Plugin>>,
    /// Whether any plugin is a routing hook: read on every tools/call, so computed once.
    has_hooks: bool,
    /// Whether any plugin is a tool filter.
    has_filters: bool,
}

impl PluginSet {
    fn new(plugins: Vec<Arc<Plugin>>) -> PluginSet {
        let has = |kind| plugins.iter().any(|p| p.kinds().contains(&kind));
        PluginSet {
            has_hooks: has(Kind::RoutingHook),
            has_filters: has(Kind::ToolFilter),
            plugins,
        }
    }

    /// The plugins of `kind`, in file-name order.
    pub(crate) fn of(&self, kind: Kind) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins
            .iter()
            .filter(move |p| p.kinds().contains(&kind))
    }

    /// The filter plugins and their versions, to tell whether the tool list must be rebuilt.
    fn filter_identity(&self) -> Vec<(String, String, usize)> {
        self.of(Kind::ToolFilter)
            .map(|p| {
                (
                    p.name.clone(),
                    p.prepared.hash.clone(),
                    Arc::as_ptr(&p.config) as usize,
                )
            })
            .collect()
    }
}

/// A plugin's state, as `magg_status` and `magg plugin list` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Its file, or `(built into magg)`.
    pub file: String,
    /// `bundled` (built into magg) or `user` (a file of the plugins directory).
    pub origin: &'static str,
    /// Whether a user's file replaces a bundled plugin of the same name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replaces_bundled: bool,
    /// `loaded`, `failed` (no version serving), `failed, previous version serving`, or
    /// `disabled`.
    pub state: &'static str,
    /// The kinds it exports.
    pub kinds: Vec<&'static str>,
    /// SHA-256 of the serving file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size of the serving file in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Whether its compilation came from the disk cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<bool>,
    /// Why the file on disk did not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many calls into it faulted since it loaded.
    pub faults: u64,
    /// The hosts it may send HTTP requests to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// The last fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fault: Option<String>,
}

/// The plugin registry shared by the hub: the serving set and the loader.
pub struct Plugins {
    inner: Arc<Inner>,
}

struct Inner {
    dir: Option<PathBuf>,
    /// The plugins built into magg, by name.
    bundled: Vec<(String, &'static [u8])>,
    cache_dir: Option<PathBuf>,
    runtime: OnceLock<Result<Arc<Runtime>, String>>,
    set: ArcSwap<PluginSet>,
    configs: RwLock<PluginConfigs>,
    /// File name → why it did not load (while the problem lasts).
    errors: Mutex<IndexMap<String, String>>,
    /// Plugins the config disables.
    disabled: Mutex<Vec<String>>,
    /// Bundled plugins waiting for their first use.
    standby: Mutex<Vec<String>>,
    /// Whether the bundled plugins are wanted: set by the first search or suggestion (or
    /// [`Plugins::load_all`]). Until then they cost nothing, neither memory nor start-up time.
    bundled_wanted: AtomicBool,
    ready: watch::Sender<bool>,
    /// Counts the scans done, so that a caller can wait for the one it asked for.
    scans: watch::Sender<u64>,
    rescan: Notify,
}

impl PluginStatus {
    /// The status of a plugin with no version serving.
    fn not_serving(
        name: &str,
        origin: &Origin,
        state: &'static str,
        error: Option<String>,
    ) -> Self {
        PluginStatus {
            name: name.to_owned(),
            file: origin.describe(),
            origin: origin.as_str(),
            replaces_bundled: false,
            state,
            kinds: Vec::new(),
            sha256: None,
            size: None,
            from_cache: None,
            error,
            faults: 0,
            allow_hosts: Vec::new(),
            last_fault: None,
        }
    }
}

impl Plugins {
    /// A registry of the bundled plugins and those of `dir` (none: bundled ones only), with
    /// compiled components cached in `cache_dir`. Nothing is loaded until [`Plugins::start`].
    pub fn new(
        dir: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        configs: PluginConfigs,
    ) -> Plugins {
        let bundled = super::bundled::all();
        let (ready, _) = watch::channel(dir.is_none() && bundled.is_empty());
        Plugins {
            inner: Arc::new(Inner {
                dir,
                bundled,
                cache_dir,
                runtime: OnceLock::new(),
                set: ArcSwap::from_pointee(PluginSet::default()),
                configs: RwLock::new(configs),
                errors: Mutex::new(IndexMap::new()),
                disabled: Mutex::new(Vec::new()),
                standby: Mutex::new(Vec::new()),
                bundled_wanted: AtomicBool::new(false),
                ready,
                scans: watch::channel(0).0,
                rescan: Notify::new(),
            }),
        }
    }

    /// What mounts WebAssembly servers (tool providers): the same engine, linker and compile
    /// cache as the plugins.
    pub fn mounter(&self) -> Arc<dyn crate::backend::component::Mounter> {
        let inner = self.inner.clone();
        Arc::new(super::provider::ProviderMounter::new(Arc::new(move || {
            inner.runtime()
        })))
    }

    /// The plugins directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// Loads the directory and keeps watching it; `on_filters_changed` runs (and is awaited)
    /// whenever the set of tool filters (or one of their versions or configs) changes, before
    /// the first scan counts as done. Must be called inside a Tokio runtime.
    pub fn start<F>(&self, on_filters_changed: impl Fn() -> F + Send + Sync + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.inner.dir.is_none() && self.inner.bundled.is_empty() {
            return;
        }
        let inner = self.inner.clone();
        let (events_tx, events) = mpsc::unbounded_channel();
        let watcher = self
            .inner
            .dir
            .as_deref()
            .and_then(|dir| watch_dir(dir, events_tx));
        tokio::spawn(async move {
            let _watcher = watcher;
            loader(inner, events, on_filters_changed).await;
        });
    }

    /// Takes a new config's `plugins` object; plugins whose entry changed are re-wrapped
    /// (no recompilation) at the next scan, which this triggers.
    pub fn set_configs(&self, configs: PluginConfigs) {
        let changed = match self.inner.configs.write() {
            Ok(mut current) => {
                let changed = *current != configs;
                *current = configs;
                changed
            }
            Err(_) => false,
        };
        if changed {
            self.inner.rescan.notify_one();
        }
    }

    /// Waits (at most `limit`) until the first scan of the directory has finished.
    pub async fn wait_ready(&self, limit: Duration) {
        let mut ready = self.inner.ready.subscribe();
        let _ = tokio::time::timeout(limit, ready.wait_for(|r| *r)).await;
    }

    /// Whether the first scan has finished.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    fn set(&self) -> Arc<PluginSet> {
        self.inner.set.load_full()
    }

    /// Whether any routing hook is loaded (lets the call path skip building a [`ToolCall`]).
    pub fn has_routing_hooks(&self) -> bool {
        self.inner.set.load().has_hooks
    }

    /// Whether any tool filter is loaded.
    pub fn has_filters(&self) -> bool {
        self.inner.set.load().has_filters
    }

    /// Runs the tool filters.
    pub async fn filter_tools(&self, tools: Vec<types::Tool>) -> Vec<types::Tool> {
        self.set().filter(tools).await
    }

    /// Runs the before-call hooks; the returned run carries the hooks that proceeded, for
    /// [`Plugins::after_call`].
    pub async fn before_call(&self, call: ToolCall) -> (Decision, HookRun) {
        let mut run = HookRun::new(self.set());
        let decision = run.before(call).await;
        (decision, run)
    }

    /// Runs the after-call hooks of `run` over a result.
    pub async fn after_call(
        &self,
        run: HookRun,
        call: &ToolCall,
        result: rmcp::model::CallToolResult,
    ) -> rmcp::model::CallToolResult {
        run.after(call, result).await
    }

    /// Runs the before-call hooks on a call whose arguments are JSON text (an object); the
    /// decision's call carries parsed arguments only where a hook rewrote or rerouted it.
    pub async fn before_call_text(
        &self,
        server: &str,
        tool: &str,
        arguments: &str,
    ) -> (Decision, HookRun) {
        let call = ToolCall {
            server: server.to_owned(),
            tool: tool.to_owned(),
            arguments: None,
        };
        let wit = types::ToolCall {
            server: call.server.clone(),
            tool: call.tool.clone(),
            arguments: arguments.to_owned(),
        };
        let mut run = HookRun::new(self.set());
        let decision = run.before_wit(call, wit).await;
        (decision, run)
    }

    /// Runs the after-call hooks of `run` over a result in the WIT's text form.
    pub async fn after_call_text(
        &self,
        run: HookRun,
        call: &ToolCall,
        result: types::CallResult,
    ) -> AfterText {
        run.after_text(call, result).await
    }

    /// The first configure plugin's suggestion for `facts`, with its plugin's name.
    pub async fn suggest(
        &self,
        facts: &configure::SourceFacts,
    ) -> Option<(String, configure::Suggestion)> {
        // Right after magg starts, the plugins may still be compiling, and the bundled ones
        // load on first use: wait for them rather than answer as if there were none.
        self.load_all(FIRST_LOAD_WAIT).await;
        self.set().suggest(facts).await
    }

    /// Every search provider's results for `query`.
    pub async fn search(&self, query: &str, limit: u32) -> Vec<SearchOutcome> {
        self.load_all(FIRST_LOAD_WAIT).await;
        self.set().search(query, limit).await
    }

    /// Whether a tool ranker is loaded.
    pub fn has_ranker(&self) -> bool {
        self.set().of(Kind::ToolRanker).next().is_some()
    }

    /// The first tool ranker's order of `candidates` for `query` (their exposed names, best
    /// first, at most `limit`) and its name; `None` with no ranker, or when it failed (logged).
    pub async fn rank_tools(
        &self,
        query: &str,
        candidates: &[types::Tool],
        limit: u32,
    ) -> Option<(String, Vec<String>)> {
        self.set().rank(query, candidates, limit).await
    }

    /// Loads the bundled plugins too (they wait for their first use) and waits, at most
    /// `limit`, until every plugin has loaded. Cheap once they have.
    pub async fn load_all(&self, limit: Duration) {
        let inner = &self.inner;
        if inner.bundled.is_empty() || inner.bundled_wanted.load(Ordering::Acquire) {
            return self.wait_ready(limit).await;
        }
        let deadline = tokio::time::Instant::now() + limit;
        self.wait_ready(limit).await;
        let mut scans = inner.scans.subscribe();
        let asked = *scans.borrow_and_update();
        inner.bundled_wanted.store(true, Ordering::Release);
        inner.rescan.notify_one();
        let _ = tokio::time::timeout_at(deadline, scans.wait_for(|done| *done > asked)).await;
    }

    /// Every plugin: serving, failed or disabled, in file-name order.
    pub fn status(&self) -> Vec<PluginStatus> {
        let set = self.set();
        let mut out: IndexMap<String, PluginStatus> = set
            .plugins
            .iter()
            .map(|p| (p.name.clone(), p.status()))
            .collect();
        if let Ok(errors) = self.inner.errors.lock() {
            for (name, error) in errors.iter() {
                match out.get_mut(name) {
                    Some(serving) => {
                        serving.state = "failed, previous version serving";
                        serving.error = Some(error.clone());
                    }
                    None => {
                        let origin = self.inner.origin_of(name);
                        out.insert(
                            name.clone(),
                            PluginStatus::not_serving(name, &origin, "failed", Some(error.clone())),
                        );
                    }
                }
            }
        }
        if let Ok(disabled) = self.inner.disabled.lock() {
            for name in disabled.iter() {
                out.entry(name.clone()).or_insert_with(|| {
                    PluginStatus::not_serving(name, &self.inner.origin_of(name), "disabled", None)
                });
            }
        }
        if let Ok(standby) = self.inner.standby.lock() {
            for name in standby.iter() {
                out.entry(name.clone()).or_insert_with(|| {
                    let origin = self.inner.origin_of(name);
                    let mut status = PluginStatus::not_serving(name, &origin, "standby", None);
                    status.kinds = super::bundled::kinds(name);
                    status
                });
            }
        }
        out.sort_keys();
        out.into_values().collect()
    }
}

impl Inner {
    fn runtime(&self) -> Result<Arc<Runtime>, String> {
        self.runtime
            .get_or_init(|| Runtime::new(self.cache_dir.clone()).map(Arc::new))
            .clone()
    }

    /// The config of plugin `name` from `origin`: its entry, and for a bundled plugin whose
    /// entry grants no hosts, the hosts it needs.
    fn config_for(&self, name: &str, origin: &Origin) -> Result<PluginConfig, String> {
        let mut config = match self.configs.read() {
            Ok(configs) => configs.get(name)?,
            Err(_) => PluginConfig::default_for(name),
        };
        if matches!(origin, Origin::Bundled(_)) && config.allow_hosts.is_none() {
            let hosts = super::bundled::default_hosts(name);
            config.allow_hosts = Some(hosts.iter().map(|h| (*h).to_owned()).collect());
        }
        Ok(config)
    }

    /// Where plugin `name` would come from: the plugins directory's file, else the bundled one.
    fn origin_of(&self, name: &str) -> Origin {
        let file = self.dir.as_ref().map(|d| d.join(format!("{name}.wasm")));
        match (file, self.bundled.iter().find(|(n, _)| n == name)) {
            (Some(file), _) if file.is_file() => Origin::File(file),
            (_, Some((_, wasm))) => Origin::Bundled(wasm),
            (Some(file), None) => Origin::File(file),
            (None, None) => Origin::File(PathBuf::new()),
        }
    }

    fn set_error(&self, name: &str, error: Option<String>) {
        if let Ok(mut errors) = self.errors.lock() {
            match error {
                Some(e) => {
                    errors.insert(name.to_owned(), e);
                }
                None => {
                    errors.shift_remove(name);
                }
            }
        }
    }
}

async fn loader<F: Future<Output = ()>>(
    inner: Arc<Inner>,
    mut events: mpsc::UnboundedReceiver<()>,
    on_filters_changed: impl Fn() -> F,
) {
    // Without a directory to watch, only config changes and the bundled plugins' first use
    // start a scan.
    let mut watching = true;
    loop {
        let before = inner.set.load().filter_identity();
        scan(&inner).await;
        if inner.set.load().filter_identity() != before {
            on_filters_changed().await;
        }
        inner.ready.send_replace(true);
        inner.scans.send_modify(|done| *done += 1);
        // Wait for the next reason to scan.
        loop {
            tokio::select! {
                event = events.recv(), if watching => {
                    if event.is_none() {
                        watching = false;
                        continue;
                    }
                    // Debounce: wait until the directory has been quiet for a moment.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, events.recv()).await {}
                    break;
                }
                _ = inner.rescan.notified() => break,
            }
        }
    }
}

/// The plugins to load, in name order: the bundled ones, with the directory's files in
/// place of (or beside) them.
fn sources(inner: &Inner) -> Vec<(String, Origin)> {
    let mut all: IndexMap<String, Origin> = inner
        .bundled
        .iter()
        .map(|(name, wasm)| (name.clone(), Origin::Bundled(wasm)))
        .collect();
    if let Some(dir) = &inner.dir {
        match list_wasm(dir) {
            Ok(files) => {
                for (name, path) in files {
                    all.insert(name, Origin::File(path));
                }
            }
            Err(e) => tracing::warn!("plugins directory {}: {e}", dir.display()),
        }
    }
    all.sort_keys();
    all.into_iter().collect()
}

/// Rescans the directory and swaps in the new set.
async fn scan(inner: &Arc<Inner>) {
    let old = inner.set.load_full();
    let mut next = Vec::new();
    let mut disabled = Vec::new();
    let mut standby = Vec::new();
    let wanted = inner.bundled_wanted.load(Ordering::Acquire);
    let mut seen = Vec::new();
    for (name, origin) in sources(inner) {
        seen.push(name.clone());
        let previous = old.plugins.iter().find(|p| p.name == name).cloned();
        let config = match inner.config_for(&name, &origin) {
            Ok(config) => config,
            Err(problem) => {
                tracing::error!("plugin {name} not loaded: {problem}");
                inner.set_error(&name, Some(problem));
                continue;
            }
        };
        if !config.enabled {
            inner.set_error(&name, None);
            disabled.push(name);
            continue;
        }
        if matches!(origin, Origin::Bundled(_)) && !wanted && previous.is_none() {
            standby.push(name);
            continue;
        }
        match load_one(inner, &name, &origin, previous.as_ref(), config).await {
            Ok(plugin) => {
                inner.set_error(&name, None);
                next.push(plugin);
            }
            Err(problem) => {
                let keeping = previous.is_some();
                tracing::error!(
                    "plugin {name} ({}) did not load: {problem}{}",
                    origin.describe(),
                    if keeping {
                        "; the previous version keeps serving"
                    } else {
                        ""
                    }
                );
                inner.set_error(&name, Some(problem));
                if let Some(previous) = previous {
                    next.push(previous);
                }
            }
        }
    }
    if let Ok(mut errors) = inner.errors.lock() {
        errors.retain(|name, _| seen.contains(name));
    }
    if let Ok(mut d) = inner.disabled.lock() {
        *d = disabled;
    }
    if let Ok(mut s) = inner.standby.lock() {
        *s = standby;
    }
    let changed = next.len() != old.plugins.len()
        || next
            .iter()
            .zip(old.plugins.iter())
            .any(|(a, b)| !Arc::ptr_eq(a, b));
    if changed {
        for plugin in &next {
            if !old.plugins.iter().any(|p| Arc::ptr_eq(p, plugin)) {
                tracing::info!(
                    "plugin {} loaded ({}{}; {} KiB{})",
                    plugin.name,
                    match plugin.origin {
                        Origin::Bundled(_) => "bundled; ",
                        Origin::File(_) => "",
                    },
                    plugin
                        .kinds()
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    plugin.size / 1024,
                    if plugin.prepared.from_cache {
                        ", from cache"
                    } else {
                        ""
                    }
                );
            }
        }
        for plugin in &old.plugins {
            if !next.iter().any(|p| p.name == plugin.name) {
                tracing::info!("plugin {} unloaded", plugin.name);
            }
        }
        inner.set.store(Arc::new(PluginSet::new(next)));
    }
}

fn path_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The plugin from `origin`: the previous one when neither its file nor its config
/// changed, the previous compilation with a new config, or a fresh load.
async fn load_one(
    inner: &Arc<Inner>,
    name: &str,
    origin: &Origin,
    previous: Option<&Arc<Plugin>>,
    config: PluginConfig,
) -> Result<Arc<Plugin>, String> {
    let (size, modified) = match origin {
        Origin::Bundled(wasm) => (wasm.len() as u64, None),
        Origin::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
            (meta.len(), meta.modified().ok())
        }
    };
    // Making the engine reserves the instance pool and builds the linker: work for a
    // blocking thread, not for the runtime that answers clients (`initialize` never waits).
    let runtime = match inner.runtime.get() {
        Some(made) => made.clone()?,
        None => {
            let inner = inner.clone();
            tokio::task::spawn_blocking(move || inner.runtime())
                .await
                .map_err(|e| format!("making the plugin engine panicked: {e}"))??
        }
    };
    let same_file = |p: &Plugin| match (&p.origin, origin) {
        (Origin::Bundled(a), Origin::Bundled(b)) => std::ptr::eq(*a, *b),
        (Origin::File(_), Origin::File(_)) => {
            p.size == size && p.modified == modified && modified.is_some()
        }
        _ => false,
    };
    let prepared = match previous {
        Some(p) if same_file(p) && *p.config == config => return Ok(p.clone()),
        Some(p) if same_file(p) => p.prepared.clone(),
        _ => {
            let origin = origin.clone();
            let name_owned = name.to_owned();
            let rt = runtime.clone();
            let prepared = tokio::task::spawn_blocking(move || match origin {
                Origin::Bundled(wasm) => rt.prepare(&name_owned, wasm),
                Origin::File(path) => {
                    let wasm = std::fs::read(&path).map_err(|e| format!("cannot read it: {e}"))?;
                    rt.prepare(&name_owned, &wasm)
                }
            })
            .await
            .map_err(|e| format!("loading it panicked: {e}"))??;
            if let Some(p) = previous
                && p.prepared.hash == prepared.hash
                && *p.config == config
            {
                return Ok(p.clone());
            }
            Arc::new(prepared)
        }
    };
    if prepared.kinds == [Kind::ToolProvider] {
        return Err(format!(
            "it is a tool provider (world tool-provider-plugin), not a plugin: mount it as a \
             server instead, with {{\"wasm\": \"{}\"}} in the config's servers",
            origin.describe()
        ));
    }
    let config = Arc::new(config);
    // Instantiate once, so a plugin whose start-up traps never serves.
    let kind = prepared
        .exports
        .list()
        .first()
        .copied()
        .unwrap_or(Kind::ToolFilter);
    Call::new(&runtime, &prepared.pre, &config, kind)
        .instantiate()
        .await
        .map_err(|e| format!("it does not start: {}", e.detail))?;
    Ok(Arc::new(Plugin {
        name: name.to_owned(),
        replaces_bundled: matches!(origin, Origin::File(_))
            && inner.bundled.iter().any(|(n, _)| n == name),
        origin: origin.clone(),
        size,
        modified,
        config,
        runtime,
        prepared,
        faults: AtomicU64::new(0),
        last_fault: Mutex::new(None),
        spare: Mutex::new(None),
        refilling: AtomicBool::new(false),
    }))
}

/// The `*.wasm` files of `dir`, sorted by file name, as (plugin name, path).
fn list_wasm(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push((path_name(&path), path));
        }
    }
    files.sort();
    Ok(files)
}

fn watch_dir(dir: &Path, events: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    if !dir.is_dir() {
        tracing::warn!(
            "plugins directory {} does not exist; create it and restart magg to load plugins",
            dir.display()
        );
        return None;
    }
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            let _ = events.send(());
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(mut watcher) => match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => Some(watcher),
            Err(e) => {
                tracing::warn!(
                    "cannot watch plugins directory {}: {e}; plugin changes need a restart",
                    dir.display()
                );
                None
            }
        },
        Err(e) => {
            tracing::warn!("cannot watch plugins directory {}: {e}", dir.display());
            None
        }
    }
}

/// What `magg plugin check` found in a component.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The plugin kinds it exports (a tool provider is [`Kind::ToolProvider`]).
    pub kinds: Vec<Kind>,
    /// Whether its compilation came from the cache.
    pub from_cache: bool,
    /// For a tool provider, its tools: (name, description); for a component of plain
    /// functions, the tools they become.
    pub tools: Vec<(String, Option<String>)>,
    /// Whether it exports no magg interface but plain functions, each a tool when it is
    /// mounted as a server.
    pub plain: bool,
    /// For a component of plain functions, those not offered as tools, with the reason.
    pub skipped: Vec<String>,
    /// The grants its imports let it use, as the config keys that give them
    /// (`grants.http`, `grants.dirs`, `grants.env`).
    pub grants: Vec<&'static str>,
}

/// Loads `path` as `magg plugin check` does: compiles it, links it, instantiates it once (a
/// tool provider is also asked for its tools), and says what it exports and which grants it
/// can use (or what is wrong). Uses (and fills) the compile cache.
pub async fn check_file(path: &Path, cache_dir: Option<PathBuf>) -> Result<Checked, String> {
    let wasm = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path_name(path);
    let runtime = Arc::new(Runtime::new(cache_dir)?);
    let rt = runtime.clone();
    let name_owned = name.clone();
    let (prepared, plain) = tokio::task::spawn_blocking(move || {
        let prepared = rt.prepare_any(&name_owned, &wasm)?;
        let plain = prepared
            .kinds
            .is_empty()
            .then(|| super::plain::PlainTools::read(prepared.pre.component(), &wasm, &name_owned));
        Ok::<_, String>((prepared, plain))
    })
    .await
    .map_err(|e| format!("loading it panicked: {e}"))??;
    let config = Arc::new(PluginConfig::default_for(&name));
    if let Some(plain) = &plain {
        // Checked as a server would mount it: tools offered, and one instance.
        plain.validate(&runtime, &config, &prepared).await?;
    }
    let kinds = prepared.kinds.clone();
    let kind = kinds.first().copied().unwrap_or(Kind::ToolFilter);
    Call::new(&runtime, &prepared.pre, &config, kind)
        .instantiate()
        .await
        .map_err(|e| format!("it does not start: {}", e.detail))?;
    let tools = if let Some(plain) = &plain {
        plain
            .tools
            .iter()
            .map(|t| (t.name.clone(), Some(t.description.clone())))
            .collect()
    } else if kinds.contains(&Kind::ToolProvider) {
        super::provider::tool_specs(&runtime, &config, &prepared)
            .await
            .map_err(|e| format!("list-tools failed: {}", e.detail))?
            .into_iter()
            .map(|t| (t.name, t.description))
            .collect()
    } else {
        Vec::new()
    };
    let grants = super::provider::usable_grants(&prepared);
    Ok(Checked {
        kinds,
        from_cache: prepared.from_cache,
        tools,
        plain: plain.is_some(),
        skipped: plain
            .map(|p| p.skipped.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        grants,
    })
}
