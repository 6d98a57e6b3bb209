//! Measurement 17: what counting for `/metrics` costs a tools/call.
//!
//! * **In process**: the update a tools/call makes (its outcome counter and latency
//!   histogram, for a tool counted before), a list request's and a plugin call's, timed over
//!   a million repetitions with magg's own `metrics` module. Exact, and free of the noise of
//!   processes and pipes.
//! * **End to end**: sequential `echo` calls by a bare stdio client through two `magg serve`
//!   processes side by side, one counting (the default) and one with `MAGG_METRICS=0`, in
//!   interleaved blocks so that both see the same machine; and the backend called directly.
//!   Added p50 of each, and the difference (budget: metrics on adds ≤ 2 µs).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::{
    Env, Options,
    raw::RawServer,
    report::{Budget, Section},
    stats::{Summary, round2},
};

/// Budget for what counting adds to a call's p50, in µs.
const BUDGET_US: f64 = 2.0;
/// Interleaved blocks of calls.
const BLOCKS: usize = 10;
/// Repetitions of each in-process update.
const UPDATES: u32 = 1_000_000;

/// Nanoseconds per run of `update`, over [`UPDATES`] runs.
fn per_update(mut update: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        update();
    }
    let started = Instant::now();
    for _ in 0..UPDATES {
        update();
    }
    started.elapsed().as_nanos() as f64 / f64::from(UPDATES)
}

/// Measurement 17.
pub async fn metrics_cost(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 17 the cost of metrics");
    let mut s = Section::new(
        "metrics_cost",
        format!(
            "17. Metrics: the counting a call makes, in process; and echo over stdio, {} calls through magg with metrics on and off and direct, in {BLOCKS} interleaved blocks",
            opts.calls
        ),
    );

    let m = magg::metrics::global();
    let elapsed = Duration::from_micros(42);
    let call = per_update(|| {
        m.tool_call("tb", "echo", magg::metrics::Outcome::ok, elapsed);
    });
    let list = per_update(|| m.list(magg::metrics::List::tools));
    let plugin = per_update(|| m.plugin_call("routing-rules", "routing-hook", elapsed));
    s.figure(
        "update_call_ns",
        "in process: a tools/call's update (counter + histogram)",
        round2(call),
        "ns",
        None,
    );
    s.figure(
        "update_list_ns",
        "in process: a list request's update",
        round2(list),
        "ns",
        None,
    );
    s.figure(
        "update_plugin_ns",
        "in process: a plugin call's update",
        round2(plugin),
        "ns",
        None,
    );

    let config = env.write_config("metrics-one-backend.json", &[("tb".to_owned(), Vec::new())])?;
    let args = vec![
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ];
    let list_wait = [("MAGG_LIST_WAIT", "10")];
    let mut on = RawServer::start(
        "magg (metrics on)",
        &env.magg,
        &args,
        &list_wait,
        &env.log("magg-metrics-on"),
    )
    .await?;
    let mut off = RawServer::start(
        "magg (metrics off)",
        &env.magg,
        &args,
        &[("MAGG_LIST_WAIT", "10"), ("MAGG_METRICS", "0")],
        &env.log("magg-metrics-off"),
    )
    .await?;
    let mut direct = RawServer::start(
        "magg-test-backend",
        &env.backend,
        &["--name".to_owned(), "tb".to_owned()],
        &[],
        &env.log("backend-metrics"),
    )
    .await?;
    let result = async {
        on.request("tools/list", None).await?;
        off.request("tools/list", None).await?;
        let echo = json!({"text": "hello"});
        let block = (opts.calls / BLOCKS).max(50);
        let warmup = opts.warmup / BLOCKS;
        let (mut t_on, mut t_off, mut t_direct) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..BLOCKS {
            t_direct.extend(direct.call_latencies("echo", &echo, warmup, block).await?);
            t_on.extend(on.call_latencies("tb_echo", &echo, warmup, block).await?);
            t_off.extend(off.call_latencies("tb_echo", &echo, warmup, block).await?);
        }
        anyhow::Ok((
            Summary::of(&t_on),
            Summary::of(&t_off),
            Summary::of(&t_direct),
        ))
    }
    .await;
    on.shutdown().await;
    off.shutdown().await;
    direct.shutdown().await;
    let (on, off, direct) = result?;
    s.figure(
        "direct_p50_us",
        "direct: echo p50",
        round2(direct.p50),
        "µs",
        None,
    );
    s.figure(
        "added_off_p50_us",
        "metrics off: added p50",
        round2(off.p50 - direct.p50),
        "µs",
        None,
    );
    s.figure(
        "added_on_p50_us",
        "metrics on: added p50",
        round2(on.p50 - direct.p50),
        "µs",
        None,
    );
    s.figure(
        "metrics_cost_p50_us",
        "what metrics add per call (on − off, p50)",
        round2(on.p50 - off.p50),
        "µs",
        Some(Budget::AtMost(BUDGET_US)),
    );
    s.line(format!(
        "p50/p99 µs: direct {:.1}/{:.1}, metrics off {:.1}/{:.1}, on {:.1}/{:.1}; the end-to-end difference is within the machine's noise when it is far below 1 µs (see the in-process figures)",
        direct.p50, direct.p99, off.p50, off.p99, on.p50, on.p99
    ));
    Ok(s)
}
