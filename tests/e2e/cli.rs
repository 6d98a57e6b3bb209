//! The command line: version, help on every command, config discovery and listing.

use serde_json::{Value, json};

use crate::harness::{TempConfig, run_cli, test_backend};

#[test]
fn version_and_help_on_every_command() {
    let (code, stdout, _) = run_cli(&["--version"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("magg "), "{stdout}");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["server", "--help"],
        vec!["server", "list", "--help"],
        vec!["config", "--help"],
        vec!["config", "show", "--help"],
        vec!["config", "path", "--help"],
    ] {
        let (code, stdout, _) = run_cli(&args);
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Usage"), "{args:?}: {stdout}");
    }
    let (code, _, stderr) = run_cli(&["serve", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn server_list_json_and_config_path_read_a_magg_config() {
    let mut tb = test_backend("tb", "tb", &[]);
    tb["notes"] = json!("the test backend");
    tb["futureKey"] = json!({"kept": true});
    let config = TempConfig::new(&json!({
        "servers": {"tb": tb, "off": {"source": "x", "command": "true", "enabled": false}},
        "kits": {"demo": {"name": "demo"}},
        "someUnknownSetting": 1
    }));
    let path = config.path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run_cli(&["server", "list", "--json", "--config", &path]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(listed["servers"]["tb"]["prefix"], json!("tb"));
    assert_eq!(listed["servers"]["tb"]["notes"], json!("the test backend"));
    assert_eq!(
        listed["servers"]["tb"]["futureKey"],
        json!({"kept": true}),
        "unknown keys survive"
    );
    assert_eq!(listed["servers"]["off"]["enabled"], json!(false));

    let (code, stdout, _) = run_cli(&["config", "path", "--config", &path]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), path);

    let (code, stdout, _) = run_cli(&["config", "show", "--config", &path]);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown["settings"]["self_prefix"], json!("magg"));
    assert_eq!(shown["exists"], json!(true));
}

#[test]
fn magg_config_path_and_magg_path_are_discovered_in_order() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let out = std::process::Command::new(crate::harness::bin("magg"))
        .args(["config", "path"])
        .env("MAGG_CONFIG_PATH", &config.path)
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        config.path.to_string_lossy()
    );

    let out = std::process::Command::new(crate::harness::bin("magg"))
        .args(["config", "path"])
        .env_remove("MAGG_CONFIG_PATH")
        .env(
            "MAGG_PATH",
            format!("/nonexistent/dir:{}", config.dir.path().display()),
        )
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        config.path.to_string_lossy()
    );
}

#[test]
fn claude_desktop_style_files_are_read_with_variable_interpolation() {
    let config = TempConfig::new(&json!({"mcpServers": {
        "my-files": {"command": "npx", "args": ["-y", "${MAGG_TEST_PKG}"], "env": {"TOKEN": "${MAGG_TEST_TOKEN:-none}"}}
    }}));
    let out = std::process::Command::new(crate::harness::bin("magg"))
        .args(["server", "list", "--json", "--config"])
        .arg(&config.path)
        .env("MAGG_TEST_PKG", "@scope/pkg")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let server = &listed["servers"]["my-files"];
    assert_eq!(server["args"], json!(["-y", "@scope/pkg"]));
    assert_eq!(server["env"]["TOKEN"], json!("none"));
    assert_eq!(server["prefix"], json!("myfiles"));
}
