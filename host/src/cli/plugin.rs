//! `magg plugin ...`: list the plugins (bundled and those of the plugins directory) and check
//! plugin files, loading each exactly as `magg serve` would (compile or cache, link,
//! instantiate once).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Failed, say};
use crate::{
    config::Config,
    plugins::{self, PluginConfigs, Plugins, check_file},
};

/// How long `magg plugin list` waits for every plugin to load (a cold compile cache).
const LOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// The `magg plugin` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum PluginCommand {
    /// List the plugins: the bundled ones and those of the plugins directory, with their
    /// kinds, state and grants
    List {
        /// The plugins directory (default: as `magg serve` finds it)
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Output as JSON (to stdout)
        #[arg(long)]
        json: bool,
    },
    /// Check plugin files: that each compiles, links against what magg offers plugins,
    /// exports a plugin interface, and starts
    Check {
        /// The .wasm files to check
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Runs a `magg plugin` subcommand.
pub(super) fn run(config: Config, action: PluginCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match action {
            PluginCommand::List { plugins, json } => list(&config, plugins, json).await,
            PluginCommand::Check { files } => check(&files).await,
        }
    })
}

async fn check(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in files {
        match check_file(file, plugins::cache_dir()).await {
            Ok(checked) => {
                let provider =
                    checked.plain || checked.kinds.contains(&plugins::Kind::ToolProvider);
                say::success(&format!(
                    "{}: {} ({})",
                    file.display(),
                    if checked.plain {
                        "plain functions".to_owned()
                    } else {
                        checked
                            .kinds
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    if checked.from_cache {
                        "compilation from cache"
                    } else {
                        "compiled"
                    }
                ));
                if checked.plain {
                    println!(
                        "  a world of its own (no magg interface): each exported function is a \
                         tool when it is mounted as a server, e.g. \
                         \"servers\": {{\"name\": {{\"wasm\": \"{}\"}}}}",
                        file.display()
                    );
                } else if provider {
                    println!(
                        "  world tool-provider-plugin: mount it as a server, e.g. \
                         \"servers\": {{\"name\": {{\"wasm\": \"{}\"}}}}",
                        file.display()
                    );
                }
                if provider {
                    println!("  tools ({}):", checked.tools.len());
                    for (name, description) in &checked.tools {
                        match description {
                            Some(d) => println!("    {name}: {d}"),
                            None => println!("    {name}"),
                        }
                    }
                    if !checked.skipped.is_empty() {
                        println!("  not offered as tools ({}):", checked.skipped.len());
                        for skipped in &checked.skipped {
                            println!("    {skipped}");
                        }
                    }
                }
                if provider {
                    let grants: Vec<String> = checked
                        .grants
                        .iter()
                        .map(|g| format!("servers.<name>.{g}"))
                        .collect();
                    println!(
                        "  grants it can use (from its imports; each denied until given): {}",
                        if grants.is_empty() {
                            "none".to_owned()
                        } else {
                            grants.join(", ")
                        }
                    );
                } else if checked.grants.contains(&"grants.http") {
                    println!(
                        "  it can make HTTP requests: to the hosts of plugins.<name>.allow_hosts"
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("✗ {}: {e}", file.display());
            }
        }
    }
    if failed > 0 {
        return Err(Failed::new(format!(
            "{failed} of {} plugin file(s) would not load",
            files.len()
        ))
        .into());
    }
    Ok(())
}

async fn list(config: &Config, dir: Option<PathBuf>, as_json: bool) -> anyhow::Result<()> {
    let dir = dir.or_else(|| plugins::plugins_dir(config));
    if let Some(d) = &dir
        && !d.is_dir()
    {
        return Err(Failed::new(format!(
            "plugins directory {} does not exist; create it or give another with --plugins",
            d.display()
        ))
        .into());
    }
    let configs = PluginConfigs::from_json(config.extra.get("plugins"));
    // Load them exactly as `magg serve` would.
    let registry = Plugins::new(dir.clone(), plugins::cache_dir(), configs.clone());
    registry.start(|| async {});
    registry.load_all(LOAD_LIMIT).await;
    let statuses = registry.status();
    let rows: Vec<Value> = statuses
        .iter()
        .map(|status| {
            let mut row = serde_json::to_value(status).unwrap_or_default();
            if let (Value::Object(row), Some(entry)) = (&mut row, configs.entries.get(&status.name))
            {
                let keys: Vec<&String> = entry.settings.keys().collect();
                row.insert("settings".into(), json!(keys));
            }
            row
        })
        .collect();
    let dir_text = dir.as_ref().map(|d| d.display().to_string());
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"dir": dir_text, "plugins": rows}))?
        );
        return Ok(());
    }
    match &dir_text {
        Some(d) => say::info(&format!("Plugins (bundled, and those in {d}):")),
        None => say::info(&format!(
            "Plugins (bundled; no plugins directory: set plugins_dir, MAGG_PLUGINS_DIR or \
             --plugins, or make {}):",
            config
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .join("plugins")
                .display()
        )),
    }
    if statuses.is_empty() {
        println!(
            "  (none: this magg was built without its bundled plugins; put .wasm components in a plugins directory)"
        );
    }
    for status in &statuses {
        let origin = match (status.origin, status.replaces_bundled) {
            (_, true) => "user, replaces bundled",
            (o, false) => o,
        };
        println!(
            "  {:<20} {:<10} {:<24} {:<32} {} KiB",
            status.name,
            status.state,
            origin,
            status.kinds.join(", "),
            status.size.unwrap_or(0) / 1024
        );
        if let Some(error) = &status.error {
            println!("      {error}");
        }
        if !status.allow_hosts.is_empty() {
            println!("      may reach: {}", status.allow_hosts.join(", "));
        }
    }
    Ok(())
}
