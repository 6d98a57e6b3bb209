//! The legacy HTTP+SSE transport (2024-11-05), both ways: magg serving it at `/sse` (to the
//! official Python SDK's `sse_client` and to raw HTTP), and magg using a backend that serves
//! only it (server-everything in `sse` mode).

use std::{process::Stdio, sync::Arc};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    harness::{
        Client, ClientSpec, Magg, TempConfig, WAIT, eventually, everything_js, test_backend, text,
    },
    raw_http::{Conn, initialize},
    sdk::python_client,
};

/// magg's `/sse` event stream, read raw one event at a time.
struct EventStream {
    conn: Conn,
    buffer: String,
}

impl EventStream {
    /// Opens `/sse` on the magg at `url`; returns the stream and its `endpoint` event's data.
    async fn open(url: &str) -> (EventStream, String) {
        let mut conn = Conn::open(url).await;
        conn.write("GET", "/sse", &[("Accept", "text/event-stream")], "")
            .await;
        let (status, headers) = conn.read_head().await;
        assert_eq!(status, 200, "{headers:?}");
        let content_type = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone());
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        let mut stream = EventStream {
            conn,
            buffer: String::new(),
        };
        let (event, endpoint) = stream.next().await;
        assert_eq!(event, "endpoint");
        (stream, endpoint)
    }

    /// The next event with data: (event name, data).
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let mut event = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if !data.is_empty() {
                    return (event, data.join("\n"));
                }
                continue; // a keep-alive comment
            }
            let chunk = self.conn.chunk().await;
            assert!(!chunk.is_empty(), "the event stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `message` event's JSON-RPC message.
    async fn message(&mut self) -> Value {
        let (event, data) = self.next().await;
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).expect("a JSON-RPC message")
    }

    /// The response to request `id` (notifications before it are skipped).
    async fn response(&mut self, id: u64) -> Value {
        loop {
            let message = self.message().await;
            if message.get("method").is_none() {
                assert_eq!(message["id"], json!(id), "{message}");
                return message;
            }
        }
    }
}

/// POSTs `body` as JSON to `path` on a fresh connection to the magg at `url`.
async fn post(url: &str, path: &str, body: &str) -> crate::raw_http::Reply {
    let mut conn = Conn::open(url).await;
    conn.send("POST", path, &[("Content-Type", "application/json")], body)
        .await
}

#[tokio::test]
async fn an_sse_session_is_a_full_mcp_session_and_bad_posts_are_refused() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let (mut stream, endpoint) = EventStream::open(&url).await;
    let id = endpoint
        .strip_prefix("/messages/?session_id=")
        .unwrap_or_else(|| panic!("endpoint {endpoint:?}"));
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    let accepted = post(&url, &endpoint, &initialize().to_string()).await;
    assert_eq!(accepted.status, 202, "{accepted}");
    let initialized = stream.response(0).await;
    assert_eq!(initialized["result"]["serverInfo"]["name"], json!("magg"));
    let ack = post(
        &url,
        &endpoint,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(ack.status, 202, "{ack}");

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "tb_echo", "arguments": {"text": "over sse"}}});
    assert_eq!(post(&url, &endpoint, &call.to_string()).await.status, 202);
    let called = stream.response(1).await;
    assert_eq!(text(&called["result"]), "over sse", "{called}");

    // Progress of a call comes on the stream before its result.
    let slow = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "tb_slow", "arguments": {"ms": 10}, "_meta": {"progressToken": "p"}}});
    assert_eq!(post(&url, &endpoint, &slow.to_string()).await.status, 202);
    let mut progress = Vec::new();
    let done = loop {
        let message = stream.message().await;
        if message["method"] == json!("notifications/progress") {
            assert_eq!(message["params"]["progressToken"], json!("p"));
            progress.push(message["params"]["progress"].as_f64());
        } else if message.get("id") == Some(&json!(2)) {
            break message;
        }
    };
    assert_eq!(progress, vec![Some(1.0), Some(2.0), Some(3.0)], "{done}");

    // A page that reached magg by DNS rebinding names its own host.
    let rebound = Conn::open(&url)
        .await
        .send("GET", "/sse", &[("Host", "evil.example:8000")], "")
        .await;
    assert_eq!(rebound.status, 403, "{rebound}");

    let unknown = post(
        &url,
        "/messages/?session_id=0123456789abcdef0123456789abcdef",
        "{}",
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown}");
    assert!(unknown.text().contains("no SSE session"), "{unknown}");
    let missing = post(&url, "/messages/", &initialize().to_string()).await;
    assert_eq!(missing.status, 400, "{missing}");
    assert!(
        missing.text().contains("session_id is required"),
        "{missing}"
    );
    let malformed = post(&url, &endpoint, r#"{"jsonrpc": "2.0", "id": "#).await;
    assert_eq!(malformed.status, 400, "{malformed}");
    assert!(malformed.text().contains("Parse error"), "{malformed}");
    let not_a_message = post(&url, &endpoint, r#"{"hello": "world"}"#).await;
    assert_eq!(not_a_message.status, 400, "{not_a_message}");

    // The session is unharmed by what was refused.
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_eq!(post(&url, &endpoint, &ping.to_string()).await.status, 202);
    assert_eq!(stream.response(3).await["result"], json!({}));

    // Closing the stream ends the session.
    drop(stream);
    let ping = ping.to_string();
    eventually("the closed session's endpoint to be gone", WAIT, || {
        let (url, endpoint, ping) = (url.clone(), endpoint.clone(), ping.clone());
        async move {
            let reply = post(&url, &endpoint, &ping).await;
            (reply.status == 404).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn the_python_sdk_drives_magg_over_sse_and_hears_list_changed() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let sse_url = format!("{}/sse", url.trim_end_matches("/mcp"));
    let path = config.path.to_string_lossy().into_owned();
    let (ok, output) =
        tokio::task::spawn_blocking(move || python_client(&["sse", &sse_url, &path]))
            .await
            .expect("join");
    assert!(ok, "{output}");
    assert!(
        config.read()["servers"]["tbtwo"].is_object(),
        "the script edited the config"
    );
}

/// server-everything serving the legacy SSE transport on a port of its own. Killed on drop.
struct EverythingSse {
    _child: Child,
    /// `http://127.0.0.1:<port>/sse`.
    url: String,
}

impl EverythingSse {
    async fn start() -> EverythingSse {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("node")
            .arg(everything_js())
            .arg("sse")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn server-everything");
        let (log, _lines) = Magg::collect_stderr(&mut child);
        let log = Arc::clone(&log);
        eventually("server-everything to listen", WAIT, || {
            let log = log.clone();
            async move {
                let log = log.lock().expect("log");
                log.iter()
                    .any(|l| l.contains("Server is running on port"))
                    .then_some(())
            }
        })
        .await;
        EverythingSse {
            _child: child,
            url: format!("http://127.0.0.1:{port}/sse"),
        }
    }
}

#[tokio::test]
async fn magg_uses_a_backend_that_speaks_only_sse() {
    let everything = EverythingSse::start().await;
    let config = TempConfig::new(&json!({"servers": {"ev": {
        "source": "https://www.npmjs.com/package/@modelcontextprotocol/server-everything",
        "prefix": "ev",
        "uri": everything.url,
    }}}));
    let magg = Magg::http(&config.path, false).await;
    let client = Client::http(magg.url.as_deref().expect("url")).await;
    let names = client.tool_names().await;
    assert!(
        names.contains(&"ev_echo".to_owned()) && names.contains(&"ev_get-sum".to_owned()),
        "{names:?}"
    );
    let echoed = client
        .call("ev_echo", json!({"message": "through sse"}))
        .await
        .expect("ev_echo");
    assert_eq!(text(&echoed), "Echo: through sse", "{echoed}");
    let sum = client
        .call("ev_get-sum", json!({"a": 2, "b": 3}))
        .await
        .expect("ev_get-sum");
    assert!(text(&sum).contains('5'), "{sum}");
}

#[tokio::test]
async fn magg_uses_another_magg_over_sse_relaying_requests_and_list_changes() {
    let upstream_config =
        TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let upstream = Magg::http(&upstream_config.path, false).await;
    let upstream_url = upstream.url.clone().expect("url");
    let sse_url = format!("{}/sse", upstream_url.trim_end_matches("/mcp"));
    let config = TempConfig::new(&json!({"servers": {"up": {
        "source": "magg over sse", "prefix": "up", "uri": sse_url,
    }}}));
    let magg = Magg::http(&config.path, false).await;
    let mut client =
        Client::http_as(magg.url.as_deref().expect("url"), ClientSpec::full("c")).await;
    let echoed = client
        .call_eventually("up_tb_echo", json!({"text": "two hops"}))
        .await;
    assert_eq!(text(&echoed), "two hops");

    // The backend's request during a call comes back over the SSE stream to the caller.
    let sampled = client
        .call("up_tb_sample", json!({"prompt": "hi"}))
        .await
        .expect("up_tb_sample");
    assert_eq!(text(&sampled), "sampled: c says hi", "{sampled}");

    let mut edited = upstream_config.read();
    edited["servers"]["tbtwo"] = test_backend("tbtwo", "tbtwo", &[]);
    upstream_config.write(&edited);
    client.notified("tools/list_changed").await;
    eventually("up_tbtwo_echo to be listed", WAIT, || async {
        client
            .tool_names()
            .await
            .contains(&"up_tbtwo_echo".to_owned())
            .then_some(())
    })
    .await;
    let echoed = client
        .call("up_tbtwo_echo", json!({"text": "added upstream"}))
        .await
        .expect("up_tbtwo_echo");
    assert_eq!(text(&echoed), "added upstream");
}

#[tokio::test]
async fn a_per_session_instance_ends_when_its_sse_client_disconnects() {
    let mut tb = test_backend("tb", "tb", &[]);
    tb["isolation"] = json!("session");
    let config = TempConfig::new(&json!({"servers": {"tb": tb}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let (mut stream, endpoint) = EventStream::open(&url).await;
    assert_eq!(
        post(&url, &endpoint, &initialize().to_string())
            .await
            .status,
        202
    );
    stream.response(0).await;
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(&url, &endpoint, initialized).await.status, 202);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "tb_pid", "arguments": {}}});
    assert_eq!(post(&url, &endpoint, &call.to_string()).await.status, 202);
    let pid: u32 = text(&stream.response(1).await["result"])
        .parse()
        .expect("a process id");
    let alive = move || {
        std::path::Path::new(&format!("/proc/{pid}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    assert!(alive(), "the session's own instance runs");

    drop(stream);
    eventually(
        "the disconnected session's instance to end",
        WAIT,
        || async { (!alive()).then_some(()) },
    )
    .await;
}
