//! The one route of a tools/call: every request gets exactly one answer (bad input, a backend
//! that never answers, a tool whose server is still starting or went away mid-call), and a
//! call can be cancelled whichever way it went.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Magg, RawStdio, TempConfig, remote_test_backend, test_backend, text};

/// How long a test waits for plugins to compile on a cold cache.
const COMPILE: Duration = Duration::from_secs(300);

fn tb_config() -> TempConfig {
    TempConfig::new(&json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}))
}

fn is_error_result(response: &Value) -> bool {
    response["result"]["isError"] == json!(true)
}

fn result_text(response: &Value) -> String {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_notification_or_stray_response_before_initialize_does_not_end_magg() {
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[]).await;
    // Some clients send `initialized` first; a stray response is just as possible.
    raw.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    raw.send(br#"{"jsonrpc":"2.0","id":99,"result":{}}"#).await;
    let early = raw.request(json!(1), "tools/list", json!({})).await;
    assert!(
        early["error"]["code"].is_i64(),
        "a request before initialize gets an error: {early}"
    );
    let ping = raw.request(json!(2), "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}), "{ping}");
    raw.initialize().await;
    let echoed = raw.call(3, "tb_echo", json!({"text": "still here"})).await;
    assert_eq!(result_text(&echoed), "still here", "{echoed}");
    assert!(
        raw.magg.child.try_wait().ok().flatten().is_none(),
        "magg is running"
    );
}

#[tokio::test]
async fn bad_lines_on_stdio_get_the_protocols_error_and_magg_keeps_serving() {
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"tb_echo","arguments":{{"a":{}1{}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: [(&[u8], i64); 5] = [
        (b"{this is not json", -32700),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\xfe\"}",
            -32700,
        ),
        (deep.as_bytes(), -32700),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            -32700,
        ),
        (br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
    ];
    for (line, code) in cases {
        raw.send(line).await;
        let answer = raw.response().await;
        assert_eq!(
            answer["error"]["code"],
            json!(code),
            "{} got {answer}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    let echoed = raw.call(9, "tb_echo", json!({"text": "ok"})).await;
    assert_eq!(result_text(&echoed), "ok", "{echoed}");
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_an_error_with_its_id() {
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    let big = "x".repeat(65 * 1024 * 1024);
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{{"name":"tb_echo","arguments":{{"text":"{big}"}}}}}}"#
    );
    raw.send(line.as_bytes()).await;
    let answer = raw.response().await;
    assert_eq!(answer["id"], json!(77), "{answer}");
    assert_eq!(answer["error"]["code"], json!(-32600), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("limit"), "{message}");
    let echoed = raw.call(78, "tb_echo", json!({"text": "after"})).await;
    assert_eq!(result_text(&echoed), "after", "{echoed}");
}

#[tokio::test]
async fn malformed_call_params_are_invalid_params_and_never_reach_the_backend() {
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    let no_name = raw
        .request(json!(1), "tools/call", json!({"arguments": {}}))
        .await;
    assert_eq!(no_name["error"]["code"], json!(-32602), "{no_name}");
    for (id, arguments) in [(2, json!([1, 2])), (3, json!("text")), (4, json!(5))] {
        let answer = raw
            .request(
                json!(id),
                "tools/call",
                json!({"name": "tb_echo", "arguments": arguments}),
            )
            .await;
        assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("arguments"), "{message}");
    }
    let loud = raw
        .request(json!(6), "logging/setLevel", json!({"level": "loud"}))
        .await;
    assert_eq!(loud["error"]["code"], json!(-32602), "{loud}");
    assert!(
        !raw.magg.logged("backend failed"),
        "the backend never saw them"
    );
    let echoed = raw.call(7, "tb_echo", json!({"text": "fine"})).await;
    assert_eq!(result_text(&echoed), "fine", "{echoed}");
}

#[tokio::test]
async fn a_call_a_stdio_backend_never_answers_ends_at_the_call_timeout() {
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[("MAGG_BACKEND_CALL_TIMEOUT", "1")]).await;
    raw.initialize().await;
    let answer = raw.call(1, "tb_slow", json!({"ms": 60_000})).await;
    assert!(is_error_result(&answer), "{answer}");
    let message = result_text(&answer);
    assert!(message.contains("`tb`"), "names the server: {message}");
    assert!(
        message.contains("backend_call_timeout"),
        "names the limit: {message}"
    );
    raw.magg.wait_for_log("slow call cancelled").await;
    let echoed = raw.call(2, "tb_echo", json!({"text": "next"})).await;
    assert_eq!(result_text(&echoed), "next", "{echoed}");
}

#[tokio::test]
async fn a_call_an_http_backend_never_answers_ends_at_the_call_timeout() {
    let remote = remote_test_backend("rb").await;
    let config = TempConfig::new(&json!({"servers": {"rb": remote.entry("rb")}}));
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_BACKEND_CALL_TIMEOUT", "1")]).await;
    let client = magg.client();
    client.tool_names().await;
    let result = client
        .call("rb_slow", json!({"ms": 60_000}))
        .await
        .expect("a result, not a protocol error");
    assert_eq!(result["isError"], json!(true), "{result}");
    assert!(text(&result).contains("`rb`"), "{result}");
    remote.wait_for_log("slow call cancelled").await;
}

#[tokio::test]
async fn a_call_for_a_server_that_is_still_starting_waits_for_it() {
    let config = TempConfig::new(&json!({
        "servers": {"late": test_backend("late", "late", &["--start-delay-ms", "2500"])}
    }));
    // Lists stop waiting at once; the call must still wait for the server.
    let mut raw = RawStdio::start(&config.path, &[("MAGG_LIST_WAIT", "0")]).await;
    raw.initialize().await;
    let echoed = raw
        .call(1, "late_echo", json!({"text": "worth the wait"}))
        .await;
    assert_eq!(result_text(&echoed), "worth the wait", "{echoed}");
}

#[tokio::test]
async fn a_server_added_later_gets_its_own_list_wait() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_LIST_WAIT", "3")]).await;
    magg.client().tool_names().await;
    // Long after magg's own start: list_wait counts from the server's start instead.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut with_late = config.read();
    with_late["servers"]["late"] = test_backend("late", "late", &["--start-delay-ms", "1000"]);
    config.write(&with_late);
    magg.wait_for_log("config file changed; applied").await;
    let names = magg.client().tool_names().await;
    assert!(names.iter().any(|n| n == "late_echo"), "{names:?}");
}

#[tokio::test]
async fn cancelling_a_call_rerouted_to_a_backend_without_a_lane_reaches_it() {
    let remote = remote_test_backend("rb").await;
    let config = TempConfig::new(&json!({
        "stderr_show": true,
        "servers": {"tb": test_backend("tb", "tb", &[]), "rb": remote.entry("rb")},
        "plugins": {"rules": {"settings": {"rules": [
            {"tool": "tb_slow", "action": "reroute", "to": "rb_slow"}
        ]}}},
    }));
    config.install_plugin("routing-rules", "rules");
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    raw.magg
        .wait_for_log_within("plugin rules loaded", COMPILE)
        .await;
    raw.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "tb_slow", "arguments": {"ms": 60_000}}})
        .to_string()
        .as_bytes(),
    )
    .await;
    remote.wait_for_log("slow call started").await;
    raw.send(
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"user"}}"#,
    )
    .await;
    remote.wait_for_log("slow call cancelled").await;
    let echoed = raw.call(2, "tb_echo", json!({"text": "after"})).await;
    assert_eq!(
        echoed["id"],
        json!(2),
        "the cancelled call got no response: {echoed}"
    );
}

#[tokio::test]
async fn a_hooked_call_whose_tool_went_away_mid_call_still_gets_its_answer() {
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": {
            "a-slow": {"settings": {"delay_ms": 3000}, "timeout_ms": 10_000},
            "b-rules": {"settings": {"rules": [
                {"tool": "tb_echo", "action": "rewrite", "set": {"text": "rewritten"}}
            ]}},
        },
    }));
    config.install_plugin("slow-hook", "a-slow");
    config.install_plugin("routing-rules", "b-rules");
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    raw.magg
        .wait_for_log_within("plugin a-slow loaded", COMPILE)
        .await;
    raw.magg
        .wait_for_log_within("plugin b-rules loaded", COMPILE)
        .await;
    let rewritten = raw.call(1, "tb_echo", json!({"text": "x"})).await;
    assert_eq!(result_text(&rewritten), "rewritten", "{rewritten}");
    raw.send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "tb_echo", "arguments": {"text": "x"}}})
        .to_string()
        .as_bytes(),
    )
    .await;
    // While the slow hook runs, the server goes away.
    let mut without = config.read();
    without["servers"] = json!({});
    config.write(&without);
    let answer = raw.response().await;
    assert_eq!(answer["id"], json!(2), "{answer}");
    assert!(
        answer.get("result").is_some() || answer.get("error").is_some(),
        "{answer}"
    );
    let listed = raw.request(json!(3), "tools/list", json!({})).await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
}

#[tokio::test]
async fn a_session_client_on_stdio_gets_no_result_type_from_maggs_own_tools() {
    // `resultType` is a field of protocol 2026-07-28; a client of 2025-11-25 gets the results
    // of its own era, whatever answered the call.
    let config = tb_config();
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    for (id, tool, arguments) in [
        (1, "magg_status", json!({})),
        (2, "magg_list_servers", json!({})),
        (3, "no_such_tool_either", json!({})),
        (4, "tb_echo", json!({"text": "x"})),
    ] {
        let answer = raw.call(id, tool, arguments).await;
        assert!(
            answer.get("result").is_some() || answer.get("error").is_some(),
            "{answer}"
        );
        assert!(
            answer["result"].get("resultType").is_none(),
            "{tool}: {answer}"
        );
    }
}
