//! multi-mcp's HTTP management API (`/mcp_servers`, `/mcp_tools`) driven with a plain HTTP
//! client against `magg serve --http`: the changes reach the running servers, connected MCP
//! clients and the config file.

use serde_json::{Value, json};

use crate::{
    harness::{Client, Magg, TempConfig, WAIT, bin, eventually, magg_body, test_backend, text},
    raw_http::{Conn, Reply},
};

/// Sends `method path` with `body` (as JSON when not empty) on a fresh connection.
/// `magg serve --http` with changes over HTTP allowed without authentication.
async fn open_api_magg(config: &std::path::Path) -> Magg {
    Magg::http_with(
        config,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("MAGG_ALLOW_UNAUTHENTICATED_CHANGES", "1")],
    )
    .await
}

async fn request(url: &str, method: &str, path: &str, body: &str) -> Reply {
    let mut conn = Conn::open(url).await;
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("Content-Type", "application/json")]
    };
    conn.send(method, path, headers, body).await
}

/// The JSON body of `reply`, checking its status.
fn body(reply: &Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply}");
    reply.json()
}

/// POSTs `payload` to `/mcp_servers`; the `error` of the answer, whose status must be `status`.
async fn refusal(url: &str, payload: &str, status: u16) -> String {
    let reply = request(url, "POST", "/mcp_servers", payload).await;
    let error = body(&reply, status)["error"].clone();
    error
        .as_str()
        .unwrap_or_else(|| panic!("no error: {reply}"))
        .to_owned()
}

/// Waits until `GET /mcp_servers` lists the one server `tb`.
async fn tb_running(url: &str) {
    eventually("tb to be running", WAIT, || async {
        let listed = body(&request(url, "GET", "/mcp_servers", "").await, 200);
        (listed == json!({"active_servers": ["tb"]})).then_some(())
    })
    .await;
}

/// Adds the server `extra` over the API, as multi-mcp's clients do; it must be added.
async fn add_extra(url: &str) {
    let payload = json!({"mcpServers": {"extra": entry("extra")}}).to_string();
    let added = request(url, "POST", "/mcp_servers", &payload).await;
    assert_eq!(body(&added, 200), json!({"message": "Added ['extra']"}));
}

/// A multi-mcp server entry running the rmcp test backend as `name`.
fn entry(name: &str) -> Value {
    json!({"command": bin("magg-test-backend"), "args": ["--name", name]})
}

#[tokio::test]
async fn servers_added_and_removed_over_the_api_are_served_saved_and_announced() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = open_api_magg(&config.path).await;
    let url = magg.url.clone().expect("url");
    let mut client = Client::http(&url).await;
    client
        .call_eventually("tb_echo", json!({"text": "up"}))
        .await;

    let listed = body(&request(&url, "GET", "/mcp_servers", "").await, 200);
    assert_eq!(listed, json!({"active_servers": ["tb"]}));

    add_extra(&url).await;
    client.notified("tools/list_changed").await;

    let listed = body(&request(&url, "GET", "/mcp_servers", "").await, 200);
    assert_eq!(listed, json!({"active_servers": ["tb", "extra"]}));
    let tools = body(&request(&url, "GET", "/mcp_tools", "").await, 200);
    let extra_tools = tools["tools"]["extra"].as_array().expect("extra's tools");
    assert!(extra_tools.contains(&json!("echo")), "{tools}");
    assert!(
        tools["tools"]["tb"]
            .as_array()
            .expect("tb's tools")
            .contains(&json!("echo"))
    );

    // As in a multi-mcp file, the prefix is the name.
    let echoed = client
        .call("extra_echo", json!({"text": "via the api"}))
        .await
        .expect("extra_echo");
    assert_eq!(text(&echoed), "via the api");
    let saved = config.read();
    assert_eq!(
        saved["servers"]["extra"]["prefix"],
        json!("extra"),
        "{saved}"
    );
    assert_eq!(
        saved["servers"]["extra"]["args"],
        json!(["--name", "extra"])
    );

    let removed = request(&url, "DELETE", "/mcp_servers/extra", "").await;
    assert_eq!(
        body(&removed, 200),
        json!({"message": "Client 'extra' removed successfully"})
    );
    client.notified("tools/list_changed").await;
    assert!(!client.tool_names().await.contains(&"extra_echo".to_owned()));
    assert!(config.read()["servers"].get("extra").is_none());
    let listed = body(&request(&url, "GET", "/mcp_servers", "").await, 200);
    assert_eq!(listed, json!({"active_servers": ["tb"]}));

    let again = request(&url, "DELETE", "/mcp_servers/extra", "").await;
    assert_eq!(
        body(&again, 404),
        json!({"error": "No client named 'extra'"})
    );
    client.close().await;
}

#[tokio::test]
async fn bad_api_requests_are_refused_with_the_reason_and_change_nothing() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let before = config.read();
    let magg = open_api_magg(&config.path).await;
    let url = magg.url.clone().expect("url");
    tb_running(&url).await;

    let missing = request(&url, "POST", "/mcp_servers", r#"{"servers": {}}"#).await;
    assert_eq!(
        body(&missing, 400),
        json!({"error": "Missing 'mcpServers' in payload"})
    );

    let not_json = refusal(&url, r#"{"mcpServers": "#, 400).await;
    assert!(not_json.contains("not JSON"), "{not_json}");

    let no_command = refusal(&url, r#"{"mcpServers": {"broken": {"args": ["x"]}}}"#, 400).await;
    assert!(
        no_command.contains("mcpServers.broken") && no_command.contains("\"command\""),
        "{no_command}"
    );

    let bad_url = r#"{"mcpServers": {"remote": {"url": "ftp://example.com/sse"}}}"#;
    let bad_url = refusal(&url, bad_url, 400).await;
    assert!(
        bad_url.contains("mcpServers.remote.url") && bad_url.contains("ftp"),
        "{bad_url}"
    );

    // A second server whose prefix is taken: the config as a whole would be invalid.
    let clash = json!({"mcpServers": {"t-b": entry("tb2")}}).to_string();
    let clash = refusal(&url, &clash, 400).await;
    assert!(clash.contains("prefix \"tb\""), "{clash}");

    let taken = json!({"mcpServers": {"tb": entry("tb")}}).to_string();
    let taken = refusal(&url, &taken, 409).await;
    assert!(taken.contains("'tb' already exists"), "{taken}");

    let ghost = r#"{"mcpServers": {"ghost": {"command": "/nonexistent/magg-e2e-server"}}}"#;
    let ghost = refusal(&url, ghost, 502).await;
    assert!(ghost.contains("Failed to mount server 'ghost'"), "{ghost}");

    let as_text = Conn::open(&url)
        .await
        .send(
            "POST",
            "/mcp_servers",
            &[("Content-Type", "text/plain")],
            &json!({"mcpServers": {"extra": entry("extra")}}).to_string(),
        )
        .await;
    assert_eq!(as_text.status, 415, "{as_text}");
    let from_a_page = Conn::open(&url)
        .await
        .send(
            "POST",
            "/mcp_servers",
            &[
                ("Content-Type", "application/json"),
                ("Origin", "http://evil.example"),
            ],
            &json!({"mcpServers": {"extra": entry("extra")}}).to_string(),
        )
        .await;
    assert_eq!(from_a_page.status, 403, "{from_a_page}");

    let listed = body(&request(&url, "GET", "/mcp_servers", "").await, 200);
    assert_eq!(
        listed,
        json!({"active_servers": ["tb"]}),
        "tb still runs, alone"
    );
    assert_eq!(config.read(), before);
}

#[tokio::test]
async fn a_read_only_magg_lists_over_the_api_but_refuses_changes() {
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "read_only": true,
    }));
    let before = config.read();
    let magg = open_api_magg(&config.path).await;
    let url = magg.url.clone().expect("url");
    tb_running(&url).await;

    let add = json!({"mcpServers": {"extra": entry("extra")}}).to_string();
    let refused = refusal(&url, &add, 403).await;
    assert!(refused.contains("read-only"), "{refused}");
    let delete = request(&url, "DELETE", "/mcp_servers/tb", "").await;
    let refused = body(&delete, 403)["error"].clone();
    assert!(
        refused.as_str().is_some_and(|e| e.contains("read-only")),
        "{refused}"
    );
    assert_eq!(config.read(), before);
}

/// Without authentication (and without the opt-in) the API lists but refuses changes, saying
/// how to turn authentication on; nothing is added or removed.
#[tokio::test]
async fn without_authentication_the_api_lists_but_refuses_changes() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let before = std::fs::read_to_string(&config.path).expect("config");
    let magg = Magg::http(&config.path, false).await;
    let url = magg.url.clone().expect("url");
    tb_running(&url).await;
    let payload = json!({"mcpServers": {"extra": entry("extra")}}).to_string();
    let added = refusal(&url, &payload, 403).await;
    assert!(added.contains("magg auth init"), "{added}");
    let removed = request(&url, "DELETE", "/mcp_servers/tb", "").await;
    assert_eq!(removed.status, 403, "{removed}");
    let listed = request(&url, "GET", "/mcp_servers", "").await;
    assert_eq!(body(&listed, 200)["active_servers"], json!(["tb"]));
    assert_eq!(
        std::fs::read_to_string(&config.path).expect("config"),
        before
    );
}

#[tokio::test]
async fn a_multi_mcp_file_is_left_as_it_is_and_api_changes_apply_while_magg_runs() {
    // multi-mcp's own config file: mcpServers format, with a ${VAR} reference magg must not lose.
    let backend = bin("magg-test-backend").display().to_string();
    let text = |servers: &str| {
        format!(
            r#"{{"mcpServers": {{{servers}"tb": {{"command": "{backend}", "args": ["--name", "tb"], "env": {{"WHERE": "${{HOME}}"}}}}}}}}"#
        )
    };
    let config = TempConfig::raw(&text(""));
    let magg = open_api_magg(&config.path).await;
    let url = magg.url.clone().expect("url");
    tb_running(&url).await;

    // Added as multi-mcp adds it: running at once, the file untouched.
    add_extra(&url).await;
    let on_disk = std::fs::read_to_string(&config.path).expect("config");
    assert_eq!(on_disk, text(""), "the mcpServers file is not rewritten");
    let tools = body(&request(&url, "GET", "/mcp_tools", "").await, 200);
    assert!(tools["tools"]["extra"].is_array(), "{tools}");
    // magg_add_server too, and it says the server is not saved.
    let client = Client::http(&url).await;
    let added = magg_body(
        &client
            .call(
                "magg_add_server",
                json!({"name": "more", "source": "x", "prefix": "more", "command": backend}),
            )
            .await
            .expect("call"),
    );
    assert_eq!(added["output"]["saved"], json!(false), "{added}");
    assert_eq!(
        std::fs::read_to_string(&config.path).expect("config"),
        text("")
    );

    // A server removed over the API stays removed, and one added stays, when the file changes.
    let removed = request(&url, "DELETE", "/mcp_servers/tb", "").await;
    assert_eq!(
        body(&removed, 200)["message"],
        json!("Client 'tb' removed successfully")
    );
    let other = format!(r#""tc": {{"command": "{backend}", "args": ["--name", "tc"]}}, "#);
    std::fs::write(&config.path, text(&other)).expect("edit the file");
    eventually("the file's new server to run", WAIT, || async {
        let listed = body(&request(&url, "GET", "/mcp_servers", "").await, 200);
        let mut names: Vec<String> = listed["active_servers"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        names.sort();
        (names == ["extra", "more", "tc"]).then_some(())
    })
    .await;
}
