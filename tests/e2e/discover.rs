//! Self-extension: `magg_analyze_servers`, the `magg_configure_server` prompt and
//! `magg_smart_configure`, through `magg serve`.

use serde_json::{Value, json};

use crate::harness::{Magg, Sampler, TempConfig, magg_body, test_backend};

/// tb and tb2 run the same server (the same tools) under two names; `broken` cannot start;
/// `off` is disabled.
fn crowded() -> TempConfig {
    let mut off = test_backend("off", "off", &[]);
    off["enabled"] = json!(false);
    TempConfig::new(&json!({
        "servers": {
            "tb": test_backend("tb", "tb", &[]),
            "tb2": test_backend("tb", "tbb", &[]),
            "broken": {"source": "nowhere", "command": "/nonexistent/magg-test-server"},
            "off": off,
        },
        "allow_unauthenticated_changes": true,
    }))
}

#[tokio::test]
async fn analyze_servers_names_failures_duplicates_and_overlaps() {
    let config = crowded();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let body = magg_body(
        &client
            .call("magg_analyze_servers", json!({}))
            .await
            .expect("analyze"),
    );
    let out = &body["output"];
    assert_eq!(out["total_servers"], json!(4), "{body}");
    assert_eq!(out["enabled_servers"], json!(3), "{body}");
    assert_eq!(out["mounted_servers"], json!(2), "{body}");
    assert_eq!(
        out["servers"]["broken"]["status"],
        json!("failed"),
        "{body}"
    );
    let tools = out["servers"]["tb"]["tools"].as_u64().unwrap_or(0);
    assert!(tools > 0, "{body}");
    let issue = |server: &str| {
        out["issues"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["server"] == json!(server)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(issue("broken")["issue"], json!("failed"), "{body}");
    assert!(issue("broken")["detail"].is_string(), "{body}");
    assert_eq!(issue("off")["issue"], json!("disabled"), "{body}");
    assert!(issue("tb").is_null(), "{body}");
    // Every tool of tb is also tb2's.
    let echo = out["duplicate_tools"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["tool"] == json!("echo")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(echo["servers"], json!(["tb", "tb2"]), "{body}");
    let overlap = &out["overlapping_servers"][0];
    assert_eq!(overlap["servers"], json!(["tb", "tb2"]), "{body}");
    assert_eq!(overlap["overlap"], json!(1.0), "{body}");
    // The same command line under two names.
    assert_eq!(
        out["duplicate_servers"][0]["servers"],
        json!(["tb", "tb2"]),
        "{body}"
    );
    assert_eq!(out["duplicate_servers"].as_array().map(Vec::len), Some(1));
    assert!(body["output"].get("insights").is_none(), "{body}");
}

#[tokio::test]
async fn analyze_servers_asks_the_clients_llm_for_insights() {
    let config = crowded();
    let magg = Magg::http(&config.path, false).await;
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = Sampler {
        answer: "tb and tb2 are the same server; remove one.".to_owned(),
        asked: asked.clone(),
    }
    .connect(&magg)
    .await;
    let result = client
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "magg_analyze_servers",
        ))
        .await
        .expect("analyze");
    let body = result.structured_content.clone().expect("structured");
    assert_eq!(
        body["output"]["insights"],
        json!("tb and tb2 are the same server; remove one."),
        "{body}"
    );
    let prompt = asked.lock().expect("asked").join("\n");
    assert!(
        prompt.contains("broken") && prompt.contains("duplicate_tools"),
        "{prompt}"
    );
}

#[tokio::test]
async fn analyze_servers_with_no_servers_says_how_to_add_one() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let body = magg_body(
        &client
            .call("magg_analyze_servers", json!({}))
            .await
            .expect("analyze"),
    );
    assert_eq!(body["output"]["total_servers"], json!(0), "{body}");
    let text = body["output"]["analysis"].as_str().unwrap_or_default();
    assert!(text.contains("magg_add_server"), "{body}");
}

#[tokio::test]
async fn configure_server_prompt_carries_what_magg_found() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let project = config.dir.path().join("my-node-server");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::write(
        project.join("package.json"),
        json!({"name": "my-node-server", "main": "server.js"}).to_string(),
    )
    .expect("package.json");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let listed = client.service.list_all_prompts().await.expect("prompts");
    let prompt = listed
        .iter()
        .find(|p| p.name == "magg_configure_server")
        .expect("magg_configure_server is listed");
    let arguments: Vec<(String, Option<bool>)> = prompt
        .arguments
        .iter()
        .flatten()
        .map(|a| (a.name.clone(), a.required))
        .collect();
    assert_eq!(
        arguments,
        vec![
            ("source".to_owned(), Some(true)),
            ("server_name".to_owned(), Some(false))
        ]
    );
    let got = client
        .service
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("magg_configure_server").with_arguments(
                json!({"source": project.display().to_string(), "server_name": "mine"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        )
        .await
        .expect("get prompt");
    let text = serde_json::to_string(&got.messages).expect("messages");
    assert!(text.contains("Server name: mine"), "{text}");
    assert!(text.contains("node_project"), "{text}");
    assert!(text.contains("server.js"), "{text}");
    assert!(text.contains("magg_add_server"), "{text}");

    // Without its required argument: invalid params, and magg keeps serving.
    let missing = client
        .service
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "magg_configure_server",
        ))
        .await
        .expect_err("no source");
    assert!(missing.to_string().contains("source"), "{missing}");
    client.ping().await;
}
