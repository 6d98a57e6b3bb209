//! Measurement 20: tool search (`tool_search`, `magg_search_tools`).
//!
//! - **Quality**: the public tools corpus (`mcp-tools-corpus.json`, 430 tools of 29 servers,
//!   read at run time from `MAGG_BENCH_TOOLS_CORPUS` or `../shared/data/` beside the
//!   workspace) indexed under each server's prefix, and the 100 labeled requests of
//!   `bench/data/tool-search-queries.json` ranked against it: recall@1 and recall@5 (the share
//!   of a query's right tools among the first k, out of at most k), and the mean reciprocal rank
//!   of the first right tool, for a plain BM25 (one field of the exposed name, description and
//!   parameter names and descriptions; lowercase words split at anything not a letter or digit;
//!   k1 1.2, b 0.75) and for magg's ranking (`magg::search`).
//! - **tools/list bytes** with the corpus mounted (29 `magg-test-backend --only-file-tools`
//!   backends, each serving its server's tools under its prefix): every page of tools/list,
//!   search off and on.
//! - **Latency with 5000 tools**: the index alone, in process (corpus tools copied under
//!   other server names up to 5000: build time, heap per tool, p50/p99 of a query), and
//!   through magg end to end: 100 backends serving 50 corpus tools each, `magg_search_tools`
//!   called by the bare JSON-RPC client, against a plain call of one backend tool (budget:
//!   search over 5000 tools ≤ 1 ms p50).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use magg::search::{Doc, Index, schema_text};
use serde_json::{Map, Value, json};

use crate::{
    Env, MAGG_ENV, Options,
    raw::RawServer,
    report::{Budget, Section},
    stats::{Summary, round2},
};

/// Tools for the latency figures.
const TOOLS: usize = 5000;
/// Backends serving them through magg.
const BACKENDS: usize = 100;
/// The search budget, p50 µs.
const BUDGET_US: f64 = 1000.0;

/// One tool of the corpus.
struct CorpusTool {
    server: String,
    prefix: String,
    name: String,
    json: Map<String, Value>,
}

impl CorpusTool {
    fn exposed(&self) -> String {
        format!("{}_{}", self.prefix, self.name)
    }
}

/// One labeled request.
struct Query {
    text: String,
    tools: Vec<String>,
}

fn corpus_path() -> PathBuf {
    match std::env::var_os("MAGG_BENCH_TOOLS_CORPUS") {
        Some(path) => PathBuf::from(path),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mcp-tools-corpus.json")
        }
    }
}

fn queries_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tool-search-queries.json")
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: bad JSON", path.display()))
}

/// Every tool of the corpus, without the corpus's own fields, with its server and prefix.
fn corpus(path: &Path) -> Result<Vec<CorpusTool>> {
    let corpus = read_json(path)?;
    let mut out = Vec::new();
    for server in corpus
        .get("servers")
        .and_then(Value::as_array)
        .with_context(|| format!("{}: no servers array", path.display()))?
    {
        let name = server["name"].as_str().unwrap_or_default().to_owned();
        let prefix = server["prefix"].as_str().unwrap_or(&name).to_owned();
        for tool in server["tools"].as_array().into_iter().flatten() {
            let Some(mut json) = tool.as_object().cloned() else {
                continue;
            };
            json.remove("server");
            json.remove("source");
            out.push(CorpusTool {
                server: name.clone(),
                prefix: prefix.clone(),
                name: tool["name"].as_str().unwrap_or_default().to_owned(),
                json,
            });
        }
    }
    ensure!(!out.is_empty(), "{}: no tools", path.display());
    Ok(out)
}

fn queries(path: &Path) -> Result<Vec<Query>> {
    let file = read_json(path)?;
    let queries: Vec<Query> = file["queries"]
        .as_array()
        .with_context(|| format!("{}: no queries array", path.display()))?
        .iter()
        .map(|q| Query {
            text: q["query"].as_str().unwrap_or_default().to_owned(),
            tools: q["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        })
        .collect();
    ensure!(!queries.is_empty(), "{}: no queries", path.display());
    Ok(queries)
}

/// The documents of `tools` as magg's index reads them, each server renamed by `copy` (0:
/// itself) so that copies are distinct tools.
fn docs(tools: &[CorpusTool], copy: usize) -> Vec<Doc> {
    tools
        .iter()
        .map(|t| {
            let (server, prefix) = if copy == 0 {
                (t.server.clone(), t.prefix.clone())
            } else {
                (format!("{}{copy}", t.server), format!("{}{copy}", t.prefix))
            };
            Doc::of_tool(
                &t.name,
                &server,
                Some(&prefix),
                &Value::Object(t.json.clone()),
            )
        })
        .collect()
}

/// A plain BM25 over one field, the baseline.
struct PlainBm25 {
    postings: HashMap<String, Vec<(usize, f32)>>,
    lengths: Vec<f32>,
    average: f32,
}

impl PlainBm25 {
    const K1: f32 = 1.2;
    const B: f32 = 0.75;

    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    fn build(tools: &[CorpusTool]) -> PlainBm25 {
        let mut postings: HashMap<String, Vec<(usize, f32)>> = HashMap::new();
        let mut lengths = Vec::new();
        for (doc, tool) in tools.iter().enumerate() {
            let json = Value::Object(tool.json.clone());
            let text = format!(
                "{} {} {}",
                tool.exposed(),
                json["description"].as_str().unwrap_or_default(),
                json.get("inputSchema").map(schema_text).unwrap_or_default()
            );
            let words = Self::words(&text);
            lengths.push(words.len() as f32);
            for word in words {
                let list = postings.entry(word).or_default();
                match list.last_mut() {
                    Some((d, tf)) if *d == doc => *tf += 1.0,
                    _ => list.push((doc, 1.0)),
                }
            }
        }
        let average = lengths.iter().sum::<f32>() / lengths.len().max(1) as f32;
        PlainBm25 {
            postings,
            lengths,
            average,
        }
    }

    fn search(&self, query: &str, limit: usize) -> Vec<usize> {
        let n = self.lengths.len() as f32;
        let mut scores: HashMap<usize, f32> = HashMap::new();
        let mut words = Self::words(query);
        words.sort();
        words.dedup();
        for word in words {
            let Some(list) = self.postings.get(&word) else {
                continue;
            };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let norm = 1.0 - Self::B + Self::B * self.lengths[doc] / self.average;
                *scores.entry(doc).or_default() +=
                    idf * tf * (Self::K1 + 1.0) / (tf + Self::K1 * norm);
            }
        }
        let mut ranked: Vec<(usize, f32)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.into_iter().take(limit).map(|(d, _)| d).collect()
    }
}

/// recall@1, recall@5 and MRR@10 of the rankings (exposed names, best first) against the
/// queries' labels.
fn quality(queries: &[Query], ranked: &[Vec<String>]) -> (f64, f64, f64) {
    let recall = |k: usize| {
        queries
            .iter()
            .zip(ranked)
            .map(|(q, r)| {
                let hits = r.iter().take(k).filter(|n| q.tools.contains(n)).count();
                hits as f64 / q.tools.len().min(k) as f64
            })
            .sum::<f64>()
            / queries.len() as f64
    };
    let mrr = queries
        .iter()
        .zip(ranked)
        .map(|(q, r)| {
            r.iter()
                .take(10)
                .position(|n| q.tools.contains(n))
                .map_or(0.0, |i| 1.0 / (i + 1) as f64)
        })
        .sum::<f64>()
        / queries.len() as f64;
    (recall(1), recall(5), mrr)
}

/// Measurement 20.
pub async fn tool_search(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 20 tool search: quality, tools/list bytes, latency at 5000 tools");
    let mut section = Section::new("tool_search", "20. Tool search (tool_search)");
    let tools = corpus(&corpus_path())?;
    let queries = queries(&queries_path())?;

    // Quality.
    let names: Vec<String> = tools.iter().map(CorpusTool::exposed).collect();
    let index = Index::build(&docs(&tools, 0));
    let magg_ranked: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            index
                .search(&q.text, 10, |_| true)
                .into_iter()
                .map(|h| names[h.doc as usize].clone())
                .collect()
        })
        .collect();
    let plain = PlainBm25::build(&tools);
    let plain_ranked: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            plain
                .search(&q.text, 10)
                .into_iter()
                .map(|d| names[d].clone())
                .collect()
        })
        .collect();
    let (p1, p5, pmrr) = quality(&queries, &plain_ranked);
    let (m1, m5, mmrr) = quality(&queries, &magg_ranked);
    section.line(format!(
        "{} labeled requests over {} tools of the public corpus:",
        queries.len(),
        tools.len()
    ));
    section.line("                recall@1   recall@5   MRR@10".to_owned());
    section.line(format!(
        "plain BM25      {p1:>8.2}   {p5:>8.2}   {pmrr:>6.2}"
    ));
    section.line(format!(
        "magg            {m1:>8.2}   {m5:>8.2}   {mmrr:>6.2}"
    ));
    section.figure(
        "recall_at_1_bm25",
        "recall@1, plain BM25",
        round2(p1),
        "",
        None,
    );
    section.figure(
        "recall_at_5_bm25",
        "recall@5, plain BM25",
        round2(p5),
        "",
        None,
    );
    section.figure("recall_at_1", "recall@1, magg", round2(m1), "", None);
    section.figure("recall_at_5", "recall@5, magg", round2(m5), "", None);
    let missed: Vec<Value> = queries
        .iter()
        .zip(&magg_ranked)
        .filter(|(q, r)| !r.iter().take(5).any(|n| q.tools.contains(n)))
        .map(|(q, r)| json!({"query": q.text, "want": q.tools, "got": r.iter().take(5).collect::<Vec<_>>()}))
        .collect();
    section.data("missed_at_5", Value::Array(missed));

    // The index alone, 5000 tools.
    let mut big = Vec::new();
    let mut copy = 0;
    while big.len() < TOOLS {
        big.extend(docs(&tools, copy));
        copy += 1;
    }
    big.truncate(TOOLS);
    let started = Instant::now();
    let index = Index::build(&big);
    let build = started.elapsed();
    let rounds = if opts.quick { 5 } else { 20 };
    let mut samples = Vec::new();
    for _ in 0..rounds {
        for q in &queries {
            let started = Instant::now();
            let hits = index.search(&q.text, 5, |_| true);
            samples.push(started.elapsed());
            std::hint::black_box(hits);
        }
    }
    let alone = Summary::of(&samples);
    let per_tool = index.heap_bytes() as f64 / TOOLS as f64;
    section.line(format!(
        "index of {TOOLS} tools: built in {:.1} ms, {:.0} bytes per tool; a query p50 {:.1} µs, p99 {:.1} µs",
        build.as_secs_f64() * 1e3,
        per_tool,
        alone.p50,
        alone.p99
    ));
    section.figure(
        "index_build_ms",
        "index build, 5000 tools",
        round2(build.as_secs_f64() * 1e3),
        "ms",
        None,
    );
    section.figure(
        "index_bytes_per_tool",
        "index heap per tool",
        per_tool.round(),
        "B",
        None,
    );
    section.figure(
        "index_query_p50_us",
        "query p50, index alone",
        round2(alone.p50),
        "µs",
        Some(Budget::AtMost(BUDGET_US)),
    );
    section.figure(
        "index_query_p99_us",
        "query p99, index alone",
        round2(alone.p99),
        "µs",
        None,
    );
    section.data("index_query", alone.to_json());

    // tools/list bytes with the corpus mounted.
    let (off, on) = list_bytes(env, &tools).await?;
    section.line(format!(
        "tools/list with the corpus mounted ({} tools): {off} bytes with search off, {on} bytes on ({:.1}%)",
        tools.len(),
        on as f64 * 100.0 / off.max(1) as f64
    ));
    section.figure(
        "list_bytes_off",
        "tools/list bytes, search off",
        off as f64,
        "B",
        None,
    );
    section.figure(
        "list_bytes_on",
        "tools/list bytes, search on",
        on as f64,
        "B",
        None,
    );

    // Through magg, 5000 tools.
    let (search, call) = through_magg(env, opts, &tools, &queries).await?;
    section.line(format!(
        "through magg, {TOOLS} tools: magg_search_tools p50 {:.1} µs, p99 {:.1} µs; a backend tool's call p50 {:.1} µs",
        search.p50, search.p99, call.p50
    ));
    section.figure(
        "search_p50_us",
        "magg_search_tools p50, 5000 tools",
        round2(search.p50),
        "µs",
        Some(Budget::AtMost(BUDGET_US)),
    );
    section.figure(
        "search_p99_us",
        "magg_search_tools p99, 5000 tools",
        round2(search.p99),
        "µs",
        None,
    );
    section.figure(
        "call_p50_us",
        "a backend tool's call p50 (for scale)",
        round2(call.p50),
        "µs",
        None,
    );
    section.data("search", search.to_json());
    section.data("call", call.to_json());
    Ok(section)
}

/// Writes a `--tools-file` for each group of tools; returns the paths.
fn write_files(env: &Env, dir: &str, groups: &[Vec<Value>]) -> Result<Vec<PathBuf>> {
    let dir = env.work.join(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    groups
        .iter()
        .enumerate()
        .map(|(i, tools)| {
            let path = dir.join(format!("b{i}.json"));
            std::fs::write(&path, serde_json::to_string(tools)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// A magg config of one `--only-file-tools` backend per `(name, prefix, file)`, with `settings`.
fn write_config(
    env: &Env,
    file: &str,
    servers: &[(String, String, PathBuf)],
    settings: Value,
) -> Result<PathBuf> {
    let mut map = Map::new();
    for (name, prefix, tools) in servers {
        map.insert(
            name.clone(),
            json!({
                "source": "bench",
                "prefix": prefix,
                "command": env.backend,
                "args": ["--name", name, "--only-file-tools", "--tools-file", tools],
            }),
        );
    }
    let mut config = json!({"servers": map});
    if let (Some(config), Some(settings)) = (config.as_object_mut(), settings.as_object()) {
        config.extend(settings.clone());
    }
    let path = env.work.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

async fn start_magg(env: &Env, label: &str, config: &Path) -> Result<RawServer> {
    let args = [
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ];
    RawServer::start(label, &env.magg, &args, MAGG_ENV, &env.log(label)).await
}

/// The bytes of every tools/list page.
async fn listed_bytes(magg: &mut RawServer) -> Result<usize> {
    let mut bytes = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let params = cursor.take().map(|c| json!({ "cursor": c }));
        let line = magg.request("tools/list", params).await?;
        bytes += line.trim_end().len();
        let reply: Value = serde_json::from_str(line).context("tools/list: bad JSON")?;
        match reply["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(bytes),
        }
    }
    anyhow::bail!("tools/list: more than 10000 pages")
}

/// Waits until `magg_search_tools` searches `count` tools.
async fn wait_searched(magg: &mut RawServer, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = magg
            .call("magg_search_tools", &json!({"query": "file"}))
            .await?;
        let reply: Value = serde_json::from_str(line).context("search: bad JSON")?;
        let searched = reply["result"]["structuredContent"]["output"]["searched"]
            .as_u64()
            .unwrap_or(0) as usize;
        if searched >= count {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "magg searched {searched} of {count} tools after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// tools/list bytes with the corpus mounted, search off and on.
async fn list_bytes(env: &Env, tools: &[CorpusTool]) -> Result<(usize, usize)> {
    let mut servers: Vec<(String, String)> = Vec::new();
    let mut groups: Vec<Vec<Value>> = Vec::new();
    for tool in tools {
        if servers.last().map(|(s, _)| s) != Some(&tool.server) {
            servers.push((tool.server.clone(), tool.prefix.clone()));
            groups.push(Vec::new());
        }
        if let Some(group) = groups.last_mut() {
            group.push(Value::Object(tool.json.clone()));
        }
    }
    let files = write_files(env, "tool-search-corpus", &groups)?;
    let servers: Vec<(String, String, PathBuf)> = servers
        .into_iter()
        .zip(files)
        .map(|((s, p), f)| (s, p, f))
        .collect();
    let mut bytes = Vec::new();
    for mode in ["off", "on"] {
        let config = write_config(
            env,
            &format!("tool-search-{mode}.json"),
            &servers,
            json!({"tool_search": mode}),
        )?;
        let mut magg = start_magg(env, &format!("magg-tool-search-{mode}"), &config).await?;
        let result = async {
            if mode == "on" {
                wait_searched(&mut magg, tools.len()).await?;
            } else {
                let deadline = Instant::now() + Duration::from_secs(120);
                while magg.tool_names().await?.len() < tools.len() {
                    ensure!(
                        Instant::now() < deadline,
                        "the corpus was not listed within 120 s"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            listed_bytes(&mut magg).await
        }
        .await;
        magg.shutdown().await;
        bytes.push(result?);
    }
    Ok((bytes[0], bytes[1]))
}

/// `magg_search_tools` over 5000 tools through magg, and a plain call for scale.
async fn through_magg(
    env: &Env,
    opts: Options,
    tools: &[CorpusTool],
    queries: &[Query],
) -> Result<(Summary, Summary)> {
    let per = TOOLS / BACKENDS;
    let groups: Vec<Vec<Value>> = (0..BACKENDS)
        .map(|i| {
            let mut seen = std::collections::HashSet::new();
            (0..per)
                .map(|j| {
                    let tool = &tools[(i * per + j) % tools.len()];
                    let mut json = tool.json.clone();
                    let mut name = tool.name.clone();
                    let mut n = 2;
                    while !seen.insert(name.clone()) {
                        name = format!("{}_{n}", tool.name);
                        n += 1;
                    }
                    json.insert("name".into(), json!(name));
                    Value::Object(json)
                })
                .collect()
        })
        .collect();
    let files = write_files(env, "tool-search-5000", &groups)?;
    let servers: Vec<(String, String, PathBuf)> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| (format!("b{i}"), format!("b{i}"), f))
        .collect();
    let config = write_config(
        env,
        "tool-search-5000.json",
        &servers,
        json!({"tool_search": "on"}),
    )?;
    let mut magg = start_magg(env, "magg-tool-search-5000", &config).await?;
    let result = async {
        wait_searched(&mut magg, TOOLS).await?;
        let first = groups[0][0]["name"].as_str().unwrap_or_default();
        let plain_tool = format!("b0_{first}");
        let calls = if opts.quick { 200 } else { 1000 };
        let mut searches = Vec::new();
        let mut plain = Vec::new();
        for i in 0..calls + 50 {
            let query = &queries[i % queries.len()].text;
            let started = Instant::now();
            magg.call("magg_search_tools", &json!({"query": query}))
                .await?;
            let search = started.elapsed();
            let started = Instant::now();
            magg.call(&plain_tool, &json!({"value": "x"})).await?;
            let call = started.elapsed();
            if i >= 50 {
                searches.push(search);
                plain.push(call);
            }
        }
        Ok((Summary::of(&searches), Summary::of(&plain)))
    }
    .await;
    magg.shutdown().await;
    result
}
