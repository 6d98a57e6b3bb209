//! Tests for the config module: Magg-format and mcpServers files, settings
//! and environment overrides, every kind of error with its position and
//! field, discovery, the embedded default and saving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::locate::{FieldPath, locate};
use super::*;

/// An environment made of a fixed map.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(Path::new("/cfg/config.json"), text, &no_env)
}

fn parse_env(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    parse_str(Path::new("/cfg/config.json"), text, &env_of(pairs))
}

fn parse_err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err,
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "magg-config-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MAGG_SAMPLE: &str = r#"{
  "servers": {
    "calculator": {
      "name": "calculator",
      "source": "https://github.com/executeautomation/calculator-mcp",
      "command": "npx @executeautomation/calculator-mcp",
      "prefix": "calc",
      "enabled": true
    },
    "filesystem": {
      "source": "https://github.com/modelcontextprotocol/servers/tree/main/src/filesystem",
      "prefix": "fs",
      "notes": "Read-only access to the project",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/my project"],
      "env": {"NODE_ENV": "production", "PORT": "8080"},
      "cwd": "/home/me",
      "transport": {"keep_alive": false},
      "kits": ["files"],
      "x-custom": {"keep": ["me"]}
    },
    "weather": {
      "source": "https://example.com/weather",
      "uri": "http://localhost:8000/mcp",
      "transport": {},
      "enabled": false
    },
    "noprefix": {
      "source": "pypi:mcp-server-time",
      "command": "uvx",
      "args": ["mcp-server-time"],
      "prefix": null
    }
  },
  "kits": {
    "files": {"name": "files", "description": "File tools", "path": "/x/kit.d/files.json", "source": "file"}
  },
  "self_prefix": "mg",
  "read_only": false,
  "future_setting": [1, 2, 3]
}
"#;

#[test]
fn loads_a_typical_magg_file() {
    let config = parse(MAGG_SAMPLE).unwrap();
    assert_eq!(config.format, ConfigFormat::Magg);
    assert!(config.exists);
    assert_eq!(
        config.servers.keys().collect::<Vec<_>>(),
        ["calculator", "filesystem", "weather", "noprefix"]
    );

    let calc = &config.servers["calculator"];
    assert_eq!(calc.name, "calculator");
    assert_eq!(calc.prefix.as_deref(), Some("calc"));
    assert!(calc.enabled);
    assert!(calc.extra.is_empty(), "the redundant \"name\" is not kept");
    assert_eq!(
        calc.argv(),
        Some((
            "npx".to_owned(),
            vec!["@executeautomation/calculator-mcp".to_owned()]
        ))
    );

    let fs = &config.servers["filesystem"];
    assert_eq!(fs.prefix.as_deref(), Some("fs"));
    assert_eq!(fs.notes.as_deref(), Some("Read-only access to the project"));
    assert_eq!(fs.command.as_deref(), Some("npx"));
    assert_eq!(fs.args.len(), 3);
    assert_eq!(fs.env["NODE_ENV"], "production");
    assert_eq!(fs.env["PORT"], "8080");
    assert_eq!(fs.cwd.as_deref(), Some(Path::new("/home/me")));
    assert_eq!(fs.transport.as_ref().unwrap()["keep_alive"], json!(false));
    assert_eq!(fs.kits, ["files"]);
    assert_eq!(fs.extra["x-custom"], json!({"keep": ["me"]}));
    assert_eq!(
        fs.command_line().as_deref(),
        Some("npx -y @modelcontextprotocol/server-filesystem '/home/me/my project'")
    );

    let weather = &config.servers["weather"];
    assert!(!weather.enabled);
    assert_eq!(
        weather.transport, None,
        "empty transport is normalised away"
    );
    assert_eq!(weather.uri.as_deref(), Some("http://localhost:8000/mcp"));
    assert_eq!(weather.command_line(), None);

    assert_eq!(config.servers["noprefix"].prefix, None);
    assert_eq!(
        config
            .enabled_servers()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["calculator", "filesystem", "noprefix"]
    );

    assert_eq!(config.settings.self_prefix, "mg");
    assert_eq!(config.settings.prefixed("status"), "mg_status");
    assert_eq!(config.kits["files"]["description"], json!("File tools"));
    assert_eq!(config.extra["future_setting"], json!([1, 2, 3]));
}

#[test]
fn to_json_keeps_unknown_keys_and_omits_defaults() {
    let config = parse(MAGG_SAMPLE).unwrap();
    let out = config.to_json();
    assert_eq!(
        out["servers"]["filesystem"],
        json!({
            "source": "https://github.com/modelcontextprotocol/servers/tree/main/src/filesystem",
            "prefix": "fs",
            "notes": "Read-only access to the project",
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/my project"],
            "env": {"NODE_ENV": "production", "PORT": "8080"},
            "cwd": "/home/me",
            "transport": {"keep_alive": false},
            "kits": ["files"],
            "x-custom": {"keep": ["me"]}
        })
    );
    assert_eq!(
        out["servers"]["calculator"],
        json!({
            "source": "https://github.com/executeautomation/calculator-mcp",
            "prefix": "calc",
            "command": "npx @executeautomation/calculator-mcp"
        })
    );
    assert_eq!(
        out["servers"]["weather"],
        json!({"source": "https://example.com/weather", "uri": "http://localhost:8000/mcp", "enabled": false})
    );
    assert_eq!(out["kits"], parse(MAGG_SAMPLE).unwrap().to_json()["kits"]);
    assert_eq!(out["kits"]["files"]["path"], json!("/x/kit.d/files.json"));
    assert_eq!(out["self_prefix"], json!("mg"));
    assert_eq!(out["read_only"], json!(false));
    assert_eq!(out["future_setting"], json!([1, 2, 3]));
    assert!(
        out.get("prefix_sep").is_none(),
        "settings not in the file are not written"
    );

    // What is written reads back the same.
    let again = parse(&out.to_string()).unwrap();
    assert_eq!(again.servers, config.servers);
    assert_eq!(again.to_json(), out);
}

#[test]
fn legacy_kits_list_becomes_an_object() {
    let config = parse(r#"{"servers": {}, "kits": ["web", "files"]}"#).unwrap();
    assert_eq!(
        Value::Object(config.kits.clone()),
        json!({
            "web": {"name": "web", "source": "legacy"},
            "files": {"name": "files", "source": "legacy"}
        })
    );
    assert_eq!(config.to_json()["kits"]["web"]["source"], json!("legacy"));
}

#[test]
fn empty_file_is_an_empty_config() {
    for text in ["", "  \n\t ", "{}", "\u{feff}{}"] {
        let config = parse(text).unwrap();
        assert!(config.servers.is_empty());
        assert_eq!(config.settings, Settings::default());
        assert_eq!(config.to_json(), json!({"servers": {}}));
    }
}

#[test]
fn missing_source_defaults_to_uri_or_command_line() {
    let config = parse(
        r#"{"servers": {
            "a": {"command": "uvx", "args": ["mcp-server-time"]},
            "b": {"uri": "https://example.com/mcp"},
            "c": {"enabled": false}
        }}"#,
    )
    .unwrap();
    assert_eq!(config.servers["a"].source, "uvx mcp-server-time");
    assert_eq!(config.servers["b"].source, "https://example.com/mcp");
    assert_eq!(config.servers["c"].source, "c");
    assert_eq!(
        config.to_json()["servers"]["a"]["source"],
        json!("uvx mcp-server-time")
    );
}

const MCP_SAMPLE: &str = r#"{
  "mcpServers": {
    "github": {
      "command": "docker",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": {"GITHUB_TOKEN": "${GH_TOKEN}", "LOG": "${LOG_LEVEL:-info}"}
    },
    "my-fs": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/work"],
      "cwd": "${HOME}",
      "disabled": true
    },
    "myfs": {"type": "stdio", "command": "myfs-server"},
    "7zip": {"command": "7z-mcp"},
    "remote": {
      "type": "sse",
      "url": "https://mcp.example.com/${REGION:-eu}/sse",
      "headers": {"Authorization": "Bearer ${API_KEY}"},
      "autoApprove": ["search"]
    },
    "---": {"transport": "streamable-http", "url": "http://localhost:9000/mcp"}
  },
  "globalShortcut": "Ctrl+Space"
}"#;

#[test]
fn loads_mcp_servers_format_with_interpolation() {
    let config = parse_env(
        MCP_SAMPLE,
        &[
            ("GH_TOKEN", "ghp_123"),
            ("HOME", "/home/me"),
            ("API_KEY", "k"),
            ("REGION", ""),
        ],
    )
    .unwrap();
    assert_eq!(config.format, ConfigFormat::McpServers);

    let github = &config.servers["github"];
    assert_eq!(github.prefix.as_deref(), Some("github"));
    assert_eq!(github.env["GITHUB_TOKEN"], "ghp_123");
    assert_eq!(github.env["LOG"], "info");
    assert!(github.enabled);
    assert_eq!(
        github.source,
        "docker run -i --rm -e GITHUB_TOKEN ghcr.io/github/github-mcp-server"
    );

    let fs = &config.servers["my-fs"];
    assert!(!fs.enabled, "disabled: true");
    assert_eq!(fs.args[2], "/home/me/work");
    assert_eq!(fs.cwd.as_deref(), Some(Path::new("/home/me")));
    assert_eq!(fs.prefix.as_deref(), Some("myfs"));
    assert_eq!(
        config.servers["myfs"].prefix.as_deref(),
        Some("myfs2"),
        "derived prefixes are made unique"
    );
    assert_eq!(config.servers["myfs"].transport, None, "stdio is implied");
    assert_eq!(config.servers["7zip"].prefix.as_deref(), Some("s7zip"));

    let remote = &config.servers["remote"];
    assert_eq!(
        remote.uri.as_deref(),
        Some("https://mcp.example.com/eu/sse")
    );
    assert_eq!(remote.source, "https://mcp.example.com/eu/sse");
    assert_eq!(remote.transport_type(), Some("sse"));
    assert_eq!(
        remote.transport.as_ref().unwrap()["headers"],
        json!({"Authorization": "Bearer k"})
    );
    assert_eq!(remote.extra["autoApprove"], json!(["search"]));

    let dashes = &config.servers["---"];
    assert_eq!(dashes.prefix.as_deref(), Some("server"));
    assert_eq!(dashes.transport_type(), Some("http"));

    assert_eq!(config.extra["globalShortcut"], json!("Ctrl+Space"));
    let out = config.to_json();
    assert_eq!(out["servers"]["my-fs"]["enabled"], json!(false));
    assert_eq!(out["servers"]["github"]["prefix"], json!("github"));
}

#[test]
fn mcp_servers_unset_variable_is_an_error() {
    let err = parse_env(MCP_SAMPLE, &[("HOME", "/h"), ("API_KEY", "k")]).unwrap_err();
    assert_eq!(err.field(), Some("mcpServers.github.env.GITHUB_TOKEN"));
    assert_eq!(err.line(), Some(6));
    assert_eq!(err.column(), Some(15));
    let text = err.to_string();
    assert!(
        text.starts_with("/cfg/config.json:6:15: mcpServers.github.env.GITHUB_TOKEN: "),
        "{text}"
    );
    assert!(text.contains("GH_TOKEN is not set"), "{text}");
    assert!(text.contains("\"github\""), "{text}");
    assert!(text.contains("${GH_TOKEN:-default}"), "{text}");
}

#[test]
fn interpolation_is_only_for_mcp_servers_format() {
    let config =
        parse(r#"{"servers": {"a": {"source": "s", "command": "echo", "args": ["${NOT_SET}"]}}}"#)
            .unwrap();
    assert_eq!(config.servers["a"].args, ["${NOT_SET}"]);
}

#[test]
fn both_servers_and_mcp_servers_means_magg_format() {
    let config = parse(
        r#"{"servers": {"a": {"source": "s", "command": "x"}}, "mcpServers": {"b": {"command": "y"}}}"#,
    )
    .unwrap();
    assert_eq!(config.format, ConfigFormat::Magg);
    assert_eq!(config.servers.len(), 1);
    assert!(config.extra.contains_key("mcpServers"));
}

#[test]
fn settings_from_file_and_environment() {
    let text = r#"{
      "read_only": false,
      "backend_init_timeout": 0,
      "list_wait": 1.5,
      "stderr_show": true,
      "log_level": "DEBUG",
      "plugins_dir": "~/plugins",
      "reload_use_watchdog": false,
      "prefix_sep": "-",
      "servers": {}
    }"#;
    let config = parse_env(text, &[("HOME", "/home/me")]).unwrap();
    let s = &config.settings;
    assert!(!s.read_only);
    assert_eq!(s.backend_init_timeout, None, "0 waits forever");
    assert_eq!(s.list_wait, Duration::from_millis(1500));
    assert!(s.stderr_show);
    assert_eq!(s.log_level.as_deref(), Some("DEBUG"));
    assert_eq!(
        s.plugins_dir.as_deref(),
        Some(Path::new("/home/me/plugins"))
    );
    assert_eq!(s.reload_use_watchdog, Some(false));
    assert_eq!(s.prefixed("x"), "magg-x");
    assert!(s.auto_reload);

    let config = parse_env(
        text,
        &[
            ("MAGG_READ_ONLY", "Yes"),
            ("MAGG_BACKEND_INIT_TIMEOUT", "12.5"),
            ("MAGG_LIST_WAIT", "0"),
            ("MAGG_STDERR_SHOW", "0"),
            ("MAGG_AUTO_RELOAD", "off"),
            ("MAGG_RELOAD_POLL_INTERVAL", "2"),
            ("MAGG_SELF_PREFIX", ""),
            ("MAGG_LOG_LEVEL", "warning"),
            ("MAGG_PLUGINS_DIR", "/opt/plugins"),
            ("MAGG_PREFIX_SEP", "__"),
        ],
    )
    .unwrap();
    let s = &config.settings;
    assert!(s.read_only, "the environment overrides the file");
    assert_eq!(s.backend_init_timeout, Some(Duration::from_millis(12_500)));
    assert_eq!(s.list_wait, Duration::ZERO);
    assert!(!s.stderr_show);
    assert!(!s.auto_reload);
    assert_eq!(s.reload_poll_interval, 2.0);
    assert_eq!(s.self_prefix, "magg", "empty variables are ignored");
    assert_eq!(s.log_level.as_deref(), Some("warning"));
    assert_eq!(s.plugins_dir.as_deref(), Some(Path::new("/opt/plugins")));
    assert_eq!(s.prefixed("x"), "magg__x");

    // The file form keeps the file's values, not the environment's.
    let out = config.to_json();
    assert_eq!(out["read_only"], json!(false));
    assert_eq!(out["backend_init_timeout"], json!(0));
    assert_eq!(out["plugins_dir"], json!("~/plugins"));
}

#[test]
fn empty_self_prefix_means_no_prefix() {
    let config = parse(r#"{"self_prefix": ""}"#).unwrap();
    assert_eq!(config.settings.prefixed("status"), "status");
    let config = parse_env("{}", &[("MAGG_SELF_PREFIX", "tools2")]).unwrap();
    assert_eq!(config.settings.prefixed("status"), "tools2_status");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let err = parse_env("{}", &[("MAGG_READ_ONLY", "maybe")]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, ConfigError::Env { var, .. } if var == "MAGG_READ_ONLY"));
    assert!(
        text.starts_with("environment variable MAGG_READ_ONLY=\"maybe\""),
        "{text}"
    );
    assert!(text.contains("/cfg/config.json"), "{text}");
    assert!(text.contains("true/false"), "{text}");

    let err = parse_env("{}", &[("MAGG_LIST_WAIT", "soon")]).unwrap_err();
    assert!(err.to_string().contains("MAGG_LIST_WAIT"));
    let err = parse_env("{}", &[("MAGG_LIST_WAIT", "-1")]).unwrap_err();
    assert!(err.to_string().contains("MAGG_LIST_WAIT"));
    let err = parse_env("{}", &[("MAGG_RELOAD_POLL_INTERVAL", "0")]).unwrap_err();
    assert!(err.to_string().contains("MAGG_RELOAD_POLL_INTERVAL"));
    let err = parse_env("{}", &[("MAGG_SELF_PREFIX", "my_magg")]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("MAGG_SELF_PREFIX") && text.contains("\"mymagg\""),
        "{text}"
    );
}

// ---- errors: each with its position and field path ----

#[test]
fn syntax_error_has_line_and_column() {
    let err = parse_err("{\n  \"servers\": {\n    \"a\": {\"source\": \"x\",}\n  }\n}\n");
    let ConfigError::Syntax {
        line,
        column,
        message,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *column), (3, 25));
    assert!(!message.contains("at line"), "{message}");
    let text = err.to_string();
    assert!(
        text.starts_with("/cfg/config.json:3:25: invalid JSON: "),
        "{text}"
    );
    assert!(text.contains("trailing commas"), "{text}");
}

#[test]
fn top_level_must_be_an_object() {
    let err = parse_err("\n [1, 2]");
    assert_eq!(err.field(), Some(""));
    assert_eq!((err.line(), err.column()), (Some(2), Some(2)));
    assert!(
        err.to_string()
            .starts_with("/cfg/config.json:2:2: the top level is a list, not an object")
    );
}

#[test]
fn servers_must_be_an_object() {
    let err = parse_err("{\n  \"servers\": [\"a\"]\n}");
    assert_eq!(err.field(), Some("servers"));
    assert_eq!((err.line(), err.column()), (Some(2), Some(3)));
    assert!(
        err.to_string()
            .contains("expected an object mapping server names to servers, found a list")
    );

    let err = parse_err(r#"{"servers": {"a": "npx thing"}}"#);
    assert_eq!(err.field(), Some("servers.a"));
    assert!(
        err.to_string()
            .contains("expected an object describing the server")
    );
}

#[test]
fn wrong_types_name_the_field() {
    let text = r#"{
  "servers": {
    "fs": {
      "source": "x",
      "command": "npx",
      "args": "-y @modelcontextprotocol/server-filesystem"
    }
  }
}"#;
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.fs.args"));
    assert_eq!((err.line(), err.column()), (Some(6), Some(7)));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "/cfg/config.json:6:7: servers.fs.args: expected a list of strings, found the string"
        ),
        "{msg}"
    );
    assert!(
        msg.contains(r#"["-y","@modelcontextprotocol/server-filesystem"]"#),
        "{msg}"
    );

    let err = parse_err(
        "{\"servers\": {\n  \"fs\": {\"source\": \"x\", \"command\": \"npx\",\n    \"enabled\": \"yes\"}}}",
    );
    assert_eq!(err.field(), Some("servers.fs.enabled"));
    assert_eq!((err.line(), err.column()), (Some(3), Some(5)));
    assert!(err.to_string().contains(
        "expected true or false, found the string \"yes\". Fix: write true or false, without quotes"
    ));

    let err = parse_err(
        "{\"servers\": {\"fs\": {\"source\": \"x\", \"command\": \"npx\",\n \"args\": [\"-y\", {\"no\": 1}]}}}",
    );
    assert_eq!(err.field(), Some("servers.fs.args[1]"));
    assert_eq!((err.line(), err.column()), (Some(2), Some(17)));

    let err = parse_err("{\"read_only\": \"true\"}");
    assert_eq!(err.field(), Some("read_only"));
    let err = parse_err("{\n\"backend_init_timeout\": \"30\"}");
    assert_eq!(err.field(), Some("backend_init_timeout"));
    assert_eq!(err.line(), Some(2));
    let err = parse_err(
        "{\"servers\": {\"fs\": {\"source\": \"x\", \"command\": \"a\", \"env\": {\"A\": [1]}}}}",
    );
    assert_eq!(err.field(), Some("servers.fs.env.A"));
    let err = parse_err(r#"{"servers": {"odd name.x": {"source": 3, "command": "a"}}}"#);
    assert_eq!(err.field(), Some(r#"servers["odd name.x"].source"#));
    assert!(
        err.to_string()
            .contains("put the value in double quotes: \"3\"")
    );
    let err = parse_err(r#"{"kits": "web"}"#);
    assert_eq!(err.field(), Some("kits"));
}

#[test]
fn invalid_prefix_is_located() {
    let text = r#"{
  "servers": {
    "a": {"source": "x", "command": "a", "prefix": "ok"},
    "my_fs": {
      "source": "x",
      "prefix": "my_fs",
      "command": "npx"
    }
  }
}"#;
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.my_fs.prefix"));
    assert_eq!((err.line(), err.column()), (Some(6), Some(7)));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "/cfg/config.json:6:7: servers.my_fs.prefix: \"my_fs\" is not a valid prefix"
        ),
        "{msg}"
    );
    assert!(msg.contains("without underscores"), "{msg}");
    assert!(msg.contains("Fix: use e.g. \"myfs\""), "{msg}");

    for bad in ["1abc", "a-b", "héllo", "a b"] {
        let text = format!(
            r#"{{"servers": {{"a": {{"source": "x", "command": "a", "prefix": {bad:?}}}}}}}"#
        );
        assert_eq!(parse_err(&text).field(), Some("servers.a.prefix"), "{bad}");
    }
    // Empty or null prefix means none.
    let config =
        parse(r#"{"servers": {"a": {"source": "x", "command": "a", "prefix": ""}}}"#).unwrap();
    assert_eq!(config.servers["a"].prefix, None);
}

#[test]
fn invalid_self_prefix_is_located() {
    let err = parse_err("{\n  \"servers\": {},\n  \"self_prefix\": \"magg_2\"\n}");
    assert_eq!(err.field(), Some("self_prefix"));
    assert_eq!((err.line(), err.column()), (Some(3), Some(3)));
    assert!(err.to_string().contains("or \"\" for no prefix"));
}

#[test]
fn server_needs_command_or_uri() {
    let text = "{\"servers\": {\n  \"x\": {\"source\": \"s\"},\n  \"y\": {\"source\": \"s\", \"enabled\": false}\n}}";
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.x"));
    assert_eq!((err.line(), err.column()), (Some(2), Some(3)));
    let msg = err.to_string();
    assert!(
        msg.contains("server \"x\" needs a way to run: provide \"command\", \"uri\" or \"wasm\""),
        "{msg}"
    );
    assert!(msg.contains("\"enabled\": false"), "{msg}");

    // A disabled server without either is accepted, as in Magg.
    let config = parse(r#"{"servers": {"y": {"source": "s", "enabled": false}}}"#).unwrap();
    assert!(!config.servers["y"].enabled);

    let err = parse_err(r#"{"mcpServers": {"z": {"args": ["a"]}}}"#);
    assert_eq!(err.field(), Some("mcpServers.z"));
    assert!(
        err.to_string()
            .contains("provide \"command\", \"url\" or \"wasm\"")
    );
}

#[test]
fn uri_must_be_http() {
    let text = "{\"servers\": {\"w\": {\"source\": \"s\",\n  \"uri\": \"localhost:8000\"}}}";
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.w.uri"));
    assert_eq!((err.line(), err.column()), (Some(2), Some(3)));
    assert!(err.to_string().contains("is not an http(s) URL"), "{err}");
    for bad in ["not a url", "ftp://x.org/", "file:///tmp/x", "http://"] {
        let text = format!(r#"{{"servers": {{"w": {{"source": "s", "uri": {bad:?}}}}}}}"#);
        assert_eq!(parse_err(&text).field(), Some("servers.w.uri"), "{bad}");
    }
    let err = parse_err(r#"{"mcpServers": {"w": {"url": "ws://x"}}}"#);
    assert_eq!(err.field(), Some("mcpServers.w.url"));
    let err = parse_err(r#"{"mcpServers": {"w": {"type": "websocket", "url": "http://x"}}}"#);
    assert_eq!(err.field(), Some("mcpServers.w.type"));
}

#[test]
fn duplicate_prefixes_of_enabled_servers() {
    let text = r#"{
  "servers": {
    "one": {"source": "s", "command": "a", "prefix": "tools"},
    "off": {"source": "s", "command": "b", "prefix": "tools", "enabled": false},
    "two": {"source": "s", "command": "c", "prefix": "tools"}
  }
}"#;
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.two.prefix"));
    assert_eq!(err.line(), Some(5));
    let msg = err.to_string();
    assert!(
        msg.contains("\"two\"") && msg.contains("\"one\" (line 3)"),
        "{msg}"
    );
    assert!(msg.contains("different \"prefix\""), "{msg}");

    // Only enabled servers count.
    let ok = text.replace(
        r#""two": {"source": "s", "command": "c", "prefix": "tools"}"#,
        r#""two": {"source": "s", "command": "c", "prefix": "tools", "enabled": false}"#,
    );
    assert!(parse(&ok).is_ok());
}

#[test]
fn unreadable_file_names_the_file() {
    let dir = TempDir::new("read");
    let missing = dir.0.join("nope.json");
    let err = load_with_env(&missing, &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains(&*missing.to_string_lossy()));
}

// ---- discovery ----

#[test]
fn discovery_order() {
    let tmp = TempDir::new("discover");
    let cwd = tmp.0.join("project");
    let home = tmp.0.join("home");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let discover = |explicit: Option<&Path>, pairs: &[(&str, &str)]| {
        discover_path_with(explicit, &env_of(pairs), &cwd, Some(&home))
    };

    // Nothing exists: ./.magg/config.json, "default".
    assert_eq!(
        discover(None, &[]),
        (cwd.join(".magg/config.json"), "default")
    );
    assert_eq!(
        search_paths_with(&no_env, &cwd, Some(&home)),
        [cwd.join(".magg"), home.join(".magg")]
    );

    // ~/.magg is used when ./.magg has no config...
    let home_cfg = tmp.write("home/.magg/config.json", "{}");
    assert_eq!(discover(None, &[]), (home_cfg.clone(), "default"));
    // ...and ./.magg wins over it.
    let local_cfg = tmp.write("project/.magg/config.json", "{}");
    assert_eq!(discover(None, &[]), (local_cfg.clone(), "default"));

    // MAGG_PATH replaces the default directories; first existing config wins.
    let a = tmp.0.join("a");
    let b_cfg = tmp.write("b/config.json", "{}");
    let magg_path = format!("{}: {} :~/.magg", a.display(), tmp.0.join("b").display());
    assert_eq!(
        discover(None, &[("MAGG_PATH", &magg_path)]),
        (b_cfg.clone(), "MAGG_PATH")
    );
    assert_eq!(
        search_paths_with(&env_of(&[("MAGG_PATH", &magg_path)]), &cwd, Some(&home)),
        [a.clone(), tmp.0.join("b"), home.join(".magg")]
    );
    // None exists in MAGG_PATH: its first directory.
    assert_eq!(
        discover(None, &[("MAGG_PATH", &a.display().to_string())]),
        (a.join("config.json"), "MAGG_PATH")
    );

    // MAGG_CONFIG_PATH beats MAGG_PATH, --config beats both.
    let env = [
        ("MAGG_PATH", magg_path.as_str()),
        ("MAGG_CONFIG_PATH", "~/custom.json"),
    ];
    assert_eq!(
        discover(None, &env),
        (home.join("custom.json"), "MAGG_CONFIG_PATH")
    );
    assert_eq!(
        discover(Some(Path::new("rel.json")), &env),
        (cwd.join("rel.json"), "--config")
    );
    // Empty variables are ignored.
    assert_eq!(
        discover(None, &[("MAGG_CONFIG_PATH", ""), ("MAGG_PATH", "")]),
        (local_cfg, "default")
    );
}

#[test]
fn load_discovered_falls_back_to_the_embedded_default() {
    let tmp = TempDir::new("fallback");
    let env = env_of(&[("MAGG_READ_ONLY", "1")]);
    let config = load_discovered_with(None, &env, &tmp.0, None).unwrap();
    assert!(!config.exists);
    assert_eq!(config.path, tmp.0.join(".magg/config.json"));
    assert!(config.settings.read_only, "the environment still applies");
    assert_eq!(config.servers.len(), 1);

    tmp.write(
        ".magg/config.json",
        r#"{"servers": {"t": {"source": "s", "command": "t"}}}"#,
    );
    let config = load_discovered_with(None, &env, &tmp.0, None).unwrap();
    assert!(config.exists);
    assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["t"]);
}

#[test]
fn embedded_default_runs_the_everything_server() {
    let config = Config::embedded_default(PathBuf::from("/x/.magg/config.json"));
    assert!(!config.exists);
    assert_eq!(config.format, ConfigFormat::Magg);
    assert_eq!(config.settings, Settings::default());
    let servers: Vec<_> = config.enabled_servers().collect();
    assert_eq!(servers.len(), 1);
    let everything = servers[0];
    assert_eq!(everything.name, "everything");
    assert_eq!(
        everything.source,
        "https://www.npmjs.com/package/@modelcontextprotocol/server-everything"
    );
    assert_eq!(everything.prefix.as_deref(), Some("everything"));
    assert_eq!(everything.command.as_deref(), Some("npx"));
    assert_eq!(everything.args, ["-y", EMBEDDED_DEFAULT_PACKAGE, "stdio"]);
    let notes = everything.notes.as_deref().unwrap_or_default();
    assert!(
        notes.contains("reference test server") && notes.contains("config file"),
        "{notes}"
    );
    // Its file form loads back.
    let again = parse(&config.to_json().to_string()).unwrap();
    assert_eq!(again.servers, config.servers);
}

// ---- helpers ----

#[test]
fn settings_defaults_and_prefixed() {
    let s = Settings::default();
    assert_eq!(s.self_prefix, "magg");
    assert_eq!(s.prefix_sep, "_");
    assert_eq!(s.backend_init_timeout, Some(Duration::from_secs(30)));
    assert_eq!(s.list_wait, Duration::from_secs(5));
    assert_eq!(s.reload_poll_interval, 1.0);
    assert!(s.auto_reload && !s.read_only && !s.stderr_show);
    assert_eq!(s.prefixed("list_servers"), "magg_list_servers");
}

#[test]
fn prefix_rules() {
    assert!(is_valid_prefix("fs") && is_valid_prefix("F2") && is_valid_prefix("abc123"));
    for bad in ["", "_a", "a_b", "1a", "a-b", "é"] {
        assert!(!is_valid_prefix(bad), "{bad}");
    }
    assert_eq!(prefix_from_name("my-fs"), "myfs");
    assert_eq!(prefix_from_name("7zip"), "s7zip");
    assert_eq!(prefix_from_name("--"), "server");
    assert_eq!(prefix_from_name("Ünïcode_x"), "ncodex");
}

#[test]
fn command_line_quotes_only_when_needed() {
    let mut server = ServerConfig::new("s", "src");
    assert_eq!(server.command_line(), None);
    server.command = Some("python".into());
    server.args = vec![
        "-m".into(),
        "my server".into(),
        "--port=80".into(),
        "it's".into(),
        "".into(),
    ];
    assert_eq!(
        server.command_line().as_deref(),
        Some(r#"python -m 'my server' --port=80 'it'\''s' ''"#)
    );
    assert_eq!(
        server.argv(),
        Some(("python".to_owned(), server.args.clone()))
    );
}

#[test]
fn locate_finds_keys_and_elements() {
    let text = "{\n \"a\": {\"b\": [10,\n  {\"c\\u0064\": 1}], \"b2\": 2},\n \"a\": {\"x\": 1}\n}";
    let at = |segs: &[&str]| {
        let mut path = FieldPath::root();
        for seg in segs {
            path = match seg.parse::<usize>() {
                Ok(i) => path.index(i),
                Err(_) => path.key(seg),
            };
        }
        locate(text, &path)
    };
    // Duplicate keys: serde_json keeps the last, so does locate.
    assert_eq!(at(&["a"]), Some((4, 2)));
    assert_eq!(at(&["a", "x"]), Some((4, 8)));
    // Missing paths fall back to the closest ancestor.
    assert_eq!(at(&["a", "b", "1", "cd"]), Some((4, 2)));
    assert_eq!(at(&[]), Some((1, 1)));
    assert_eq!(at(&["zz"]), Some((1, 1)));

    // Escaped keys, array elements and strings holding brackets and quotes.
    let text = "{\"s\": \"}]\\\"{\",\n \"b\": [10,\n  {\"c\\u0064\": 1}], \"é\": {\"k\": 2}}";
    let path = FieldPath::root().key("b").index(1).key("cd");
    assert_eq!(locate(text, &path), Some((3, 4)));
    assert_eq!(
        locate(text, &FieldPath::root().key("b").index(0)),
        Some((2, 8))
    );
    assert_eq!(
        locate(text, &FieldPath::root().key("é").key("k")),
        Some((3, 26))
    );
}

// ---- saving ----

#[test]
fn save_replaces_servers_and_kits_only() {
    let tmp = TempDir::new("save");
    let path = tmp.write(
        "config.json",
        r#"{"self_prefix": "mg", "servers": {"a": {"source": "s", "command": "a"}}, "kits": ["k"], "zzz": 1}"#,
    );
    let mut config = load_with_env(&path, &env_of(&[("MAGG_SELF_PREFIX", "other")])).unwrap();
    config.servers.shift_remove("a");
    let mut b = ServerConfig::new("b", "src-b");
    b.command = Some("b".into());
    b.enabled = false;
    config.servers.insert("b".into(), b);
    config.kits.clear();
    config.save().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        saved,
        json!({"self_prefix": "mg", "servers": {"b": {"source": "src-b", "command": "b", "enabled": false}}, "zzz": 1})
    );
    let keys: Vec<_> = saved.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["self_prefix", "servers", "zzz"], "file order kept");
    assert!(text.ends_with("}\n"));
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(&tmp.0).unwrap().count(), 1);

    // A new file (and its directory) is created from to_json.
    let new_path = tmp.0.join("sub/dir/config.json");
    let fresh = Config::embedded_default(new_path.clone());
    fresh.save().unwrap();
    let reloaded = load_with_env(&new_path, &no_env).unwrap();
    assert_eq!(reloaded.servers, fresh.servers);
}

#[test]
fn save_refuses_to_lose_information() {
    let tmp = TempDir::new("refuse");
    let path = tmp.write("config.json", r#"{"mcpServers": {"a": {"command": "a"}}}"#);
    let config = load_with_env(&path, &no_env).unwrap();
    let err = config.save().unwrap_err();
    assert!(matches!(err, ConfigError::NotSaved { .. }), "{err}");

    let path = tmp.write(
        "broken.json",
        r#"{"servers": {"a": {"source": "s", "command": "a"}}}"#,
    );
    let config = load_with_env(&path, &no_env).unwrap();
    std::fs::write(&path, "{ oops").unwrap();
    let err = config.save().unwrap_err();
    assert!(err.to_string().contains("fix it first"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ oops");
}

#[cfg(unix)]
#[test]
fn atomic_write_keeps_permissions_and_follows_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("atomic");
    let real = tmp.write("real.json", "{}");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = tmp.0.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_json_atomic(&link, &json!({"a": 1})).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "{\n  \"a\": 1\n}\n"
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    let new = tmp.0.join("new.json");
    write_json_atomic(&new, &json!({})).unwrap();
    let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn error_messages_examples() {
    // Kept as documentation of the formats; printed with --nocapture.
    let errors = [
        parse_err("{\"servers\": {\"a\": {,}}}"),
        parse_err(
            "{\"servers\": {\"fs\": {\"source\": \"x\", \"command\": \"npx\", \"args\": \"-y pkg\"}}}",
        ),
        parse_err(
            "{\"servers\": {\"fs\": {\"source\": \"x\", \"command\": \"npx\", \"prefix\": \"my_fs\"}}}",
        ),
        parse_err("{\"servers\": {\"fs\": {\"source\": \"x\"}}}"),
        parse_err("{\"servers\": {\"w\": {\"source\": \"x\", \"uri\": \"localhost:80\"}}}"),
        parse_env("{}", &[("MAGG_STDERR_SHOW", "sometimes")]).unwrap_err(),
        parse_err(
            "{\"mcpServers\": {\"gh\": {\"command\": \"gh\", \"env\": {\"T\": \"${GH_TOKEN}\"}}}}",
        ),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(text.contains("/cfg/config.json"), "{text}");
        assert!(text.contains("Fix: "), "{text}");
        println!("{text}");
    }
}

// ---- validation of what used to pass without a word ----

#[test]
fn args_env_and_header_items_must_be_strings() {
    let err = parse_err(
        "{\"servers\": {\"fs\": {\"source\": \"x\", \"command\": \"srv\",\n  \"args\": [\"--port\", 1, 2]}}}",
    );
    assert_eq!(err.field(), Some("servers.fs.args[1]"));
    assert_eq!(err.line(), Some(2));
    let msg = err.to_string();
    assert!(
        msg.starts_with("/cfg/config.json:2:")
            && msg.contains("servers.fs.args[1]: expected a string, found the number 1"),
        "{msg}"
    );
    assert!(
        msg.contains("Fix: put the value in double quotes: \"1\""),
        "{msg}"
    );

    let err = parse_err(
        r#"{"servers": {"fs": {"source": "x", "command": "srv", "env": {"A": 1, "B": true}}}}"#,
    );
    assert_eq!(err.field(), Some("servers.fs.env.A"));
    assert!(
        err.to_string()
            .contains("expected a string, found the number 1; every value must be a string"),
        "{err}"
    );
    let err =
        parse_err(r#"{"servers": {"fs": {"source": "x", "command": "srv", "env": {"B": true}}}}"#);
    assert!(err.to_string().contains("\"true\""), "{err}");

    let err =
        parse_err(r#"{"mcpServers": {"gh": {"url": "http://x/mcp", "headers": {"X-Id": 7}}}}"#);
    assert_eq!(err.field(), Some("mcpServers.gh.headers.X-Id"));
    let err = parse_err(r#"{"mcpServers": {"gh": {"command": "gh", "args": [false]}}}"#);
    assert_eq!(err.field(), Some("mcpServers.gh.args[0]"));
}

#[test]
fn command_and_uri_together_are_rejected() {
    let text = "{\"servers\": {\"both\": {\"source\": \"s\", \"command\": \"srv\",\n  \"uri\": \"http://localhost:8000/mcp\"}}}";
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.both.uri"));
    assert_eq!((err.line(), err.column()), (Some(2), Some(3)));
    let msg = err.to_string();
    assert!(
        msg.contains("server \"both\" has both \"command\" and \"uri\""),
        "{msg}"
    );
    assert!(
        msg.contains("Fix: remove \"uri\" to run the command"),
        "{msg}"
    );

    let err = parse_err(r#"{"mcpServers": {"m": {"command": "srv", "url": "http://x/mcp"}}}"#);
    assert_eq!(err.field(), Some("mcpServers.m.url"));
    assert!(err.to_string().contains("\"command\" and \"url\""), "{err}");

    // Even a disabled server may not have both: enabling it would not say which one runs.
    let err = parse_err(
        r#"{"servers": {"off": {"source": "s", "command": "srv", "uri": "http://x/mcp", "enabled": false}}}"#,
    );
    assert_eq!(err.field(), Some("servers.off.uri"));
}

#[test]
fn duplicate_keys_are_rejected_naming_the_key() {
    let text = "{\n  \"servers\": {\n    \"fs\": {\"source\": \"a\", \"command\": \"one\"},\n    \"fs\": {\"source\": \"b\", \"command\": \"two\"}\n  }\n}";
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.fs"));
    assert_eq!((err.line(), err.column()), (Some(4), Some(5)));
    let msg = err.to_string();
    assert!(
        msg.starts_with("/cfg/config.json:4:5: servers.fs: key \"fs\" appears twice in the same object (first on line 3)"),
        "{msg}"
    );
    assert!(msg.contains("Fix: remove one of the two"), "{msg}");

    let err = parse_err(
        r#"{"servers": {"fs": {"source": "a", "command": "x", "env": {"TOKEN": "1", "TOKEN": "2"}}}}"#,
    );
    assert_eq!(err.field(), Some("servers.fs.env.TOKEN"));
    let err = parse_err(r#"{"read_only": true, "servers": {}, "read_only": false}"#);
    assert_eq!(err.field(), Some("read_only"));
    let err = parse_err(r#"{"kits": {"k": {"servers": [{"a": 1, "a": 2}]}}}"#);
    assert_eq!(err.field(), Some("kits.k.servers[0].a"));

    // Equal keys in different objects are fine, and so are escaped look-alikes.
    parse(r#"{"servers": {"a": {"source": "s", "command": "x", "env": {"source": "1"}}}, "x": {"a\u0062": 1, "b": 2}}"#)
        .unwrap();
}

#[test]
fn negative_durations_are_rejected() {
    for key in [
        "backend_init_timeout",
        "backend_call_timeout",
        "list_wait",
        "reload_poll_interval",
        "session_idle_timeout",
        "http_read_timeout",
        "shutdown_timeout",
    ] {
        let err = parse_err(&format!("{{\"servers\": {{}},\n \"{key}\": -5}}"));
        assert_eq!(err.field(), Some(key));
        assert_eq!(err.line(), Some(2));
        let msg = err.to_string();
        assert!(
            msg.contains("-5 is not a usable number of seconds"),
            "{msg}"
        );
        assert!(msg.contains("Fix: use a number of seconds"), "{msg}");
    }
    let err = parse_env("{}", &[("MAGG_BACKEND_CALL_TIMEOUT", "-1")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Env { var, .. } if var == "MAGG_BACKEND_CALL_TIMEOUT"));
    assert!(err.to_string().contains("0 waits forever"), "{err}");
    // 0 still means no limit.
    let config = parse(r#"{"backend_init_timeout": 0, "backend_call_timeout": 0}"#).unwrap();
    assert_eq!(config.settings.backend_init_timeout, None);
    assert_eq!(config.settings.backend_call_timeout, None);
}

#[test]
fn empty_prefix_sep_is_rejected() {
    let err = parse_err("{\n  \"prefix_sep\": \"\"\n}");
    assert_eq!(err.field(), Some("prefix_sep"));
    assert_eq!(err.line(), Some(2));
    let msg = err.to_string();
    assert!(
        msg.contains("an empty separator makes tool names ambiguous"),
        "{msg}"
    );
    assert!(msg.contains("Fix: use \"_\" (the default)"), "{msg}");
    // An empty MAGG_PREFIX_SEP is ignored like every empty variable.
    let config = parse_env("{}", &[("MAGG_PREFIX_SEP", "")]).unwrap();
    assert_eq!(config.settings.prefix_sep, "_");
}

#[test]
fn a_server_may_not_use_magg_s_own_prefix() {
    let text = "{\"servers\": {\n  \"mine\": {\"source\": \"s\", \"command\": \"srv\", \"prefix\": \"magg\"}\n}}";
    let err = parse_err(text);
    assert_eq!(err.field(), Some("servers.mine.prefix"));
    assert_eq!(err.line(), Some(2));
    let msg = err.to_string();
    assert!(
        msg.contains("prefix \"magg\" of server \"mine\" is magg's own prefix (self_prefix)"),
        "{msg}"
    );
    assert!(
        msg.contains("Fix: give the server another \"prefix\" (e.g. \"maggmine\")"),
        "{msg}"
    );

    // The prefix magg's tools really use counts: from the file or the environment.
    let text = r#"{"self_prefix": "tools", "servers": {"t": {"source": "s", "command": "x", "prefix": "tools"}}}"#;
    assert_eq!(parse_err(text).field(), Some("servers.t.prefix"));
    let text = r#"{"servers": {"t": {"source": "s", "command": "x", "prefix": "own"}}}"#;
    let err = parse_env(text, &[("MAGG_SELF_PREFIX", "own")]).unwrap_err();
    assert_eq!(err.field(), Some("servers.t.prefix"));
    // Fine with another self_prefix, with none, or for a disabled server.
    parse_env(text, &[("MAGG_SELF_PREFIX", "magg")]).unwrap();
    parse(r#"{"self_prefix": "", "servers": {"t": {"source": "s", "command": "x", "prefix": "magg"}}}"#)
        .unwrap();
    parse(r#"{"servers": {"t": {"source": "s", "command": "x", "prefix": "magg", "enabled": false}}}"#)
        .unwrap();
    // A prefix derived from an mcpServers name steers clear of it.
    let config = parse(r#"{"mcpServers": {"magg": {"command": "x"}}}"#).unwrap();
    assert_eq!(config.servers["magg"].prefix.as_deref(), Some("magg2"));
}

#[test]
fn an_explicit_config_that_does_not_exist_is_empty_not_the_default() {
    let tmp = TempDir::new("explicit-missing");
    let missing = tmp.0.join("missing.json");
    let config = load_discovered_with(Some(&missing), &no_env, &tmp.0, None).unwrap();
    assert!(!config.exists);
    assert_eq!(config.path, missing);
    assert!(config.servers.is_empty(), "{:?}", config.servers);

    let env = env_of(&[("MAGG_CONFIG_PATH", "nope/config.json")]);
    let config = load_discovered_with(None, &env, &tmp.0, None).unwrap();
    assert!(!config.exists);
    assert!(config.servers.is_empty());

    // With no config named, the embedded default still runs.
    let config = load_discovered_with(None, &no_env, &tmp.0, None).unwrap();
    assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["everything"]);
}

#[test]
fn an_empty_file_at_startup_is_an_empty_config() {
    for text in ["", "  \n"] {
        let config = parse(text).unwrap();
        assert!(config.servers.is_empty());
        assert_eq!(config.settings, Settings::default());
    }
}

// ---- secrets ----

#[test]
fn masked_hides_secrets_in_uris_and_arguments() {
    let config = parse(
        r#"{"servers": {
            "api": {"source": "s", "uri": "https://me:hunter2@x.example/mcp?api_key=sk-1&region=eu"},
            "cli": {"source": "s", "command": "srv --token abc", "args": ["--api-key", "k-9", "--verbose", "--secret=s3", "GITHUB_TOKEN=ghp", "plain=1", "--port", "8"]}
        }}"#,
    )
    .unwrap();
    let api = config.servers["api"].masked();
    assert_eq!(
        api.uri.as_deref(),
        Some("https://me:***@x.example/mcp?api_key=***&region=eu")
    );
    let cli = config.servers["cli"].masked();
    assert_eq!(cli.command.as_deref(), Some("srv --token ***"));
    assert_eq!(
        cli.args,
        [
            "--api-key",
            "***",
            "--verbose",
            "--secret=***",
            "GITHUB_TOKEN=***",
            "plain=1",
            "--port",
            "8"
        ]
    );
    assert!(config.servers["api"].has_secrets());
}

#[test]
fn masked_hides_env_and_header_values_and_keeps_names() {
    let config = parse(
        r#"{"servers": {
            "api": {"source": "s", "uri": "http://x/mcp",
                    "transport": {"headers": {"Authorization": "Bearer sk-123", "X-Empty": ""}, "keep_alive": true}},
            "cli": {"source": "s", "command": "srv", "args": ["--verbose"], "env": {"TOKEN": "ghp_abc", "EMPTY": ""}},
            "plain": {"source": "s", "command": "srv"}
        }}"#,
    )
    .unwrap();
    let api = config.servers["api"].masked();
    assert_eq!(
        api.to_json()["transport"],
        json!({"headers": {"Authorization": SECRET_MASK, "X-Empty": ""}, "keep_alive": true})
    );
    let cli = config.servers["cli"].masked();
    assert_eq!(cli.to_json()["env"], json!({"TOKEN": "***", "EMPTY": ""}));
    assert_eq!(cli.args, ["--verbose"]);
    assert!(config.servers["api"].has_secrets() && config.servers["cli"].has_secrets());
    assert!(!config.servers["plain"].has_secrets());
    assert_eq!(config.servers["plain"].masked(), config.servers["plain"]);
    // The config itself keeps the real values.
    assert_eq!(config.servers["cli"].env["TOKEN"], "ghp_abc");
}

// ---- edits under the file's lock ----

#[test]
fn edit_locked_applies_the_change_to_the_file_as_it_is_now() {
    let tmp = TempDir::new("edit");
    let path = tmp.write(
        "config.json",
        r#"{"servers": {"a": {"source": "s", "command": "a", "env": {"K": "secret"}}}, "zzz": 1}"#,
    );
    let loaded = load_with_env(&path, &no_env).unwrap();
    // Another process adds "b" after this one loaded the file.
    std::fs::write(
        &path,
        r#"{"servers": {"a": {"source": "s", "command": "a", "env": {"K": "secret"}}, "b": {"source": "s", "command": "b"}}, "zzz": 1}"#,
    )
    .unwrap();
    let lock = ConfigLock::acquire(&path).unwrap();
    let (value, saved) = edit_locked(&lock, &loaded, |config| {
        let mut c = ServerConfig::new("c", "s");
        c.command = Some("c".into());
        config.servers.insert("c".into(), c);
        Ok::<_, String>(config.servers.len())
    })
    .unwrap();
    drop(lock);
    assert_eq!(value, 3);
    assert!(saved.exists);
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk["servers"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["a", "b", "c"],
        "the other process's server is kept"
    );
    assert_eq!(
        on_disk["servers"]["a"]["env"]["K"], "secret",
        "never masked on disk"
    );
    assert_eq!(on_disk["zzz"], 1);
    assert!(lock_path(&path).ends_with("config.json.lock"));

    // A refused change writes nothing.
    let before = std::fs::read_to_string(&path).unwrap();
    let lock = ConfigLock::acquire(&path).unwrap();
    let err = edit_locked(&lock, &loaded, |_| Err::<(), _>("no".to_owned())).unwrap_err();
    assert!(
        matches!(err, EditError::Refused(ref e) if e == "no"),
        "{err}"
    );
    // An invalid result is refused with the validation error.
    let err = edit_locked(&lock, &loaded, |config| {
        config.servers["a"].args = vec![];
        config.servers["a"].uri = Some("http://x/mcp".into());
        Ok::<_, String>(())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the change would make an invalid config: "),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn edit_locked_on_an_empty_or_missing_file_starts_from_the_running_config() {
    let tmp = TempDir::new("edit-empty");
    let path = tmp.write(
        "config.json",
        r#"{"servers": {"a": {"source": "s", "command": "a"}}}"#,
    );
    let running = load_with_env(&path, &no_env).unwrap();
    std::fs::write(&path, "").unwrap();
    let lock = ConfigLock::acquire(&path).unwrap();
    let (_, saved) = edit_locked(&lock, &running, |config| {
        config.servers["a"].enabled = false;
        Ok::<_, String>(())
    })
    .unwrap();
    assert_eq!(saved.servers.len(), 1);
    let on_disk = load_with_env(&path, &no_env).unwrap();
    assert!(!on_disk.servers["a"].enabled);
}

#[test]
fn the_config_lock_is_held_until_dropped() {
    let tmp = TempDir::new("lock");
    let path = tmp.write("config.json", "{}");
    let held = ConfigLock::try_acquire(&path)
        .unwrap()
        .expect("free at first");
    assert!(ConfigLock::try_acquire(&path).unwrap().is_none(), "held");
    drop(held);
    assert!(
        ConfigLock::try_acquire(&path).unwrap().is_some(),
        "released"
    );
}

#[test]
fn http_settings_from_the_file_and_the_environment() {
    let s = parse("{}").unwrap().settings;
    assert_eq!(s.session_idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(s.max_sessions, 1000);
    assert_eq!(s.http_read_timeout, Some(Duration::from_secs(30)));
    assert_eq!((s.allowed_hosts, s.allowed_origins), (None, None));

    let s = parse(
        r#"{"session_idle_timeout": 0, "max_sessions": 5, "http_read_timeout": 2.5,
            "allowed_hosts": ["mcp.example"], "allowed_origins": ["https://app.example", "null"]}"#,
    )
    .unwrap()
    .settings;
    assert_eq!(s.session_idle_timeout, None);
    assert_eq!(s.max_sessions, 5);
    assert_eq!(s.http_read_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(s.allowed_hosts, Some(vec!["mcp.example".to_owned()]));
    assert_eq!(
        s.allowed_origins,
        Some(vec!["https://app.example".to_owned(), "null".to_owned()])
    );

    let env = [
        ("MAGG_MAX_SESSIONS", "0"),
        ("MAGG_ALLOWED_HOSTS", "a.example, b.example:8080,"),
        ("MAGG_SESSION_IDLE_TIMEOUT", "60"),
    ];
    let s = parse_env("{}", &env).unwrap().settings;
    assert_eq!(s.max_sessions, 0);
    assert_eq!(
        s.allowed_hosts,
        Some(vec!["a.example".to_owned(), "b.example:8080".to_owned()])
    );
    assert_eq!(s.session_idle_timeout, Some(Duration::from_secs(60)));
}

#[test]
fn bad_http_settings_are_rejected_with_a_fix() {
    for (text, needle) in [
        (r#"{"max_sessions": -1}"#, "not a usable number of sessions"),
        (
            r#"{"max_sessions": 2.5}"#,
            "not a usable number of sessions",
        ),
        (r#"{"max_sessions": "10"}"#, "expected a whole number"),
        (r#"{"allowed_hosts": "a.example"}"#, "expected a list"),
        (
            r#"{"allowed_origins": ["app.example"]}"#,
            "https://app.example",
        ),
    ] {
        let msg = parse_err(text).to_string();
        assert!(msg.contains(needle), "{text}: {msg}");
        assert!(msg.contains("Fix: "), "{text}: {msg}");
    }
    let err = parse_env("{}", &[("MAGG_MAX_SESSIONS", "many")]).unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
}

#[test]
fn shutdown_timeout_from_the_file_and_the_environment() {
    let s = parse("{}").unwrap().settings;
    assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
    let s = parse(r#"{"shutdown_timeout": 2.5}"#).unwrap().settings;
    assert_eq!(s.shutdown_timeout, Duration::from_millis(2500));
    let s = parse(r#"{"shutdown_timeout": 0}"#).unwrap().settings;
    assert_eq!(s.shutdown_timeout, Duration::ZERO);
    let s = parse_env(
        r#"{"shutdown_timeout": 2}"#,
        &[("MAGG_SHUTDOWN_TIMEOUT", "30")],
    )
    .unwrap()
    .settings;
    assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
    let err = parse_err(r#"{"shutdown_timeout": "soon"}"#);
    assert_eq!(err.field(), Some("shutdown_timeout"));
}

#[test]
fn tool_search_settings_from_the_file_and_the_environment() {
    use super::ToolSearch;
    let s = parse("{}").unwrap().settings;
    assert_eq!(s.tool_search, ToolSearch::Off);
    assert_eq!(s.tool_search_threshold, 40);
    assert!(s.tool_search_pinned.is_empty());
    let s = parse(
        r#"{"tool_search": "auto", "tool_search_threshold": 10, "tool_search_pinned": ["time_*"]}"#,
    )
    .unwrap()
    .settings;
    assert_eq!(s.tool_search, ToolSearch::Auto);
    assert_eq!(s.tool_search_threshold, 10);
    assert_eq!(s.tool_search_pinned, ["time_*"]);
    assert_eq!(
        parse(r#"{"tool_search": true}"#)
            .unwrap()
            .settings
            .tool_search,
        ToolSearch::On
    );
    let s = parse_env(
        r#"{"tool_search": "off"}"#,
        &[
            ("MAGG_TOOL_SEARCH", "on"),
            ("MAGG_TOOL_SEARCH_PINNED", "a_*, b_c"),
            ("MAGG_TOOL_SEARCH_THRESHOLD", "5"),
        ],
    )
    .unwrap()
    .settings;
    assert_eq!(s.tool_search, ToolSearch::On);
    assert_eq!(s.tool_search_pinned, ["a_*", "b_c"]);
    assert_eq!(s.tool_search_threshold, 5);
    let err = parse_err(r#"{"tool_search": "sometimes"}"#);
    assert_eq!(err.field(), Some("tool_search"));
    assert!(err.to_string().contains("\"auto\""), "{err}");
    let err = parse_err(r#"{"tool_search_threshold": -3}"#);
    assert_eq!(err.field(), Some("tool_search_threshold"));
}

#[test]
fn component_servers_take_wasm_or_a_wasm_source_and_grants() {
    let text = r#"{"servers": {
        "a": {"source": "file:///opt/fetch.wasm", "grants": {"http": ["example.com"], "dirs": [{"path": "data", "write": true}]}},
        "b": {"source": "s", "wasm": "p/b.wasm"}
    }}"#;
    let config = parse_str(Path::new("/etc/magg/config.json"), text, &no_env).expect("config");
    let a = &config.servers["a"];
    assert_eq!(a.component.as_deref(), Some(Path::new("/opt/fetch.wasm")));
    let grants = a.grants.as_ref().expect("grants");
    assert_eq!(grants.http, vec!["example.com".to_owned()]);
    assert_eq!(
        grants.dirs_from(&a.base_dir)[0].path,
        PathBuf::from("/etc/magg/data")
    );
    assert_eq!(
        config.servers["b"].component.as_deref(),
        Some(Path::new("/etc/magg/p/b.wasm"))
    );
    // Written back as it was given.
    let written = config.servers["a"].to_json();
    assert_eq!(
        written["grants"]["dirs"][0],
        json!({"path": "data", "write": true})
    );
    assert!(written.get("wasm").is_none(), "{written}");

    let typo = r#"{"servers": {"a": {"wasm": "a.wasm", "grants": {"hosts": ["x"]}}}}"#;
    let err = parse_str(Path::new("/etc/magg/config.json"), typo, &no_env).unwrap_err();
    assert_eq!(err.field(), Some("servers.a.grants"));
    assert!(err.to_string().contains("hosts"), "{err}");

    let both = r#"{"servers": {"a": {"wasm": "a.wasm", "command": "npx"}}}"#;
    let err = parse_str(Path::new("/etc/magg/config.json"), both, &no_env).unwrap_err();
    assert!(
        err.to_string()
            .contains("a program, a URL or a WebAssembly component"),
        "{err}"
    );
}

#[test]
fn isolation_is_read_in_both_formats_and_written_back_unchanged() {
    let config = parse(
        r#"{"servers": {"a": {"source": "s", "command": "x", "isolation": "session"},
                        "b": {"source": "s", "command": "y", "isolation": "shared"},
                        "c": {"source": "s", "command": "z"}}}"#,
    )
    .unwrap();
    assert_eq!(config.servers["a"].isolation, Isolation::Session);
    assert_eq!(config.servers["b"].isolation, Isolation::Shared);
    assert_eq!(config.servers["c"].isolation, Isolation::Shared);
    let written = config.to_json();
    assert_eq!(written["servers"]["a"]["isolation"], "session");
    assert!(written["servers"]["c"].get("isolation").is_none());
    let config =
        parse(r#"{"mcpServers": {"a": {"command": "x", "isolation": "session"}}}"#).unwrap();
    assert_eq!(config.servers["a"].isolation, Isolation::Session);
}

#[test]
fn an_unknown_isolation_names_the_server_the_value_and_the_choices() {
    let err =
        parse_err(r#"{"servers": {"tb": {"source": "s", "command": "x", "isolation": "user"}}}"#);
    assert_eq!(err.field(), Some("servers.tb.isolation"));
    let text = err.to_string();
    for needed in ["\"tb\"", "\"user\"", "\"shared\"", "\"session\""] {
        assert!(text.contains(needed), "{needed} missing: {text}");
    }
    let err = parse_err(r#"{"servers": {"tb": {"source": "s", "command": "x", "isolation": 1}}}"#);
    assert_eq!(err.field(), Some("servers.tb.isolation"));
}

#[test]
fn session_backends_max_from_the_file_and_the_environment() {
    assert_eq!(parse("{}").unwrap().settings.session_backends_max, 64);
    let s = parse(r#"{"session_backends_max": 3}"#).unwrap().settings;
    assert_eq!(s.session_backends_max, 3);
    let s = parse_env(
        r#"{"session_backends_max": 3}"#,
        &[("MAGG_SESSION_BACKENDS_MAX", "0")],
    )
    .unwrap()
    .settings;
    assert_eq!(s.session_backends_max, 0);
    let err = parse_err(r#"{"session_backends_max": -1}"#);
    assert_eq!(err.field(), Some("session_backends_max"));
}
