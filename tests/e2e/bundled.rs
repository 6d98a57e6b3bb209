//! The plugins built into magg: they serve with no plugins directory, each may reach only its
//! own host unless the config says otherwise, a user's file of the same name replaces one, and
//! `enabled: false` turns one off.

use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, magg_body, plugin, run_cli, test_backend},
    replay::{Replay, Route, fixture},
};

/// A config with `plugins`; the bundled providers it does not name (Glama, GitHub) are
/// turned off, so no test asks the real sites.
fn config_with(mut plugins: Value) -> TempConfig {
    for name in ["glama-search", "github-search"] {
        if plugins.get(name).is_none() {
            plugins[name] = json!({"enabled": false});
        }
    }
    TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": plugins,
    }))
}

async fn search(magg: &mut Magg, query: &str) -> Value {
    let client = magg.client();
    client.tool_names().await;
    magg_body(
        &client
            .call("magg_search_servers", json!({"query": query, "limit": 5}))
            .await
            .expect("search"),
    )
}

#[tokio::test]
async fn bundled_plugins_serve_with_no_plugins_directory() {
    let replay = Replay::start(vec![
        Route::json("/v0", fixture("mcp-registry-v0-servers.json")),
        Route::json("/-/v1/search", fixture("npm-search.json")),
    ])
    .await;
    // mcp-registry is pointed at the replay and granted it; npm-search only at the replay, so
    // it keeps its default grant (registry.npmjs.org) and its request is refused.
    let config = config_with(json!({
        "mcp-registry": {"settings": {"base_url": replay.base()}, "allow_hosts": [replay.grant()]},
        "npm-search": {"settings": {"base_url": replay.base()}},
    }));
    let mut magg = Magg::stdio(&config.path).await;
    // Until the first search, the bundled plugins wait, loaded neither in memory nor compiled.
    let before = magg_body(
        &magg
            .client()
            .call("magg_status", json!({}))
            .await
            .expect("status"),
    );
    let waiting = before["output"]["plugins"]["loaded"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let registry = waiting
        .iter()
        .find(|p| p["name"] == json!("mcp-registry"))
        .unwrap_or_else(|| panic!("mcp-registry is not listed: {before}"));
    assert_eq!(registry["state"], json!("standby"), "{before}");
    assert_eq!(registry["kinds"], json!(["search-provider"]), "{before}");
    assert!(!magg.logged("plugin mcp-registry loaded"));

    let found = search(&mut magg, "time").await;
    let out = &found["output"];
    assert!(
        out["sources"]["mcp-registry"]["results"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{found}"
    );
    let refused = out["sources"]["npm-search"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(refused.contains("denied"), "{found}");
    magg.wait_for_log("is not in plugins.npm-search.allow_hosts")
        .await;
    assert!(!replay.asked(&["/-/v1/search"]), "{:?}", replay.lines());

    let status = magg_body(
        &magg
            .client()
            .call("magg_status", json!({}))
            .await
            .expect("status"),
    );
    let loaded = status["output"]["plugins"]["loaded"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in ["mcp-registry", "npm-search", "smart-configure"] {
        let entry = loaded
            .iter()
            .find(|p| p["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} is not loaded: {status}"));
        assert_eq!(entry["origin"], json!("bundled"), "{entry}");
    }
    let npm = loaded.iter().find(|p| p["name"] == json!("npm-search"));
    assert_eq!(
        npm.map(|p| p["allow_hosts"].clone()),
        Some(json!(["registry.npmjs.org"])),
        "{status}"
    );
}

#[tokio::test]
async fn a_users_plugin_replaces_the_bundled_one_and_enabled_false_turns_one_off() {
    let replay = Replay::start(vec![Route::json(
        "/v0",
        fixture("mcp-registry-v0-servers.json"),
    )])
    .await;
    let config = config_with(json!({
        "npm-search": {"settings": {"base_url": replay.base()}, "allow_hosts": [replay.grant()]},
        "mcp-registry": {"enabled": false},
    }));
    // The user's `npm-search.wasm` is in fact a registry client: its answers show which
    // plugin served.
    std::fs::create_dir_all(config.plugins_dir()).expect("plugins dir");
    std::fs::copy(
        plugin("mcp-registry"),
        config.plugins_dir().join("npm-search.wasm"),
    )
    .expect("copy plugin");
    let mut magg = Magg::stdio(&config.path).await;
    let found = search(&mut magg, "time").await;
    let out = &found["output"];
    let sources = out["sources"].as_object().cloned().unwrap_or_default();
    assert!(!sources.contains_key("mcp-registry"), "{found}");
    assert!(
        sources["npm-search"]["results"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{found}"
    );
    assert!(
        replay.asked(&["/v0", "search=time"]),
        "{:?}",
        replay.lines()
    );

    let config_arg = config.path.to_str().expect("path");
    let (code, stdout, stderr) = run_cli(&["--config", config_arg, "plugin", "list", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("json");
    let row = |name: &str| {
        listed["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == json!(name)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(row("npm-search")["origin"], json!("user"), "{listed}");
    assert_eq!(
        row("npm-search")["replaces_bundled"],
        json!(true),
        "{listed}"
    );
    assert_eq!(row("mcp-registry")["state"], json!("disabled"), "{listed}");
    assert_eq!(row("mcp-registry")["origin"], json!("bundled"), "{listed}");
    assert_eq!(row("smart-configure")["state"], json!("loaded"), "{listed}");
    assert_eq!(
        row("smart-configure")["kinds"],
        json!(["configure"]),
        "{listed}"
    );

    // The human listing says the same.
    let (code, stdout, _) = run_cli(&["--config", config_arg, "plugin", "list"]);
    assert_eq!(code, 0);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("npm-search").contains("replaces bundled"), "{stdout}");
    assert!(line("mcp-registry").contains("disabled"), "{stdout}");
}
