//! Measurement 14: what an HTTP session costs magg, and whether it gets it back. `magg serve
//! --http` with an empty config and `session_idle_timeout` of 20 s (so idle sessions fall
//! asleep after 10 s): one session opened, then many more (each `initialize` and
//! `notifications/initialized` on a connection of its own, closed after), and magg's anonymous
//! RSS read after one session, after all of them (awake), once they have fallen asleep, and
//! once they have all ended idle.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::{
    Env, MAGG_ENV, Options,
    keepalive::{Client, Listening, free_port},
    report::{Budget, Section},
    server::rss_anon_kb,
};

/// `session_idle_timeout` of the measured magg, in seconds; idle sessions sleep after half.
const IDLE_SECS: u64 = 20;

fn sessions(opts: Options) -> usize {
    if opts.quick { 500 } else { 2000 }
}

/// Measurement 14.
pub async fn sessions_memory(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 14 HTTP sessions: memory per session and after they end");
    let config = env.work.join("sessions.json");
    std::fs::write(&config, json!({"servers": {}}).to_string())
        .with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let args: Vec<String> = [
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--config",
        &config.display().to_string(),
    ]
    .map(str::to_owned)
    .into();
    let idle = IDLE_SECS.to_string();
    let mut vars = MAGG_ENV.to_vec();
    vars.extend([
        ("MAGG_SESSION_IDLE_TIMEOUT", idle.as_str()),
        ("MAGG_MAX_SESSIONS", "0"),
    ]);
    let magg = Listening::start(
        env,
        "magg --http (no backends)",
        "magg-sessions",
        &env.magg,
        &args,
        &vars,
        port,
    )
    .await?;
    let result = measure(&magg, opts).await;
    magg.stop().await;
    let (one, all, asleep, after) = result?;
    let n = sessions(opts);
    let per_session = (all as f64 - one as f64) / n as f64;
    let per_asleep = (asleep as f64 - one as f64) / n as f64;
    let mut s = Section::new(
        "http_sessions",
        format!(
            "14. HTTP sessions: magg's anonymous RSS with 1 and {} more idle sessions, once they \
             fell asleep ({} s idle) and after they ended ({IDLE_SECS} s idle)",
            n,
            IDLE_SECS / 2
        ),
    );
    s.figure(
        "one_session_rss_mib",
        "RSS with 1 session",
        crate::mib(one),
        "MiB",
        None,
    );
    s.figure(
        "all_sessions_rss_mib",
        &format!("RSS with {} sessions", n + 1),
        crate::mib(all),
        "MiB",
        None,
    );
    s.figure(
        "per_session_kib",
        "RSS per session, awake (just opened)",
        per_session,
        "KiB",
        None,
    );
    s.figure(
        "per_idle_session_kib",
        "RSS per idle session (asleep)",
        per_asleep,
        "KiB",
        Some(Budget::AtMost(8.0)),
    );
    s.figure(
        "after_expiry_mib",
        "RSS after they ended, above 1 session",
        crate::mib(after.saturating_sub(one)),
        "MiB",
        Some(Budget::AtMost(4.0)),
    );
    s.data(
        "rss_anon_kb",
        json!({"one": one, "all": all, "asleep": asleep, "after_expiry": after, "sessions": n}),
    );
    Ok(s)
}

/// (RSS with one session, with all of them, once asleep, after they ended), in KiB.
async fn measure(magg: &Listening, opts: Options) -> Result<(u64, u64, u64, u64)> {
    drop(Client::connect(magg.addr).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let one = rss_anon_kb(magg.pid)?;
    for _ in 0..sessions(opts) {
        drop(Client::connect(magg.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = rss_anon_kb(magg.pid)?;
    // Idle sessions fall asleep after IDLE_SECS / 2, and end after IDLE_SECS; the memory goes
    // back a second after each.
    tokio::time::sleep(Duration::from_secs(IDLE_SECS / 2 + 3)).await;
    let asleep = rss_anon_kb(magg.pid)?;
    tokio::time::sleep(Duration::from_secs(IDLE_SECS / 2 + 2)).await;
    let after = rss_anon_kb(magg.pid)?;
    Ok((one, all, asleep, after))
}
