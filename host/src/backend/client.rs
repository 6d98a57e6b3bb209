//! The MCP client magg runs against each backend: it turns the backend's list_changed
//! notifications into events for the backend's supervisor, and hands what the backend sends
//! for clients (progress, logs, resource updates, sampling / elicitation / roots requests) to
//! the relay, which finds the client session it belongs to.

// Logging notifications are deprecated by SEP-2577 but still sent by 2025-11-25 servers.
#![allow(deprecated)]

use std::sync::Arc;

use indexmap::IndexMap;
use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient,
    model::{
        ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationCapability,
        FormElicitationCapability, Implementation, ListRootsResult, LoggingLevel,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion, Request,
        RequestNoParam, ResourceUpdatedNotificationParam, ServerRequest, UrlElicitationCapability,
    },
    service::{NotificationContext, RequestContext},
};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::relay::{self, Ask, Calls, Sessions};

/// Which of a backend's lists changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`
    Tools,
    /// `prompts/list`
    Prompts,
    /// `resources/list` and `resources/templates/list`
    Resources,
}

/// The client handler of one backend connection.
#[derive(Clone)]
pub(super) struct BackendClient {
    pub(super) server: String,
    pub(super) lists: mpsc::UnboundedSender<ListKind>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) calls: Arc<Calls>,
}

impl BackendClient {
    async fn ask(
        &self,
        ask: Ask,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> Result<ClientResult, McpError> {
        relay::ask_client(
            &self.sessions,
            &self.calls,
            &self.server,
            ask,
            request,
            context,
        )
        .await
    }
}

fn unexpected(what: &str) -> McpError {
    McpError::internal_error(
        format!("the client answered {what} with another kind of result"),
        None,
    )
}

/// What magg tells every backend it can do: everything it relays for its clients. Backends
/// start before (and independently of) clients and are shared by all of them, so this is the
/// set magg can pass on; a request for a client that lacks the capability gets an error.
fn capabilities() -> ClientCapabilities {
    ClientCapabilities::builder()
        .enable_roots()
        .enable_roots_list_changed()
        .enable_sampling()
        .enable_elicitation_with(
            ElicitationCapability::new()
                .with_form(FormElicitationCapability::new())
                .with_url(UrlElicitationCapability::new()),
        )
        .build()
}

/// The `_meta` members of protocol 2026-07-28 that every request magg sends a stateless server
/// carries: the protocol `version`, magg's client info and the capabilities it relays.
pub(crate) fn envelope(version: &ProtocolVersion) -> IndexMap<String, Box<RawValue>> {
    let mut members = IndexMap::new();
    let mut put = |key: &str, value: serde_json::Result<Box<RawValue>>| {
        if let Ok(value) = value {
            members.insert(format!("io.modelcontextprotocol/{key}"), value);
        }
    };
    put("protocolVersion", serde_json::value::to_raw_value(version));
    put(
        "clientInfo",
        serde_json::value::to_raw_value(&Implementation::new("magg", env!("CARGO_PKG_VERSION"))),
    );
    put(
        "clientCapabilities",
        serde_json::value::to_raw_value(&capabilities()),
    );
    members
}

impl ClientHandler for BackendClient {
    fn get_info(&self) -> ClientConfig {
        // `initialize` names the newest version that has it; 2026-07-28 goes by discover.
        ClientConfig::new(
            capabilities(),
            Implementation::new("magg", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let request = ServerRequest::CreateMessageRequest(Request::new(params));
        match self.ask(Ask::Sampling, request, context).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(unexpected("sampling/createMessage")),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        let request = ServerRequest::ListRootsRequest(RequestNoParam {
            method: Default::default(),
            extensions: Default::default(),
        });
        match self.ask(Ask::Roots, request, context).await? {
            ClientResult::ListRootsResult(result) => Ok(result),
            _ => Err(unexpected("roots/list")),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ask = match &params {
            ElicitRequestParams::UrlElicitationParams { .. } => Ask::ElicitUrl,
            _ => Ask::ElicitForm,
        };
        let request = ServerRequest::ElicitRequest(Request::new(params));
        match self.ask(ask, request, context).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(unexpected("elicitation/create")),
        }
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some((origin, params, forwarding)) = self.calls.progress(&params).await {
            origin.send_progress(params).await;
            drop(forwarding);
        }
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.sessions
            .backend_resource_updated(&self.server, &params.uri);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Tools);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Prompts);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Resources);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        relay::log_to_stateless(&self.calls, &self.server, &params, &context.extensions).await;
        let logger = params.logger.as_deref().unwrap_or("");
        let data = match &params.data {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match params.level {
            LoggingLevel::Debug => tracing::debug!(server = %self.server, logger, "{data}"),
            LoggingLevel::Info | LoggingLevel::Notice => {
                tracing::info!(server = %self.server, logger, "{data}")
            }
            LoggingLevel::Warning => tracing::warn!(server = %self.server, logger, "{data}"),
            _ => tracing::error!(server = %self.server, logger, "{data}"),
        }
        self.sessions.log(&self.server, params);
    }
}
