//! What a tools/call comes back with, in the form it has: a backend's result as the JSON text
//! it sent (passed on untouched), or a typed result (magg's own tools, rmcp backends, routing
//! hooks). Each frontend writes it its own way: the stdio frontend as a line, the rmcp
//! frontends as rmcp's response type.

use indexmap::IndexMap;
use rmcp::{
    ErrorData as McpError,
    model::{CallToolResponse, CallToolResult, InputRequiredResult, ServerResult},
};
use serde_json::value::RawValue;

use crate::{plugins::HookResult, telemetry::Outcome};

/// The outcome of one tools/call.
#[derive(Debug)]
pub enum Reply {
    /// The `result` object a backend sent, as JSON text.
    Text(Box<RawValue>),
    /// A typed response.
    Typed(CallToolResponse),
    /// A protocol error for the client.
    Error(McpError),
    /// The client cancelled the call: MCP has no response for it.
    Cancelled,
}

impl Reply {
    /// A complete tool result.
    pub fn complete(result: CallToolResult) -> Reply {
        Reply::Typed(CallToolResponse::Complete(result))
    }

    /// What the backend asked, when it answered `input_required` (protocol 2026-07-28).
    pub fn input_required(&self) -> Option<InputRequiredResult> {
        match self {
            Reply::Typed(CallToolResponse::InputRequired(asked)) => Some(asked.clone()),
            Reply::Text(text) if text.get().contains("\"input_required\"") => {
                match parse_result(text) {
                    Ok(CallToolResponse::InputRequired(asked)) => Some(asked),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// How the call ended, for its span, the call log and the metrics. A backend's result text
    /// is scanned for `"isError": true`, not parsed.
    pub fn outcome(&self) -> Outcome {
        let is_error = match self {
            Reply::Text(text) => is_error_text(text.get()),
            Reply::Typed(CallToolResponse::Complete(result)) => result.is_error == Some(true),
            Reply::Typed(_) => false,
            Reply::Error(error) => return Outcome::Error(error.code.0),
            Reply::Cancelled => return Outcome::Cancelled,
        };
        if is_error {
            Outcome::ToolError
        } else {
            Outcome::Ok
        }
    }

    /// The reply as rmcp's response type.
    pub fn into_response(self) -> Result<CallToolResponse, McpError> {
        match self {
            Reply::Text(text) => parse_result(&text),
            Reply::Typed(response) => Ok(response),
            Reply::Error(error) => Err(error),
            Reply::Cancelled => Err(McpError::internal_error(
                "request cancelled by the client",
                None,
            )),
        }
    }

    /// The JSON-RPC response line for the request `id`; `None` for a cancelled call. For a
    /// client of the session era (`legacy`), a result magg made has no `resultType`, a field
    /// that protocol 2026-07-28 added.
    pub fn into_line(self, id: &RawValue, legacy: bool) -> Option<String> {
        Some(match self {
            Reply::Text(text) => result_line(id, text.get()),
            Reply::Typed(response) => {
                let mut result = ServerResult::from(response);
                if legacy {
                    result.strip_result_type_for_legacy_peer();
                }
                let result = serde_json::to_string(&result)
                    .unwrap_or_else(|e| serde_json::json!({ "content": [{"type": "text", "text": format!("magg could not encode the result: {e}")}], "isError": true }).to_string());
                result_line(id, &result)
            }
            Reply::Error(error) => error_line(id, &error),
            Reply::Cancelled => return None,
        })
    }
}

/// Whether a backend's `result` text says `"isError": true`. A cheap scan, not a parse: the
/// key cannot appear unescaped inside a string, so a match is a member of the result (or,
/// rarely, of an object nested in it).
pub fn is_error_text(result: &str) -> bool {
    const KEY: &str = "\"isError\"";
    let mut rest = result;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        let value = rest.trim_start().strip_prefix(':').map(str::trim_start);
        if value.is_some_and(|v| v.starts_with("true")) {
            return true;
        }
    }
    false
}

/// A JSON-RPC response line with `result` (JSON text) for the request `id`.
pub fn result_line(id: &RawValue, result: &str) -> String {
    let id = id.get();
    let mut line = String::with_capacity(result.len() + id.len() + 36);
    line.push_str(r#"{"jsonrpc":"2.0","id":"#);
    line.push_str(id);
    line.push_str(r#","result":"#);
    line.push_str(result);
    line.push('}');
    line
}

/// A JSON-RPC error response line for the request `id` (`null` when it has none).
pub fn error_line(id: &RawValue, error: &McpError) -> String {
    let error = serde_json::to_string(error)
        .unwrap_or_else(|_| r#"{"code":-32603,"message":"internal error"}"#.to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{},"error":{error}}}"#, id.get())
}

/// A backend's `result` text as rmcp's response type, by its `resultType`.
fn parse_result(text: &RawValue) -> Result<CallToolResponse, McpError> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(default, rename = "resultType", borrow)]
        result_type: Option<&'a str>,
    }
    let bad = |e: serde_json::Error| {
        McpError::internal_error(
            format!("the server's tools/call result is not a tool result MCP describes: {e}"),
            None,
        )
    };
    let kind: Kind<'_> = serde_json::from_str(text.get()).map_err(bad)?;
    match kind.result_type {
        Some("input_required") => Ok(CallToolResponse::InputRequired(
            serde_json::from_str(text.get()).map_err(bad)?,
        )),
        Some("task") => Ok(CallToolResponse::Task(
            serde_json::from_str(text.get()).map_err(bad)?,
        )),
        _ => Ok(CallToolResponse::Complete(
            serde_json::from_str(text.get()).map_err(bad)?,
        )),
    }
}

/// A backend's `result` object as text: the parts routing hooks see, and the rest kept as it
/// was.
pub struct ResultText<'a> {
    members: IndexMap<String, &'a RawValue>,
}

impl<'a> ResultText<'a> {
    /// Reads a result object; `None` if it is not an object.
    pub fn read(result: &'a RawValue) -> Option<ResultText<'a>> {
        serde_json::from_str(result.get())
            .ok()
            .map(|members| ResultText { members })
    }

    /// The result in the WIT's shape.
    pub fn wit(&self) -> HookResult {
        HookResult {
            content: self
                .members
                .get("content")
                .map_or_else(|| "[]".to_owned(), |c| c.get().to_owned()),
            structured_content: self
                .members
                .get("structuredContent")
                .map(|c| c.get().to_owned())
                .filter(|c| c != "null"),
            is_error: self
                .members
                .get("isError")
                .is_some_and(|e| e.get() == "true"),
        }
    }

    /// The result with a hook's replacement of what hooks see; the rest (`_meta`, ...) kept.
    pub fn replaced(&self, next: &HookResult) -> Result<Box<RawValue>, String> {
        let content = RawValue::from_string(next.content.clone())
            .map_err(|e| format!("its content is not JSON ({e})"))?;
        let structured = match &next.structured_content {
            Some(text) => Some(
                RawValue::from_string(text.clone())
                    .map_err(|e| format!("its structured content is not JSON ({e})"))?,
            ),
            None => None,
        };
        let is_error = RawValue::from_string(next.is_error.to_string())
            .map_err(|e| format!("isError: {e}"))?;
        let mut members: IndexMap<&str, &RawValue> =
            self.members.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        members.insert("content", &content);
        match &structured {
            Some(value) => {
                members.insert("structuredContent", value);
            }
            None => {
                members.shift_remove("structuredContent");
            }
        }
        members.insert("isError", &is_error);
        serde_json::value::to_raw_value(&members).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    #[test]
    fn an_error_result_is_told_from_its_text() {
        assert!(is_error_text(r#"{"content":[],"isError":true}"#));
        assert!(is_error_text(r#"{"isError" : true, "content": []}"#));
        assert!(!is_error_text(r#"{"content":[],"isError":false}"#));
        assert!(!is_error_text(r#"{"content":[]}"#));
        // The words inside a text are escaped, so they are not the member.
        assert!(!is_error_text(
            r#"{"content":[{"type":"text","text":"\"isError\":true"}]}"#
        ));
        assert!(is_error_text(
            r#"{"content":[{"type":"text","text":"\"isError\":true"}],"isError":true}"#
        ));
    }

    #[test]
    fn a_backend_result_goes_back_as_sent_under_the_clients_id() {
        let result = r#"{"content":[{"type":"text","text":"x"}],"_meta":{"k":1}}"#;
        assert_eq!(
            Reply::Text(raw(result)).into_line(&raw(r#""a-1""#), true),
            Some(format!(
                r#"{{"jsonrpc":"2.0","id":"a-1","result":{result}}}"#
            ))
        );
        assert_eq!(Reply::Cancelled.into_line(&raw("1"), true), None);
        let error = Reply::Error(McpError::invalid_params("bad", None)).into_line(&raw("2"), true);
        assert!(error.is_some_and(|l| l.starts_with(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32602"#)));
    }

    #[test]
    fn a_result_magg_made_has_a_result_type_only_for_a_stateless_client() {
        let made = || Reply::complete(crate::mcp::error_result("no"));
        let legacy = made().into_line(&raw("3"), true).unwrap_or_default();
        assert!(!legacy.contains("resultType"), "{legacy}");
        assert!(legacy.contains(r#""isError":true"#), "{legacy}");
        let modern = made().into_line(&raw("3"), false).unwrap_or_default();
        assert!(modern.contains(r#""resultType":"complete""#), "{modern}");
    }

    #[test]
    fn text_results_become_typed_by_their_result_type() {
        let complete = Reply::Text(raw(r#"{"content":[{"type":"text","text":"x"}]}"#));
        assert!(matches!(
            complete.into_response(),
            Ok(CallToolResponse::Complete(r)) if r.content.len() == 1
        ));
        let not_a_result = Reply::Text(raw(r#"{"content":5}"#));
        assert!(not_a_result.into_response().is_err());
    }

    #[test]
    fn a_hook_replacement_keeps_what_hooks_do_not_see() {
        let text = raw(r#"{"content":[],"structuredContent":{"a":1},"_meta":{"m":true}}"#);
        let read = ResultText::read(&text);
        let Some(read) = read else {
            panic!("an object result reads")
        };
        assert_eq!(read.wit().structured_content.as_deref(), Some(r#"{"a":1}"#));
        let next = HookResult {
            content: r#"[{"type":"text","text":"y"}]"#.to_owned(),
            structured_content: None,
            is_error: true,
        };
        assert_eq!(
            read.replaced(&next).map(|r| r.get().to_owned()),
            Ok(
                r#"{"content":[{"type":"text","text":"y"}],"_meta":{"m":true},"isError":true}"#
                    .to_owned()
            )
        );
        let broken = HookResult {
            content: "[".to_owned(),
            structured_content: None,
            is_error: false,
        };
        assert!(read.replaced(&broken).is_err());
    }
}
