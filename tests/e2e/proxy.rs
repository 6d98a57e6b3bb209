//! The `proxy` tool: Magg's list / info / call over tools, resources and prompts.

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, test_backend, text};

fn embedded(result: &Value) -> (Value, Value) {
    let block = &result["content"][0];
    let data = serde_json::from_str(block["resource"]["text"].as_str().unwrap_or("null"))
        .expect("embedded JSON");
    (data, block["_meta"].clone())
}

#[tokio::test]
async fn proxy_lists_describes_and_calls() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;

    let list = client
        .call(
            "proxy",
            json!({"action": "list", "type": "tool", "filter_server": "tb", "limit": 3}),
        )
        .await
        .expect("list");
    let (items, meta) = embedded(&list);
    assert_eq!(items.as_array().map(Vec::len), Some(3));
    assert!(
        items[0]["name"]
            .as_str()
            .unwrap_or_default()
            .starts_with("tb_")
    );
    assert_eq!(meta["proxyAction"], json!("list"));
    assert_eq!(meta["many"], json!(true));
    assert!(meta["totalCount"].as_u64().unwrap_or(0) >= 9);

    let info = client
        .call(
            "proxy",
            json!({"action": "info", "type": "tool", "path": "tb_echo"}),
        )
        .await
        .expect("info");
    let (tool, meta) = embedded(&info);
    assert_eq!(tool["name"], json!("tb_echo"));
    assert_eq!(meta["proxyPath"], json!("tb_echo"));

    let call = client
        .call("proxy", json!({"action": "call", "type": "tool", "path": "tb_echo", "args": {"text": "via proxy"}}))
        .await
        .expect("call");
    assert_eq!(text(&call), "via proxy");
    assert_eq!(call["content"][0]["_meta"]["proxyAction"], json!("call"));

    let string_args = client
        .call("proxy", json!({"action": "call", "type": "tool", "path": "tb_echo", "args": "{\"text\": \"json string\"}"}))
        .await
        .expect("call with string args");
    assert_eq!(text(&string_args), "json string");

    let read = client
        .call(
            "proxy",
            json!({"action": "call", "type": "resource", "path": "test://tb/info"}),
        )
        .await
        .expect("read");
    assert_eq!(
        read["content"][0]["resource"]["mimeType"],
        json!("application/json")
    );

    let prompt = client
        .call(
            "proxy",
            json!({"action": "call", "type": "prompt", "path": "tb_greet", "args": {"name": "Bo"}}),
        )
        .await
        .expect("prompt");
    let (got, _) = embedded(&prompt);
    assert_eq!(got["messages"][0]["content"]["text"], json!("Hello, Bo!"));
}

#[tokio::test]
async fn proxy_parameter_errors_are_readable_tool_errors() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    for (args, needle) in [
        (
            json!({"action": "call", "type": "tool"}),
            "'path' is required",
        ),
        (
            json!({"action": "list", "type": "tool", "args": {"x": 1}}),
            "'args' should not be provided",
        ),
        (
            json!({"action": "info", "type": "tool", "path": "x", "limit": 5}),
            "only allowed for 'list'",
        ),
        (
            json!({"action": "explode", "type": "tool"}),
            "Invalid proxy action",
        ),
        (
            json!({"action": "info", "type": "tool", "path": "nope"}),
            "not found",
        ),
    ] {
        let result = client
            .call("proxy", args.clone())
            .await
            .expect("a tool result");
        assert_eq!(result["isError"], json!(true), "{args}");
        assert!(text(&result).contains(needle), "{args}: {}", text(&result));
    }
}
