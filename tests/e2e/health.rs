//! Health and readiness for supervisors and load balancers: `GET /healthz` and `GET /readyz`
//! beside `/mcp`, and on the admin listener of `--admin-port`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, eventually, test_backend},
    raw_http::Conn,
};

/// GET `path` of the server at `url` (any path of it): status and JSON body.
async fn get(url: &str, path: &str) -> (u16, Value) {
    let mut conn = Conn::open(url).await;
    let reply = conn.send("GET", path, &[], "").await;
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, body)
}

#[tokio::test]
async fn readiness_waits_for_every_backend_to_finish_its_first_start() {
    // `slow` never answers initialize: it is starting until its init timeout, then failed.
    let config = TempConfig::new(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "slow": test_backend("slow", "slow", &["--hang"]),
    }}));
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("MAGG_BACKEND_INIT_TIMEOUT", "4")],
    )
    .await;
    let url = magg.url.clone().expect("url");

    let (status, body) = get(&url, "/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let (status, body) = get(&url, "/readyz").await;
    assert_eq!(status, 503, "not ready while `slow` starts: {body}");
    assert_eq!(body["status"], json!("not ready"), "{body}");
    assert!(
        body["starting"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("slow"))),
        "readiness names what it waits for: {body}"
    );

    // Once `slow` has failed for good (it is retried in the background), magg is ready: a
    // replica serves its other servers.
    let body = eventually(
        "readiness after the init timeout",
        Duration::from_secs(20),
        || {
            let url = url.clone();
            async move {
                let (status, body) = get(&url, "/readyz").await;
                (status == 200).then_some(body)
            }
        },
    )
    .await;
    assert_eq!(body["status"], json!("ready"), "{body}");
    assert_eq!(body["failed"], json!(["slow"]), "{body}");
    assert_eq!(body["running"], json!(1), "{body}");
    assert_eq!(body["draining"], json!(false), "{body}");
}

#[tokio::test]
async fn the_admin_port_serves_probes_and_nothing_of_mcp() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http_with(
        &config.path,
        &[
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--admin-port",
            "0",
        ],
        &[],
    )
    .await;
    let admin = magg.admin_url().await;
    assert_ne!(Some(&admin), magg.url.as_ref());
    let (status, _) = get(&admin, "/healthz").await;
    assert_eq!(status, 200);
    eventually("ready on the admin port", Duration::from_secs(20), || {
        let admin = admin.clone();
        async move { (get(&admin, "/readyz").await.0 == 200).then_some(()) }
    })
    .await;
    let mut conn = Conn::open(&admin).await;
    let reply = conn
        .send(
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        )
        .await;
    assert_eq!(reply.status, 404, "{reply}");
    assert!(
        String::from_utf8_lossy(&reply.body).contains("MCP is served on the main port"),
        "{reply}"
    );
    // The MCP port still serves MCP.
    assert!(
        magg.http_client()
            .await
            .tool_names()
            .await
            .contains(&"tb_echo".to_owned())
    );
}

#[tokio::test]
async fn a_stdio_magg_answers_probes_on_its_admin_port() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio_with(
        &config.path,
        &["--admin-port", "0", "--admin-host", "127.0.0.1"],
        &[],
    )
    .await;
    let admin = magg.admin_url().await;
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    eventually("ready on the admin port", Duration::from_secs(20), || {
        let admin = admin.clone();
        async move { (get(&admin, "/readyz").await.0 == 200).then_some(()) }
    })
    .await;
    assert!(
        magg.client()
            .tool_names()
            .await
            .contains(&"tb_echo".to_owned())
    );
}
