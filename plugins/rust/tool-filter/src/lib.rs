//! `tool-filter`: hides, keeps, renames and re-describes tools from its settings
//! (world `tool-filter-plugin`).
//!
//! Settings (`plugins.tool-filter.settings` in magg's config), all optional:
//!
//! - `hide`: a JSON array of glob patterns; a tool that matches any of them is hidden.
//! - `only`: a JSON array of glob patterns; when set, only tools that match one of them are kept.
//! - `rename`: a JSON object mapping an exposed tool name to a new name.
//! - `describe`: a JSON object mapping an exposed tool name to a new description (a string, or
//!   `null` to drop the description).
//!
//! A pattern matches the tool's exposed `name`, or `server/original-name` when the pattern
//! contains a `/`; `*` matches any run of characters and `?` one character. `hide` and `only`
//! also take a single pattern as a plain string. `rename` and `describe` are keyed by the
//! exposed name the tool arrives with (before any renaming), exactly, not by pattern.
//! `hide` wins over `only`.
//!
//! With no settings every tool passes unchanged. If a setting is not valid, the plugin logs an
//! error and passes every tool through unchanged (it filters nothing rather than guess).

use std::collections::HashMap;

use magg_plugin_sdk::host::{self, LogLevel};
use magg_plugin_sdk::{Tool, glob};
use serde_json::Value;

struct ToolFilter;

impl magg_plugin_sdk::ToolFilter for ToolFilter {
    fn filter(tools: Vec<Tool>) -> Vec<Tool> {
        match Rules::from_settings(host::setting) {
            Ok(Some(rules)) => rules.apply(tools),
            Ok(None) => tools,
            Err(message) => {
                host::log(
                    LogLevel::Error,
                    &format!("{message}; passing every tool through unchanged"),
                );
                tools
            }
        }
    }
}

magg_plugin_sdk::export_tool_filter!(ToolFilter);

/// The parsed settings.
#[derive(Debug, Default)]
struct Rules {
    hide: Vec<String>,
    only: Option<Vec<String>>,
    rename: HashMap<String, String>,
    describe: HashMap<String, Option<String>>,
}

impl Rules {
    /// Reads the settings; `Ok(None)` when none is set.
    fn from_settings(setting: impl Fn(&str) -> Option<String>) -> Result<Option<Rules>, String> {
        let get = |key: &str| setting(key).filter(|v| !v.trim().is_empty());
        let (hide, only, rename, describe) =
            (get("hide"), get("only"), get("rename"), get("describe"));
        if hide.is_none() && only.is_none() && rename.is_none() && describe.is_none() {
            return Ok(None);
        }
        let mut rules = Rules::default();
        if let Some(text) = hide {
            rules.hide = patterns("hide", &text)?;
        }
        if let Some(text) = only {
            rules.only = Some(patterns("only", &text)?);
        }
        if let Some(text) = rename {
            for (from, to) in object("rename", &text)? {
                match to {
                    Value::String(to) if !to.is_empty() => {
                        rules.rename.insert(from, to);
                    }
                    _ => {
                        return Err(format!(
                            "setting `rename`: the new name for `{from}` must be a non-empty string"
                        ));
                    }
                }
            }
        }
        if let Some(text) = describe {
            for (name, description) in object("describe", &text)? {
                match description {
                    Value::String(d) => rules.describe.insert(name, Some(d)),
                    Value::Null => rules.describe.insert(name, None),
                    _ => {
                        return Err(format!(
                            "setting `describe`: the description for `{name}` must be a string or null"
                        ));
                    }
                };
            }
        }
        Ok(Some(rules))
    }

    fn apply(&self, tools: Vec<Tool>) -> Vec<Tool> {
        tools
            .into_iter()
            .filter(|tool| {
                !self.hide.iter().any(|p| matches(p, tool))
                    && self
                        .only
                        .as_ref()
                        .is_none_or(|only| only.iter().any(|p| matches(p, tool)))
            })
            .map(|mut tool| {
                if let Some(description) = self.describe.get(&tool.name) {
                    tool.description = description.clone();
                }
                if let Some(name) = self.rename.get(&tool.name) {
                    tool.name = name.clone();
                }
                tool
            })
            .collect()
    }
}

/// Whether `pattern` matches `tool` (see the module docs).
fn matches(pattern: &str, tool: &Tool) -> bool {
    if pattern.contains('/') {
        glob::matches(pattern, &format!("{}/{}", tool.server, tool.original_name))
    } else {
        glob::matches(pattern, &tool.name)
    }
}

/// A JSON array of strings, or one pattern given as a plain string.
fn patterns(key: &str, text: &str) -> Result<Vec<String>, String> {
    if !text.trim_start().starts_with('[') {
        return Ok(vec![text.to_string()]);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("setting `{key}` is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        unreachable!("starts with `[`")
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "setting `{key}`: every pattern must be a string, not `{other}`"
            )),
        })
        .collect()
}

/// A JSON object.
fn object(key: &str, text: &str) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("setting `{key}` must be a JSON object")),
        Err(e) => Err(format!("setting `{key}` is not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(server: &str, original: &str, name: &str) -> Tool {
        Tool {
            server: server.into(),
            original_name: original.into(),
            name: name.into(),
            description: Some(format!("does {original}")),
            input_schema: "{}".into(),
        }
    }

    fn tools() -> Vec<Tool> {
        vec![
            tool("time", "get_time", "time_get_time"),
            tool("time", "convert_time", "time_convert_time"),
            tool("fs", "delete_file", "fs_delete_file"),
        ]
    }

    fn rules(settings: &[(&str, &str)]) -> Result<Option<Rules>, String> {
        let settings: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Rules::from_settings(|key| settings.get(key).cloned())
    }

    fn names(tools: &[Tool]) -> Vec<&str> {
        tools.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn no_settings_is_none() {
        assert!(rules(&[]).unwrap().is_none());
        assert!(rules(&[("hide", " ")]).unwrap().is_none());
    }

    #[test]
    fn hide_and_only() {
        let out = rules(&[("hide", r#"["*_delete_*"]"#)])
            .unwrap()
            .unwrap()
            .apply(tools());
        assert_eq!(names(&out), ["time_get_time", "time_convert_time"]);
        let out = rules(&[("only", r#"["time/*"]"#), ("hide", "time_convert*")])
            .unwrap()
            .unwrap()
            .apply(tools());
        assert_eq!(names(&out), ["time_get_time"]);
        let out = rules(&[("only", "fs/delete_?ile")])
            .unwrap()
            .unwrap()
            .apply(tools());
        assert_eq!(names(&out), ["fs_delete_file"]);
    }

    #[test]
    fn rename_and_describe() {
        let out = rules(&[
            ("rename", r#"{"time_get_time": "now"}"#),
            (
                "describe",
                r#"{"time_get_time": "The time.", "fs_delete_file": null}"#,
            ),
        ])
        .unwrap()
        .unwrap()
        .apply(tools());
        assert_eq!(names(&out), ["now", "time_convert_time", "fs_delete_file"]);
        assert_eq!(out[0].description.as_deref(), Some("The time."));
        assert_eq!(out[0].original_name, "get_time");
        assert_eq!(out[1].description.as_deref(), Some("does convert_time"));
        assert_eq!(out[2].description, None);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(rules(&[("hide", "[1]")]).is_err());
        assert!(rules(&[("hide", "[\"a\"")]).is_err());
        assert!(rules(&[("rename", "[]")]).is_err());
        assert!(rules(&[("rename", r#"{"a": ""}"#)]).is_err());
        assert!(rules(&[("describe", r#"{"a": 1}"#)]).is_err());
    }
}
