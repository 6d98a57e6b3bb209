//! Protocol 2026-07-28 on magg's front, as its clients see it: `server/discover`,
//! `subscriptions/listen` (list changes and resource updates, driven by the official Python SDK),
//! `ttlMs` / `cacheScope` on results (and their absence for session-era clients), the
//! `Mcp-Method` / `Mcp-Name` headers checked against the body, and the protocol's error codes
//! both ways: magg's own with what to do, a backend's passed on unchanged.

use std::{path::Path, time::Duration};

use serde_json::{Value, json};

use crate::{
    harness::{Client, Magg, RawStdio, TempConfig, bin, eventually, run_cli_env, test_backend},
    raw_http::{BOTH, Conn, Reply},
};

/// The `_meta` every 2026-07-28 request carries.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "modern-raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The `Mcp-Name` of a request for `method` with `params`, as protocol 2026-07-28 asks.
fn name_of(method: &str, params: &Value) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        _ => return None,
    };
    params[key].as_str().map(str::to_owned)
}

/// POSTs one stateless request (`_meta` and the standard headers added; `authorization` as
/// the `Authorization` header) and returns the HTTP reply.
async fn send(url: &str, method: &str, mut params: Value, authorization: Option<&str>) -> Reply {
    params["_meta"] = meta();
    let name = name_of(method, &params);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(name) = &name {
        headers.push(("Mcp-Name", name));
    }
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    Conn::open(url)
        .await
        .send("POST", "/mcp", &headers, &body.to_string())
        .await
}

/// The response (id 1) in a reply.
fn response(reply: &Reply) -> Value {
    reply
        .messages()
        .into_iter()
        .find(|m| m["id"] == json!(1))
        .unwrap_or_else(|| panic!("no response in:\n{reply}"))
}

/// One stateless request's result; panics on an error.
async fn result(url: &str, method: &str, params: Value) -> Value {
    let reply = send(url, method, params, None).await;
    let message = response(&reply);
    assert!(message["error"].is_null(), "{method}: {message}");
    message["result"].clone()
}

/// Runs a script of `tests/python` with `args`: (whether it printed `ok_line` and exited 0,
/// everything it printed).
fn python(script: &str, args: &[&str], ok_line: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (install the SDK: pip install -r tests/python/requirements.txt)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && all.contains(ok_line), all)
}

#[tokio::test]
async fn discover_tells_what_initialize_would() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");

    let discovered = result(&url, "server/discover", json!({})).await;
    let versions = discovered["supportedVersions"]
        .as_array()
        .expect("versions");
    for version in ["2025-11-25", "2026-07-28"] {
        assert!(versions.contains(&json!(version)), "{discovered}");
    }
    let caps = &discovered["capabilities"];
    assert_eq!(caps["tools"]["listChanged"], json!(true), "{discovered}");
    assert_eq!(caps["prompts"]["listChanged"], json!(true), "{discovered}");
    assert_eq!(
        caps["resources"]["listChanged"],
        json!(true),
        "{discovered}"
    );
    assert_eq!(caps["resources"]["subscribe"], json!(true), "{discovered}");
    assert!(caps["logging"].is_object() && caps["completions"].is_object());
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        json!("magg"),
        "{discovered}"
    );
    let instructions = discovered["instructions"].as_str().unwrap_or_default();
    assert!(instructions.contains("magg_status"), "{discovered}");
    // The same for every caller while magg runs.
    assert_eq!(discovered["cacheScope"], json!("public"), "{discovered}");
    assert!(discovered["ttlMs"].as_u64() > Some(0), "{discovered}");

    // A session-era client's initialize says the same.
    let mut conn = Conn::open(&url).await;
    let reply = conn.post(None, &crate::raw_http::initialize()).await;
    let initialized = &response_with_id(&reply, 0)["result"];
    assert_eq!(initialized["capabilities"], discovered["capabilities"]);
    assert_eq!(initialized["instructions"], discovered["instructions"]);
}

/// The message with `id` in a reply.
fn response_with_id(reply: &Reply, id: u64) -> Value {
    reply
        .messages()
        .into_iter()
        .find(|m| m["id"] == json!(id))
        .unwrap_or_else(|| panic!("no response {id} in:\n{reply}"))
}

#[tokio::test]
async fn the_python_sdk_listens_for_list_changes_and_resource_updates() {
    let config = TempConfig::new(&json!({
        "stderr_show": true,
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "allow_unauthenticated_changes": true,
    }));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let backend = bin("magg-test-backend").display().to_string();
    let (ok, output) = tokio::task::spawn_blocking(move || {
        python("modern_client.py", &[&url, &backend], "modern client: ok")
    })
    .await
    .expect("join");
    assert!(ok, "{output}");
    // magg subscribed to the backend for the listener, and ended that when the listen did.
    magg.wait_for_log("magg-test-backend tb: subscribed test://info")
        .await;
    magg.wait_for_log("magg-test-backend tb: unsubscribed test://info")
        .await;
}

#[tokio::test]
async fn a_listener_hears_of_a_change_another_client_makes_and_nothing_it_did_not_ask_for() {
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "allow_unauthenticated_changes": true,
    }));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    result(&url, "tools/list", json!({})).await;

    // A raw listen: the acknowledgment names what magg accepted.
    let mut listen = open_listen(
        &url,
        json!({
            "promptsListChanged": true,
            "resourceSubscriptions": ["test://tb/info", "test://nowhere/x"],
        }),
    )
    .await;
    let mut seen = String::new();
    next(
        &mut listen,
        "notifications/subscriptions/acknowledged",
        &mut seen,
    )
    .await;
    assert!(
        seen.contains(r#""notifications":{"promptsListChanged":true,"resourceSubscriptions":["test://tb/info"]}"#),
        "{seen}"
    );
    assert!(
        seen.contains(r#""io.modelcontextprotocol/subscriptionId":"L""#),
        "{seen}"
    );

    // Another client adds a server: its prompts appear, which this listener asked to hear of.
    let backend = bin("magg-test-backend").display().to_string();
    let client = magg.http_client().await;
    let added = client
        .call(
            "magg_add_server",
            json!({"name": "tc", "source": "test", "prefix": "tc", "command": backend}),
        )
        .await
        .expect("magg_add_server");
    assert_ne!(added["isError"], json!(true), "{added}");
    next(&mut listen, "notifications/prompts/list_changed", &mut seen).await;
    // The tools changed too, but this listener did not ask for tools.
    assert!(!seen.contains("notifications/tools/list_changed"), "{seen}");
    client.close().await;
}

/// Opens `subscriptions/listen` (id `"L"`) for `notifications` on a connection of its own and
/// reads the response's head.
async fn open_listen(url: &str, notifications: Value) -> Conn {
    let mut listen = Conn::open(url).await;
    let params = json!({"notifications": notifications, "_meta": meta()});
    let body =
        json!({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": params});
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "subscriptions/listen"),
    ];
    listen
        .write("POST", "/mcp", &headers, &body.to_string())
        .await;
    let (status, _) = listen.read_head().await;
    assert_eq!(status, 200);
    listen
}

/// Reads the listen stream on `listen` into `seen` until it holds `what`.
async fn next(listen: &mut Conn, what: &str, seen: &mut String) {
    while !seen.contains(what) {
        let chunk = listen.chunk().await;
        assert!(!chunk.is_empty(), "the listen ended; it said:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The caching hints of a result: (`ttlMs`, `cacheScope`).
fn hints(result: &Value) -> (Value, Value) {
    (result["ttlMs"].clone(), result["cacheScope"].clone())
}

#[tokio::test]
async fn lists_are_not_cacheable_while_a_server_is_down_and_session_clients_get_no_hints() {
    let config = TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "broken": {"source": "nowhere", "command": "/nonexistent/magg-test-server"},
    }}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");

    // `broken` has failed and is retried: its tools may come any time.
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let listed = result(&url, method, json!({})).await;
        assert_eq!(
            hints(&listed),
            (json!(0), json!("public")),
            "{method}: {listed}"
        );
    }
    // A backend's resource: private, not cacheable (the backend gave no hints).
    let read = result(&url, "resources/read", json!({"uri": "test://tb/info"})).await;
    assert_eq!(hints(&read), (json!(0), json!("private")), "{read}");

    // A session-era client gets none of these fields.
    let mut conn = Conn::open(&url).await;
    let session = conn.open_session().await;
    for (id, method, params) in [
        (2, "tools/list", json!({})),
        (3, "resources/list", json!({})),
        (4, "resources/read", json!({"uri": "test://tb/info"})),
    ] {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = conn.post(Some(&session), &request).await;
        let result = &response_with_id(&reply, id)["result"];
        assert!(result.is_object(), "{method}: {reply}");
        assert!(
            result.get("ttlMs").is_none() && result.get("cacheScope").is_none(),
            "{method}: {result}"
        );
    }
}

#[tokio::test]
async fn lists_become_cacheable_once_every_server_is_steady() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    // Right after tb started: not yet.
    let listed = result(&url, "tools/list", json!({})).await;
    assert_eq!(hints(&listed), (json!(0), json!("public")), "{listed}");
    // Steady for a while, with the config file followed (auto_reload): 30 s.
    let ttl = eventually("tools/list cacheable", Duration::from_secs(40), || {
        let url = url.clone();
        async move {
            let listed = result(&url, "tools/list", json!({})).await;
            (listed["ttlMs"] != json!(0)).then_some(listed["ttlMs"].clone())
        }
    })
    .await;
    assert_eq!(ttl, json!(30_000));
}

#[tokio::test]
async fn a_callers_checked_token_makes_its_lists_private() {
    let home = tempfile::tempdir().expect("home");
    let config = TempConfig::new(&json!({"servers": {
        "ta": test_backend("ta", "ta", &[]),
        "tc": test_backend("tc", "tc", &[]),
    }}));
    let auth = json!({"access": {"scopes": {"tc": {"servers": ["tc"]}}}});
    std::fs::write(
        config.path.parent().expect("dir").join("auth.json"),
        auth.to_string(),
    )
    .expect("auth.json");
    let path = config.path.to_str().expect("utf-8");
    let env = [
        ("HOME", home.path().to_str().expect("utf-8")),
        ("MAGG_PRIVATE_KEY", ""),
    ];
    let (code, out, err) = run_cli_env(
        &["--config", path, "auth", "init", "--audience", "team"],
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, token, err) = run_cli_env(
        &["--config", path, "auth", "token", "-q", "--scopes", "tc"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &env,
    )
    .await;
    let url = magg.url.clone().expect("url");
    let bearer = format!("Bearer {}", token.trim());

    let reply = send(&url, "tools/list", json!({}), Some(&bearer)).await;
    let listed = &response(&reply)["result"];
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("tc_")),
        "{names:?}"
    );
    assert_eq!(
        listed["cacheScope"],
        json!("private"),
        "{:?}",
        hints(listed)
    );
    let reply = send(&url, "resources/list", json!({}), Some(&bearer)).await;
    assert_eq!(
        response(&reply)["result"]["cacheScope"],
        json!("private"),
        "{reply}"
    );
}

#[tokio::test]
async fn contradicting_headers_and_unknown_versions_get_their_codes_and_what_to_do() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let mut params = json!({"name": "tb_echo", "arguments": {"text": "x"}});
    params["_meta"] = meta();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});

    // Mcp-Method says tools/list, the body tools/call: a load balancer routing on the header
    // would have sent it wrong.
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
    ];
    let reply = Conn::open(&url)
        .await
        .send("POST", "/mcp", &headers, &body.to_string())
        .await;
    assert_eq!(reply.status, 400, "{reply}");
    let error = &reply.json()["error"];
    assert_eq!(error["code"], json!(-32020), "{reply}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("does not match body method `tools/call`") && message.contains("Mcp-Name"),
        "{message}"
    );

    // Mcp-Name names another tool.
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "tb_add"),
    ];
    let reply = Conn::open(&url)
        .await
        .send("POST", "/mcp", &headers, &body.to_string())
        .await;
    assert_eq!(reply.json()["error"]["code"], json!(-32020), "{reply}");

    // A version magg does not speak: -32022, naming the ones it does.
    let mut params = json!({});
    params["_meta"] = meta();
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params});
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2099-01-01"),
        ("Mcp-Method", "tools/list"),
    ];
    let reply = Conn::open(&url)
        .await
        .send("POST", "/mcp", &headers, &body.to_string())
        .await;
    let error = &reply.json()["error"];
    assert_eq!(error["code"], json!(-32022), "{reply}");
    assert_eq!(error["data"]["requested"], json!("2099-01-01"), "{reply}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2099-01-01")
            && message.contains("2025-11-25")
            && message.contains("2026-07-28"),
        "{message}"
    );
    assert!(message.contains("MCP-Protocol-Version"), "{message}");
}

#[tokio::test]
async fn a_backends_protocol_error_codes_reach_clients_of_both_eras_unchanged() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/coded_backend.py");
    let config = TempConfig::new(&json!({"servers": {"coded": {
        "source": "tests/python/coded_backend.py",
        "prefix": "coded",
        "command": "python3",
        "args": [script],
    }}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let session = Client::http(&url).await;
    session.tool_names().await;

    for (tool, code, data) in [
        (
            "coded_needs_sampling",
            -32021,
            json!({"requiredCapabilities": {"sampling": {}}}),
        ),
        (
            "coded_old_version",
            -32022,
            json!({"requested": "2099-01-01", "supported": ["2025-11-25"]}),
        ),
    ] {
        // A stateless client.
        let reply = send(
            &url,
            "tools/call",
            json!({"name": tool, "arguments": {}}),
            None,
        )
        .await;
        let error = &response(&reply)["error"];
        assert_eq!(error["code"], json!(code), "{tool}: {reply}");
        assert_eq!(error["data"], data, "{tool}: {reply}");
        // A session-era client.
        match session.call(tool, json!({})).await {
            Err(rmcp::ServiceError::McpError(error)) => {
                assert_eq!(error.code.0, code, "{tool}: {error:?}");
                assert_eq!(error.data, Some(data), "{tool}: {error:?}");
            }
            other => panic!("{tool}: {other:?}"),
        }
    }
    session.close().await;
}

#[tokio::test]
async fn a_stateless_stdio_client_listens_until_it_cancels() {
    let config = TempConfig::new(&json!({
        "stderr_show": true,
        "servers": {"tb": test_backend("tb", "tb", &[])},
    }));
    let mut stdio = RawStdio::start(&config.path, &[]).await;
    let listed = stdio
        .request(json!(1), "tools/list", json!({"_meta": meta()}))
        .await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");

    let listen = json!({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": {
        "notifications": {"resourceSubscriptions": ["test://tb/info"]},
        "_meta": meta(),
    }});
    stdio.send(listen.to_string().as_bytes()).await;
    let ack = stdio.recv().await;
    assert_eq!(
        ack["method"],
        json!("notifications/subscriptions/acknowledged"),
        "{ack}"
    );
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!(["test://tb/info"])
    );
    stdio
        .magg
        .wait_for_log("magg-test-backend tb: subscribed test://info")
        .await;

    let touch = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "tb_touch", "arguments": {"uri": "test://info"}, "_meta": meta(),
    }});
    stdio.send(touch.to_string().as_bytes()).await;
    let mut updated = None;
    for _ in 0..3 {
        let message = stdio.recv().await;
        if message["method"] == json!("notifications/resources/updated") {
            updated = Some(message);
            break;
        }
    }
    let updated = updated.expect("notifications/resources/updated");
    assert_eq!(
        updated["params"]["uri"],
        json!("test://tb/info"),
        "{updated}"
    );
    assert_eq!(
        updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        json!("L"),
        "{updated}"
    );

    // Cancelling the listen ends magg's subscription at the backend.
    stdio
        .send(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"L"}}"#)
        .await;
    stdio
        .magg
        .wait_for_log("magg-test-backend tb: unsubscribed test://info")
        .await;
}

#[tokio::test]
async fn a_listen_ends_with_its_result_when_magg_stops() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let mut listen = open_listen(&url, json!({"toolsListChanged": true})).await;
    let mut seen = String::new();
    next(
        &mut listen,
        "notifications/subscriptions/acknowledged",
        &mut seen,
    )
    .await;

    let pid = magg.child.id().expect("magg is running") as libc::pid_t;
    // SAFETY: kill only sends a signal to the magg process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "signal magg");
    // The listen's final result: the graceful end a client tells from a dropped stream.
    next(&mut listen, r#""id":"L","result""#, &mut seen).await;
    assert!(seen.contains(r#""resultType":"complete""#), "{seen}");
}

#[tokio::test]
async fn methods_2026_07_28_removed_are_not_found_with_what_replaces_them() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    for (method, params, instead) in [
        ("initialize", json!({}), "server/discover"),
        ("ping", json!({}), "any request"),
        (
            "logging/setLevel",
            json!({"level": "info"}),
            "io.modelcontextprotocol/logLevel",
        ),
        (
            "logging/setLevel",
            json!({}),
            "io.modelcontextprotocol/logLevel",
        ),
        (
            "resources/subscribe",
            json!({"uri": "test://tb/info"}),
            "subscriptions/listen",
        ),
        ("resources/unsubscribe", json!({}), "subscriptions/listen"),
    ] {
        let reply = send(&url, method, params, None).await;
        assert_eq!(reply.status, 404, "{method}: {reply}");
        let error = &response(&reply)["error"];
        assert_eq!(error["code"], json!(-32601), "{method}: {reply}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("protocol 2026-07-28 removed it") && message.contains(instead),
            "{method}: {message}"
        );
    }
}
