//! Bad input and broken backends: clear errors, and magg keeps serving.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Magg, TempConfig, magg_body, run_cli, test_backend, text};

#[tokio::test]
async fn unknown_tool_is_a_protocol_error_naming_it_and_close_matches() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let err = client
        .call("tb_ecko", json!({}))
        .await
        .expect_err("unknown tool");
    let message = err.to_string();
    assert!(message.contains("tb_ecko"), "{message}");
    assert!(
        message.contains("tb_echo"),
        "suggests the close match: {message}"
    );
    // magg keeps serving
    assert_eq!(
        text(
            &client
                .call("tb_echo", json!({"text": "still"}))
                .await
                .expect("echo")
        ),
        "still"
    );
}

#[tokio::test]
async fn malformed_arguments_get_a_readable_tool_error() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let result = client
        .call("tb_add", json!({"a": "x", "b": 1}))
        .await
        .expect("tool result");
    assert_eq!(result["isError"], json!(true));
    assert!(text(&result).contains("'a'"), "{result}");
}

#[tokio::test]
async fn unknown_resource_and_prompt_are_errors_naming_them() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = &magg.client().service;
    client.list_all_tools().await.expect("started");
    let err = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "nothing://here",
        ))
        .await
        .expect_err("unknown resource");
    assert!(err.to_string().contains("nothing://here"), "{err}");
    let err = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("no_such_prompt"))
        .await
        .expect_err("unknown prompt");
    assert!(err.to_string().contains("no_such_prompt"), "{err}");
}

#[tokio::test]
async fn a_backend_that_dies_mid_call_gives_an_error_and_comes_back() {
    let config = TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "other": test_backend("other", "other", &[]),
    }}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let pid_before = text(&client.call_eventually("tb_pid", json!({})).await).to_owned();
    let other_pid = text(&client.call("other_pid", json!({})).await.expect("other")).to_owned();

    let crash = client
        .call("tb_crash", json!({}))
        .await
        .expect("a tool result, not a hang");
    assert_eq!(crash["isError"], json!(true));
    assert!(text(&crash).contains("`tb`"), "names the server: {crash}");

    client.notified("tools/list_changed").await;
    let pid_after = text(&client.call_eventually("tb_pid", json!({})).await).to_owned();
    assert_ne!(pid_before, pid_after, "a new process serves tb");
    let other_after = text(&client.call("other_pid", json!({})).await.expect("other")).to_owned();
    assert_eq!(other_pid, other_after, "the other backend never noticed");
}

#[tokio::test]
async fn failing_and_hanging_backends_never_block_the_others() {
    let mut config = json!({
        "backend_init_timeout": 1,
        "servers": {
            "tb": test_backend("tb", "tb", &[]),
            "hang": test_backend("hang", "hang", &["--hang"]),
            "dies": test_backend("dies", "dies", &["--exit-immediately"]),
            "missing": {"source": "nowhere", "prefix": "missing", "command": "/nonexistent/mcp-server"},
        }
    });
    config["servers"]["hang"]["enabled"] = json!(true);
    let config = TempConfig::new(&config);
    let started = Instant::now();
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_LIST_WAIT", "0")]).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "initialize is answered at once"
    );
    let client = magg.client();
    let echo = client
        .call_eventually("tb_echo", json!({"text": "ok"}))
        .await;
    assert_eq!(text(&echo), "ok");

    // Wait for the hanging backend to hit its init timeout, then read the reasons.
    magg.wait_for_log("backend_init_timeout").await;
    let client = magg.client();
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let backends = &status["output"]["backends"];
    assert_eq!(backends["tb"]["status"], json!("running"));
    let reason = |name: &str| {
        backends[name]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        reason("missing").contains("could not start"),
        "{}",
        backends["missing"]
    );
    assert!(reason("dies").contains("exit"), "{}", backends["dies"]);
    assert!(
        backends["hang"]["status"] == json!("starting")
            || reason("hang").contains("backend_init_timeout"),
        "{}",
        backends["hang"]
    );
    assert!(magg.logged("could not start"), "failures are logged");
}

#[tokio::test]
async fn backend_stderr_goes_to_maggs_log() {
    let config = TempConfig::new(
        &json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    magg.client().tool_names().await;
    magg.wait_for_log("magg-test-backend tb starting").await;
}

#[test]
fn a_config_that_does_not_parse_stops_serve_with_exit_2_naming_file_line_and_field() {
    let config = TempConfig::raw(
        "{\n  \"servers\": {\n    \"fs\": {\n      \"source\": \"x\",\n      \"command\": \"npx\",\n      \"args\": \"-y pkg\"\n    }\n  }\n}\n",
    );
    let path = config.path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run_cli(&["serve", "--config", &path]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    assert!(stderr.contains(&path), "names the file: {stderr}");
    assert!(stderr.contains(":6:"), "names the line: {stderr}");
    assert!(
        stderr.contains("servers.fs.args"),
        "names the field: {stderr}"
    );

    let syntax = TempConfig::raw("{\"servers\": {,}}");
    let (code, _, stderr) = run_cli(&["serve", "--config", &syntax.path.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(stderr.contains(":1:"), "{stderr}");
}

#[tokio::test]
async fn a_killed_backend_leaves_the_list_and_comes_back() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let pid = text(&client.call_eventually("tb_pid", json!({})).await).to_owned();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Down: its tools leave the list; up again: they come back. A notification each time.
    client.notified("tools/list_changed").await;
    client.notified("tools/list_changed").await;
    let again = text(&client.call_eventually("tb_pid", json!({})).await).to_owned();
    assert_ne!(again, pid);
    magg.wait_for_log("backend failed").await;
}

#[tokio::test]
async fn cancelling_a_call_reaches_the_backend() {
    let config = TempConfig::new(
        &json!({"stderr_show": true, "servers": {"tb": test_backend("tb", "tb", &[])}}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    // Dropping the call makes the rmcp client send notifications/cancelled for it.
    let slow = client.call("tb_slow", json!({"ms": 30_000}));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), slow)
            .await
            .is_err()
    );
    magg.wait_for_log("slow call cancelled").await;
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call("tb_echo", json!({"text": "after"}))
                .await
                .expect("echo")
        ),
        "after"
    );
}
