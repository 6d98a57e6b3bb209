//! `magg kit ...`: list, load, unload, show and export kits (bundles of servers in `kit.d/`
//! directories), with Magg's arguments, messages and exit codes. Reading and changing kits is
//! [`crate::kits`]'s; this module finds the kit directories, prints, and saves the config.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indexmap::IndexMap;
use serde_json::Value;

use super::{Failed, commit, confirm, ensure_writable, file_config, output_json, say};
use crate::{
    config::{self, Config, ServerConfig},
    kits::{self, Kit, KitError},
};

/// The `magg kit` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum KitCommand {
    /// List available kits
    List {
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
    },
    /// Load a kit into configuration
    Load {
        /// Kit name to load
        name: String,
        /// Force enable all servers after loading
        #[arg(long, overrides_with = "no_enable")]
        enable: bool,
        /// Force disable all servers after loading
        #[arg(long, overrides_with = "enable")]
        no_enable: bool,
    },
    /// Unload a kit from configuration
    #[command(
        long_about = "Unload a kit. Servers that belong only to this kit are removed; servers shared with other kits are kept."
    )]
    Unload {
        /// Kit name to unload
        name: String,
        /// Unload without confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Show information about a kit
    Info {
        /// Kit name
        name: String,
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
    },
    /// Export servers as a kit
    Export(ExportArgs),
}

/// Arguments of `magg kit export`.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// Kit name (optional)
    #[arg(long)]
    name: Option<String>,
    /// Kit description (optional)
    #[arg(long)]
    description: Option<String>,
    /// Kit author (optional)
    #[arg(long)]
    author: Option<String>,
    /// Kit version (optional)
    #[arg(long)]
    version: Option<String>,
    /// Export a specific loaded kit instead of current config
    #[arg(long, value_name = "NAME")]
    kit: Option<String>,
    /// Output file (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs one `magg kit` subcommand on the loaded config.
pub(super) fn run(config: Config, command: KitCommand) -> anyhow::Result<()> {
    match command {
        KitCommand::List { json } => list(&config, json),
        KitCommand::Load {
            name,
            enable,
            no_enable,
        } => {
            let enable = match (enable, no_enable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            load(config, &name, enable)
        }
        KitCommand::Unload { name, force } => unload(config, &name, force),
        KitCommand::Info { name, json } => info(&config, &name, json),
        KitCommand::Export(args) => export(&file_config(config), args),
    }
}

/// The kits found for a config, in Magg's search order.
struct Found {
    kits: IndexMap<String, Kit>,
    errors: Vec<KitError>,
}

impl Found {
    fn discover(config: &Config) -> Found {
        let dirs = kits::kit_dirs(&config.path, kits::shipped_dir().as_deref());
        let (kits, errors) = kits::discover(&dirs);
        Found { kits, errors }
    }

    /// The error of kit file `name`, if it could not be read.
    fn broken(&self, name: &str) -> Option<&KitError> {
        self.errors
            .iter()
            .find(|e| e.kit_name().as_deref() == Some(name))
    }

    /// Every kit name found, readable or not.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.kits.keys().cloned().collect();
        for name in self.errors.iter().filter_map(KitError::kit_name) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// "Kit 'x' not found" (or why its file cannot be read), with the kits there are.
    fn missing(&self, name: &str) -> Failed {
        if let Some(error) = self.broken(name) {
            return Failed::new(format!("Failed to load kit '{name}': {error}"));
        }
        Failed::new(format!("Kit '{name}' not found"))
            .hint(format!("Available kits: {}", self.names().join(", ")))
    }
}

/// Every directory searched for kits, whether it exists or not (for "no kits found").
fn search_dirs(config_path: &Path) -> Vec<PathBuf> {
    let beside_config = config_path
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(kits::KIT_DIR_NAME);
    let mut dirs = vec![beside_config];
    for dir in config::search_paths() {
        let dir = dir.join(kits::KIT_DIR_NAME);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.extend(kits::shipped_dir());
    dirs
}

fn not_loaded(config: &Config, name: &str) -> Failed {
    let failed = Failed::new(format!("Kit '{name}' is not loaded"));
    if config.kits.is_empty() {
        failed
    } else {
        let loaded: Vec<&str> = config.kits.keys().map(String::as_str).collect();
        failed.hint(format!("Loaded kits: {}", loaded.join(", ")))
    }
}

fn list(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let found = Found::discover(config);
    if as_json {
        return output_json(
            &kits::cli_list_json(config, &found.kits, &found.errors),
            None,
        );
    }
    let names = found.names();
    let without_file: Vec<&String> = config
        .kits
        .keys()
        .filter(|name| !names.contains(name))
        .collect();
    if names.is_empty() && without_file.is_empty() {
        say::warning("No kits found in kit.d directories");
        let dirs: Vec<String> = search_dirs(&config.path)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        say::info(&format!("Search paths: {}", dirs.join(", ")));
        return Ok(());
    }
    say::info(&format!("Available kits ({}):", names.len()));
    for name in &names {
        let loaded = if config.kits.contains_key(name) {
            " [loaded]"
        } else {
            ""
        };
        match found.kits.get(name).and_then(|k| k.description.as_deref()) {
            Some(description) if !description.is_empty() => {
                say::text(&format!("  • {name}{loaded}: {description}"));
            }
            _ => say::text(&format!("  • {name}{loaded}")),
        }
    }
    for name in without_file {
        say::text(&format!("  • {name} [loaded] (no kit file found)"));
    }
    for error in &found.errors {
        say::warning(&error.to_string());
    }
    Ok(())
}

fn load(config: Config, name: &str, enable: Option<bool>) -> anyhow::Result<()> {
    let config = file_config(config);
    let found = Found::discover(&config);
    let Some(kit) = found.kits.get(name) else {
        return Err(found.missing(name).into());
    };
    if config.kits.contains_key(name) {
        return Err(Failed::new(format!("Kit '{name}' is already loaded")).into());
    }
    ensure_writable(&config)?;
    let (report, config) = commit(&config, |config| Ok(kits::load_kit(config, kit, enable)?))?;

    if !report.added.is_empty() {
        say::success(&format!(
            "Added {} servers from kit '{name}':",
            report.added.len()
        ));
        for server in &report.added {
            let state = match config.servers.get(server) {
                Some(s) if !s.enabled => "disabled",
                _ => "enabled",
            };
            say::text(&format!("  • {server} ({state})"));
        }
    }
    if !report.tagged.is_empty() {
        say::info(&format!(
            "Updated kit membership for {} existing servers:",
            report.tagged.len()
        ));
        for server in &report.tagged {
            say::text(&format!("  • {server}"));
        }
    }
    if !report.skipped.is_empty() {
        say::warning(&format!("Skipped {} servers:", report.skipped.len()));
        for (server, reason) in &report.skipped {
            say::warning_detail(&format!("  • {server} ({reason})"));
        }
    }
    if report.added.is_empty() && report.tagged.is_empty() && report.skipped.is_empty() {
        say::warning(&format!("Kit '{name}' contains no servers"));
    }
    Ok(())
}

fn unload(config: Config, name: &str, force: bool) -> anyhow::Result<()> {
    let config = file_config(config);
    if !config.kits.contains_key(name) {
        return Err(not_loaded(&config, name).into());
    }
    ensure_writable(&config)?;
    let owns = |server: &ServerConfig| server.kits.iter().any(|k| k == name);
    let to_remove: Vec<&str> = config
        .servers
        .iter()
        .filter(|(_, s)| owns(s) && s.kits.len() == 1)
        .map(|(n, _)| n.as_str())
        .collect();
    let shared: Vec<&str> = config
        .servers
        .iter()
        .filter(|(_, s)| owns(s) && s.kits.len() > 1)
        .map(|(n, _)| n.as_str())
        .collect();
    if !to_remove.is_empty() {
        say::info(&format!(
            "Unloading kit '{name}' will remove {} servers:",
            to_remove.len()
        ));
        for server in &to_remove {
            say::text(&format!("  • {server}"));
        }
        if !shared.is_empty() {
            say::info(&format!(
                "Kept (shared with other kits): {}",
                shared.join(", ")
            ));
        }
        if !force && !confirm("Are you sure you want to unload this kit?") {
            say::info("Unload cancelled");
            return Ok(());
        }
    }
    let (report, _) = commit(&config, |config| Ok(kits::unload_kit(config, name)?))?;
    say::success(&report.unloaded_message());
    Ok(())
}

fn info(config: &Config, name: &str, as_json: bool) -> anyhow::Result<()> {
    let found = Found::discover(config);
    let kit = found.kits.get(name);
    if kit.is_none() && (found.broken(name).is_some() || !config.kits.contains_key(name)) {
        return Err(found.missing(name).into());
    }
    if as_json {
        let details =
            kits::kit_info(config, &found.kits, name).ok_or_else(|| found.missing(name))?;
        return output_json(&details, None);
    }
    let Some(kit) = kit else {
        // Loaded in the config, but its file is gone.
        let mut lines = vec![format!("Kit: {name}")];
        let recorded = config.kits.get(name);
        if let Some(description) = recorded
            .and_then(|info| info.get("description"))
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            lines.push(format!("Description: {description}"));
        }
        say::info(&lines.join("\n"));
        say::text(
            "\nLoaded in the configuration, but no kit file was found in the kit.d directories",
        );
        return Ok(());
    };

    let mut lines = vec![format!("Kit: {}", kit.declared_name())];
    if let Some(description) = kit.description.as_deref().filter(|d| !d.is_empty()) {
        lines.push(format!("Description: {description}"));
    }
    if let Some(author) = kit.author.as_deref().filter(|a| !a.is_empty()) {
        lines.push(format!("Author: {author}"));
    }
    if let Some(version) = kit.version.as_deref().filter(|v| !v.is_empty()) {
        lines.push(format!("Version: {version}"));
    }
    if !kit.keywords.is_empty() {
        lines.push(format!("Keywords: {}", kit.keywords.join(", ")));
    }
    say::info(&lines.join("\n"));
    if !kit.links.is_empty() {
        say::text("Links:");
        for (key, url) in &kit.links {
            let url = url.as_str().map_or_else(|| url.to_string(), str::to_owned);
            say::text(&format!("  • {key}: {url}"));
        }
    }
    if kit.servers.is_empty() {
        say::text("\nNo servers in this kit");
    } else {
        say::text(&format!("\nServers ({}):", kit.servers.len()));
        for (server_name, server) in &kit.servers {
            match &server.prefix {
                Some(prefix) => say::text(&format!("  • {server_name} (prefix: {prefix})")),
                None => say::text(&format!("  • {server_name}")),
            }
            if let Some(notes) = &server.notes {
                say::text(&format!("    {notes}"));
            }
        }
    }
    Ok(())
}

fn export(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (servers, name, description) = match given(args.kit) {
        Some(kit_name) => {
            let Some(recorded) = config.kits.get(&kit_name) else {
                return Err(not_loaded(config, &kit_name).into());
            };
            let found = Found::discover(config);
            if let Some(error) = found.broken(&kit_name) {
                say::warning(&format!(
                    "Kit '{kit_name}' cannot be read, exporting it without servers: {error}"
                ));
            }
            let servers = found
                .kits
                .get(&kit_name)
                .map(|kit| kit.servers.clone())
                .unwrap_or_default();
            let recorded_str = |key: &str| {
                recorded
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let name = given(args.name)
                .or_else(|| recorded_str("name"))
                .unwrap_or_else(|| kit_name.clone());
            let description = given(args.description)
                .or_else(|| recorded_str("description"))
                .unwrap_or_default();
            (servers, name, description)
        }
        None => (
            config.servers.clone(),
            given(args.name).unwrap_or_else(|| "exported".to_owned()),
            given(args.description)
                .unwrap_or_else(|| "Exported from current configuration".to_owned()),
        ),
    };
    let kit = kits::export_kit(
        &name,
        Some(&description),
        given(args.author).as_deref(),
        given(args.version).as_deref(),
        &servers,
    );
    output_json(&kit, args.output.as_deref())
}
