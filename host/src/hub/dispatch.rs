//! The request path from a client to a backend: look the name up in the catalog snapshot, run
//! the routing hooks, call the backend, and turn backend failures into errors a model can read.
//! Used by the frontend and by the `proxy` tool alike, so both take the same path.

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, ServiceError,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
        CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestParams,
        GetPromptResponse, ReadResourceRequestParams, ReadResourceResponse, Reference, Request,
        ServerResult,
    },
    service::PeerRequestOptions,
};
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::{
    backend::{Backend, Status},
    catalog::{Route, ToolRoute, split_prefixed_uri},
    plugins::{Decision, ToolCall},
    tools,
};

impl Hub {
    /// Runs a `tools/call` for the exposed tool `params.name`.
    ///
    /// An unknown tool is a protocol error (JSON-RPC invalid params, naming close matches); a
    /// backend that is down or fails mid-call gives an `isError` result that says so.
    pub async fn call_tool(
        self: &Arc<Self>,
        mut params: CallToolRequestParams,
        ct: CancellationToken,
    ) -> Result<CallToolResponse, McpError> {
        let mut snapshot = self.snapshot();
        if snapshot.tool(&params.name).is_none() {
            // A client may call a tool it knows before magg has finished starting its server.
            self.wait_for_backends().await;
            snapshot = self.snapshot();
        }
        let Some(route) = snapshot.tool(&params.name).cloned() else {
            return Err(unknown_tool(
                &params.name,
                &snapshot.similar_tools(&params.name),
            ));
        };
        drop(snapshot);
        let route = match route {
            ToolRoute::Own(own) => {
                let result = tools::call_own(self, own, params.arguments.take(), ct).await?;
                return Ok(CallToolResponse::Complete(result));
            }
            ToolRoute::Backend(route) => route,
        };
        if self.plugins.has_routing_hooks() {
            return self.call_hooked(route, params, ct).await;
        }
        params.name = route.name.into();
        self.wait_if_starting(&route.backend).await;
        call_backend(&route.backend, params, ct).await
    }

    /// The call path with routing hooks: before-call hooks may rewrite, reroute, deny or answer
    /// the call; after-call hooks may rewrite the result. A rerouted call goes to its new tool
    /// without running the hooks again.
    async fn call_hooked(
        self: &Arc<Self>,
        route: Route,
        mut params: CallToolRequestParams,
        ct: CancellationToken,
    ) -> Result<CallToolResponse, McpError> {
        let call = ToolCall {
            server: route.backend.name.clone(),
            tool: params.name.to_string(),
            arguments: params.arguments.take(),
        };
        let (decision, run) = self.plugins.before_call(call).await;
        let call = match decision {
            Decision::Proceed(call) => call,
            Decision::Answer(result) => return Ok(CallToolResponse::Complete(result)),
            Decision::Deny(message) => {
                return Ok(CallToolResponse::Complete(error_result(message)));
            }
        };
        let target = if call.tool == params.name {
            ToolRoute::Backend(route)
        } else {
            match self.reroute_target(&params.name, &call.tool) {
                Ok(target) => target,
                Err(message) => return Ok(CallToolResponse::Complete(error_result(message))),
            }
        };
        self.finish_hooked(target, call, run, params, ct).await
    }

    /// The tool a routing hook rerouted `from` to, or the message for a name magg does not
    /// have.
    pub(crate) fn reroute_target(&self, from: &str, to: &str) -> Result<ToolRoute, String> {
        self.snapshot().tool(to).cloned().ok_or_else(|| {
            format!(
                "A routing hook rerouted `{from}` to `{to}`, which is not a tool magg has. \
                 Check the hook's settings (magg_status lists plugins)."
            )
        })
    }

    /// Calls `target` with the call the before-call hooks let proceed (`params` gives the
    /// rest of the request, such as `_meta`), then runs the after-call hooks of `run`.
    pub(crate) async fn finish_hooked(
        self: &Arc<Self>,
        target: ToolRoute,
        call: ToolCall,
        run: crate::plugins::HookRun,
        mut params: CallToolRequestParams,
        ct: CancellationToken,
    ) -> Result<CallToolResponse, McpError> {
        let response = match target {
            ToolRoute::Own(own) => CallToolResponse::Complete(
                tools::call_own(self, own, call.arguments.clone(), ct).await?,
            ),
            ToolRoute::Backend(route) => {
                params.arguments = call.arguments.clone();
                params.name = route.name.clone().into();
                self.wait_if_starting(&route.backend).await;
                call_backend(&route.backend, params, ct).await?
            }
        };
        match response {
            CallToolResponse::Complete(result) => Ok(CallToolResponse::Complete(
                self.plugins.after_call(run, &call, result).await,
            )),
            other => Ok(other),
        }
    }

    /// Runs a `resources/read` of an exposed URI.
    pub async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        ct: CancellationToken,
    ) -> Result<ReadResourceResponse, McpError> {
        if let Some(own) = tools::read_own(self, &params.uri) {
            return own.map(ReadResourceResponse::Complete);
        }
        let mut route = self.snapshot().resource(&params.uri);
        if route.is_none() {
            self.wait_for_backends().await;
            route = self.snapshot().resource(&params.uri);
        }
        let Some(route) = route else {
            return Err(McpError::resource_not_found(
                format!(
                    "Unknown resource `{}`: no server lists it, and no server prefix matches it. \
                     Call resources/list or resources/templates/list to see what is available.",
                    params.uri
                ),
                None,
            ));
        };
        self.wait_if_starting(&route.backend).await;
        let peer = running_peer(&route.backend).map_err(|m| McpError::internal_error(m, None))?;
        params.uri = route.name;
        let backend = &route.backend.name;
        tokio::select! {
            r = peer.read_resource_once(params) => r.map_err(|e| backend_error(backend, e)),
            _ = ct.cancelled() => Err(cancelled()),
        }
    }

    /// Runs a `prompts/get` of an exposed prompt name.
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        ct: CancellationToken,
    ) -> Result<GetPromptResponse, McpError> {
        let mut route = self.snapshot().prompt(&params.name).cloned();
        if route.is_none() {
            self.wait_for_backends().await;
            route = self.snapshot().prompt(&params.name).cloned();
        }
        let Some(route) = route else {
            return Err(McpError::invalid_params(
                format!(
                    "Unknown prompt `{}`. Call prompts/list to see the available prompts.",
                    params.name
                ),
                None,
            ));
        };
        self.wait_if_starting(&route.backend).await;
        let peer = running_peer(&route.backend).map_err(|m| McpError::internal_error(m, None))?;
        params.name = route.name;
        let backend = &route.backend.name;
        tokio::select! {
            r = peer.get_prompt_once(params) => r.map_err(|e| backend_error(backend, e)),
            _ = ct.cancelled() => Err(cancelled()),
        }
    }

    /// Runs a `completion/complete` for an exposed prompt or resource template.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        ct: CancellationToken,
    ) -> Result<CompleteResult, McpError> {
        let snapshot = self.snapshot();
        let route = match &mut params.r#ref {
            Reference::Prompt(prompt) => snapshot.prompt(&prompt.name).cloned().inspect(|route| {
                prompt.name = route.name.clone();
            }),
            Reference::Resource(resource) => {
                let found = match split_prefixed_uri(&resource.uri) {
                    Some((prefix, original)) => {
                        snapshot.backends_by_prefix(prefix).map(|backend| Route {
                            backend: backend.clone(),
                            name: original,
                        })
                    }
                    None => None,
                }
                .or_else(|| snapshot.resource(&resource.uri));
                found.inspect(|route| {
                    resource.uri = route.name.clone();
                })
            }
            _ => None,
        };
        drop(snapshot);
        // Nothing to complete for names magg does not know: an empty completion, as the spec
        // allows, rather than an error in the user's input box.
        let Some(route) = route else {
            return Ok(CompleteResult::default());
        };
        let Ok(peer) = running_peer(&route.backend) else {
            return Ok(CompleteResult::default());
        };
        let backend = &route.backend.name;
        tokio::select! {
            r = peer.complete(params) => r.map_err(|e| backend_error(backend, e)),
            _ = ct.cancelled() => Err(cancelled()),
        }
    }
}

impl Hub {
    /// Waits, within the start-up grace period, for a backend that is still starting.
    async fn wait_if_starting(&self, backend: &Backend) {
        if backend.state().status == Status::Starting {
            self.wait_for_backends().await;
        }
    }
}

/// Sends one tools/call to a backend and maps transport failures to readable tool errors.
async fn call_backend(
    backend: &Arc<Backend>,
    params: CallToolRequestParams,
    ct: CancellationToken,
) -> Result<CallToolResponse, McpError> {
    let peer = match running_peer(backend) {
        Ok(peer) => peer,
        Err(message) => return Ok(CallToolResponse::Complete(error_result(message))),
    };
    let tool = params.name.clone();
    // Recorded before sending, so that what the backend sends for the call (progress, a
    // sampling request) finds the client that made it.
    let calls = backend.state().calls.clone();
    let record = calls.zip(crate::relay::current_origin());
    let record = record.map(|(calls, origin)| calls.begin(origin));
    let request = ClientRequest::CallToolRequest(Request::new(params));
    let result = match peer
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
    {
        Ok(handle) => {
            if let Some(record) = &record {
                record.attach(handle.id.clone(), Some(handle.progress_token.clone()));
            }
            let mut abandon = CancelOnDrop::new(&peer, handle.id.clone());
            let result = tokio::select! {
                r = handle.await_response() => r,
                _ = ct.cancelled() => return Err(cancelled()),
            };
            abandon.disarm();
            if let Some(record) = &record {
                record.settle().await;
            }
            result.and_then(|result| match result {
                ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
                ServerResult::InputRequiredResult(result) => {
                    Ok(CallToolResponse::InputRequired(result))
                }
                ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
                _ => Err(ServiceError::UnexpectedResponse),
            })
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(response) => Ok(response),
        Err(ServiceError::McpError(error)) => Err(error),
        Err(ServiceError::TransportClosed) => {
            Ok(CallToolResponse::Complete(error_result(format!(
                "Server `{}` closed its connection while running `{tool}` (it may have crashed). \
             magg restarts it automatically; call magg_status to see its state, then retry.",
                backend.name
            ))))
        }
        Err(other) => Ok(CallToolResponse::Complete(error_result(format!(
            "Calling `{tool}` on server `{}` failed: {other}",
            backend.name
        )))),
    }
}

/// Tells the backend its request is cancelled when the caller stops waiting for the answer (a
/// client's `notifications/cancelled`, or its session closing).
struct CancelOnDrop {
    peer: rmcp::service::Peer<rmcp::RoleClient>,
    id: Option<rmcp::model::RequestId>,
}

impl CancelOnDrop {
    fn new(peer: &rmcp::service::Peer<rmcp::RoleClient>, id: rmcp::model::RequestId) -> Self {
        CancelOnDrop {
            peer: peer.clone(),
            id: Some(id),
        }
    }

    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let params = rmcp::model::CancelledNotificationParam::new(
                    Some(id),
                    Some("cancelled by the client".to_owned()),
                );
                let _ = peer.notify_cancelled(params).await;
            });
        }
    }
}

/// The backend's live connection, or a message saying why there is none.
fn running_peer(backend: &Backend) -> Result<rmcp::service::Peer<rmcp::RoleClient>, String> {
    let state = backend.state();
    match (&state.peer, &state.status) {
        (Some(peer), Status::Running) => Ok(peer.clone()),
        (_, Status::Failed { reason }) => Err(format!(
            "Server `{}` is not running: {reason}. magg retries it automatically; fix its \
             config if the reason says so, and call magg_status to check.",
            backend.name
        )),
        (_, Status::Starting) => Err(format!(
            "Server `{}` is still starting; retry in a moment.",
            backend.name
        )),
        _ => Err(format!("Server `{}` is stopped.", backend.name)),
    }
}

/// A tool result with `isError: true` and one text block.
pub fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn unknown_tool(name: &str, similar: &[&str]) -> McpError {
    let hint = if similar.is_empty() {
        String::new()
    } else {
        format!(
            " Did you mean {}?",
            similar
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    McpError::invalid_params(
        format!(
            "Unknown tool `{name}`.{hint} Call tools/list to see the available tools (a server \
             that is still starting or has failed has none listed)."
        ),
        None,
    )
}

pub(super) fn backend_error(backend: &str, error: ServiceError) -> McpError {
    match error {
        ServiceError::McpError(error) => error,
        ServiceError::TransportClosed => McpError::internal_error(
            format!("Server `{backend}` closed its connection during the request"),
            None,
        ),
        other => McpError::internal_error(format!("Server `{backend}`: {other}"), None),
    }
}

fn cancelled() -> McpError {
    McpError::internal_error("request cancelled by the client", None)
}
