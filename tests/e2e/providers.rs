//! WebAssembly tool providers mounted as servers, through `magg serve` with a real client: the
//! shipped `fetch` against a local HTTP server, grants (hosts, directories, environment), a
//! provider as a server like any other (prefix, status, disable, add, hooks, filters), hot
//! replacement with calls in flight, and faults that end only their own call.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, WAIT, eventually, magg_body, plugin, run_cli, text};
use crate::replay::{Replay, Route};

/// Copies the built component `name` into the config's directory (as `as_file`), the way a
/// deploy does: beside it, then renamed into place. Returns its path.
fn install_component(config: &TempConfig, name: &str, as_file: &str) -> PathBuf {
    let dir = config.dir.path();
    let tmp = dir.join(format!(".{as_file}.partial"));
    std::fs::copy(plugin(name), &tmp).expect("copy component");
    let path = dir.join(as_file);
    std::fs::rename(&tmp, &path).expect("rename component");
    path
}

/// A config whose servers are `servers`, with the components it names copied beside it
/// first by `install`.
fn config_with(servers: Value) -> TempConfig {
    TempConfig::new(&json!({"servers": servers}))
}

fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

fn status_of(body: &Value, server: &str) -> Value {
    body["output"]["backends"][server].clone()
}

const PAGE: &str = "<html><head><title>x</title><script>var a = 1;</script></head><body>\
    <h1>Release notes</h1><p>See the <a href=\"/docs\">docs</a> for <b>details</b>.</p>\
    <ul><li>faster</li><li>smaller</li></ul><pre><code>magg serve</code></pre></body></html>";

#[tokio::test]
async fn fetch_returns_granted_pages_as_markdown_and_refuses_other_hosts() {
    let replay = Replay::start(vec![
        Route {
            headers: vec!["content-type: text/html; charset=utf-8".to_owned()],
            ..Route::text("/page", PAGE)
        },
        Route::text("/notes.txt", "plain words\nsecond line"),
    ])
    .await;
    let config = config_with(json!({}));
    let wasm = install_component(&config, "fetch", "fetch.wasm");
    config.write(&json!({"servers": {
        "web": {"source": file_url(&wasm), "prefix": "web", "grants": {"http": [replay.grant()]}},
        "closed": {"wasm": "fetch.wasm", "prefix": "closed"},
    }}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let names = client.tool_names().await;
    assert!(names.contains(&"web_fetch".to_owned()), "{names:?}");
    assert!(names.contains(&"closed_fetch".to_owned()), "{names:?}");

    let page = client
        .call(
            "web_fetch",
            json!({"url": format!("{}/page", replay.base())}),
        )
        .await
        .expect("fetch page");
    assert_ne!(page["isError"], json!(true), "{page}");
    assert_eq!(
        text(&page),
        "# Release notes\n\nSee the [docs](/docs) for **details**.\n\n- faster\n- smaller\n\n```\nmagg serve\n```"
    );
    let raw = client
        .call(
            "web_fetch",
            json!({"url": format!("{}/page", replay.base()), "raw": true, "max_length": 12}),
        )
        .await
        .expect("fetch raw");
    assert!(
        text(&raw).starts_with("<html><head>\n\n[cut at 12"),
        "{raw}"
    );
    let plain = client
        .call(
            "web_fetch",
            json!({"url": format!("{}/notes.txt", replay.base())}),
        )
        .await
        .expect("fetch text");
    assert_eq!(text(&plain), "plain words\nsecond line");

    // The server without a grant for the host: refused by magg, and the result says which
    // grant to add.
    let before = replay.lines().len();
    let refused = client
        .call(
            "closed_fetch",
            json!({"url": format!("{}/page", replay.base())}),
        )
        .await
        .expect("refused fetch");
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let said = refused.to_string();
    assert!(said.contains("servers.closed.grants.http"), "{refused}");
    assert!(said.contains("127.0.0.1"), "{refused}");
    assert_eq!(replay.lines().len(), before, "a request got through");
}

#[tokio::test]
async fn a_provider_is_a_server_like_any_other() {
    let config = config_with(json!({}));
    let wasm = install_component(&config, "test-provider", "tools.wasm");
    config.write(&json!({
        "servers": {"tp": {"source": file_url(&wasm), "prefix": "tp",
                           "grants": {"memory_mb": 32, "timeout_ms": 5000}}},
        "plugins": {
            "routing-rules": {"settings": {"rules": [
                {"tool": "tp_env", "action": "deny", "reason": "no environment here"}
            ]}},
            "tool-filter": {"settings": {"rename": {"tp_echo": "tp_say"}}},
        },
    }));
    config.install_plugin("routing-rules", "routing-rules");
    config.install_plugin("tool-filter", "tool-filter");
    // A provider dropped into the plugins directory is not loaded as a plugin; it says how to
    // mount it.
    config.install_plugin("fetch", "stray");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let names = client.tool_names().await;
    assert!(names.contains(&"tp_say".to_owned()), "{names:?}");
    assert!(!names.contains(&"tp_echo".to_owned()), "{names:?}");
    let said = client
        .call("tp_say", json!({"text": "hello"}))
        .await
        .expect("say");
    assert_eq!(text(&said), "hello");
    let denied = client
        .call("tp_env", json!({"name": "HOME"}))
        .await
        .expect("denied");
    assert_eq!(denied["isError"], json!(true), "{denied}");
    assert!(text(&denied).contains("no environment here"), "{denied}");

    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let tp = status_of(&status, "tp");
    assert_eq!(tp["status"], json!("running"), "{tp}");
    assert_eq!(tp["tools"], json!(9), "{tp}");
    assert_eq!(
        tp["component"]["file"],
        json!(wasm.display().to_string()),
        "{tp}"
    );
    assert_eq!(tp["component"]["grants"]["memory_mb"], json!(32), "{tp}");
    assert_eq!(tp["component"]["grants"]["http"], json!([]), "{tp}");
    let stray = status["output"]["plugins"]["loaded"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == json!("stray")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(stray["state"], json!("failed"), "{stray}");
    assert!(
        stray["error"]
            .as_str()
            .unwrap_or_default()
            .contains("mount it as a server"),
        "{stray}"
    );

    // Disabled, its tools leave the list; enabled, they come back.
    client
        .call("magg_disable_server", json!({"name": "tp"}))
        .await
        .expect("disable");
    client.notified("tools/list_changed").await;
    let names = client.tool_names().await;
    assert!(!names.iter().any(|n| n.starts_with("tp_")), "{names:?}");
    client
        .call("magg_enable_server", json!({"name": "tp"}))
        .await
        .expect("enable");
    eventually("tp's tools back", WAIT, || async {
        client
            .tool_names()
            .await
            .contains(&"tp_say".to_owned())
            .then_some(())
    })
    .await;

    // magg_add_server mounts another one from a file:// source, and saves it.
    let added = magg_body(
        &client
            .call(
                "magg_add_server",
                json!({"name": "more", "source": file_url(&wasm), "prefix": "more",
                       "grants": {"env": ["PATH"]}}),
            )
            .await
            .expect("add"),
    );
    assert_eq!(added["output"]["server"]["mounted"], json!(true), "{added}");
    let more = client
        .call("more_echo", json!({"text": "again"}))
        .await
        .expect("more echo");
    assert_eq!(text(&more), "again");
    let saved = config.read();
    assert_eq!(
        saved["servers"]["more"]["grants"],
        json!({"env": ["PATH"]}),
        "{saved}"
    );
}

#[tokio::test]
async fn replacing_the_file_swaps_versions_without_failing_calls_in_flight() {
    let config = config_with(json!({}));
    let wasm = install_component(&config, "test-provider", "swap.wasm");
    config.write(
        &json!({"servers": {"sw": {"wasm": "swap.wasm", "prefix": "sw",
        "grants": {"timeout_ms": 10000}}}}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    assert!(client.tool_names().await.contains(&"sw_sleep".to_owned()));

    // Calls in flight on the old version while the file is replaced by another component.
    let sleep = || client.call("sw_sleep", json!({"ms": 600}));
    let swap = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        install_component(&config, "fetch", "swap.wasm");
    };
    let (a, b, c, d, ()) = tokio::join!(sleep(), sleep(), sleep(), sleep(), swap);
    for result in [a, b, c, d] {
        let result = result.expect("call in flight");
        assert_eq!(text(&result), "slept", "{result}");
    }
    client.notified("tools/list_changed").await;
    let names = client.tool_names().await;
    assert!(names.contains(&"sw_fetch".to_owned()), "{names:?}");
    assert!(!names.contains(&"sw_sleep".to_owned()), "{names:?}");
    assert!(magg.logged("replaced"), "no swap logged");

    // A bad file keeps the version serving, and magg_status says why.
    let tmp = config.dir.path().join(".swap.partial");
    std::fs::write(&tmp, b"\0asm but not a component").expect("write");
    std::fs::rename(&tmp, &wasm).expect("rename");
    magg.wait_for_log("the previous version keeps serving")
        .await;
    let client = magg.client();
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let sw = status_of(&status, "sw");
    assert_eq!(
        sw["component"]["state"],
        json!("failed, previous version serving"),
        "{sw}"
    );
    assert!(sw["component"]["error"].is_string(), "{sw}");
    let still = client
        .call("sw_fetch", json!({"url": "http://127.0.0.1:9/x"}))
        .await
        .expect("still serving");
    assert!(
        still.to_string().contains("servers.sw.grants.http"),
        "{still}"
    );
}

#[tokio::test]
async fn traps_loops_and_runaway_allocation_end_only_their_call() {
    let config = config_with(json!({}));
    install_component(&config, "test-provider", "tools.wasm");
    config.write(
        &json!({"servers": {"tp": {"wasm": "tools.wasm", "prefix": "tp",
        "grants": {"timeout_ms": 400, "memory_mb": 16}}}}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    for (tool, expect) in [
        ("tp_trap", "trapped"),
        ("tp_loop", "time limit of 400 ms"),
        ("tp_allocate", "ran out of memory"),
    ] {
        let result = client.call(tool, json!({})).await.expect("a result");
        assert_eq!(result["isError"], json!(true), "{result}");
        let said = text(&result);
        assert!(said.contains("Server `tp`"), "{said}");
        assert!(said.contains(expect), "{tool}: {said}");
        let fine = client
            .call("tp_echo", json!({"text": "fine"}))
            .await
            .expect("next call");
        assert_eq!(text(&fine), "fine");
    }
}

#[tokio::test]
async fn env_and_directory_grants_are_what_the_entry_says() {
    let config = config_with(json!({}));
    install_component(&config, "test-provider", "tools.wasm");
    let ro = config.dir.path().join("ro");
    let rw = config.dir.path().join("rw");
    std::fs::create_dir_all(&ro).expect("ro");
    std::fs::create_dir_all(&rw).expect("rw");
    std::fs::write(ro.join("note.txt"), "granted words").expect("note");
    config.write(
        &json!({"servers": {"tp": {"wasm": "tools.wasm", "prefix": "tp",
        "grants": {"env": ["MAGG_TEST_GRANTED"],
                   "dirs": [{"path": "ro"}, {"path": rw.display().to_string(), "write": true}]}}}}),
    );
    let mut magg = Magg::stdio_with(
        &config.path,
        &[],
        &[("MAGG_TEST_GRANTED", "yes"), ("MAGG_TEST_HIDDEN", "secret")],
    )
    .await;
    let client = magg.client();
    client.tool_names().await;
    let call = |tool: &'static str, args: Value| {
        let client = &*client;
        async move { client.call(tool, args).await.expect(tool) }
    };
    assert_eq!(
        text(&call("tp_env", json!({"name": "MAGG_TEST_GRANTED"})).await),
        "yes"
    );
    assert_eq!(
        text(&call("tp_env", json!({"name": "MAGG_TEST_HIDDEN"})).await),
        "unset"
    );
    let note = ro.join("note.txt").display().to_string();
    assert_eq!(
        text(&call("tp_read", json!({"path": note})).await),
        "granted words"
    );
    // Read-only: writing is refused, and the file is not created.
    let refused = call(
        "tp_write",
        json!({"path": ro.join("new.txt").display().to_string(), "text": "x"}),
    )
    .await;
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert!(!ro.join("new.txt").exists());
    let written = call(
        "tp_write",
        json!({"path": rw.join("new.txt").display().to_string(), "text": "kept"}),
    )
    .await;
    assert_eq!(text(&written), "written", "{written}");
    assert_eq!(
        std::fs::read_to_string(rw.join("new.txt")).expect("new"),
        "kept"
    );
    // Outside the granted directories there is nothing to read.
    let outside = call("tp_read", json!({"path": "/etc/hostname"})).await;
    assert_eq!(outside["isError"], json!(true), "{outside}");
}

#[tokio::test]
async fn plugin_check_names_a_providers_world_tools_and_grants() {
    let fetch = plugin("fetch");
    let (code, out, err) = run_cli(&["plugin", "check", fetch.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tool-provider"), "{out}");
    assert!(out.contains("fetch: Fetches a URL"), "{out}");
    assert!(out.contains("servers.<name>.grants.http"), "{out}");
    // A plugin is told apart from a provider.
    let hook = plugin("routing-rules");
    let (code, out, err) = run_cli(&["plugin", "check", hook.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("routing-hook") && !out.contains("tools ("),
        "{out}"
    );
}

#[tokio::test]
async fn a_mounted_providers_tools_are_callable_as_soon_as_the_add_returns() {
    let config = config_with(json!({}));
    let wasm = install_component(&config, "test-provider", "tools.wasm");
    config.write(&json!({
        "servers": {},
        "plugins": {"tool-filter": {"settings": {"rename": {"p0_echo": "p0_say"}}}},
    }));
    config.install_plugin("tool-filter", "tool-filter");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    for i in 0..8 {
        let name = format!("p{i}");
        let added = magg_body(
            &client
                .call(
                    "magg_add_server",
                    json!({"name": name, "source": file_url(&wasm), "prefix": name}),
                )
                .await
                .expect("add"),
        );
        assert_eq!(added["output"]["server"]["mounted"], json!(true), "{added}");
        let tool = if i == 0 {
            "p0_say".to_owned()
        } else {
            format!("{name}_echo")
        };
        let echoed = client
            .call(&tool, json!({"text": name}))
            .await
            .unwrap_or_else(|e| panic!("{tool} right after the add: {e}"));
        assert_eq!(text(&echoed), name);
    }
}
