//! Streamable HTTP: several sessions at once, hybrid mode over one set of backends, and
//! backends reached by URL.

use rmcp::ServiceExt as _;
use serde_json::json;

use crate::harness::{
    Client, Magg, TempConfig, WAIT, everything, remote_test_backend, test_backend, text,
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
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let size = 9 * 1024 * 1024;
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
/// session; `extra` is merged into the params. The response body (an event stream) as text.
async fn stateless_call(
    url: &str,
    tool: &str,
    arguments: serde_json::Value,
    extra: serde_json::Value,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut params = json!({
        "name": tool,
        "arguments": arguments,
        "_meta": {
            "progressToken": "stateless-1",
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
        },
    });
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: {tool}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(body.as_bytes()).await.expect("body");
    let mut reply = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut reply))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

/// The JSON-RPC message with `id` 7 in an event-stream reply.
fn response_of(reply: &str) -> serde_json::Value {
    reply
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .find(|message| message["id"] == json!(7))
        .unwrap_or_else(|| panic!("no response in:\n{reply}"))
}

#[tokio::test]
async fn a_stateless_client_gets_its_progress_before_its_result() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    let reply = stateless_call(&url, "tb_slow", json!({"ms": 3}), json!({})).await;
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
