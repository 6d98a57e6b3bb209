//! magg's own tools as a model meets them in tools/list: every one says what it changes, when to
//! use it and what to call next, and carries MCP annotations a client can act on (a read-only
//! tool never asks for confirmation; a destructive one may).

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, test_backend};

async fn own_tools(config: &Value, prefix: &str) -> Vec<Value> {
    let config = TempConfig::new(config);
    let mut magg = Magg::stdio(&config.path).await;
    let tools = magg
        .client()
        .service
        .list_all_tools()
        .await
        .expect("tools/list");
    tools
        .into_iter()
        .map(|t| serde_json::to_value(t).expect("tool"))
        .filter(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix) || n == "proxy")
        })
        .collect()
}

#[tokio::test]
async fn every_own_tool_says_what_it_changes_and_what_to_call_next() {
    let tools = own_tools(
        &json!({"servers": {"tb": test_backend("tb", "tb", &[])}}),
        "magg_",
    )
    .await;
    assert!(tools.len() >= 16, "{tools:#?}");
    let mut problems = Vec::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap_or_default();
        let description = tool["description"].as_str().unwrap_or_default();
        let hints = &tool["annotations"];
        if !hints["title"].is_string() {
            problems.push(format!("{name}: no title"));
        }
        for hint in ["readOnlyHint", "idempotentHint", "openWorldHint"] {
            if !hints[hint].is_boolean() {
                problems.push(format!("{name}: no {hint}"));
            }
        }
        let read_only = hints["readOnlyHint"] == json!(true);
        if !read_only && !hints["destructiveHint"].is_boolean() {
            problems.push(format!("{name}: changes things but has no destructiveHint"));
        }
        // Behaviour: a read-only tool says it changes nothing; the others say what they change.
        let says_changes = if read_only {
            description.contains("Changes nothing") || description.contains("changes nothing")
        } else {
            ["config file", "restart", "stop", "start", "Call", "call"]
                .iter()
                .any(|w| description.contains(w))
        };
        if !says_changes {
            problems.push(format!("{name}: does not say what it changes"));
        }
        // Usage: when to use it, and another magg tool to use next or instead.
        if !description.contains("Use") && !description.contains("use ") {
            problems.push(format!("{name}: does not say when to use it"));
        }
        if name != "proxy"
            && !tools
                .iter()
                .filter_map(|t| t["name"].as_str())
                .any(|other| other != name && description.contains(other))
        {
            problems.push(format!(
                "{name}: names no other tool to use next or instead"
            ));
        }
        // Parameters: each one described.
        for (param, schema) in tool["inputSchema"]["properties"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if !schema["description"].is_string() {
                problems.push(format!("{name}: parameter {param} has no description"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn descriptions_name_the_tools_by_the_configured_prefix() {
    let tools = own_tools(&json!({"self_prefix": "hub", "servers": {}}), "hub_").await;
    let add = tools
        .iter()
        .find(|t| t["name"] == json!("hub_add_server"))
        .expect("hub_add_server");
    let description = add["description"].as_str().unwrap_or_default();
    assert!(description.contains("hub_load_kit"), "{description}");
    for tool in &tools {
        let text = tool["description"].as_str().unwrap_or_default();
        assert!(!text.contains("magg_"), "{}: {text}", tool["name"]);
    }
}
