//! Measurement 13: what authentication costs an HTTP request.
//!
//! Three `magg serve --http` processes with the same backend (`magg-test-backend` with 5000
//! generated tools) run side by side: authentication off; on with magg's own key (one bearer
//! token per client); and on with scope rules (`access` in `auth.json`) that let the client's
//! token see 2223 of the tools. One kept-alive HTTP/1.1 client each times `tools/call` of
//! `tb_echo` in interleaved blocks:
//! - the token check of a token seen before (keyed − off; budget ≤ 20 µs p50);
//! - the check of a token never seen before (its RS256 signature): calls that each carry a new
//!   token, against calls with the same one;
//! - the scoped view on a call (scoped − keyed);
//! - a full tools/list walk (every page) with all 5000 tools (off) and with the scoped view;
//! - magg's CPU time per call in each setup.
//!
//! HTTP round trips vary by tens of µs on a shared machine, more than a token check costs, so
//! the same checks are also timed in this process, on magg's own code: the check of a token
//! seen before (what each request of a client pays; budget ≤ 20 µs), a token's first check
//! (its RSA signature, once per token), and matching 5000 tool names against a token's scopes
//! (what a scoped tools/list costs once per catalog change and set of scopes).

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    Env, MAGG_ENV, Options,
    compare::BLOCKS,
    keepalive::{Client, Listening, free_port, serve_http_args},
    report::{Budget, Section},
    stats::{Summary, micros},
};

/// Generated tools behind each magg.
const TOOLS: usize = 5000;

/// Budget of the token check of a request, p50.
const CHECK_BUDGET_US: f64 = 20.0;

/// Tokens never seen before, one per timed call.
fn fresh_tokens(opts: Options) -> usize {
    if opts.quick { 50 } else { 300 }
}

/// One magg under test.
struct Under {
    label: &'static str,
    server: Listening,
    client: Client,
}

/// Runs `magg --config CONFIG args` with `HOME=home`: its stdout.
fn magg_cli(env: &Env, config: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(&env.magg)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("HOME", home)
        .env("MAGG_PRIVATE_KEY", "")
        .output()
        .with_context(|| format!("cannot run {}", env.magg.display()))?;
    ensure!(
        out.status.success(),
        "magg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes a config with the backend into `dir`, and `auth` as its `auth.json` when given.
fn setup(env: &Env, dir: &Path, auth: Option<Value>) -> Result<std::path::PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("config.json");
    let text = serde_json::to_string_pretty(&json!({"servers": {"tb": {
        "source": "bench",
        "prefix": "tb",
        "command": env.backend,
        "args": ["--name", "tb", "--tools", TOOLS.to_string()],
    }}}))?;
    std::fs::write(&config, text)?;
    if let Some(auth) = auth {
        std::fs::write(dir.join("auth.json"), auth.to_string())?;
    }
    Ok(config)
}

/// Starts magg on `config` with `HOME=home` and connects a client sending `token`.
async fn start(
    env: &Env,
    label: &'static str,
    config: &Path,
    home: &Path,
    token: Option<&str>,
) -> Result<Under> {
    let port = free_port()?;
    let args = serve_http_args(port, config);
    let home = home.display().to_string();
    let mut vars: Vec<(&str, &str)> = MAGG_ENV.to_vec();
    vars.push(("HOME", &home));
    vars.push(("MAGG_PRIVATE_KEY", ""));
    let log = format!("auth-{}", label.replace(' ', "-"));
    let server = Listening::start(env, label, &log, &env.magg, &args, &vars, port).await?;
    let authorization = token.map(|t| format!("Bearer {t}"));
    let mut client = Client::connect_as(server.addr, authorization).await?;
    client.wait_for_tool("tb_echo").await?;
    Ok(Under {
        label,
        server,
        client,
    })
}

/// One timed `tb_echo` call.
async fn echo(client: &mut Client) -> Result<Duration> {
    let start = Instant::now();
    let answer = client
        .request(
            "tools/call",
            json!({"name": "tb_echo", "arguments": {"text": "hello, bench"}}),
        )
        .await?;
    let elapsed = start.elapsed();
    ensure!(
        answer["result"]["isError"] != json!(true),
        "tb_echo failed: {answer}"
    );
    Ok(elapsed)
}

/// Walks every page of tools/list: the time and the number of tools.
async fn walk(client: &mut Client) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut cursor: Option<String> = None;
    let mut count = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = client.request("tools/list", params).await?;
        count += page["result"]["tools"].as_array().map_or(0, Vec::len);
        match page["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok((start.elapsed(), count))
}

/// Times `f` over `rounds` rounds of `batch` runs: the median time of one run.
fn per_run(rounds: usize, batch: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch as u32
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The in-process figures: (first check of a token, check of a remembered token, matching
/// [`TOOLS`] names against a scoped view), each a median.
async fn in_process(opts: Options) -> Result<(Summary, Duration, Duration)> {
    use magg::auth::{BearerConfig, Gate, SigningKey, access::AccessRules};
    let key = SigningKey::generate()?;
    let bearer = BearerConfig::default();
    let gate = Gate::of_key(&key, bearer.clone());
    let resource = "http://127.0.0.1/mcp";
    let mut first = Vec::new();
    for i in 0..fresh_tokens(opts) {
        let token = key.issue(&bearer, &format!("bench-{i}"), 1, &["half".to_owned()])?;
        let start = Instant::now();
        gate.check(&token, resource)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        first.push(start.elapsed());
    }
    let token = key.issue(&bearer, "bench", 1, &[])?;
    let runtime_free = {
        // A remembered token: the check is a lookup; timed without the async machinery.
        let verifier = magg::auth::Verifier::new(&key, &bearer);
        verifier.check(&token).map_err(|e| anyhow::anyhow!("{e}"))?;
        per_run(21, 1000, || {
            let _ = std::hint::black_box(verifier.check(std::hint::black_box(&token)));
        })
    };
    let rules = match json!({"access": {"scopes": {
        "half": {"tools": ["tb_gen_1*", "tb_gen_2*", "tb_echo"]},
    }}}) {
        Value::Object(top) => AccessRules::from_auth_json(&top)
            .map_err(anyhow::Error::msg)?
            .context("access rules")?,
        _ => unreachable!(),
    };
    let identity = magg::auth::Identity {
        subject: Some("bench".into()),
        scopes: vec!["half".into()],
    };
    let view = rules.view(&identity);
    let names: Vec<String> = (0..TOOLS).map(|i| format!("tb_gen_{i}")).collect();
    let matching = per_run(21, 3, || {
        let seen = names
            .iter()
            .filter(|n| view.tool(n, Some("tb"), false))
            .count();
        std::hint::black_box(seen);
    });
    Ok((Summary::of(&first), runtime_free, matching))
}

/// Measurement 13.
pub async fn auth(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 13 authentication (token checks and scopes over HTTP)");
    let root = env.work.join("auth");
    let home = root.join("home");
    let open_home = root.join("home-open");
    std::fs::create_dir_all(&open_home)?;
    let open = setup(env, &root.join("open"), None)?;
    let keyed = setup(env, &root.join("keyed"), None)?;
    let scoped = setup(
        env,
        &root.join("scoped"),
        Some(json!({"access": {"scopes": {
            "half": {"tools": ["tb_gen_1*", "tb_gen_2*", "tb_echo"]},
        }}})),
    )?;
    let _ = std::fs::remove_dir_all(&home);
    magg_cli(env, &keyed, &home, &["auth", "init"])?;
    let token = magg_cli(env, &keyed, &home, &["auth", "token", "-q"])?;
    let scoped_token = magg_cli(
        env,
        &scoped,
        &home,
        &["auth", "token", "-q", "--scopes", "half"],
    )?;
    let mut fresh = Vec::new();
    for i in 0..fresh_tokens(opts) {
        let subject = format!("bench-{i}");
        fresh.push(magg_cli(
            env,
            &keyed,
            &home,
            &["auth", "token", "-q", "--subject", &subject],
        )?);
    }

    let mut under = vec![
        start(env, "auth off", &open, &open_home, None).await?,
        start(env, "bearer token", &keyed, &home, Some(&token)).await?,
        start(env, "token + scopes", &scoped, &home, Some(&scoped_token)).await?,
    ];
    let result = measure(&mut under, &token, &fresh, opts).await;
    for u in under {
        u.server.stop().await;
    }
    let mut section = result?;
    let (first, remembered, matching) = in_process(opts).await?;
    section.line(format!(
        "in process: a token's first check p50 {:.1} µs (p90 {:.1}); a remembered token {:.2} µs; \
         {TOOLS} tool names against a scoped view {:.0} µs",
        first.p50,
        first.p90,
        micros(remembered),
        micros(matching)
    ));
    // A token's first check is bounded below by one RSA-2048 signature check (ring's takes
    // ≈ 29 µs on the 2-core machines magg is measured on, OpenSSL's ≈ 27 µs); a client pays
    // it once per token, not per request.
    section.figure(
        "check_first_us",
        "token check in process, first sight (RS256 signature and claims), p50",
        first.p50,
        "µs",
        None,
    );
    section.figure(
        "check_remembered_us",
        "token check in process, remembered token",
        micros(remembered),
        "µs",
        Some(Budget::AtMost(CHECK_BUDGET_US)),
    );
    section.figure(
        "scope_match_5000_us",
        "5000 tool names matched against a token's scopes (once per catalog change)",
        micros(matching),
        "µs",
        None,
    );
    Ok(section)
}

async fn measure(
    under: &mut [Under],
    token: &str,
    fresh: &[String],
    opts: Options,
) -> Result<Section> {
    let calls = (opts.calls / 5).max(BLOCKS * 10);
    let per_block = calls / BLOCKS;
    for u in under.iter_mut() {
        for _ in 0..opts.warmup.min(200) {
            echo(&mut u.client).await?;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); under.len()];
    let mut cpu = vec![0u64; under.len()];
    for _ in 0..BLOCKS {
        for ((u, s), cpu) in under.iter_mut().zip(&mut samples).zip(&mut cpu) {
            let before = crate::server::cpu_ns(u.server.pid)?;
            for _ in 0..per_block {
                s.push(echo(&mut u.client).await?);
            }
            *cpu += crate::server::cpu_ns(u.server.pid)? - before;
        }
    }
    let cpu_us: Vec<f64> = cpu
        .iter()
        .map(|ns| *ns as f64 / 1000.0 / (per_block * BLOCKS) as f64)
        .collect();
    // Tokens never seen before, each against a call with the same token as always.
    let same = format!("Bearer {token}");
    let (mut first_sight, mut seen) = (Vec::new(), Vec::new());
    let keyed = &mut under[1].client;
    for new in fresh {
        keyed.authorization = Some(format!("Bearer {new}"));
        first_sight.push(echo(keyed).await?);
        keyed.authorization = Some(same.clone());
        seen.push(echo(keyed).await?);
    }
    // Full tools/list walks: everything, and the scoped share.
    let reps = opts.list_reps.clamp(5, 30);
    let (mut all, mut share) = (Vec::new(), Vec::new());
    let (mut all_count, mut share_count) = (0, 0);
    for _ in 0..reps {
        let (t, n) = walk(&mut under[0].client).await?;
        all.push(t);
        all_count = n;
        let (t, n) = walk(&mut under[2].client).await?;
        share.push(t);
        share_count = n;
    }

    let s: Vec<Summary> = samples.iter().map(|x| Summary::of(x)).collect();
    let (first, again) = (Summary::of(&first_sight), Summary::of(&seen));
    let (all_s, share_s) = (Summary::of(&all), Summary::of(&share));
    let mut section = Section::new(
        "auth",
        format!(
            "13. Authentication over HTTP: tools/call tb_echo on a kept-alive connection, {calls} \
             calls per magg in {BLOCKS} interleaved blocks; {TOOLS} tools behind each magg"
        ),
    );
    section.line(crate::TABLE_HEAD);
    for (u, summary) in under.iter().zip(&s) {
        section.line(crate::table_row(u.label, summary));
    }
    section.line(crate::table_row("new token each", &first));
    section.line(crate::table_row("same token", &again));
    section.line(format!(
        "tools/list walk: all {all_count} tools p50 {:.2} ms; scoped view ({share_count} tools) \
         p50 {:.2} ms ({reps} walks each)",
        all_s.p50 / 1000.0,
        share_s.p50 / 1000.0
    ));
    section.line(format!(
        "magg CPU per call: auth off {:.1} µs, bearer token {:.1} µs, token + scopes {:.1} µs",
        cpu_us[0], cpu_us[1], cpu_us[2]
    ));
    section.figure(
        "token_check_p50_us",
        "token check, token seen before (bearer − off), added p50",
        s[1].p50 - s[0].p50,
        "µs",
        None,
    );
    section.figure(
        "token_check_cpu_us",
        "token check, token seen before (bearer − off), magg CPU per call",
        cpu_us[1] - cpu_us[0],
        "µs",
        None,
    );
    section.figure(
        "scope_call_cpu_us",
        "scoped view on a call (scopes − bearer), magg CPU per call",
        cpu_us[2] - cpu_us[1],
        "µs",
        None,
    );
    section.figure(
        "first_check_p50_us",
        "token check, new token (RS256 signature), added p50",
        first.p50 - again.p50,
        "µs",
        None,
    );
    section.figure(
        "scope_call_p50_us",
        "scoped view on a call (scopes − bearer), added p50",
        s[2].p50 - s[1].p50,
        "µs",
        None,
    );
    section.figure(
        "walk_all_ms",
        "tools/list walk, all tools, p50",
        all_s.p50 / 1000.0,
        "ms",
        None,
    );
    section.figure(
        "walk_scoped_ms",
        "tools/list walk, scoped view, p50",
        share_s.p50 / 1000.0,
        "ms",
        None,
    );
    section.data("off", s[0].to_json());
    section.data("bearer", s[1].to_json());
    section.data("scoped", s[2].to_json());
    section.data("new_token", first.to_json());
    section.data("same_token", again.to_json());
    section.data(
        "walks",
        json!({"all": all_s.to_json(), "all_tools": all_count,
               "scoped": share_s.to_json(), "scoped_tools": share_count}),
    );
    Ok(section)
}
