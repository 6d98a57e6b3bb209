//! `magg-bench`: what magg costs compared with talking to an MCP server directly.
//!
//! This is a benchmark that prints figures, not a test: each figure is shown
//! with its budget and PASS/OVER, but missing a budget never fails the run.
//! The process exits non-zero only when something fails to run.
//!
//! Every measurement is compared with a baseline taken in the same run:
//!
//! 1. **tools/call latency**: `echo {"text": ...}`, sequential calls (5000, or
//!    500 with `--quick`, after 200 warm-up calls) straight to a
//!    `magg-test-backend` process, and to `tb_echo` through `magg serve` with
//!    that backend behind it. p50/p90/p99/mean, and the latency magg adds
//!    (budget: added p50 ≤ 50 µs).
//! 2. **Throughput**: 1 and 8 concurrent callers (tasks sharing one client
//!    connection) calling `echo` back to back for 3 s (1 s with `--quick`),
//!    direct vs through magg (budget: ≥ 0.95× direct), and the CPU time each
//!    server process spent per call (from `/proc/PID/task/*/schedstat`).
//! 3. **tools/list with 100 backends × 50 generated tools**: time from spawn
//!    until every backend's tools are listed, then p50/p99 of one tools/list
//!    request (the first 1000-tool page; budget p50 ≤ 2 ms) and of a full
//!    listing across all pages, plus magg's own RSS (not its children's).
//!    Baseline: one `magg-test-backend` serving the same number of tools in
//!    pages of 1000. Timed twice: with the rmcp client (requests sent raw to
//!    bypass its list cache; the time includes deserialising 1000 tools), and
//!    with a bare JSON-RPC client that reads the reply line unparsed (server
//!    work plus the pipe), against a fresh magg and baseline.
//! 4. **Spawn → initialize result**: `magg serve` with an empty config, 20
//!    times (5 with `--quick`): p50/min/max (budget p50 ≤ 10 ms). Baseline: the
//!    same for `magg-test-backend`.
//! 5. **RSS with 10 backends** after a few hundred calls: magg's own VmRSS
//!    (budget ≤ 15 MiB). Baseline: one `magg-test-backend` after as many calls.
//! 6. **Live changes**, 20 rounds each (5 with `--quick`), no budgets: the
//!    config file of a running magg rewritten atomically (temp file + rename)
//!    to add or remove a second backend, timed from the rename to
//!    `notifications/tools/list_changed` and, when adding, to the new tool
//!    answering; and `magg_add_server` called, timed to its result and to the
//!    new tool answering. Baseline: spawn → initialize of `magg-test-backend`
//!    alone. See `live.rs`.
//! 7. **Plugins** (`magg serve --plugins DIR`, built by `bash plugins/build.sh`
//!    into `<target dir>/plugins`): added tools/call latency with 0, 1 and 4
//!    Rust routing hooks and 1 Python hook against the backend called directly
//!    (budget: one more Rust hook ≤ 10 µs p50); a hook and a filter replaced by
//!    atomic rename while serving, timed until the new version answers (10
//!    swaps each, 4 with `--quick`; budget ≤ 150 ms); spawn → first hooked call
//!    with the 18 MB Python plugin, cold and from the compile cache (5 cached
//!    starts, 2 with `--quick`); RSS with 10 backends and 4 plugins (budget ≤
//!    15 MiB). See `plugins.rs`.
//! 8. **Pass-through**: request → first progress notification, and a
//!    sampling round trip (backend asks the client, the client answers at
//!    once), direct vs through magg. See `passthrough.rs`.
//! 9. **HTTP keep-alive client**: tools/call of `echo` on one kept-alive HTTP/1.1
//!    connection, one request at a time (500 calls, 50 with `--quick`, after 50
//!    warm-up), through `magg serve --http` with server-everything behind it on
//!    stdio, vs server-everything's own streamable HTTP server (budget: added
//!    p50 ≤ 1 ms). Needs `npm ci --prefix tests/node` and `node` on PATH. See
//!    `keepalive.rs`.
//!
//! Measurements 10-12 compare this magg with another one given by `--baseline
//! PATH` (say, one built from an earlier commit), run side by side in the same
//! run, and print both figures with their ratio new / baseline; without
//! `--baseline` they measure this magg alone. See `compare.rs`.
//!
//! 10. **Calls before/after**: tools/call of `echo` over stdio (rmcp client and
//!     bare client) and over HTTP (a kept-alive HTTP/1.1 client and the
//!     official Python SDK), direct vs each magg: added p50 (budgets: stdio
//!     ≤ 50 µs, kept-alive HTTP ≤ 1 ms) and magg's CPU time per call.
//! 11. **Tools held before/after**: magg's anonymous RSS with 100 backends
//!     serving 5000 tools, generated or from the public tools corpus, less
//!     with the same backends and only their built-in tools, per 1000 tools
//!     (budget ≤ 1.5 KB per tool); a full tools/list walk of the 5000 tools by
//!     the bare client (budget p50 ≤ 5 ms) and one page; RSS with 10 backends.
//! 12. **Routing hooks before/after**: added latency and magg CPU per call
//!     with 0, 1 and 4 Rust hooks, and the cost of one more hook. See
//!     `plugins/compare.rs`.
//! 13. **Authentication**: over HTTP, the token check of a request (budget
//!     ≤ 20 µs p50 for a token seen before), a token's first check (its RS256
//!     signature), the scoped view on a call, and a tools/list walk of 5000
//!     tools whole and through scopes. See `auth.rs`.
//! 14. **HTTP sessions**: magg's anonymous RSS with one streamable HTTP session and with 2000
//!     more (500 with `--quick`) opened and left idle, per session (budget ≤ 8 KiB), and once
//!     they have ended after `session_idle_timeout` (5 s here; budget ≤ 4 MiB above one
//!     session); this magg alone. See `sessions.rs`.
//! 15. **Search** (`magg-bench search`, or `--only 15`): `magg_search_servers` with its four
//!     bundled providers pointed at local replay servers that answer after 50, 100, 150 and
//!     200 ms: p50 against the slowest source's delay (budget ≤ 1.25×: the sources are asked
//!     at once) and against the sum of the delays; and with no delays, magg's own cost of a
//!     search. See `search.rs`.
//! 16. **Bundled plugins**: spawn → initialize and spawn → the first answer of the bundled
//!     `smart-configure` plugin, with an empty compile cache and from the cache, and magg's
//!     RSS, against magg with its bundled plugins off. See `bundled.rs`.
//! 17. **Metrics**: the counting a tools/call, a list request and a plugin call make, timed
//!     in process; and echo over stdio through magg with metrics on and off (`MAGG_METRICS=0`)
//!     side by side, against the backend directly (budget: metrics add ≤ 2 µs p50). See
//!     `metrics_cost.rs`.
//! 18. **Tracing**: tools/call of `echo` by the bare client, direct vs magg with tracing off,
//!     on with every call sampled and on with a ratio sampler (0.1), exporting over OTLP/HTTP
//!     to a local sink: added p50 of each, and, with `--baseline`, tracing off against the
//!     baseline magg (budget ≤ 5 µs: nothing measurable). See `tracing_cost.rs`.
//! 19. **Tool providers**: tools/call of `echo` by the bare client straight to a
//!     `magg-test-backend`, through magg to it, and to the same tool of a Rust WebAssembly
//!     component mounted in magg as a server: p50 (budget for the WebAssembly call ≤ 30 µs),
//!     added p50 and magg's CPU per call; magg's RSS per mounted component; and the time from
//!     the component's file replaced to the new version answering (budget ≤ 150 ms). See
//!     `providers.rs`.
//! 20. **Tool search**: recall@1 and @5 of magg's ranking and of a plain BM25 on 100 labeled
//!     requests over the public tools corpus, tools/list bytes with the corpus mounted and
//!     search off vs on, and search latency over 5000 tools, index alone and through magg
//!     (budget ≤ 1 ms p50). See `tool_search.rs`.
//! 21. **Per-session backends**: a new HTTP session's first tools/call to a shared server and
//!     to one with `"isolation": "session"` (which starts the session's own instance), the
//!     second call of that session, the VmRSS of each per-session instance process and magg's
//!     own RSS growth per such session; no budgets. See `isolation.rs`.
//! 22. **Stateless input_required round**: a stateless (2026-07-28) tools/call answered
//!     `input_required`, and its retry with the answer, on one kept-alive HTTP/1.1
//!     connection: straight to `magg-test-backend --modern` over its own HTTP, and through
//!     magg with it on stdio; p50 per round and the ratio. See `eras.rs`.
//!
//! Run it from the workspace root with
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p magg-bench -- [--quick]
//! ```
//!
//! `cargo build --release --workspace` builds `magg`, `magg-test-backend` and
//! `magg-bench` together. The bench looks for `magg` and `magg-test-backend`
//! next to its own executable, so it measures whichever profile it was built
//! in (a debug build of the workspace works too, but its figures mean little).
//! Make sure those two binaries are up to date: `cargo run -p magg-bench`
//! rebuilds only the bench.
//!
//! The report goes to stdout and, as JSON, to `<target dir>/bench-report.json`.
//! Config files and the servers' stderr go to `<target dir>/bench-work/`.
//! magg runs with `MAGG_LIST_WAIT=10`, so its first tools/list waits for
//! backends that are still starting. Every process the bench starts is
//! stopped at the end (by closing its stdin, then SIGTERM/SIGKILL if needed).

mod auth;
mod bundled;
mod compare;
mod eras;
mod isolation;
mod keepalive;
mod live;
mod mcp;
mod metrics_cost;
mod passthrough;
mod plugins;
mod providers;
mod raw;
mod report;
mod search;
mod server;
mod sessions;
mod stats;
mod tool_search;
mod tracing_cost;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use rmcp::ClientHandler;
use serde_json::{Map, Value, json};

use crate::{
    raw::RawServer,
    report::{Budget, Report, Section},
    server::Server,
    stats::{Summary, millis},
};

const USAGE: &str = "usage: magg-bench [search] [--quick] [--only N[,N...]] [--baseline PATH]\n\n\
Compares magg with direct calls to magg-test-backend and prints the figures;\n\
writes them as JSON to <target dir>/bench-report.json.\n\
--only runs only the numbered measurements (1 and 2 run together; 3 needs them).\n\
search runs only measurement 15 (search latency), like --only 15.\n\
--baseline runs measurements 10-12 with the magg binary PATH as well.\n\
Build first: cargo build --release --workspace\n\
Run:         cargo run --release -p magg-bench -- [--quick]";

/// Number of backends, and generated tools per backend, for the tools/list measurement.
const LIST_BACKENDS: usize = 100;
const LIST_TOOLS_PER_BACKEND: usize = 50;
/// Page size of magg's list results (`frontend::PAGE_SIZE`).
const PAGE_SIZE: usize = 1000;
/// Number of backends for the memory measurement.
const RSS_BACKENDS: usize = 10;
/// The highest measurement number.
const LAST: u16 = 22;
/// Environment of every magg: its first tools/list waits up to 10 s for
/// backends that are still starting.
const MAGG_ENV: &[(&str, &str)] = &[("MAGG_LIST_WAIT", "10")];

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Options {
    quick: bool,
    /// The measurements to run (bit N for measurement N); all by default.
    only: u32,
    /// Sequential calls timed for latency.
    calls: usize,
    /// Untimed calls before them.
    warmup: usize,
    /// Length of each throughput run.
    duration: Duration,
    /// tools/list requests (or full listings) timed.
    list_reps: usize,
    /// Spawn → initialize repetitions.
    spawn_reps: usize,
    /// Calls made before reading RSS.
    rss_calls: usize,
    /// Rounds of each live-change measurement.
    live_rounds: usize,
    /// Plugin files replaced, per kind.
    plugin_swaps: usize,
    /// Starts with the plugin compile cache filled.
    plugin_starts: usize,
}

impl Options {
    /// Parses the command line into the options and the `--baseline` magg;
    /// `Ok(None)` means help was printed.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<(Options, Option<PathBuf>)>> {
        let mut quick = false;
        let mut only = 0u32;
        let mut baseline = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "search" => only |= 1 << 15,
                "--only" => {
                    let list = args.next().context("--only needs a list such as 5,7")?;
                    for n in list.split(',') {
                        let n: u16 = n
                            .trim()
                            .parse()
                            .ok()
                            .filter(|n| (1..=LAST).contains(n))
                            .with_context(|| {
                                format!("--only: {n:?} is not a measurement 1-{LAST}")
                            })?;
                        only |= 1 << n;
                        if n <= 3 {
                            only |= 0b110;
                        }
                    }
                }
                "--baseline" => {
                    let path = args.next().context("--baseline needs a magg binary")?;
                    baseline = Some(PathBuf::from(path));
                }
                "--help" | "-h" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        let opts = Options {
            quick,
            only: if only == 0 { u32::MAX } else { only },
            calls: if quick { 500 } else { 5000 },
            warmup: 200,
            duration: Duration::from_secs(if quick { 1 } else { 3 }),
            list_reps: if quick { 50 } else { 200 },
            spawn_reps: if quick { 5 } else { 20 },
            rss_calls: 300,
            live_rounds: if quick { 5 } else { 20 },
            plugin_swaps: if quick { 4 } else { 10 },
            plugin_starts: if quick { 2 } else { 5 },
        };
        Ok(Some((opts, baseline)))
    }

    fn to_json(self) -> Value {
        json!({
            "quick": self.quick,
            "calls": self.calls,
            "warmup_calls": self.warmup,
            "throughput_seconds": self.duration.as_secs_f64(),
            "list_reps": self.list_reps,
            "spawn_reps": self.spawn_reps,
            "rss_calls": self.rss_calls,
            "live_rounds": self.live_rounds,
            "plugin_swaps": self.plugin_swaps,
            "plugin_starts": self.plugin_starts,
        })
    }
}

/// Where the binaries are and where the bench writes.
struct Env {
    magg: PathBuf,
    /// The magg to compare with (`--baseline`).
    baseline: Option<PathBuf>,
    backend: PathBuf,
    target: PathBuf,
    work: PathBuf,
}

impl Env {
    /// Finds `magg` and `magg-test-backend` next to this executable; checks `baseline`.
    fn locate(baseline: Option<PathBuf>) -> Result<Env> {
        let exe = std::env::current_exe().context("cannot find this executable's path")?;
        let dir = exe
            .parent()
            .with_context(|| format!("{} has no parent directory", exe.display()))?;
        let find = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            ensure!(
                path.is_file(),
                "{} not found; build the workspace first: cargo build --release --workspace",
                path.display()
            );
            Ok(path)
        };
        let magg = find("magg")?;
        let backend = find("magg-test-backend")?;
        let baseline = match baseline {
            Some(path) => Some(
                std::fs::canonicalize(&path)
                    .ok()
                    .filter(|p| p.is_file())
                    .with_context(|| format!("--baseline: {} is not a file", path.display()))?,
            ),
            None => None,
        };
        // target/release/magg-bench -> target
        let target = dir.parent().unwrap_or(dir).to_path_buf();
        let work = target.join("bench-work");
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        Ok(Env {
            magg,
            baseline,
            backend,
            target,
            work,
        })
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.join(format!("{name}.stderr"))
    }

    /// Writes a magg config with one test backend per `(name, extra args)`,
    /// each prefixed with its name.
    fn write_config(&self, file: &str, servers: &[(String, Vec<String>)]) -> Result<PathBuf> {
        let path = self.work.join(file);
        let text = self.config_text(servers)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The text of a magg config with one test backend per `(name, extra
    /// args)`, each prefixed with its name.
    fn config_text(&self, servers: &[(String, Vec<String>)]) -> Result<String> {
        let mut map = Map::new();
        for (name, extra) in servers {
            let mut args = vec!["--name".to_owned(), name.clone()];
            args.extend(extra.iter().cloned());
            map.insert(
                name.clone(),
                json!({
                    "source": "bench",
                    "prefix": name,
                    "command": self.backend,
                    "args": args,
                }),
            );
        }
        serde_json::to_string_pretty(&json!({ "servers": map })).context("cannot serialise config")
    }

    async fn start_backend(&self, label: &str, log: &str, args: &[String]) -> Result<Server> {
        Server::start(label, &self.backend, args, &[], &self.log(log)).await
    }

    async fn start_magg(&self, label: &str, log: &str, config: &Path) -> Result<Server> {
        self.start_magg_with((), MAGG_ENV, label, log, config).await
    }

    /// Starts `magg serve --config CONFIG` with `env` added and `handler`
    /// receiving its notifications.
    async fn start_magg_with<H: ClientHandler>(
        &self,
        handler: H,
        env: &[(&str, &str)],
        label: &str,
        log: &str,
        config: &Path,
    ) -> Result<Server<H>> {
        let args = [
            "serve".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        Server::start_with(handler, label, &self.magg, &args, env, &self.log(log)).await
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Stops both servers, whatever `result` is, then returns it.
async fn stop_both<T>(result: Result<T>, a: Server, b: Server) -> Result<T> {
    a.shutdown().await;
    b.shutdown().await;
    result
}

/// Starts a direct backend and a magg over `config`; stops the first if the second fails.
async fn start_pair(
    env: &Env,
    direct: (&str, &str, &[String]),
    magg: (&str, &str, &Path),
) -> Result<(Server, Server)> {
    let direct = env.start_backend(direct.0, direct.1, direct.2).await?;
    match env.start_magg(magg.0, magg.1, magg.2).await {
        Ok(magg) => Ok((direct, magg)),
        Err(e) => {
            direct.shutdown().await;
            Err(e)
        }
    }
}

const TABLE_HEAD: &str = "                   p50 µs     p90 µs     p99 µs    mean µs";

fn table_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<16} {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}",
        s.p50, s.p90, s.p99, s.mean
    )
}

/// Measurements 1 and 2. Returns their sections and the number of built-in
/// tools of a test backend.
async fn calls(env: &Env, opts: Options) -> Result<(Section, Section, usize)> {
    let config = env.write_config("one-backend.json", &[("tb".to_owned(), Vec::new())])?;
    let (direct, magg) = start_pair(
        env,
        (
            "magg-test-backend (direct)",
            "direct-tb",
            &strings(&["--name", "tb"]),
        ),
        ("magg (1 backend)", "magg-one-backend", &config),
    )
    .await?;
    let result = measure_calls(opts, &direct, &magg).await;
    stop_both(result, magg, direct).await
}

async fn measure_calls(
    opts: Options,
    direct: &Server,
    magg: &Server,
) -> Result<(Section, Section, usize)> {
    let (direct_tools, _) = mcp::list_all(direct.peer()).await?;
    ensure!(
        direct_tools.iter().any(|t| t == "echo"),
        "magg-test-backend does not list `echo`: {direct_tools:?}"
    );
    mcp::wait_for_tools(magg.peer(), Duration::from_secs(30), |names| {
        names.iter().any(|t| t == "tb_echo")
    })
    .await
    .context("magg did not list tb_echo")?;
    mcp::check_echo(direct.peer(), "echo").await?;
    mcp::check_echo(magg.peer(), "tb_echo").await?;

    eprintln!(
        "magg-bench: 1/7 tools/call latency ({} calls each)",
        opts.calls
    );
    let d =
        Summary::of(&mcp::call_latencies(direct.peer(), "echo", opts.warmup, opts.calls).await?);
    let m =
        Summary::of(&mcp::call_latencies(magg.peer(), "tb_echo", opts.warmup, opts.calls).await?);

    let mut lat = Section::new(
        "call_latency",
        format!(
            "1. tools/call latency: echo {{\"text\": {:?}}}, {} sequential calls after {} warm-up",
            mcp::ECHO_TEXT,
            opts.calls,
            opts.warmup
        ),
    );
    lat.line(TABLE_HEAD);
    lat.line(table_row("direct", &d));
    lat.line(table_row("through magg", &m));
    lat.line(format!(
        "{:<16} {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}",
        "added by magg",
        m.p50 - d.p50,
        m.p90 - d.p90,
        m.p99 - d.p99,
        m.mean - d.mean
    ));
    lat.figure(
        "added_p50_us",
        "added latency p50 (magg − direct)",
        m.p50 - d.p50,
        "µs",
        Some(Budget::AtMost(50.0)),
    );
    lat.figure(
        "added_p99_us",
        "added latency p99 (magg − direct)",
        m.p99 - d.p99,
        "µs",
        None,
    );
    lat.figure(
        "p50_ratio",
        "p50 ratio (magg / direct)",
        m.p50 / d.p50,
        "×",
        None,
    );
    lat.data("direct", d.to_json());
    lat.data("magg", m.to_json());

    eprintln!(
        "magg-bench: 2/7 throughput (1 and 8 callers, {:?} each)",
        opts.duration
    );
    let mut tput = Section::new(
        "throughput",
        format!(
            "2. Throughput: echo calls/s over one client connection, {} s per run",
            opts.duration.as_secs_f64()
        ),
    );
    tput.line("callers      direct calls/s    magg calls/s   magg/direct");
    // CPU time of the server processes during each run, per call: the direct
    // backend; magg itself; magg's backend.
    let magg_backend = match server::children_of(magg.pid()).as_slice() {
        [pid] => *pid,
        other => bail!("magg should have one backend process, found {other:?}"),
    };
    let pids = [direct.pid(), magg.pid(), magg_backend];
    let mut rows = Vec::new();
    let mut cpu_lines = Vec::new();
    for callers in [1usize, 8] {
        let before = cpu_times(&pids)?;
        let (direct_calls, direct_time) =
            mcp::throughput(direct.peer(), "echo", callers, opts.duration).await?;
        let between = cpu_times(&pids)?;
        let (magg_calls, magg_time) =
            mcp::throughput(magg.peer(), "tb_echo", callers, opts.duration).await?;
        let after = cpu_times(&pids)?;
        let direct_rate = direct_calls as f64 / direct_time.as_secs_f64();
        let magg_rate = magg_calls as f64 / magg_time.as_secs_f64();
        let ratio = magg_rate / direct_rate;
        let per_call = |from: u64, to: u64, calls: u64| {
            to.saturating_sub(from) as f64 / 1e3 / calls.max(1) as f64
        };
        let direct_cpu = per_call(before[0], between[0], direct_calls);
        let magg_cpu = per_call(between[1], after[1], magg_calls);
        let magg_backend_cpu = per_call(between[2], after[2], magg_calls);
        tput.line(format!(
            "{callers:>7}  {direct_rate:>16.0}  {magg_rate:>14.0}  {ratio:>12.3}"
        ));
        cpu_lines.push(format!(
            "{callers:>7}  {direct_cpu:>22.1}  {magg_cpu:>13.1}  {magg_backend_cpu:>19.1}"
        ));
        rows.push(json!({
            "callers": callers,
            "direct_calls_per_s": direct_rate.round(),
            "magg_calls_per_s": magg_rate.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "cpu_us_per_call": {
                "direct_backend": stats::round2(direct_cpu),
                "magg": stats::round2(magg_cpu),
                "magg_backend": stats::round2(magg_backend_cpu),
            },
        }));
        tput.figure(
            &format!("ratio_{callers}_callers"),
            &format!("{callers} caller(s): magg / direct throughput"),
            ratio,
            "×",
            Some(Budget::AtLeast(0.95)),
        );
        tput.figure(
            &format!("magg_cpu_us_per_call_{callers}_callers"),
            &format!("{callers} caller(s): magg CPU time per call"),
            magg_cpu,
            "µs",
            None,
        );
    }
    tput.line("CPU time per call, µs (all threads, from /proc/PID/task/*/schedstat):");
    tput.line("callers  direct: backend        magg: magg   magg: its backend");
    for line in cpu_lines {
        tput.line(line);
    }
    tput.data("runs", Value::Array(rows));
    Ok((lat, tput, direct_tools.len()))
}

/// Measurement 3.
async fn list(env: &Env, opts: Options, builtin: usize) -> Result<Section> {
    eprintln!(
        "magg-bench: 3/7 tools/list with {LIST_BACKENDS} backends × {LIST_TOOLS_PER_BACKEND} tools"
    );
    let servers: Vec<(String, Vec<String>)> = (0..LIST_BACKENDS)
        .map(|i| {
            (
                format!("b{i}"),
                strings(&["--tools", &LIST_TOOLS_PER_BACKEND.to_string()]),
            )
        })
        .collect();
    let config = env.write_config("hundred-backends.json", &servers)?;
    // The baseline serves as many tools as the 100 backends together, in pages of 1000.
    let backend_tools = LIST_BACKENDS * (builtin + LIST_TOOLS_PER_BACKEND);
    let baseline_args = strings(&[
        "--name",
        "base",
        "--tools",
        &(backend_tools - builtin).to_string(),
        "--page-size",
        &PAGE_SIZE.to_string(),
    ]);
    let (direct, magg) = start_pair(
        env,
        (
            "magg-test-backend (baseline)",
            "direct-list-baseline",
            &baseline_args,
        ),
        ("magg (100 backends)", "magg-hundred-backends", &config),
    )
    .await?;
    let result = measure_list(opts, builtin, &direct, &magg).await;
    let mut section = stop_both(result, magg, direct).await?;
    raw_list(env, opts, &config, &baseline_args, &mut section).await?;
    Ok(section)
}

/// Waits until `names` holds the generated tools of every one of the 100 backends.
fn all_backends_listed(names: &[String]) -> bool {
    let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
    names.len() >= LIST_BACKENDS * LIST_TOOLS_PER_BACKEND
        && (0..LIST_BACKENDS)
            .all(|i| listed.contains(format!("b{i}_gen_{}", LIST_TOOLS_PER_BACKEND - 1).as_str()))
}

async fn measure_list(
    opts: Options,
    builtin: usize,
    direct: &Server,
    magg: &Server,
) -> Result<Section> {
    mcp::wait_for_tools(magg.peer(), Duration::from_secs(180), all_backends_listed)
        .await
        .context("magg did not list the tools of all 100 backends")?;
    let all_listed = magg.spawned_at.elapsed();
    let magg_rss = magg.rss_kb()?;

    let (magg_names, magg_pages) = mcp::list_all(magg.peer()).await?;
    let (direct_names, direct_pages) = mcp::list_all(direct.peer()).await?;
    let (first_page, _) = mcp::list_page(magg.peer(), None).await?;
    let (direct_first_page, _) = mcp::list_page(direct.peer(), None).await?;

    // A few untimed rounds, then the timed ones.
    for peer in [direct.peer(), magg.peer()] {
        mcp::list_latencies(peer, 3, true).await?;
    }
    let magg_page = Summary::of(&mcp::list_latencies(magg.peer(), opts.list_reps, false).await?);
    let direct_page =
        Summary::of(&mcp::list_latencies(direct.peer(), opts.list_reps, false).await?);
    let magg_full = Summary::of(&mcp::list_latencies(magg.peer(), opts.list_reps, true).await?);
    let direct_full = Summary::of(&mcp::list_latencies(direct.peer(), opts.list_reps, true).await?);
    let direct_rss = direct.rss_kb()?;

    let mut s = Section::new(
        "tools_list",
        format!(
            "3. tools/list: magg with {LIST_BACKENDS} backends × ({LIST_TOOLS_PER_BACKEND} generated + {} built-in) tools, {} timed requests each",
            builtin, opts.list_reps
        ),
    );
    s.line(format!(
        "magg lists {} tools in {magg_pages} pages (first page {}); baseline backend {} tools in {direct_pages} pages (first page {})",
        magg_names.len(),
        first_page.len(),
        direct_names.len(),
        direct_first_page.len()
    ));
    s.line(
        "rmcp client (request sent raw, bypassing rmcp's list cache; includes parsing the reply):",
    );
    s.line("                         p50 ms     p99 ms    mean ms");
    s.line(list_row("one page, magg", &magg_page));
    s.line(list_row("one page, direct", &direct_page));
    s.line(list_row("all pages, magg", &magg_full));
    s.line(list_row("all pages, direct", &direct_full));
    s.figure(
        "page_p50_ms",
        "one tools/list page (1000 tools), p50",
        magg_page.p50 / 1e3,
        "ms",
        Some(Budget::AtMost(2.0)),
    );
    s.figure(
        "page_p99_ms",
        "one tools/list page (1000 tools), p99",
        magg_page.p99 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "page_p50_ratio",
        "one page p50, magg / direct",
        magg_page.p50 / direct_page.p50,
        "×",
        None,
    );
    s.figure(
        "full_p50_ms",
        "full listing (all pages), p50",
        magg_full.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "full_p99_ms",
        "full listing (all pages), p99",
        magg_full.p99 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "full_p50_ratio",
        "full listing p50, magg / direct",
        magg_full.p50 / direct_full.p50,
        "×",
        None,
    );
    s.figure(
        "spawn_to_all_listed_ms",
        "spawn → all 100 backends listed",
        millis(all_listed),
        "ms",
        None,
    );
    s.figure(
        "magg_rss_mib",
        "magg RSS (own process) with 100 backends",
        mib(magg_rss),
        "MiB",
        None,
    );
    s.figure(
        "baseline_rss_mib",
        "baseline backend RSS (same tool count)",
        mib(direct_rss),
        "MiB",
        None,
    );
    s.data(
        "magg",
        json!({
            "tools": magg_names.len(),
            "pages": magg_pages,
            "one_page": magg_page.to_json(),
            "all_pages": magg_full.to_json(),
            "rss_kb": magg_rss,
            "spawn_to_all_listed_ms": stats::round2(millis(all_listed)),
        }),
    );
    s.data(
        "direct",
        json!({
            "tools": direct_names.len(),
            "pages": direct_pages,
            "one_page": direct_page.to_json(),
            "all_pages": direct_full.to_json(),
            "rss_kb": direct_rss,
        }),
    );
    Ok(s)
}

/// Measurement 3, second half: the same listings with the bare JSON-RPC client
/// (no client-side parsing), against a fresh magg and baseline backend.
async fn raw_list(
    env: &Env,
    opts: Options,
    config: &Path,
    baseline_args: &[String],
    s: &mut Section,
) -> Result<()> {
    let magg_args = [
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ];
    let magg = RawServer::start(
        "magg (100 backends, raw client)",
        &env.magg,
        &magg_args,
        MAGG_ENV,
        &env.log("magg-hundred-backends-raw"),
    )
    .await?;
    let magg_result = raw_timings(magg, opts, true).await;
    let direct = RawServer::start(
        "magg-test-backend (baseline, raw client)",
        &env.backend,
        baseline_args,
        &[],
        &env.log("direct-list-baseline-raw"),
    )
    .await?;
    let direct_result = raw_timings(direct, opts, false).await;
    let (magg_page, magg_full) = magg_result?;
    let (direct_page, direct_full) = direct_result?;

    s.line("Bare JSON-RPC client (reply read as text, not parsed; server work + pipe only):");
    s.line("                         p50 ms     p99 ms    mean ms");
    s.line(list_row("one page, magg", &magg_page));
    s.line(list_row("one page, direct", &direct_page));
    s.line(list_row("all pages, magg", &magg_full));
    s.line(list_row("all pages, direct", &direct_full));
    s.figure(
        "raw_page_p50_ms",
        "bare client: one page (1000 tools), p50",
        magg_page.p50 / 1e3,
        "ms",
        Some(Budget::AtMost(2.0)),
    );
    s.figure(
        "raw_page_p99_ms",
        "bare client: one page (1000 tools), p99",
        magg_page.p99 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "raw_page_p50_ratio",
        "bare client: one page p50, magg / direct",
        magg_page.p50 / direct_page.p50,
        "×",
        None,
    );
    s.figure(
        "raw_full_p50_ms",
        "bare client: full listing, p50",
        magg_full.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "raw_full_p50_ratio",
        "bare client: full listing p50, magg / direct",
        magg_full.p50 / direct_full.p50,
        "×",
        None,
    );
    s.data(
        "raw_client",
        json!({
            "magg": {"one_page": magg_page.to_json(), "all_pages": magg_full.to_json()},
            "direct": {"one_page": direct_page.to_json(), "all_pages": direct_full.to_json()},
        }),
    );
    Ok(())
}

/// Waits (for magg) until all backends are listed, then times single pages
/// and full listings; stops the server either way.
async fn raw_timings(
    mut server: RawServer,
    opts: Options,
    wait: bool,
) -> Result<(Summary, Summary)> {
    let result = async {
        if wait {
            let deadline = std::time::Instant::now() + Duration::from_secs(180);
            while !all_backends_listed(&server.tool_names().await?) {
                ensure!(
                    std::time::Instant::now() < deadline,
                    "magg (raw client) did not list the tools of all 100 backends"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        server.list_latencies(3, true).await?;
        let page = Summary::of(&server.list_latencies(opts.list_reps, false).await?);
        let full = Summary::of(&server.list_latencies(opts.list_reps, true).await?);
        anyhow::Ok((page, full))
    }
    .await;
    server.shutdown().await;
    result
}

fn list_row(name: &str, x: &Summary) -> String {
    format!(
        "{name:<22} {:>8.3}   {:>8.3}   {:>8.3}",
        x.p50 / 1e3,
        x.p99 / 1e3,
        x.mean / 1e3
    )
}

/// Measurement 4.
async fn spawn(env: &Env, opts: Options) -> Result<Section> {
    eprintln!(
        "magg-bench: 4/7 spawn → initialize ({} times each)",
        opts.spawn_reps
    );
    let config = env.write_config("empty.json", &[])?;
    let mut magg_times = Vec::new();
    let mut direct_times = Vec::new();
    let mut exit_times = Vec::new();
    let mut empty_rss = 0;
    for _ in 0..opts.spawn_reps {
        let magg = env
            .start_magg("magg (empty config)", "magg-empty", &config)
            .await?;
        magg_times.push(magg.init_time);
        let rss = magg.rss_kb();
        exit_times.push(magg.shutdown().await);
        empty_rss = rss?;
        let direct = env
            .start_backend(
                "magg-test-backend (spawn)",
                "direct-spawn",
                &strings(&["--name", "spawn"]),
            )
            .await?;
        direct_times.push(direct.init_time);
        direct.shutdown().await;
    }
    let m = Summary::of(&magg_times);
    let d = Summary::of(&direct_times);
    let exits = Summary::of(&exit_times);
    let mut s = Section::new(
        "spawn_to_initialize",
        format!(
            "4. Spawn → initialize result, {} runs each (magg with an empty config)",
            opts.spawn_reps
        ),
    );
    s.line("                      p50 ms     min ms     max ms");
    for (name, x) in [("magg", &m), ("magg-test-backend", &d)] {
        s.line(format!(
            "{name:<18} {:>9.2}  {:>9.2}  {:>9.2}",
            x.p50 / 1e3,
            x.min / 1e3,
            x.max / 1e3
        ));
    }
    s.figure(
        "magg_p50_ms",
        "magg spawn → initialize, p50",
        m.p50 / 1e3,
        "ms",
        Some(Budget::AtMost(10.0)),
    );
    s.figure("magg_min_ms", "magg, min", m.min / 1e3, "ms", None);
    s.figure("magg_max_ms", "magg, max", m.max / 1e3, "ms", None);
    s.figure(
        "direct_p50_ms",
        "magg-test-backend spawn → initialize, p50",
        d.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "added_p50_ms",
        "added by magg, p50",
        (m.p50 - d.p50) / 1e3,
        "ms",
        None,
    );
    s.figure(
        "magg_exit_p50_ms",
        "magg exit after stdin closes, p50",
        exits.p50 / 1e3,
        "ms",
        None,
    );
    s.figure(
        "magg_empty_rss_mib",
        "magg RSS, empty config, after initialize",
        mib(empty_rss),
        "MiB",
        None,
    );
    s.data("magg", m.to_json());
    s.data("direct", d.to_json());
    s.data("magg_exit", exits.to_json());
    Ok(s)
}

/// Measurement 5.
async fn memory(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 5/7 RSS with {RSS_BACKENDS} backends");
    let servers: Vec<(String, Vec<String>)> = (0..RSS_BACKENDS)
        .map(|i| (format!("r{i}"), Vec::new()))
        .collect();
    let config = env.write_config("ten-backends.json", &servers)?;
    let (direct, magg) = start_pair(
        env,
        (
            "magg-test-backend (memory)",
            "direct-memory",
            &strings(&["--name", "mem"]),
        ),
        ("magg (10 backends)", "magg-ten-backends", &config),
    )
    .await?;
    let result = measure_memory(opts, &direct, &magg).await;
    stop_both(result, magg, direct).await
}

async fn measure_memory(opts: Options, direct: &Server, magg: &Server) -> Result<Section> {
    let tools: Vec<String> = (0..RSS_BACKENDS).map(|i| format!("r{i}_echo")).collect();
    mcp::wait_for_tools(magg.peer(), Duration::from_secs(60), |names| {
        tools.iter().all(|t| names.contains(t))
    })
    .await
    .context("magg did not list the tools of all 10 backends")?;
    let children = server::children_of(magg.pid()).len();
    let args = mcp::echo_args();
    for i in 0..opts.rss_calls {
        mcp::call_echo(magg.peer(), &tools[i % tools.len()], &args).await?;
        mcp::call_echo(direct.peer(), "echo", &args).await?;
    }
    // Let anything freed after the calls settle before reading.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let magg_rss = magg.rss_kb()?;
    let direct_rss = direct.rss_kb()?;
    let mut s = Section::new(
        "memory",
        format!(
            "5. Memory: magg with {RSS_BACKENDS} backends ({children} child processes) after {} calls spread over them",
            opts.rss_calls
        ),
    );
    s.line("VmRSS of the magg process only (its backends are not counted); MiB = 1024 kB");
    s.figure(
        "magg_rss_mib",
        "magg RSS with 10 backends",
        mib(magg_rss),
        "MiB",
        Some(Budget::AtMost(15.0)),
    );
    s.figure(
        "direct_rss_mib",
        "one magg-test-backend after as many calls",
        mib(direct_rss),
        "MiB",
        None,
    );
    s.data(
        "magg",
        json!({"rss_kb": magg_rss, "child_processes": children}),
    );
    s.data("direct", json!({"rss_kb": direct_rss}));
    Ok(s)
}

/// CPU time used so far by each of `pids`, in nanoseconds.
fn cpu_times(pids: &[u32; 3]) -> Result<[u64; 3]> {
    Ok([
        server::cpu_ns(pids[0])?,
        server::cpu_ns(pids[1])?,
        server::cpu_ns(pids[2])?,
    ])
}

/// The first three fields of `/proc/loadavg`, or `?`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

/// Records the outcome of a measurement: its section, or a note about why it failed.
fn record(report: &mut Report, failures: &mut Vec<String>, what: &str, result: Result<Section>) {
    match result {
        Ok(section) => report.push(section),
        Err(e) => {
            let message = format!("{what} failed: {e:#}");
            eprintln!("magg-bench: {message}");
            report.note(message.clone());
            failures.push(message);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let Some((opts, baseline)) = Options::parse(std::env::args().skip(1))? else {
        return Ok(());
    };
    // On a worker thread, so that no timed loop is polled from `block_on`.
    tokio::spawn(run(opts, baseline))
        .await
        .context("the bench task panicked")?
}

async fn run(opts: Options, baseline: Option<PathBuf>) -> Result<()> {
    let env = Env::locate(baseline)?;
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mut meta = Map::new();
    meta.insert("bench".into(), json!("magg-bench"));
    meta.insert("started_unix".into(), json!(started));
    meta.insert("cpus".into(), json!(cpus));
    meta.insert("magg".into(), json!(env.magg));
    meta.insert("baseline".into(), json!(env.baseline));
    meta.insert("backend".into(), json!(env.backend));
    meta.insert("options".into(), opts.to_json());
    let load_start = loadavg();
    meta.insert("loadavg_start".into(), json!(load_start));
    let mut report = Report::new(meta);
    report.header(format!(
        "magg-bench ({} run, {cpus} CPUs)",
        if opts.quick { "quick" } else { "full" }
    ));
    report.header(format!(
        "load average (1/5/15 min) at start: {load_start}  (other work on the machine skews the figures)"
    ));
    report.header(format!("magg:              {}", env.magg.display()));
    if let Some(baseline) = &env.baseline {
        report.header(format!("baseline magg:     {}", baseline.display()));
    }
    report.header(format!("magg-test-backend: {}", env.backend.display()));
    report.header(format!(
        "logs and configs:  {}  (magg runs with MAGG_LIST_WAIT=10)",
        env.work.display()
    ));

    let mut failures = Vec::new();
    let mut builtin = None;
    let wanted = |n: u16| opts.only & (1u32 << n) != 0;
    if wanted(1) {
        match calls(&env, opts).await {
            Ok((latency, throughput, tools)) => {
                report.push(latency);
                report.push(throughput);
                builtin = Some(tools);
            }
            Err(e) => record(&mut report, &mut failures, "1-2 (calls)", Err(e)),
        }
    }
    if wanted(3) {
        match builtin {
            Some(builtin) => {
                let result = list(&env, opts, builtin).await;
                record(&mut report, &mut failures, "3 (tools/list)", result);
            }
            None => report.note("3 (tools/list) skipped: needs the tool count from 1-2"),
        }
    }
    if wanted(4) {
        let result = spawn(&env, opts).await;
        record(&mut report, &mut failures, "4 (spawn)", result);
    }
    if wanted(5) {
        let result = memory(&env, opts).await;
        record(&mut report, &mut failures, "5 (memory)", result);
    }
    if wanted(6) {
        let result = live::live(&env, opts).await;
        record(&mut report, &mut failures, "6 (live changes)", result);
    }
    if wanted(7) {
        let result = plugins::plugins(&env, opts).await;
        record(&mut report, &mut failures, "7 (plugins)", result);
    }
    if wanted(8) {
        let result = passthrough::passthrough(&env, opts).await;
        record(&mut report, &mut failures, "8 (pass-through)", result);
    }
    if wanted(9) {
        let result = keepalive::keepalive(&env, opts).await;
        record(&mut report, &mut failures, "9 (HTTP keep-alive)", result);
    }
    if wanted(10) {
        let result = compare::calls(&env, opts).await;
        record(&mut report, &mut failures, "10 (calls)", result);
    }
    if wanted(11) {
        let result = compare::tools(&env, opts).await;
        record(&mut report, &mut failures, "11 (tools held)", result);
    }
    if wanted(12) {
        let result = plugins::compare::hooks(&env, opts).await;
        record(&mut report, &mut failures, "12 (hooks)", result);
    }
    if wanted(13) {
        let result = auth::auth(&env, opts).await;
        record(&mut report, &mut failures, "13 (authentication)", result);
    }
    if wanted(14) {
        let result = sessions::sessions_memory(&env, opts).await;
        record(&mut report, &mut failures, "14 (HTTP sessions)", result);
    }
    if wanted(15) {
        let result = search::search(&env, opts).await;
        record(&mut report, &mut failures, "15 (search)", result);
    }
    if wanted(16) {
        let result = bundled::bundled(&env, opts).await;
        record(&mut report, &mut failures, "16 (bundled plugins)", result);
    }
    if wanted(17) {
        let result = metrics_cost::metrics_cost(&env, opts).await;
        record(&mut report, &mut failures, "17 (metrics)", result);
    }
    if wanted(18) {
        let result = tracing_cost::tracing_cost(&env, opts).await;
        record(&mut report, &mut failures, "18 (tracing)", result);
    }
    if wanted(19) {
        let result = providers::providers(&env, opts).await;
        record(&mut report, &mut failures, "19 (tool providers)", result);
    }
    if wanted(20) {
        let result = tool_search::tool_search(&env, opts).await;
        record(&mut report, &mut failures, "20 (tool search)", result);
    }
    if wanted(21) {
        let result = isolation::isolation(&env, opts).await;
        record(
            &mut report,
            &mut failures,
            "21 (per-session backends)",
            result,
        );
    }
    if wanted(22) {
        let result = eras::eras(&env, opts).await;
        record(
            &mut report,
            &mut failures,
            "22 (stateless input_required round)",
            result,
        );
    }

    for incident in server::incidents() {
        report.note(incident);
    }
    let leftovers = server::kill_leftovers();
    if leftovers.is_empty() {
        report.footer("Processes left behind after the run: none");
    } else {
        let message = format!(
            "{} process(es) were still alive at the end and were killed: {leftovers:?}",
            leftovers.len()
        );
        report.note(message.clone());
        failures.push(message);
    }

    report.footer(format!("Load average at the end: {}", loadavg()));
    print!("{}", report.render());
    let json_path = env.target.join("bench-report.json");
    let text =
        serde_json::to_string_pretty(&report.to_json()).context("cannot serialise report")?;
    std::fs::write(&json_path, text + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("JSON report: {}", json_path.display());
    if !failures.is_empty() {
        bail!("{} part(s) of the bench failed to run", failures.len());
    }
    Ok(())
}
