//! The `magg` command line: argument parsing (clap), logging setup, dispatch to one function per
//! command, and what the commands share: Magg-style messages, failures (exit 1), confirmation
//! prompts and saving an edited config. Magg's command names, flags and exit codes are kept so
//! existing setups keep working.
//!
//! The commands live in submodules: [`serve`] (`magg serve`), [`server`] (`magg server ...`),
//! [`kit`] (`magg kit ...`) and [`auth`] (`magg auth ...`); `magg config ...` is here.

mod auth;
mod kit;
mod plugin;
mod serve;
mod server;

use std::{
    fmt,
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tracing_subscriber::{
    EnvFilter, layer::SubscriberExt as _, reload, util::SubscriberInitExt as _,
};

use crate::config::{self, Config};

/// The help section of the options every command takes.
const GLOBAL: &str = "Global Options";

/// magg: many MCP servers behind one, managed mid-session.
#[derive(Debug, Parser)]
#[command(
    name = "magg",
    version,
    about = "magg - MCP Aggregator: many MCP servers behind one, managed mid-session",
    after_help = "Use \"magg <command> --help\" for more information about a command.",
    arg_required_else_help = true
)]
pub struct Cli {
    /// Path to config file (default: the first config.json in $MAGG_PATH, else .magg/config.json)
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Pass magg's whole environment to stdio MCP servers (default: a minimal one plus `env`)
    #[arg(short = 'e', long, global = true, help_heading = GLOBAL)]
    pub env_pass: bool,
    /// Set an environment variable for stdio MCP servers (repeatable)
    #[arg(short = 'E', long, global = true, help_heading = GLOBAL, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub env_set: Vec<String>,
    /// Log level: error, warning, info, debug or trace (RUST_LOG, if set, wins)
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format on stderr: text, or json (one JSON object a line, for log shippers)
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FORMAT", env = "MAGG_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// A line of text per event, for people.
    #[default]
    Text,
    /// A JSON object per line (`timestamp`, `level`, `message` and the event's fields), for
    /// log shippers.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the magg server: stdio (default), streamable HTTP, or both
    Serve(ServeArgs),
    /// Manage servers
    Server {
        #[command(subcommand)]
        action: server::ServerCommand,
    },
    /// Manage configuration
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Manage kits
    Kit {
        #[command(subcommand)]
        action: kit::KitCommand,
    },
    /// Inspect WebAssembly plugins
    Plugin {
        #[command(subcommand)]
        action: plugin::PluginCommand,
    },
    /// Manage authentication
    Auth {
        #[command(subcommand)]
        action: auth::AuthCommand,
    },
}

/// Options of `magg serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Serve streamable HTTP at /mcp instead of stdio
    #[arg(long, conflicts_with = "hybrid")]
    pub http: bool,
    /// Serve stdio and streamable HTTP at once, over one shared set of backends
    #[arg(long)]
    pub hybrid: bool,
    /// HTTP host address
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// HTTP port (0 picks a free one; the address is logged)
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Suppress the startup banner
    #[arg(long)]
    pub no_banner: bool,
    /// Load WebAssembly plugins from DIR (default: `plugins_dir` / MAGG_PLUGINS_DIR, else
    /// `plugins/` beside the config file when it exists)
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Serve HTTP on a --host other than loopback without authentication (no key from `magg
    /// auth init`): anyone who can reach the port can use magg's tools
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve /healthz, /readyz and /metrics (and nothing else, without authentication) on
    /// this port too, for probes and scrapers when the MCP port is public; works in every mode
    #[arg(long, value_name = "PORT", env = "MAGG_ADMIN_PORT")]
    pub admin_port: Option<u16>,
    /// The address of the --admin-port listener (default: --host)
    #[arg(
        long,
        value_name = "HOST",
        requires = "admin_port",
        env = "MAGG_ADMIN_HOST"
    )]
    pub admin_host: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Show the configuration in use: file, settings and servers
    Show {
        /// Show the values of env variables and transport headers (masked as *** by default)
        #[arg(long)]
        show_secrets: bool,
    },
    /// Export configuration
    Export {
        /// Output file (default: stdout)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Export the values of env variables and transport headers (masked as *** by default)
        #[arg(long)]
        show_secrets: bool,
    },
    /// Show the configuration file path
    Path,
}

/// Runs the command line; the process exits with the returned code (2 for bad input).
pub fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == crate::reaper::SUBCOMMAND)
    {
        return crate::reaper::main();
    }
    crate::tls::install();
    let cli = match Cli::try_parse_from(auth::magg_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let serving = matches!(cli.command, Some(Command::Serve(_)));
    let logs = init_logging(
        cli.log_level.as_deref(),
        cli.log_format.unwrap_or_default(),
        serving,
    );
    let config = match config::load_discovered(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("magg: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.log_level.is_none()
        && std::env::var_os("RUST_LOG").is_none()
        && let Some(level) = config.settings.log_level.as_deref()
    {
        logs.set(level);
    }
    let env_set: Vec<(String, String)> = cli
        .env_set
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone())))
        .collect();
    crate::backend::set_extra_env(cli.env_pass, env_set);
    if !matches!(cli.command, Some(Command::Serve(_)) | None) {
        // The other commands end quietly when their reader goes away (`magg plugin list |
        // head`), as command-line tools do. `serve` keeps ignoring SIGPIPE: a backend or client
        // that goes away must not end it.
        // SAFETY: signal() only sets the process-wide disposition of SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Some(Command::Serve(_)) if cli.config.is_some() && !config.exists => {
            eprintln!(
                "magg: config file {} (given with --config) does not exist. Fix: check the path, \
                 create the file (e.g. with `magg server add NAME SOURCE --command ... --config {}`, \
                 or write {{\"servers\": {{}}}} to it), or leave out --config to use the default search",
                config.path.display(),
                config.path.display()
            );
            return ExitCode::from(2);
        }
        Some(Command::Serve(args)) => {
            if !config.exists && std::env::var_os("MAGG_CONFIG_PATH").is_some_and(|v| !v.is_empty())
            {
                tracing::warn!(
                    "config file {} (from MAGG_CONFIG_PATH) does not exist; serving no servers until it is written",
                    config.path.display()
                );
            }
            serve::run(config, args)
        }
        Some(Command::Server { action }) => server::run(config, action),
        Some(Command::Kit { action }) => kit::run(config, action),
        Some(Command::Plugin { action }) => plugin::run(config, action),
        Some(Command::Auth { action }) => auth::run(&config, action),
        Some(Command::Config {
            action: ConfigCommand::Show { show_secrets },
        }) => config_show(&config, Secrets::from_flag(show_secrets)),
        Some(Command::Config {
            action:
                ConfigCommand::Export {
                    output,
                    show_secrets,
                },
        }) => config_export(
            &file_config(config),
            output.as_deref(),
            Secrets::from_flag(show_secrets),
        ),
        Some(Command::Config {
            action: ConfigCommand::Path,
        }) => {
            println!("{}", config.path.display());
            Ok(())
        }
        None => Ok(()),
    };
    // Spans not yet exported go out before magg ends.
    crate::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<Failed>() {
                Some(failed) => failed.report(),
                None => eprintln!("magg: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// A handle to change the log level once the config is read.
struct Logs(Option<reload::Handle<EnvFilter, tracing_subscriber::Registry>>);

impl Logs {
    fn set(&self, level: &str) {
        if let Some(handle) = &self.0 {
            let _ = handle.modify(|f| *f = filter_for(level));
        }
    }
}

fn filter_for(level: &str) -> EnvFilter {
    let level = match level.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        "critical" | "fatal" => "error".to_owned(),
        other => other.to_owned(),
    };
    let watch = crate::reload::LOG_DIRECTIVE;
    EnvFilter::try_new(format!("{level},rmcp=error,{watch}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,rmcp=error,{watch}")))
}

/// Logs go to stderr: stdout belongs to the MCP stdio channel. With `traces` (a server) and an
/// OTLP endpoint in the environment, request spans are exported as well ([`crate::telemetry`]);
/// they never show in the log.
fn init_logging(cli_level: Option<&str>, format: LogFormat, traces: bool) -> Logs {
    use tracing_subscriber::{
        Layer as _,
        filter::{FilterExt as _, LevelFilter, Targets},
    };

    let filter = match (std::env::var("RUST_LOG"), cli_level) {
        // A spec that says nothing of the file watch keeps its per-event trace lines out.
        (Ok(spec), _) if !spec.is_empty() && !spec.contains("notify") => {
            EnvFilter::new(format!("{spec},{}", crate::reload::LOG_DIRECTIVE))
        }
        (Ok(spec), _) if !spec.is_empty() => EnvFilter::new(spec),
        (_, Some(level)) => filter_for(level),
        _ => match std::env::var("MAGG_LOG_LEVEL") {
            Ok(level) if !level.is_empty() => filter_for(&level),
            _ => filter_for("info"),
        },
    };
    let (filter, handle) = reload::Layer::new(filter);
    let (spans, trace_error) = match traces.then(crate::telemetry::layer).transpose() {
        Ok(layer) => (layer.flatten(), None),
        Err(e) => (None, Some(e)),
    };
    let installed = match spans {
        // Tracing off: one filter for the whole subscriber, so that a log call below its level
        // is off at its call site and costs nothing (the call route asks whether its debug
        // line is wanted before timing a call).
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_layer(format))
            .try_init(),
        // Tracing on: each layer has its own filter; the exported spans never show in the log.
        Some(spans) => {
            let not_spans = Targets::new()
                .with_default(LevelFilter::TRACE)
                .with_target(crate::telemetry::TARGET, LevelFilter::OFF);
            tracing_subscriber::registry()
                .with(log_layer(format).with_filter(filter.and(not_spans)))
                .with(spans)
                .try_init()
        }
    };
    let logs = match installed {
        Ok(()) => Logs(Some(handle)),
        Err(_) => Logs(None),
    };
    if let Some(e) = trace_error {
        tracing::error!("traces are off: {e}");
    }
    logs
}

/// The layer that writes log lines to stderr in `format`.
fn log_layer<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => {
            Box::new(fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
        }
        LogFormat::Json => Box::new(
            fmt.json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false),
        ),
    }
}

/// Whether a command shows the values of `env` variables and `transport.headers` (its
/// `--show-secrets` flag) or masks them ([`config::ServerConfig::masked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrets {
    /// Values replaced by [`config::SECRET_MASK`].
    Masked,
    /// Values as in the file.
    Shown,
}

impl Secrets {
    fn from_flag(show_secrets: bool) -> Secrets {
        if show_secrets {
            Secrets::Shown
        } else {
            Secrets::Masked
        }
    }

    /// `server` as this command shows it.
    fn apply(self, server: &config::ServerConfig) -> std::borrow::Cow<'_, config::ServerConfig> {
        match self {
            Secrets::Shown => std::borrow::Cow::Borrowed(server),
            Secrets::Masked => std::borrow::Cow::Owned(server.masked()),
        }
    }

    /// Tells on stderr that values were masked, when some of `servers` have any.
    fn note<'a>(self, servers: impl IntoIterator<Item = &'a config::ServerConfig>) {
        if self == Secrets::Masked && servers.into_iter().any(|s| s.has_secrets()) {
            say::note(&format!(
                "env and header values are shown as {}; add --show-secrets to show them",
                config::SECRET_MASK
            ));
        }
    }
}

fn config_show(config: &Config, secrets: Secrets) -> anyhow::Result<()> {
    let s = &config.settings;
    let servers: serde_json::Map<String, Value> = config
        .servers
        .iter()
        .map(|(name, server)| (name.clone(), server::dump_server(&secrets.apply(server))))
        .collect();
    let shown = json!({
        "path": config.path.display().to_string(),
        "exists": config.exists,
        "format": format!("{:?}", config.format),
        "settings": {
            "self_prefix": s.self_prefix,
            "prefix_sep": s.prefix_sep,
            "read_only": s.read_only,
            "log_level": s.log_level,
            "backend_init_timeout": s.backend_init_timeout.map(|d| d.as_secs_f64()),
            "stderr_show": s.stderr_show,
            "auto_reload": s.auto_reload,
            "metrics": s.metrics,
            "plugins_dir": s.plugins_dir.as_ref().map(|p| p.display().to_string()),
            "list_wait": s.list_wait.as_secs_f64(),
            "allow_unauthenticated_changes": s.allow_unauthenticated_changes,
        },
        "servers": servers,
        "kits": config.kits,
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    secrets.note(config.servers.values());
    Ok(())
}

/// `magg config export`: `{"servers": {name: server}}` as Magg exports it (each server with its
/// `"name"`, defaults left out, unknown keys kept), to stdout or to `output`; env and header
/// values masked unless `secrets` says to show them.
fn config_export(config: &Config, output: Option<&Path>, secrets: Secrets) -> anyhow::Result<()> {
    let servers: serde_json::Map<String, Value> = config
        .servers
        .iter()
        .map(|(name, server)| {
            let mut entry = serde_json::Map::new();
            entry.insert("name".into(), Value::String(name.clone()));
            if let Value::Object(fields) = secrets.apply(server).to_json() {
                entry.extend(fields);
            }
            (name.clone(), Value::Object(entry))
        })
        .collect();
    output_json(&json!({ "servers": servers }), output)?;
    secrets.note(config.servers.values());
    Ok(())
}

/// Writes machine output: pretty JSON to stdout, or atomically to `output` when given.
fn output_json(value: &Value, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => config::write_json_atomic(path, value)
            .map_err(|e| Failed::new(format!("Failed to write to {}: {e}", path.display())).into()),
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
            out.flush()?;
            Ok(())
        }
    }
}

/// An operation that failed in a way the user can act on (unknown server, read-only config,
/// bad value, refused save). Reported as Magg does, `✗ message` and then `ⓘ hint` lines on
/// stderr, and the process exits with 1.
#[derive(Debug)]
struct Failed {
    message: String,
    hints: Vec<String>,
}

impl Failed {
    fn new(message: impl Into<String>) -> Failed {
        Failed {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a line shown after the error (e.g. the names that would have worked).
    fn hint(mut self, hint: impl Into<String>) -> Failed {
        self.hints.push(hint.into());
        self
    }

    fn report(&self) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "✗ {}", self.message);
        for hint in &self.hints {
            let _ = writeln!(err, "ⓘ {hint}");
        }
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failed {}

/// Human-readable messages in Magg's shapes (`✓`, `ⓘ`, `⚠`). Success and information go to
/// stdout, warnings to stderr (failures: [`Failed`]). Messages are best effort: a closed stdout
/// does not turn a done change into a failure.
mod say {
    use std::io::Write as _;

    /// `✓ text` on stdout.
    pub(super) fn success(text: &str) {
        let _ = writeln!(std::io::stdout(), "✓ {text}");
    }

    /// `ⓘ text` on stdout.
    pub(super) fn info(text: &str) {
        let _ = writeln!(std::io::stdout(), "ⓘ {text}");
    }

    /// Plain text on stdout.
    pub(super) fn text(text: &str) {
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    /// `⚠ text` on stderr.
    pub(super) fn warning(text: &str) {
        let _ = writeln!(std::io::stderr(), "⚠ {text}");
    }

    /// `ⓘ text` on stderr, beside machine output on stdout.
    pub(super) fn note(text: &str) {
        let _ = writeln!(std::io::stderr(), "ⓘ {text}");
    }

    /// Plain text on stderr, continuing a warning.
    pub(super) fn warning_detail(text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// How long a confirmation waits for an answer on a stdin that is not a terminal (a pipe
/// such as `echo y | magg ...` answers at once; an idle one must not hang a script).
const PIPED_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Asks `prompt [y/N]` (on stderr) and reads one line from stdin, like Magg's
/// `confirm_action`: only `y` or `yes` (any case) confirm, end of input declines. On a
/// terminal it waits for the answer; otherwise it reads what is piped in and declines after
/// [`PIPED_ANSWER_WAIT`] without an answer.
fn confirm(prompt: &str) -> bool {
    {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{prompt} [y/N]: ");
        let _ = err.flush();
    }
    let read_answer = || {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    };
    let answer = if std::io::stdin().is_terminal() {
        read_answer()
    } else {
        let (tx, rx) = std::sync::mpsc::channel();
        // The reader may stay blocked on an idle pipe; it ends with the process.
        std::thread::spawn(move || {
            let _ = tx.send(read_answer());
        });
        rx.recv_timeout(PIPED_ANSWER_WAIT).ok().flatten()
    };
    match answer {
        Some(line) => matches!(line.trim().to_lowercase().as_str(), "y" | "yes"),
        None => {
            let _ = writeln!(std::io::stderr());
            false
        }
    }
}

/// Refuses to change a config whose `read_only` setting (file or `MAGG_READ_ONLY`) is on.
fn ensure_writable(config: &Config) -> Result<(), Failed> {
    if config.settings.read_only {
        return Err(Failed::new(format!(
            "Configuration {} is read-only (read_only in the file or MAGG_READ_ONLY); not changing it",
            config.path.display()
        ))
        .hint("Unset read_only / MAGG_READ_ONLY to manage servers and kits from the command line"));
    }
    Ok(())
}

/// The config as its file has it, which changing commands edit and exports write: as loaded,
/// except that with no config file the embedded default's servers are dropped (they are what
/// `magg serve` runs without a file, not file content; Magg starts from an empty config, and a
/// new file holds only what the user adds).
fn file_config(mut config: Config) -> Config {
    if !config.exists {
        config.servers.clear();
        config.kits.clear();
    }
    config
}

/// Applies `edit` to the config file as it is on disk now, under the file's lock, validates the
/// result exactly as a file read would and saves it ([`config::edit_locked`]): a change another
/// process made since `config` was loaded is kept. A running `magg serve` picks the change up
/// from the file. Returns `edit`'s value and the config as saved.
///
/// The file is re-read; its log lines (e.g. about unknown keys) were already logged when it was
/// loaded, so they are not repeated.
fn commit<T>(
    config: &Config,
    edit: impl FnOnce(&mut Config) -> anyhow::Result<T>,
) -> anyhow::Result<(T, Config)> {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        let lock = config::ConfigLock::acquire(&config.path)
            .map_err(|e| Failed::new(format!("Failed to save configuration: {e}")))?;
        config::edit_locked(&lock, config, edit).map_err(|e| match e {
            config::EditError::Refused(e) => e,
            config::EditError::Invalid(e) => Failed::new(format!(
                "Invalid server configuration: {}",
                describe_invalid(&e)
            ))
            .into(),
            config::EditError::NotSaved(e) => {
                Failed::new(format!("Failed to save configuration: {e}")).into()
            }
        })
    })
}

/// A validation error without its `file:line:column` and ` (line N)` references (which would
/// point into the edited config, not the file on disk).
fn describe_invalid(error: &config::ConfigError) -> String {
    let text = match error {
        config::ConfigError::Invalid {
            field,
            message,
            fix,
            ..
        } if field.is_empty() => format!("{message}. Fix: {fix}"),
        config::ConfigError::Invalid {
            field,
            message,
            fix,
            ..
        } => format!("{field}: {message}. Fix: {fix}"),
        other => return other.to_string(),
    };
    without_line_refs(&text)
}

/// `text` without ` (line N)` parts.
fn without_line_refs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (line ") {
        let after = &rest[at + " (line ".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        out.push_str(&rest[..at]);
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(" (line ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
