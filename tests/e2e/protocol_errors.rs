//! JSON-RPC errors of the MCP protocol itself, over raw HTTP: a request for a method magg serves
//! whose params do not fit is invalid-params (-32602) naming what is wrong, and only a method
//! magg does not serve is method-not-found (-32601).

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Magg, TempConfig, WAIT, test_backend};

const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

/// One POST of `body` to magg's `/mcp`, in the session `session` if given: the reply's head
/// and body, as text.
async fn post(url: &str, session: Option<&str>, body: &Value) -> (String, String) {
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let body = body.to_string();
    let session = session
        .map(|id| format!("Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\n\
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
    let reply = String::from_utf8_lossy(&reply).into_owned();
    match reply.split_once("\r\n\r\n") {
        Some((head, body)) => (head.to_owned(), body.to_owned()),
        None => (reply, String::new()),
    }
}

/// The JSON-RPC message with `id` in an event-stream (or plain JSON) reply body.
fn message_with_id(body: &str, id: i64) -> Value {
    body.lines()
        .map(|line| line.strip_prefix("data: ").unwrap_or(line))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no message with id {id} in:\n{body}"))
}

/// Opens an MCP session (initialize, then notifications/initialized) and returns its id.
async fn open_session(url: &str) -> String {
    let (head, body) = post(
        url,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw-e2e", "version": "1"},
        }}),
    )
    .await;
    assert!(
        message_with_id(&body, 1)["result"].is_object(),
        "initialize: {body}"
    );
    let session = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Mcp-Session-Id in:\n{head}"));
    let (head, _) = post(
        url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 202"), "initialized: {head}");
    session
}

/// Sends a request in `session` and returns its JSON-RPC error object.
async fn error_of(url: &str, session: &str, id: i64, method: &str, params: Value) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if !params.is_null() {
        request["params"] = params;
    }
    let (_, body) = post(url, Some(session), &request).await;
    let message = message_with_id(&body, id);
    assert!(
        message["error"].is_object(),
        "{method}: expected an error, got {message}"
    );
    message["error"].clone()
}

#[tokio::test]
async fn malformed_params_of_a_known_method_are_invalid_params_not_method_not_found() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let session = open_session(&url).await;

    let no_name = error_of(
        &url,
        &session,
        2,
        "tools/call",
        json!({"arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(no_name["code"], json!(INVALID_PARAMS), "{no_name}");
    let message = no_name["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tools/call") && message.contains("name"),
        "says which method and which field: {no_name}"
    );

    let no_params = error_of(&url, &session, 3, "tools/call", Value::Null).await;
    assert_eq!(no_params["code"], json!(INVALID_PARAMS), "{no_params}");

    let loud = error_of(
        &url,
        &session,
        4,
        "logging/setLevel",
        json!({"level": "loud"}),
    )
    .await;
    assert_eq!(loud["code"], json!(INVALID_PARAMS), "{loud}");
    let message = loud["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("loud") && message.contains("debug"),
        "names the bad level and the good ones: {loud}"
    );

    let bad_uri = error_of(&url, &session, 5, "resources/read", json!({"uri": 7})).await;
    assert_eq!(bad_uri["code"], json!(INVALID_PARAMS), "{bad_uri}");

    // A method magg does not serve is still method-not-found, and names the method.
    let unknown = error_of(&url, &session, 6, "tools/frobnicate", json!({})).await;
    assert_eq!(unknown["code"], json!(METHOD_NOT_FOUND), "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tools/frobnicate"),
        "{unknown}"
    );

    // The session goes on serving well-formed requests.
    let (_, body) = post(
        &url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel", "params": {"level": "info"}}),
    )
    .await;
    let ok = message_with_id(&body, 7);
    assert!(ok["result"].is_object(), "{ok}");
}
