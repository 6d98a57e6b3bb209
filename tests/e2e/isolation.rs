//! A server with `"isolation": "session"` runs one instance per client session: each session's
//! calls reach a process of its own, what that process asks of a client reaches that session
//! and no other (even while another session's call is in flight on the same server), the
//! instance ends with its session and with the server, and `session_backends_max` caps how many
//! run at once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    harness::{
        ClientSpec, Magg, TempConfig, WAIT, all_text, eventually, magg_body, run_cli, test_backend,
        test_backend_command, text,
    },
    raw_http::Conn,
};

/// How long a process may take to go once its session or server is gone.
const GONE: Duration = Duration::from_secs(15);

/// A config with the test backend `tb`, isolated per session.
fn isolated() -> TempConfig {
    let mut tb = test_backend("tb", "tb", &[]);
    tb["isolation"] = json!("session");
    TempConfig::new(&json!({"servers": {"tb": tb}}))
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
}

fn pid_of(result: &Value) -> u32 {
    text(result).parse().expect("a process id")
}

/// magg_status's entry of server `tb`.
async fn tb_status(client: &crate::harness::Client) -> Value {
    let result = client.call("magg_status", json!({})).await.expect("status");
    magg_body(&result)["output"]["backends"]["tb"].clone()
}

#[tokio::test]
async fn concurrent_elicitations_of_two_sessions_each_reach_their_own_client() {
    let config = isolated();
    let magg = Magg::http(&config.path, false).await;
    let alice = magg.http_client_as(ClientSpec::full("alice")).await;
    let bob = magg.http_client_as(ClientSpec::full("bob")).await;
    for round in 0..5 {
        // Each call waits until both are in flight on the server before it asks.
        let gather = tempfile::tempdir().expect("a directory");
        let args = json!({
            "mode": "form",
            "gather_dir": gather.path(),
            "gather": 2,
        });
        let (a, b) = tokio::join!(
            alice.call("tb_elicit", args.clone()),
            bob.call("tb_elicit", args.clone()),
        );
        let (a, b) = (a.expect("alice's call"), b.expect("bob's call"));
        assert_eq!(
            text(&a),
            r#"elicited: accept {"name":"alice"}"#,
            "round {round}: {a}"
        );
        assert_eq!(
            text(&b),
            r#"elicited: accept {"name":"bob"}"#,
            "round {round}: {b}"
        );
    }

    let a_pid = pid_of(&alice.call("tb_pid", json!({})).await.expect("pid"));
    let b_pid = pid_of(&bob.call("tb_pid", json!({})).await.expect("pid"));
    let status = tb_status(&alice).await;
    let shared_pid = status["pid"].as_u64().expect("the shared instance's pid") as u32;
    assert_ne!(a_pid, b_pid, "each session has a process of its own");
    assert_ne!(a_pid, shared_pid, "the shared instance is not a session's");
    assert_ne!(b_pid, shared_pid, "the shared instance is not a session's");
    assert_eq!(status["isolation"], "session", "{status}");
    assert_eq!(status["session_instances"], 2, "{status}");
    // A session keeps its instance from call to call.
    let again = pid_of(&alice.call("tb_pid", json!({})).await.expect("pid"));
    assert_eq!(again, a_pid);

    // The session ends (HTTP DELETE): its instance goes, the other stays.
    bob.close().await;
    eventually("bob's instance ends with his session", GONE, || async {
        (!alive(b_pid)).then_some(())
    })
    .await;
    assert!(alive(a_pid), "alice's instance outlives bob's session");
    let status = tb_status(&alice).await;
    assert_eq!(status["session_instances"], 1, "{status}");

    // The server is removed from the config: its instances go with it.
    config.write(&json!({"servers": {}}));
    eventually("alice's instance ends with its server", GONE, || async {
        (!alive(a_pid)).then_some(())
    })
    .await;
    eventually("the shared instance ends with its server", GONE, || async {
        (!alive(shared_pid)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn over_session_backends_max_a_call_gets_a_clear_error_and_magg_keeps_serving() {
    let config = isolated();
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("MAGG_SESSION_BACKENDS_MAX", "1")],
    )
    .await;
    let first = magg.http_client_as(ClientSpec::full("first")).await;
    let second = magg.http_client_as(ClientSpec::full("second")).await;
    let first_pid = pid_of(&first.call("tb_pid", json!({})).await.expect("pid"));

    let refused = second.call("tb_pid", json!({})).await.expect("a result");
    assert_eq!(refused["isError"], true, "{refused}");
    let message = all_text(&refused);
    assert!(
        message.contains("session_backends_max") && message.contains("1"),
        "the error names the cap and the setting: {message}"
    );

    // magg keeps serving both sessions.
    let again = pid_of(&first.call("tb_pid", json!({})).await.expect("pid"));
    assert_eq!(again, first_pid);
    let echoed = second
        .call("tb_echo", json!({"text": "still here"}))
        .await
        .expect("a result");
    assert_eq!(echoed["isError"], true, "still over the cap: {echoed}");
    let status = second.call("magg_status", json!({})).await.expect("status");
    let body = magg_body(&status);
    assert_eq!(body["output"]["session_backends"]["running"], 1, "{body}");
    assert_eq!(body["output"]["session_backends"]["max"], 1, "{body}");

    // Once the first session ends, its slot is free for the second.
    first.close().await;
    let freed = eventually("the second session gets an instance", GONE, || async {
        let result = second.call("tb_pid", json!({})).await.ok()?;
        (result["isError"] != true).then_some(result)
    })
    .await;
    assert_ne!(pid_of(&freed), first_pid);
    assert!(!alive(first_pid), "the first session's instance ended");
}

#[tokio::test]
async fn isolation_shows_in_server_list_and_is_written_back_unchanged() {
    let config = isolated();
    let path = config.path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run_cli(&["server", "list", "--config", &path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("isolation=session"), "{stdout}");
    // An edit of another server writes `isolation` back as it was.
    let (code, _, stderr) = run_cli(&[
        "server",
        "add",
        "other",
        "https://example.com/other",
        "--config",
        &path,
        "--command",
        "true",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(config.read()["servers"]["tb"]["isolation"], "session");
}

#[tokio::test]
async fn an_unknown_isolation_value_is_refused_naming_the_server_value_and_choices() {
    let mut tb = test_backend("tb", "tb", &[]);
    tb["isolation"] = json!("per-user");
    let config = TempConfig::new(&json!({"servers": {"tb": tb}}));
    let path = config.path.to_string_lossy().into_owned();
    let (code, _, stderr) = run_cli(&["server", "list", "--config", &path]);
    assert_ne!(code, 0, "a bad value is refused");
    for needed in [
        "\"tb\"",
        "per-user",
        "\"shared\"",
        "\"session\"",
        "isolation",
    ] {
        assert!(stderr.contains(needed), "{needed} missing from: {stderr}");
    }
}

#[tokio::test]
async fn prompts_of_a_session_use_its_instance_and_stateless_calls_use_the_shared_one() {
    let config = isolated();
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    let client = magg.http_client_as(ClientSpec::full("carol")).await;
    let status = eventually("tb's shared instance runs", GONE, || async {
        let status = tb_status(&client).await;
        status["pid"].is_u64().then_some(status)
    })
    .await;
    let shared_pid = status["pid"].as_u64().expect("the shared instance's pid");
    assert_eq!(
        status["session_instances"], 0,
        "no session used tb yet: {status}"
    );

    // prompts/get is the session's first request to tb: it starts the session's instance.
    let mut get = rmcp::model::GetPromptRequestParams::new("tb_greet");
    get.arguments = json!({"name": "Ann"}).as_object().cloned();
    let prompt = serde_json::to_value(client.service.get_prompt(get).await.expect("prompts/get"))
        .expect("json");
    assert_eq!(prompt["messages"][0]["content"]["text"], "Hello, Ann!");
    let status = tb_status(&client).await;
    assert_eq!(status["session_instances"], 1, "{status}");

    // A stateless client (2026-07-28, no session) is served by the shared instance.
    let reply = crate::http::stateless_call(&url, "tb_pid", json!({}), json!({})).await;
    let response = crate::http::response_of(&reply);
    assert_eq!(
        text(&response["result"]),
        shared_pid.to_string(),
        "{response}"
    );
    let status = tb_status(&client).await;
    assert_eq!(status["session_instances"], 1, "{status}");
}

#[tokio::test]
async fn magg_add_server_takes_isolation_and_refuses_an_unknown_value() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio_as(&config.path, ClientSpec::full("dave")).await;
    let client = magg.client();
    let command = test_backend_command("tb");
    let refused = client
        .call(
            "magg_add_server",
            json!({"name": "bad", "source": "s", "prefix": "bad", "command": command,
                   "isolation": "per-user"}),
        )
        .await
        .expect("a result");
    let body = all_text(&refused);
    assert!(
        body.contains("per-user") && body.contains("shared") && body.contains("session"),
        "{body}"
    );
    assert!(
        config.read()["servers"].get("bad").is_none(),
        "nothing saved"
    );

    let added = client
        .call(
            "magg_add_server",
            json!({"name": "tb", "source": "s", "prefix": "tb", "command": command,
                   "isolation": "session"}),
        )
        .await
        .expect("a result");
    assert_ne!(added["isError"], true, "{added}");
    assert_eq!(config.read()["servers"]["tb"]["isolation"], "session");
    let pid = pid_of(&client.call_eventually("tb_pid", json!({})).await);
    let status = tb_status(client).await;
    assert_ne!(
        status["pid"],
        json!(pid),
        "the stdio session has its own instance"
    );
    assert_eq!(status["session_instances"], 1, "{status}");
}

#[tokio::test]
async fn an_instance_that_cannot_start_holds_no_place_under_the_cap() {
    let config = isolated();
    let refuse = config.dir.path().join("refuse");
    let mut tb = test_backend(
        "tb",
        "tb",
        &["--exit-if-exists", refuse.to_str().expect("utf-8")],
    );
    tb["isolation"] = json!("session");
    config.write(&json!({"servers": {"tb": tb}}));
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("MAGG_SESSION_BACKENDS_MAX", "1")],
    )
    .await;
    let first = magg.http_client_as(ClientSpec::full("first")).await;
    eventually("the shared instance to run", WAIT, || async {
        (tb_status(&first).await["status"] == "running").then_some(())
    })
    .await;
    // From now on, every new instance exits at start.
    std::fs::write(&refuse, "").expect("marker");
    let failed = first.call("tb_pid", json!({})).await.expect("a result");
    assert_eq!(failed["isError"], true, "{failed}");
    let message = all_text(&failed);
    assert!(
        message.contains("could not start this session's instance")
            && message.contains("tries again"),
        "{message}"
    );
    // The failed instance holds no place: another session meets the same failure, not the cap.
    let second = magg.http_client_as(ClientSpec::full("second")).await;
    let also = second.call("tb_pid", json!({})).await.expect("a result");
    let message = all_text(&also);
    assert!(
        message.contains("could not start this session's instance")
            && !message.contains("session_backends_max"),
        "{message}"
    );
    let status = tb_status(&second).await;
    assert_eq!(status["session_instances"], 0, "{status}");

    // Once the server can start again, the first session's next call gets its instance.
    std::fs::remove_file(&refuse).expect("remove marker");
    let pid = pid_of(&first.call("tb_pid", json!({})).await.expect("pid"));
    assert!(alive(pid));
    let refused = second.call("tb_pid", json!({})).await.expect("a result");
    assert!(
        all_text(&refused).contains("session_backends_max"),
        "the running instance holds the one place: {refused}"
    );
}

/// A raw streamable HTTP session whose client declares `roots`; its id.
async fn open_session_with_roots(url: &str) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"roots": {}},
        "clientInfo": {"name": "raw-roots", "version": "1"},
    }});
    Conn::open(url).await.open_session_as(&initialize).await
}

/// Answers the `roots/list` request `asked` of the raw session `session` with the one root
/// `file:///woken`.
async fn answer_roots(url: &str, session: &str, asked: &Value) {
    assert_eq!(asked["method"], "roots/list", "{asked}");
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"],
                        "result": {"roots": [{"uri": "file:///woken"}]}});
    let reply = Conn::open(url).await.post(Some(session), &answer).await;
    assert_eq!(reply.status, 202, "{reply}");
}

/// Calls `tb_roots` in the raw session `session` as request `id`, answers the `roots/list`
/// that comes on the call's response stream, and returns the call's text.
async fn roots_answered(url: &str, session: &str, id: u64) -> String {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": "tb_roots", "arguments": {}}});
    let mut conn = Conn::open(url).await;
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", session),
    ];
    conn.write("POST", "/mcp", &headers, &call.to_string())
        .await;
    let (status, head) = conn.read_head().await;
    assert_eq!(status, 200, "{head:?}");
    let mut buffer = String::new();
    answer_roots(url, session, &conn.next_message(&mut buffer).await).await;
    let result = conn.next_message(&mut buffer).await;
    assert_eq!(result["id"], id, "{result}");
    text(&result["result"]).to_owned()
}

/// Opens the session's GET stream, has the instance ask for roots outside any call
/// (`tb_roots_later`), answers on the stream, and waits for the instance to log that it got
/// them.
async fn roots_answered_later(magg: &Magg, url: &str, session: &str) {
    let mut stream = Conn::open(url).await;
    let headers = [("Accept", "text/event-stream"), ("Mcp-Session-Id", session)];
    stream.write("GET", "/mcp", &headers, "").await;
    let (status, head) = stream.read_head().await;
    assert_eq!(status, 200, "{head:?}");
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "tb_roots_later", "arguments": {"ms": 200}}});
    let reply = Conn::open(url).await.post(Some(session), &call).await;
    assert!(reply.text().contains("scheduled"), "{reply}");
    let asked = stream.next_message(&mut String::new()).await;
    answer_roots(url, session, &asked).await;
    eventually(
        "the instance to get the woken session's roots",
        WAIT,
        || async { magg.logged("later roots: file:///woken").then_some(()) },
    )
    .await;
}

/// A tools/call of `tb_pid` on the raw HTTP session `session`; the pid it answers.
async fn raw_pid(url: &str, session: &str, id: u64) -> u32 {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": "tb_pid", "arguments": {}}});
    let reply = Conn::open(url).await.post(Some(session), &call).await;
    assert_eq!(reply.status, 200, "{reply}");
    let answer = reply
        .messages()
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no answer: {reply}"));
    pid_of(&answer["result"])
}

#[tokio::test]
async fn a_sessions_instance_outlives_the_sessions_sleep_and_ends_when_it_expires() {
    // Idle sessions sleep after half of session_idle_timeout (3 s) and end after 6 s.
    let config = isolated();
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[
            ("MAGG_SESSION_IDLE_TIMEOUT", "6"),
            ("RUST_LOG", "magg=debug,info"),
        ],
    )
    .await;
    let url = magg.url.clone().expect("url");
    let session = open_session_with_roots(&url).await;
    let before = raw_pid(&url, &session, 2).await;
    eventually("the idle session to fall asleep", WAIT, || async {
        magg.logged("idle HTTP session asleep").then_some(())
    })
    .await;
    assert!(alive(before), "a sleeping session keeps its instance");
    let after = raw_pid(&url, &session, 3).await;
    assert_eq!(after, before, "the woken session reaches the same instance");
    // What the instance asks during a call, and on its own, now reaches the woken session.
    assert_eq!(roots_answered(&url, &session, 4).await, "file:///woken");
    roots_answered_later(&magg, &url, &session).await;

    // Left idle past session_idle_timeout, the session ends, and its instance with it.
    eventually("the expired session's instance to end", GONE, || async {
        (!alive(before)).then_some(())
    })
    .await;
    let reply = Conn::open(&url)
        .await
        .post(
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
        )
        .await;
    assert_eq!(reply.status, 404, "the session ended:\n{reply}");
}
