//! Requests a backend sends to the client (sampling, elicitation, roots) go through magg to the
//! client whose call caused them, over stdio and HTTP. A client that lacks the capability gets
//! the backend an error at once, never a hang. magg tells backends it can relay all three.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Client, ClientSpec, Magg, TempConfig, all_text, everything, test_backend, text,
};

/// How long a backend may wait for an answer magg must give at once.
const AT_ONCE: Duration = Duration::from_secs(5);

fn tb_and_ev() -> TempConfig {
    TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "ev": everything("ev"),
    }}))
}

/// The tool list, checked to hold `wanted`.
async fn tools_include(client: &Client, wanted: &[&str]) {
    let names = client.tool_names().await;
    for tool in wanted {
        assert!(
            names.iter().any(|n| n == tool),
            "{tool} is missing (server-everything offers it only when magg declares the \
             capability): {names:?}"
        );
    }
}

/// Calls a tool that must answer within [`AT_ONCE`]; the tool result (the call may fail).
async fn call_at_once(client: &Client, name: &str, args: Value) -> Result<Value, String> {
    tokio::time::timeout(AT_ONCE, client.call(name, args))
        .await
        .unwrap_or_else(|_| panic!("{name} hung: no answer within {AT_ONCE:?}"))
        .map_err(|e| e.to_string())
}

async fn sampling_reaches_the_caller(client: &mut Client) {
    tools_include(client, &["ev_trigger-sampling-request"]).await;
    let result = client
        .call(
            "ev_trigger-sampling-request",
            json!({"prompt": "x", "maxTokens": 10}),
        )
        .await
        .expect("ev sampling");
    assert_ne!(result["isError"], json!(true), "{result}");
    assert!(all_text(&result).contains("c1 says hi"), "{result}");
    client
        .next_event(|e| e == "sampling Resource trigger-sampling-request context: x")
        .await;

    let result = client
        .call("tb_sample", json!({"prompt": "y"}))
        .await
        .expect("tb sampling");
    assert_eq!(text(&result), "sampled: c1 says hi", "{result}");
    client.next_event(|e| e == "sampling y").await;
}

#[tokio::test]
async fn sampling_from_a_backend_reaches_the_calling_client_over_stdio() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    sampling_reaches_the_caller(magg.client()).await;
}

#[tokio::test]
async fn sampling_from_a_backend_reaches_the_calling_client_over_http() {
    let config = tb_and_ev();
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client_as(ClientSpec::full("c1")).await;
    sampling_reaches_the_caller(&mut client).await;
}

async fn elicitation_reaches_the_caller(client: &mut Client) {
    tools_include(
        client,
        &[
            "ev_trigger-elicitation-request",
            "ev_trigger-url-elicitation",
        ],
    )
    .await;
    // server-everything's form uses most of the schema features (formats, enums, defaults).
    let result = client
        .call("ev_trigger-elicitation-request", json!({}))
        .await
        .expect("ev form elicitation");
    assert!(all_text(&result).contains("- Name: c1"), "{result}");
    client.next_event(|e| e == "elicit form").await;

    let result = client
        .call(
            "ev_trigger-url-elicitation",
            json!({"url": "https://example.com/a"}),
        )
        .await
        .expect("ev URL elicitation");
    assert!(
        all_text(&result).contains("User completed the URL elicitation flow"),
        "{result}"
    );
    client
        .next_event(|e| e == "elicit url https://example.com/a")
        .await;

    let result = client
        .call("tb_elicit", json!({"mode": "form"}))
        .await
        .expect("tb form elicitation");
    assert_eq!(
        text(&result),
        r#"elicited: accept {"name":"c1"}"#,
        "{result}"
    );
    client.next_event(|e| e == "elicit form").await;

    let result = client
        .call(
            "tb_elicit",
            json!({"mode": "url", "url": "https://example.com/b"}),
        )
        .await
        .expect("tb URL elicitation");
    assert_eq!(text(&result), "elicited: accept null", "{result}");
    client
        .next_event(|e| e == "elicit url https://example.com/b")
        .await;
}

#[tokio::test]
async fn elicitation_forms_and_urls_reach_the_calling_client_over_stdio() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    elicitation_reaches_the_caller(magg.client()).await;
}

#[tokio::test]
async fn elicitation_forms_and_urls_reach_the_calling_client_over_http() {
    let config = tb_and_ev();
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client_as(ClientSpec::full("c1")).await;
    elicitation_reaches_the_caller(&mut client).await;
}

async fn roots_come_from_the_caller(client: &mut Client) {
    tools_include(client, &["ev_get-roots-list"]).await;
    let result = client.call("tb_roots", json!({})).await.expect("tb roots");
    assert_eq!(text(&result), "file:///magg-e2e/c1", "{result}");
    client.next_event(|e| e == "roots").await;
    // server-everything asks once per session (maybe already at start) and caches.
    let result = client
        .call("ev_get-roots-list", json!({}))
        .await
        .expect("ev roots");
    assert!(
        all_text(&result).contains("file:///magg-e2e/c1"),
        "{result}"
    );
}

#[tokio::test]
async fn roots_come_from_the_calling_client_over_stdio() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("c1")).await;
    roots_come_from_the_caller(magg.client()).await;
}

#[tokio::test]
async fn roots_come_from_the_calling_client_over_http() {
    let config = tb_and_ev();
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client_as(ClientSpec::full("c1")).await;
    roots_come_from_the_caller(&mut client).await;
}

#[tokio::test]
async fn magg_tells_backends_it_can_sample_elicit_and_list_roots() {
    // Backends are shared and start before any client: what magg declares does not depend on
    // the client, even one that declares nothing.
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::bare("c0")).await;
    let client = magg.client();
    tools_include(
        client,
        &[
            "ev_trigger-sampling-request",
            "ev_trigger-elicitation-request",
            "ev_trigger-url-elicitation",
            "ev_get-roots-list",
        ],
    )
    .await;
    let caps = client
        .call("tb_client_caps", json!({}))
        .await
        .expect("client caps");
    let caps: Value = serde_json::from_str(text(&caps)).expect("caps JSON");
    assert!(caps["sampling"].is_object(), "{caps}");
    assert!(caps["elicitation"]["form"].is_object(), "{caps}");
    assert!(caps["elicitation"]["url"].is_object(), "{caps}");
    assert_eq!(caps["roots"]["listChanged"], json!(true), "{caps}");
}

/// Every server→client request of tb, and ev's sampling, fail at once naming the capability;
/// the client is never asked.
async fn refused_at_once(client: &mut Client) {
    tools_include(client, &["ev_trigger-sampling-request"]).await;
    let cases = [
        (
            "tb_sample",
            json!({"prompt": "x"}),
            "sample failed",
            "sampling",
        ),
        ("tb_roots", json!({}), "roots failed", "roots"),
        (
            "tb_elicit",
            json!({"mode": "form"}),
            "elicit failed",
            "elicitation",
        ),
        (
            "tb_elicit",
            json!({"mode": "url"}),
            "elicit failed",
            "elicitation",
        ),
    ];
    for (tool, args, failed, capability) in cases {
        let result = call_at_once(client, tool, args.clone())
            .await
            .unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
        assert_eq!(result["isError"], json!(true), "{tool} {args}: {result}");
        let message = text(&result);
        // rmcp's default refusal names only the method: that is not an answer about the client.
        let about_the_client = ["sampling/createMessage", "roots/list", "elicitation/create"]
            .iter()
            .fold(message.to_owned(), |m, method| m.replace(method, ""));
        assert!(
            message.starts_with(failed) && about_the_client.contains(capability),
            "{tool} {args}: the error names {capability}: {result}"
        );
    }
    // server-everything turns the error into an isError result; a JSON-RPC error is fine too.
    if let Ok(result) = call_at_once(
        client,
        "ev_trigger-sampling-request",
        json!({"prompt": "x"}),
    )
    .await
    {
        assert_eq!(result["isError"], json!(true), "{result}");
    }
    let asked: Vec<String> = client
        .history()
        .iter()
        .filter(|e| e.starts_with("sampling") || e.starts_with("elicit") || *e == "roots")
        .cloned()
        .collect();
    assert!(asked.is_empty(), "the client was asked anyway: {asked:?}");
}

#[tokio::test]
async fn a_client_without_the_capabilities_gets_the_backend_an_error_at_once_over_stdio() {
    let config = tb_and_ev();
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::bare("c0")).await;
    refused_at_once(magg.client()).await;
}

#[tokio::test]
async fn a_client_without_the_capabilities_gets_the_backend_an_error_at_once_over_http() {
    let config = tb_and_ev();
    let magg = Magg::http(&config.path, false).await;
    let mut client = magg.http_client_as(ClientSpec::bare("c0")).await;
    refused_at_once(&mut client).await;
}

#[tokio::test]
async fn a_form_only_client_answers_forms_and_url_elicitation_is_refused() {
    let config = tb_and_ev();
    let spec = ClientSpec {
        elicitation_form: true,
        ..ClientSpec::bare("c3")
    };
    let mut magg = Magg::stdio_as(&config.path, spec).await;
    let client = magg.client();
    client.tool_names().await;
    let form = call_at_once(client, "tb_elicit", json!({"mode": "form"}))
        .await
        .expect("form");
    assert_eq!(text(&form), r#"elicited: accept {"name":"c3"}"#, "{form}");
    let url = call_at_once(client, "tb_elicit", json!({"mode": "url"}))
        .await
        .expect("url");
    assert_eq!(url["isError"], json!(true), "{url}");
    assert!(
        text(&url).starts_with("elicit failed") && text(&url).contains("elicitation"),
        "{url}"
    );
    let asked: Vec<String> = client
        .history()
        .iter()
        .filter(|e| e.starts_with("elicit url"))
        .cloned()
        .collect();
    assert!(
        asked.is_empty(),
        "the client was asked for a URL: {asked:?}"
    );
}
