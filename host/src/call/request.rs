//! A tools/call as it arrives, whatever the transport: its params kept as the JSON text the
//! client sent, checked once, so that a call to a stdio backend is passed on as text with only
//! its name (and, where the client asked for progress, its progress token) rewritten.

use indexmap::IndexMap;
use rmcp::{
    ErrorData as McpError,
    model::{CallToolRequestParams, InputResponses, JsonObject, ProgressToken},
};
use serde_json::value::RawValue;

use crate::telemetry::Outgoing;

/// The params of one tools/call.
#[derive(Debug)]
pub struct CallRequest {
    /// The tool's exposed name.
    pub name: String,
    /// The arguments object as sent (never `null`: absent then).
    arguments: Option<Box<RawValue>>,
    /// Every other member of the params (`_meta`, `task`, ...), in the client's order.
    rest: Vec<(String, Box<RawValue>)>,
    /// The client's progress token, when it asked for progress.
    pub progress_token: Option<ProgressToken>,
    /// The trace context the client sent outside the params (rmcp keeps `_meta` apart; HTTP
    /// headers), when tracing is on; the call's span continues it. A `traceparent` in the
    /// params' own `_meta` is read by the call route.
    pub trace_parent: Option<opentelemetry::Context>,
}

impl CallRequest {
    /// Reads a tools/call's params from their JSON text. Params that are not what MCP
    /// describes (no `name`, `arguments` that are not an object) are invalid params.
    pub fn from_text(params: Option<&RawValue>) -> Result<CallRequest, McpError> {
        let Some(params) = params else {
            return Err(invalid(
                "tools/call needs params: {\"name\": <tool name>, \"arguments\": {...}}",
            ));
        };
        let members: IndexMap<String, &RawValue> =
            serde_json::from_str(params.get()).map_err(|_| {
                invalid(format!(
                    "tools/call params must be a JSON object with the tool's `name` and its \
                     `arguments`, not {}",
                    kind_of(params.get())
                ))
            })?;
        let mut name = None;
        let mut arguments = None;
        let mut progress_token = None;
        let mut rest = Vec::with_capacity(members.len());
        for (key, value) in members {
            match key.as_str() {
                "name" => {
                    name = Some(serde_json::from_str::<String>(value.get()).map_err(|_| {
                        invalid(format!(
                            "tools/call `name` must be the tool's name as a string, not {}",
                            kind_of(value.get())
                        ))
                    })?);
                }
                "arguments" if value.get() == "null" => {}
                "arguments" => {
                    if !value.get().starts_with('{') {
                        return Err(invalid(format!(
                            "tools/call `arguments` must be a JSON object of the tool's \
                             parameters (e.g. {{\"text\": \"hi\"}}), not {}",
                            kind_of(value.get())
                        )));
                    }
                    arguments = Some(value.to_owned());
                }
                "_meta" => {
                    progress_token = meta_progress_token(value)?;
                    rest.push((key, value.to_owned()));
                }
                _ => rest.push((key, value.to_owned())),
            }
        }
        let name = name.ok_or_else(|| {
            invalid("tools/call params need `name`: the name of the tool to call, from tools/list")
        })?;
        Ok(CallRequest {
            name,
            arguments,
            rest,
            progress_token,
            trace_parent: None,
        })
    }

    /// Reads the params rmcp has already decoded.
    pub fn from_params(params: &CallToolRequestParams) -> Result<CallRequest, McpError> {
        let text = serde_json::value::to_raw_value(params)
            .map_err(|e| McpError::internal_error(format!("tools/call params: {e}"), None))?;
        CallRequest::from_text(Some(&text))
    }

    /// The arguments' JSON text (`{}` when there are none).
    pub fn arguments_text(&self) -> &str {
        self.arguments.as_deref().map_or("{}", RawValue::get)
    }

    /// The arguments as a JSON object, for magg's own tools and the rmcp path.
    pub fn arguments_object(&self) -> Option<JsonObject> {
        let text = self.arguments.as_deref()?;
        serde_json::from_str(text.get()).ok()
    }

    /// The same call to the tool `name` with `arguments` (as a routing hook rewrote them).
    pub fn rewritten(&self, name: &str, arguments: Option<&JsonObject>) -> CallRequest {
        CallRequest {
            name: name.to_owned(),
            arguments: arguments.and_then(|a| serde_json::value::to_raw_value(a).ok()),
            rest: self.rest.clone(),
            progress_token: self.progress_token.clone(),
            trace_parent: None,
        }
    }

    /// The same call again, carrying the client's answers `responses` to what the backend
    /// asked and the backend's `state` (protocol 2026-07-28's retry of an `input_required`).
    pub fn with_input(&self, responses: &InputResponses, state: Option<&str>) -> CallRequest {
        let mut rest: Vec<(String, Box<RawValue>)> = self
            .rest
            .iter()
            .filter(|(key, _)| key != "inputResponses" && key != "requestState")
            .cloned()
            .collect();
        if let Ok(value) = serde_json::value::to_raw_value(responses) {
            rest.push(("inputResponses".to_owned(), value));
        }
        if let Some(value) = state.and_then(|s| serde_json::value::to_raw_value(s).ok()) {
            rest.push(("requestState".to_owned(), value));
        }
        CallRequest {
            name: self.name.clone(),
            arguments: self.arguments.clone(),
            rest,
            progress_token: self.progress_token.clone(),
            trace_parent: None,
        }
    }

    /// The params' `_meta` as the client sent it (JSON text), if any.
    pub fn meta_text(&self) -> Option<&str> {
        self.rest
            .iter()
            .find(|(key, _)| key == "_meta")
            .map(|(_, value)| value.get())
    }

    /// The params' JSON text for the backend's tool `tool`; with `token`, the request asks for
    /// progress under that token (JSON text) instead of the client's.
    pub fn params_text(&self, tool: &str, token: Option<&str>) -> String {
        self.params_text_traced(tool, token, None)
    }

    /// [`CallRequest::params_text`] with the trace context `trace` in `_meta`, in place of the
    /// one the client sent.
    pub fn params_text_traced(
        &self,
        tool: &str,
        token: Option<&str>,
        trace: Option<&Outgoing>,
    ) -> String {
        let mut out = String::with_capacity(
            tool.len()
                + 32
                + self.arguments_text().len()
                + self
                    .rest
                    .iter()
                    .map(|(k, v)| k.len() + v.get().len() + 4)
                    .sum::<usize>(),
        );
        out.push_str("{\"name\":");
        push_json_string(&mut out, tool);
        if let Some(arguments) = &self.arguments {
            out.push_str(",\"arguments\":");
            out.push_str(arguments.get());
        }
        let mut edit = token.is_some() || trace.is_some();
        for (key, value) in &self.rest {
            out.push(',');
            push_json_string(&mut out, key);
            out.push(':');
            if edit && key == "_meta" {
                out.push_str(&with_members(value, token, trace));
                edit = false;
            } else {
                out.push_str(value.get());
            }
        }
        if edit {
            // No `_meta` in the params (rmcp keeps the client's apart): one of magg's own.
            out.push_str(",\"_meta\":{");
            let mut first = true;
            if let Some(token) = token {
                out.push_str("\"progressToken\":");
                out.push_str(token);
                first = false;
            }
            for (key, value) in trace.into_iter().flat_map(Outgoing::members) {
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_string(&mut out, key);
                out.push(':');
                push_json_string(&mut out, value);
            }
            out.push('}');
        }
        out.push('}');
        out
    }

    /// The params as rmcp's type, for the backend's tool `tool`.
    pub fn to_params(&self, tool: &str) -> Result<CallToolRequestParams, McpError> {
        serde_json::from_str(&self.params_text(tool, None)).map_err(|e| {
            invalid(format!(
                "tools/call params do not have the shape MCP gives them: {e}"
            ))
        })
    }
}

fn invalid(message: impl Into<String>) -> McpError {
    McpError::invalid_params(message.into(), None)
}

/// The progress token in a request's `_meta`, if any; `_meta` must be an object.
fn meta_progress_token(meta: &RawValue) -> Result<Option<ProgressToken>, McpError> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default, rename = "progressToken")]
        progress_token: Option<ProgressToken>,
    }
    serde_json::from_str::<Meta>(meta.get())
        .map(|m| m.progress_token)
        .map_err(|_| {
            invalid(format!(
                "tools/call `_meta` must be an object whose `progressToken`, if any, is a string \
                 or an integer; got {}",
                preview(meta.get())
            ))
        })
}

/// `_meta` with its progress token replaced by `token` (JSON text), and its trace context by
/// `trace`.
fn with_members(meta: &RawValue, token: Option<&str>, trace: Option<&Outgoing>) -> String {
    use serde_json::Value;

    let Ok(mut members) = serde_json::from_str::<IndexMap<String, Box<RawValue>>>(meta.get())
    else {
        return meta.get().to_owned();
    };
    if let Some(token) = token.and_then(|t| RawValue::from_string(t.to_owned()).ok()) {
        members.insert("progressToken".to_owned(), token);
    }
    if let Some(trace) = trace {
        members.shift_remove(crate::telemetry::TRACESTATE);
        for (key, value) in trace.members() {
            if let Ok(value) = serde_json::value::to_raw_value(&Value::from(value)) {
                members.insert(key.to_owned(), value);
            }
        }
    }
    serde_json::to_string(&members).unwrap_or_else(|_| meta.get().to_owned())
}

fn push_json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// What kind of JSON value `text` is, for messages.
fn kind_of(text: &str) -> String {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "an object".to_owned(),
        Some(b'[') => "an array".to_owned(),
        Some(b'"') => format!("the string {}", preview(text)),
        Some(b't' | b'f') => format!("the boolean {text}"),
        Some(b'n') => "null".to_owned(),
        _ => format!("the number {}", preview(text)),
    }
}

fn preview(text: &str) -> String {
    let mut cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    fn read(text: &str) -> Result<CallRequest, McpError> {
        CallRequest::from_text(Some(&raw(text)))
    }

    #[test]
    fn the_text_goes_on_with_only_the_name_rewritten() {
        let request =
            read(r#"{"name":"ev_echo","arguments":{"message":"hi \u00e9"},"_meta":{"x":1}}"#)
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(request.name, "ev_echo");
        assert_eq!(request.progress_token, None);
        assert_eq!(
            request.params_text("echo", None),
            r#"{"name":"echo","arguments":{"message":"hi \u00e9"},"_meta":{"x":1}}"#
        );
    }

    #[test]
    fn the_progress_token_is_swapped_for_the_lanes() {
        let request = read(r#"{"_meta":{"progressToken":7,"k":"v"},"name":"a_b"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            request.progress_token,
            Some(ProgressToken(rmcp::model::NumberOrString::Number(7)))
        );
        assert_eq!(
            request.params_text("b", Some(r#""magg:3""#)),
            r#"{"name":"b","_meta":{"progressToken":"magg:3","k":"v"}}"#
        );
        let without_meta = read(r#"{"name":"a_b"}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            without_meta.params_text("b", Some(r#""magg:4""#)),
            r#"{"name":"b","_meta":{"progressToken":"magg:4"}}"#
        );
    }

    #[test]
    fn the_trace_context_replaces_the_clients_in_meta() {
        let trace = Outgoing {
            traceparent: Some("00-aa-bb-01".to_owned()),
            tracestate: None,
        };
        let request = read(
            r#"{"name":"a_b","arguments":{"x":1},"_meta":{"traceparent":"00-cc-dd-01","tracestate":"k=v","k":1}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            request.params_text_traced("b", None, Some(&trace)),
            r#"{"name":"b","arguments":{"x":1},"_meta":{"traceparent":"00-aa-bb-01","k":1}}"#
        );
        assert_eq!(
            request.meta_text(),
            Some(r#"{"traceparent":"00-cc-dd-01","tracestate":"k=v","k":1}"#)
        );
        let bare = read(r#"{"name":"a_b"}"#).unwrap_or_else(|e| panic!("{e:?}"));
        let with_state = Outgoing {
            tracestate: Some("k=v".to_owned()),
            ..trace.clone()
        };
        assert_eq!(
            bare.params_text_traced("b", Some("5"), Some(&with_state)),
            r#"{"name":"b","_meta":{"progressToken":5,"traceparent":"00-aa-bb-01","tracestate":"k=v"}}"#
        );
        assert_eq!(bare.params_text_traced("b", None, None), r#"{"name":"b"}"#);
    }

    #[test]
    fn malformed_params_are_invalid_params() {
        for bad in [
            r#"{"arguments":{}}"#,
            r#"{"name":5}"#,
            r#"{"name":"t","arguments":[1]}"#,
            r#"{"name":"t","arguments":"x"}"#,
            r#"{"name":"t","_meta":{"progressToken":{}}}"#,
            r#"[1]"#,
        ] {
            let error = read(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"));
            assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{bad}");
        }
        assert!(CallRequest::from_text(None).is_err());
        let null_arguments = read(r#"{"name":"t","arguments":null}"#);
        assert!(null_arguments.is_ok_and(|r| r.params_text("t", None) == r#"{"name":"t"}"#));
    }

    #[test]
    fn a_rewrite_keeps_the_rest() {
        let request = read(r#"{"name":"a","arguments":{"x":1},"_meta":{"m":1}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut arguments = JsonObject::new();
        arguments.insert("y".into(), 2.into());
        assert_eq!(
            request
                .rewritten("b", Some(&arguments))
                .params_text("bb", None),
            r#"{"name":"bb","arguments":{"y":2},"_meta":{"m":1}}"#
        );
        assert_eq!(
            request.rewritten("b", None).params_text("bb", None),
            r#"{"name":"bb","_meta":{"m":1}}"#
        );
    }
}
