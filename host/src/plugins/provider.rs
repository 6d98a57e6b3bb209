//! Tool providers mounted as servers: the WebAssembly side of a server entry whose source is a
//! `.wasm` component (see [`crate::backend::component`] for the backend side).
//!
//! A mount holds the component's current version (its compilation, from the plugins' engine
//! and disk cache, and its tools) in an `ArcSwap`. Each call takes the version serving when it
//! starts and runs in a fresh instance of it, within the server's memory and time limits and
//! with its grants, so calls in flight finish on the version they started on. A debounced
//! watch on the file compiles a new version off the request path and validates it (one
//! instance, `list-tools`) before swapping it in; a file that does not load leaves the old
//! version serving, with the reason in the log and in `magg_status`.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wasmtime::Store;

use super::{
    Kind, PluginError,
    bindings::tool_provider,
    calls::mcp_result,
    config::{PluginConfig, ServerGrants},
    instance::{Call, HostState, Prepared, Runtime},
    plain::PlainTools,
};
use crate::{
    backend::component::{Mount, Mounter},
    config::ServerConfig,
    mcp::{ToolText, error_result},
};

/// How long the component's file must be quiet before it is reloaded.
const DEBOUNCE: Duration = Duration::from_millis(40);

/// Makes the plugins' runtime (engine, linker, compile cache) on first use.
pub(crate) type RuntimeSource = Arc<dyn Fn() -> Result<Arc<Runtime>, String> + Send + Sync>;

/// Mounts component servers on the plugins' runtime.
pub(crate) struct ProviderMounter {
    runtime: RuntimeSource,
}

impl ProviderMounter {
    pub(crate) fn new(runtime: RuntimeSource) -> ProviderMounter {
        ProviderMounter { runtime }
    }
}

impl Mounter for ProviderMounter {
    fn mount(&self, server: &ServerConfig) -> BoxFuture<'static, Result<Arc<dyn Mount>, String>> {
        let runtime = self.runtime.clone();
        let server = server.clone();
        Box::pin(async move {
            let runtime = tokio::task::spawn_blocking(move || runtime())
                .await
                .map_err(|e| format!("making the WebAssembly engine panicked: {e}"))??;
            let provider = Provider::mount(runtime, &server).await?;
            Ok(provider as Arc<dyn Mount>)
        })
    }
}

/// The plugin-style config (name, hosts, limits) that carries a server entry's grants.
fn grants_config(server: &ServerConfig) -> Result<PluginConfig, String> {
    let grants = server.grants.clone().unwrap_or_default();
    let mut dirs = Vec::new();
    for dir in grants.dirs_from(&server.base_dir) {
        if !dir.path.is_dir() {
            return Err(format!(
                "granted directory {} does not exist (servers.{}.grants.dirs); create it or \
                 remove it from the grants",
                dir.path.display(),
                server.name
            ));
        }
        dirs.push((dir.path, dir.write));
    }
    let env = grants
        .env
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    Ok(PluginConfig {
        name: server.name.clone(),
        enabled: true,
        settings: Map::new(),
        allow_hosts: Some(grants.http.clone()),
        memory_mb: grants.memory_mb,
        timeout_ms: grants.timeout_ms,
        on_error: None,
        server: Some(ServerGrants { dirs, env }),
    })
}

/// One version of a mounted component.
struct Version {
    prepared: Arc<Prepared>,
    /// The tools of a component that exports plain functions instead of a tool provider.
    plain: Option<PlainTools>,
    tools: Arc<Vec<ToolText>>,
    size: u64,
    modified: Option<SystemTime>,
    /// An instance made ahead of the next call, which takes it (no call ever uses one twice).
    spare: Mutex<Option<Spare>>,
    /// Whether a spare is being made.
    refilling: AtomicBool,
}

/// A fresh instance waiting for its call.
struct Spare {
    store: Store<HostState>,
    guest: tool_provider::Guest,
}

/// A mounted component server.
pub(crate) struct Provider {
    name: String,
    file: PathBuf,
    config: Arc<PluginConfig>,
    runtime: Arc<Runtime>,
    current: ArcSwap<Version>,
    /// Why the file on disk does not serve, while that lasts.
    last_error: Mutex<Option<String>>,
    /// How many times a new version was swapped in.
    reloads: AtomicU64,
    changes: watch::Sender<u64>,
    /// Ends the file watch when the mount goes.
    stop: CancellationToken,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("file", &self.file)
            .finish()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Provider {
    async fn mount(runtime: Arc<Runtime>, server: &ServerConfig) -> Result<Arc<Provider>, String> {
        let file = server
            .component
            .clone()
            .ok_or_else(|| "the server entry names no .wasm file".to_owned())?;
        let config = Arc::new(grants_config(server)?);
        let version = load(&runtime, &config, &file).await?;
        if usable_grants(&version.prepared).contains(&"grants.http") && config.hosts().is_empty() {
            tracing::info!(
                server = %server.name,
                "the component can make HTTP requests, and servers.{}.grants.http grants no \
                 host: every request it makes is refused until a host is added there",
                server.name
            );
        }
        let provider = Arc::new(Provider {
            name: server.name.clone(),
            file,
            config,
            runtime,
            current: ArcSwap::from_pointee(version),
            last_error: Mutex::new(None),
            reloads: AtomicU64::new(0),
            changes: watch::Sender::new(0),
            stop: CancellationToken::new(),
        });
        watch_file(&provider);
        Ok(provider)
    }

    /// Loads the file again; swaps the new version in, or keeps the old one and says why.
    async fn reload(&self) {
        let current = self.current.load_full();
        let meta = std::fs::metadata(&self.file).ok();
        let (size, modified) = (
            meta.as_ref().map(|m| m.len()),
            meta.as_ref().and_then(|m| m.modified().ok()),
        );
        if size == Some(current.size) && modified.is_some() && modified == current.modified {
            return;
        }
        let started = Instant::now();
        match load(&self.runtime, &self.config, &self.file).await {
            Ok(version) if version.prepared.hash == current.prepared.hash => {
                self.current.store(Arc::new(version));
                self.set_error(None);
            }
            Ok(version) => {
                let tools = version.tools.len();
                self.current.store(Arc::new(version));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                self.set_error(None);
                tracing::info!(
                    server = %self.name,
                    tools,
                    "component {} replaced in {} ms",
                    self.file.display(),
                    started.elapsed().as_millis()
                );
            }
            Err(problem) => {
                tracing::error!(
                    server = %self.name,
                    "component {} did not load: {problem}; the previous version keeps serving",
                    self.file.display()
                );
                self.set_error(Some(problem));
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }
}

impl Mount for Provider {
    fn tools(&self) -> Arc<Vec<ToolText>> {
        self.current.load().tools.clone()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn call(&self, tool: &str, arguments: String) -> BoxFuture<'static, CallToolResult> {
        let version = self.current.load_full();
        let runtime = self.runtime.clone();
        let config = self.config.clone();
        let tool = tool.to_owned();
        Box::pin(async move {
            let call = Call::new(&runtime, &version.prepared.pre, &config, Kind::ToolProvider);
            let wall = call.wall_limit();
            // A component of plain functions is instantiated by its call (no spares yet).
            let spare = if version.plain.is_none() {
                let spare = version.spare.lock().ok().and_then(|mut spare| spare.take());
                refill(&version, &runtime, &config);
                spare
            } else {
                None
            };
            let run = call_once(&call, &version, spare, &config.name, &tool, &arguments);
            let outcome = match tokio::time::timeout(wall, run).await {
                Ok(outcome) => outcome,
                Err(_) => Err(PluginError {
                    plugin: config.name.clone(),
                    kind: Kind::ToolProvider.as_str(),
                    detail: format!(
                        "ran past its time limit of {} ms waiting on the network (set {} to \
                         change it)",
                        call.limit().as_millis(),
                        config.key("timeout_ms")
                    ),
                }),
            };
            match outcome {
                Ok((mut result, denied)) => {
                    if !denied.is_empty() {
                        result.content.push(rmcp::model::ContentBlock::text(format!(
                            "magg refused this call's HTTP request to {}: the server is not \
                             granted that host. To allow it, add it to {} in magg's config.",
                            denied.join(", "),
                            config.key("allow_hosts")
                        )));
                    }
                    result
                }
                Err(e) => error_result(format!(
                    "Server `{}` (WebAssembly) {} while running `{tool}`; the call was ended and \
                     the server keeps serving.",
                    config.name, e.detail
                )),
            }
        })
    }

    fn status(&self) -> Value {
        let current = self.current.load();
        let grants = json!({
            "http": self.config.hosts(),
            "dirs": self.config.server.as_ref().map(|s| s.dirs.iter().map(|(d, w)| json!({"path": d.display().to_string(), "write": w})).collect::<Vec<_>>()).unwrap_or_default(),
            "env": self.config.server.as_ref().map(|s| s.env.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()).unwrap_or_default(),
            "memory_mb": self.config.memory_bytes() >> 20,
            "timeout_ms": self.config.timeout(Kind::ToolProvider.default_timeout_ms()).as_millis() as u64,
        });
        let mut out = json!({
            "exports": if current.plain.is_some() { "plain functions" } else { "tool-provider" },
            "file": self.file.display().to_string(),
            "can_use": usable_grants(&current.prepared),
            "sha256": current.prepared.hash,
            "size": current.size,
            "from_cache": current.prepared.from_cache,
            "reloads": self.reloads.load(Ordering::Relaxed),
            "grants": grants,
        });
        if let (Some(plain), Some(obj)) = (&current.plain, out.as_object_mut())
            && !plain.skipped.is_empty()
        {
            let skipped: Vec<String> = plain.skipped.iter().map(|s| s.to_string()).collect();
            obj.insert("skipped".into(), json!(skipped));
        }
        if let Some(error) = self.last_error.lock().ok().and_then(|e| e.clone())
            && let Some(obj) = out.as_object_mut()
        {
            obj.insert("state".into(), json!("failed, previous version serving"));
            obj.insert("error".into(), json!(error));
        }
        out
    }
}

/// One call in a fresh instance (the spare made for it, or a new one): the result, and the
/// hosts its HTTP requests were refused.
async fn call_once(
    call: &Call<'_>,
    version: &Version,
    spare: Option<Spare>,
    server: &str,
    tool: &str,
    arguments: &str,
) -> Result<(CallToolResult, Vec<String>), PluginError> {
    if let Some(plain) = &version.plain {
        return plain.call_in(call, tool, arguments).await;
    }
    let Spare { mut store, guest } = match spare {
        Some(mut spare) => {
            Call::ready(&mut spare.store);
            spare
        }
        None => new_instance(call, &version.prepared).await?,
    };
    let result = guest
        .call_call_tool(&mut store, tool, arguments)
        .await
        .map_err(|e| call.fault(&store, e))?;
    let result = mcp_result(result, None).unwrap_or_else(|e| {
        error_result(format!(
            "Server `{server}` (WebAssembly) returned something magg cannot use: {e}"
        ))
    });
    Ok((result, store.data().denied_hosts().to_vec()))
}

/// A fresh instance of the component `prepared`.
async fn new_instance(call: &Call<'_>, prepared: &Prepared) -> Result<Spare, PluginError> {
    let (mut store, instance) = call.instantiate().await?;
    let exports = prepared
        .exports
        .provider
        .as_ref()
        .ok_or_else(|| call.bad_output("it exports no tool-provider"))?;
    let guest = exports
        .load(&mut store, &instance)
        .map_err(|e| call.fault(&store, e))?;
    Ok(Spare { store, guest })
}

/// Makes `version`'s next spare instance in a task of its own, unless one is on its way: it
/// is made while the call that took the last one runs, or after it.
fn refill(version: &Arc<Version>, runtime: &Arc<Runtime>, config: &Arc<PluginConfig>) {
    if version.refilling.swap(true, Ordering::AcqRel) {
        return;
    }
    let (version, runtime, config) = (version.clone(), runtime.clone(), config.clone());
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        let call = Call::new(&runtime, &version.prepared.pre, &config, Kind::ToolProvider);
        match new_instance(&call, &version.prepared).await {
            Ok(spare) => {
                if let Ok(mut slot) = version.spare.lock() {
                    *slot = Some(spare);
                }
            }
            // The next call makes its own and meets the same fault there.
            Err(e) => tracing::debug!("{e} (making a spare instance)"),
        }
        version.refilling.store(false, Ordering::Release);
    });
}

/// The grants a component's imports let it use, as the keys of a server entry that give
/// them (`grants.http`, `grants.dirs`, `grants.env`).
pub(crate) fn usable_grants(prepared: &Prepared) -> Vec<&'static str> {
    let component = prepared.pre.component();
    let imports: Vec<String> = component
        .component_type()
        .imports(component.engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    let imports_any = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
    [
        ("wasi:http/outgoing-handler", "grants.http"),
        ("wasi:filesystem/preopens", "grants.dirs"),
        ("wasi:cli/environment", "grants.env"),
    ]
    .into_iter()
    .filter(|(import, _)| imports_any(import))
    .map(|(_, grant)| grant)
    .collect()
}

/// Reads, compiles (or takes from the cache) and validates the component at `file`.
async fn load(
    runtime: &Arc<Runtime>,
    config: &Arc<PluginConfig>,
    file: &Path,
) -> Result<Version, String> {
    let meta =
        std::fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (size, modified) = (meta.len(), meta.modified().ok());
    let rt = runtime.clone();
    let path = file.to_owned();
    let name = config.name.clone();
    let (prepared, plain) = tokio::task::spawn_blocking(move || {
        let wasm =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let prepared = rt.prepare_any(&name, &wasm)?;
        // No magg interface: its plain exported functions are its tools.
        let plain = prepared
            .kinds
            .is_empty()
            .then(|| PlainTools::read(prepared.pre.component(), &wasm, &name));
        Ok::<_, String>((prepared, plain))
    })
    .await
    .map_err(|e| format!("loading it panicked: {e}"))??;
    if let Some(plain) = plain {
        let tools = plain.validate(runtime, config, &prepared).await?;
        return Ok(Version {
            prepared: Arc::new(prepared),
            plain: Some(plain),
            tools: Arc::new(tools),
            size,
            modified,
            spare: Mutex::new(None),
            refilling: AtomicBool::new(false),
        });
    }
    if prepared.exports.provider.is_none() {
        return Err(format!(
            "it is not a tool provider: it exports {}, not {} (world tool-provider-plugin); \
             a plugin of another kind goes in the plugins directory",
            prepared
                .kinds
                .iter()
                .map(|k| k.interface())
                .collect::<Vec<_>>()
                .join(", "),
            Kind::ToolProvider.interface()
        ));
    }
    let tools = list_tools(runtime, config, &prepared).await?;
    Ok(Version {
        prepared: Arc::new(prepared),
        plain: None,
        tools: Arc::new(tools),
        size,
        modified,
        spare: Mutex::new(None),
        refilling: AtomicBool::new(false),
    })
}

/// Instantiates the component once and reads its tools, as MCP tools.
async fn list_tools(
    runtime: &Runtime,
    config: &Arc<PluginConfig>,
    prepared: &Prepared,
) -> Result<Vec<ToolText>, String> {
    let specs = tool_specs(runtime, config, prepared)
        .await
        .map_err(|e| format!("list-tools failed: {}", e.detail))?;
    let mut tools = Vec::with_capacity(specs.len());
    for spec in specs {
        tools.push(tool_text(&spec)?);
    }
    Ok(tools)
}

/// The component's `list-tools`, in a fresh instance.
pub(crate) async fn tool_specs(
    runtime: &Runtime,
    config: &Arc<PluginConfig>,
    prepared: &Prepared,
) -> Result<Vec<tool_provider::ToolSpec>, PluginError> {
    let call = Call::new(runtime, &prepared.pre, config, Kind::ToolProvider);
    let Spare { mut store, guest } = new_instance(&call, prepared).await?;
    guest
        .call_list_tools(&mut store)
        .await
        .map_err(|e| call.fault(&store, e))
}

/// A tool spec as an MCP tool's JSON; its schemas and annotations must be JSON objects.
fn tool_text(spec: &tool_provider::ToolSpec) -> Result<ToolText, String> {
    let object = |what: &str, text: &str| -> Result<Value, String> {
        match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(format!(
                "tool `{}`: its {what} is not a JSON object",
                spec.name
            )),
            Err(e) => Err(format!(
                "tool `{}`: its {what} is not JSON ({e})",
                spec.name
            )),
        }
    };
    let mut tool = Map::new();
    tool.insert("name".into(), json!(spec.name));
    if let Some(title) = &spec.title {
        tool.insert("title".into(), json!(title));
    }
    if let Some(description) = &spec.description {
        tool.insert("description".into(), json!(description));
    }
    tool.insert(
        "inputSchema".into(),
        object("input schema", &spec.input_schema)?,
    );
    if let Some(schema) = &spec.output_schema {
        tool.insert("outputSchema".into(), object("output schema", schema)?);
    }
    if let Some(annotations) = &spec.annotations {
        tool.insert("annotations".into(), object("annotations", annotations)?);
    }
    ToolText::from_json(&Value::Object(tool).to_string())
}

/// Watches the provider's file and reloads it when it changes, debounced, until the mount
/// goes.
fn watch_file(provider: &Arc<Provider>) {
    use notify::Watcher;
    let Some(dir) = provider.file.parent().map(Path::to_path_buf) else {
        return;
    };
    let file_name = provider.file.file_name().map(|n| n.to_owned());
    let (tx, mut events) = mpsc::unbounded_channel::<()>();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_owned()) == file_name)
        {
            let _ = tx.send(());
        }
    };
    let watcher = match notify::recommended_watcher(handler) {
        Ok(mut watcher) => match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => Some(watcher),
            Err(e) => {
                tracing::warn!(server = %provider.name, "cannot watch {}: {e}; replacing the component needs a restart", dir.display());
                None
            }
        },
        Err(e) => {
            tracing::warn!(server = %provider.name, "cannot watch {}: {e}", dir.display());
            None
        }
    };
    let weak = Arc::downgrade(provider);
    let stop = provider.stop.clone();
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => if event.is_none() { return },
            }
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, events.recv()).await {}
            let Some(provider) = weak.upgrade() else {
                return;
            };
            provider.reload().await;
        }
    });
}
