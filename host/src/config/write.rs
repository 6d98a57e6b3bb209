//! Writing config files: [`write_json_atomic`] (temp file + rename, like
//! Magg's `_write_json_atomic`) and [`Config::save`]'s Magg-style merge into
//! the file as it is on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::{Config, ConfigError, ConfigFormat, parse};

/// Writes `value` as pretty JSON (2-space indent, trailing newline) to
/// `path` so that a crash cannot leave a truncated file: it goes to a temp
/// file in the same directory, is synced, gets the old file's permissions
/// (a new file keeps owner-only permissions) and is renamed over the target.
/// A symlink's target is replaced, not the link.
pub fn write_json_atomic(path: &Path, value: &Value) -> io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = target.file_name().map_or_else(
        || "config.json".into(),
        |n| n.to_string_lossy().into_owned(),
    );

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');

    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        if let Ok(meta) = fs::metadata(&target) {
            fs::set_permissions(&tmp, meta.permissions())?;
        }
        fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// [`Config::save`].
pub(super) fn save(config: &Config) -> Result<(), ConfigError> {
    let current = match fs::read_to_string(&config.path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: config.path.clone(),
                source,
            });
        }
    };
    save_over(config, current.as_deref())
}

/// Saves `config` over `current`, the file's text as just read (`None`: no file): only its
/// `"servers"` and `"kits"` are replaced.
pub(super) fn save_over(config: &Config, current: Option<&str>) -> Result<(), ConfigError> {
    let path = &config.path;
    if config.format == ConfigFormat::McpServers {
        return Err(ConfigError::NotSaved {
            path: path.clone(),
            reason: "it is in mcpServers (Claude Desktop) format, which magg reads but does not rewrite (that would drop its ${VAR} references). Move the servers to a Magg-format file (\"servers\": {...}) to manage them from magg".to_owned(),
        });
    }

    let data = match current.map(str::trim) {
        Some(text) if !text.is_empty() => {
            // Like Magg: never overwrite a file that no longer parses.
            let on_disk = parse::parse_document(path, text, &|_| None).map_err(|err| {
                ConfigError::NotSaved {
                    path: path.clone(),
                    reason: format!("the file on disk has an error, fix it first: {err}"),
                }
            })?;
            if on_disk.format == ConfigFormat::McpServers {
                return Err(ConfigError::NotSaved {
                    path: path.clone(),
                    reason: "the file on disk is now in mcpServers format".to_owned(),
                });
            }
            let mut data = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(data)) => data,
                _ => serde_json::Map::new(),
            };
            let fresh = config.to_json();
            if let Some(servers) = fresh.get("servers") {
                data.insert("servers".into(), servers.clone());
            }
            match fresh.get("kits") {
                Some(kits) => {
                    data.insert("kits".into(), kits.clone());
                }
                None => {
                    data.shift_remove("kits");
                }
            }
            Value::Object(data)
        }
        _ => config.to_json(),
    };

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        tracing::warn!("creating directory {}", dir.display());
        fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
            path: path.clone(),
            source,
        })?;
    }
    write_json_atomic(path, &data).map_err(|source| ConfigError::Write {
        path: path.clone(),
        source,
    })
}
