//! The stdio frontend, with a fast path for tools/call.
//!
//! Every line from the client is looked at once: a `tools/call` of a backend tool, on a backend
//! with a fast lane, is sent to that backend as text with only its tool name and id rewritten,
//! and the backend's response goes back the same way, never decoded into rmcp's types. Routing
//! hooks run on this path too: they see the arguments and the result content as the JSON text
//! they already are, and only what a hook changes is rewritten. Every other message (initialize, lists, magg's own tools,
//! notifications, responses to server requests) goes to the rmcp server as before. Cancelling a
//! fast-path call is forwarded to the backend under the lane's id, and the backend's progress
//! notifications for the call (which carry the client's own progress token, passed through
//! unchanged) go straight back to this client. Both paths write whole lines
//! to stdout through one writer, so their messages never interleave mid-line.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use indexmap::IndexMap;
use rmcp::{
    RoleServer, ServiceExt as _,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, RequestId},
    service::{RunningService, ServerInitializeError},
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
    backend::lane::{self, Lane},
    catalog::{Route, ToolRoute},
    hub::{Hub, error_result},
    pipes,
    plugins::{AfterText, Decision, HookResult, HookRun, ToolCall},
    relay::{Calls, ORIGIN, Origin, Session},
};

const DUPLEX_BYTES: usize = 256 * 1024;

/// Fast-path calls in flight: the client's request id (as JSON text) → lane and lane id.
type InFlight = Arc<Mutex<HashMap<String, (Arc<Lane>, u64)>>>;

/// Serves one MCP session on this process's stdin and stdout.
pub async fn serve(
    server: MaggServer,
) -> Result<RunningService<RoleServer, MaggServer>, ServerInitializeError> {
    let hub = server.hub.clone();
    let session = server.session_slot();
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let (rmcp_end, our_end) = tokio::io::duplex(DUPLEX_BYTES);
    let (rmcp_read, rmcp_write) = tokio::io::split(rmcp_end);
    let (from_rmcp, to_rmcp) = tokio::io::split(our_end);
    let (out, lines) = mpsc::unbounded_channel();
    tokio::spawn(pipes::write_lines(stdout, lines));
    tokio::spawn(pipes::pump_lines(from_rmcp, out.clone()));
    tokio::spawn(read_client(stdin, to_rmcp, out, hub, session));
    server.serve((rmcp_read, rmcp_write)).await
}

async fn read_client<R: AsyncRead + Unpin>(
    stdin: R,
    mut to_rmcp: WriteHalf<DuplexStream>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    hub: Arc<Hub>,
    session: Arc<OnceLock<Arc<Session>>>,
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
                let caller = Caller {
                    out: out.clone(),
                    in_flight: in_flight.clone(),
                    session: session.clone(),
                };
                if call.hooked {
                    tokio::spawn(run_hooked(call, hub.clone(), caller));
                } else {
                    tokio::spawn(run_fast(call, caller));
                }
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
    /// Where it goes first (a routing hook may send it elsewhere).
    leg: Leg,
    /// The client's progress token (JSON text), if it asked for progress.
    progress_token: Option<String>,
    /// Routing hooks are loaded: the call goes through them.
    hooked: bool,
    /// The tool name the client called.
    exposed: String,
    /// The client's params as sent (for the hooks, which may change the call).
    original: Option<String>,
    /// The client's arguments as sent (JSON text), for the hooks.
    arguments: Option<String>,
}

impl FastCall {
    /// The call as the origin of what its backend sends back.
    fn origin(&self, session: &Arc<Session>) -> Origin {
        Origin {
            session: session.clone(),
            request_id: serde_json::from_str(self.client_id.get()).ok(),
            progress_token: self
                .progress_token
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            inputs: None,
        }
    }
}

/// One tools/call on one lane: the backend, its tool, the lane id reserved for the request and
/// the params text (whose progress token, if any, is the lane's own for that id).
struct Leg {
    lane: Arc<Lane>,
    calls: Option<Arc<Calls>>,
    lane_id: u64,
    backend: String,
    tool: String,
    params: String,
}

impl Leg {
    /// A leg to `route`'s backend, if it has a lane, with params built from the client's.
    fn new(
        route: &Route,
        arguments: Arguments<'_>,
        rest: &IndexMap<String, &RawValue>,
    ) -> Option<Leg> {
        let state = route.backend.state();
        let lane = state.lane.clone()?;
        let lane_id = lane.reserve();
        let params = lane_params(&route.name, arguments, rest, lane_id)?;
        Some(Leg {
            lane,
            calls: state.calls.clone(),
            lane_id,
            backend: route.backend.name.clone(),
            tool: route.name.clone(),
            params,
        })
    }
}

/// The arguments of a lane call: the client's own text, or as a hook rewrote them.
#[derive(Clone, Copy)]
enum Arguments<'a> {
    Unchanged,
    Rewritten(Option<&'a JsonObject>),
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
    if !contains(line, b"tools/call") {
        return None;
    }
    let hooked = hub.plugins.has_routing_hooks();
    let probe: Probe<'_> = serde_json::from_slice(line).ok()?;
    if probe.method.as_deref() != Some("tools/call") {
        return None;
    }
    let id = probe.id?;
    let params: IndexMap<String, &RawValue> = serde_json::from_str(probe.params?.get()).ok()?;
    let name: String = serde_json::from_str(params.get("name")?.get()).ok()?;
    let snapshot = hub.snapshot();
    let ToolRoute::Backend(route) = snapshot.tool(&name)? else {
        return None;
    };
    let leg = Leg::new(route, Arguments::Unchanged, &params)?;
    let original = hooked
        .then(|| probe.params.map(|p| p.get().to_owned()))
        .flatten();
    let arguments = hooked
        .then(|| params.get("arguments").map(|a| a.get().to_owned()))
        .flatten()
        .filter(|a| a != "null");
    Some(FastCall {
        client_id: id.to_owned(),
        leg,
        progress_token: client_token(&params),
        hooked,
        exposed: name,
        original,
        arguments,
    })
}

/// The client's progress token (JSON text) in `params._meta`.
fn client_token(params: &IndexMap<String, &RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(borrow, default, rename = "progressToken")]
        progress_token: Option<&'a RawValue>,
    }
    params
        .get("_meta")
        .and_then(|m| serde_json::from_str::<Meta<'_>>(m.get()).ok())
        .and_then(|m| m.progress_token.map(|t| t.get().to_owned()))
}

/// The params text of a lane call to `tool`: the client's params with the backend's tool
/// name, the arguments (as the client sent them, or as a hook rewrote them) and, if the client
/// asked for progress, the lane's own progress token for `lane_id`.
fn lane_params(
    tool: &str,
    arguments: Arguments<'_>,
    params: &IndexMap<String, &RawValue>,
    lane_id: u64,
) -> Option<String> {
    let name = serde_json::value::to_raw_value(tool).ok()?;
    let rewritten = match arguments {
        Arguments::Rewritten(Some(arguments)) => {
            Some(serde_json::value::to_raw_value(arguments).ok()?)
        }
        _ => None,
    };
    let meta = match params.get("_meta") {
        Some(meta) if client_token(params).is_some() => {
            let mut meta: IndexMap<&str, &RawValue> = serde_json::from_str(meta.get()).ok()?;
            let token = RawValue::from_string(lane::progress_token(lane_id)).ok()?;
            meta.insert("progressToken", &token);
            Some(serde_json::value::to_raw_value(&meta).ok()?)
        }
        _ => None,
    };
    let mut out: IndexMap<&str, &RawValue> = IndexMap::with_capacity(params.len() + 1);
    for (key, value) in params {
        out.insert(key, value);
    }
    out.insert("name", &name);
    match (&arguments, &rewritten) {
        (_, Some(arguments)) => {
            out.insert("arguments", arguments);
        }
        (Arguments::Rewritten(None), None) => {
            out.shift_remove("arguments");
        }
        _ => {}
    }
    if let Some(meta) = &meta {
        out.insert("_meta", meta);
    }
    serde_json::to_string(&out).ok()
}

/// How a lane round trip ended.
enum Trip {
    /// The backend's response line (with the lane's id).
    Answer(Vec<u8>),
    /// The client cancelled the call: it gets no response, as MCP asks.
    Cancelled,
    /// The backend's connection closed first.
    Closed,
}

/// What a lane call needs of its client: where its answer and progress go, which calls of the
/// session are in flight (for cancelling), and the session (for what the backend asks).
struct Caller {
    out: mpsc::UnboundedSender<Vec<u8>>,
    in_flight: InFlight,
    session: Arc<OnceLock<Arc<Session>>>,
}

/// Sends `leg` as a tools/call and waits for the answer, forwarding progress under the
/// client's token and letting the client cancel it under its own request id.
async fn lane_trip(leg: &Leg, call: &FastCall, caller: &Caller) -> Trip {
    let key = call.client_id.get().to_owned();
    if let Some(token) = &call.progress_token {
        leg.lane
            .watch_progress(leg.lane_id, token.clone(), caller.out.clone());
    }
    // Recorded so that a request the backend makes meanwhile (sampling, roots) finds this
    // session.
    let record = leg
        .calls
        .as_ref()
        .zip(caller.session.get())
        .map(|(calls, session)| {
            session.touch();
            let record = calls.begin(call.origin(session));
            record.attach(
                RequestId::String(format!("magg:{}", leg.lane_id).into()),
                None,
            );
            record
        });
    let trip = match leg.lane.send_tool_call(leg.lane_id, &leg.params) {
        Ok(rx) => {
            if let Ok(mut map) = caller.in_flight.lock() {
                map.insert(key.clone(), (leg.lane.clone(), leg.lane_id));
            }
            let answer = rx.await;
            let still_wanted = caller
                .in_flight
                .lock()
                .is_ok_and(|mut map| map.remove(&key).is_some());
            match answer {
                _ if !still_wanted => Trip::Cancelled,
                Ok(line) => Trip::Answer(line),
                Err(_) => Trip::Closed,
            }
        }
        Err(lane::Closed) => Trip::Closed,
    };
    drop(record);
    if call.progress_token.is_some() {
        leg.lane.unwatch_progress(leg.lane_id);
    }
    trip
}

async fn run_fast(call: FastCall, caller: Caller) {
    let line = match lane_trip(&call.leg, &call, &caller).await {
        Trip::Cancelled => return,
        Trip::Answer(line) => with_id(&line, &call.client_id),
        Trip::Closed => None,
    };
    let line = line.unwrap_or_else(|| closed_result(&call, &call.leg));
    let _ = caller.out.send(line.into_bytes());
}

/// A fast-lane call through the routing hooks: before-call on the client's arguments (as
/// text), the backend called on its lane (or, when a hook rerouted the call to a tool without
/// one, through the hub), and after-call on the result's content (as text). A result no hook
/// replaced goes back as the backend sent it.
async fn run_hooked(call: FastCall, hub: Arc<Hub>, caller: Caller) {
    let origin = caller.session.get().map(|session| call.origin(session));
    let work = hooked_line(&call, &hub, &caller);
    let line = match origin {
        Some(origin) => ORIGIN.scope(origin, work).await,
        None => work.await,
    };
    if let Some(line) = line {
        let _ = caller.out.send(line.into_bytes());
    }
}

async fn hooked_line(call: &FastCall, hub: &Arc<Hub>, caller: &Caller) -> Option<String> {
    let arguments = call.arguments.as_deref().unwrap_or("{}");
    if !arguments.starts_with('{') {
        // Not arguments rmcp would take either; answer as it would.
        return Some(error_line(
            &call.client_id,
            &rmcp::ErrorData::invalid_params("tools/call arguments must be a JSON object", None),
        ));
    }
    let (decision, run) = hub
        .plugins
        .before_call_text(&call.leg.backend, &call.exposed, arguments)
        .await;
    let tool_call = match decision {
        Decision::Proceed(tool_call) => tool_call,
        Decision::Answer(result) => return Some(result_line(&call.client_id, &result)),
        Decision::Deny(message) => {
            return Some(result_line(&call.client_id, &error_result(message)));
        }
    };
    let rerouted;
    let leg = if !run.changed() {
        &call.leg
    } else {
        let original = call.original.as_deref().unwrap_or("{}");
        let rest: IndexMap<String, &RawValue> = serde_json::from_str(original).ok()?;
        let target = if tool_call.tool == call.exposed {
            hub.snapshot().tool(&call.exposed).cloned()
        } else {
            match hub.reroute_target(&call.exposed, &tool_call.tool) {
                Ok(target) => Some(target),
                Err(message) => {
                    return Some(result_line(&call.client_id, &error_result(message)));
                }
            }
        }?;
        let arguments = Arguments::Rewritten(tool_call.arguments.as_ref());
        let leg = match &target {
            ToolRoute::Backend(route) => Leg::new(route, arguments, &rest),
            ToolRoute::Own(_) => None,
        };
        match leg {
            Some(leg) => {
                rerouted = leg;
                &rerouted
            }
            // No lane to take (magg's own tool, an HTTP backend, or one restarting).
            None => {
                let response = through_hub(hub, target, tool_call, run, rest).await;
                return Some(response_line(&call.client_id, response));
            }
        }
    };
    let line = match lane_trip(leg, call, caller).await {
        Trip::Cancelled => return None,
        Trip::Closed => return Some(closed_result(call, leg)),
        Trip::Answer(line) => line,
    };
    let text = run
        .wants_result()
        .then(|| ResultText::read(&line))
        .flatten();
    // No hook to see it, or an error response (hooks see results, not protocol errors).
    let Some(text) = text else {
        return Some(with_id(&line, &call.client_id).unwrap_or_else(|| closed_result(call, leg)));
    };
    match hub
        .plugins
        .after_call_text(run, &tool_call, text.wit())
        .await
    {
        AfterText::Unchanged => text.with_id(&call.client_id),
        AfterText::Withheld(result) => Some(result_line(&call.client_id, &result)),
        AfterText::Replaced(next) => text.replaced(&call.client_id, &next),
    }
}

/// The rest of a hooked call that cannot take a lane: through the hub, as the rmcp path
/// runs it.
async fn through_hub(
    hub: &Arc<Hub>,
    target: ToolRoute,
    tool_call: ToolCall,
    run: HookRun,
    rest: IndexMap<String, &RawValue>,
) -> Result<CallToolResponse, rmcp::ErrorData> {
    let mut params = serde_json::Map::new();
    for (key, value) in rest {
        if let Ok(value) = serde_json::from_str(value.get()) {
            params.insert(key, value);
        }
    }
    params.insert(
        "name".into(),
        serde_json::Value::String(tool_call.tool.clone()),
    );
    let params: CallToolRequestParams = serde_json::from_value(params.into())
        .map_err(|e| rmcp::ErrorData::invalid_params(format!("tools/call params: {e}"), None))?;
    hub.finish_hooked(target, tool_call, run, params, CancellationToken::new())
        .await
}

/// A backend's `result` object as text: the parts hooks see, and the rest kept as it was.
struct ResultText<'a> {
    message: IndexMap<String, &'a RawValue>,
    result: IndexMap<String, &'a RawValue>,
}

impl<'a> ResultText<'a> {
    /// The result of a response line; `None` for an error response.
    fn read(line: &'a [u8]) -> Option<ResultText<'a>> {
        let message: IndexMap<String, &'a RawValue> = serde_json::from_slice(line).ok()?;
        let result = serde_json::from_str(message.get("result")?.get()).ok()?;
        Some(ResultText { message, result })
    }

    /// The result in the WIT's shape.
    fn wit(&self) -> HookResult {
        HookResult {
            content: self
                .result
                .get("content")
                .map_or_else(|| "[]".to_owned(), |c| c.get().to_owned()),
            structured_content: self
                .result
                .get("structuredContent")
                .map(|c| c.get().to_owned())
                .filter(|c| c != "null"),
            is_error: self
                .result
                .get("isError")
                .is_some_and(|e| e.get() == "true"),
        }
    }

    /// The response line as the backend sent it, with the client's id.
    fn with_id(&self, id: &RawValue) -> Option<String> {
        let mut message: IndexMap<&str, &RawValue> =
            self.message.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        message.insert("id", id);
        serde_json::to_string(&message).ok()
    }

    /// The response line with a hook's replacement of the result and the client's id.
    fn replaced(&self, id: &RawValue, next: &HookResult) -> Option<String> {
        let content = RawValue::from_string(next.content.clone()).ok()?;
        let structured = match &next.structured_content {
            Some(text) => Some(RawValue::from_string(text.clone()).ok()?),
            None => None,
        };
        let is_error = serde_json::value::to_raw_value(&next.is_error).ok()?;
        let mut result: IndexMap<&str, &RawValue> =
            self.result.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        result.insert("content", &content);
        match &structured {
            Some(value) => {
                result.insert("structuredContent", value);
            }
            None => {
                result.shift_remove("structuredContent");
            }
        }
        result.insert("isError", &is_error);
        let result = serde_json::value::to_raw_value(&result).ok()?;
        let mut message: IndexMap<&str, &RawValue> =
            self.message.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        message.insert("result", &result);
        message.insert("id", id);
        serde_json::to_string(&message).ok()
    }
}

/// A JSON-RPC response line with `result` for the request `id`.
fn result_line(id: &RawValue, result: &CallToolResult) -> String {
    let result = serde_json::to_string(result).unwrap_or_else(|_| "{}".to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, id.get())
}

/// A JSON-RPC error response line for the request `id`.
fn error_line(id: &RawValue, error: &rmcp::ErrorData) -> String {
    let error = serde_json::to_string(error).unwrap_or_else(|_| "{}".to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{},"error":{error}}}"#, id.get())
}

fn response_line(id: &RawValue, response: Result<CallToolResponse, rmcp::ErrorData>) -> String {
    match response {
        Ok(CallToolResponse::Complete(result)) => result_line(id, &result),
        Ok(other) => {
            let result = serde_json::to_string(&rmcp::model::ServerResult::from(other))
                .unwrap_or_else(|_| "{}".to_owned());
            format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, id.get())
        }
        Err(error) => error_line(id, &error),
    }
}

/// The backend's response line with the client's request id put back.
fn with_id(line: &[u8], id: &RawValue) -> Option<String> {
    let mut message: IndexMap<String, &RawValue> = serde_json::from_slice(line).ok()?;
    message.insert("id".to_owned(), id);
    serde_json::to_string(&message).ok()
}

/// The result for a call whose backend went away before answering.
fn closed_result(call: &FastCall, leg: &Leg) -> String {
    let result = error_result(format!(
        "Server `{}` closed its connection while running `{}` (it may have crashed). \
         magg restarts it automatically; call magg_status to see its state, then retry.",
        leg.backend, leg.tool
    ));
    result_line(&call.client_id, &result)
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
