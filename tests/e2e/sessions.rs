//! Several client sessions at once over one set of backends: what a backend sends about a call
//! reaches only the session that made it, backend-wide traffic reaches the sessions that asked
//! for it, and what sessions ask of backends is combined.

use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::harness::{
    Client, ClientSpec, Magg, TempConfig, progress_steps, remote_test_backend, steps_to,
    test_backend, text,
};

fn tb_with_stderr() -> TempConfig {
    TempConfig::new(&json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}))
}

/// Whether `client` has been asked to sample so far.
fn was_asked_to_sample(client: &mut Client) -> Vec<String> {
    client
        .history()
        .iter()
        .filter(|e| e.starts_with("sampling"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn concurrent_http_sessions_each_answer_their_own_sampling() {
    // A streamable-HTTP backend sends each sampling request on the stream of the call that
    // caused it, so magg knows exactly whose it is.
    let remote = remote_test_backend("remote").await;
    let config = TempConfig::new(&json!({"servers": {"remote": remote.entry("remote")}}));
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    let mut b = magg.http_client_as(ClientSpec::full("B")).await;
    a.tool_names().await;
    let (from_a, from_b) = tokio::join!(
        a.call(
            "remote_sample",
            json!({"prompt": "from A", "delay_ms": 300})
        ),
        b.call(
            "remote_sample",
            json!({"prompt": "from B", "delay_ms": 300})
        )
    );
    assert_eq!(text(&from_a.expect("A")), "sampled: A says hi");
    assert_eq!(text(&from_b.expect("B")), "sampled: B says hi");
    assert_eq!(was_asked_to_sample(&mut a), vec!["sampling from A"]);
    assert_eq!(was_asked_to_sample(&mut b), vec!["sampling from B"]);
}

/// Starts `tb_slow` for `client` in the background and waits until its first step is reported,
/// so the call is known to be in flight.
async fn slow_call_in_flight(
    client: &mut Client,
    ms: u64,
) -> tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>> {
    let peer = client.service.peer().clone();
    let params = CallToolRequestParams::new("tb_slow")
        .with_arguments(json!({"ms": ms}).as_object().cloned().unwrap_or_default());
    let call = tokio::spawn(async move { peer.call_tool(params).await });
    client.next_event(|e| e.starts_with("progress ")).await;
    call
}

#[tokio::test]
async fn a_stdio_backends_request_goes_to_the_session_whose_call_is_newest() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    let mut b = magg.http_client_as(ClientSpec::full("B")).await;
    a.tool_names().await;
    let slow = slow_call_in_flight(&mut a, 3000).await;
    let sampled = b
        .call("tb_sample", json!({"prompt": "b"}))
        .await
        .expect("B samples");
    assert_eq!(text(&sampled), "sampled: B says hi", "{sampled}");
    assert!(was_asked_to_sample(&mut a).is_empty());
    let slept = slow.await.expect("join").expect("A's slow call");
    assert_eq!(
        text(&serde_json::to_value(slept).expect("json")),
        "slept 3000 ms"
    );
    let sampled = a
        .call("tb_sample", json!({"prompt": "a"}))
        .await
        .expect("A samples");
    assert_eq!(text(&sampled), "sampled: A says hi", "{sampled}");
    assert_eq!(was_asked_to_sample(&mut b), vec!["sampling b"]);
}

#[tokio::test]
async fn another_session_never_answers_for_a_caller_without_the_capability() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    let b = magg.http_client_as(ClientSpec::bare("B")).await;
    a.tool_names().await;
    let slow = slow_call_in_flight(&mut a, 3000).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        b.call("tb_sample", json!({"prompt": "b"})),
    )
    .await
    .expect("an answer at once, not a hang")
    .expect("a tool result");
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert!(text(&refused).contains("sampling"), "{refused}");
    assert!(
        was_asked_to_sample(&mut a).is_empty(),
        "A was asked for B's call"
    );
    slow.await.expect("join").expect("A's slow call");
}

#[tokio::test]
async fn progress_never_mixes_between_sessions_or_paths() {
    // Hybrid: the stdio client's calls take the fast lane, the HTTP client's calls magg's rmcp
    // client. Both clients number their progress tokens from 0, and so does magg's client to
    // the backend: line the numbers up so that a backend token collides with the stdio one.
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::http(&config.path, true).await;
    magg.connect_stdio(ClientSpec::bare("stdio")).await;
    let mut stdio = magg.take_client();
    let mut http = magg.http_client_as(ClientSpec::bare("http")).await;
    stdio.tool_names().await;
    http.tool_names().await;

    let (token, echo) = stdio.call_tracked("tb_echo", json!({"text": "x"})).await;
    echo.expect("stdio echo");
    let mut stdio_next = token.parse::<u64>().expect("a numeric token") + 1;
    let seen = http
        .call("tb_progress_token", json!({}))
        .await
        .expect("token over HTTP");
    if let Ok(backend) = text(&seen).parse::<u64>() {
        let mut backend_next = backend + 1;
        assert!(
            stdio_next.abs_diff(backend_next) < 1000,
            "{stdio_next} {backend_next}"
        );
        while stdio_next < backend_next {
            stdio.ping().await;
            stdio_next += 1;
        }
        while backend_next < stdio_next {
            http.call("tb_echo", json!({"text": "x"}))
                .await
                .expect("echo");
            backend_next += 1;
        }
    }

    let ((stdio_token, a), (http_token, b)) = tokio::join!(
        stdio.call_tracked("tb_slow", json!({"ms": 300})),
        http.call_tracked("tb_slow", json!({"ms": 300}))
    );
    assert_eq!(text(&a.expect("stdio slow")), "slept 300 ms");
    assert_eq!(text(&b.expect("http slow")), "slept 300 ms");
    let stdio_events = stdio.events_for(Duration::from_millis(300)).await;
    let http_events = http.events_for(Duration::from_millis(300)).await;
    assert_eq!(
        progress_steps(&stdio_events),
        [(stdio_token, steps_to(3))].into(),
        "stdio: {stdio_events:?}"
    );
    assert_eq!(
        progress_steps(&http_events),
        [(http_token, steps_to(3))].into(),
        "http: {http_events:?}"
    );
}

#[tokio::test]
async fn a_request_no_call_caused_goes_to_the_most_recently_active_session() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let a = magg.http_client_as(ClientSpec::full("A")).await;
    let b = magg.http_client_as(ClientSpec::full("B")).await;
    a.tool_names().await;
    let scheduled = a
        .call("tb_roots_later", json!({"ms": 2000}))
        .await
        .expect("roots_later");
    assert_eq!(text(&scheduled), "scheduled");
    b.call("tb_echo", json!({"text": "B was here"}))
        .await
        .expect("echo");
    magg.wait_for_log("later roots").await;
    assert!(
        magg.logged("magg-test-backend tb: later roots: file:///magg-e2e/B"),
        "B was the last to talk to magg; log:\n{}",
        magg.log.lock().expect("log").join("\n")
    );
}

#[tokio::test]
async fn resource_updates_reach_only_subscribed_sessions() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    let mut b = magg.http_client_as(ClientSpec::full("B")).await;
    a.tool_names().await;
    let subscribed = "magg-test-backend tb: subscribed test://info";
    let unsubscribed = "magg-test-backend tb: unsubscribed test://info";

    a.subscribe("test://tb/info").await.expect("A subscribes");
    magg.wait_for_log(subscribed).await;
    a.call("tb_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    a.next_event(|e| e == "updated test://tb/info").await;
    b.expect_no_event(Duration::from_millis(500), |e| e.starts_with("updated "))
        .await;

    // While A is still subscribed, B coming and going does not unsubscribe the backend.
    b.subscribe("test://tb/info").await.expect("B subscribes");
    b.unsubscribe("test://tb/info")
        .await
        .expect("B unsubscribes");
    a.call("tb_touch", json!({"uri": "test://info"}))
        .await
        .expect("touch");
    a.next_event(|e| e == "updated test://tb/info").await;
    b.expect_no_event(Duration::from_millis(500), |e| e.starts_with("updated "))
        .await;
    assert!(
        !magg.logged(unsubscribed),
        "the backend was unsubscribed while A still wants updates"
    );

    // When A's session ends, nobody wants updates any more.
    a.close().await;
    magg.wait_for_log(unsubscribed).await;
}

#[tokio::test]
async fn backend_log_messages_reach_every_session() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    let mut b = magg.http_client_as(ClientSpec::bare("B")).await;
    a.tool_names().await;
    b.call("tb_log", json!({"level": "debug", "text": "to all"}))
        .await
        .expect("tb_log");
    let expected = r#"log debug tb/tb-logger "to all""#;
    a.next_event(|e| e == expected).await;
    b.next_event(|e| e == expected).await;
}

#[tokio::test]
async fn the_log_level_sent_to_backends_is_the_most_verbose_of_the_sessions() {
    let config = tb_with_stderr();
    let magg = Magg::http(&config.path, false).await;
    let mut a = magg.http_client_as(ClientSpec::full("A")).await;
    a.tool_names().await;
    a.set_level("error").await.expect("A sets error");
    let to_error = "magg-test-backend tb: log level set to error";
    magg.wait_for_log(to_error).await;

    let mut b = magg.http_client_as(ClientSpec::full("B")).await;
    b.set_level("debug").await.expect("B sets debug");
    magg.wait_for_log("magg-test-backend tb: log level set to debug")
        .await;

    // Each session still gets only what it asked for.
    for (level, text) in [("info", "for B"), ("error", "for both")] {
        b.call("tb_log", json!({"level": level, "text": text}))
            .await
            .expect("tb_log");
    }
    b.next_event(|e| e == r#"log info tb/tb-logger "for B""#)
        .await;
    b.next_event(|e| e == r#"log error tb/tb-logger "for both""#)
        .await;
    a.next_event(|e| e == r#"log error tb/tb-logger "for both""#)
        .await;
    a.expect_no_event(Duration::from_millis(300), |e| e.contains(r#""for B""#))
        .await;

    // Without B, the most verbose level left is A's.
    let before = magg.log_count(to_error);
    b.close().await;
    magg.wait_for_log_count(to_error, before + 1).await;
}
