//! The command line: version, help on every command, config discovery and listing.

use serde_json::{Value, json};

use crate::harness::{TempConfig, run_cli, run_cli_env, test_backend};

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
        .args(["server", "list", "--json", "--show-secrets", "--config"])
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

/// Runs `magg <args> --config <config>`.
pub(crate) fn magg_on(config: &TempConfig, args: &[&str]) -> (i32, String, String) {
    let path = config.path.to_string_lossy().into_owned();
    let mut all = args.to_vec();
    all.extend(["--config", &path]);
    run_cli(&all)
}

fn file_json(config: &TempConfig) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&config.path).expect("read config"))
        .expect("config is JSON")
}

fn file_bytes(config: &TempConfig) -> Vec<u8> {
    std::fs::read(&config.path).expect("read config")
}

/// The test backend's command line, for `--command`.
#[test]
fn help_on_the_management_commands() {
    for args in [
        vec!["server", "add", "--help"],
        vec!["server", "update", "--help"],
        vec!["server", "remove", "--help"],
        vec!["server", "enable", "--help"],
        vec!["server", "disable", "--help"],
        vec!["server", "info", "--help"],
        vec!["kit", "--help"],
        vec!["kit", "list", "--help"],
        vec!["kit", "load", "--help"],
        vec!["kit", "unload", "--help"],
        vec!["kit", "info", "--help"],
        vec!["kit", "export", "--help"],
        vec!["config", "export", "--help"],
    ] {
        let (code, stdout, stderr) = run_cli(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stdout.contains("Usage"), "{args:?}: {stdout}");
    }
    let (_, stdout, _) = run_cli(&["server", "add", "--help"]);
    for flag in [
        "--prefix",
        "--command",
        "--uri",
        "--env",
        "--cwd",
        "--notes",
        "--transport",
        "--disable",
    ] {
        assert!(stdout.contains(flag), "{flag}: {stdout}");
    }
    let (_, stdout, _) = run_cli(&["server", "update", "--help"]);
    assert!(stdout.contains("Pass an empty value"), "{stdout}");
    let (_, stdout, _) = run_cli(&["kit", "export", "--help"]);
    assert!(
        stdout.contains("--version <VERSION>") && stdout.contains("-o, --output"),
        "{stdout}"
    );
    let (code, _, stderr) = run_cli(&["server", "add", "onlyname"]);
    assert_eq!(code, 2, "a missing argument is a usage error");
    assert!(stderr.contains("SOURCE"), "{stderr}");
}

#[test]
fn server_add_update_enable_disable_info_remove_round_trip() {
    let config = TempConfig::new(&json!({
        "servers": {"keep": {"source": "s", "command": "true", "futureKey": {"kept": true}}},
        "myTopKey": 7
    }));
    let dir = config.dir.path().to_string_lossy().into_owned();
    let command = crate::harness::test_backend_command("tb");
    let bin = crate::harness::bin("magg-test-backend")
        .to_string_lossy()
        .into_owned();
    let unknown_keys_survive = |file: &Value| {
        assert_eq!(file["myTopKey"], json!(7), "{file}");
        assert_eq!(
            file["servers"]["keep"],
            json!({"source": "s", "command": "true", "futureKey": {"kept": true}}),
            "{file}"
        );
    };

    // add
    let (code, stdout, stderr) = magg_on(
        &config,
        &[
            "server",
            "add",
            "tb",
            "tests/fixtures/test-backend",
            "--prefix",
            "tb",
            "--command",
            &command,
            "--env",
            "GREETING=hi",
            "EQ=a=b",
            "--cwd",
            &dir,
            "--notes",
            "the test backend",
            "--transport",
            r#"{"keep_alive": true}"#,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Added server 'tb'"), "{stdout}");
    assert!(stdout.contains("Prefix: tb"), "{stdout}");
    let file = file_json(&config);
    assert_eq!(
        file["servers"]["tb"],
        json!({
            "source": "tests/fixtures/test-backend",
            "prefix": "tb",
            "notes": "the test backend",
            "command": bin,
            "args": ["--name", "tb"],
            "env": {"GREETING": "hi", "EQ": "a=b"},
            "cwd": dir,
            "transport": {"keep_alive": true}
        })
    );
    unknown_keys_survive(&file);

    // refused adds leave the file as it is
    let before = file_bytes(&config);
    for (args, expected) in [
        (
            vec!["server", "add", "tb", "x", "--command", "true"],
            "already exists",
        ),
        (vec!["server", "add", "none", "x"], "--command or --uri"),
        (
            vec![
                "server",
                "add",
                "bad",
                "x",
                "--command",
                "true",
                "--env",
                "NOEQUALS",
            ],
            "KEY=VALUE",
        ),
        (
            vec!["server", "add", "bad", "x", "--command", "a 'b"],
            "Invalid command",
        ),
        (
            vec![
                "server",
                "add",
                "bad",
                "x",
                "--command",
                "true",
                "--transport",
                "[1]",
            ],
            "JSON object",
        ),
        (
            vec![
                "server",
                "add",
                "bad",
                "x",
                "--command",
                "true",
                "--prefix",
                "tb",
            ],
            "also used by enabled server",
        ),
        (
            vec![
                "server",
                "add",
                "bad",
                "x",
                "--command",
                "true",
                "--prefix",
                "no_way",
            ],
            "not a valid prefix",
        ),
    ] {
        let (code, _, stderr) = magg_on(&config, &args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(file_bytes(&config), before, "refused adds change nothing");

    // update
    let (code, stdout, stderr) = magg_on(
        &config,
        &[
            "server",
            "update",
            "tb",
            "--prefix",
            "tbtwo",
            "--env",
            "ONLY=1",
            "--notes",
            "",
            "--transport",
            "",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Updated server 'tb' (prefix, env, notes, transport)"),
        "{stdout}"
    );
    let file = file_json(&config);
    let tb = &file["servers"]["tb"];
    assert_eq!(tb["prefix"], json!("tbtwo"));
    assert_eq!(tb["env"], json!({"ONLY": "1"}));
    assert!(
        tb.get("notes").is_none() && tb.get("transport").is_none(),
        "{tb}"
    );
    assert_eq!(tb["args"], json!(["--name", "tb"]), "untouched fields stay");
    unknown_keys_survive(&file);

    let (code, _, stderr) = magg_on(&config, &["server", "update", "tb", "--env", "--cwd", ""]);
    assert_eq!(code, 0, "{stderr}");
    let tb = file_json(&config)["servers"]["tb"].clone();
    assert!(tb.get("env").is_none() && tb.get("cwd").is_none(), "{tb}");

    let before = file_bytes(&config);
    let (code, _, stderr) = magg_on(&config, &["server", "update", "tb"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("No updates specified"), "{stderr}");
    let (code, _, stderr) = magg_on(&config, &["server", "update", "tb", "--command", ""]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Cannot clear both command and URI"),
        "{stderr}"
    );
    let (code, _, stderr) = magg_on(&config, &["server", "update", "nope", "--notes", "x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Server 'nope' not found"), "{stderr}");
    let (code, _, _) = magg_on(
        &config,
        &["server", "update", "tb", "--enable", "--disable"],
    );
    assert_eq!(code, 2, "--enable and --disable exclude each other");
    assert_eq!(file_bytes(&config), before);

    // disable / enable
    let (code, stdout, _) = magg_on(&config, &["server", "disable", "tb"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Disabled server 'tb'"), "{stdout}");
    assert_eq!(file_json(&config)["servers"]["tb"]["enabled"], json!(false));
    let (code, stdout, _) = magg_on(&config, &["server", "disable", "tb"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already disabled"), "{stdout}");
    let (code, stdout, _) = magg_on(&config, &["server", "enable", "tb"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Enabled server 'tb'"), "{stdout}");
    let file = file_json(&config);
    assert!(file["servers"]["tb"].get("enabled").is_none(), "{file}");
    unknown_keys_survive(&file);
    let (code, _, stderr) = magg_on(&config, &["server", "enable", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not found"), "{stderr}");

    // info
    let (code, stdout, _) = magg_on(&config, &["server", "info", "tb"]);
    assert_eq!(code, 0);
    for line in [
        "Server: tb",
        "Enabled: Yes",
        "Prefix: tbtwo",
        "Arguments: --name tb",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let (code, stdout, _) = magg_on(&config, &["server", "info", "tb", "--json"]);
    assert_eq!(code, 0);
    let info: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(
        info,
        json!({"tb": {
            "source": "tests/fixtures/test-backend",
            "prefix": "tbtwo",
            "command": bin,
            "args": ["--name", "tb"],
            "enabled": true
        }})
    );
    let (code, stdout, stderr) = magg_on(&config, &["server", "info", "nope", "--json"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("Server 'nope' not found"), "{stderr}");

    // remove: without --force and with no terminal to answer, nothing is removed
    let before = file_bytes(&config);
    let (code, stdout, _) = magg_on(&config, &["server", "remove", "tb"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Removal cancelled"), "{stdout}");
    assert_eq!(file_bytes(&config), before);
    let (code, stdout, stderr) = magg_on(&config, &["server", "remove", "tb", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Removed server 'tb'"), "{stdout}");
    let file = file_json(&config);
    assert!(file["servers"].get("tb").is_none(), "{file}");
    unknown_keys_survive(&file);
    let (code, _, stderr) = magg_on(&config, &["server", "remove", "tb", "-f"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Server 'tb' not found"), "{stderr}");
}

#[test]
fn a_piped_yes_confirms_a_removal() {
    use std::io::Write as _;
    let config = TempConfig::new(&json!({"servers": {"a": {"source": "s", "command": "true"}}}));
    let mut child = std::process::Command::new(crate::harness::bin("magg"))
        .args(["server", "remove", "a", "--config"])
        .arg(&config.path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn magg");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"y\n")
        .expect("answer");
    let out = child.wait_with_output().expect("magg exits");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removed server 'a'"));
    assert_eq!(file_json(&config)["servers"], json!({}));
}

#[test]
fn add_without_a_config_file_creates_one_with_only_the_new_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/config.json");
    let path_arg = path.to_string_lossy().into_owned();
    let (code, _, stderr) = run_cli(&[
        "server",
        "add",
        "one",
        "src",
        "--command",
        "true",
        "--config",
        &path_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("JSON");
    assert_eq!(
        file,
        json!({"servers": {"one": {"source": "src", "command": "true"}}}),
        "the built-in default server is not written"
    );
}

#[test]
fn read_only_refuses_every_change_and_leaves_the_file_byte_identical() {
    let text = "{\n  \"read_only\": true,\n  \"servers\": {\"a\": {\"source\": \"s\", \"command\": \"true\", \"kits\": [\"k\"]}},\n  \"kits\": {\"k\": {\"name\": \"k\"}}\n}\n";
    let config = TempConfig::raw(text);
    let kit_dir = config.dir.path().join("kit.d");
    std::fs::create_dir_all(&kit_dir).expect("kit.d");
    std::fs::write(
        kit_dir.join("other.json"),
        json!({"name": "other", "servers": {"o": {"source": "s", "command": "true"}}}).to_string(),
    )
    .expect("kit");
    let changes: [&[&str]; 8] = [
        &["server", "add", "b", "s", "--command", "true"],
        &["server", "update", "a", "--notes", "n"],
        &["server", "disable", "a"],
        &["server", "remove", "a", "--force"],
        &["kit", "load", "other"],
        &["kit", "unload", "k", "--force"],
        &["server", "enable", "a"], // already enabled: nothing to do, exit 0
        &["server", "info", "a"],   // reading is fine
    ];
    for (i, args) in changes.iter().enumerate() {
        let (code, _, stderr) = magg_on(&config, args);
        if i < 6 {
            assert_eq!(code, 1, "{args:?}: {stderr}");
            assert!(stderr.contains("read-only"), "{args:?}: {stderr}");
        } else {
            assert_eq!(code, 0, "{args:?}: {stderr}");
        }
        assert_eq!(file_bytes(&config), text.as_bytes(), "{args:?}");
    }

    // MAGG_READ_ONLY in the environment is just as binding.
    let writable =
        TempConfig::raw("{\"servers\": {\"a\": {\"source\": \"s\", \"command\": \"true\"}}}");
    let before = file_bytes(&writable);
    let path = writable.path.to_string_lossy().into_owned();
    let (code, _, stderr) = run_cli_env(
        &["server", "disable", "a", "--config", &path],
        &[("MAGG_READ_ONLY", "true")],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    assert_eq!(file_bytes(&writable), before);
}

#[test]
fn an_mcp_servers_file_is_not_rewritten() {
    let config = TempConfig::new(&json!({"mcpServers": {"x": {"command": "true"}}}));
    let before = file_bytes(&config);
    let (code, _, stderr) = magg_on(&config, &["server", "add", "y", "s", "--command", "true"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("mcpServers"), "{stderr}");
    assert_eq!(file_bytes(&config), before);
}

/// Writes `<config dir>/kit.d/<name>.json`.
fn kit_file(config: &TempConfig, name: &str, servers: Value) {
    let dir = config.dir.path().join("kit.d");
    std::fs::create_dir_all(&dir).expect("kit.d");
    let kit = json!({
        "name": name,
        "description": format!("{name} test kit"),
        "author": "tests",
        "version": "1.0",
        "servers": servers
    });
    std::fs::write(dir.join(format!("{name}.json")), kit.to_string()).expect("write kit");
}

#[test]
fn kit_list_load_info_export_unload() {
    let config = TempConfig::new(&json!({
        "servers": {"mine": {"source": "s", "command": "true", "prefix": "mine"}},
        "myTopKey": "kept"
    }));
    let a1 = json!({"source": "s", "command": "true", "prefix": "aone", "notes": "first"});
    let shared = json!({"source": "s", "command": "echo", "args": ["shared"]});
    kit_file(&config, "alpha", json!({"a1": a1, "shared": shared}));
    kit_file(&config, "beta", json!({"shared": shared}));
    let alpha_path = config
        .dir
        .path()
        .join("kit.d/alpha.json")
        .to_string_lossy()
        .into_owned();

    // list
    let (code, stdout, stderr) = magg_on(&config, &["kit", "list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(
        listed["kits"]["alpha"],
        json!({"path": alpha_path, "loaded": false, "description": "alpha test kit", "servers": ["a1", "shared"]})
    );
    assert_eq!(listed["kits"]["beta"]["servers"], json!(["shared"]));
    let (code, stdout, _) = magg_on(&config, &["kit", "list"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("• alpha: alpha test kit"), "{stdout}");

    // info
    let (code, stdout, _) = magg_on(&config, &["kit", "info", "alpha"]);
    assert_eq!(code, 0);
    for line in [
        "Kit: alpha",
        "Description: alpha test kit",
        "Author: tests",
        "Version: 1.0",
        "Servers (2):",
        "• a1 (prefix: aone)",
        "    first",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let (code, stdout, _) = magg_on(&config, &["kit", "info", "alpha", "--json"]);
    assert_eq!(code, 0);
    let info: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(info["name"], json!("alpha"));
    assert_eq!(info["loaded"], json!(false));
    assert_eq!(info["servers"]["a1"]["prefix"], json!("aone"));
    let (code, _, stderr) = magg_on(&config, &["kit", "info", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Kit 'nope' not found"), "{stderr}");
    assert!(stderr.contains("Available kits: alpha, beta"), "{stderr}");

    // load
    let (code, stdout, stderr) = magg_on(&config, &["kit", "load", "alpha", "--no-enable"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Added 2 servers from kit 'alpha'"),
        "{stdout}"
    );
    assert!(stdout.contains("• a1 (disabled)"), "{stdout}");
    let file = file_json(&config);
    assert_eq!(
        file["servers"]["a1"],
        json!({"source": "s", "prefix": "aone", "notes": "first", "command": "true", "enabled": false, "kits": ["alpha"]})
    );
    assert_eq!(
        file["kits"]["alpha"],
        json!({"name": "alpha", "description": "alpha test kit", "path": alpha_path, "source": "file"})
    );
    assert_eq!(file["myTopKey"], json!("kept"));
    assert_eq!(
        file["servers"]["mine"],
        json!({"source": "s", "prefix": "mine", "command": "true"})
    );

    let before = file_bytes(&config);
    let (code, _, stderr) = magg_on(&config, &["kit", "load", "alpha"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already loaded"), "{stderr}");
    let (code, _, stderr) = magg_on(&config, &["kit", "load", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Kit 'nope' not found"), "{stderr}");
    assert_eq!(file_bytes(&config), before);

    let (code, stdout, stderr) = magg_on(&config, &["kit", "load", "beta"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Updated kit membership for 1 existing servers"),
        "{stdout}"
    );
    assert_eq!(
        file_json(&config)["servers"]["shared"]["kits"],
        json!(["alpha", "beta"])
    );
    let (_, stdout, _) = magg_on(&config, &["kit", "list", "--json"]);
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(listed["kits"]["alpha"]["loaded"], json!(true));

    // export
    let out = config.dir.path().join("exported-alpha.json");
    let out_arg = out.to_string_lossy().into_owned();
    let (code, stdout, stderr) = magg_on(
        &config,
        &[
            "kit",
            "export",
            "--kit",
            "alpha",
            "--author",
            "me",
            "--version",
            "2.0",
            "-o",
            &out_arg,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "-o writes the file, not stdout");
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("export file")).expect("JSON");
    assert_eq!(
        exported,
        json!({"name": "alpha", "description": "alpha test kit", "author": "me", "version": "2.0",
               "servers": {"a1": a1, "shared": shared}})
    );
    let (code, stdout, _) = magg_on(&config, &["kit", "export", "--name", "mykit"]);
    assert_eq!(code, 0);
    let exported: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(exported["name"], json!("mykit"));
    assert_eq!(
        exported["description"],
        json!("Exported from current configuration")
    );
    assert_eq!(
        exported["servers"]["a1"],
        json!({"source": "s", "prefix": "aone", "notes": "first", "command": "true", "enabled": false}),
        "servers are exported without their kit tags"
    );
    assert!(exported["servers"].get("mine").is_some());
    let (code, _, stderr) = magg_on(&config, &["kit", "export", "--kit", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Kit 'nope' is not loaded"), "{stderr}");

    // unload: without --force and no terminal, nothing happens
    let before = file_bytes(&config);
    let (code, stdout, _) = magg_on(&config, &["kit", "unload", "alpha"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("will remove 1 servers"), "{stdout}");
    assert!(stdout.contains("Unload cancelled"), "{stdout}");
    assert_eq!(file_bytes(&config), before);
    let (code, stdout, stderr) = magg_on(&config, &["kit", "unload", "alpha", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Kit 'alpha' unloaded successfully. Removed servers: a1"),
        "{stdout}"
    );
    let file = file_json(&config);
    assert!(file["servers"].get("a1").is_none(), "{file}");
    assert_eq!(file["servers"]["shared"]["kits"], json!(["beta"]));
    assert!(file["kits"].get("alpha").is_none(), "{file}");
    assert_eq!(file["myTopKey"], json!("kept"));
    assert!(
        file["servers"].get("mine").is_some(),
        "the user's server stays"
    );
    let (code, _, stderr) = magg_on(&config, &["kit", "unload", "alpha", "-f"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Kit 'alpha' is not loaded"), "{stderr}");
    assert!(stderr.contains("Loaded kits: beta"), "{stderr}");
}

#[test]
fn config_export_writes_the_servers_as_magg_does() {
    let config = TempConfig::new(&json!({
        "servers": {
            "a": {"source": "s", "command": "npx", "args": ["-y", "pkg"], "futureKey": 1},
            "b": {"source": "t", "uri": "http://localhost:9/mcp", "enabled": false}
        },
        "read_only": false,
        "myTopKey": 7
    }));
    let expected = json!({"servers": {
        "a": {"name": "a", "source": "s", "command": "npx", "args": ["-y", "pkg"], "futureKey": 1},
        "b": {"name": "b", "source": "t", "uri": "http://localhost:9/mcp", "enabled": false}
    }});
    let (code, stdout, stderr) = magg_on(&config, &["config", "export"]);
    assert_eq!(code, 0, "{stderr}");
    let exported: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(exported, expected);

    let out = config.dir.path().join("export.json");
    let out_arg = out.to_string_lossy().into_owned();
    let (code, stdout, stderr) = magg_on(&config, &["config", "export", "--output", &out_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("export file")).expect("JSON");
    assert_eq!(written, expected);

    let (code, _, stderr) = magg_on(
        &config,
        &["config", "export", "-o", "/nonexistent/dir/x.json"],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("Failed to write to"), "{stderr}");
}

#[tokio::test]
async fn a_running_magg_picks_up_server_add_and_disable() {
    let config = TempConfig::new(&json!({"servers": {"keep": test_backend("keep", "keep", &[])}}));
    let mut magg = crate::harness::Magg::stdio(&config.path).await;
    let client = magg.client();
    assert!(client.tool_names().await.contains(&"keep_echo".to_owned()));

    let path = config.path.to_string_lossy().into_owned();
    let command = crate::harness::test_backend_command("tb");
    let add = vec![
        "server".to_owned(),
        "add".to_owned(),
        "tb".to_owned(),
        "tests/fixtures/test-backend".to_owned(),
        "--prefix".to_owned(),
        "tb".to_owned(),
        "--command".to_owned(),
        command,
        "--config".to_owned(),
        path.clone(),
    ];
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = add.iter().map(String::as_str).collect();
        run_cli(&args)
    })
    .await
    .expect("run magg server add");
    assert_eq!(code, 0, "{stderr}");
    client.notified("tools/list_changed").await;
    let echoed = client
        .call_eventually("tb_echo", json!({"text": "x"}))
        .await;
    assert!(crate::harness::text(&echoed).contains('x'), "{echoed}");

    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        run_cli(&["server", "disable", "tb", "--config", &path])
    })
    .await
    .expect("run magg server disable");
    assert_eq!(code, 0, "{stderr}");
    client.notified("tools/list_changed").await;
    let names = crate::harness::eventually(
        "tb_echo leaving the list after `magg server disable tb`",
        crate::harness::WAIT,
        || async {
            let names = client.tool_names().await;
            (!names.contains(&"tb_echo".to_owned())).then_some(names)
        },
    )
    .await;
    assert!(names.contains(&"keep_echo".to_owned()), "{names:?}");
}
