//! Instances of a server per client session, for servers configured with
//! `"isolation": "session"`.
//!
//! # Design
//! - The server's shared [`Backend`] still runs: the catalog (tools, prompts, resources) comes
//!   from it, so what a client sees does not depend on which sessions exist, and a stateless
//!   client (protocol 2026-07-28, no `initialize`, hence no session) is served by it.
//! - A client session's first request that reaches the server (tools/call, prompts/get,
//!   resources/read, completion/complete) starts an instance of its own: a [`Backend`] with the
//!   same config, supervised and restarted like any other, kept in the shared backend's
//!   [`Instances`] under the session's number. Later requests of that session use it.
//! - The instance sees a [`Sessions`] that holds its own session only: what it asks of a client
//!   (elicitation, sampling, roots) and its logs go to that session and no other, whichever of
//!   the session's calls is in flight, or none.
//! - Its changes are announced to nobody: the catalog does not follow per-session instances.
//! - It ends when its session ends, and with the shared backend (removed, disabled, reconfigured,
//!   restarted, magg stopping): its stop token is a child of the shared backend's. A session
//!   ends when the hub's sweep finds it closed, but a streamable HTTP session only when the
//!   HTTP front ends it (DELETE, or idle past `session_idle_timeout`): such a session may fall
//!   asleep and wake as a new [`Session`] record, so its instance is kept by its
//!   `Mcp-Session-Id` ([`SessionKey::Http`]) and outlives the sleep.
//! - At most `session_backends_max` instances run at once across all servers ([`alive`]
//!   counts them); a session that would start one more gets an error naming the setting. An
//!   instance that fails to start is not kept, so it holds no place under that cap; the
//!   session's next request starts another.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

use super::{Backend, Status};
use crate::{
    config::Settings,
    relay::{Session, SessionKey, Sessions},
};

/// Per-session instances running now, across all servers.
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// How many per-session instances run now, across all servers.
pub fn alive() -> usize {
    ALIVE.load(Ordering::Relaxed)
}

/// The per-session instances of one server, by session.
#[derive(Default)]
pub struct Instances {
    by_session: Mutex<HashMap<SessionKey, Counted>>,
}

/// One instance, counted in [`ALIVE`] while it is kept; dropping it stops the instance.
struct Counted(Arc<Backend>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.stop();
        ALIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Instances {
    fn len(&self) -> usize {
        self.by_session.lock().map(|m| m.len()).unwrap_or_default()
    }

    /// Stops every instance.
    pub(super) fn clear(&self) {
        let ended: Vec<Counted> = match self.by_session.lock() {
            Ok(mut map) => map.drain().map(|(_, c)| c).collect(),
            Err(_) => Vec::new(),
        };
        drop(ended);
    }
}

impl Backend {
    /// How many per-session instances of this server run now.
    pub fn session_instances(&self) -> usize {
        self.instances.len()
    }

    /// The instance of this server for `session`, started now if the session has none, and
    /// waited for while it starts (up to `backend_init_timeout`). An error says why there is
    /// none: the cap (`session_backends_max`) is reached, or the instance failed to start.
    pub async fn for_session(
        self: &Arc<Self>,
        session: &Arc<Session>,
        settings: &Arc<Settings>,
    ) -> Result<Arc<Backend>, String> {
        let Some(id) = session.key() else {
            return Ok(self.clone());
        };
        let instance = {
            let Ok(mut map) = self.by_session_map() else {
                return Err(format!(
                    "Server `{}`: magg's table of per-session instances is unusable",
                    self.name
                ));
            };
            match map.get(&id) {
                Some(counted) => {
                    // The same session under a new record (an HTTP session that slept): what
                    // the instance sends goes to the live one.
                    counted.0.sessions.replace_the_one(session.clone());
                    counted.0.clone()
                }
                None => {
                    if self.stop.is_cancelled() {
                        return Err(format!("Server `{}` is stopped.", self.name));
                    }
                    let max = settings.session_backends_max;
                    let counted = ALIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (max == 0 || n < max).then_some(n + 1)
                    });
                    if counted.is_err() {
                        return Err(format!(
                            "Server `{}` runs one instance per client session (\"isolation\": \
                             \"session\"), and magg already runs {max} such instances, the most \
                             session_backends_max allows. Retry when other sessions have ended, or \
                             raise session_backends_max in the config (MAGG_SESSION_BACKENDS_MAX; \
                             0 means no limit).",
                            self.name
                        ));
                    }
                    // Nobody hears of the instance's changes: the catalog is the shared one's.
                    let (changes, _) = mpsc::unbounded_channel();
                    let instance = Backend::launch(
                        self.config.clone(),
                        settings.clone(),
                        changes,
                        Arc::new(Sessions::of_one(session.clone())),
                        self.stop.child_token(),
                    );
                    tracing::debug!(server = %self.name, session = ?id, "started a per-session instance");
                    map.insert(id, Counted(instance.clone()));
                    instance
                }
            }
        };
        let limit = settings
            .backend_init_timeout
            .unwrap_or(Duration::from_secs(24 * 3600));
        let mut changed = instance.watch();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match instance.state().status.clone() {
                Status::Starting => {}
                Status::Running => return Ok(instance),
                Status::Failed { reason } => {
                    // Not kept: a server that cannot start holds no slot under the cap, and
                    // the session's next request starts a fresh instance.
                    self.forget(id, &instance);
                    return Err(format!(
                        "Server `{}` could not start this session's instance: {reason}. The \
                         session's next request tries again; fix the server's config if the \
                         reason says so.",
                        self.name
                    ));
                }
                Status::Stopped => return Err(format!("Server `{}` is stopped.", self.name)),
            }
            if !matches!(
                tokio::time::timeout_at(deadline, changed.changed()).await,
                Ok(Ok(()))
            ) {
                return Err(format!(
                    "Server `{}` did not start this session's instance within {} s \
                     (backend_init_timeout).",
                    self.name,
                    limit.as_secs_f64()
                ));
            }
        }
    }

    /// The instance of `session`, if it has one.
    pub fn instance_of(&self, session: &SessionKey) -> Option<Arc<Backend>> {
        self.by_session_map()
            .ok()
            .and_then(|map| map.get(session).map(|c| c.0.clone()))
    }

    /// Every per-session instance of this server.
    pub fn instances(&self) -> Vec<Arc<Backend>> {
        self.by_session_map()
            .map(|map| map.values().map(|c| c.0.clone()).collect())
            .unwrap_or_default()
    }

    /// Ends the instance of `session`, if it has one.
    pub fn end_session(&self, session: &SessionKey) {
        let ended = self
            .by_session_map()
            .ok()
            .and_then(|mut map| map.remove(session));
        if ended.is_some() {
            tracing::debug!(server = %self.name, ?session, "ended a per-session instance");
        }
    }

    /// Stops and forgets `instance`, if it is still the instance of `session`.
    fn forget(&self, session: SessionKey, instance: &Arc<Backend>) {
        let ended = self.by_session_map().ok().and_then(|mut map| {
            map.get(&session)
                .is_some_and(|kept| Arc::ptr_eq(&kept.0, instance))
                .then(|| map.remove(&session))
                .flatten()
        });
        if ended.is_some() {
            tracing::debug!(server = %self.name, ?session, "forgot a per-session instance that failed to start");
        }
    }

    fn by_session_map(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<SessionKey, Counted>>, ()> {
        self.instances.by_session.lock().map_err(|_| ())
    }
}
