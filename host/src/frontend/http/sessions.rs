//! How many HTTP sessions magg holds, and for how long.
//!
//! - **A cap** (`max_sessions`): streamable HTTP sessions at `/mcp` and legacy SSE sessions
//!   share one set of [`Places`]. A session takes a place when it is created and gives it back
//!   when it ends. A client that would open one more gets `503 Service Unavailable` with
//!   `Retry-After` and a JSON-RPC error naming the limit, the setting that raises it and how
//!   long idle sessions last ([`Places::refusal`]); open sessions are not touched.
//! - **Idle sessions sleep, then end.** A session with no request and no open response stream
//!   for [`HIBERNATE_AFTER`] (or half of `session_idle_timeout`, when that is shorter) falls
//!   asleep: rmcp's worker for it (its channels and tasks, some 65 KiB) ends, and only what
//!   the client sent in `initialize` is kept ([`Sleeping`], about a KiB). Its next request
//!   wakes it: rmcp restores the session under the same id from that record and replays the
//!   handshake, so the client notices nothing. A session idle for `session_idle_timeout` ends
//!   for good, which frees its place; so does one the client ends (DELETE).
//! - **Memory goes back**: the heap a session held is handed back to the system shortly after
//!   sessions end (glibc otherwise keeps the freed pages for the life of the process).
//!
//! The place of a new `/mcp` session is reserved by the edge middleware before rmcp sees the
//! `initialize` request (so the refusal is a clear 503, decided before any work), and handed
//! to [`CappedSessions::create_session`] through the task-local [`RESERVED`]: rmcp's service
//! runs inside the middleware's future, on the same task.

use std::{
    cell::Cell,
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ErrorCode, ErrorData, JsonRpcError, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::session::{
            RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionState,
            SessionStore, SessionStoreError,
            local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
        },
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a refused client is asked to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long after a session ends its freed memory is handed back, so that many sessions
/// ending together cost one pass over the heap.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// How long a session with no request and no open stream stays awake.
pub const HIBERNATE_AFTER: Duration = Duration::from_secs(30);

/// The longest time between two looks for sessions to put to sleep or end.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

tokio::task_local! {
    /// The place reserved for the session the current `initialize` request creates.
    pub static RESERVED: Cell<Option<Place>>;
}

/// One session's place under the cap; dropping it frees the place.
pub struct Place {
    _permit: OwnedSemaphorePermit,
}

/// The places for HTTP sessions (streamable HTTP and SSE together).
#[derive(Clone)]
pub struct Places {
    free: Arc<Semaphore>,
    /// `max_sessions`; 0 when there is no limit.
    limit: usize,
    /// `session_idle_timeout`, for the refusal's message.
    idle: Option<Duration>,
    /// Whether a hand-back of freed memory is already scheduled.
    release_pending: Arc<AtomicBool>,
}

impl Places {
    /// `limit` places (0: as many as there can be); `idle` is how long idle sessions last.
    pub fn new(limit: usize, idle: Option<Duration>) -> Places {
        let places = if limit == 0 {
            Semaphore::MAX_PERMITS
        } else {
            limit.min(Semaphore::MAX_PERMITS)
        };
        Places {
            free: Arc::new(Semaphore::new(places)),
            limit,
            idle,
            release_pending: Arc::default(),
        }
    }

    /// A place for a new session, if one is free.
    pub fn take(&self) -> Option<Place> {
        self.free
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| Place { _permit: permit })
    }

    /// `503 Service Unavailable` for a client that wants a session while all places are taken:
    /// a JSON-RPC error (with the request's `id` when it has one) that says why and what to do.
    pub fn refusal(&self, id: Option<rmcp::model::RequestId>) -> Response {
        let idle = match self.idle {
            Some(idle) => format!(
                "idle sessions end after {} s without a request",
                idle.as_secs()
            ),
            None => "idle sessions do not end (session_idle_timeout is 0)".to_owned(),
        };
        let message = format!(
            "Service Unavailable: magg already holds {} sessions, its limit; {idle}. Try again \
             later, end sessions you no longer use (HTTP DELETE), or raise the limit with the \
             max_sessions setting (MAGG_MAX_SESSIONS)",
            self.limit
        );
        tracing::warn!("refused a new session: {message}");
        let error = ErrorData::new(ErrorCode(-32000), message, None);
        let body = serde_json::to_vec(&JsonRpcError::new(id, error)).unwrap_or_default();
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
        response
    }

    /// Hands the memory freed by ended sessions back to the system, soon and once for all the
    /// sessions that end meanwhile.
    pub fn release_memory_soon(&self) {
        if self.release_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending = self.release_pending.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RELEASE_AFTER).await;
            pending.store(false, Ordering::Release);
            crate::hub::release_free_memory();
        });
    }
}

/// Why a session could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// Every place is taken (a session created without going through the edge middleware).
    #[error("magg holds as many sessions as max_sessions allows")]
    Full,
    /// rmcp's session manager failed.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// What magg holds of one session beside rmcp's worker. It lives inline in one table (no
/// allocation of its own), so that the pages freed when a session falls asleep hold nothing
/// of it and go back to the system.
struct Held {
    /// Its place under the cap.
    _place: Place,
    /// Its id while awake (to end its worker); dropped when it falls asleep.
    id: Option<SessionId>,
    /// When its last request came, or its last stream closed.
    last: Instant,
    /// Its response streams open now (requests in flight, a GET stream).
    open: usize,
    /// Its worker has ended to save memory; the next request brings it back.
    asleep: bool,
    /// Its worker is being ended to put it to sleep (rmcp then reports the end).
    falling_asleep: bool,
}

/// A session id as a table key: 128 bits of its hash, held inline.
type Key = u128;

/// The key of the session `id` (what [`crate::relay::SessionKey::Http`] holds).
pub(crate) fn key(id: &str) -> Key {
    use std::hash::{BuildHasher as _, Hasher as _};
    // Two fixed-key hashes: the same id always gives the same key, in any table.
    let half = |seed: u64| {
        let mut hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        hasher.write_u64(seed);
        hasher.write(id.as_bytes());
        hasher.finish()
    };
    (u128::from(half(0x6d61_6767)) << 64) | u128::from(half(0x7365_7373))
}

/// The sessions magg holds.
type HeldMap = Arc<Mutex<HashMap<Key, Held>>>;

fn lock(held: &HeldMap) -> std::sync::MutexGuard<'_, HashMap<Key, Held>> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the client of each session sent in `initialize`, for waking sleeping sessions: the
/// session store rmcp restores sessions from. Each is kept as its JSON text in one shared
/// buffer, not as a tree of small allocations scattered over the heap.
#[derive(Default)]
pub struct Sleeping(Mutex<Arena>);

/// Byte strings by key, in one buffer.
#[derive(Default)]
struct Arena {
    bytes: Vec<u8>,
    at: HashMap<Key, (usize, usize)>,
    /// Bytes no key points to any more.
    garbage: usize,
}

impl Arena {
    fn put(&mut self, key: Key, data: &[u8]) {
        self.remove(key);
        self.at.insert(key, (self.bytes.len(), data.len()));
        self.bytes.extend_from_slice(data);
    }

    fn get(&self, key: Key) -> Option<&[u8]> {
        let (at, len) = *self.at.get(&key)?;
        self.bytes.get(at..at + len)
    }

    fn remove(&mut self, key: Key) {
        if let Some((_, len)) = self.at.remove(&key) {
            self.garbage += len;
        }
        if self.at.is_empty() {
            *self = Arena::default();
        } else if self.garbage > 64 * 1024 && self.garbage > self.bytes.len() / 2 {
            let mut bytes = Vec::with_capacity(self.bytes.len() - self.garbage);
            for (at, len) in self.at.values_mut() {
                let start = bytes.len();
                bytes.extend_from_slice(&self.bytes[*at..*at + *len]);
                *at = start;
            }
            self.bytes = bytes;
            self.garbage = 0;
        }
    }
}

impl Sleeping {
    fn arena(&self) -> std::sync::MutexGuard<'_, Arena> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, id: &str) {
        self.arena().remove(key(id));
    }
}

#[async_trait::async_trait]
impl SessionStore for Sleeping {
    async fn load(&self, id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let arena = self.arena();
        let Some(bytes) = arena.get(key(id)) else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(bytes)?))
    }

    async fn store(&self, id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let bytes = serde_json::to_vec(state)?;
        self.arena().put(key(id), &bytes);
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), SessionStoreError> {
        self.forget(id);
        Ok(())
    }
}

/// rmcp's in-memory session manager, with each session holding a [`Place`], put to sleep
/// when idle and ended when idle for long.
pub struct CappedSessions {
    inner: LocalSessionManager,
    places: Places,
    held: HeldMap,
    sleeping: Arc<Sleeping>,
    /// How long an idle session stays awake (`None`: always).
    hibernate_after: Option<Duration>,
    /// How long an idle session lasts (`None`: for ever).
    idle: Option<Duration>,
    /// Told the key of each session that ends for good (not of one that falls asleep).
    ended: Box<dyn Fn(Key) + Send + Sync>,
}

impl CappedSessions {
    /// Sessions under `places`, each asleep after [`HIBERNATE_AFTER`] (or `idle / 2`) without
    /// a request and ended after `idle` (`None`: never); `ended` is told the key of each
    /// session that ends.
    pub fn new(
        places: Places,
        idle: Option<Duration>,
        ended: Box<dyn Fn(Key) + Send + Sync>,
    ) -> CappedSessions {
        let mut inner = LocalSessionManager::default();
        // A backstop: a worker with nothing to do for this long ends, even with a stream
        // open that nobody reads any more.
        inner.session_config.keep_alive = idle;
        let hibernate_after = match idle {
            Some(idle) => Some(HIBERNATE_AFTER.min(idle / 2)),
            None => Some(HIBERNATE_AFTER),
        };
        CappedSessions {
            inner,
            places,
            held: HeldMap::default(),
            sleeping: Arc::default(),
            hibernate_after,
            idle,
            ended,
        }
    }

    /// The session store rmcp keeps sleeping sessions' handshakes in.
    pub fn store(&self) -> Arc<Sleeping> {
        self.sleeping.clone()
    }

    /// Puts idle sessions to sleep and ends long-idle ones, until `stop`.
    pub fn start_sweeping(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let every = [self.hibernate_after, self.idle]
            .into_iter()
            .flatten()
            .map(|d| d / 4)
            .fold(SWEEP_EVERY, Duration::min)
            .max(Duration::from_millis(50));
        let sessions = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                let Some(sessions) = sessions.upgrade() else {
                    return;
                };
                sessions.sweep().await;
            }
        });
    }

    /// One look at every session: the idle ones fall asleep, the long-idle ones end.
    async fn sweep(&self) {
        let now = Instant::now();
        let idle_for = |held: &Held, limit: Option<Duration>| {
            held.open == 0 && limit.is_some_and(|limit| now.duration_since(held.last) >= limit)
        };
        // (the session's key, its id while awake)
        let (mut to_sleep, mut to_end) = (Vec::new(), Vec::new());
        {
            let mut held = lock(&self.held);
            held.retain(|key, h| {
                if idle_for(h, self.idle) {
                    to_end.push((*key, h.id.take()));
                    return false;
                }
                if !h.asleep && !h.falling_asleep && idle_for(h, self.hibernate_after) {
                    h.falling_asleep = true;
                    if let Some(id) = h.id.take() {
                        to_sleep.push(id);
                    }
                }
                true
            });
        }
        let ended = !to_end.is_empty();
        for (key, id) in to_end {
            (self.ended)(key);
            self.sleeping.arena().remove(key);
            if let Some(id) = id {
                let _ = self.inner.close_session(&id).await;
                tracing::debug!(session = %id, "HTTP session ended after being idle");
            }
        }
        for id in &to_sleep {
            let _ = self.inner.close_session(id).await;
            tracing::debug!(session = %id, "idle HTTP session asleep");
        }
        if ended || !to_sleep.is_empty() {
            self.places.release_memory_soon();
        }
    }

    /// Whether magg holds the session `id`, awake or asleep.
    pub fn knows(&self, id: &SessionId) -> bool {
        lock(&self.held).contains_key(&key(id))
    }

    /// Notes a request of session `id`.
    fn touch(&self, id: &SessionId) {
        if let Some(h) = lock(&self.held).get_mut(&key(id)) {
            h.last = Instant::now();
        }
    }

    /// `stream`, counted as open for session `id` while it lasts.
    fn counted<S: Stream>(&self, id: &SessionId, stream: S) -> Counted<S> {
        let key = key(id);
        if let Some(h) = lock(&self.held).get_mut(&key) {
            h.open += 1;
            h.last = Instant::now();
        }
        Counted {
            inner: Box::pin(stream),
            _open: OpenStream {
                held: self.held.clone(),
                key,
            },
        }
    }
}

/// A response stream of a session, counted as open until dropped.
pub struct Counted<S> {
    inner: std::pin::Pin<Box<S>>,
    _open: OpenStream,
}

impl<S: Stream> Stream for Counted<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Counts one open stream of a session; dropping it closes the stream.
struct OpenStream {
    held: HeldMap,
    key: Key,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        if let Some(h) = lock(&self.held).get_mut(&self.key) {
            h.open = h.open.saturating_sub(1);
            h.last = Instant::now();
        }
    }
}

impl SessionManager for CappedSessions {
    type Error = SessionsError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let reserved = RESERVED.try_with(Cell::take).ok().flatten();
        let place = reserved
            .or_else(|| self.places.take())
            .ok_or(SessionsError::Full)?;
        let (id, transport) = self.inner.create_session().await?;
        lock(&self.held).insert(
            key(&id),
            Held {
                _place: place,
                id: Some(id.clone()),
                last: Instant::now(),
                open: 0,
                asleep: false,
                falling_asleep: false,
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        let ended = {
            let mut held = lock(&self.held);
            let key = key(id);
            match held.get_mut(&key) {
                // The worker of a session put to sleep has ended: the session stays.
                Some(h) if h.falling_asleep => {
                    h.falling_asleep = false;
                    h.asleep = true;
                    false
                }
                Some(_) => held.remove(&key).is_some(),
                None => false,
            }
        };
        if ended {
            (self.ended)(key(id));
            self.sleeping.forget(id);
            tracing::debug!(session = %id, "HTTP session ended");
            self.places.release_memory_soon();
        }
        Ok(closed?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner.create_stream(id, message).await?;
        Ok(self.counted(id, stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner.create_standalone_stream(id).await?;
        Ok(self.counted(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner.resume(id, last_event_id).await?;
        Ok(self.counted(id, stream))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        // Only a session magg put to sleep wakes; the store holds no other.
        let asleep = lock(&self.held).get(&key(&id)).is_some_and(|h| h.asleep);
        if !asleep {
            return Ok(RestoreOutcome::NotSupported);
        }
        let outcome = self.inner.restore_session(id.clone()).await?;
        if let RestoreOutcome::Restored(_) = &outcome
            && let Some(h) = lock(&self.held).get_mut(&key(&id))
        {
            h.asleep = false;
            h.id = Some(id.clone());
            h.last = Instant::now();
            tracing::debug!(session = %id, "HTTP session woke up");
        }
        Ok(outcome)
    }
}

/// Whether `body` is an `initialize` request (the one request that opens a session), and its
/// id.
pub fn initialize_id(body: &[u8]) -> Option<Option<rmcp::model::RequestId>> {
    #[derive(serde::Deserialize)]
    struct Head {
        method: Option<String>,
        id: Option<rmcp::model::RequestId>,
    }
    let head = serde_json::from_slice::<Head>(body).ok()?;
    (head.method.as_deref() == Some("initialize")).then_some(head.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_keeps_every_live_entry_through_removals_and_compaction() {
        let mut arena = Arena::default();
        let big = vec![b'x'; 40 * 1024];
        for i in 0..8u128 {
            arena.put(i, &[&big[..], &i.to_le_bytes()].concat());
        }
        // Removing most of them compacts the buffer; the rest read back as written.
        for i in 0..6u128 {
            arena.remove(i);
        }
        assert!(
            arena.bytes.len() <= 3 * (big.len() + 16),
            "compacted: {}",
            arena.bytes.len()
        );
        for i in 6..8u128 {
            let got = arena.get(i).expect("kept");
            assert_eq!(&got[big.len()..], &i.to_le_bytes());
        }
        assert_eq!(arena.get(0), None);
        // Writing a key again replaces it; removing the last empties the buffer.
        arena.put(7, b"again");
        assert_eq!(arena.get(7), Some(&b"again"[..]));
        arena.remove(6);
        arena.remove(7);
        assert!(arena.bytes.is_empty() && arena.at.is_empty());
    }

    #[test]
    fn keys_are_the_same_for_the_same_id_and_differ_between_ids() {
        let a = "0b7e2f1c-93d4-4c1e-8f3a-2d6b9c0e4a11";
        assert_eq!(key(a), key(a));
        assert_ne!(key(a), key("0b7e2f1c-93d4-4c1e-8f3a-2d6b9c0e4a12"));
    }
}
