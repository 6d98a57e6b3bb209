//! Extension points on the call path: tool filters (run when the catalog is built) and routing
//! hooks (run around every tools/call, including calls made through the `proxy` tool).
//!
//! This is where the WebAssembly plugins plug in. Until plugins are loaded, the filters pass
//! every tool through and the hooks let every call proceed unchanged.

use rmcp::model::{CallToolResult, JsonObject, Tool};

/// A tools/call as the routing hooks see it: the exposed tool name, its server and arguments.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The server that owns the tool (`magg` for magg's own tools).
    pub server: String,
    /// The exposed tool name, as the client called it.
    pub tool: String,
    /// The call's arguments.
    pub arguments: Option<JsonObject>,
}

/// What the routing hooks decided about a call.
#[derive(Debug)]
pub enum Decision {
    /// Go on with this (possibly rewritten) call.
    Proceed(ToolCall),
    /// Do not call the backend; answer with this result.
    Answer(CallToolResult),
    /// Refuse the call, for this reason.
    Deny(String),
}

/// The loaded routing hooks and tool filters.
#[derive(Debug, Default)]
pub struct Hooks {}

impl Hooks {
    /// Runs the tool filters over the merged tool list.
    pub fn filter_tools(&self, tools: Vec<Tool>) -> Vec<Tool> {
        tools
    }

    /// Runs the before-call routing hooks.
    pub fn before_call(&self, call: ToolCall) -> Decision {
        Decision::Proceed(call)
    }

    /// Runs the after-call routing hooks over a result.
    pub fn after_call(&self, _call: &ToolCall, result: CallToolResult) -> CallToolResult {
        result
    }

    /// Whether any routing hook is loaded (lets the call path skip building a [`ToolCall`]).
    pub fn has_routing_hooks(&self) -> bool {
        false
    }
}
