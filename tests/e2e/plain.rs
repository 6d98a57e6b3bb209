//! Components that know nothing of magg, mounted as servers through `magg serve` with a real
//! client: the `plain-geometry` fixture (its own world, `example:geometry`) exports plain
//! functions over records, variants, enums, flags, options, lists, tuples and results, and
//! each becomes a tool with schemas derived from its WIT types.

use serde_json::{Value, json};

use crate::harness::{Magg, TempConfig, WAIT, eventually, magg_body, plugin, run_cli, text};

/// A config mounting the fixture (copied beside it as `file`) as server `geo`.
fn geometry_config(file: &str) -> TempConfig {
    let config = TempConfig::new(&json!({"servers": {}}));
    std::fs::copy(plugin("plain-geometry"), config.dir.path().join(file)).expect("copy");
    config.write(&json!({"servers": {"geo": {"wasm": file, "prefix": "geo"}}}));
    config
}

/// Tools by name, as the client lists them.
async fn tools(magg: &mut Magg) -> serde_json::Map<String, Value> {
    let listed = magg
        .client()
        .service
        .list_all_tools()
        .await
        .expect("tools/list");
    listed
        .into_iter()
        .map(|t| (t.name.to_string(), serde_json::to_value(&t).expect("json")))
        .collect()
}

#[tokio::test]
async fn a_plain_components_functions_are_tools_with_schemas_from_their_wit_types() {
    let config = geometry_config("geometry.wasm");
    let mut magg = Magg::stdio(&config.path).await;
    let tools = tools(&mut magg).await;
    let mut names: Vec<&str> = tools
        .keys()
        .map(String::as_str)
        .filter(|n| n.starts_with("geo_"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "geo_checksum",
            "geo_distance",
            "geo_divide",
            "geo_halve",
            "geo_initial",
            "geo_ping",
            "geo_scale",
            "geo_shapes_area",
            "geo_shapes_measure",
            "geo_shapes_validate_name",
        ]
    );
    let area = &tools["geo_shapes_area"];
    assert_eq!(area["description"], "The area of one shape.");
    let shape = &area["inputSchema"]["properties"]["shape"];
    assert_eq!(shape["oneOf"].as_array().map(Vec::len), Some(4), "{shape}");
    assert_eq!(area["inputSchema"]["required"], json!(["shape"]));
    assert_eq!(
        area["outputSchema"]["properties"]["result"],
        json!({"type": "number"})
    );
    let measure = &tools["geo_shapes_measure"];
    let drawing = &measure["inputSchema"]["properties"]["drawing"];
    assert_eq!(
        drawing["required"],
        json!(["name", "shapes", "style", "unit"])
    );
    assert_eq!(
        drawing["properties"]["unit"]["enum"],
        json!(["millimetre", "centimetre", "metre"])
    );
    assert_eq!(drawing["properties"]["style"]["uniqueItems"], true);
    assert_eq!(measure["outputSchema"]["type"], "object");
    assert_eq!(
        measure["outputSchema"]["properties"]["total-area"]["type"],
        "number"
    );
    let scale = &tools["geo_scale"]["inputSchema"]["properties"];
    assert_eq!(
        scale["factor"],
        json!({"type": "integer", "minimum": 0, "maximum": 255})
    );
    assert_eq!(
        tools["geo_initial"]["description"],
        "Calls the component's function `initial(word: string, upper: option<bool>) -> option<char>`."
    );

    // magg_status says what the component exports and what it does not offer.
    let client = magg.client();
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    let geo = &status["output"]["backends"]["geo"]["component"];
    assert_eq!(geo["exports"], "plain functions", "{geo}");
    let skipped = geo["skipped"].to_string();
    assert!(skipped.contains("[constructor]canvas"), "{skipped}");
    assert!(skipped.contains("canvas-size: parameter `c`"), "{skipped}");
}

#[tokio::test]
async fn calls_to_plain_functions_check_arguments_and_return_structured_content() {
    let config = geometry_config("geometry.wasm");
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    client.tool_names().await;

    let area = client
        .call("geo_shapes_area", json!({"shape": {"square": 3}}))
        .await
        .expect("area");
    assert_ne!(area["isError"], json!(true), "{area}");
    assert_eq!(area["structuredContent"], json!({"result": 9.0}));
    assert_eq!(text(&area), r#"{"result":9.0}"#);

    let summary = client
        .call(
            "geo_shapes_measure",
            json!({"drawing": {"name": "two", "shapes": [{"circle": 1}, "dot"],
                   "style": ["filled"], "unit": "metre", "origin": {"x": 2, "y": 3}}}),
        )
        .await
        .expect("measure");
    assert_ne!(summary["isError"], json!(true), "{summary}");
    let summary = &summary["structuredContent"];
    assert_eq!(summary["count"], 2, "{summary}");
    assert_eq!(summary["labels"], json!(["circle r=1", "dot"]));
    assert_eq!(summary["corner"], json!([2.0, 3.0]));
    assert_eq!(summary["filled"], true);

    // Arguments that do not fit: an error result naming where and what was expected.
    for (tool, args, said) in [
        (
            "geo_shapes_area",
            json!({"shape": {"hexagon": 1}}),
            r#"arguments.shape: expected one of "circle", "square", "rectangle", "dot", got "hexagon""#,
        ),
        (
            "geo_shapes_measure",
            json!({"drawing": {"name": "d", "shapes": [], "style": [], "unit": "inch"}}),
            r#"arguments.drawing.unit: expected one of "millimetre", "centimetre", "metre", got the string "inch""#,
        ),
        (
            "geo_scale",
            json!({"factor": -1, "values": []}),
            "arguments.factor: expected an integer from 0 to 255, got -1",
        ),
        (
            "geo_initial",
            json!({}),
            "arguments.word: missing (expected string)",
        ),
    ] {
        let result = client.call(tool, args).await.expect("a result");
        assert_eq!(result["isError"], json!(true), "{result}");
        assert_eq!(text(&result), said);
    }

    // A function returning `result<_, string>`: err is an error result with its message.
    let refused = client
        .call("geo_shapes_validate_name", json!({"name": ""}))
        .await
        .expect("validate");
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert_eq!(text(&refused), "the name is empty");
    let fine = client
        .call("geo_shapes_validate_name", json!({"name": "fine"}))
        .await
        .expect("validate");
    assert_eq!(fine["structuredContent"], json!({"result": null}), "{fine}");

    // A trap ends only its call.
    let trapped = client
        .call("geo_divide", json!({"dividend": 1, "divisor": 0}))
        .await
        .expect("a result");
    assert_eq!(trapped["isError"], json!(true), "{trapped}");
    let said = text(&trapped);
    assert!(
        said.contains("Server `geo`") && said.contains("trapped"),
        "{said}"
    );
    let divided = client
        .call("geo_divide", json!({"dividend": 9, "divisor": -2}))
        .await
        .expect("divide");
    assert_eq!(divided["structuredContent"], json!({"result": -4}));
}

#[tokio::test]
async fn replacing_a_tool_provider_with_a_plain_component_swaps_its_tools() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let file = config.dir.path().join("swap.wasm");
    std::fs::copy(plugin("test-provider"), &file).expect("copy");
    config.write(&json!({"servers": {"sw": {"wasm": "swap.wasm", "prefix": "sw"}}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    assert!(client.tool_names().await.contains(&"sw_echo".to_owned()));

    let tmp = config.dir.path().join(".swap.partial");
    std::fs::copy(plugin("plain-geometry"), &tmp).expect("copy");
    std::fs::rename(&tmp, &file).expect("rename");
    magg.wait_for_log("replaced").await;
    let client = magg.client();
    let names = eventually("the plain component's tools are listed", WAIT, || async {
        let names = client.tool_names().await;
        names
            .contains(&"sw_shapes_area".to_owned())
            .then_some(names)
    })
    .await;
    assert!(!names.contains(&"sw_echo".to_owned()), "{names:?}");
    let area = client
        .call("sw_shapes_area", json!({"shape": "dot"}))
        .await
        .expect("area");
    assert_eq!(area["structuredContent"], json!({"result": 0.0}), "{area}");
}

#[tokio::test]
async fn plugin_check_lists_a_plain_components_tools_and_what_it_skips() {
    let file = plugin("plain-geometry");
    let (code, out, err) = run_cli(&["plugin", "check", file.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": plain functions"), "{out}");
    assert!(out.contains("tools (10):"), "{out}");
    assert!(
        out.contains("shapes_measure: Counts and labels the shapes of a drawing and sums their areas. Fails for a drawing without shapes."),
        "{out}"
    );
    assert!(out.contains("not offered as tools (3):"), "{out}");
    assert!(
        out.contains("#canvas-size: parameter `c`: borrow<resource> is a resource handle"),
        "{out}"
    );
}
