//! Tests of kit discovery, reading, loading, unloading and export.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::*;
use crate::config::{self, Config};

/// The kit file example from Magg's docs/kits.md.
const MAGG_DOCS_KIT: &str = r#"{
  "name": "calculator",
  "description": "Basic calculator functionality for MCP",
  "author": "Magg Team",
  "version": "1.0.0",
  "keywords": ["math", "calculator", "arithmetic"],
  "links": {
    "homepage": "https://github.com/example/calculator-kit",
    "docs": "https://github.com/example/calculator-kit/wiki"
  },
  "servers": {
    "calc": {
      "source": "https://github.com/example/mcp-calc-server",
      "command": "python",
      "args": ["-m", "mcp_calc_server"],
      "notes": "Basic calculator server"
    }
  }
}"#;

/// Magg's "custom kit" example from docs/kits.md (an HTTP server, disabled).
const MAGG_DOCS_CUSTOM_KIT: &str = r#"{
  "name": "my-tools",
  "description": "My personal MCP server collection",
  "author": "Your Name",
  "version": "1.0.0",
  "servers": {
    "tool1": {
      "source": "https://github.com/you/tool1",
      "command": "node",
      "args": ["index.js"],
      "enabled": true
    },
    "tool2": {
      "source": "https://github.com/you/tool2",
      "uri": "http://localhost:8080/mcp",
      "enabled": false
    }
  }
}"#;

/// Magg's bundled magg/contrib/kit.d/example.json.
const MAGG_CONTRIB_EXAMPLE: &str = r#"{
  "name": "example",
  "description": "Example kit with common MCP servers",
  "author": "Magg Contributors",
  "version": "1.0.0",
  "keywords": ["example", "demo"],
  "servers": {
    "filesystem": {
      "source": "npx @modelcontextprotocol/server-filesystem",
      "command": "npx",
      "args": ["@modelcontextprotocol/server-filesystem", "/tmp"],
      "notes": "File system access server with /tmp as root"
    },
    "memory": {
      "source": "npx @modelcontextprotocol/server-memory",
      "command": "npx",
      "args": ["@modelcontextprotocol/server-memory"],
      "notes": "In-memory key-value store"
    }
  }
}"#;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn kit_text(name: &str, servers: Value) -> String {
    json!({"name": name, "description": format!("{name} kit"), "servers": servers}).to_string()
}

fn kit_from(dir: &Path, name: &str, servers: Value) -> Kit {
    let path = write(dir, &format!("{name}.json"), &kit_text(name, servers));
    read_kit(&path).unwrap()
}

fn config_from(dir: &Path, value: Value) -> Config {
    let path = write(dir, "config.json", &value.to_string());
    config::load_with_env(&path, &|_| None).unwrap()
}

fn stdio(command: &str, args: &[&str]) -> Value {
    json!({"source": format!("https://example.com/{command}"), "command": command, "args": args})
}

#[test]
fn kit_dirs_in_priority_order_existing_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config_path = root.join("cfg/config.json");
    std::fs::create_dir_all(root.join("cfg/kit.d")).unwrap();
    std::fs::create_dir_all(root.join("a/kit.d")).unwrap();
    std::fs::create_dir_all(root.join("shipped")).unwrap();
    // b has no kit.d; "cfg" is also a search path, so its kit.d is listed once.
    let search = vec![root.join("a"), root.join("b"), root.join("cfg")];
    let dirs = kit_dirs_with(&config_path, &search, Some(&root.join("shipped")));
    assert_eq!(
        dirs,
        vec![
            root.join("cfg/kit.d"),
            root.join("a/kit.d"),
            root.join("shipped")
        ]
    );
    let dirs = kit_dirs_with(&config_path, &[], Some(&root.join("missing")));
    assert_eq!(dirs, vec![root.join("cfg/kit.d")]);
}

#[test]
fn discovery_order_and_first_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    let server = json!({"s": stdio("uvx", &["x"])});
    write(&first, "web.json", &kit_text("web", server.clone()));
    write(&second, "web.json", &kit_text("other-web", server.clone()));
    write(&second, "b.json", &kit_text("b", server.clone()));
    write(&second, "a.json", &kit_text("a", server.clone()));
    write(&second, "notes.txt", "not a kit");
    write(&second, ".hidden.json", "{");
    // A broken file shadows a later good one of the same name.
    write(
        &first,
        "dev.json",
        "{\"name\": \"dev\",\n \"servers\": {,}}",
    );
    write(&second, "dev.json", &kit_text("dev", server.clone()));

    let dirs = vec![first.clone(), tmp.path().join("missing"), second.clone()];
    let (kits, errors) = discover(&dirs);
    let names: Vec<&str> = kits.keys().map(String::as_str).collect();
    assert_eq!(names, ["web", "a", "b"]);
    assert_eq!(kits["web"].path, first.join("web.json"));
    assert_eq!(kits["web"].declared_name(), "web");
    assert_eq!(kits["a"].path, second.join("a.json"));

    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path(), first.join("dev.json"));
    assert_eq!(errors[0].kit_name().as_deref(), Some("dev"));
    let message = errors[0].to_string();
    assert!(message.contains("dev.json:2:"), "{message}");
}

#[test]
fn kit_name_is_the_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "tools.json", &kit_text("my-tools", json!({})));
    let kit = read_kit(&path).unwrap();
    assert_eq!(kit.name, "tools");
    assert_eq!(kit.declared_name(), "my-tools");
    assert_eq!(kit.to_json()["name"], "my-tools");
    assert_eq!(kit.details(false)["name"], "my-tools");

    let path = write(tmp.path(), "noname.json", r#"{"servers": {}}"#);
    let kit = read_kit(&path).unwrap();
    assert_eq!(kit.name, "noname");
    assert_eq!(kit.declared_name, None);
    assert!(kit.servers.is_empty());
}

#[test]
fn reads_magg_kit_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "calculator.json", MAGG_DOCS_KIT);
    let kit = read_kit(&path).unwrap();
    assert_eq!(kit.name, "calculator");
    assert_eq!(
        kit.description.as_deref(),
        Some("Basic calculator functionality for MCP")
    );
    assert_eq!(kit.author.as_deref(), Some("Magg Team"));
    assert_eq!(kit.version.as_deref(), Some("1.0.0"));
    assert_eq!(kit.keywords, ["math", "calculator", "arithmetic"]);
    assert_eq!(
        kit.links["docs"],
        "https://github.com/example/calculator-kit/wiki"
    );
    assert_eq!(kit.path, path);
    let calc = &kit.servers["calc"];
    assert_eq!(calc.name, "calc");
    assert_eq!(calc.source, "https://github.com/example/mcp-calc-server");
    assert_eq!(calc.command.as_deref(), Some("python"));
    assert_eq!(calc.args, ["-m", "mcp_calc_server"]);
    assert_eq!(calc.notes.as_deref(), Some("Basic calculator server"));
    assert_eq!(calc.prefix, None);
    assert!(calc.enabled);

    let path = write(tmp.path(), "my-tools.json", MAGG_DOCS_CUSTOM_KIT);
    let kit = read_kit(&path).unwrap();
    assert_eq!(kit.keywords, Vec::<String>::new());
    assert_eq!(
        kit.servers["tool2"].uri.as_deref(),
        Some("http://localhost:8080/mcp")
    );
    assert!(!kit.servers["tool2"].enabled);

    let path = write(tmp.path(), "example.json", MAGG_CONTRIB_EXAMPLE);
    let kit = read_kit(&path).unwrap();
    let names: Vec<&str> = kit.servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["filesystem", "memory"]);
}

#[test]
fn kits_in_kit_servers_are_ignored_and_unknown_keys_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let text = json!({
        "name": "k", "homepage": "https://example.com",
        "servers": {"s": {"source": "x", "command": "uvx", "kits": ["other"], "color": "red"}}
    });
    let kit = read_kit(&write(tmp.path(), "k.json", &text.to_string())).unwrap();
    assert!(kit.servers["s"].kits.is_empty());
    assert_eq!(kit.servers["s"].extra["color"], "red");
    assert_eq!(kit.extra["homepage"], "https://example.com");
    assert_eq!(kit.to_json()["homepage"], "https://example.com");
}

#[test]
fn invalid_kits_name_the_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_prefix = "{\n  \"name\": \"k\",\n  \"servers\": {\n    \"s\": {\n      \"source\": \"x\",\n      \"command\": \"uvx\",\n      \"prefix\": \"my_tools\"\n    }\n  }\n}";
    let path = write(tmp.path(), "k.json", bad_prefix);
    let err = read_kit(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{}:7:7: invalid kit: servers.s.prefix:",
            path.display()
        )),
        "{message}"
    );
    assert!(message.contains("\"my_tools\""), "{message}");

    let path = write(
        tmp.path(),
        "k2.json",
        "{\"name\": \"k\",\n \"keywords\": \"web\"}",
    );
    let message = read_kit(&path).unwrap_err().to_string();
    assert!(
        message.contains("k2.json:2:2: invalid kit: keywords:"),
        "{message}"
    );

    let path = write(
        tmp.path(),
        "k3.json",
        r#"{"servers": {"s": {"source": "x"}}}"#,
    );
    let message = read_kit(&path).unwrap_err().to_string();
    assert!(message.contains("needs a way to run"), "{message}");

    let path = write(tmp.path(), "k4.json", "[1, 2]");
    let message = read_kit(&path).unwrap_err().to_string();
    assert!(
        message.contains("k4.json: invalid kit: the top level is a list"),
        "{message}"
    );

    let path = tmp.path().join("absent.json");
    assert!(matches!(read_kit(&path), Err(KitError::Read { .. })));
}

#[test]
fn server_errors_keep_positions_on_one_line_and_with_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"{"description": "café ☕ \"servers\"", "servers": {}, "links": {"a": "b"}, "servers": {"s": {"source": "x", "command": "u", "prefix": "a_b"}}, "x": [1, {"y": "}"}]}"#;
    let path = write(tmp.path(), "k.json", text);
    let message = read_kit(&path).unwrap_err().to_string();
    let offset = text.find(r#""prefix""#).unwrap();
    let column = text[..offset].chars().count() + 1;
    assert!(
        message.contains(&format!(
            "k.json:1:{column}: invalid kit: servers.s.prefix:"
        )),
        "{message}"
    );
}

#[test]
fn resource_json_names_the_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = read_kit(&write(tmp.path(), "calculator.json", MAGG_DOCS_KIT)).unwrap();
    let resource = kit.resource_json();
    assert_eq!(resource["servers"]["calc"]["name"], "calc");
    assert_eq!(resource["links"], kit.to_json()["links"]);
}

#[test]
fn load_adds_tags_and_records() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = kit_from(
        tmp.path(),
        "web",
        json!({
            "fetch": {"source": "https://pypi.org/project/mcp-server-fetch/", "prefix": "fetch",
                      "command": "uvx", "args": ["mcp-server-fetch"]},
            "time": {"source": "https://pypi.org/project/mcp-server-time/", "prefix": "time",
                     "command": "uvx", "args": ["mcp-server-time"], "enabled": false}
        }),
    );
    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    let report = load_kit(&mut config, &kit, None).unwrap();
    assert_eq!(report.kit, "web");
    assert_eq!(report.added, ["fetch", "time"]);
    assert!(report.tagged.is_empty() && report.skipped.is_empty());
    assert_eq!(config.servers["fetch"].kits, ["web"]);
    assert!(config.servers["fetch"].enabled);
    assert!(!config.servers["time"].enabled);
    assert_eq!(
        Value::Object(config.kits.clone()),
        json!({"web": {"name": "web", "description": "web kit",
                       "path": kit.path.to_string_lossy(), "source": "file"}})
    );
    assert_eq!(
        report.loaded_message(),
        "Kit 'web' loaded successfully. Added servers: fetch, time"
    );

    // Saved and read back, as Magg would write it.
    config.save().unwrap();
    let reread = config::load_with_env(&config.path, &|_| None).unwrap();
    assert_eq!(reread.servers, config.servers);
    assert_eq!(reread.kits, config.kits);
    let text = std::fs::read_to_string(&config.path).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["servers"]["time"]["enabled"], false);
    assert_eq!(saved["servers"]["fetch"]["kits"], json!(["web"]));
}

#[test]
fn enable_overrides_the_kit() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = kit_from(
        tmp.path(),
        "k",
        json!({"a": stdio("uvx", &["a"]), "b": {"source": "x", "command": "uvx", "enabled": false}}),
    );
    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    load_kit(&mut config, &kit, Some(true)).unwrap();
    assert!(config.servers["a"].enabled && config.servers["b"].enabled);

    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    load_kit(&mut config, &kit, Some(false)).unwrap();
    assert!(!config.servers["a"].enabled && !config.servers["b"].enabled);
}

#[test]
fn loading_twice_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = kit_from(tmp.path(), "web", json!({"s": stdio("uvx", &["s"])}));
    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    load_kit(&mut config, &kit, None).unwrap();
    let before = config.clone();
    let err = load_kit(&mut config, &kit, None).unwrap_err();
    assert!(matches!(err, KitError::AlreadyLoaded { .. }));
    assert!(err.to_string().contains("already loaded"), "{err}");
    assert_eq!(err.path(), config.path);
    assert_eq!(config, before);
}

#[test]
fn identical_server_from_another_kit_is_only_tagged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(
        tmp.path(),
        json!({
            "servers": {
                // Same command line; source, prefix and notes may differ.
                "git": {"source": "elsewhere", "prefix": "g", "notes": "mine",
                        "command": "uvx", "args": ["mcp-server-git"], "kits": ["base"]}
            },
            "kits": {"base": {"name": "base", "source": "file"}}
        }),
    );
    let kit = kit_from(
        tmp.path(),
        "dev",
        json!({"git": {"source": "https://pypi.org/project/mcp-server-git/", "prefix": "git",
                       "command": "uvx", "args": ["mcp-server-git"]}}),
    );
    let before = config.servers["git"].clone();
    let report = load_kit(&mut config, &kit, None).unwrap();
    assert_eq!(report.tagged, ["git"]);
    assert!(report.added.is_empty() && report.skipped.is_empty());
    let git = &config.servers["git"];
    assert_eq!(git.kits, ["base", "dev"]);
    assert_eq!(git.prefix.as_deref(), Some("g"));
    assert_eq!(git.source, before.source);
    assert_eq!(
        report.loaded_message(),
        "Kit 'dev' loaded successfully. Updated servers: git"
    );
}

#[test]
fn identical_user_server_is_left_untagged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(
        tmp.path(),
        json!({"servers": {"git": {"source": "mine", "command": "uvx", "args": ["mcp-server-git"]}}}),
    );
    let kit = kit_from(
        tmp.path(),
        "dev",
        json!({"git": stdio("uvx", &["mcp-server-git"])}),
    );
    let report = load_kit(&mut config, &kit, None).unwrap();
    assert!(report.added.is_empty() && report.tagged.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].1.contains("configured by the user"),
        "{report:?}"
    );
    assert!(config.servers["git"].kits.is_empty());

    let report = unload_kit(&mut config, "dev").unwrap();
    assert!(report.removed.is_empty());
    assert!(config.servers.contains_key("git"));
}

#[test]
fn conflicting_servers_are_skipped_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(
        tmp.path(),
        json!({
            "servers": {
                "fetch": {"source": "x", "command": "node", "args": ["my-fetch.js"]},
                "search": {"source": "x", "prefix": "web", "command": "uvx", "args": ["search"]},
                "envy": {"source": "x", "command": "uvx", "args": ["envy"], "env": {"A": "1"}}
            }
        }),
    );
    let kit = kit_from(
        tmp.path(),
        "web",
        json!({
            "fetch": {"source": "x", "prefix": "fetch", "command": "uvx", "args": ["mcp-server-fetch"]},
            "browse": {"source": "x", "prefix": "web", "command": "npx", "args": ["browse"]},
            "self": {"source": "x", "prefix": "magg", "command": "npx", "args": ["self"]},
            "quiet": {"source": "x", "prefix": "web", "command": "npx", "args": ["quiet"], "enabled": false},
            "envy": {"source": "x", "command": "uvx", "args": ["envy"], "env": {"A": "2"}},
            "time": {"source": "x", "prefix": "time", "command": "uvx", "args": ["mcp-server-time"]}
        }),
    );
    let before_fetch = config.servers["fetch"].clone();
    let report = load_kit(&mut config, &kit, None).unwrap();
    assert_eq!(report.added, ["quiet", "time"]);
    let skipped: IndexMap<&str, &str> = report
        .skipped
        .iter()
        .map(|(name, reason)| (name.as_str(), reason.as_str()))
        .collect();
    let names: Vec<&str> = skipped.keys().copied().collect();
    assert_eq!(names, ["fetch", "browse", "self", "envy"]);
    assert!(
        skipped["fetch"].contains("`node my-fetch.js`")
            && skipped["fetch"].contains("`uvx mcp-server-fetch`"),
        "{}",
        skipped["fetch"]
    );
    assert!(
        skipped["browse"].contains("'web' is already used by enabled server 'search'"),
        "{}",
        skipped["browse"]
    );
    assert!(
        skipped["self"].contains("magg's own"),
        "{}",
        skipped["self"]
    );
    assert!(
        skipped["envy"].contains("env differs"),
        "{}",
        skipped["envy"]
    );
    assert_eq!(config.servers["fetch"], before_fetch);
    assert!(config.servers["envy"].kits.is_empty());
    assert!(!config.servers.contains_key("browse"));
    // The kit is recorded even though some servers were skipped, as in Magg.
    assert!(config.kits.contains_key("web"));
    // The result still saves and loads: no duplicate enabled prefixes.
    config.save().unwrap();
    config::load_with_env(&config.path, &|_| None).unwrap();
}

#[test]
fn unload_removes_only_what_no_one_else_owns() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(
        tmp.path(),
        json!({
            "servers": {
                "mine": {"source": "x", "command": "uvx", "args": ["mine"]},
                "only-web": {"source": "x", "command": "uvx", "args": ["a"], "kits": ["web"]},
                "shared": {"source": "x", "command": "uvx", "args": ["b"], "kits": ["dev", "web"]},
                "only-dev": {"source": "x", "command": "uvx", "args": ["c"], "kits": ["dev"]}
            },
            "kits": {
                "web": {"name": "web", "description": "", "path": "/x/web.json", "source": "file"},
                "dev": {"name": "dev", "source": "file"}
            }
        }),
    );
    let report = unload_kit(&mut config, "web").unwrap();
    assert_eq!(report.removed, ["only-web"]);
    assert_eq!(
        report.kept,
        [("shared".to_owned(), "also part of kit 'dev'".to_owned())]
    );
    let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["mine", "shared", "only-dev"]);
    assert_eq!(config.servers["shared"].kits, ["dev"]);
    let kits: Vec<&str> = config.kits.keys().map(String::as_str).collect();
    assert_eq!(kits, ["dev"]);
    assert_eq!(
        report.unloaded_message(),
        "Kit 'web' unloaded successfully. Removed servers: only-web. \
         Updated servers: shared (also part of kit 'dev')"
    );

    let err = unload_kit(&mut config, "web").unwrap_err();
    assert!(matches!(err, KitError::NotLoaded { .. }));
    assert!(err.to_string().contains("(loaded: dev)"), "{err}");

    unload_kit(&mut config, "dev").unwrap();
    let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["mine"]);
    assert!(config.kits.is_empty());
}

#[test]
fn load_then_unload_restores_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(
        tmp.path(),
        json!({"servers": {"mine": {"source": "x", "command": "uvx", "args": ["mine"]}}}),
    );
    let original = config.clone();
    let kit = kit_from(
        tmp.path(),
        "web",
        json!({"a": stdio("uvx", &["a"]), "b": stdio("uvx", &["b"])}),
    );
    let loaded = load_kit(&mut config, &kit, None).unwrap();
    let unloaded = unload_kit(&mut config, "web").unwrap();
    assert_eq!(loaded.added, unloaded.removed);
    assert_eq!(config, original);
}

#[test]
fn export_round_trips_through_read_kit() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_from(
        tmp.path(),
        json!({
            "servers": {
                "fetch": {"source": "https://pypi.org/project/mcp-server-fetch/", "prefix": "fetch",
                          "command": "uvx", "args": ["mcp-server-fetch"], "notes": "n",
                          "env": {"A": "1"}, "kits": ["web"], "custom": 1},
                "remote": {"source": "https://example.com", "uri": "https://example.com/mcp",
                           "transport": {"headers": {"X": "y"}}, "enabled": false}
            }
        }),
    );
    let exported = export_kit(
        "mine",
        Some("My servers"),
        Some("Me"),
        None,
        &config.servers,
    );
    assert_eq!(exported["name"], "mine");
    assert_eq!(exported["author"], "Me");
    assert!(exported.get("version").is_none());
    assert!(exported["servers"]["fetch"].get("kits").is_none());
    assert!(exported["servers"]["fetch"].get("name").is_none());

    let path = write(tmp.path(), "kit.d/mine.json", &exported.to_string());
    let kit = read_kit(&path).unwrap();
    assert_eq!(kit.name, "mine");
    assert_eq!(kit.description.as_deref(), Some("My servers"));
    assert_eq!(kit.author.as_deref(), Some("Me"));
    assert_eq!(kit.version, None);
    let mut expected = config.servers.clone();
    for server in expected.values_mut() {
        server.kits.clear();
    }
    assert_eq!(kit.servers, expected);
    assert_eq!(kit.to_json(), exported);

    let exported = export_kit("empty", None, None, None, &IndexMap::new());
    assert_eq!(
        exported,
        json!({"name": "empty", "description": "", "servers": {}})
    );
}

#[test]
fn to_json_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "calculator.json", MAGG_DOCS_KIT);
    let kit = read_kit(&path).unwrap();
    let original: Value = serde_json::from_str(MAGG_DOCS_KIT).unwrap();
    assert_eq!(kit.to_json(), original);
    let copy = write(
        tmp.path(),
        "copy/calculator.json",
        &kit.to_json().to_string(),
    );
    let mut reread = read_kit(&copy).unwrap();
    reread.path = kit.path.clone();
    assert_eq!(reread, kit);
}

#[test]
fn tool_outputs_have_maggs_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let kit_d = tmp.path().join("kit.d");
    write(&kit_d, "calculator.json", MAGG_DOCS_KIT);
    write(&kit_d, "broken.json", "{");
    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    let (kits, errors) = discover(std::slice::from_ref(&kit_d));
    let calc_path = kit_d.join("calculator.json").to_string_lossy().into_owned();

    let calc_summary = json!({
        "loaded": false, "path": calc_path,
        "description": "Basic calculator functionality for MCP", "author": "Magg Team",
        "version": "1.0.0", "keywords": ["math", "calculator", "arithmetic"], "servers": ["calc"]
    });
    let broken = json!({
        "loaded": false, "path": kit_d.join("broken.json").to_string_lossy(),
        "description": "Failed to load kit metadata", "author": null, "version": null,
        "keywords": [], "servers": []
    });
    assert_eq!(
        list_kits(&config, &kits, &errors),
        json!({
            "kits": {"calculator": calc_summary, "broken": broken},
            "summary": {"total": 2, "loaded": 0, "available": 2}
        })
    );

    let details = json!({
        "loaded": false, "path": calc_path, "name": "calculator",
        "description": "Basic calculator functionality for MCP", "author": "Magg Team",
        "version": "1.0.0", "keywords": ["math", "calculator", "arithmetic"],
        "links": {"homepage": "https://github.com/example/calculator-kit",
                  "docs": "https://github.com/example/calculator-kit/wiki"},
        "servers": {"calc": {"name": "calc", "source": "https://github.com/example/mcp-calc-server",
                             "notes": "Basic calculator server", "command": "python",
                             "args": ["-m", "mcp_calc_server"]}}
    });
    assert_eq!(kit_info(&config, &kits, "calculator"), Some(details));
    assert_eq!(kit_info(&config, &kits, "nope"), None);

    load_kit(&mut config, &kits["calculator"], None).unwrap();
    config.kits.insert(
        "gone".into(),
        json!({"name": "gone", "description": "was here", "source": "file"}),
    );
    let listed = list_kits(&config, &kits, &errors);
    let names: Vec<&str> = listed["kits"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["calculator", "gone", "broken"]);
    assert_eq!(listed["kits"]["calculator"]["loaded"], true);
    assert_eq!(
        listed["kits"]["gone"],
        json!({"loaded": true, "path": "unknown", "description": "was here", "author": null,
               "version": null, "keywords": [], "servers": []})
    );
    assert_eq!(
        listed["summary"],
        json!({"total": 3, "loaded": 2, "available": 1})
    );
    let info = kit_info(&config, &kits, "calculator").unwrap();
    assert_eq!(info["loaded"], true);
    assert!(info.get("path").is_none());
    assert_eq!(
        kit_info(&config, &kits, "gone").unwrap()["servers"],
        json!({})
    );

    assert_eq!(
        cli_list_json(&config, &kits, &errors),
        json!({"kits": {
            "calculator": {"path": calc_path, "loaded": true,
                           "description": "Basic calculator functionality for MCP", "servers": ["calc"]},
            "broken": {"path": kit_d.join("broken.json").to_string_lossy(), "loaded": false,
                       "description": null, "servers": []},
            "gone": {"path": null, "loaded": true, "description": null, "servers": []}
        }})
    );
}

#[test]
fn shipped_kits_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kit.d");
    let (kits, errors) = discover(std::slice::from_ref(&dir));
    assert!(errors.is_empty(), "{errors:?}");
    for name in ["web", "dev"] {
        let kit = &kits[name];
        assert_eq!(kit.declared_name(), name);
        assert!(kit.description.is_some() && kit.author.is_some() && kit.version.is_some());
        assert!(!kit.servers.is_empty());
        for server in kit.servers.values() {
            assert!(server.notes.is_some(), "{name}/{}: no notes", server.name);
            assert!(
                matches!(server.command.as_deref(), Some("uvx" | "npx")),
                "{name}/{}",
                server.name
            );
            let prefix = server.prefix.as_deref().unwrap_or_default();
            assert!(config::is_valid_prefix(prefix), "{name}/{}", server.name);
        }
    }
    assert_eq!(kits["web"].servers["fetch"].args, ["mcp-server-fetch"]);
    assert_eq!(kits["web"].servers["time"].args, ["mcp-server-time"]);
    assert_eq!(kits["dev"].servers["git"].args, ["mcp-server-git"]);
    assert_eq!(
        kits["dev"].servers["filesystem"].args,
        ["-y", "@modelcontextprotocol/server-filesystem", "."]
    );

    // Both load into one config without conflicts.
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_from(tmp.path(), json!({"servers": {}}));
    for name in ["web", "dev"] {
        let report = load_kit(&mut config, &kits[name], None).unwrap();
        assert!(report.skipped.is_empty(), "{report:?}");
    }
    config.save().unwrap();
    config::load_with_env(&config.path, &|_| None).unwrap();
}

#[test]
fn report_to_json() {
    let report = KitReport {
        kit: "k".into(),
        added: vec!["a".into()],
        skipped: vec![("b".into(), "why".into())],
        ..KitReport::default()
    };
    assert_eq!(
        report.to_json(),
        json!({"kit": "k", "added": ["a"], "tagged": [], "removed": [], "kept": [],
               "skipped": [{"name": "b", "reason": "why"}]})
    );
}
