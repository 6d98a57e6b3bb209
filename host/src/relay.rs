//! What passes between clients and backends besides a request and its response: progress,
//! logging, resource updates, and the requests a backend makes of a client (sampling,
//! elicitation, roots).
//!
//! # Design
//! - Every client session that initializes becomes a [`Session`]; [`Sessions`] holds them for
//!   fan-out (list_changed, logging) and as the fallback for backend requests no call caused.
//! - Every call that reaches a backend runs inside [`ORIGIN`]: the session, the client's
//!   request id and its progress token. The backend connection's [`Calls`] records that origin
//!   together with the request id and progress token magg gave the backend, for as long as the
//!   call is in flight.
//! - From that record a backend's progress goes back to the calling session under the client's
//!   own token, and a backend's request (sampling, elicitation, roots) goes to the session of
//!   the call that caused it: exactly for streamable-HTTP backends (which send it on that call's
//!   stream), the newest call in flight for stdio backends (nothing on a pipe says which call a
//!   request belongs to), and with no call in flight the most recently active session that can
//!   answer it. A client that lacks the capability gets the backend an error at once.
//! - Backends are shared by all sessions, so backend-wide traffic fans out: logging to every
//!   session whose level admits it, resource updates to the sessions subscribed to the URI.
//! - A per-session instance of a server (`"isolation": "session"`, see
//!   [`crate::backend::isolation`]) is given a [`Sessions`] of its own session only
//!   ([`Sessions::of_one`]): its calls in flight are all that session's, and with none in flight
//!   the fallback is that session too, so its requests and logs reach that session with
//!   certainty.
//! - A stateless client (protocol 2026-07-28) learns of changes through `subscriptions/listen`:
//!   each open listen request is a listener ([`Session::listener`]) beside the sessions, told
//!   of list changes and of updates to the URIs it asked for on its own response stream (every
//!   notification tagged with its subscription id). Listeners take no requests and no logs.

// Logging, sampling and roots are deprecated by SEP-2577 but still used by 2025-11-25 peers.
#![allow(deprecated)]

pub mod inputs;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use indexmap::IndexMap;
use rmcp::{
    ErrorData as McpError, RoleClient, RoleServer,
    model::{
        CancelledNotificationParam, ClientCapabilities, ClientResult, ErrorCode, GetExtensions,
        LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
        RequestId, ResourceUpdatedNotificationParam, ServerRequest,
    },
    service::{
        OriginatingRequestId, Peer, PeerRequestOptions, RequestContext, ServiceError,
        SubscriptionSink,
    },
};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{
    auth::{Caller, access::View},
    mcp::ListChanges,
};

/// How long a backend's progress or request waits for the call it belongs to be recorded (the
/// backend may answer before magg has noted the ids it sent).
const ATTACH_WAIT: Duration = Duration::from_millis(250);

/// How long a call's result waits for its progress notifications to reach the client.
const SETTLE_WAIT: Duration = Duration::from_millis(100);

tokio::task_local! {
    /// The client request a backend call is made for.
    pub static ORIGIN: Origin;
}

/// One connected client session.
pub struct Session {
    id: u64,
    peer: Peer<RoleServer>,
    last_active: Mutex<Instant>,
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<Vec<String>>,
    /// A client that sent no `initialize`: stateless, with no server-to-client requests.
    detached: bool,
    /// What the client may do.
    trust: Trust,
    /// How the client is connected.
    transport: Transport,
    /// The client's token, as its latest request carried it (HTTP with authentication on):
    /// who it is and what it may see.
    caller: arc_swap::ArcSwapOption<Caller>,
    /// Tools the client added to its own tools/list with tool search, by exposed name.
    added_tools: Mutex<Vec<Arc<str>>>,
    /// For a listener (a stateless client's `subscriptions/listen`): the stream its
    /// notifications go to, instead of the peer.
    sink: Option<SubscriptionSink>,
    /// For a stateless client's suspended request: the peer of its latest round (the retry),
    /// whose response stream what the request sends now (progress, logs) belongs on.
    round: Mutex<Option<Peer<RoleServer>>>,
    /// For a streamable HTTP session: its `Mcp-Session-Id` as a key, from the first request
    /// after `initialize` that carried it. It stays the same while the session sleeps and
    /// wakes (when a new [`Session`] stands for it), unlike the session's number.
    http_key: OnceLock<u128>,
    /// The HTTP front ended the session this record stands for (deleted, or idle too long):
    /// when the record closes, the session is over, not asleep.
    http_ended: std::sync::atomic::AtomicBool,
}

/// Which client session something belongs to, for what must outlive the [`Session`] record
/// (per-session backend instances): a streamable HTTP session by its `Mcp-Session-Id`, which
/// survives the session's sleep, and any other by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKey {
    /// A session by its number ([`Session::id`]).
    Number(u64),
    /// A streamable HTTP session by its `Mcp-Session-Id`, hashed.
    Http(u128),
}

/// How a client session is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// magg's standard input and output.
    Stdio,
    /// Streamable HTTP at `/mcp`.
    Http,
    /// The legacy SSE transport at `/sse`.
    Sse,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 3] = [Transport::Stdio, Transport::Http, Transport::Sse];

    /// Its name, as metrics and logs give it.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::Sse => "sse",
        }
    }
}

/// How far magg trusts a client session, as its transport decided when it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A local client on stdio, or an HTTP client whose bearer token magg checked: it may use
    /// every tool.
    Full,
    /// An HTTP client magg could not authenticate (authentication is off): the tools that
    /// start servers or change the config are refused unless the config allows them
    /// (`allow_unauthenticated_changes`).
    Unauthenticated,
}

impl Session {
    fn new(
        id: u64,
        peer: Peer<RoleServer>,
        detached: bool,
        trust: Trust,
        transport: Transport,
        sink: Option<SubscriptionSink>,
    ) -> Arc<Session> {
        Arc::new(Session {
            id,
            peer,
            last_active: Mutex::new(Instant::now()),
            log_level: Mutex::new(None),
            subscriptions: Mutex::new(Vec::new()),
            detached,
            trust,
            transport,
            caller: arc_swap::ArcSwapOption::empty(),
            added_tools: Mutex::new(Vec::new()),
            sink,
            round: Mutex::new(None),
            http_key: OnceLock::new(),
            http_ended: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Notes the streamable HTTP session this session is (its `Mcp-Session-Id`, hashed), once.
    pub fn set_http_key(&self, key: u128) {
        let _ = self.http_key.set(key);
    }

    /// Whether the HTTP session this session stands for is known: such a session may sleep,
    /// and what belongs to it ends when the HTTP session ends, not with this record.
    pub fn has_http_key(&self) -> bool {
        self.http_key.get().is_some()
    }

    /// The key of what belongs to this session beyond its record; `None` for a stateless
    /// client's one-request session.
    pub fn key(&self) -> Option<SessionKey> {
        if self.detached {
            return None;
        }
        Some(match self.http_key.get() {
            Some(&key) => SessionKey::Http(key),
            None => SessionKey::Number(self.id),
        })
    }

    /// A listener: a stateless client's open `subscriptions/listen` request, told of changes
    /// on that request's stream through `sink` (which drops what the client did not ask
    /// for). Like a stateless request's session it takes no server-to-client requests; add it
    /// to the fan-out with [`Sessions::add_listener`].
    pub fn listener(
        peer: Peer<RoleServer>,
        sink: SubscriptionSink,
        trust: Trust,
        caller: Option<Arc<Caller>>,
    ) -> Arc<Session> {
        let session = Session::new(u64::MAX, peer, true, trust, Transport::Http, Some(sink));
        session.caller.store(caller);
        session
    }

    /// Where this session's change notifications go.
    fn notifier(&self) -> Notifier {
        match &self.sink {
            Some(sink) => Notifier::Sink(sink.clone()),
            None => Notifier::Peer(self.peer.clone()),
        }
    }

    /// Sends what this stateless client's request sends from now on to `peer`: the stream of
    /// the retry that resumed it.
    pub fn follow(&self, peer: Peer<RoleServer>) {
        if let Ok(mut round) = self.round.lock() {
            *round = Some(peer);
        }
    }

    /// The peer whose stream this session's notifications go on: the latest round's, for a
    /// stateless client's suspended request; else the session's own.
    pub fn stream_peer(&self) -> Peer<RoleServer> {
        self.round
            .lock()
            .ok()
            .and_then(|round| round.clone())
            .unwrap_or_else(|| self.peer.clone())
    }

    /// Whether this is a stateless client's request that asked for log messages.
    pub fn wants_request_logs(&self) -> bool {
        self.detached && self.log_level.lock().ok().and_then(|l| *l).is_some()
    }

    /// Whether this stateless client's request asked for log messages of `level`.
    fn admits_request_log(&self, level: LoggingLevel) -> bool {
        self.log_level
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|min| rank(level) >= rank(min))
    }

    /// A stateless client's request asks for log messages from `level` up (its `_meta`'s
    /// `logLevel`); without it, it gets none.
    pub fn set_request_log_level(&self, level: Option<LoggingLevel>) {
        if let Ok(mut current) = self.log_level.lock() {
            *current = level;
        }
    }

    /// Notes the caller of the request being served (its token's identity and view).
    pub fn set_caller(&self, caller: Option<Arc<Caller>>) {
        let same = match (&*self.caller.load(), &caller) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            self.caller.store(caller);
        }
    }

    /// The caller of the session's latest request, when its token was checked.
    pub fn caller(&self) -> Option<Arc<Caller>> {
        self.caller.load_full()
    }

    /// What the caller may see, when scopes limit it.
    pub fn view(&self) -> Option<Arc<View>> {
        let caller = self.caller.load();
        (*caller).as_ref().and_then(|c| c.view.clone())
    }

    /// A session of one request, for a client that sent no `initialize` (protocol
    /// 2026-07-28 is stateless): what the backend sends for the call still finds this
    /// request, and a request the client cannot take gets the backend an error. It is in no
    /// fan-out list.
    pub fn detached(peer: Peer<RoleServer>, trust: Trust) -> Arc<Session> {
        Session::new(u64::MAX, peer, true, trust, Transport::Http, None)
    }

    /// The session's number in this magg (in the order sessions initialized), as logs and
    /// traces name it; `None` for a stateless client's one-request session.
    pub fn id(&self) -> Option<u64> {
        (!self.detached).then_some(self.id)
    }

    /// What the client may do.
    pub fn trust(&self) -> Trust {
        self.trust
    }

    /// The session's peer, to send it requests and notifications.
    pub fn peer(&self) -> &Peer<RoleServer> {
        &self.peer
    }

    /// Notes that the client just did something (for the fallback of uncaused requests).
    pub fn touch(&self) {
        if let Ok(mut last) = self.last_active.lock() {
            *last = Instant::now();
        }
    }

    fn last_active(&self) -> Instant {
        self.last_active
            .lock()
            .map(|l| *l)
            .unwrap_or_else(|_| Instant::now())
    }

    /// What the client declared it can answer (in `initialize`); none for a stateless
    /// client's one-request session, whose requests carry their own.
    pub fn capabilities(&self) -> ClientCapabilities {
        self.peer
            .peer_info()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default()
    }

    fn client_name(&self) -> String {
        self.peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .unwrap_or_else(|| "the client".to_owned())
    }

    /// Whether the client said it can answer `ask`.
    fn supports(&self, ask: Ask) -> bool {
        ask.declared_in(&self.capabilities())
    }

    fn is_closed(&self) -> bool {
        self.peer.is_transport_closed()
    }

    fn admits(&self, level: LoggingLevel) -> bool {
        match self.log_level.lock().ok().and_then(|l| *l) {
            Some(min) => rank(level) >= rank(min),
            None => true,
        }
    }

    /// The tools the client added to its own tools/list with tool search (exposed names).
    pub fn added_tools(&self) -> Vec<Arc<str>> {
        self.added_tools
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Adds tools (by exposed name) to the client's own tools/list; whether any was new. A
    /// stateless client's one-request session keeps none.
    pub fn add_tools(&self, names: impl IntoIterator<Item = Arc<str>>) -> bool {
        if self.detached {
            return false;
        }
        let Ok(mut added) = self.added_tools.lock() else {
            return false;
        };
        let before = added.len();
        for name in names {
            if !added.contains(&name) {
                added.push(name);
            }
        }
        added.len() > before
    }

    /// Whether the client is stateless (no `initialize`): it has no session to keep tools in.
    pub fn is_detached(&self) -> bool {
        self.detached
    }

    /// The log level the client set, if any.
    pub fn log_level(&self) -> Option<LoggingLevel> {
        self.log_level.lock().ok().and_then(|l| *l)
    }
}

/// The severity order of MCP's (syslog's) levels, least severe first.
pub fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// What a backend asks of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `sampling/createMessage`
    Sampling,
    /// `elicitation/create` in form mode
    ElicitForm,
    /// `elicitation/create` in URL mode
    ElicitUrl,
    /// `roots/list`
    Roots,
}

impl Ask {
    /// Whether a client with `caps` can answer this.
    pub fn declared_in(self, caps: &ClientCapabilities) -> bool {
        match self {
            Ask::Sampling => caps.sampling.is_some(),
            Ask::Roots => caps.roots.is_some(),
            Ask::ElicitForm => caps
                .elicitation
                .as_ref()
                .is_some_and(|e| e.form.is_some() || e.url.is_none()),
            Ask::ElicitUrl => caps.elicitation.as_ref().is_some_and(|e| e.url.is_some()),
        }
    }

    /// The capability a client declares to be asked this, as protocol 2026-07-28's
    /// `requiredCapabilities` names it (a member of `ClientCapabilities`).
    pub fn required(self) -> (&'static str, serde_json::Value) {
        match self {
            Ask::Sampling => ("sampling", serde_json::json!({})),
            Ask::Roots => ("roots", serde_json::json!({})),
            Ask::ElicitForm => ("elicitation", serde_json::json!({"form": {}})),
            Ask::ElicitUrl => ("elicitation", serde_json::json!({"url": {}})),
        }
    }

    /// The capability's name, for messages.
    pub fn capability(self) -> &'static str {
        match self {
            Ask::Sampling => "sampling",
            Ask::ElicitForm => "elicitation (form mode)",
            Ask::ElicitUrl => "elicitation (URL mode)",
            Ask::Roots => "roots",
        }
    }

    /// The method of the request.
    pub fn method(self) -> &'static str {
        match self {
            Ask::Sampling => "sampling/createMessage",
            Ask::ElicitForm | Ask::ElicitUrl => "elicitation/create",
            Ask::Roots => "roots/list",
        }
    }
}

/// The client request a backend call is made for.
#[derive(Clone)]
pub struct Origin {
    /// The calling session.
    pub session: Arc<Session>,
    /// The client's request id.
    pub request_id: Option<RequestId>,
    /// The client's progress token, if it asked for progress.
    pub progress_token: Option<ProgressToken>,
    /// For a stateless client's call: where a backend's request goes instead, to come back
    /// to the client as an `input_required` result (see `frontend::mrtr`).
    pub inputs: Option<mpsc::UnboundedSender<InputAsk>>,
    /// The client's writer of whole message lines, for a client on stdio: progress for its
    /// calls goes there as text, in order with their results.
    pub lines: Option<mpsc::UnboundedSender<crate::pipes::Out>>,
}

impl Origin {
    /// The origin of a request of `session` with the client's request id and progress token.
    pub fn new(
        session: Arc<Session>,
        request_id: Option<RequestId>,
        progress_token: Option<ProgressToken>,
    ) -> Origin {
        Origin {
            session,
            request_id,
            progress_token,
            inputs: None,
            lines: None,
        }
    }

    /// Sends the client a progress notification for this request (`params` carries the
    /// client's own token): as a line on a stdio client's writer, so that it stays in order
    /// with the call's result, else through the session's peer.
    pub async fn send_progress(&self, params: ProgressNotificationParam) {
        match &self.lines {
            Some(lines) => {
                let message = serde_json::json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": params,
                });
                if let Ok(line) = serde_json::to_vec(&message) {
                    let _ = lines.send(crate::pipes::Out::Line(line));
                }
            }
            None => {
                let _ = self.session.stream_peer().notify_progress(params).await;
            }
        }
    }
}

/// A backend's request of a stateless client, on its way into an `input_required` result;
/// the client's answer (from its retry's `inputResponses`) goes back on `answer`.
pub struct InputAsk {
    /// The server that asks.
    pub server: String,
    /// What is asked.
    pub ask: Ask,
    /// The request, as the backend made it.
    pub request: ServerRequest,
    /// Where the client's answer goes.
    pub answer: oneshot::Sender<Result<ClientResult, McpError>>,
}

/// What the client of the current task's request may see, when scopes limit it.
pub fn current_view() -> Option<Arc<View>> {
    ORIGIN.try_with(|o| o.session.view()).ok().flatten()
}

/// The current task's origin, if it runs for a client request.
pub fn current_origin() -> Option<Origin> {
    ORIGIN.try_with(Clone::clone).ok()
}

/// Where a session's change notifications go: its peer, or a listener's stream.
enum Notifier {
    Peer(Peer<RoleServer>),
    Sink(SubscriptionSink),
}

impl Notifier {
    /// Sends `notifications/tools/list_changed`; whether it went out.
    async fn tools_changed(&self) -> bool {
        match self {
            Notifier::Peer(peer) => peer.notify_tool_list_changed().await.is_ok(),
            Notifier::Sink(sink) => sink.notify_tool_list_changed().await.is_ok(),
        }
    }

    /// Sends `notifications/prompts/list_changed`; whether it went out.
    async fn prompts_changed(&self) -> bool {
        match self {
            Notifier::Peer(peer) => peer.notify_prompt_list_changed().await.is_ok(),
            Notifier::Sink(sink) => sink.notify_prompt_list_changed().await.is_ok(),
        }
    }

    /// Sends `notifications/resources/list_changed`; whether it went out.
    async fn resources_changed(&self) -> bool {
        match self {
            Notifier::Peer(peer) => peer.notify_resource_list_changed().await.is_ok(),
            Notifier::Sink(sink) => sink.notify_resource_list_changed().await.is_ok(),
        }
    }

    /// Sends `notifications/resources/updated` for `uri`.
    async fn resource_updated(&self, uri: String) {
        let _ = match self {
            Notifier::Peer(peer) => peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_ok(),
            Notifier::Sink(sink) => sink.notify_resource_updated(uri).await.is_ok(),
        };
    }
}

/// Every connected client session and open listener, and the resource subscriptions they
/// hold.
#[derive(Default)]
pub struct Sessions {
    list: Mutex<Vec<Arc<Session>>>,
    /// The open `subscriptions/listen` requests of stateless clients.
    listeners: Mutex<Vec<Arc<Session>>>,
    next: AtomicU64,
    /// Subscribed resources: (server, the backend's URI) → the exposed URI.
    resources: Mutex<IndexMap<(String, String), String>>,
    /// What the clients of streamable HTTP sessions that fell asleep had set, by the
    /// sessions' keys (only for those that set something): it waits there for the session's
    /// next request, and its subscriptions stay held at the backends meanwhile.
    asleep: Mutex<HashMap<u128, Slept>>,
}

/// What the client of a sleeping streamable HTTP session had set; the session's record (and
/// its peer) is gone.
#[derive(Debug, Default)]
pub struct Slept {
    /// Its `logging/setLevel` level.
    pub log_level: Option<LoggingLevel>,
    /// The exposed URIs it subscribed to.
    pub subscriptions: Vec<String>,
    /// The tools it added with tool search.
    pub added_tools: Vec<Arc<str>>,
}

impl Slept {
    /// What the client of `session` set; `None` when it set nothing.
    fn of(session: &Session) -> Option<Slept> {
        let slept = Slept {
            log_level: session.log_level(),
            subscriptions: session.subscriptions(),
            added_tools: session.added_tools(),
        };
        let any = slept.log_level.is_some()
            || !slept.subscriptions.is_empty()
            || !slept.added_tools.is_empty();
        any.then_some(slept)
    }
}

impl Sessions {
    /// Adds a session that has just initialized.
    pub fn add(&self, peer: Peer<RoleServer>, trust: Trust, transport: Transport) -> Arc<Session> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(id, peer, false, trust, transport, None);
        if let Ok(mut list) = self.list.lock() {
            list.push(session.clone());
        }
        session
    }

    /// The sessions of a per-session backend instance: `session` alone, so that what the
    /// instance sends (requests, logs) reaches that session and no other.
    pub fn of_one(session: Arc<Session>) -> Sessions {
        Sessions {
            list: Mutex::new(vec![session]),
            ..Sessions::default()
        }
    }

    /// For the sessions of a per-session instance ([`Sessions::of_one`]): `session` stands
    /// for the same client session from now on (a streamable HTTP session that woke from
    /// sleep gets a new record).
    pub fn replace_the_one(&self, session: Arc<Session>) {
        if let Ok(mut list) = self.list.lock()
            && !list.iter().any(|s| Arc::ptr_eq(s, &session))
        {
            *list = vec![session];
        }
    }

    /// How many sessions are open on each transport.
    pub fn open_by_transport(&self) -> [(Transport, usize); 3] {
        let mut counts = Transport::ALL.map(|t| (t, 0));
        if let Ok(list) = self.list.lock() {
            for session in list.iter().filter(|s| !s.is_closed()) {
                if let Some(count) = counts.iter_mut().find(|(t, _)| *t == session.transport) {
                    count.1 += 1;
                }
            }
        }
        counts
    }

    /// Removes the sessions that have closed, and returns them.
    pub fn take_closed(&self) -> Vec<Arc<Session>> {
        let Ok(mut list) = self.list.lock() else {
            return Vec::new();
        };
        let (closed, open): (Vec<_>, Vec<_>) = list.drain(..).partition(|s| s.is_closed());
        *list = open;
        closed
    }

    /// The live sessions (closed ones stay listed until [`Sessions::take_closed`] cleans up
    /// after them).
    pub fn live(&self) -> Vec<Arc<Session>> {
        match self.list.lock() {
            Ok(list) => list.iter().filter(|s| !s.is_closed()).cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// How many sessions are connected.
    pub fn count(&self) -> usize {
        self.live().len()
    }

    /// Sends the list_changed notifications to every session, each for the changes
    /// `changes_for` finds in what that session sees.
    pub fn notify(&self, mut changes_for: impl FnMut(&Session) -> ListChanges) {
        for session in self.told() {
            let changes = changes_for(&session);
            if !changes.any() {
                continue;
            }
            let notifier = session.notifier();
            tokio::spawn(async move {
                use crate::metrics::{List, count_list_changed};
                if changes.tools && notifier.tools_changed().await {
                    count_list_changed(List::tools);
                }
                if changes.prompts && notifier.prompts_changed().await {
                    count_list_changed(List::prompts);
                }
                if changes.resources && notifier.resources_changed().await {
                    count_list_changed(List::resources);
                }
            });
        }
    }

    /// Adds a listener ([`Session::listener`]) to the fan-out of list changes and resource
    /// updates, until [`Sessions::remove_listener`].
    pub fn add_listener(&self, listener: Arc<Session>) {
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.push(listener);
        }
    }

    /// Removes a listener whose `subscriptions/listen` request ended.
    pub fn remove_listener(&self, listener: &Arc<Session>) {
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.retain(|l| !Arc::ptr_eq(l, listener));
        }
    }

    /// How many `subscriptions/listen` requests are open.
    pub fn listener_count(&self) -> usize {
        self.listeners.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Everyone told of changes: the live sessions and the open listeners.
    fn told(&self) -> Vec<Arc<Session>> {
        let mut told = self.live();
        if let Ok(listeners) = self.listeners.lock() {
            told.extend(listeners.iter().cloned());
        }
        told
    }

    /// Sets `session`'s log level; returns the most verbose level any live session set.
    pub fn set_level(&self, session: &Session, level: LoggingLevel) -> LoggingLevel {
        if let Ok(mut current) = session.log_level.lock() {
            *current = Some(level);
        }
        self.most_verbose().unwrap_or(level)
    }

    /// The most verbose log level of the live sessions that set one.
    pub fn most_verbose(&self) -> Option<LoggingLevel> {
        self.live()
            .iter()
            .filter_map(|s| s.log_level())
            .min_by_key(|l| rank(*l))
    }

    /// Sends a backend's log message to every session whose level admits it, its `logger`
    /// naming the backend.
    pub fn log(&self, server: &str, mut params: LoggingMessageNotificationParam) {
        params.logger = Some(match params.logger.take() {
            Some(logger) if !logger.is_empty() => format!("{server}/{logger}"),
            _ => server.to_owned(),
        });
        for session in self.live() {
            if !session.admits(params.level) {
                continue;
            }
            let peer = session.peer.clone();
            let params = params.clone();
            tokio::spawn(async move {
                #[allow(deprecated)]
                let _ = peer.notify_logging_message(params).await;
            });
        }
    }

    /// Records that `session` subscribed to the exposed `uri`; false if it already had.
    pub fn subscribe(&self, session: &Session, uri: &str) -> bool {
        match session.subscriptions.lock() {
            Ok(mut subs) if !subs.iter().any(|s| s == uri) => {
                subs.push(uri.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Records that `session` unsubscribed from `uri`; false if it was not subscribed.
    pub fn unsubscribe(&self, session: &Session, uri: &str) -> bool {
        match session.subscriptions.lock() {
            Ok(mut subs) => {
                let before = subs.len();
                subs.retain(|s| s != uri);
                subs.len() != before
            }
            Err(_) => false,
        }
    }

    /// Whether any live session, open listener or sleeping HTTP session is subscribed to the
    /// exposed `uri`.
    pub fn anyone_subscribed(&self, uri: &str) -> bool {
        self.told().iter().any(|s| s.is_subscribed(uri))
            || self.asleep.lock().is_ok_and(|asleep| {
                asleep
                    .values()
                    .any(|s| s.subscriptions.iter().any(|u| u == uri))
            })
    }

    /// Of the closed session records `closed`, keeps those whose streamable HTTP session only
    /// fell asleep (the HTTP front has not ended it) until the session wakes or ends, and
    /// returns the rest: the sessions that are over.
    pub fn put_to_sleep(&self, closed: Vec<Arc<Session>>) -> Vec<Arc<Session>> {
        let Ok(mut asleep) = self.asleep.lock() else {
            return closed;
        };
        closed
            .into_iter()
            .filter(|session| {
                let Some(&key) = session.http_key.get() else {
                    return true;
                };
                if session.http_ended.load(Ordering::Acquire) {
                    return true;
                }
                if let Some(slept) = Slept::of(session) {
                    asleep.insert(key, slept);
                }
                false
            })
            .collect()
    }

    /// `session` is the streamable HTTP session `key` (its first request after `initialize`
    /// says so): when that session was asleep, it takes over what the client had set there
    /// (log level, resource subscriptions, tools added with tool search).
    pub fn wake(&self, session: &Session, key: u128) {
        session.set_http_key(key);
        // The record of the session's sleep: kept by the sweep, or, when the session wakes
        // before the sweep came by, still in the list.
        let slept = self
            .asleep
            .lock()
            .ok()
            .and_then(|mut a| a.remove(&key))
            .or_else(|| {
                let mut list = self.list.lock().ok()?;
                let at = list.iter().position(|s| {
                    s.http_key.get() == Some(&key) && !std::ptr::eq(Arc::as_ptr(s), session)
                })?;
                Slept::of(&list.remove(at))
            });
        let Some(slept) = slept else { return };
        if let Ok(mut level) = session.log_level.lock() {
            *level = slept.log_level;
        }
        if let Ok(mut subs) = session.subscriptions.lock() {
            *subs = slept.subscriptions;
        }
        if let Ok(mut added) = session.added_tools.lock() {
            *added = slept.added_tools;
        }
        tracing::debug!(session = session.id, "a sleeping HTTP session woke");
    }

    /// The HTTP front ended the streamable HTTP session `key`: what its client had set, when
    /// it was asleep (for the caller to release); when it is awake, its record is marked so
    /// that the sweep of closed sessions releases it.
    pub fn end_http(&self, key: u128) -> Option<Slept> {
        if let Some(slept) = self.asleep.lock().ok().and_then(|mut a| a.remove(&key)) {
            return Some(slept);
        }
        if let Ok(list) = self.list.lock() {
            for session in list.iter().filter(|s| s.http_key.get() == Some(&key)) {
                session.http_ended.store(true, Ordering::Release);
            }
        }
        None
    }

    /// Notes which backend resource the exposed `uri` is, while someone is subscribed to it.
    pub fn map_resource(&self, server: &str, original: &str, uri: &str) {
        if let Ok(mut map) = self.resources.lock() {
            map.insert((server.to_owned(), original.to_owned()), uri.to_owned());
        }
    }

    /// Forgets the mapping of `server`'s `original` URI.
    pub fn unmap_resource(&self, server: &str, original: &str) {
        if let Ok(mut map) = self.resources.lock() {
            map.shift_remove(&(server.to_owned(), original.to_owned()));
        }
    }

    /// The backend URIs of `server` someone is subscribed to (to subscribe again after a
    /// restart).
    pub fn subscribed_on(&self, server: &str) -> Vec<String> {
        let Ok(map) = self.resources.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter(|((s, _), uri)| s == server && self.anyone_subscribed(uri))
            .map(|((_, original), _)| original.clone())
            .collect()
    }

    /// A backend said its resource `original` changed: tells the subscribed sessions, under
    /// the exposed URI.
    pub fn backend_resource_updated(&self, server: &str, original: &str) {
        let uri = self
            .resources
            .lock()
            .ok()
            .and_then(|map| map.get(&(server.to_owned(), original.to_owned())).cloned());
        match uri {
            Some(uri) => self.resource_updated(&uri),
            None => tracing::debug!(
                server,
                uri = original,
                "resource update for a URI no client is subscribed to"
            ),
        }
    }

    /// Tells the sessions and listeners subscribed to the exposed `uri` that it changed.
    pub fn resource_updated(&self, uri: &str) {
        for session in self.told() {
            if !session.is_subscribed(uri) {
                continue;
            }
            let notifier = session.notifier();
            let uri = uri.to_owned();
            tokio::spawn(async move { notifier.resource_updated(uri).await });
        }
    }

    /// The session that last did something and can answer `ask`.
    fn most_recent(&self, ask: Ask) -> Option<Arc<Session>> {
        self.live()
            .into_iter()
            .filter(|s| s.supports(ask))
            .max_by_key(|s| (s.last_active(), s.id))
    }

    /// The session that last did something.
    fn most_recent_any(&self) -> Option<Arc<Session>> {
        self.live()
            .into_iter()
            .max_by_key(|s| (s.last_active(), s.id))
    }
}

impl Session {
    /// The exposed URIs the session is subscribed to.
    pub fn subscriptions(&self) -> Vec<String> {
        self.subscriptions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .is_ok_and(|subs| subs.iter().any(|s| s == uri))
    }
}

/// The calls in flight on one backend connection, with their origins.
#[derive(Default)]
pub struct Calls {
    next: AtomicU64,
    map: Mutex<IndexMap<u64, Entry>>,
    attached: Notify,
    forwarded: Notify,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_flight = self.map.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Calls")
            .field("in_flight", &in_flight)
            .finish()
    }
}

struct Entry {
    origin: Origin,
    backend_id: Option<RequestId>,
    backend_token: Option<ProgressToken>,
    last_progress: Option<f64>,
    /// Progress notifications of this call being sent to the client right now.
    forwarding: usize,
}

/// A progress notification on its way to the client; the call's result waits for it (MCP
/// has no progress after the result).
pub struct Forwarding {
    calls: Arc<Calls>,
    key: u64,
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if let Ok(mut map) = self.calls.map.lock()
            && let Some(entry) = map.get_mut(&self.key)
        {
            entry.forwarding = entry.forwarding.saturating_sub(1);
        }
        self.calls.forwarded.notify_waiters();
    }
}

/// A call recorded in [`Calls`]; dropping it forgets the call.
pub struct CallGuard {
    calls: Arc<Calls>,
    key: u64,
}

impl CallGuard {
    /// Notes the request id and progress token magg gave the backend for this call.
    pub fn attach(&self, id: RequestId, token: Option<ProgressToken>) {
        if let Ok(mut map) = self.calls.map.lock()
            && let Some(entry) = map.get_mut(&self.key)
        {
            entry.backend_id = Some(id);
            entry.backend_token = token;
        }
        self.calls.attached.notify_waiters();
    }

    /// Lets the progress notifications the backend sent before its result reach the client
    /// first (each is handled in a task of its own), waiting a little at most; any that come
    /// later are dropped.
    pub async fn settle(&self) {
        let wants_progress = self.calls.map.lock().is_ok_and(|map| {
            map.get(&self.key)
                .is_some_and(|e| e.origin.progress_token.is_some())
        });
        if !wants_progress {
            return; // nothing to wait for, on most calls
        }
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        loop {
            let forwarded = self.calls.forwarded.notified();
            tokio::pin!(forwarded);
            forwarded.as_mut().enable();
            let busy = self
                .calls
                .map
                .lock()
                .ok()
                .and_then(|map| map.get(&self.key).map(|e| e.forwarding))
                .unwrap_or(0);
            if busy == 0 || tokio::time::timeout_at(deadline, forwarded).await.is_err() {
                break;
            }
        }
        if let Ok(mut map) = self.calls.map.lock() {
            // Answered: progress that arrives now is too late for the client.
            if let Some(entry) = map.get_mut(&self.key) {
                entry.backend_token = None;
            }
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.calls.map.lock() {
            map.shift_remove(&self.key);
        }
    }
}

impl Calls {
    /// Records a call for `origin` before it is sent.
    pub fn begin(self: &Arc<Self>, origin: Origin) -> CallGuard {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                key,
                Entry {
                    origin,
                    backend_id: None,
                    backend_token: None,
                    last_progress: None,
                    forwarding: 0,
                },
            );
        }
        CallGuard {
            calls: self.clone(),
            key,
        }
    }

    /// Waits (briefly) for a recorded call that `find` matches.
    async fn wait_for<T>(
        &self,
        find: impl Fn(&mut IndexMap<u64, Entry>) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + ATTACH_WAIT;
        loop {
            let notified = self.attached.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.map.lock().ok().and_then(|mut map| find(&mut map)) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The client-side form of a backend's progress notification: the client's token, for
    /// the session that made the call. `None` when no call owns the token, the client asked
    /// for no progress, or the value does not increase (notifications may arrive reordered;
    /// MCP has progress only increase).
    pub async fn progress(
        self: &Arc<Self>,
        params: &ProgressNotificationParam,
    ) -> Option<(Origin, ProgressNotificationParam, Forwarding)> {
        self.wait_for(|map| {
            let (&key, entry) = map
                .iter_mut()
                .find(|(_, e)| e.backend_token.as_ref() == Some(&params.progress_token))?;
            let Some(token) = entry.origin.progress_token.clone() else {
                return Some(None); // the client asked for no progress
            };
            if entry
                .last_progress
                .is_some_and(|last| params.progress <= last)
            {
                return Some(None);
            }
            entry.last_progress = Some(params.progress);
            entry.forwarding += 1;
            let mut out = params.clone();
            out.progress_token = token;
            let ticket = Forwarding {
                calls: self.clone(),
                key,
            };
            Some(Some((entry.origin.clone(), out, ticket)))
        })
        .await
        .flatten()
    }

    async fn by_backend_id(&self, id: &RequestId) -> Option<Origin> {
        self.wait_for(|map| {
            map.values()
                .find(|e| e.backend_id.as_ref() == Some(id))
                .map(|e| e.origin.clone())
        })
        .await
    }

    /// The newest call in flight. Never another session's for lack of the capability: a
    /// request goes to the caller or fails, so one client's prompt never reaches another
    /// client's model.
    /// The origin of the newest call in flight that is not a lane call (whose backend's log
    /// messages come by the lane).
    fn newest_off_lane(&self) -> Option<Origin> {
        let map = self.map.lock().ok()?;
        let (_, entry) = map.iter().next_back()?;
        let lane =
            matches!(&entry.backend_id, Some(RequestId::String(id)) if id.starts_with("magg:"));
        (!lane).then(|| entry.origin.clone())
    }

    fn newest(&self) -> Option<Origin> {
        let map = self.map.lock().ok()?;
        map.values().next_back().map(|e| e.origin.clone())
    }
}

/// Sends a backend's log message to the stateless client whose request it came during (the
/// request it was sent on, for a backend reached by URL; the newest in flight, for a pipe
/// without a lane), on that request's response stream, when the request asked for log messages
/// of its level (`logLevel` in its `_meta`). A lane call gets its log messages from the lane,
/// in order with its result ([`log_line_to_stateless`]); sessions get backends' log messages
/// from [`Sessions::log`].
pub async fn log_to_stateless(
    calls: &Calls,
    server: &str,
    params: &LoggingMessageNotificationParam,
    extensions: &rmcp::model::Extensions,
) {
    let origin = match extensions.get::<rmcp::service::InboundStreamOrigin>() {
        Some(rmcp::service::InboundStreamOrigin::OutboundRequest(id)) => {
            calls.by_backend_id(id).await
        }
        _ => calls.newest_off_lane(),
    };
    if let Some(origin) = origin {
        send_stateless_log(&origin, server, params.clone()).await;
    }
}

/// [`log_to_stateless`] for a log message `line` (JSON text) a lane call's backend sent.
pub async fn log_line_to_stateless(origin: &Origin, server: &str, line: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Note {
        params: LoggingMessageNotificationParam,
    }
    if let Ok(Note { params }) = serde_json::from_slice::<Note>(line) {
        send_stateless_log(origin, server, params).await;
    }
}

async fn send_stateless_log(
    origin: &Origin,
    server: &str,
    mut params: LoggingMessageNotificationParam,
) {
    if !origin.session.detached || !origin.session.admits_request_log(params.level) {
        return;
    }
    params.logger = Some(match params.logger.take() {
        Some(logger) if !logger.is_empty() => format!("{server}/{logger}"),
        _ => server.to_owned(),
    });
    #[allow(deprecated)] // logging: what 2025-11-25 servers send
    let _ = origin
        .session
        .stream_peer()
        .notify_logging_message(params)
        .await;
}

/// Relays a backend's request of a client: finds the session it belongs to, checks that the
/// client can answer it, sends it there and returns the client's answer (or error).
pub async fn ask_client(
    sessions: &Sessions,
    calls: &Calls,
    server: &str,
    ask: Ask,
    request: ServerRequest,
    context: RequestContext<RoleClient>,
) -> Result<ClientResult, McpError> {
    let stream = context
        .extensions
        .get::<rmcp::service::InboundStreamOrigin>()
        .cloned();
    let origin = match stream {
        Some(rmcp::service::InboundStreamOrigin::OutboundRequest(id)) => {
            calls.by_backend_id(&id).await
        }
        _ => None,
    }
    .or_else(|| calls.newest());
    let (session, request_id, inputs) = match origin {
        Some(origin) => (origin.session, origin.request_id, origin.inputs),
        None => {
            let session = sessions
                .most_recent(ask)
                .or_else(|| sessions.most_recent_any());
            match session {
                Some(session) => (session, None, None),
                None => {
                    return Err(McpError::new(
                        ErrorCode::METHOD_NOT_FOUND,
                        format!(
                            "{} from server `{server}`: no client is connected to magg to \
                             answer it",
                            ask.method()
                        ),
                        None,
                    ));
                }
            }
        }
    };
    if let Some(inputs) = inputs {
        return ask_stateless(&inputs, server, ask, request, context).await;
    }
    ask_session(
        &session,
        request_id,
        server,
        ask,
        request,
        context.meta.clone(),
        &context.ct,
    )
    .await
}

/// Sends `session`'s client the request `ask` of `server` (on the stream of the client's
/// request `request_id`, when there is one) and waits for its answer, or for `ct`: then the
/// client is told the request is cancelled. A client that opened no session, or did not
/// declare the capability, gets the backend an error at once.
pub async fn ask_session(
    session: &Arc<Session>,
    request_id: Option<RequestId>,
    server: &str,
    ask: Ask,
    mut request: ServerRequest,
    meta: rmcp::model::RequestMetaObject,
    ct: &tokio_util::sync::CancellationToken,
) -> Result<ClientResult, McpError> {
    if session.detached {
        return Err(McpError::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "{} from server `{server}`: the calling client opened no session (protocol \
                 2026-07-28 is stateless), so it takes no server-to-client requests",
                ask.method()
            ),
            None,
        ));
    }
    if !session.supports(ask) {
        // A client with elicitation but not this mode has the method, not the parameters.
        let has_elicitation = session.capabilities().elicitation.is_some();
        let code = match ask {
            Ask::ElicitForm | Ask::ElicitUrl if has_elicitation => ErrorCode::INVALID_PARAMS,
            _ => ErrorCode::METHOD_NOT_FOUND,
        };
        return Err(McpError::new(
            code,
            format!(
                "{} from server `{server}`: the client ({}) did not declare the {} capability, \
                 so magg cannot ask it",
                ask.method(),
                session.client_name(),
                ask.capability()
            ),
            None,
        ));
    }
    if let Some(id) = request_id {
        // Streamable HTTP sends it on the stream of the client request that caused it.
        request.extensions_mut().insert(OriginatingRequestId(id));
    }
    let peer = session.peer.clone();
    // Sent from a task of its own: inside this handler rmcp would tag the request with the
    // backend's request id instead of the client's.
    let handle = tokio::spawn(async move {
        peer.send_request_with_option(request, PeerRequestOptions::no_options().with_meta(meta))
            .await
    })
    .await
    .map_err(|e| McpError::internal_error(format!("relaying {}: {e}", ask.method()), None))?
    .map_err(|e| client_error(ask, server, e))?;
    let client_id = handle.id.clone();
    tokio::select! {
        answer = handle.await_response() => answer.map_err(|e| client_error(ask, server, e)),
        () = ct.cancelled() => {
            // The backend gave up on its request: tell the client.
            let params = CancelledNotificationParam::new(
                Some(client_id),
                Some(format!("server `{server}` cancelled its request")),
            );
            let peer = session.peer.clone();
            tokio::spawn(async move {
                let _ = peer.notify_cancelled(params).await;
            });
            Err(McpError::new(ErrorCode::INTERNAL_ERROR, "cancelled", None))
        }
    }
}

/// Hands a backend's request to the stateless call it belongs to, and waits for the answer
/// the client's retry brings.
async fn ask_stateless(
    inputs: &mpsc::UnboundedSender<InputAsk>,
    server: &str,
    ask: Ask,
    request: ServerRequest,
    context: RequestContext<RoleClient>,
) -> Result<ClientResult, McpError> {
    let (answer, answered) = oneshot::channel();
    let gone = || {
        McpError::internal_error(
            format!(
                "{} from server `{server}`: the client's call ended before it answered",
                ask.method()
            ),
            None,
        )
    };
    inputs
        .send(InputAsk {
            server: server.to_owned(),
            ask,
            request,
            answer,
        })
        .map_err(|_| gone())?;
    tokio::select! {
        answer = answered => answer.map_err(|_| gone())?,
        () = context.ct.cancelled() => {
            Err(McpError::new(ErrorCode::INTERNAL_ERROR, "cancelled", None))
        }
    }
}

fn client_error(ask: Ask, server: &str, e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(error) => error,
        ServiceError::TransportClosed => McpError::internal_error(
            format!(
                "{} from server `{server}`: the client's session closed before it answered",
                ask.method()
            ),
            None,
        ),
        other => McpError::internal_error(
            format!("{} from server `{server}` failed: {other}", ask.method()),
            None,
        ),
    }
}
