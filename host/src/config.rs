//! Magg's configuration: this module owns finding the config file, reading it
//! (Magg's own `config.json` format and the Claude-Desktop style `mcpServers`
//! format), validating it with errors that point at a file, line, column and
//! field, the `MAGG_*` settings and their environment overrides, the embedded
//! default used when no file exists, and writing the file back in Magg's form.
//!
//! # File formats
//!
//! * **Magg** (what Magg 1.x reads and writes):
//!   `{"servers": {name: {...}}, "kits": {...}, <settings>...}`. Each server
//!   has `source`, `prefix`, `notes`, `command`, `args`, `uri`, `env`, `cwd`,
//!   `transport`, `enabled`, `kits`; unknown keys are kept and written back.
//! * **mcpServers** (Claude Desktop, multi-mcp...): a top-level `"mcpServers"`
//!   object and no `"servers"`. Every string in a server entry may use
//!   `${VAR}` / `${VAR:-default}`, filled from the environment. Prefixes are
//!   derived from the server names (see [`prefix_from_name`]).
//!
//! An empty or whitespace-only file reads as `{}`.
//!
//! # Settings
//!
//! Top-level keys `self_prefix`, `prefix_sep`, `read_only`, `log_level`,
//! `backend_init_timeout`, `backend_call_timeout`, `stderr_show`, `auto_reload`,
//! `reload_poll_interval`, `reload_use_watchdog`, `plugins_dir`, `list_wait`,
//! `allow_unauthenticated_changes`, `metrics`, `shutdown_timeout`, `tool_search`,
//! `tool_search_threshold`, `tool_search_pinned`, and for HTTP
//! `session_idle_timeout`, `max_sessions`, `http_read_timeout`, `allowed_hosts` and
//! `allowed_origins`, each also settable with the environment variable
//! `MAGG_<KEY IN CAPITALS>` (e.g. `MAGG_READ_ONLY`). **The environment overrides the file**
//! (Magg 1.3 did the reverse); empty variables are
//! ignored. Booleans accept `true/false/1/0/yes/no/on/off` in any case; lists in the
//! environment are comma-separated.
//!
//! # Discovery
//!
//! See [`discover_path`]: `--config`, then `MAGG_CONFIG_PATH`, then the first
//! `config.json` in the [`search_paths`] directories, then
//! `./.magg/config.json` (which need not exist: [`load_discovered`] then uses
//! [`Config::embedded_default`]).

mod component;
mod edit;
mod error;
mod interpolate;
mod locate;
mod parse;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use component::{DirGrant, Grants};
pub use edit::{ConfigLock, EditError, edit_locked, lock_path};
pub use error::ConfigError;
pub(crate) use error::{Field, Pos, syntax_message};
pub(crate) use locate::{ObjectLayout, line_column, top_level_object};
pub(crate) use parse::describe;
pub use write::write_json_atomic;

/// The config file's name inside each search directory.
pub const CONFIG_FILE_NAME: &str = "config.json";

/// The npm package (with pinned version) the embedded default config runs.
pub const EMBEDDED_DEFAULT_PACKAGE: &str = "@modelcontextprotocol/server-everything@2026.8.31";

/// Default for [`Settings::self_prefix`].
pub const DEFAULT_SELF_PREFIX: &str = "magg";

/// Default for [`Settings::backend_init_timeout`].
pub const DEFAULT_BACKEND_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default for [`Settings::backend_call_timeout`].
pub const DEFAULT_BACKEND_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Default for [`Settings::list_wait`].
pub const DEFAULT_LIST_WAIT: Duration = Duration::from_secs(5);

/// Default for [`Settings::session_idle_timeout`].
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Default for [`Settings::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 1000;

/// Default for [`Settings::http_read_timeout`].
pub const DEFAULT_HTTP_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default for [`Settings::shutdown_timeout`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for [`Settings::tool_search_threshold`].
pub const DEFAULT_TOOL_SEARCH_THRESHOLD: usize = 40;

/// Whether tools/list shows every tool, or magg's own tools, the tool search tools and the
/// pinned tools only ([`Settings::tool_search`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ToolSearch {
    /// Every tool is listed; there are no tool search tools.
    #[default]
    Off,
    /// Only magg's own tools, `magg_search_tools`, `magg_call_tool` and the pinned tools are
    /// listed.
    On,
    /// As `On` for a client that may see more tools than the threshold, else as `Off`.
    Auto,
}

impl ToolSearch {
    /// The setting's value as the config file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolSearch::Off => "off",
            ToolSearch::On => "on",
            ToolSearch::Auto => "auto",
        }
    }
}

/// What the value of an `env` variable or a `transport.headers` entry is shown as wherever a
/// client or a terminal sees the config (resources, `magg config show`...); see
/// [`ServerConfig::masked`].
pub const SECRET_MASK: &str = "***";

/// A way to look up an environment variable (the process environment in
/// normal use, a closure over a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Looks a variable up in the process environment (non-UTF-8 values count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Magg's `MAGG_*` settings, from the config file's top level and the
/// environment (which wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Prefix for magg's own tools (`magg_list_servers`...). Identifier-like
    /// (`[A-Za-z][A-Za-z0-9]*`, no underscores), or empty for no prefix.
    /// Key `self_prefix`, env `MAGG_SELF_PREFIX`, default `"magg"`.
    pub self_prefix: String,
    /// Separator between [`Settings::self_prefix`] and magg's tool names.
    /// Never empty. Key `prefix_sep`, env `MAGG_PREFIX_SEP`, default `"_"`.
    pub prefix_sep: String,
    /// Never write the config file, and refuse changes to it.
    /// Key `read_only`, env `MAGG_READ_ONLY`, default false.
    pub read_only: bool,
    /// Log level name (e.g. `INFO`, `debug`); `None` means the default.
    /// Key `log_level`, env `MAGG_LOG_LEVEL`.
    pub log_level: Option<String>,
    /// How long a backend may take to connect and initialise; `None` waits
    /// forever (0 in the file or env; a negative value is an error). Key `backend_init_timeout`
    /// (seconds), env `MAGG_BACKEND_INIT_TIMEOUT`, default 30 s.
    pub backend_init_timeout: Option<Duration>,
    /// How long magg waits for a backend's answer to one tools/call before it ends the call
    /// with an error result and cancels it at the backend; `None` waits forever (0; negative is
    /// an error).
    /// Key `backend_call_timeout` (seconds), env `MAGG_BACKEND_CALL_TIMEOUT`, default 300 s.
    pub backend_call_timeout: Option<Duration>,
    /// Show backends' stderr. Key `stderr_show`, env `MAGG_STDERR_SHOW`, default false.
    pub stderr_show: bool,
    /// Reload the config file when it changes. Key `auto_reload`, env
    /// `MAGG_AUTO_RELOAD`, default true.
    pub auto_reload: bool,
    /// Count calls, lists, plugin calls and reloads for `/metrics`. Key `metrics`, env
    /// `MAGG_METRICS`, default true.
    pub metrics: bool,
    /// Seconds between config file polls (positive). Key
    /// `reload_poll_interval`, env `MAGG_RELOAD_POLL_INTERVAL`, default 1.0.
    pub reload_poll_interval: f64,
    /// Use file-system notifications (`Some(true)`) or polling
    /// (`Some(false)`) to notice config changes; `None` picks automatically.
    /// Key `reload_use_watchdog`, env `MAGG_RELOAD_USE_WATCHDOG`.
    pub reload_use_watchdog: Option<bool>,
    /// Directory of plugins (`~` expanded). Key `plugins_dir`, env `MAGG_PLUGINS_DIR`.
    pub plugins_dir: Option<PathBuf>,
    /// How long the first list requests wait for backends that are still
    /// starting. Key `list_wait` (seconds, not negative), env
    /// `MAGG_LIST_WAIT`, default 5 s.
    pub list_wait: Duration,
    /// Let HTTP clients that magg cannot authenticate (no key is set up with `magg auth init`)
    /// use the tools that start servers or change the config. Key
    /// `allow_unauthenticated_changes`, env `MAGG_ALLOW_UNAUTHENTICATED_CHANGES`, default false.
    pub allow_unauthenticated_changes: bool,
    /// How long an HTTP session (streamable HTTP at `/mcp`) may go without a request before
    /// magg ends it and frees what it held; `None` keeps sessions until the client ends them
    /// (0; negative is an error). Key `session_idle_timeout` (seconds), env
    /// `MAGG_SESSION_IDLE_TIMEOUT`, default 300 s.
    pub session_idle_timeout: Option<Duration>,
    /// How many HTTP sessions (streamable HTTP and legacy SSE together) may be open at once;
    /// a client that opens one more gets `503 Service Unavailable`. 0 means no limit. Key
    /// `max_sessions`, env `MAGG_MAX_SESSIONS`, default 1000.
    pub max_sessions: usize,
    /// How long an HTTP client may take to send a request's headers, and (at first) its body;
    /// a body keeps more time while it keeps coming at a usable rate. A client slower than
    /// that is disconnected. `None` waits forever (0; negative is an error). Key
    /// `http_read_timeout` (seconds), env `MAGG_HTTP_READ_TIMEOUT`, default 30 s.
    pub http_read_timeout: Option<Duration>,
    /// The host names (`example.com`, `example.com:8080`) HTTP requests may name in `Host`;
    /// `None` for the default: the loopback names when magg listens on loopback, those and
    /// `--host` when it listens on one address, any host when it listens on all interfaces.
    /// An empty list allows any host. Key `allowed_hosts`, env `MAGG_ALLOWED_HOSTS`
    /// (comma-separated).
    pub allowed_hosts: Option<Vec<String>>,
    /// The web origins (`https://app.example.com`, `http://localhost:*`, `null`) whose pages
    /// may send requests to magg, checked when a request has an `Origin` header; `None` for
    /// the default: a page's origin must name an allowed host. Key `allowed_origins`, env
    /// `MAGG_ALLOWED_ORIGINS` (comma-separated).
    pub allowed_origins: Option<Vec<String>>,
    /// How long magg, told to stop (SIGTERM, SIGINT, or its stdio client went away), waits for
    /// the calls in flight to finish before it ends the backends; 0 ends them at once. Key
    /// `shutdown_timeout` (seconds, not negative), env `MAGG_SHUTDOWN_TIMEOUT`, default 10 s.
    pub shutdown_timeout: Duration,
    /// Tool search: `off` lists every tool; `on` lists magg's own tools, `magg_search_tools`,
    /// `magg_call_tool` and the pinned tools only; `auto` does so for a client that may see
    /// more than [`Settings::tool_search_threshold`] tools. Key `tool_search`, env
    /// `MAGG_TOOL_SEARCH`, default `off`.
    pub tool_search: ToolSearch,
    /// Above how many tools (of backends, that the client may see) `auto` tool search turns
    /// on. Key `tool_search_threshold`, env `MAGG_TOOL_SEARCH_THRESHOLD`, default 40.
    pub tool_search_threshold: usize,
    /// Tools listed even under tool search, as globs over exposed names (`github_*`,
    /// `time_get_current_time`). Key `tool_search_pinned`, env `MAGG_TOOL_SEARCH_PINNED`
    /// (comma-separated), default none.
    pub tool_search_pinned: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            self_prefix: DEFAULT_SELF_PREFIX.to_owned(),
            prefix_sep: "_".to_owned(),
            read_only: false,
            log_level: None,
            backend_init_timeout: Some(DEFAULT_BACKEND_INIT_TIMEOUT),
            backend_call_timeout: Some(DEFAULT_BACKEND_CALL_TIMEOUT),
            stderr_show: false,
            auto_reload: true,
            metrics: true,
            reload_poll_interval: 1.0,
            reload_use_watchdog: None,
            plugins_dir: None,
            list_wait: DEFAULT_LIST_WAIT,
            allow_unauthenticated_changes: false,
            session_idle_timeout: Some(DEFAULT_SESSION_IDLE_TIMEOUT),
            max_sessions: DEFAULT_MAX_SESSIONS,
            http_read_timeout: Some(DEFAULT_HTTP_READ_TIMEOUT),
            allowed_hosts: None,
            allowed_origins: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tool_search: ToolSearch::Off,
            tool_search_threshold: DEFAULT_TOOL_SEARCH_THRESHOLD,
            tool_search_pinned: Vec::new(),
        }
    }
}

impl Settings {
    /// The settings' top-level keys in a Magg config file, each with its
    /// environment variable.
    pub const KEYS: &'static [(&'static str, &'static str)] = &[
        ("self_prefix", "MAGG_SELF_PREFIX"),
        ("prefix_sep", "MAGG_PREFIX_SEP"),
        ("read_only", "MAGG_READ_ONLY"),
        ("log_level", "MAGG_LOG_LEVEL"),
        ("backend_init_timeout", "MAGG_BACKEND_INIT_TIMEOUT"),
        ("backend_call_timeout", "MAGG_BACKEND_CALL_TIMEOUT"),
        ("stderr_show", "MAGG_STDERR_SHOW"),
        ("auto_reload", "MAGG_AUTO_RELOAD"),
        ("metrics", "MAGG_METRICS"),
        ("reload_poll_interval", "MAGG_RELOAD_POLL_INTERVAL"),
        ("reload_use_watchdog", "MAGG_RELOAD_USE_WATCHDOG"),
        ("plugins_dir", "MAGG_PLUGINS_DIR"),
        ("list_wait", "MAGG_LIST_WAIT"),
        (
            "allow_unauthenticated_changes",
            "MAGG_ALLOW_UNAUTHENTICATED_CHANGES",
        ),
        ("session_idle_timeout", "MAGG_SESSION_IDLE_TIMEOUT"),
        ("max_sessions", "MAGG_MAX_SESSIONS"),
        ("http_read_timeout", "MAGG_HTTP_READ_TIMEOUT"),
        ("allowed_hosts", "MAGG_ALLOWED_HOSTS"),
        ("allowed_origins", "MAGG_ALLOWED_ORIGINS"),
        ("shutdown_timeout", "MAGG_SHUTDOWN_TIMEOUT"),
        ("tool_search", "MAGG_TOOL_SEARCH"),
        ("tool_search_threshold", "MAGG_TOOL_SEARCH_THRESHOLD"),
        ("tool_search_pinned", "MAGG_TOOL_SEARCH_PINNED"),
    ];

    /// The name of one of magg's own tools: `"{self_prefix}{prefix_sep}{name}"`,
    /// or just `name` when `self_prefix` is empty.
    pub fn prefixed(&self, name: &str) -> String {
        if self.self_prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}{}{}", self.self_prefix, self.prefix_sep, name)
        }
    }

    /// Applies the `MAGG_*` environment variables found by `env` on top of
    /// these settings. `path` is only used in error messages.
    pub fn apply_env(&mut self, env: EnvLookup<'_>, path: &Path) -> Result<(), ConfigError> {
        parse::apply_env(self, env, path)
    }
}

/// Whether `prefix` is a valid tool prefix: `[A-Za-z][A-Za-z0-9]*` (Magg's
/// rule: a Python identifier without underscores; ASCII only here). The empty
/// string is not a prefix; callers treat it as "no prefix".
pub fn is_valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Makes a valid prefix out of a server name: drops every character that is
/// not an ASCII letter or digit, puts `s` in front of a leading digit, and
/// uses `server` if nothing is left. `"my-fs"` → `"myfs"`, `"7zip"` → `"s7zip"`.
pub fn prefix_from_name(name: &str) -> String {
    let kept: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    match kept.chars().next() {
        None => "server".to_owned(),
        Some(c) if c.is_ascii_digit() => format!("s{kept}"),
        Some(_) => kept,
    }
}

/// Which protocol era magg speaks to a server (a server's `"protocol"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Ask `server/discover` first and use 2026-07-28 when the server speaks it; otherwise
    /// open a session with `initialize` (the default).
    Auto,
    /// Only 2026-07-28 (stateless, per-request metadata); a server that does not speak it fails
    /// to start.
    Stateless,
    /// Always open a session with `initialize` (protocol 2025-11-25 and before), even with a
    /// server that also speaks 2026-07-28: for servers whose tools ask the client things in the
    /// middle of a call.
    Session,
}

impl Protocol {
    /// The values a config file may give, as written there.
    pub const VALUES: &'static str = r#""auto", "2026-07-28" or "2025-11-25""#;

    /// The setting for the text `value` of a config file.
    pub fn parse(value: &str) -> Option<Protocol> {
        match value {
            "auto" => Some(Protocol::Auto),
            "2026-07-28" | "stateless" => Some(Protocol::Stateless),
            "2025-11-25" | "2025-06-18" | "2025-03-26" | "2024-11-05" | "session" => {
                Some(Protocol::Session)
            }
            _ => None,
        }
    }

    /// The value as a config file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Stateless => "2026-07-28",
            Protocol::Session => "2025-11-25",
        }
    }
}

/// One backend MCP server, as in Magg's `ServerConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The server's key in `"servers"` (or `"mcpServers"`).
    pub name: String,
    /// Where the server comes from (URL of its package, repository or
    /// listing). Required by Magg; when missing it defaults to the URI or the
    /// command line (with a warning).
    pub source: String,
    /// Prefix for the server's tools (`{prefix}_{tool}`); `None` keeps the
    /// tools' own names (Magg 1.3). Never `Some("")`.
    pub prefix: Option<String>,
    /// Program to run for a stdio server (e.g. `npx`). Never `Some("")`.
    pub command: Option<String>,
    /// Arguments to [`ServerConfig::command`].
    pub args: Vec<String>,
    /// URL of an HTTP (streamable HTTP or SSE) server. Never `Some("")`.
    pub uri: Option<String>,
    /// Extra environment variables for the command.
    pub env: IndexMap<String, String>,
    /// Working directory for the command, as written in the file.
    pub cwd: Option<PathBuf>,
    /// Transport-specific options (Magg: `keep_alive`, `headers`,
    /// `sse_read_timeout`...). An empty object is normalised to `None`. For
    /// mcpServers files, `headers` lands here, and a non-stdio `type` as
    /// `"type": "http"` or `"type": "sse"`.
    pub transport: Option<Map<String, Value>>,
    /// Whether the server is started. Default true.
    pub enabled: bool,
    /// Free-form setup notes for people and LLMs.
    pub notes: Option<String>,
    /// Kits this server was added from.
    pub kits: Vec<String>,
    /// The WebAssembly component to mount as this server, as written (`wasm`; relative to
    /// the config file's directory).
    pub wasm: Option<String>,
    /// What a component server may use (`grants`); deny by default.
    pub grants: Option<Grants>,
    /// Which protocol era magg speaks to the server (`protocol`); `None` is
    /// [`Protocol::Auto`].
    pub protocol: Option<Protocol>,
    /// The component file this server mounts, absolute: from `wasm`, or from a `source` that
    /// names a local `.wasm` file when there is neither `command` nor `uri`. Not written.
    pub component: Option<PathBuf>,
    /// For a component, the config file's directory, which relative paths of its entry are
    /// read from (empty for other servers). Not written.
    pub base_dir: PathBuf,
    /// Keys magg does not know, kept so that writing the file back loses nothing.
    pub extra: Map<String, Value>,
}

impl ServerConfig {
    /// A server with this name and source and everything else at its default.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            prefix: None,
            command: None,
            args: Vec::new(),
            uri: None,
            env: IndexMap::new(),
            cwd: None,
            transport: None,
            enabled: true,
            notes: None,
            kits: Vec::new(),
            wasm: None,
            grants: None,
            protocol: None,
            component: None,
            base_dir: PathBuf::new(),
            extra: Map::new(),
        }
    }

    /// Works out [`ServerConfig::component`] from `wasm`, `source`, `command` and `uri`, with
    /// relative paths read from `base_dir`.
    pub fn resolve_component(&mut self, base_dir: &Path) {
        self.component = component::component_file(
            self.wasm.as_deref(),
            Some(&self.source),
            self.command.is_some() || self.uri.is_some(),
            base_dir,
        );
        // Only a component's entry reads paths from there (its grants' directories).
        self.base_dir = match self.component {
            Some(_) => base_dir.to_owned(),
            None => PathBuf::new(),
        };
    }

    /// Sets `command` and `args` from one command line split like a shell
    /// (`"npx -y @scope/server"`), as Magg's `add_server` does. Returns false, changing
    /// nothing, when the line holds no words; an error when it does not split (e.g. an
    /// unclosed quote).
    pub fn set_command_line(&mut self, line: &str) -> Result<bool, String> {
        let Some((command, args)) = split_command_line(line)? else {
            return Ok(false);
        };
        self.command = Some(command);
        self.args = args;
        Ok(true)
    }

    /// Magg's per-server file form: no `name`, defaults left out (`enabled`
    /// only when false; empty `args`, `env`, `kits` omitted), unknown keys kept.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("source".into(), Value::String(self.source.clone()));
        if let Some(prefix) = &self.prefix {
            out.insert("prefix".into(), Value::String(prefix.clone()));
        }
        if let Some(notes) = &self.notes {
            out.insert("notes".into(), Value::String(notes.clone()));
        }
        if let Some(command) = &self.command {
            out.insert("command".into(), Value::String(command.clone()));
        }
        if !self.args.is_empty() {
            let args = self.args.iter().cloned().map(Value::String).collect();
            out.insert("args".into(), Value::Array(args));
        }
        if let Some(uri) = &self.uri {
            out.insert("uri".into(), Value::String(uri.clone()));
        }
        if !self.env.is_empty() {
            let env = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            out.insert("env".into(), Value::Object(env));
        }
        if let Some(cwd) = &self.cwd {
            out.insert(
                "cwd".into(),
                Value::String(cwd.to_string_lossy().into_owned()),
            );
        }
        if let Some(transport) = self.transport.as_ref().filter(|t| !t.is_empty()) {
            out.insert("transport".into(), Value::Object(transport.clone()));
        }
        if !self.enabled {
            out.insert("enabled".into(), Value::Bool(false));
        }
        if !self.kits.is_empty() {
            let kits = self.kits.iter().cloned().map(Value::String).collect();
            out.insert("kits".into(), Value::Array(kits));
        }
        if let Some(wasm) = &self.wasm {
            out.insert("wasm".into(), Value::String(wasm.clone()));
        }
        if let Some(grants) = &self.grants
            && let Ok(value) = serde_json::to_value(grants)
        {
            out.insert("grants".into(), value);
        }
        if let Some(protocol) = &self.protocol {
            out.insert(
                "protocol".into(),
                Value::String(protocol.as_str().to_owned()),
            );
        }
        for (key, value) in &self.extra {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(out)
    }

    /// `"command arg1 arg2"` for display, like Magg's list output; arguments
    /// containing spaces or shell metacharacters are shell-quoted. `None`
    /// when there is no command.
    pub fn command_line(&self) -> Option<String> {
        let command = self.command.as_deref()?;
        let mut line = command.to_owned();
        for arg in &self.args {
            line.push(' ');
            if needs_quoting(arg) {
                line.push_str(&shell_words::quote(arg));
            } else {
                line.push_str(arg);
            }
        }
        Some(line)
    }

    /// The program and arguments to run. When `args` is empty and `command`
    /// holds a whole command line (`"npx @scope/pkg"`, as in Magg's README)
    /// that is not itself an existing path, it is split shell-style.
    pub fn argv(&self) -> Option<(String, Vec<String>)> {
        let command = self.command.as_deref()?;
        if self.args.is_empty()
            && command.trim().contains(char::is_whitespace)
            && !Path::new(command).exists()
            && let Ok(mut words) = shell_words::split(command)
            && !words.is_empty()
        {
            let program = words.remove(0);
            return Some((program, words));
        }
        Some((command.to_owned(), self.args.clone()))
    }

    /// This server as it may be shown to a client or on a terminal: the value of every `env`
    /// variable and of every `transport.headers` entry (API keys, `Authorization: Bearer ...`)
    /// replaced by [`SECRET_MASK`], names kept; empty values stay empty. So are a password in
    /// `uri` (`https://user:***@host`), its query values whose names look secret
    /// (`?api_key=***`), and in `args` (and a `command` with arguments in it) the values of
    /// options and `NAME=value` words whose names look secret (`--token ***`,
    /// `--api-key=***`, `API_KEY=***`). Only for showing: the file keeps the real values,
    /// and a masked server is never saved.
    pub fn masked(&self) -> ServerConfig {
        let mut shown = self.clone();
        shown.args = mask_args(&shown.args);
        if let Some(command) = &shown.command
            && command.contains(' ')
        {
            let words: Vec<String> = command.split(' ').map(str::to_owned).collect();
            shown.command = Some(mask_args(&words).join(" "));
        }
        if let Some(uri) = &shown.uri {
            shown.uri = Some(mask_uri(uri));
        }
        for value in shown.env.values_mut() {
            if !value.is_empty() {
                *value = SECRET_MASK.to_owned();
            }
        }
        if let Some(Value::Object(headers)) =
            shown.transport.as_mut().and_then(|t| t.get_mut("headers"))
        {
            for value in headers.values_mut() {
                if value.as_str() != Some("") {
                    *value = Value::String(SECRET_MASK.to_owned());
                }
            }
        }
        shown
    }

    /// Whether [`ServerConfig::masked`] hides anything of this server.
    pub fn has_secrets(&self) -> bool {
        self.masked() != *self
    }

    /// The transport type named in [`ServerConfig::transport`]'s `"type"`
    /// (`"http"` or `"sse"` from mcpServers files), if any.
    pub fn transport_type(&self) -> Option<&str> {
        self.transport.as_ref()?.get("type")?.as_str()
    }
}

/// Whether a command-line argument needs quoting for display.
fn needs_quoting(arg: &str) -> bool {
    arg.is_empty()
        || arg.chars().any(|c| {
            c.is_whitespace()
                || matches!(
                    c,
                    '\'' | '"'
                        | '\\'
                        | '$'
                        | '`'
                        | '|'
                        | '&'
                        | ';'
                        | '<'
                        | '>'
                        | '('
                        | ')'
                        | '*'
                        | '?'
                        | '['
                        | '#'
                )
        })
}

/// Which kind of file a [`Config`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// Magg's own format: a top-level `"servers"` object.
    Magg,
    /// Claude-Desktop / multi-mcp format: a top-level `"mcpServers"` object.
    McpServers,
}

/// A loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (or would be written to).
    pub path: PathBuf,
    /// False when no file was found and the embedded default is used.
    pub exists: bool,
    /// The file's format.
    pub format: ConfigFormat,
    /// Settings: file values with the environment applied on top.
    pub settings: Settings,
    /// The servers, in file order.
    pub servers: IndexMap<String, ServerConfig>,
    /// Magg's `"kits"` object, kept raw. A legacy list of names becomes
    /// `{name: {"name": name, "source": "legacy"}}`.
    pub kits: Map<String, Value>,
    /// Unknown top-level keys, kept and written back.
    pub extra: Map<String, Value>,
    /// The settings keys exactly as they were in the file (without the
    /// environment), which [`Config::to_json`] writes back unchanged.
    pub file_settings: Map<String, Value>,
}

impl Config {
    /// The configuration used when there is no config file: default settings
    /// (environment not applied: see [`Settings::apply_env`]) and one enabled
    /// server, `everything`, the MCP reference test server run with `npx`
    /// ([`EMBEDDED_DEFAULT_PACKAGE`]), so a fresh `magg serve` has a real backend.
    /// `exists` is false.
    pub fn embedded_default(path: PathBuf) -> Config {
        let mut everything = ServerConfig::new(
            "everything",
            "https://www.npmjs.com/package/@modelcontextprotocol/server-everything",
        );
        everything.prefix = Some("everything".to_owned());
        everything.command = Some("npx".to_owned());
        everything.args = vec![
            "-y".to_owned(),
            EMBEDDED_DEFAULT_PACKAGE.to_owned(),
            "stdio".to_owned(),
        ];
        everything.notes = Some(format!(
            "The MCP reference test server ({EMBEDDED_DEFAULT_PACKAGE}), run because no magg \
             config file was found. Remove it by writing a config file (e.g. {}) with your own servers.",
            path.display()
        ));
        let mut config = Config::empty(path);
        config.servers.insert(everything.name.clone(), everything);
        config
    }

    /// A configuration with no servers, no kits and default settings for a file that does not
    /// exist (yet): `exists` is false.
    pub fn empty(path: PathBuf) -> Config {
        Config {
            path,
            exists: false,
            format: ConfigFormat::Magg,
            settings: Settings::default(),
            servers: IndexMap::new(),
            kits: Map::new(),
            extra: Map::new(),
            file_settings: Map::new(),
        }
    }

    /// The servers with `enabled` set, in file order.
    pub fn enabled_servers(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.values().filter(|server| server.enabled)
    }

    /// The file form, always in Magg format: `"servers"` (each as
    /// [`ServerConfig::to_json`]), `"kits"` when not empty, the settings keys
    /// that were in the file (as they were there, not as the environment
    /// changed them), then unknown top-level keys.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let servers = self
            .servers
            .iter()
            .map(|(name, server)| (name.clone(), server.to_json()))
            .collect();
        out.insert("servers".into(), Value::Object(servers));
        if !self.kits.is_empty() {
            out.insert("kits".into(), Value::Object(self.kits.clone()));
        }
        for (key, value) in self.file_settings.iter().chain(&self.extra) {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(out)
    }

    /// Writes the servers and kits to [`Config::path`] the way Magg saves (to change one thing
    /// in a file other processes may change too, use [`edit_locked`] instead):
    /// the file is re-read and only its `"servers"` and `"kits"` are replaced
    /// (other keys and their order stay as they are in the file now); a new
    /// file gets [`Config::to_json`]. The write is atomic (temp file +
    /// rename, through symlinks, keeping the file's permissions). Refuses
    /// for mcpServers-format files and for a file that no longer parses.
    /// Does not look at [`Settings::read_only`]; that is the caller's call.
    pub fn save(&self) -> Result<(), ConfigError> {
        write::save(self)
    }

    /// Checks an edited config as if it had just been read from its file (the same
    /// validation and the same errors), and returns that freshly read form.
    pub fn revalidated(&self) -> Result<Config, ConfigError> {
        let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        let mut config = parse_str(&self.path, &text, &process_env)?;
        config.exists = self.exists;
        Ok(config)
    }
}

/// Splits a whole command line like a shell into the program and its arguments (Magg's
/// `parse_command_arg`); `None` when it holds no words.
pub fn split_command_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let mut words =
        shell_words::split(line).map_err(|e| format!("not a valid command line: {e}"))?;
    if words.is_empty() {
        return Ok(None);
    }
    let program = words.remove(0);
    Ok(Some((program, words)))
}

/// The directories searched for `config.json`: `MAGG_PATH` (colon-separated,
/// `~` expanded, empty entries skipped) if set, else `./.magg` (absolute,
/// from the current directory) and `~/.magg`.
pub fn search_paths() -> Vec<PathBuf> {
    search_paths_with(&process_env, &current_dir(), dirs::home_dir().as_deref())
}

/// [`search_paths`] with an explicit environment, current directory and home.
pub fn search_paths_with(env: EnvLookup<'_>, cwd: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    if let Some(paths) = magg_path_dirs(env, cwd, home) {
        return paths;
    }
    let mut paths = vec![cwd.join(".magg")];
    if let Some(home) = home {
        paths.push(home.join(".magg"));
    }
    paths
}

/// The directories in `MAGG_PATH`, if it is set and names at least one.
fn magg_path_dirs(env: EnvLookup<'_>, cwd: &Path, home: Option<&Path>) -> Option<Vec<PathBuf>> {
    let value = env("MAGG_PATH")?;
    let paths: Vec<PathBuf> = value
        .split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| cwd.join(expand_tilde(p, home)))
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// Which config file to use, and why: `"--config"` (the explicit path),
/// `"MAGG_CONFIG_PATH"`, `"MAGG_PATH"` (the first `config.json` found in, or
/// when none exists the first directory of, `MAGG_PATH`), or `"default"`
/// (found in `./.magg` or `~/.magg`, or `./.magg/config.json` when none
/// exists). The returned file need not exist.
pub fn discover_path(explicit: Option<&Path>) -> (PathBuf, &'static str) {
    discover_path_with(
        explicit,
        &process_env,
        &current_dir(),
        dirs::home_dir().as_deref(),
    )
}

/// [`discover_path`] with an explicit environment, current directory and home.
pub fn discover_path_with(
    explicit: Option<&Path>,
    env: EnvLookup<'_>,
    cwd: &Path,
    home: Option<&Path>,
) -> (PathBuf, &'static str) {
    if let Some(path) = explicit {
        return (cwd.join(path), "--config");
    }
    if let Some(value) = non_empty(env("MAGG_CONFIG_PATH")) {
        return (
            cwd.join(expand_tilde(value.trim(), home)),
            "MAGG_CONFIG_PATH",
        );
    }
    let why = if magg_path_dirs(env, cwd, home).is_some() {
        "MAGG_PATH"
    } else {
        "default"
    };
    let dirs = search_paths_with(env, cwd, home);
    for dir in &dirs {
        let file = dir.join(CONFIG_FILE_NAME);
        if file.exists() {
            return (file, why);
        }
    }
    let first = dirs.into_iter().next().unwrap_or_else(|| cwd.join(".magg"));
    (first.join(CONFIG_FILE_NAME), why)
}

/// Reads and validates the config file at `path` (which must exist), with
/// the process environment applied to the settings.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &process_env)
}

/// [`load`] with an explicit environment, used both for the `MAGG_*`
/// overrides and for `${VAR}` interpolation in mcpServers files.
pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(path, &text, env)
}

/// Parses config text as if read from `path` (used in messages and stored
/// in [`Config::path`]), with `env` for overrides and interpolation.
pub fn parse_str(path: &Path, text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    parse::parse_document(path, text, env)
}

/// Parses the `"servers"` of a kit file (given as `{"servers": {...}}` text, as if read from
/// `path`) with the config file's rules, except the checks against the settings of the config
/// the kit will be loaded into, which loading the kit does.
pub(crate) fn parse_kit_servers(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse::parse_as(parse::Document::KitServers, path, text, &|_| None)
}

/// Finds the config file ([`discover_path`]) and loads it. When it does not exist: a file
/// named with `--config` or `MAGG_CONFIG_PATH` gives [`Config::empty`] (as Magg does; the
/// commands that edit the config create it, and `magg serve` refuses a missing `--config`);
/// a file that was only searched for gives [`Config::embedded_default`]. Either has `exists`
/// false and the environment applied to its settings.
pub fn load_discovered(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    load_discovered_with(
        explicit,
        &process_env,
        &current_dir(),
        dirs::home_dir().as_deref(),
    )
}

/// [`load_discovered`] with an explicit environment, current directory and home.
pub fn load_discovered_with(
    explicit: Option<&Path>,
    env: EnvLookup<'_>,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<Config, ConfigError> {
    let (path, why) = discover_path_with(explicit, env, cwd, home);
    if path.exists() {
        tracing::debug!(path = %path.display(), why, "loading config");
        return load_with_env(&path, env);
    }
    let mut config = if matches!(why, "--config" | "MAGG_CONFIG_PATH") {
        tracing::debug!(
            "config file {} (from {why}) does not exist; starting from an empty config",
            path.display()
        );
        Config::empty(path)
    } else {
        tracing::info!(
            "no config file found (would be {}); using the built-in default config",
            path.display()
        );
        Config::embedded_default(path)
    };
    config.settings.apply_env(env, &config.path)?;
    Ok(config)
}

/// Expands a leading `~` or `~/` with `home` (left as is without a home).
pub(crate) fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path, home) {
        ("~", Some(home)) => home.to_owned(),
        (p, Some(home)) if p.starts_with("~/") => home.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// Whether a name (of an option, a query parameter, a variable) looks like it holds a secret.
fn secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// `args` with the values of secret-looking options and `NAME=value` words masked.
fn mask_args(args: &[String]) -> Vec<String> {
    let mut shown = Vec::with_capacity(args.len());
    let mut next_is_secret = false;
    for arg in args {
        if next_is_secret && !arg.starts_with('-') {
            shown.push(SECRET_MASK.to_owned());
            next_is_secret = false;
            continue;
        }
        next_is_secret = false;
        match arg.split_once('=') {
            Some((name, value)) if secret_name(name) && !value.is_empty() => {
                shown.push(format!("{name}={SECRET_MASK}"));
            }
            None if arg.starts_with('-') && secret_name(arg) => {
                next_is_secret = true;
                shown.push(arg.clone());
            }
            _ => shown.push(arg.clone()),
        }
    }
    shown
}

/// `uri` with its password and secret-looking query values masked.
fn mask_uri(uri: &str) -> String {
    let Ok(mut url) = url::Url::parse(uri) else {
        return uri.to_owned();
    };
    if url.password().is_some_and(|p| !p.is_empty()) {
        let _ = url.set_password(Some(SECRET_MASK));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_name(&k) && !v.is_empty() {
                    SECRET_MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let shown = url.to_string();
    // `url` percent-encodes `***` in a password; show it as written.
    shown.replace("%2A%2A%2A", SECRET_MASK)
}
