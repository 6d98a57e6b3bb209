//! The aggregator as an MCP server: the `ServerHandler` every client session talks to, and the
//! transports it is served on (stdio, streamable HTTP, or both at once over one hub). It reads
//! what clients send and writes responses; notifications and requests from backends reach
//! clients through the relay.
//!
//! # Design
//! - All sessions share one [`Hub`], so backends are shared across clients, as Magg does: one
//!   process per stdio server however many clients connect.
//! - Each session registers itself (a [`crate::relay::Session`]) when it initializes. Every
//!   request that may reach a backend runs inside [`crate::relay::ORIGIN`]: the session, the
//!   client's request id and its progress token. The backend connection records that origin
//!   beside the request id and progress token magg gave the backend, while the call is in
//!   flight.
//! - So a backend's progress goes back to the calling session under the client's own token, and
//!   a backend's request (sampling, elicitation, roots) goes to the session whose call caused
//!   it: exactly for streamable-HTTP backends, which send it on that call's stream; for stdio
//!   backends (a pipe does not say which call a request belongs to) the newest call in flight on
//!   that backend; with none in flight, the most recently active session that has the
//!   capability. A client that lacks the capability gets the backend an error at once, never a
//!   hang. Requests to an HTTP client carry the client's request id, so they travel on that
//!   request's stream.
//! - A client's `notifications/cancelled` reaches the backend under the backend's own id.
//! - Backend-wide traffic fans out: logging to every session whose level admits it (`logger`
//!   names the backend), `resources/updated` only to sessions subscribed to that URI (magg
//!   subscribes to a backend once per URI), list_changed to every session. `logging/setLevel`
//!   sets the session's level and sends backends the most verbose level any session asked for;
//!   `notifications/roots/list_changed` goes to every backend.
//! - magg tells every backend it supports sampling, elicitation (form and URL) and roots: it
//!   relays them for whichever client is calling, and backends start before any client does.
//! - Stateless clients (protocol 2026-07-28, no `initialize`) cannot be sent requests: a
//!   backend's request during their call comes back as `input_required`, and the retry's
//!   answer goes to the backend ([`mrtr`]). Results passed on from backends get the
//!   `resultType` that protocol requires.
//! - The rest of 2026-07-28: `server/discover` says what `initialize` would;
//!   `subscriptions/listen` makes the request a listener in the relay's fan-out
//!   ([`listen`]); list and read results carry caching hints for those clients only
//!   ([`cache`]).
//! - With tracing on, each request is a span ([`crate::telemetry`]) whose parent is the trace
//!   context in the request's `_meta`, else in the HTTP request's `traceparent` header; a
//!   tools/call's span is the call route's, which is handed that parent.
//! - A tools/call goes to the call route ([`crate::call`]); the stdio frontend hands it over as
//!   text, before rmcp sees it. What backends send clients outside a response (progress, logs,
//!   requests, list changes) reaches them through the relay's sessions ([`crate::relay`]).
//! - A server with `"isolation": "session"` gives each session that uses it an instance of its
//!   own ([`crate::backend::isolation`]), whose requests and logs reach that session only: no
//!   guess among the calls in flight. Stateless clients use its shared instance.

pub mod cache;
pub mod http;
mod listen;
pub mod mrtr;
pub mod stdio;

use std::sync::{Arc, OnceLock};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        DiscoverResult, GetPromptRequestParams, GetPromptResponse, Implementation,
        InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
        ReadResourceResponse, ResultType, ServerCapabilities, ServerConfig, SubscribeRequestParams,
        SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};

use crate::{
    auth::Caller,
    call,
    frontend::cache::hint_list,
    hub::Hub,
    relay::{ORIGIN, Origin, Session, Transport, Trust},
    telemetry,
};

/// Items per page of magg's list results.
pub use crate::catalog::PAGE_SIZE;

const INSTRUCTIONS: &str = "magg aggregates other MCP servers. Their tools, prompts and resources \
appear here under each server's prefix (e.g. `time_get_current_time`). Use {list_servers} and \
{status} to see the servers and their state. If a tool you expect is missing, the `proxy` tool \
can list and call everything magg serves.";

/// The handler of one client session; cheap to clone, all state lives in the hub.
#[derive(Clone)]
pub struct MaggServer {
    hub: Arc<Hub>,
    /// The session, once it has initialized.
    session: Arc<OnceLock<Arc<Session>>>,
    /// What the client may do, as its transport decided.
    trust: Trust,
    /// The client's checked token, for a transport that checks it once for the whole session
    /// (legacy SSE); streamable HTTP checks each request's own.
    caller: Option<Arc<Caller>>,
    /// How the client is connected.
    transport: Transport,
}

impl MaggServer {
    /// A handler over `hub` for a client magg trusts fully (stdio).
    pub fn new(hub: Arc<Hub>) -> Self {
        Self::with_trust(hub, Trust::Full).over(Transport::Stdio)
    }

    /// A handler over `hub` for a streamable HTTP client trusted as far as `trust` says.
    pub fn with_trust(hub: Arc<Hub>, trust: Trust) -> Self {
        MaggServer {
            hub,
            session: Arc::default(),
            trust,
            caller: None,
            transport: Transport::Http,
        }
    }

    /// This handler for a client connected over `transport`.
    pub fn over(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// This handler for a session whose token was checked once, when it opened.
    pub fn with_caller(mut self, caller: Option<Arc<Caller>>) -> Self {
        self.caller = caller;
        self
    }

    /// The caller of the request of `context`: its token's identity and view, when HTTP
    /// authentication checked one.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Option<Arc<Caller>> {
        context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>().cloned())
            .or_else(|| self.caller.clone())
    }

    /// The catalog as the client of `context` may see it.
    fn snapshot(&self, context: &RequestContext<RoleServer>) -> Arc<crate::catalog::Snapshot> {
        let caller = self.caller(context);
        self.hub
            .snapshot_for(caller.as_ref().and_then(|c| c.view.as_ref()))
    }

    /// The session's record, shared with the stdio fast path.
    pub(crate) fn session_slot(&self) -> Arc<OnceLock<Arc<Session>>> {
        self.session.clone()
    }

    /// The origin of a request of this session.
    fn origin(&self, context: &RequestContext<RoleServer>) -> Origin {
        let session = match self.session.get() {
            Some(session) => {
                session.touch();
                self.note_http_session(context);
                session.clone()
            }
            None => {
                let session = Session::detached(context.peer.clone(), self.trust);
                session.set_request_log_level(context.meta.log_level());
                session
            }
        };
        session.set_caller(self.caller(context));
        Origin::new(
            session,
            Some(context.id.clone()),
            context.meta.get_progress_token(),
        )
    }

    /// Runs `work` for the request of `context`, so that what the backend sends for it finds
    /// this session.
    async fn traced<T>(
        &self,
        context: &RequestContext<RoleServer>,
        work: impl Future<Output = T>,
    ) -> T {
        ORIGIN.scope(self.origin(context), work).await
    }

    /// The span of the request of `context`, for `method` on `target` (a tool or prompt name);
    /// none when tracing is off.
    fn span(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        target: Option<&str>,
    ) -> tracing::Span {
        self.note_http_session(context);
        if !telemetry::on() {
            return tracing::Span::none();
        }
        let session = self.session.get().and_then(|s| s.id());
        let id = call::request_id_text(&context.id);
        telemetry::request_span(method, target, session, Some(&id), trace_parent(context))
    }

    /// Notes which streamable HTTP session this session is, from the `Mcp-Session-Id` of its
    /// first request after `initialize` (each request handler comes here first): what belongs
    /// to the session beyond its record (its per-session backend instances, and, while it
    /// sleeps, what its client set) is kept by that id, which stays the same when the session
    /// sleeps and wakes.
    fn note_http_session(&self, context: &RequestContext<RoleServer>) {
        if self.transport != Transport::Http {
            return;
        }
        let Some(session) = self.session.get().filter(|s| !s.has_http_key()) else {
            return;
        };
        if let Some(id) = context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|id| id.to_str().ok())
        {
            self.hub.sessions().wake(session, http::sessions::key(id));
        }
    }

    fn session(&self) -> Result<&Arc<Session>, McpError> {
        self.session
            .get()
            .ok_or_else(|| McpError::invalid_request("the session has not initialized yet", None))
    }
}

impl ServerHandler for MaggServer {
    #[allow(deprecated)] // logging: what 2025-11-25 clients speak
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_logging()
            .build();
        let instructions = INSTRUCTIONS
            .replace(
                "{list_servers}",
                &self.hub.settings.prefixed("list_servers"),
            )
            .replace("{status}", &self.hub.settings.prefixed("status"));
        let mut info = InitializeResult::new(capabilities).with_instructions(instructions);
        info.server_info = Implementation::new("magg", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let span = self.span(&context, "initialize", None);
        context.peer.set_peer_info(request.clone());
        let session = self
            .hub
            .sessions()
            .add(context.peer.clone(), self.trust, self.transport);
        session.set_caller(self.caller(&context));
        span.record("mcp.session.id", session.id());
        let _ = self.session.set(session);
        tracing::info!(
            client = %request.client_info.name,
            version = %request.client_info.version,
            protocol = %request.protocol_version,
            "client connected"
        );
        let result = self.negotiate_initialize(&request);
        telemetry::Outcome::of(&result).record(&span);
        result
    }

    /// What `initialize` would say (versions, capabilities, serverInfo, instructions), for a
    /// stateless client; the same for every caller while magg runs.
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        let _span = self.span(&context, "server/discover", None);
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        )
        .with_ttl_ms(cache::DISCOVER_TTL)
        .with_cache_scope(CacheScope::Public))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        crate::metrics::count_list(crate::metrics::List::tools);
        // The request's span (tracing on) ends when it is answered.
        let _span = self.span(&context, "tools/list", None);
        self.hub.wait_for_backends().await;
        let snapshot = self.snapshot(&context);
        let listed = self
            .hub
            .listed_tools(&snapshot, self.session.get().map(|s| &**s));
        let (items, next) = listed.page_typed(cursor(&request))?;
        let mut result = ListToolsResult::with_all_items(items);
        result.next_cursor = next;
        hint_list!(
            result,
            &context,
            &self.hub,
            self.caller(&context).as_deref()
        );
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let response = if self.session.get().is_none() {
            // A stateless client: what its backend asks comes back as `input_required`.
            let caller = self.caller(&context);
            mrtr::call_tool(&self.hub, request, context, self.trust, caller).await
        } else {
            let ct = context.ct.clone();
            let parent = trace_parent(&context);
            self.traced(
                &context,
                call::call_tool_params_from(&self.hub, &request, parent, ct),
            )
            .await
        };
        response.map(Passed::typed)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        crate::metrics::count_list(crate::metrics::List::prompts);
        // The request's span (tracing on) ends when it is answered.
        let _span = self.span(&context, "prompts/list", None);
        self.hub.wait_for_backends().await;
        let snapshot = self.snapshot(&context);
        let (items, next) = page(&snapshot.prompts, cursor(&request))?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        hint_list!(
            result,
            &context,
            &self.hub,
            self.caller(&context).as_deref()
        );
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let ct = context.ct.clone();
        let span = self.span(&context, "prompts/get", Some(&request.name));
        span.record("gen_ai.prompt.name", request.name.as_str());
        let response = if self.session.get().is_none() {
            // A stateless client: what its backend asks comes back as `input_required`.
            let caller = self.caller(&context);
            let work = mrtr::get_prompt(&self.hub, request, context, self.trust, caller);
            telemetry::observe(span, work).await
        } else {
            let work = self.traced(&context, self.hub.get_prompt(request, ct));
            telemetry::observe(span, work).await
        };
        response.map(Passed::typed)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        crate::metrics::count_list(crate::metrics::List::resources);
        // The request's span (tracing on) ends when it is answered.
        let _span = self.span(&context, "resources/list", None);
        self.hub.wait_for_backends().await;
        let snapshot = self.snapshot(&context);
        let (items, next) = page(&snapshot.resources, cursor(&request))?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        hint_list!(
            result,
            &context,
            &self.hub,
            self.caller(&context).as_deref()
        );
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        crate::metrics::count_list(crate::metrics::List::resource_templates);
        // The request's span (tracing on) ends when it is answered.
        let _span = self.span(&context, "resources/templates/list", None);
        self.hub.wait_for_backends().await;
        let snapshot = self.snapshot(&context);
        let (items, next) = page(&snapshot.templates, cursor(&request))?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        hint_list!(
            result,
            &context,
            &self.hub,
            self.caller(&context).as_deref()
        );
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let ct = context.ct.clone();
        let span = self.span(&context, "resources/read", None);
        span.record("mcp.resource.uri", request.uri.as_str());
        // The caching hints a 2026-07-28 client gets depend on who asks.
        let (modern, caller) = (cache::modern(&context), self.caller(&context));
        let response = if self.session.get().is_none() {
            // A stateless client: what its backend asks comes back as `input_required`.
            let work = mrtr::read_resource(&self.hub, request, context, self.trust, caller.clone());
            telemetry::observe(span, work).await
        } else {
            let work = self.traced(&context, self.hub.read_resource(request, ct));
            telemetry::observe(span, work).await
        };
        response.map(|r| cache::hint_read(r.typed(), modern, caller.as_deref()))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let ct = context.ct.clone();
        let span = self.span(&context, "completion/complete", None);
        let response =
            telemetry::observe(span, self.traced(&context, self.hub.complete(request, ct))).await;
        response.map(Passed::typed)
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if self.session.get().is_none()
            && cache::modern(&context)
            && let Some(removed) = removed_in_2026("logging/setLevel")
        {
            return Err(removed);
        }
        self.note_http_session(&context);
        let session = self.session()?;
        self.hub.set_level(session, request.level).await;
        Ok(())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.note_http_session(&context);
        let session = self.session()?;
        self.hub.subscribe(session, &request.uri).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.note_http_session(&context);
        let session = self.session()?;
        self.hub.unsubscribe(session, &request.uri).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(listen::accepted(&self.hub, requested))
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        let caller = self.caller(subscription.request_context());
        let _span = self.span(subscription.request_context(), "subscriptions/listen", None);
        listen::run(&self.hub, subscription, self.trust, caller).await
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        if let Some(session) = self.session.get() {
            // A backend's roots/list that follows comes to this session.
            session.touch();
        }
        self.hub.roots_list_changed();
    }

    /// rmcp reads a request whose params do not fit its method's type as a custom request (the
    /// last, catch-all variant of `ClientRequest`). For a method magg serves that is a client's
    /// mistake in the params, answered with invalid-params naming what is wrong and how to send
    /// it; any other method is not found.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        if cache::modern(&context)
            && let Some(removed) = removed_in_2026(&request.method)
        {
            return Err(removed);
        }
        match params_fault(&request.method, request.params.as_ref()) {
            Some(message) => Err(McpError::invalid_params(message, None)),
            None => Err(McpError::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!("Method not found: {}", request.method),
                None,
            )),
        }
    }
}

/// The trace context the request of `context` carries: `traceparent` (and `tracestate`) in its
/// `_meta`, else in the HTTP request's headers. `None` when tracing is off or it carries none.
pub(crate) fn trace_parent(context: &RequestContext<RoleServer>) -> Option<opentelemetry::Context> {
    if !telemetry::on() {
        return None;
    }
    let headers = context
        .extensions
        .get::<::http::request::Parts>()
        .map(|parts| telemetry::Carrier::from_headers(&parts.headers))
        .unwrap_or_default();
    telemetry::parent(telemetry::Carrier::from_meta(&context.meta).or(headers))
}

/// A result passed on from a backend. Backends of the session era send no `resultType`, which
/// protocol 2026-07-28 requires; rmcp strips it again for older clients.
trait Passed {
    /// The result with `resultType: "complete"` where it has none.
    fn typed(self) -> Self;
}

macro_rules! passed {
    ($($response:ident),*) => {$(
        impl Passed for $response {
            fn typed(self) -> Self {
                match self {
                    $response::Complete(mut result) => {
                        result.result_type.get_or_insert(ResultType::COMPLETE);
                        $response::Complete(result)
                    }
                    other => other,
                }
            }
        }
    )*};
}

passed!(CallToolResponse, GetPromptResponse, ReadResourceResponse);

impl Passed for CompleteResult {
    fn typed(mut self) -> Self {
        self.result_type.get_or_insert(ResultType::COMPLETE);
        self
    }
}

fn cursor(request: &Option<PaginatedRequestParams>) -> Option<&str> {
    request.as_ref().and_then(|r| r.cursor.as_deref())
}

/// One page of `items` starting at `cursor` (an offset magg handed out earlier).
fn page<T: Clone>(items: &[T], cursor: Option<&str>) -> Result<(Vec<T>, Option<String>), McpError> {
    let (range, next) = crate::catalog::page_range(items.len(), cursor)?;
    Ok((items[range].to_vec(), next))
}

/// The method-not-found error for `method` when protocol 2026-07-28 removed it, saying what
/// replaces it; `None` for a method that revision still has.
pub(crate) fn removed_in_2026(method: &str) -> Option<McpError> {
    let instead = match method {
        "initialize" => {
            "there is no initialize: send the protocol version, client info and capabilities in \
             each request's _meta (server/discover tells what magg supports)"
        }
        "ping" => "there is no ping: any request (server/discover, say) shows magg is there",
        "logging/setLevel" => {
            "there is no logging/setLevel: send the level in the request's _meta \
             (io.modelcontextprotocol/logLevel)"
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            "there are no resource subscriptions of a session: open subscriptions/listen with \
             the URIs in notifications.resourceSubscriptions, and end it to unsubscribe"
        }
        _ => return None,
    };
    Some(McpError::new(
        rmcp::model::ErrorCode::METHOD_NOT_FOUND,
        format!("Method not found: {method} (protocol 2026-07-28 removed it; {instead})"),
        None,
    ))
}

/// What is wrong with the params of a request for `method`, when it is a method magg serves:
/// the reason the params do not read as that method's params, and an example of params that
/// do. `None` for a method magg does not serve.
#[allow(deprecated)] // logging/setLevel: what 2025-11-25 clients speak
fn params_fault(method: &str, params: Option<&serde_json::Value>) -> Option<String> {
    use rmcp::model::{
        CallToolRequestParams, CompleteRequestParams, GetPromptRequestParams,
        InitializeRequestParams, PaginatedRequestParams, ReadResourceRequestParams,
        SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
    };
    use serde::de::DeserializeOwned;

    /// Why `params` are no `T`.
    fn why<T: DeserializeOwned>(params: Option<&serde_json::Value>) -> String {
        match params.map(|p| serde_json::from_value::<T>(p.clone())) {
            None => "params are missing".to_owned(),
            Some(Err(e)) => e.to_string(),
            Some(Ok(_)) => "they do not match the method's params".to_owned(),
        }
    }

    const PAGE: &str = r#"no params, or {"cursor": "<nextCursor of the previous page>"}"#;
    let (why, example) = match method {
        "initialize" => (
            why::<InitializeRequestParams>(params),
            r#"{"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "my-client", "version": "1.0"}}"#,
        ),
        "ping" => (
            "ping takes no params other than _meta".to_owned(),
            "no params, or {}",
        ),
        "tools/call" => (
            why::<CallToolRequestParams>(params),
            r#"{"name": "<a tool from tools/list>", "arguments": {"<argument>": "<value>"}}"#,
        ),
        "prompts/get" => (
            why::<GetPromptRequestParams>(params),
            r#"{"name": "<a prompt from prompts/list>", "arguments": {"<argument>": "<text>"}}"#,
        ),
        "resources/read" => (
            why::<ReadResourceRequestParams>(params),
            r#"{"uri": "<a URI from resources/list>"}"#,
        ),
        "resources/subscribe" => (
            why::<SubscribeRequestParams>(params),
            r#"{"uri": "<a URI from resources/list>"}"#,
        ),
        "resources/unsubscribe" => (
            why::<UnsubscribeRequestParams>(params),
            r#"{"uri": "<a URI subscribed to>"}"#,
        ),
        "completion/complete" => (
            why::<CompleteRequestParams>(params),
            r#"{"ref": {"type": "ref/prompt", "name": "<a prompt>"}, "argument": {"name": "<argument>", "value": "<text so far>"}}"#,
        ),
        "logging/setLevel" => (why::<SetLevelRequestParams>(params), r#"{"level": "info"}"#),
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
            (why::<PaginatedRequestParams>(params), PAGE)
        }
        _ => return None,
    };
    Some(format!(
        "Invalid params for {method}: {why}. Send params like {example}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_cursors() {
        let items: Vec<usize> = (0..2500).collect();
        let (first, next) = page(&items, None).unwrap_or_default();
        assert_eq!(first.len(), PAGE_SIZE);
        assert_eq!(next.as_deref(), Some("magg:1000"));
        let (second, next) = page(&items, next.as_deref()).unwrap_or_default();
        assert_eq!(second[0], 1000);
        let (third, next) = page(&items, next.as_deref()).unwrap_or_default();
        assert_eq!(third.len(), 500);
        assert_eq!(next, None);
        assert!(page(&items, Some("bogus")).is_err());
    }
}
