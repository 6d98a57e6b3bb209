//! Measurement 22: a stateless (protocol 2026-07-28) tools/call with one `input_required` round,
//! through `magg serve --http` and straight to the backend. The backend is magg-test-backend
//! with `--modern`, whose `elicit` answers `input_required` (an elicitation) and, called again
//! with the answer, completes: straight over its own streamable HTTP server, and through magg
//! on stdio (magg passes the `input_required` result and the retry through). Timed from the
//! first request's write to the end of the second's response, on one kept-alive HTTP/1.1
//! connection.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::{
    Env, MAGG_ENV, Options,
    keepalive::{Client, Listening, free_port, serve_http_args},
    report::Section,
    stats::Summary,
    table_row,
};

/// Untimed rounds before the timed ones.
const WARMUP: usize = 30;

/// The per-request metadata of protocol 2026-07-28.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "magg-bench", "version": env!("CARGO_PKG_VERSION")},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    })
}

/// One round: the call, its `input_required`, and the retry with the answer.
async fn round(client: &mut Client, tool: &str) -> Result<()> {
    let params = json!({"name": tool, "arguments": {"mode": "form"}, "_meta": meta()});
    let asked = client.request("tools/call", params.clone()).await?;
    let result = &asked["result"];
    ensure!(
        result["resultType"] == json!("input_required"),
        "{tool}: expected input_required, got {asked}"
    );
    let mut retry = params;
    retry["inputResponses"] = json!({"answer": {"action": "accept", "content": {"name": "bench"}}});
    if let Some(state) = result.get("requestState") {
        retry["requestState"] = state.clone();
    }
    let done = client.request("tools/call", retry).await?;
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    ensure!(text.starts_with("elicited: accept"), "{tool}: {done}");
    Ok(())
}

/// `rounds` timed rounds after the warm-up, on one connection to `addr`.
async fn time(addr: SocketAddr, tool: &str, rounds: usize) -> Result<Vec<Duration>> {
    let mut client = Client::stateless(addr).await?;
    for _ in 0..WARMUP {
        round(&mut client, tool).await?;
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        round(&mut client, tool).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Measurement 22.
pub async fn eras(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 22 stateless input_required round (magg vs the backend's own HTTP)");
    let rounds = (opts.calls / 10).max(20);

    let port = free_port()?;
    let args = ["--name", "m", "--modern", "--http"]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("127.0.0.1:{port}")])
        .collect::<Vec<_>>();
    let direct = Listening::start(
        env,
        "magg-test-backend --modern --http",
        "modern-http",
        &env.backend,
        &args,
        &[],
        port,
    )
    .await?;
    let direct_samples = time(direct.addr, "elicit", rounds).await;
    direct.stop().await;
    let direct_samples = direct_samples?;

    let config = env.work.join("eras.json");
    let text = serde_json::to_string_pretty(&json!({"servers": {"m": {
        "source": "bench",
        "prefix": "m",
        "command": env.backend,
        "args": ["--name", "m", "--modern"],
    }}}))?;
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let magg = Listening::start(
        env,
        "magg --http (modern backend on stdio)",
        "magg-eras",
        &env.magg,
        &serve_http_args(port, &config),
        MAGG_ENV,
        port,
    )
    .await?;
    let magg_samples = time(magg.addr, "m_elicit", rounds).await;
    magg.stop().await;
    let magg_samples = magg_samples?;

    let (d, m) = (Summary::of(&direct_samples), Summary::of(&magg_samples));
    let mut s = Section::new(
        "stateless_round",
        format!(
            "22. Stateless tools/call with one input_required round (two requests), {rounds} \
             rounds on one HTTP/1.1 connection after {WARMUP} warm-up"
        ),
    );
    s.line(crate::TABLE_HEAD);
    s.line(table_row("backend HTTP", &d));
    s.line(table_row("through magg", &m));
    s.line("(magg-test-backend --modern: its own streamable HTTP vs magg serve --http with it on stdio)");
    s.figure(
        "direct_p50_us",
        "the backend's HTTP, p50",
        d.p50,
        "µs",
        None,
    );
    s.figure("magg_p50_us", "through magg, p50", m.p50, "µs", None);
    s.figure(
        "added_p50_us",
        "added p50 per round (magg − backend)",
        m.p50 - d.p50,
        "µs",
        None,
    );
    s.figure(
        "p50_ratio",
        "p50 ratio (magg / backend)",
        m.p50 / d.p50,
        "×",
        None,
    );
    s.data("direct", d.to_json());
    s.data("magg", m.to_json());
    Ok(s)
}
