//! Kits: discovered beside the config, loaded and unloaded through magg's tools, and magg's own
//! resources describing servers and kits.

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, magg_body, test_backend, text};

fn kit_file(config: &TempConfig, name: &str, servers: Value) {
    let dir = config.dir.path().join("kit.d");
    std::fs::create_dir_all(&dir).expect("kit.d");
    let kit = json!({"name": name, "description": format!("{name} test kit"), "author": "tests", "version": "1.0", "servers": servers});
    std::fs::write(dir.join(format!("{name}.json")), kit.to_string()).expect("write kit");
}

#[tokio::test]
async fn kits_load_and_unload_only_what_they_own() {
    let config = TempConfig::new(&json!({"servers": {"mine": test_backend("mine", "mine", &[])}}));
    kit_file(
        &config,
        "alpha",
        json!({"a1": test_backend("a1", "aone", &[]), "shared": test_backend("shared", "shared", &[])}),
    );
    kit_file(
        &config,
        "beta",
        json!({"shared": test_backend("shared", "shared", &[])}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;

    let listed = magg_body(
        &client
            .call("magg_list_kits", json!({}))
            .await
            .expect("list"),
    );
    let kits = &listed["output"]["kits"];
    assert_eq!(kits["alpha"]["loaded"], json!(false), "{listed}");
    assert!(
        kits.get("web").is_some() && kits.get("dev").is_some(),
        "the shipped kits are found: {listed}"
    );

    let loaded = client
        .call("magg_load_kit", json!({"name": "alpha"}))
        .await
        .expect("load");
    assert_eq!(loaded["isError"], json!(false), "{loaded}");
    let body = magg_body(&loaded);
    assert_eq!(
        body["output"]["mounted"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    client.notified("tools/list_changed").await;
    assert_eq!(
        text(
            &client
                .call("aone_echo", json!({"text": "kit"}))
                .await
                .expect("call")
        ),
        "kit"
    );
    assert_eq!(config.read()["servers"]["a1"]["kits"], json!(["alpha"]));

    let again = client
        .call("magg_load_kit", json!({"name": "alpha"}))
        .await
        .expect("load twice");
    assert_eq!(again["isError"], json!(true));

    let beta = client
        .call("magg_load_kit", json!({"name": "beta"}))
        .await
        .expect("load beta");
    assert_eq!(beta["isError"], json!(false), "{beta}");

    let info = magg_body(
        &client
            .call("magg_kit_info", json!({"name": "alpha"}))
            .await
            .expect("info"),
    );
    assert_eq!(info["output"]["loaded"], json!(true), "{info}");

    let resource = client
        .service
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "magg://kits/all",
        ))
        .await
        .expect("kits resource");
    let resource = serde_json::to_value(resource).expect("json");
    let kits: Value =
        serde_json::from_str(resource["contents"][0]["text"].as_str().unwrap_or("{}"))
            .expect("json");
    assert!(
        kits.get("alpha").is_some() && kits.get("beta").is_some(),
        "{kits}"
    );

    let unloaded = client
        .call("magg_unload_kit", json!({"name": "alpha"}))
        .await
        .expect("unload");
    assert_eq!(unloaded["isError"], json!(false), "{unloaded}");
    let file = config.read();
    assert!(
        file["servers"].get("a1").is_none(),
        "a1 belonged only to alpha"
    );
    assert_eq!(
        file["servers"]["shared"]["kits"],
        json!(["beta"]),
        "shared is still beta's"
    );
    assert!(
        file["servers"].get("mine").is_some(),
        "the user's own server stays"
    );
    assert!(!client.tool_names().await.contains(&"aone_echo".to_owned()));
}

#[tokio::test]
async fn unknown_kit_is_an_error_listing_the_available_ones() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let result = magg
        .client()
        .call("magg_load_kit", json!({"name": "nope"}))
        .await
        .expect("load");
    assert_eq!(result["isError"], json!(true));
    assert!(text(&result).contains("web"), "{result}");
}

#[tokio::test]
async fn servers_resources_show_the_config() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = &magg.client().service;
    let resources = client.list_all_resources().await.expect("list");
    assert!(resources.iter().any(|r| r.uri == "magg://servers/all"));
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("templates");
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "magg://server/{name}")
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "magg://server/tb",
        ))
        .await
        .expect("read");
    let read = serde_json::to_value(read).expect("json");
    let server: Value =
        serde_json::from_str(read["contents"][0]["text"].as_str().unwrap_or("{}")).expect("json");
    assert_eq!(server["prefix"], json!("tb"));
    let missing = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "magg://server/nope",
        ))
        .await;
    assert!(missing.is_err());
}
