//! Kits: this module owns Magg's kit files (bundles of servers in `kit.d/`
//! directories): finding the directories, reading and validating kit files,
//! loading a kit's servers into a [`Config`] and unloading them again,
//! exporting servers as a kit file, and the JSON that `list_kits`,
//! `kit_info` and `magg kit list --json` show. It does not save the config
//! (callers call [`Config::save`]) and does not start or stop servers.
//!
//! # Kit files
//!
//! A kit is `<name>.json` in a `kit.d/` directory, in Magg's format:
//!
//! ```json
//! {
//!   "name": "web", "description": "...", "author": "...", "version": "1.0.0",
//!   "keywords": ["web"], "links": {"homepage": "https://..."},
//!   "servers": {"fetch": {"source": "...", "command": "uvx", "args": ["mcp-server-fetch"]}}
//! }
//! ```
//!
//! A kit is known by its **file name** without `.json` (as in Magg); the
//! file's `"name"` is only shown (see [`Kit::declared_name`]). Server entries
//! are read with exactly the rules of the config file's `"servers"` (errors
//! point at the kit file's line and field); a `"kits"` key in a kit's server
//! is ignored, as Magg does.
//!
//! # Ownership
//!
//! In the config, each server's `"kits"` lists the kits it came from, and
//! the top-level `"kits"` object records each loaded kit as Magg's `KitInfo`
//! (`{"name", "description", "path", "source": "file"}`). A server with no
//! kit tag was added by the user: loading a kit never tags it and unloading
//! never removes it. A kit server is removed when its last kit is unloaded.

mod output;
mod read;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::config::{self, Config, Field, Pos, ServerConfig};

pub use output::{cli_list_json, kit_info, list_kits};

/// The name of the kit directory looked for beside the config file and in
/// each search directory.
pub const KIT_DIR_NAME: &str = "kit.d";

/// One kit, as read from its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Kit {
    /// The name magg knows the kit by: the file name without `.json` (Magg's
    /// rule). Used for `magg kit load <name>`, the server tags and the
    /// config's `"kits"` key.
    pub name: String,
    /// The file's own `"name"`, when it differs from [`Kit::name`]. Magg
    /// shows it in `kit_info`; see [`Kit::declared_name`].
    pub declared_name: Option<String>,
    /// What the kit provides.
    pub description: Option<String>,
    /// The kit's author or maintainer.
    pub author: Option<String>,
    /// The kit's version.
    pub version: Option<String>,
    /// Keywords for discovery.
    pub keywords: Vec<String>,
    /// Related links (`{"homepage": "https://..."}`); values are strings.
    pub links: Map<String, Value>,
    /// The kit's servers, in file order, with empty `kits`.
    pub servers: IndexMap<String, ServerConfig>,
    /// The file the kit was read from (empty for a kit built in memory).
    pub path: PathBuf,
    /// Top-level keys magg does not know, kept for [`Kit::to_json`].
    pub extra: Map<String, Value>,
}

impl Kit {
    /// A kit with this name, no servers and no metadata.
    pub fn new(name: impl Into<String>) -> Kit {
        Kit {
            name: name.into(),
            declared_name: None,
            description: None,
            author: None,
            version: None,
            keywords: Vec::new(),
            links: Map::new(),
            servers: IndexMap::new(),
            path: PathBuf::new(),
            extra: Map::new(),
        }
    }

    /// The kit's `"name"` as written in its file (Magg's `KitConfig.name`),
    /// which is [`Kit::name`] unless the file says otherwise.
    pub fn declared_name(&self) -> &str {
        self.declared_name.as_deref().unwrap_or(&self.name)
    }

    /// The kit file form: `name`, `description`, `author`, `version`,
    /// `keywords`, `links` (each only when set), `servers` (each as in the
    /// config file, without `kits`), then unknown keys. [`read_kit`] reads
    /// it back to an equal kit.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.declared_name().into());
        if let Some(description) = &self.description {
            out.insert("description".into(), description.as_str().into());
        }
        if let Some(author) = &self.author {
            out.insert("author".into(), author.as_str().into());
        }
        if let Some(version) = &self.version {
            out.insert("version".into(), version.as_str().into());
        }
        if !self.keywords.is_empty() {
            out.insert("keywords".into(), string_array(&self.keywords));
        }
        if !self.links.is_empty() {
            out.insert("links".into(), Value::Object(self.links.clone()));
        }
        out.insert("servers".into(), servers_json(&self.servers, false));
        for (key, value) in &self.extra {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(out)
    }

    /// Magg's `magg://kit/{name}` resource form: [`Kit::to_json`] with each
    /// server starting with its `"name"`, as Magg's model dump has it.
    pub fn resource_json(&self) -> Value {
        let mut out = self.to_json();
        if let Value::Object(fields) = &mut out {
            fields.insert("servers".into(), servers_json(&self.servers, true));
        }
        out
    }

    /// The kit's entry in Magg's `list_kits` tool output:
    /// `{"loaded", "path", "description", "author", "version", "keywords",
    /// "servers": [names]}` (`description` is `""` when unset, `author` and
    /// `version` may be null).
    pub fn summary(&self, loaded: bool) -> Value {
        let mut out = Map::new();
        out.insert("loaded".into(), loaded.into());
        out.insert("path".into(), self.path_string().into());
        self.insert_metadata(&mut out);
        let names = self.servers.keys().map(|name| name.as_str().into());
        out.insert("servers".into(), Value::Array(names.collect()));
        Value::Object(out)
    }

    /// Magg's `kit_info` tool output: `{"loaded", "path" (only when not
    /// loaded), "name", "description", "author", "version", "keywords",
    /// "links", "servers": {name: {"name", "source", ...}}}`.
    pub fn details(&self, loaded: bool) -> Value {
        let mut out = Map::new();
        out.insert("loaded".into(), loaded.into());
        if !loaded {
            out.insert("path".into(), self.path_string().into());
        }
        out.insert("name".into(), self.declared_name().into());
        self.insert_metadata(&mut out);
        out.insert("links".into(), Value::Object(self.links.clone()));
        out.insert("servers".into(), servers_json(&self.servers, true));
        Value::Object(out)
    }

    /// `description`, `author`, `version`, `keywords` as Magg shows them.
    fn insert_metadata(&self, out: &mut Map<String, Value>) {
        let description = self.description.as_deref().unwrap_or_default();
        out.insert("description".into(), description.into());
        out.insert("author".into(), opt_string(self.author.as_deref()));
        out.insert("version".into(), opt_string(self.version.as_deref()));
        out.insert("keywords".into(), string_array(&self.keywords));
    }

    fn path_string(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// Something wrong with a kit file or directory, or a kit operation that
/// cannot be done. Every message names the file (the kit file, or the
/// config file for load/unload) and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The kit file could not be read.
    #[error("cannot read kit file {}: {source}. Fix: check that the file is readable UTF-8 text", path.display())]
    Read {
        /// The kit file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A kit directory exists but could not be listed.
    #[error("cannot list kit directory {}: {source}. Fix: check its permissions, or remove it", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The kit file is not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON in kit file: {message}. Fix: correct the syntax at that position (kit files are plain JSON: no comments, no trailing commas)", path.display())]
    Syntax {
        /// The kit file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description, without its position suffix.
        message: String,
    },

    /// The kit file is JSON but a value is wrong (including any server
    /// entry that the config file would reject).
    #[error("{}{}: invalid kit: {}{message}. Fix: {fix}", path.display(), Pos(*line, *column), Field(field))]
    Invalid {
        /// The kit file.
        path: PathBuf,
        /// 1-based line of the offending key, if found.
        line: Option<u32>,
        /// 1-based column of the offending key, if found.
        column: Option<u32>,
        /// Field path such as `servers.fetch.prefix`; empty for the whole file.
        field: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },

    /// [`load_kit`] of a kit that the config already lists.
    #[error("kit {name:?} is already loaded in {}. Fix: unload it first (`magg kit unload {name}`), then load it again", config.display())]
    AlreadyLoaded {
        /// The kit.
        name: String,
        /// The config file.
        config: PathBuf,
    },

    /// [`unload_kit`] of a kit that the config does not list.
    #[error("kit {name:?} is not loaded in {}{}. Fix: use the name of a loaded kit (`magg kit list` marks them)", config.display(), LoadedKits(loaded))]
    NotLoaded {
        /// The kit.
        name: String,
        /// The config file.
        config: PathBuf,
        /// The kits that are loaded.
        loaded: Vec<String>,
    },
}

impl KitError {
    /// The file the error is about: the kit file or directory, or the
    /// config file for [`KitError::AlreadyLoaded`] / [`KitError::NotLoaded`].
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::ReadDir { path, .. }
            | Self::Syntax { path, .. }
            | Self::Invalid { path, .. } => path,
            Self::AlreadyLoaded { config, .. } | Self::NotLoaded { config, .. } => config,
        }
    }

    /// The kit a kit-file error is about (its file name without `.json`);
    /// `None` for directory errors and load/unload errors.
    pub fn kit_name(&self) -> Option<String> {
        match self {
            Self::Read { path, .. } | Self::Syntax { path, .. } | Self::Invalid { path, .. } => {
                kit_name_of(path)
            }
            _ => None,
        }
    }
}

/// Renders ` (loaded: a, b)` or ` (no kits are loaded)`.
struct LoadedKits<'a>(&'a [String]);

impl fmt::Display for LoadedKits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(" (no kits are loaded)")
        } else {
            write!(f, " (loaded: {})", self.0.join(", "))
        }
    }
}

/// What loading or unloading a kit did, exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KitReport {
    /// The kit.
    pub kit: String,
    /// Load: servers added to the config (tagged with the kit).
    pub added: Vec<String>,
    /// Load: servers that were already configured, from another kit, with
    /// the same definition, and were only tagged with this kit as well.
    pub tagged: Vec<String>,
    /// Unload: servers removed from the config.
    pub removed: Vec<String>,
    /// Unload: servers that stay because another kit also owns them (only
    /// this kit's tag was removed): `(name, why)`.
    pub kept: Vec<(String, String)>,
    /// Load: the kit's servers that were not added or tagged: `(name, reason)`.
    pub skipped: Vec<(String, String)>,
}

impl KitReport {
    fn new(kit: &str) -> KitReport {
        KitReport {
            kit: kit.to_owned(),
            ..KitReport::default()
        }
    }

    /// Magg's message after a load, with the skipped servers added:
    /// `Kit 'web' loaded successfully. Added servers: fetch, time. Updated
    /// servers: git. Skipped servers: fs (reason)`.
    pub fn loaded_message(&self) -> String {
        let mut parts = vec![format!("Kit '{}' loaded successfully", self.kit)];
        if !self.added.is_empty() {
            parts.push(format!("Added servers: {}", self.added.join(", ")));
        }
        if !self.tagged.is_empty() {
            parts.push(format!("Updated servers: {}", self.tagged.join(", ")));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("Skipped servers: {}", with_reasons(&self.skipped)));
        }
        parts.join(". ")
    }

    /// Magg's message after an unload: `Kit 'web' unloaded successfully.
    /// Removed servers: fetch. Updated servers: time (reason)`.
    pub fn unloaded_message(&self) -> String {
        let mut parts = vec![format!("Kit '{}' unloaded successfully", self.kit)];
        if !self.removed.is_empty() {
            parts.push(format!("Removed servers: {}", self.removed.join(", ")));
        }
        if !self.kept.is_empty() {
            parts.push(format!("Updated servers: {}", with_reasons(&self.kept)));
        }
        parts.join(". ")
    }

    /// The report as JSON: `{"kit", "added", "tagged", "removed",
    /// "kept": [{"name", "reason"}], "skipped": [{"name", "reason"}]}`.
    pub fn to_json(&self) -> Value {
        let reasons = |items: &[(String, String)]| {
            let items = items.iter().map(|(name, reason)| {
                let mut item = Map::new();
                item.insert("name".into(), name.as_str().into());
                item.insert("reason".into(), reason.as_str().into());
                Value::Object(item)
            });
            Value::Array(items.collect())
        };
        let mut out = Map::new();
        out.insert("kit".into(), self.kit.as_str().into());
        out.insert("added".into(), string_array(&self.added));
        out.insert("tagged".into(), string_array(&self.tagged));
        out.insert("removed".into(), string_array(&self.removed));
        out.insert("kept".into(), reasons(&self.kept));
        out.insert("skipped".into(), reasons(&self.skipped));
        Value::Object(out)
    }
}

fn with_reasons(items: &[(String, String)]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|(name, reason)| format!("{name} ({reason})"))
        .collect();
    items.join("; ")
}

/// Kit directories in priority order: `kit.d/` beside the config file,
/// `kit.d/` in each search directory ([`config::search_paths`]: `MAGG_PATH`,
/// or `./.magg` and `~/.magg`), then `shipped` (magg's own kits, passed in
/// by the caller; see [`shipped_dir`]). Only existing directories are
/// returned, each once (compared after resolving symlinks), as in Magg.
pub fn kit_dirs(config_path: &Path, shipped: Option<&Path>) -> Vec<PathBuf> {
    kit_dirs_with(config_path, &config::search_paths(), shipped)
}

/// [`kit_dirs`] with explicit search directories.
pub fn kit_dirs_with(
    config_path: &Path,
    search_paths: &[PathBuf],
    shipped: Option<&Path>,
) -> Vec<PathBuf> {
    let beside_config = config_path
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(KIT_DIR_NAME);
    let candidates = std::iter::once(beside_config)
        .chain(search_paths.iter().map(|dir| dir.join(KIT_DIR_NAME)))
        .chain(shipped.map(Path::to_owned));
    let mut seen = HashSet::new();
    let mut dirs = Vec::new();
    for dir in candidates {
        if !dir.is_dir() {
            continue;
        }
        let key = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.insert(key) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The kits shipped with magg: `kit.d/` beside the executable, or
/// `../share/magg/kit.d` from it, or this source tree's `kit.d/` (for
/// builds run from the tree); `None` when none exists.
pub fn shipped_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(KIT_DIR_NAME));
        candidates.push(dir.join("../share/magg").join(KIT_DIR_NAME));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(KIT_DIR_NAME),
    );
    candidates
        .into_iter()
        .find(|dir| dir.is_dir())
        .map(|dir| dir.canonicalize().unwrap_or(dir))
}

/// Reads every `*.json` in `dirs` (each directory's files in name order;
/// hidden files are skipped). A kit's name is its file name without
/// `.json`, and the first file with a name wins, as in Magg: a later file
/// with the same name is not read, even when the first one is broken
/// (a broken override is reported, not silently replaced by the shipped
/// kit). Missing directories are skipped; unreadable directories and
/// unreadable or invalid kit files are returned as errors, in order.
pub fn discover(dirs: &[PathBuf]) -> (IndexMap<String, Kit>, Vec<KitError>) {
    let mut kits = IndexMap::new();
    let mut errors = Vec::new();
    let mut claimed: IndexMap<String, PathBuf> = IndexMap::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                errors.push(KitError::ReadDir {
                    path: dir.clone(),
                    source,
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| is_kit_file(path))
            .collect();
        files.sort();
        for path in files {
            let Some(name) = kit_name_of(&path) else {
                continue;
            };
            if let Some(first) = claimed.get(&name) {
                tracing::debug!(
                    "kit {name:?} at {} is hidden by {}",
                    path.display(),
                    first.display()
                );
                continue;
            }
            claimed.insert(name.clone(), path.clone());
            match read_kit(&path) {
                Ok(kit) => {
                    kits.insert(name, kit);
                }
                Err(err) => errors.push(err),
            }
        }
    }
    (kits, errors)
}

/// Whether `path` looks like a kit file: `*.json`, not hidden, a file (or a
/// symlink to one).
fn is_kit_file(path: &Path) -> bool {
    let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    file_name.ends_with(".json")
        && file_name.len() > ".json".len()
        && !file_name.starts_with('.')
        && path.is_file()
}

/// A kit's name from its file: the file name without `.json`.
fn kit_name_of(path: &Path) -> Option<String> {
    let file_name = path.file_name()?.to_str()?;
    let name = file_name.strip_suffix(".json").unwrap_or(file_name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// Reads and validates one kit file. Its name is the file name without
/// `.json`. Metadata must have Magg's types (`keywords` a list of strings,
/// `links` an object of strings...); servers must be valid config servers
/// (a broken server makes the whole kit an error, where Magg dropped the
/// server with a log line).
pub fn read_kit(path: &Path) -> Result<Kit, KitError> {
    let text = std::fs::read_to_string(path).map_err(|source| KitError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = kit_name_of(path).unwrap_or_default();
    read::parse_kit(path, &name, &text)
}

/// Adds the kit's servers to `config`, each tagged with the kit (its
/// `kits` is `[kit]`), and records the kit in `config.kits` as Magg's
/// `KitInfo`: `{"name", "description" ("" when unset), "path", "source":
/// "file"}`. `enable` overrides the added servers' `enabled` (Magg's
/// `--enable` / `--no-enable`).
///
/// A kit server whose name is already configured is never overwritten:
/// * already tagged with this kit: skipped;
/// * a different server (other command, arguments, URI, env, cwd or
///   transport): skipped, with what differs;
/// * the same server, from another kit: tagged with this kit as well;
/// * the same server, added by the user (no kit tag): skipped and left
///   untagged, so that unloading the kit will not remove the user's server.
///
/// A new server that would be enabled with a prefix already used by an
/// enabled server (or equal to magg's own tool prefix) is skipped: the
/// config file would no longer load. Errors if the kit is already loaded.
/// The config is changed in memory only; call [`Config::save`].
pub fn load_kit(
    config: &mut Config,
    kit: &Kit,
    enable: Option<bool>,
) -> Result<KitReport, KitError> {
    if config.kits.contains_key(&kit.name) {
        return Err(KitError::AlreadyLoaded {
            name: kit.name.clone(),
            config: config.path.clone(),
        });
    }
    let mut report = KitReport::new(&kit.name);
    for (name, server) in &kit.servers {
        if let Some(existing) = config.servers.get_mut(name) {
            if existing.kits.contains(&kit.name) {
                report
                    .skipped
                    .push((name.clone(), format!("already part of kit '{}'", kit.name)));
            } else if let Some(difference) = difference(existing, server) {
                report.skipped.push((
                    name.clone(),
                    format!(
                        "a different server named '{name}' is already configured ({difference}); left unchanged"
                    ),
                ));
            } else if existing.kits.is_empty() {
                report.skipped.push((
                    name.clone(),
                    "already configured by the user (from no kit); left as it is so that unloading \
                     the kit does not remove it"
                        .to_owned(),
                ));
            } else {
                existing.kits.push(kit.name.clone());
                report.tagged.push(name.clone());
            }
            continue;
        }

        let mut server = server.clone();
        server.name = name.clone();
        server.kits = vec![kit.name.clone()];
        if let Some(enable) = enable {
            server.enabled = enable;
        }
        if let Some(reason) = prefix_conflict(config, &server) {
            report.skipped.push((name.clone(), reason));
            continue;
        }
        config.servers.insert(name.clone(), server);
        report.added.push(name.clone());
    }

    let mut info = Map::new();
    info.insert("name".into(), kit.name.as_str().into());
    let description = kit.description.as_deref().unwrap_or_default();
    info.insert("description".into(), description.into());
    if !kit.path.as_os_str().is_empty() {
        info.insert("path".into(), kit.path.to_string_lossy().into());
    }
    info.insert("source".into(), "file".into());
    config.kits.insert(kit.name.clone(), Value::Object(info));
    Ok(report)
}

/// Why `kit` differs from the configured `existing` server of the same
/// name, or `None` when both run the same thing (same command line, URI,
/// env, cwd and transport; source, prefix, notes and `enabled` may differ).
fn difference(existing: &ServerConfig, kit: &ServerConfig) -> Option<String> {
    let runs = |server: &ServerConfig| match (server.command_line(), &server.uri) {
        (Some(line), _) => format!("`{line}`"),
        (None, Some(uri)) => uri.clone(),
        (None, None) => "nothing".to_owned(),
    };
    if existing.argv() != kit.argv() || existing.uri != kit.uri {
        return Some(format!(
            "it runs {}, the kit's runs {}",
            runs(existing),
            runs(kit)
        ));
    }
    let mut fields = Vec::new();
    if existing.env != kit.env {
        fields.push("env");
    }
    if existing.cwd != kit.cwd {
        fields.push("cwd");
    }
    if existing.transport != kit.transport {
        fields.push("transport");
    }
    (!fields.is_empty()).then(|| {
        format!(
            "same command, but its {} differs from the kit's",
            fields.join(" and ")
        )
    })
}

/// Why `server` cannot be added enabled next to the configured servers, if so.
fn prefix_conflict(config: &Config, server: &ServerConfig) -> Option<String> {
    if !server.enabled {
        return None;
    }
    let prefix = server.prefix.as_deref()?;
    if prefix == config.settings.self_prefix {
        return Some(format!(
            "its prefix '{prefix}' is magg's own tool prefix; add it yourself with another prefix"
        ));
    }
    let other = config
        .enabled_servers()
        .find(|other| other.prefix.as_deref() == Some(prefix))?;
    Some(format!(
        "its prefix '{prefix}' is already used by enabled server '{}'; add it yourself with another \
         prefix, or disable '{}' and load the kit again",
        other.name, other.name
    ))
}

/// Removes the kit from `config.kits` and its servers from the config:
/// a server tagged with the kit is removed when the kit is its only tag,
/// and otherwise only loses this kit's tag (Magg's rule). Servers without
/// the kit's tag, including every server added by the user, are not
/// touched. Errors if the kit is not loaded. The config is changed in
/// memory only; call [`Config::save`].
pub fn unload_kit(config: &mut Config, name: &str) -> Result<KitReport, KitError> {
    if !config.kits.contains_key(name) {
        return Err(KitError::NotLoaded {
            name: name.to_owned(),
            config: config.path.clone(),
            loaded: config.kits.keys().cloned().collect(),
        });
    }
    let mut report = KitReport::new(name);
    for (server_name, server) in &mut config.servers {
        if !server.kits.iter().any(|k| k == name) {
            continue;
        }
        server.kits.retain(|k| k != name);
        if server.kits.is_empty() {
            report.removed.push(server_name.clone());
        } else {
            let others: Vec<String> = server.kits.iter().map(|k| format!("'{k}'")).collect();
            let kits = if others.len() == 1 { "kit" } else { "kits" };
            report.kept.push((
                server_name.clone(),
                format!("also part of {kits} {}", others.join(", ")),
            ));
        }
    }
    config
        .servers
        .retain(|server_name, _| !report.removed.contains(server_name));
    config.kits.shift_remove(name);
    Ok(report)
}

/// A kit file's JSON for the given servers (Magg's `magg kit export`):
/// `name`, `description` (`""` when `None`), `author` and `version` when
/// given, and `servers` in the config file's form without `kits`.
pub fn export_kit(
    name: &str,
    description: Option<&str>,
    author: Option<&str>,
    version: Option<&str>,
    servers: &IndexMap<String, ServerConfig>,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), name.into());
    out.insert("description".into(), description.unwrap_or_default().into());
    if let Some(author) = author {
        out.insert("author".into(), author.into());
    }
    if let Some(version) = version {
        out.insert("version".into(), version.into());
    }
    out.insert("servers".into(), servers_json(servers, false));
    Value::Object(out)
}

/// `{name: server}` in the config file's form without `kits`; with
/// `with_name`, each server starts with `"name"` (Magg's `kit_info` dump).
fn servers_json(servers: &IndexMap<String, ServerConfig>, with_name: bool) -> Value {
    let servers = servers.iter().map(|(name, server)| {
        let mut entry = Map::new();
        if with_name {
            entry.insert("name".into(), name.as_str().into());
        }
        if let Value::Object(fields) = server.to_json() {
            for (key, value) in fields {
                if key != "kits" {
                    entry.entry(key).or_insert(value);
                }
            }
        }
        (name.clone(), Value::Object(entry))
    });
    Value::Object(servers.collect())
}

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| s.as_str().into()).collect())
}

fn opt_string(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}
