//! `magg_search_servers` with every bundled search provider (the MCP Registry, Glama, GitHub,
//! npm) pointed at replay servers that answer in each API's documented shape: one merged,
//! ranked list with configs ready for `magg_add_server`; a source that fails, is rate limited
//! or is too slow is named in `sources` while the others' results come back.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, magg_body, test_backend},
    replay::{Replay, Route, fixture},
};

/// The four providers and the path each asks.
const PROVIDERS: [(&str, &str); 4] = [
    ("mcp-registry", "/v0.1/servers"),
    ("glama-search", "/api/mcp/v1/servers"),
    ("github-search", "/search/repositories"),
    ("npm-search", "/-/v1/search"),
];

/// The fixture each provider's route answers with.
fn answer(provider: &str) -> Route {
    let (path, file) = match provider {
        "mcp-registry" => ("/v0.1/servers", "mcp-registry-v0.1-servers.json"),
        "glama-search" => ("/api/mcp/v1/servers", "glama-servers.json"),
        "github-search" => ("/search/repositories", "github-search-repositories.json"),
        _ => ("/-/v1/search", "npm-search.json"),
    };
    Route::json(path, fixture(file)).method("GET")
}

/// A config pointing every provider at `replay` (and granting it), with `extra` merged into
/// each provider's entry (`{"npm-search": {"timeout_ms": 500}}`).
fn config(replay: &Replay, extra: Value) -> TempConfig {
    let mut plugins = serde_json::Map::new();
    for (name, _) in PROVIDERS {
        let mut entry = json!({
            "settings": {"base_url": replay.base()},
            "allow_hosts": [replay.grant()],
        });
        if let Some(more) = extra.get(name).and_then(Value::as_object) {
            for (key, value) in more {
                if key == "settings" {
                    for (k, v) in value.as_object().into_iter().flatten() {
                        entry["settings"][k] = v.clone();
                    }
                } else {
                    entry[key] = value.clone();
                }
            }
        }
        plugins.insert(name.to_owned(), entry);
    }
    TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": plugins,
    }))
}

async fn search(magg: &mut Magg, query: &str, limit: u32) -> Value {
    let client = magg.client();
    client.tool_names().await;
    let body = magg_body(
        &client
            .call(
                "magg_search_servers",
                json!({"query": query, "limit": limit}),
            )
            .await
            .expect("search"),
    );
    body["output"].clone()
}

fn results(out: &Value) -> Vec<Value> {
    out["results"].as_array().cloned().unwrap_or_default()
}

fn sources_of(result: &Value) -> Vec<String> {
    result["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn error_of(out: &Value, provider: &str) -> String {
    out["sources"][provider]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{provider} reported no error: {out}"))
        .to_owned()
}

fn count_of(out: &Value, provider: &str) -> u64 {
    out["sources"][provider]["results"]
        .as_u64()
        .unwrap_or_else(|| panic!("{provider} reported no results: {out}"))
}

#[tokio::test]
async fn all_four_sources_merge_into_one_ranked_list() {
    let replay = Replay::start(PROVIDERS.iter().map(|(name, _)| answer(name)).collect()).await;
    let config = config(
        &replay,
        json!({"github-search": {"settings": {"token": "ghp_replay"}}}),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 20).await;

    // Every source answered; the registry's deprecated, deleted and older entries are left out.
    assert_eq!(count_of(&out, "mcp-registry"), 4, "{out}");
    assert_eq!(count_of(&out, "glama-search"), 3, "{out}");
    assert_eq!(count_of(&out, "github-search"), 3, "{out}");
    assert_eq!(count_of(&out, "npm-search"), 4, "{out}");
    assert!(
        replay.asked(&["/v0.1/servers?", "search=time", "version=latest"]),
        "{:?}",
        replay.lines()
    );
    assert!(!replay.asked(&["/v0/servers"]), "{:?}", replay.lines());
    assert!(replay.asked(&["/api/mcp/v1/servers?", "query=time", "first=20"]));
    assert!(replay.asked(&[
        "/search/repositories?",
        "q=time+topic:mcp-server",
        "sort=stars"
    ]));
    assert!(replay.asked(&["/-/v1/search?", "text=time"]));
    let github = replay
        .requests()
        .into_iter()
        .find(|r| r.line.contains("/search/repositories"))
        .expect("github request");
    assert_eq!(github.header("authorization"), Some("Bearer ghp_replay"));
    assert_eq!(github.header("accept"), Some("application/vnd.github+json"));

    let found = results(&out);
    assert_eq!(out["total"], json!(found.len()), "{out}");
    let names: Vec<&str> = found.iter().filter_map(|r| r["name"].as_str()).collect();
    for gone in ["time-legacy", "time-gone"] {
        assert!(!names.iter().any(|n| n.contains(gone)), "{names:?}");
    }

    // One server found by several sources is listed once, with every source that found it.
    let with_repo = |repo: &str| -> Vec<&Value> {
        found
            .iter()
            .filter(|r| {
                r["repository"]
                    .as_str()
                    .is_some_and(|u| u.trim_end_matches(".git").ends_with(repo))
            })
            .collect()
    };
    let timezone = with_repo("tz-tools/timezone-mcp");
    assert_eq!(timezone.len(), 1, "{out}");
    let timezone = timezone[0];
    let mut seen = sources_of(timezone);
    seen.sort();
    assert_eq!(seen, ["github", "glama", "mcp-registry"], "{timezone}");
    assert_eq!(timezone["stars"], json!(850), "{timezone}");
    assert_eq!(timezone["config"]["command"], json!("uvx timezone-mcp"));
    let notes = timezone["config"]["notes"].as_str().unwrap_or_default();
    assert!(notes.contains("TZ_API_KEY"), "{timezone}");
    assert!(timezone["config"].get("env").is_none(), "{timezone}");

    let time_mcp = with_repo("yokingma/time-mcp");
    assert_eq!(time_mcp.len(), 1, "{out}");
    let mut seen = sources_of(time_mcp[0]);
    seen.sort();
    assert_eq!(seen, ["github", "glama", "npm"], "{}", time_mcp[0]);
    assert_eq!(time_mcp[0]["config"]["command"], json!("npx -y time-mcp"));

    // The registry's and npm's entries of one package are one server.
    let server_time: Vec<&Value> = found
        .iter()
        .filter(|r| {
            r["packages"]
                .as_array()
                .is_some_and(|p| p.contains(&json!("npm:@modelcontextprotocol/server-time")))
        })
        .collect();
    assert_eq!(server_time.len(), 1, "{out}");
    assert_eq!(
        sources_of(server_time[0]),
        ["mcp-registry", "npm"],
        "{}",
        server_time[0]
    );

    // Configs from each kind of source; entries that say nothing of how to run get a next step.
    let by_name = |name: &str| {
        found
            .iter()
            .find(|r| r["name"] == json!(name))
            .unwrap_or_else(|| panic!("no {name}: {out}"))
    };
    assert_eq!(
        by_name("com.example/clock-remote")["config"]["uri"],
        json!("https://clock.example.com/mcp")
    );
    assert_eq!(
        by_name("io.github.clockworks/clock-oci")["config"]["command"],
        json!("docker run -i --rm docker.io/clockworks/clock-mcp:1.2.0")
    );
    let world_clock = by_name("World Clock");
    assert!(world_clock.get("config").is_none(), "{world_clock}");
    assert!(
        world_clock["next_step"]
            .as_str()
            .is_some_and(|s| s.contains("https://github.com/clockhub/world-clock")),
        "{world_clock}"
    );

    // Ranked: the servers named after the query first; the archived repository below every
    // server with a config.
    for top in &found[..2] {
        let name = top["name"].as_str().unwrap_or_default();
        assert!(
            name.ends_with("/time") || name.ends_with("time-mcp"),
            "{out}"
        );
    }
    let archived = found
        .iter()
        .position(|r| r["name"] == json!("someone/mcp-time-archive"))
        .expect("archived repository");
    let last_config = found
        .iter()
        .rposition(|r| r.get("config").is_some())
        .expect("a config");
    assert!(archived > last_config, "{out}");

    // A config goes to magg_add_server as it is.
    let mut add = by_name("io.github.modelcontextprotocol/time")["config"].clone();
    add["enable"] = json!(false);
    let client = magg.client();
    let added = magg_body(
        &client
            .call("magg_add_server", add.clone())
            .await
            .expect("add"),
    );
    assert!(added["errors"].is_null(), "{added}");
    let saved = &config.read()["servers"][add["name"].as_str().unwrap_or_default()];
    assert_eq!(saved["command"], json!("npx"), "{saved}");
    assert_eq!(
        saved["args"],
        json!(["-y", "@modelcontextprotocol/server-time"])
    );

    // A smaller limit keeps the best ones.
    let out = search(&mut magg, "time", 2).await;
    let top: Vec<Value> = results(&out);
    assert_eq!(top.len(), 2, "{out}");
    assert_eq!(top[0]["name"], found[0]["name"]);
    assert!(out["found"].as_u64().is_some_and(|n| n > 2), "{out}");
}

#[tokio::test]
async fn rate_limited_and_failing_sources_are_named_and_the_others_answer() {
    let replay = Replay::start(vec![
        answer("mcp-registry")
            .status("429 Too Many Requests")
            .header("retry-after: 30"),
        answer("github-search")
            .status("403 Forbidden")
            .header("x-ratelimit-limit: 10")
            .header("x-ratelimit-remaining: 0")
            .header("x-ratelimit-reset: 1767225600")
            .header("x-ratelimit-resource: search"),
        Route::text("/-/v1/search", "upstream connect error").status("503 Service Unavailable"),
        answer("glama-search"),
    ])
    .await;
    let config = config(&replay, json!({}));
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 10).await;

    let registry = error_of(&out, "mcp-registry");
    assert!(
        registry.contains("HTTP 429") && registry.contains("try again in 30 s"),
        "{registry}"
    );
    let github = error_of(&out, "github-search");
    assert!(
        github.contains("HTTP 403")
            && github.contains("rate limit of 10")
            && github.contains("2026-01-01 00:00:00 UTC")
            && github.contains("plugins.github-search.settings.token"),
        "{github}"
    );
    let npm = error_of(&out, "npm-search");
    assert!(
        npm.starts_with("npm search: HTTP 503") && npm.contains("try again later"),
        "{npm}"
    );
    assert_eq!(count_of(&out, "glama-search"), 3, "{out}");
    let found = results(&out);
    assert_eq!(found.len(), 3, "{out}");
    assert!(found.iter().all(|r| sources_of(r) == ["glama"]), "{out}");
    // The 429 from v0.1 is an answer, not a missing API: v0 is not asked.
    assert!(!replay.asked(&["/v0/servers"]), "{:?}", replay.lines());
}

#[tokio::test]
async fn a_slow_source_times_out_and_the_others_answer() {
    let replay = Replay::start(vec![
        answer("mcp-registry"),
        answer("glama-search"),
        answer("github-search"),
        answer("npm-search").after(Duration::from_secs(30)),
    ])
    .await;
    let config = config(&replay, json!({"npm-search": {"timeout_ms": 500}}));
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 20).await;

    let npm = error_of(&out, "npm-search");
    assert!(
        npm.contains("timed out after 500 ms") && npm.contains("plugins.npm-search.timeout_ms"),
        "{npm}"
    );
    assert!(replay.asked(&["/-/v1/search?"]), "{:?}", replay.lines());
    assert_eq!(count_of(&out, "mcp-registry"), 4, "{out}");
    assert_eq!(count_of(&out, "glama-search"), 3, "{out}");
    assert_eq!(count_of(&out, "github-search"), 3, "{out}");
    let found = results(&out);
    assert!(!found.is_empty(), "{out}");
    assert!(
        found
            .iter()
            .all(|r| !sources_of(r).contains(&"npm".to_owned())),
        "{out}"
    );
}

#[tokio::test]
async fn a_registry_without_v0_1_is_asked_at_v0() {
    // Only the older API: /v0.1/servers answers 404.
    let replay = Replay::start(vec![Route::json(
        "/v0/servers",
        fixture("mcp-registry-v0-servers.json"),
    )])
    .await;
    let config = config(
        &replay,
        json!({
            "glama-search": {"enabled": false},
            "github-search": {"enabled": false},
            "npm-search": {"enabled": false},
        }),
    );
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 10).await;
    assert!(
        replay.asked(&["/v0.1/servers?", "search=time"]),
        "{:?}",
        replay.lines()
    );
    assert!(
        replay.asked(&["/v0/servers?", "search=time", "version=latest"]),
        "{:?}",
        replay.lines()
    );
    // The fixture's deprecated entry is left out.
    assert_eq!(count_of(&out, "mcp-registry"), 3, "{out}");
    let names: Vec<String> = results(&out)
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(!names.iter().any(|n| n.contains("timetrack")), "{names:?}");

    // A registry with neither API says so.
    let empty = Replay::start(Vec::new()).await;
    let config = TempConfig::new(&json!({
        "servers": {},
        "plugins": {
            "mcp-registry": {"settings": {"base_url": empty.base()}, "allow_hosts": [empty.grant()]},
            "glama-search": {"enabled": false},
            "github-search": {"enabled": false},
            "npm-search": {"enabled": false},
        },
    }));
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 10).await;
    let error = error_of(&out, "mcp-registry");
    assert!(
        error.contains("HTTP 404") && error.contains("neither /v0.1/servers nor /v0/servers"),
        "{error}"
    );
    assert_eq!(out["total"], json!(0), "{out}");
}

#[tokio::test]
async fn providers_trust_the_certificates_the_system_trusts() {
    // A registry mirror behind a company's own certificate authority: trusted when the system
    // trusts it (SSL_CERT_FILE here), refused with a certificate error when it does not.
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = authority_and_server(dir.path());
    let routes = PROVIDERS.iter().map(|(name, _)| answer(name)).collect();
    let replay = Replay::start_tls(routes, &cert, &key).await;
    let config = config(&replay, json!({}));
    let trusting = [("SSL_CERT_FILE", ca.to_str().expect("utf-8 path"))];
    let mut magg = Magg::stdio_with(&config.path, &[], &trusting).await;
    let out = search(&mut magg, "time", 5).await;
    for (name, _) in PROVIDERS {
        assert!(
            out["sources"][name]["results"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{name}: {out}"
        );
    }
    assert!(
        replay.asked(&["/v0.1/servers", "search=time"]),
        "{:?}",
        replay.lines()
    );

    let empty = dir.path().join("no-such-ca.pem");
    let distrusting = [("SSL_CERT_FILE", empty.to_str().expect("utf-8 path"))];
    let mut magg = Magg::stdio_with(&config.path, &[], &distrusting).await;
    let out = search(&mut magg, "time", 5).await;
    let error = out["sources"]["mcp-registry"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{out}");
}

/// A certificate authority of its own and a server certificate for 127.0.0.1 it signed, made
/// with `openssl` in `dir`: (authority's certificate, server's certificate, server's key).
fn authority_and_server(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-days",
            "2",
            "-subj",
            "/CN=Example Corp CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    ]
    .concat());
    run(&[
        &["req"],
        &ec[..],
        &[
            "-subj",
            "/CN=registry.example",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    ]
    .concat());
    std::fs::write(
        path("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

#[tokio::test]
async fn a_provider_is_not_redirected_to_a_host_it_was_not_granted() {
    // The registry answers with a redirect to another server, which no provider was granted:
    // magg follows no redirect for a plugin, so the other server is never asked.
    let elsewhere = Replay::start(vec![answer("mcp-registry")]).await;
    let moved = format!("location: {}/v0.1/servers?search=time", elsewhere.base());
    let replay = Replay::start(vec![
        Route::json("/v0.1/servers", "")
            .status("302 Found")
            .header(&moved),
    ])
    .await;
    let only_registry = json!({
        "glama-search": {"enabled": false},
        "github-search": {"enabled": false},
        "npm-search": {"enabled": false},
    });
    let config = config(&replay, only_registry);
    let mut magg = Magg::stdio(&config.path).await;
    let out = search(&mut magg, "time", 5).await;
    let error = out["sources"]["mcp-registry"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("302"), "{out}");
    assert!(error.contains("redirects are not followed"), "{out}");
    assert!(replay.asked(&["/v0.1/servers"]), "{:?}", replay.lines());
    assert!(elsewhere.lines().is_empty(), "{:?}", elsewhere.lines());
}
