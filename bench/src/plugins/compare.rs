//! Measurement 12: routing hooks, this magg against the baseline (`--baseline`; this magg
//! alone without it). `echo` through each magg over stdio with 0, 1 and 4 Rust routing hooks
//! (`routing-rules` with no settings, under one and four names, as in measurement 7), and the
//! backend called directly, all side by side and timed in interleaved blocks with the bare
//! client. Each magg loads the plugins from a compile cache it filled itself first.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use super::{
    HOOK_BUDGET_US, LIST_WAIT, Launch, Timed, Variant, built, fresh_dir, plugin_dir, shutdown_all,
    start_direct, start_magg_at, time_calls, warm_cache,
};
use crate::{
    Env, Options,
    compare::{Versus, maggs},
    report::{Budget, Section},
    stats::{Summary, round2},
};

/// The hook configurations timed for each magg: (key, label, plugin file names).
const HOOKS: [(&str, &str, &[&str]); 3] = [
    ("hooks0", "0 hooks", &[]),
    ("hooks1", "1 Rust hook", &["routing-rules.wasm"]),
    (
        "hooks4",
        "4 Rust hooks",
        &["hook-a.wasm", "hook-b.wasm", "hook-c.wasm", "hook-d.wasm"],
    ),
];

/// The latencies of one server and its CPU time per call, µs.
type Measured = (Summary, f64);

/// Measurement 12.
pub async fn hooks(env: &Env, opts: Options) -> Result<Section> {
    let maggs = maggs(env);
    eprintln!(
        "magg-bench: 12 hooks before/after: 0, 1, 4 Rust hooks ({} calls each)",
        opts.calls
    );
    let rules = built(env, "routing-rules.wasm")?;
    let config = env.write_config("compare-hooks.json", &[("tb".to_owned(), Vec::new())])?;
    let mut variants = Vec::new();
    let mut timed = Vec::new();
    let started = async {
        timed.push(
            start_direct(
                env,
                "magg-test-backend (direct, 12)",
                "compare-hooks-direct",
            )
            .await?,
        );
        for m in &maggs {
            let cache = env.work.join(format!("compare-plugin-cache-{}", m.key));
            fresh_dir(&cache)?;
            warm_cache(env, m.path, &cache, std::slice::from_ref(&rules))
                .await
                .with_context(|| format!("magg {}: filling the compile cache", m.key))?;
            for (key, label, names) in HOOKS {
                let files: Vec<(PathBuf, String)> = names
                    .iter()
                    .map(|n| (rules.clone(), (*n).to_owned()))
                    .collect();
                let variant = Variant { key, label, files };
                let name = format!("compare-plugins-{}-{key}", m.key);
                let dir = plugin_dir(env, &name, &variant.files())?;
                let label = format!("magg {}, {label}", m.key);
                let server = start_magg_at(
                    env,
                    m.path,
                    &Launch {
                        label: &label,
                        log: &name,
                        config: &config,
                        plugins: Some(&dir),
                        cache: &cache,
                        list_wait: LIST_WAIT,
                    },
                )
                .await?;
                timed.push(Timed {
                    label,
                    server,
                    tool: "tb_echo",
                    samples: Vec::new(),
                    cpu_ns: 0,
                });
                variants.push(variant);
            }
        }
        anyhow::Ok(())
    }
    .await;
    let result = match started {
        Ok(()) => time_calls(opts, &variants, &mut timed).await,
        Err(e) => Err(e),
    };
    let measured: Vec<Measured> = timed
        .iter()
        .map(|t| {
            let cpu_us = t.cpu_ns as f64 / 1e3 / t.samples.len().max(1) as f64;
            (Summary::of(&t.samples), cpu_us)
        })
        .collect();
    shutdown_all(timed.into_iter().map(|t| t.server).collect()).await;
    result?;

    let mut s = Section::new(
        "hooks_compared",
        format!(
            "12. Routing hooks before/after: echo over stdio through each magg with 0, 1, 4 Rust hooks, {} calls each in interleaved blocks (bare client)",
            opts.calls
        ),
    );
    let (direct, _) = measured[0];
    s.line(format!("backend called directly: p50 {:.1} µs", direct.p50));
    // Per magg: (summary, CPU µs per call) for 0, 1 and 4 hooks.
    let per_magg: Vec<&[Measured]> = measured[1..].chunks(HOOKS.len()).collect();
    let column =
        |f: &dyn Fn(&[Measured]) -> f64| -> Vec<f64> { per_magg.iter().map(|m| f(m)).collect() };
    let mut v = Versus::default();
    for (i, (key, label, _)) in HOOKS.iter().enumerate() {
        v.row(
            &format!("{key}_added_p50_us"),
            &format!("{label}: added p50"),
            "µs",
            &column(&|m| m[i].0.p50 - direct.p50),
            None,
        );
    }
    v.row(
        "first_hook_p50_us",
        "step 0 → 1 hook (bookkeeping + hook), p50",
        "µs",
        &column(&|m| m[1].0.p50 - m[0].0.p50),
        None,
    );
    v.row(
        "per_hook_p50_us",
        "one more Rust hook, (4 − 1 hooks) / 3, p50",
        "µs",
        &column(&|m| (m[2].0.p50 - m[1].0.p50) / 3.0),
        Some(Budget::AtMost(HOOK_BUDGET_US)),
    );
    for (i, (key, label, _)) in HOOKS.iter().enumerate() {
        v.row(
            &format!("{key}_magg_cpu_us_per_call"),
            &format!("{label}: magg CPU per call"),
            "µs",
            &column(&|m| m[i].1),
            None,
        );
    }
    v.row(
        "per_hook_cpu_us",
        "one more Rust hook, magg CPU per call",
        "µs",
        &column(&|m| (m[2].1 - m[1].1) / 3.0),
        None,
    );
    v.write(&mut s, "added = magg − direct; CPU is magg's own process:");
    let mut data = Map::new();
    data.insert("direct".into(), direct.to_json());
    for (m, rows) in maggs.iter().zip(&per_magg) {
        let rows: Map<String, Value> = HOOKS
            .iter()
            .zip(rows.iter())
            .map(|((key, ..), (summary, cpu))| {
                let value = json!({"latency": summary.to_json(), "cpu_us_per_call": round2(*cpu)});
                ((*key).to_owned(), value)
            })
            .collect();
        data.insert(m.key.to_owned(), Value::Object(rows));
    }
    s.data("runs", Value::Object(data));
    Ok(s)
}
