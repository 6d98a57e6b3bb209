//! Components that know nothing of magg: a component that exports plain functions over
//! ordinary WIT types (as wassette runs them) is offered as tools, one per exported function.
//!
//! # Design
//! - [`PlainTools::read`] lists a compiled component's exported functions (top-level ones and
//!   those of exported interfaces) once, at load, and derives each one's tool: its name, its
//!   description, and JSON Schemas of its arguments and result ([`schema`] says how each WIT
//!   type is written in JSON). A function that takes or returns what JSON cannot carry
//!   (resources, futures, streams) is skipped, with the reason kept in
//!   [`PlainTools::skipped`] for the log and `magg plugin check`.
//! - Tool names: the function's name, prefixed by its interface's name and `_` when it is in
//!   an exported interface, with `-` written `_` (`example:geometry/shapes@0.1.0`'s
//!   `validate-name` is `shapes_validate_name`; a top-level `distance` is `distance`).
//!   Argument and field names stay as WIT spells them.
//! - Descriptions come from the WIT docs when the component carries a `package-docs` section
//!   ([`docs`]), else from the function's signature.
//! - A call ([`PlainTool::call`]) checks the arguments against the parameter types first:
//!   arguments that do not fit are an error result naming where and what was expected
//!   (`arguments.shape: expected one of "circle", "square", …`), and the guest never runs.
//!   The return value is the result's structured content, wrapped as `{"result": value}`
//!   unless it is a record (so it is always an object, as MCP asks), plus a text block with
//!   the same JSON. A returned `result<T, E>` that is `err` is an error result whose text is
//!   the error (a string as it is, anything else as JSON).
//! - The caller owns the store and instance (a fresh one per call, with the grants and limits
//!   of the component's config); this module only looks up the function and converts values.

mod convert;
mod docs;
mod schema;

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Map, Value, json};
use wasmtime::{
    Store,
    component::{
        Component, ComponentExportIndex, Instance, Type, Val,
        types::{ComponentFunc, ComponentItem},
    },
};

pub use self::convert::ArgError;
use self::{docs::PackageDocs, schema::Deriver};
use super::{
    Kind, PluginError,
    config::PluginConfig,
    instance::{Call, Prepared, Runtime},
};
use crate::mcp::{ToolText, error_result};

/// The tools of a component's plain exported functions.
#[derive(Clone, Default)]
pub struct PlainTools {
    /// One tool per function that can be offered, in export order.
    pub tools: Vec<Arc<PlainTool>>,
    /// The exported functions (or whole interfaces) that cannot be offered, and why.
    pub skipped: Vec<Skipped>,
}

/// An exported function that is not offered as a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The function as the component exports it (`interface#function`, or its name).
    pub export: String,
    /// Why it is not offered.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.export, self.reason)
    }
}

/// One exported function, as a tool.
pub struct PlainTool {
    /// The tool's name (see the module docs for the rule).
    pub name: String,
    /// What it does: its WIT docs, or a sentence made from its signature.
    pub description: String,
    /// The JSON Schema of its arguments (an object, one property per parameter).
    pub input_schema: Arc<JsonObject>,
    /// The JSON Schema of its structured result, when it returns something.
    pub output_schema: Option<Arc<JsonObject>>,
    /// The function as the component exports it (`interface#function`, or its name).
    pub export: String,
    index: ComponentExportIndex,
    params: Vec<(String, Type)>,
    result: Option<Type>,
}

impl std::fmt::Debug for PlainTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainTool")
            .field("name", &self.name)
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

/// Export names of interfaces that are never offered as tools: WASI's entry points (a
/// command's `run`, an HTTP handler) and magg's own plugin interfaces.
fn reserved_interface(export: &str) -> Option<&'static str> {
    if export.starts_with("wasi:") {
        Some("a WASI interface (an entry point of the component), not offered as tools")
    } else if export.starts_with("magg:") {
        Some("a magg plugin interface, loaded as such and not as plain functions")
    } else {
        None
    }
}

impl PlainTools {
    /// Lists the tools of `component`, compiled from `wasm` (read again here only for its
    /// docs section). `name` names the component in log lines.
    pub fn read(component: &Component, wasm: &[u8], name: &str) -> PlainTools {
        let docs = PackageDocs::read(wasm, name);
        let engine = component.engine();
        let mut out = PlainTools::default();
        for (export, item) in component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(func) => {
                    let Some(index) = component.get_export_index(None, export) else {
                        continue;
                    };
                    let doc = docs.as_ref().and_then(|d| d.world_func(export));
                    let deriver = Deriver { docs: None };
                    out.add(None, export, &func, index, doc, &deriver);
                }
                ComponentItem::ComponentInstance(instance) => {
                    if let Some(reason) = reserved_interface(export) {
                        out.skipped.push(Skipped {
                            export: export.to_owned(),
                            reason: reason.to_owned(),
                        });
                        continue;
                    }
                    let Some(iface) = component.get_export_index(None, export) else {
                        continue;
                    };
                    let iface_docs = docs.as_ref().and_then(|d| d.interface(export));
                    let deriver = Deriver { docs: iface_docs };
                    for (fname, fitem) in instance.exports(engine) {
                        let ComponentItem::ComponentFunc(func) = fitem.ty else {
                            continue;
                        };
                        let Some(index) = component.get_export_index(Some(&iface), fname) else {
                            continue;
                        };
                        let doc = iface_docs.and_then(|d| d.func(fname));
                        out.add(Some(export), fname, &func, index, doc, &deriver);
                    }
                }
                _ => {}
            }
        }
        for skipped in &out.skipped {
            tracing::info!("{name}: {skipped}");
        }
        out
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<PlainTool>> {
        self.tools.iter().find(|t| t.name == name)
    }

    fn add(
        &mut self,
        iface: Option<&str>,
        fname: &str,
        func: &ComponentFunc,
        index: ComponentExportIndex,
        doc: Option<&str>,
        deriver: &Deriver<'_>,
    ) {
        let export = match iface {
            Some(i) => format!("{i}#{fname}"),
            None => fname.to_owned(),
        };
        match PlainTool::derive(iface, fname, func, index, doc, deriver, &export) {
            Ok(tool) => {
                if let Some(taken) = self.get(&tool.name) {
                    self.skipped.push(Skipped {
                        reason: format!(
                            "its tool name `{}` is already that of {}",
                            tool.name, taken.export
                        ),
                        export,
                    });
                } else {
                    self.tools.push(Arc::new(tool));
                }
            }
            Err(reason) => self.skipped.push(Skipped { export, reason }),
        }
    }
}

/// The last part of an interface's export name: `example:geometry/shapes@0.1.0` → `shapes`.
pub(crate) fn interface_name(export: &str) -> &str {
    let name = export.rsplit_once('/').map_or(export, |(_, n)| n);
    name.split_once('@').map_or(name, |(n, _)| n)
}

/// `name` made a valid MCP tool name part: `-` and anything else outside
/// `[A-Za-z0-9_.]` become `_`.
fn tool_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The tool name of function `fname`, in interface `iface` when it is in one.
pub fn tool_name(iface: Option<&str>, fname: &str) -> String {
    match iface {
        Some(i) => format!("{}_{}", tool_part(interface_name(i)), tool_part(fname)),
        None => tool_part(fname),
    }
}

impl PlainTool {
    fn derive(
        iface: Option<&str>,
        fname: &str,
        func: &ComponentFunc,
        index: ComponentExportIndex,
        doc: Option<&str>,
        deriver: &Deriver<'_>,
        export: &str,
    ) -> Result<PlainTool, String> {
        if fname.starts_with('[') {
            return Err("a resource's constructor or method (resources have no JSON form)".into());
        }
        if func.async_() {
            return Err("an async function (magg calls components without the async ABI)".into());
        }
        let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_owned(), t)).collect();
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (pname, ty) in &params {
            let schema = deriver
                .schema(ty)
                .map_err(|why| format!("parameter `{pname}`: {why}"))?;
            if !matches!(ty, Type::Option(_)) {
                required.push(pname.clone());
            }
            properties.insert(pname.clone(), schema);
        }
        let input = schema::object(properties, required);
        let result = func.results().next();
        let output = match &result {
            Some(ty) => {
                Some(output_schema(ty, deriver).map_err(|why| format!("its result: {why}"))?)
            }
            None => None,
        };
        let signature = format!(
            "{fname}({}){}",
            params
                .iter()
                .map(|(n, t)| format!("{n}: {}", schema::wit_short(t)))
                .collect::<Vec<_>>()
                .join(", "),
            result
                .as_ref()
                .map(|t| format!(" -> {}", schema::wit_short(t)))
                .unwrap_or_default()
        );
        let description = match doc {
            Some(text) => text.to_owned(),
            None => match iface {
                Some(i) => format!("Calls `{signature}` of the component's interface {i}."),
                None => format!("Calls the component's function `{signature}`."),
            },
        };
        Ok(PlainTool {
            name: tool_name(iface, fname),
            description,
            input_schema: Arc::new(as_object(input)),
            output_schema: output.map(|o| Arc::new(as_object(o))),
            export: export.to_owned(),
            index,
            params,
            result,
        })
    }

    /// The tool as MCP lists it.
    pub fn mcp_tool(&self) -> Tool {
        let mut tool = Tool::new(
            self.name.clone(),
            self.description.clone(),
            self.input_schema.clone(),
        );
        if let Some(output) = &self.output_schema {
            tool = tool.with_raw_output_schema(output.clone());
        }
        tool
    }

    /// The call's parameters from its JSON arguments, or where they do not fit.
    pub fn arguments(&self, arguments: Option<&JsonObject>) -> Result<Vec<Val>, ArgError> {
        let empty = JsonObject::new();
        let object = arguments.unwrap_or(&empty);
        let fields = convert::fields(
            self.params.iter().map(|(n, t)| (n.as_str(), t.clone())),
            object,
            "arguments",
        )?;
        Ok(fields.into_iter().map(|(_, v)| v).collect())
    }

    /// The MCP result of a call that returned `results`.
    pub fn result(&self, results: &[Val]) -> CallToolResult {
        let (Some(ty), Some(val)) = (&self.result, results.first()) else {
            return CallToolResult::success(vec![ContentBlock::text("ok")]);
        };
        if let (Type::Result(result), Val::Result(r)) = (ty, val) {
            return match r {
                Ok(payload) => {
                    let value = match (result.ok(), payload) {
                        (Some(ty), Some(v)) => convert::to_json(&ty, v),
                        _ => Value::Null,
                    };
                    CallToolResult::structured(wrap(result.ok().as_ref(), value))
                }
                Err(payload) => {
                    let text = match (result.err(), payload) {
                        (_, Some(v)) if matches!(**v, Val::String(_)) => match &**v {
                            Val::String(s) => s.clone(),
                            _ => String::new(),
                        },
                        (Some(ty), Some(v)) => convert::to_json(&ty, v).to_string(),
                        _ => "error (the function returned err without a value)".to_owned(),
                    };
                    CallToolResult::error(vec![ContentBlock::text(text)])
                }
            };
        }
        CallToolResult::structured(wrap(Some(ty), convert::to_json(ty, val)))
    }

    /// Calls the function in `instance` (fresh, in `store`) with `arguments`. Arguments that
    /// do not fit are an error result, and the guest does not run; a trap or a limit reached
    /// is the `Err`, for the caller to describe with what its store knows.
    pub async fn call<T: Send>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
        arguments: Option<&JsonObject>,
    ) -> wasmtime::Result<CallToolResult> {
        let params = match self.arguments(arguments) {
            Ok(params) => params,
            Err(e) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    e.to_string(),
                )]));
            }
        };
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| wasmtime::format_err!("the instance has no function {}", self.export))?;
        let mut results = vec![Val::Bool(false); usize::from(self.result.is_some())];
        func.call_async(&mut *store, &params, &mut results).await?;
        Ok(self.result(&results))
    }
}

/// As a server's component (see [`super::provider`]): the component is loaded with the
/// plugins' runtime, and each call runs in a fresh instance with the server's grants and
/// limits.
impl PlainTools {
    /// Checks that the component offers tools and starts (one instance), and returns its tools
    /// as magg's catalog keeps them.
    pub(crate) async fn validate(
        &self,
        runtime: &Runtime,
        config: &Arc<PluginConfig>,
        prepared: &Prepared,
    ) -> Result<Vec<ToolText>, String> {
        if self.tools.is_empty() {
            let skipped = if self.skipped.is_empty() {
                String::new()
            } else {
                format!(
                    " (skipped: {})",
                    self.skipped
                        .iter()
                        .map(Skipped::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            return Err(format!(
                "it exports neither {} nor a function magg can offer as a tool{skipped}",
                Kind::ToolProvider.interface()
            ));
        }
        Call::new(runtime, &prepared.pre, config, Kind::ToolProvider)
            .instantiate()
            .await
            .map_err(|e| format!("it does not start: {}", e.detail))?;
        tracing::info!(
            server = %config.name,
            tools = self.tools.len(),
            skipped = self.skipped.len(),
            "component exports plain functions; each is a tool"
        );
        self.tools
            .iter()
            .map(|tool| {
                let json = serde_json::to_string(&tool.mcp_tool())
                    .map_err(|e| format!("tool `{}`: {e}", tool.name))?;
                ToolText::from_json(&json)
            })
            .collect()
    }

    /// Runs the tool `name` with `arguments` (a JSON object as text) in a fresh instance:
    /// the result and the hosts its HTTP requests were refused, or the fault that ended it.
    pub(crate) async fn call_in(
        &self,
        call: &Call<'_>,
        name: &str,
        arguments: &str,
    ) -> Result<(CallToolResult, Vec<String>), PluginError> {
        let Some(tool) = self.get(name) else {
            return Ok((error_result(format!("unknown tool `{name}`")), Vec::new()));
        };
        let arguments = match serde_json::from_str::<Value>(arguments) {
            Ok(Value::Object(map)) => Some(map),
            Ok(Value::Null) => None,
            _ => {
                return Ok((
                    error_result("arguments: expected a JSON object"),
                    Vec::new(),
                ));
            }
        };
        let (mut store, instance) = call.instantiate().await?;
        let result = tool
            .call(&mut store, &instance, arguments.as_ref())
            .await
            .map_err(|e| call.fault(&store, e))?;
        Ok((result, store.data().denied_hosts().to_vec()))
    }
}

/// Whether values of `ty` are JSON objects as they are (records, maps with string keys).
fn is_object(ty: &Type) -> bool {
    match ty {
        Type::Record(_) => true,
        Type::Map(map) => map.key() == Type::String,
        _ => false,
    }
}

/// `value` (of `ty`; `None` for a missing payload) as structured content: an object as it
/// is, anything else as `{"result": value}`.
fn wrap(ty: Option<&Type>, value: Value) -> Value {
    match ty {
        Some(ty) if is_object(ty) => value,
        _ => json!({"result": value}),
    }
}

/// The output schema of a function returning `ty`: the schema of what [`wrap`] makes of it
/// (for a `result<T, E>`, of its `ok` side; the `err` side is an error result).
fn output_schema(ty: &Type, deriver: &Deriver<'_>) -> Result<Value, String> {
    let (ty, schema) = match ty {
        Type::Result(result) => match result.ok() {
            Some(ok) => {
                // The err side has no structured form but must still have a JSON form.
                if let Some(err) = result.err() {
                    deriver.schema(&err)?;
                }
                let schema = deriver.schema(&ok)?;
                (Some(ok), schema)
            }
            None => {
                if let Some(err) = result.err() {
                    deriver.schema(&err)?;
                }
                (None, json!({"type": "null"}))
            }
        },
        other => (Some(other.clone()), deriver.schema(other)?),
    };
    Ok(match &ty {
        Some(ty) if is_object(ty) => schema,
        _ => {
            let mut properties = Map::new();
            properties.insert("result".into(), schema);
            schema::object(properties, vec!["result".into()])
        }
    })
}

fn as_object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

#[cfg(test)]
mod tests;
