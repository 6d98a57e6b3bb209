//! What a caller whose scopes limit it sees of the catalog: the snapshot cut down to its
//! [`View`], made once per view and catalog generation and shared by every request with that
//! view; and the list_changed notifications each session gets for what changed in its view.

use std::sync::{Arc, Mutex};

use super::Hub;
use crate::{
    auth::access::View,
    catalog::{ListChanges, Snapshot},
};

/// How many views' snapshots are kept at once; past that the oldest are made again on use.
const KEPT_VIEWS: usize = 64;

/// The scoped snapshots of one catalog generation.
#[derive(Default)]
pub(super) struct ScopedCache {
    generation: u64,
    views: Vec<(Arc<View>, Arc<Snapshot>)>,
}

/// A catalog rebuild: what changed, and the snapshots before and after.
pub(super) struct Rebuilt {
    pub(super) changes: ListChanges,
    pub(super) old: Arc<Snapshot>,
    pub(super) new: Arc<Snapshot>,
}

impl Hub {
    /// The current catalog as the client of the current request sees it: whole, or cut down
    /// to what its token's scopes grant.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot_for(crate::relay::current_view().as_ref())
    }

    /// The current catalog whole, whoever asks.
    pub fn full_snapshot(&self) -> Arc<Snapshot> {
        self.catalog.load_full()
    }

    /// The current catalog as `view` sees it (`None`: whole).
    pub fn snapshot_for(&self, view: Option<&Arc<View>>) -> Arc<Snapshot> {
        let full = self.catalog.load_full();
        let Some(view) = view else {
            return full;
        };
        if let Ok(cache) = self.scoped.lock()
            && cache.generation == full.generation
            && let Some((_, scoped)) = cache.views.iter().find(|(v, _)| Arc::ptr_eq(v, view))
        {
            return scoped.clone();
        }
        let scoped = Arc::new(self.scope(&full, view));
        if let Ok(mut cache) = self.scoped.lock() {
            if cache.generation != full.generation {
                *cache = ScopedCache {
                    generation: full.generation,
                    views: Vec::new(),
                };
            }
            if cache.views.len() >= KEPT_VIEWS {
                cache.views.remove(0);
            }
            cache.views.push((view.clone(), scoped.clone()));
        }
        scoped
    }

    /// `snapshot` cut down to `view`.
    fn scope(&self, snapshot: &Snapshot, view: &Arc<View>) -> Snapshot {
        snapshot.scoped(view, |own| self.own.changes(own, None))
    }

    /// Tells every session what changed in the lists it sees.
    pub(super) fn announce(&self, rebuilt: &Rebuilt) {
        if !rebuilt.changes.any() {
            return;
        }
        let mut by_view: Vec<(Arc<View>, ListChanges)> = Vec::new();
        self.sessions.notify(|session| {
            let Some(view) = session.view() else {
                return rebuilt.changes;
            };
            if let Some((_, changes)) = by_view.iter().find(|(v, _)| Arc::ptr_eq(v, &view)) {
                return *changes;
            }
            let changes = self
                .scope(&rebuilt.new, &view)
                .changes_since(&self.scope(&rebuilt.old, &view));
            by_view.push((view, changes));
            changes
        });
    }
}

/// A lock for the scoped snapshots.
pub(super) type ScopedSnapshots = Mutex<ScopedCache>;
