//! The official MCP Python SDK as an independent client, over stdio and streamable HTTP.

use std::path::Path;

use serde_json::json;

use crate::harness::{Magg, TempConfig, bin, test_backend};

fn python_client(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (install the SDK: pip install -r tests/python/requirements.txt)");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && all.contains("python sdk: ok"), all)
}

#[test]
fn the_python_sdk_drives_magg_over_stdio() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = bin("magg");
    let (ok, output) = python_client(&["stdio", &magg.to_string_lossy(), &config.path.to_string_lossy()]);
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
