//! Measurement 21: what a per-session backend costs. `magg serve --http` with two
//! `magg-test-backend` servers, `sh` shared and `iso` with `"isolation": "session"`. For each of
//! N fresh sessions (20, 5 with `--quick`): the time from its first call of `sh_echo` to the
//! result (the shared instance is running), and, in another fresh session, of `iso_echo` (magg
//! starts the session's own instance first), then that session's second `iso_echo` (its
//! instance is running). The sessions stay open; then the VmRSS of each per-session instance
//! process (`/proc/PID/status`), and magg's own RSS growth per instance. No budgets.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::{
    Env, MAGG_ENV, Options,
    keepalive::{Client, Listening, free_port, serve_http_args},
    report::Section,
    server::{children_of, rss_kb},
    stats::{Summary, millis},
};

fn sessions(opts: Options) -> usize {
    if opts.quick { 5 } else { 20 }
}

/// Measurement 21.
pub async fn isolation(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 21 per-session backends: first call and memory per instance");
    let config = env.work.join("isolation.json");
    let backend = |name: &str| {
        json!({
            "source": "bench",
            "prefix": name,
            "command": env.backend,
            "args": ["--name", name],
        })
    };
    let mut iso = backend("iso");
    iso["isolation"] = json!("session");
    std::fs::write(
        &config,
        json!({"servers": {"sh": backend("sh"), "iso": iso}}).to_string(),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let magg = Listening::start(
        env,
        "magg --http (a shared and a session-isolated backend)",
        "magg-isolation",
        &env.magg,
        &serve_http_args(port, &config),
        MAGG_ENV,
        port,
    )
    .await?;
    let result = measure(&magg, opts).await;
    magg.stop().await;
    let m = result?;
    let n = sessions(opts);
    let shared = Summary::of(&m.shared_first);
    let isolated = Summary::of(&m.isolated_first);
    let warm = Summary::of(&m.isolated_second);
    let mut s = Section::new(
        "session_isolation",
        format!(
            "21. Per-session backends: a new session's first call to a shared server and to a \
             session-isolated one (which starts the session's own instance), {n} sessions each; \
             RSS per instance"
        ),
    );
    s.figure(
        "shared_first_call_p50_ms",
        "new session's first call, shared, p50",
        shared.p50 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "isolated_first_call_p50_ms",
        "the same, isolated (starts its instance), p50",
        isolated.p50 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "isolated_first_call_p90_ms",
        "the same, isolated, p90",
        isolated.p90 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "isolated_second_call_p50_ms",
        "that session's second call, isolated, p50",
        warm.p50 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "instance_rss_mib",
        "VmRSS of a per-session instance (mean)",
        crate::mib(m.instance_rss_kb),
        "MiB",
        None,
    );
    s.figure(
        "magg_rss_per_instance_kib",
        "magg's RSS per session with an instance",
        m.magg_per_instance_kb,
        "KiB",
        None,
    );
    s.data(
        "samples_ms",
        json!({
            "shared_first": m.shared_first.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
            "isolated_first": m.isolated_first.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
            "isolated_second": m.isolated_second.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
            "instances": m.instances,
        }),
    );
    Ok(s)
}

struct Measured {
    shared_first: Vec<Duration>,
    isolated_first: Vec<Duration>,
    isolated_second: Vec<Duration>,
    /// Mean VmRSS of the per-session instance processes, KiB.
    instance_rss_kb: u64,
    /// magg's RSS growth per session that has an instance, KiB.
    magg_per_instance_kb: f64,
    /// How many instance processes were found.
    instances: usize,
}

/// Times one call of `tool` on `client`.
async fn timed(client: &mut Client, tool: &str) -> Result<Duration> {
    let started = Instant::now();
    let answer = client
        .request(
            "tools/call",
            json!({"name": tool, "arguments": {"text": "x"}}),
        )
        .await?;
    let elapsed = started.elapsed();
    ensure!(
        answer["result"]["isError"] != json!(true) && answer.get("error").is_none(),
        "{tool} failed: {answer}"
    );
    Ok(elapsed)
}

async fn measure(magg: &Listening, opts: Options) -> Result<Measured> {
    let mut first = Client::connect(magg.addr).await?;
    first.wait_for_tool("sh_echo").await?;
    first.wait_for_tool("iso_echo").await?;
    // A call of each before timing, so that neither server is still settling.
    timed(&mut first, "sh_echo").await?;
    timed(&mut first, "iso_echo").await?;
    let shared_children = children_of(magg.pid);
    let mut shared_first = Vec::new();
    for _ in 0..sessions(opts) {
        let mut client = Client::connect(magg.addr).await?;
        shared_first.push(timed(&mut client, "sh_echo").await?);
    }
    let mut kept = Vec::new();
    let mut isolated_first = Vec::new();
    let mut isolated_second = Vec::new();
    // A session of its own costs magg a little too: measured with one first.
    let mut baseline = Client::connect(magg.addr).await?;
    timed(&mut baseline, "sh_echo").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let magg_before = rss_kb(magg.pid)?;
    for _ in 0..sessions(opts) {
        let mut client = Client::connect(magg.addr).await?;
        isolated_first.push(timed(&mut client, "iso_echo").await?);
        isolated_second.push(timed(&mut client, "iso_echo").await?);
        kept.push(client);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let magg_after = rss_kb(magg.pid)?;
    let instances: Vec<u32> = children_of(magg.pid)
        .into_iter()
        .filter(|pid| !shared_children.contains(pid))
        .collect();
    let rss: Vec<u64> = instances.iter().filter_map(|&p| rss_kb(p).ok()).collect();
    ensure!(!rss.is_empty(), "no per-session instance process was found");
    let instance_rss_kb = rss.iter().sum::<u64>() / rss.len() as u64;
    let magg_per_instance_kb =
        (magg_after as f64 - magg_before as f64) / (kept.len().max(1)) as f64;
    drop(kept);
    drop(baseline);
    drop(first);
    Ok(Measured {
        shared_first,
        isolated_first,
        isolated_second,
        instance_rss_kb,
        magg_per_instance_kb,
        instances: instances.len(),
    })
}
