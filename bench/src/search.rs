//! Measurement 15: `magg_search_servers` with its four bundled search providers (the MCP
//! Registry, Glama, GitHub, npm), each pointed at a local replay server that answers with the
//! tests' recorded responses after a delay of its own (50, 100, 150 and 200 ms). The providers
//! are asked at once, so a search should take about as long as the slowest source, not the sum
//! of all four. The same with no delays gives magg's own cost of a search (four plugin calls,
//! four HTTP round trips on loopback, the merge).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Env, MAGG_ENV, Options,
    report::{Budget, Section},
    server::Server,
    stats::{Summary, round2},
};

/// Each provider, the path it asks and the recorded answer.
const SOURCES: [(&str, &str, &str); 4] = [
    (
        "mcp-registry",
        "/v0.1/servers",
        include_str!("../../tests/fixtures/replay/mcp-registry-v0.1-servers.json"),
    ),
    (
        "glama-search",
        "/api/mcp/v1/servers",
        include_str!("../../tests/fixtures/replay/glama-servers.json"),
    ),
    (
        "github-search",
        "/search/repositories",
        include_str!("../../tests/fixtures/replay/github-search-repositories.json"),
    ),
    (
        "npm-search",
        "/-/v1/search",
        include_str!("../../tests/fixtures/replay/npm-search.json"),
    ),
];

/// The delay of each source, in the order of [`SOURCES`].
const DELAYS_MS: [u64; 4] = [50, 100, 150, 200];

fn searches(opts: Options) -> usize {
    if opts.quick { 10 } else { 40 }
}

/// Measurement 15.
pub async fn search(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 15 search: four sources replayed with delays, asked at once");
    let n = searches(opts);
    let instant = measure(env, [0; 4], n, "search-instant").await?;
    let delayed = measure(env, DELAYS_MS, n, "search-delayed").await?;
    let slowest = *DELAYS_MS.iter().max().unwrap_or(&0) as f64 * 1000.0;
    let sum = DELAYS_MS.iter().sum::<u64>() as f64 * 1000.0;

    let mut s = Section::new(
        "search",
        format!(
            "15. magg_search_servers with 4 sources replayed on loopback, {n} searches each: \
             sources answering at once, and after {DELAYS_MS:?} ms"
        ),
    );
    s.line(format!(
        "no delays:        p50 {:>8.1} ms   p90 {:>8.1} ms",
        instant.p50 / 1000.0,
        instant.p90 / 1000.0
    ));
    s.line(format!(
        "delays {:?} ms: p50 {:>8.1} ms   p90 {:>8.1} ms   (slowest source {} ms, sum {} ms)",
        DELAYS_MS,
        delayed.p50 / 1000.0,
        delayed.p90 / 1000.0,
        slowest / 1000.0,
        sum / 1000.0
    ));
    s.figure(
        "instant_p50_ms",
        "search p50, sources answering at once",
        instant.p50 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "delayed_p50_ms",
        "search p50, sources delayed 50-200 ms",
        delayed.p50 / 1000.0,
        "ms",
        None,
    );
    s.figure(
        "ratio_to_slowest",
        "search p50 / slowest source's delay",
        round2(delayed.p50 / slowest),
        "x",
        Some(Budget::AtMost(1.25)),
    );
    s.figure(
        "ratio_to_sum",
        "search p50 / sum of the delays",
        round2(delayed.p50 / sum),
        "x",
        Some(Budget::AtMost(0.5)),
    );
    s.data("instant", instant.to_json());
    s.data("delayed", delayed.to_json());
    s.data("delays_ms", json!(DELAYS_MS));
    Ok(s)
}

/// Starts the replay servers and a magg asking them, and times `n` searches after two
/// untimed ones.
async fn measure(env: &Env, delays: [u64; 4], n: usize, name: &str) -> Result<Summary> {
    let mut replays = Vec::new();
    for ((_, path, body), delay) in SOURCES.iter().zip(delays) {
        replays.push(Replay::start(path, body, Duration::from_millis(delay)).await?);
    }
    let mut plugins = Map::new();
    for ((plugin, _, _), replay) in SOURCES.iter().zip(&replays) {
        plugins.insert(
            (*plugin).to_owned(),
            json!({
                "settings": {"base_url": format!("http://127.0.0.1:{}", replay.port)},
                "allow_hosts": [format!("127.0.0.1:{}", replay.port)],
            }),
        );
    }
    let config = env.work.join(format!("{name}.json"));
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&json!({"servers": {}, "plugins": plugins}))?,
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let magg = env
        .start_magg_with((), MAGG_ENV, "magg (4 search sources)", name, &config)
        .await?;
    let result = time_searches(&magg, n).await;
    magg.shutdown().await;
    drop(replays);
    result
}

async fn time_searches(magg: &Server, n: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 2 {
        let started = Instant::now();
        let out = search_once(magg).await?;
        let took = started.elapsed();
        if i == 0 {
            // Every source must have answered: a failing one would make the figure meaningless.
            let sources = out["sources"].as_object().cloned().unwrap_or_default();
            for (plugin, _, _) in SOURCES {
                ensure!(
                    sources
                        .get(plugin)
                        .and_then(|s| s["results"].as_u64())
                        .is_some_and(|n| n > 0),
                    "{plugin} found nothing (is magg built with its bundled plugins?): {out}"
                );
            }
        }
        if i >= 2 {
            samples.push(took);
        }
    }
    Ok(Summary::of(&samples))
}

async fn search_once(magg: &Server) -> Result<Value> {
    let mut args = Map::new();
    args.insert("query".into(), json!("time"));
    args.insert("limit".into(), json!(10));
    let result = magg
        .peer()
        .call_tool(CallToolRequestParams::new("magg_search_servers").with_arguments(args))
        .await
        .context("magg_search_servers failed")?;
    if result.is_error == Some(true) {
        bail!(
            "magg_search_servers returned an error: {:?}",
            result.content
        );
    }
    let body = result
        .structured_content
        .context("magg_search_servers returned no structured content")?;
    Ok(body["output"].clone())
}

/// A loopback HTTP server answering every request with one JSON body after a delay.
struct Replay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replay {
    async fn start(path: &'static str, body: &'static str, delay: Duration) -> Result<Replay> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a replay server")?;
        let port = listener.local_addr()?.port();
        let answer: Arc<str> = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, path, answer.clone(), delay));
            }
        });
        Ok(Replay { port, task })
    }
}

/// Answers the requests of one kept-alive connection; a path other than `path` gets 404.
async fn serve(mut socket: tokio::net::TcpStream, path: &str, answer: Arc<str>, delay: Duration) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let target = head.split(' ').nth(1).unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let reply: &[u8] = if target.starts_with(path) {
            answer.as_bytes()
        } else {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        };
        if socket.write_all(reply).await.is_err() {
            return;
        }
    }
}
