//! Streamable HTTP: several sessions at once, hybrid mode over one set of backends, backends
//! reached by URL, and the transport's HTTP details as a raw HTTP/1.1 client sees them.

use rmcp::ServiceExt as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{
    harness::{
        Client, Magg, TempConfig, WAIT, everything, remote_test_backend, test_backend, text,
    },
    raw_http::{BOTH, Conn, Reply, initialize},
};

#[tokio::test]
async fn several_http_clients_each_get_their_own_session() {
    let config = TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "ev": everything("ev"),
    }}));
    let magg = Magg::http(&config.path, false).await;
    let (a, b) = tokio::join!(magg.http_client(), magg.http_client());
    let (names_a, names_b) = tokio::join!(a.tool_names(), b.tool_names());
    assert!(
        names_a.contains(&"tb_echo".to_owned()) && names_a.contains(&"ev_echo".to_owned()),
        "{names_a:?}"
    );
    assert_eq!(names_a, names_b);
    let (ra, rb) = tokio::join!(
        a.call("tb_slow", json!({"ms": 200})),
        b.call("tb_echo", json!({"text": "from b"}))
    );
    assert_eq!(text(&ra.expect("a")), "slept 200 ms");
    assert_eq!(text(&rb.expect("b")), "from b");
    let ev = a
        .call("ev_echo", json!({"message": "over http"}))
        .await
        .expect("ev");
    assert_eq!(text(&ev), "Echo: over http");
}

#[tokio::test]
async fn http_clients_get_list_changed_when_a_backend_arrives() {
    let config = TempConfig::new(&json!({"list_wait": 0, "servers": {"ev": everything("ev")}}));
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client().await;
    client.notified("tools/list_changed").await;
    assert!(client.tool_names().await.contains(&"ev_echo".to_owned()));
}

#[tokio::test]
async fn hybrid_serves_stdio_and_http_over_the_same_backends() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::http(&config.path, true).await;
    let stdout = magg.child.stdout.take().expect("stdout");
    let stdin = magg.child.stdin.take().expect("stdin");
    let stdio = tokio::time::timeout(WAIT, ().serve((stdout, stdin)))
        .await
        .expect("stdio initialize timed out")
        .expect("stdio initialize");
    let http = magg.http_client().await;
    let over_http = text(&http.call_eventually("tb_pid", json!({})).await).to_owned();
    let mut params = rmcp::model::CallToolRequestParams::new("tb_pid");
    params.arguments = Some(Default::default());
    let over_stdio =
        serde_json::to_value(stdio.call_tool(params).await.expect("stdio call")).expect("json");
    assert_eq!(
        over_http,
        text(&over_stdio),
        "one backend process serves both"
    );
}

#[tokio::test]
async fn a_backend_reached_by_url_is_aggregated() {
    let remote = remote_test_backend("remote").await;
    let config = TempConfig::new(&json!({"servers": {"remote": remote.entry("remote")}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client: &mut Client = magg.client();
    let echo = client
        .call_eventually("remote_echo", json!({"text": "far away"}))
        .await;
    assert_eq!(text(&echo), "far away");
}

#[tokio::test]
async fn an_oversized_request_is_refused_and_magg_keeps_serving() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut stream = TcpStream::connect(&authority).await.expect("connect");
    // Over magg's limit for any message, on any transport (64 MiB).
    let size = 65 * 1024 * 1024;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(size / chunk.len()) {
        if stream.write_all(&chunk).await.is_err() {
            break; // the server may refuse before reading it all
        }
    }
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut reply)).await;
    let status = String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(status.contains("413"), "status line: {status:?}");

    let client = magg.http_client().await;
    assert_eq!(
        text(
            &client
                .call_eventually("tb_echo", json!({"text": "still here"}))
                .await
        ),
        "still here"
    );
}

/// One stateless (protocol 2026-07-28) `tools/call` over raw HTTP: no `initialize`, no
/// session; `extra` is merged into the params.
pub(crate) async fn stateless_call(
    url: &str,
    tool: &str,
    arguments: serde_json::Value,
    extra: serde_json::Value,
) -> Reply {
    let mut params = json!({
        "name": tool,
        "arguments": arguments,
        "_meta": {
            "progressToken": "stateless-1",
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities":
                {"sampling": {}, "elicitation": {}, "roots": {}},
        },
    });
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
    ];
    Conn::open(url)
        .await
        .send("POST", "/mcp", &headers, &body)
        .await
}

/// The JSON-RPC message with `id` 7 in a reply.
pub(crate) fn response_of(reply: &Reply) -> serde_json::Value {
    reply
        .messages()
        .into_iter()
        .find(|message| message["id"] == json!(7))
        .unwrap_or_else(|| panic!("no response in:\n{reply}"))
}

#[tokio::test]
async fn a_stateless_client_gets_its_progress_before_its_result() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    let reply = stateless_call(&url, "tb_slow", json!({"ms": 3}), json!({}))
        .await
        .text();
    let at = |needle: &str| {
        reply
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from:\n{reply}"))
    };
    let steps = [
        at(r#""progressToken":"stateless-1","progress":1.0"#),
        at(r#""progressToken":"stateless-1","progress":2.0"#),
        at(r#""progressToken":"stateless-1","progress":3.0"#),
        at(r#""result""#),
    ];
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "progress 1, 2, 3, then the result:\n{reply}"
    );
}

#[tokio::test]
async fn a_stateless_client_answers_a_backends_sampling_through_input_required() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    // Protocol 2026-07-28 has no server-to-client requests: the backend's sampling request
    // comes back as an input_required result, and the call waits for the retry.
    let first =
        response_of(&stateless_call(&url, "tb_sample", json!({"prompt": "x"}), json!({})).await);
    let result = &first["result"];
    assert_eq!(result["resultType"], json!("input_required"), "{first}");
    let requests = result["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{first}");
    let (key, request) = requests.iter().next().expect("one request");
    assert_eq!(
        request["method"],
        json!("sampling/createMessage"),
        "{first}"
    );
    assert_eq!(
        request["params"]["messages"][0]["content"]["text"],
        json!("x"),
        "{first}"
    );
    let state = result["requestState"].as_str().expect("requestState");

    let retry = json!({
        "requestState": state,
        "inputResponses": {key.clone(): {
            "role": "assistant",
            "content": {"type": "text", "text": "stateless says hi"},
            "model": "test",
        }},
    });
    let done = response_of(&stateless_call(&url, "tb_sample", json!({"prompt": "x"}), retry).await);
    assert_eq!(
        done["result"]["content"][0]["text"],
        json!("sampled: stateless says hi"),
        "{done}"
    );

    // The state named a call that is over now.
    let stale = json!({"requestState": state, "inputResponses": {}});
    let again =
        response_of(&stateless_call(&url, "tb_sample", json!({"prompt": "x"}), stale).await);
    let message = again["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("requestState"), "{again}");

    // An answer that is no sampling result fails the backend's request, not magg: the call
    // ends with the backend's error, and magg goes on serving.
    let first =
        response_of(&stateless_call(&url, "tb_sample", json!({"prompt": "y"}), json!({})).await);
    let state = first["result"]["requestState"]
        .as_str()
        .expect("requestState");
    let key = first["result"]["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .expect("a request");
    let garbage = json!({"requestState": state, "inputResponses": {key: {"not": "a result"}}});
    let failed =
        response_of(&stateless_call(&url, "tb_sample", json!({"prompt": "y"}), garbage).await);
    assert_eq!(failed["result"]["isError"], json!(true), "{failed}");
    let text = failed["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("sample failed") && text.contains("not a valid result"),
        "{failed}"
    );
    let echo =
        response_of(&stateless_call(&url, "tb_echo", json!({"text": "still"}), json!({})).await);
    assert_eq!(
        echo["result"]["content"][0]["text"],
        json!("still"),
        "{echo}"
    );
}

/// A `tools/call` request.
fn call(id: u64, tool: &str, params: Value) -> Value {
    let mut params = params;
    params["name"] = json!(tool);
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

/// magg without backends, and a connection to it.
async fn bare_magg() -> (TempConfig, Magg, Conn) {
    let config = TempConfig::new(&json!({"servers": {}}));
    let magg = Magg::http(&config.path, false).await;
    let conn = Conn::open(magg.url.as_deref().expect("url")).await;
    (config, magg, conn)
}

/// magg over one test backend `tb`, serving HTTP once `tb_echo` is listed.
async fn magg_with_tb() -> (TempConfig, Magg) {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let names = magg.http_client().await.tool_names().await;
    assert!(names.contains(&"tb_echo".to_owned()), "{names:?}");
    (config, magg)
}

#[tokio::test]
async fn a_kept_alive_client_gets_each_answer_as_one_json_body() {
    let (_config, magg) = magg_with_tb().await;
    let mut conn = Conn::open(magg.url.as_deref().expect("url")).await;
    let session = conn.open_session().await;
    for id in 1..=5 {
        let text = format!("call {id}");
        let reply = conn
            .post(
                Some(&session),
                &call(id, "tb_echo", json!({"arguments": {"text": text}})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply}");
        // One body of known length, not an event stream that ends with the answer.
        assert!(reply.header("content-length").is_some(), "{reply}");
        let answer = reply.json();
        assert_eq!(answer["id"], json!(id), "{reply}");
        assert_eq!(
            answer["result"]["content"][0]["text"],
            json!(text),
            "{reply}"
        );
    }
}

#[tokio::test]
async fn a_call_that_reports_progress_keeps_its_event_stream() {
    let (_config, magg) = magg_with_tb().await;
    let mut conn = Conn::open(magg.url.as_deref().expect("url")).await;
    let session = conn.open_session().await;
    let slow = call(
        1,
        "tb_slow",
        json!({"arguments": {"ms": 3}, "_meta": {"progressToken": "p"}}),
    );
    let reply = conn.post(Some(&session), &slow).await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/event-stream"),
        "{reply}"
    );
    let messages = reply.messages();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == json!("notifications/progress"))
        .map(|m| &m["params"]["progress"])
        .collect();
    assert_eq!(progress, [&json!(1.0), &json!(2.0), &json!(3.0)], "{reply}");
    assert_eq!(
        messages.last().map(|m| &m["result"]["content"][0]["text"]),
        Some(&json!("slept 3 ms")),
        "the result comes last:\n{reply}"
    );

    let echo = conn
        .post(
            Some(&session),
            &call(2, "tb_echo", json!({"arguments": {"text": "next"}})),
        )
        .await;
    assert_eq!(echo.json()["result"]["content"][0]["text"], json!("next"));
}

#[tokio::test]
async fn a_body_that_is_no_single_message_gets_400_and_a_json_rpc_error() {
    let (_config, _magg, mut conn) = bare_magg().await;
    let batch = json!([initialize(), {"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string();
    let cases = [
        (r#"{"jsonrpc": "2.0", "id": 1,"#, -32700, "Parse error"),
        ("", -32700, "Parse error"),
        (batch.as_str(), -32600, "batches are not supported"),
        (r#"{"hello": "world"}"#, -32600, "Invalid Request"),
    ];
    for (body, code, says) in cases {
        let reply = conn.post_as("/mcp", "application/json", BOTH, body).await;
        assert_eq!(reply.status, 400, "{body:?}:\n{reply}");
        let error = reply.json();
        assert_eq!(error["jsonrpc"], json!("2.0"), "{reply}");
        assert_eq!(error["error"]["code"], json!(code), "{body:?}:\n{reply}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body:?}:\n{reply}");
    }
    // A body declared as another media type is still refused as such.
    let init = initialize().to_string();
    let reply = conn.post_as("/mcp", "text/plain", BOTH, &init).await;
    assert_eq!(reply.status, 415, "{reply}");
    // And the connection serves a good request after all that.
    conn.open_session().await;
}

#[tokio::test]
async fn only_the_mcp_path_is_served() {
    let (_config, _magg, mut conn) = bare_magg().await;
    let init = initialize().to_string();
    for path in ["/mcp/extra", "/mcp/a/b", "/", "/mcpx"] {
        let reply = conn.post_as(path, "application/json", BOTH, &init).await;
        assert_eq!(reply.status, 404, "POST {path}:\n{reply}");
        let reply = conn
            .send("GET", path, &[("Accept", "text/event-stream")], "")
            .await;
        assert_eq!(reply.status, 404, "GET {path}:\n{reply}");
    }
    conn.open_session().await;
}

#[tokio::test]
async fn accept_any_media_type_admits_json_and_event_streams() {
    let (_config, magg, mut conn) = bare_magg().await;
    let init = initialize().to_string();
    let reply = conn.post_as("/mcp", "application/json", "*/*", &init).await;
    assert_eq!(reply.status, 200, "{reply}");
    let session = reply
        .header("mcp-session-id")
        .expect("a session")
        .to_owned();
    assert_eq!(reply.messages()[0]["id"], json!(0), "{reply}");

    // The session's own event stream: only its head is read.
    let mut stream = Conn::open(magg.url.as_deref().expect("url")).await;
    stream
        .write(
            "GET",
            "/mcp",
            &[("Accept", "*/*"), ("Mcp-Session-Id", &session)],
            "",
        )
        .await;
    let (status, headers) = stream.read_head().await;
    assert_eq!(status, 200, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "text/event-stream"),
        "{headers:?}"
    );

    // A client that admits neither is still refused.
    let html = [
        ("Content-Type", "application/json"),
        ("Accept", "text/html"),
    ];
    let reply = conn
        .send("POST", "/mcp", &html, &initialize().to_string())
        .await;
    assert_eq!(reply.status, 406, "{reply}");
}

#[tokio::test]
async fn a_session_ends_with_204_and_a_foreign_host_or_origin_is_refused() {
    let (_config, _magg, mut conn) = bare_magg().await;
    let session = conn.open_session().await;
    let reply = conn
        .send("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "")
        .await;
    assert_eq!(reply.status, 204, "{reply}");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let reply = conn.post(Some(&session), &list).await;
    assert_eq!(reply.status, 404, "the session is gone:\n{reply}");
    let reply = conn
        .send("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "")
        .await;
    assert_eq!(reply.status, 404, "ending it again:\n{reply}");
    let reply = conn
        .send(
            "DELETE",
            "/mcp",
            &[("Mcp-Session-Id", "no-such-session")],
            "",
        )
        .await;
    assert_eq!(reply.status, 404, "a session that never was:\n{reply}");

    // A page of another site, sent to magg's own host name (DNS rebinding or a plain
    // cross-site request), is refused.
    let page = [
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
    ];
    let reply = conn
        .send("POST", "/mcp", &page, &initialize().to_string())
        .await;
    assert_eq!(reply.status, 403, "{reply}");
    assert!(
        String::from_utf8_lossy(&reply.body).contains("Origin"),
        "{reply}"
    );
    let own_page = [
        ("Origin", "http://localhost:3000"),
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
    ];
    let reply = conn
        .send("POST", "/mcp", &own_page, &initialize().to_string())
        .await;
    assert_eq!(reply.status, 200, "a page on localhost is served:\n{reply}");

    let foreign = [
        ("Host", "evil.example"),
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
    ];
    let reply = conn
        .send("POST", "/mcp", &foreign, &initialize().to_string())
        .await;
    assert_eq!(reply.status, 403, "{reply}");
}
