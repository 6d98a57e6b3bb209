//! Measurement 19: WebAssembly tool providers. tools/call of `echo` by the bare JSON-RPC
//! client, sequentially, in rounds of [`ROUND`] to each in turn: straight to a
//! `magg-test-backend` process, to that backend's `tb_echo` through magg (a stdio server), and
//! to `wp_echo` of the `test-provider` fixture mounted in the same magg as a WebAssembly server
//! (the same work: the text back). Figures: each route's p50, what it adds over the direct
//! call, and magg's CPU time per call (for the component, the guest's work included; budget
//! for the whole WebAssembly call through magg: p50 ≤ 30 µs). Then magg's RSS with 10 more
//! copies of the component mounted, per component, and the time from the component's file
//! being replaced (atomic rename) to the new version answering, from the compile cache.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::{
    Env, MAGG_ENV, Options,
    raw::{RawServer, is_error_result},
    report::{Budget, Section},
    server::{cpu_ns, rss_kb},
    stats::Summary,
};

/// Calls to each route per round.
const ROUND: usize = 100;
/// Budget for a warm call of a Rust component through magg, round trip, p50 in µs.
const CALL_BUDGET_US: f64 = 30.0;
/// Components mounted for the memory figure.
const MOUNTED: usize = 10;

/// Measurement 19.
pub async fn providers(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 19 tool providers: calls, memory per component, hot swap");
    let provider = built(env, "fixtures/test-provider.wasm")?;
    let fetch = built(env, "fetch.wasm")?;
    let dir = env.work.join("providers");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let wasm = dir.join("wp.wasm");
    install(&provider, &wasm)?;
    let config = write_config(env, &dir, "providers.json", &wasm, 0)?;

    let mut direct = RawServer::start(
        "magg-test-backend (direct)",
        &env.backend,
        &["--name".to_owned(), "tb".to_owned()],
        &[],
        &env.log("providers-direct"),
    )
    .await?;
    let args = |config: &Path| {
        vec![
            "serve".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ]
    };
    let magg = RawServer::start(
        "magg (stdio + wasm)",
        &env.magg,
        &args(&config),
        MAGG_ENV,
        &env.log("providers-magg"),
    )
    .await;
    let mut magg = match magg {
        Ok(magg) => magg,
        Err(e) => {
            direct.shutdown().await;
            return Err(e);
        }
    };
    let calls = measure_calls(&mut direct, &mut magg, opts).await;
    let swaps = match &calls {
        Ok(_) => measure_swaps(&mut magg, &wasm, &provider, &fetch, opts).await,
        Err(_) => Ok(Vec::new()),
    };
    direct.shutdown().await;
    magg.shutdown().await;
    let (latencies, cpu) = calls?;
    let swaps = swaps?;
    let memory = measure_memory(env, &dir, &wasm, opts).await?;

    let summaries: Vec<Summary> = latencies.iter().map(|s| Summary::of(s)).collect();
    let labels = [
        "direct (stdio backend)",
        "magg → stdio backend",
        "magg → wasm",
    ];
    let mut s = Section::new(
        "providers",
        format!(
            "19. Tool providers: tools/call of echo by the bare client ({} calls each, in rounds \
             of {ROUND}), a stdio backend direct and through magg, and the same tool as a \
             WebAssembly component mounted in magg",
            latencies[0].len()
        ),
    );
    s.line(format!("{}   CPU µs/call", crate::TABLE_HEAD));
    for (i, label) in labels.iter().enumerate() {
        s.line(format!(
            "{}  {:>9.1}",
            crate::table_row(label, &summaries[i]),
            cpu[i]
        ));
    }
    s.figure(
        "wasm_call_p50_us",
        "wasm call through magg, p50 (round trip)",
        summaries[2].p50,
        "µs",
        Some(Budget::AtMost(CALL_BUDGET_US)),
    );
    s.figure(
        "wasm_added_p50_us",
        "wasm call through magg over the direct stdio call, p50",
        summaries[2].p50 - summaries[0].p50,
        "µs",
        None,
    );
    s.figure(
        "stdio_added_p50_us",
        "stdio backend through magg over direct, p50",
        summaries[1].p50 - summaries[0].p50,
        "µs",
        None,
    );
    s.figure(
        "wasm_cpu_us",
        "magg CPU per wasm call (guest included)",
        cpu[2],
        "µs",
        None,
    );
    s.figure(
        "stdio_cpu_us",
        "magg CPU per stdio call (backend not included)",
        cpu[1],
        "µs",
        None,
    );
    s.figure(
        "rss_per_component_kib",
        &format!("magg RSS per mounted component ({MOUNTED} mounted)"),
        memory,
        "KiB",
        None,
    );
    if !swaps.is_empty() {
        let swap = Summary::of(&swaps);
        s.figure(
            "swap_p50_ms",
            &format!(
                "file replaced → new version answering, p50 of {} swaps (compile cache warm)",
                swaps.len()
            ),
            swap.p50 / 1000.0,
            "ms",
            Some(Budget::AtMost(150.0)),
        );
        s.data("swap", swap.to_json());
    }
    let mut data = serde_json::Map::new();
    for (label, summary) in labels.iter().zip(&summaries) {
        data.insert((*label).into(), summary.to_json());
    }
    s.data("latency", Value::Object(data));
    s.data("cpu_us_per_call", json!(cpu));
    Ok(s)
}

/// A built component: `<target>/plugins/<rel>`.
fn built(env: &Env, rel: &str) -> Result<PathBuf> {
    let path = env.target.join("plugins").join(rel);
    ensure!(
        path.is_file(),
        "{} not found; build the plugins first: bash plugins/build.sh",
        path.display()
    );
    Ok(path)
}

/// Copies `from` to `to` the way a deploy does: beside it, then renamed into place.
fn install(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).with_context(|| format!("cannot copy {}", from.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("cannot rename to {}", to.display()))
}

/// A config with the test backend `tb`, the component `wp`, and `extra` more copies of it.
fn write_config(env: &Env, dir: &Path, file: &str, wasm: &Path, extra: usize) -> Result<PathBuf> {
    let text = env.config_text(&[("tb".to_owned(), Vec::new())])?;
    let mut config: Value = serde_json::from_str(&text).context("bench config")?;
    let servers = config["servers"]
        .as_object_mut()
        .context("bench config has no servers")?;
    servers.insert(
        "wp".into(),
        json!({"source": format!("file://{}", wasm.display()), "prefix": "wp"}),
    );
    for i in 0..extra {
        servers.insert(
            format!("wp{i}"),
            json!({"wasm": wasm.display().to_string(), "prefix": format!("wpx{i}")}),
        );
    }
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Latencies of the three routes, in rounds, and magg's CPU per call for each (µs).
async fn measure_calls(
    direct: &mut RawServer,
    magg: &mut RawServer,
    opts: Options,
) -> Result<(Vec<Vec<Duration>>, Vec<f64>)> {
    let arguments = json!({"text": "hello"});
    direct
        .call_latencies("echo", &arguments, opts.warmup, 0)
        .await?;
    magg.call_latencies("tb_echo", &arguments, opts.warmup, 0)
        .await?;
    magg.call_latencies("wp_echo", &arguments, opts.warmup, 0)
        .await?;
    let rounds = opts.calls.div_ceil(ROUND);
    let mut latencies: Vec<Vec<Duration>> =
        (0..3).map(|_| Vec::with_capacity(rounds * ROUND)).collect();
    let mut cpu = [0u64; 3];
    for round in 0..rounds {
        for k in 0..3 {
            let i = (round + k) % 3;
            let (server, tool) = match i {
                0 => (&mut *direct, "echo"),
                1 => (&mut *magg, "tb_echo"),
                _ => (&mut *magg, "wp_echo"),
            };
            let before = cpu_ns(server.pid())?;
            let samples = server.call_latencies(tool, &arguments, 0, ROUND).await?;
            cpu[i] += cpu_ns(server.pid())?.saturating_sub(before);
            latencies[i].extend(samples);
        }
    }
    let calls = latencies[0].len().max(1) as f64;
    Ok((
        latencies,
        cpu.iter().map(|ns| *ns as f64 / calls / 1000.0).collect(),
    ))
}

/// Replaces the component's file with another component and back, timing each from the
/// rename to the new version's tool answering.
async fn measure_swaps(
    magg: &mut RawServer,
    wasm: &Path,
    provider: &Path,
    fetch: &Path,
    opts: Options,
) -> Result<Vec<Duration>> {
    // Once each, untimed, so that both are in the compile cache.
    swap_to(magg, wasm, fetch, "wp_fetch").await?;
    swap_to(magg, wasm, provider, "wp_echo").await?;
    let mut times = Vec::new();
    for _ in 0..opts.plugin_swaps.max(2) / 2 {
        times.push(swap_to(magg, wasm, fetch, "wp_fetch").await?);
        times.push(swap_to(magg, wasm, provider, "wp_echo").await?);
    }
    Ok(times)
}

/// Installs `component` at `wasm` and waits until `tool` answers as that component's.
async fn swap_to(
    magg: &mut RawServer,
    wasm: &Path,
    component: &Path,
    tool: &str,
) -> Result<Duration> {
    let started = Instant::now();
    install(component, wasm)?;
    let arguments = json!({"text": "x"});
    loop {
        let line = magg.call(tool, &arguments).await?;
        // The fetch tool answers a call without `url` with its own error; an unknown tool's
        // error comes from magg.
        let answered = !is_error_result(line) || line.contains("`url` is required");
        if answered {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{tool} did not answer within 30 s of the swap: {line}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// magg's RSS with [`MOUNTED`] more copies of the component, less without them, per copy
/// (KiB), each called once.
async fn measure_memory(env: &Env, dir: &Path, wasm: &Path, opts: Options) -> Result<f64> {
    let one = write_config(env, dir, "providers-1.json", wasm, 0)?;
    let many = write_config(env, dir, "providers-n.json", wasm, MOUNTED)?;
    let mut rss = Vec::new();
    for (label, config, extra) in [("one", &one, 0), ("many", &many, MOUNTED)] {
        let args = [
            "serve".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        let mut magg = RawServer::start(
            &format!("magg ({label} component)"),
            &env.magg,
            &args,
            MAGG_ENV,
            &env.log(&format!("providers-memory-{label}")),
        )
        .await?;
        let arguments = json!({"text": "hello"});
        let result = async {
            magg.call_latencies("wp_echo", &arguments, opts.rss_calls, 0)
                .await?;
            for i in 0..extra {
                magg.call_latencies(&format!("wpx{i}_echo"), &arguments, 1, 0)
                    .await?;
            }
            rss_kb(magg.pid())
        }
        .await;
        magg.shutdown().await;
        rss.push(result?);
    }
    Ok((rss[1] as f64 - rss[0] as f64) / MOUNTED as f64)
}
