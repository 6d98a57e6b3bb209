//! The `magg` command line: argument parsing (clap), logging setup, and one function per
//! command. Magg's command names, flags and exit codes are kept so existing setups keep working.

mod serve;

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tracing_subscriber::{
    EnvFilter, layer::SubscriberExt as _, reload, util::SubscriberInitExt as _,
};

use crate::config::{self, Config};

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
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Pass magg's whole environment to stdio MCP servers (default: a minimal one plus `env`)
    #[arg(short = 'e', long, global = true)]
    pub env_pass: bool,
    /// Set an environment variable for stdio MCP servers (repeatable)
    #[arg(short = 'E', long, global = true, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub env_set: Vec<String>,
    /// Log level: error, warning, info, debug or trace (RUST_LOG, if set, wins)
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the magg server: stdio (default), streamable HTTP, or both
    Serve(ServeArgs),
    /// Manage servers
    Server {
        #[command(subcommand)]
        action: ServerCommand,
    },
    /// Show the configuration
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
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
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// List configured servers
    List {
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Show the configuration in use: file, settings and servers
    Show,
    /// Show the configuration file path
    Path,
}

/// Runs the command line; the process exits with the returned code (2 for bad input).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    let logs = init_logging(cli.log_level.as_deref());
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
    let result = match cli.command {
        Some(Command::Serve(args)) => serve::run(config, args),
        Some(Command::Server {
            action: ServerCommand::List { json },
        }) => server_list(&config, json),
        Some(Command::Config {
            action: ConfigCommand::Show,
        }) => config_show(&config),
        Some(Command::Config {
            action: ConfigCommand::Path,
        }) => {
            println!("{}", config.path.display());
            Ok(())
        }
        None => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("magg: {e:#}");
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
    EnvFilter::try_new(format!("{level},rmcp=error"))
        .unwrap_or_else(|_| EnvFilter::new("info,rmcp=error"))
}

/// Logs go to stderr: stdout belongs to the MCP stdio channel.
fn init_logging(cli_level: Option<&str>) -> Logs {
    let filter = match (std::env::var("RUST_LOG"), cli_level) {
        (Ok(spec), _) if !spec.is_empty() => EnvFilter::new(spec),
        (_, Some(level)) => filter_for(level),
        _ => match std::env::var("MAGG_LOG_LEVEL") {
            Ok(level) if !level.is_empty() => filter_for(&level),
            _ => filter_for("info"),
        },
    };
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
    {
        Ok(()) => Logs(Some(handle)),
        Err(_) => Logs(None),
    }
}

fn server_json(server: &config::ServerConfig) -> Value {
    let mut value = server.to_json();
    if let Some(obj) = value.as_object_mut() {
        obj.entry("enabled").or_insert(json!(server.enabled));
    }
    value
}

fn server_list(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let servers: serde_json::Map<String, Value> = config
            .servers
            .iter()
            .map(|(name, server)| (name.clone(), server_json(server)))
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({"servers": servers}))?
        )?;
        return Ok(());
    }
    if config.servers.is_empty() {
        writeln!(out, "No servers configured in {}.", config.path.display())?;
        return Ok(());
    }
    writeln!(out, "Servers in {}:", config.path.display())?;
    for server in config.servers.values() {
        let run = server
            .command_line()
            .or_else(|| server.uri.clone())
            .unwrap_or_default();
        writeln!(
            out,
            "  {} [{}] prefix={} {}",
            server.name,
            if server.enabled {
                "enabled"
            } else {
                "disabled"
            },
            server.prefix.as_deref().unwrap_or("(none)"),
            run
        )?;
        if let Some(notes) = &server.notes {
            writeln!(out, "      {notes}")?;
        }
    }
    Ok(())
}

fn config_show(config: &Config) -> anyhow::Result<()> {
    let s = &config.settings;
    let servers: serde_json::Map<String, Value> = config
        .servers
        .iter()
        .map(|(name, server)| (name.clone(), server_json(server)))
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
            "plugins_dir": s.plugins_dir.as_ref().map(|p| p.display().to_string()),
            "list_wait": s.list_wait.as_secs_f64(),
        },
        "servers": servers,
        "kits": config.kits,
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}
