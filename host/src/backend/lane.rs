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

/// The prefix of lane request ids.
const ID_PREFIX: &str = "magg:";
/// Buffer between the pipes and rmcp.
const DUPLEX_BYTES: usize = 256 * 1024;

/// The lane of one backend connection.
#[derive(Debug)]
pub struct Lane {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>,
    next: AtomicU64,
    /// Where progress notifications go, by progress token (as JSON text).
    progress: Mutex<HashMap<String, mpsc::UnboundedSender<Vec<u8>>>>,
}

/// The backend's connection closed before it answered.
#[derive(Debug, Clone, Copy)]
pub struct Closed;

impl Lane {
    /// Sends a `tools/call` whose `params` are already JSON text. Returns the lane id of the
    /// request and the receiver of the backend's whole response line (a JSON-RPC response with
    /// that id); the receiver fails if the connection closes first.
    pub fn send_tool_call(
        &self,
        params: &str,
    ) -> Result<(u64, oneshot::Receiver<Vec<u8>>), Closed> {
        let (id, rx) = self.register();
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"{ID_PREFIX}{id}","method":"tools/call","params":{params}}}"#
        );
        self.send_line(line.into_bytes(), id)?;
        Ok((id, rx))
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

    /// Sends the backend's progress notifications for `token` (JSON text, the client's own
    /// token, which a lane call passes through unchanged) to `sink` as they are.
    pub fn watch_progress(&self, token: String, sink: mpsc::UnboundedSender<Vec<u8>>) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.insert(token, sink);
        }
    }

    /// Stops forwarding progress for `token`.
    pub fn unwatch_progress(&self, token: &str) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.remove(token);
        }
    }

    /// Forwards `line` if it is a progress notification for a watched token.
    fn forward_progress(&self, line: &[u8]) -> bool {
        const NEEDLE: &[u8] = b"notifications/progress";
        if !line.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
            return false;
        }
        #[derive(Deserialize)]
        struct Notification<'a> {
            #[serde(default)]
            method: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            params: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(borrow, rename = "progressToken")]
            token: &'a RawValue,
        }
        let Some(token) = serde_json::from_slice::<Notification<'_>>(line)
            .ok()
            .filter(|n| n.method.as_deref() == Some("notifications/progress"))
            .and_then(|n| n.params)
            .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
            .map(|p| p.token.get().to_owned())
        else {
            return false;
        };
        let sink = self
            .progress
            .lock()
            .ok()
            .and_then(|p| p.get(&token).cloned());
        match sink {
            Some(sink) => sink.send(line.to_vec()).is_ok(),
            None => false,
        }
    }

    fn register(&self) -> (u64, oneshot::Receiver<Vec<u8>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, tx);
        }
        (id, rx)
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
}
