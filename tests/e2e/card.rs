//! magg's own server card: `GET /.well-known/mcp/server-card.json` describes magg, how to
//! connect to it, and what it aggregates, to any client.

use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, test_backend},
    raw_http::Conn,
};

#[tokio::test]
async fn the_server_card_describes_magg_and_what_it_aggregates() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    // Once the backend is up, its tools are in the card.
    magg.http_client().await.tool_names().await;
    let url = magg.url.clone().expect("http url");
    let mut conn = Conn::open(&url).await;
    for path in [
        "/.well-known/mcp/server-card.json",
        "/.well-known/mcp/server-card",
    ] {
        let reply = conn.send("GET", path, &[], "").await;
        assert_eq!(reply.status, 200, "{reply}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        let card: Value = serde_json::from_slice(&reply.body).expect("a JSON card");
        assert_eq!(card["title"], json!("magg"), "{card}");
        assert!(card["version"].is_string(), "{card}");
        let remotes = card["remotes"].as_array().expect("remotes");
        let streamable = remotes
            .iter()
            .find(|r| r["type"] == json!("streamable-http"))
            .expect("a streamable-http remote");
        assert_eq!(streamable["url"], json!(url), "{card}");
        assert!(
            remotes.iter().any(|r| r["type"] == json!("sse")
                && r["url"].as_str().is_some_and(|u| u.ends_with("/sse"))),
            "{card}"
        );
        let tools: Vec<&str> = card["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(tools.contains(&"tb_echo"), "{tools:?}");
        assert!(tools.contains(&"magg_search_servers"), "{tools:?}");
        let servers = &card["_meta"]["magg"]["servers"];
        assert_eq!(servers[0]["name"], json!("tb"), "{card}");
        assert_eq!(servers[0]["running"], json!(true), "{card}");
    }
    // A page of another origin cannot read a local magg's catalog (unless `allowed_origins`
    // names it), as it cannot talk to /mcp.
    let from_a_page = conn
        .send(
            "GET",
            "/.well-known/mcp/server-card.json",
            &[("Origin", "https://example.com")],
            "",
        )
        .await;
    assert_eq!(from_a_page.status, 403, "{from_a_page}");
    assert!(from_a_page.text().contains("Origin"), "{from_a_page}");
    // A card is read-only: other methods are not served there.
    let posted = conn
        .send("POST", "/.well-known/mcp/server-card.json", &[], "{}")
        .await;
    assert_eq!(posted.status, 405, "{posted}");
}
