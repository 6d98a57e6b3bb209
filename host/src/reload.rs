//! Config hot reload: a debounced watch on the config file (which survives editors that save by
//! writing a new file and renaming it over the old one), SIGHUP, and the reload tool all end in
//! [`reload`], which parses the file and applies the difference to the running hub. A file that
//! does not parse or validate is rejected whole: the running set stays, and the reason is logged
//! and shown by `magg_status` until a good file is read. magg's own saves are recognised by
//! their content and not reloaded. A file that becomes empty (an editor that truncates it before
//! writing the new content) is taken as not yet written: the running set stays.
//!
//! The watch uses file-system notifications, or, as Magg does, polls the file every
//! `reload_poll_interval` seconds when `reload_use_watchdog` is false or notifications cannot
//! be had. Notifications cover the config's whole directory (a rename over the file is an event
//! of the directory); events for any other file there are dropped, and the watch library's own
//! line per event is kept out of magg's log ([`LOG_DIRECTIVE`]). A config that is a symbolic
//! link into its own directory (a Kubernetes ConfigMap volume: `config.json -> ..data/config.json`,
//! where an update swaps the `..data` link) is also reloaded on events for the link's first
//! step ([`watched_names`]).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::{
    config,
    hub::{ConfigDiff, Hub},
};

/// A log filter directive for the file-watch library: it logs every raw file event of the
/// watched directory at trace level, so a log kept beside the config (`2>> .magg/magg.log`)
/// would feed itself through the watch, line after line. magg's own log filters add it.
pub const LOG_DIRECTIVE: &str = "notify=debug";

/// Quiet time after the last file event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Why a reload did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file did not parse or validate; nothing was changed.
    #[error("config rejected, nothing changed: {0}")]
    Invalid(#[from] config::ConfigError),
    /// The file is empty: taken as not yet written, so nothing was changed.
    #[error(
        "{} is empty, so nothing changed (an empty file is taken as one still being written); to remove every server, write {{\"servers\": {{}}}}",
        path.display()
    )]
    Empty {
        /// The config file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Reads the config file and applies it. With `force` false, content magg has already applied
/// (or written itself) is skipped and gives `Ok(None)`.
pub async fn reload(hub: &Hub, force: bool) -> Result<Option<ConfigDiff>, ReloadError> {
    let result = read_and_apply(hub, force).await;
    match &result {
        Ok(Some(_)) => crate::metrics::count_reload(true),
        Ok(None) => {}
        Err(_) => crate::metrics::count_reload(false),
    }
    result
}

async fn read_and_apply(hub: &Hub, force: bool) -> Result<Option<ConfigDiff>, ReloadError> {
    // One at a time with magg's own edits, so the newest file content is applied last.
    let _edits = hub.lock_edits().await;
    let path = hub.config().path;
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound && !force => return Ok(None),
        Err(source) => {
            let error = ReloadError::Read { path, source };
            hub.reload_state().set_error(Some(error.to_string()));
            return Err(error);
        }
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        let error = ReloadError::Empty { path };
        tracing::warn!(
            "{error}; keeping the {} running server(s)",
            hub.backends().len()
        );
        return if force { Err(error) } else { Ok(None) };
    }
    if !force && hub.reload_state().is_seen(&text) {
        // Back to what is applied (e.g. a bad edit undone): whatever was wrong is gone.
        hub.reload_state().set_error(None);
        return Ok(None);
    }
    let parsed = match String::from_utf8(text.clone()) {
        Ok(utf8) => config::parse_str(&path, &utf8, &config::process_env),
        Err(e) => Err(config::ConfigError::Read {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
    };
    match parsed {
        Ok(new) => {
            hub.reload_state().seen(&text);
            hub.reload_state().set_error(None);
            let new = hub.with_runtime_changes(new);
            Ok(Some(hub.apply_config(new).await))
        }
        Err(error) => {
            tracing::error!(
                "config reload rejected, the running servers stay as they are: {error}"
            );
            hub.reload_state().set_error(Some(error.to_string()));
            Err(ReloadError::Invalid(error))
        }
    }
}

/// Watches the config file for changes and reloads after each burst of them, as the settings
/// say: file-system notifications (`reload_use_watchdog` true or unset) or polling every
/// `reload_poll_interval` seconds (`reload_use_watchdog` false, or notifications unavailable).
/// The watch ends when the hub is dropped.
pub fn watch(hub: &Arc<Hub>) {
    let every = poll_interval(hub.settings.reload_poll_interval);
    if hub.settings.reload_use_watchdog == Some(false) {
        tracing::debug!(
            "polling the config file every {} ms (reload_use_watchdog is false)",
            every.as_millis()
        );
        poll(hub, every);
        return;
    }
    if let Err(e) = notify_watch(hub) {
        tracing::warn!(
            "cannot watch the config file with file-system notifications ({e}); polling it \
             every {} ms instead",
            every.as_millis()
        );
        poll(hub, every);
    }
}

/// `reload_poll_interval` (seconds, validated positive) as a duration of at least 10 ms.
fn poll_interval(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10))
}

/// Watches the config file's directory with file-system notifications and reloads after each
/// burst of changes to the file.
fn notify_watch(hub: &Arc<Hub>) -> notify::Result<()> {
    let path = hub.config().path;
    let Some(dir) = path.parent().map(Path::to_path_buf) else {
        return Ok(());
    };
    let names = watched_names(&path);
    if !dir.is_dir() {
        tracing::debug!(
            "not watching {}: the directory does not exist",
            dir.display()
        );
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n)))
            && !event.kind.is_access()
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tracing::debug!("watching {} for changes to the config file", dir.display());
    let weak = Arc::downgrade(hub);
    tokio::spawn(async move {
        let _watcher = watcher;
        reload_on_events(rx, weak).await;
    });
    Ok(())
}

/// The names in the config's directory whose events may change the config: the file's own, and,
/// when the file is a symbolic link to a relative path, that path's first step. A ConfigMap
/// volume links `config.json` to `..data/config.json` and publishes a new version by renaming a
/// fresh `..data` link over the old one, an event of `..data` only.
fn watched_names(path: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = path.file_name().map(|n| n.to_owned()).into_iter().collect();
    if let Ok(target) = std::fs::read_link(path)
        && target.is_relative()
        && let Some(std::path::Component::Normal(first)) = target.components().next()
        && !names.iter().any(|n| n == first)
    {
        names.push(first.to_owned());
    }
    names
}

/// Polls the config file's metadata every `every` and reloads when it changed (Magg's
/// `reload_use_watchdog: false`). Unlike a watch of the directory, this follows a config file
/// that is a symbolic link to a file elsewhere.
fn poll(hub: &Arc<Hub>, every: Duration) {
    let path = hub.config().path;
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let weak = Arc::downgrade(hub);
    let mut last = stamp(&path);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if weak.strong_count() == 0 {
                break;
            }
            let now = stamp(&path);
            if now != last {
                last = now;
                let _ = tx.send(());
            }
        }
    });
    tokio::spawn(reload_on_events(rx, Arc::downgrade(hub)));
}

/// What changes when a file is written or replaced: inode, size and modification time.
/// `None` while the file does not exist.
fn stamp(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()))
}

/// Reloads after each burst of events on `rx`, until the channel or the hub is gone.
async fn reload_on_events(mut rx: mpsc::UnboundedReceiver<()>, hub: std::sync::Weak<Hub>) {
    while rx.recv().await.is_some() {
        // Debounce: wait until the file has been quiet for a moment.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        let Some(hub) = hub.upgrade() else { break };
        match reload(&hub, false).await {
            Ok(Some(diff)) => tracing::info!(?diff, "config file changed; applied"),
            Ok(None) => {}
            Err(_) => {} // logged and recorded by `reload`
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configmap_link_is_watched_through_its_data_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("..2026_12_03")).expect("version dir");
        std::os::unix::fs::symlink("..2026_12_03", dir.path().join("..data")).expect("..data");
        let config = dir.path().join("config.json");
        std::os::unix::fs::symlink("..data/config.json", &config).expect("config.json");
        assert_eq!(watched_names(&config), ["config.json", "..data"]);

        let plain = dir.path().join("plain.json");
        std::fs::write(&plain, "{}").expect("write");
        assert_eq!(watched_names(&plain), ["plain.json"]);
    }
}
