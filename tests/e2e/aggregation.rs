//! Tools, resources, templates, prompts and completion of two real backends under one server.

use std::{collections::BTreeMap, process::Stdio};

use rmcp::ServiceExt as _;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::harness::{
    Magg, RawStdio, TempConfig, WAIT, everything, everything_js, magg_body, test_backend, text,
};

fn two_backends() -> TempConfig {
    TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "ev": everything("ev"),
    }}))
}

#[tokio::test]
async fn tools_of_both_backends_are_listed_under_their_prefixes_and_callable() {
    let config = two_backends();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let names = client.tool_names().await;
    for expected in [
        "magg_list_servers",
        "magg_status",
        "proxy",
        "tb_echo",
        "tb_slow",
        "ev_echo",
        "ev_get-sum",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "echo"),
        "unprefixed names leak: {names:?}"
    );

    let echo = client
        .call("tb_echo", json!({"text": "hi"}))
        .await
        .expect("tb_echo");
    assert_eq!(text(&echo), "hi");
    assert_eq!(echo["structuredContent"], json!({"text": "hi"}));

    let ev = client
        .call("ev_echo", json!({"message": "yo"}))
        .await
        .expect("ev_echo");
    assert_eq!(text(&ev), "Echo: yo");
}

#[tokio::test]
async fn results_pass_through_untouched() {
    let config = two_backends();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let meta = client.call("tb_meta", json!({})).await.expect("tb_meta");
    assert_eq!(meta["_meta"], json!({"test": "result-meta"}));
    assert_eq!(meta["content"][0]["_meta"], json!({"test": "content-meta"}));
    assert_eq!(
        meta["content"][0]["annotations"],
        json!({"audience": ["user"], "priority": 0.5})
    );

    let add = client
        .call("tb_add", json!({"a": 2, "b": 3}))
        .await
        .expect("tb_add");
    assert_eq!(add["structuredContent"], json!({"sum": 5}));

    let fail = client
        .call("tb_fail", json!({"message": "nope"}))
        .await
        .expect("tb_fail");
    assert_eq!(fail["isError"], json!(true));
    assert_eq!(text(&fail), "nope");
}

#[tokio::test]
async fn resources_templates_prompts_and_completion_are_routed() {
    let config = two_backends();
    let mut magg = Magg::stdio(&config.path).await;
    let client = &magg.client().service;

    let resources = client.list_all_resources().await.expect("resources/list");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"test://tb/info"), "{uris:?}");
    assert!(
        uris.iter().any(|u| u.starts_with("demo://ev/")),
        "everything's resources: {uris:?}"
    );

    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://tb/info",
        ))
        .await
        .expect("read test://tb/info");
    let read = serde_json::to_value(read).expect("json");
    assert_eq!(read["contents"][0]["text"], json!(r#"{"server":"tb"}"#));

    let templates = client
        .list_all_resource_templates()
        .await
        .expect("templates");
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "test://tb/item/{id}"),
        "{templates:?}"
    );
    let item = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://tb/item/42",
        ))
        .await
        .expect("read templated resource");
    assert_eq!(
        serde_json::to_value(item).expect("json")["contents"][0]["text"],
        json!("item 42")
    );

    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(prompts.iter().any(|p| p.name == "tb_greet"), "{prompts:?}");
    let mut get = rmcp::model::GetPromptRequestParams::new("tb_greet");
    get.arguments = json!({"name": "Ann"}).as_object().cloned();
    let prompt =
        serde_json::to_value(client.get_prompt(get).await.expect("prompts/get")).expect("json");
    assert_eq!(
        prompt["messages"][0]["content"]["text"],
        json!("Hello, Ann!")
    );

    let values = client
        .complete_prompt_simple("tb_greet", "name", "al")
        .await
        .expect("complete");
    assert_eq!(values, vec!["alice".to_owned(), "albert".to_owned()]);
}

#[tokio::test]
async fn list_changed_is_sent_when_a_backend_arrives_after_initialize() {
    // server-everything (node) takes far longer to start than magg takes to answer initialize.
    let config = TempConfig::new(&json!({"servers": {"ev": everything("ev")}}));
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_LIST_WAIT", "0")]).await;
    let client = magg.client();
    client.notified("tools/list_changed").await;
    let names = client.tool_names().await;
    assert!(names.iter().any(|n| n == "ev_echo"), "{names:?}");
}

#[tokio::test]
async fn pagination_is_followed_on_the_backend_side_and_offered_on_ours() {
    let config = TempConfig::new(&json!({"servers": {
        "paged": test_backend("paged", "pg", &["--page-size", "2", "--tools", "5"]),
        "big": test_backend("big", "big", &["--tools", "1200"]),
    }}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let first = client.service.list_tools(None).await.expect("first page");
    assert_eq!(first.tools.len(), 1000);
    assert!(first.next_cursor.is_some(), "magg pages a long list");
    let names = client.tool_names().await;
    assert!(
        names.iter().any(|n| n == "pg_gen_4"),
        "all pages of a paginating backend"
    );
    assert!(
        names.iter().any(|n| n == "big_gen_1199"),
        "every page of magg's own list"
    );
    let bad = client
        .service
        .list_tools(Some(
            rmcp::model::PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        ))
        .await;
    assert!(bad.is_err(), "a cursor magg never gave out is refused");
}

#[tokio::test]
async fn list_servers_and_status_report_each_backend() {
    let config = two_backends();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await; // waits for the backends to start
    let servers = magg_body(
        &client
            .call("magg_list_servers", json!({}))
            .await
            .expect("list"),
    );
    assert_eq!(servers["errors"], json!(null));
    let tb = servers["output"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == "tb")
        .cloned()
        .expect("tb listed");
    assert_eq!(tb["prefix"], json!("tb"));
    assert_eq!(tb["mounted"], json!(true));
    assert_eq!(tb["status"], json!("running"));

    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    assert_eq!(status["output"]["servers"]["total"], json!(2));
    assert_eq!(status["output"]["servers"]["mounted"], json!(2));
    assert_eq!(status["output"]["prefixes"]["ev"], json!("ev"));
    assert!(status["output"]["tools"]["total"].as_u64().unwrap_or(0) > 20);
}

#[tokio::test]
async fn backend_env_and_cwd_come_from_the_config_with_a_minimal_inherited_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let mut tb = test_backend("tb", "tb", &[]);
    tb["env"] = json!({"GREETING": "hello"});
    tb["cwd"] = json!(dir.path());
    let config = TempConfig::new(&json!({"servers": {"tb": tb}}));
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_TEST_SECRET", "leak")]).await;
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("tb_env", json!({"name": "GREETING"}))
                .await
        ),
        "hello"
    );
    assert_eq!(
        text(
            &client
                .call("tb_env", json!({"name": "MAGG_TEST_SECRET"}))
                .await
                .expect("env")
        ),
        "<unset>"
    );
    assert!(
        text(
            &client
                .call("tb_env", json!({"name": "PATH"}))
                .await
                .expect("env")
        ) != "<unset>"
    );
    let cwd = text(&client.call("tb_cwd", json!({})).await.expect("cwd")).to_owned();
    assert_eq!(
        std::fs::canonicalize(cwd).ok(),
        std::fs::canonicalize(dir.path()).ok()
    );
}

/// The listed tools named with `prefix`, keyed by their names without it, without the name.
fn by_original_name(tools: &[Value], prefix: &str) -> BTreeMap<String, Value> {
    tools
        .iter()
        .filter_map(|tool| {
            let mut tool = tool.clone();
            let name = tool.as_object_mut()?.remove("name")?;
            let name = name.as_str()?.strip_prefix(prefix)?.to_owned();
            Some((name, tool))
        })
        .collect()
}

/// `listed` restricted to the names of `expected` (magg declares more client capabilities than
/// a bare client, and server-everything offers more tools then).
fn same_tools(listed: BTreeMap<String, Value>, expected: &BTreeMap<String, Value>) {
    let listed: BTreeMap<String, Value> = listed
        .into_iter()
        .filter(|(name, _)| expected.contains_key(name))
        .collect();
    assert_eq!(&listed, expected);
}

/// server-everything on stdio, spoken to directly.
fn spawn_everything() -> tokio::process::Child {
    Command::new("node")
        .arg(everything_js())
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server-everything")
}

/// server-everything's tools as it writes them on stdio, read as plain JSON lines.
async fn everything_tools_as_sent() -> Vec<Value> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let mut server = spawn_everything();
    let mut stdin = server.stdin.take().expect("stdin");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    ];
    for request in requests {
        stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .expect("write");
    }
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let message: Value = serde_json::from_str(&line).expect("JSON line");
            if message["id"] == json!(2) {
                return message["result"]["tools"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
        panic!("server-everything closed before listing its tools");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("tools listed in time")
}

#[tokio::test]
async fn tools_are_listed_as_their_server_lists_them_over_stdio_and_http() {
    let mut direct = spawn_everything();
    let stdout = direct.stdout.take().expect("stdout");
    let stdin = direct.stdin.take().expect("stdin");
    let client = tokio::time::timeout(WAIT, ().serve((stdout, stdin)))
        .await
        .expect("initialize in time")
        .expect("initialize");
    let tools: Vec<Value> = client
        .list_all_tools()
        .await
        .expect("list")
        .iter()
        .map(|t| serde_json::to_value(t).expect("json"))
        .collect();
    let expected = by_original_name(&tools, "");
    assert!(expected.len() > 5, "{expected:?}");

    // A stdio client gets each tool exactly as the server sent it, members rmcp's types do not
    // know included (server-everything's `execution`).
    let config = TempConfig::new(&json!({"servers": {"ev": everything("ev")}}));
    let mut raw = RawStdio::start(&config.path, &[]).await;
    raw.initialize().await;
    let listed = raw.request(json!(1), "tools/list", json!({})).await;
    let on_stdio = listed["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let as_sent = by_original_name(&everything_tools_as_sent().await, "");
    assert!(
        as_sent.values().any(|tool| tool.get("execution").is_some()),
        "server-everything no longer sends a member rmcp drops: {as_sent:?}"
    );
    same_tools(by_original_name(&on_stdio, "ev_"), &as_sent);

    let magg = Magg::http(&config.path, false).await;
    let http = magg.http_client().await;
    let on_http: Vec<Value> = http
        .service
        .list_all_tools()
        .await
        .expect("list over HTTP")
        .iter()
        .map(|t| serde_json::to_value(t).expect("json"))
        .collect();
    same_tools(by_original_name(&on_http, "ev_"), &expected);
}
