//! Requests for a backend other than tools/call (which has its own route, [`crate::call`]):
//! `resources/read`, `prompts/get` and `completion/complete`, each looked up in the catalog
//! snapshot and forwarded to the backend that serves it (the calling session's own instance of a
//! session-isolated server), waiting for one that is starting.
//! With tracing on, the request to the backend is a span, whose trace context the backend gets
//! in the request's `_meta`.
//! A backend of protocol 2026-07-28 may answer `resources/read` or `prompts/get` with
//! `input_required`: a client of the session era is asked what the backend needs, and the
//! request goes again with its answers ([`inputs`]); a stateless client gets the result itself.

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, ServiceError,
    model::{
        CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
        ReadResourceRequestParams, ReadResourceResponse, Reference,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::Hub;
use crate::{
    backend::{Backend, Status},
    catalog::{Route, split_prefixed_uri},
    relay::{current_origin, inputs},
    telemetry::{self, Outcome},
};

impl Hub {
    /// Runs a `resources/read` of an exposed URI.
    pub async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        ct: CancellationToken,
    ) -> Result<ReadResourceResponse, McpError> {
        let granted = crate::relay::current_view().is_none_or(|v| v.resource(&params.uri, None));
        if granted && let Some(own) = self.own().read(self, &params.uri) {
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
                Some(serde_json::json!({ "uri": params.uri })),
            ));
        };
        self.wait_if_starting(&route.backend).await;
        let (instance, peer) = self.instance_peer(&route.backend).await?;
        params.uri = route.name;
        let backend = &route.backend.name;
        let span = telemetry::backend_span("resources/read", backend, None);
        if let Some(trace) = telemetry::inject(&span) {
            trace.set_in(params.meta.get_or_insert_default());
        }
        let origin = current_origin().filter(inputs::answers_for);
        // Recorded, so that what the backend asks meanwhile finds the client.
        let _record = recorded(&instance);
        let send = |params| async {
            tokio::select! {
                r = peer.read_resource_once(params) => r.map_err(|e| backend_error(backend, e)),
                _ = ct.cancelled() => Err(cancelled()),
            }
        };
        let result = inputs::rounds(origin.as_ref(), backend, params, &ct, send)
            .instrument(span.clone())
            .await;
        Outcome::of(&result).record(&span);
        result
    }

    /// Runs a `prompts/get` of an exposed prompt name.
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        ct: CancellationToken,
    ) -> Result<GetPromptResponse, McpError> {
        let snapshot = self.snapshot();
        let mut route = snapshot.prompt(&params.name).cloned();
        if route.is_none() && snapshot.prompts.iter().any(|p| p.name == params.name) {
            // One of magg's own.
            return self
                .own()
                .prompt(self, &params.name, params.arguments)
                .await
                .map(GetPromptResponse::from);
        }
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
        let (instance, peer) = self.instance_peer(&route.backend).await?;
        let span = telemetry::backend_span("prompts/get", &route.backend.name, Some(&route.name));
        span.record("gen_ai.prompt.name", route.name.as_str());
        if let Some(trace) = telemetry::inject(&span) {
            trace.set_in(params.meta.get_or_insert_default());
        }
        params.name = route.name;
        let backend = &route.backend.name;
        let origin = current_origin().filter(inputs::answers_for);
        // Recorded, so that what the backend asks meanwhile finds the client.
        let _record = recorded(&instance);
        let send = |params| async {
            tokio::select! {
                r = peer.get_prompt_once(params) => r.map_err(|e| backend_error(backend, e)),
                _ = ct.cancelled() => Err(cancelled()),
            }
        };
        let result = inputs::rounds(origin.as_ref(), backend, params, &ct, send)
            .instrument(span.clone())
            .await;
        Outcome::of(&result).record(&span);
        result
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
        let Ok((_, peer)) = self.instance_peer(&route.backend).await else {
            return Ok(CompleteResult::default());
        };
        let backend = &route.backend.name;
        tokio::select! {
            r = peer.complete(params) => r.map_err(|e| backend_error(backend, e)),
            _ = ct.cancelled() => Err(cancelled()),
        }
    }
}

/// The request of the current client recorded as in flight on `backend` while the guard
/// lives: a request the backend sends meanwhile (over a pipe, which does not say what it is
/// for) goes to that client.
fn recorded(backend: &Backend) -> Option<crate::relay::CallGuard> {
    let calls = backend.state().calls.clone()?;
    Some(calls.begin(current_origin()?))
}

impl Hub {
    /// The instance of `backend` the current request's session uses (its own, for a
    /// session-isolated server), with its live connection.
    async fn instance_peer(
        &self,
        backend: &Arc<Backend>,
    ) -> Result<(Arc<Backend>, rmcp::service::Peer<rmcp::RoleClient>), McpError> {
        let instance = self
            .instance_for(backend)
            .await
            .map_err(|m| McpError::internal_error(m, None))?;
        let peer = running_peer(&instance).map_err(|m| McpError::internal_error(m, None))?;
        Ok((instance, peer))
    }

    /// Waits, within the list grace period, for a backend that is still starting.
    async fn wait_if_starting(&self, backend: &Backend) {
        if backend.state().status == Status::Starting {
            self.wait_for_backends().await;
        }
    }
}

/// The backend's live connection, or a message saying why there is none.
pub(crate) fn running_peer(
    backend: &Backend,
) -> Result<rmcp::service::Peer<rmcp::RoleClient>, String> {
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

/// A backend's failure to answer a request, as the error for the client.
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
