//! How many HTTP sessions magg holds, and for how long.
//!
//! - **A cap** (`max_sessions`): streamable HTTP sessions at `/mcp` and legacy SSE sessions
//!   share one set of [`Places`]. A session takes a place when it is created and gives it back
//!   when it ends. A client that would open one more gets `503 Service Unavailable` with
//!   `Retry-After` and a JSON-RPC error naming the limit, the setting that raises it and how
//!   long idle sessions last ([`Places::refusal`]); open sessions are not touched.
//! - **Idle sessions end** (`session_idle_timeout`): rmcp's session worker ends a session that
//!   has had no request for that long, and the session is then closed here like one the client
//!   ended, which frees its place.
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
    time::Duration,
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
            ServerSseMessage, SessionId, SessionManager,
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

/// rmcp's in-memory session manager, with each session holding a [`Place`].
pub struct CappedSessions {
    inner: LocalSessionManager,
    places: Places,
    held: Mutex<HashMap<SessionId, Place>>,
}

impl CappedSessions {
    /// Sessions under `places`, each ended after `idle` without a request (`None`: never).
    pub fn new(places: Places, idle: Option<Duration>) -> CappedSessions {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = idle;
        CappedSessions {
            inner,
            places,
            held: Mutex::default(),
        }
    }

    fn hold(&self, id: SessionId, place: Place) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(id, place);
    }

    fn free(&self, id: &SessionId) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(id).is_some()
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
        self.hold(id.clone(), place);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        if self.free(id) {
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
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
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
