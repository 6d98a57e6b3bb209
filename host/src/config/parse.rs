//! Turning config text into a [`Config`]: JSON parsing, type checks, the
//! settings (file and environment), servers in both formats, and the checks
//! that span servers. Every error points at the file, line, column and field.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::error::syntax_message;
use super::interpolate::interpolate;
use super::locate::{FieldPath, first_duplicate_key, line_column, locate};
use super::{
    Config, ConfigError, ConfigFormat, EnvLookup, ServerConfig, Settings, ToolSearch, expand_tilde,
    is_valid_prefix, prefix_from_name,
};

type Result<T> = std::result::Result<T, ConfigError>;

/// What a document is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Document {
    /// magg's config file: every check.
    Config,
    /// The servers of a kit file: checked as in a config file, except against the settings
    /// of the config they will be loaded into (their prefix against `self_prefix` is checked
    /// when the kit is loaded).
    KitServers,
}

/// Parses a whole config file.
pub(super) fn parse_document(path: &Path, text: &str, env: EnvLookup<'_>) -> Result<Config> {
    parse_as(Document::Config, path, text, env)
}

/// Parses a whole document of the kind `kind`.
pub(super) fn parse_as(
    kind: Document,
    path: &Path,
    text: &str,
    env: EnvLookup<'_>,
) -> Result<Config> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let ctx = Ctx { path, text, env };
    let root: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(text).map_err(|err| syntax_error(path, &err))?
    };
    if let Some(duplicate) = first_duplicate_key(text) {
        let (first_line, _) = line_column(text, duplicate.first);
        let key = match duplicate.path.0.last() {
            Some(super::locate::Seg::Key(key)) => key.clone(),
            _ => String::new(),
        };
        let (line, column) = line_column(text, duplicate.second);
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            line: u32::try_from(line).ok(),
            column: u32::try_from(column).ok(),
            field: duplicate.path.to_string(),
            message: format!(
                "key {key:?} appears twice in the same object (first on line {first_line}); JSON keeps only the last one, so the first would be ignored without a word"
            ),
            fix: "remove one of the two, or merge them into one".to_owned(),
        });
    }
    let Value::Object(root) = root else {
        return Err(ctx.invalid(
            &FieldPath::root(),
            format!("the top level is {}, not an object", describe(&root)),
            r#"make the whole file one JSON object, e.g. {"servers": {}}"#,
        ));
    };

    let format = if root.contains_key("servers") || !root.contains_key("mcpServers") {
        ConfigFormat::Magg
    } else {
        ConfigFormat::McpServers
    };
    let servers_key = match format {
        ConfigFormat::Magg => "servers",
        ConfigFormat::McpServers => "mcpServers",
    };

    let mut config = Config {
        path: path.to_owned(),
        exists: true,
        format,
        settings: Settings::default(),
        servers: IndexMap::new(),
        kits: Map::new(),
        extra: Map::new(),
        file_settings: Map::new(),
    };
    // Prefixes derived from mcpServers names steer clear of magg's own prefix.
    let mut used_prefixes: HashSet<String> = expected_self_prefix(&root, env).into_iter().collect();

    for (key, value) in &root {
        let field = FieldPath::root().key(key);
        if key == servers_key {
            let Value::Object(servers) = value else {
                return Err(ctx.invalid(
                    &field,
                    format!(
                        "expected an object mapping server names to servers, found {}",
                        describe(value)
                    ),
                    format!(r#"write it as "{key}": {{"name": {{...}}}}"#),
                ));
            };
            for (name, server) in servers {
                let server_field = field.key(name);
                let server = match format {
                    ConfigFormat::Magg => ctx.magg_server(name, server, &server_field)?,
                    ConfigFormat::McpServers => {
                        ctx.mcp_server(name, server, &server_field, &mut used_prefixes)?
                    }
                };
                config.servers.insert(name.clone(), server);
            }
        } else if key == "kits" {
            config.kits = ctx.kits(value, &field)?;
        } else if Settings::KEYS.iter().any(|(k, _)| k == key) {
            ctx.file_setting(&mut config.settings, key, value, &field)?;
            config.file_settings.insert(key.clone(), value.clone());
        } else {
            if key == "plugins" {
                // Per-plugin settings, read by the plugin registry.
            } else if matches!(key.as_str(), "path" | "config_path")
                || format == ConfigFormat::McpServers
            {
                // Known to Magg (its search path) or another application's setting.
                tracing::debug!("keeping config key {key:?} in {} unused", path.display());
            } else {
                tracing::warn!(
                    "unknown config key {key:?} in {}; keeping it as it is",
                    path.display()
                );
            }
            config.extra.insert(key.clone(), value.clone());
        }
    }

    ctx.check_duplicate_prefixes(&config, servers_key)?;
    apply_env(&mut config.settings, env, path)?;
    if kind == Document::Config {
        ctx.check_self_prefix(&config, servers_key)?;
    }
    Ok(config)
}

/// The `self_prefix` the file and the environment will settle on, read ahead of the settings
/// (`None` when it is empty: magg's own tools then have no prefix).
fn expected_self_prefix(root: &Map<String, Value>, env: EnvLookup<'_>) -> Option<String> {
    let prefix = env("MAGG_SELF_PREFIX")
        .filter(|v| !v.trim().is_empty())
        .or_else(|| match root.get("self_prefix") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => Some(super::DEFAULT_SELF_PREFIX.to_owned()),
            Some(_) => None,
        })?;
    (!prefix.is_empty()).then_some(prefix)
}

/// Applies the `MAGG_*` environment variables on top of `settings`.
pub(super) fn apply_env(settings: &mut Settings, env: EnvLookup<'_>, path: &Path) -> Result<()> {
    for (key, var) in Settings::KEYS {
        let Some(raw) = env(var) else { continue };
        if raw.trim().is_empty() {
            continue; // Magg: env_ignore_empty
        }
        let env_error = |message: String, fix: String| ConfigError::Env {
            path: path.to_owned(),
            var: (*var).to_owned(),
            value: raw.clone(),
            message,
            fix,
        };
        let value = match Kind::of(key) {
            Kind::Str | Kind::OptStr => SettingValue::Str(raw.clone()),
            Kind::Bool | Kind::OptBool => match parse_bool(&raw) {
                Some(b) => SettingValue::Bool(b),
                None => {
                    return Err(env_error(
                        "expected a boolean".to_owned(),
                        "use true/false, 1/0, yes/no or on/off".to_owned(),
                    ));
                }
            },
            Kind::Seconds => match raw.trim().parse::<f64>() {
                Ok(n) => SettingValue::Num(n),
                Err(_) => {
                    return Err(env_error(
                        "expected a number of seconds".to_owned(),
                        "use a number such as 30 or 2.5".to_owned(),
                    ));
                }
            },
            Kind::Count => match raw.trim().parse::<f64>() {
                Ok(n) => SettingValue::Num(n),
                Err(_) => {
                    return Err(env_error(
                        "expected a whole number".to_owned(),
                        "use a number such as 1000 (0 for no limit)".to_owned(),
                    ));
                }
            },
            Kind::List => SettingValue::List(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        };
        let home = home_dir(env);
        assign(settings, key, value, home.as_deref())
            .map_err(|(message, fix)| env_error(message, fix))?;
    }
    Ok(())
}

/// A JSON syntax error, positioned by serde_json.
fn syntax_error(path: &Path, err: &serde_json::Error) -> ConfigError {
    ConfigError::Syntax {
        path: path.to_owned(),
        line: err.line(),
        column: err.column(),
        message: syntax_message(err),
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn home_dir(env: EnvLookup<'_>) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
}

/// How a setting's value is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    OptStr,
    Bool,
    OptBool,
    Seconds,
    /// A whole number, not negative.
    Count,
    /// A list of strings (comma-separated in the environment).
    List,
}

impl Kind {
    fn of(key: &str) -> Kind {
        match key {
            "self_prefix" | "prefix_sep" | "tool_search" => Kind::Str,
            "log_level" | "plugins_dir" => Kind::OptStr,
            "reload_use_watchdog" => Kind::OptBool,
            "backend_init_timeout"
            | "backend_call_timeout"
            | "reload_poll_interval"
            | "list_wait"
            | "session_idle_timeout"
            | "http_read_timeout"
            | "shutdown_timeout" => Kind::Seconds,
            "max_sessions" | "tool_search_threshold" => Kind::Count,
            "allowed_hosts" | "allowed_origins" | "tool_search_pinned" => Kind::List,
            _ => Kind::Bool,
        }
    }
}

/// A setting's value after type checking, before range checks.
enum SettingValue {
    /// `null` in the file: the default (or `None` for optional settings).
    Unset,
    Str(String),
    Bool(bool),
    Num(f64),
    List(Vec<String>),
}

/// Stores a type-checked value into `settings`; `Err((message, fix))` when
/// the value is out of range.
fn assign(
    settings: &mut Settings,
    key: &str,
    value: SettingValue,
    home: Option<&Path>,
) -> std::result::Result<(), (String, String)> {
    let defaults = Settings::default();
    match (key, value) {
        ("self_prefix", SettingValue::Str(s)) => {
            if !s.is_empty() && !is_valid_prefix(&s) {
                return Err((
                    format!(
                        "{s:?} is not a valid prefix for magg's own tools (letters and digits only, starting with a letter, no underscores)"
                    ),
                    format!("use e.g. {:?}, or \"\" for no prefix", prefix_from_name(&s)),
                ));
            }
            settings.self_prefix = s;
        }
        ("self_prefix", _) => settings.self_prefix = defaults.self_prefix,
        ("prefix_sep", SettingValue::Str(s)) => {
            if s.is_empty() {
                return Err((
                    "an empty separator makes tool names ambiguous (prefix \"ab\" with tool \"c\" and prefix \"a\" with tool \"bc\" would both be \"abc\")".to_owned(),
                    "use \"_\" (the default), or remove \"prefix_sep\"".to_owned(),
                ));
            }
            settings.prefix_sep = s;
        }
        ("prefix_sep", _) => settings.prefix_sep = defaults.prefix_sep,
        ("log_level", SettingValue::Str(s)) => settings.log_level = Some(s),
        ("log_level", _) => settings.log_level = None,
        ("plugins_dir", SettingValue::Str(s)) => {
            settings.plugins_dir = Some(expand_tilde(&s, home));
        }
        ("plugins_dir", _) => settings.plugins_dir = None,
        ("read_only", SettingValue::Bool(b)) => settings.read_only = b,
        ("read_only", _) => settings.read_only = defaults.read_only,
        ("stderr_show", SettingValue::Bool(b)) => settings.stderr_show = b,
        ("stderr_show", _) => settings.stderr_show = defaults.stderr_show,
        ("auto_reload", SettingValue::Bool(b)) => settings.auto_reload = b,
        ("auto_reload", _) => settings.auto_reload = defaults.auto_reload,
        ("metrics", SettingValue::Bool(b)) => settings.metrics = b,
        ("metrics", _) => settings.metrics = defaults.metrics,
        ("allow_unauthenticated_changes", SettingValue::Bool(b)) => {
            settings.allow_unauthenticated_changes = b;
        }
        ("allow_unauthenticated_changes", _) => {
            settings.allow_unauthenticated_changes = defaults.allow_unauthenticated_changes;
        }
        ("reload_use_watchdog", SettingValue::Bool(b)) => settings.reload_use_watchdog = Some(b),
        ("reload_use_watchdog", _) => settings.reload_use_watchdog = None,
        ("backend_init_timeout", SettingValue::Num(n)) => {
            settings.backend_init_timeout = limit_seconds(n)?;
        }
        ("backend_init_timeout", _) => {
            settings.backend_init_timeout = defaults.backend_init_timeout;
        }
        ("backend_call_timeout", SettingValue::Num(n)) => {
            settings.backend_call_timeout = limit_seconds(n)?;
        }
        ("backend_call_timeout", _) => {
            settings.backend_call_timeout = defaults.backend_call_timeout;
        }
        ("reload_poll_interval", SettingValue::Num(n)) => {
            if !(n.is_finite() && n > 0.0) {
                return Err(not_seconds(n, "more than 0, e.g. 1.0"));
            }
            settings.reload_poll_interval = n;
        }
        ("reload_poll_interval", _) => {
            settings.reload_poll_interval = defaults.reload_poll_interval;
        }
        ("list_wait", SettingValue::Num(n)) => {
            settings.list_wait =
                Duration::try_from_secs_f64(n).map_err(|_| not_seconds(n, "0 or more, e.g. 5"))?;
        }
        ("list_wait", _) => settings.list_wait = defaults.list_wait,
        ("shutdown_timeout", SettingValue::Num(n)) => {
            settings.shutdown_timeout =
                Duration::try_from_secs_f64(n).map_err(|_| not_seconds(n, "0 or more, e.g. 10"))?;
        }
        ("shutdown_timeout", _) => settings.shutdown_timeout = defaults.shutdown_timeout,
        ("session_idle_timeout", SettingValue::Num(n)) => {
            settings.session_idle_timeout = limit_seconds(n)?;
        }
        ("session_idle_timeout", _) => {
            settings.session_idle_timeout = defaults.session_idle_timeout;
        }
        ("http_read_timeout", SettingValue::Num(n)) => {
            settings.http_read_timeout = limit_seconds(n)?;
        }
        ("http_read_timeout", _) => settings.http_read_timeout = defaults.http_read_timeout,
        ("max_sessions", SettingValue::Num(n)) => {
            if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
                return Err((
                    format!("{n} is not a usable number of sessions"),
                    "use a whole number such as 1000, or 0 for no limit".to_owned(),
                ));
            }
            // A float this large already means "no limit" in practice.
            settings.max_sessions = n as usize;
        }
        ("max_sessions", _) => settings.max_sessions = defaults.max_sessions,
        ("allowed_hosts", SettingValue::List(hosts)) => settings.allowed_hosts = Some(hosts),
        ("allowed_hosts", _) => settings.allowed_hosts = None,
        ("allowed_origins", SettingValue::List(origins)) => {
            if let Some(bad) = origins
                .iter()
                .find(|o| !o.eq_ignore_ascii_case("null") && !o.contains("://"))
            {
                return Err((
                    format!("{bad:?} is not a web origin (it has no scheme)"),
                    format!(
                        "write it as a browser sends it, e.g. \"https://{bad}\" or \"http://{bad}:*\" for any port"
                    ),
                ));
            }
            settings.allowed_origins = Some(origins);
        }
        ("allowed_origins", _) => settings.allowed_origins = None,
        ("tool_search", SettingValue::Str(s)) => {
            settings.tool_search = match s.trim().to_ascii_lowercase().as_str() {
                "off" | "false" | "no" | "0" => ToolSearch::Off,
                "on" | "true" | "yes" | "1" => ToolSearch::On,
                "auto" => ToolSearch::Auto,
                _ => {
                    return Err((
                        format!("{s:?} is not a tool search mode"),
                        "use \"off\" (list every tool), \"on\" (list magg's tools, the search tools and pinned tools) or \"auto\" (on above tool_search_threshold tools)".to_owned(),
                    ));
                }
            };
        }
        ("tool_search", _) => settings.tool_search = defaults.tool_search,
        ("tool_search_threshold", SettingValue::Num(n)) => {
            if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
                return Err((
                    format!("{n} is not a usable number of tools"),
                    "use a whole number such as 40 (0: search as soon as there is a tool)"
                        .to_owned(),
                ));
            }
            settings.tool_search_threshold = n as usize;
        }
        ("tool_search_threshold", _) => {
            settings.tool_search_threshold = defaults.tool_search_threshold;
        }
        ("tool_search_pinned", SettingValue::List(globs)) => settings.tool_search_pinned = globs,
        ("tool_search_pinned", _) => settings.tool_search_pinned = Vec::new(),
        (key, _) => {
            return Err((format!("{key:?} is not a setting"), "remove it".to_owned()));
        }
    }
    Ok(())
}

/// A time limit in seconds; 0 means none, as in Magg, and so does a value too large to hold.
/// A negative one is refused: it reads as a typo, not as "forever".
fn limit_seconds(n: f64) -> std::result::Result<Option<Duration>, (String, String)> {
    if n.is_nan() || n < 0.0 {
        return Err(not_seconds(n, "0 or more (0 waits forever)"));
    }
    Ok(if n > 0.0 {
        Duration::try_from_secs_f64(n).ok()
    } else {
        None
    })
}

fn not_seconds(n: f64, allowed: &str) -> (String, String) {
    (
        format!("{n} is not a usable number of seconds"),
        format!("use a number of seconds {allowed}"),
    )
}

/// Describes a JSON value for "found ..." in messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(60).collect();
            if shown.len() < s.len() {
                format!("the string {:?}", format!("{shown}..."))
            } else {
                format!("the string {s:?}")
            }
        }
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// How to fix a list item or map value that is not a string: quote a number or boolean.
fn quote_fix(item: &Value) -> String {
    match item {
        Value::Number(_) | Value::Bool(_) => {
            format!("put the value in double quotes: \"{item}\"")
        }
        _ => "make the value a string in double quotes".to_owned(),
    }
}

/// Parsing state: the file (for messages and locations) and the environment.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    env: EnvLookup<'a>,
}

impl Ctx<'_> {
    fn invalid(
        &self,
        field: &FieldPath,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match locate(self.text, field) {
            Some((line, column)) => (u32::try_from(line).ok(), u32::try_from(column).ok()),
            None => (None, None),
        };
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A string, or `None` for `null`.
    fn string(&self, value: &Value, field: &FieldPath) -> Result<Option<String>> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(_) | Value::Bool(_) => Err(self.invalid(
                field,
                format!("expected a string, found {}", describe(value)),
                format!("put the value in double quotes: \"{value}\""),
            )),
            _ => Err(self.invalid(
                field,
                format!("expected a string, found {}", describe(value)),
                "write a single string in double quotes",
            )),
        }
    }

    /// `true`/`false`, or `None` for `null`.
    fn bool(&self, value: &Value, field: &FieldPath) -> Result<Option<bool>> {
        match value {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            _ => Err(self.invalid(
                field,
                format!("expected true or false, found {}", describe(value)),
                "write true or false, without quotes",
            )),
        }
    }

    /// A number, or `None` for `null`.
    fn number(&self, value: &Value, field: &FieldPath) -> Result<Option<f64>> {
        match value {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_f64()),
            _ => Err(self.invalid(
                field,
                format!("expected a number of seconds, found {}", describe(value)),
                "write a number without quotes, e.g. 30 or 2.5",
            )),
        }
    }

    /// A list of strings (a number or boolean is an error: it would have to be guessed how it
    /// is meant as text); `null` is an empty list.
    fn string_list(&self, value: &Value, field: &FieldPath) -> Result<Vec<String>> {
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(
                        &field.index(i),
                        format!(
                            "expected a string, found {}; every element of the list must be a string",
                            describe(item)
                        ),
                        quote_fix(item),
                    )),
                })
                .collect(),
            Value::String(s) => {
                let words = shell_words::split(s).unwrap_or_else(|_| vec![s.clone()]);
                let example = serde_json::to_string(&words).unwrap_or_default();
                Err(self.invalid(
                    field,
                    format!("expected a list of strings, found {}", describe(value)),
                    format!("write it as a JSON list, e.g. {example}"),
                ))
            }
            _ => Err(self.invalid(
                field,
                format!("expected a list of strings, found {}", describe(value)),
                r#"write it as a JSON list of strings, e.g. ["a", "b"]"#,
            )),
        }
    }

    /// An object of strings (a number or boolean value is an error); `null` is empty.
    fn string_map(&self, value: &Value, field: &FieldPath) -> Result<IndexMap<String, String>> {
        match value {
            Value::Null => Ok(IndexMap::new()),
            Value::Object(map) => map
                .iter()
                .map(|(key, item)| match item {
                    Value::String(s) => Ok((key.clone(), s.clone())),
                    _ => Err(self.invalid(
                        &field.key(key),
                        format!(
                            "expected a string, found {}; every value must be a string",
                            describe(item)
                        ),
                        quote_fix(item),
                    )),
                })
                .collect(),
            _ => Err(self.invalid(
                field,
                format!(
                    "expected an object of names to strings, found {}",
                    describe(value)
                ),
                r#"write it as {"NAME": "value"}"#,
            )),
        }
    }

    /// An object, or `None` for `null`.
    fn object(&self, value: &Value, field: &FieldPath) -> Result<Option<Map<String, Value>>> {
        match value {
            Value::Null => Ok(None),
            Value::Object(map) => Ok(Some(map.clone())),
            _ => Err(self.invalid(
                field,
                format!("expected an object, found {}", describe(value)),
                r#"write it as a JSON object, e.g. {"keep_alive": true}"#,
            )),
        }
    }

    /// A setting from the file's top level.
    fn file_setting(
        &self,
        settings: &mut Settings,
        key: &str,
        value: &Value,
        field: &FieldPath,
    ) -> Result<()> {
        let typed = match (Kind::of(key), value) {
            (_, Value::Null) => SettingValue::Unset,
            (_, Value::Bool(on)) if key == "tool_search" => {
                SettingValue::Str(if *on { "on" } else { "off" }.to_owned())
            }
            (Kind::Str | Kind::OptStr, _) => self
                .string(value, field)?
                .map_or(SettingValue::Unset, SettingValue::Str),
            (Kind::Bool | Kind::OptBool, _) => self
                .bool(value, field)?
                .map_or(SettingValue::Unset, SettingValue::Bool),
            (Kind::Seconds, _) => self
                .number(value, field)?
                .map_or(SettingValue::Unset, SettingValue::Num),
            (Kind::Count, Value::Number(n)) => {
                n.as_f64().map_or(SettingValue::Unset, SettingValue::Num)
            }
            (Kind::Count, _) => {
                return Err(self.invalid(
                    field,
                    format!("expected a whole number, found {}", describe(value)),
                    "write a number without quotes, e.g. 1000",
                ));
            }
            (Kind::List, _) => SettingValue::List(self.string_list(value, field)?),
        };
        let home = home_dir(self.env);
        assign(settings, key, typed, home.as_deref())
            .map_err(|(message, fix)| self.invalid(field, message, fix))
    }

    /// The top-level `"kits"`: an object kept raw, or a legacy list of names.
    fn kits(&self, value: &Value, field: &FieldPath) -> Result<Map<String, Value>> {
        match value {
            Value::Null => Ok(Map::new()),
            Value::Object(map) => Ok(map.clone()),
            Value::Array(names) => {
                let mut kits = Map::new();
                for (i, name) in names.iter().enumerate() {
                    let Value::String(name) = name else {
                        return Err(self.invalid(
                            &field.index(i),
                            format!("expected a kit name, found {}", describe(name)),
                            "list kit names as strings, or use an object of kits",
                        ));
                    };
                    let mut kit = Map::new();
                    kit.insert("name".into(), Value::String(name.clone()));
                    kit.insert("source".into(), Value::String("legacy".into()));
                    kits.insert(name.clone(), Value::Object(kit));
                }
                Ok(kits)
            }
            _ => Err(self.invalid(
                field,
                format!("expected an object of kits, found {}", describe(value)),
                r#"write it as "kits": {"name": {"name": "name"}}, or remove it"#,
            )),
        }
    }

    fn server_object<'v>(
        &self,
        value: &'v Value,
        field: &FieldPath,
    ) -> Result<&'v Map<String, Value>> {
        value.as_object().ok_or_else(|| {
            self.invalid(
                field,
                format!("expected an object describing the server, found {}", describe(value)),
                r#"write the server as {"source": "...", "command": "npx", "args": ["..."]} or {"source": "...", "uri": "http://..."}"#,
            )
        })
    }

    /// A server in Magg format.
    fn magg_server(&self, name: &str, value: &Value, field: &FieldPath) -> Result<ServerConfig> {
        let object = self.server_object(value, field)?;
        let mut server = ServerConfig::new(name, "");
        let mut source = None;
        for (key, value) in object {
            let f = field.key(key);
            match key.as_str() {
                "source" => source = self.string(value, &f)?,
                "name" => {} // Magg replaces it with the key and never writes it back
                _ => self.common_field(&mut server, key, value, &f)?,
            }
        }
        let missing_source = source.is_none();
        let server = self.finish_server(server, source, field, "uri")?;
        if missing_source {
            tracing::warn!(
                "server {name:?} in {} has no \"source\" (Magg requires one); using {:?}",
                self.path.display(),
                server.source
            );
        }
        Ok(server)
    }

    /// Fields that mean the same in both formats; anything else goes to `extra`.
    fn common_field(
        &self,
        server: &mut ServerConfig,
        key: &str,
        value: &Value,
        field: &FieldPath,
    ) -> Result<()> {
        match key {
            "prefix" => server.prefix = self.string(value, field)?,
            "notes" => server.notes = self.string(value, field)?,
            "command" => server.command = self.string(value, field)?,
            "args" => server.args = self.string_list(value, field)?,
            "uri" => server.uri = self.string(value, field)?,
            "env" => server.env = self.string_map(value, field)?,
            "cwd" => server.cwd = self.string(value, field)?.map(PathBuf::from),
            "transport" => server.transport = self.object(value, field)?,
            "enabled" => server.enabled = self.bool(value, field)?.unwrap_or(true),
            "kits" => server.kits = self.string_list(value, field)?,
            "wasm" => server.wasm = self.string(value, field)?,
            "protocol" => {
                server.protocol = match self.string(value, field)? {
                    None => None,
                    Some(text) => Some(super::Protocol::parse(&text).ok_or_else(|| {
                        self.invalid(
                            field,
                            format!("{text:?} is not a protocol magg can speak to a server"),
                            format!(
                                "write {} (or leave it out: \"auto\" asks the server)",
                                super::Protocol::VALUES
                            ),
                        )
                    })?),
                };
            }
            "grants" => {
                server.grants = match value {
                    Value::Null => None,
                    _ => Some(
                        <super::Grants as serde::Deserialize>::deserialize(value).map_err(|e| {
                            self.invalid(
                                field,
                                format!("the grants are not valid: {e}"),
                                r#"write them as {"http": ["example.com"], "dirs": [{"path": "/data", "write": false}], "env": ["API_KEY"], "memory_mb": 64, "timeout_ms": 30000}, each key optional"#,
                            )
                        })?,
                    ),
                }
            }
            _ => {
                server.extra.insert(key.to_owned(), value.clone());
            }
        }
        Ok(())
    }

    /// A server in mcpServers format, after `${VAR}` interpolation.
    fn mcp_server(
        &self,
        name: &str,
        value: &Value,
        field: &FieldPath,
        used_prefixes: &mut HashSet<String>,
    ) -> Result<ServerConfig> {
        self.server_object(value, field)?;
        let value = self.interpolate_value(name, value, field)?;
        let object = self.server_object(&value, field)?;

        let mut server = ServerConfig::new(name, "");
        let mut uri_key = "url";
        let mut kind: Option<(String, FieldPath)> = None;
        let mut enabled = None;
        let mut disabled = None;
        let mut headers = IndexMap::new();
        let mut explicit_prefix = None;
        let mut source = None;
        for (key, value) in object {
            let f = field.key(key);
            match key.as_str() {
                "url" | "uri" => {
                    server.uri = self.string(value, &f)?;
                    uri_key = if key == "url" { "url" } else { "uri" };
                }
                "type" => kind = self.string(value, &f)?.map(|k| (k, f)),
                "transport" if value.is_string() => {
                    kind = self.string(value, &f)?.map(|k| (k, f));
                }
                "enabled" => enabled = self.bool(value, &f)?,
                "disabled" => disabled = self.bool(value, &f)?,
                "headers" => headers = self.string_map(value, &f)?,
                "prefix" => explicit_prefix = Some(self.string(value, &f)?),
                "source" => source = self.string(value, &f)?,
                "name" => {}
                _ => self.common_field(&mut server, key, value, &f)?,
            }
        }
        server.enabled = enabled.unwrap_or(true) && !disabled.unwrap_or(false);

        if let Some((kind, kind_field)) = kind {
            let normalised = match kind.to_ascii_lowercase().as_str() {
                "stdio" => None,
                "http" | "streamable-http" | "streamable_http" | "streamablehttp" => Some("http"),
                "sse" => Some("sse"),
                _ => {
                    return Err(self.invalid(
                        &kind_field,
                        format!("unknown transport type {kind:?}"),
                        r#"use "stdio", "http", "streamable-http" or "sse""#,
                    ));
                }
            };
            if let Some(normalised) = normalised {
                server
                    .transport
                    .get_or_insert_with(Map::new)
                    .insert("type".into(), Value::String(normalised.into()));
            }
        }
        if !headers.is_empty() {
            let headers = headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            server
                .transport
                .get_or_insert_with(Map::new)
                .insert("headers".into(), Value::Object(headers));
        }

        server.prefix = match explicit_prefix {
            Some(prefix) => prefix,
            None => {
                let base = prefix_from_name(name);
                let mut prefix = base.clone();
                let mut n = 2;
                while used_prefixes.contains(&prefix) {
                    prefix = format!("{base}{n}");
                    n += 1;
                }
                Some(prefix)
            }
        };
        if let Some(prefix) = server.prefix.as_ref().filter(|p| !p.is_empty()) {
            used_prefixes.insert(prefix.clone());
        }

        let source = source
            .or_else(|| server.uri.clone())
            .or_else(|| server.command_line());
        self.finish_server(server, source, field, uri_key)
    }

    /// `${VAR}` interpolation of every string in `value`.
    fn interpolate_value(&self, server: &str, value: &Value, field: &FieldPath) -> Result<Value> {
        Ok(match value {
            Value::String(s) => Value::String(interpolate(s, self.env).map_err(|err| {
                self.invalid(field, format!("{err} (in server {server:?})"), err.fix())
            })?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.interpolate_value(server, item, &field.index(i)))
                    .collect::<Result<_>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((k.clone(), self.interpolate_value(server, v, &field.key(k))?))
                    })
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Normalises and validates a parsed server.
    fn finish_server(
        &self,
        mut server: ServerConfig,
        source: Option<String>,
        field: &FieldPath,
        uri_key: &str,
    ) -> Result<ServerConfig> {
        server.prefix = server.prefix.filter(|p| !p.is_empty());
        server.command = server.command.filter(|c| !c.is_empty());
        server.uri = server.uri.filter(|u| !u.is_empty());
        server.transport = server.transport.filter(|t| !t.is_empty());

        if let Some(prefix) = &server.prefix
            && !is_valid_prefix(prefix)
        {
            return Err(self.invalid(
                &field.key("prefix"),
                format!(
                    "{prefix:?} is not a valid prefix (tools are named <prefix>_<tool>, so a prefix is letters and digits only, starting with a letter, without underscores)"
                ),
                format!(
                    "use e.g. {:?}, or remove \"prefix\" so the tools keep their own names",
                    prefix_from_name(prefix)
                ),
            ));
        }

        if let Some(uri) = &server.uri {
            let problem = match url::Url::parse(uri) {
                Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                    Some(format!("scheme {:?} is not http or https", url.scheme()))
                }
                Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                    Some("it has no host".to_owned())
                }
                Ok(_) => None,
                Err(err) => Some(err.to_string()),
            };
            if let Some(problem) = problem {
                return Err(self.invalid(
                    &field.key(uri_key),
                    format!("{uri:?} is not an http(s) URL: {problem}"),
                    format!(
                        "write a full URL such as \"http://localhost:8000/mcp\", or remove \"{uri_key}\" and use \"command\""
                    ),
                ));
            }
        }

        if server.command.is_some() && server.uri.is_some() {
            return Err(self.invalid(
                &field.key(uri_key),
                format!(
                    "server {:?} has both \"command\" and \"{uri_key}\"; a server is either a program magg starts (command) or one it reaches by URL, and magg would ignore \"{uri_key}\"",
                    server.name
                ),
                format!(
                    "remove \"{uri_key}\" to run the command, or remove \"command\" (and \"args\") to connect to the URL"
                ),
            ));
        }

        let base_dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if let Some(source) = &source {
            server.source = source.clone();
        }
        server.resolve_component(&base_dir);
        if server.component.is_none() {
            if server.grants.is_some() {
                return Err(self.invalid(
                    &field.key("grants"),
                    format!(
                        "server {:?} has \"grants\", which only a WebAssembly server takes",
                        server.name
                    ),
                    "remove \"grants\", or mount a component with \"wasm\" (a .wasm file) instead of \"command\" or \"uri\"",
                ));
            }
        } else if server.command.is_some() || server.uri.is_some() {
            return Err(self.invalid(
                &field.key("wasm"),
                format!(
                    "server {:?} has \"wasm\" and also \"command\" or \"{uri_key}\"; a server is a program, a URL or a WebAssembly component",
                    server.name
                ),
                "keep one of them",
            ));
        }
        if server.enabled
            && server.command.is_none()
            && server.uri.is_none()
            && server.component.is_none()
        {
            return Err(self.invalid(
                field,
                format!(
                    "server {:?} needs a way to run: provide \"command\", \"{uri_key}\" or \"wasm\"",
                    server.name
                ),
                format!(
                    "add \"command\" (e.g. \"npx\") with \"args\", or \"{uri_key}\" (e.g. \"http://localhost:8000/mcp\"), or \"wasm\" (a WebAssembly component, e.g. \"fetch.wasm\"), or set \"enabled\": false"
                ),
            ));
        }

        server.source = source
            .or_else(|| server.uri.clone())
            .or_else(|| server.command_line())
            .unwrap_or_else(|| server.name.clone());
        Ok(server)
    }

    /// No enabled server may use magg's own prefix: its tools would sit beside (and, where names
    /// meet, behind) magg's own tools.
    fn check_self_prefix(&self, config: &Config, servers_key: &str) -> Result<()> {
        let own = &config.settings.self_prefix;
        if own.is_empty() {
            return Ok(());
        }
        let Some(server) = config
            .enabled_servers()
            .find(|s| s.prefix.as_deref() == Some(own.as_str()))
        else {
            return Ok(());
        };
        Err(self.invalid(
            &FieldPath::root()
                .key(servers_key)
                .key(&server.name)
                .key("prefix"),
            format!(
                "prefix {own:?} of server {:?} is magg's own prefix (self_prefix), so its tools would be mixed with magg's own tools and hidden behind them where names meet",
                server.name
            ),
            format!(
                "give the server another \"prefix\" (e.g. {:?}), or change \"self_prefix\" (MAGG_SELF_PREFIX)",
                format!("{own}{}", prefix_from_name(&server.name))
            ),
        ))
    }

    /// Two enabled servers may not share a prefix: their tools would clash.
    fn check_duplicate_prefixes(&self, config: &Config, servers_key: &str) -> Result<()> {
        let servers = FieldPath::root().key(servers_key);
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for server in config.enabled_servers() {
            let Some(prefix) = server.prefix.as_deref() else {
                continue;
            };
            if let Some(first) = seen.get(prefix) {
                let first_line = locate(self.text, &servers.key(first).key("prefix"))
                    .map(|(line, _)| format!(" (line {line})"))
                    .unwrap_or_default();
                return Err(self.invalid(
                    &servers.key(&server.name).key("prefix"),
                    format!(
                        "prefix {prefix:?} of server {:?} is also used by enabled server {first:?}{first_line}; their tools would clash",
                        server.name
                    ),
                    "give one of the two servers a different \"prefix\", or disable one with \"enabled\": false",
                ));
            }
            seen.insert(prefix, &server.name);
        }
        Ok(())
    }
}
