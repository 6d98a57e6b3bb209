//! Measurement 8: what magg adds to the messages that are not a request and its response.
//!
//! * **Progress**: `slow {"ms": 0}` on the test backend sends three progress notifications at
//!   once, then answers. Timed from sending the request to the first progress notification
//!   reaching the client, and to the result, straight to `magg-test-backend` and to `tb_slow`
//!   through `magg serve` (stdio both). magg gives the backend its own progress token and puts
//!   the client's back.
//! * **Sampling round trip**: `sample {"prompt": ...}` makes the backend ask the client for
//!   a completion (`sampling/createMessage`) and answer with it. The client answers at once;
//!   timed from sending the tools/call to its result, direct vs through magg, which relays the
//!   backend's request to the calling client and the answer back.

// Sampling is deprecated by SEP-2577, and what 2025-11-25 servers use.
#![allow(deprecated)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
        CreateMessageResult, Implementation, JsonObject, ProgressNotificationParam,
        SamplingMessage,
    },
    service::{NotificationContext, Peer, RequestContext},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Env, MAGG_ENV, Options, report::Section, server::Server, stats::Summary, table_row};

/// The client of this measurement: it can sample (answering at once) and reports when each
/// progress notification arrives.
struct Probe {
    progress: mpsc::UnboundedSender<Instant>,
}

impl ClientHandler for Probe {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            serde_json::from_value::<ClientCapabilities>(json!({"sampling": {}}))
                .unwrap_or_default(),
            Implementation::new("magg-bench", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("ok"),
            "bench".to_owned(),
        ))
    }

    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(Instant::now());
    }
}

/// One server under test and the arrivals of its progress notifications.
struct Probed {
    server: Server<Probe>,
    arrivals: mpsc::UnboundedReceiver<Instant>,
}

/// The samples of one server: request → first progress, request → result of the progress
/// call, and the sampling round trip.
struct Samples {
    first_progress: Vec<Duration>,
    progress_result: Vec<Duration>,
    sampling: Vec<Duration>,
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

async fn call_text(peer: &Peer<RoleClient>, tool: &str, arguments: &JsonObject) -> Result<String> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.clone());
    let result = peer
        .call_tool(params)
        .await
        .with_context(|| format!("tools/call {tool} failed"))?;
    let content = serde_json::to_value(&result.content).context("cannot serialise content")?;
    let text = content
        .pointer("/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    ensure!(
        result.is_error != Some(true),
        "tools/call {tool} returned an error result: {text}"
    );
    Ok(text)
}

async fn measure(probed: &mut Probed, prefix: &str, opts: Options) -> Result<Samples> {
    let peer = probed.server.peer().clone();
    let slow = format!("{prefix}slow");
    let sample = format!("{prefix}sample");
    let slow_args = args(json!({"ms": 0}));
    let sample_args = args(json!({"prompt": "bench"}));
    let rounds = opts.calls / 10;
    let mut samples = Samples {
        first_progress: Vec::with_capacity(rounds),
        progress_result: Vec::with_capacity(rounds),
        sampling: Vec::with_capacity(rounds),
    };
    let answer = call_text(&peer, &sample, &sample_args).await?;
    ensure!(
        answer == "sampled: ok",
        "{sample} did not relay the client's answer: {answer:?}"
    );
    for round in 0..opts.warmup + rounds {
        while probed.arrivals.try_recv().is_ok() {}
        let start = Instant::now();
        call_text(&peer, &slow, &slow_args).await?;
        let done = start.elapsed();
        let first = tokio::time::timeout(Duration::from_secs(5), probed.arrivals.recv())
            .await
            .ok()
            .flatten()
            .with_context(|| format!("no progress notification for {slow}"))?;
        let start_sampling = Instant::now();
        call_text(&peer, &sample, &sample_args).await?;
        let sampled = start_sampling.elapsed();
        if round >= opts.warmup {
            samples
                .first_progress
                .push(first.saturating_duration_since(start));
            samples.progress_result.push(done);
            samples.sampling.push(sampled);
        }
    }
    Ok(samples)
}

async fn start(env: &Env, magg: bool) -> Result<Probed> {
    let (progress, arrivals) = mpsc::unbounded_channel();
    let probe = Probe { progress };
    let server = if magg {
        let config = env.write_config("passthrough.json", &[("tb".to_owned(), Vec::new())])?;
        env.start_magg_with(
            probe,
            MAGG_ENV,
            "magg (1 backend)",
            "magg-passthrough",
            &config,
        )
        .await?
    } else {
        Server::start_with(
            probe,
            "magg-test-backend (direct)",
            &env.backend,
            &[],
            &[],
            &env.log("direct-passthrough"),
        )
        .await?
    };
    Ok(Probed { server, arrivals })
}

/// Measurement 8.
pub async fn passthrough(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 8 pass-through (progress, sampling)");
    let mut direct = start(env, false).await?;
    let direct_samples = measure(&mut direct, "", opts).await;
    direct.server.shutdown().await;
    let mut magg = start(env, true).await?;
    crate::mcp::wait_for_tools(magg.server.peer(), Duration::from_secs(20), |names| {
        names.iter().any(|n| n == "tb_sample")
    })
    .await?;
    let magg_samples = measure(&mut magg, "tb_", opts).await;
    magg.server.shutdown().await;
    let (direct, magg) = (direct_samples?, magg_samples?);

    let mut s = Section::new(
        "passthrough",
        "8. Pass-through: a backend's progress notification and sampling request, direct vs through magg (stdio)",
    );
    s.line("                     p50 µs     p90 µs     p99 µs    mean µs");
    let rows = [
        (
            "progress: request → first",
            &direct.first_progress,
            &magg.first_progress,
            "first_progress",
        ),
        (
            "progress: request → result",
            &direct.progress_result,
            &magg.progress_result,
            "progress_call",
        ),
        (
            "sampling: round trip",
            &direct.sampling,
            &magg.sampling,
            "sampling",
        ),
    ];
    for (name, d, m, key) in rows {
        let (d, m) = (Summary::of(d), Summary::of(m));
        s.line(format!("{name}:"));
        s.line(format!("  {}", table_row("direct", &d)));
        s.line(format!("  {}", table_row("through magg", &m)));
        s.figure(
            &format!("{key}_added_p50_us"),
            &format!("{name}, added p50"),
            m.p50 - d.p50,
            "µs",
            None,
        );
        s.data(key, json!({"direct": d.to_json(), "magg": m.to_json()}));
    }
    s.line(format!(
        "({} rounds each after {} warm-up rounds; the client answers sampling at once, so the round trip is all transport)",
        direct.sampling.len(),
        opts.warmup
    ));
    Ok(s)
}
