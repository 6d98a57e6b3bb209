//! Stopping magg: the calls in flight at SIGTERM are answered, new requests are refused while it
//! drains, and no backend process (nor anything a backend started) outlives magg, however magg
//! is stopped: SIGTERM, SIGINT, its stdin closing, or SIGKILL.

use std::collections::BTreeSet;

use serde_json::json;

use crate::{
    harness::{Magg, RawStdio, TempConfig, WAIT, eventually, test_backend, text},
    raw_http::Conn,
};

/// How long each slow call takes: long enough to still be running when magg is told to stop.
const SLOW_MS: u64 = 4000;

/// One process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: i32,
    start: u64,
}

/// What `/proc/<pid>/stat` says of a process.
struct Stat {
    state: char,
    ppid: i32,
    pgrp: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields are counted
    // from after its closing one.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process in the process table, with what its stat says.
fn processes() -> Vec<(Proc, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = stat(pid)?;
            Some((
                Proc {
                    pid,
                    start: stat.start,
                },
                stat,
            ))
        })
        .collect()
}

/// Whether `proc` is still running: in the process table and not a zombie (an ended process
/// whose parent has not reaped it yet).
fn running(proc: &Proc) -> bool {
    stat(proc.pid).is_some_and(|s| s.start == proc.start && s.state != 'Z')
}

/// The running processes of process group `group`.
fn group(group: i32) -> BTreeSet<Proc> {
    processes()
        .into_iter()
        .filter(|(_, s)| s.pgrp == group && s.state != 'Z')
        .map(|(p, _)| p)
        .collect()
}

/// The running children of `parent`.
fn children(parent: i32) -> BTreeSet<Proc> {
    processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == parent && s.state != 'Z')
        .map(|(p, _)| p)
        .collect()
}

fn signal(magg: &Magg, signal: libc::c_int) {
    let pid = magg.child.id().expect("magg is running") as libc::pid_t;
    // SAFETY: kill only sends a signal to the magg process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal magg");
}

/// Waits for magg to exit and returns its exit code.
async fn exit_code(magg: &mut Magg) -> Option<i32> {
    tokio::time::timeout(WAIT, magg.child.wait())
        .await
        .expect("magg did not exit in time")
        .expect("wait for magg")
        .code()
}

/// A config with the test backend `tb`, its stderr in magg's log.
fn config() -> TempConfig {
    TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}))
}

const ENV: &[(&str, &str)] = &[
    ("MAGG_STDERR_SHOW", "true"),
    // Far longer than the calls take: the drain ends when they do.
    ("MAGG_SHUTDOWN_TIMEOUT", "120"),
];

#[tokio::test]
async fn calls_in_flight_at_sigterm_are_answered_and_new_ones_refused_over_stdio() {
    let config = config();
    let mut raw = RawStdio::start(&config.path, ENV).await;
    raw.initialize().await;
    for id in 1..=4 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "tb_slow", "arguments": {"ms": SLOW_MS}}});
        raw.send(call.to_string().as_bytes()).await;
    }
    raw.magg.wait_for_log_count("slow call started", 4).await;

    signal(&raw.magg, libc::SIGTERM);
    raw.magg.wait_for_log("SIGTERM: shutting down").await;
    let late = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "tb_echo", "arguments": {"text": "too late"}}});
    raw.send(late.to_string().as_bytes()).await;

    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 5 {
        let response = raw.response().await;
        let id = response["id"].as_u64().expect("a numeric id");
        answers.insert(id, response);
    }
    let refused = &answers[&5];
    assert_eq!(refused["error"]["code"], json!(-32000), "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("magg is shutting down"), "{refused}");
    for id in 1..=4 {
        assert_eq!(
            text(&answers[&id]["result"]),
            format!("slept {SLOW_MS} ms"),
            "call {id}: {}",
            answers[&id]
        );
    }
    assert_eq!(exit_code(&mut raw.magg).await, Some(0));
}

#[tokio::test]
async fn calls_in_flight_at_sigterm_are_answered_and_new_ones_refused_over_http() {
    let config = config();
    let mut magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        ENV,
    )
    .await;
    let url = magg.url.clone().expect("url");
    let client = std::sync::Arc::new(magg.http_client().await);
    let mut conn = Conn::open(&url).await;
    let session = conn.open_session().await;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("tb_slow", json!({"ms": SLOW_MS})).await })
        })
        .collect();
    magg.wait_for_log_count("slow call started", 4).await;

    signal(&magg, libc::SIGTERM);
    magg.wait_for_log("SIGTERM: shutting down").await;
    // A new request on a connection already open gets 503, and a client may try again later.
    let late = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "tb_echo", "arguments": {"text": "too late"}}});
    let reply = conn.post(Some(&session), &late).await;
    assert_eq!(reply.status, 503, "{reply}");
    assert!(reply.header("retry-after").is_some(), "{reply}");
    let error = reply.json();
    assert_eq!(error["id"], json!(5), "{reply}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("magg is shutting down")),
        "{reply}"
    );
    // The listener has closed: new connections are not taken.
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    eventually("the listener to close", WAIT, || {
        let authority = authority.clone();
        async move {
            tokio::net::TcpStream::connect(&authority)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;

    for call in calls {
        let result = call
            .await
            .expect("call task")
            .expect("the call in flight is answered");
        assert_eq!(text(&result), format!("slept {SLOW_MS} ms"), "{result}");
    }
    assert_eq!(exit_code(&mut magg).await, Some(0));
}

/// A stdio magg with `shutdown_timeout` of `timeout` seconds, and a 10-minute call of
/// `tb_slow` running in it.
async fn stdio_with_a_call_in_flight(config: &TempConfig, timeout: &str) -> RawStdio {
    let env = [
        ("MAGG_STDERR_SHOW", "true"),
        ("MAGG_SHUTDOWN_TIMEOUT", timeout),
    ];
    let mut raw = RawStdio::start(&config.path, &env).await;
    raw.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "tb_slow", "arguments": {"ms": 600_000}}});
    raw.send(call.to_string().as_bytes()).await;
    raw.magg.wait_for_log("slow call started").await;
    raw
}

#[tokio::test]
async fn a_second_signal_stops_without_waiting_for_the_calls() {
    let config = config();
    let mut raw = stdio_with_a_call_in_flight(&config, "600").await;
    signal(&raw.magg, libc::SIGINT);
    raw.magg
        .wait_for_log("waiting up to 600.0s (shutdown_timeout) for the requests in flight")
        .await;
    signal(&raw.magg, libc::SIGINT);
    assert_eq!(exit_code(&mut raw.magg).await, Some(0));
    assert!(raw.magg.logged("SIGINT again: stopping now"));
}

#[tokio::test]
async fn the_drain_ends_at_shutdown_timeout() {
    let config = config();
    let mut raw = stdio_with_a_call_in_flight(&config, "0.5").await;
    signal(&raw.magg, libc::SIGTERM);
    assert_eq!(exit_code(&mut raw.magg).await, Some(0));
    assert!(
        raw.magg
            .logged("requests still in flight after 0.5s (shutdown_timeout)"),
        "{:?}",
        raw.magg.log.lock().expect("log")
    );
}

/// How a test stops magg.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Signal(libc::c_int),
    CloseStdin,
    Kill,
}

/// Starts magg on stdio over two backends, one of which ignores SIGTERM and the end of its
/// input and has started a second process in its group (which ignores SIGTERM too); stops
/// magg as `how` says; then every backend process, everything in their groups, and every
/// other process magg started must be gone.
async fn no_backend_process_outlives_magg(how: Stop) {
    let config = TempConfig::new(&json!({"servers": {
        "stub": test_backend("stub", "stub", &["--stubborn", "--grandchild"]),
        "tb": test_backend("tb", "tb", &[]),
    }}));
    let mut magg = Magg::stdio_with(&config.path, &[], &[("MAGG_STDERR_SHOW", "true")]).await;
    let client = magg.take_client();
    let mut watched = BTreeSet::new();
    for prefix in ["stub", "tb"] {
        let result = client
            .call_eventually(&format!("{prefix}_pid"), json!({}))
            .await;
        let pid: i32 = text(&result).parse().expect("a pid");
        let members = if prefix == "stub" {
            // The backend and its grandchild.
            eventually(format!("two processes in group {pid}"), WAIT, || async {
                let members = group(pid);
                (members.len() == 2).then_some(members)
            })
            .await
        } else {
            group(pid)
        };
        assert!(
            members.iter().any(|p| p.pid == pid),
            "backend {pid} is in its own group: {members:?}"
        );
        watched.extend(members);
    }
    let magg_pid = magg.child.id().expect("magg runs") as i32;
    // The backends, and the process that ends their groups should magg be killed.
    let started = children(magg_pid);
    assert!(
        started.len() >= 3,
        "magg has started the two backends and its reaper: {started:?}"
    );
    watched.extend(started);

    match how {
        Stop::Signal(signal_number) => {
            signal(&magg, signal_number);
            assert_eq!(exit_code(&mut magg).await, Some(0));
            drop(client);
        }
        Stop::CloseStdin => {
            client.close().await;
            assert_eq!(exit_code(&mut magg).await, Some(0));
        }
        Stop::Kill => {
            magg.child.start_kill().expect("SIGKILL magg");
            let _ = exit_code(&mut magg).await;
            drop(client);
        }
    }
    let left = eventually(
        format!("every backend process to end after {how:?}"),
        WAIT,
        || {
            let watched = watched.clone();
            async move {
                let left: Vec<Proc> = watched.iter().filter(|p| running(p)).copied().collect();
                left.is_empty().then_some(left)
            }
        },
    )
    .await;
    assert!(left.is_empty());
}

#[tokio::test]
async fn no_backend_process_outlives_magg_after_sigterm() {
    no_backend_process_outlives_magg(Stop::Signal(libc::SIGTERM)).await;
}

#[tokio::test]
async fn no_backend_process_outlives_magg_after_sigint() {
    no_backend_process_outlives_magg(Stop::Signal(libc::SIGINT)).await;
}

#[tokio::test]
async fn no_backend_process_outlives_magg_after_its_stdin_closes() {
    no_backend_process_outlives_magg(Stop::CloseStdin).await;
}

#[tokio::test]
async fn no_backend_process_outlives_magg_after_sigkill() {
    no_backend_process_outlives_magg(Stop::Kill).await;
}

#[tokio::test]
async fn magg_without_stdio_backends_starts_no_other_process() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    magg.client().ping().await;
    let pid = magg.child.id().expect("magg runs") as i32;
    assert_eq!(children(pid), BTreeSet::new());
    signal(&magg, libc::SIGTERM);
    assert_eq!(exit_code(&mut magg).await, Some(0));
}

#[tokio::test]
async fn sigterm_stops_magg_whose_stdin_stays_open_and_silent() {
    let config = config();
    // magg's stdin is a pipe from a process that never writes to it nor closes it (as from a
    // shell: `sleep 600 | magg serve`): magg's read of stdin then blocks a thread of its own,
    // which must not keep magg from exiting.
    let script = format!(
        "sleep 600 | {} serve --config {} >/dev/null",
        crate::harness::bin("magg").display(),
        config.path.display()
    );
    let mut shell = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .envs(ENV.iter().copied())
        .env(
            "MAGG_CACHE_DIR",
            crate::harness::target_dir().join("test-cache"),
        )
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sh");
    let (log, _lines) = Magg::collect_stderr(&mut shell);
    let magg = Magg {
        child: shell,
        log,
        url: None,
        stdio: None,
    };
    magg.wait_for_log("backend ready").await;
    let shell_pid = magg.child.id().expect("sh runs") as i32;
    let magg_pid = eventually("magg's pid", WAIT, || async {
        children(shell_pid).into_iter().find(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|cmdline| cmdline.windows(5).any(|w| w == b"serve"))
        })
    })
    .await;
    let sleep = children(shell_pid)
        .into_iter()
        .find(|p| p.pid != magg_pid.pid)
        .expect("the sleep before magg");
    // Ends the `sleep` however the test ends (magg, should it still run, then sees its stdin
    // close and exits too).
    struct EndSleep(i32);
    impl Drop for EndSleep {
        fn drop(&mut self) {
            // SAFETY: kill only ends the `sleep` this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _end_sleep = EndSleep(sleep.pid);
    // SAFETY: kill only sends a signal to the magg process this test started.
    assert_eq!(unsafe { libc::kill(magg_pid.pid, libc::SIGTERM) }, 0);
    eventually("magg to exit after SIGTERM", WAIT, || async {
        (!running(&magg_pid)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_says_503_while_magg_drains() {
    let config = config();
    let env = [
        ("MAGG_STDERR_SHOW", "true"),
        ("MAGG_SHUTDOWN_TIMEOUT", "120"),
        ("MAGG_ADMIN_PORT", "0"),
        ("MAGG_ADMIN_HOST", "127.0.0.1"),
    ];
    let mut raw = RawStdio::start(&config.path, &env).await;
    raw.initialize().await;
    let admin = raw.magg.admin_url().await;
    let ready = |admin: String| async move {
        let reply = Conn::open(&admin)
            .await
            .send("GET", "/readyz", &[], "")
            .await;
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        (reply.status, body)
    };
    eventually("readiness before the drain", WAIT, || {
        let ready = ready(admin.clone());
        async move { (ready.await.0 == 200).then_some(()) }
    })
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "tb_slow", "arguments": {"ms": SLOW_MS}}});
    raw.send(call.to_string().as_bytes()).await;
    raw.magg.wait_for_log("slow call started").await;

    signal(&raw.magg, libc::SIGTERM);
    raw.magg.wait_for_log("SIGTERM: shutting down").await;
    let (status, body) = ready(admin.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["draining"], json!(true), "{body}");

    let answer = raw.response().await;
    assert_eq!(
        text(&answer["result"]),
        format!("slept {SLOW_MS} ms"),
        "{answer}"
    );
    assert_eq!(exit_code(&mut raw.magg).await, Some(0));
}
