//! What magg's HTTP server allows a client: how many sessions (`max_sessions`) and for how
//! long (`session_idle_timeout`), how long a request may take to arrive (`http_read_timeout`),
//! how large its headers may be, and which hosts and origins may send it
//! (`allowed_hosts`, `allowed_origins`).

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{
    harness::{Magg, TempConfig, WAIT, eventually, test_backend},
    raw_http::{BOTH, Conn, initialize},
};

/// `magg serve --http` on loopback over `config`, with `env` set.
async fn magg_with(config: &Value, env: &[(&str, &str)]) -> (TempConfig, Magg) {
    let config = TempConfig::new(config);
    let args = ["--http", "--host", "127.0.0.1", "--port", "0"];
    let magg = Magg::http_with(&config.path, &args, env).await;
    (config, magg)
}

fn url(magg: &Magg) -> &str {
    magg.url.as_deref().expect("serving HTTP")
}

/// The host and port magg listens on.
fn authority(magg: &Magg) -> String {
    url(magg)
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

fn list_tools() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

/// Reads from `stream` until magg closes it; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .expect("magg closes the connection in time")
        .expect("read");
    got
}

#[tokio::test]
async fn a_session_beyond_max_sessions_gets_503_and_an_ended_session_frees_its_place() {
    let (_config, magg) = magg_with(&json!({"servers": {}}), &[("MAGG_MAX_SESSIONS", "2")]).await;
    let mut conn = Conn::open(url(&magg)).await;
    let first = conn.open_session().await;
    let _second = conn.open_session().await;

    let refused = conn.post(None, &initialize()).await;
    assert_eq!(refused.status, 503, "{refused}");
    assert!(refused.header("retry-after").is_some(), "{refused}");
    let error = refused.json();
    assert_eq!(error["id"], 0, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    for needle in ["2 sessions", "max_sessions", "MAGG_MAX_SESSIONS", "300 s"] {
        assert!(message.contains(needle), "{needle:?} in {message:?}");
    }

    // Open sessions keep working.
    let listed = conn.post(Some(&first), &list_tools()).await;
    assert_eq!(listed.status, 200, "{listed}");

    // A legacy SSE session counts too.
    let mut sse = Conn::open(url(&magg)).await;
    sse.write("GET", "/sse", &[("Accept", "text/event-stream")], "")
        .await;
    let (status, _) = sse.read_head().await;
    assert_eq!(status, 503, "an SSE stream while all places are taken");

    let ended = conn
        .send("DELETE", "/mcp", &[("Mcp-Session-Id", &first)], "")
        .await;
    assert_eq!(ended.status, 204, "{ended}");
    let mut sse = Conn::open(url(&magg)).await;
    sse.write("GET", "/sse", &[("Accept", "text/event-stream")], "")
        .await;
    let (status, _) = sse.read_head().await;
    assert_eq!(status, 200, "the place of the ended session is free");
    let refused = conn.post(None, &initialize()).await;
    assert_eq!(refused.status, 503, "the SSE session took it:\n{refused}");

    drop(sse);
    let url = url(&magg).to_owned();
    eventually("the SSE session's place to come free", WAIT, || {
        let url = url.clone();
        async move {
            let reply = Conn::open(&url).await.post(None, &initialize()).await;
            (reply.status == 200).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_ends_after_session_idle_timeout_and_frees_its_place() {
    let env = [
        ("MAGG_MAX_SESSIONS", "1"),
        ("MAGG_SESSION_IDLE_TIMEOUT", "1"),
    ];
    let (_config, magg) = magg_with(&json!({"servers": {}}), &env).await;
    let mut conn = Conn::open(url(&magg)).await;
    let idle = conn.open_session().await;
    // Asking about the idle session would keep it alive: ask for a new one until its place
    // is free.
    let url = url(&magg).to_owned();
    let mut conn = eventually("the idle session to end", WAIT, || {
        let url = url.clone();
        async move {
            let mut conn = Conn::open(&url).await;
            let reply = conn.post(None, &initialize()).await;
            (reply.status == 200).then_some(conn)
        }
    })
    .await;
    let reply = conn.post(Some(&idle), &list_tools()).await;
    assert_eq!(reply.status, 404, "the idle session is gone:\n{reply}");
}

#[tokio::test]
async fn an_idle_session_falls_asleep_and_its_next_request_wakes_it_unnoticed() {
    // Idle sessions sleep after half of session_idle_timeout: 3 s here, and end after 6 s.
    let env = [
        ("MAGG_SESSION_IDLE_TIMEOUT", "6"),
        ("RUST_LOG", "magg=debug,info"),
    ];
    let config = json!({"servers": {"tb": test_backend("tb", "tb", &[])}});
    let (_config, magg) = magg_with(&config, &env).await;
    let mut conn = Conn::open(url(&magg)).await;
    let session = conn.open_session().await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "tb_echo", "arguments": {"text": "before"}}});
    let reply = eventually("tb_echo to answer", WAIT, || {
        let url = url(&magg).to_owned();
        let session = session.clone();
        let call = call.clone();
        async move {
            let reply = Conn::open(&url).await.post(Some(&session), &call).await;
            let ok = reply.status == 200 && reply.messages().first()?["result"]["isError"] != true;
            ok.then_some(reply)
        }
    })
    .await;
    assert!(reply.text().contains("before"), "{reply}");
    eventually("the idle session to fall asleep", WAIT, || async {
        magg.logged("idle HTTP session asleep").then_some(())
    })
    .await;
    // The same session id still works: magg wakes the session from what the client sent in
    // initialize, and the client sees an ordinary answer.
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "tb_echo", "arguments": {"text": "after sleep"}}});
    let reply = Conn::open(url(&magg))
        .await
        .post(Some(&session), &call)
        .await;
    assert_eq!(reply.status, 200, "{reply}");
    let answer = reply
        .messages()
        .into_iter()
        .find(|m| m["id"] == 3)
        .expect("the answer");
    assert!(
        answer["result"].to_string().contains("after sleep"),
        "{answer}"
    );
    eventually("magg to log the wake-up", WAIT, || async {
        magg.logged("HTTP session woke up").then_some(())
    })
    .await;
    // Asleep, it can still be ended; ended, it is gone.
    eventually("the session to fall asleep again", WAIT, || async {
        let count = magg
            .log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains("idle HTTP session asleep"))
            .count();
        (count >= 2).then_some(())
    })
    .await;
    let ended = conn
        .send("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "")
        .await;
    assert_eq!(ended.status, 204, "{ended}");
    let reply = Conn::open(url(&magg))
        .await
        .post(Some(&session), &list_tools())
        .await;
    assert_eq!(
        reply.status, 404,
        "an ended session does not wake:\n{reply}"
    );
}

#[tokio::test]
async fn a_stalled_or_trickling_client_is_dropped_while_others_are_served() {
    let config = json!({"servers": {"tb": test_backend("tb", "tb", &[])}});
    let (_config, magg) = magg_with(&config, &[("MAGG_HTTP_READ_TIMEOUT", "2")]).await;
    let authority = authority(&magg);

    // Half a request head, and a whole head with a tenth of its body.
    let mut stalled = TcpStream::connect(&authority).await.expect("connect");
    let head = format!("POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: appl");
    stalled.write_all(head.as_bytes()).await.expect("write");
    let mut trickling = TcpStream::connect(&authority).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: {BOTH}\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\":"
    );
    trickling.write_all(head.as_bytes()).await.expect("write");

    // Everyone else is served meanwhile.
    let mut conn = Conn::open(url(&magg)).await;
    let session = conn.open_session().await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "tb_echo", "arguments": {"text": "still here"}}});
    let reply = conn.post(Some(&session), &call).await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        reply.json()["result"]["content"][0]["text"],
        "still here",
        "{reply}"
    );

    let got = read_until_closed(&mut stalled).await;
    assert!(
        got.is_empty(),
        "a half-sent head gets no answer: {}",
        String::from_utf8_lossy(&got)
    );
    let got = String::from_utf8_lossy(&read_until_closed(&mut trickling).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("http_read_timeout"), "{got}");
}

#[tokio::test]
async fn headers_too_large_get_431_and_magg_keeps_serving() {
    let (_config, magg) = magg_with(&json!({"servers": {}}), &[]).await;
    let mut conn = Conn::open(url(&magg)).await;
    let big = "x".repeat(100 * 1024);
    let reply = conn
        .send(
            "POST",
            "/mcp",
            &[("X-Big", &big)],
            &initialize().to_string(),
        )
        .await;
    assert_eq!(reply.status, 431, "{reply}");
    let mut conn = Conn::open(url(&magg)).await;
    conn.open_session().await;
}

#[tokio::test]
async fn allowed_hosts_and_origins_are_served_and_others_get_403() {
    let config = json!({
        "servers": {},
        "allowed_hosts": ["mcp.example", "localhost"],
        "allowed_origins": ["https://app.example"],
    });
    let (_config, magg) = magg_with(&config, &[]).await;
    let mut conn = Conn::open(url(&magg)).await;
    let post = |host: &'static str, origin: Option<&'static str>| {
        let mut headers = vec![
            ("Host", host),
            ("Content-Type", "application/json"),
            ("Accept", BOTH),
        ];
        headers.extend(origin.map(|o| ("Origin", o)));
        headers
    };
    let body = initialize().to_string();
    for (host, origin, status) in [
        ("mcp.example", None, 200),
        ("mcp.example:8443", Some("https://app.example"), 200),
        ("localhost", None, 200),
        ("127.0.0.1", None, 403),
        ("other.example", None, 403),
        ("mcp.example", Some("http://localhost:3000"), 403),
        ("mcp.example", Some("http://app.example"), 403),
    ] {
        let reply = conn.send("POST", "/mcp", &post(host, origin), &body).await;
        assert_eq!(
            reply.status, status,
            "Host {host}, Origin {origin:?}:\n{reply}"
        );
    }
    let reply = conn
        .send(
            "GET",
            "/mcp_servers",
            &[("Host", "mcp.example"), ("Origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(reply.status, 403, "the management API too:\n{reply}");
    assert!(reply.text().contains("allowed_origins"), "{reply}");
}

#[test]
fn a_negative_session_idle_timeout_stops_magg_with_a_clear_error() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let path = config.path.to_string_lossy().into_owned();
    let (code, _, stderr) = crate::harness::run_cli_env(
        &["serve", "--http", "--port", "0", "--config", &path],
        &[("MAGG_SESSION_IDLE_TIMEOUT", "-5")],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("MAGG_SESSION_IDLE_TIMEOUT"), "{stderr}");
    assert!(stderr.contains("0 waits forever"), "{stderr}");
}

#[tokio::test]
async fn what_a_client_set_survives_its_sessions_sleep() {
    // Idle sessions sleep after half of session_idle_timeout (3 s here).
    let env = [
        ("MAGG_SESSION_IDLE_TIMEOUT", "6"),
        ("RUST_LOG", "magg=debug,info"),
    ];
    let config = json!({"tool_search": "on", "stderr_show": true,
                        "servers": {"tb": test_backend("tb", "tb", &[])}});
    let (_config, magg) = magg_with(&config, &env).await;
    let url = url(&magg).to_owned();
    let session = Conn::open(&url).await.open_session().await;
    let post = |id: u64, method: &str, params: Value| {
        let url = url.clone();
        let session = session.clone();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        async move { Conn::open(&url).await.post(Some(&session), &body).await }
    };
    // The client sets a log level and adds a tool with tool search.
    let set = post(1, "logging/setLevel", json!({"level": "info"})).await;
    assert_eq!(set.status, 200, "{set}");
    let found = post(
        2,
        "tools/call",
        json!({"name": "magg_search_tools",
               "arguments": {"query": "add numbers", "limit": 1, "add": true}}),
    )
    .await;
    assert!(found.text().contains("tb_add"), "{found}");
    let listed = |reply: &crate::raw_http::Reply| -> Vec<String> {
        reply
            .messages()
            .into_iter()
            .flat_map(|m| m["result"]["tools"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    };
    let before = listed(&post(3, "tools/list", json!({})).await);
    assert!(before.contains(&"tb_add".to_owned()), "{before:?}");
    // ...and subscribes to a resource.
    let subscribed = post(10, "resources/subscribe", json!({"uri": "test://tb/info"})).await;
    assert_eq!(subscribed.status, 200, "{subscribed}");
    let unsubscribed = "magg-test-backend tb: unsubscribed test://info";

    eventually("the idle session to fall asleep", WAIT, || async {
        magg.logged("idle HTTP session asleep").then_some(())
    })
    .await;
    // Woken by its next request, the session still lists the tool it added...
    let after = listed(&post(4, "tools/list", json!({})).await);
    assert_eq!(after, before, "the session's tools/list after its sleep");
    // ...and still gets the log messages of the level it set, on its GET stream.
    let mut stream = Conn::open(&url).await;
    let headers = [
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
    ];
    stream.write("GET", "/mcp", &headers, "").await;
    let (status, head) = stream.read_head().await;
    assert_eq!(status, 200, "{head:?}");
    for (id, level, text) in [(5, "debug", "too low"), (6, "warning", "after sleep")] {
        let logged = post(
            id,
            "tools/call",
            json!({"name": "tb_log", "arguments": {"level": level, "text": text}}),
        )
        .await;
        assert_eq!(logged.status, 200, "{logged}");
    }
    let mut buffer = String::new();
    let message = stream.next_message(&mut buffer).await;
    assert_eq!(message["method"], "notifications/message", "{message}");
    assert!(
        message.to_string().contains("after sleep"),
        "the debug line stays below the level the client set: {message}"
    );
    // Its subscription holds: an update of the resource reaches it.
    let touched = post(
        7,
        "tools/call",
        json!({"name": "tb_touch", "arguments": {"uri": "test://info"}}),
    )
    .await;
    assert_eq!(touched.status, 200, "{touched}");
    let update = stream.next_message(&mut buffer).await;
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], "test://tb/info", "{update}");
    drop(stream);

    // Asleep again, it keeps the subscription at the backend; once it expires, magg ends it.
    let asleep_twice = || {
        let log = magg.log.lock().expect("log");
        log.iter()
            .filter(|l| l.contains("idle HTTP session asleep"))
            .count()
            >= 2
    };
    eventually("the session to fall asleep again", WAIT, || async {
        asleep_twice().then_some(())
    })
    .await;
    assert!(!magg.logged(unsubscribed), "unsubscribed while asleep");
    eventually(
        "the expired session's subscription to end",
        WAIT,
        || async { magg.logged(unsubscribed).then_some(()) },
    )
    .await;
    eventually("magg to log the wake-up", WAIT, || async {
        magg.logged("a sleeping HTTP session woke").then_some(())
    })
    .await;
}
