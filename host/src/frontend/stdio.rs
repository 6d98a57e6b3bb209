//! The stdio frontend: one MCP session on magg's stdin and stdout.
//!
//! # Design
//! - Every line from the client is read here once. A `tools/call` goes to the call route
//!   ([`crate::call`]) as the text it is, and its reply is written back as a line; the
//!   client's `notifications/cancelled` for it cancels it there. A `tools/list` is answered
//!   with the page's text as the catalog holds it. Everything else (initialize, other lists,
//!   resources, prompts, notifications, answers to backends' requests) goes to rmcp's server
//!   over an in-memory pipe.
//! - Bad input gets the protocol's answer and magg keeps serving: what is not JSON (not UTF-8,
//!   nested deeper than [`MAX_DEPTH`] levels, two messages on one line) gets a -32700 parse
//!   error, a batch or a message over [`pipes::MAX_MESSAGE_BYTES`] a -32600 invalid request, and
//!   malformed tools/call params -32602.
//! - Before `initialize`, requests go to rmcp (which answers `initialize`, `ping` and the
//!   stateless requests of protocol 2026-07-28), and so does `notifications/cancelled` (how a
//!   stateless client ends a request, `subscriptions/listen` among them); other notifications
//!   and stray responses are dropped.
//! - Every request gets exactly one response (none when the client cancelled it, as MCP asks).
//! - Both paths write whole lines to stdout through one writer, so messages never interleave
//!   mid-line; a call's progress goes through that writer too, before its result.
//! - Once magg drains before it stops ([`Hub::is_draining`]), every new request gets an error
//!   saying so ([`shutting_down`]); answers to the backends' requests and notifications still
//!   pass, so the calls in flight can finish. A tools/call and a tools/list count as work in
//!   flight until their answer is queued, and [`Writer::flush`] waits until what was queued is
//!   written.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServiceExt as _,
    model::RequestId,
    service::{RunningService, ServerInitializeError},
    transport::async_rw::AsyncRwTransport,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncRead, AsyncWriteExt, BufReader, DuplexStream, WriteHalf},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use super::MaggServer;
use crate::{
    call::{self, CallRequest, Reply},
    hub::Hub,
    pipes::{self, Out},
    relay::{ORIGIN, Origin, Session},
    telemetry,
};

const DUPLEX_BYTES: usize = 256 * 1024;

/// How large the pieces of a tools/list page are that go to the writer in turn.
const PAGE_PIECE_BYTES: usize = 64 * 1024;

/// The deepest nesting of arrays and objects magg reads (as serde_json and rmcp do).
pub const MAX_DEPTH: usize = 128;

/// The client's tools/calls in flight: request id (as JSON text) → the call's cancellation.
type InFlight = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// The session's writer to stdout, kept to wait for what was queued to be written.
pub struct Writer(mpsc::UnboundedSender<Out>);

impl Writer {
    /// Waits until every line queued so far has been written to stdout (or stdout has failed).
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.0.send(Out::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

/// The error a request gets while magg drains before it stops.
pub fn shutting_down() -> McpError {
    McpError::new(
        rmcp::model::ErrorCode(-32000),
        "magg is shutting down: it is finishing the calls in flight and takes no new requests; \
         send this again once magg has restarted",
        None,
    )
}

/// Serves one MCP session on this process's stdin and stdout; its writer comes along, to
/// flush before magg exits.
pub async fn serve(
    server: MaggServer,
) -> Result<(RunningService<RoleServer, MaggServer>, Writer), ServerInitializeError> {
    let hub = server.hub.clone();
    let session = server.session_slot();
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    pipes::widen_pipe(1);
    let (rmcp_end, our_end) = tokio::io::duplex(DUPLEX_BYTES);
    let (rmcp_read, rmcp_write) = tokio::io::split(rmcp_end);
    let (from_rmcp, to_rmcp) = tokio::io::split(our_end);
    let (out, lines) = mpsc::unbounded_channel();
    tokio::spawn(pipes::write_lines(stdout, lines));
    tokio::spawn(pipes::pump_lines(from_rmcp, out.clone()));
    let writer = Writer(out.clone());
    tokio::spawn(read_client(stdin, to_rmcp, out, hub, session));
    let transport = AsyncRwTransport::new_server(rmcp_read, rmcp_write)
        .with_max_line_length(pipes::MAX_MESSAGE_BYTES);
    Ok((server.serve(transport).await?, writer))
}

/// What the frontend needs to serve the client's calls.
struct Client {
    hub: Arc<Hub>,
    out: mpsc::UnboundedSender<Out>,
    in_flight: InFlight,
    session: Arc<OnceLock<Arc<Session>>>,
}

async fn read_client<R: AsyncRead + Unpin>(
    stdin: R,
    mut to_rmcp: WriteHalf<DuplexStream>,
    out: mpsc::UnboundedSender<Out>,
    hub: Arc<Hub>,
    session: Arc<OnceLock<Arc<Session>>>,
) {
    let client = Client {
        hub,
        out,
        in_flight: Arc::default(),
        session,
    };
    let mut reader = BufReader::new(stdin);
    let mut initialized = false;
    let mut line = Vec::new();
    loop {
        match pipes::read_line(&mut reader, &mut line, pipes::MAX_MESSAGE_BYTES).await {
            pipes::Line::Complete => {}
            pipes::Line::End => break,
            pipes::Line::TooLong { bytes } => {
                tracing::error!(
                    "refused a {bytes}-byte message from the client: messages are limited to {} bytes",
                    pipes::MAX_MESSAGE_BYTES
                );
                let error = McpError::invalid_request(
                    format!(
                        "the message is {bytes} bytes, over magg's limit of {} bytes; send less \
                         at once (e.g. a file's path instead of its content)",
                        pipes::MAX_MESSAGE_BYTES
                    ),
                    None,
                );
                client.send(call::error_line(&id_in_head(&line), &error));
                continue;
            }
        }
        let message = match Message::read(&line) {
            Ok(Some(message)) => message,
            Ok(None) => continue, // a blank line
            Err(error) => {
                client.send(call::error_line(&null_id(), &error));
                continue;
            }
        };
        let forward = match (&message.method, message.id) {
            (Some(_), Some(id)) if client.hub.is_draining() => {
                client.send(call::error_line(id, &shutting_down()));
                false
            }
            (Some(method), Some(id)) if initialized && method == "tools/call" => {
                client.call(id, message.params);
                false
            }
            (Some(method), Some(id)) if initialized && method == "tools/list" => {
                client.list_tools(id, message.params);
                false
            }
            // Before `initialize` too: a stateless client (2026-07-28) cancels its requests,
            // an open `subscriptions/listen` among them, with this notification.
            (Some(method), None) if method == "notifications/cancelled" => {
                !client.cancel(message.params)
            }
            (Some(method), Some(_)) => {
                initialized |= method == "initialize";
                true
            }
            _ if initialized => true,
            (method, _) => {
                tracing::debug!(
                    "dropped a {} before initialize: rmcp takes only requests until then",
                    method.as_deref().unwrap_or("response")
                );
                false
            }
        };
        if forward && to_rmcp.write_all(&line).await.is_err() {
            break;
        }
    }
    let _ = to_rmcp.shutdown().await;
}

impl Client {
    fn send(&self, line: String) {
        let _ = self.out.send(Out::Line(line.into_bytes()));
    }

    /// Starts a tools/call on the call route; its reply is written when it ends.
    fn call(&self, id: &RawValue, params: Option<&RawValue>) {
        let Some(work) = self.hub.admit() else {
            return self.send(call::error_line(id, &shutting_down()));
        };
        let request = match CallRequest::from_text(params) {
            Ok(request) => request,
            Err(error) => return self.send(call::error_line(id, &error)),
        };
        let key = id.get().to_owned();
        let ct = CancellationToken::new();
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.insert(key.clone(), ct.clone());
        }
        let origin = self.session.get().map(|session| Origin {
            lines: Some(self.out.clone()),
            ..Origin::new(
                session.clone(),
                serde_json::from_str::<RequestId>(id.get()).ok(),
                request.progress_token.clone(),
            )
        });
        let answer = Answer {
            id: id.to_owned(),
            // A client that sent `initialize` speaks an era before 2026-07-28.
            legacy: origin.is_some(),
            key,
            out: self.out.clone(),
            in_flight: self.in_flight.clone(),
            sent: false,
        };
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let call = call::call_tool(&hub, request, ct);
            let reply = match origin {
                Some(origin) => ORIGIN.scope(origin, call).await,
                None => call.await,
            };
            answer.send(reply);
            drop(work);
        });
    }

    /// Answers a tools/list with the page's text, as the catalog holds it.
    fn list_tools(&self, id: &RawValue, params: Option<&RawValue>) {
        crate::metrics::count_list(crate::metrics::List::tools);
        #[derive(Deserialize)]
        struct Params {
            #[serde(default)]
            cursor: Option<String>,
        }
        let cursor = match params.map(|p| serde_json::from_str::<Params>(p.get())) {
            None => None,
            Some(Ok(params)) => params.cursor,
            Some(Err(e)) => {
                let error = McpError::invalid_params(
                    format!(
                        "tools/list params must be an object with an optional string `cursor`: {e}"
                    ),
                    None,
                );
                return self.send(call::error_line(id, &error));
            }
        };
        let Some(work) = self.hub.admit() else {
            return self.send(call::error_line(id, &shutting_down()));
        };
        let span = self.span("tools/list", id, params);
        let hub = self.hub.clone();
        let out = self.out.clone();
        let id = id.to_owned();
        let session = self.session.get().cloned();
        tokio::spawn(async move {
            let _work = work;
            // The request's span (tracing on) ends with the page.
            let _span = span;
            hub.wait_for_backends().await;
            let snapshot = hub.snapshot();
            let listed = hub.listed_tools(&snapshot, session.as_deref());
            let mut page = match listed.page_pieces(cursor.as_deref()) {
                Ok(page) => page,
                Err(error) => {
                    let _ = out.send(Out::Line(call::error_line(&id, &error).into_bytes()));
                    return;
                }
            };
            // The page goes out as it is made, in pieces the writer takes in turn: a page of
            // large tools (megabytes) is never held whole.
            let (pieces, rx) = mpsc::channel(2);
            if out.send(Out::Pieces(rx)).is_err() {
                return;
            }
            let head = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"#, id.get());
            if pieces.send(head.into_bytes()).await.is_err() {
                return;
            }
            while let Some(piece) = page.next_piece(PAGE_PIECE_BYTES) {
                if pieces.send(piece.into_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = pieces.send(b"}\n".to_vec()).await;
        });
    }

    /// The span of a request the frontend answers itself (tracing on), its parent the trace
    /// context in the params' `_meta`.
    fn span(&self, method: &str, id: &RawValue, params: Option<&RawValue>) -> tracing::Span {
        if !telemetry::on() {
            return tracing::Span::none();
        }
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(borrow, rename = "_meta", default)]
            meta: Option<&'a RawValue>,
        }
        let parent = params
            .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok()?.meta)
            .and_then(|meta| telemetry::parent(telemetry::MetaText::read(meta.get()).carrier()));
        let session = self.session.get().and_then(|s| s.id());
        let id = serde_json::from_str::<RequestId>(id.get())
            .map(|id| call::request_id_text(&id))
            .ok();
        telemetry::request_span(method, None, session, id.as_deref(), parent)
    }

    /// Cancels the call a `notifications/cancelled` names, if it is one of this frontend's;
    /// false if it is not (rmcp's, or unknown).
    fn cancel(&self, params: Option<&RawValue>) -> bool {
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(borrow, rename = "requestId")]
            request_id: &'a RawValue,
        }
        let Some(params) = params.and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
        else {
            return false;
        };
        let ct = self
            .in_flight
            .lock()
            .ok()
            .and_then(|mut map| map.remove(params.request_id.get()));
        match ct {
            Some(ct) => {
                ct.cancel();
                true
            }
            None => false,
        }
    }
}

/// The one response of a call: written when the call ends, or, if its task ends without a
/// reply (it panicked), an internal error, so that the client never waits forever.
struct Answer {
    id: Box<RawValue>,
    /// Whether the client is of the session era.
    legacy: bool,
    key: String,
    out: mpsc::UnboundedSender<Out>,
    in_flight: InFlight,
    sent: bool,
}

impl Answer {
    fn send(mut self, reply: Reply) {
        self.sent = true;
        self.forget();
        if let Some(line) = reply.into_line(&self.id, self.legacy) {
            let _ = self.out.send(Out::Line(line.into_bytes()));
        }
    }

    fn forget(&self) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&self.key);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        self.forget();
        let error = McpError::internal_error(
            "magg failed while running this call; see its log (stderr) for why",
            None,
        );
        let _ = self
            .out
            .send(Out::Line(call::error_line(&self.id, &error).into_bytes()));
    }
}

/// The parts of a client's message the frontend looks at.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// Reads one line; `Ok(None)` for a blank one, and the error to answer for one that is not
    /// a JSON-RPC message.
    fn read(line: &'a [u8]) -> Result<Option<Message<'a>>, McpError> {
        let text = std::str::from_utf8(line).map_err(|e| {
            McpError::parse_error(
                format!("the message is not UTF-8 text ({e}); MCP messages are JSON in UTF-8"),
                None,
            )
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.starts_with('[') {
            return Err(McpError::invalid_request(
                "JSON-RPC batches are not part of MCP (since 2025-06-18): send each message on \
                 a line of its own",
                None,
            ));
        }
        if depth(text.as_bytes()) > MAX_DEPTH {
            return Err(McpError::parse_error(
                format!("the message nests arrays and objects deeper than {MAX_DEPTH} levels"),
                None,
            ));
        }
        serde_json::from_str(text).map(Some).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => McpError::invalid_request(
                    format!("the message is not a JSON-RPC 2.0 message: {e}"),
                    None,
                ),
                _ if e.to_string().starts_with("trailing characters") => McpError::parse_error(
                    format!(
                        "the line holds more than one JSON value ({e}); send each message on a \
                         line of its own"
                    ),
                    None,
                ),
                _ => McpError::parse_error(format!("the message is not valid JSON: {e}"), None),
            }
        })
    }
}

/// How deeply arrays and objects nest in a JSON text (brackets inside strings not counted).
fn depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The id of an error response to a message whose id magg cannot tell.
fn null_id() -> Box<RawValue> {
    // The default raw value is `null`.
    Box::default()
}

/// The request id in the first bytes of a message too long to read (ids come early), or
/// `null` when none is found.
fn id_in_head(head: &[u8]) -> Box<RawValue> {
    let text = String::from_utf8_lossy(head);
    let Some(at) = text.find("\"id\"") else {
        return null_id();
    };
    let rest = text[at + 4..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return null_id();
    };
    let mut stream =
        serde_json::Deserializer::from_str(rest.trim_start()).into_iter::<Box<RawValue>>();
    match stream.next() {
        Some(Ok(id))
            if id.get().starts_with('"')
                || id
                    .get()
                    .starts_with(|c: char| c.is_ascii_digit() || c == '-') =>
        {
            id
        }
        _ => null_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> Option<i32> {
        Message::read(line.as_bytes()).err().map(|e| e.code.0)
    }

    #[test]
    fn what_is_not_a_message_gets_the_protocols_error() {
        assert_eq!(code("{not json"), Some(-32700));
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0"}"#),
            Some(-32700)
        );
        assert_eq!(
            code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            Some(-32600)
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":5}"#), Some(-32600));
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"a":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(code(&deep), Some(-32700));
        assert_eq!(
            Message::read(b"\xff\xfe{}").err().map(|e| e.code.0),
            Some(-32700)
        );
        assert!(matches!(Message::read(b"  \r\n"), Ok(None)));
    }

    #[test]
    fn a_message_is_read_once_for_its_method_id_and_params() {
        let line = br#"{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"x"}}"#;
        let Ok(Some(message)) = Message::read(line) else {
            panic!("a request reads")
        };
        assert_eq!(message.method.as_deref(), Some("tools/call"));
        assert_eq!(message.id.map(RawValue::get), Some(r#""a\"b""#));
        assert_eq!(message.params.map(RawValue::get), Some(r#"{"name":"x"}"#));
    }

    #[test]
    fn brackets_in_strings_do_not_nest() {
        assert_eq!(depth(br#"{"a":"[[[{{{\"]]]","b":[1,[2]]}"#), 3);
    }

    #[test]
    fn the_id_of_a_message_too_long_to_read_is_found_in_its_head() {
        assert_eq!(
            id_in_head(br#"{"jsonrpc":"2.0","id": 42,"method":"tools/call","params":{"#).get(),
            "42"
        );
        assert_eq!(id_in_head(br#"{"id":"x-1","#).get(), r#""x-1""#);
        assert_eq!(id_in_head(br#"{"jsonrpc":"2.0","method":"#).get(), "null");
    }
}
