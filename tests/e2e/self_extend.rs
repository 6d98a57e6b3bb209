//! A whole self-extension session, as a model drives it through magg's tools with the official
//! MCP Python SDK (`tests/python/self_extend.py`): search the (replayed) MCP Registry for a
//! server that tells the time, configure the top result with the client's LLM answering magg's
//! sampling request, add it, see tools/list_changed, and call the new tool — over stdio and over
//! streamable HTTP.

use std::path::Path;

use serde_json::{Value, json};

use crate::{
    harness::{Magg, RemoteBackend, TempConfig, bin, remote_test_backend_with, target_dir},
    replay::{Replay, Route},
};

/// The registry's answer: one server that tells the time, reached at `url`, and one that is
/// deprecated (which a search leaves out).
fn registry(url: &str) -> String {
    let entry = |name: &str, status: &str, description: &str| {
        json!({
            "server": {
                "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
                "name": name,
                "title": "Clock",
                "description": description,
                "version": "1.0.0",
                "remotes": [{"type": "streamable-http", "url": url}],
            },
            "_meta": {"io.modelcontextprotocol.registry/official": {
                "status": status,
                "publishedAt": "2026-10-01T10:00:00Z",
                "updatedAt": "2026-10-01T10:00:00Z",
                "isLatest": true,
            }},
        })
    };
    json!({
        "servers": [
            entry("com.example/clock", "active", "Tells the time: the current date and time in UTC."),
        ],
        "metadata": {"count": 1},
    })
    .to_string()
}

/// A clock server, a registry that lists it, and a config with no servers whose search
/// providers ask only that registry.
async fn world(http: bool) -> (RemoteBackend, Replay, TempConfig) {
    let clock = remote_test_backend_with("clock", &["--clock"]).await;
    let replay = Replay::start(vec![Route::json("/v0", registry(&clock.url)).method("GET")]).await;
    let off = json!({"enabled": false});
    // Over HTTP without authentication, changes are allowed only when the config says so.
    let config = TempConfig::new(&json!({
        "allow_unauthenticated_changes": http,
        "servers": {},
        "plugins": {
            "mcp-registry": {"settings": {"base_url": replay.base()}, "allow_hosts": [replay.grant()]},
            "npm-search": off, "glama-search": off, "github-search": off,
        },
    }));
    (clock, replay, config)
}

/// Runs tests/python/self_extend.py with `args`: (whether it passed, everything it printed).
fn session(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/self_extend.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
        .output()
        .expect("python3 runs (install the SDK: pip install -r tests/python/requirements.txt)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && all.contains("self-extension: ok"),
        all,
    )
}

fn saved_servers(config: &TempConfig) -> Value {
    config.read()["servers"].clone()
}

#[tokio::test]
async fn a_model_finds_configures_adds_and_calls_a_server_over_stdio() {
    let (clock, replay, config) = world(false).await;
    let magg = bin("magg").to_string_lossy().into_owned();
    let path = config.path.to_string_lossy().into_owned();
    let (ok, output) = tokio::task::spawn_blocking(move || session(&["stdio", &magg, &path]))
        .await
        .expect("join");
    assert!(ok, "{output}");
    assert!(replay.asked(&["search=time"]), "{:?}", replay.lines());
    // The server it added is in the config, reached at the clock's URL.
    let servers = saved_servers(&config);
    assert_eq!(servers["clock"]["uri"], json!(clock.url), "{servers}");
}

#[tokio::test]
async fn a_model_finds_configures_adds_and_calls_a_server_over_http() {
    let (clock, replay, config) = world(true).await;
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let (ok, output) = tokio::task::spawn_blocking(move || session(&["http", &url]))
        .await
        .expect("join");
    assert!(ok, "{output}");
    assert!(replay.asked(&["search=time"]), "{:?}", replay.lines());
    let servers = saved_servers(&config);
    assert_eq!(servers["clock"]["uri"], json!(clock.url), "{servers}");
}
