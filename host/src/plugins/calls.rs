//! The plugin kinds at work: filters over the tool list, routing hooks around a call,
//! configure plugins asked in turn, search providers asked all at once, and the tool ranker of
//! tool search. Each applies the plugin's failure policy when a call into it faults.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock, atomic::Ordering},
    time::Instant,
};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::mcp::OWN_SERVER;
use wasmtime::{Store, component::Instance};

use super::{
    Decision, FailurePolicy, Kind, PluginError, ToolCall,
    bindings::{configure, routing_hook, types},
    instance::{Call, HostState},
    registry::{Plugin, PluginSet},
};

impl PluginSet {
    /// Runs every tool filter in file-name order; each sees the previous one's output. A tool
    /// a filter returns that it was not given (by `server` and `original-name`) is dropped.
    pub(crate) async fn filter(&self, mut tools: Vec<types::Tool>) -> Vec<types::Tool> {
        for plugin in self.of(Kind::ToolFilter) {
            match plugin.run_filter(&tools).await {
                Ok(out) => tools = reconcile(&plugin.name, &tools, out),
                Err(e) => {
                    plugin.record_fault(&e);
                    if plugin.policy(Kind::ToolFilter) == FailurePolicy::Closed {
                        tracing::error!("{e}; hiding the tools it was given (on_error: closed)");
                        tools.retain(|t| t.server == OWN_SERVER);
                    } else {
                        tracing::error!("{e}; showing the list unfiltered (on_error: open)");
                    }
                }
            }
        }
        tools
    }

    /// The first suggestion of the configure plugins, in file-name order, with the name of
    /// the plugin that made it; faults are logged and the next plugin is asked.
    pub(crate) async fn suggest(
        &self,
        facts: &configure::SourceFacts,
    ) -> Option<(String, configure::Suggestion)> {
        for plugin in self.of(Kind::Configure) {
            match plugin.run_suggest(facts).await {
                Ok(Some(suggestion)) => return Some((plugin.name.clone(), suggestion)),
                Ok(None) => {}
                Err(e) => {
                    plugin.record_fault(&e);
                    tracing::error!("{e}; asking the next configure plugin");
                }
            }
        }
        None
    }

    /// Asks every search provider at once.
    pub(crate) async fn search(&self, query: &str, limit: u32) -> Vec<SearchOutcome> {
        let asks = self.of(Kind::SearchProvider).map(|plugin| async move {
            let result = match plugin.run_search(query, limit).await {
                Ok(found) => found,
                Err(e) => {
                    plugin.record_fault(&e);
                    Err(e.to_string())
                }
            };
            SearchOutcome {
                plugin: plugin.name.clone(),
                result,
            }
        });
        futures::future::join_all(asks).await
    }
}

impl PluginSet {
    /// The first tool ranker's (in file-name order) names for `query` among `candidates`,
    /// best first, with the ranker's name; `None` when no ranker is loaded or it failed (the
    /// fault is logged and shown in `magg_status`, and the caller ranks by itself).
    pub(crate) async fn rank(
        &self,
        query: &str,
        candidates: &[types::Tool],
        limit: u32,
    ) -> Option<(String, Vec<String>)> {
        let plugin = self.of(Kind::ToolRanker).next()?;
        match plugin.run_rank(query, candidates, limit).await {
            Ok(names) => Some((plugin.name.clone(), names)),
            Err(e) => {
                plugin.record_fault(&e);
                tracing::error!("{e}; tool search ranks with magg's own ranking instead");
                None
            }
        }
    }
}

/// What one search provider found, or why it found nothing.
#[derive(Debug)]
pub struct SearchOutcome {
    /// The provider's plugin name.
    pub plugin: String,
    /// Its results, or its error.
    pub result: Result<Vec<types::SearchResult>, String>,
}

fn reconcile(plugin: &str, given: &[types::Tool], out: Vec<types::Tool>) -> Vec<types::Tool> {
    let known: HashSet<(&str, &str)> = given
        .iter()
        .map(|t| (t.server.as_str(), t.original_name.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(out.len());
    for tool in out {
        let key = (tool.server.clone(), tool.original_name.clone());
        if !known.contains(&(key.0.as_str(), key.1.as_str())) {
            tracing::warn!(
                "plugin {plugin}: ignoring tool `{}` of server `{}`, which it was not given",
                tool.original_name,
                tool.server
            );
            continue;
        }
        if seen.insert(key) {
            kept.push(tool);
        }
    }
    kept
}

/// The routing hooks of one call: the plugin set it started on and, for each hook that let
/// it proceed, the instance whose after-call sees the result.
pub struct HookRun {
    set: Arc<PluginSet>,
    active: Vec<(Arc<Plugin>, Store<HostState>, routing_hook::Guest)>,
    /// The call as the last hook let it proceed, in the WIT's shape (for the after-calls).
    wit: Option<types::ToolCall>,
    /// Whether a hook rewrote or rerouted the call.
    changed: bool,
}

/// What the after-call hooks made of a result given to them as text.
pub enum AfterText {
    /// No hook replaced it.
    Unchanged,
    /// Replaced: the last replacement, checked to be MCP content (and JSON structured content).
    Replaced(types::CallResult),
    /// A hook failed closed: this error result stands instead.
    Withheld(CallToolResult),
}

impl HookRun {
    /// The run for a call with no hooks (or whose hooks are done).
    pub(crate) fn new(set: Arc<PluginSet>) -> HookRun {
        HookRun {
            set,
            active: Vec::new(),
            wit: None,
            changed: false,
        }
    }

    /// Whether a hook rewrote the arguments or rerouted the call.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Whether any hook waits to see the result.
    pub fn wants_result(&self) -> bool {
        !self.active.is_empty()
    }

    /// Runs the before-call of every routing hook, in file-name order, each on what the one
    /// before decided. A deny or an answer ends the run.
    pub(crate) async fn before(&mut self, call: ToolCall) -> Decision {
        let wit = wit_call(&call);
        self.before_wit(call, wit).await
    }

    /// [`HookRun::before`] for a call whose arguments are given as JSON text (`wit`); `call`
    /// may leave its arguments out, and they stay out unless a hook rewrites them.
    pub(crate) async fn before_wit(&mut self, call: ToolCall, wit: types::ToolCall) -> Decision {
        let mut used = Vec::new();
        let decision = self.before_each(call, wit, &mut used).await;
        // The spares of every hook that ran are queued at once: one wake of the chores thread
        // per call, however many hooks there are.
        refill(used);
        decision
    }

    /// The before-call of each hook in turn; the hooks that took an instance go to `used`.
    async fn before_each(
        &mut self,
        mut call: ToolCall,
        mut wit: types::ToolCall,
        used: &mut Vec<Arc<Plugin>>,
    ) -> Decision {
        let hooks: Vec<Arc<Plugin>> = self.set.of(Kind::RoutingHook).cloned().collect();
        for plugin in hooks {
            let started = Instant::now();
            let span = crate::telemetry::hook_span("before-call", &plugin.name, &call.tool);
            let outcome = match plugin.run_before(&wit).instrument(span.clone()).await {
                Ok((decision, store, guest)) => {
                    tracing::trace!(plugin = %plugin.name, elapsed = ?started.elapsed(), "before-call");
                    plugin
                        .interpret(decision, &mut call, &mut wit)
                        .map(|outcome| (outcome, store, guest))
                }
                Err(e) => Err(e),
            };
            used.push(plugin.clone());
            hook_outcome(&span, &outcome);
            match outcome {
                Ok((BeforeOutcome::Proceed(changed), store, guest)) => {
                    self.changed |= changed;
                    self.active.push((plugin, store, guest));
                }
                Ok((BeforeOutcome::Answer(result), ..)) => return Decision::Answer(result),
                Ok((BeforeOutcome::Deny(reason), ..)) => {
                    return Decision::Deny(format!(
                        "The call to `{}` was denied by routing hook `{}`: {reason}",
                        call.tool, plugin.name
                    ));
                }
                Err(e) => {
                    plugin.record_fault(&e);
                    if plugin.policy(Kind::RoutingHook) == FailurePolicy::Closed {
                        tracing::error!("{e}; refusing the call (on_error: closed)");
                        return Decision::Deny(format!(
                            "The call to `{}` was refused because a routing hook failed: {e}. \
                             Fix or remove the plugin (magg_status lists plugins and their \
                             faults), or set plugins.{}.on_error to \"open\".",
                            call.tool, plugin.name
                        ));
                    }
                    tracing::error!("{e}; letting the call proceed (on_error: open)");
                }
            }
        }
        self.wit = Some(wit);
        Decision::Proceed(call)
    }

    /// Runs the after-call of every hook that let the call proceed, in file-name order.
    pub(crate) async fn after(self, call: &ToolCall, result: CallToolResult) -> CallToolResult {
        if self.active.is_empty() {
            return result;
        }
        match self.after_text(call, wit_result(&result)).await {
            AfterText::Unchanged => result,
            AfterText::Withheld(error) => error,
            AfterText::Replaced(next) => match mcp_result(next, Some(&result)) {
                Ok(next) => next,
                // Checked in `after_text`; kept as a fault rather than a panic.
                Err(e) => crate::mcp::error_result(e),
            },
        }
    }

    /// Runs the after-call of every hook that let the call proceed over a result given as
    /// the WIT's text form (as the stdio fast lane has it), each hook seeing the previous
    /// one's replacement.
    pub(crate) async fn after_text(
        self,
        call: &ToolCall,
        mut result: types::CallResult,
    ) -> AfterText {
        let wit = self.wit.unwrap_or_else(|| wit_call(call));
        let mut replaced = false;
        // Dropped together on the chores thread once the after-calls are over.
        let mut done = Retired(Vec::with_capacity(self.active.len()));
        for (plugin, mut store, guest) in self.active {
            let span = crate::telemetry::hook_span("after-call", &plugin.name, &call.tool);
            let outcome = plugin
                .run_after(&mut store, &guest, &wit, &result)
                .instrument(span.clone())
                .await;
            done.0.push(store);
            hook_outcome(&span, &outcome);
            match outcome {
                Ok(Some(next)) => {
                    result = next;
                    replaced = true;
                }
                Ok(None) => {}
                Err(e) => {
                    plugin.record_fault(&e);
                    if plugin.policy(Kind::RoutingHook) == FailurePolicy::Closed {
                        tracing::error!("{e}; withholding the result (on_error: closed)");
                        return AfterText::Withheld(crate::mcp::error_result(format!(
                            "The result of `{}` was withheld because a routing hook failed: {e}",
                            call.tool
                        )));
                    }
                    tracing::error!("{e}; passing the result on unchanged (on_error: open)");
                }
            }
        }
        if replaced {
            AfterText::Replaced(result)
        } else {
            AfterText::Unchanged
        }
    }
}

/// Queues the making of the next spare instance of each of `plugins` (unless one is on its
/// way), in one message.
///
/// Spares are made one at a time on a thread of their own ([`chores`]), so the thread that
/// serves calls only hands the plugins over: a call's answer never waits behind the making of
/// an instance, and an idle core does that work between calls.
fn refill(mut plugins: Vec<Arc<Plugin>>) {
    plugins.retain(|plugin| !plugin.refilling.swap(true, Ordering::AcqRel));
    if plugins.is_empty() {
        return;
    }
    let unsent = match chores() {
        Some(queue) => match queue.send(Chore::Spare(plugins)) {
            Ok(()) => return,
            Err(mpsc::error::SendError(chore)) => chore,
        },
        None => Chore::Spare(plugins),
    };
    // No chores thread: each call makes its own instances.
    if let Chore::Spare(plugins) = unsent {
        for plugin in plugins {
            plugin.refilling.store(false, Ordering::Release);
        }
    }
}

/// Work on plugin instances that no call waits for.
enum Chore {
    /// Make these routing hooks' next spare instances.
    Spare(Vec<Arc<Plugin>>),
    /// Drop instances whose call is over (giving their memory back takes system calls).
    Retire(Vec<Store<HostState>>),
}

/// Instances whose call is over: dropped on the chores thread, in one message, when this is
/// dropped (or here when there is no such thread).
struct Retired(Vec<Store<HostState>>);

impl Drop for Retired {
    fn drop(&mut self) {
        let stores = std::mem::take(&mut self.0);
        if !stores.is_empty()
            && let Some(queue) = chores()
        {
            let _ = queue.send(Chore::Retire(stores));
        }
    }
}

/// The queue of [`Chore`]s, served in order by one thread for the whole process; none when
/// that thread could not be started (each call then makes and drops its own instances).
fn chores() -> Option<&'static mpsc::UnboundedSender<Chore>> {
    static QUEUE: OnceLock<Option<mpsc::UnboundedSender<Chore>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Chore>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| tracing::warn!("plugin instances: no runtime for chores ({e})"))
                .ok()?;
            std::thread::Builder::new()
                .name("magg-plugin-chores".into())
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(chore) = rx.recv().await {
                            match chore {
                                Chore::Spare(plugins) => {
                                    for plugin in plugins {
                                        plugin.make_spare().await;
                                    }
                                }
                                Chore::Retire(stores) => drop(stores),
                            }
                        }
                    });
                })
                .map_err(|e| tracing::warn!("plugin instances: no chores thread ({e})"))
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// A routing hook's fresh instance, made before the call that will take it. Each call still
/// gets an instance no call has used, so a plugin keeps no state between calls.
pub(crate) struct SpareHook {
    store: Store<HostState>,
    guest: routing_hook::Guest,
}

/// What one hook's before-call decided, in magg's terms (a rewrite or reroute has already
/// been applied to the call).
enum BeforeOutcome {
    /// Go on; true when the hook changed the call.
    Proceed(bool),
    Answer(CallToolResult),
    Deny(String),
}

/// Records on a hook's span how the hook ended: what it decided, or that it failed.
fn hook_outcome<T, E>(span: &tracing::Span, outcome: &Result<T, E>) {
    if span.is_none() {
        return;
    }
    match outcome {
        Ok(_) => span.record("magg.outcome", "ok"),
        Err(_) => {
            span.record("magg.outcome", "error");
            span.record("error.type", "hook_failed");
            span.record("otel.status_code", "error")
        }
    };
}

fn wit_call(call: &ToolCall) -> types::ToolCall {
    types::ToolCall {
        server: call.server.clone(),
        tool: call.tool.clone(),
        arguments: match &call.arguments {
            Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".to_owned()),
            None => "{}".to_owned(),
        },
    }
}

pub(crate) fn wit_result(result: &CallToolResult) -> types::CallResult {
    types::CallResult {
        content: serde_json::to_string(&result.content).unwrap_or_else(|_| "[]".to_owned()),
        structured_content: result.structured_content.as_ref().map(|v| v.to_string()),
        is_error: result.is_error.unwrap_or(false),
    }
}

/// A plugin's call result as an MCP result; `base` keeps what the plugin cannot see (`_meta`).
pub(crate) fn mcp_result(
    result: types::CallResult,
    base: Option<&CallToolResult>,
) -> Result<CallToolResult, String> {
    let content: Vec<ContentBlock> = serde_json::from_str(&result.content).map_err(|e| {
        format!(
            "result content is not a JSON array of MCP content blocks ({e}): {}",
            preview(&result.content)
        )
    })?;
    let structured = match result.structured_content {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| format!("structured-content is not JSON ({e}): {}", preview(&text)))?,
        ),
        None => None,
    };
    let mut out = base
        .cloned()
        .unwrap_or_else(|| CallToolResult::success(Vec::new()));
    out.content = content;
    out.structured_content = structured;
    out.is_error = Some(result.is_error);
    Ok(out)
}

/// Whether a plugin's call result is one magg can pass on: MCP content blocks, and JSON
/// structured content.
fn check_result(result: &types::CallResult) -> Result<(), String> {
    serde_json::from_str::<Vec<ContentBlock>>(&result.content).map_err(|e| {
        format!(
            "result content is not a JSON array of MCP content blocks ({e}): {}",
            preview(&result.content)
        )
    })?;
    if let Some(text) = &result.structured_content {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| format!("structured-content is not JSON ({e}): {}", preview(text)))?;
    }
    Ok(())
}

fn parse_arguments(text: &str) -> Result<JsonObject, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("arguments are not a JSON object ({e}): {}", preview(text)))
}

fn preview(text: &str) -> String {
    let mut cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

impl Plugin {
    fn call(&self, kind: Kind) -> Call<'_> {
        Call::new(&self.runtime, &self.prepared.pre, &self.config, kind)
    }

    /// Counts a call of this plugin as `kind` that started at `started`.
    fn counted<T>(&self, kind: Kind, started: Instant, result: T) -> T {
        crate::metrics::count_plugin_call(&self.name, kind.as_str(), started.elapsed());
        result
    }

    async fn run_filter(&self, tools: &[types::Tool]) -> Result<Vec<types::Tool>, PluginError> {
        let started = Instant::now();
        let result = self.filter_once(tools).await;
        self.counted(Kind::ToolFilter, started, result)
    }

    async fn filter_once(&self, tools: &[types::Tool]) -> Result<Vec<types::Tool>, PluginError> {
        let call = self.call(Kind::ToolFilter);
        let exports = self.prepared.exports.filter.as_ref();
        let (mut store, guest) = open(&call, exports, |i, s, inst| i.load(s, inst)).await?;
        guest
            .call_filter(&mut store, tools)
            .await
            .map_err(|e| call.fault(&store, e))
    }

    async fn run_before(
        self: &Arc<Self>,
        tool_call: &types::ToolCall,
    ) -> Result<
        (
            routing_hook::Decision,
            Store<HostState>,
            routing_hook::Guest,
        ),
        PluginError,
    > {
        let started = Instant::now();
        let result = self.before_once(tool_call).await;
        self.counted(Kind::RoutingHook, started, result)
    }

    async fn before_once(
        self: &Arc<Self>,
        tool_call: &types::ToolCall,
    ) -> Result<
        (
            routing_hook::Decision,
            Store<HostState>,
            routing_hook::Guest,
        ),
        PluginError,
    > {
        let call = self.call(Kind::RoutingHook);
        let spare = self.spare.lock().ok().and_then(|mut spare| spare.take());
        let (mut store, guest) = match spare {
            Some(SpareHook { mut store, guest }) => {
                Call::ready(&mut store);
                (store, guest)
            }
            None => self.new_hook_instance().await?,
        };
        let decision = guest
            .call_before_call(&mut store, tool_call)
            .await
            .map_err(|e| call.fault(&store, e))?;
        Ok((decision, store, guest))
    }

    /// A fresh instance of this routing hook.
    async fn new_hook_instance(
        &self,
    ) -> Result<(Store<HostState>, routing_hook::Guest), PluginError> {
        let call = self.call(Kind::RoutingHook);
        let exports = self.prepared.exports.hook.as_ref();
        open(&call, exports, |i, s, inst| i.load(s, inst)).await
    }

    /// Makes the instance this hook's next call will take.
    async fn make_spare(&self) {
        match self.new_hook_instance().await {
            Ok((store, guest)) => {
                if let Ok(mut spare) = self.spare.lock() {
                    *spare = Some(SpareHook { store, guest });
                }
            }
            // The next call makes its own and meets the same fault there.
            Err(e) => tracing::debug!("{e} (making a spare instance)"),
        }
        self.refilling.store(false, Ordering::Release);
    }

    /// Applies a before-call decision to the call (both its magg and its WIT form).
    fn interpret(
        &self,
        decision: routing_hook::Decision,
        call: &mut ToolCall,
        wit: &mut types::ToolCall,
    ) -> Result<BeforeOutcome, PluginError> {
        use routing_hook::Decision as D;
        let bad = |e: String| self.call(Kind::RoutingHook).bad_output(e);
        Ok(match decision {
            D::Proceed => BeforeOutcome::Proceed(false),
            D::Rewrite(arguments) => {
                call.arguments = Some(parse_arguments(&arguments).map_err(bad)?);
                wit.arguments = arguments;
                BeforeOutcome::Proceed(true)
            }
            D::Reroute(target) => {
                *call = ToolCall {
                    server: target.server.clone(),
                    tool: target.tool.clone(),
                    arguments: Some(parse_arguments(&target.arguments).map_err(bad)?),
                };
                *wit = target;
                BeforeOutcome::Proceed(true)
            }
            D::Answer(result) => BeforeOutcome::Answer(mcp_result(result, None).map_err(bad)?),
            D::Deny(reason) => BeforeOutcome::Deny(reason),
        })
    }

    /// One hook's after-call; a replacement is checked before it is passed on.
    async fn run_after(
        &self,
        store: &mut Store<HostState>,
        guest: &routing_hook::Guest,
        tool_call: &types::ToolCall,
        result: &types::CallResult,
    ) -> Result<Option<types::CallResult>, PluginError> {
        let call = self.call(Kind::RoutingHook);
        Call::restart_clock(store);
        let started = Instant::now();
        let replaced = guest
            .call_after_call(&mut *store, tool_call, result)
            .await
            .map_err(|e| call.fault(store, e));
        let replaced = self.counted(Kind::RoutingHook, started, replaced)?;
        match replaced {
            None => Ok(None),
            Some(next) => check_result(&next)
                .map(|()| Some(next))
                .map_err(|e| call.bad_output(e)),
        }
    }

    async fn run_suggest(
        &self,
        facts: &configure::SourceFacts,
    ) -> Result<Option<configure::Suggestion>, PluginError> {
        let started = Instant::now();
        let call = self.call(Kind::Configure);
        let exports = self.prepared.exports.configure.as_ref();
        let result = async {
            let (mut store, guest) = open(&call, exports, |i, s, inst| i.load(s, inst)).await?;
            guest
                .call_suggest(&mut store, facts)
                .await
                .map_err(|e| call.fault(&store, e))
        }
        .await;
        self.counted(Kind::Configure, started, result)
    }

    async fn run_search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Result<Vec<types::SearchResult>, String>, PluginError> {
        let started = Instant::now();
        let result = self.search_once(query, limit).await;
        self.counted(Kind::SearchProvider, started, result)
    }

    async fn search_once(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Result<Vec<types::SearchResult>, String>, PluginError> {
        let call = self.call(Kind::SearchProvider);
        let wall = call.wall_limit();
        let run = async {
            let exports = self.prepared.exports.search.as_ref();
            let (mut store, guest) = open(&call, exports, |i, s, inst| i.load(s, inst)).await?;
            guest
                .call_search(&mut store, query, limit)
                .await
                .map_err(|e| call.fault(&store, e))
        };
        match tokio::time::timeout(wall, run).await {
            Ok(result) => result,
            Err(_) => Err(PluginError::new(
                &self.name,
                Kind::SearchProvider,
                format!(
                    "timed out after {} waiting on the network (set plugins.{}.timeout_ms to \
                     allow longer)",
                    duration_text(call.limit()),
                    self.name
                ),
            )),
        }
    }
}

impl Plugin {
    async fn run_rank(
        &self,
        query: &str,
        candidates: &[types::Tool],
        limit: u32,
    ) -> Result<Vec<String>, PluginError> {
        let started = Instant::now();
        let call = self.call(Kind::ToolRanker);
        let wall = call.wall_limit();
        let run = async {
            let exports = self.prepared.exports.ranker.as_ref();
            let (mut store, guest) = open(&call, exports, |i, s, inst| i.load(s, inst)).await?;
            guest
                .call_rank(&mut store, query, candidates, limit)
                .await
                .map_err(|e| call.fault(&store, e))
        };
        let result = match tokio::time::timeout(wall, run).await {
            Ok(result) => result,
            Err(_) => Err(PluginError::new(
                &self.name,
                Kind::ToolRanker,
                format!(
                    "timed out after {} (set plugins.{}.timeout_ms to allow longer)",
                    duration_text(call.limit()),
                    self.name
                ),
            )),
        };
        self.counted(Kind::ToolRanker, started, result)
    }
}

/// A time limit as people say it: `10 s`, `1.5 s`, `300 ms`.
fn duration_text(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(100) {
        let secs = ms as f64 / 1000.0;
        format!("{secs} s")
    } else {
        format!("{ms} ms")
    }
}

/// A fresh instance and the guest of one exported interface in it.
async fn open<I, G>(
    call: &Call<'_>,
    exports: Option<&I>,
    load: impl FnOnce(&I, &mut Store<HostState>, &Instance) -> wasmtime::Result<G>,
) -> Result<(Store<HostState>, G), PluginError> {
    let (mut store, instance) = call.instantiate().await?;
    let exports = exports.ok_or_else(|| call.bad_output("the export it was loaded for is gone"))?;
    let guest = load(exports, &mut store, &instance).map_err(|e| call.fault(&store, e))?;
    Ok((store, guest))
}
