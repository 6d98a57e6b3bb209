//! Measurement 18: what traces cost a call. tools/call of `echo` by the bare JSON-RPC client,
//! sequentially, straight to a `magg-test-backend` and through four maggs over the same kind of
//! backend: tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`), on with every call sampled
//! (`always_on`), on with one call in ten sampled (`traceidratio` 0.1), and, with
//! `--baseline`, the baseline magg. Tracing on exports over OTLP/HTTP to a sink in this process
//! that reads each request and answers `200 OK`. The calls go in rounds of
//! [`ROUND`] to each server in turn, so that drift of the machine's load spreads over all of
//! them alike, each round starting with the next server. Figures: the added p50 of each, the
//! CPU time each magg process spent per call (steadier than latency on a busy machine), and
//! what tracing adds over off (budget for tracing off: nothing measurable, here ≤ 5 µs over the
//! baseline magg when one is given).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpListener,
};

use crate::{
    Env, MAGG_ENV, Options,
    raw::RawServer,
    report::{Budget, Section},
    server::cpu_ns as cpu_ns_of,
    stats::Summary,
};

/// Calls to each server per round.
const ROUND: usize = 100;

/// What tracing off may add over the baseline magg, in µs of p50: below what the machine's
/// noise lets one measure.
const OFF_BUDGET_US: f64 = 5.0;

/// A magg measured: its label, its binary and its environment.
type Variant<'a> = (&'a str, &'a Path, Vec<(&'a str, &'a str)>);

/// Measurement 18.
pub async fn tracing_cost(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 18 tracing: added p50 per call, off and on");
    let sink = Sink::start().await?;
    let config = env.write_config("tracing.json", &[("tb".to_owned(), Vec::new())])?;
    let endpoint = sink.endpoint.clone();
    let exporting = |sampler: &'static str, arg: &'static str| {
        let mut vars = MAGG_ENV.to_vec();
        vars.extend([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", sampler),
            ("OTEL_TRACES_SAMPLER_ARG", arg),
        ]);
        vars
    };
    let always = exporting("always_on", "1");
    let ratio = exporting("traceidratio", "0.1");
    let mut variants: Vec<Variant> = vec![
        ("tracing off", &env.magg, MAGG_ENV.to_vec()),
        ("on, always_on", &env.magg, always),
        ("on, ratio 0.1", &env.magg, ratio),
    ];
    if let Some(baseline) = &env.baseline {
        variants.push(("baseline magg", baseline, MAGG_ENV.to_vec()));
    }

    let mut servers = Vec::new();
    let started = async {
        servers.push(
            RawServer::start(
                "magg-test-backend (direct)",
                &env.backend,
                &["--name".to_owned(), "tb".to_owned()],
                &[],
                &env.log("tracing-direct"),
            )
            .await?,
        );
        for (i, (label, program, vars)) in variants.iter().enumerate() {
            let args = [
                "serve".to_owned(),
                "--config".to_owned(),
                config.display().to_string(),
            ];
            let log = env.log(&format!("tracing-magg-{i}"));
            servers.push(RawServer::start(label, program, &args, vars, &log).await?);
        }
        anyhow::Ok(())
    }
    .await;
    let measured = match started {
        Ok(()) => measure(&mut servers, opts).await,
        Err(e) => Err(e),
    };
    for server in servers {
        server.shutdown().await;
    }
    let Measured { latencies, cpu_ns } = measured?;
    let samples = latencies;
    let exported = sink.requests.load(Ordering::Relaxed);
    let calls = samples[0].len().max(1) as f64;
    let cpu_us = |i: usize| cpu_ns[i] as f64 / calls / 1000.0;

    let summaries: Vec<Summary> = samples.iter().map(|s| Summary::of(s)).collect();
    let direct = summaries[0];
    let mut s = Section::new(
        "tracing",
        format!(
            "18. Tracing: tools/call of echo by the bare client ({} calls each, in rounds of \
             {ROUND}), direct vs magg with tracing off and on (OTLP/HTTP to a local sink)",
            samples[0].len()
        ),
    );
    s.line(format!("{}   CPU µs/call", crate::TABLE_HEAD));
    s.line(format!(
        "{}  {:>9.1}",
        crate::table_row("direct", &direct),
        cpu_us(0)
    ));
    for (i, ((label, ..), summary)) in variants.iter().zip(&summaries[1..]).enumerate() {
        s.line(format!(
            "{}  {:>9.1}",
            crate::table_row(label, summary),
            cpu_us(i + 1)
        ));
    }
    let added = |i: usize| summaries[i].p50 - direct.p50;
    s.figure(
        "off_added_p50_us",
        "added p50, tracing off",
        added(1),
        "µs",
        None,
    );
    s.figure(
        "always_added_p50_us",
        "added p50, tracing on (always_on)",
        added(2),
        "µs",
        None,
    );
    s.figure(
        "ratio_added_p50_us",
        "added p50, tracing on (ratio 0.1)",
        added(3),
        "µs",
        None,
    );
    s.figure(
        "always_over_off_p50_us",
        "tracing on (always_on) over off, p50",
        summaries[2].p50 - summaries[1].p50,
        "µs",
        None,
    );
    s.figure(
        "ratio_over_off_p50_us",
        "tracing on (ratio 0.1) over off, p50",
        summaries[3].p50 - summaries[1].p50,
        "µs",
        None,
    );
    s.figure(
        "always_cpu_over_off_us",
        "tracing on (always_on) over off, magg CPU per call",
        cpu_us(2) - cpu_us(1),
        "µs",
        None,
    );
    s.figure(
        "ratio_cpu_over_off_us",
        "tracing on (ratio 0.1) over off, magg CPU per call",
        cpu_us(3) - cpu_us(1),
        "µs",
        None,
    );
    if env.baseline.is_some() {
        s.figure(
            "off_over_baseline_p50_us",
            "tracing off over the baseline magg, p50",
            summaries[1].p50 - summaries[4].p50,
            "µs",
            Some(Budget::AtMost(OFF_BUDGET_US)),
        );
        s.figure(
            "off_cpu_over_baseline_us",
            "tracing off over the baseline magg, magg CPU per call",
            cpu_us(1) - cpu_us(4),
            "µs",
            Some(Budget::AtMost(OFF_BUDGET_US)),
        );
    } else {
        s.line(
            "(give --baseline PATH, a magg built before tracing, to compare tracing off with it)",
        );
    }
    s.figure(
        "export_requests",
        "OTLP export requests the sink received",
        exported as f64,
        "",
        None,
    );
    let mut data = serde_json::Map::new();
    data.insert("direct".into(), direct.to_json());
    for ((label, ..), summary) in variants.iter().zip(&summaries[1..]) {
        data.insert((*label).into(), summary.to_json());
    }
    s.data("latency", serde_json::Value::Object(data));
    s.data(
        "cpu_us_per_call",
        json!(
            (0..samples.len())
                .map(|i| crate::stats::round2(cpu_us(i)))
                .collect::<Vec<_>>()
        ),
    );
    Ok(s)
}

/// What each server took: the latency of every call, and the CPU time its process (all its
/// threads, the exporter's too) spent in them, in nanoseconds.
struct Measured {
    latencies: Vec<Vec<Duration>>,
    cpu_ns: Vec<u64>,
}

/// Latencies and CPU time of each server, in rounds; each round starts with the next server,
/// so that no server always follows the same one.
async fn measure(servers: &mut [RawServer], opts: Options) -> Result<Measured> {
    let arguments = json!({"text": "hello"});
    let tool = |i: usize| if i == 0 { "echo" } else { "tb_echo" };
    for (i, server) in servers.iter_mut().enumerate() {
        server
            .call_latencies(tool(i), &arguments, opts.warmup, 0)
            .await?;
    }
    let rounds = opts.calls.div_ceil(ROUND);
    let n = servers.len();
    let mut latencies = vec![Vec::with_capacity(rounds * ROUND); n];
    let mut cpu_ns = vec![0; n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let server = &mut servers[i];
            let before = cpu_ns_of(server.pid())?;
            let samples = server.call_latencies(tool(i), &arguments, 0, ROUND).await?;
            cpu_ns[i] += cpu_ns_of(server.pid())?.saturating_sub(before);
            latencies[i].extend(samples);
        }
    }
    Ok(Measured { latencies, cpu_ns })
}

/// An OTLP/HTTP sink on loopback: reads each request whole and answers `200 OK`.
struct Sink {
    endpoint: String,
    requests: Arc<AtomicU64>,
}

impl Sink {
    async fn start() -> Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the OTLP sink")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while read_request(&mut stream).await.is_some() {
                        counted.fetch_add(1, Ordering::Relaxed);
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Sink { endpoint, requests })
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body; `None` at the end.
async fn read_request(stream: &mut BufReader<tokio::net::TcpStream>) -> Option<()> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(())
}
