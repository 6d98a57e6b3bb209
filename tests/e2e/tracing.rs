//! Traces and logs as an operator sees them: magg exporting spans to an OTLP/HTTP receiver the
//! test runs (decoding what arrives with the protocol's own protobuf messages), the W3C trace
//! context reaching the backend in `_meta`, and `--log-format json` lines on stderr.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value,
    trace::v1::span::SpanKind,
};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpListener,
    process::{Child, ChildStdin, ChildStdout},
};

use crate::{
    harness::{Magg, TempConfig, WAIT, remote_test_backend, test_backend},
    raw_http::{BOTH, Conn},
};

/// The client's trace, as a caller upstream of magg would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "vendor=opaque";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")
}

/// One span as the receiver decoded it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: SpanKind,
    /// Attributes, their values as text.
    attributes: BTreeMap<String, String>,
    /// The status code (0 unset, 1 ok, 2 error).
    status: i32,
}

impl Seen {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// An OTLP/HTTP receiver on loopback: accepts `POST /v1/traces` with an
/// `ExportTraceServiceRequest` in protobuf and keeps the spans.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Seen>>>,
    posts: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(0));
        let (into, counted) = (spans.clone(), posts.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (into, counted) = (into.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while let Some((path, body)) = read_request(&mut stream).await {
                        *counted.lock().expect("lock") += 1;
                        let status = if path != "/v1/traces" {
                            "404 Not Found"
                        } else {
                            match ExportTraceServiceRequest::decode(body.as_slice()) {
                                Ok(request) => {
                                    into.lock().expect("lock").extend(flatten(request));
                                    "200 OK"
                                }
                                Err(_) => "400 Bad Request",
                            }
                        };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\n\
                             Content-Length: 0\r\n\r\n"
                        );
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            endpoint,
            spans,
            posts,
        }
    }

    fn spans(&self) -> Vec<Seen> {
        self.spans.lock().expect("lock").clone()
    }

    fn posts(&self) -> usize {
        *self.posts.lock().expect("lock")
    }

    /// The environment that points magg at this receiver; spans wait in the batch for a
    /// minute, so they arrive only when magg flushes them as it ends.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
        ]
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body: (path, body); `None` at the end.
async fn read_request(stream: &mut BufReader<tokio::net::TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0;
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((path, body))
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Seen> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(Seen {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    name: span.name,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| {
                            let value = text(kv.value.as_ref().and_then(|v| v.value.as_ref()));
                            (kv.key, value)
                        })
                        .collect(),
                    status: span.status.map_or(0, |s| s.code),
                });
            }
        }
    }
    out
}

fn text(value: Option<&any_value::Value>) -> String {
    match value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `magg serve` on stdio, spoken to in raw lines, with stdin the test can close.
struct Raw {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Raw {
    async fn start(config: &TempConfig, args: &[&str], env: &[(&str, String)]) -> Raw {
        let mut cmd = Magg::command(&config.path, args);
        for (name, _) in std::env::vars() {
            if name.starts_with("OTEL_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("spawn magg");
        let (log, _lines) = Magg::collect_stderr(&mut child);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let mut magg = Raw {
            child,
            log,
            stdin,
            stdout,
        };
        let response = magg
            .request(
                json!(0),
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tracing", "version": "0"}}),
            )
            .await;
        assert!(response["result"]["serverInfo"].is_object(), "{response}");
        magg.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        magg
    }

    async fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        stdin.write_all(&line).await.expect("write to magg");
        stdin.flush().await.expect("flush to magg");
    }

    async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(WAIT, self.stdout.next_line())
                .await
                .expect("magg answered in time")
                .expect("read magg's stdout")
                .expect("magg closed its stdout");
            let message: Value = serde_json::from_str(&line).expect("JSON from magg");
            if message.get("method").is_none() && message["id"] == id {
                return message;
            }
        }
    }

    /// Calls `tb_request_meta`, the test backend's tool that answers with the `_meta` it got,
    /// once magg has the backend; returns that `_meta`.
    async fn backend_meta(&mut self, id: u64, meta: Value) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        for attempt in 0.. {
            let params = json!({"name": "tb_request_meta", "arguments": {}, "_meta": meta});
            let response = self
                .request(json!(id * 1000 + attempt), "tools/call", params)
                .await;
            if let Some(text) = response["result"]["content"][0]["text"].as_str() {
                return serde_json::from_str(text).expect("the backend's _meta as JSON");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tb_request_meta never answered: {response}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!()
    }

    /// Closes magg's stdin, as a client that goes away does, and waits for magg to end.
    async fn close(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("magg ended after its stdin closed")
            .expect("wait for magg");
        assert!(status.success(), "magg exited with {status}");
        self.log.lock().expect("lock").clone()
    }
}

fn config() -> TempConfig {
    TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}))
}

/// The one span named `name`, failing with what arrived.
fn one(spans: &[Seen], name: &str) -> Seen {
    let found: Vec<&Seen> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} among {spans:#?}");
    found[0].clone()
}

/// A parsed `traceparent`: (trace id, parent span id, flags).
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "traceparent {traceparent:?}");
    (
        fields[1].to_owned(),
        fields[2].to_owned(),
        fields[3].to_owned(),
    )
}

#[tokio::test]
async fn a_call_on_stdio_continues_the_clients_trace_to_the_backend() {
    let receiver = Receiver::start().await;
    let config = config();
    let mut magg = Raw::start(&config, &[], &receiver.env()).await;

    let meta = magg
        .backend_meta(
            1,
            json!({"traceparent": traceparent(), "tracestate": TRACESTATE, "keep": 1}),
        )
        .await;
    let (trace, backend_parent, flags) = parts(meta["traceparent"].as_str().expect("traceparent"));
    assert_eq!(
        trace, TRACE_ID,
        "the backend is in the client's trace: {meta}"
    );
    assert_ne!(
        backend_parent, CLIENT_SPAN,
        "magg's own span is the backend's parent"
    );
    assert_eq!(flags, "01");
    assert_eq!(meta["tracestate"], TRACESTATE, "{meta}");
    assert_eq!(meta["keep"], 1, "the rest of _meta passes: {meta}");

    let failed = magg
        .request(json!(2), "tools/call", json!({"name": "tb_fail", "arguments": {"message": "no"}, "_meta": {"traceparent": traceparent()}}))
        .await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    let unknown = magg
        .request(
            json!(3),
            "tools/call",
            json!({"name": "tb_nothing", "arguments": {}, "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert_eq!(receiver.posts(), 0, "spans wait for the flush at the end");

    magg.close().await;
    let spans = receiver.spans();

    let call = spans
        .iter()
        .find(|s| {
            s.name == "tools/call tb_request_meta"
                && s.kind == SpanKind::Server
                && s.attr("magg.outcome") == Some("ok")
        })
        .unwrap_or_else(|| panic!("the call's span among {spans:#?}"))
        .clone();
    assert_eq!(call.service, "magg");
    assert_eq!(call.trace_id, TRACE_ID, "{call:#?}");
    assert_eq!(
        call.parent, CLIENT_SPAN,
        "its parent is the client's span: {call:#?}"
    );
    assert_eq!(call.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(call.attr("gen_ai.tool.name"), Some("tb_request_meta"));
    assert_eq!(call.attr("magg.tool"), Some("tb_request_meta"));
    assert_eq!(call.attr("magg.server"), Some("tb"));
    assert_eq!(call.attr("mcp.session.id"), Some("0"));
    assert_eq!(call.attr("error.type"), None);

    let backend = spans
        .iter()
        .find(|s| s.parent == call.span_id)
        .unwrap_or_else(|| panic!("a child of the call's span among {spans:#?}"));
    assert_eq!(backend.kind, SpanKind::Client);
    assert_eq!(backend.name, "tools/call request_meta");
    assert_eq!(backend.trace_id, TRACE_ID);
    assert_eq!(backend.attr("magg.server"), Some("tb"));
    assert_eq!(backend.attr("gen_ai.tool.name"), Some("request_meta"));
    assert_eq!(
        backend.span_id, backend_parent,
        "the backend was sent the backend span's context"
    );

    let fail = one(&spans, "tools/call tb_fail");
    assert_eq!(fail.attr("magg.outcome"), Some("tool_error"));
    assert_eq!(fail.attr("error.type"), Some("tool_error"));
    assert_eq!(fail.status, 2, "an error status: {fail:#?}");
    let unknown = one(&spans, "tools/call tb_nothing");
    assert_eq!(unknown.attr("magg.outcome"), Some("error"));
    assert_eq!(unknown.attr("error.type"), Some("-32602"));
    assert_eq!(unknown.trace_id, TRACE_ID);

    let initialize = one(&spans, "initialize");
    assert_eq!(initialize.kind, SpanKind::Server);
    assert_eq!(
        initialize.parent, "",
        "a request without trace context starts a trace"
    );
}

#[tokio::test]
async fn a_call_over_http_continues_the_trace_of_its_traceparent_header() {
    let receiver = Receiver::start().await;
    let config = config();
    let env = receiver.env();
    let mut cmd = Magg::command(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
    );
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("OTEL_SERVICE_NAME", "edge-magg");
    let mut magg = Magg::http_from(cmd).await;
    let url = magg.url.clone().expect("url");
    let mut conn = Conn::open(&url).await;
    let session = conn.open_session().await;

    let header_parent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("Mcp-Session-Id", session.as_str()),
        ("traceparent", header_parent.as_str()),
        ("tracestate", TRACESTATE),
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    let meta = loop {
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "tb_request_meta", "arguments": {}}});
        let reply = conn.send("POST", "/mcp", &headers, &call.to_string()).await;
        let text = reply
            .messages()
            .into_iter()
            .find(|m| m["id"] == 7)
            .and_then(|m| {
                m["result"]["content"][0]["text"]
                    .as_str()
                    .map(str::to_owned)
            });
        if let Some(text) = text {
            break serde_json::from_str::<Value>(&text).expect("the backend's _meta as JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tb_request_meta never answered over HTTP: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (trace, backend_parent, _) = parts(meta["traceparent"].as_str().expect("traceparent"));
    assert_eq!(trace, TRACE_ID, "{meta}");
    assert_eq!(meta["tracestate"], TRACESTATE, "{meta}");

    // SIGTERM: magg ends as a service manager stops it, and flushes its spans first.
    let pid = magg.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::timeout(WAIT, magg.child.wait())
        .await
        .expect("magg ended on SIGTERM")
        .expect("wait");

    let spans = receiver.spans();
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call tb_request_meta" && s.attr("magg.outcome") == Some("ok"))
        .unwrap_or_else(|| panic!("the call's span among {spans:#?}"));
    assert_eq!(
        call.service, "edge-magg",
        "OTEL_SERVICE_NAME names the service"
    );
    assert_eq!(call.trace_id, TRACE_ID);
    assert_eq!(
        call.parent, CLIENT_SPAN,
        "the header's span is the parent: {call:#?}"
    );
    assert!(call.attr("mcp.session.id").is_some(), "{call:#?}");
    let backend = spans
        .iter()
        .find(|s| s.parent == call.span_id && s.kind == SpanKind::Client)
        .unwrap_or_else(|| panic!("the backend call among {spans:#?}"));
    assert_eq!(backend.span_id, backend_parent);
}

#[tokio::test]
async fn routing_hooks_and_an_http_backend_are_children_of_the_call() {
    let receiver = Receiver::start().await;
    let remote = remote_test_backend("rb").await;
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[]), "rb": remote.entry("rb")},
        "plugins": {"routing-rules": {"settings": {
            "rules": [{"tool": "rb_request_meta", "action": "rewrite", "set": {}}],
            "after": [{"tool": "rb_request_meta", "prepend": ""}],
        }}},
    }));
    config.install_plugin("routing-rules", "routing-rules");
    let mut magg = Raw::start(&config, &[], &receiver.env()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let meta = loop {
        let params = json!({"name": "rb_request_meta", "arguments": {}, "_meta": {"traceparent": traceparent()}});
        let response = magg.request(json!(1), "tools/call", params).await;
        if let Some(text) = response["result"]["content"][0]["text"].as_str() {
            break serde_json::from_str::<Value>(text).expect("the backend's _meta as JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rb_request_meta never answered: {response}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (trace, backend_parent, _) = parts(meta["traceparent"].as_str().expect("traceparent"));
    assert_eq!(
        trace, TRACE_ID,
        "the HTTP backend is in the client's trace: {meta}"
    );
    let read = magg
        .request(
            json!(2),
            "resources/read",
            json!({"uri": "test://tb/info", "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    assert!(read["result"]["contents"].is_array(), "{read}");
    magg.close().await;

    let spans = receiver.spans();
    let call = spans
        .iter()
        .find(|s| {
            s.name == "tools/call rb_request_meta"
                && s.kind == SpanKind::Server
                && s.attr("magg.outcome") == Some("ok")
        })
        .unwrap_or_else(|| panic!("the call's span among {spans:#?}"));
    assert_eq!(call.parent, CLIENT_SPAN);
    let children: Vec<&Seen> = spans.iter().filter(|s| s.parent == call.span_id).collect();
    let hooks: Vec<&Seen> = children
        .iter()
        .copied()
        .filter(|s| s.attr("magg.plugin") == Some("routing-rules"))
        .collect();
    let stages: Vec<&str> = hooks.iter().filter_map(|s| s.attr("magg.hook")).collect();
    assert!(
        stages.contains(&"before-call") && stages.contains(&"after-call"),
        "a span per hook stage: {children:#?}"
    );
    let backend = children
        .iter()
        .find(|s| s.kind == SpanKind::Client)
        .unwrap_or_else(|| panic!("the backend call among {children:#?}"));
    assert_eq!(backend.attr("magg.server"), Some("rb"));
    assert_eq!(
        backend.span_id, backend_parent,
        "the HTTP backend got its span's context"
    );

    let read = spans
        .iter()
        .find(|s| s.name == "resources/read" && s.kind == SpanKind::Server)
        .unwrap_or_else(|| panic!("the read's span among {spans:#?}"));
    assert_eq!(read.parent, CLIENT_SPAN);
    assert_eq!(read.attr("mcp.resource.uri"), Some("test://tb/info"));
    assert!(
        spans.iter().any(|s| s.parent == read.span_id
            && s.kind == SpanKind::Client
            && s.attr("magg.server") == Some("tb")),
        "the read's backend request among {spans:#?}"
    );
}

#[tokio::test]
async fn with_tracing_off_nothing_is_exported_and_meta_passes_unchanged() {
    let receiver = Receiver::start().await;
    let config = config();
    // The receiver runs, but magg is not told of it.
    let mut magg = Raw::start(&config, &[], &[]).await;
    let sent = json!({"traceparent": traceparent(), "tracestate": TRACESTATE, "keep": [1, 2]});
    let meta = magg.backend_meta(1, sent.clone()).await;
    assert_eq!(
        meta, sent,
        "the client's _meta reaches the backend as it was"
    );
    magg.close().await;
    assert_eq!(receiver.posts(), 0);
}

#[tokio::test]
async fn an_unsupported_protocol_leaves_tracing_off_and_says_what_to_set() {
    let receiver = Receiver::start().await;
    let config = config();
    let mut env = receiver.env();
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()));
    let mut magg = Raw::start(&config, &[], &env).await;
    let sent = json!({"traceparent": traceparent()});
    assert_eq!(magg.backend_meta(1, sent.clone()).await, sent);
    let log = magg.close().await;
    assert!(
        log.iter().any(|line| line.contains("traces are off")
            && line.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")),
        "{log:#?}"
    );
    assert_eq!(receiver.posts(), 0);
}

#[tokio::test]
async fn json_logs_have_a_line_per_call_and_never_arguments_or_secrets() {
    const SECRET: &str = "sk-live-5ecret-env-value";
    const ARGUMENT: &str = "argument-value-4242";
    let mut server = test_backend("tb", "tb", &[]);
    server["env"] = json!({"TB_API_KEY": SECRET});
    let config = TempConfig::new(&json!({"servers": {"tb": server}}));
    let env = [
        ("RUST_LOG", String::new()),
        ("MAGG_LOG_FORMAT", "json".to_owned()),
    ];
    let mut magg = Raw::start(&config, &["--log-level", "debug"], &env).await;
    magg.backend_meta(1, json!({})).await;
    let echo = magg
        .request(
            json!(2),
            "tools/call",
            json!({"name": "tb_echo", "arguments": {"text": ARGUMENT}}),
        )
        .await;
    assert!(echo["result"].is_object(), "{echo}");
    let secret = magg
        .request(
            json!(3),
            "tools/call",
            json!({"name": "tb_env", "arguments": {"name": "TB_API_KEY"}}),
        )
        .await;
    assert!(
        secret.to_string().contains(SECRET),
        "the backend has the secret: {secret}"
    );
    let log = magg.close().await;

    let lines: Vec<Value> = log
        .iter()
        .filter(|line| !line.starts_with("magg-test-backend"))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    let call = lines
        .iter()
        .find(|l| l["message"] == "tools/call" && l["tool"] == "tb_echo")
        .unwrap_or_else(|| panic!("a call line among {lines:#?}"));
    assert_eq!(call["level"], "DEBUG");
    assert_eq!(call["server"], "tb");
    assert_eq!(call["outcome"], "ok");
    assert_eq!(call["session"], 0);
    assert!(
        call["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{call}"
    );
    let env_call = lines
        .iter()
        .find(|l| l["message"] == "tools/call" && l["tool"] == "tb_env")
        .unwrap_or_else(|| panic!("the env call's line among {lines:#?}"));
    assert_eq!(env_call["outcome"], "ok");
    for line in &log {
        assert!(!line.contains(ARGUMENT), "an argument in the log: {line}");
        assert!(!line.contains(SECRET), "a secret in the log: {line}");
    }
}
