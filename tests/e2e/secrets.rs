//! Secrets in the config (env values, transport headers such as `Authorization`) are masked
//! wherever a client or a terminal sees the config, and kept as they are in the file and for the
//! backends.

use serde_json::{Value, json};

use crate::{
    cli::magg_on,
    harness::{Magg, TempConfig, magg_body, test_backend, text},
};

const TOKEN: &str = "sk-live-4242";
const BEARER: &str = "Bearer tok-9999";

/// A config with a stdio server that has a secret env value and a (disabled) HTTP server with
/// an `Authorization` header.
fn secret_config() -> TempConfig {
    let mut tb = test_backend("tb", "tb", &[]);
    tb["env"] = json!({"API_TOKEN": TOKEN, "EMPTY": ""});
    TempConfig::new(&json!({"servers": {
        "tb": tb,
        "api": {
            "source": "https://example.com/api",
            "uri": "http://me:pw-1234@127.0.0.1:9/mcp?api_key=key-5678",
            "transport": {"headers": {"Authorization": BEARER}, "keep_alive": true},
            "enabled": false
        }
    }}))
}

fn resource_text(read: &rmcp::model::ReadResourceResult) -> String {
    let read = serde_json::to_value(read).expect("json");
    read["contents"][0]["text"]
        .as_str()
        .expect("text contents")
        .to_owned()
}

#[tokio::test]
async fn server_resources_and_the_proxy_tool_mask_env_and_header_values() {
    let config = secret_config();
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    // The backend itself gets the real value.
    assert_eq!(
        text(
            &client
                .call_eventually("tb_env", json!({"name": "API_TOKEN"}))
                .await
        ),
        TOKEN
    );

    let service = &client.service;
    let all = resource_text(
        &service
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "magg://servers/all",
            ))
            .await
            .expect("read all"),
    );
    assert!(!all.contains(TOKEN) && !all.contains("tok-9999"), "{all}");
    let all: Value = serde_json::from_str(&all).expect("json");
    assert_eq!(all["tb"]["env"], json!({"API_TOKEN": "***", "EMPTY": ""}));
    assert_eq!(
        all["api"]["transport"],
        json!({"headers": {"Authorization": "***"}, "keep_alive": true})
    );
    assert_eq!(
        all["tb"]["args"],
        json!(["--name", "tb"]),
        "the rest is shown"
    );

    let one = resource_text(
        &service
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "magg://server/api",
            ))
            .await
            .expect("read one"),
    );
    assert!(!one.contains("tok-9999"), "{one}");
    let one: Value = serde_json::from_str(&one).expect("json");
    assert_eq!(one["transport"]["headers"]["Authorization"], json!("***"));

    for uri in ["magg://servers/all", "magg://server/tb"] {
        let read = client
            .call(
                "proxy",
                json!({"action": "call", "type": "resource", "path": uri}),
            )
            .await
            .expect("proxy read");
        let shown = read.to_string();
        assert!(
            !shown.contains(TOKEN) && !shown.contains("tok-9999"),
            "{uri}: {shown}"
        );
        assert!(shown.contains("API_TOKEN"), "names are kept: {shown}");
    }

    // A save through magg writes the real values back, never the masks.
    let added = client
        .call(
            "magg_add_server",
            json!({"name": "off", "source": "s", "command": "true", "enable": false}),
        )
        .await
        .expect("add");
    assert_eq!(magg_body(&added)["errors"], json!(null), "{added}");
    let file = config.read();
    assert_eq!(file["servers"]["tb"]["env"]["API_TOKEN"], json!(TOKEN));
    assert_eq!(
        file["servers"]["api"]["transport"]["headers"]["Authorization"],
        json!(BEARER)
    );
}

#[test]
fn cli_output_masks_secrets_unless_asked_to_show_them() {
    let config = secret_config();
    let before = std::fs::read(&config.path).expect("read");
    let commands: [&[&str]; 5] = [
        &["config", "show"],
        &["server", "list", "--json"],
        &["server", "info", "tb"],
        &["server", "info", "api", "--json"],
        &["config", "export"],
    ];
    for args in commands {
        let (code, stdout, stderr) = magg_on(&config, args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            !stdout.contains(TOKEN) && !stdout.contains("tok-9999"),
            "{args:?} shows a secret: {stdout}"
        );
        assert!(stdout.contains("***"), "{args:?}: {stdout}");
        assert!(
            stderr.contains("--show-secrets"),
            "{args:?} says how to see them: {stderr}"
        );

        let mut shown = args.to_vec();
        shown.push("--show-secrets");
        let (code, stdout, stderr) = magg_on(&config, &shown);
        assert_eq!(code, 0, "{shown:?}: {stderr}");
        assert!(
            stdout.contains(TOKEN) || stdout.contains("tok-9999"),
            "{shown:?}: {stdout}"
        );
        assert!(!stdout.contains("***"), "{shown:?}: {stdout}");
    }
    let (_, stdout, _) = magg_on(&config, &["server", "list", "--json"]);
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(listed["servers"]["tb"]["env"]["API_TOKEN"], json!("***"));
    assert_eq!(
        listed["servers"]["api"]["transport"]["headers"]["Authorization"],
        json!("***")
    );
    assert_eq!(
        listed["servers"]["api"]["uri"],
        json!("http://me:***@127.0.0.1:9/mcp?api_key=***")
    );
    let (_, stdout, _) = magg_on(&config, &["config", "export", "--show-secrets"]);
    let exported: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(exported["servers"]["tb"]["env"]["API_TOKEN"], json!(TOKEN));

    // A change from the command line keeps the real values in the file.
    let (code, _, stderr) = magg_on(&config, &["server", "disable", "tb"]);
    assert_eq!(code, 0, "{stderr}");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&config.path).expect("read")).expect("json");
    assert_eq!(file["servers"]["tb"]["env"]["API_TOKEN"], json!(TOKEN));
    assert_ne!(std::fs::read(&config.path).expect("read"), before);
}
