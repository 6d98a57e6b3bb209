//! The one route of a tools/call, whatever sent it: a client on stdio or HTTP, the `proxy`
//! tool, or a routing hook's reroute.
//!
//! # Design
//! - A call arrives as a [`CallRequest`]: its params as the JSON text the client sent,
//!   checked once (a missing `name` or `arguments` that are not an object are invalid params).
//! - [`call_tool`] owns the trip: the lookup in the catalog snapshot (waiting for a backend
//!   that is still starting, up to its init timeout), the routing hooks (before-call may
//!   rewrite, reroute, deny or answer; after-call may replace the result), and the error texts.
//! - [`send`] is the last leg, to a backend: on its stdio lane as text, or through rmcp's
//!   client. It records which client the call is for (so that the backend's progress and
//!   requests find it), passes progress back, stops at the client's cancellation and at the
//!   per-call time limit (cancelling the call at the backend), and turns a backend that went
//!   away into a result the model can read.
//! - The call runs inside the client's [`crate::relay::ORIGIN`], which the frontend sets. Its
//!   session says how far the client is trusted: one magg could not authenticate may not call
//!   the own tools that start servers or change the config ([`access`]), however the call
//!   arrives (directly, through `proxy`, or rerouted by a hook).
//! - It comes back as a [`Reply`]: a backend's result as the text it sent, or typed. Every
//!   call ends in exactly one reply, which each frontend writes in its own form.
//! - Observed only when someone looks: with tracing on, the call is a span (its parent the
//!   client's trace context: `traceparent` in the params' `_meta`, else what the frontend
//!   found outside them), each routing hook and the call to the backend a child span of it,
//!   and the backend is sent the backend span's context in `_meta`. With debug logs on, each
//!   call ends in one line with its session, server, tool, duration and outcome (never its
//!   arguments). With neither, the call takes the plain route.

mod access;
mod reply;
mod request;
mod send;

use std::{sync::Arc, time::Instant};

use rmcp::{
    ErrorData as McpError,
    model::{CallToolRequestParams, CallToolResponse},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use self::{
    reply::{Reply, ResultText, error_line, result_line},
    request::CallRequest,
};
use crate::{
    backend::Status,
    catalog::{Route, Snapshot, ToolRoute},
    hub::Hub,
    mcp::error_result,
    metrics,
    plugins::{AfterText, Decision, HookRun, ToolCall},
    telemetry,
};

/// The target of the call log's lines (one per call, at debug level).
pub const CALL_LOG: &str = "magg::call";

/// Runs one tools/call to the end, and counts it ([`crate::metrics`]). It counts as work in
/// flight until it ends, so that magg, told to stop, waits for it whatever its transport.
pub async fn call_tool(hub: &Arc<Hub>, request: CallRequest, ct: CancellationToken) -> Reply {
    let _work = hub.work();
    if telemetry::on() || tracing::enabled!(target: CALL_LOG, tracing::Level::DEBUG) {
        return Box::pin(observed(hub, request, ct)).await;
    }
    if !metrics::enabled() {
        return route(hub, request, ct).await.0;
    }
    let started = Instant::now();
    let (reply, target) = route(hub, request, ct).await;
    count(target.as_ref(), &reply.outcome(), started);
    reply
}

/// Counts a call that went to `target` (`None`: a tool magg does not have) and ended so.
fn count(target: Option<&ToolRoute>, outcome: &telemetry::Outcome, started: Instant) {
    if !metrics::enabled() {
        return;
    }
    let metrics = metrics::global();
    let Some(target) = target else {
        metrics.unknown_tool_call();
        return;
    };
    let outcome = match outcome {
        telemetry::Outcome::Ok => metrics::Outcome::ok,
        telemetry::Outcome::ToolError => metrics::Outcome::tool_error,
        telemetry::Outcome::Error(_) => metrics::Outcome::error,
        telemetry::Outcome::Cancelled => metrics::Outcome::cancelled,
    };
    metrics.tool_call(target.server(), target.tool(), outcome, started.elapsed());
}

/// [`call_tool`] in its span, ending in the call log's line.
async fn observed(hub: &Arc<Hub>, mut request: CallRequest, ct: CancellationToken) -> Reply {
    let started = Instant::now();
    let origin = crate::relay::current_origin();
    let session = origin.as_ref().and_then(|o| o.session.id());
    let tool = request.name.clone();
    let span = if telemetry::on() {
        let parent = request.trace_parent.take().or_else(|| {
            let meta = telemetry::MetaText::read(request.meta_text()?);
            telemetry::parent(meta.carrier())
        });
        let id = origin
            .as_ref()
            .and_then(|o| o.request_id.as_ref())
            .map(request_id_text);
        let span =
            telemetry::request_span("tools/call", Some(&tool), session, id.as_deref(), parent);
        span.record("gen_ai.operation.name", "execute_tool");
        span.record("gen_ai.tool.name", tool.as_str());
        span.record("magg.tool", tool.as_str());
        span
    } else {
        tracing::Span::none()
    };
    let (reply, target) = route(hub, request, ct).instrument(span.clone()).await;
    let outcome = reply.outcome();
    count(target.as_ref(), &outcome, started);
    let server = target.as_ref().map(ToolRoute::server);
    if let Some(server) = server {
        span.record("magg.server", server);
    }
    outcome.record(&span);
    tracing::debug!(
        target: CALL_LOG,
        session,
        server = %server.unwrap_or(""),
        tool = %tool,
        duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        outcome = %outcome.as_str(),
        "tools/call"
    );
    reply
}

/// A JSON-RPC request id as text (a number's digits, a string as it is).
pub fn request_id_text(id: &rmcp::model::RequestId) -> String {
    match id {
        rmcp::model::NumberOrString::Number(n) => n.to_string(),
        rmcp::model::NumberOrString::String(s) => s.to_string(),
    }
}

/// The route of a tools/call: its tool's way (magg's own, through the routing hooks, or
/// straight to its backend). Also gives the tool it was for (`None` for a tool magg does not
/// have).
async fn route(
    hub: &Arc<Hub>,
    request: CallRequest,
    ct: CancellationToken,
) -> (Reply, Option<ToolRoute>) {
    let mut snapshot = hub.snapshot();
    if snapshot.tool(&request.name).is_none() {
        // A client may call a tool it knows before magg has (re)started its server.
        snapshot = Box::pin(hub.wait_for_tool(&request.name)).await;
    }
    let Some(target) = snapshot.tool(&request.name).cloned() else {
        return (
            Reply::Error(unknown_tool(hub, &snapshot, &request.name)),
            None,
        );
    };
    drop(snapshot);
    // The rarer ways are boxed, so that the future of a plain call (which every frontend
    // spawns as a task, moving it a few times) stays small.
    let reply = match &target {
        ToolRoute::Own(own) => Box::pin(call_own(hub, own, &request, ct)).await,
        ToolRoute::Backend(route) if hub.plugins.has_routing_hooks() => {
            Box::pin(hooked(hub, route.clone(), request, ct)).await
        }
        ToolRoute::Backend(route) => send::to_backend(hub, route, &request, ct).await,
    };
    (reply, Some(target))
}

/// [`call_tool`] for params rmcp has decoded, answered as rmcp's response type.
pub async fn call_tool_params(
    hub: &Arc<Hub>,
    params: &CallToolRequestParams,
    ct: CancellationToken,
) -> Result<CallToolResponse, McpError> {
    call_tool_params_from(hub, params, None, ct).await
}

/// [`call_tool_params`] for a client whose trace context (rmcp keeps `_meta` apart from the
/// params; HTTP headers) names `trace_parent`.
pub async fn call_tool_params_from(
    hub: &Arc<Hub>,
    params: &CallToolRequestParams,
    trace_parent: Option<opentelemetry::Context>,
    ct: CancellationToken,
) -> Result<CallToolResponse, McpError> {
    let mut request = CallRequest::from_params(params)?;
    request.trace_parent = trace_parent;
    call_tool(hub, request, ct).await.into_response()
}

async fn call_own(
    hub: &Arc<Hub>,
    own: &str,
    request: &CallRequest,
    ct: CancellationToken,
) -> Reply {
    let arguments = request.arguments_object();
    if let Some(refusal) = access::refusal(hub, own, arguments.as_ref()) {
        return Reply::complete(refusal);
    }
    match hub.own().call(hub, own, arguments, ct).await {
        Ok(result) => Reply::complete(result),
        Err(error) => Reply::Error(error),
    }
}

/// A call through the routing hooks: before-call on the client's arguments (as text), the
/// call (rewritten or rerouted as the hooks decided), then after-call on its result. A
/// rerouted call goes to its new tool without running the hooks again.
async fn hooked(
    hub: &Arc<Hub>,
    route: Route,
    request: CallRequest,
    ct: CancellationToken,
) -> Reply {
    let (decision, run) = hub
        .plugins
        .before_call_text(&route.backend.name, &request.name, request.arguments_text())
        .await;
    let call = match decision {
        Decision::Proceed(call) => call,
        Decision::Answer(result) => return Reply::complete(result),
        Decision::Deny(message) => return Reply::complete(error_result(message)),
    };
    let reply = if !run.changed() {
        send::to_backend(hub, &route, &request, ct).await
    } else {
        let target = if call.tool == request.name {
            Some(ToolRoute::Backend(route))
        } else {
            hub.wait_for_tool(&call.tool)
                .await
                .tool(&call.tool)
                .cloned()
        };
        let Some(target) = target else {
            return Reply::complete(error_result(format!(
                "A routing hook rerouted `{}` to `{}`, which is not a tool magg has. Check the \
                 hook's settings (magg_status lists plugins).",
                request.name, call.tool
            )));
        };
        let request = request.rewritten(&call.tool, call.arguments.as_ref());
        match target {
            ToolRoute::Own(own) => call_own(hub, &own, &request, ct).await,
            ToolRoute::Backend(route) => send::to_backend(hub, &route, &request, ct).await,
        }
    };
    if run.wants_result() {
        after(hub, run, &call, reply).await
    } else {
        reply
    }
}

/// Runs the after-call hooks of `run` over a reply; protocol errors pass as they are.
async fn after(hub: &Hub, run: HookRun, call: &ToolCall, reply: Reply) -> Reply {
    match reply {
        Reply::Text(text) => {
            let Some(result) = ResultText::read(&text) else {
                return Reply::complete(error_result(format!(
                    "Server `{}` answered `{}` with a result that is not a JSON object, so the \
                     routing hooks could not see it.",
                    call.server, call.tool
                )));
            };
            match hub.plugins.after_call_text(run, call, result.wit()).await {
                AfterText::Unchanged => Reply::Text(text),
                AfterText::Withheld(error) => Reply::complete(error),
                AfterText::Replaced(next) => match result.replaced(&next) {
                    Ok(replaced) => Reply::Text(replaced),
                    Err(e) => Reply::complete(error_result(format!(
                        "A routing hook replaced the result of `{}` with one magg cannot send: \
                         {e}",
                        call.tool
                    ))),
                },
            }
        }
        Reply::Typed(CallToolResponse::Complete(result)) => {
            Reply::complete(hub.plugins.after_call(run, call, result).await)
        }
        other => other,
    }
}

/// The error for a tool name magg does not have, with close matches and, when a server that
/// could have it is not running, why.
fn unknown_tool(hub: &Hub, snapshot: &Snapshot, name: &str) -> McpError {
    let similar = snapshot.similar_tools(name);
    let mut message = format!("Unknown tool `{name}`.");
    if !similar.is_empty() {
        let names: Vec<String> = similar.iter().map(|s| format!("`{s}`")).collect();
        message.push_str(&format!(" Did you mean {}?", names.join(", ")));
    }
    // A client whose scopes limit what it sees learns nothing of the servers beyond them.
    let scoped = crate::relay::current_view().is_some();
    let down: Vec<String> = hub
        .backends()
        .iter()
        .filter(|b| {
            !scoped && b.config.prefix.is_some() && b.may_serve_tool(name, &hub.settings.prefix_sep)
        })
        .filter_map(|b| match b.state().status.clone() {
            Status::Failed { reason } => {
                Some(format!("server `{}` is not running: {reason}", b.name))
            }
            Status::Starting => Some(format!("server `{}` is still starting", b.name)),
            _ => None,
        })
        .collect();
    if down.is_empty() {
        message.push_str(
            " Call tools/list to see the available tools (a server that is still starting or \
             has failed has none listed).",
        );
    } else {
        message.push_str(&format!(
            " It may be a tool of a server that is down: {}. Call magg_status to see the \
             servers' state.",
            down.join("; ")
        ));
    }
    McpError::invalid_params(message, None)
}
