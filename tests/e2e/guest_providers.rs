//! The tool providers shipped in Python (`calc`) and JavaScript (`text-tools`), mounted as
//! servers of magg's config and called through `magg serve` by an MCP client.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, plugin, text};

/// On a cold compile cache a Python or JavaScript component takes seconds to compile.
const COMPILE: Duration = Duration::from_secs(300);

fn mounted(name: &str, prefix: &str, grants: Value) -> TempConfig {
    let source = format!("file://{}", plugin(name).display());
    let mut entry = json!({"source": source, "prefix": prefix});
    if !grants.is_null() {
        entry["grants"] = grants;
    }
    TempConfig::new(&json!({"servers": {name: entry}}))
}

/// Waits until the mounted server's tools are listed, and returns them as JSON.
async fn tools_of(magg: &mut Magg, prefix: &str) -> Vec<Value> {
    let client = magg.client();
    crate::harness::eventually(format!("the tools of {prefix}"), COMPILE, || async {
        let tools = client.service.list_all_tools().await.ok()?;
        let found: Vec<Value> = tools
            .iter()
            .filter(|t| t.name.starts_with(&format!("{prefix}_")))
            .map(|t| serde_json::to_value(t).expect("tool json"))
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .await
}

async fn call(magg: &mut Magg, tool: &str, args: Value) -> Value {
    magg.client()
        .call(tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

#[tokio::test]
async fn python_calc_provider_calculates_describes_and_converts() {
    let config = mounted("calc", "calc", Value::Null);
    let mut magg = Magg::stdio(&config.path).await;
    let tools = tools_of(&mut magg, "calc").await;
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for want in ["calc_calculate", "calc_statistics", "calc_convert_units"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let calculate = tools
        .iter()
        .find(|t| t["name"] == "calc_calculate")
        .unwrap();
    assert_eq!(calculate["inputSchema"]["required"], json!(["expression"]));
    assert_eq!(
        calculate["annotations"]["readOnlyHint"],
        json!(true),
        "{calculate}"
    );
    assert!(calculate["outputSchema"].is_object(), "{calculate}");

    let result = call(
        &mut magg,
        "calc_calculate",
        json!({"expression": "2 * (3 + 4) ** 2"}),
    )
    .await;
    assert!(!is_error(&result), "{result}");
    assert_eq!(result["structuredContent"]["value"], json!(98), "{result}");
    let block: Value = serde_json::from_str(text(&result)).expect("text block is JSON");
    assert_eq!(block["value"], json!(98));

    // Only arithmetic is read: a call of anything else is refused with a reason.
    let refused = call(
        &mut magg,
        "calc_calculate",
        json!({"expression": "__import__('os')"}),
    )
    .await;
    assert!(is_error(&refused), "{refused}");
    assert!(
        text(&refused).contains("unknown function `__import__`"),
        "{refused}"
    );
    let huge = call(
        &mut magg,
        "calc_calculate",
        json!({"expression": "9 ** 9 ** 9"}),
    )
    .await;
    assert!(is_error(&huge), "{huge}");
    assert!(text(&huge).contains("too large"), "{huge}");
    let zero = call(&mut magg, "calc_calculate", json!({"expression": "1 / 0"})).await;
    assert_eq!(text(&zero), "division by zero", "{zero}");

    let stats = call(
        &mut magg,
        "calc_statistics",
        json!({"numbers": [3, 1, 4, 1, 5]}),
    )
    .await;
    assert!(!is_error(&stats), "{stats}");
    assert_eq!(stats["structuredContent"]["count"], json!(5));
    assert_eq!(stats["structuredContent"]["median"], json!(3));
    assert_eq!(stats["structuredContent"]["mean"], json!(2.8));
    let bad = call(&mut magg, "calc_statistics", json!({"numbers": [1, "two"]})).await;
    assert!(text(&bad).contains("numbers[1] must be a number"), "{bad}");

    let boiling = call(
        &mut magg,
        "calc_convert_units",
        json!({"value": 100, "from": "C", "to": "F"}),
    )
    .await;
    assert_eq!(
        boiling["structuredContent"],
        json!({"value": 212.0, "unit": "F"})
    );
    let wrong = call(
        &mut magg,
        "calc_convert_units",
        json!({"value": 1, "from": "kg", "to": "km"}),
    )
    .await;
    assert!(is_error(&wrong), "{wrong}");
    assert!(
        text(&wrong).contains("cannot convert mass (kg) to length (km)"),
        "{wrong}"
    );
}

#[tokio::test]
async fn javascript_text_tools_provider_searches_replaces_encodes_and_parses() {
    // A short time limit, so that a pattern that backtracks without end ends quickly.
    let config = mounted("text-tools", "text", json!({"timeout_ms": 2000}));
    let mut magg = Magg::stdio(&config.path).await;
    let tools = tools_of(&mut magg, "text").await;
    assert_eq!(tools.len(), 5, "{tools:?}");
    let search = tools
        .iter()
        .find(|t| t["name"] == "text_regex_search")
        .unwrap();
    assert_eq!(
        search["inputSchema"]["required"],
        json!(["pattern", "text"])
    );

    let found = call(
        &mut magg,
        "text_regex_search",
        json!({"pattern": "(\\d+)-(?<end>\\d+)", "text": "pages 10-20 and 3-4"}),
    )
    .await;
    assert!(!is_error(&found), "{found}");
    let matches = &found["structuredContent"]["matches"];
    assert_eq!(found["structuredContent"]["count"], json!(2), "{found}");
    assert_eq!(matches[0]["groups"], json!(["10", "20"]));
    assert_eq!(matches[1]["named"]["end"], json!("4"));
    assert_eq!(matches[1]["index"], json!(16));

    let replaced = call(
        &mut magg,
        "text_regex_replace",
        json!({"pattern": "(\\w+)@(\\w+)", "text": "a@b c@d", "replacement": "$2 at $1"}),
    )
    .await;
    assert_eq!(
        replaced["structuredContent"],
        json!({"text": "b at a d at c", "replaced": 2})
    );

    let encoded = call(&mut magg, "text_base64", json!({"text": "héllo wörld"})).await;
    let b64 = encoded["structuredContent"]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert_eq!(b64, "aMOpbGxvIHfDtnJsZA==");
    let decoded = call(
        &mut magg,
        "text_base64",
        json!({"text": b64, "decode": true}),
    )
    .await;
    assert_eq!(decoded["structuredContent"]["text"], json!("héllo wörld"));

    let url = call(
        &mut magg,
        "text_parse_url",
        json!({"url": "https://Example.com:8443/a/b?q=1&q=2&x=a%20b#top"}),
    )
    .await;
    assert_eq!(
        url["structuredContent"],
        json!({"scheme": "https", "user": null, "host": "example.com", "port": 8443,
               "path": "/a/b", "query": {"q": ["1", "2"], "x": ["a b"]}, "fragment": "top"})
    );
    let counted = call(
        &mut magg,
        "text_count_text",
        json!({"text": "one two\nthree é"}),
    )
    .await;
    assert_eq!(
        counted["structuredContent"],
        json!({"characters": 15, "words": 4, "lines": 2, "bytes": 16})
    );

    let invalid = call(
        &mut magg,
        "text_regex_search",
        json!({"pattern": "(", "text": "x"}),
    )
    .await;
    assert!(is_error(&invalid), "{invalid}");
    assert!(
        text(&invalid).contains("`pattern` is not a valid regular expression"),
        "{invalid}"
    );

    // A pattern that backtracks without end: the time limit ends that call only.
    let runaway = call(
        &mut magg,
        "text_regex_search",
        json!({"pattern": "^(a+)+$", "text": format!("{}b", "a".repeat(64))}),
    )
    .await;
    assert!(is_error(&runaway), "{runaway}");
    let after = call(&mut magg, "text_count_text", json!({"text": "still here"})).await;
    assert_eq!(after["structuredContent"]["words"], json!(2), "{after}");
}
