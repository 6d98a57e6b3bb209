//! Measurements 10 and 11: this magg against the magg given by `--baseline` (say, one built
//! from an earlier commit), each figure printed for both with the ratio new / baseline.
//! Without `--baseline`, this magg alone. The two maggs run side by side and are timed in
//! interleaved blocks, so that load drifting during the run hits both alike.
//!
//! * **10. Calls**: `echo` through each magg with one test backend behind it (on stdio),
//!   against the backend called directly, with four clients: the rmcp client and the bare
//!   client of `raw.rs` over stdio; over streamable HTTP (`magg serve --http` against
//!   `magg-test-backend --http`), a kept-alive HTTP/1.1 client (`compare/http.rs`) and the
//!   official Python SDK (`compare/sdk.rs`). Added p50 (magg − direct) and the CPU time the
//!   magg process spent per timed call (`/proc/PID/task/*/schedstat`).
//! * **11. Tools held**: see `compare/tools.rs`.
//!
//! Measurement 12 (routing hooks) is in `plugins/compare.rs`.

mod http;
mod sdk;
mod tools;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

pub use self::tools::tools;
use self::{
    http::{HttpClient, HttpServer},
    sdk::SdkClient,
};
use crate::{
    Env, MAGG_ENV, Options, mcp,
    raw::{RawServer, is_error_result},
    report::{Budget, Section},
    server::{self, Server},
    stats::{Summary, round2},
    strings,
};

/// Number of interleaved blocks the timed calls are split into.
pub const BLOCKS: usize = 10;
/// Budget of the latency magg adds to a stdio tools/call, p50.
const STDIO_BUDGET_US: f64 = 50.0;
/// Budget of the latency magg adds to a kept-alive HTTP/1.1 client's tools/call, p50.
const HTTP_BUDGET_US: f64 = 1000.0;

/// A magg binary under test.
#[derive(Debug, Clone, Copy)]
pub struct Magg<'a> {
    /// `new` or `baseline`.
    pub key: &'static str,
    /// The binary.
    pub path: &'a Path,
}

/// This magg, then the baseline if there is one.
pub fn maggs(env: &Env) -> Vec<Magg<'_>> {
    let mut maggs = vec![Magg {
        key: "new",
        path: &env.magg,
    }];
    if let Some(path) = &env.baseline {
        maggs.push(Magg {
            key: "baseline",
            path,
        });
    }
    maggs
}

/// Figures measured for this magg and perhaps the baseline: printed as a table (baseline,
/// new, new / baseline), listed in the JSON data `compared`, and those with a budget added
/// as figures (this magg's).
#[derive(Default)]
pub struct Versus {
    rows: Vec<Row>,
}

struct Row {
    key: String,
    label: String,
    unit: &'static str,
    new: f64,
    baseline: Option<f64>,
    budget: Option<Budget>,
}

impl Versus {
    /// Adds one row; `values` are this magg's figure and the baseline's, in the order of
    /// [`maggs`].
    pub fn row(
        &mut self,
        key: &str,
        label: &str,
        unit: &'static str,
        values: &[f64],
        budget: Option<Budget>,
    ) {
        self.rows.push(Row {
            key: key.to_owned(),
            label: label.to_owned(),
            unit,
            new: values.first().copied().unwrap_or(f64::NAN),
            baseline: values.get(1).copied(),
            budget,
        });
    }

    /// Writes the table (under `title`), the data and the figures into `s`.
    pub fn write(self, s: &mut Section, title: &str) {
        let labels: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{} ({})", r.label, r.unit))
            .collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        s.line(title);
        s.line(format!(
            "  {:<width$} {:>10} {:>10} {:>9}",
            "", "baseline", "new", "new/base"
        ));
        let mut data = Vec::new();
        for (r, label) in self.rows.iter().zip(&labels) {
            let ratio = r.baseline.map(|b| r.new / b);
            s.line(format!(
                "  {label:<width$} {:>10} {:>10} {:>9}",
                r.baseline.map_or("-".to_owned(), number),
                number(r.new),
                ratio.map_or("-".to_owned(), |x| format!("{x:.2}×"))
            ));
            data.push(json!({
                "key": r.key,
                "label": r.label,
                "unit": r.unit,
                "new": round2(r.new),
                "baseline": r.baseline.map(round2),
                "ratio": ratio.map(|x| (x * 1000.0).round() / 1000.0),
            }));
        }
        s.data("compared", Value::Array(data));
        for r in self.rows {
            if r.budget.is_some() {
                s.figure(&r.key, &r.label, r.new, r.unit, r.budget);
            }
        }
    }
}
/// A figure for the table: 3 significant digits or so.
fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The arguments of every `echo` call.
fn echo_args() -> Value {
    json!({ "text": mcp::ECHO_TEXT })
}

/// A client of one server, timing `echo` calls.
enum Caller {
    Rmcp(Server),
    Raw(RawServer),
    Http(HttpClient),
    Sdk(SdkClient),
}

impl Caller {
    /// Times `count` sequential calls of `tool`.
    async fn time(&mut self, tool: &str, count: usize) -> Result<Vec<Duration>> {
        if let Caller::Sdk(client) = self {
            // The script times its calls itself.
            return client.call_latencies(count).await;
        }
        let (args, object) = (echo_args(), mcp::echo_args());
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            match self {
                Caller::Rmcp(server) => mcp::call_echo(server.peer(), tool, &object).await?,
                Caller::Raw(server) => {
                    let reply = server.call(tool, &args).await?;
                    ensure!(!is_error_result(reply), "{tool} failed: {reply}");
                }
                Caller::Http(client) => client.call(tool, &args).await?,
                Caller::Sdk(_) => {}
            }
            samples.push(start.elapsed());
        }
        Ok(samples)
    }

    async fn shutdown(self) {
        match self {
            Caller::Rmcp(server) => {
                server.shutdown().await;
            }
            Caller::Raw(server) => server.shutdown().await,
            Caller::Http(_) => {}
            Caller::Sdk(client) => client.shutdown().await,
        }
    }
}

/// One server timed: `direct`, `new` or `baseline`.
struct Timed {
    key: &'static str,
    caller: Caller,
    /// The process whose CPU time is counted.
    pid: u32,
    tool: &'static str,
    samples: Vec<Duration>,
    cpu_ns: u64,
}

impl Timed {
    fn new(key: &'static str, caller: Caller, pid: u32) -> Timed {
        Timed {
            key,
            caller,
            pid,
            tool: if key == "direct" { "echo" } else { "tb_echo" },
            samples: Vec::new(),
            cpu_ns: 0,
        }
    }

    /// CPU time per timed call, µs.
    fn cpu_us(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.samples.len().max(1) as f64
    }
}

/// One client of measurement 10, timed against the direct backend and each magg.
#[derive(Clone, Copy)]
enum Client {
    Rmcp,
    Bare,
    KeptAlive,
    Sdk,
}

impl Client {
    /// Key and label of its rows.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Client::Rmcp => ("stdio_rmcp", "stdio, rmcp client"),
            Client::Bare => ("stdio_bare", "stdio, bare client"),
            Client::KeptAlive => ("http_keepalive", "HTTP, kept-alive HTTP/1.1 client"),
            Client::Sdk => ("http_sdk", "HTTP, Python SDK client"),
        }
    }
}

/// What measurement 10 starts: a direct backend and a magg per binary, on stdio or HTTP.
struct Setup<'a> {
    env: &'a Env,
    maggs: Vec<Magg<'a>>,
    config: PathBuf,
    /// The HTTP servers (direct first), once started.
    http: Vec<HttpServer>,
}

impl Setup<'_> {
    /// Connects `client` to the direct backend and to each magg (starting them for stdio),
    /// into `timed`, and waits until each magg lists `tb_echo`.
    async fn connect(&self, client: Client, timed: &mut Vec<Timed>) -> Result<()> {
        let env = self.env;
        let keys = std::iter::once("direct").chain(self.maggs.iter().map(|m| m.key));
        for (i, key) in keys.enumerate() {
            let (program, args, vars) = match i.checked_sub(1) {
                None => (env.backend.as_path(), strings(&["--name", "tb"]), &[][..]),
                Some(m) => (self.maggs[m].path, magg_args(&self.config), MAGG_ENV),
            };
            let (name, _) = client.names();
            let label = format!("{key} (10, {name})");
            let log = env.log(&format!("compare-{name}-{key}"));
            let (caller, pid) = match client {
                Client::Rmcp => {
                    let server = Server::start(&label, program, &args, vars, &log).await?;
                    if key != "direct" {
                        mcp::wait_for_tools(server.peer(), tools::LIST_LIMIT, |names| {
                            names.iter().any(|n| n == "tb_echo")
                        })
                        .await
                        .with_context(|| format!("{label}: tb_echo not listed"))?;
                    }
                    let pid = server.pid();
                    (Caller::Rmcp(server), pid)
                }
                Client::Bare => {
                    let mut server = RawServer::start(&label, program, &args, vars, &log).await?;
                    if key != "direct" {
                        tools::wait_listed(&mut server, &["tb_echo".to_owned()]).await?;
                    }
                    let pid = server.pid();
                    (Caller::Raw(server), pid)
                }
                Client::KeptAlive => {
                    let server = &self.http[i];
                    let mut client = HttpClient::connect(&label, server.addr).await?;
                    if key != "direct" {
                        client.wait_for_tool("tb_echo").await?;
                    }
                    (Caller::Http(client), server.pid())
                }
                Client::Sdk => {
                    let server = &self.http[i];
                    let tool = if key == "direct" { "echo" } else { "tb_echo" };
                    let client = SdkClient::connect(&label, server.addr, tool, &log).await?;
                    (Caller::Sdk(client), server.pid())
                }
            };
            timed.push(Timed::new(key, caller, pid));
        }
        Ok(())
    }

    /// Starts the HTTP servers: the test backend with `--http`, each magg with `--http`.
    async fn start_http(&mut self) -> Result<()> {
        let env = self.env;
        let direct = HttpServer::backend(
            "magg-test-backend --http (direct, 10)",
            &env.backend,
            &strings(&["--name", "tb"]),
            &env.log("compare-http-direct"),
        )
        .await?;
        self.http.push(direct);
        for m in &self.maggs {
            let label = format!("magg {} --http (10)", m.key);
            let log = env.log(&format!("compare-http-{}", m.key));
            let server = HttpServer::magg(&label, m.path, &self.config, MAGG_ENV, &log).await?;
            self.http.push(server);
        }
        Ok(())
    }

    /// Times `calls` calls of `client` against every server in interleaved blocks (after
    /// `warmup` each) and adds the rows; stops what it started, whatever happens.
    async fn measure(
        &self,
        client: Client,
        (warmup, calls): (usize, usize),
        budget_us: Option<f64>,
        (s, v): (&mut Section, &mut Versus),
    ) -> Result<()> {
        let mut timed = Vec::new();
        let result = match self.connect(client, &mut timed).await {
            Ok(()) => interleave(&mut timed, warmup, calls).await,
            Err(e) => Err(e),
        };
        if result.is_ok() {
            call_rows(s, v, client.names(), &timed, budget_us);
        }
        for t in timed {
            t.caller.shutdown().await;
        }
        result
    }
}

/// Warms every server of `timed` up with `warmup` calls, then times `calls` calls of each
/// in [`BLOCKS`] interleaved blocks, counting the CPU time of each one's process.
async fn interleave(timed: &mut [Timed], warmup: usize, calls: usize) -> Result<()> {
    for t in timed.iter_mut() {
        t.caller.time(t.tool, warmup).await?;
    }
    let per_block = calls.div_ceil(BLOCKS);
    for _ in 0..BLOCKS {
        for t in timed.iter_mut() {
            let before = server::cpu_ns(t.pid)?;
            let samples = t.caller.time(t.tool, per_block).await?;
            t.cpu_ns += server::cpu_ns(t.pid)?.saturating_sub(before);
            t.samples.extend(samples);
        }
    }
    Ok(())
}

/// Adds the rows of one client's results (direct first, then one per magg) to `v` and
/// their summaries to the JSON data of `s`.
fn call_rows(
    s: &mut Section,
    v: &mut Versus,
    (key, label): (&str, &str),
    timed: &[Timed],
    budget_us: Option<f64>,
) {
    let direct = Summary::of(&timed[0].samples);
    let maggs: Vec<(Summary, f64)> = timed[1..]
        .iter()
        .map(|t| (Summary::of(&t.samples), t.cpu_us()))
        .collect();
    let p50: Vec<f64> = maggs.iter().map(|(m, _)| m.p50).collect();
    let added: Vec<f64> = p50.iter().map(|p| p - direct.p50).collect();
    let cpu: Vec<f64> = maggs.iter().map(|(_, c)| *c).collect();
    v.row(
        &format!("{key}_direct_p50_us"),
        &format!("{label}: p50, backend called directly"),
        "µs",
        &[direct.p50, direct.p50][..maggs.len()],
        None,
    );
    v.row(
        &format!("{key}_p50_us"),
        &format!("{label}: p50 through magg"),
        "µs",
        &p50,
        None,
    );
    v.row(
        &format!("{key}_added_p50_us"),
        &format!("{label}: added p50"),
        "µs",
        &added,
        budget_us.map(Budget::AtMost),
    );
    v.row(
        &format!("{key}_magg_cpu_us_per_call"),
        &format!("{label}: magg CPU per call"),
        "µs",
        &cpu,
        None,
    );
    let data: serde_json::Map<String, Value> = timed
        .iter()
        .map(|t| {
            let summary = Summary::of(&t.samples);
            let value = json!({
                "latency": summary.to_json(),
                "cpu_us_per_call": round2(t.cpu_us()),
            });
            (t.key.to_owned(), value)
        })
        .collect();
    s.data(key, Value::Object(data));
}

/// Measurement 10.
pub async fn calls(env: &Env, opts: Options) -> Result<Section> {
    let maggs = maggs(env);
    eprintln!(
        "magg-bench: 10 calls before/after over stdio and HTTP ({} magg(s))",
        maggs.len()
    );
    let config = env.write_config("compare-one-backend.json", &[("tb".to_owned(), Vec::new())])?;
    let http_calls = (opts.calls / 10).max(50);
    let sdk_calls = (opts.calls / 5).max(100);
    let mut s = Section::new(
        "calls_compared",
        format!(
            "10. tools/call before/after: echo, direct vs through each magg, {} calls each over stdio, {http_calls} over HTTP ({sdk_calls} with the Python SDK), in {BLOCKS} interleaved blocks",
            opts.calls
        ),
    );
    let mut v = Versus::default();
    let mut setup = Setup {
        env,
        maggs,
        config,
        http: Vec::new(),
    };
    let stdio = (opts.warmup, opts.calls);
    let budget = Some(STDIO_BUDGET_US);
    setup
        .measure(Client::Rmcp, stdio, budget, (&mut s, &mut v))
        .await?;
    setup
        .measure(Client::Bare, stdio, budget, (&mut s, &mut v))
        .await?;
    let http = async {
        setup.start_http().await?;
        let budget = Some(HTTP_BUDGET_US);
        let counts = (opts.warmup / 4, http_calls);
        setup
            .measure(Client::KeptAlive, counts, budget, (&mut s, &mut v))
            .await?;
        eprintln!("magg-bench: 10 calls before/after: the Python SDK over HTTP");
        let counts = (opts.warmup / 4, sdk_calls);
        if let Err(e) = setup
            .measure(Client::Sdk, counts, None, (&mut s, &mut v))
            .await
        {
            let message = format!("10: the Python SDK part failed: {e:#}");
            s.line(message.clone());
            server::incident(message);
        }
        anyhow::Ok(())
    }
    .await;
    for server in std::mem::take(&mut setup.http) {
        server.shutdown().await;
    }
    http?;
    v.write(
        &mut s,
        "p50 of echo and magg's own CPU time per call (all threads); added = magg − direct:",
    );
    Ok(s)
}

/// `serve --config CONFIG`.
fn magg_args(config: &Path) -> Vec<String> {
    vec![
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ]
}
