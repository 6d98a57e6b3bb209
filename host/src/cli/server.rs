//! `magg server ...`: list, add, update, remove, enable, disable and show the servers of the
//! config file, with Magg's arguments, messages and exit codes. Changing commands edit the file
//! (under its lock: re-read → change one server → validate → save, so changes made meanwhile by
//! a running magg or by hand are kept); a running `magg serve` applies the change from the file.

use std::{io::Write as _, path::PathBuf};

use clap::{Args, Subcommand};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::{Failed, Secrets, commit, confirm, ensure_writable, file_config, output_json, say};
use crate::config::{Config, ServerConfig};

/// The `magg server` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum ServerCommand {
    /// List configured servers
    List {
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
        /// Show the values of env variables and transport headers (masked as *** by default)
        #[arg(long)]
        show_secrets: bool,
    },
    /// Add a new server
    Add(AddArgs),
    /// Update an existing server
    #[command(
        long_about = "Update fields of an existing server. Pass an empty value (e.g. --notes '') to clear an optional field."
    )]
    Update(UpdateArgs),
    /// Remove a server
    Remove {
        /// Server name
        name: String,
        /// Remove without confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Enable a server
    Enable {
        /// Server name
        name: String,
    },
    /// Disable a server
    Disable {
        /// Server name
        name: String,
    },
    /// Show detailed information about a server
    Info {
        /// Server name
        name: String,
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
        /// Show the values of env variables and transport headers (masked as *** by default)
        #[arg(long)]
        show_secrets: bool,
    },
}

/// Arguments of `magg server add`.
#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// Server name
    name: String,
    /// URL of the server package/repository
    source: String,
    /// Tool prefix (defaults to None)
    #[arg(long)]
    prefix: Option<String>,
    /// Command to run the server
    #[arg(long, value_name = "COMMAND LINE")]
    command: Option<String>,
    /// URI for HTTP servers
    #[arg(long)]
    uri: Option<String>,
    /// Environment variables (KEY=VALUE)
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    env: Option<Vec<String>>,
    /// Working directory
    #[arg(long)]
    cwd: Option<String>,
    /// Setup notes
    #[arg(long)]
    notes: Option<String>,
    /// Transport-specific configuration as a JSON object
    #[arg(long, value_name = "JSON")]
    transport: Option<String>,
    /// Add the server in a disabled state
    #[arg(long)]
    disable: bool,
}

/// Arguments of `magg server update`.
#[derive(Debug, Args)]
pub(super) struct UpdateArgs {
    /// Server name
    name: String,
    /// URL of the server package/repository
    #[arg(long)]
    source: Option<String>,
    /// Tool prefix ('' to clear)
    #[arg(long)]
    prefix: Option<String>,
    /// Command to run the server ('' to clear)
    #[arg(long, value_name = "COMMAND LINE")]
    command: Option<String>,
    /// URI for HTTP servers ('' to clear)
    #[arg(long)]
    uri: Option<String>,
    /// Environment variables (KEY=VALUE); replaces existing, no values to clear
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    env: Option<Vec<String>>,
    /// Working directory ('' to clear)
    #[arg(long)]
    cwd: Option<String>,
    /// Setup notes ('' to clear)
    #[arg(long)]
    notes: Option<String>,
    /// Transport configuration as a JSON object ('' to clear)
    #[arg(long, value_name = "JSON")]
    transport: Option<String>,
    /// Enable the server
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Disable the server
    #[arg(long)]
    disable: bool,
}

/// Runs one `magg server` subcommand on the loaded config.
pub(super) fn run(config: Config, command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::List { json, show_secrets } => {
            list(&config, json, Secrets::from_flag(show_secrets))
        }
        ServerCommand::Add(args) => add(config, args),
        ServerCommand::Update(args) => update(config, args),
        ServerCommand::Remove { name, force } => remove(config, &name, force),
        ServerCommand::Enable { name } => set_enabled(config, &name, true),
        ServerCommand::Disable { name } => set_enabled(config, &name, false),
        ServerCommand::Info {
            name,
            json,
            show_secrets,
        } => info(&config, &name, json, Secrets::from_flag(show_secrets)),
    }
}

/// One server as Magg's `dump_server` shows it (`server list --json`, `server info --json`):
/// the file form ([`ServerConfig::to_json`]) with `enabled` always present, in Magg's field
/// order (`enabled` after `transport`, before `kits` and unknown keys).
pub(super) fn dump_server(server: &ServerConfig) -> Value {
    const BEFORE_ENABLED: [&str; 9] = [
        "source",
        "prefix",
        "notes",
        "command",
        "args",
        "uri",
        "env",
        "cwd",
        "transport",
    ];
    let Value::Object(mut fields) = server.to_json() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for key in BEFORE_ENABLED {
        if let Some(value) = fields.shift_remove(key) {
            out.insert(key.to_owned(), value);
        }
    }
    fields.shift_remove("enabled");
    out.insert("enabled".into(), Value::Bool(server.enabled));
    out.extend(fields);
    Value::Object(out)
}

fn not_found(name: &str) -> Failed {
    Failed::new(format!("Server '{name}' not found"))
}

/// Magg's `parse_env_args`: `KEY=VALUE` pairs (the value may contain `=`; a later key wins).
fn parse_env(values: &[String]) -> Result<IndexMap<String, String>, Failed> {
    values
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(
                Failed::new("Invalid environment variable format. Use KEY=VALUE")
                    .hint(format!("got {pair:?}")),
            ),
        })
        .collect()
}

/// Magg's `parse_command_arg`: a whole command line split like a shell; `None` when it holds
/// no words.
fn parse_command(line: &str) -> Result<Option<(String, Vec<String>)>, Failed> {
    crate::config::split_command_line(line)
        .map_err(|e| Failed::new(format!("Invalid command: {e}")))
}

/// Magg's `parse_transport_arg`: a JSON object (an empty one means no transport options).
fn parse_transport(text: &str) -> Result<Option<Map<String, Value>>, Failed> {
    let invalid = |why: String| Failed::new(format!("Invalid transport configuration: {why}"));
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok((!map.is_empty()).then_some(map)),
        Ok(_) => Err(invalid("transport must be a JSON object".to_owned())),
        Err(e) => Err(invalid(format!("invalid JSON: {e}"))),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn non_empty_path(value: Option<String>) -> Option<PathBuf> {
    non_empty(value).map(PathBuf::from)
}

/// The existing `server list` output: JSON (Magg's shape) or one line per server.
fn list(config: &Config, as_json: bool, secrets: Secrets) -> anyhow::Result<()> {
    if as_json {
        let servers: Map<String, Value> = config
            .servers
            .iter()
            .map(|(name, server)| (name.clone(), dump_server(&secrets.apply(server))))
            .collect();
        output_json(&json!({ "servers": servers }), None)?;
        secrets.note(config.servers.values());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
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
        let isolation = match server.isolation {
            crate::config::Isolation::Shared => "",
            crate::config::Isolation::Session => " isolation=session",
        };
        writeln!(
            out,
            "  {} [{}] prefix={}{isolation} {}",
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

fn add(config: Config, args: AddArgs) -> anyhow::Result<()> {
    let config = file_config(config);
    if config.servers.contains_key(&args.name) {
        return Err(Failed::new(format!("Server '{}' already exists", args.name)).into());
    }
    let env = match &args.env {
        Some(pairs) => parse_env(pairs)?,
        None => IndexMap::new(),
    };
    let transport = match args.transport.as_deref() {
        Some(text) => parse_transport(text)?,
        None => None,
    };
    let command = match args.command.as_deref() {
        Some(line) => parse_command(line)?,
        None => None,
    };
    let uri = non_empty(args.uri);
    if command.is_none() && uri.is_none() {
        return Err(Failed::new(format!(
            "Server '{}' needs a way to run: give --command or --uri",
            args.name
        ))
        .hint("e.g. --command \"npx -y @scope/server\" or --uri http://localhost:8000/mcp")
        .into());
    }
    ensure_writable(&config)?;

    let mut server = ServerConfig::new(&args.name, &args.source);
    server.prefix = non_empty(args.prefix);
    if let Some((program, program_args)) = command {
        server.command = Some(program);
        server.args = program_args;
    }
    server.uri = uri;
    server.env = env;
    server.cwd = non_empty_path(args.cwd);
    server.notes = non_empty(args.notes);
    server.transport = transport;
    server.enabled = !args.disable;
    let added = server.clone();
    commit(&config, |config| {
        if config.servers.contains_key(&added.name) {
            return Err(Failed::new(format!("Server '{}' already exists", added.name)).into());
        }
        config.servers.insert(added.name.clone(), added);
        Ok(())
    })?;

    let mut message = format!(
        "Added server '{}'\n  Source: {}\n  Prefix: {}",
        args.name,
        server.source,
        server.prefix.as_deref().unwrap_or("(none)")
    );
    if let Some(line) = server.command_line() {
        message.push_str(&format!("\n  Command: {line}"));
    }
    if let Some(uri) = &server.uri {
        message.push_str(&format!("\n  URI: {uri}"));
    }
    if let Some(notes) = &server.notes {
        message.push_str(&format!("\n  Notes: {notes}"));
    }
    say::success(&message);
    Ok(())
}

fn update(config: Config, args: UpdateArgs) -> anyhow::Result<()> {
    let config = file_config(config);
    if !config.servers.contains_key(&args.name) {
        return Err(not_found(&args.name).into());
    }
    let name = args.name.clone();
    let changes = Changes::from_args(args)?;
    if changes.is_empty() {
        return Err(Failed::new("No updates specified")
            .hint("See \"magg server update --help\" for available options")
            .into());
    }
    ensure_writable(&config)?;
    let (changed, _) = commit(&config, |config| {
        let server = config
            .servers
            .get_mut(&name)
            .ok_or_else(|| not_found(&name))?;
        let changed = changes.apply(server);
        if (changed.contains(&"command") || changed.contains(&"uri"))
            && server.command.is_none()
            && server.uri.is_none()
        {
            return Err(Failed::new(
                "Cannot clear both command and URI - a server needs one of them to run",
            )
            .into());
        }
        Ok(changed)
    })?;
    say::success(&format!("Updated server '{name}' ({})", changed.join(", ")));
    say::text("If Magg is running, the changes will be applied automatically");
    Ok(())
}

/// What `magg server update` changes, parsed from its arguments; `None` leaves a field as it is.
struct Changes {
    source: Option<String>,
    prefix: Option<Option<String>>,
    command: Option<Option<(String, Vec<String>)>>,
    uri: Option<Option<String>>,
    env: Option<IndexMap<String, String>>,
    cwd: Option<Option<PathBuf>>,
    notes: Option<Option<String>>,
    transport: Option<Option<Map<String, Value>>>,
    enabled: Option<bool>,
}

impl Changes {
    fn from_args(args: UpdateArgs) -> Result<Changes, Failed> {
        Ok(Changes {
            source: args.source,
            prefix: args.prefix.map(|p| non_empty(Some(p))),
            command: args.command.as_deref().map(parse_command).transpose()?,
            uri: args.uri.map(|u| non_empty(Some(u))),
            env: args.env.as_deref().map(parse_env).transpose()?,
            cwd: args.cwd.map(|c| non_empty_path(Some(c))),
            notes: args.notes.map(|n| non_empty(Some(n))),
            transport: args
                .transport
                .as_deref()
                .map(|t| {
                    if t.is_empty() {
                        Ok(None)
                    } else {
                        parse_transport(t)
                    }
                })
                .transpose()?,
            enabled: (args.enable || args.disable).then_some(args.enable),
        })
    }

    fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.prefix.is_none()
            && self.command.is_none()
            && self.uri.is_none()
            && self.env.is_none()
            && self.cwd.is_none()
            && self.notes.is_none()
            && self.transport.is_none()
            && self.enabled.is_none()
    }

    /// Applies the changes to `server`; the changed fields, named as in Magg's message
    /// ("command" always comes with "args").
    fn apply(&self, server: &mut ServerConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if let Some(source) = &self.source {
            server.source = source.clone();
            changed.push("source");
        }
        if let Some(prefix) = &self.prefix {
            server.prefix = prefix.clone();
            changed.push("prefix");
        }
        if let Some(command) = &self.command {
            (server.command, server.args) = match command.clone() {
                Some((program, args)) => (Some(program), args),
                None => (None, Vec::new()),
            };
            changed.extend(["command", "args"]);
        }
        if let Some(uri) = &self.uri {
            server.uri = uri.clone();
            changed.push("uri");
        }
        if let Some(env) = &self.env {
            server.env = env.clone();
            changed.push("env");
        }
        if let Some(cwd) = &self.cwd {
            server.cwd = cwd.clone();
            changed.push("cwd");
        }
        if let Some(notes) = &self.notes {
            server.notes = notes.clone();
            changed.push("notes");
        }
        if let Some(transport) = &self.transport {
            server.transport = transport.clone();
            changed.push("transport");
        }
        if let Some(enabled) = self.enabled {
            server.enabled = enabled;
            changed.push("enabled");
        }
        changed
    }
}

fn remove(config: Config, name: &str, force: bool) -> anyhow::Result<()> {
    let config = file_config(config);
    let Some(server) = config.servers.get(name) else {
        return Err(not_found(name).into());
    };
    ensure_writable(&config)?;
    say::info(&format!("Server to remove: {name}"));
    say::text(&format!(
        "  Source: {}\n  Prefix: {}",
        server.source,
        server.prefix.as_deref().unwrap_or("(none)")
    ));
    if !force && !confirm("Are you sure you want to remove this server?") {
        say::info("Removal cancelled");
        return Ok(());
    }
    commit(&config, |config| {
        config
            .servers
            .shift_remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name).into())
    })?;
    say::success(&format!("Removed server '{name}'"));
    Ok(())
}

fn set_enabled(config: Config, name: &str, enabled: bool) -> anyhow::Result<()> {
    let config = file_config(config);
    let Some(server) = config.servers.get(name) else {
        return Err(not_found(name).into());
    };
    let state = if enabled { "enabled" } else { "disabled" };
    if server.enabled == enabled {
        say::info(&format!("Server '{name}' is already {state}"));
        return Ok(());
    }
    ensure_writable(&config)?;
    commit(&config, |config| {
        let server = config
            .servers
            .get_mut(name)
            .ok_or_else(|| not_found(name))?;
        server.enabled = enabled;
        Ok(())
    })?;
    if enabled {
        say::success(&format!("Enabled server '{name}'"));
        say::text("If Magg is running, the server will be automatically mounted");
    } else {
        say::success(&format!("Disabled server '{name}'"));
        say::text("If Magg is running, the server will be automatically unmounted");
    }
    Ok(())
}

fn info(config: &Config, name: &str, as_json: bool, secrets: Secrets) -> anyhow::Result<()> {
    let Some(server) = config.servers.get(name) else {
        return Err(not_found(name).into());
    };
    secrets.note([server]);
    let shown = secrets.apply(server);
    let server = &*shown;
    if as_json {
        let mut out = Map::new();
        out.insert(name.to_owned(), dump_server(server));
        return output_json(&Value::Object(out), None);
    }
    let mut lines = vec![
        format!("Server: {}", server.name),
        format!("Source: {}", server.source),
        format!("Enabled: {}", if server.enabled { "Yes" } else { "No" }),
        format!("Prefix: {}", server.prefix.as_deref().unwrap_or("(none)")),
    ];
    if let Some(command) = &server.command {
        lines.push(format!("Command: {command}"));
        if !server.args.is_empty() {
            lines.push(format!("Arguments: {}", shell_words::join(&server.args)));
        }
    }
    if let Some(uri) = &server.uri {
        lines.push(format!("URI: {uri}"));
    }
    if let Some(cwd) = &server.cwd {
        lines.push(format!("Working Directory: {}", cwd.display()));
    }
    say::info(&lines.join("\n"));
    if !server.env.is_empty() {
        say::text("Environment Variables:");
        for (key, value) in &server.env {
            say::text(&format!("  {key}={value}"));
        }
    }
    if let Some(transport) = &server.transport {
        say::text("Transport Configuration:");
        for line in serde_json::to_string_pretty(transport)?.lines() {
            say::text(&format!("  {line}"));
        }
    }
    if let Some(notes) = &server.notes {
        say::text(&format!("\nNotes: {notes}"));
    }
    if !server.kits.is_empty() {
        say::text(&format!("\nIncluded in kits: {}", server.kits.join(", ")));
    }
    Ok(())
}
