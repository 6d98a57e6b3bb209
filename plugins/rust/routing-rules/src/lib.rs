//! `routing-rules`: denies, rewrites, reroutes or answers tool calls, and prefixes results,
//! from rules in its settings (world `routing-hook-plugin`).
//!
//! Settings (`plugins.routing-rules.settings` in magg's config), both optional:
//!
//! - `rules`: a JSON array of rules for `before-call`; the first rule whose `tool` glob matches
//!   the called (exposed) tool name applies, and with none the call proceeds:
//!   - `{"tool": "<glob>", "action": "deny", "reason": "..."}` refuses the call (the reason
//!     defaults to `denied by routing-rules`);
//!   - `{"tool": "<glob>", "action": "rewrite", "set": {...}}` merges the keys of `set` into the
//!     call's arguments (top level; a key set to `null` is set to `null`, not removed);
//!   - `{"tool": "<glob>", "action": "reroute", "to": "<exposed tool name>"}` calls that tool
//!     instead with the same arguments (an optional `"server"` names its server; without it the
//!     rerouted call carries the original call's server and magg resolves `to` by name);
//!   - `{"tool": "<glob>", "action": "answer", "text": "...", "is_error": false}` answers the
//!     call with one text content block, without calling any server.
//! - `after`: a JSON array of `{"tool": "<glob>", "prepend": "text"}`; in `after-call` the first
//!   entry whose glob matches puts `prepend` in front of the text of every `text` content block
//!   of the result (other blocks are kept byte for byte, other fields untouched); with none
//!   the result is left as it is.
//!
//! Globs use `*` (any run of characters) and `?` (one character). Every call runs in a fresh
//! instance, so the settings are parsed on every call; without settings the hooks return at
//! once and never look at the arguments, and the arguments are only parsed for a `rewrite`.
//! Invalid settings are logged as errors and the call (or result) passes unchanged.

use magg_plugin_sdk::host::{self, LogLevel};
use magg_plugin_sdk::{CallResult, Decision, RoutingHook, ToolCall, glob};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

struct RoutingRules;

impl RoutingHook for RoutingRules {
    fn before_call(call: ToolCall) -> Decision {
        let Some(text) = host::setting("rules").filter(|t| !t.trim().is_empty()) else {
            return Decision::Proceed;
        };
        match before(&text, call) {
            Ok(decision) => decision,
            Err(message) => {
                host::log(
                    LogLevel::Error,
                    &format!("{message}; the call proceeds unchanged"),
                );
                Decision::Proceed
            }
        }
    }

    fn after_call(call: ToolCall, result: CallResult) -> Option<CallResult> {
        let text = host::setting("after").filter(|t| !t.trim().is_empty())?;
        match after(&text, &call, result) {
            Ok(replacement) => replacement,
            Err(message) => {
                host::log(
                    LogLevel::Error,
                    &format!("{message}; the result is left as it is"),
                );
                None
            }
        }
    }
}

magg_plugin_sdk::export_routing_hook!(RoutingRules);

/// What `before-call` decides for `call` under the rules in `text`.
fn before(text: &str, call: ToolCall) -> Result<Decision, String> {
    let rules = rules_array("rules", text)?;
    for (i, rule) in rules.iter().enumerate() {
        let rule = rule
            .as_object()
            .ok_or_else(|| format!("setting `rules`: rule {i} is not an object"))?;
        let pattern = str_field(rule, "tool")
            .ok_or_else(|| format!("setting `rules`: rule {i} has no `tool`"))?;
        if !glob::matches(pattern, &call.tool) {
            continue;
        }
        let action = str_field(rule, "action").unwrap_or_default();
        return match action {
            "deny" => Ok(Decision::Deny(
                str_field(rule, "reason")
                    .unwrap_or("denied by routing-rules")
                    .to_string(),
            )),
            "rewrite" => {
                let set = match rule.get("set") {
                    Some(Value::Object(set)) => set,
                    _ => {
                        return Err(format!(
                            "setting `rules`: rule {i} (rewrite) needs an object `set`"
                        ));
                    }
                };
                let mut arguments = parse_arguments(&call.arguments)?;
                for (key, value) in set {
                    arguments.insert(key.clone(), value.clone());
                }
                Ok(Decision::Rewrite(Value::Object(arguments).to_string()))
            }
            "reroute" => {
                let to = str_field(rule, "to")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        format!("setting `rules`: rule {i} (reroute) needs a string `to`")
                    })?;
                let server = str_field(rule, "server").map_or(call.server, str::to_string);
                Ok(Decision::Reroute(ToolCall {
                    server,
                    tool: to.to_string(),
                    arguments: call.arguments,
                }))
            }
            "answer" => {
                let text = str_field(rule, "text").ok_or_else(|| {
                    format!("setting `rules`: rule {i} (answer) needs a string `text`")
                })?;
                let content = serde_json::json!([{ "type": "text", "text": text }]).to_string();
                let is_error = rule
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Ok(Decision::Answer(CallResult {
                    content,
                    structured_content: None,
                    is_error,
                }))
            }
            other => Err(format!(
                "setting `rules`: rule {i} has unknown action `{other}` (use deny, rewrite, reroute or answer)"
            )),
        };
    }
    Ok(Decision::Proceed)
}

/// What `after-call` returns for `call` under the `after` entries in `text`.
fn after(text: &str, call: &ToolCall, result: CallResult) -> Result<Option<CallResult>, String> {
    let entries = rules_array("after", text)?;
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("setting `after`: entry {i} is not an object"))?;
        let pattern = str_field(entry, "tool")
            .ok_or_else(|| format!("setting `after`: entry {i} has no `tool`"))?;
        if !glob::matches(pattern, &call.tool) {
            continue;
        }
        let prepend = str_field(entry, "prepend")
            .ok_or_else(|| format!("setting `after`: entry {i} needs a string `prepend`"))?;
        let content = prepend_text(&result.content, prepend).map_err(|e| {
            format!(
                "the result of `{}` has content that is not a JSON array: {e}",
                call.tool
            )
        })?;
        return Ok(Some(CallResult { content, ..result }));
    }
    Ok(None)
}

/// Puts `prepend` in front of the text of every text block of `content` (a JSON array);
/// the other blocks are copied as they are.
fn prepend_text(content: &str, prepend: &str) -> Result<String, serde_json::Error> {
    let blocks: Vec<&RawValue> = serde_json::from_str(content)?;
    let mut out = String::with_capacity(content.len() + blocks.len() * prepend.len() + 2);
    out.push('[');
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match serde_json::from_str::<Map<String, Value>>(block.get()) {
            Ok(mut map)
                if map.get("type").and_then(Value::as_str) == Some("text")
                    && map.get("text").is_some_and(Value::is_string) =>
            {
                if let Some(Value::String(text)) = map.get_mut("text") {
                    text.insert_str(0, prepend);
                }
                out.push_str(&Value::Object(map).to_string());
            }
            _ => out.push_str(block.get()),
        }
    }
    out.push(']');
    Ok(out)
}

/// The call's arguments as an object (empty for empty text or `null`).
fn parse_arguments(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err("the call's arguments are not a JSON object".to_string()),
        Err(e) => Err(format!("the call's arguments are not valid JSON: {e}")),
    }
}

fn rules_array(key: &str, text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(format!("setting `{key}` must be a JSON array")),
        Err(e) => Err(format!("setting `{key}` is not valid JSON: {e}")),
    }
}

fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tool: &str, arguments: &str) -> ToolCall {
        ToolCall {
            server: "time".into(),
            tool: tool.into(),
            arguments: arguments.into(),
        }
    }

    const RULES: &str = r#"[
        {"tool": "time_secret*", "action": "deny", "reason": "no secrets"},
        {"tool": "time_get_time", "action": "rewrite", "set": {"timezone": "UTC", "n": 1}},
        {"tool": "old_*", "action": "reroute", "to": "new_tool"},
        {"tool": "*_echo", "action": "answer", "text": "hi"},
        {"tool": "*", "action": "deny"}
    ]"#;

    #[test]
    fn before_rules() {
        match before(RULES, call("time_secret_x", "{}")).unwrap() {
            Decision::Deny(reason) => assert_eq!(reason, "no secrets"),
            other => panic!("{other:?}"),
        }
        match before(
            RULES,
            call(
                "time_get_time",
                r#"{"timezone": "Europe/Paris", "keep": true}"#,
            ),
        )
        .unwrap()
        {
            Decision::Rewrite(args) => {
                let args: Value = serde_json::from_str(&args).unwrap();
                assert_eq!(
                    args,
                    serde_json::json!({"timezone": "UTC", "n": 1, "keep": true})
                );
            }
            other => panic!("{other:?}"),
        }
        match before(RULES, call("time_get_time", "")).unwrap() {
            Decision::Rewrite(args) => assert_eq!(args, r#"{"timezone":"UTC","n":1}"#),
            other => panic!("{other:?}"),
        }
        match before(RULES, call("old_thing", r#"{"a":1}"#)).unwrap() {
            Decision::Reroute(c) => {
                assert_eq!(
                    (c.server.as_str(), c.tool.as_str(), c.arguments.as_str()),
                    ("time", "new_tool", r#"{"a":1}"#)
                )
            }
            other => panic!("{other:?}"),
        }
        match before(RULES, call("x_echo", "{}")).unwrap() {
            Decision::Answer(r) => {
                assert_eq!(r.content, r#"[{"type":"text","text":"hi"}]"#);
                assert!(!r.is_error);
            }
            other => panic!("{other:?}"),
        }
        match before(RULES, call("other", "{}")).unwrap() {
            Decision::Deny(reason) => assert_eq!(reason, "denied by routing-rules"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            before("[]", call("x", "{}")).unwrap(),
            Decision::Proceed
        ));
        assert!(matches!(
            before(r#"[{"tool":"a","action":"deny"}]"#, call("b", "not json")).unwrap(),
            Decision::Proceed
        ));
    }

    #[test]
    fn bad_rules() {
        assert!(before("{}", call("x", "{}")).is_err());
        assert!(before(r#"[{"tool":"x","action":"explode"}]"#, call("x", "{}")).is_err());
        assert!(
            before(
                r#"[{"tool":"x","action":"rewrite","set":1}]"#,
                call("x", "{}")
            )
            .is_err()
        );
        assert!(
            before(
                r#"[{"tool":"x","action":"rewrite","set":{}}]"#,
                call("x", "[1]")
            )
            .is_err()
        );
        assert!(before(r#"[{"action":"deny"}]"#, call("x", "{}")).is_err());
    }

    #[test]
    fn after_prepends() {
        let result = CallResult {
            content: r#"[{"type":"text","text":"12:00","annotations":{"priority":1}}, {"type":"image","data":"AA==", "mimeType":"image/png"}]"#.into(),
            structured_content: Some(r#"{"time":"12:00"}"#.into()),
            is_error: false,
        };
        let after_rules = r#"[{"tool": "time_*", "prepend": "[time] "}]"#;
        let out = after(after_rules, &call("time_get_time", "{}"), result.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            out.content,
            r#"[{"type":"text","text":"[time] 12:00","annotations":{"priority":1}},{"type":"image","data":"AA==", "mimeType":"image/png"}]"#
        );
        assert_eq!(out.structured_content, result.structured_content);
        assert!(
            after(after_rules, &call("fs_read", "{}"), result.clone())
                .unwrap()
                .is_none()
        );
        let bad = CallResult {
            content: "not a json array".into(),
            ..result
        };
        assert!(after(after_rules, &call("time_x", "{}"), bad).is_err());
    }
}
