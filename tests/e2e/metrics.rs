//! Prometheus metrics at `/metrics`, read by Prometheus' own Python parsers (both text
//! formats) after known traffic: calls by server, tool and outcome with their latency, list
//! requests, backends, plugins, sessions, list_changed and config reloads.

use std::{path::Path, process::Command, time::Duration};

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, eventually, test_backend};

/// One sample as the parser read it.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Value,
    value: f64,
}

/// Scrapes `url` with tests/python/scrape.py in `format` (`prometheus` or `openmetrics`).
fn scrape(url: &str, format: &str) -> Vec<Sample> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/scrape.py");
    let out = Command::new("python3")
        .arg(script)
        .args([url, format])
        .output()
        .expect("python3 runs (pip install -r tests/python/requirements.txt)");
    assert!(
        out.status.success(),
        "the {format} parser read /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON sample");
            Sample {
                name: v["name"].as_str().expect("name").to_owned(),
                labels: v["labels"].clone(),
                value: v["value"].as_f64().expect("value"),
            }
        })
        .collect()
}

/// The value of the sample `name` with (at least) `labels`; 0 when there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels[*k] == json!(v)))
        .map(|s| s.value)
        .sum()
}

/// The metrics URL of the admin listener magg logged.
async fn metrics_url(magg: &Magg) -> String {
    format!("{}/metrics", magg.admin_url().await)
}

#[tokio::test]
async fn metrics_count_what_magg_did() {
    let config = TempConfig::new(&json!({
        "servers": {"tb": test_backend("tb", "tb", &[])},
        "plugins": {"trap-hook": {}},
    }));
    config.install_plugin("trap-hook", "trap-hook");
    let magg = Magg::http_with(
        &config.path,
        &[
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--admin-port",
            "0",
        ],
        &[],
    )
    .await;
    let url = metrics_url(&magg).await;
    let mut client = magg.http_client().await;
    client.tool_names().await;
    let before = scrape(&url, "prometheus");

    for n in 0..3 {
        let ok = client
            .call("tb_echo", json!({"text": format!("hi {n}")}))
            .await;
        assert_eq!(ok.expect("a result")["isError"], json!(false));
    }
    let failed = client.call("tb_fail", json!({})).await.expect("a result");
    assert_eq!(failed["isError"], json!(true));
    let trapped = client
        .call("tb_echo", json!({"text": "trap"}))
        .await
        .expect("a result");
    assert_eq!(
        trapped["isError"],
        json!(true),
        "the hook fails closed: {trapped}"
    );
    assert!(client.call("tb_no_such_tool", json!({})).await.is_err());
    assert!(client.call("magg_status", json!({})).await.is_ok());
    for _ in 0..2 {
        client.service.list_tools(None).await.expect("tools/list");
    }

    for format in ["prometheus", "openmetrics"] {
        let after = scrape(&url, format);
        let delta = |name: &str, labels: &[(&str, &str)]| {
            value(&after, name, labels) - value(&before, name, labels)
        };
        let calls = "magg_tool_calls_total";
        let echo = [("server", "tb"), ("tool", "echo")];
        assert_eq!(
            delta(calls, &[echo[0], echo[1], ("outcome", "ok")]),
            3.0,
            "{format}"
        );
        assert_eq!(
            delta(calls, &[echo[0], echo[1], ("outcome", "tool_error")]),
            1.0
        );
        assert_eq!(
            delta(
                calls,
                &[
                    ("server", "tb"),
                    ("tool", "fail"),
                    ("outcome", "tool_error")
                ]
            ),
            1.0
        );
        assert_eq!(delta(calls, &[("server", "magg"), ("outcome", "ok")]), 1.0);
        assert_eq!(delta("magg_unknown_tool_calls_total", &[]), 1.0);
        // Every call was timed; the histogram's buckets add up.
        let count = "magg_tool_call_duration_seconds_count";
        assert_eq!(delta(count, &echo), 4.0, "{format}");
        let inf = value(
            &after,
            "magg_tool_call_duration_seconds_bucket",
            &[echo[0], echo[1], ("le", "+Inf")],
        );
        assert_eq!(inf, value(&after, count, &echo));
        assert!(value(&after, "magg_tool_call_duration_seconds_sum", &echo) > 0.0);
        assert_eq!(delta("magg_list_requests_total", &[("list", "tools")]), 2.0);

        // The hook ran before each of the five calls to tb; it trapped once.
        let hook = [("plugin", "trap-hook"), ("kind", "routing-hook")];
        assert!(delta("magg_plugin_calls_total", &hook) >= 5.0, "{format}");
        assert_eq!(delta("magg_plugin_faults_total", &hook), 1.0);
        assert!(value(&after, "magg_plugin_call_duration_seconds_count", &hook) >= 5.0);

        let tb = [("server", "tb")];
        assert_eq!(value(&after, "magg_backend_up", &tb), 1.0);
        assert_eq!(
            value(&after, "magg_backend_state", &[tb[0], ("state", "running")]),
            1.0
        );
        assert_eq!(
            value(&after, "magg_backend_state", &[tb[0], ("state", "failed")]),
            0.0
        );
        assert_eq!(value(&after, "magg_backend_restarts_total", &tb), 0.0);
        assert!(value(&after, "magg_backend_tools", &tb) >= 5.0);
        let since = value(&after, "magg_backend_state_since_seconds", &tb);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        assert!(
            since > now - 600.0 && since <= now + 1.0,
            "{since} vs {now}"
        );
        assert_eq!(
            value(&after, "magg_sessions", &[("transport", "http")]),
            1.0
        );
        assert_eq!(
            value(&after, "magg_sessions", &[("transport", "stdio")]),
            0.0
        );
        assert_eq!(
            value(
                &after,
                "magg_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
    }

    // A config change: applied, and the client told its tool list changed; a broken file:
    // rejected.
    let mut changed = config.read();
    changed["servers"]["tb2"] = test_backend("tb2", "tb2", &[]);
    config.write(&changed);
    client.notified("tools/list_changed").await;
    let after = eventually("the reload counted", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let s = scrape(&url, "prometheus");
            (value(
                &s,
                "magg_list_changed_notifications_total",
                &[("list", "tools")],
            ) >= 1.0)
                .then_some(s)
        }
    })
    .await;
    assert_eq!(
        value(
            &after,
            "magg_config_reloads_total",
            &[("result", "applied")]
        ),
        1.0
    );
    std::fs::write(&config.path, "{ not json").expect("write");
    eventually("the failed reload counted", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let s = scrape(&url, "prometheus");
            (value(&s, "magg_config_reloads_total", &[("result", "failed")]) == 1.0).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn with_metrics_off_nothing_is_counted_but_states_are_shown() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http_with(
        &config.path,
        &[
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--admin-port",
            "0",
        ],
        &[("MAGG_METRICS", "0")],
    )
    .await;
    let url = metrics_url(&magg).await;
    let client = magg.http_client().await;
    client.tool_names().await;
    client
        .call("tb_echo", json!({"text": "x"}))
        .await
        .expect("call");
    let samples = scrape(&url, "prometheus");
    assert_eq!(value(&samples, "magg_tool_calls_total", &[]), 0.0);
    assert_eq!(value(&samples, "magg_list_requests_total", &[]), 0.0);
    assert_eq!(value(&samples, "magg_backend_up", &[("server", "tb")]), 1.0);
}
