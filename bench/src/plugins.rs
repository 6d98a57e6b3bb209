//! Measurement 7: what WebAssembly plugins cost (`magg serve --plugins DIR`).
//!
//! * **Added latency per tools/call**: `echo` through magg over stdio with 0
//!   routing hooks, 1 Rust hook (`routing-rules` with no settings: it proceeds
//!   without parsing the arguments), 4 Rust hooks (the same file under four
//!   names) and 1 Python hook (`redact`, which scans the result for secrets),
//!   against the backend called directly in the same run. All five servers run
//!   side by side and are timed in interleaved blocks, with the bare JSON-RPC
//!   client of `raw.rs`, so that load drifting during the run hits each alike.
//!   Hooked or not, a stdio tools/call takes magg's raw fast lane; with hooks
//!   magg also reads the arguments and the result for them, so the step 0 → 1
//!   hook is that bookkeeping plus one hook, and (4 hooks − 1 hook) / 3 is one
//!   more hook.
//! * **Hot replacement**: a loaded plugin file replaced by atomic rename (a
//!   copy under a temp name in the directory, renamed over it) while magg
//!   serves, timed from the rename until the new behaviour shows: a routing
//!   hook swapped between `deny-all-hook` and `echo-answer-hook` (`tb_echo`
//!   called back to back until its answer changes), and a filter swapped
//!   between `marker-filter` and `marker-filter-v2` (tools/list requested back
//!   to back until the descriptions carry the new marker, and until
//!   `notifications/tools/list_changed` is read). magg waits for its plugins
//!   directory to be quiet for 40 ms before rescanning; the first swap to each
//!   version compiles it, later ones load it from the disk cache.
//! * **Cold vs cached start**: `magg serve` with `redact` (Python, 18 MB) and
//!   an empty compile cache (`MAGG_CACHE_DIR`), timed from spawn until a
//!   tools/call whose secret the hook blanked out returns; then the same with
//!   the cache that run filled; baseline: the same magg without plugins, until
//!   its first echo returns.
//! * **Memory**: magg's own VmRSS with 10 backends and 4 plugins, after calls
//!   spread over the backends, against 10 backends and no plugins.
//!
//! Compiled plugins are cached in `<target>/bench-work/plugin-cache`, filled
//! first with `magg plugin check`, so that no measurement but the cold start
//! and the first swaps includes compiling; the cold start uses
//! `plugin-cache-cold`, the swaps `plugin-cache-swap`, both emptied first. The
//! plugins come from `<target>/plugins` (`bash plugins/build.sh`).
//!
//! Measurement 12 (the same hooks, this magg against a baseline) is in `plugins/compare.rs`.

pub mod compare;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::{
    Env, Options,
    mcp::ECHO_TEXT,
    mib,
    raw::{RawServer, is_error_result},
    report::{Budget, Section},
    server,
    stats::{Summary, millis, round2},
    strings,
};

/// magg's grace period for its first lists: long enough for the plugins to load
/// from the cache (the first tools/list also waits for them).
const LIST_WAIT: &str = "10";
/// The cold start's grace period: its first tools/call waits for the compile.
const COLD_LIST_WAIT: &str = "300";
/// How long plugins may take to load, or a change to show.
const LOAD_LIMIT: Duration = Duration::from_secs(300);
/// How long a replaced plugin may take to serve.
const SWAP_LIMIT: Duration = Duration::from_secs(10);
/// magg's quiet time after the last plugins directory event (`plugins::registry::DEBOUNCE`).
const DEBOUNCE: Duration = Duration::from_millis(40);
/// Pause between writing a swap's temp file and renaming it, so that the
/// rescan the write set off is over.
const SETTLE: Duration = Duration::from_millis(150);
/// Number of interleaved blocks the latency calls are split into.
const BLOCKS: usize = 10;
/// Budget of one Rust routing hook's added latency (p50), from the design.
const HOOK_BUDGET_US: f64 = 10.0;
/// Budget of a replaced plugin serving.
const SWAP_BUDGET_MS: f64 = 150.0;
/// Budget of magg's RSS with 10 backends.
const RSS_BUDGET_MIB: f64 = 15.0;
/// Number of backends for the memory measurement.
const RSS_BACKENDS: usize = 10;
/// Text that `redact` blanks out (it has the shape of an API key).
const SECRET: &str = "key sk-bench0123456789abcdefghij";
/// What `redact` puts in its place.
const REDACTED: &str = "[redacted]";
/// The answers of the two hooks swapped.
const DENIED: &str = "denied by deny-all-hook";
const ANSWERED: &str = "answered by plugin";

/// Plugin files to put in a plugins directory: `(source, file name)`.
type Files<'a> = [(&'a Path, &'a str)];

fn echo(text: &str) -> Value {
    json!({ "text": text })
}

/// A built plugin: `<target>/plugins/<rel>`.
fn built(env: &Env, rel: &str) -> Result<PathBuf> {
    let path = env.target.join("plugins").join(rel);
    ensure!(
        path.is_file(),
        "{} not found; build the plugins first: bash plugins/build.sh",
        path.display()
    );
    Ok(path)
}

/// A fresh directory `<work>/name` holding a copy of each `(source, file name)`.
fn plugin_dir(env: &Env, name: &str, files: &Files) -> Result<PathBuf> {
    let dir = env.work.join(name);
    fresh_dir(&dir)?;
    for (source, file) in files {
        let dest = dir.join(file);
        std::fs::copy(source, &dest)
            .with_context(|| format!("cannot copy {} to {}", source.display(), dest.display()))?;
    }
    Ok(dir)
}

/// Empties `dir`, creating it if needed.
fn fresh_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// The plugin names (file stems) of `files`.
fn stems<'a>(files: &Files<'a>) -> Vec<&'a str> {
    files
        .iter()
        .map(|(_, f)| f.strip_suffix(".wasm").unwrap_or(f))
        .collect()
}

/// Fills the compile cache `cache` with `plugin check FILES` of the magg binary
/// `magg`, so that the maggs measured load their plugins instead of compiling
/// them. Returns how long it took.
async fn warm_cache(env: &Env, magg: &Path, cache: &Path, files: &[PathBuf]) -> Result<Duration> {
    let log = env.log("magg-plugin-check");
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let start = Instant::now();
    let status = tokio::process::Command::new(magg)
        .args(["plugin", "check"])
        .args(files)
        .env("MAGG_CACHE_DIR", cache)
        .stdin(std::process::Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .context("cannot duplicate a log file handle")?,
        )
        .stderr(log_file)
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run magg plugin check")?;
    ensure!(
        status.success(),
        "magg plugin check failed ({status}); see {}",
        log.display()
    );
    Ok(start.elapsed())
}

/// How to start one magg.
struct Launch<'a> {
    label: &'a str,
    log: &'a str,
    config: &'a Path,
    plugins: Option<&'a Path>,
    cache: &'a Path,
    list_wait: &'a str,
}

/// Starts `magg serve --config CONFIG [--plugins DIR]` with the bare client.
async fn start_magg(env: &Env, launch: &Launch<'_>) -> Result<RawServer> {
    start_magg_at(env, &env.magg, launch).await
}

/// As [`start_magg`], with the magg binary `magg`.
async fn start_magg_at(env: &Env, magg: &Path, launch: &Launch<'_>) -> Result<RawServer> {
    let mut args = strings(&["serve", "--config"]);
    args.push(launch.config.display().to_string());
    if let Some(dir) = launch.plugins {
        args.push("--plugins".to_owned());
        args.push(dir.display().to_string());
    }
    let cache = launch.cache.display().to_string();
    let vars = [
        ("MAGG_LIST_WAIT", launch.list_wait),
        ("MAGG_CACHE_DIR", cache.as_str()),
    ];
    RawServer::start(launch.label, magg, &args, &vars, &env.log(launch.log)).await
}

async fn shutdown_all(servers: Vec<RawServer>) {
    for server in servers {
        server.shutdown().await;
    }
}

/// Lists tools until every one of `tools` is there.
async fn wait_tools(server: &mut RawServer, tools: &[String]) -> Result<()> {
    let deadline = Instant::now() + LOAD_LIMIT;
    loop {
        let names = server.tool_names().await?;
        if tools.iter().all(|t| names.contains(t)) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "tools {tools:?} not listed within {LOAD_LIMIT:?} ({} tools listed)",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `plugins.loaded` list of `magg_status`.
async fn plugin_status(server: &mut RawServer) -> Result<Vec<Value>> {
    let line = server.call("magg_status", &json!({})).await?;
    let reply: Value = serde_json::from_str(line).context("magg_status: bad JSON")?;
    reply
        .pointer("/result/structuredContent/output/plugins/loaded")
        .and_then(Value::as_array)
        .cloned()
        .with_context(|| format!("magg_status: no plugins.loaded in {reply}"))
}

/// Waits until `magg_status` shows every one of `names` loaded.
async fn wait_loaded(server: &mut RawServer, names: &[&str]) -> Result<()> {
    let deadline = Instant::now() + LOAD_LIMIT;
    loop {
        let status = plugin_status(server).await?;
        let loaded = |name: &str| {
            status.iter().any(|p| {
                p.get("name").and_then(Value::as_str) == Some(name)
                    && p.get("state").and_then(Value::as_str) == Some("loaded")
            })
        };
        if names.iter().all(|n| loaded(n)) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "plugins {names:?} not all loaded within {LOAD_LIMIT:?}: {}",
            Value::Array(status)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `tool` (an `echo`) once and checks that it echoes [`ECHO_TEXT`] back.
async fn check_echo(server: &mut RawServer, tool: &str) -> Result<()> {
    let line = server.call(tool, &echo(ECHO_TEXT)).await?;
    ensure!(
        !is_error_result(line) && line.contains(ECHO_TEXT),
        "tools/call {tool} did not echo {ECHO_TEXT:?}: {}",
        line.trim()
    );
    Ok(())
}

/// One configuration of the latency measurement.
struct Variant {
    key: &'static str,
    label: &'static str,
    /// The plugin files, as `(source, file name)`.
    files: Vec<(PathBuf, String)>,
}

impl Variant {
    fn files(&self) -> Vec<(&Path, &str)> {
        self.files
            .iter()
            .map(|(p, f)| (p.as_path(), f.as_str()))
            .collect()
    }
}

/// One server timed in the latency measurement.
struct Timed {
    label: String,
    server: RawServer,
    tool: &'static str,
    samples: Vec<Duration>,
    cpu_ns: u64,
}

/// Latency results: one row per server, the direct backend first.
struct Row {
    key: &'static str,
    label: String,
    summary: Summary,
    calls_per_s: f64,
    cpu_us: f64,
}

/// Starts the test backend `tb`, called directly (`echo`), as the first server timed.
async fn start_direct(env: &Env, label: &str, log: &str) -> Result<Timed> {
    let args = strings(&["--name", "tb"]);
    let server = RawServer::start(label, &env.backend, &args, &[], &env.log(log)).await?;
    Ok(Timed {
        label: "direct".to_owned(),
        server,
        tool: "echo",
        samples: Vec::new(),
        cpu_ns: 0,
    })
}

/// Part 1: starts the direct backend and the four maggs, then times them.
async fn latency(env: &Env, opts: Options, cache: &Path) -> Result<Vec<Row>> {
    let rules = built(env, "routing-rules.wasm")?;
    let redact = built(env, "redact.wasm")?;
    let hook = |name: &str| (rules.clone(), name.to_owned());
    let variants = [
        Variant {
            key: "hooks0",
            label: "magg, 0 hooks",
            files: Vec::new(),
        },
        Variant {
            key: "hooks1",
            label: "magg, 1 Rust hook",
            files: vec![hook("routing-rules.wasm")],
        },
        Variant {
            key: "hooks4",
            label: "magg, 4 Rust hooks",
            files: ["hook-a", "hook-b", "hook-c", "hook-d"]
                .iter()
                .map(|n| hook(&format!("{n}.wasm")))
                .collect(),
        },
        Variant {
            key: "python",
            label: "magg, 1 Python hook",
            files: vec![(redact, "redact.wasm".to_owned())],
        },
    ];
    let config = env.write_config("plugins-one-backend.json", &[("tb".to_owned(), Vec::new())])?;
    let mut timed = Vec::new();
    let started = async {
        timed.push(
            start_direct(env, "magg-test-backend (direct, plugins)", "direct-plugins").await?,
        );
        for v in &variants {
            let dir = plugin_dir(env, &format!("plugins-{}", v.key), &v.files())?;
            let label = format!("{} (latency)", v.label);
            let log = format!("magg-plugins-{}", v.key);
            let server = start_magg(
                env,
                &Launch {
                    label: &label,
                    log: &log,
                    config: &config,
                    plugins: Some(&dir),
                    cache,
                    list_wait: LIST_WAIT,
                },
            )
            .await?;
            timed.push(Timed {
                label: v.label.to_owned(),
                server,
                tool: "tb_echo",
                samples: Vec::new(),
                cpu_ns: 0,
            });
        }
        anyhow::Ok(())
    }
    .await;
    let result = match started {
        Ok(()) => time_calls(opts, &variants, &mut timed).await,
        Err(e) => Err(e),
    };
    let rows = result.map(|()| {
        let keys = std::iter::once("direct").chain(variants.iter().map(|v| v.key));
        keys.zip(&timed)
            .map(|(key, t)| {
                let total: Duration = t.samples.iter().sum();
                Row {
                    key,
                    label: t.label.clone(),
                    summary: Summary::of(&t.samples),
                    calls_per_s: t.samples.len() as f64 / total.as_secs_f64().max(1e-9),
                    cpu_us: t.cpu_ns as f64 / 1e3 / t.samples.len().max(1) as f64,
                }
            })
            .collect()
    });
    shutdown_all(timed.into_iter().map(|t| t.server).collect()).await;
    rows
}

/// Checks every server of `timed` (direct first, then one per variant), warms
/// them up, then times `opts.calls` calls of each in [`BLOCKS`] interleaved blocks.
async fn time_calls(opts: Options, variants: &[Variant], timed: &mut [Timed]) -> Result<()> {
    let tools = ["tb_echo".to_owned()];
    for (v, t) in variants.iter().zip(timed.iter_mut().skip(1)) {
        wait_tools(&mut t.server, &tools)
            .await
            .with_context(|| t.label.clone())?;
        wait_loaded(&mut t.server, &stems(&v.files()))
            .await
            .with_context(|| t.label.clone())?;
    }
    let args = echo(ECHO_TEXT);
    for t in timed.iter_mut() {
        check_echo(&mut t.server, t.tool).await?;
        t.server
            .call_latencies(t.tool, &args, opts.warmup, 0)
            .await?;
    }
    let per_block = opts.calls.div_ceil(BLOCKS);
    for _ in 0..BLOCKS {
        for t in timed.iter_mut() {
            let pid = t.server.pid();
            let before = server::cpu_ns(pid)?;
            let samples = t.server.call_latencies(t.tool, &args, 0, per_block).await?;
            t.cpu_ns += server::cpu_ns(pid)?.saturating_sub(before);
            t.samples.extend(samples);
        }
    }
    Ok(())
}

/// Part 2, hook: swaps `deny-all-hook` and `echo-answer-hook` under one file
/// name `opts.plugin_swaps` times; returns the time from each rename until
/// `tb_echo` gave the new answer.
async fn swap_hook(env: &Env, opts: Options, cache: &Path) -> Result<Vec<Duration>> {
    let deny = built(env, "fixtures/deny-all-hook.wasm")?;
    let answer = built(env, "fixtures/echo-answer-hook.wasm")?;
    let dir = plugin_dir(env, "plugins-swap-hook", &[(&deny, "swap-hook.wasm")])?;
    let config = env.write_config("plugins-swap.json", &[("tb".to_owned(), Vec::new())])?;
    let mut magg = start_magg(
        env,
        &Launch {
            label: "magg (hook replaced)",
            log: "magg-plugins-swap-hook",
            config: &config,
            plugins: Some(&dir),
            cache,
            list_wait: LIST_WAIT,
        },
    )
    .await?;
    let result = async {
        wait_tools(&mut magg, &["tb_echo".to_owned()]).await?;
        wait_loaded(&mut magg, &["swap-hook"]).await?;
        let line = magg.call("tb_echo", &echo(ECHO_TEXT)).await?;
        ensure!(
            line.contains(DENIED),
            "deny-all-hook did not deny tb_echo: {}",
            line.trim()
        );
        let args = echo(ECHO_TEXT);
        let mut times = Vec::new();
        for round in 0..opts.plugin_swaps {
            let (source, expect) = if round % 2 == 0 {
                (&answer, ANSWERED)
            } else {
                (&deny, DENIED)
            };
            let start = Staged::new(&dir, source, "swap-hook.wasm")
                .await?
                .swap_in()?;
            loop {
                if magg.call("tb_echo", &args).await?.contains(expect) {
                    times.push(start.elapsed());
                    break;
                }
                ensure!(
                    start.elapsed() < SWAP_LIMIT,
                    "round {round}: tb_echo did not answer {expect:?} within {SWAP_LIMIT:?}"
                );
            }
        }
        Ok(times)
    }
    .await;
    magg.shutdown().await;
    result
}

/// A plugin file copied into the plugins directory under a temp name (not
/// `*.wasm`, so magg ignores it), ready to be renamed over `target`.
struct Staged {
    temp: PathBuf,
    target: PathBuf,
}

impl Staged {
    /// Copies `source` to `dir/file.tmp` and waits [`SETTLE`].
    async fn new(dir: &Path, source: &Path, file: &str) -> Result<Staged> {
        let temp = dir.join(format!("{file}.tmp"));
        std::fs::copy(source, &temp)
            .with_context(|| format!("cannot copy {} to {}", source.display(), temp.display()))?;
        tokio::time::sleep(SETTLE).await;
        Ok(Staged {
            temp,
            target: dir.join(file),
        })
    }

    /// Renames the copy over the target; returns the moment just before.
    fn swap_in(self) -> Result<Instant> {
        let start = Instant::now();
        std::fs::rename(&self.temp, &self.target).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.temp.display(),
                self.target.display()
            )
        })?;
        Ok(start)
    }
}

/// Timings of the filter swaps.
#[derive(Default)]
struct FilterSwaps {
    /// Rename → `notifications/tools/list_changed` read.
    notified: Vec<Duration>,
    /// Rename → tools/list showing the new marker.
    described: Vec<Duration>,
}

/// Part 2, filter: swaps `marker-filter` and `marker-filter-v2` under one file
/// name `opts.plugin_swaps` times.
async fn swap_filter(env: &Env, opts: Options, cache: &Path) -> Result<FilterSwaps> {
    let v1 = built(env, "fixtures/marker-filter.wasm")?;
    let v2 = built(env, "fixtures/marker-filter-v2.wasm")?;
    let dir = plugin_dir(env, "plugins-swap-filter", &[(&v1, "swap-filter.wasm")])?;
    let config = env.write_config("plugins-swap.json", &[("tb".to_owned(), Vec::new())])?;
    let mut magg = start_magg(
        env,
        &Launch {
            label: "magg (filter replaced)",
            log: "magg-plugins-swap-filter",
            config: &config,
            plugins: Some(&dir),
            cache,
            list_wait: LIST_WAIT,
        },
    )
    .await?;
    let result = async {
        wait_tools(&mut magg, &["tb_echo".to_owned()]).await?;
        wait_loaded(&mut magg, &["swap-filter"]).await?;
        let line = magg.request("tools/list", None).await?;
        ensure!(
            line.contains("[v1]"),
            "marker-filter did not mark the descriptions: {}",
            line.trim()
        );
        let mut out = FilterSwaps::default();
        for round in 0..opts.plugin_swaps {
            let (source, expect) = if round % 2 == 0 {
                (&v2, "[v2]")
            } else {
                (&v1, "[v1]")
            };
            let staged = Staged::new(&dir, source, "swap-filter.wasm").await?;
            // Read (and forget) any notification sent before the rename.
            magg.request("tools/list", None).await?;
            magg.take_list_changed();
            let start = staged.swap_in()?;
            let (mut notified, mut described) = (None, None);
            while notified.is_none() || described.is_none() {
                let changed = magg.request("tools/list", None).await?.contains(expect);
                if changed && described.is_none() {
                    described = Some(start.elapsed());
                }
                if notified.is_none() {
                    notified = magg
                        .take_list_changed()
                        .map(|at| at.saturating_duration_since(start));
                }
                ensure!(
                    start.elapsed() < SWAP_LIMIT,
                    "round {round}: within {SWAP_LIMIT:?}, descriptions marked {expect}: {}, tools/list_changed read: {}",
                    described.is_some(),
                    notified.is_some()
                );
            }
            out.notified.extend(notified);
            out.described.extend(described);
        }
        Ok(out)
    }
    .await;
    magg.shutdown().await;
    result
}

/// One start of magg.
struct Start {
    /// Spawn → the first `tb_echo` answer holding the expected text.
    took: Duration,
    /// Whether its (first) plugin's compilation came from the cache.
    from_cache: Option<bool>,
    /// magg's VmRSS after that answer, in kB.
    rss_kb: u64,
}

/// Starts magg and calls `tb_echo` until an answer holds `expect`.
async fn first_call(env: &Env, launch: &Launch<'_>, expect: &str) -> Result<Start> {
    let start = Instant::now();
    let mut magg = start_magg(env, launch).await?;
    let result = async {
        let args = echo(SECRET);
        let deadline = start + LOAD_LIMIT;
        let took = loop {
            let line = magg.call("tb_echo", &args).await?;
            if !is_error_result(line) && line.contains(expect) {
                break start.elapsed();
            }
            ensure!(
                Instant::now() < deadline,
                "no tb_echo answer holding {expect:?} within {LOAD_LIMIT:?}: {}",
                line.trim()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let from_cache = match launch.plugins {
            // The plugin of the directory, not a bundled one (those load on first use).
            Some(_) => plugin_status(&mut magg)
                .await?
                .iter()
                .find(|p| p.get("origin").and_then(Value::as_str) != Some("bundled"))
                .and_then(|p| p.get("from_cache"))
                .and_then(Value::as_bool),
            None => None,
        };
        let rss_kb = server::rss_kb(magg.pid())?;
        Ok(Start {
            took,
            from_cache,
            rss_kb,
        })
    }
    .await;
    magg.shutdown().await;
    result
}

/// Results of part 3.
struct Starts {
    cold: Start,
    cached: Vec<Start>,
    baseline: Vec<Start>,
}

/// Part 3: `redact` with an empty compile cache, then with the one it filled,
/// and magg without plugins.
async fn starts(env: &Env, opts: Options) -> Result<Starts> {
    let redact = built(env, "redact.wasm")?;
    let dir = plugin_dir(env, "plugins-start", &[(&redact, "redact.wasm")])?;
    let cache = env.work.join("plugin-cache-cold");
    fresh_dir(&cache)?;
    let config = env.write_config("plugins-start.json", &[("tb".to_owned(), Vec::new())])?;
    let cold = Launch {
        label: "magg (redact, cold cache)",
        log: "magg-plugins-cold",
        config: &config,
        plugins: Some(&dir),
        cache: &cache,
        list_wait: COLD_LIST_WAIT,
    };
    let warm = Launch {
        label: "magg (redact, cached)",
        log: "magg-plugins-cached",
        ..cold
    };
    let plain = Launch {
        label: "magg (no plugins)",
        log: "magg-plugins-none",
        plugins: None,
        ..cold
    };
    let cold = first_call(env, &cold, REDACTED).await?;
    ensure!(
        cold.from_cache == Some(false),
        "the cold start's redact plugin did not compile (from_cache: {:?})",
        cold.from_cache
    );
    let mut cached = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..opts.plugin_starts {
        let start = first_call(env, &warm, REDACTED).await?;
        ensure!(
            start.from_cache == Some(true),
            "a cached start's redact plugin did not come from the cache (from_cache: {:?})",
            start.from_cache
        );
        cached.push(start);
        baseline.push(first_call(env, &plain, SECRET).await?);
    }
    Ok(Starts {
        cold,
        cached,
        baseline,
    })
}

/// One magg of part 4.
struct Rss {
    key: &'static str,
    label: &'static str,
    kb: u64,
    anon_kb: u64,
    children: usize,
}

/// Part 4: RSS of magg with 10 backends: no plugins, 4 Rust plugins, and 4
/// plugins with the JavaScript filter or the Python hook as the fourth.
async fn memory(env: &Env, opts: Options, cache: &Path) -> Result<Vec<Rss>> {
    let filter = built(env, "tool-filter.wasm")?;
    let rules = built(env, "routing-rules.wasm")?;
    let marker = built(env, "fixtures/marker-filter.wasm")?;
    let js = built(env, "describe-servers.wasm")?;
    let py = built(env, "redact.wasm")?;
    let configure = built(env, "smart-configure.wasm")?;
    let rust: [(&Path, &str); 3] = [
        (&filter, "tool-filter.wasm"),
        (&rules, "routing-rules.wasm"),
        (&marker, "marker-filter.wasm"),
    ];
    let rust_files = [rust.as_slice(), &[(&*configure, "smart-configure.wasm")]].concat();
    let js_files = [rust.as_slice(), &[(&*js, "describe-servers.wasm")]].concat();
    let py_files = [rust.as_slice(), &[(&*py, "redact.wasm")]].concat();
    let servers: Vec<(String, Vec<String>)> = (0..RSS_BACKENDS)
        .map(|i| (format!("r{i}"), Vec::new()))
        .collect();
    let config = env.write_config("plugins-ten-backends.json", &servers)?;
    let tools: Vec<String> = (0..RSS_BACKENDS).map(|i| format!("r{i}_echo")).collect();
    let runs: [(&'static str, &'static str, Option<&Files>); 4] = [
        ("none", "no plugins", None),
        (
            "rust",
            "tool-filter, routing-rules, marker-filter, smart-configure (Rust)",
            Some(rust_files.as_slice()),
        ),
        (
            "js",
            "tool-filter, routing-rules, marker-filter, describe-servers (JS)",
            Some(js_files.as_slice()),
        ),
        (
            "python",
            "tool-filter, routing-rules, marker-filter, redact (Python)",
            Some(py_files.as_slice()),
        ),
    ];
    let mut out = Vec::new();
    for (key, label, files) in runs {
        let dir = match files {
            Some(files) => Some(plugin_dir(env, &format!("plugins-rss-{key}"), files)?),
            None => None,
        };
        let log = format!("magg-plugins-rss-{key}");
        let magg_label = format!("magg (10 backends, {label})");
        let mut magg = start_magg(
            env,
            &Launch {
                label: &magg_label,
                log: &log,
                config: &config,
                plugins: dir.as_deref(),
                cache,
                list_wait: LIST_WAIT,
            },
        )
        .await?;
        let result = async {
            wait_tools(&mut magg, &tools).await?;
            if let Some(files) = files {
                wait_loaded(&mut magg, &stems(files)).await?;
            }
            let args = echo(ECHO_TEXT);
            for i in 0..opts.rss_calls {
                let tool = &tools[i % tools.len()];
                let failed = is_error_result(magg.call(tool, &args).await?);
                ensure!(!failed, "tools/call {tool} returned an error result");
            }
            magg.list_all().await?;
            // Let anything freed after the calls settle before reading.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let kb = server::rss_kb(magg.pid())?;
            let anon_kb = server::rss_anon_kb(magg.pid())?;
            Ok(Rss {
                key,
                label,
                kb,
                anon_kb,
                children: server::children_of(magg.pid()).len(),
            })
        }
        .await;
        magg.shutdown().await;
        out.push(result.with_context(|| magg_label.clone())?);
    }
    Ok(out)
}

/// A summary and its samples in milliseconds, for the JSON report.
fn data(samples: &[Duration]) -> Value {
    let ms: Vec<f64> = samples.iter().map(|&d| round2(millis(d))).collect();
    json!({"summary": Summary::of(samples).to_json(), "samples_ms": ms})
}

/// A table row: p50 and max in ms, and the number of rounds.
fn ms_row(name: &str, x: &Summary) -> String {
    format!(
        "{name:<46} {:>9.2}  {:>9.2}  {:>6}",
        x.p50 / 1e3,
        x.max / 1e3,
        x.count
    )
}

/// Writes part 1 into `s`.
fn report_latency(s: &mut Section, opts: Options, rows: &[Row]) {
    let [direct, hooks0, hooks1, hooks4, python] = rows else {
        s.line(format!("latency: expected 5 rows, got {}", rows.len()));
        return;
    };
    let d = direct.summary;
    s.line(format!(
        "Added latency per tools/call: echo {{\"text\": {:?}}}, {} sequential calls per server after {} warm-up, in {BLOCKS} interleaved blocks (bare JSON-RPC client):",
        ECHO_TEXT,
        opts.calls.div_ceil(BLOCKS) * BLOCKS,
        opts.warmup
    ));
    s.line("                        p50 µs    p90 µs    p99 µs   calls/s  added p50  added p90  server CPU µs/call");
    for r in rows {
        let x = r.summary;
        let added = if r.key == "direct" {
            format!("{:>9}  {:>9}", "", "")
        } else {
            format!("{:>9.1}  {:>9.1}", x.p50 - d.p50, x.p90 - d.p90)
        };
        s.line(format!(
            "{:<21} {:>8.1}  {:>8.1}  {:>8.1}  {:>8.0}  {added}  {:>18.1}",
            r.label, x.p50, x.p90, x.p99, r.calls_per_s, r.cpu_us
        ));
    }
    s.line("(0 hooks: an empty plugins directory. Server CPU: the direct backend's own; a magg's alone, not its backend's)");
    s.figure(
        "direct_calls_per_s",
        "direct: calls/s, 1 caller",
        direct.calls_per_s,
        "calls/s",
        None,
    );
    for r in &rows[1..] {
        s.figure(
            &format!("{}_added_p50_us", r.key),
            &format!("{}: added p50 (− direct)", r.label),
            r.summary.p50 - d.p50,
            "µs",
            None,
        );
        s.figure(
            &format!("{}_calls_per_s", r.key),
            &format!("{}: calls/s, 1 caller", r.label),
            r.calls_per_s,
            "calls/s",
            None,
        );
    }
    let per_hook = (hooks4.summary.p50 - hooks1.summary.p50) / 3.0;
    let first_hook = hooks1.summary.p50 - hooks0.summary.p50;
    s.figure(
        "first_hook_p50_us",
        "step 0 → 1 hook (bookkeeping + hook), p50",
        first_hook,
        "µs",
        None,
    );
    s.figure(
        "per_hook_p50_us",
        "per Rust hook, (4 hooks − 1 hook) / 3, p50",
        per_hook,
        "µs",
        Some(Budget::AtMost(HOOK_BUDGET_US)),
    );
    s.figure(
        "path_switch_p50_us",
        "  so the bookkeeping alone ≈ step − per hook",
        first_hook - per_hook,
        "µs",
        None,
    );
    s.figure(
        "per_hook_cpu_us",
        "per Rust hook, magg CPU per call",
        (hooks4.cpu_us - hooks1.cpu_us) / 3.0,
        "µs",
        None,
    );
    s.figure(
        "python_vs_rust_hook_p50_us",
        "Python hook − 1 Rust hook, p50",
        python.summary.p50 - hooks1.summary.p50,
        "µs",
        None,
    );
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "label": r.label,
                "latency": r.summary.to_json(),
                "calls_per_s": r.calls_per_s.round(),
                "server_cpu_us_per_call": round2(r.cpu_us),
            })
        })
        .collect();
    s.data("call_latency", Value::Array(json_rows));
}

/// Writes part 2 into `s`.
fn report_swaps(s: &mut Section, hook: &[Duration], filter: &FilterSwaps) {
    let h = Summary::of(hook);
    let notified = Summary::of(&filter.notified);
    let described = Summary::of(&filter.described);
    s.line(format!(
        "Plugin file replaced by atomic rename while serving (magg's {} ms debounce included; the first swap to each version compiles it, later ones load it from the cache):",
        DEBOUNCE.as_millis()
    ));
    s.line("                                                  p50 ms     max ms  rounds");
    s.line(ms_row("hook deny-all ⇄ echo-answer → new answer", &h));
    s.line(ms_row(
        "filter marker v1 ⇄ v2 → tools/list_changed",
        &notified,
    ));
    s.line(ms_row(
        "filter marker v1 ⇄ v2 → new descriptions",
        &described,
    ));
    if let (Some(hook), Some(filter)) = (hook.first(), filter.described.first()) {
        s.line(format!(
            "first swaps (compiling echo-answer-hook, marker-filter-v2): hook {:.2} ms, filter {:.2} ms",
            millis(*hook),
            millis(*filter)
        ));
    }
    let budget = Some(Budget::AtMost(SWAP_BUDGET_MS));
    s.figure(
        "hook_swap_p50_ms",
        "hook replaced → new answer, p50",
        h.p50 / 1e3,
        "ms",
        budget,
    );
    s.figure(
        "hook_swap_max_ms",
        "hook replaced → new answer, max",
        h.max / 1e3,
        "ms",
        budget,
    );
    s.figure(
        "filter_swap_list_changed_p50_ms",
        "filter replaced → list_changed, p50",
        notified.p50 / 1e3,
        "ms",
        budget,
    );
    s.figure(
        "filter_swap_described_p50_ms",
        "filter replaced → new descriptions, p50",
        described.p50 / 1e3,
        "ms",
        budget,
    );
    s.figure(
        "filter_swap_described_max_ms",
        "filter replaced → new descriptions, max",
        described.max / 1e3,
        "ms",
        budget,
    );
    s.data(
        "swaps",
        json!({
            "debounce_ms": millis(DEBOUNCE),
            "hook_new_answer": data(hook),
            "filter_list_changed": data(&filter.notified),
            "filter_new_descriptions": data(&filter.described),
        }),
    );
}

/// Writes part 3 into `s`.
fn report_starts(s: &mut Section, starts: &Starts) {
    let times = |runs: &[Start]| runs.iter().map(|r| r.took).collect::<Vec<_>>();
    let last_rss = |runs: &[Start]| runs.last().map_or(0, |r| r.rss_kb);
    let (cached_times, baseline_times) = (times(&starts.cached), times(&starts.baseline));
    let cached = Summary::of(&cached_times);
    let baseline = Summary::of(&baseline_times);
    s.line("Spawn → first tools/call answered through the redact hook (Python, 18 MB; its secret blanked out), 1 backend:");
    s.line(
        "                                                  p50 ms     max ms  rounds  magg RSS MiB",
    );
    let rows = [
        (
            "cold: empty compile cache",
            Summary::of(&[starts.cold.took]),
            starts.cold.rss_kb,
        ),
        (
            "cached: the cache the cold start filled",
            cached,
            last_rss(&starts.cached),
        ),
        (
            "no plugins: spawn → first echo answered",
            baseline,
            last_rss(&starts.baseline),
        ),
    ];
    for (name, x, rss) in rows {
        s.line(format!("{}  {:>12.1}", ms_row(name, &x), mib(rss)));
    }
    s.figure(
        "cold_start_ms",
        "Python plugin, cold cache: spawn → hooked call",
        millis(starts.cold.took),
        "ms",
        None,
    );
    s.figure(
        "cached_start_p50_ms",
        "Python plugin, cached: spawn → hooked call, p50",
        cached.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "no_plugin_start_p50_ms",
        "no plugins: spawn → first call, p50",
        baseline.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "cold_start_rss_mib",
        "magg RSS after compiling it in-process",
        mib(starts.cold.rss_kb),
        "MiB",
        None,
    );
    s.figure(
        "cached_start_rss_mib",
        "magg RSS after loading it from the cache",
        mib(last_rss(&starts.cached)),
        "MiB",
        None,
    );
    s.data(
        "starts",
        json!({
            "cold_ms": round2(millis(starts.cold.took)),
            "cold_rss_kb": starts.cold.rss_kb,
            "cached": data(&cached_times),
            "cached_rss_kb": last_rss(&starts.cached),
            "no_plugins": data(&baseline_times),
            "no_plugins_rss_kb": last_rss(&starts.baseline),
        }),
    );
}

/// Writes part 4 into `s`.
fn report_memory(s: &mut Section, opts: Options, runs: &[Rss]) {
    s.line(format!(
        "Memory: VmRSS of the magg process alone with {RSS_BACKENDS} backends, after {} calls spread over them:",
        opts.rss_calls
    ));
    let none = runs.iter().find(|r| r.key == "none").map(|r| r.kb);
    for r in runs {
        let added = match none {
            Some(base) if r.key != "none" => {
                format!(" (+{:.1} MiB)", mib(r.kb) - mib(base))
            }
            _ => String::new(),
        };
        s.line(format!(
            "  {:<66} {:>6.1} MiB{added}, anonymous {:.1} MiB  ({} child processes)",
            r.label,
            mib(r.kb),
            mib(r.anon_kb),
            r.children
        ));
        let budget = (r.key != "none").then_some(Budget::AtMost(RSS_BUDGET_MIB));
        s.figure(
            &format!("rss_{}_mib", r.key),
            &format!(
                "RSS, 10 backends + {}",
                if r.key == "none" {
                    "no plugins".to_owned()
                } else {
                    format!("4 plugins ({})", r.key)
                }
            ),
            mib(r.kb),
            "MiB",
            budget,
        );
    }
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| json!({"key": r.key, "plugins": r.label, "rss_kb": r.kb, "rss_anon_kb": r.anon_kb, "child_processes": r.children}))
        .collect();
    s.data("memory", Value::Array(rows));
}

/// Measurement 7. A part that fails is reported in the section (and in the
/// report's notes); the section fails only when no part could be measured.
pub async fn plugins(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 7/7 plugins");
    let built_dir = env.target.join("plugins");
    ensure!(
        built_dir.is_dir(),
        "{} not found; build the plugins first: bash plugins/build.sh",
        built_dir.display()
    );
    let cache = env.work.join("plugin-cache");
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    let mut s = Section::new(
        "plugins",
        "7. Plugins: added latency per routing hook, hot replacement, cold vs cached start, memory",
    );
    let mut failures = Vec::new();
    let mut fail = |s: &mut Section, what: &str, e: anyhow::Error| {
        let message = format!("7 (plugins): {what} failed: {e:#}");
        s.line(format!("{what}: not measured ({e:#})"));
        failures.push(message);
    };

    let files: Result<Vec<PathBuf>> = [
        "routing-rules.wasm",
        "redact.wasm",
        "tool-filter.wasm",
        "describe-servers.wasm",
        "fixtures/marker-filter.wasm",
        "smart-configure.wasm",
    ]
    .iter()
    .map(|f| built(env, f))
    .collect();
    match async { warm_cache(env, &env.magg, &cache, &files?).await }.await {
        Ok(took) => s.line(format!(
            "Compile cache {} filled with `magg plugin check` first ({:.1} s), so only the cold start and the first swaps compile",
            cache.display(),
            took.as_secs_f64()
        )),
        Err(e) => fail(&mut s, "filling the compile cache", e),
    }

    eprintln!(
        "magg-bench: 7/7 plugins: tools/call latency with 0, 1, 4 hooks ({} calls each)",
        opts.calls
    );
    let mut measured = 0;
    match latency(env, opts, &cache).await {
        Ok(rows) => {
            report_latency(&mut s, opts, &rows);
            measured += 1;
        }
        Err(e) => fail(&mut s, "latency", e),
    }
    eprintln!(
        "magg-bench: 7/7 plugins: hot replacement ({} swaps each)",
        opts.plugin_swaps
    );
    let swaps = async {
        // A fresh cache, so that the first swap to each version compiles it.
        let swap_cache = env.work.join("plugin-cache-swap");
        fresh_dir(&swap_cache)?;
        let hook = swap_hook(env, opts, &swap_cache).await?;
        let filter = swap_filter(env, opts, &swap_cache).await?;
        anyhow::Ok((hook, filter))
    };
    match swaps.await {
        Ok((hook, filter)) => {
            report_swaps(&mut s, &hook, &filter);
            measured += 1;
        }
        Err(e) => fail(&mut s, "hot replacement", e),
    }
    eprintln!(
        "magg-bench: 7/7 plugins: cold and cached start ({} cached)",
        opts.plugin_starts
    );
    match starts(env, opts).await {
        Ok(starts) => {
            report_starts(&mut s, &starts);
            measured += 1;
        }
        Err(e) => fail(&mut s, "cold/cached start", e),
    }
    eprintln!("magg-bench: 7/7 plugins: RSS with {RSS_BACKENDS} backends");
    match memory(env, opts, &cache).await {
        Ok(runs) => {
            report_memory(&mut s, opts, &runs);
            measured += 1;
        }
        Err(e) => fail(&mut s, "memory", e),
    }
    if measured == 0 {
        bail!("{}", failures.join("; "));
    }
    for failure in failures {
        server::incident(failure);
    }
    s.data(
        "magg_env",
        json!({"MAGG_LIST_WAIT": LIST_WAIT, "MAGG_CACHE_DIR": cache}),
    );
    Ok(s)
}
