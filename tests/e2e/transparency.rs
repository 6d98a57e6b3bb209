//! What a backend sends about a call reaches the client that made it, and what a client says
//! about itself reaches the backends: progress, logging, resource subscriptions and updates,
//! roots changes and cancellation, with a single client at a time.

use std::{collections::BTreeMap, time::Duration};

use serde_json::json;

use crate::harness::{
    Client, ClientSpec, Magg, TempConfig, everything, progress_steps, remote_test_backend,
    steps_to, test_backend, text,
};

#[tokio::test]
async fn progress_of_two_concurrent_calls_reaches_the_client_unmixed() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    // The rmcp client asks for progress on every request, each with its own token.
    let (a, b) = tokio::join!(
        client.call("tb_slow", json!({"ms": 300})),
        client.call("tb_slow", json!({"ms": 150}))
    );
    assert_eq!(text(&a.expect("a")), "slept 300 ms");
    assert_eq!(text(&b.expect("b")), "slept 150 ms");
    let events = client.events_for(Duration::from_millis(200)).await;
    let progress: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("progress "))
        .collect();
    let mut tokens: Vec<&str> = progress
        .iter()
        .filter_map(|e| e.split(' ').nth(1))
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 2, "one token per call: {progress:?}");
    for token in tokens {
        let steps: Vec<&str> = progress
            .iter()
            .filter(|e| e.split(' ').nth(1) == Some(token))
            .filter_map(|e| e.split(' ').nth(2))
            .collect();
        assert_eq!(steps, vec!["1", "2", "3"], "token {token}: {progress:?}");
    }
}

/// tb (and server-everything as ev) with their stderr in magg's log.
fn tb_and_ev() -> TempConfig {
    TempConfig::new(&json!({"stderr_show": true, "servers": {
        "tb": test_backend("tb", "tb", &[]),
        "ev": everything("ev"),
    }}))
}

/// Two concurrent `tb_slow` calls: each token gets exactly steps 1, 2, 3 and nothing else.
async fn two_slow_calls_keep_their_tokens(client: &mut Client, slow: &str, answer_prefix: &str) {
    client.tool_names().await;
    let ((token_a, a), (token_b, b)) = tokio::join!(
        client.call_tracked(slow, json!({"ms": 300})),
        client.call_tracked(slow, json!({"ms": 150}))
    );
    assert_eq!(text(&a.expect("a")), format!("{answer_prefix}slept 300 ms"));
    assert_eq!(text(&b.expect("b")), format!("{answer_prefix}slept 150 ms"));
    assert_ne!(token_a, token_b);
    let events = client.events_for(Duration::from_millis(300)).await;
    let expected = BTreeMap::from([(token_a, steps_to(3)), (token_b, steps_to(3))]);
    assert_eq!(
        progress_steps(&events),
        expected,
        "progress under the client's own tokens: {events:?}"
    );
}

#[tokio::test]
async fn progress_over_http_keeps_the_clients_own_tokens() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client().await;
    two_slow_calls_keep_their_tokens(&mut client, "tb_slow", "").await;
}

#[tokio::test]
async fn progress_through_a_routing_hook_keeps_the_clients_own_tokens() {
    // A routing hook takes stdio calls off the fast lane, through magg's rmcp client.
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": {"routing-rules": {"settings": {
            "rules": [],
            "after": [{"tool": "tb_slow", "prepend": "hooked: "}],
        }}},
    }));
    config.install_plugin("routing-rules", "routing-rules");
    let mut magg = Magg::stdio(&config.path).await;
    two_slow_calls_keep_their_tokens(magg.client(), "tb_slow", "hooked: ").await;
}

/// server-everything's long running operation: 3 steps under the caller's token, then done.
async fn long_running_operation_reports_progress(client: &mut Client) {
    let names = client.tool_names().await;
    let tool = "ev_trigger-long-running-operation";
    assert!(names.iter().any(|n| n == tool), "{names:?}");
    let (token, result) = client
        .call_tracked(tool, json!({"duration": 0.6, "steps": 3}))
        .await;
    let result = result.expect("long running operation");
    assert!(
        text(&result).starts_with("Long running operation completed."),
        "{result}"
    );
    let events = client.events_for(Duration::from_millis(300)).await;
    assert_eq!(
        progress_steps(&events),
        BTreeMap::from([(token, steps_to(3))]),
        "{events:?}"
    );
}

#[tokio::test]
async fn everything_long_running_operation_reports_progress_over_stdio_and_http() {
    let config = TempConfig::new(&json!({"servers": {"ev": everything("ev")}}));
    let mut magg = Magg::http(&config.path, true).await;
    magg.connect_stdio(ClientSpec::bare("stdio")).await;
    long_running_operation_reports_progress(magg.client()).await;
    let mut http = magg.http_client().await;
    long_running_operation_reports_progress(&mut http).await;
}

#[tokio::test]
async fn backend_log_messages_reach_the_client_naming_the_server() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    let mut client = magg.take_client();
    client.tool_names().await;

    client
        .set_level("debug")
        .await
        .expect("magg accepts logging/setLevel");
    magg.wait_for_log("magg-test-backend tb: log level set to debug")
        .await;

    let logged = client
        .call("tb_log", json!({"level": "warning", "text": "hi"}))
        .await
        .expect("tb_log");
    assert_eq!(text(&logged), "logged");
    client
        .next_event(|e| e == r#"log warning tb/tb-logger "hi""#)
        .await;

    // server-everything logs without a logger name: the logger is the server's name. The
    // first simulated message is sent at once.
    let toggle = "ev_toggle-simulated-logging";
    let started = client.call(toggle, json!({})).await.expect("toggle on");
    assert!(text(&started).starts_with("Started"), "{started}");
    client
        .next_event(|e| e.starts_with("log ") && e.split(' ').nth(2) == Some("ev"))
        .await;
    let stopped = client.call(toggle, json!({})).await.expect("toggle off");
    assert!(text(&stopped).starts_with("Stopped"), "{stopped}");
}

#[tokio::test]
async fn a_client_gets_only_the_log_levels_it_asked_for() {
    let config = TempConfig::new(
        &json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}),
    );
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    let mut client = magg.take_client();
    client.tool_names().await;
    client.set_level("error").await.expect("setLevel");
    magg.wait_for_log("magg-test-backend tb: log level set to error")
        .await;
    for (level, text) in [("info", "quiet"), ("error", "loud")] {
        client
            .call("tb_log", json!({"level": level, "text": text}))
            .await
            .expect("tb_log");
    }
    client
        .next_event(|e| e == r#"log error tb/tb-logger "loud""#)
        .await;
    client
        .expect_no_event(Duration::from_millis(300), |e| e.contains(r#""quiet""#))
        .await;
}

#[tokio::test]
async fn resource_updates_follow_the_clients_subscriptions() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    let mut client = magg.take_client();
    client.tool_names().await;

    // magg subscribes the backend to its own URI, and names the resource by magg's URI.
    client
        .subscribe("test://tb/info")
        .await
        .expect("subscribe to a tb resource");
    magg.wait_for_log("magg-test-backend tb: subscribed test://info")
        .await;
    client
        .call("tb_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    client.next_event(|e| e == "updated test://tb/info").await;

    client
        .unsubscribe("test://tb/info")
        .await
        .expect("unsubscribe");
    magg.wait_for_log("magg-test-backend tb: unsubscribed test://info")
        .await;
    client
        .call("tb_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    client
        .expect_no_event(Duration::from_millis(500), |e| e.starts_with("updated "))
        .await;

    // server-everything sends updates for the URIs it was subscribed to, by its own URIs.
    let resources = client
        .service
        .list_all_resources()
        .await
        .expect("resources/list");
    let uri = resources
        .iter()
        .map(|r| r.uri.clone())
        .find(|u| u.starts_with("demo://ev/"))
        .expect("a server-everything resource");
    client.subscribe(&uri).await.expect("subscribe to ev");
    let toggle = "ev_toggle-subscriber-updates";
    client.call(toggle, json!({})).await.expect("toggle on");
    let expected = format!("updated {uri}");
    client.next_event(|e| e == expected).await;
    client.call(toggle, json!({})).await.expect("toggle off");
}

#[tokio::test]
async fn roots_list_changed_from_the_client_reaches_every_backend() {
    let config = TempConfig::new(&json!({"stderr_show": true, "servers": {
        "tb": test_backend("tb", "tb", &[]),
        "tb2": test_backend("tb2", "tb2", &[]),
    }}));
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    let client = magg.take_client();
    client.tool_names().await;
    client
        .notify_roots_list_changed()
        .await
        .expect("notifications/roots/list_changed");
    magg.wait_for_log("magg-test-backend tb: roots list changed")
        .await;
    magg.wait_for_log("magg-test-backend tb2: roots list changed")
        .await;
}

#[tokio::test]
async fn cancelling_an_http_call_reaches_the_backend() {
    let config = TempConfig::new(
        &json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}),
    );
    let magg = Magg::http(&config.path, false).await;
    let client = magg.http_client().await;
    client.tool_names().await;
    // Dropping the call makes the rmcp client send notifications/cancelled for it.
    let slow = client.call("tb_slow", json!({"ms": 30_000}));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow)
            .await
            .is_err()
    );
    magg.wait_for_log("slow call cancelled").await;
    let after = client
        .call("tb_echo", json!({"text": "after"}))
        .await
        .expect("echo");
    assert_eq!(text(&after), "after");
}

#[tokio::test]
async fn cancelling_a_call_to_a_backend_reached_by_url_reaches_it() {
    let remote = remote_test_backend("remote").await;
    let config = TempConfig::new(&json!({"servers": {"remote": remote.entry("remote")}}));
    let magg = Magg::http(&config.path, false).await;
    let client = magg.http_client().await;
    client.tool_names().await;
    let slow = client.call("remote_slow", json!({"ms": 30_000}));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow)
            .await
            .is_err()
    );
    remote.wait_for_log("slow call cancelled").await;
}
