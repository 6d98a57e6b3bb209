//! Tool search (`tool_search`): tools/list shows magg's own tools, `magg_search_tools`,
//! `magg_call_tool` and the pinned tools; the search finds backend tools, ranks the obvious
//! one first and adds them to one session's list; calls through `magg_call_tool` take the
//! normal route (progress, routing hooks, scopes).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Client, Magg, TempConfig, magg_body, progress_steps, run_cli_env, steps_to, test_backend, text,
};

/// A config with the test backend (`tb_*`) and these settings.
fn config(settings: Value) -> TempConfig {
    let mut config = json!({"servers": {"tb": test_backend("tb", "tb", &[])}});
    if let (Some(config), Some(settings)) = (config.as_object_mut(), settings.as_object()) {
        config.extend(settings.clone());
    }
    TempConfig::new(&config)
}

/// `magg_search_tools`'s output for `args`.
async fn search(client: &Client, args: Value) -> Value {
    let result = client
        .call("magg_search_tools", args.clone())
        .await
        .expect("magg_search_tools");
    assert_ne!(result["isError"], json!(true), "{args}: {result}");
    assert_eq!(
        result["structuredContent"],
        magg_body(&result),
        "the text block and structuredContent agree"
    );
    result["structuredContent"]["output"].clone()
}

/// The names of a search's results, best first.
fn names(output: &Value) -> Vec<String> {
    output["results"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the test backend's tools are served (a call of one answers).
async fn wait_for_backend(client: &Client) {
    client
        .call_eventually(
            "magg_call_tool",
            json!({"name": "tb_echo", "arguments": {"text": "up"}}),
        )
        .await;
}

#[tokio::test]
async fn search_lists_magg_and_pinned_tools_and_finds_and_calls_the_rest() {
    let config = config(json!({"tool_search": "on", "tool_search_pinned": ["tb_e*"]}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    wait_for_backend(client).await;

    let listed = client.tool_names().await;
    for name in [
        "magg_search_tools",
        "magg_call_tool",
        "magg_status",
        "magg_add_server",
        "proxy",
        "tb_echo",
        "tb_env",
    ] {
        assert!(listed.contains(&name.to_owned()), "{name} in {listed:?}");
    }
    for name in ["tb_add", "tb_slow", "tb_cwd"] {
        assert!(!listed.contains(&name.to_owned()), "{name} in {listed:?}");
    }
    let all = client.service.list_all_tools().await.expect("tools/list");
    let search_tool = all
        .iter()
        .find(|t| t.name == "magg_search_tools")
        .expect("magg_search_tools");
    let annotations = search_tool.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(true));
    assert!(
        search_tool
            .description
            .as_deref()
            .is_some_and(|d| d.contains("magg_call_tool")),
        "{search_tool:?}"
    );

    // The obvious tool first, with what it takes to call it.
    let found = search(client, json!({"query": "sum of two numbers"})).await;
    assert_eq!(
        names(&found).first().map(String::as_str),
        Some("tb_add"),
        "{found}"
    );
    let first = &found["results"][0];
    assert_eq!(first["server"], json!("tb"));
    assert!(
        first["description"]
            .as_str()
            .is_some_and(|d| d.contains("Add two numbers"))
    );
    assert_eq!(first["inputSchema"]["required"], json!(["a", "b"]));
    assert!(names(&found).len() <= 5, "{found}");
    let found = search(
        client,
        json!({"query": "what is the working directory of the process", "limit": 2}),
    )
    .await;
    assert_eq!(
        names(&found).first().map(String::as_str),
        Some("tb_cwd"),
        "{found}"
    );
    assert!(names(&found).len() <= 2);
    let nothing = search(client, json!({"query": "zebra crossing"})).await;
    assert_eq!(names(&nothing), Vec::<String>::new());

    // A call through magg_call_tool is the tool's own result.
    let sum = client
        .call(
            "magg_call_tool",
            json!({"name": "tb_add", "arguments": {"a": 2, "b": 3}}),
        )
        .await
        .expect("call");
    assert_eq!(text(&sum), "5");
    assert_eq!(sum["structuredContent"], json!({"sum": 5}));

    // Progress of the called tool reaches the client under the token of its call.
    let (token, slow) = client
        .call_tracked(
            "magg_call_tool",
            json!({"name": "tb_slow", "arguments": {"ms": 200}}),
        )
        .await;
    assert_eq!(text(&slow.expect("slow")), "slept 200 ms");
    let events = client.events_for(Duration::from_millis(300)).await;
    assert_eq!(
        progress_steps(&events),
        [(token, steps_to(3))].into(),
        "{events:?}"
    );

    // An unknown name: an error that names the close match and the way to search.
    let unknown = client
        .call(
            "magg_call_tool",
            json!({"name": "tb_ech", "arguments": {"text": "x"}}),
        )
        .await
        .expect("a tool result");
    assert_eq!(unknown["isError"], json!(true), "{unknown}");
    for needle in ["`tb_ech`", "`tb_echo`", "magg_search_tools"] {
        assert!(text(&unknown).contains(needle), "{needle} in {unknown}");
    }
    let bad = client
        .call("magg_search_tools", json!({"query": "x", "limit": 500}))
        .await
        .expect("a tool result");
    assert_eq!(bad["isError"], json!(true), "{bad}");
    assert!(text(&bad).contains("between 1 and 50"), "{bad}");
}

#[tokio::test]
async fn without_tool_search_every_tool_is_listed_and_the_search_tools_do_not_exist() {
    let config = config(json!({}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client
        .call_eventually("tb_echo", json!({"text": "up"}))
        .await;
    let listed = client.tool_names().await;
    assert!(listed.contains(&"tb_add".to_owned()), "{listed:?}");
    assert!(
        !listed
            .iter()
            .any(|n| n == "magg_search_tools" || n == "magg_call_tool")
    );
    assert!(
        client
            .call("magg_search_tools", json!({"query": "add"}))
            .await
            .is_err(),
        "an unknown tool"
    );
}

#[tokio::test]
async fn added_tools_join_that_session_list_only() {
    let config = config(json!({"tool_search": "on"}));
    let magg = Magg::http(&config.path, false).await;
    let mut first = magg.http_client().await;
    let mut second = magg.http_client().await;
    wait_for_backend(&first).await;
    assert!(!first.tool_names().await.contains(&"tb_add".to_owned()));
    assert!(!second.tool_names().await.contains(&"tb_add".to_owned()));

    let found = search(
        &first,
        json!({"query": "add numbers", "limit": 1, "add": true}),
    )
    .await;
    assert_eq!(found["added"], json!(["tb_add"]), "{found}");
    first.notified("tools/list_changed").await;
    let listed = first.tool_names().await;
    assert!(listed.contains(&"tb_add".to_owned()), "{listed:?}");
    assert!(
        listed.contains(&"magg_search_tools".to_owned()),
        "{listed:?}"
    );
    let sum = first
        .call("tb_add", json!({"a": 1, "b": 1}))
        .await
        .expect("a direct call of the added tool");
    assert_eq!(text(&sum), "2");

    // Adding it again changes nothing, so no second notification.
    search(
        &first,
        json!({"query": "add numbers", "limit": 1, "add": true}),
    )
    .await;
    first
        .expect_no_event(Duration::from_millis(300), |e| e == "tools/list_changed")
        .await;
    // The other session was told nothing and lists nothing new.
    second
        .expect_no_event(Duration::from_millis(300), |e| e == "tools/list_changed")
        .await;
    assert!(!second.tool_names().await.contains(&"tb_add".to_owned()));
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn auto_searches_only_above_the_threshold() {
    // 20-odd built-in tools and 50 generated ones: above the default threshold of 40.
    let config = TempConfig::new(&json!({
        "tool_search": "auto",
        "servers": {"tb": test_backend("tb", "tb", &["--tools", "50"])},
    }));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    wait_for_backend(client).await;
    let listed = client.tool_names().await;
    assert!(
        listed.contains(&"magg_search_tools".to_owned()),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|n| n.starts_with("tb_")), "{listed:?}");
    let found = search(client, json!({"query": "gen_7"})).await;
    assert!(names(&found).contains(&"tb_gen_7".to_owned()), "{found}");

    // The same catalog under a threshold above it: every tool, and no search tools listed.
    let mut magg =
        Magg::stdio_with(&config.path, &[], &[("MAGG_TOOL_SEARCH_THRESHOLD", "100")]).await;
    let client = magg.client();
    client
        .call_eventually("tb_echo", json!({"text": "up"}))
        .await;
    let listed = client.tool_names().await;
    assert!(listed.contains(&"tb_gen_49".to_owned()), "{listed:?}");
    assert!(listed.contains(&"magg_status".to_owned()), "{listed:?}");
    assert!(
        !listed
            .iter()
            .any(|n| n == "magg_search_tools" || n == "magg_call_tool"),
        "{listed:?}"
    );
}

#[tokio::test]
async fn calls_through_magg_call_tool_pass_the_routing_hooks() {
    let config = config(json!({
        "tool_search": "on",
        "plugins": {"routing-rules": {"settings": {
            "rules": [{"tool": "tb_add", "action": "rewrite", "set": {"b": 100}}],
            "after": [{"tool": "tb_echo", "prepend": "hooked: "}],
        }}},
    }));
    config.install_plugin("routing-rules", "routing-rules");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    wait_for_backend(client).await;
    let sum = client
        .call(
            "magg_call_tool",
            json!({"name": "tb_add", "arguments": {"a": 1, "b": 2}}),
        )
        .await
        .expect("call");
    assert_eq!(text(&sum), "101");
    let echoed = client
        .call(
            "magg_call_tool",
            json!({"name": "tb_echo", "arguments": {"text": "hi"}}),
        )
        .await
        .expect("call");
    assert_eq!(text(&echoed), "hooked: hi");
}

#[tokio::test]
async fn tools_a_token_may_not_see_are_neither_found_nor_called() {
    let home = tempfile::tempdir().expect("home");
    let config = TempConfig::new(&json!({
        "tool_search": "on",
        "servers": {
            "ta": test_backend("ta", "ta", &[]),
            "tc": test_backend("tc", "tc", &[]),
        },
    }));
    let auth = json!({"access": {"scopes": {
        "ta": {"servers": ["ta"], "tools": ["magg_search_tools", "magg_call_tool"]},
    }}});
    let dir = config.path.parent().expect("dir");
    std::fs::write(dir.join("auth.json"), auth.to_string()).expect("auth.json");
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
        &["--config", path, "auth", "token", "-q", "--scopes", "ta"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &env,
    )
    .await;

    let client = Client::http_with_token(magg.url.as_deref().expect("url"), token.trim()).await;
    client
        .call_eventually(
            "magg_call_tool",
            json!({"name": "ta_echo", "arguments": {"text": "up"}}),
        )
        .await;
    // Both servers up, so that a search that did not respect the scopes would find tc's tools.
    magg.wait_for_log_count("backend ready", 2).await;
    let listed = client.tool_names().await;
    assert_eq!(
        listed,
        ["magg_search_tools", "magg_call_tool"],
        "{listed:?}"
    );

    let found = search(&client, json!({"query": "echo text back", "limit": 50})).await;
    let found = names(&found);
    assert!(found.contains(&"ta_echo".to_owned()), "{found:?}");
    assert!(found.iter().all(|n| n.starts_with("ta_")), "{found:?}");

    let hidden = client
        .call(
            "magg_call_tool",
            json!({"name": "tc_echo", "arguments": {"text": "x"}}),
        )
        .await
        .expect("a tool result");
    assert_eq!(hidden["isError"], json!(true), "{hidden}");
    assert!(text(&hidden).contains("Unknown tool `tc_echo`"), "{hidden}");
    client.close().await;
}

#[tokio::test]
async fn a_tool_ranker_plugin_orders_the_results_and_a_failing_one_falls_back() {
    let config = config(json!({
        "tool_search": "on",
        "plugins": {"pick-ranker": {"settings": {"first": "tb_pid"}}},
    }));
    config.install_plugin("pick-ranker", "pick-ranker");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    wait_for_backend(client).await;
    // The ranker puts its pick first and keeps the built-in order after it: the built-in
    // ranking's best follows.
    let found = search(client, json!({"query": "sum of two numbers", "limit": 3})).await;
    assert_eq!(found["ranked_by"], json!("pick-ranker"), "{found}");
    assert_eq!(names(&found)[..2], ["tb_pid", "tb_add"], "{found}");
    assert_eq!(names(&found).len(), 3, "{found}");
    // Every tool (fewer than 100) was a candidate, not only those the words match.
    let searched = found["searched"].as_u64().expect("searched");
    magg.wait_for_log(&format!(
        "ranked {searched} candidates for sum of two numbers"
    ))
    .await;
    drop(magg);

    // A ranker that traps: magg's own ranking answers, and the fault is logged.
    let config = self::config(json!({
        "tool_search": "on",
        "plugins": {"pick-ranker": {"settings": {"trap": true}}},
    }));
    config.install_plugin("pick-ranker", "pick-ranker");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    wait_for_backend(client).await;
    let found = search(client, json!({"query": "sum of two numbers"})).await;
    assert_eq!(found["ranked_by"], json!("magg"), "{found}");
    assert_eq!(
        names(&found).first().map(String::as_str),
        Some("tb_add"),
        "{found}"
    );
    magg.wait_for_log("tool search ranks with magg's own ranking instead")
        .await;
}
