//! Measurement 16: what the plugins built into magg cost at startup.
//!
//! magg serves its bundled plugins (the search providers and the configure rules) with no
//! plugins directory. They are compiled from the components embedded in the binary the first
//! time and loaded from the compile cache (`MAGG_CACHE_DIR`) after that. Timed from spawn:
//!
//! * **initialize**: the `initialize` result, which never waits for plugins;
//! * **first plugin answer**: the first `magg_smart_configure` of a local Node project answered
//!   by the bundled `smart-configure` plugin (after a tools/list, which waits for plugins as a
//!   client's first list does), cold (an empty compile cache, every plugin compiled) and cached;
//!
//! and magg's VmRSS after that answer. Baseline: the same magg with every bundled plugin turned
//! off (`plugins.<name>.enabled: false`), whose answer comes from the built-in rules.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Map, Value, json};

use crate::{
    Env, Options, mib,
    raw::RawServer,
    report::Section,
    server,
    stats::{Summary, round2},
};

/// The plugins a magg binary may have built in.
const BUNDLED: [&str; 5] = [
    "mcp-registry",
    "npm-search",
    "glama-search",
    "github-search",
    "smart-configure",
];

/// One start: spawn → initialize, spawn → the first configure answer, and the RSS after it.
struct Start {
    initialized: Duration,
    answered: Duration,
    rss_kb: u64,
}

/// Starts magg with `config` and cache `cache`, and asks it to configure `project`; the answer
/// must come from `by`.
async fn start(
    env: &Env,
    label: &str,
    config: &Path,
    cache: &Path,
    project: &Path,
    by: &str,
) -> Result<Start> {
    let args = vec![
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ];
    let cache = cache.display().to_string();
    let vars = [
        ("MAGG_LIST_WAIT", "300"),
        ("MAGG_CACHE_DIR", cache.as_str()),
    ];
    let spawned = Instant::now();
    let mut magg =
        RawServer::start(label, &env.magg, &args, &vars, &env.log("magg-bundled")).await?;
    let initialized = spawned.elapsed();
    let result = async {
        magg.request("tools/list", None).await?;
        let line = magg
            .call(
                "magg_smart_configure",
                &json!({"source": project.display().to_string()}),
            )
            .await?
            .to_owned();
        let answered = spawned.elapsed();
        ensure!(
            line.contains(&format!(r#""suggested_by":"{by}""#)),
            "{label}: the answer did not come from {by}: {}",
            line.trim()
        );
        Ok(Start {
            initialized,
            answered,
            rss_kb: server::rss_kb(magg.pid())?,
        })
    }
    .await;
    magg.shutdown().await;
    result
}

/// Measurement 15.
pub async fn bundled(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 16 bundled plugins: startup, cold and cached");
    let reps = if opts.quick { 3 } else { 10 };
    let dir = env.work.join("bundled");
    let project = dir.join("node-project");
    std::fs::create_dir_all(&project)
        .with_context(|| format!("cannot create {}", project.display()))?;
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "bench-server", "main": "index.js"}"#,
    )?;
    std::fs::write(project.join("index.js"), "")?;
    let with = dir.join("bundled.json");
    std::fs::write(&with, json!({"servers": {}}).to_string())?;
    let off: Map<String, Value> = BUNDLED
        .iter()
        .map(|name| ((*name).to_owned(), json!({"enabled": false})))
        .collect();
    let without = dir.join("no-plugins.json");
    std::fs::write(&without, json!({"servers": {}, "plugins": off}).to_string())?;

    let mut cold = Vec::new();
    for i in 0..reps.min(3) {
        let cache = dir.join(format!("cache-cold-{i}"));
        let _ = std::fs::remove_dir_all(&cache);
        cold.push(
            start(
                env,
                "magg (bundled, cold)",
                &with,
                &cache,
                &project,
                "smart-configure",
            )
            .await?,
        );
    }
    let cache = dir.join("cache-cold-0");
    let (mut cached, mut none) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        cached.push(
            start(
                env,
                "magg (bundled, cached)",
                &with,
                &cache,
                &project,
                "smart-configure",
            )
            .await?,
        );
        none.push(
            start(
                env,
                "magg (no plugins)",
                &without,
                &cache,
                &project,
                "built-in rules",
            )
            .await?,
        );
    }

    let mut section = Section::new("bundled", "16. Bundled plugins: startup (spawn → ...)");
    let p50 = |starts: &[Start], f: fn(&Start) -> Duration| {
        round2(Summary::of(&starts.iter().map(f).collect::<Vec<_>>()).p50 / 1000.0)
    };
    let initialized = |s: &Start| s.initialized;
    let answered = |s: &Start| s.answered;
    let rss = |starts: &[Start]| {
        let mut kb: Vec<u64> = starts.iter().map(|s| s.rss_kb).collect();
        kb.sort_unstable();
        round2(mib(kb[kb.len() / 2]))
    };
    let rows = [
        ("cold", "bundled, empty compile cache", &cold),
        ("cached", "bundled, from the compile cache", &cached),
        ("none", "bundled plugins off (baseline)", &none),
    ];
    section.line(format!(
        "{:<34} {:>14} {:>20} {:>10}",
        "", "initialize p50", "first answer p50", "RSS MiB"
    ));
    for (key, label, starts) in rows {
        let (init, first, mem) = (p50(starts, initialized), p50(starts, answered), rss(starts));
        section.line(format!(
            "{label:<34} {init:>11.2} ms {first:>17.2} ms {mem:>10.2}"
        ));
        section.figure(
            &format!("{key}_initialize_ms"),
            &format!("initialize, {label}"),
            init,
            "ms",
            None,
        );
        section.figure(
            &format!("{key}_first_answer_ms"),
            &format!("first plugin answer, {label}"),
            first,
            "ms",
            None,
        );
        section.figure(
            &format!("{key}_rss_mib"),
            &format!("RSS, {label}"),
            mem,
            "MiB",
            None,
        );
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { round2(a / b) } else { 0.0 };
    section.line(format!(
        "cached / baseline: initialize {:.2}x, first answer {:.2}x; cold / cached first answer {:.2}x",
        ratio(p50(&cached, initialized), p50(&none, initialized)),
        ratio(p50(&cached, answered), p50(&none, answered)),
        ratio(p50(&cold, answered), p50(&cached, answered)),
    ));
    Ok(section)
}
