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

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf},
    sync::{mpsc, oneshot},
};

/// The prefix of lane request ids.
const ID_PREFIX: &str = "magg:";
/// Buffer between the pipes and rmcp.
const DUPLEX_BYTES: usize = 256 * 1024;

/// Lane id → the client's progress token (JSON text) and where its progress goes.
type ProgressSinks = HashMap<u64, (String, mpsc::UnboundedSender<Vec<u8>>)>;

/// The lane of one backend connection.
#[derive(Debug)]
pub struct Lane {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>,
    next: AtomicU64,
    /// Where progress notifications go, by lane id: the client's token (JSON text) and sink.
    progress: Mutex<ProgressSinks>,
}

/// The backend's connection closed before it answered.
#[derive(Debug, Clone, Copy)]
pub struct Closed;

impl Lane {
    /// Reserves the lane id of the next request, so that its params can carry it (as the
    /// progress token) before it is sent.
    pub fn reserve(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a `tools/call` under the reserved lane id `id` whose `params` are already JSON
    /// text. Returns the receiver of the backend's whole response line (a JSON-RPC response
    /// with that id); the receiver fails if the connection closes first.
    pub fn send_tool_call(
        &self,
        id: u64,
        params: &str,
    ) -> Result<oneshot::Receiver<Vec<u8>>, Closed> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, tx);
        }
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"{ID_PREFIX}{id}","method":"tools/call","params":{params}}}"#
        );
        self.send_line(line.into_bytes(), id)?;
        Ok(rx)
    }

    /// Tells the backend the lane request `id` is cancelled, and stops waiting for it.
    pub fn cancel(&self, id: u64, reason: Option<&str>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
        let reason = reason.map(|r| serde_json::to_string(r).unwrap_or_default());
        let line = match reason {
            Some(reason) => format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":"{ID_PREFIX}{id}","reason":{reason}}}}}"#
            ),
            None => format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":"{ID_PREFIX}{id}"}}}}"#
            ),
        };
        let _ = self.out.send(line.into_bytes());
    }

    /// Sends the backend's progress notifications for the lane request `id` (which carries
    /// the progress token `"magg:<id>"`, see [`progress_token`]) to `sink`, under the client's
    /// own `token` (JSON text) again.
    pub fn watch_progress(&self, id: u64, token: String, sink: mpsc::UnboundedSender<Vec<u8>>) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.insert(id, (token, sink));
        }
    }

    /// Stops forwarding progress for the lane request `id`.
    pub fn unwatch_progress(&self, id: u64) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.remove(&id);
        }
    }

    /// Forwards `line` if it is a progress notification of a watched lane request, with the
    /// client's token put back.
    fn forward_progress(&self, line: &[u8]) -> bool {
        const NEEDLE: &[u8] = b"notifications/progress";
        if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
            return false;
        }
        let Some(mut message) = serde_json::from_slice::<IndexMap<&str, &RawValue>>(line)
            .ok()
            .filter(|m| {
                m.get("method")
                    .is_some_and(|m| m.get() == "\"notifications/progress\"")
            })
        else {
            return false;
        };
        let Some(mut params) = message
            .get("params")
            .and_then(|p| serde_json::from_str::<IndexMap<&str, &RawValue>>(p.get()).ok())
        else {
            return false;
        };
        let Some(id) = params
            .get("progressToken")
            .and_then(|t| serde_json::from_str::<&str>(t.get()).ok())
            .and_then(|t| t.strip_prefix(ID_PREFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return false;
        };
        let Some((token, sink)) = self.progress.lock().ok().and_then(|p| p.get(&id).cloned())
        else {
            return false;
        };
        let Ok(token) = RawValue::from_string(token) else {
            return false;
        };
        params.insert("progressToken", &token);
        let Ok(params) = serde_json::value::to_raw_value(&params) else {
            return false;
        };
        message.insert("params", &params);
        match serde_json::to_vec(&message) {
            Ok(out) => sink.send(out).is_ok(),
            Err(_) => false,
        }
    }

    fn send_line(&self, line: Vec<u8>, id: u64) -> Result<(), Closed> {
        if self.out.send(line).is_err() {
            if let Ok(mut pending) = self.pending.lock() {
                pending.remove(&id);
            }
            return Err(Closed);
        }
        Ok(())
    }

    fn deliver(&self, id: u64, line: Vec<u8>) {
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(line);
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
    let lane = Arc::new(Lane {
        out: out.clone(),
        pending: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
        progress: Mutex::new(HashMap::new()),
    });
    tokio::spawn(crate::pipes::write_lines(child_in, lines));
    tokio::spawn(crate::pipes::pump_lines(from_rmcp, out));
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
        match crate::pipes::read_line(&mut reader, &mut line, crate::pipes::MAX_LINE_BYTES).await {
            crate::pipes::Line::Complete => {}
            crate::pipes::Line::End => break,
            crate::pipes::Line::TooLong(bytes) => {
                tracing::error!(
                    "dropped a {bytes}-byte message from a backend: messages are limited to {} bytes",
                    crate::pipes::MAX_LINE_BYTES
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
    fn progress_goes_back_under_the_clients_token_and_only_for_lane_tokens() {
        let (out, _lines) = mpsc::unbounded_channel();
        let lane = Lane {
            out,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            progress: Mutex::new(HashMap::new()),
        };
        let (sink, mut seen) = mpsc::unbounded_channel();
        lane.watch_progress(4, "3".to_owned(), sink);
        // magg's own rmcp client numbers its tokens too: a numeric 3 is not this call's.
        assert!(!lane.forward_progress(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":3,"progress":1}}"#
        ));
        assert!(lane.forward_progress(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"magg:4","progress":2,"total":3,"message":"m"}}"#
        ));
        let line = seen.try_recv().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&line),
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":3,"progress":2,"total":3,"message":"m"}}"#
        );
        lane.unwatch_progress(4);
        assert!(!lane.forward_progress(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"magg:4","progress":3}}"#
        ));
    }
}
