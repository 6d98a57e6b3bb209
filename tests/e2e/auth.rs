//! Bearer authentication: `magg auth ...` makes and prints keys and tokens as Magg 1.3 does,
//! `magg serve --http` with a key accepts exactly the valid tokens (Magg's and its own), and
//! without a key HTTP clients cannot change servers or the config, nor is HTTP served beyond
//! loopback.
//!
//! Magg's side is played by the libraries Magg uses (PyJWT and `cryptography`, through
//! `tests/python/jwt_interop.py`) and, where `tests/run.sh` could install it
//! (`target/magg-py`), by Magg 1.3 itself.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use crate::{
    harness::{
        Magg, TempConfig, WAIT, bin, magg_body, run_cli, run_cli_env, target_dir, test_backend,
        text,
    },
    raw_http::{BOTH, Conn, Reply, initialize, initialize_with},
};

/// A home directory of its own (magg keeps keys in `~/.ssh/magg`) and a config file with the
/// test backend.
struct Home {
    dir: tempfile::TempDir,
    config: TempConfig,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("home"),
            config: TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}})),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 path")
    }

    /// `~/.ssh/magg/{name}`.
    fn key_file(&self, name: &str) -> PathBuf {
        self.path().join(".ssh/magg").join(name)
    }

    /// Runs `magg --config <config> <args>` in this home, with `env` (and no
    /// `MAGG_PRIVATE_KEY` unless `env` has one): (exit code, stdout, stderr).
    fn magg(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let config = self.config.path.to_str().expect("utf-8 path");
        let mut all_args = vec!["--config", config];
        all_args.extend_from_slice(args);
        let mut all_env = vec![("HOME", self.home()), ("MAGG_PRIVATE_KEY", "")];
        all_env.extend_from_slice(env);
        run_cli_env(&all_args, &all_env)
    }

    /// Starts `magg serve <args>` in this home with `env`, which must refuse to start: its
    /// stderr.
    async fn serve_refused(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut child = Magg::command(&self.config.path, args)
            .env("HOME", self.home())
            .envs(env.iter().copied())
            .spawn()
            .expect("spawn magg");
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("magg refuses at once")
            .expect("exit status");
        let mut err = String::new();
        tokio::io::AsyncReadExt::read_to_string(
            &mut child.stderr.take().expect("stderr"),
            &mut err,
        )
        .await
        .expect("stderr");
        assert_eq!(status.code(), Some(1), "{err}");
        err
    }

    /// `magg auth init`, which must succeed.
    fn init(&self) {
        let (code, out, err) = self.magg(&["auth", "init"], &[]);
        assert_eq!(code, 0, "auth init: {out}{err}");
    }

    /// `magg auth token -q` and the given options: the token.
    fn token(&self, options: &[&str]) -> String {
        let mut args = vec!["auth", "token", "-q"];
        args.extend_from_slice(options);
        let (code, out, err) = self.magg(&args, &[]);
        assert_eq!(code, 0, "auth token: {out}{err}");
        out.trim().to_owned()
    }

    /// `magg serve --http` on a loopback port in this home, with `env`.
    async fn serve(&self, env: &[(&str, &str)]) -> Magg {
        let mut all = vec![("HOME", self.home())];
        all.extend_from_slice(env);
        let args = ["--http", "--host", "127.0.0.1", "--port", "0"];
        Magg::http_with(&self.config.path, &args, &all).await
    }
}

/// Runs `tests/python/jwt_interop.py` with `python`: (success, stdout, stderr).
fn interop_with(python: &Path, args: &[&str]) -> (bool, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/jwt_interop.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (pip install -r tests/python/requirements.txt)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`interop_with`] the system's `python3` (PyJWT and `cryptography`, as Magg uses them).
fn interop(args: &[&str]) -> (bool, String, String) {
    interop_with(Path::new("python3"), args)
}

/// A token PyJWT signs with the key file `key` and `claims`, as Magg's `create_token` does.
fn pyjwt_token(key: &Path, claims: &Value) -> String {
    let (ok, out, err) = interop(&["sign", key.to_str().expect("path"), &claims.to_string()]);
    assert!(ok, "PyJWT signs: {err}");
    out.trim().to_owned()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Claims as Magg's `create_token` makes them, with `changes` applied.
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": "https://magg.local", "aud": "magg", "sub": "dev-user",
        "iat": now(), "exp": now() + 3600,
    });
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        claims.extend(changes.clone());
    }
    claims
}

/// Asserts that `reply` is a 401 whose challenge and body describe the problem as `expected`.
fn assert_refused(reply: &Reply, expected: &str) {
    assert_eq!(reply.status, 401, "{reply}");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{reply}"
    );
    assert!(challenge.contains(expected), "{expected:?} in {challenge}");
    let body: Value = serde_json::from_slice(&reply.body).expect("a JSON body");
    assert_eq!(body["error"], json!("invalid_token"), "{reply}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains(expected),
        "{expected:?} in {description}"
    );
}

#[test]
fn auth_shows_in_help_with_magg_flags() {
    let (code, out, _) = run_cli(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("auth") && out.contains("Manage authentication"),
        "{out}"
    );
    for (args, flags) in [
        (
            vec!["auth", "--help"],
            vec!["init", "status", "public-key", "private-key", "token"],
        ),
        (
            vec!["auth", "init", "--help"],
            vec!["--issuer", "--audience", "--key-path"],
        ),
        (
            vec!["auth", "private-key", "--help"],
            vec!["--export", "--oneline"],
        ),
        (
            vec!["auth", "token", "--help"],
            vec!["--subject", "--hours", "--scopes", "--quiet", "--export"],
        ),
        (vec!["serve", "--help"], vec!["--insecure-no-auth"]),
    ] {
        let (code, out, err) = run_cli(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        for flag in flags {
            assert!(out.contains(flag), "{flag} in {args:?}: {out}");
        }
    }
}

#[test]
fn auth_init_makes_the_key_files_magg_makes_and_prints_them_as_magg_does() {
    let home = Home::new();
    let (code, out, _) = home.magg(&["auth", "status"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("Authentication is DISABLED"), "{out}");
    let (code, _, err) = home.magg(&["auth", "token"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("No authentication keys found. Run 'magg auth init' first"),
        "{err}"
    );

    let (code, out, err) = home.magg(&["auth", "init"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("✓ Generated new RSA keypair for audience 'magg'"),
        "{out}"
    );
    assert!(
        out.contains("✓ Authentication initialized with audience 'magg'"),
        "{out}"
    );
    let key = home.key_file("magg.key");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600, "the private key is the owner's alone");
    assert_eq!(mode(&home.path().join(".ssh/magg")), 0o700);
    assert!(
        !home.config.dir.path().join("auth.json").exists(),
        "default settings write no auth.json, as Magg"
    );

    // The public key as Magg derives it from the same private key.
    let (ok, magg_public, err) = interop(&["public", key.to_str().expect("path")]);
    assert!(ok, "{err}");
    let (pem, ssh) = magg_public
        .rsplit_once("-----END PUBLIC KEY-----\n")
        .map(|(pem, ssh)| (format!("{pem}-----END PUBLIC KEY-----\n"), ssh.trim_end()))
        .expect("PEM then OpenSSH");
    let written = std::fs::read_to_string(home.key_file("magg.key.pub")).expect("key.pub");
    assert_eq!(written, ssh, "magg.key.pub is the OpenSSH line Magg writes");
    let (_, out, _) = home.magg(&["auth", "public-key"], &[]);
    assert_eq!(out, format!("{pem}\n"));
    let (_, out, _) = home.magg(&["auth", "private-key"], &[]);
    let private = std::fs::read_to_string(&key).expect("key");
    assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert_eq!(out, format!("{private}\n"));
    let (_, out, _) = home.magg(&["auth", "private-key", "-e"], &[]);
    assert_eq!(
        out,
        format!(
            "export MAGG_PRIVATE_KEY='{}'\n",
            private.replace('\n', "\\n")
        )
    );

    let (_, out, _) = home.magg(&["auth", "status"], &[]);
    for line in [
        "Authentication is ENABLED (Bearer Token)",
        "Issuer: https://magg.local",
        "Audience: magg",
        &format!("Private key file: {}", key.display()),
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    let (code, _, err) = home.magg(&["auth", "init"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("Private key already exists at"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).expect("key"), private, "kept");

    // What scripts read: the token alone (-q, or on stdout by default), or an export line.
    let (code, out, err) = home.magg(&["auth", "token"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(out.trim().split('.').count(), 3, "{out}");
    assert!(
        err.contains("✓ Generated token for 'dev-user' (valid for 24 hours)"),
        "{err}"
    );
    let (_, out, _) = home.magg(&["auth", "token", "-e"], &[]);
    let token = out
        .strip_prefix("export MAGG_JWT=")
        .expect("export line")
        .trim();
    assert_eq!(token.split('.').count(), 3);

    // PyJWT reads magg's token as Magg's server would.
    let token = home.token(&[
        "--subject",
        "ann",
        "--hours",
        "2",
        "--scopes",
        "read",
        "write",
    ]);
    let (ok, out, err) = interop(&[
        "verify",
        key.to_str().expect("path"),
        &token,
        "https://magg.local",
        "magg",
    ]);
    assert!(ok, "PyJWT accepts magg's token: {err}");
    let claims: Value = serde_json::from_str(&out).expect("claims");
    assert_eq!(claims["sub"], json!("ann"));
    assert_eq!(claims["scope"], json!("read write"));
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        7200
    );
}

#[test]
fn auth_settings_go_to_auth_json_and_the_key_may_come_from_the_environment() {
    let home = Home::new();
    let keys = home.path().join("keys");
    let (code, out, err) = home.magg(
        &[
            "auth",
            "init",
            "--audience",
            "team",
            "--issuer",
            "https://id.example",
            "--key-path",
            keys.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let auth_json = home.config.dir.path().join("auth.json");
    assert!(out.contains(&format!("Auth config saved to: {}", auth_json.display())));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&auth_json).expect("auth.json"))
            .expect("JSON");
    assert_eq!(
        saved,
        json!({"bearer": {"issuer": "https://id.example", "audience": "team", "key_path": keys}})
    );
    assert!(keys.join("team.key").exists() && keys.join("team.key.pub").exists());
    let (_, out, _) = home.magg(&["auth", "status"], &[]);
    assert!(
        out.contains("Audience: team") && out.contains("Issuer: https://id.example"),
        "{out}"
    );

    // The key on one line in MAGG_PRIVATE_KEY, with no key file: still on, same key.
    let (_, oneline, _) = home.magg(&["auth", "private-key", "--oneline"], &[]);
    let elsewhere = Home::new();
    std::fs::copy(&auth_json, elsewhere.config.dir.path().join("auth.json")).expect("copy");
    std::fs::remove_dir_all(&keys).ok();
    let env = [("MAGG_PRIVATE_KEY", oneline.trim())];
    let (_, out, _) = elsewhere.magg(&["auth", "status"], &env);
    assert!(out.contains("Authentication is ENABLED"), "{out}");
    assert!(
        out.contains("Private key also available via MAGG_PRIVATE_KEY env var"),
        "{out}"
    );
    let (code, _, _) = elsewhere.magg(&["auth", "token", "-q"], &env);
    assert_eq!(code, 0);
}

#[tokio::test]
async fn http_with_a_key_accepts_exactly_the_valid_tokens() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    magg.wait_for_log("HTTP requires a bearer token").await;

    assert_refused(
        &initialize_with(&url, None).await,
        "Authentication required: send `Authorization: Bearer <token>`",
    );
    assert_refused(
        &initialize_with(&url, Some("Basic dXNlcjpwYXNz")).await,
        "must be `Bearer <token>`",
    );
    let key = home.key_file("magg.key");
    let bearer = |token: String| format!("Bearer {token}");
    let wrong = [
        (
            claims(json!({"aud": "x"})),
            "audience is `x`, expected `magg`",
        ),
        (
            claims(json!({"iss": "https://other"})),
            "issuer is `https://other`, expected `https://magg.local`",
        ),
        (claims(json!({"exp": now() - 3600})), "token expired at "),
    ];
    for (claims, expected) in wrong {
        let token = pyjwt_token(&key, &claims);
        assert_refused(&initialize_with(&url, Some(&bearer(token))).await, expected);
    }
    let other = home.path().join("other");
    let (ok, _, err) = interop(&["keygen", other.to_str().expect("path"), "magg"]);
    assert!(ok, "{err}");
    let forged = pyjwt_token(&other.join("magg.key"), &claims(json!({})));
    assert_refused(
        &initialize_with(&url, Some(&bearer(forged))).await,
        "signature does not match magg's key",
    );

    // A token signed as Magg signs it, and one magg signs: a whole session each.
    for token in [pyjwt_token(&key, &claims(json!({}))), home.token(&[])] {
        let auth = bearer(token);
        let mut conn = Conn::open(&url).await;
        let headers = [
            ("Content-Type", "application/json"),
            ("Accept", BOTH),
            ("Authorization", auth.as_str()),
        ];
        let reply = conn
            .send("POST", "/mcp", &headers, &initialize().to_string())
            .await;
        assert_eq!(reply.status, 200, "{reply}");
        let session = reply.header("mcp-session-id").expect("session").to_owned();
        let mut headers = headers.to_vec();
        headers.push(("Mcp-Session-Id", &session));
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = conn
            .send("POST", "/mcp", &headers, &initialized.to_string())
            .await;
        assert_eq!(ack.status, 202, "{ack}");
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "magg_list_servers", "arguments": {}}});
        let reply = conn.send("POST", "/mcp", &headers, &call.to_string()).await;
        assert_eq!(reply.status, 200, "{reply}");
        assert!(reply.text().contains("\\\"name\\\":\\\"tb\\\""), "{reply}");
        // The session continues only with the token.
        let without: Vec<_> = headers
            .iter()
            .copied()
            .filter(|(n, _)| *n != "Authorization")
            .collect();
        let reply = conn.send("POST", "/mcp", &without, &call.to_string()).await;
        assert_eq!(reply.status, 401, "{reply}");
    }
}

#[tokio::test]
async fn an_authenticated_http_client_may_change_servers() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "magg_add_server",
        "arguments": {"name": "tb2", "source": "test", "prefix": "tbb",
                      "command": bin("magg-test-backend").display().to_string()},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    }});
    let auth = format!("Bearer {}", home.token(&[]));
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "magg_add_server"),
        ("Authorization", auth.as_str()),
    ];
    let reply = Conn::open(&url)
        .await
        .send("POST", "/mcp", &headers, &body.to_string())
        .await;
    assert_eq!(reply.status, 200, "{reply}");
    let response = reply.messages().into_iter().next().expect("a response");
    assert_ne!(response["result"]["isError"], json!(true), "{reply}");
    assert!(home.config.read()["servers"]["tb2"].is_object());
}

#[tokio::test]
async fn an_unauthenticated_http_client_cannot_change_servers_or_the_config() {
    let home = Home::new();
    let magg = home.serve(&[]).await;
    magg.wait_for_log("HTTP authentication is off").await;
    let before = home.config.read();
    let client = magg.http_client().await;
    let backend = bin("magg-test-backend").display().to_string();
    let add = json!({"name": "evil", "source": "x", "command": backend});

    let refused = |result: Value, tool: &str| {
        assert_eq!(result["isError"], json!(true), "{result}");
        let message = text(&result);
        for needle in [
            &format!("`{tool}` starts servers or changes magg's config"),
            "magg auth init",
            "\"allow_unauthenticated_changes\": true",
            "MAGG_ALLOW_UNAUTHENTICATED_CHANGES=1",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
    };
    refused(
        client
            .call("magg_add_server", add.clone())
            .await
            .expect("call"),
        "magg_add_server",
    );
    for (tool, args) in [
        ("magg_remove_server", json!({"name": "tb"})),
        ("magg_disable_server", json!({"name": "tb"})),
        ("magg_enable_server", json!({"name": "tb"})),
        ("magg_reload_config", json!({})),
        ("magg_load_kit", json!({"name": "web"})),
        ("magg_unload_kit", json!({"name": "web"})),
        ("magg_check", json!({"action": "remount"})),
        (
            "magg_smart_configure",
            json!({"source": "/tmp", "allow_add": true}),
        ),
    ] {
        refused(client.call(tool, args).await.expect("call"), tool);
    }
    // Through the proxy tool, the call is judged as the call it passes on.
    let via_proxy = client
        .call(
            "proxy",
            json!({"action": "call", "type": "tool", "path": "magg_add_server", "args": add}),
        )
        .await
        .expect("proxy");
    assert!(
        via_proxy.to_string().contains("magg auth init"),
        "{via_proxy}"
    );
    // One stateless POST, no session: refused the same way.
    let stateless = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "magg_add_server", "arguments": add,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    }});
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", BOTH),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "magg_add_server"),
    ];
    let url = magg.url.clone().expect("url");
    let reply = Conn::open(&url)
        .await
        .send("POST", "/mcp", &headers, &stateless.to_string())
        .await;
    let response = reply.messages().into_iter().next().expect("a response");
    refused(response["result"].clone(), "magg_add_server");
    assert_eq!(home.config.read(), before, "the config is unchanged");

    // Reading works: the tools that change nothing, and the backends' tools.
    let servers = magg_body(
        &client
            .call("magg_list_servers", json!({}))
            .await
            .expect("list"),
    );
    assert_eq!(servers["output"][0]["name"], json!("tb"));
    let report = client.call("magg_check", json!({})).await.expect("check");
    assert_ne!(report["isError"], json!(true), "{report}");
    let echo = client
        .call_eventually("tb_echo", json!({"text": "still served"}))
        .await;
    assert_eq!(text(&echo), "still served");
}

#[tokio::test]
async fn changes_without_authentication_can_be_allowed_by_the_config_or_the_environment() {
    let backend = bin("magg-test-backend").display().to_string();
    for (setting, env) in [
        (json!(true), None),
        (
            json!(false),
            Some(("MAGG_ALLOW_UNAUTHENTICATED_CHANGES", "1")),
        ),
    ] {
        let home = Home::new();
        let mut config = home.config.read();
        config["allow_unauthenticated_changes"] = setting;
        home.config.write(&config);
        let env: Vec<_> = env.into_iter().collect();
        let magg = home.serve(&env).await;
        magg.wait_for_log("allow_unauthenticated_changes is on")
            .await;
        let client = magg.http_client().await;
        let added = client
            .call(
                "magg_add_server",
                json!({"name": "tb2", "source": "x", "prefix": "tbb", "command": backend}),
            )
            .await
            .expect("call");
        assert_ne!(added["isError"], json!(true), "{added}");
        assert!(home.config.read()["servers"]["tb2"].is_object());
    }
}

#[tokio::test]
async fn http_beyond_loopback_needs_authentication_or_insecure_no_auth() {
    let home = Home::new();
    let args = ["--http", "--host", "0.0.0.0", "--port", "0"];
    let err = home.serve_refused(&args, &[]).await;
    for needle in [
        "refusing to serve HTTP on 0.0.0.0 without authentication",
        "magg auth init",
        "--insecure-no-auth",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }

    let mut args = args.to_vec();
    args.push("--insecure-no-auth");
    let magg = Magg::http_with(&home.config.path, &args, &[("HOME", home.home())]).await;
    assert!(magg.url.is_some());
}

#[tokio::test]
async fn a_key_that_cannot_be_read_keeps_http_from_starting() {
    let home = Home::new();
    let bad_key = "-----BEGIN RSA PRIVATE KEY-----\\nnot a key\\n";
    let err = home
        .serve_refused(&["--http", "--port", "0"], &[("MAGG_PRIVATE_KEY", bad_key)])
        .await;
    assert!(
        err.contains("Private key from MAGG_PRIVATE_KEY could not be loaded")
            && err.contains("refusing to serve HTTP without authentication"),
        "{err}"
    );
}

#[tokio::test]
async fn an_auth_json_that_cannot_be_used_keeps_http_from_starting() {
    let home = Home::new();
    let auth_file = home.config.path.parent().expect("dir").join("auth.json");
    for (auth, expected) in [
        (
            json!({"oauth": {"issuer": "id.example.com"}}),
            "`oauth.issuer` is not a URL",
        ),
        (
            json!({"oauth": {"issuer": "https://id.example.com"},
                   "access": {"scopes": {"read": {"tool": ["x"]}}}}),
            "`access.scopes.read.tool` is not known",
        ),
    ] {
        std::fs::write(&auth_file, auth.to_string()).expect("auth.json");
        let err = home.serve_refused(&["--http", "--port", "0"], &[]).await;
        assert!(
            err.contains(expected) && err.contains("refusing to serve HTTP without authentication"),
            "{expected:?} in {err}"
        );
    }
}

/// Magg 1.3's Python, where `tests/run.sh` could install it.
fn magg_python() -> Option<PathBuf> {
    let python = target_dir().join("magg-py/bin/python");
    python.exists().then_some(python)
}

#[tokio::test]
async fn tokens_cross_between_magg_1_3_and_magg() {
    let Some(python) = magg_python() else {
        eprintln!(
            "Magg 1.3 is not installed in target/magg-py (tests/run.sh installs it where a \
             Python >= 3.12 is); PyJWT stood in for it in the other tests"
        );
        return;
    };
    let home = Home::new();
    let magg_cli = python.with_file_name("magg");
    let out = Command::new(&magg_cli)
        .args(["auth", "init"])
        .env("HOME", home.home())
        .current_dir(home.path())
        .output()
        .expect("Magg's auth init");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(&magg_cli)
        .args(["auth", "token", "-q", "--subject", "from-magg"])
        .env("HOME", home.home())
        .current_dir(home.path())
        .output()
        .expect("Magg's auth token");
    let magg_token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(magg_token.split('.').count(), 3, "{out:?}");

    // Magg's key and token, served by magg.
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    let reply = initialize_with(&url, Some(&format!("Bearer {magg_token}"))).await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        initialize_with(&url, None).await.status,
        401,
        "and auth is on"
    );

    // magg's token, checked the way Magg's server checks every request.
    let token = home.token(&["--subject", "from-rust"]);
    let key = home.key_file("magg.key");
    let args = [
        "magg-verify",
        key.to_str().expect("path"),
        &token,
        "https://magg.local",
        "magg",
    ];
    let (ok, out, err) = interop_with(&python, &args);
    assert!(ok, "Magg's verifier accepts magg's token: {err}");
    assert!(out.contains("from-rust"), "{out}");
    let expired = {
        let (ok, out, err) = interop_with(
            &python,
            &[
                "sign",
                key.to_str().expect("path"),
                &claims(json!({"exp": now() - 10})).to_string(),
            ],
        );
        assert!(ok, "{err}");
        out.trim().to_owned()
    };
    let args = [
        "magg-verify",
        key.to_str().expect("path"),
        &expired,
        "https://magg.local",
        "magg",
    ];
    assert!(
        !interop_with(&python, &args).0,
        "and refuses an expired one"
    );
}

/// With a key, the SSE transport and the management API need the token like `/mcp` does; with
/// it, a server added over the API is served and saved.
#[tokio::test]
async fn sse_and_the_management_api_need_the_token_too() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    for (method, path) in [
        ("GET", "/mcp_servers"),
        ("GET", "/mcp_tools"),
        ("GET", "/sse"),
    ] {
        let reply = Conn::open(&url).await.send(method, path, &[], "").await;
        assert_eq!(reply.status, 401, "{method} {path}: {reply}");
    }
    let auth = format!("Bearer {}", home.token(&[]));
    let entry = json!({"mcpServers": {"extra": {
        "command": bin("magg-test-backend"), "args": ["--name", "extra"]}}});
    let reply = Conn::open(&url)
        .await
        .send(
            "POST",
            "/mcp_servers",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", auth.as_str()),
            ],
            &entry.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply}");
    assert!(home.config.read()["servers"]["extra"].is_object());
}

#[tokio::test]
async fn the_server_card_shows_the_catalog_only_to_a_token_magg_accepts() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("http url");
    let path = "/.well-known/mcp/server-card.json";
    let card = |reply: &Reply| -> Value {
        assert_eq!(reply.status, 200, "{reply}");
        serde_json::from_slice(&reply.body).expect("a JSON card")
    };

    // Without a token (or with a bad one) the card says how to connect and that a token is
    // needed, and nothing of what magg aggregates.
    for auth in [None, Some("Bearer not-a-token")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let open = card(&Conn::open(&url).await.send("GET", path, &headers, "").await);
        assert!(open.get("tools").is_none(), "{open}");
        assert_eq!(
            open["remotes"][0]["authentication"]["required"],
            json!(true),
            "{open}"
        );
        assert!(
            open["_meta"]["magg"]["catalog"]
                .as_str()
                .is_some_and(|c| c.contains("bearer token")),
            "{open}"
        );
    }

    // With a token magg accepts, the catalog is in it.
    let auth = format!("Bearer {}", home.token(&[]));
    let mut seen = Vec::new();
    for _ in 0..100 {
        let shown = card(
            &Conn::open(&url)
                .await
                .send("GET", path, &[("Authorization", auth.as_str())], "")
                .await,
        );
        seen = shown["tools"]
            .as_array()
            .expect("tools with a token")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        if seen.iter().any(|t| t == "tb_echo") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen.iter().any(|t| t == "tb_echo"), "{seen:?}");
    assert!(seen.iter().any(|t| t == "magg_add_server"), "{seen:?}");
}

#[tokio::test]
async fn probes_need_no_token_where_mcp_does() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    magg.wait_for_log("HTTP requires a bearer token").await;
    let mut conn = Conn::open(&url).await;
    let refused = conn
        .send("GET", "/mcp", &[("Accept", "text/event-stream")], "")
        .await;
    assert_eq!(refused.status, 401, "{refused}");
    for path in ["/healthz", "/readyz"] {
        let reply = conn.send("GET", path, &[], "").await;
        assert!(
            reply.status == 200 || reply.status == 503,
            "{path} answers without a token: {reply}"
        );
    }
}

#[tokio::test]
async fn metrics_beside_mcp_need_the_token_that_mcp_needs() {
    let home = Home::new();
    home.init();
    let magg = home.serve(&[]).await;
    let url = magg.url.clone().expect("url");
    magg.wait_for_log("HTTP requires a bearer token").await;
    let mut conn = Conn::open(&url).await;
    let refused = conn.send("GET", "/metrics", &[], "").await;
    assert_eq!(refused.status, 401, "{refused}");
    let bearer = format!("Bearer {}", home.token(&[]));
    let scraped = conn
        .send("GET", "/metrics", &[("Authorization", bearer.as_str())], "")
        .await;
    assert_eq!(scraped.status, 200, "{scraped}");
    assert!(scraped.text().contains("magg_build_info"), "{scraped}");
}
