//! Traces: OpenTelemetry spans of the requests magg serves, exported over OTLP/HTTP
//! (protobuf), and the W3C trace context that ties a client's trace through magg to its
//! backends.
//!
//! # Design
//! - Off unless configured: the exporter is set up only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Off, [`on`] is one relaxed atomic load and
//!   no span is made, so a call's path does not change.
//! - The rest of the setup is the SDK's, from the standard variables: the sampler
//!   (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the batch processor
//!   (`OTEL_BSP_*`), the exporter's headers and timeout (`OTEL_EXPORTER_OTLP_*`), resource
//!   attributes (`OTEL_RESOURCE_ATTRIBUTES`). The service is `OTEL_SERVICE_NAME`, else `magg`.
//!   Only `http/protobuf` is spoken; another `OTEL_EXPORTER_OTLP_PROTOCOL` leaves tracing off
//!   with an error that says what to set.
//! - Spans are `tracing` spans of the target [`TARGET`], turned into OpenTelemetry spans by
//!   `tracing-opentelemetry`; only they reach the exporter, and the log output never shows them.
//!   A request's span takes its parent from the request's `params._meta` (`traceparent`,
//!   `tracestate`), else from the HTTP request's headers of those names ([`parent`]); a call to
//!   a backend gets its own span's context in `params._meta` ([`inject`]), in place of what the
//!   client sent, so one trace runs client → magg → backend.
//! - The batch processor runs on a thread of its own, and the export goes out through a reqwest
//!   client on a one-thread runtime of its own, so it works beside magg's current-thread
//!   runtime and while that runtime is shutting down. [`shutdown`] flushes what is left: magg
//!   calls it when `serve` ends (stdin closed, SIGINT, SIGTERM).
//! - Attributes follow OpenTelemetry's conventions for MCP where they exist
//!   (`mcp.method.name`, `mcp.session.id`, `jsonrpc.request.id`, `gen_ai.tool.name`,
//!   `gen_ai.prompt.name`, `mcp.resource.uri`, `error.type`), plus `magg.server`, `magg.tool`
//!   and `magg.outcome`. Never arguments, results or secrets.
//! - Beside the spans, an access log of `/mcp` ([`Access`], target [`ACCESS`]) names each POST
//!   by its `Mcp-Method` and `Mcp-Name` headers, the same a load balancer routes on.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, Targets},
    registry::LookupSpan,
};

/// The `tracing` target of the spans that are exported (and of nothing else).
pub const TARGET: &str = "magg::otel";

/// The service name when `OTEL_SERVICE_NAME` does not give one.
const SERVICE: &str = "magg";

/// The W3C trace context's keys, in `_meta` as in HTTP headers.
pub const TRACEPARENT: &str = "traceparent";
/// See [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";

/// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are made and exported.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Why tracing could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or its traces variant) names a protocol magg does not
    /// export with.
    #[error(
        "{variable}={value}: magg exports traces over OTLP/HTTP with protobuf only; set \
         {variable}=http/protobuf (or leave it unset) and point OTEL_EXPORTER_OTLP_ENDPOINT at \
         the collector's HTTP port (usually 4318)"
    )]
    Protocol {
        /// The variable that named it.
        variable: &'static str,
        /// What it named.
        value: String,
    },
    /// The exporter or its HTTP client could not be made.
    #[error(
        "cannot set up the OTLP exporter: {0}. Check OTEL_EXPORTER_OTLP_ENDPOINT (a URL such as \
         http://localhost:4318) and the other OTEL_EXPORTER_OTLP_* variables"
    )]
    Exporter(String),
}

/// Whether the environment asks for traces (an OTLP endpoint is set).
pub fn configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// The layer that turns magg's request spans into exported OpenTelemetry spans, when the
/// environment configures an OTLP endpoint; `None` (and tracing off) when it does not.
pub fn layer<S>() -> Result<Option<impl Layer<S>>, TelemetryError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !configured() {
        return Ok(None);
    }
    check_protocol()?;
    let client = ExportClient::new()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(export_timeout())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer("magg");
    if PROVIDER.set(provider).is_err() {
        // Set up once per process; a second subscriber does not export twice.
        return Ok(None);
    }
    ON.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(Targets::new().with_target(TARGET, LevelFilter::INFO));
    Ok(Some(layer))
}

/// Exports the spans not yet exported and stops the exporter. Returns at once when tracing is
/// off; call it once, when magg is done serving.
pub fn shutdown() {
    let Some(provider) = PROVIDER.get() else {
        return;
    };
    ON.store(false, Ordering::Relaxed);
    if let Err(e) = provider.shutdown() {
        tracing::warn!("traces not yet exported may be lost: {e}");
    }
}

fn check_protocol() -> Result<(), TelemetryError> {
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        match std::env::var(variable) {
            Ok(value) if value.is_empty() || value == "http/protobuf" => return Ok(()),
            Ok(value) => return Err(TelemetryError::Protocol { variable, value }),
            Err(_) => {}
        }
    }
    Ok(())
}

fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.parse::<u64>().ok())
    .map_or(EXPORT_TIMEOUT, Duration::from_millis)
}

/// The resource of magg's spans: the SDK's (from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`), named `magg` when neither names the service.
fn resource() -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if named {
        builder.build()
    } else {
        builder.with_service_name(SERVICE).build()
    }
}

/// The HTTP client of the exporter: magg's reqwest, on a runtime of its own (the batch
/// processor's thread runs no runtime, and magg's may be busy or ending).
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> Result<ExportClient, TelemetryError> {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        crate::tls::install();
        let runtime = match RUNTIME.get() {
            Some(runtime) => runtime,
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("magg-otlp")
                    .enable_all()
                    .build()
                    .map_err(|e| TelemetryError::Exporter(format!("no runtime: {e}")))?;
                RUNTIME.get_or_init(|| runtime)
            }
        };
        let client = reqwest::Client::builder()
            .timeout(export_timeout())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Ok(ExportClient {
            client,
            runtime: runtime.handle().clone(),
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let answer = async {
                let response = client.execute(request).await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            }
            .await;
            let _ = tx.send(answer);
        });
        let (status, headers, body) = rx.await??;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// A W3C trace context as a request carried it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carrier<'a> {
    /// `traceparent`.
    pub traceparent: Option<&'a str>,
    /// `tracestate`.
    pub tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent,
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

impl<'a> Carrier<'a> {
    /// The trace context of an MCP `_meta` object.
    pub fn from_meta(meta: &'a rmcp::model::MetaObject) -> Carrier<'a> {
        Carrier {
            traceparent: meta.get_traceparent(),
            tracestate: meta.get_tracestate(),
        }
    }

    /// The trace context of HTTP request headers.
    pub fn from_headers(headers: &'a http::HeaderMap) -> Carrier<'a> {
        Carrier {
            traceparent: headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()),
            tracestate: headers.get(TRACESTATE).and_then(|v| v.to_str().ok()),
        }
    }

    /// This carrier when it has a `traceparent`, else `other`.
    pub fn or(self, other: Carrier<'a>) -> Carrier<'a> {
        if self.traceparent.is_some() {
            self
        } else {
            other
        }
    }
}

/// The trace context in `_meta` given as JSON text (as the stdio frontend reads a request).
#[derive(Debug, Default, serde::Deserialize)]
pub struct MetaText<'a> {
    #[serde(borrow, default)]
    traceparent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    tracestate: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> MetaText<'a> {
    /// Reads the trace context of a `_meta` object's JSON text; none when it is not one.
    pub fn read(meta: &'a str) -> MetaText<'a> {
        serde_json::from_str(meta).unwrap_or_default()
    }

    /// Its trace context.
    pub fn carrier(&self) -> Carrier<'_> {
        Carrier {
            traceparent: self.traceparent.as_deref(),
            tracestate: self.tracestate.as_deref(),
        }
    }
}

/// The remote parent a carrier names; `None` when it names none (or not validly).
pub fn parent(carrier: Carrier<'_>) -> Option<opentelemetry::Context> {
    carrier.traceparent?;
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// The W3C trace context of `span`, to pass on to a backend: `traceparent` and, when the trace
/// has state, `tracestate`. `None` when tracing is off or the span is not exported.
pub fn inject(span: &tracing::Span) -> Option<Outgoing> {
    if !on() || span.is_none() {
        return None;
    }
    let mut out = Outgoing::default();
    TraceContextPropagator::new().inject_context(&span.context(), &mut out);
    out.traceparent.is_some().then_some(out)
}

/// A trace context to send on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `tracestate`, when the trace has state.
    pub tracestate: Option<String>,
}

impl Injector for Outgoing {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

impl Outgoing {
    /// Puts this context in an MCP `_meta` object, in place of one it had.
    pub fn set_in(&self, meta: &mut rmcp::model::MetaObject) {
        meta.remove(TRACESTATE);
        if let Some(traceparent) = &self.traceparent {
            meta.set_traceparent(traceparent.clone());
        }
        if let Some(tracestate) = &self.tracestate {
            meta.set_tracestate(tracestate.clone());
        }
    }

    /// The `_meta` members of this context.
    pub fn members(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (TRACEPARENT, self.traceparent.as_deref()),
            (TRACESTATE, self.tracestate.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
    }
}

/// The span of one request a client sent magg (`SERVER` kind), named `{method} {target}` as
/// the MCP conventions ask (the tool or prompt name; just the method without one). Its parent is
/// `parent` when the request carried one, else the span it runs in (a call made by the `proxy`
/// tool runs inside the proxy call's). [`tracing::Span::none`] when tracing is off.
pub fn request_span(
    method: &str,
    target: Option<&str>,
    session: Option<u64>,
    request_id: Option<&str>,
    parent: Option<opentelemetry::Context>,
) -> tracing::Span {
    if !on() {
        return tracing::Span::none();
    }
    let name = match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        mcp.method.name = %method,
        mcp.session.id = session,
        jsonrpc.request.id = request_id,
        gen_ai.operation.name = tracing::field::Empty,
        gen_ai.tool.name = tracing::field::Empty,
        gen_ai.prompt.name = tracing::field::Empty,
        mcp.resource.uri = tracing::field::Empty,
        magg.server = tracing::field::Empty,
        magg.tool = tracing::field::Empty,
        magg.outcome = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    span
}

/// The span of a request magg sends a backend for a client's request (`CLIENT` kind), a child
/// of the span it runs in. [`tracing::Span::none`] when tracing is off.
pub fn backend_span(method: &str, server: &str, target: Option<&str>) -> tracing::Span {
    if !on() {
        return tracing::Span::none();
    }
    let name = match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_owned(),
    };
    tracing::info_span!(
        target: TARGET,
        "backend",
        otel.name = %name,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        mcp.method.name = %method,
        gen_ai.tool.name = tracing::field::Empty,
        gen_ai.prompt.name = tracing::field::Empty,
        magg.server = %server,
        magg.outcome = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// The span of one routing hook's part of a call (`before-call` or `after-call`), a child of
/// the span it runs in. [`tracing::Span::none`] when tracing is off.
pub fn hook_span(stage: &'static str, plugin: &str, tool: &str) -> tracing::Span {
    if !on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "hook",
        otel.name = %format!("routing hook {stage}"),
        otel.kind = "internal",
        magg.plugin = %plugin,
        magg.hook = stage,
        magg.tool = %tool,
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Runs a request's `work` in `span`, and records how it ended there.
pub async fn observe<T>(
    span: tracing::Span,
    work: impl Future<Output = Result<T, rmcp::ErrorData>>,
) -> Result<T, rmcp::ErrorData> {
    if span.is_none() {
        return work.await;
    }
    let result = tracing::Instrument::instrument(work, span.clone()).await;
    Outcome::of(&result).record(&span);
    result
}

/// How a request ended, as spans and the call log record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// A tool's result with `isError: true`.
    ToolError,
    /// A JSON-RPC error with this code.
    Error(i32),
    /// The client cancelled it.
    Cancelled,
}

impl Outcome {
    /// The `magg.outcome` value (and the call log's `outcome`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Error(_) => "error",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// The `error.type` value: `tool_error`, the JSON-RPC error code, or `cancelled`.
    pub fn error_type(&self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::ToolError => Some("tool_error".to_owned()),
            Outcome::Error(code) => Some(code.to_string()),
            Outcome::Cancelled => Some("cancelled".to_owned()),
        }
    }

    /// The outcome of a request answered with `result`.
    pub fn of<T>(result: &Result<T, rmcp::ErrorData>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(e.code.0),
        }
    }

    /// Records this outcome on `span` (one of this module's).
    pub fn record(&self, span: &tracing::Span) {
        if span.is_none() {
            return;
        }
        span.record("magg.outcome", self.as_str());
        if let Some(error) = self.error_type() {
            span.record("error.type", error.as_str());
            span.record("otel.status_code", "error");
        }
    }
}

/// The `tracing` target of the HTTP access log of `/mcp`: one line per POST at `debug`
/// (`RUST_LOG=magg::access=debug`), off otherwise.
pub const ACCESS: &str = "magg::access";

/// One POST to `/mcp` on its way through, for the access log: what its `Mcp-Method` and
/// `Mcp-Name` headers route it as (clients of protocol 2026-07-28 send them, and rmcp refuses
/// a request whose headers contradict its body with `-32020`), its session, if any, and when
/// it arrived.
pub struct Access {
    method: String,
    name: Option<String>,
    session: Option<String>,
    arrived: std::time::Instant,
}

impl Access {
    /// The access record of a request with `headers`; `None` while the access log is off.
    pub fn start(headers: &http::HeaderMap) -> Option<Access> {
        if !tracing::enabled!(target: ACCESS, tracing::Level::DEBUG) {
            return None;
        }
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Some(Access {
            method: header("mcp-method").unwrap_or_else(|| "-".to_owned()),
            name: header("mcp-name"),
            session: header("mcp-session-id"),
            arrived: std::time::Instant::now(),
        })
    }

    /// Logs the request with the status it was answered with, once the response's headers
    /// are out (an event stream goes on after that).
    pub fn answered(self, status: u16) {
        tracing::debug!(
            target: ACCESS,
            mcp_method = %self.method,
            mcp_name = self.name.as_deref(),
            session = self.session.as_deref(),
            status,
            ms = %format_args!("{:.3}", self.arrived.elapsed().as_secs_f64() * 1000.0),
            "POST /mcp"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_a_remote_parent() {
        let carrier = Carrier {
            traceparent: Some(PARENT),
            tracestate: Some("k=v"),
        };
        let context = parent(carrier).unwrap_or_else(|| panic!("no parent from {PARENT}"));
        let span = context.span().span_context().clone();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span.is_remote() && span.is_sampled());
        assert_eq!(span.trace_state().header(), "k=v");
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            let carrier = Carrier {
                traceparent: Some(bad),
                tracestate: None,
            };
            assert!(parent(carrier).is_none(), "{bad:?} was taken");
        }
        assert!(parent(Carrier::default()).is_none());
    }

    #[test]
    fn meta_is_read_before_headers() {
        let meta = MetaText::read(r#"{"traceparent":"00-a-b-01","progressToken":1}"#);
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, http::HeaderValue::from_static("00-c-d-01"));
        let from_headers = Carrier::from_headers(&headers);
        assert_eq!(
            meta.carrier().or(from_headers).traceparent,
            Some("00-a-b-01")
        );
        let none = MetaText::read("[1]");
        assert_eq!(
            none.carrier().or(from_headers).traceparent,
            Some("00-c-d-01")
        );
    }

    #[test]
    fn the_outgoing_context_replaces_the_one_in_meta() {
        let mut meta = rmcp::model::MetaObject::new();
        meta.set_traceparent("00-old-old-01");
        meta.set_tracestate("old=1");
        meta.insert("k".into(), 1.into());
        let out = Outgoing {
            traceparent: Some(PARENT.to_owned()),
            tracestate: None,
        };
        out.set_in(&mut meta);
        assert_eq!(meta.get_traceparent(), Some(PARENT));
        assert_eq!(meta.get_tracestate(), None);
        assert_eq!(meta.get("k"), Some(&1.into()));
    }

    #[test]
    fn outcomes_name_their_error() {
        assert_eq!(Outcome::Ok.error_type(), None);
        assert_eq!(
            Outcome::ToolError.error_type().as_deref(),
            Some("tool_error")
        );
        assert_eq!(
            Outcome::Error(-32602).error_type().as_deref(),
            Some("-32602")
        );
        assert_eq!(Outcome::Cancelled.as_str(), "cancelled");
        assert!(!on(), "tracing is off unless set up");
        assert!(request_span("tools/call", None, None, None, None).is_none());
    }
}
