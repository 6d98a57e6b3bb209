//! `magg plugin ...`: list the plugins of the plugins directory and check plugin files, loading
//! each exactly as `magg serve` would (compile or cache, link, instantiate once).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::{Failed, say};
use crate::{
    config::Config,
    plugins::{self, PluginConfigs, check_file},
};

/// The `magg plugin` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum PluginCommand {
    /// List the plugins of the plugins directory: kinds, state and config
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
            Ok((kinds, from_cache)) => say::success(&format!(
                "{}: {} ({})",
                file.display(),
                kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if from_cache {
                    "compilation from cache"
                } else {
                    "compiled"
                }
            )),
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
    let Some(dir) = dir else {
        if as_json {
            println!("{}", json!({"dir": null, "plugins": []}));
        } else {
            say::info(&format!(
                "No plugins directory: none configured (plugins_dir, MAGG_PLUGINS_DIR, --plugins) \
                 and no {} beside the config",
                config
                    .path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("plugins")
                    .display()
            ));
        }
        return Ok(());
    };
    let configs = PluginConfigs::from_json(config.extra.get("plugins"));
    let mut rows = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read plugins directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = configs.get(&name);
        let (state, kinds, error) = match &entry {
            Err(problem) => ("invalid config", Vec::new(), Some(problem.clone())),
            Ok(c) if !c.enabled => ("disabled", Vec::new(), None),
            Ok(_) => match check_file(&file, plugins::cache_dir()).await {
                Ok((kinds, _)) => (
                    "ok",
                    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                    None,
                ),
                Err(e) => ("fails to load", Vec::new(), Some(e)),
            },
        };
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let (settings, hosts) = match &entry {
            Ok(c) => (
                c.settings.keys().cloned().collect::<Vec<_>>(),
                c.allow_hosts.clone(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        };
        rows.push(json!({
            "name": name,
            "file": file.display().to_string(),
            "size": size,
            "state": state,
            "kinds": kinds,
            "settings": settings,
            "allow_hosts": hosts,
            "error": error,
        }));
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"dir": dir.display().to_string(), "plugins": rows})
            )?
        );
        return Ok(());
    }
    say::info(&format!("Plugins in {}:", dir.display()));
    if rows.is_empty() {
        println!("  (none: put .wasm components here)");
    }
    for row in &rows {
        let kinds = row["kinds"]
            .as_array()
            .map(|k| {
                k.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "  {:<24} {:<16} {:<30} {} KiB",
            row["name"].as_str().unwrap_or_default(),
            row["state"].as_str().unwrap_or_default(),
            kinds,
            row["size"].as_u64().unwrap_or(0) / 1024
        );
        if let Some(error) = row["error"].as_str() {
            println!("      {error}");
        }
    }
    Ok(())
}
