//! Prometheus metrics: what magg counts as it works, and the text a scraper reads at
//! `/metrics`.
//!
//! # Design
//! - One process-wide set of counters and histograms ([`global`]), updated where the work
//!   happens: the call route (calls by server, tool and outcome, and their latency), the
//!   frontends (list requests), the plugins (calls, faults and time by plugin), the session
//!   fan-out (list_changed sent) and the config reload.
//! - A tools/call's update allocates nothing once its tool has been called before: the
//!   handles of each (server, tool), and of each (plugin, kind), are kept in a map looked up
//!   by borrowed names.
//! - What is a state rather than a count (backends, open sessions) is sampled when scraped:
//!   the caller hands [`render`] a [`Sample`], so this module knows nothing of the hub.
//! - `metrics: false` (env `MAGG_METRICS=0`) turns the updates off; `/metrics` then shows the
//!   sampled states only.

use std::{
    hash::{Hash, Hasher},
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use indexmap::{Equivalent, IndexMap};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Seconds a tools/call may take, as histogram buckets: from 100 µs to a minute.
const CALL_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 60.0,
];

/// Seconds a plugin call may take: from 10 µs to 10 s.
const PLUGIN_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1.0, 2.5,
    10.0,
];

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the counting on or off (the `metrics` setting).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether magg counts (the `metrics` setting).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts a list request (when counting is on).
pub fn count_list(list: List) {
    if enabled() {
        global().list(list);
    }
}

/// Counts a list_changed notification sent (when counting is on).
pub fn count_list_changed(list: List) {
    if enabled() {
        global().list_changed(list);
    }
}

/// Counts a plugin call and its time (when counting is on).
pub fn count_plugin_call(plugin: &str, kind: &'static str, elapsed: Duration) {
    if enabled() {
        global().plugin_call(plugin, kind, elapsed);
    }
}

/// Counts a plugin's fault (when counting is on).
pub fn count_plugin_fault(plugin: &str, kind: &'static str) {
    if enabled() {
        global().plugin_fault(plugin, kind);
    }
}

/// Counts a config reload (when counting is on).
pub fn count_reload(ok: bool) {
    if enabled() {
        global().reload(ok);
    }
}

/// How a tools/call ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as Prometheus users write them
pub enum Outcome {
    /// A result that is not an error.
    ok,
    /// A result with `isError: true` (the tool failed, or magg answered with an error result).
    tool_error,
    /// A protocol error (unknown tool, invalid params, the backend's own error).
    error,
    /// The client cancelled it.
    cancelled,
}

/// A list request's kind.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum List {
    /// tools/list.
    tools,
    /// prompts/list.
    prompts,
    /// resources/list.
    resources,
    /// resources/templates/list.
    resource_templates,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    server: Arc<str>,
    tool: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    server: Arc<str>,
    tool: Arc<str>,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListLabels {
    list: List,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The handles of one tool's series.
struct ToolSeries {
    outcomes: [Counter; 4],
    seconds: Histogram,
}

/// A (server, tool) key looked up by borrowed names; hashes as the owned tuple does.
struct Names<'a>(&'a str, &'a str);

impl Hash for Names<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0, self.1).hash(state);
    }
}

impl Equivalent<NamePair> for Names<'_> {
    fn equivalent(&self, key: &NamePair) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1
    }
}

/// Two names, owned: a map key.
type NamePair = (Box<str>, Box<str>);

/// Series handles by two names, found without allocating once made.
struct ByNames<T>(RwLock<IndexMap<NamePair, Arc<T>>>);

impl<T> Default for ByNames<T> {
    fn default() -> Self {
        ByNames(RwLock::default())
    }
}

impl<T> ByNames<T> {
    /// The handles of (`a`, `b`), made by `make` the first time.
    fn get(&self, a: &str, b: &str, make: impl FnOnce() -> T) -> Arc<T> {
        if let Ok(map) = self.0.read()
            && let Some(series) = map.get(&Names(a, b))
        {
            return series.clone();
        }
        let made = Arc::new(make());
        match self.0.write() {
            Ok(mut map) => map.entry((a.into(), b.into())).or_insert(made).clone(),
            Err(_) => made,
        }
    }
}

/// The handles of one plugin's series in one role.
struct PluginSeries {
    calls: Counter,
    seconds: Histogram,
}

/// Every counter and histogram magg keeps.
pub struct Metrics {
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<ToolLabels, Histogram, fn() -> Histogram>,
    tools: ByNames<ToolSeries>,
    plugins: ByNames<PluginSeries>,
    unknown_tool_calls: Counter,
    lists: Family<ListLabels, Counter>,
    plugin_calls: Family<PluginLabels, Counter>,
    plugin_faults: Family<PluginLabels, Counter>,
    plugin_seconds: Family<PluginLabels, Histogram, fn() -> Histogram>,
    list_changed: Family<ListLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        calls: Family::default(),
        call_seconds: Family::new_with_constructor(|| Histogram::new(CALL_BUCKETS)),
        tools: ByNames::default(),
        plugins: ByNames::default(),
        unknown_tool_calls: Counter::default(),
        lists: Family::default(),
        plugin_calls: Family::default(),
        plugin_faults: Family::default(),
        plugin_seconds: Family::new_with_constructor(|| Histogram::new(PLUGIN_BUCKETS)),
        list_changed: Family::default(),
        reloads: Family::default(),
    })
}

impl Metrics {
    /// Counts a tools/call of `server`'s `tool` (its own name there; `magg` for magg's own
    /// tools) that ended with `outcome` after `elapsed`.
    pub fn tool_call(&self, server: &str, tool: &str, outcome: Outcome, elapsed: Duration) {
        let series = self.tool_series(server, tool);
        series.outcomes[outcome as usize].inc();
        series.seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a tools/call of a tool magg does not have (not labelled by name: any client can
    /// make up names).
    pub fn unknown_tool_call(&self) {
        self.unknown_tool_calls.inc();
    }

    fn tool_series(&self, server: &str, tool: &str) -> Arc<ToolSeries> {
        self.tools.get(server, tool, || {
            let server: Arc<str> = server.into();
            let tool: Arc<str> = tool.into();
            let outcome = |outcome| {
                self.calls.get_or_create_owned(&CallLabels {
                    server: server.clone(),
                    tool: tool.clone(),
                    outcome,
                })
            };
            ToolSeries {
                outcomes: [
                    outcome(Outcome::ok),
                    outcome(Outcome::tool_error),
                    outcome(Outcome::error),
                    outcome(Outcome::cancelled),
                ],
                seconds: self.call_seconds.get_or_create_owned(&ToolLabels {
                    server: server.clone(),
                    tool: tool.clone(),
                }),
            }
        })
    }

    /// Counts a list request.
    pub fn list(&self, list: List) {
        self.lists.get_or_create(&ListLabels { list }).inc();
    }

    /// Counts a list_changed notification sent to a client.
    pub fn list_changed(&self, list: List) {
        self.list_changed.get_or_create(&ListLabels { list }).inc();
    }

    /// Counts a call into plugin `plugin` as `kind` that took `elapsed`.
    pub fn plugin_call(&self, plugin: &str, kind: &'static str, elapsed: Duration) {
        let series = self.plugins.get(plugin, kind, || {
            let labels = PluginLabels {
                plugin: plugin.to_owned(),
                kind,
            };
            PluginSeries {
                calls: self.plugin_calls.get_or_create_owned(&labels),
                seconds: self.plugin_seconds.get_or_create_owned(&labels),
            }
        });
        series.calls.inc();
        series.seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a fault of plugin `plugin` as `kind`: a trap, a time or memory limit, or output
    /// magg cannot use.
    pub fn plugin_fault(&self, plugin: &str, kind: &'static str) {
        self.plugin_faults
            .get_or_create(&PluginLabels {
                plugin: plugin.to_owned(),
                kind,
            })
            .inc();
    }

    /// Counts a config reload that was applied (`ok`) or rejected.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "applied" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

/// What is sampled at scrape time rather than counted.
#[derive(Debug, Default)]
pub struct Sample {
    /// Every configured, enabled backend.
    pub backends: Vec<BackendSample>,
    /// Open client sessions by transport (`stdio`, `http`, `sse`).
    pub sessions: Vec<(&'static str, i64)>,
    /// Whether magg is shutting down.
    pub draining: bool,
}

/// One backend at scrape time.
#[derive(Debug)]
pub struct BackendSample {
    /// The server's name.
    pub server: String,
    /// Its state: `starting`, `running`, `failed`, `stopped`.
    pub state: &'static str,
    /// Restarts after its first start.
    pub restarts: u64,
    /// When it entered its state, in seconds since the Unix epoch.
    pub since: f64,
    /// The tools it lists.
    pub tools: i64,
    /// Its per-session instances running now (`"isolation": "session"`).
    pub session_instances: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    server: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// The states a backend can be in, each a series of `magg_backend_state`.
const STATES: [&str; 4] = ["starting", "running", "failed", "stopped"];

/// The media type of [`render`]'s text in the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The media type of [`render`]'s text in the OpenMetrics text format.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric, with `sample`, as the text a scraper reads: OpenMetrics when `openmetrics`,
/// else the Prometheus text format.
pub fn render(sample: &Sample, openmetrics: bool) -> String {
    let m = global();
    let mut registry = Registry::with_prefix("magg");

    let info: Family<VersionLabels, Gauge> = Family::default();
    info.get_or_create(&VersionLabels {
        version: env!("CARGO_PKG_VERSION"),
    })
    .set(1);
    registry.register("build_info", "magg's version (always 1)", info);

    registry.register(
        "tool_calls",
        "tools/call requests by server, tool (its name on the server; `magg` for magg's own) and outcome",
        m.calls.clone(),
    );
    registry.register(
        "tool_call_duration_seconds",
        "Time from a tools/call's arrival to its answer, by server and tool",
        m.call_seconds.clone(),
    );
    registry.register(
        "unknown_tool_calls",
        "tools/call requests for a tool magg does not have",
        m.unknown_tool_calls.clone(),
    );
    registry.register(
        "list_requests",
        "List requests by list (tools, prompts, resources, resource_templates)",
        m.lists.clone(),
    );
    registry.register(
        "list_changed_notifications",
        "list_changed notifications sent to clients, by list",
        m.list_changed.clone(),
    );
    registry.register(
        "plugin_calls",
        "Calls into WebAssembly plugins, by plugin and kind",
        m.plugin_calls.clone(),
    );
    registry.register(
        "plugin_faults",
        "Plugin calls that trapped, ran out of time or memory, or returned what magg cannot use",
        m.plugin_faults.clone(),
    );
    registry.register(
        "plugin_call_duration_seconds",
        "Time spent in plugin calls, by plugin and kind",
        m.plugin_seconds.clone(),
    );
    registry.register(
        "config_reloads",
        "Config file reloads, by result (applied, failed)",
        m.reloads.clone(),
    );

    let state: Family<StateLabels, Gauge> = Family::default();
    let restarts: Family<ServerLabels, Counter> = Family::default();
    let since: Family<ServerLabels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    let tools: Family<ServerLabels, Gauge> = Family::default();
    let up: Family<ServerLabels, Gauge> = Family::default();
    let instances: Family<ServerLabels, Gauge> = Family::default();
    for b in &sample.backends {
        let server = ServerLabels {
            server: b.server.clone(),
        };
        for s in STATES {
            state
                .get_or_create(&StateLabels {
                    server: b.server.clone(),
                    state: s,
                })
                .set(i64::from(s == b.state));
        }
        up.get_or_create(&server)
            .set(i64::from(b.state == "running"));
        restarts.get_or_create(&server).inc_by(b.restarts);
        since.get_or_create(&server).set(b.since);
        tools.get_or_create(&server).set(b.tools);
        if b.session_instances > 0 {
            instances.get_or_create(&server).set(b.session_instances);
        }
    }
    registry.register(
        "backend_up",
        "Whether the server is running (1) or not (0)",
        up,
    );
    registry.register(
        "backend_state",
        "The server's state: 1 for the state it is in, 0 for the others",
        state,
    );
    registry.register(
        "backend_restarts",
        "Times the server was started again after its first start",
        restarts,
    );
    registry.register(
        "backend_state_since_seconds",
        "When the server entered its state (Unix time): its start time while running",
        since,
    );
    registry.register("backend_tools", "Tools the server lists", tools);
    registry.register(
        "backend_session_instances",
        "Per-session instances of the server running now (servers with \"isolation\": \"session\")",
        instances,
    );

    let sessions: Family<TransportLabels, Gauge> = Family::default();
    for transport in ["stdio", "http", "sse"] {
        sessions
            .get_or_create(&TransportLabels { transport })
            .set(0);
    }
    for (transport, n) in &sample.sessions {
        sessions
            .get_or_create(&TransportLabels { transport })
            .inc_by(*n);
    }
    registry.register("sessions", "Open client sessions, by transport", sessions);
    let draining: Gauge = Gauge::default();
    draining.set(i64::from(sample.draining));
    registry.register(
        "draining",
        "Whether magg is shutting down (1) or serving (0)",
        draining,
    );

    let mut text = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut text, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
    };
    if let Err(e) = encoded {
        text.push_str(&format!("# magg could not encode its metrics: {e}\n"));
    }
    text
}
