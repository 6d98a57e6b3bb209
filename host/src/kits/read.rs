//! Parsing a kit file's text into a [`Kit`]. The metadata is checked here;
//! the `"servers"` object goes through the config file's own parser
//! ([`config::parse_kit_servers`]) on a copy of the text in which everything but
//! that object is blanked out, so that server errors keep the kit file's
//! real line, column and field path.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{Kit, KitError};
use crate::config::{
    self, ConfigError, ObjectLayout, ServerConfig, describe, line_column, syntax_message,
    top_level_object,
};

/// Parses `text`, read from `path`, as the kit called `name`.
pub(super) fn parse_kit(path: &Path, name: &str, text: &str) -> Result<Kit, KitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root: Value = serde_json::from_str(text).map_err(|err| syntax_error(path, &err))?;
    let ctx = Ctx {
        path,
        text,
        layout: top_level_object(text),
    };
    let Value::Object(root) = root else {
        return Err(ctx.invalid(
            "",
            format!("the top level is {}, not an object", describe(&root)),
            r#"make the whole file one JSON object, e.g. {"name": "...", "servers": {}}"#,
        ));
    };

    let mut kit = Kit::new(name);
    kit.path = path.to_owned();
    for (key, value) in &root {
        match key.as_str() {
            "name" => {
                kit.declared_name = ctx.string(key, value)?.filter(|declared| declared != name);
            }
            "description" => kit.description = ctx.string(key, value)?,
            "author" => kit.author = ctx.string(key, value)?,
            "version" => kit.version = ctx.string(key, value)?,
            "keywords" => kit.keywords = ctx.string_list(key, value)?,
            "links" => kit.links = ctx.links(value)?,
            "servers" => kit.servers = ctx.servers(value)?,
            _ => {
                kit.extra.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(declared) = &kit.declared_name {
        tracing::debug!(
            "kit file {} says its name is {declared:?}; magg knows it as {name:?} (its file name)",
            path.display()
        );
    }
    Ok(kit)
}

/// The kit file being parsed: for messages and positions.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    layout: Option<ObjectLayout>,
}

impl Ctx<'_> {
    /// An error about `field`, positioned at its top-level key (serde_json
    /// keeps the last of duplicate keys, and so does this).
    fn invalid(&self, field: &str, message: impl Into<String>, fix: impl Into<String>) -> KitError {
        let top = field.split(['.', '[']).next().unwrap_or_default();
        let offset = self.layout.as_ref().and_then(|layout| {
            if top.is_empty() {
                return Some(layout.open);
            }
            layout
                .members
                .iter()
                .rev()
                .find(|member| member.key == top)
                .map(|member| member.key_start)
        });
        let (line, column) = match offset {
            Some(offset) => {
                let (line, column) = line_column(self.text, offset);
                (u32::try_from(line).ok(), u32::try_from(column).ok())
            }
            None => (None, None),
        };
        KitError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The kit's servers, parsed with the config file's rules; their `kits`
    /// are cleared (Magg ignores `"kits"` in kit files).
    fn servers(&self, value: &Value) -> Result<IndexMap<String, ServerConfig>, KitError> {
        if value.is_null() {
            return Ok(IndexMap::new());
        }
        let (doc, positions_kept) = match self.servers_only() {
            Some(masked) => (masked, true),
            None => {
                let mut doc = Map::new();
                doc.insert("servers".into(), value.clone());
                (Value::Object(doc).to_string(), false)
            }
        };
        let parsed = config::parse_kit_servers(self.path, &doc)
            .map_err(|err| config_error(self.path, err, positions_kept))?;
        let mut servers = parsed.servers;
        for server in servers.values_mut() {
            server.kits.clear();
        }
        Ok(servers)
    }

    /// The file's text with every character outside the outer braces and
    /// the last top-level `"servers"` member replaced by a space (line
    /// breaks kept), so that it parses as `{"servers": {...}}` with every
    /// position unchanged.
    fn servers_only(&self) -> Option<String> {
        let layout = self.layout.as_ref()?;
        let servers = layout
            .members
            .iter()
            .rev()
            .find(|member| member.key == "servers")?;
        let masked = self
            .text
            .char_indices()
            .map(|(i, c)| {
                let keep = i == layout.open
                    || i == layout.close
                    || (servers.key_start..servers.value_end).contains(&i);
                if keep || c == '\n' || c == '\r' {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        Some(masked)
    }

    /// A string, or `None` for `null`.
    fn string(&self, field: &str, value: &Value) -> Result<Option<String>, KitError> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(self.invalid(
                field,
                format!("expected a string, found {}", describe(value)),
                format!("write \"{field}\" as a string in double quotes"),
            )),
        }
    }

    /// A list of strings; `null` is an empty list.
    fn string_list(&self, field: &str, value: &Value) -> Result<Vec<String>, KitError> {
        let fix = || format!(r#"write "{field}" as a list of strings, e.g. ["web", "search"]"#);
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(
                        &format!("{field}[{i}]"),
                        format!("expected a string, found {}", describe(item)),
                        fix(),
                    )),
                })
                .collect(),
            _ => Err(self.invalid(
                field,
                format!("expected a list of strings, found {}", describe(value)),
                fix(),
            )),
        }
    }

    /// `"links"`: an object of strings; `null` is empty.
    fn links(&self, value: &Value) -> Result<Map<String, Value>, KitError> {
        let fix =
            r#"write "links" as an object of names to URLs, e.g. {"homepage": "https://..."}"#;
        match value {
            Value::Null => Ok(Map::new()),
            Value::Object(links) => {
                if let Some((key, bad)) = links.iter().find(|(_, v)| !v.is_string()) {
                    return Err(self.invalid(
                        &format!("links.{key}"),
                        format!("expected a string, found {}", describe(bad)),
                        fix,
                    ));
                }
                Ok(links.clone())
            }
            _ => Err(self.invalid(
                "links",
                format!("expected an object, found {}", describe(value)),
                fix,
            )),
        }
    }
}

/// A config parser error about the kit's servers, as a kit error. Without
/// `positions_kept` the line and column would point into a rebuilt text, so
/// they are dropped.
fn config_error(path: &Path, err: ConfigError, positions_kept: bool) -> KitError {
    match err {
        ConfigError::Invalid {
            line,
            column,
            field,
            message,
            fix,
            ..
        } => KitError::Invalid {
            path: path.to_owned(),
            line: line.filter(|_| positions_kept),
            column: column.filter(|_| positions_kept),
            field,
            message,
            fix,
        },
        other => KitError::Invalid {
            path: path.to_owned(),
            line: None,
            column: None,
            field: "servers".to_owned(),
            message: other.to_string(),
            fix: "correct the kit's servers".to_owned(),
        },
    }
}

fn syntax_error(path: &Path, err: &serde_json::Error) -> KitError {
    KitError::Syntax {
        path: path.to_owned(),
        line: err.line(),
        column: err.column(),
        message: syntax_message(err),
    }
}
