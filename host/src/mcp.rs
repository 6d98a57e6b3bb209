//! MCP's rules and shapes that every layer of magg uses, defined once: the tool-name rule, the
//! server name magg's own tools carry, tool error results, which lists changed, and a tool
//! definition held as the JSON text it is sent as ([`ToolText`]); and an rmcp transport made of
//! two channels ([`channel`]).
//!
//! This module is at the bottom: it names no other module of the crate.

pub mod channel;

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Map, Value};

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

/// A tool definition as the JSON it is listed as, with its name apart, so that a tool is held
/// once, in about the bytes it is sent as, and can be listed under another name without
/// being written again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolText {
    name: Arc<str>,
    /// The object's other members as JSON text (`"description":"…","inputSchema":{…}`),
    /// shared by every listing of the tool under any name.
    body: Arc<str>,
}

impl ToolText {
    /// The tool as text.
    pub fn new(tool: &Tool) -> ToolText {
        let mut members = match serde_json::to_value(tool) {
            Ok(Value::Object(members)) => members,
            _ => Map::new(),
        };
        members.shift_remove("name");
        ToolText {
            name: Arc::from(tool.name.as_ref()),
            body: Arc::from(members_text(&members)),
        }
    }

    /// The tool from its JSON object as a server listed it: its members are kept as the text
    /// they came as, in their order.
    pub fn from_json(json: &str) -> Result<ToolText, String> {
        let Members(members) =
            serde_json::from_str(json).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut name = None;
        let mut body = String::with_capacity(json.len());
        for (key, value) in &members {
            if key == "name" {
                name = serde_json::from_str::<String>(value.get()).ok();
                continue;
            }
            if !body.is_empty() {
                body.push(',');
            }
            body.push_str(&serde_json::to_string(key).map_err(|e| e.to_string())?);
            body.push(':');
            body.push_str(value.get());
        }
        let name = name.ok_or_else(|| {
            let mut head: String = json.chars().take(80).collect();
            if head.len() < json.len() {
                head.push('…');
            }
            format!("it has no string `name`: {head}")
        })?;
        Ok(ToolText {
            name: Arc::from(name),
            body: Arc::from(body),
        })
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The same tool under the name `name`.
    pub fn renamed(&self, name: &str) -> ToolText {
        ToolText {
            name: Arc::from(name),
            body: self.body.clone(),
        }
    }

    /// About how long the tool's JSON object is (exactly, unless its name needs escapes).
    pub fn json_len(&self) -> usize {
        self.name.len() + self.body.len() + 12
    }

    /// Appends the tool's JSON object to `out`.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"name\":");
        if self
            .name
            .bytes()
            .all(|b| b >= 0x20 && b != b'"' && b != b'\\')
        {
            out.push('"');
            out.push_str(&self.name);
            out.push('"');
        } else {
            match serde_json::to_string(&*self.name) {
                Ok(name) => out.push_str(&name),
                Err(_) => out.push_str("\"\""),
            }
        }
        if !self.body.is_empty() {
            out.push(',');
            out.push_str(&self.body);
        }
        out.push('}');
    }

    /// The tool's JSON object as text.
    pub fn json(&self) -> String {
        let mut out = String::with_capacity(self.json_len());
        self.write_json(&mut out);
        out
    }

    /// The tool as rmcp's type.
    pub fn tool(&self) -> Result<Tool, serde_json::Error> {
        serde_json::from_str(&self.json())
    }

    /// The tool's members other than its name.
    fn members(&self) -> JsonObject {
        serde_json::from_str(&format!("{{{}}}", self.body)).unwrap_or_default()
    }

    /// The tool's description, if it has one.
    pub fn description(&self) -> Option<String> {
        match self.members().remove("description") {
            Some(Value::String(description)) => Some(description),
            _ => None,
        }
    }

    /// The tool's input schema as JSON text (`{}` if it has none).
    pub fn input_schema(&self) -> String {
        self.members()
            .get("inputSchema")
            .map_or_else(|| "{}".to_owned(), Value::to_string)
    }

    /// The same tool with `description` (none: without one).
    pub fn with_description(&self, description: Option<&str>) -> ToolText {
        let mut members = self.members();
        match description {
            Some(d) => {
                members.insert("description".to_owned(), Value::String(d.to_owned()));
            }
            None => {
                members.shift_remove("description");
            }
        }
        ToolText {
            name: self.name.clone(),
            body: Arc::from(members_text(&members)),
        }
    }
}

/// A JSON object's members, in order, each value as its text.
struct Members<'a>(Vec<(std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// An object's members as JSON text, without the braces.
fn members_text(members: &JsonObject) -> String {
    let text = serde_json::to_string(members).unwrap_or_else(|_| "{}".to_owned());
    text.strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Tool {
        let schema =
            serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}});
        let schema = match schema {
            Value::Object(schema) => schema,
            _ => JsonObject::new(),
        };
        Tool::new("echo", "Say it back", Arc::new(schema))
    }

    #[test]
    fn a_tool_as_text_lists_under_any_name_and_reads_back() {
        let text = ToolText::new(&echo());
        assert_eq!(text.name(), "echo");
        let renamed = text.renamed("tb_echo");
        assert_eq!(
            renamed.json(),
            r#"{"name":"tb_echo","description":"Say it back","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}"#
        );
        let back = renamed.tool().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.name, "tb_echo");
        assert_eq!(back.input_schema, echo().input_schema);
        assert_eq!(text.description().as_deref(), Some("Say it back"));
        assert_eq!(
            text.input_schema(),
            r#"{"type":"object","properties":{"text":{"type":"string"}}}"#
        );
        let quiet = text.with_description(None);
        assert_eq!(quiet.description(), None);
        assert_eq!(quiet.input_schema(), text.input_schema());
    }

    #[test]
    fn a_listed_tool_keeps_its_members_as_they_came() {
        let json = r#"{"description": "Say \"it\" back", "name": "echo", "inputSchema": {"type":"object"}, "x-extra": [1, 2]}"#;
        let text = ToolText::from_json(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.name(), "echo");
        assert_eq!(
            text.json(),
            r#"{"name":"echo","description":"Say \"it\" back","inputSchema":{"type":"object"},"x-extra":[1, 2]}"#
        );
        assert_eq!(text.description().as_deref(), Some("Say \"it\" back"));
        let unnamed = ToolText::from_json(r#"{"description":"no name"}"#);
        assert!(unnamed.is_err_and(|e| e.contains("no string `name`")));
        assert!(ToolText::from_json("[1]").is_err());
    }

    #[test]
    fn a_name_that_needs_escapes_is_written_as_json() {
        let text = ToolText::new(&echo()).renamed("say \"hi\"\\now");
        let value: Value = serde_json::from_str(&text.json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["name"], "say \"hi\"\\now");
        assert_eq!(
            text.json().len(),
            text.json_len() + 3,
            "escapes: two quotes, a backslash"
        );
    }

    #[test]
    fn the_tool_name_rule() {
        assert!(is_valid_tool_name("time_get-current.time"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name("read file"));
        assert!(!is_valid_tool_name(&"x".repeat(MAX_TOOL_NAME + 1)));
        assert!(is_valid_tool_name(&"x".repeat(MAX_TOOL_NAME)));
    }
}
