//! The fast lane to a stdio backend: tools/call (and tools/list) requests written straight to
//! the child's stdin as JSON text and their responses taken off its stdout as text, never
//! decoded into rmcp's types.
//!
//! The child's pipes are shared with the rmcp client that handles everything else (initialize,
//! other lists, notifications, server-to-client requests): a reader task takes each line from
//! the child's stdout and either hands it to the lane call waiting for it (its id is one of the
//! lane's, `"magg:<n>"`) or passes it, whole, to rmcp's transport ([`RmcpLines`]); a writer task
//! writes whole lines to the child's stdin from both. Lane ids are strings, rmcp's are numbers,
//! so they never collide.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use indexmap::IndexMap;
use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncRead, AsyncWrite, BufReader},
    sync::{mpsc, oneshot},
};

use crate::{mcp::ToolText, pipes};

/// The prefix of lane request ids.
const ID_PREFIX: &str = "magg:";

/// A lane request waiting for its response.
#[derive(Debug)]
struct Pending {
    /// Where the response line goes.
    answer: oneshot::Sender<Vec<u8>>,
    /// Where the request's progress notifications go (as the backend sent them).
    progress: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Whether the backend's log messages go to `progress` too, while this is the newest
    /// request in flight (they still reach rmcp): a stateless client's request that asked
    /// for them gets them in order, before its result.
    logs: bool,
}

/// The lane of one backend connection.
#[derive(Debug)]
pub struct Lane {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
    /// For a backend that speaks protocol 2026-07-28, the `_meta` members every request
    /// carries (protocol version, magg's client info and capabilities).
    envelope: OnceLock<IndexMap<String, Box<RawValue>>>,
}

/// The backend's connection closed before it answered.
#[derive(Debug, Clone, Copy)]
pub struct Closed;

impl Lane {
    fn new(out: mpsc::UnboundedSender<Vec<u8>>) -> Lane {
        Lane {
            out,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            envelope: OnceLock::new(),
        }
    }

    /// Makes every later request carry `members` in its `_meta`: the per-request metadata of
    /// protocol 2026-07-28. A `clientCapabilities` the request already has (its client's own,
    /// passed on) is kept.
    pub fn set_envelope(&self, members: IndexMap<String, Box<RawValue>>) {
        let _ = self.envelope.set(members);
    }

    /// Reserves the lane id of the next request, so that its params can carry it (as the
    /// progress token, see [`progress_token`]) before it is sent.
    pub fn reserve(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a `tools/call` under the reserved lane id `id` whose `params` are already JSON
    /// text. Returns the receiver of the backend's whole response line (a JSON-RPC response
    /// with that id); the receiver fails if the connection closes first. Progress
    /// notifications whose token is [`progress_token`]`(id)` go to `progress`, as the backend
    /// sent them, until the response arrives.
    ///
    /// To a backend of protocol 2026-07-28, the request's `_meta` carries the client's
    /// capabilities: those in `params`, else what `capabilities` gives (the calling session's),
    /// else magg's own.
    pub fn send_tool_call(
        &self,
        id: u64,
        params: &str,
        progress: Option<mpsc::UnboundedSender<Vec<u8>>>,
        logs: bool,
        capabilities: impl FnOnce() -> Option<Box<RawValue>>,
    ) -> Result<oneshot::Receiver<Vec<u8>>, Closed> {
        self.send_request(id, "tools/call", params, progress, logs, capabilities)
    }

    /// Sends the request `method` with `params` (JSON text) under the reserved lane id `id`;
    /// see [`Lane::send_tool_call`].
    pub fn send_request(
        &self,
        id: u64,
        method: &str,
        params: &str,
        progress: Option<mpsc::UnboundedSender<Vec<u8>>>,
        logs: bool,
        capabilities: impl FnOnce() -> Option<Box<RawValue>>,
    ) -> Result<oneshot::Receiver<Vec<u8>>, Closed> {
        let (answer, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(
                id,
                Pending {
                    answer,
                    progress,
                    logs,
                },
            );
        }
        let enveloped;
        let params = match self.envelope.get() {
            Some(members) => {
                enveloped = with_envelope(params, members, capabilities());
                enveloped.as_str()
            }
            None => params,
        };
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"{ID_PREFIX}{id}","method":"{method}","params":{params}}}"#
        );
        if self.out.send(line.into_bytes()).is_err() {
            self.forget(id);
            return Err(Closed);
        }
        Ok(rx)
    }

    /// Tells the backend the lane request `id` is cancelled, and stops waiting for it.
    pub fn cancel(&self, id: u64, reason: &str) {
        self.forget(id);
        let reason = serde_json::to_string(reason).unwrap_or_else(|_| "null".to_owned());
        let line = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":"{ID_PREFIX}{id}","reason":{reason}}}}}"#
        );
        let _ = self.out.send(line.into_bytes());
    }

    /// Stops waiting for the lane request `id` (its response and progress are dropped).
    pub fn forget(&self, id: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
    }

    /// Hands `line` to the lane request it belongs to, if it is a progress notification with
    /// a lane token of a request still waiting; false otherwise.
    fn forward_progress(&self, line: &[u8]) -> bool {
        let Some(id) = lane_progress_id(line) else {
            return false;
        };
        let sink = self
            .pending
            .lock()
            .ok()
            .and_then(|p| p.get(&id).and_then(|p| p.progress.clone()));
        match sink {
            Some(sink) => {
                let _ = sink.send(line.to_vec());
                true
            }
            // A lane token, but nobody waits for it any more: not rmcp's either.
            None => true,
        }
    }

    /// Copies a log message `line` to the newest request in flight, when that one asked for
    /// log messages.
    fn copy_log(&self, line: &[u8]) {
        const NEEDLE: &[u8] = b"notifications/message";
        if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
            return;
        }
        let sink = self.pending.lock().ok().and_then(|p| {
            let (_, newest) = p.iter().max_by_key(|(id, _)| **id)?;
            newest.logs.then(|| newest.progress.clone()).flatten()
        });
        if let Some(sink) = sink {
            let _ = sink.send(line.to_vec());
        }
    }

    fn deliver(&self, id: u64, line: Vec<u8>) {
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.answer.send(line);
        }
    }

    fn close(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.clear();
        }
    }
}

/// Every page of the backend's tools/list, read from the response text: each tool is kept as
/// the text it came as, never built into rmcp's types (a large list then leaves no trail of
/// freed parse trees between the tools magg keeps). A tool without a string `name` is left
/// out, with a warning.
pub async fn list_tools(lane: &Lane, server: &str) -> Result<Vec<ToolText>, String> {
    #[derive(Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        result: Option<Page<'a>>,
        error: Option<rmcp::ErrorData>,
    }
    #[derive(Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        tools: Vec<&'a RawValue>,
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
    }
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => serde_json::json!({ "cursor": c }).to_string(),
            None => "{}".to_owned(),
        };
        let id = lane.reserve();
        let line = lane
            .send_request(id, "tools/list", &params, None, false, || None)
            .map_err(|Closed| "the connection closed".to_owned())?
            .await
            .map_err(|_| "the connection closed before it listed its tools".to_owned())?;
        let page = match serde_json::from_slice::<Response<'_>>(&line) {
            Ok(Response {
                result: Some(page), ..
            }) => page,
            Ok(Response {
                error: Some(error), ..
            }) => return Err(format!("tools/list failed: {}", error.message)),
            Ok(_) => return Err("tools/list answered with neither result nor error".to_owned()),
            Err(e) => return Err(format!("tools/list answer is not one magg can read: {e}")),
        };
        tools.reserve(page.tools.len());
        for raw in page.tools {
            match ToolText::from_json(raw.get()) {
                Ok(tool) => tools.push(tool),
                Err(e) => tracing::warn!(server, "left out a tool magg cannot list: {e}"),
            }
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() && cursor.as_deref() != Some(next.as_str()) => {
                cursor = Some(next);
            }
            _ => break,
        }
    }
    Ok(tools)
}

/// rmcp's client transport on a child's pipes, beside the lane: it receives the lines that are
/// not lane answers, whole, and sends rmcp's messages as lines through the pipe's writer. No
/// byte stream sits between the two, so nothing holds a copy of a large message (a backend's
/// whole tool list) after rmcp has read it.
pub struct RmcpLines {
    incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    out: mpsc::UnboundedSender<Vec<u8>>,
}

impl Transport<RoleClient> for RmcpLines {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let sent = serde_json::to_vec(&item)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                self.out.send(line).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the backend's stdin is closed",
                    )
                })
            });
        std::future::ready(sent)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let line = self.incoming.recv().await?;
            let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
            let text = text.trim_ascii_end();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice(text) {
                Ok(message) => return Some(message),
                Err(e) => self.refuse(text, &e),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl RmcpLines {
    /// A line that is no message magg can read: ignored, but a request in it gets the
    /// protocol's error, so that the backend does not wait for an answer forever.
    fn refuse(&self, text: &[u8], e: &serde_json::Error) {
        #[derive(Deserialize)]
        struct Request<'a> {
            #[serde(borrow)]
            id: Option<&'a RawValue>,
            method: Option<serde::de::IgnoredAny>,
        }
        tracing::debug!("ignored a line from a backend that is no MCP message: {e}");
        if let Ok(Request {
            id: Some(id),
            method: Some(_),
        }) = serde_json::from_slice::<Request<'_>>(text)
        {
            let error = serde_json::json!({
                "code": -32600,
                "message": format!("Invalid request: {e}"),
            });
            let line = format!(r#"{{"jsonrpc":"2.0","id":{},"error":{error}}}"#, id.get());
            let _ = self.out.send(line.into_bytes());
        }
    }
}

/// `params` (a JSON object's text) with `members` in its `_meta`; a `clientCapabilities` already
/// there stays, else `capabilities` (when given) stands for the one in `members`.
fn with_envelope(
    params: &str,
    members: &IndexMap<String, Box<RawValue>>,
    capabilities: Option<Box<RawValue>>,
) -> String {
    let Ok(mut object) = serde_json::from_str::<IndexMap<String, Box<RawValue>>>(params) else {
        return params.to_owned();
    };
    let mut meta = object
        .get("_meta")
        .and_then(|m| serde_json::from_str::<IndexMap<String, Box<RawValue>>>(m.get()).ok())
        .unwrap_or_default();
    let mut capabilities = capabilities;
    for (key, value) in members {
        if key.ends_with("/clientCapabilities") {
            if meta.contains_key(key) {
                continue;
            }
            if let Some(own) = capabilities.take() {
                meta.insert(key.clone(), own);
                continue;
            }
        }
        meta.insert(key.clone(), value.clone());
    }
    if let Ok(meta) = serde_json::value::to_raw_value(&meta) {
        object.insert("_meta".to_owned(), meta);
    }
    serde_json::to_string(&object).unwrap_or_else(|_| params.to_owned())
}

/// Splits a child's stdout/stdin between the lane and rmcp.
pub fn wire<R, W>(child_out: R, child_in: W) -> (Arc<Lane>, RmcpLines)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, lines) = mpsc::unbounded_channel();
    let (to_rmcp, incoming) = mpsc::unbounded_channel();
    let lane = Arc::new(Lane::new(out.clone()));
    tokio::spawn(pipes::write_lines(child_in, lines));
    tokio::spawn(read_child(child_out, to_rmcp, lane.clone()));
    (lane, RmcpLines { incoming, out })
}

async fn read_child<R: AsyncRead + Unpin>(
    child_out: R,
    to_rmcp: mpsc::UnboundedSender<Vec<u8>>,
    lane: Arc<Lane>,
) {
    let mut reader = BufReader::new(child_out);
    let mut line = Vec::new();
    loop {
        match pipes::read_line(&mut reader, &mut line, pipes::MAX_MESSAGE_BYTES).await {
            pipes::Line::Complete => {}
            pipes::Line::End => break,
            pipes::Line::TooLong { bytes, .. } => {
                tracing::error!(
                    "dropped a {bytes}-byte message from a backend: messages are limited to {} bytes",
                    pipes::MAX_MESSAGE_BYTES
                );
                continue;
            }
        }
        if let Some(id) = lane_response_id(&line) {
            lane.deliver(id, std::mem::take(&mut line));
        } else if lane.forward_progress(&line) {
        } else {
            lane.copy_log(&line);
            if to_rmcp.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    }
    lane.close();
}

/// The progress token (JSON text) of the lane request `id`: magg's own, so that it never
/// collides with the tokens of other clients of the same backend (magg's rmcp client numbers
/// its own from 0, as most clients do).
pub fn progress_token(id: u64) -> String {
    format!("\"{ID_PREFIX}{id}\"")
}

/// The lane id in the progress token of `line`, if it is a progress notification with a lane
/// token.
fn lane_progress_id(line: &[u8]) -> Option<u64> {
    const NEEDLE: &[u8] = b"notifications/progress";
    if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(borrow, rename = "progressToken")]
        token: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        method: &'a str,
        #[serde(borrow)]
        params: Params<'a>,
    }
    let probe: Probe<'_> = serde_json::from_slice(line).ok()?;
    if probe.method != "notifications/progress" {
        return None;
    }
    let token: &str = serde_json::from_str(probe.params.token.get()).ok()?;
    token.strip_prefix(ID_PREFIX)?.parse().ok()
}

/// The lane id of a response line, if it is a response to a lane request.
fn lane_response_id(line: &[u8]) -> Option<u64> {
    const NEEDLE: &[u8] = b"\"magg:";
    if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(default)]
        method: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe<'_> = serde_json::from_slice(line).ok()?;
    if probe.method.is_some() {
        return None;
    }
    let id: &str = serde_json::from_str(probe.id?.get()).ok()?;
    id.strip_prefix(ID_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane whose backend is this test: the lines the lane writes, and the lane.
    fn lane() -> (Arc<Lane>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (out, lines) = mpsc::unbounded_channel();
        (Arc::new(Lane::new(out)), lines)
    }

    /// The lane id of a request line the lane wrote.
    fn request_id(line: &[u8]) -> u64 {
        let value: serde_json::Value =
            serde_json::from_slice(line).unwrap_or_else(|e| panic!("{e}"));
        value["id"]
            .as_str()
            .and_then(|id| id.strip_prefix(ID_PREFIX))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no lane id in {value}"))
    }

    #[tokio::test]
    async fn tools_are_listed_page_by_page_as_they_came_and_nameless_ones_left_out() {
        let (lane, mut lines) = lane();
        let backend = lane.clone();
        let answers = tokio::spawn(async move {
            let pages = [
                r#"{"tools":[{"name":"a","inputSchema":{"type":"object"},"x":1},{"description":"no name"}],"nextCursor":"p2"}"#,
                r#"{"tools":[{"name":"b","inputSchema":{}}]}"#,
            ];
            let mut cursors = Vec::new();
            for page in pages {
                let line = lines.recv().await.unwrap_or_default();
                let request: serde_json::Value =
                    serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(request["method"], "tools/list");
                cursors.push(request["params"]["cursor"].clone());
                let id = request_id(&line);
                let answer = format!(r#"{{"jsonrpc":"2.0","id":"magg:{id}","result":{page}}}"#);
                backend.deliver(id, answer.into_bytes());
            }
            cursors
        });
        let tools = list_tools(&lane, "tb")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = tools.iter().map(ToolText::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            tools[0].json(),
            r#"{"name":"a","inputSchema":{"type":"object"},"x":1}"#
        );
        let cursors = answers.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cursors, [serde_json::Value::Null, serde_json::json!("p2")]);
    }

    #[tokio::test]
    async fn a_backend_request_rmcp_cannot_read_gets_an_error_not_silence() {
        let (out, mut written) = mpsc::unbounded_channel();
        let (to_rmcp, incoming) = mpsc::unbounded_channel();
        let mut transport = RmcpLines { incoming, out };
        let _ = to_rmcp.send(
            br#"{"jsonrpc":"2.0","id":41,"method":"sampling/createMessage","params":7}"#.to_vec(),
        );
        let _ = to_rmcp.send(b"not json at all\n".to_vec());
        let _ = to_rmcp
            .send(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#.to_vec());
        let message = transport.receive().await;
        assert!(
            format!("{message:?}").contains("ToolListChanged"),
            "the readable message after the bad ones: {message:?}"
        );
        let refusal = written.try_recv().unwrap_or_default();
        let refusal: serde_json::Value =
            serde_json::from_slice(&refusal).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refusal["id"], 41);
        assert_eq!(refusal["error"]["code"], -32600);
        assert!(
            written.try_recv().is_err(),
            "nothing answers a line with no request in it"
        );
    }

    #[test]
    fn only_lane_responses_are_claimed() {
        assert_eq!(
            lane_response_id(br#"{"jsonrpc":"2.0","id":"magg:7","result":{}}"#),
            Some(7)
        );
        assert_eq!(
            lane_response_id(br#"{"jsonrpc":"2.0","id":7,"result":{"text":"magg:1"}}"#),
            None
        );
        assert_eq!(
            lane_response_id(
                br#"{"jsonrpc":"2.0","id":"magg:3","method":"sampling/createMessage"}"#
            ),
            None,
            "a request from the backend is never a lane response"
        );
        assert_eq!(lane_response_id(b"not json \"magg:1\""), None);
    }

    #[test]
    fn progress_goes_to_the_waiting_lane_request_and_only_for_lane_tokens() {
        let (out, _lines) = mpsc::unbounded_channel();
        let lane = Lane::new(out);
        let id = lane.reserve();
        let (sink, mut seen) = mpsc::unbounded_channel();
        let _answer = lane.send_tool_call(id, "{}", Some(sink), false, || None);
        // magg's own rmcp client numbers its tokens too: a numeric token is not the lane's.
        assert!(!lane.forward_progress(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":0,"progress":1}}"#
        ));
        let line = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":"magg:{id}","progress":2}}}}"#
        );
        assert!(lane.forward_progress(line.as_bytes()));
        assert_eq!(seen.try_recv().ok(), Some(line.clone().into_bytes()));
        lane.forget(id);
        assert!(
            lane.forward_progress(line.as_bytes()),
            "a finished lane request's progress is dropped, not passed to rmcp"
        );
        assert!(seen.try_recv().is_err());
    }

    #[test]
    fn the_envelope_carries_the_callers_capabilities_unless_the_request_has_its_own() {
        let raw = |text: &str| serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        let mut members = IndexMap::new();
        members.insert(
            "io.modelcontextprotocol/clientCapabilities".to_owned(),
            raw(r#"{"sampling":{},"elicitation":{},"roots":{}}"#),
        );
        members.insert(
            "io.modelcontextprotocol/protocolVersion".to_owned(),
            raw(r#""2026-07-28""#),
        );
        let meta = |text: String| -> serde_json::Value {
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["_meta"].clone()
        };
        // magg's own, with nothing else known.
        let own = meta(with_envelope(r#"{"name":"t"}"#, &members, None));
        assert_eq!(
            own["io.modelcontextprotocol/clientCapabilities"],
            serde_json::json!({"sampling": {}, "elicitation": {}, "roots": {}})
        );
        assert_eq!(own["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
        // The calling session's.
        let session = meta(with_envelope(
            r#"{"name":"t"}"#,
            &members,
            Some(raw(r#"{"sampling":{}}"#)),
        ));
        assert_eq!(
            session["io.modelcontextprotocol/clientCapabilities"],
            serde_json::json!({"sampling": {}})
        );
        // A stateless client's own, in its request, win.
        let stateless = meta(with_envelope(
            r#"{"name":"t","_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}"#,
            &members,
            Some(raw(r#"{"sampling":{}}"#)),
        ));
        assert_eq!(
            stateless["io.modelcontextprotocol/clientCapabilities"],
            serde_json::json!({})
        );
    }

    #[test]
    fn a_cancelled_request_is_told_to_the_backend_and_forgotten() {
        let (out, mut lines) = mpsc::unbounded_channel();
        let lane = Lane::new(out);
        let id = lane.reserve();
        let answer = lane.send_tool_call(id, r#"{"name":"t"}"#, None, false, || None);
        let sent = lines.try_recv().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&sent),
            format!(
                r#"{{"jsonrpc":"2.0","id":"magg:{id}","method":"tools/call","params":{{"name":"t"}}}}"#
            )
        );
        lane.cancel(id, "cancelled by the client");
        let cancel = lines.try_recv().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&cancel),
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":"magg:{id}","reason":"cancelled by the client"}}}}"#
            )
        );
        lane.deliver(id, b"late".to_vec());
        assert!(answer.is_ok_and(|mut rx| rx.try_recv().is_err()));
    }
}
