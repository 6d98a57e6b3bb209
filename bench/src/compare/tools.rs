//! Measurement 11: what holding tools costs, this magg against the baseline.
//!
//! magg runs with 100 test backends three times over: with their built-in tools only, with
//! generated tools added (`--tools N`), and with tools of real MCP servers added (`--tools-file`,
//! taken in turn from the public tools corpus `mcp-tools-corpus.json`), N per backend so
//! that the backends list 5000 tools in all. Figures:
//!
//! * **Heap per 1000 tools held**: magg's anonymous RSS (`RssAnon`: heap, stacks; not its
//!   executable's pages) once every tool is listed, with the added tools less without them, per
//!   1000 tools added. The median of the runs (3, 1 with `--quick`), each with fresh processes.
//! * **Full tools/list walk of the 5000 tools** (all pages, following `nextCursor`) by the
//!   bare client of `raw.rs`, which reads each page's line without parsing it; and one page.
//! * **RSS with 10 backends** after 300 calls spread over them, as measurement 5.
//!
//! The corpus is read from `MAGG_BENCH_TOOLS_CORPUS`, or `../shared/data/` beside the
//! workspace; without it the corpus rows are left out.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Map, Value, json};

use super::{BLOCKS, Magg, Versus, echo_args, magg_args, maggs};
use crate::{
    Env, MAGG_ENV, Options, mib,
    raw::RawServer,
    report::{Budget, Section},
    server,
    stats::{Summary, round2},
    strings,
};

/// Backends of the catalogs, and the tools they list in all once tools are added.
const BACKENDS: usize = 100;
const TOOLS: usize = 5000;
/// Backends of the RSS figure.
const RSS_BACKENDS: usize = 10;
/// Budget of the heap per tool held, in KiB per 1000 tools (1.5 KiB per tool).
const HEAP_BUDGET_KIB: f64 = 1500.0;
/// Budget of a full walk of 5000 tools, p50.
const WALK_BUDGET_MS: f64 = 5.0;
/// Budget of one page of 1000 tools, p50 (`tools/list, 100 backends × 50 tools`).
const PAGE_BUDGET_MS: f64 = 2.0;
/// How long magg may take to list every backend's tools.
pub(super) const LIST_LIMIT: Duration = Duration::from_secs(180);

/// One set of backends magg is started with.
struct Catalog {
    key: &'static str,
    config: PathBuf,
    /// Tool names that must all be listed before measuring.
    expected: Vec<String>,
    /// Tools the backends list in all.
    tools: usize,
    /// Whether its tools/list walk is timed.
    walk: bool,
}

/// What one magg showed with one catalog, per run.
#[derive(Default, Clone)]
struct Held {
    anon_kb: Vec<u64>,
    rss_kb: Vec<u64>,
    listed: usize,
    text_bytes: usize,
    walk: Vec<Duration>,
    page: Vec<Duration>,
}

/// The public tools corpus.
fn corpus_path() -> PathBuf {
    match std::env::var_os("MAGG_BENCH_TOOLS_CORPUS") {
        Some(path) => PathBuf::from(path),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mcp-tools-corpus.json")
        }
    }
}

/// Every tool of the corpus (`servers[].tools[]`), without the corpus's own fields.
fn corpus_tools(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let corpus: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: bad JSON", path.display()))?;
    let tools: Vec<Map<String, Value>> = corpus
        .get("servers")
        .and_then(Value::as_array)
        .with_context(|| format!("{}: no servers array", path.display()))?
        .iter()
        .filter_map(|s| s.get("tools")?.as_array())
        .flatten()
        .filter_map(|t| {
            let mut t = t.as_object()?.clone();
            t.remove("server");
            t.remove("source");
            Some(t)
        })
        .collect();
    ensure!(!tools.is_empty(), "{}: no tools", path.display());
    Ok(tools)
}

/// Writes one `--tools-file` per backend: `count` corpus tools each, taken in turn, renamed
/// where a name is taken (by a built-in tool or one before it). Returns the files and the
/// name of each one's last tool.
fn corpus_files(
    env: &Env,
    corpus: &[Map<String, Value>],
    builtin: &[String],
    count: usize,
) -> Result<Vec<(PathBuf, String)>> {
    let dir = env.work.join("compare-corpus");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    for i in 0..BACKENDS {
        let mut taken: HashSet<String> = builtin.iter().cloned().collect();
        let mut tools = Vec::new();
        for j in 0..count {
            let mut tool = corpus[(i * count + j) % corpus.len()].clone();
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("tool");
            let mut unique = name.to_owned();
            let mut n = 2;
            while taken.contains(&unique) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            taken.insert(unique.clone());
            tool.insert("name".into(), Value::String(unique));
            tools.push(Value::Object(tool));
        }
        let last = tools
            .last()
            .and_then(|t| t.get("name")?.as_str())
            .unwrap_or_default()
            .to_owned();
        let path = dir.join(format!("b{i}.json"));
        let text = serde_json::to_string(&tools)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        files.push((path, last));
    }
    Ok(files)
}

/// The names of a test backend's built-in tools.
async fn builtin_tools(env: &Env) -> Result<Vec<String>> {
    let mut server = RawServer::start(
        "magg-test-backend (built-in tools)",
        &env.backend,
        &strings(&["--name", "count"]),
        &[],
        &env.log("compare-builtin"),
    )
    .await?;
    let names = server.tool_names().await;
    server.shutdown().await;
    names
}

/// The catalogs: built-in tools only, generated tools added, corpus tools added (when the
/// corpus is there; otherwise why not).
async fn catalogs(env: &Env) -> Result<(Vec<Catalog>, Option<String>)> {
    let builtin = builtin_tools(env).await?;
    let per_backend = TOOLS / BACKENDS;
    ensure!(
        builtin.len() < per_backend,
        "the test backend has {} built-in tools, more than {per_backend}",
        builtin.len()
    );
    let extra = per_backend - builtin.len();
    let last_builtin = builtin.last().cloned().unwrap_or_default();
    let catalog = |key, args: &dyn Fn(usize) -> Vec<String>, last: &dyn Fn(usize) -> String| {
        let servers: Vec<(String, Vec<String>)> =
            (0..BACKENDS).map(|i| (format!("b{i}"), args(i))).collect();
        let config = env.write_config(&format!("compare-{key}.json"), &servers)?;
        let expected = (0..BACKENDS).map(|i| format!("b{i}_{}", last(i))).collect();
        anyhow::Ok((config, expected))
    };
    let (config, expected) = catalog("builtin", &|_| Vec::new(), &|_| last_builtin.clone())?;
    let mut list = vec![Catalog {
        key: "builtin",
        config,
        expected,
        tools: BACKENDS * builtin.len(),
        walk: false,
    }];
    let (config, expected) = catalog(
        "generated",
        &|_| strings(&["--tools", &extra.to_string()]),
        &|_| format!("gen_{}", extra - 1),
    )?;
    list.push(Catalog {
        key: "generated",
        config,
        expected,
        tools: TOOLS,
        walk: true,
    });
    let path = corpus_path();
    let corpus = match corpus_tools(&path) {
        Ok(corpus) => corpus,
        Err(e) => return Ok((list, Some(format!("{e:#}")))),
    };
    let files = corpus_files(env, &corpus, &builtin, extra)?;
    let (config, expected) = catalog(
        "corpus",
        &|i| vec!["--tools-file".to_owned(), files[i].0.display().to_string()],
        &|i| files[i].1.clone(),
    )?;
    list.push(Catalog {
        key: "corpus",
        config,
        expected,
        tools: TOOLS,
        walk: true,
    });
    Ok((list, None))
}

/// Lists tools until all of `expected` are there; returns the tools listed.
pub(super) async fn wait_listed(server: &mut RawServer, expected: &[String]) -> Result<Vec<Value>> {
    let deadline = Instant::now() + LIST_LIMIT;
    loop {
        let tools = server.tools().await?;
        let names: HashSet<&str> = tools
            .iter()
            .filter_map(|t| t.get("name")?.as_str())
            .collect();
        if expected.iter().all(|n| names.contains(n.as_str())) {
            return Ok(tools);
        }
        ensure!(
            Instant::now() < deadline,
            "not every backend's tools listed within {LIST_LIMIT:?} ({} tools listed)",
            tools.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts one magg per `maggs` with `config`, in that order.
async fn start_all(
    env: &Env,
    maggs: &[Magg<'_>],
    config: &Path,
    what: &str,
    servers: &mut Vec<RawServer>,
) -> Result<()> {
    for m in maggs {
        let label = format!("magg {} (11, {what})", m.key);
        let log = env.log(&format!("compare-{what}-{}", m.key));
        servers.push(RawServer::start(&label, m.path, &magg_args(config), MAGG_ENV, &log).await?);
    }
    Ok(())
}

async fn shutdown_all(servers: Vec<RawServer>) {
    for server in servers {
        server.shutdown().await;
    }
}

/// One run of `catalog` with every magg side by side: waits until every tool is listed,
/// reads the RSS, times the walks (when `timed`).
async fn run_catalog(
    servers: &mut [RawServer],
    catalog: &Catalog,
    opts: Options,
    timed: bool,
    held: &mut [Held],
) -> Result<()> {
    for (server, h) in servers.iter_mut().zip(held.iter_mut()) {
        let tools = wait_listed(server, &catalog.expected).await?;
        h.listed = tools.len();
        h.text_bytes = tools.iter().map(|t| t.to_string().len()).sum();
    }
    // Let anything freed after the listings settle before reading.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (server, h) in servers.iter().zip(held.iter_mut()) {
        h.anon_kb.push(server::rss_anon_kb(server.pid())?);
        h.rss_kb.push(server::rss_kb(server.pid())?);
    }
    if timed && catalog.walk {
        for server in servers.iter_mut() {
            server.list_latencies(3, true).await?;
        }
        let per_block = opts.list_reps.div_ceil(BLOCKS);
        for _ in 0..BLOCKS {
            for (server, h) in servers.iter_mut().zip(held.iter_mut()) {
                h.walk.extend(server.list_latencies(per_block, true).await?);
                h.page
                    .extend(server.list_latencies(per_block, false).await?);
            }
        }
    }
    Ok(())
}

/// One run of the 10-backend RSS figure with every magg side by side.
async fn run_small(
    env: &Env,
    maggs: &[Magg<'_>],
    opts: Options,
    config: &Path,
    held: &mut [Held],
) -> Result<()> {
    let mut servers = Vec::new();
    let result = async {
        start_all(env, maggs, config, "ten-backends", &mut servers).await?;
        let expected: Vec<String> = (0..RSS_BACKENDS).map(|i| format!("r{i}_echo")).collect();
        let args = echo_args();
        for server in servers.iter_mut() {
            wait_listed(server, &expected).await?;
            for i in 0..opts.rss_calls {
                server.call(&expected[i % RSS_BACKENDS], &args).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (server, h) in servers.iter().zip(held.iter_mut()) {
            h.anon_kb.push(server::rss_anon_kb(server.pid())?);
            h.rss_kb.push(server::rss_kb(server.pid())?);
        }
        anyhow::Ok(())
    }
    .await;
    shutdown_all(servers).await;
    result
}

fn median(values: &[u64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
    }
}

/// Measurement 11.
pub async fn tools(env: &Env, opts: Options) -> Result<Section> {
    let maggs = maggs(env);
    let runs = if opts.quick { 1 } else { 3 };
    eprintln!(
        "magg-bench: 11 tools held before/after: {BACKENDS} backends, {TOOLS} tools, {runs} run(s)"
    );
    let (catalogs, corpus_missing) = catalogs(env).await?;
    let small: Vec<(String, Vec<String>)> = (0..RSS_BACKENDS)
        .map(|i| (format!("r{i}"), Vec::new()))
        .collect();
    let small_config = env.write_config("compare-ten-backends.json", &small)?;
    // held[catalog][magg]; the 10-backend figure last.
    let mut held = vec![vec![Held::default(); maggs.len()]; catalogs.len() + 1];
    for run in 0..runs {
        for (catalog, held) in catalogs.iter().zip(held.iter_mut()) {
            eprintln!("magg-bench: 11 run {}: {} tools", run + 1, catalog.key);
            let mut servers = Vec::new();
            let result = async {
                start_all(env, &maggs, &catalog.config, catalog.key, &mut servers).await?;
                run_catalog(&mut servers, catalog, opts, run == 0, held).await
            }
            .await;
            shutdown_all(servers).await;
            result.with_context(|| format!("catalog {}", catalog.key))?;
        }
        if let Some(held) = held.last_mut() {
            run_small(env, &maggs, opts, &small_config, held).await?;
        }
    }

    let mut s = Section::new(
        "tools_held_compared",
        format!(
            "11. Tools held before/after: magg with {BACKENDS} backends (built-in tools only, then {TOOLS} tools in all: generated, or from the tools corpus); median of {runs} run(s)"
        ),
    );
    let base = &held[0];
    for (catalog, h) in catalogs.iter().zip(&held) {
        let first = &h[0];
        s.line(format!(
            "{}: {} backend tools, {} listed by magg, {:.0} bytes of JSON per tool listed",
            catalog.key,
            catalog.tools,
            first.listed,
            first.text_bytes as f64 / first.listed.max(1) as f64
        ));
    }
    if let Some(why) = &corpus_missing {
        s.line(format!("tools corpus not used: {why}"));
    }
    let mut v = Versus::default();
    v.row(
        "builtin_anon_mib",
        &format!("anonymous RSS, {BACKENDS} backends, built-in tools"),
        "MiB",
        &base
            .iter()
            .map(|h| mib(median(&h.anon_kb) as u64))
            .collect::<Vec<_>>(),
        None,
    );
    for (catalog, h) in catalogs.iter().zip(&held).skip(1) {
        let added = (catalog.tools - catalogs[0].tools) as f64 / 1000.0;
        let per_1000: Vec<f64> = h
            .iter()
            .zip(base)
            .map(|(h, b)| (median(&h.anon_kb) - median(&b.anon_kb)) / added)
            .collect();
        v.row(
            &format!("{}_heap_kib_per_1000_tools", catalog.key),
            &format!("heap per 1000 tools held, {}", catalog.key),
            "KiB",
            &per_1000,
            Some(Budget::AtMost(HEAP_BUDGET_KIB)),
        );
    }
    for (catalog, h) in catalogs.iter().zip(&held).filter(|(c, _)| c.walk) {
        let walk: Vec<f64> = h.iter().map(|h| Summary::of(&h.walk).p50 / 1e3).collect();
        let page: Vec<f64> = h.iter().map(|h| Summary::of(&h.page).p50 / 1e3).collect();
        v.row(
            &format!("{}_walk_p50_ms", catalog.key),
            &format!("full tools/list walk, {TOOLS} {} tools, p50", catalog.key),
            "ms",
            &walk,
            Some(Budget::AtMost(WALK_BUDGET_MS)),
        );
        v.row(
            &format!("{}_page_p50_ms", catalog.key),
            &format!("one page (1000 {} tools), p50", catalog.key),
            "ms",
            &page,
            (catalog.key == "generated").then_some(Budget::AtMost(PAGE_BUDGET_MS)),
        );
    }
    if let Some(small) = held.last() {
        v.row(
            "ten_backends_rss_mib",
            &format!("RSS, {RSS_BACKENDS} backends"),
            "MiB",
            &small
                .iter()
                .map(|h| mib(median(&h.rss_kb) as u64))
                .collect::<Vec<_>>(),
            Some(Budget::AtMost(15.0)),
        );
        v.row(
            "ten_backends_anon_mib",
            &format!("anonymous RSS, {RSS_BACKENDS} backends"),
            "MiB",
            &small
                .iter()
                .map(|h| mib(median(&h.anon_kb) as u64))
                .collect::<Vec<_>>(),
            None,
        );
    }
    v.write(
        &mut s,
        "magg's own process; walks by the bare client (pages read as text, not parsed):",
    );
    let keys = catalogs
        .iter()
        .map(|c| c.key)
        .chain(std::iter::once("ten_backends"));
    for (key, h) in keys.zip(&held) {
        let data: Map<String, Value> = maggs
            .iter()
            .zip(h)
            .map(|(m, h)| {
                let value = json!({
                    "rss_anon_kb": h.anon_kb,
                    "rss_kb": h.rss_kb,
                    "tools_listed": h.listed,
                    "json_bytes_listed": h.text_bytes,
                    "walk": Summary::of(&h.walk).to_json(),
                    "page": Summary::of(&h.page).to_json(),
                });
                (m.key.to_owned(), value)
            })
            .collect();
        s.data(key, Value::Object(data));
    }
    s.data("runs", json!(runs));
    s.data(
        "heap_budget_kib_per_1000_tools",
        json!(round2(HEAP_BUDGET_KIB)),
    );
    Ok(s)
}
