//! The fast lane to a stdio backend: tools/call requests written straight to the child's stdin as
//! JSON text and their responses taken off its stdout as text, never decoded into rmcp's types.
//!
//! The child's pipes are shared with the rmcp client that handles everything else (initialize,
//! lists, notifications, server-to-client requests): a reader task takes each line from the
//! child's stdout and either hands it to the lane call waiting for it (its id is one of the
//! lane's, `"magg:<n>"`) or passes it on to rmcp; a writer task writes whole lines to the child's
//! stdin from both. Lane ids are strings, rmcp's are numbers, so they never collide.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf},
    sync::{mpsc, oneshot},
};

use crate::pipes;

/// The prefix of lane request ids.
const ID_PREFIX: &str = "magg:";
/// Buffer between the pipes and rmcp.
const DUPLEX_BYTES: usize = 256 * 1024;

/// A lane request waiting for its response.
#[derive(Debug)]
struct Pending {
    /// Where the response line goes.
    answer: oneshot::Sender<Vec<u8>>,
    /// Where the request's progress notifications go (as the backend sent them).
    progress: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

/// The lane of one backend connection.
#[derive(Debug)]
pub struct Lane {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
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
        }
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
    pub fn send_tool_call(
        &self,
        id: u64,
        params: &str,
        progress: Option<mpsc::UnboundedSender<Vec<u8>>>,
    ) -> Result<oneshot::Receiver<Vec<u8>>, Closed> {
        let (answer, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, Pending { answer, progress });
        }
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"{ID_PREFIX}{id}","method":"tools/call","params":{params}}}"#
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

/// The ends rmcp's client transport reads from and writes to.
pub type RmcpPipes = (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>);

/// Splits a child's stdout/stdin between the lane and rmcp.
pub fn wire<R, W>(child_out: R, child_in: W) -> (Arc<Lane>, RmcpPipes)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (rmcp_end, our_end) = tokio::io::duplex(DUPLEX_BYTES);
    let (rmcp_read, rmcp_write) = tokio::io::split(rmcp_end);
    let (from_rmcp, to_rmcp) = tokio::io::split(our_end);
    let (out, lines) = mpsc::unbounded_channel();
    let lane = Arc::new(Lane::new(out.clone()));
    tokio::spawn(pipes::write_lines(child_in, lines));
    tokio::spawn(pipes::pump_lines(from_rmcp, out));
    tokio::spawn(read_child(child_out, to_rmcp, lane.clone()));
    (lane, (rmcp_read, rmcp_write))
}

async fn read_child<R: AsyncRead + Unpin>(
    child_out: R,
    mut to_rmcp: WriteHalf<DuplexStream>,
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
        } else if to_rmcp.write_all(&line).await.is_err() {
            break;
        }
    }
    lane.close();
    let _ = to_rmcp.shutdown().await;
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
        let _answer = lane.send_tool_call(id, "{}", Some(sink));
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
    fn a_cancelled_request_is_told_to_the_backend_and_forgotten() {
        let (out, mut lines) = mpsc::unbounded_channel();
        let lane = Lane::new(out);
        let id = lane.reserve();
        let answer = lane.send_tool_call(id, r#"{"name":"t"}"#, None);
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
