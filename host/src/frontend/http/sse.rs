//! The legacy HTTP+SSE transport (MCP 2024-11-05) beside `/mcp`, as the official SDKs'
//! `SseServerTransport` and multi-mcp serve it:
//! - `GET /sse` opens an event stream; its first event is `endpoint`, whose data is where the
//!   client POSTs its messages: `/messages/?session_id=<id>`. Everything magg says to the
//!   client (responses, notifications, requests) follows as `message` events, with keep-alive
//!   comments between them.
//! - `POST /messages/?session_id=<id>` carries one JSON-RPC message: `202 Accepted`; `400` for
//!   a missing session id or a body that is no single message (a JSON-RPC error says which),
//!   `404` for a session that does not exist (never opened, or its stream has closed).
//!
//! Each stream is one full MCP session over the same hub as `/mcp` sessions: the same
//! handler served by rmcp over a [`Channels`] transport. Closing the stream ends the session.
//! Each takes a place under the same cap as `/mcp` sessions (`max_sessions`, see
//! [`Places`]); a stream asked for while all are taken gets `503 Service Unavailable`.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{Query, Request, State},
    http::StatusCode,
    response::{
        IntoResponse as _, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt as _, stream};
use rmcp::{
    RoleServer, ServiceExt as _,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    KEEP_ALIVE, MAX_BODY_BYTES, body,
    sessions::{Place, Places},
};
use crate::{
    frontend::MaggServer,
    hub::Hub,
    mcp::channel::Channels,
    relay::{Transport, Trust},
};

/// Where the event stream is opened.
pub const STREAM_PATH: &str = "/sse";

/// Where messages are posted, as the `endpoint` event names it.
pub const MESSAGES_PATH: &str = "/messages/";

/// The open SSE sessions: id → where the session's incoming messages go.
#[derive(Clone)]
struct Streams {
    hub: Arc<Hub>,
    stop: CancellationToken,
    /// What its sessions' clients may do (see `http.rs`).
    trust: Trust,
    /// The places sessions take, shared with `/mcp`.
    places: Places,
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
}

impl Streams {
    fn sender(&self, id: &str) -> Option<mpsc::Sender<ClientJsonRpcMessage>> {
        match self.sessions.lock() {
            Ok(sessions) => sessions.get(id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(id).cloned(),
        }
    }

    fn insert(&self, id: String, sender: mpsc::Sender<ClientJsonRpcMessage>) {
        match self.sessions.lock() {
            Ok(mut sessions) => sessions.insert(id, sender),
            Err(poisoned) => poisoned.into_inner().insert(id, sender),
        };
    }

    fn remove(&self, id: &str) {
        match self.sessions.lock() {
            Ok(mut sessions) => sessions.remove(id),
            Err(poisoned) => poisoned.into_inner().remove(id),
        };
    }
}

/// Ends the session when the stream is dropped (the client went away or magg stops), which
/// frees its place.
struct EndOnDrop {
    streams: Streams,
    id: String,
    _place: Place,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.streams.remove(&self.id);
        self.streams.places.release_memory_soon();
        tracing::debug!(session = %self.id, "SSE stream closed; session ended");
    }
}

/// The routes of the SSE transport, serving sessions over `hub` until `stop`, each in one of
/// `places`.
pub fn router(hub: Arc<Hub>, stop: CancellationToken, trust: Trust, places: Places) -> Router {
    let streams = Streams {
        hub,
        stop,
        trust,
        places,
        sessions: Arc::default(),
    };
    Router::new()
        .route(STREAM_PATH, get(open))
        .route(MESSAGES_PATH, post(message))
        .route(MESSAGES_PATH.trim_end_matches('/'), post(message))
        .with_state(streams)
}

/// A new session id: 32 hex digits, the form the Python SDK uses.
fn new_id() -> String {
    rmcp::transport::common::server_side_http::session_id().replace('-', "")
}

/// `GET /sse`: a new session and its event stream.
async fn open(State(streams): State<Streams>, request: Request) -> Response {
    let Some(place) = streams.places.take() else {
        return streams.places.refusal(None);
    };
    // The token of the request that opened the stream stands for the whole session.
    let caller = super::bearer::caller_of(&request);
    let id = new_id();
    let (transport, ends) = Channels::<RoleServer>::new(None);
    streams.insert(id.clone(), ends.incoming);
    let server = MaggServer::with_trust(streams.hub.clone(), streams.trust)
        .over(Transport::Sse)
        .with_caller(caller);
    let ct = streams.stop.child_token();
    let session = id.clone();
    tokio::spawn(async move {
        match server.serve_with_ct(transport, ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => {
                tracing::debug!(%session, "SSE session ended before initializing: {error}")
            }
        }
    });
    tracing::debug!(session = %id, "SSE stream opened");
    let endpoint = format!("{MESSAGES_PATH}?session_id={id}");
    let guard = EndOnDrop {
        streams: streams.clone(),
        id,
        _place: place,
    };
    let first = stream::once(async move { Ok(Event::default().event("endpoint").data(endpoint)) });
    let events = first
        .chain(messages(ends.outgoing, guard))
        .take_until(streams.stop.clone().cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// What magg says to the client, as `message` events; ends with the session.
fn messages(
    mut outgoing: mpsc::Receiver<ServerJsonRpcMessage>,
    guard: EndOnDrop,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::poll_fn(move |cx| {
        let _ = &guard;
        outgoing.poll_recv(cx)
    })
    .filter_map(|message| async move {
        match serde_json::to_string(&message) {
            Ok(text) => Some(Ok(Event::default().event("message").data(text))),
            Err(error) => {
                tracing::warn!("cannot write a message to an SSE client: {error}");
                None
            }
        }
    })
}

/// The query of a message POST.
#[derive(Deserialize)]
struct Target {
    session_id: Option<String>,
}

/// `POST /messages/?session_id=…`: one message into the session.
async fn message(
    State(streams): State<Streams>,
    Query(target): Query<Target>,
    request: Request,
) -> Response {
    let Some(id) = target.session_id.filter(|id| !id.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "Bad Request: session_id is required; POST to the endpoint the {STREAM_PATH} stream named in its first event"
            ),
        )
            .into_response();
    };
    let Some(session) = streams.sender(&id) else {
        return unknown(&id);
    };
    let bytes = match body::read(request.into_body(), MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    if let Some(rejection) = body::rejection(&bytes) {
        return rejection;
    }
    let message = match serde_json::from_slice::<ClientJsonRpcMessage>(&bytes) {
        Ok(message) => message,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: not a JSON-RPC message: {error}"),
            )
                .into_response();
        }
    };
    if session.send(message).await.is_err() {
        return unknown(&id);
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

fn unknown(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "Not Found: no SSE session {id:?} (it was never opened, or its stream has closed); open a new one with GET {STREAM_PATH}"
        ),
    )
        .into_response()
}
