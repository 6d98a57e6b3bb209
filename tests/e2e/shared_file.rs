//! Two magg processes on one config file (two desktop clients, each running `magg serve` on
//! `~/.magg/config.json`): every change either makes is kept, and each picks up the other's.

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{Magg, TempConfig, WAIT, eventually, magg_body};

const EACH: usize = 20;

/// Adds `EACH` servers named `{who}{i}` through `magg_add_server`, all at once.
async fn add_servers(magg: &mut Magg, who: &'static str) -> JoinSet<Value> {
    let peer = magg.client().service.peer().clone();
    let mut calls = JoinSet::new();
    for i in 0..EACH {
        let peer = peer.clone();
        calls.spawn(async move {
            let args = json!({
                "name": format!("{who}{i}"),
                "source": "tests/shared_file",
                "prefix": format!("{who}{i}"),
                "command": "true",
                "enable": false,
            })
            .as_object()
            .cloned()
            .expect("an object");
            let result = peer
                .call_tool(
                    CallToolRequestParams::new("magg_add_server".to_owned()).with_arguments(args),
                )
                .await
                .expect("magg_add_server");
            serde_json::to_value(result).expect("json")
        });
    }
    calls
}

fn listed(result: &Value) -> Vec<String> {
    let mut names: Vec<String> = magg_body(result)["output"]
        .as_array()
        .map(|servers| {
            servers
                .iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn two_maggs_adding_servers_to_one_file_lose_nothing() {
    let config = TempConfig::new(&json!({"servers": {}, "myOwnKey": 1}));
    let mut one = Magg::stdio(&config.path).await;
    let mut two = Magg::stdio(&config.path).await;
    one.client().tool_names().await;
    two.client().tool_names().await;

    let from_one = add_servers(&mut one, "a").await;
    let from_two = add_servers(&mut two, "b").await;
    let mut results = Vec::new();
    for mut set in [from_one, from_two] {
        while let Some(result) = set.join_next().await {
            results.push(result.expect("task"));
        }
    }
    for result in &results {
        assert_eq!(magg_body(result)["errors"], json!(null), "{result}");
    }

    let mut expected: Vec<String> = (0..EACH)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.sort();
    let file = config.read();
    let mut on_disk: Vec<String> = file["servers"]
        .as_object()
        .expect("servers")
        .keys()
        .cloned()
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, expected, "the file holds every server both added");
    assert_eq!(file["myOwnKey"], json!(1));

    for magg in [&mut one, &mut two] {
        let client = magg.client();
        eventually("each magg listing all 40 servers", WAIT, || async {
            let result = client
                .call("magg_list_servers", json!({}))
                .await
                .expect("list");
            (listed(&result) == expected).then_some(())
        })
        .await;
    }

    // Each removing a server the other added, at once, also loses nothing.
    let one_client = one.take_client();
    let two_client = two.take_client();
    let (removed_b, removed_a) = tokio::join!(
        one_client.call("magg_remove_server", json!({"name": "b3"})),
        two_client.call("magg_remove_server", json!({"name": "a5"})),
    );
    assert_eq!(removed_b.expect("remove")["isError"], json!(false));
    assert_eq!(removed_a.expect("remove")["isError"], json!(false));
    let file = config.read();
    let servers = file["servers"].as_object().expect("servers");
    assert!(
        !servers.contains_key("b3") && !servers.contains_key("a5"),
        "{file}"
    );
    assert_eq!(servers.len(), 2 * EACH - 2);
}
