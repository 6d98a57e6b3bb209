//! WebAssembly plugins: tool filters (run when the catalog is built), routing hooks (run
//! around every tools/call, including calls made through the `proxy` tool), configure
//! plugins (asked by `magg_smart_configure`), search providers (`magg_search_servers`), tool
//! rankers (loaded here; tool search uses them), and tool providers mounted as servers.
//!
//! # Design
//! - The interfaces are `wit/plugin.wit` (package `magg:plugin@0.2.0`; components built
//!   against the frozen 0.1.0 in `wit/deps/magg-plugin-0.1.0/` load too); [`bindings`] holds
//!   the generated host side. A plugin's kind is read from what its component exports.
//! - Plugins are the `*.wasm` files of the plugins directory, applied in file-name order. Per
//!   plugin settings, HTTP grants and limits come from the config's `plugins` object
//!   ([`config`]).
//! - [`registry`] keeps the loaded set in an `ArcSwap`: a debounced watch on the directory
//!   compiles changed files off the request path (or loads them from the on-disk cache),
//!   instantiates each once to validate it, and swaps the whole set. A call takes the set once
//!   and finishes on it, so calls in flight finish on the old version; a file that fails to
//!   load leaves the previous version serving.
//! - [`instance`] runs each call in a fresh store with a memory limit and a deadline. A routing
//!   hook's before- and after-call run in one instance, so a hook may carry state from one to
//!   the other within a call, and never across calls.
//! - Tool providers are not plugins of the directory: a server entry mounts one
//!   ([`provider`], the side [`crate::backend::component`] calls), on the same engine, linker
//!   and compile cache, with the entry's grants in place of a plugin config. A mounted
//!   component that exports no magg interface but plain functions is served by [`plain`]:
//!   each function a tool, with schemas derived from its WIT types.
//! - Faults (trap, time limit, memory limit, output magg cannot use) are contained: by default
//!   a routing hook fails closed (the call gets an error result naming the plugin) and a filter
//!   fails open (its input list passes through); `on_error` changes that per plugin.

mod bindings;
pub mod bundled;
mod calls;
pub mod config;
mod instance;
mod outgoing;
mod plain;
mod provider;
mod registry;

use rmcp::model::{CallToolResult, JsonObject};

pub use self::{
    bindings::configure::{SourceFacts, Suggestion},
    bindings::types::{
        CallResult as HookResult, SearchResult, ServerConfig as PluginServerConfig,
        Tool as FilterTool,
    },
    calls::{AfterText, HookRun, SearchOutcome},
    config::{FailurePolicy, PluginConfig, PluginConfigs},
    registry::{Checked, PluginStatus, Plugins, check_file},
};

/// The kinds of plugin, one per WIT interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Exports `magg:plugin/tool-filter`.
    ToolFilter,
    /// Exports `magg:plugin/routing-hook`.
    RoutingHook,
    /// Exports `magg:plugin/configure`.
    Configure,
    /// Exports `magg:plugin/search-provider`.
    SearchProvider,
    /// Exports `magg:plugin/tool-provider` (0.2): a server whose tools run inside magg,
    /// mounted by a server entry of the config rather than from the plugins directory.
    ToolProvider,
    /// Exports `magg:plugin/tool-ranker` (0.2): orders tools for tool search.
    ToolRanker,
}

impl Kind {
    /// The kind's name, as shown in `magg_status` and `magg plugin list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ToolFilter => "tool-filter",
            Kind::RoutingHook => "routing-hook",
            Kind::Configure => "configure",
            Kind::SearchProvider => "search-provider",
            Kind::ToolProvider => "tool-provider",
            Kind::ToolRanker => "tool-ranker",
        }
    }

    /// The WIT interface a plugin of this kind exports.
    pub fn interface(self) -> &'static str {
        match self {
            Kind::ToolFilter => "magg:plugin/tool-filter@0.2.0",
            Kind::RoutingHook => "magg:plugin/routing-hook@0.2.0",
            Kind::Configure => "magg:plugin/configure@0.2.0",
            Kind::SearchProvider => "magg:plugin/search-provider@0.2.0",
            Kind::ToolProvider => "magg:plugin/tool-provider@0.2.0",
            Kind::ToolRanker => "magg:plugin/tool-ranker@0.2.0",
        }
    }

    /// Whether `export` (a component's export name) is this kind's interface in a version
    /// magg loads: 0.2, or 0.1 for the kinds that version has.
    fn matches_export(self, export: &str) -> bool {
        let name = self.as_str();
        let legacy = !matches!(self, Kind::ToolProvider | Kind::ToolRanker);
        export
            .strip_prefix("magg:plugin/")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with("@0.2.")
                    || (legacy && rest.starts_with("@0.1."))
            })
    }

    /// The time limit of one call when the config sets none.
    pub fn default_timeout_ms(self) -> u64 {
        match self {
            Kind::ToolFilter => 2000,
            Kind::RoutingHook => 1000,
            Kind::Configure => 2000,
            Kind::SearchProvider => 10000,
            Kind::ToolProvider => 30000,
            Kind::ToolRanker => 1000,
        }
    }

    /// What a fault does when the config says nothing.
    pub fn default_policy(self) -> FailurePolicy {
        match self {
            Kind::RoutingHook => FailurePolicy::Closed,
            _ => FailurePolicy::Open,
        }
    }
}

/// A plugin that failed: which one, in which role, and what happened.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` ({kind}) {detail}")]
pub struct PluginError {
    /// The plugin's name.
    pub plugin: String,
    /// The role it failed in.
    pub kind: &'static str,
    /// What happened, and how to fix it where magg can tell.
    pub detail: String,
}

impl PluginError {
    fn new(plugin: &str, kind: Kind, detail: String) -> PluginError {
        PluginError {
            plugin: plugin.to_owned(),
            kind: kind.as_str(),
            detail,
        }
    }
}

/// A tools/call as the routing hooks see it: the exposed tool name, its server and arguments.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The server that owns the tool (`magg` for magg's own tools).
    pub server: String,
    /// The exposed tool name, as the client called it (or as a hook rerouted it).
    pub tool: String,
    /// The call's arguments.
    pub arguments: Option<JsonObject>,
}

/// What the routing hooks decided about a call.
#[derive(Debug)]
pub enum Decision {
    /// Go on with this call: the original, or as a hook rewrote or rerouted it.
    Proceed(ToolCall),
    /// Do not call the backend; answer with this result.
    Answer(CallToolResult),
    /// Refuse the call, with this message for the model.
    Deny(String),
}

/// The plugins directory for `config`: `plugins_dir` (setting, `MAGG_PLUGINS_DIR` or
/// `magg serve --plugins`), else `plugins/` beside the config file when that directory exists.
pub fn plugins_dir(config: &crate::config::Config) -> Option<std::path::PathBuf> {
    if let Some(dir) = &config.settings.plugins_dir {
        return Some(dir.clone());
    }
    let beside = config.path.parent()?.join("plugins");
    beside.is_dir().then_some(beside)
}

/// Where compiled plugins are cached: `$MAGG_CACHE_DIR/plugins`, else the user's cache
/// directory (`~/.cache/magg/plugins` on Linux).
pub fn cache_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("MAGG_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Some(std::path::PathBuf::from(dir).join("plugins")),
        None => dirs::cache_dir().map(|d| d.join("magg").join("plugins")),
    }
}
