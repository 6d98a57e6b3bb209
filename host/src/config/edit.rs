//! Changing the config file when other processes may change it too (two clients that each
//! run `magg serve` on one file, a `magg server add` beside a running magg, an edit by hand):
//! an advisory lock on `<file>.lock` beside the file ([`ConfigLock`]) is held while the file is
//! re-read, one change is applied to what is on disk, the result is validated and written
//! atomically ([`edit_locked`]). So a save never drops a change another process made since
//! this one read the file.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, ConfigFormat, parse, process_env, write};

/// An advisory lock on a config file, held until dropped. Every magg process that changes the
/// file takes it first; editors and other programs do not, which the re-read under the lock
/// and the atomic write make up for.
#[derive(Debug)]
pub struct ConfigLock {
    /// The open lock file; closing it releases the lock.
    _file: File,
}

impl ConfigLock {
    /// Takes the lock of the config file `path`, waiting for another process to release it.
    pub fn acquire(path: &Path) -> Result<ConfigLock, ConfigError> {
        let file = open_lock_file(path)?;
        file.lock().map_err(|source| lock_error(path, source))?;
        Ok(ConfigLock { _file: file })
    }

    /// Takes the lock of the config file `path` if no other process holds it (`None` if one
    /// does).
    pub fn try_acquire(path: &Path) -> Result<Option<ConfigLock>, ConfigError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ConfigLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(lock_error(path, source)),
        }
    }
}

/// The lock file of the config file `path`: `config.json.lock` beside it (beside the file a
/// symbolic link points to, so that every name of one file shares one lock).
pub fn lock_path(path: &Path) -> PathBuf {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut name = target
        .file_name()
        .map_or_else(|| "config.json".into(), ToOwned::to_owned);
    name.push(".lock");
    target.with_file_name(name)
}

fn open_lock_file(path: &Path) -> Result<File, ConfigError> {
    let lock = lock_path(path);
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::create_dir_all(dir).map_err(|source| lock_error(path, source))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(|source| lock_error(path, source))
}

fn lock_error(path: &Path, source: io::Error) -> ConfigError {
    ConfigError::Write {
        path: lock_path(path),
        source: io::Error::new(
            source.kind(),
            format!(
                "cannot lock it to change {} safely: {source}",
                path.display()
            ),
        ),
    }
}

/// Why [`edit_locked`] saved nothing.
#[derive(Debug)]
pub enum EditError<E> {
    /// The change itself was refused (e.g. a server of that name exists already).
    Refused(E),
    /// The change would make a config that does not validate.
    Invalid(ConfigError),
    /// The file on disk could not be read or written, or would lose information.
    NotSaved(ConfigError),
}

impl<E: fmt::Display> fmt::Display for EditError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(e) => write!(f, "{e}"),
            Self::Invalid(e) => write!(f, "the change would make an invalid config: {e}"),
            Self::NotSaved(e) => write!(f, "could not save the config: {e}"),
        }
    }
}

/// Applies `edit` to the config file as it is on disk now and saves the result, under `lock`
/// (the lock of `base.path`). `base` is what the caller runs on: the change is applied to it
/// instead when there is no file yet, or when the file is empty (one being rewritten by an
/// editor). The result is validated as a file read would be, and written atomically; only its
/// `"servers"` and `"kits"` change in the file. Returns `edit`'s value and the config as saved
/// (`exists` true).
pub fn edit_locked<T, E>(
    _lock: &ConfigLock,
    base: &Config,
    edit: impl FnOnce(&mut Config) -> Result<T, E>,
) -> Result<(T, Config), EditError<E>> {
    let path = &base.path;
    let text = match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(EditError::NotSaved(ConfigError::Read {
                path: path.clone(),
                source,
            }));
        }
    };
    let mut current = match text.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse::parse_document(path, text, &process_env).map_err(|err| {
            EditError::NotSaved(ConfigError::NotSaved {
                path: path.clone(),
                reason: format!("the file on disk has an error, fix it first: {err}"),
            })
        })?,
        None => base.clone(),
    };
    if base.format == ConfigFormat::McpServers {
        // Keep refusing to rewrite an mcpServers file even if it was emptied meanwhile.
        current.format = ConfigFormat::McpServers;
    }
    let value = edit(&mut current).map_err(EditError::Refused)?;
    let mut checked = current.revalidated().map_err(EditError::Invalid)?;
    checked.format = current.format;
    write::save_over(&checked, text.as_deref()).map_err(EditError::NotSaved)?;
    checked.exists = true;
    Ok((value, checked))
}
