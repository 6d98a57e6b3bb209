//! The WebAssembly runtime: one `Engine` for the process, the `Linker` every plugin is
//! instantiated with, compiled components cached on disk, and how one call runs.
//!
//! Each call gets a fresh `Store` (so a plugin keeps no state between calls, and one fault
//! cannot poison the next call) with a memory limit and a deadline. The deadline is enforced
//! with epoch interruption: a ticker thread advances the engine's epoch every
//! [`TICK`]; at each tick a running call yields to the async executor, letting it poll for
//! I/O and run every other ready task first (so a plugin that loops never stalls magg's other
//! work), and traps once its time is up.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::Digest;
use wasmtime::{
    Config, Engine, ResourceLimiter, Store, UpdateDeadline,
    component::{Component, Instance, InstancePre, Linker, ResourceTable},
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView, p2::pipe::MemoryOutputPipe};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::{
    Kind, PluginError,
    bindings::{configure, routing_hook, search_provider, tool_filter, tool_provider, tool_ranker},
    config::{self, PluginConfig},
};

/// How often the engine's epoch advances.
pub const TICK: Duration = Duration::from_millis(5);

/// How much of a plugin's stderr is kept to explain a trap.
const STDERR_KEEP: usize = 4096;

/// What a call's store holds: the plugin's config and its sandboxed WASI state.
pub(crate) struct HostState {
    config: Arc<PluginConfig>,
    /// The WASI context and the stderr it writes to, made the first time the guest uses
    /// WASI (most hook calls never do).
    wasi: Option<(WasiCtx, MemoryOutputPipe)>,
    table: ResourceTable,
    http: WasiHttpCtx,
    grants: Grants,
    limits: Limits,
    deadline: Instant,
    timeout: Duration,
    timed_out: bool,
}

impl HostState {
    fn new(config: Arc<PluginConfig>, timeout: Duration) -> HostState {
        HostState {
            limits: Limits {
                max_memory: config.memory_bytes(),
                hit: false,
            },
            grants: Grants {
                config: config.clone(),
                denied: Vec::new(),
            },
            config,
            wasi: None,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            deadline: Instant::now() + timeout,
            timeout,
            timed_out: false,
        }
    }

    /// What the guest wrote to stderr, trimmed.
    fn stderr(&self) -> String {
        match &self.wasi {
            Some((_, stderr)) => String::from_utf8_lossy(&stderr.contents())
                .trim()
                .to_owned(),
            None => String::new(),
        }
    }

    /// The plugin's setting `key`.
    pub(crate) fn setting(&self, key: &str) -> Option<String> {
        self.config.setting(key)
    }

    /// The plugin's name, for logs.
    pub(crate) fn plugin_name(&self) -> &str {
        &self.config.name
    }

    /// The hosts of the HTTP requests this call was refused.
    pub(crate) fn denied_hosts(&self) -> &[String] {
        &self.grants.denied
    }
}

/// A plugin's WASI context and the stderr it writes to. Deny by default: no preopened
/// directories, no environment, no arguments, no sockets; stdout is discarded (it is magg's
/// MCP channel) and stderr is kept to explain a failure. A WebAssembly server gets the
/// directories (read-only unless granted write) and environment variables its entry grants.
fn new_wasi(config: &PluginConfig) -> (WasiCtx, MemoryOutputPipe) {
    use wasmtime_wasi::FsPerms;
    let stderr = MemoryOutputPipe::new(STDERR_KEEP);
    let mut builder = WasiCtx::builder();
    builder.stderr(stderr.clone());
    if let Some(server) = &config.server {
        for (name, value) in &server.env {
            builder.env(name, value);
        }
        for (dir, write) in &server.dirs {
            let perms = if *write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            let guest = dir.to_string_lossy();
            if let Err(e) = builder.preopened_dir(dir, guest.as_ref(), perms) {
                tracing::warn!(server = %config.name, "cannot open granted directory {}: {e:#}", dir.display());
            }
        }
    }
    (builder.build(), stderr)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let HostState {
            wasi,
            table,
            config,
            ..
        } = self;
        let (ctx, _) = wasi.get_or_insert_with(|| new_wasi(config));
        WasiCtxView { ctx, table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.grants,
        }
    }
}

/// The HTTP grants of one plugin: requests go only to the hosts its config allows.
struct Grants {
    config: Arc<PluginConfig>,
    /// The hosts of the requests refused in this call.
    denied: Vec<String>,
}

impl WasiHttpHooks for Grants {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        let _ = fut;
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        if !self.config.allows_host(&host, uri.port_u16()) {
            // The path without its query, which may carry a key.
            let key = self.config.key("allow_hosts");
            tracing::warn!(
                plugin = %self.config.name,
                "HTTP request to {host}{} denied: {host} is not in {key}",
                uri.path(),
            );
            self.denied.push(host);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(super::outgoing::send(request, options))
    }
}

/// The memory limit of one call; records when the plugin hit it.
struct Limits {
    max_memory: usize,
    hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The engine, the linker and the compile cache.
pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
}

impl Runtime {
    /// Makes the engine (Cranelift, parallel compilation, epoch interruption) and the linker
    /// (WASI preview 2 without any grants, `wasi:http` filtered by host grants, and magg's
    /// host interface), and starts the epoch ticker.
    pub(crate) fn new(cache_dir: Option<PathBuf>) -> Result<Runtime, String> {
        let engine = match Engine::new(&engine_config(true)) {
            Ok(engine) => engine,
            Err(e) => {
                // The pool reserves address space up front; where that is refused (a tight
                // `ulimit -v`), plugins still run, allocating per call.
                tracing::warn!(
                    "plugin instance pool unavailable ({e:#}); allocating plugin memory per call"
                );
                Engine::new(&engine_config(false)).map_err(|e| format!("wasmtime engine: {e:#}"))?
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| super::bindings::add_to_linker(&mut linker))
            .map_err(|e| format!("plugin linker: {e:#}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("magg-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| format!("plugin epoch thread: {e}"))?;
        Ok(Runtime {
            engine,
            linker,
            cache_dir,
        })
    }

    /// Compiles `wasm` (or loads it from the cache) and checks that it links and exports at
    /// least one plugin interface. Blocking: run it off the async executor.
    pub(crate) fn prepare(&self, name: &str, wasm: &[u8]) -> Result<Prepared, String> {
        let prepared = self.prepare_any(name, wasm)?;
        if prepared.kinds.is_empty() {
            return Err(Kinds::none(&prepared.pre));
        }
        Ok(prepared)
    }

    /// As [`Runtime::prepare`], but a component that exports no plugin interface loads too
    /// (with no kinds): a server's component may export plain functions instead.
    pub(crate) fn prepare_any(&self, name: &str, wasm: &[u8]) -> Result<Prepared, String> {
        if wasm.get(..4) != Some(b"\0asm") {
            return Err("not a WebAssembly file (it does not start with \\0asm)".to_owned());
        }
        let hash = hex(&sha2::Sha256::digest(wasm));
        let (component, from_cache) = self.compile_cached(name, wasm, &hash)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "it imports something magg does not offer plugins (only magg:plugin/host, \
                 WASI without files, sockets or environment, and wasi:http): {e:#}"
            )
        })?;
        let exports = Kinds::read(&pre)?;
        Ok(Prepared {
            hash,
            from_cache,
            pre,
            kinds: exports.list(),
            exports,
        })
    }

    fn compile_cached(
        &self,
        name: &str,
        wasm: &[u8],
        hash: &str,
    ) -> Result<(Component, bool), String> {
        let cached = self.cache_path(hash);
        if let Some(path) = &cached
            && path.exists()
        {
            // SAFETY: the file was written by `precompile_component` of an engine with the
            // same compatibility hash (it is in the file name), atomically, by magg itself.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => tracing::warn!(
                    "plugin {name}: cached compilation {} is unusable ({e:#}); recompiling",
                    path.display()
                ),
            }
        }
        let started = Instant::now();
        let serialized = self
            .engine
            .precompile_component(wasm)
            .map_err(|e| format!("it is not a valid WebAssembly component: {e:#}"))?;
        tracing::info!(
            "plugin {name}: compiled {} KiB in {} ms",
            wasm.len() / 1024,
            started.elapsed().as_millis()
        );
        if let Some(path) = &cached
            && let Err(e) = write_cache(path, &serialized)
        {
            tracing::warn!("plugin {name}: could not cache the compilation: {e}");
        }
        // SAFETY: the bytes were produced just above by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &serialized) }
            .map_err(|e| format!("compiled component does not load: {e:#}"))?;
        Ok((component, false))
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        Some(dir.join(format!("{}-{:016x}.cwasm", &hash[..32], h.finish())))
    }

    /// A fresh store for one call of `kind`, with the plugin's limits and deadline.
    fn store(&self, config: &Arc<PluginConfig>, kind: Kind) -> Store<HostState> {
        let timeout = config.timeout(kind.default_timeout_ms());
        let mut store = Store::new(&self.engine, HostState::new(config.clone(), timeout));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= ctx.data().deadline {
                ctx.data_mut().timed_out = true;
                return Err(wasmtime::format_err!("time limit reached"));
            }
            // A future that lets the scheduler poll for I/O, not `UpdateDeadline::Yield`:
            // that wakes the task at once, and a task that is always ready keeps tokio's
            // current-thread scheduler from polling for I/O (it does so only every
            // `event_interval` polls: 61 ticks, ≈ 300 ms), so every other request would stall
            // behind a looping plugin.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(give_way())))
        });
        store
    }
}

/// How many times a guest running past a tick lets every other ready task run: a request
/// passes through a few tasks (a transport's reader, the MCP service, a writer), each woken by
/// the one before, so a few rounds let it through before the guest's next tick of time.
const ROUNDS_PER_TICK: usize = 8;

/// What a call running past a tick awaits: [`ROUNDS_PER_TICK`] times, `yield_now`, which
/// wakes the call only after the runtime has polled for I/O and run every task that was ready.
/// Each round costs a non-blocking poll of the I/O driver (microseconds) once per tick, and
/// only for a guest that runs that long.
async fn give_way() {
    for _ in 0..ROUNDS_PER_TICK {
        tokio::task::yield_now().await;
    }
}

/// How many plugin instances may be alive at once when pooled: every routing hook of every
/// call in flight holds one until its after-call is done.
const POOL_INSTANCES: u32 = 1000;

/// The engine's configuration. With `pooled`, instances come from a pool of reserved slots
/// (memories, tables, stacks) that are reset and reused rather than mapped and unmapped on
/// every call: per-call instantiation drops from tens of microseconds to a few.
fn engine_config(pooled: bool) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true);
    if pooled {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            // Python and JavaScript components hold several core instances each.
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 2)
            .total_stacks(POOL_INSTANCES)
            .table_elements(100_000)
            .max_memory_size((config::MAX_MEMORY_MB as usize) << 20)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            // Keep a few warm slots per plugin, not hundreds: each slot keeps its pages.
            .max_unused_warm_slots(16)
            // On reuse, the pages a call dirtied (found with PAGEMAP_SCAN where the kernel
            // has it) are reset with memset, up to this much, instead of being given back to
            // the kernel and faulted in again by the next call.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn write_cache(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A compiled, linked component and the plugin interfaces it exports.
pub(crate) struct Prepared {
    /// SHA-256 of the wasm file, hex.
    pub hash: String,
    /// Whether the compilation came from the disk cache.
    pub from_cache: bool,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) exports: Kinds,
    /// The kinds it exports, listed once at load.
    pub(crate) kinds: Vec<Kind>,
}

/// The plugin interfaces a component exports, with what is needed to call each.
#[derive(Default)]
pub(crate) struct Kinds {
    pub(crate) filter: Option<tool_filter::GuestIndices>,
    pub(crate) hook: Option<routing_hook::GuestIndices>,
    pub(crate) configure: Option<configure::GuestIndices>,
    pub(crate) search: Option<search_provider::GuestIndices>,
    pub(crate) provider: Option<tool_provider::GuestIndices>,
    pub(crate) ranker: Option<tool_ranker::GuestIndices>,
}

impl Kinds {
    fn read(pre: &InstancePre<HostState>) -> Result<Kinds, String> {
        let component = pre.component();
        let engine = component.engine();
        let names: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let has = |kind: Kind| names.iter().any(|n| kind.matches_export(n));
        let shape = |kind: Kind, e: wasmtime::Error| {
            format!(
                "it exports {} but not in the shape of wit/plugin.wit (magg:plugin@0.2.0, or \
                 0.1.0 for the kinds it has): {e:#}",
                kind.interface()
            )
        };
        let mut kinds = Kinds::default();
        if has(Kind::ToolFilter) {
            kinds.filter = Some(
                tool_filter::GuestIndices::new(pre, &names)
                    .map_err(|e| shape(Kind::ToolFilter, e))?,
            );
        }
        if has(Kind::RoutingHook) {
            kinds.hook = Some(
                routing_hook::GuestIndices::new(pre, &names)
                    .map_err(|e| shape(Kind::RoutingHook, e))?,
            );
        }
        if has(Kind::Configure) {
            kinds.configure = Some(
                configure::GuestIndices::new(pre, &names).map_err(|e| shape(Kind::Configure, e))?,
            );
        }
        if has(Kind::SearchProvider) {
            kinds.search = Some(
                search_provider::GuestIndices::new(pre, &names)
                    .map_err(|e| shape(Kind::SearchProvider, e))?,
            );
        }
        if has(Kind::ToolProvider) {
            kinds.provider = Some(
                tool_provider::GuestIndices::new(pre).map_err(|e| shape(Kind::ToolProvider, e))?,
            );
        }
        if has(Kind::ToolRanker) {
            kinds.ranker =
                Some(tool_ranker::GuestIndices::new(pre).map_err(|e| shape(Kind::ToolRanker, e))?);
        }
        Ok(kinds)
    }

    /// Why a component that exports no plugin interface is no plugin.
    fn none(pre: &InstancePre<HostState>) -> String {
        let component = pre.component();
        let ty = component.component_type();
        let names: Vec<&str> = ty
            .exports(component.engine())
            .map(|(name, _)| name)
            .collect();
        format!(
            "it exports no magg plugin interface (it exports: {}); a plugin exports one of \
             magg:plugin/tool-filter, routing-hook, configure, search-provider, \
             tool-ranker or tool-provider @0.2.0",
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        )
    }

    /// The kinds present.
    pub(crate) fn list(&self) -> Vec<Kind> {
        let mut out = Vec::new();
        if self.filter.is_some() {
            out.push(Kind::ToolFilter);
        }
        if self.hook.is_some() {
            out.push(Kind::RoutingHook);
        }
        if self.configure.is_some() {
            out.push(Kind::Configure);
        }
        if self.search.is_some() {
            out.push(Kind::SearchProvider);
        }
        if self.provider.is_some() {
            out.push(Kind::ToolProvider);
        }
        if self.ranker.is_some() {
            out.push(Kind::ToolRanker);
        }
        out
    }
}

/// Runs one call: a fresh instance, the guest function, and the store's view of what went
/// wrong if it failed.
pub(crate) struct Call<'a> {
    runtime: &'a Runtime,
    pre: &'a InstancePre<HostState>,
    config: &'a Arc<PluginConfig>,
    kind: Kind,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        runtime: &'a Runtime,
        pre: &'a InstancePre<HostState>,
        config: &'a Arc<PluginConfig>,
        kind: Kind,
    ) -> Call<'a> {
        Call {
            runtime,
            pre,
            config,
            kind,
        }
    }

    /// A fresh store and instance.
    pub(crate) async fn instantiate(&self) -> Result<(Store<HostState>, Instance), PluginError> {
        let mut store = self.runtime.store(self.config, self.kind);
        match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(self.fault(&store, e)),
        }
    }

    /// Readies a store made ahead of its call: the whole time limit from now, and the epoch
    /// deadline one tick from now (not from when the store was made).
    pub(crate) fn ready(store: &mut Store<HostState>) {
        Call::restart_clock(store);
        store.set_epoch_deadline(1);
    }

    /// Gives the next guest call in `store` the whole time limit again.
    pub(crate) fn restart_clock(store: &mut Store<HostState>) {
        let state = store.data_mut();
        state.deadline = Instant::now() + state.timeout;
    }

    /// The time limit of this call, as configured.
    pub(crate) fn limit(&self) -> Duration {
        self.config.timeout(self.kind.default_timeout_ms())
    }

    /// The time limit of this call (with a little slack for the epoch tick), for an outer
    /// timeout around host calls that do not return to the guest (HTTP).
    pub(crate) fn wall_limit(&self) -> Duration {
        self.limit() + TICK * 4
    }

    /// Turns a wasmtime error into a [`PluginError`] that says what happened.
    pub(crate) fn fault(&self, store: &Store<HostState>, e: wasmtime::Error) -> PluginError {
        let state = store.data();
        let stderr = state.stderr();
        let detail = if state.timed_out {
            format!(
                "ran past its time limit of {} ms (set {} to change it)",
                self.config
                    .timeout(self.kind.default_timeout_ms())
                    .as_millis(),
                self.config.key("timeout_ms")
            )
        } else if state.limits.hit {
            format!(
                "ran out of memory: it asked for more than its limit of {} MiB (set {} to \
                 change it)",
                self.config.memory_bytes() >> 20,
                self.config.key("memory_mb")
            )
        } else if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            format!("trapped ({trap})")
        } else {
            format!("failed: {e:#}")
        };
        let detail = if stderr.is_empty() {
            detail
        } else {
            format!("{detail}; it wrote: {stderr}")
        };
        PluginError::new(&self.config.name, self.kind, detail)
    }

    /// A [`PluginError`] for output magg cannot use.
    pub(crate) fn bad_output(&self, what: impl std::fmt::Display) -> PluginError {
        PluginError::new(
            &self.config.name,
            self.kind,
            format!("returned something magg cannot use: {what}"),
        )
    }
}
