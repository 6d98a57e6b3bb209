//! Three magg replicas with one config behind a real HAProxy, run with `deploy/haproxy.cfg`
//! itself (its addresses and socket path replaced): stateless clients are spread over the
//! replicas and keep working when one dies, session-era clients stick to their replica and
//! start over on another when it dies, and a config change reaches every replica.
//!
//! Skipped, saying so, where `haproxy` is not installed (`apt-get install haproxy`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::UnixStream,
    process::{Child, Command},
};

use crate::{
    harness::{ConfigMapDir, Magg, RemoteBackend, WAIT, eventually, remote_test_backend, text},
    http::{response_of, stateless_call},
    raw_http::Conn,
};

/// The replicas' names in `deploy/haproxy.cfg`, in order.
const NAMES: [&str; 3] = ["magg1", "magg2", "magg3"];

/// Whether `haproxy` can be run; prints why the test is skipped when not.
fn haproxy_installed(test: &str) -> bool {
    let found = std::process::Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("{test}: skipped, haproxy is not installed (apt-get install haproxy)");
    }
    found
}

/// Three `magg serve --http` replicas of one ConfigMap-mounted config, read-only as in
/// `deploy/deployment.yaml`, in front of one streamable-HTTP test backend.
struct Replicas {
    magg: Vec<Option<Magg>>,
    urls: Vec<String>,
    mount: ConfigMapDir,
    remote: RemoteBackend,
}

impl Replicas {
    async fn start() -> Replicas {
        let remote = remote_test_backend("tb").await;
        let mount = ConfigMapDir::new(&json!({"servers": {"tb": remote.entry("tb")}}));
        let mut magg = Vec::new();
        let mut urls = Vec::new();
        for _ in NAMES {
            let replica = Magg::http_with(
                &mount.path,
                &["--http", "--host", "127.0.0.1", "--port", "0"],
                &[
                    ("MAGG_READ_ONLY", "true"),
                    // So that read-only mode, not the missing key, is why changes are refused.
                    ("MAGG_ALLOW_UNAUTHENTICATED_CHANGES", "true"),
                ],
            )
            .await;
            urls.push(replica.url.clone().expect("url"));
            magg.push(Some(replica));
        }
        Replicas {
            magg,
            urls,
            mount,
            remote,
        }
    }

    /// Kills replica `index` at once (SIGKILL), as a crash or a lost node would.
    async fn kill(&mut self, index: usize) {
        let mut replica = self.magg[index].take().expect("a running replica");
        replica.child.start_kill().expect("kill");
        let _ = replica.child.wait().await;
    }
}

/// HAProxy running `deploy/haproxy.cfg` in the foreground, in front of `replicas`.
struct Haproxy {
    _child: Child,
    /// What HAProxy wrote to stderr (its warnings: replicas going down and up).
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    socket: PathBuf,
    /// `http://127.0.0.1:<port>/mcp`.
    url: String,
}

impl Haproxy {
    async fn start(replicas: &Replicas) -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("admin.sock");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let documented = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg"),
        )
        .expect("read deploy/haproxy.cfg");
        let mut replace = vec![
            ("bind :8000".to_owned(), format!("bind 127.0.0.1:{port}")),
            (
                "/run/haproxy/admin.sock".to_owned(),
                socket.display().to_string(),
            ),
        ];
        for (i, url) in replicas.urls.iter().enumerate() {
            let address = url.trim_start_matches("http://").trim_end_matches("/mcp");
            replace.push((format!("127.0.0.1:800{}", i + 1), address.to_owned()));
        }
        let mut config = documented.clone();
        for (from, to) in &replace {
            assert!(
                config.contains(from.as_str()),
                "deploy/haproxy.cfg no longer has {from:?}; update this test with it"
            );
            config = config.replace(from.as_str(), to);
        }
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).expect("write haproxy.cfg");
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start haproxy");
        let (log, _lines) = Magg::collect_stderr(&mut child);
        let haproxy = Haproxy {
            _child: child,
            log,
            _dir: dir,
            socket,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        haproxy.wait_for(&NAMES, "UP").await;
        haproxy
    }

    /// Each replica's state (`UP`, `DOWN`, ...) and how many connections it was given, from
    /// HAProxy's `show stat`; empty while the socket is not there yet.
    async fn stats(&self) -> BTreeMap<String, (String, u64)> {
        let Ok(mut stream) = UnixStream::connect(&self.socket).await else {
            return BTreeMap::new();
        };
        if stream.write_all(b"show stat\n").await.is_err() {
            return BTreeMap::new();
        }
        let mut csv = String::new();
        let _ = tokio::time::timeout(WAIT, stream.read_to_string(&mut csv)).await;
        let mut lines = csv.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return BTreeMap::new();
        };
        let column = |name: &str| header.split(',').position(|c| c == name);
        let (Some(proxy), Some(server), Some(status), Some(total)) = (
            column("pxname"),
            column("svname"),
            column("status"),
            column("stot"),
        ) else {
            panic!("show stat has no pxname, svname, status or stot: {header}");
        };
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|row| row.get(proxy) == Some(&"magg"))
            .filter(|row| NAMES.contains(row.get(server).unwrap_or(&"")))
            .map(|row| {
                (
                    row[server].to_owned(),
                    (row[status].to_owned(), row[total].parse().unwrap_or(0)),
                )
            })
            .collect()
    }

    /// Waits until HAProxy sees each of `names` in `state`.
    async fn wait_for(&self, names: &[&str], state: &str) {
        struct Waiting<'a>(&'a Haproxy, String);
        impl std::fmt::Display for Waiting<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let log = self.0.log.lock().expect("log lock").join("\n");
                write!(f, "{} (HAProxy's log:\n{log}\n)", self.1)
            }
        }
        eventually(
            Waiting(self, format!("HAProxy seeing {names:?} {state}")),
            WAIT,
            || async {
                let stats = self.stats().await;
                names
                    .iter()
                    .all(|n| stats.get(*n).is_some_and(|(s, _)| s.starts_with(state)))
                    .then_some(())
            },
        )
        .await;
    }

    /// How many connections each replica was given so far.
    async fn totals(&self) -> Vec<u64> {
        let stats = self.stats().await;
        NAMES.iter().map(|n| stats[*n].1).collect()
    }
}

/// A stateless (2026-07-28) `tb_echo` of `message` on a connection of its own; `Ok` when the echo
/// came back, `Err` with what came instead.
async fn echo(url: &str, message: &str) -> Result<(), String> {
    let reply = stateless_call(url, "tb_echo", json!({"text": message}), json!({})).await;
    if reply.status != 200 {
        return Err(format!("HTTP {}: {}", reply.status, reply.text()));
    }
    let response = response_of(&reply);
    let result = &response["result"];
    if result["isError"] == json!(true) || text(result) != message {
        return Err(response.to_string());
    }
    Ok(())
}

#[tokio::test]
async fn stateless_calls_go_round_robin_and_survive_a_replica_that_dies() {
    if !haproxy_installed("stateless_calls_go_round_robin_and_survive_a_replica_that_dies") {
        return;
    }
    let mut replicas = Replicas::start().await;
    let haproxy = Haproxy::start(&replicas).await;

    for i in 0..30 {
        echo(&haproxy.url, &format!("call {i}"))
            .await
            .expect("a call through HAProxy");
    }
    let totals = haproxy.totals().await;
    let (min, max) = (totals.iter().min(), totals.iter().max());
    assert!(
        min >= Some(&9) && max <= Some(&11),
        "30 calls spread evenly over the 3 replicas, got {totals:?}"
    );

    // One replica dies mid-run; calls go on until HAProxy has marked it down, then every
    // call must succeed.
    replicas.kill(1).await;
    let killed = Instant::now();
    let mut failed_before_down = Vec::new();
    let mut i = 0;
    loop {
        let down = haproxy
            .stats()
            .await
            .get("magg2")
            .is_some_and(|(state, _)| state.starts_with("DOWN"));
        if down {
            break;
        }
        assert!(killed.elapsed() < WAIT, "HAProxy never marked magg2 down");
        if let Err(why) = echo(&haproxy.url, &format!("while down {i}")).await {
            failed_before_down.push(why);
        }
        i += 1;
    }
    let to_down = killed.elapsed();
    let at_down = haproxy.totals().await;
    for i in 0..30 {
        echo(&haproxy.url, &format!("after {i}"))
            .await
            .unwrap_or_else(|why| panic!("call {i} after magg2 was marked down failed: {why}"));
    }
    let after = haproxy.totals().await;
    assert_eq!(after[1], at_down[1], "no call went to the dead replica");
    assert_eq!(
        after[0] + after[2] - at_down[0] - at_down[2],
        30,
        "the two live replicas took every call: {at_down:?} -> {after:?}"
    );
    eprintln!(
        "replicas: HAProxy marked the killed replica down after {to_down:?}; {} of {i} calls \
         before that failed {failed_before_down:?}; 30 of 30 after that succeeded",
        failed_before_down.len()
    );
}

/// The index of the live replica that knows `session`: the only one that answers a ping in it.
async fn owner_of(replicas: &Replicas, session: &str) -> usize {
    let mut owners = Vec::new();
    for (i, url) in replicas.urls.iter().enumerate() {
        if replicas.magg[i].is_none() {
            continue;
        }
        let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
        let reply = Conn::open(url).await.post(Some(session), &ping).await;
        match reply.status {
            200 => owners.push(i),
            404 => {}
            other => panic!("a ping to replica {i} got HTTP {other}:\n{reply}"),
        }
    }
    assert_eq!(
        owners.len(),
        1,
        "one replica knows session {session}: {owners:?}"
    );
    owners[0]
}

/// A `tools/call` of `tb_echo` in `session`, through `conn`.
async fn echo_in_session(conn: &mut Conn, session: &str, id: u64) -> crate::raw_http::Reply {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "tb_echo", "arguments": {"text": format!("in session {id}")}}});
    conn.post(Some(session), &call).await
}

#[tokio::test]
async fn a_session_sticks_to_its_replica_and_starts_over_on_another_when_it_dies() {
    if !haproxy_installed("a_session_sticks_to_its_replica_and_starts_over_on_another_when_it_dies")
    {
        return;
    }
    let mut replicas = Replicas::start().await;
    let haproxy = Haproxy::start(&replicas).await;

    // Each request on a connection of its own, so only the session id can keep them together.
    let session = Conn::open(&haproxy.url).await.open_session().await;
    for id in 1..=9 {
        let reply = echo_in_session(&mut Conn::open(&haproxy.url).await, &session, id).await;
        assert_eq!(reply.status, 200, "call {id} of the session:\n{reply}");
        let result = &response_of_id(&reply, id)["result"];
        assert_eq!(text(result), format!("in session {id}"), "{reply}");
    }
    let owner = owner_of(&replicas, &session).await;

    replicas.kill(owner).await;
    haproxy.wait_for(&[NAMES[owner]], "DOWN").await;
    let gone = echo_in_session(&mut Conn::open(&haproxy.url).await, &session, 10).await;
    assert_eq!(gone.status, 404, "the session's replica is gone:\n{gone}");
    assert!(
        gone.text().to_lowercase().contains("session not found"),
        "the 404 says the session is unknown:\n{gone}"
    );

    // A new session starts on a live replica and keeps working there.
    let fresh = Conn::open(&haproxy.url).await.open_session().await;
    for id in 11..=14 {
        let reply = echo_in_session(&mut Conn::open(&haproxy.url).await, &fresh, id).await;
        assert_eq!(reply.status, 200, "call {id} of the new session:\n{reply}");
    }
    assert_ne!(owner_of(&replicas, &fresh).await, owner);
}

/// The JSON-RPC response with `id` in a reply.
fn response_of_id(reply: &crate::raw_http::Reply, id: u64) -> Value {
    reply
        .messages()
        .into_iter()
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no response {id} in:\n{reply}"))
}

#[tokio::test]
async fn a_config_change_reaches_every_replica_and_read_only_refuses_changes() {
    if !haproxy_installed("a_config_change_reaches_every_replica_and_read_only_refuses_changes") {
        return;
    }
    let mut replicas = Replicas::start().await;
    let haproxy = Haproxy::start(&replicas).await;

    // The kubelet publishes a new version of the ConfigMap; each replica reloads on its own.
    let entry = replicas.remote.entry("two");
    replicas
        .mount
        .update(&json!({"servers": {"tb": replicas.remote.entry("tb"), "two": entry}}));
    for (i, url) in replicas.urls.iter().enumerate() {
        eventually(
            format!("replica {i} running the added server"),
            WAIT,
            || async {
                let reply = Conn::open(url)
                    .await
                    .send("GET", "/mcp_servers", &[], "")
                    .await;
                let servers = reply.json()["active_servers"].clone();
                servers
                    .as_array()
                    .is_some_and(|s| s.contains(&json!("two")))
                    .then_some(())
            },
        )
        .await;
    }

    // Read-only (the config is a ConfigMap): a change is refused, saying why.
    let before = std::fs::read(&replicas.mount.path).expect("read the config");
    let reply = stateless_call(
        &haproxy.url,
        "magg_add_server",
        json!({"name": "three", "source": "tests/fixtures/test-backend", "uri": replicas.remote.url.clone()}),
        json!({}),
    )
    .await;
    let result = response_of(&reply)["result"].clone();
    assert_eq!(result["isError"], json!(true), "{result}");
    let why = text(&result);
    assert!(
        why.contains("read-only mode") && why.contains("MAGG_READ_ONLY"),
        "the refusal names read-only mode and its setting: {why}"
    );
    assert_eq!(
        std::fs::read(&replicas.mount.path).expect("read the config"),
        before,
        "the config is unchanged"
    );
}
