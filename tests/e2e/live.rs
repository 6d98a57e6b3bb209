//! Live management: tools that change the set of servers, hot reload of the config file, and
//! list_changed for every change.

use serde_json::json;

use crate::harness::{Magg, TempConfig, magg_body, test_backend, test_backend_command, text};

#[tokio::test]
async fn add_enable_disable_and_remove_change_the_running_set_and_the_file() {
    let config = TempConfig::new(
        &json!({"servers": {"keep": test_backend("keep", "keep", &[])}, "myOwnKey": 7}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;

    let command = test_backend_command("tb");
    let added = client
        .call("magg_add_server", json!({"name": "tb", "source": "test", "prefix": "tb", "command": command, "env": {"GREETING": "hi"}}))
        .await
        .expect("add");
    let body = magg_body(&added);
    assert_eq!(body["errors"], json!(null), "{body}");
    assert_eq!(body["output"]["server"]["mounted"], json!(true));
    client.notified("tools/list_changed").await;
    assert_eq!(
        text(
            &client
                .call("tb_env", json!({"name": "GREETING"}))
                .await
                .expect("call")
        ),
        "hi"
    );

    let file = config.read();
    assert_eq!(file["servers"]["tb"]["args"], json!(["--name", "tb"]));
    assert_eq!(
        file["myOwnKey"],
        json!(7),
        "keys magg does not know survive a save"
    );

    let again = client
        .call(
            "magg_add_server",
            json!({"name": "tb", "source": "x", "command": "true"}),
        )
        .await
        .expect("add");
    assert_eq!(
        again["isError"],
        json!(true),
        "a duplicate is an error result"
    );
    assert!(text(&again).contains("already exists"));

    let disabled = client
        .call("magg_disable_server", json!({"name": "tb"}))
        .await
        .expect("disable");
    assert_eq!(disabled["isError"], json!(false), "{disabled}");
    assert!(!client.tool_names().await.contains(&"tb_echo".to_owned()));
    assert_eq!(config.read()["servers"]["tb"]["enabled"], json!(false));

    let enabled = client
        .call("magg_enable_server", json!({"name": "tb"}))
        .await
        .expect("enable");
    assert_eq!(
        magg_body(&enabled)["output"]["mounted"],
        json!(true),
        "{enabled}"
    );
    assert!(client.tool_names().await.contains(&"tb_echo".to_owned()));

    let removed = client
        .call("magg_remove_server", json!({"name": "tb"}))
        .await
        .expect("remove");
    assert_eq!(removed["isError"], json!(false));
    assert!(config.read()["servers"].get("tb").is_none());
    let unknown = client
        .call("magg_remove_server", json!({"name": "tb"}))
        .await
        .expect("remove again");
    assert_eq!(unknown["isError"], json!(true));

    // magg's own saves never come back as reloads: after one edit by hand, exactly one applies.
    let mut edited = config.read();
    edited["servers"]["keep"]["notes"] = json!("edited by hand");
    config.write(&edited);
    magg.wait_for_log("config file changed; applied").await;
    let applied = magg
        .log
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.contains("config file changed; applied"))
        .count();
    assert_eq!(applied, 1, "only the hand edit was reloaded");
}

#[tokio::test]
async fn a_server_that_cannot_start_is_not_added() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let result = client
        .call(
            "magg_add_server",
            json!({"name": "broken", "source": "x", "command": "/nonexistent/server --flag"}),
        )
        .await
        .expect("add");
    assert_eq!(result["isError"], json!(true));
    assert!(text(&result).contains("could not start"), "{result}");
    assert!(config.read()["servers"].get("broken").is_none());
}

#[tokio::test]
async fn read_only_mode_refuses_every_change() {
    let config = TempConfig::new(
        &json!({"read_only": true, "servers": {"tb": test_backend("tb", "tb", &[])}}),
    );
    let before = std::fs::read_to_string(&config.path).expect("read");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    for (tool, args) in [
        (
            "magg_add_server",
            json!({"name": "x", "source": "x", "command": "true"}),
        ),
        ("magg_remove_server", json!({"name": "tb"})),
        ("magg_disable_server", json!({"name": "tb"})),
    ] {
        let result = client.call(tool, args).await.expect("result");
        assert_eq!(result["isError"], json!(true), "{tool}");
        assert!(text(&result).contains("read-only"), "{tool}: {result}");
    }
    assert_eq!(std::fs::read_to_string(&config.path).expect("read"), before);
}

#[tokio::test]
async fn editing_the_file_restarts_only_what_changed_and_notifies() {
    let config = TempConfig::new(&json!({"servers": {
        "keep": test_backend("keep", "keep", &[]),
        "change": test_backend("change", "chg", &[]),
    }}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let keep_pid = text(&client.call_eventually("keep_pid", json!({})).await).to_owned();
    let change_pid = text(&client.call_eventually("chg_pid", json!({})).await).to_owned();

    let mut edited = config.read();
    edited["servers"]["change"]["env"] = json!({"GREETING": "changed"});
    edited["servers"]["new"] = test_backend("new", "new", &[]);
    config.write(&edited);

    client.notified("tools/list_changed").await;
    let fresh = text(
        &client
            .call_eventually("new_echo", json!({"text": "n"}))
            .await,
    )
    .to_owned();
    assert_eq!(fresh, "n");
    let greeting = client
        .call_eventually("chg_env", json!({"name": "GREETING"}))
        .await;
    assert_eq!(text(&greeting), "changed");
    assert_ne!(
        text(&client.call("chg_pid", json!({})).await.expect("pid")),
        change_pid,
        "the changed server restarted"
    );
    assert_eq!(
        text(&client.call("keep_pid", json!({})).await.expect("pid")),
        keep_pid,
        "the untouched server kept its process"
    );

    let mut removed = config.read();
    removed["servers"]
        .as_object_mut()
        .expect("servers")
        .remove("new");
    config.write(&removed);
    client.notified("tools/list_changed").await;
    crate::harness::eventually(
        "new_echo leaving the list",
        crate::harness::WAIT,
        || async { (!client.tool_names().await.contains(&"new_echo".to_owned())).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_broken_edit_changes_nothing_and_status_says_why() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let pid = text(&client.call_eventually("tb_pid", json!({})).await).to_owned();
    std::fs::write(
        &config.path,
        "{\"servers\": {\"tb\": {\"source\": \"x\", \"command\": 5}}}",
    )
    .expect("write");
    magg.wait_for_log("config reload rejected").await;
    let client = magg.client();
    assert_eq!(
        text(&client.call("tb_pid", json!({})).await.expect("pid")),
        pid,
        "the running set stays"
    );
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let error = status["output"]["config"]["last_reload_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("servers.tb.command"), "{status}");

    // A change made through magg is refused too while the file is broken, and the file is kept.
    let add = client
        .call(
            "magg_add_server",
            json!({"name": "x", "source": "x", "command": "true"}),
        )
        .await
        .expect("add");
    assert_eq!(add["isError"], json!(true));
    assert!(
        std::fs::read_to_string(&config.path)
            .expect("read")
            .contains("\"command\": 5")
    );
}

#[tokio::test]
async fn sighup_applies_the_file_even_without_the_file_watch() {
    let config = TempConfig::new(&json!({"auto_reload": false, "servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    config.write(&json!({"auto_reload": false, "servers": {"tb": test_backend("tb", "tb", &[])}}));
    let pid = magg.child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("tb_echo", json!({"text": "hup"}))
                .await
        ),
        "hup"
    );

    let refused = client
        .call("magg_reload_config", json!({}))
        .await
        .expect("reload");
    assert_eq!(
        refused["isError"],
        json!(true),
        "auto_reload false disables the reload tool, as in Magg"
    );
}

#[tokio::test]
async fn check_reports_healthy_servers_and_the_reload_tool_applies_the_file() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let report = magg_body(&client.call("magg_check", json!({})).await.expect("check"));
    assert_eq!(report["output"]["healthy"], json!(1), "{report}");
    assert_eq!(
        report["output"]["results"]["tb"]["status"],
        json!("healthy")
    );

    let reloaded = client
        .call("magg_reload_config", json!({}))
        .await
        .expect("reload");
    assert_eq!(reloaded["isError"], json!(false), "{reloaded}");
    assert_eq!(
        magg_body(&reloaded)["output"]["message"],
        json!("Configuration reloaded successfully")
    );
}

#[tokio::test]
async fn a_backends_own_list_changed_reaches_the_client_with_the_new_tool() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let grown = client
        .call("tb_grow", json!({"name": "fresh"}))
        .await
        .expect("grow");
    assert_eq!(text(&grown), "added fresh");
    client.notified("tools/list_changed").await;
    crate::harness::eventually(
        "tb_fresh appearing in the list",
        crate::harness::WAIT,
        || async {
            client
                .tool_names()
                .await
                .contains(&"tb_fresh".to_owned())
                .then_some(())
        },
    )
    .await;
    let called = client
        .call("tb_fresh", json!({"value": "v"}))
        .await
        .expect("call");
    assert!(text(&called).contains("\"v\""), "{called}");
}

/// Files other than the config in its directory (a log written there, say) are not the watch's
/// business: at trace level nothing about them reaches magg's log. (The watch's own trace
/// lines, one per event, fed a log kept in that directory back into the watch: 100 % CPU.)
#[tokio::test]
async fn other_files_beside_the_config_are_not_watched_even_at_trace_level() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg =
        Magg::stdio_with(&config.path, &["--log-level", "trace"], &[("RUST_LOG", "")]).await;
    magg.client().tool_names().await;
    let other = config.dir.path().join("magg-other.log");
    for i in 0..50 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&other)
            .expect("open");
        std::io::Write::write_all(&mut file, format!("line {i}\n").as_bytes()).expect("write");
    }
    // An edit of the config itself is still picked up; its log line comes after anything
    // logged about the writes above.
    config.write(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    magg.wait_for_log("config file changed; applied").await;
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("tb_echo", json!({"text": "t"}))
                .await
        ),
        "t"
    );
    let mentions: Vec<String> = magg
        .log
        .lock()
        .expect("log lock")
        .iter()
        .filter(|line| line.contains("magg-other.log"))
        .cloned()
        .collect();
    assert!(
        mentions.is_empty(),
        "magg reacted to a file that is not its config: {mentions:#?}"
    );
}

/// `reload_use_watchdog: false` polls the file every `reload_poll_interval` seconds, as in
/// Magg; polling follows a config that is a symbolic link to a file in another directory,
/// whose edits a watch of the link's directory never sees.
#[tokio::test]
async fn reload_use_watchdog_false_polls_the_file_and_follows_a_symlink() {
    let settings = json!({"reload_use_watchdog": false, "reload_poll_interval": 0.1});
    let mut first = settings.clone();
    first["servers"] = json!({});
    let real = TempConfig::new(&first);
    let links = tempfile::tempdir().expect("temp dir");
    let link = links.path().join("config.json");
    std::os::unix::fs::symlink(&real.path, &link).expect("symlink");
    let mut magg = Magg::stdio(&link).await;
    magg.client().tool_names().await;

    let mut edited = settings;
    edited["servers"] = json!({"tb": test_backend("tb", "tb", &[])});
    std::fs::write(
        &real.path,
        serde_json::to_string_pretty(&edited).expect("json"),
    )
    .expect("write in place");
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("tb_echo", json!({"text": "polled"}))
                .await
        ),
        "polled"
    );
}

/// `auto_reload: false` starts no watch of the config file, neither by notifications nor by
/// polling (the lines saying so come before the banner).
#[tokio::test]
async fn auto_reload_false_starts_neither_a_watch_nor_polling() {
    let cases = [
        (json!({}), Some("for changes to the config file")),
        (
            json!({"reload_use_watchdog": false}),
            Some("polling the config"),
        ),
        (json!({"auto_reload": false}), None),
        (
            json!({"auto_reload": false, "reload_use_watchdog": false}),
            None,
        ),
    ];
    for (settings, expected) in cases {
        let mut file = settings.clone();
        file["servers"] = json!({});
        let config = TempConfig::new(&file);
        let magg = Magg::stdio_with(&config.path, &[], &[("RUST_LOG", "magg=debug")]).await;
        magg.wait_for_log("serving on stdio").await;
        let started: Vec<&str> = ["for changes to the config file", "polling the config"]
            .into_iter()
            .filter(|line| magg.logged(line))
            .collect();
        assert_eq!(
            started,
            expected.into_iter().collect::<Vec<_>>(),
            "settings {settings}"
        );
    }
}

#[tokio::test]
async fn add_server_takes_args_after_the_command_as_a_config_file_holds_them() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    let program = test_backend("tb", "tb", &[])["command"].clone();

    // Without a command, or with arguments that are not strings: an error that says so, and
    // nothing saved.
    let alone = client
        .call(
            "magg_add_server",
            json!({"name": "tb", "source": "test", "args": ["--name", "tb"]}),
        )
        .await
        .expect("add");
    assert_eq!(alone["isError"], json!(true), "{alone}");
    assert!(text(&alone).contains("'args' needs a 'command'"), "{alone}");
    let numbers = client
        .call(
            "magg_add_server",
            json!({"name": "tb", "source": "test", "command": program, "args": [1, 2]}),
        )
        .await;
    let refused = match numbers {
        Ok(result) => {
            assert_eq!(result["isError"], json!(true), "{result}");
            text(&result).to_owned()
        }
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("args"), "{refused}");
    assert!(config.read()["servers"].get("tb").is_none());

    // The program in `command`, the rest in `args`: the server runs with them.
    let added = client
        .call(
            "magg_add_server",
            json!({"name": "tb", "source": "test", "prefix": "tb", "command": program, "args": ["--name", "from-args"]}),
        )
        .await
        .expect("add");
    assert_ne!(added["isError"], json!(true), "{added}");
    client.notified("tools/list_changed").await;
    let info = client
        .service
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://tb/info",
        ))
        .await
        .expect("read info");
    let info = serde_json::to_string(&info).expect("json");
    assert!(info.contains("from-args"), "{info}");
    assert_eq!(
        config.read()["servers"]["tb"]["args"],
        json!(["--name", "from-args"])
    );
}

#[tokio::test]
async fn a_servers_tools_are_listed_and_callable_as_soon_as_it_is_added() {
    // A tool filter makes every rebuild of the catalog take a while, so a call made right after
    // magg_add_server returns would find the catalog without the new server if the add did not
    // wait for it.
    let config = TempConfig::new(&json!({"servers": {},
        "plugins": {"tool-filter": {"settings": {"describe": {"s0_echo": "Echo."}}}}}));
    config.install_plugin("tool-filter", "tool-filter");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;
    for i in 0..6 {
        let name = format!("s{i}");
        let added = client
            .call(
                "magg_add_server",
                json!({"name": name, "source": "test", "prefix": name,
                       "command": test_backend_command(&name)}),
            )
            .await
            .expect("add");
        assert_eq!(
            magg_body(&added)["output"]["server"]["mounted"],
            json!(true),
            "{added}"
        );
        let echoed = client
            .call(&format!("{name}_echo"), json!({"text": name}))
            .await
            .unwrap_or_else(|e| panic!("{name}_echo right after the add: {e}"));
        assert_eq!(text(&echoed), name);
        let names = client.tool_names().await;
        assert!(names.contains(&format!("{name}_add")), "{names:?}");

        let disabled = client
            .call("magg_disable_server", json!({"name": name}))
            .await
            .expect("disable");
        assert_eq!(disabled["isError"], json!(false), "{disabled}");
        let enabled = client
            .call("magg_enable_server", json!({"name": name}))
            .await
            .expect("enable");
        assert_eq!(
            magg_body(&enabled)["output"]["mounted"],
            json!(true),
            "{enabled}"
        );
        let echoed = client
            .call(&format!("{name}_echo"), json!({"text": "back"}))
            .await
            .unwrap_or_else(|e| panic!("{name}_echo right after enabling: {e}"));
        assert_eq!(text(&echoed), "back");
    }
}
