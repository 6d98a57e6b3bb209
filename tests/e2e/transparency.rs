//! What a backend sends about a call reaches the client that made it.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Magg, TempConfig, test_backend, text};

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
