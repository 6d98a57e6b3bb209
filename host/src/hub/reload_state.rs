//! What the hub remembers of the config file between reloads: the content last applied (or
//! written by magg itself), so that a file event for exactly that content is ignored, and why
//! the last reload was rejected.

use std::{
    hash::{Hash as _, Hasher as _},
    sync::Mutex,
};

/// What the reloader remembers between reloads.
#[derive(Debug, Default)]
pub struct ReloadState {
    /// Hash of the file content last applied (or written by magg itself).
    last_seen: Mutex<Option<u64>>,
    /// Why the last reload was rejected, until a later one succeeds.
    last_error: Mutex<Option<String>>,
}

impl ReloadState {
    /// Records `text` as applied, so a file event for exactly this content is ignored.
    pub fn seen(&self, text: &[u8]) {
        if let Ok(mut last) = self.last_seen.lock() {
            *last = Some(hash(text));
        }
    }

    /// Why the last reload was rejected, if it was.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Whether `text` is the content last applied.
    pub fn is_seen(&self, text: &[u8]) -> bool {
        self.last_seen
            .lock()
            .is_ok_and(|last| *last == Some(hash(text)))
    }

    /// Records why the last reload was rejected (`None`: it was not).
    pub fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
