//! Independent clients: the official MCP Python SDK (over stdio and streamable HTTP, in session
//! mode and stateless 2026-07-28 mode; with its sampling, elicitation, roots, progress and
//! logging callbacks answering backends through magg)
//! and the MCP Inspector CLI (TypeScript SDK, over stdio).

use std::path::Path;

use serde_json::json;

use crate::harness::{Magg, TempConfig, bin, test_backend};

/// Runs tests/python/sdk_client.py with `args`: (whether it passed, everything it printed).
pub(crate) fn python_client(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (install the SDK: pip install -r tests/python/requirements.txt)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && all.contains("python sdk: ok"), all)
}

#[test]
fn the_python_sdk_drives_magg_over_stdio() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = bin("magg");
    let (ok, output) = python_client(&[
        "stdio",
        &magg.to_string_lossy(),
        &config.path.to_string_lossy(),
    ]);
    assert!(ok, "{output}");
}

#[tokio::test]
async fn the_python_sdk_drives_magg_over_http() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let (ok, output) = tokio::task::spawn_blocking(move || python_client(&["http", &url]))
        .await
        .expect("join");
    assert!(ok, "{output}");
}

#[tokio::test]
async fn the_python_sdk_drives_magg_statelessly_answering_backends_through_input_required() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let (ok, output) = tokio::task::spawn_blocking(move || python_client(&["modern", &url]))
        .await
        .expect("join");
    assert!(ok, "{output}");
}

/// Runs the MCP Inspector's CLI (TypeScript SDK) against `magg serve` on stdio.
fn inspector(config: &Path, args: &[&str]) -> (bool, String) {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/node_modules/.bin/mcp-inspector");
    assert!(
        cli.exists(),
        "{} is missing: run `npm ci --prefix tests/node`",
        cli.display()
    );
    let out = std::process::Command::new(cli)
        .arg("--cli")
        .arg("-e")
        .arg(format!("MAGG_CONFIG_PATH={}", config.display()))
        .args(["-e", "MAGG_LIST_WAIT=15"])
        .arg(bin("magg"))
        .arg("serve")
        .args(args)
        .output()
        .expect("run the inspector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_mcp_inspector_lists_and_calls_tools_through_magg() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let (ok, listed) = inspector(&config.path, &["--method", "tools/list"]);
    assert!(ok, "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON from the inspector");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"tb_echo") && names.contains(&"proxy"),
        "{names:?}"
    );

    let (ok, called) = inspector(
        &config.path,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "tb_echo",
            "--tool-arg",
            "text=inspected",
        ],
    );
    assert!(ok, "{called}");
    let called: serde_json::Value = serde_json::from_str(&called).expect("JSON");
    assert_eq!(called["content"][0]["text"], json!("inspected"));
}
