//! The stdio frontend, with a fast path for tools/call.
//!
//! Every line from the client is looked at once: a `tools/call` of a backend tool, on a backend
//! with a fast lane and with no routing hooks loaded, is sent to that backend as text with only
//! its tool name and id rewritten, and the backend's response goes back the same way, never
//! decoded into rmcp's types. Every other message (initialize, lists, magg's own tools,
//! notifications, responses to server requests) goes to the rmcp server as before. Cancelling a
//! fast-path call is forwarded to the backend under the lane's id, and the backend's progress
//! notifications for the call (which carry the client's own progress token, passed through
//! unchanged) go straight back to this client. Both paths write whole lines
//! to stdout through one writer, so their messages never interleave mid-line.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use indexmap::IndexMap;
use rmcp::{
    RoleServer, ServiceExt as _,
    model::{CallToolResult, ContentBlock},
    service::{RunningService, ServerInitializeError},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncRead, AsyncWriteExt, BufReader, DuplexStream, WriteHalf},
    sync::mpsc,
};

use super::MaggServer;
use crate::{
    backend::lane::{self, Lane},
    catalog::ToolRoute,
    hub::Hub,
    pipes,
};

const DUPLEX_BYTES: usize = 256 * 1024;

/// Fast-path calls in flight: the client's request id (as JSON text) → lane and lane id.
type InFlight = Arc<Mutex<HashMap<String, (Arc<Lane>, u64)>>>;

/// Serves one MCP session on this process's stdin and stdout.
pub async fn serve(
    server: MaggServer,
) -> Result<RunningService<RoleServer, MaggServer>, ServerInitializeError> {
    let hub = server.hub.clone();
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let (rmcp_end, our_end) = tokio::io::duplex(DUPLEX_BYTES);
    let (rmcp_read, rmcp_write) = tokio::io::split(rmcp_end);
    let (from_rmcp, to_rmcp) = tokio::io::split(our_end);
    let (out, lines) = mpsc::unbounded_channel();
    tokio::spawn(pipes::write_lines(stdout, lines));
    tokio::spawn(pipes::pump_lines(from_rmcp, out.clone()));
    tokio::spawn(read_client(stdin, to_rmcp, out, hub));
    server.serve((rmcp_read, rmcp_write)).await
}

async fn read_client<R: AsyncRead + Unpin>(
    stdin: R,
    mut to_rmcp: WriteHalf<DuplexStream>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    hub: Arc<Hub>,
) {
    let mut reader = BufReader::new(stdin);
    let in_flight: InFlight = Arc::default();
    let mut initialized = false;
    let mut line = Vec::new();
    loop {
        match pipes::read_line(&mut reader, &mut line, pipes::MAX_LINE_BYTES).await {
            pipes::Line::Complete => {}
            pipes::Line::End => break,
            pipes::Line::TooLong(bytes) => {
                tracing::error!(
                    "dropped a {bytes}-byte message from the client: messages are limited to {} bytes",
                    pipes::MAX_LINE_BYTES
                );
                continue;
            }
        }
        if initialized {
            if let Some(call) = fast_call(&hub, &line) {
                tokio::spawn(run_fast(call, out.clone(), in_flight.clone()));
                continue;
            }
            if cancel_fast(&line, &in_flight) {
                continue;
            }
        } else if contains(&line, b"\"initialize\"") {
            initialized = true;
        }
        if to_rmcp.write_all(&line).await.is_err() {
            break;
        }
    }
    let _ = to_rmcp.shutdown().await;
}

/// A tools/call that takes the fast path.
struct FastCall {
    client_id: Box<RawValue>,
    lane: Arc<Lane>,
    backend: String,
    tool: String,
    params: String,
    /// The client's progress token (JSON text), if it asked for progress.
    progress_token: Option<String>,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

fn contains(line: &[u8], needle: &[u8]) -> bool {
    line.windows(needle.len()).any(|w| w == needle)
}

/// The fast-path form of `line`, if it is a tools/call that can take it.
fn fast_call(hub: &Hub, line: &[u8]) -> Option<FastCall> {
    if !contains(line, b"tools/call") || hub.plugins.has_routing_hooks() {
        return None;
    }
    let probe: Probe<'_> = serde_json::from_slice(line).ok()?;
    if probe.method.as_deref() != Some("tools/call") {
        return None;
    }
    let id = probe.id?;
    let mut params: IndexMap<String, &RawValue> = serde_json::from_str(probe.params?.get()).ok()?;
    let name: String = serde_json::from_str(params.get("name")?.get()).ok()?;
    let snapshot = hub.snapshot();
    let ToolRoute::Backend(route) = snapshot.tool(&name)? else {
        return None;
    };
    let lane = route.backend.state().lane.clone()?;
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(borrow, default, rename = "progressToken")]
        progress_token: Option<&'a RawValue>,
    }
    let progress_token = params
        .get("_meta")
        .and_then(|m| serde_json::from_str::<Meta<'_>>(m.get()).ok())
        .and_then(|m| m.progress_token.map(|t| t.get().to_owned()));
    let original = RawValue::from_string(serde_json::to_string(&route.name).ok()?).ok()?;
    params.insert("name".to_owned(), &original);
    Some(FastCall {
        client_id: id.to_owned(),
        lane,
        backend: route.backend.name.clone(),
        tool: route.name.clone(),
        params: serde_json::to_string(&params).ok()?,
        progress_token,
    })
}

async fn run_fast(call: FastCall, out: mpsc::UnboundedSender<Vec<u8>>, in_flight: InFlight) {
    let key = call.client_id.get().to_owned();
    if let Some(token) = &call.progress_token {
        call.lane.watch_progress(token.clone(), out.clone());
    }
    let response = match call.lane.send_tool_call(&call.params) {
        Ok((lane_id, rx)) => {
            if let Ok(mut map) = in_flight.lock() {
                map.insert(key.clone(), (call.lane.clone(), lane_id));
            }
            let answer = rx.await;
            if let Some(token) = &call.progress_token {
                call.lane.unwatch_progress(token);
            }
            let still_wanted = in_flight
                .lock()
                .is_ok_and(|mut map| map.remove(&key).is_some());
            if !still_wanted {
                return; // cancelled by the client: no response, as MCP asks
            }
            answer.ok()
        }
        Err(lane::Closed) => {
            if let Some(token) = &call.progress_token {
                call.lane.unwatch_progress(token);
            }
            None
        }
    };
    let line = match response.and_then(|line| with_id(&line, &call.client_id)) {
        Some(line) => line,
        None => closed_result(&call),
    };
    let _ = out.send(line.into_bytes());
}

/// The backend's response line with the client's request id put back.
fn with_id(line: &[u8], id: &RawValue) -> Option<String> {
    let mut message: IndexMap<String, &RawValue> = serde_json::from_slice(line).ok()?;
    message.insert("id".to_owned(), id);
    serde_json::to_string(&message).ok()
}

/// The result for a call whose backend went away before answering.
fn closed_result(call: &FastCall) -> String {
    let result = CallToolResult::error(vec![ContentBlock::text(format!(
        "Server `{}` closed its connection while running `{}` (it may have crashed). \
         magg restarts it automatically; call magg_status to see its state, then retry.",
        call.backend, call.tool
    ))]);
    let result = serde_json::to_string(&result).unwrap_or_else(|_| "{}".to_owned());
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        call.client_id.get()
    )
}

/// Forwards a client's cancellation of a fast-path call to its backend; false if `line` is
/// anything else.
fn cancel_fast(line: &[u8], in_flight: &InFlight) -> bool {
    if !contains(line, b"notifications/cancelled") {
        return false;
    }
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(borrow, rename = "requestId")]
        request_id: &'a RawValue,
        #[serde(default)]
        reason: Option<String>,
    }
    let Some(params) = serde_json::from_slice::<Probe<'_>>(line)
        .ok()
        .filter(|p| p.method.as_deref() == Some("notifications/cancelled"))
        .and_then(|p| p.params)
        .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
    else {
        return false;
    };
    let Some((lane, lane_id)) = in_flight
        .lock()
        .ok()
        .and_then(|mut map| map.remove(params.request_id.get()))
    else {
        return false;
    };
    lane.cancel(lane_id, params.reason.as_deref());
    true
}
