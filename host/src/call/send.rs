//! The last leg of a tools/call: to a backend, on the transport it has. A running stdio
//! backend has a lane (the call goes as text, and its answer comes back as text); a mounted
//! WebAssembly component is called in process; any other (streamable HTTP, or a stdio backend
//! between restarts) is reached through rmcp's client.
//! Both legs record which client the call is for, pass progress back to it, stop at the
//! client's cancellation and at the per-call time limit (`backend_call_timeout`), cancelling
//! the call at the backend, and turn a backend that went away into a result the model can read.
//! With tracing on, the leg is a span of its own, whose trace context the backend gets in the
//! request's `_meta`.

use std::{sync::Arc, time::Duration};

use rmcp::{
    ServiceError,
    model::{
        CallToolRequestParams, CallToolResponse, ClientRequest, ProgressNotificationParam, Request,
        RequestId, ServerResult,
    },
    service::{Peer, PeerRequestOptions},
};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{CallRequest, Reply};
use crate::{
    backend::{
        Backend, Status,
        component::Mount,
        lane::{self, Lane},
    },
    catalog::Route,
    hub::{Hub, running_peer},
    mcp::error_result,
    relay::{Calls, Origin, current_origin, inputs},
    telemetry::{self, Outgoing},
};

/// The reason a backend is given when magg cancels a call for its client.
const CANCELLED_BY_CLIENT: &str = "cancelled by the client";

/// Sends `request` to the tool `route.name` of `route.backend`, and waits for the answer.
pub(super) async fn to_backend(
    hub: &Hub,
    route: &Route,
    request: &CallRequest,
    ct: CancellationToken,
) -> Reply {
    if !telemetry::on() {
        return send(hub, route, request, ct, None).await;
    }
    let span = telemetry::backend_span("tools/call", &route.backend.name, Some(&route.name));
    span.record("gen_ai.tool.name", route.name.as_str());
    let trace = telemetry::inject(&span);
    let reply = Box::pin(send(hub, route, request, ct, trace))
        .instrument(span.clone())
        .await;
    reply.outcome().record(&span);
    reply
}

/// [`to_backend`], with `trace` (the backend span's context) in the request's `_meta`. A
/// backend of protocol 2026-07-28 that answers `input_required` is answered here for a client
/// of the session era: magg asks the client, and calls again with its answers, until the call
/// completes; a stateless client gets the `input_required` result itself.
async fn send(
    hub: &Hub,
    route: &Route,
    request: &CallRequest,
    ct: CancellationToken,
    trace: Option<Outgoing>,
) -> Reply {
    // Only a backend of 2026-07-28 answers `input_required`; any other call is one request.
    if !route.backend.state().stateless {
        return send_once(hub, route, request, ct, trace).await;
    }
    let mut reply = send_once(hub, route, request, ct.clone(), trace.clone()).await;
    let Some(origin) = current_origin().filter(inputs::answers_for) else {
        return reply;
    };
    for _ in 0..inputs::MAX_ROUNDS {
        let Some(asked) = reply.input_required() else {
            return reply;
        };
        let server = &route.backend.name;
        let requests = asked.input_requests.unwrap_or_default();
        let responses = match inputs::answer(&origin, server, requests, &ct).await {
            Ok(responses) => responses,
            Err(error) => return Reply::Error(error),
        };
        let again = request.with_input(&responses, asked.request_state.as_deref());
        reply = send_once(hub, route, &again, ct.clone(), trace.clone()).await;
    }
    match reply.input_required() {
        Some(_) => Reply::Error(inputs::too_many_rounds(&route.backend.name)),
        None => reply,
    }
}

/// One request of [`send`] to the backend.
async fn send_once(
    hub: &Hub,
    route: &Route,
    request: &CallRequest,
    ct: CancellationToken,
    trace: Option<Outgoing>,
) -> Reply {
    // A session-isolated server's call goes to the calling session's own instance.
    let backend = &match hub.instance_for(&route.backend).await {
        Ok(backend) => backend,
        Err(message) => return Reply::complete(error_result(message)),
    };
    if backend.state().status == Status::Starting {
        // Restarting since the catalog was read: its tools come back when it is up.
        let limit = hub
            .settings
            .backend_init_timeout
            .unwrap_or(Duration::from_secs(24 * 3600));
        Box::pin(hub.wait_started(&backend.name, limit)).await;
    }
    let state = backend.state();
    let trip = Trip {
        backend,
        tool: &route.name,
        limit: hub.settings.backend_call_timeout,
        origin: current_origin(),
        ct,
        trace,
    };
    if let (Some(component), Status::Running) = (&state.component, &state.status) {
        return trip.by_component(component, request).await;
    }
    match (&state.lane, &state.status) {
        (Some(lane), Status::Running) => trip.by_lane(lane, state.calls.clone(), request).await,
        _ => match running_peer(backend) {
            Ok(peer) => Box::pin(trip.by_peer(peer, request)).await,
            Err(message) => Reply::complete(error_result(message)),
        },
    }
}

/// One call's way to its backend and back.
struct Trip<'a> {
    backend: &'a Arc<Backend>,
    /// The tool's name on the backend.
    tool: &'a str,
    limit: Option<Duration>,
    origin: Option<Origin>,
    ct: CancellationToken,
    /// The trace context the backend is sent, when tracing is on.
    trace: Option<Outgoing>,
}

impl Trip<'_> {
    /// The options of the call's request through rmcp. rmcp puts magg's own capabilities in
    /// the request of a 2026-07-28 backend; the client's own (which say what the backend may
    /// ask it: a stateless client's from its request, a session's from its initialize) go in
    /// their place. (Not inline in the async call: what it holds would enlarge the future
    /// of every call.)
    fn request_options(&self, params: &CallToolRequestParams) -> PeerRequestOptions {
        let caps = params
            .meta
            .as_ref()
            .and_then(|meta| meta.client_capabilities())
            .or_else(|| {
                self.backend
                    .state()
                    .stateless
                    .then(|| self.session_capabilities())
                    .flatten()
            });
        let options = PeerRequestOptions::no_options();
        match caps {
            Some(caps) => {
                let mut meta = rmcp::model::RequestMetaObject::default();
                meta.set_client_capabilities(caps);
                options.with_meta(meta)
            }
            None => options,
        }
    }

    /// The capabilities of the calling client session (from its `initialize`), for a backend
    /// of protocol 2026-07-28, which reads them from each request; `None` outside a session.
    fn session_capabilities(&self) -> Option<rmcp::model::ClientCapabilities> {
        let session = &self.origin.as_ref()?.session;
        (!session.is_detached()).then(|| session.capabilities())
    }

    /// The call as text on the backend's lane.
    async fn by_lane(
        &self,
        lane: &Arc<Lane>,
        calls: Option<Arc<Calls>>,
        request: &CallRequest,
    ) -> Reply {
        let id = lane.reserve();
        // The token is in the params when they came as text, in the origin when rmcp read them.
        let progress_to = self.origin.as_ref().and_then(|origin| {
            let token = request
                .progress_token
                .clone()
                .or_else(|| origin.progress_token.clone())?;
            Some((origin.clone(), token))
        });
        let params = match (&progress_to, &self.trace) {
            (Some(_), trace) => request.params_text_traced(
                self.tool,
                Some(&lane::progress_token(id)),
                trace.as_ref(),
            ),
            (None, None) => request.params_text(self.tool, None),
            (None, Some(trace)) => request.params_text_traced(self.tool, None, Some(trace)),
        };
        // Recorded so that a request the backend makes meanwhile (sampling, roots) finds the
        // client.
        let _record = calls.zip(self.origin.clone()).map(|(calls, origin)| {
            origin.session.touch();
            let record = calls.begin(origin);
            record.attach(RequestId::String(format!("magg:{id}").into()), None);
            record
        });
        // A stateless client that asked for log messages gets the backend's on its stream.
        let logs = self
            .origin
            .as_ref()
            .is_some_and(|origin| origin.session.wants_request_logs());
        let (progress_tx, mut progress_rx) = if progress_to.is_some() || logs {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let capabilities = || {
            self.session_capabilities()
                .and_then(|caps| serde_json::value::to_raw_value(&caps).ok())
        };
        let Ok(mut answer) = lane.send_tool_call(id, &params, progress_tx, logs, capabilities)
        else {
            return self.closed();
        };
        let mut pending = LaneCall {
            lane,
            id,
            armed: true,
        };
        let timeout = time_limit(self.limit);
        tokio::pin!(timeout);
        let line = loop {
            tokio::select! {
                biased;
                line = &mut answer => break line,
                Some(note) = next(&mut progress_rx) => {
                    Box::pin(self.forward_note(progress_to.as_ref(), &note)).await;
                }
                () = self.ct.cancelled() => {
                    pending.cancel(CANCELLED_BY_CLIENT);
                    return Reply::Cancelled;
                }
                () = &mut timeout => {
                    pending.cancel(&self.timeout_reason());
                    return self.timed_out();
                }
            }
        };
        pending.armed = false;
        // What the backend sent before its answer reaches the client before it.
        if let Some(rx) = &mut progress_rx {
            while let Ok(note) = rx.try_recv() {
                Box::pin(self.forward_note(progress_to.as_ref(), &note)).await;
            }
        }
        match line {
            Ok(line) => self.answer(&line),
            Err(_) => self.closed(),
        }
    }

    /// Passes on what the backend sent for the lane call: its progress (to `progress_to`,
    /// under the client's token), or a log message (to a stateless client that asked).
    async fn forward_note(
        &self,
        progress_to: Option<&(Origin, rmcp::model::ProgressToken)>,
        note: &[u8],
    ) {
        const LOG: &[u8] = b"notifications/message";
        if note.windows(LOG.len()).any(|w| w == LOG) {
            if let Some(origin) = &self.origin {
                crate::relay::log_line_to_stateless(origin, &self.backend.name, note).await;
            }
        } else if let Some((origin, token)) = progress_to {
            forward_progress(origin, token, note).await;
        }
    }

    /// The call into a mounted WebAssembly component: a fresh instance runs it in this
    /// process. The client's cancellation and the time limit drop the call, which ends the
    /// instance at its next epoch tick.
    async fn by_component(&self, component: &Arc<dyn Mount>, request: &CallRequest) -> Reply {
        let call = component.call(self.tool, request.arguments_text().to_owned());
        let timeout = time_limit(self.limit);
        tokio::select! {
            biased;
            result = call => Reply::complete(result),
            () = self.ct.cancelled() => Reply::Cancelled,
            () = timeout => self.timed_out(),
        }
    }

    /// The call through rmcp's client.
    async fn by_peer(&self, peer: Peer<rmcp::RoleClient>, request: &CallRequest) -> Reply {
        let mut params = match request.to_params(self.tool) {
            Ok(params) => params,
            Err(error) => return Reply::Error(error),
        };
        if let Some(trace) = &self.trace {
            trace.set_in(params.meta.get_or_insert_default());
        }
        // Recorded before sending, so that what the backend sends for the call (progress, a
        // sampling request) finds the client that made it.
        let record = self
            .backend
            .state()
            .calls
            .clone()
            .zip(self.origin.clone())
            .map(|(calls, origin)| calls.begin(origin));
        let options = self.request_options(&params);
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let handle = match peer.send_request_with_option(request, options).await {
            Ok(handle) => handle,
            Err(error) => return self.failed(error),
        };
        if let Some(record) = &record {
            record.attach(handle.id.clone(), Some(handle.progress_token.clone()));
        }
        let mut abandon = CancelOnDrop {
            peer: peer.clone(),
            id: Some(handle.id.clone()),
            reason: CANCELLED_BY_CLIENT.to_owned(),
        };
        let timeout = time_limit(self.limit);
        let result = tokio::select! {
            r = handle.await_response() => r,
            () = self.ct.cancelled() => return Reply::Cancelled,
            () = timeout => {
                abandon.reason = self.timeout_reason();
                return self.timed_out();
            }
        };
        abandon.id = None;
        if let Some(record) = &record {
            record.settle().await;
        }
        match result {
            Ok(ServerResult::CallToolResult(result)) => Reply::complete(result),
            Ok(ServerResult::InputRequiredResult(result)) => {
                Reply::Typed(CallToolResponse::InputRequired(result))
            }
            Ok(ServerResult::CreateTaskResult(result)) => {
                Reply::Typed(CallToolResponse::Task(result))
            }
            Ok(_) => self.failed(ServiceError::UnexpectedResponse),
            Err(error) => self.failed(error),
        }
    }

    /// The reply for the backend's response line.
    fn answer(&self, line: &[u8]) -> Reply {
        #[derive(serde::Deserialize)]
        struct Answer<'a> {
            #[serde(borrow, default)]
            result: Option<&'a RawValue>,
            #[serde(default)]
            error: Option<rmcp::ErrorData>,
        }
        match serde_json::from_slice::<Answer<'_>>(line) {
            Ok(Answer {
                result: Some(result),
                ..
            }) => Reply::Text(result.to_owned()),
            Ok(Answer {
                error: Some(error), ..
            }) => Reply::Error(error),
            _ => Reply::complete(error_result(format!(
                "Server `{}` answered `{}` with something that is not a JSON-RPC response; \
                 check that it is an MCP server that follows the protocol.",
                self.backend.name, self.tool
            ))),
        }
    }

    fn failed(&self, error: ServiceError) -> Reply {
        match error {
            ServiceError::McpError(error) => Reply::Error(error),
            ServiceError::TransportClosed => self.closed(),
            other => Reply::complete(error_result(format!(
                "Calling `{}` on server `{}` failed: {other}",
                self.tool, self.backend.name
            ))),
        }
    }

    fn closed(&self) -> Reply {
        Reply::complete(error_result(format!(
            "Server `{}` closed its connection while running `{}` (it may have crashed). \
             magg restarts it automatically; call magg_status to see its state, then retry.",
            self.backend.name, self.tool
        )))
    }

    fn timeout_reason(&self) -> String {
        format!(
            "magg's limit for one call (backend_call_timeout, {}) ran out",
            seconds(self.limit)
        )
    }

    fn timed_out(&self) -> Reply {
        Reply::complete(error_result(format!(
            "Server `{}` did not answer `{}` within {} (backend_call_timeout), so magg \
             cancelled the call. Retry it, or raise backend_call_timeout in the config (0 means \
             no limit) if the tool needs longer.",
            self.backend.name,
            self.tool,
            seconds(self.limit)
        )))
    }
}

fn seconds(limit: Option<Duration>) -> String {
    match limit {
        Some(limit) => format!("{} s", limit.as_secs_f64()),
        None => "no limit".to_owned(),
    }
}

/// Completes when `limit` has passed; never without one.
async fn time_limit(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The next item of an optional receiver; pending forever without one.
async fn next(rx: &mut Option<mpsc::UnboundedReceiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends a backend's progress notification line (under the lane's token) to the client under
/// its own `token`.
async fn forward_progress(origin: &Origin, token: &rmcp::model::ProgressToken, line: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Note {
        params: ProgressNotificationParam,
    }
    match serde_json::from_slice::<Note>(line) {
        Ok(Note { mut params }) => {
            params.progress_token = token.clone();
            origin.send_progress(params).await;
        }
        Err(e) => tracing::debug!("dropped a progress notification magg cannot read: {e}"),
    }
}

/// A lane call in flight: if the call ends without its answer (the caller went away), the
/// backend is told to cancel it.
struct LaneCall<'a> {
    lane: &'a Lane,
    id: u64,
    armed: bool,
}

impl LaneCall<'_> {
    fn cancel(&mut self, reason: &str) {
        self.armed = false;
        self.lane.cancel(self.id, reason);
    }
}

impl Drop for LaneCall<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lane.cancel(self.id, CANCELLED_BY_CLIENT);
        }
    }
}

/// Tells an rmcp backend its request is cancelled when the caller stops waiting for the answer
/// (a client's `notifications/cancelled`, its session closing, or the time limit).
struct CancelOnDrop {
    peer: Peer<rmcp::RoleClient>,
    id: Option<RequestId>,
    reason: String,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        let reason = std::mem::take(&mut self.reason);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let params = rmcp::model::CancelledNotificationParam::new(Some(id), Some(reason));
                let _ = peer.notify_cancelled(params).await;
            });
        }
    }
}
