//! What a caller whose scopes limit it sees of the catalog: the snapshot cut down to its
//! [`View`], made once per view and catalog generation and shared by every request with that
//! view; which tools tools/list shows a session under tool search (its own, pinned and added
//! ones); and the list_changed notifications each session gets for what changed in its view.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
};

use super::Hub;
use crate::{
    auth::access::View,
    catalog::{ListChanges, Snapshot, ToolList},
    config::ToolSearch,
    relay::Session,
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

    /// The tools tools/list shows `session` (`None`: a caller with no session) in
    /// `snapshot`: every tool, or under tool search magg's own, the pinned ones and those the
    /// session added.
    pub fn listed_tools<'a>(
        &self,
        snapshot: &'a Snapshot,
        session: Option<&Session>,
    ) -> Cow<'a, ToolList> {
        if self.settings.tool_search == ToolSearch::Off {
            return Cow::Borrowed(&snapshot.tools);
        }
        let added = session.map(Session::added_tools).unwrap_or_default();
        snapshot.listed_tools(&added)
    }

    /// Tells every session what changed in the lists it sees. Under tool search, a session's
    /// tools changed when the tools listed to it did (a new backend tool it would only find
    /// by searching is no change to its list).
    pub(super) fn announce(&self, rebuilt: &Rebuilt) {
        if !rebuilt.changes.any() {
            return;
        }
        let searching = self.settings.tool_search != ToolSearch::Off;
        type Seen = (Arc<View>, ListChanges, Arc<Snapshot>, Arc<Snapshot>);
        let mut by_view: Vec<Seen> = Vec::new();
        self.sessions.notify(|session| {
            let (mut changes, old, new) = match session.view() {
                None => (rebuilt.changes, rebuilt.old.clone(), rebuilt.new.clone()),
                Some(view) => match by_view.iter().find(|(v, ..)| Arc::ptr_eq(v, &view)) {
                    Some((_, changes, old, new)) => (*changes, old.clone(), new.clone()),
                    None => {
                        let new = Arc::new(self.scope(&rebuilt.new, &view));
                        let old = Arc::new(self.scope(&rebuilt.old, &view));
                        let changes = new.changes_since(&old);
                        by_view.push((view, changes, old.clone(), new.clone()));
                        (changes, old, new)
                    }
                },
            };
            if searching && changes.tools {
                changes.tools = !self
                    .listed_tools(&new, Some(session))
                    .same_listing(&self.listed_tools(&old, Some(session)));
            }
            changes
        });
    }
}

/// A lock for the scoped snapshots.
pub(super) type ScopedSnapshots = Mutex<ScopedCache>;
