//! OAuth resource-server mode and scopes, against a real OpenID provider (npm `oidc-provider`,
//! run by `tests/node/oidc.mjs` on loopback): magg finds the provider's keys by discovery,
//! accepts its access tokens for magg's audience only, follows a key rotation without a
//! restart, points clients to its protected-resource metadata, answers 403 for a missing
//! scope and 503 while the provider is down; and what a token's scopes grant is all its
//! client sees, lists, calls, reads, is told about, and what routing hooks see of it.

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{
    harness::{Client, Magg, TempConfig, WAIT, eventually, run_cli_env, test_backend, text},
    raw_http::{Conn, initialize_with},
};

/// The audience magg's tokens are for (the provider must know it before magg's port is).
const AUDIENCE: &str = "https://magg.example/mcp";

/// Another resource server's audience.
const OTHER: &str = "https://other.example/mcp";

/// The provider's client.
const CLIENT: (&str, &str) = ("magg-test", "s3cret");

/// An OpenID provider on loopback.
struct Provider {
    child: Child,
    issuer: String,
    port: u16,
    keys: tempfile::TempDir,
    resources: Vec<String>,
}

impl Provider {
    /// Starts the provider with signing keys `keys` (the first signs) on `port` (0: any),
    /// issuing tokens for magg's [`AUDIENCE`] and [`OTHER`].
    async fn start(keys: tempfile::TempDir, names: &str, port: u16) -> Provider {
        Provider::start_for(keys, names, port, &[AUDIENCE, OTHER]).await
    }

    /// [`Provider::start`] issuing tokens for `resources`.
    async fn start_for(
        keys: tempfile::TempDir,
        names: &str,
        port: u16,
        resources: &[&str],
    ) -> Provider {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/oidc.mjs");
        let mut command = Command::new("node");
        command.arg(script);
        for resource in resources {
            command.args(["--resource", resource]);
        }
        let mut child = command
            .args(["--port", &port.to_string()])
            .args(["--key-dir", keys.path().to_str().expect("utf-8")])
            .args(["--keys", names])
            .args(["--client", &format!("{}:{}", CLIENT.0, CLIENT.1)])
            .args(["--scopes", "mcp:read mcp:admin mcp:tc"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/node/oidc.mjs (npm ci --prefix tests/node)");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(WAIT, BufReader::new(stdout).lines().next_line())
            .await
            .expect("the provider starts")
            .expect("stdout")
            .expect("the ready line");
        let ready: Value = serde_json::from_str(&line).expect("JSON ready line");
        Provider {
            child,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            port: ready["port"].as_u64().expect("port") as u16,
            keys,
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// Stops the provider and starts it again on the same port with the keys `names`.
    async fn restart(mut self, names: &str) -> Provider {
        self.stop().await;
        let resources: Vec<&str> = self.resources.iter().map(String::as_str).collect();
        Provider::start_for(self.keys, names, self.port, &resources).await
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// An access token for `resource` with `scope`, by the client-credentials grant.
    async fn token(&self, resource: &str, scope: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&resource={}&scope={}",
            CLIENT.0,
            CLIENT.1,
            encode(resource),
            encode(scope)
        );
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        let reply = Conn::open(&self.issuer)
            .await
            .send("POST", "/token", &headers, &body)
            .await;
        assert_eq!(reply.status, 200, "token request: {reply}");
        let body: Value = serde_json::from_slice(&reply.body).expect("a JSON token response");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

/// `text` percent-encoded for a form body.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A config with two test backends (`ta_*` and `tc_*`) and its `auth.json`.
fn config_with(auth: Value) -> TempConfig {
    let config = TempConfig::new(&json!({"servers": {
        "ta": test_backend("ta", "ta", &[]),
        "tc": test_backend("tc", "tc", &[]),
    }}));
    let auth_file = config.path.parent().expect("dir").join("auth.json");
    std::fs::write(&auth_file, auth.to_string()).expect("auth.json");
    config
}

/// `magg serve --http` on loopback with a home of its own (no magg key in it).
async fn serve(config: &TempConfig, home: &Path) -> Magg {
    let home = home.to_str().expect("utf-8");
    Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("HOME", home), ("MAGG_PRIVATE_KEY", "")],
    )
    .await
}

fn origin_of(url: &str) -> &str {
    url.strip_suffix("/mcp").expect("a /mcp URL")
}

#[tokio::test]
async fn tokens_of_a_real_openid_provider_pass_and_its_key_rotation_needs_no_restart() {
    let provider = Provider::start(tempfile::tempdir().expect("dir"), "k1", 0).await;
    let home = tempfile::tempdir().expect("home");
    let config = config_with(json!({"oauth": {"issuer": provider.issuer, "audience": AUDIENCE}}));
    let magg = serve(&config, home.path()).await;
    let url = magg.url.clone().expect("url");
    let origin = origin_of(&url);

    // RFC 9728 metadata, open to all, at the place the challenge names.
    let metadata_path = "/.well-known/oauth-protected-resource/mcp";
    let reply = Conn::open(&url)
        .await
        .send("GET", metadata_path, &[], "")
        .await;
    assert_eq!(reply.status, 200, "{reply}");
    let metadata = reply.json();
    assert_eq!(metadata["resource"], json!(url), "{metadata}");
    assert_eq!(
        metadata["authorization_servers"],
        json!([provider.issuer]),
        "{metadata}"
    );
    let refused = initialize_with(&url, None).await;
    assert_eq!(refused.status, 401, "{refused}");
    let challenge = refused.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{origin}{metadata_path}\"")),
        "{challenge}"
    );

    // A token for magg works for the whole session; one for another server does not.
    let token = provider.token(AUDIENCE, "mcp:read").await;
    let client = Client::http_with_token(&url, &token).await;
    assert!(client.tool_names().await.contains(&"ta_echo".to_owned()));
    let result = client
        .call("ta_echo", json!({"text": "hi"}))
        .await
        .expect("call");
    assert!(text(&result).contains("hi"), "{result}");
    let other = provider.token(OTHER, "mcp:read").await;
    let refused = initialize_with(&url, Some(&format!("Bearer {other}"))).await;
    assert_eq!(refused.status, 401, "{refused}");
    assert!(
        refused
            .text()
            .contains(&format!("audience is `{OTHER}`, expected `{AUDIENCE}`")),
        "{refused}"
    );

    // The provider rotates its key (k1 retired): magg fetches the new key when a token
    // names it.
    let provider = provider.restart("k2").await;
    let rotated = provider.token(AUDIENCE, "mcp:read").await;
    let header = rotated.split('.').next().expect("header");
    assert!(
        String::from_utf8_lossy(&base64_url_decode(header)).contains("\"kid\":\"k2\""),
        "the new token is signed with k2"
    );
    let rotated_client = Client::http_with_token(&url, &rotated).await;
    let result = rotated_client
        .call("ta_echo", json!({"text": "after rotation"}))
        .await
        .expect("call with a token of the new key");
    assert!(text(&result).contains("after rotation"), "{result}");
    assert!(magg.logged("fetched the issuer's signing keys"));

    // While the provider is down, a token with a key magg has not seen cannot be checked:
    // 503, and magg keeps serving the tokens it can check.
    let mut provider = provider;
    let stranger = {
        let restarted = provider.restart("k3").await;
        let token = restarted.token(AUDIENCE, "mcp:read").await;
        provider = restarted;
        token
    };
    provider.stop().await;
    let reply = initialize_with(&url, Some(&format!("Bearer {stranger}"))).await;
    assert_eq!(reply.status, 503, "{reply}");
    assert!(reply.header("retry-after").is_some(), "{reply}");
    client.ping().await;
    rotated_client.close().await;
    client.close().await;
}

/// Decodes unpadded base64url.
fn base64_url_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = alphabet.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[tokio::test]
async fn a_token_without_a_required_scope_gets_403_insufficient_scope() {
    let provider = Provider::start(tempfile::tempdir().expect("dir"), "k1", 0).await;
    let home = tempfile::tempdir().expect("home");
    let config = config_with(json!({"oauth": {
        "issuer": provider.issuer, "audience": AUDIENCE, "required_scopes": ["mcp:read"],
    }}));
    let magg = serve(&config, home.path()).await;
    let url = magg.url.clone().expect("url");
    let token = provider.token(AUDIENCE, "mcp:tc").await;
    let reply = initialize_with(&url, Some(&format!("Bearer {token}"))).await;
    assert_eq!(reply.status, 403, "{reply}");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp:read\""),
        "{challenge}"
    );
    let token = provider.token(AUDIENCE, "mcp:read").await;
    let reply = initialize_with(&url, Some(&format!("Bearer {token}"))).await;
    assert_eq!(reply.status, 200, "{reply}");
}

/// Scopes: `mcp:read` sees the `ta` server and `magg_list_servers`; `mcp:tc` the `tc` server;
/// `mcp:admin` everything, magg's changing tools included.
fn scoped_auth(issuer: &str) -> Value {
    json!({
        "oauth": {"issuer": issuer, "audience": AUDIENCE},
        "access": {
            "admin_scope": "mcp:admin",
            "scopes": {
                "mcp:read": {"servers": ["ta"], "tools": ["magg_list_servers", "proxy"],
                             "resources": ["magg://servers/*"]},
                "mcp:tc": {"servers": ["tc"]},
                "mcp:admin": {"tools": ["*"], "prompts": ["*"], "resources": ["*"]},
            },
        },
    })
}

#[tokio::test]
async fn scopes_decide_what_a_client_lists_calls_reads_and_hears_of() {
    let provider = Provider::start(tempfile::tempdir().expect("dir"), "k1", 0).await;
    let home = tempfile::tempdir().expect("home");
    let config = config_with(scoped_auth(&provider.issuer));
    let magg = serve(&config, home.path()).await;
    let url = magg.url.clone().expect("url");

    // Both servers up before the reader connects, so that it hears nothing of their start.
    let admin = provider.token(AUDIENCE, "mcp:admin").await;
    let mut admin_client = Client::http_with_token(&url, &admin).await;
    for tool in ["ta_echo", "tc_echo"] {
        admin_client
            .call_eventually(tool, json!({"text": "up"}))
            .await;
    }
    let read = provider.token(AUDIENCE, "mcp:read").await;
    let mut reader = Client::http_with_token(&url, &read).await;
    let mut names = reader.tool_names().await;
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ta_") || n == "magg_list_servers" || n == "proxy"),
        "{names:?}"
    );
    assert!(names.contains(&"ta_echo".to_owned()), "{names:?}");
    assert!(names.contains(&"magg_list_servers".to_owned()), "{names:?}");

    // A tool the token does not grant is as unknown as one that does not exist.
    let hidden = reader
        .call("tc_echo", json!({"text": "x"}))
        .await
        .unwrap_err();
    let missing = reader
        .call("tz_echo", json!({"text": "x"}))
        .await
        .unwrap_err();
    let say = |e: &rmcp::ServiceError| {
        e.to_string()
            .replace("tc_echo", "N")
            .replace("tz_echo", "N")
    };
    assert_eq!(say(&hidden), say(&missing));
    assert!(
        hidden.to_string().contains("Unknown tool `tc_echo`"),
        "{hidden}"
    );
    let refused = reader
        .call(
            "magg_add_server",
            json!({"name": "x", "source": "x", "command": "true"}),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Unknown tool"), "{refused}");
    // ... and through the proxy tool too.
    let proxied = reader
        .call(
            "proxy",
            json!({"action": "call", "type": "tool", "path": "tc_echo", "args": {"text": "x"}}),
        )
        .await;
    let proxied = format!("{proxied:?}");
    assert!(proxied.contains("Unknown tool"), "{proxied}");
    let listed = reader
        .call("proxy", json!({"action": "list", "type": "tool"}))
        .await
        .expect("proxy list");
    let listed = listed.to_string();
    assert!(
        listed.contains("ta_echo") && !listed.contains("tc_echo"),
        "{listed}"
    );

    // Prompts and resources: only the granted server's.
    let prompts = reader
        .service
        .list_all_prompts()
        .await
        .expect("prompts/list");
    assert!(
        prompts.iter().all(|p| p.name.starts_with("ta_")),
        "{prompts:?}"
    );
    assert!(!prompts.is_empty());
    let resources = reader
        .service
        .list_all_resources()
        .await
        .expect("resources/list");
    assert!(
        resources
            .iter()
            .all(|r| r.uri.contains("//ta/") || r.uri.starts_with("magg://servers/")),
        "{resources:?}"
    );
    let read_hidden = reader
        .service
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://tc/info",
        ))
        .await;
    assert!(read_hidden.is_err(), "{read_hidden:?}");
    let read_granted = reader
        .service
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://ta/info",
        ))
        .await;
    assert!(read_granted.is_ok(), "{read_granted:?}");

    // The management API: the admin scope changes servers; a reader sees its own share.
    assert!(
        admin_client
            .tool_names()
            .await
            .contains(&"magg_add_server".to_owned())
    );
    let api_headers = |token: &str| -> Vec<(String, String)> {
        vec![
            ("Authorization".into(), format!("Bearer {token}")),
            ("Content-Type".into(), "application/json".into()),
        ]
    };
    let send = |method: &'static str, path: &'static str, token: String, body: Value| {
        let url = url.clone();
        async move {
            let headers = api_headers(&token);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            Conn::open(&url)
                .await
                .send(method, path, &headers, &body.to_string())
                .await
        }
    };
    let tools = send("GET", "/mcp_tools", read.clone(), Value::Null).await;
    assert_eq!(tools.status, 200, "{tools}");
    let tools = tools.json();
    assert!(
        tools["tools"]["ta"].is_array() && tools["tools"].get("tc").is_none(),
        "{tools}"
    );
    let backend = test_backend("td", "td", &[]);
    let refused = send(
        "POST",
        "/mcp_servers",
        read.clone(),
        json!({"mcpServers": {"td": {"command": backend["command"], "args": backend["args"]}}}),
    )
    .await;
    assert_eq!(refused.status, 403, "{refused}");
    assert!(
        refused
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("insufficient_scope"),
        "{refused}"
    );

    // A server the reader does not see comes and goes: it hears nothing of it; the admin
    // does.
    admin_client.events_for(Duration::from_millis(300)).await;
    reader.events_for(Duration::from_millis(300)).await;
    let added = send(
        "POST",
        "/mcp_servers",
        admin.clone(),
        json!({"mcpServers": {"td": {"command": backend["command"], "args": backend["args"]}}}),
    )
    .await;
    assert_eq!(added.status, 200, "{added}");
    admin_client.notified("tools/list_changed").await;
    reader
        .expect_no_event(Duration::from_secs(2), |e| e == "tools/list_changed")
        .await;
    // One it sees changes: it hears of it.
    let removed = send("DELETE", "/mcp_servers/ta", admin.clone(), Value::Null).await;
    assert_eq!(removed.status, 200, "{removed}");
    reader.notified("tools/list_changed").await;
    assert!(!reader.tool_names().await.contains(&"ta_echo".to_owned()));
    reader.close().await;
    admin_client.close().await;
}

#[tokio::test]
async fn routing_hooks_see_the_callers_subject_and_scopes() {
    let provider = Provider::start(tempfile::tempdir().expect("dir"), "k1", 0).await;
    let home = tempfile::tempdir().expect("home");
    let config = config_with(scoped_auth(&provider.issuer));
    config.install_plugin("whoami-hook", "whoami-hook");
    let magg = serve(&config, home.path()).await;
    let url = magg.url.clone().expect("url");
    let token = provider.token(AUDIENCE, "mcp:read mcp:tc").await;
    let client = Client::http_with_token(&url, &token).await;
    // The hook may load after the first call: wait for its answer.
    let said = eventually("the hook's answer", WAIT, || async {
        let result = client.call("ta_echo", json!({"text": "x"})).await.ok()?;
        let said = text(&result).to_owned();
        said.starts_with("caller:").then_some(said)
    })
    .await;
    assert_eq!(said, format!("caller: {} [mcp:read mcp:tc]", CLIENT.0));
    client.close().await;
}

#[tokio::test]
async fn scopes_of_magg_tokens_follow_the_same_rules() {
    let home = tempfile::tempdir().expect("home");
    let config = config_with(json!({"access": {"scopes": {"tc": {"servers": ["tc"]}}}}));
    let path = config.path.to_str().expect("utf-8");
    let env = [
        ("HOME", home.path().to_str().expect("utf-8")),
        ("MAGG_PRIVATE_KEY", ""),
    ];
    // An audience of its own makes `init` write auth.json, which keeps the access rules.
    let (code, out, err) = run_cli_env(
        &["--config", path, "auth", "init", "--audience", "team"],
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    let auth_json: Value = serde_json::from_str(
        &std::fs::read_to_string(config.path.parent().expect("dir").join("auth.json"))
            .expect("auth.json"),
    )
    .expect("JSON");
    assert!(
        auth_json["access"].is_object(),
        "init keeps the access rules: {auth_json}"
    );
    assert_eq!(
        auth_json["bearer"]["audience"],
        json!("team"),
        "{auth_json}"
    );
    let (code, out, err) = run_cli_env(&["--config", path, "auth", "status"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Scopes decide what clients see (1 rule(s))"),
        "{out}"
    );
    let (code, token, err) = run_cli_env(
        &["--config", path, "auth", "token", "-q", "--scopes", "tc"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let magg = serve(&config, home.path()).await;
    let client = Client::http_with_token(magg.url.as_deref().expect("url"), token.trim()).await;
    let names = client.tool_names().await;
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("tc_")),
        "{names:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn the_python_sdk_finds_the_provider_through_maggs_metadata_and_gets_in() {
    // magg's resource URL must be known to the provider before magg starts: pick the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let provider =
        Provider::start_for(tempfile::tempdir().expect("dir"), "k1", 0, &[&resource]).await;
    let home = tempfile::tempdir().expect("home");
    let mut auth = scoped_auth(&provider.issuer);
    // No audience set: tokens must name magg's own URL. The scope every request needs is what
    // magg's challenge tells the client to ask for.
    auth["oauth"] = json!({"issuer": provider.issuer, "required_scopes": ["mcp:tc"]});
    let config = config_with(auth);
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", &port.to_string()],
        &[
            ("HOME", home.path().to_str().expect("utf-8")),
            ("MAGG_PRIVATE_KEY", ""),
        ],
    )
    .await;
    let url = magg.url.clone().expect("url");
    let issuer = provider.issuer.clone();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/oauth_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args([&url, CLIENT.0, CLIENT.1, &issuer, "mcp:tc"])
            .output()
            .expect("python3 runs (pip install -r tests/python/requirements.txt)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("oauth client: ok"),
        "{all}"
    );
    let seen: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {all}"));
    let tools = seen["tools"].as_array().expect("tools");
    assert!(
        !tools.is_empty()
            && tools
                .iter()
                .all(|t| t.as_str().is_some_and(|t| t.starts_with("tc_"))),
        "the token's scope mcp:tc shows the tc server only: {seen}"
    );
    assert!(
        seen["echo"]
            .as_str()
            .is_some_and(|e| e.contains("through OAuth")),
        "{seen}"
    );
    assert_eq!(
        seen["scope"],
        json!("mcp:tc"),
        "the client asked for what magg's 401 named"
    );
}
