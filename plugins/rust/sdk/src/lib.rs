//! Writes magg's WebAssembly plugins in Rust: a plugin is its logic plus one macro.
//!
//! A plugin crate (`crate-type = ["cdylib"]`, built with `--target wasm32-wasip2`) implements
//! the trait of its kind for a type of its own and exports that type with the kind's macro:
//!
//! | kind | trait | macro | world in `wit/plugin.wit` |
//! |---|---|---|---|
//! | tool filter | [`ToolFilter`] | [`export_tool_filter!`] | `tool-filter-plugin` |
//! | routing hook | [`RoutingHook`] | [`export_routing_hook!`] | `routing-hook-plugin` |
//! | configure | [`Configure`] | [`export_configure!`] | `configure-plugin` |
//! | search provider | [`SearchProvider`] | [`export_search_provider!`] | `search-provider-plugin` |
//! | tool provider (a server) | [`ToolProvider`] | [`export_tool_provider!`] | `tool-provider-plugin` |
//!
//! ```no_run
//! use magg_plugin_sdk::{CallResult, Decision, LogLevel, RoutingHook, ToolCall, host};
//!
//! struct Hook;
//!
//! impl RoutingHook for Hook {
//!     fn before_call(call: ToolCall) -> Decision {
//!         if call.tool.ends_with("_delete") {
//!             return Decision::Deny("deleting is off in this session".into());
//!         }
//!         Decision::Proceed
//!     }
//!
//!     fn after_call(call: ToolCall, result: CallResult) -> Option<CallResult> {
//!         if result.is_error && host::setting("log_failures").is_some() {
//!             host::log(LogLevel::Warn, &format!("{} failed", call.tool));
//!         }
//!         None // the result goes on as it is
//!     }
//! }
//!
//! magg_plugin_sdk::export_routing_hook!(Hook);
//! ```
//!
//! The types ([`Tool`], [`ToolCall`], [`CallResult`], [`Decision`], ...) are the WIT package
//! `magg:plugin@0.2.0`'s, generated once here; JSON (arguments, schemas, content) stays text, for
//! the plugin to parse with the JSON library it likes. [`host`] reads the plugin's settings
//! and writes to magg's log; [`http`] makes the GET requests a search provider may make;
//! [`facets`] writes the tags that let magg merge one server found by several providers;
//! [`glob`] matches tool names against `*`/`?` patterns. Each call runs in a fresh instance, so
//! the trait methods take no `self`: a plugin keeps no state between calls.
//!
//! A type that implements a kind's trait implements the `Guest` trait wit-bindgen generates for
//! that kind by a static call the compiler inlines, so the SDK adds no copy or allocation
//! between magg's call and the plugin's method.

#[doc(hidden)]
pub mod bindings;
pub mod facets;
pub mod glob;
pub mod http;

pub use bindings::configure::exports::magg::plugin0_2_0::configure::{SourceFacts, Suggestion};
pub use bindings::imports::magg::plugin0_2_0::types::{
    CallResult, LogLevel, SearchResult, ServerConfig, Tool, ToolCall,
};
pub use bindings::routing_hook::exports::magg::plugin0_2_0::routing_hook::Decision;
pub use bindings::tool_provider::exports::magg::plugin0_2_0::tool_provider::ToolSpec;

/// What magg offers every plugin: its settings and magg's log.
pub mod host {
    pub use crate::LogLevel;
    pub use crate::bindings::imports::magg::plugin0_2_0::host::{Identity, caller, log, setting};
}

/// A tool filter: hides, renames and re-describes tools whenever magg rebuilds its tool list
/// (never per request). Export it with [`export_tool_filter!`].
pub trait ToolFilter {
    /// Returns the tools to expose: any subset of `tools`, with `name` and `description`
    /// changed at will. Tools are matched back by (`server`, `original_name`); a tool returned
    /// that was not given, or given twice, is ignored.
    fn filter(tools: Vec<Tool>) -> Vec<Tool>;
}

impl<T: ToolFilter> bindings::tool_filter::exports::magg::plugin0_2_0::tool_filter::Guest for T {
    #[inline]
    fn filter(tools: Vec<Tool>) -> Vec<Tool> {
        <T as ToolFilter>::filter(tools)
    }
}

/// A routing hook: runs before and after every tools/call to a server's tool. Export it with
/// [`export_routing_hook!`]. Both methods have defaults that change nothing.
pub trait RoutingHook {
    /// Decides about a call before it reaches its server; by default [`Decision::Proceed`].
    fn before_call(_call: ToolCall) -> Decision {
        Decision::Proceed
    }

    /// Sees the result of a call (as made, after any rewrite or reroute) before the client
    /// does; returns a replacement, or `None` (the default) to leave it as it is.
    fn after_call(_call: ToolCall, _result: CallResult) -> Option<CallResult> {
        None
    }
}

impl<T: RoutingHook> bindings::routing_hook::exports::magg::plugin0_2_0::routing_hook::Guest for T {
    #[inline]
    fn before_call(call: ToolCall) -> Decision {
        <T as RoutingHook>::before_call(call)
    }

    #[inline]
    fn after_call(call: ToolCall, result: CallResult) -> Option<CallResult> {
        <T as RoutingHook>::after_call(call, result)
    }
}

/// A configure plugin: suggests a server config for a source, for `magg_smart_configure`.
/// Export it with [`export_configure!`].
pub trait Configure {
    /// A suggestion for this source, or `None` if the plugin does not know it.
    fn suggest(facts: SourceFacts) -> Option<Suggestion>;
}

impl<T: Configure> bindings::configure::exports::magg::plugin0_2_0::configure::Guest for T {
    #[inline]
    fn suggest(facts: SourceFacts) -> Option<Suggestion> {
        <T as Configure>::suggest(facts)
    }
}

/// A search provider: finds MCP servers for `magg_search_servers`, usually with [`http`].
/// Export it with [`export_search_provider!`].
pub trait SearchProvider {
    /// Up to `limit` servers matching `query`, or an error naming what went wrong.
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String>;
}

impl<T: SearchProvider>
    bindings::search_provider::exports::magg::plugin0_2_0::search_provider::Guest for T
{
    #[inline]
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        <T as SearchProvider>::search(query, limit)
    }
}

/// Exports a [`ToolFilter`] type as this component's `tool-filter` (world
/// `tool-filter-plugin`): `magg_plugin_sdk::export_tool_filter!(MyFilter);` once, at the top
/// level of the plugin crate.
#[macro_export]
macro_rules! export_tool_filter {
    ($ty:ident) => {
        $crate::bindings::tool_filter::export!($ty);
    };
}

/// Exports a [`RoutingHook`] type as this component's `routing-hook` (world
/// `routing-hook-plugin`): `magg_plugin_sdk::export_routing_hook!(MyHook);` once, at the top
/// level of the plugin crate.
#[macro_export]
macro_rules! export_routing_hook {
    ($ty:ident) => {
        $crate::bindings::routing_hook::export!($ty);
    };
}

/// Exports a [`Configure`] type as this component's `configure` (world `configure-plugin`):
/// `magg_plugin_sdk::export_configure!(MyConfigure);` once, at the top level of the plugin
/// crate.
#[macro_export]
macro_rules! export_configure {
    ($ty:ident) => {
        $crate::bindings::configure::export!($ty);
    };
}

/// Exports a [`SearchProvider`] type as this component's `search-provider` (world
/// `search-provider-plugin`, which may import `wasi:http`):
/// `magg_plugin_sdk::export_search_provider!(MySearch);` once, at the top level of the plugin
/// crate.
#[macro_export]
macro_rules! export_search_provider {
    ($ty:ident) => {
        $crate::bindings::search_provider::export!($ty);
    };
}

/// A tool provider: a server whose tools run inside magg, mounted by a server entry of magg's
/// config whose source is the component's `.wasm` file. It may make HTTP requests ([`http`])
/// to the hosts the entry grants, and read the directories and environment variables granted
/// (with Rust's `std::fs` and `std::env`). Export it with [`export_tool_provider!`].
pub trait ToolProvider {
    /// The tools it offers; magg asks when it loads the component, not per call.
    fn list_tools() -> Vec<ToolSpec>;

    /// Runs the tool `name` with `arguments` (a JSON object, as text). A failure the model
    /// should see (bad arguments, a refused request) is a result with `is_error` set; see
    /// [`CallResult::text`] and [`CallResult::error`].
    fn call_tool(name: String, arguments: String) -> CallResult;
}

impl<T: ToolProvider> bindings::tool_provider::exports::magg::plugin0_2_0::tool_provider::Guest
    for T
{
    #[inline]
    fn list_tools() -> Vec<ToolSpec> {
        <T as ToolProvider>::list_tools()
    }

    #[inline]
    fn call_tool(name: String, arguments: String) -> CallResult {
        <T as ToolProvider>::call_tool(name, arguments)
    }
}

impl CallResult {
    /// A result of one text block.
    pub fn text(text: &str) -> CallResult {
        CallResult {
            content: text_content(text),
            structured_content: None,
            is_error: false,
        }
    }

    /// An error result of one text block, for the model to read.
    pub fn error(text: &str) -> CallResult {
        CallResult {
            content: text_content(text),
            structured_content: None,
            is_error: true,
        }
    }
}

/// `[{"type":"text","text":…}]` as JSON text.
fn text_content(text: &str) -> String {
    format!(r#"[{{"type":"text","text":{}}}]"#, json_string(text))
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ToolSpec {
    /// A tool with a name, a description and an input JSON Schema (as JSON text).
    pub fn new(name: &str, description: &str, input_schema: &str) -> ToolSpec {
        ToolSpec {
            name: name.to_owned(),
            title: None,
            description: Some(description.to_owned()),
            input_schema: input_schema.to_owned(),
            output_schema: None,
            annotations: None,
        }
    }
}

/// Exports a [`ToolProvider`] type as this component's `tool-provider` (world
/// `tool-provider-plugin`, which may import `wasi:http`):
/// `magg_plugin_sdk::export_tool_provider!(MyTools);` once, at the top level of the crate.
#[macro_export]
macro_rules! export_tool_provider {
    ($ty:ident) => {
        $crate::bindings::tool_provider::export!($ty);
    };
}
