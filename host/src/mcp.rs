//! MCP's rules and shapes that every layer of magg uses, defined once: the tool-name rule, the
//! server name magg's own tools carry, tool error results, and which lists changed.
//!
//! This module is at the bottom: it names no other module of the crate.

use rmcp::model::{CallToolResult, ContentBlock};

/// The longest tool name MCP allows.
pub const MAX_TOOL_NAME: usize = 64;

/// The server name magg's own tools carry wherever a tool is paired with its server (tool
/// filters' input, routing hooks' calls, `magg_status`).
pub const OWN_SERVER: &str = "magg";

/// Whether `c` may appear in an MCP tool name (`A-Z a-z 0-9 _ . -`).
pub fn is_tool_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `name` follows MCP's tool name rule: 1 to [`MAX_TOOL_NAME`] characters, each
/// [`is_tool_name_char`].
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOOL_NAME && name.chars().all(is_tool_name_char)
}

/// A tool result with `isError: true` and one text block: how a failure the model should read
/// (a backend that is down, a denied call) is told, rather than as a protocol error.
pub fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Which kinds of list differ between two catalog snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListChanges {
    /// The tool list changed.
    pub tools: bool,
    /// The prompt list changed.
    pub prompts: bool,
    /// The resource or resource-template list changed.
    pub resources: bool,
}

impl ListChanges {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.tools || self.prompts || self.resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_name_rule() {
        assert!(is_valid_tool_name("time_get-current.time"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name("read file"));
        assert!(!is_valid_tool_name(&"x".repeat(MAX_TOOL_NAME + 1)));
        assert!(is_valid_tool_name(&"x".repeat(MAX_TOOL_NAME)));
    }
}
