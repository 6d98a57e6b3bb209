//! Servers added or removed while magg runs when its config file is one magg does not rewrite
//! (the `mcpServers` format of Claude Desktop and multi-mcp, whose `${VAR}` references a
//! rewrite would lose): the change applies to the running set, as multi-mcp applies its API's
//! changes, and is kept across reloads of the file, but is not saved.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use indexmap::IndexMap;

use super::{ConfigDiff, Hub};
use crate::config::{Config, ConfigFormat, ServerConfig};

/// The servers added and removed while running, not saved to the file.
#[derive(Default)]
pub(super) struct RuntimeChanges {
    added: IndexMap<String, ServerConfig>,
    removed: HashSet<String>,
}

/// A lock for the runtime changes.
pub(super) type Runtime = Mutex<RuntimeChanges>;

impl Hub {
    /// Changes the servers as `edit` does: saved to the config file and applied
    /// ([`Hub::update_config`]), or, when the file is in `mcpServers` format, applied to the
    /// running set only and kept across reloads of the file. Which of the two happened: `true`
    /// when saved.
    pub async fn change_servers<T>(
        self: &Arc<Self>,
        edit: impl FnOnce(&mut Config) -> Result<T, String>,
    ) -> Result<(T, ConfigDiff, bool), String> {
        if self.config().format != ConfigFormat::McpServers {
            return self
                .update_config(edit)
                .await
                .map(|(value, diff)| (value, diff, true));
        }
        if self.settings.read_only {
            return Err(
                "magg is in read-only mode (read_only in the config or MAGG_READ_ONLY), so it \
                 does not change its servers; run magg without read-only mode"
                    .to_owned(),
            );
        }
        let _guard = self.edits.lock().await;
        let base = self.config();
        let mut next = base.clone();
        let value = edit(&mut next)?;
        if let Ok(mut runtime) = self.runtime.lock() {
            for (name, server) in &next.servers {
                if !base.servers.contains_key(name) {
                    runtime.removed.remove(name);
                    runtime.added.insert(name.clone(), server.clone());
                }
            }
            for name in base.servers.keys() {
                if !next.servers.contains_key(name) && runtime.added.shift_remove(name).is_none() {
                    runtime.removed.insert(name.clone());
                }
            }
        }
        tracing::info!(
            "{} is in mcpServers format, which magg does not rewrite: the change applies while \
             magg runs and is not saved",
            base.path.display()
        );
        Ok((value, self.apply_config(next).await, false))
    }

    /// `new`, a config just read from the file, with the servers added and removed while
    /// running applied to it (a server the file now has itself wins over one added).
    pub(crate) fn with_runtime_changes(&self, mut new: Config) -> Config {
        let Ok(runtime) = self.runtime.lock() else {
            return new;
        };
        for name in &runtime.removed {
            new.servers.shift_remove(name);
        }
        for (name, server) in &runtime.added {
            if !new.servers.contains_key(name) {
                new.servers.insert(name.clone(), server.clone());
            }
        }
        new
    }
}
