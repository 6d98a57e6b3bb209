//! WebAssembly plugins through `magg serve`: each kind end to end with a real client, hot
//! replacement under load, and every fault kind contained.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Client, ClientSpec, Magg, Sampler, TempConfig, WAIT, call_sampled, eventually, magg_body,
    plugin, run_cli, test_backend, text,
};
use crate::replay::{Replay, Route, fixture};

fn with_plugins(plugins: Value) -> TempConfig {
    TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": plugins,
    }))
}

fn status_of(body: &Value, name: &str) -> Value {
    body["output"]["plugins"]["loaded"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == json!(name)))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn tool_filter_hides_renames_and_redescribes() {
    let config = with_plugins(json!({"tool-filter": {"settings": {
        "hide": ["tb_gen_*", "tb_crash"],
        "rename": {"tb_add": "tb_sum", "tb_cwd": "bad name!", "tb_pid": "tb_echo"},
        "describe": {"tb_echo": "Repeat the text back."},
    }}}));
    config.install_plugin("tool-filter", "tool-filter");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let names = client.tool_names().await;
    assert!(!names.contains(&"tb_crash".to_owned()), "{names:?}");
    assert!(!names.contains(&"tb_add".to_owned()), "{names:?}");
    assert!(names.contains(&"tb_sum".to_owned()), "{names:?}");
    assert!(names.contains(&"magg_status".to_owned()), "{names:?}");
    // A new name that breaks MCP's tool name rule, or that another tool has, is not taken.
    assert!(names.contains(&"tb_cwd".to_owned()), "{names:?}");
    assert!(names.contains(&"tb_pid".to_owned()), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "tb_echo").count(),
        1,
        "{names:?}"
    );

    let tools = client.service.list_all_tools().await.expect("list");
    let echo = tools.iter().find(|t| t.name == "tb_echo").expect("tb_echo");
    assert_eq!(echo.description.as_deref(), Some("Repeat the text back."));

    // A renamed tool is called by its new name and reaches the backend's own tool.
    let sum = client
        .call("tb_sum", json!({"a": 2, "b": 3}))
        .await
        .expect("sum");
    assert_eq!(text(&sum), "5");
    // A hidden tool is not callable.
    let hidden = client.call("tb_crash", json!({})).await;
    assert!(hidden.is_err(), "hidden tool was callable: {hidden:?}");
}

#[tokio::test]
async fn routing_hook_denies_rewrites_reroutes_answers_and_rewrites_results() {
    let config = with_plugins(json!({"routing-rules": {"settings": {
        "rules": [
            {"tool": "tb_fail", "action": "deny", "reason": "failing is not allowed here"},
            {"tool": "tb_add", "action": "rewrite", "set": {"b": 100}},
            {"tool": "tb_cwd", "action": "reroute", "to": "tb_echo"},
            {"tool": "tb_pid", "action": "answer", "text": "no pids today"},
            {"tool": "tb_meta", "action": "reroute", "to": "magg_list_servers"},
            {"tool": "tb_env", "action": "reroute", "to": "tb_nonexistent"},
        ],
        "after": [{"tool": "tb_echo", "prepend": "hooked: "}],
    }}}));
    config.install_plugin("routing-rules", "routing-rules");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;

    let denied = client
        .call("tb_fail", json!({}))
        .await
        .expect("deny is a result");
    assert_eq!(denied["isError"], json!(true));
    assert!(
        text(&denied).contains("failing is not allowed here"),
        "{denied}"
    );
    assert!(text(&denied).contains("routing-rules"), "{denied}");

    let rewritten = client
        .call("tb_add", json!({"a": 1, "b": 2}))
        .await
        .expect("add");
    assert_eq!(text(&rewritten), "101");

    let rerouted = client
        .call("tb_cwd", json!({"text": "went to echo"}))
        .await
        .expect("reroute");
    assert_eq!(text(&rerouted), "hooked: went to echo");

    let answered = client.call("tb_pid", json!({})).await.expect("answer");
    assert_eq!(text(&answered), "no pids today");

    // Rerouted to a tool with no stdio lane (magg's own): it still runs, hooks and all.
    let own = client
        .call("tb_meta", json!({}))
        .await
        .expect("reroute to magg_list_servers");
    assert_ne!(own["isError"], json!(true), "{own}");
    assert!(text(&own).contains("\"tb\""), "{own}");

    let nowhere = client
        .call("tb_env", json!({"name": "HOME"}))
        .await
        .expect("reroute to an unknown tool is a result");
    assert_eq!(nowhere["isError"], json!(true));
    assert!(text(&nowhere).contains("tb_nonexistent"), "{nowhere}");

    let echoed = client
        .call("tb_echo", json!({"text": "hi"}))
        .await
        .expect("echo");
    assert_eq!(text(&echoed), "hooked: hi");
    assert_eq!(echoed["structuredContent"], json!({"text": "hi"}));

    // Calls made through the proxy tool go through the same hooks.
    let via_proxy = client
        .call(
            "proxy",
            json!({"action": "call", "type": "tool", "path": "tb_add", "args": {"a": 1, "b": 2}}),
        )
        .await
        .expect("proxy");
    assert_eq!(text(&via_proxy), "101");
    let denied_via_proxy = client
        .call(
            "proxy",
            json!({"action": "call", "type": "tool", "path": "tb_fail", "args": {}}),
        )
        .await
        .expect("proxy deny");
    assert!(
        text(&denied_via_proxy).contains("failing is not allowed here"),
        "{denied_via_proxy}"
    );
}

#[tokio::test]
async fn python_hook_redacts_secrets_and_js_filter_describes_servers() {
    let config = with_plugins(json!({}));
    config.install_plugin("redact", "redact");
    config.install_plugin("describe-servers", "describe-servers");
    let mut magg = Magg::stdio(&config.path).await;
    // On a cold compile cache these large components take seconds to compile.
    for name in ["describe-servers", "redact"] {
        magg.wait_for_log_within(&format!("plugin {name} loaded"), Duration::from_secs(300))
            .await;
    }
    let client = magg.client();
    eventually("the JS filter describing tb_echo", WAIT, || async {
        let tools = client.service.list_all_tools().await.expect("list");
        let echo = tools.iter().find(|t| t.name == "tb_echo").expect("tb_echo");
        let description = echo.description.as_deref().unwrap_or_default();
        description.starts_with("[tb] ").then_some(())
    })
    .await;
    let secret = "token sk-abcdefghijklmnopqrstuvwx here";
    let result = client
        .call("tb_echo", json!({"text": secret}))
        .await
        .expect("echo");
    assert!(!text(&result).contains("sk-abcdefghijklmnop"), "{result}");
    assert!(text(&result).contains("[redacted]"), "{result}");
    let plain = client
        .call("tb_echo", json!({"text": "nothing secret"}))
        .await
        .expect("echo");
    assert_eq!(text(&plain), "nothing secret");
}

#[tokio::test]
async fn plugin_added_replaced_and_removed_while_serving() {
    let config = with_plugins(json!({}));
    config.plugins_dir();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let describe = async |client: &crate::harness::Client| -> String {
        let tools = client.service.list_all_tools().await.expect("list");
        let echo = tools
            .iter()
            .find(|t| t.name == "tb_echo")
            .expect("tb_echo")
            .clone();
        echo.description.map(|d| d.to_string()).unwrap_or_default()
    };
    assert!(!describe(client).await.ends_with("[v1]"));

    let announced = async |client: &mut crate::harness::Client, suffix: &str| {
        // Each change is announced; earlier announcements (a server starting) may come first.
        for _ in 0..20 {
            client.notified("tools/list_changed").await;
            if describe(client).await.ends_with(suffix) {
                return;
            }
        }
        panic!("the description never ended with {suffix:?}");
    };
    config.install_plugin("marker-filter", "marker");
    announced(client, " [v1]").await;

    // Replaced by atomic rename: the new version serves without a restart.
    config.install_plugin("marker-filter-v2", "marker");
    announced(client, " [v2]").await;

    // A file that is not a valid component leaves v2 serving, and says why.
    std::fs::write(config.plugins_dir().join("marker.wasm"), b"\0asm garbage").expect("write");
    eventually("magg_status showing the broken plugin", WAIT, || async {
        let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
        let marker = status_of(&status, "marker");
        marker["error"].is_string().then_some(())
    })
    .await;
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let shown = status_of(&status, "marker");
    assert_eq!(
        shown["state"],
        json!("failed, previous version serving"),
        "{shown}"
    );
    assert!(
        shown["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a valid WebAssembly component"),
        "{shown}"
    );
    assert!(describe(client).await.ends_with(" [v2]"));
    magg.wait_for_log("the previous version keeps serving")
        .await;

    let client = magg.client();
    std::fs::remove_file(config.plugins_dir().join("marker.wasm")).expect("remove");
    client.notified("tools/list_changed").await;
    assert!(!describe(client).await.contains("[v"));
}

#[tokio::test]
async fn hook_replaced_under_concurrent_calls_fails_no_call() {
    let config = with_plugins(json!({"slow": {"settings": {"delay_ms": 5}}}));
    config.install_plugin("slow-hook", "slow");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let peer = client.service.peer().clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for worker in 0..4 {
        let peer = peer.clone();
        let stop = stop.clone();
        callers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let text = format!("w{worker}-{i}");
                let params = rmcp::model::CallToolRequestParams::new("tb_echo").with_arguments(
                    json!({"text": text})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                );
                match peer.call_tool(params).await {
                    Ok(r) if r.is_error != Some(true) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for version in ["marker-filter", "slow-hook", "routing-rules", "slow-hook"] {
        // Alternate between hooks (and a filter) under the same file name.
        config.install_plugin(version, "slow");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for caller in callers {
        let (ok, failed) = caller.await.expect("caller");
        assert!(
            failed.is_empty(),
            "calls failed during the swap: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 20, "only {total} calls ran");
    assert!(magg.logged("plugin slow loaded"), "no swap happened");
}

async fn fault_magg(plugin_name: &str, settings: Value) -> (TempConfig, Magg) {
    let config = with_plugins(json!({ plugin_name: settings }));
    config.install_plugin(plugin_name, plugin_name);
    let mut magg = Magg::stdio(&config.path).await;
    magg.client().tool_names().await;
    (config, magg)
}

async fn assert_contained(magg: &mut Magg, tool_args: Value, expect: &str) {
    let client = magg.client();
    let result = client
        .call("tb_echo", tool_args)
        .await
        .expect("a result, not a hang");
    assert_eq!(result["isError"], json!(true), "{result}");
    assert!(
        text(&result).contains(expect),
        "expected {expect:?} in {result}"
    );
    // The next call, which does not trigger the fault, goes through: nothing is poisoned.
    let fine = client
        .call("tb_echo", json!({"text": "fine"}))
        .await
        .expect("next call");
    assert_eq!(text(&fine), "fine");
}

#[tokio::test]
async fn trapping_hook_fails_closed_and_magg_keeps_serving() {
    let (_config, mut magg) = fault_magg("trap-hook", json!({})).await;
    assert_contained(&mut magg, json!({"text": "trap"}), "trap-hook").await;
    let status = magg_body(
        &magg
            .client()
            .call("magg_status", json!({}))
            .await
            .expect("status"),
    );
    let shown = status_of(&status, "trap-hook");
    assert_eq!(shown["faults"], json!(1), "{shown}");
    assert!(
        shown["last_fault"]
            .as_str()
            .unwrap_or_default()
            .contains("trapped"),
        "{shown}"
    );
}

#[tokio::test]
async fn looping_hook_hits_its_time_limit() {
    let (_config, mut magg) = fault_magg("loop-hook", json!({"timeout_ms": 300})).await;
    assert_contained(&mut magg, json!({"text": "loop"}), "time limit of 300 ms").await;
}

/// While a routing hook loops until its time limit, magg answers every other request at once,
/// its own client's and another client's: the looping call lets the runtime poll for I/O and
/// run the other tasks at each epoch tick. (A guest that yielded by waking itself at once kept
/// magg's single-threaded runtime from reading any pipe or socket for ≈ 300 ms at a time, so
/// each request below waited that long.)
#[tokio::test]
async fn a_looping_hook_delays_only_its_own_call() {
    const ROUNDS: usize = 20;
    let config = with_plugins(json!({"loop-hook": {"timeout_ms": 5000}}));
    config.install_plugin("loop-hook", "loop-hook");
    let mut magg = Magg::http(&config.path, true).await;
    magg.connect_stdio(ClientSpec::bare("looper")).await;
    let other = magg.http_client().await;
    other.tool_names().await;
    let looper: &Client = magg.client();
    looper.tool_names().await;

    let looping = looper.call("tb_echo", json!({"text": "loop"}));
    tokio::pin!(looping);
    let others = async {
        for _ in 0..ROUNDS {
            looper.ping().await;
            other.ping().await;
            let fine = other
                .call("tb_echo", json!({"text": "fine"}))
                .await
                .expect("call");
            assert_eq!(text(&fine), "fine");
        }
    };
    // `biased`: the looping call is sent first; then both run until the other requests are
    // all answered, which must happen well within the looping call's 5 s.
    tokio::select! {
        biased;
        result = &mut looping => panic!(
            "the looping call ended ({result:?}) before {ROUNDS} rounds of requests beside it \
             were answered: other requests stall while a hook loops"
        ),
        () = others => {}
    }
    let result = looping.await.expect("a result, not a hang");
    assert_eq!(result["isError"], json!(true), "{result}");
    assert!(text(&result).contains("time limit"), "{result}");
}

/// Every call gets an instance no call has used before (instances are made ahead of their
/// calls), so a plugin keeps no state from one call to the next.
#[tokio::test]
async fn each_hook_call_gets_a_fresh_instance() {
    let (_config, mut magg) = fault_magg("count-hook", json!({})).await;
    let client = magg.client();
    for round in 0..5 {
        let result = client
            .call("tb_echo", json!({"text": "count"}))
            .await
            .expect("call");
        assert_eq!(
            text(&result),
            "call 1 of this instance",
            "call {round}: {result}"
        );
    }
}

#[tokio::test]
async fn hungry_hook_hits_its_memory_limit() {
    let (_config, mut magg) = fault_magg("hog-hook", json!({"memory_mb": 24})).await;
    assert_contained(&mut magg, json!({"text": "hog"}), "out of memory").await;
}

#[tokio::test]
async fn garbage_from_a_hook_is_refused() {
    let (_config, mut magg) = fault_magg("garbage-hook", json!({})).await;
    assert_contained(&mut magg, json!({"text": "garbage"}), "not a JSON object").await;
    assert_contained(&mut magg, json!({"text": "badanswer"}), "not a JSON array").await;
}

#[tokio::test]
async fn failing_hook_can_be_configured_to_fail_open() {
    let (_config, mut magg) = fault_magg("trap-hook", json!({"on_error": "open"})).await;
    let result = magg
        .client()
        .call("tb_echo", json!({"text": "trap"}))
        .await
        .expect("call");
    assert_eq!(text(&result), "trap");
}

#[tokio::test]
async fn trapping_filter_fails_open() {
    let (_config, mut magg) = fault_magg("trap-filter", json!({})).await;
    let names = magg.client().tool_names().await;
    assert!(names.contains(&"tb_echo".to_owned()), "{names:?}");
    magg.wait_for_log("showing the list unfiltered").await;
}

#[tokio::test]
async fn smart_configure_asks_the_configure_plugin() {
    // The bundled configure plugin: no plugins directory needed.
    let config = with_plugins(json!({}));
    let project = config.dir.path().join("my-node-server");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::write(
        project.join("package.json"),
        json!({"name": "my-node-server", "main": "server.js", "dependencies": {"@modelcontextprotocol/sdk": "1"}}).to_string(),
    )
    .expect("package.json");
    // An npm registry that knows no package: the rules still know how npm packages run.
    let registry = Replay::start(vec![]).await;
    let mut magg = Magg::stdio_with(
        &config.path,
        &[],
        &[("NPM_CONFIG_REGISTRY", registry.base().as_str())],
    )
    .await;
    let client = magg.client();
    client.tool_names().await;

    let local = magg_body(
        &client
            .call(
                "magg_smart_configure",
                json!({"source": project.display().to_string()}),
            )
            .await
            .expect("local"),
    );
    let out = &local["output"];
    assert_eq!(out["action"], json!("metadata_based_config"), "{local}");
    assert_eq!(out["suggested_by"], json!("smart-configure"), "{local}");
    assert_eq!(out["suggested_config"]["command"], json!("node"), "{local}");
    assert_eq!(
        out["suggested_config"]["args"],
        json!(["server.js"]),
        "{local}"
    );
    assert_eq!(
        out["suggested_config"]["cwd"],
        json!(project.display().to_string()),
        "{local}"
    );
    assert!(
        out["metadata"].to_string().contains("node_project"),
        "{local}"
    );

    let npm = magg_body(
        &client
            .call(
                "magg_smart_configure",
                json!({"source": "https://www.npmjs.com/package/@modelcontextprotocol/server-memory"}),
            )
            .await
            .expect("npm"),
    );
    assert_eq!(
        npm["output"]["suggested_config"]["command"],
        json!("npx"),
        "{npm}"
    );
    assert_eq!(
        npm["output"]["suggested_config"]["args"],
        json!(["-y", "@modelcontextprotocol/server-memory"]),
        "{npm}"
    );
    // Suggesting changes nothing.
    assert!(config.read()["servers"].get("memory").is_none());
    assert!(config.read()["servers"].get("server-memory").is_none());

    // The suggestion goes to magg_add_server as it is (disabled here: nothing to start).
    let mut suggested = npm["output"]["suggested_config"].clone();
    suggested["enable"] = json!(false);
    let added = client
        .call("magg_add_server", suggested)
        .await
        .expect("add the suggestion");
    assert_ne!(added["isError"], json!(true), "{added}");
    let saved = config.read();
    let entry = saved["servers"]
        .as_object()
        .and_then(|servers| servers.values().find(|s| s["command"] == json!("npx")))
        .cloned()
        .unwrap_or_else(|| panic!("the suggestion is saved: {saved}"));
    assert_eq!(
        entry["args"],
        json!(["-y", "@modelcontextprotocol/server-memory"]),
        "{saved}"
    );
}

#[tokio::test]
async fn smart_configure_adds_with_built_in_rules_when_no_plugin_knows() {
    // The bundled configure plugin turned off: magg's built-in rules answer.
    let config = with_plugins(json!({"smart-configure": {"enabled": false}}));
    let project = config.dir.path().join("pytool");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::write(project.join("requirements.txt"), "mcp\n").expect("requirements");
    // `python -m pytool` in the project runs a real MCP server (the test backend).
    std::fs::create_dir_all(project.join("pytool")).expect("package");
    std::fs::write(
        project.join("pytool/__main__.py"),
        format!(
            "import os\nos.execv({0:?}, [{0:?}, '--name', 'pytool'])\n",
            crate::harness::bin("magg-test-backend")
                .display()
                .to_string()
        ),
    )
    .expect("__main__.py");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let result = magg_body(
        &client
            .call(
                "magg_smart_configure",
                json!({"source": project.display().to_string(), "allow_add": true}),
            )
            .await
            .expect("configure"),
    );
    assert_eq!(
        result["output"]["action"],
        json!("smart_configured"),
        "{result}"
    );
    assert_eq!(
        result["output"]["suggested_by"],
        json!("built-in rules"),
        "{result}"
    );
    let saved = config.read();
    let server = &saved["servers"]["pytool"];
    assert_eq!(server["command"], json!("python"), "{saved}");
    assert_eq!(server["args"], json!(["-m", "pytool"]), "{saved}");
}

#[tokio::test]
async fn search_merges_providers_and_grants_only_configured_hosts() {
    let replay = Replay::start(vec![
        Route::json("/v0/servers", fixture("mcp-registry-v0-servers.json")),
        Route::json("/-/v1/search", fixture("npm-search.json")),
    ])
    .await;
    let (base, grant) = (replay.base(), replay.grant());
    // The bundled providers of other sources stay off: this test asks only the replay.
    let config = with_plugins(json!({
        "mcp-registry": {"settings": {"base_url": base}, "allow_hosts": [grant]},
        "npm-search": {"settings": {"base_url": base}, "allow_hosts": [grant]},
        "glama-search": {"enabled": false},
        "github-search": {"enabled": false},
    }));
    config.install_plugin("mcp-registry", "mcp-registry");
    config.install_plugin("npm-search", "npm-search");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let found = magg_body(
        &client
            .call("magg_search_servers", json!({"query": "time", "limit": 3}))
            .await
            .expect("search"),
    );
    let out = &found["output"];
    let results = out["results"].as_array().expect("results");
    let sources: Vec<&str> = results
        .iter()
        .filter_map(|r| r["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"mcp-registry") && sources.contains(&"npm"),
        "{found}"
    );
    assert!(results.len() <= 6, "{found}");
    assert_eq!(out["total"], json!(results.len()));
    let npm = results
        .iter()
        .find(|r| r["source"] == json!("npm"))
        .expect("npm result");
    assert!(
        npm["install_command"]
            .as_str()
            .unwrap_or_default()
            .starts_with("npx -y "),
        "{npm}"
    );
    assert_eq!(
        npm["config"]["command"],
        json!(npm["install_command"]),
        "{npm}"
    );
    assert!(
        replay.asked(&["/v0/servers?", "search=time"]),
        "{:?}",
        replay.lines()
    );
    assert!(
        replay.asked(&["/-/v1/search?", "text=time"]),
        "{:?}",
        replay.lines()
    );

    // Without a grant, the provider's request is refused by magg, and the search says so.
    let ungranted = with_plugins(json!({
        "npm-search": {"settings": {"base_url": base}},
        "mcp-registry": {"enabled": false},
        "glama-search": {"enabled": false},
        "github-search": {"enabled": false},
    }));
    ungranted.install_plugin("npm-search", "npm-search");
    let mut magg = Magg::stdio(&ungranted.path).await;
    let client = magg.client();
    client.tool_names().await;
    let before = replay.lines().len();
    let refused = magg_body(
        &client
            .call("magg_search_servers", json!({"query": "time"}))
            .await
            .expect("search"),
    );
    assert_eq!(refused["output"]["total"], json!(0), "{refused}");
    assert!(
        refused["output"]["sources"]["npm-search"]["error"].is_string(),
        "{refused}"
    );
    assert_eq!(replay.lines().len(), before, "a request got through");
    magg.wait_for_log("is not in plugins.npm-search.allow_hosts")
        .await;
}

#[tokio::test]
async fn plugin_cli_checks_and_lists() {
    let config = with_plugins(json!({"routing-rules": {"settings": {"rules": []}}}));
    config.install_plugin("routing-rules", "routing-rules");
    config.install_plugin("tool-filter", "tool-filter");
    std::fs::write(config.plugins_dir().join("broken.wasm"), b"not wasm at all").expect("write");

    let good = plugin("routing-rules");
    let (code, out, err) = run_cli(&["plugin", "check", good.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("routing-hook"), "{out}");

    let broken = config.plugins_dir().join("broken.wasm");
    let (code, out, err) = run_cli(&["plugin", "check", broken.to_str().expect("path")]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let config_arg = config.path.to_str().expect("path");
    let (code, out, err) = run_cli(&["--config", config_arg, "plugin", "list", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).expect("json");
    let by_name = |n: &str| {
        listed["plugins"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == json!(n)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        by_name("routing-rules")["kinds"],
        json!(["routing-hook"]),
        "{listed}"
    );
    assert_eq!(
        by_name("tool-filter")["kinds"],
        json!(["tool-filter"]),
        "{listed}"
    );
    assert_eq!(by_name("broken")["state"], json!("failed"), "{listed}");
}

#[tokio::test]
async fn smart_configure_asks_the_clients_llm_when_no_plugin_knows() {
    let config = with_plugins(json!({}));
    // An HTTP client without authentication: the config lets it add servers.
    let mut settings = config.read();
    settings["allow_unauthenticated_changes"] = json!(true);
    config.write(&settings);
    let magg = Magg::http(&config.path, false).await;
    let command = format!(
        "{} --name sampled",
        crate::harness::bin("magg-test-backend").display()
    );
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = Sampler {
        answer: format!(
            "Here you go:\n```json\n{}\n```",
            json!({"name": "sampled", "prefix": "smp", "command": command, "notes": "from the LLM"})
        ),
        asked: asked.clone(),
    };
    let client = sampler.connect(&magg).await;
    // A page that is no MCP server: nothing answers the probes.
    let site = Replay::start(vec![]).await;
    let source = format!("{}/some/unknown-server", site.base());
    let body = call_sampled(
        &client,
        "magg_smart_configure",
        json!({"source": source, "allow_add": true}),
    )
    .await;
    assert_eq!(
        body["output"]["action"],
        json!("smart_configured"),
        "{body}"
    );
    assert_eq!(
        body["output"]["suggested_by"],
        json!("the client's LLM"),
        "{body}"
    );
    let prompt = asked.lock().expect("asked").join("\n");
    assert!(prompt.contains(&source), "{prompt}");
    let saved = config.read();
    assert_eq!(
        saved["servers"]["sampled"]["prefix"],
        json!("smp"),
        "{saved}"
    );
    // The server the LLM configured is running: its tools are callable.
    let params = rmcp::model::CallToolRequestParams::new("smp_echo").with_arguments(
        json!({"text": "hi"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let echoed = client.call_tool(params).await.expect("echo");
    assert_eq!(echoed.is_error, Some(false));
}

#[tokio::test]
async fn plugin_settings_change_with_the_config_file() {
    let rules = |reason: &str| {
        json!({
            "servers": {"tb": test_backend("tb", "tb", &[])},
            "plugins": {"routing-rules": {"settings": {"rules": [
                {"tool": "tb_echo", "action": "deny", "reason": reason}
            ]}}},
        })
    };
    let config = TempConfig::new(&rules("first reason"));
    config.install_plugin("routing-rules", "routing-rules");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let first = client
        .call("tb_echo", json!({"text": "x"}))
        .await
        .expect("call");
    assert!(text(&first).contains("first reason"), "{first}");

    config.write(&rules("second reason"));
    eventually("the hook's new settings in force", WAIT, || async {
        let again = client
            .call("tb_echo", json!({"text": "x"}))
            .await
            .expect("call");
        text(&again).contains("second reason").then_some(())
    })
    .await;
    // Disabling the plugin in the config unloads it.
    let mut off = rules("unused");
    off["plugins"]["routing-rules"]["enabled"] = json!(false);
    config.write(&off);
    eventually("the disabled hook leaving calls alone", WAIT, || async {
        let again = client
            .call("tb_echo", json!({"text": "through"}))
            .await
            .expect("call");
        (text(&again) == "through").then_some(())
    })
    .await;
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    assert_eq!(
        status_of(&status, "routing-rules")["state"],
        json!("disabled"),
        "{status}"
    );
}

/// A routing hook built against the frozen `magg:plugin@0.1.0` (no SDK; its own wit-bindgen)
/// loads beside the 0.2.0 plugins and acts: it answers a call, with a setting it read through
/// the 0.1.0 `host` import, and lets other calls through.
#[tokio::test]
async fn plugin_built_against_wit_0_1_loads_and_acts() {
    let config = with_plugins(json!({"legacy-hook": {"settings": {"greeting": "hi"}}}));
    config.install_plugin("legacy-hook", "legacy-hook");
    config.install_plugin("tool-filter", "tool-filter");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let answered = client
        .call("tb_echo", json!({"text": "x"}))
        .await
        .expect("echo");
    assert_eq!(text(&answered), "answered by legacy hook (greeting: hi)");
    let sum = client
        .call("tb_add", json!({"a": 2, "b": 3}))
        .await
        .expect("add");
    assert_eq!(text(&sum), "5");
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    assert_eq!(
        status_of(&status, "legacy-hook")["kinds"],
        json!(["routing-hook"])
    );
    assert_eq!(
        status_of(&status, "tool-filter")["kinds"],
        json!(["tool-filter"])
    );
}
