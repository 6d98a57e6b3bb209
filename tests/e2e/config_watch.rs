//! A running magg and its config file going wrong: a file emptied by an editor, a broken edit
//! undone, a `--config` that does not exist.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::harness::{
    Magg, TempConfig, WAIT, bin, eventually, magg_body, run_cli, target_dir, test_backend, text,
};

#[tokio::test]
async fn an_emptied_config_file_keeps_the_running_servers() {
    let original = json!({"servers": {"tb": test_backend("tb", "tb", &[])}});
    let config = TempConfig::new(&original);
    let mut magg = Magg::stdio(&config.path).await;
    let pid = text(&magg.client().call_eventually("tb_pid", json!({})).await).to_owned();

    // An editor that truncates the file before it writes the new content.
    std::fs::write(&config.path, "").expect("truncate");
    magg.wait_for_log("is empty, so nothing changed").await;
    let client = magg.client();
    assert_eq!(
        text(&client.call("tb_pid", json!({})).await.expect("pid")),
        pid,
        "the backend kept its process"
    );
    assert!(client.tool_names().await.contains(&"tb_echo".to_owned()));
    let reload = client
        .call("magg_reload_config", json!({}))
        .await
        .expect("reload");
    assert_eq!(reload["isError"], json!(true), "{reload}");
    assert!(text(&reload).contains("is empty"), "{reload}");
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    assert_eq!(status["output"]["servers"]["mounted"], json!(1), "{status}");

    // The editor then writes the content, now with a second server: that is applied.
    let mut edited = original.clone();
    edited["servers"]["two"] = test_backend("two", "two", &[]);
    std::fs::write(
        &config.path,
        serde_json::to_string_pretty(&edited).expect("json"),
    )
    .expect("write");
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("two_echo", json!({"text": "back"}))
                .await
        ),
        "back"
    );
    assert_eq!(
        text(&client.call("tb_pid", json!({})).await.expect("pid")),
        pid,
        "the untouched server still kept its process"
    );
}

#[tokio::test]
async fn last_reload_error_clears_when_the_good_file_is_back() {
    let original = json!({"servers": {"tb": test_backend("tb", "tb", &[])}});
    let config = TempConfig::new(&original);
    let good = std::fs::read(&config.path).expect("read");
    let mut magg = Magg::stdio(&config.path).await;
    magg.client()
        .call_eventually("tb_echo", json!({"text": "x"}))
        .await;

    std::fs::write(&config.path, "{\"servers\": {\"tb\": {\"source\": 1}}}").expect("break");
    magg.wait_for_log("config reload rejected").await;
    let client = magg.client();
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let error = status["output"]["config"]["last_reload_error"].clone();
    assert!(
        error
            .as_str()
            .unwrap_or_default()
            .contains("servers.tb.source"),
        "{status}"
    );

    // The very same content as before the broken edit: nothing to apply, nothing wrong.
    std::fs::write(&config.path, &good).expect("restore");
    eventually("last_reload_error to clear", WAIT, || async {
        let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
        status["output"]["config"]["last_reload_error"]
            .is_null()
            .then_some(())
    })
    .await;

    // And after a new good edit that changes something.
    std::fs::write(&config.path, "{\"servers\": {\"tb\": {\"source\": 1}}}").expect("break");
    magg.wait_for_log_count("config reload rejected", 2).await;
    let client = magg.client();
    let mut edited = original.clone();
    edited["servers"]["tb"]["notes"] = json!("changed");
    config.write(&edited);
    eventually("last_reload_error to clear after an edit", WAIT, || async {
        let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
        status["output"]["config"]["last_reload_error"]
            .is_null()
            .then_some(())
    })
    .await;
}

#[test]
fn serve_with_a_config_that_does_not_exist_fails_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("typo.json");
    let missing_arg = missing.to_string_lossy().into_owned();
    let out = std::process::Command::new(bin("magg"))
        .args(["serve", "--config", &missing_arg])
        .env_remove("MAGG_CONFIG_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run magg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "config file {missing_arg} (given with --config) does not exist"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Fix:"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on the MCP channel");
    assert!(!missing.exists(), "nothing was created");

    // The commands that edit the config still create a file named with --config.
    let (code, _, stderr) = run_cli(&[
        "server",
        "add",
        "one",
        "src",
        "--command",
        "true",
        "--config",
        &missing_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(missing.exists());
}

#[tokio::test]
async fn magg_config_path_to_a_missing_file_serves_no_servers_until_one_is_added() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("config.json");
    let mut cmd = tokio::process::Command::new(bin("magg"));
    cmd.args(["serve", "--http", "--host", "127.0.0.1", "--port", "0"])
        .env("MAGG_CONFIG_PATH", &missing)
        // The server is added over HTTP, which is not authenticated here.
        .env("MAGG_ALLOW_UNAUTHENTICATED_CHANGES", "1")
        .env("RUST_LOG", "info")
        .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let magg = Magg::http_from(cmd).await;
    assert!(
        magg.logged("(from MAGG_CONFIG_PATH) does not exist"),
        "{:?}",
        magg.log
    );
    let client = magg.http_client().await;
    let names = client.tool_names().await;
    assert!(
        names.iter().all(|n| n.starts_with("magg_") || n == "proxy"),
        "only magg's own tools, not the built-in default server: {names:?}"
    );

    let added = client
        .call(
            "magg_add_server",
            json!({"name": "later", "source": "s", "command": "true", "enable": false}),
        )
        .await
        .expect("add");
    assert_eq!(magg_body(&added)["errors"], json!(null), "{added}");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&missing).expect("created")).expect("json");
    assert_eq!(
        file["servers"]
            .as_object()
            .map(|s| s.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["later".to_owned()])
    );
    client.close().await;
}
