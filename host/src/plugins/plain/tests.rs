//! Tests of plain components: tool names, and the tools, schemas and calls of the
//! `plain-geometry` fixture (built by `bash plugins/build.sh`; the fixture tests say so and
//! pass without checking anything when it is not built).

use std::path::PathBuf;

use serde_json::{Value, json};
use wasmtime::{
    Config, Engine, Store,
    component::{Component, Linker, ResourceTable, types::ComponentItem},
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::*;

#[test]
fn tool_names_join_interface_and_function_in_snake_case() {
    assert_eq!(interface_name("example:geometry/shapes@0.1.0"), "shapes");
    assert_eq!(interface_name("wasi:cli/run"), "run");
    assert_eq!(interface_name("my-api"), "my-api");
    assert_eq!(
        tool_name(Some("example:geometry/shapes@0.1.0"), "validate-name"),
        "shapes_validate_name"
    );
    assert_eq!(tool_name(Some("my-api"), "get"), "my_api_get");
    assert_eq!(tool_name(None, "area-of"), "area_of");
}

#[test]
fn arg_errors_name_the_path_and_what_was_expected() {
    let e = ArgError {
        path: "arguments.shape".into(),
        message: "expected one of \"circle\", \"square\", got \"hexagon\"".into(),
    };
    assert_eq!(
        e.to_string(),
        "arguments.shape: expected one of \"circle\", \"square\", got \"hexagon\""
    );
}

/// A component that imports types and one function `f` over them (no guest code): gives the
/// pure tests wasmtime's `Type`s of records, variants, enums, flags, lists, options, tuples
/// and results. Returns `f`'s parameters and result.
fn sample() -> (Vec<(String, Type)>, Type) {
    use wasm_encoder::{
        ComponentImportSection, ComponentTypeRef, ComponentTypeSection, ComponentValType as V,
        PrimitiveValType as P, TypeBounds,
    };
    let mut c = wasm_encoder::Component::new();
    let mut named = ComponentTypeSection::new();
    named.defined_type().record([("x", P::F64), ("y", P::F64)]); // 0
    named
        .defined_type()
        .variant([("circle", Some(V::Primitive(P::F64))), ("dot", None)]); // 1
    named.defined_type().enum_type(["small", "large"]); // 2
    named.defined_type().flags(["read", "write"]); // 3
    c.section(&named);
    let mut names = ComponentImportSection::new();
    for (i, name) in ["point", "shape", "size", "perm"].into_iter().enumerate() {
        names.import(name, ComponentTypeRef::Type(TypeBounds::Eq(i as u32))); // 4..=7
    }
    c.section(&names);
    let mut types = ComponentTypeSection::new();
    types.defined_type().list(P::U8); // 8
    types.defined_type().option(P::U32); // 9
    types.defined_type().tuple([P::S8, P::Char]); // 10
    types
        .defined_type()
        .result(Some(V::Primitive(P::String)), Some(V::Primitive(P::U16))); // 11
    types.defined_type().list(V::Type(4)); // 12
    types
        .defined_type()
        .result(Some(V::Type(4)), Some(V::Primitive(P::String))); // 13
    types.defined_type().option(V::Type(4)); // 14
    types
        .function()
        .params([
            ("p", V::Type(4)),
            ("s", V::Type(5)),
            ("size", V::Type(6)),
            ("perm", V::Type(7)),
            ("bytes", V::Type(8)),
            ("n", V::Type(9)),
            ("t", V::Type(10)),
            ("r", V::Type(11)),
            ("pts", V::Type(12)),
            ("flag", V::Primitive(P::Bool)),
            ("big", V::Primitive(P::U64)),
            ("neg", V::Primitive(P::S64)),
            ("maybe", V::Type(14)),
            ("small", V::Primitive(P::F32)),
        ])
        .result(Some(V::Type(13))); // 15
    c.section(&types);
    let mut imports = ComponentImportSection::new();
    imports.import("f", ComponentTypeRef::Func(15));
    c.section(&imports);
    let engine = Engine::default();
    let component = Component::new(&engine, c.finish()).expect("the sample component is valid");
    let ty = component.component_type();
    let f = ty.get_import(&engine, "f").expect("imports f");
    let ComponentItem::ComponentFunc(f) = f.ty else {
        panic!("f is a function")
    };
    let params = f.params().map(|(n, t)| (n.to_owned(), t)).collect();
    let result = f.results().next().expect("f returns");
    (params, result)
}

fn param<'a>(params: &'a [(String, Type)], name: &str) -> &'a Type {
    &params.iter().find(|(n, _)| n == name).expect("parameter").1
}

#[test]
fn schema_of_each_kind_of_type() {
    let (params, result) = sample();
    let d = Deriver { docs: None };
    let s = |name: &str| d.schema(param(&params, name)).expect("has a schema");
    assert_eq!(
        s("p"),
        json!({"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
               "required": ["x", "y"], "additionalProperties": false})
    );
    assert_eq!(
        s("s"),
        json!({"oneOf": [
            {"type": "object", "properties": {"circle": {"type": "number"}}, "required": ["circle"], "additionalProperties": false},
            {"type": "string", "enum": ["dot"]},
        ]})
    );
    assert_eq!(
        s("size"),
        json!({"type": "string", "enum": ["small", "large"]})
    );
    assert_eq!(
        s("perm"),
        json!({"type": "array", "items": {"type": "string", "enum": ["read", "write"]}, "uniqueItems": true})
    );
    assert_eq!(
        s("bytes"),
        json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}})
    );
    assert_eq!(
        s("n"),
        json!({"type": ["integer", "null"], "minimum": 0, "maximum": 4294967295u32})
    );
    assert_eq!(
        s("t"),
        json!({"type": "array", "prefixItems": [
            {"type": "integer", "minimum": -128, "maximum": 127},
            {"type": "string", "minLength": 1, "maxLength": 1},
        ], "items": false, "minItems": 2, "maxItems": 2})
    );
    assert_eq!(
        s("r"),
        json!({"oneOf": [
            {"type": "object", "properties": {"ok": {"type": "string"}}, "required": ["ok"], "additionalProperties": false},
            {"type": "object", "properties": {"err": {"type": "integer", "minimum": 0, "maximum": 65535}}, "required": ["err"], "additionalProperties": false},
        ]})
    );
    assert_eq!(s("flag"), json!({"type": "boolean"}));
    assert_eq!(
        s("big"),
        json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
    );
    assert_eq!(
        s("neg"),
        json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
    );
    // An option of a record may be null.
    assert_eq!(s("maybe")["type"], json!(["object", "null"]));
    assert_eq!(s("maybe")["required"], json!(["x", "y"]));
    // `result<point, string>` returned: the record is the structured content as it is.
    assert_eq!(output_schema(&result, &d).expect("has one"), s("p"));
    assert_eq!(
        schema::wit(param(&params, "s")),
        "variant { circle(f64), dot }"
    );
    assert_eq!(
        schema::wit_short(param(&params, "r")),
        "result<string, u16>"
    );
}

#[test]
fn json_converts_to_values_and_back() {
    let (params, _) = sample();
    let cases = [
        ("p", json!({"x": 1.5, "y": -2.0})),
        ("s", json!({"circle": 2.0})),
        ("s", json!("dot")),
        ("size", json!("large")),
        ("perm", json!(["read", "write"])),
        ("bytes", json!([0, 7, 255])),
        ("n", json!(null)),
        ("n", json!(4294967295u32)),
        ("t", json!([-128, "é"])),
        ("r", json!({"ok": "fine"})),
        ("r", json!({"err": 404})),
        ("pts", json!([{"x": 0.0, "y": 1.0}])),
        ("flag", json!(true)),
        ("big", json!(u64::MAX)),
        ("neg", json!(i64::MIN)),
        ("small", json!(0.1)),
    ];
    for (name, value) in cases {
        let ty = param(&params, name);
        let val = convert::to_val(ty, &value, "arguments.x")
            .unwrap_or_else(|e| panic!("{name} {value}: {e}"));
        assert_eq!(convert::to_json(ty, &val), value, "{name} round trip");
    }
    // Accepted but written another way: a case without a value given as {"dot": null},
    // a repeated flag, and the floats JSON cannot write.
    let s = param(&params, "s");
    let dot = convert::to_val(s, &json!({"dot": null}), "a").expect("accepted");
    assert_eq!(convert::to_json(s, &dot), json!("dot"));
    let perm = param(&params, "perm");
    let twice = convert::to_val(perm, &json!(["read", "read"]), "a").expect("accepted");
    assert_eq!(convert::to_json(perm, &twice), json!(["read"]));
    let small = param(&params, "small");
    for v in ["NaN", "Infinity", "-Infinity"] {
        let val = convert::to_val(small, &json!(v), "a").expect("accepted");
        assert_eq!(convert::to_json(small, &val), json!(v));
    }
}

#[test]
fn values_that_do_not_fit_say_where_and_why() {
    let (params, _) = sample();
    let fail = |name: &str, value: Value| {
        convert::to_val(param(&params, name), &value, &format!("arguments.{name}"))
            .expect_err("does not fit")
            .to_string()
    };
    assert_eq!(
        fail("p", json!({"x": 1})),
        "arguments.p.y: missing (expected f64)"
    );
    assert_eq!(
        fail("p", json!({"x": 1, "y": 2, "z": 3})),
        r#"arguments.p.z: unknown; expected only "x", "y""#
    );
    assert_eq!(
        fail("p", json!([1, 2])),
        r#"arguments.p: expected an object with "x", "y", got an array of 2 item(s)"#
    );
    assert_eq!(
        fail("s", json!({"square": 1})),
        r#"arguments.s: expected one of "circle", "dot", got "square""#
    );
    assert_eq!(
        fail("s", json!({"dot": 1})),
        "arguments.s.dot: expected no value (null), got 1"
    );
    assert_eq!(
        fail("size", json!("huge")),
        r#"arguments.size: expected one of "small", "large", got the string "huge""#
    );
    assert_eq!(
        fail("bytes", json!([1, 256])),
        "arguments.bytes[1]: expected an integer from 0 to 255, got 256"
    );
    assert_eq!(
        fail("bytes", json!("AAEC")),
        r#"arguments.bytes: expected an array, got the string "AAEC""#
    );
    assert_eq!(
        fail("t", json!([1, "ab"])),
        r#"arguments.t[1]: expected a string of one character, got the string "ab""#
    );
    assert_eq!(
        fail("r", json!({"ok": "x", "err": 1})),
        r#"arguments.r: expected {"ok": value} or {"err": value}, got an object"#
    );
    assert_eq!(
        fail("neg", json!(1.5)),
        "arguments.neg: expected an integer from -9223372036854775808 to 9223372036854775807, got 1.5"
    );
    assert_eq!(
        fail("small", json!(1e300)),
        "arguments.small: 1e+300 is out of range for an f32"
    );
    assert_eq!(
        fail("flag", json!("yes")),
        r#"arguments.flag: expected true or false, got the string "yes""#
    );
}

/// The built fixture, or `None` (with a note on stderr) when it is not built.
fn fixture() -> Option<Vec<u8>> {
    let path = std::env::var_os("MAGG_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/fixtures")
        })
        .join("plain-geometry.wasm");
    match std::fs::read(&path) {
        Ok(wasm) => Some(wasm),
        Err(e) => {
            eprintln!(
                "SKIPPED: {} is not built ({e}); run `bash plugins/build.sh` to test against it",
                path.display()
            );
            None
        }
    }
}

struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// An engine, a WASI linker granting nothing, and the fixture compiled with its tools.
struct Fixture {
    engine: Engine,
    linker: Linker<State>,
    component: Component,
    tools: PlainTools,
}

impl Fixture {
    fn load() -> Option<Fixture> {
        let wasm = fixture()?;
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
        let component = Component::new(&engine, &wasm).expect("the fixture compiles");
        let tools = PlainTools::read(&component, &wasm, "plain-geometry");
        Some(Fixture {
            engine,
            linker,
            component,
            tools,
        })
    }

    fn tool(&self, name: &str) -> &PlainTool {
        self.tools
            .get(name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    }

    /// Calls `name` in a fresh instance.
    async fn call(&self, name: &str, arguments: Value) -> wasmtime::Result<CallToolResult> {
        let mut store = Store::new(
            &self.engine,
            State {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = self
            .linker
            .instantiate_async(&mut store, &self.component)
            .await?;
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            _ => None,
        };
        self.tool(name)
            .call(&mut store, &instance, arguments.as_ref())
            .await
    }

    async fn ok(&self, name: &str, arguments: Value) -> Value {
        let result = self.call(name, arguments).await.expect("no trap");
        assert_eq!(result.is_error, Some(false), "{name}: {result:?}");
        let structured = result
            .structured_content
            .clone()
            .expect("structured content");
        assert_eq!(
            text(&result),
            structured.to_string(),
            "the text is the same JSON"
        );
        structured
    }

    async fn fails(&self, name: &str, arguments: Value) -> String {
        let result = self.call(name, arguments).await.expect("no trap");
        assert_eq!(result.is_error, Some(true), "{name}: {result:?}");
        text(&result)
    }
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn schema(tool: &PlainTool) -> Value {
    Value::Object((*tool.input_schema).clone())
}

fn output(tool: &PlainTool) -> Value {
    Value::Object((*tool.output_schema.clone().expect("an output schema")).clone())
}

#[test]
fn every_plain_function_is_a_tool_and_resources_are_skipped() {
    let Some(f) = Fixture::load() else { return };
    let mut names: Vec<&str> = f.tools.tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "checksum",
            "distance",
            "divide",
            "halve",
            "initial",
            "ping",
            "scale",
            "shapes_area",
            "shapes_measure",
            "shapes_validate_name",
        ]
    );
    let skipped: Vec<String> = f.tools.skipped.iter().map(|s| s.to_string()).collect();
    assert!(
        skipped.iter().any(|s| s.starts_with(
            "example:geometry/shapes@0.1.0#[constructor]canvas: a resource's constructor"
        )),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|s| s.starts_with("example:geometry/shapes@0.1.0#canvas-size: parameter `c`: borrow<resource> is a resource handle")),
        "{skipped:?}"
    );
    assert_eq!(
        f.tool("shapes_area").export,
        "example:geometry/shapes@0.1.0#area"
    );
}

#[test]
fn descriptions_come_from_wit_docs_or_the_signature() {
    let Some(f) = Fixture::load() else { return };
    assert_eq!(f.tool("shapes_area").description, "The area of one shape.");
    assert_eq!(
        f.tool("distance").description,
        "The distance between two points, each given as (x, y)."
    );
    // `initial` has no docs.
    assert_eq!(
        f.tool("initial").description,
        "Calls the component's function `initial(word: string, upper: option<bool>) -> option<char>`."
    );
}

#[test]
fn schemas_follow_the_wit_types() {
    let Some(f) = Fixture::load() else { return };
    assert_eq!(
        schema(f.tool("scale")),
        json!({
            "type": "object",
            "properties": {
                "factor": {"type": "integer", "minimum": 0, "maximum": 255},
                "values": {"type": "array", "items": {"type": "integer", "minimum": -32768, "maximum": 32767}},
            },
            "required": ["factor", "values"],
            "additionalProperties": false,
        })
    );
    assert_eq!(
        output(f.tool("scale")),
        json!({
            "type": "object",
            "properties": {"result": {"type": "array", "items": {"type": "integer", "minimum": -2147483648i64, "maximum": 2147483647}}},
            "required": ["result"],
            "additionalProperties": false,
        })
    );
    // An option parameter is not required and may be null.
    let initial = schema(f.tool("initial"));
    assert_eq!(initial["required"], json!(["word"]));
    assert_eq!(
        initial["properties"]["upper"],
        json!({"type": ["boolean", "null"]})
    );
    assert_eq!(
        output(f.tool("initial"))["properties"]["result"],
        json!({"type": ["string", "null"], "minLength": 1, "maxLength": 1})
    );
    // A tuple is an array with one schema per item.
    assert_eq!(
        schema(f.tool("distance"))["properties"]["a"],
        json!({"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": false, "minItems": 2, "maxItems": 2})
    );
    // A variant: one schema per case; field and case docs become descriptions.
    let shape = &schema(f.tool("shapes_area"))["properties"]["shape"];
    let cases = shape["oneOf"].as_array().expect("oneOf");
    assert_eq!(cases.len(), 4);
    assert_eq!(cases[0]["properties"]["circle"], json!({"type": "number"}));
    assert_eq!(cases[0]["description"], "A circle, by its radius.");
    assert_eq!(
        cases[3],
        json!({"type": "string", "enum": ["dot"], "description": "A point without extent."})
    );
    assert_eq!(shape["description"], "A shape, by kind.");
    // A record: an object, all fields required but the option ones; enums and flags.
    let drawing = &schema(f.tool("shapes_measure"))["properties"]["drawing"];
    assert_eq!(
        drawing["required"],
        json!(["name", "shapes", "style", "unit"])
    );
    assert_eq!(drawing["additionalProperties"], false);
    assert_eq!(
        drawing["properties"]["unit"],
        json!({"type": "string", "enum": ["millimetre", "centimetre", "metre"], "description": "The unit of every length."})
    );
    assert_eq!(
        drawing["properties"]["style"],
        json!({"type": "array", "items": {"type": "string", "enum": ["filled", "dashed", "shadowed"]}, "uniqueItems": true, "description": "How it is drawn."})
    );
    let origin = &drawing["properties"]["origin"];
    assert_eq!(origin["type"], json!(["object", "null"]));
    assert_eq!(
        origin["properties"]["x"]["description"],
        "Distance along the horizontal axis."
    );
    // A list of variants.
    let shapes = &drawing["properties"]["shapes"]["items"];
    assert_eq!(shapes["oneOf"].as_array().map(Vec::len), Some(4));
    // A record result is the structured content as it is; `result<T, E>` describes T.
    let summary = output(f.tool("shapes_measure"));
    assert_eq!(summary["type"], "object");
    assert_eq!(
        summary["properties"]["labels"],
        json!({"type": "array", "items": {"type": "string"}, "description": "One label per shape, e.g. `circle r=1`."})
    );
    assert_eq!(
        summary["required"],
        json!(["count", "total-area", "unit", "labels", "corner", "filled"])
    );
    assert_eq!(
        output(f.tool("shapes_validate_name"))["properties"]["result"],
        json!({"type": "null"})
    );
    // A function without a result has no output schema.
    assert!(f.tool("ping").output_schema.is_none());
    // list<u8> is an array of bytes.
    assert_eq!(
        schema(f.tool("checksum"))["properties"]["data"]["items"],
        json!({"type": "integer", "minimum": 0, "maximum": 255})
    );
}

#[tokio::test]
async fn calls_return_structured_content() {
    let Some(f) = Fixture::load() else { return };
    assert_eq!(
        f.ok("shapes_area", json!({"shape": {"square": 3.0}})).await,
        json!({"result": 9.0})
    );
    assert_eq!(
        f.ok("shapes_area", json!({"shape": "dot"})).await,
        json!({"result": 0.0})
    );
    assert_eq!(
        f.ok(
            "shapes_area",
            json!({"shape": {"rectangle": {"width": 2, "height": 4.5}}})
        )
        .await,
        json!({"result": 9.0})
    );
    let summary = f
        .ok(
            "shapes_measure",
            json!({"drawing": {
                "name": "two",
                "shapes": [{"square": 2}, {"rectangle": {"width": 1, "height": 3}}],
                "origin": {"x": 1, "y": -2},
                "style": ["filled", "dashed"],
                "unit": "metre",
            }}),
        )
        .await;
    assert_eq!(
        summary,
        json!({
            "count": 2,
            "total-area": 7.0,
            "unit": "metre",
            "labels": ["square side=2", "rectangle 1x3"],
            "corner": [1.0, -2.0],
            "filled": true,
        })
    );
    // The option field may be omitted.
    let summary = f
        .ok(
            "shapes_measure",
            json!({"drawing": {"name": "one", "shapes": ["dot"], "style": [], "unit": "millimetre"}}),
        )
        .await;
    assert_eq!(summary["corner"], json!([0.0, 0.0]));
    assert_eq!(summary["filled"], false);
    assert_eq!(
        f.ok("scale", json!({"factor": 3, "values": [-2, 1000]}))
            .await,
        json!({"result": [-6, 3000]})
    );
    assert_eq!(
        f.ok("checksum", json!({"data": [1, 2, 255]})).await,
        json!({"result": [258, 3]})
    );
    assert_eq!(
        f.ok("initial", json!({"word": "hello", "upper": true}))
            .await,
        json!({"result": "H"})
    );
    assert_eq!(
        f.ok("initial", json!({"word": "", "upper": null})).await,
        json!({"result": null})
    );
    assert_eq!(
        f.ok("distance", json!({"a": [0, 0], "b": [3, 4]})).await,
        json!({"result": 5.0})
    );
    assert_eq!(
        f.ok("halve", json!({"value": 2.2})).await,
        json!({"result": 1.1})
    );
    assert_eq!(
        f.ok("shapes_validate_name", json!({"name": "ok"})).await,
        json!({"result": null})
    );
    let ping = f.call("ping", json!({})).await.expect("no trap");
    assert_eq!(ping.is_error, Some(false));
    assert_eq!(text(&ping), "ok");
    assert!(ping.structured_content.is_none());
}

#[tokio::test]
async fn an_err_result_is_an_error_result() {
    let Some(f) = Fixture::load() else { return };
    assert_eq!(
        f.fails("shapes_validate_name", json!({"name": ""})).await,
        "the name is empty"
    );
    assert_eq!(
        f.fails(
            "shapes_measure",
            json!({"drawing": {"name": "empty", "shapes": [], "style": [], "unit": "metre"}})
        )
        .await,
        "drawing `empty` has no shapes"
    );
}

#[tokio::test]
async fn bad_arguments_say_where_and_what_was_expected() {
    let Some(f) = Fixture::load() else { return };
    assert_eq!(
        f.fails("shapes_area", json!({"shape": {"hexagon": 1}}))
            .await,
        r#"arguments.shape: expected one of "circle", "square", "rectangle", "dot", got "hexagon""#
    );
    assert_eq!(
        f.fails("shapes_area", json!({})).await,
        "arguments.shape: missing (expected variant)"
    );
    assert_eq!(
        f.fails("shapes_area", json!({"shape": "circle"})).await,
        r#"arguments.shape: case "circle" needs a value: {"circle": f64}"#
    );
    assert_eq!(
        f.fails("scale", json!({"factor": 300, "values": []})).await,
        "arguments.factor: expected an integer from 0 to 255, got 300"
    );
    assert_eq!(
        f.fails("scale", json!({"factor": 1, "values": [1, "two"]}))
            .await,
        r#"arguments.values[1]: expected an integer from -32768 to 32767, got the string "two""#
    );
    assert_eq!(
        f.fails("scale", json!({"factor": 1, "values": [], "extra": true}))
            .await,
        r#"arguments.extra: unknown; expected only "factor", "values""#
    );
    assert_eq!(
        f.fails(
            "shapes_measure",
            json!({"drawing": {"name": "d", "shapes": ["dot", {"square": "big"}], "style": [], "unit": "metre"}})
        )
        .await,
        r#"arguments.drawing.shapes[1].square: expected a number, got the string "big""#
    );
    assert_eq!(
        f.fails(
            "shapes_measure",
            json!({"drawing": {"name": "d", "shapes": [], "style": ["bold"], "unit": "inch"}})
        )
        .await,
        r#"arguments.drawing.style[0]: expected one of "filled", "dashed", "shadowed", got the string "bold""#
    );
    assert_eq!(
        f.fails("initial", json!({"word": 7})).await,
        "arguments.word: expected a string, got 7"
    );
    assert_eq!(
        f.fails("distance", json!({"a": [0], "b": [0, 0]})).await,
        "arguments.a: expected an array of 2 item(s), got an array of 1 item(s)"
    );
}

#[tokio::test]
async fn a_trap_ends_only_its_call() {
    let Some(f) = Fixture::load() else { return };
    let trapped = f.call("divide", json!({"dividend": 1, "divisor": 0})).await;
    assert!(trapped.is_err(), "{trapped:?}");
    assert_eq!(
        f.ok("divide", json!({"dividend": -9, "divisor": 2})).await,
        json!({"result": -4})
    );
}
