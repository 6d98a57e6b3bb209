//! The `proxy` tool, with the schema and result shape of Magg's proxy specification: one tool
//! that lists, describes and calls every tool, resource and prompt magg serves, for clients
//! that never refresh their tool list.
//!
//! Magg puts `proxyAction`, `proxyType`, `proxyPath`, `pythonType` and `many` in each content
//! block's `annotations`; MCP's `Annotations` has no room for them, so magg puts them in the
//! block's `_meta` instead.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, EmbeddedResource,
    GetPromptRequestParams, GetPromptResponse, JsonObject, MetaObject, ReadResourceRequestParams,
    ReadResourceResponse, ResourceContents, Tool, ToolAnnotations,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{hub::Hub, mcp::error_result};

/// The tool's name (Magg's proxy spec: "The proxy tool SHOULD be named `proxy`").
pub const NAME: &str = "proxy";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The `proxy` tool definition.
pub fn definition() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "action": {
                "type": "string", "enum": ["list", "info", "call"],
                "description": "Action to perform: list, info, or call."
            },
            "type": {
                "type": "string", "enum": ["tool", "resource", "prompt"],
                "description": "Type of MCP capability to interact with: tool, resource, or prompt."
            },
            "path": {
                "type": ["string", "null"],
                "description": "Name or URI of the specific tool/resource/prompt, as listed (with its server prefix), e.g. \"everything_echo\" or \"test://tb/info\".\nRequired for 'info' and 'call' actions; not allowed for 'list'."
            },
            "args": {
                "anyOf": [{"type": "object", "additionalProperties": true}, {"type": "string"}, {"type": "null"}],
                "description": "Arguments for a 'call' action (call tool, read resource, or get prompt), e.g. {\"message\": \"hi\"}. Can be a dict or JSON string."
            },
            "limit": {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": 1000}, {"type": "null"}],
                "description": "Maximum number of items to return (for 'list' action only). Default: 100"
            },
            "offset": {
                "anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}],
                "description": "Number of items to skip (for 'list' action only). Default: 0"
            },
            "filter_server": {
                "type": ["string", "null"],
                "description": "Filter results by server name prefix (for 'list' action only)"
            }
        },
        "required": ["action", "type"]
    });
    let schema = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(
        NAME,
        "Main proxy tool for dynamic access to every tool, resource and prompt magg serves.\n\n\
         Use it when a tool you need is not in your tool list (for example a server was added \
         after the list was fetched), or to page through a large catalog.\n\
         - action=list: list tools/resources/prompts (with limit, offset, filter_server); the \
           result is one embedded JSON resource holding the array.\n\
         - action=info: the full definition of one item named by `path`.\n\
         - action=call: call the tool / read the resource / get the prompt named by `path` with \
           `args`; a tool's result content is returned as the tool returned it.\n\
         Whether it changes anything depends on the tool it calls. Errors (unknown path, wrong \
         parameters for the action) come back as a result with isError true and a message.",
        Arc::new(schema),
    )
    .with_annotations(
        ToolAnnotations::with_title("Proxy to any magg tool, resource or prompt")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
}

#[derive(Debug, Deserialize)]
struct Args {
    action: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    filter_server: Option<String>,
}

/// Runs the proxy tool. Parameter errors and failures of the proxied item are `isError` results.
pub async fn call(hub: &Arc<Hub>, arguments: JsonObject, ct: CancellationToken) -> CallToolResult {
    let args: Args = match serde_json::from_value(Value::Object(arguments)) {
        Ok(args) => args,
        Err(e) => {
            return error_result(format!(
                "Invalid proxy arguments: {e}. Pass at least `action` (list|info|call) and `type` (tool|resource|prompt)."
            ));
        }
    };
    match run(hub, args, ct).await {
        Ok(result) => result,
        Err(message) => error_result(message),
    }
}

async fn run(hub: &Arc<Hub>, args: Args, ct: CancellationToken) -> Result<CallToolResult, String> {
    let action = args.action.as_str();
    let kind = args.kind.as_str();
    if !matches!(action, "list" | "info" | "call") {
        return Err(format!(
            "Invalid proxy action '{action}': use 'list', 'info' or 'call'"
        ));
    }
    if !matches!(kind, "tool" | "resource" | "prompt") {
        return Err(format!(
            "Invalid proxy type '{kind}': use 'tool', 'resource' or 'prompt'"
        ));
    }
    let has_args = args
        .args
        .as_ref()
        .is_some_and(|a| !a.is_null() && a != &json!({}) && a != &json!(""));
    if matches!(action, "info" | "call") && args.path.as_deref().is_none_or(str::is_empty) {
        return Err(format!(
            "Parameter 'path' is required for action '{action}'"
        ));
    }
    if matches!(action, "list" | "info") && has_args {
        return Err(format!(
            "Parameter 'args' should not be provided for action '{action}'"
        ));
    }
    if action == "list" && args.path.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err("Parameter 'path' should not be provided for action 'list'".to_owned());
    }
    if action != "list"
        && (args.limit.is_some() || args.offset.is_some() || args.filter_server.is_some())
    {
        return Err(
            "Parameters 'limit', 'offset', and 'filter_server' are only allowed for 'list' action"
                .to_owned(),
        );
    }
    let path = args.path.clone().unwrap_or_default();
    match action {
        "list" => list(hub, kind, &args),
        "info" => info(hub, kind, &path),
        _ => {
            let call_args = parse_args(args.args)?;
            Box::pin(proxy_call(hub, kind, &path, call_args, ct)).await
        }
    }
}

fn parse_args(args: Option<Value>) -> Result<Option<JsonObject>, String> {
    match args {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => {
                Err("Parameter 'args' must be a JSON object (or a string holding one)".to_owned())
            }
            Err(e) => Err(format!(
                "Parameter 'args' is a string but not valid JSON: {e}"
            )),
        },
        Some(_) => {
            Err("Parameter 'args' must be a JSON object (or a string holding one)".to_owned())
        }
    }
}

/// The items of one kind, as JSON, each with the server that owns it.
fn items(hub: &Hub, kind: &str) -> (Vec<(Value, String, String)>, &'static str) {
    let snapshot = hub.snapshot();
    let to_json = |v: &dyn erased::Json| v.json();
    match kind {
        "tool" => (
            snapshot
                .tools
                .iter()
                .map(|t| {
                    let json = serde_json::from_str(&t.text.json()).unwrap_or(Value::Null);
                    (json, t.text.name().to_owned(), t.route.server().to_owned())
                })
                .collect(),
            "Tool",
        ),
        "prompt" => (
            snapshot
                .prompts
                .iter()
                .map(|p| {
                    let server = snapshot
                        .prompt(&p.name)
                        .map(|r| r.backend.name.clone())
                        .unwrap_or_default();
                    (to_json(p), p.name.clone(), server)
                })
                .collect(),
            "Prompt",
        ),
        _ => {
            let mut out: Vec<(Value, String, String)> = snapshot
                .resources
                .iter()
                .map(|r| {
                    let server = snapshot
                        .resource(&r.uri)
                        .map(|r| r.backend.name.clone())
                        .unwrap_or_default();
                    (to_json(r), r.name.clone(), server)
                })
                .collect();
            out.extend(
                snapshot
                    .templates
                    .iter()
                    .map(|t| (to_json(t), t.name.clone(), String::new())),
            );
            (out, "Resource|ResourceTemplate")
        }
    }
}

fn list(hub: &Hub, kind: &str, args: &Args) -> Result<CallToolResult, String> {
    let (mut all, python_type) = items(hub, kind);
    if let Some(filter) = args.filter_server.as_deref().filter(|f| !f.is_empty()) {
        all.retain(|(_, name, server)| server == filter || name.starts_with(filter));
    }
    let total = all.len();
    let offset = usize::try_from(args.offset.unwrap_or(0))
        .map_err(|_| "Parameter 'offset' must be 0 or more".to_owned())?;
    let limit = match args.limit {
        None => DEFAULT_LIMIT,
        Some(l) if (1..=MAX_LIMIT as i64).contains(&l) => l as usize,
        Some(l) => {
            return Err(format!(
                "Parameter 'limit' must be between 1 and {MAX_LIMIT}, got {l}"
            ));
        }
    };
    let page: Vec<Value> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(v, _, _)| v)
        .collect();
    let meta = json!({
        "proxyAction": "list", "proxyType": kind, "pythonType": python_type, "many": true,
        "totalCount": total, "offset": offset, "limit": limit,
    });
    Ok(CallToolResult::success(vec![embedded_json(
        format!("{NAME}:list/{kind}"),
        &Value::Array(page),
        meta,
    )]))
}

fn info(hub: &Hub, kind: &str, path: &str) -> Result<CallToolResult, String> {
    let snapshot = hub.snapshot();
    let found = match kind {
        "tool" => snapshot.tools.get(path).map(|t| {
            let json = serde_json::from_str(&t.text.json()).unwrap_or(Value::Null);
            (json, "Tool")
        }),
        "prompt" => snapshot
            .prompts
            .iter()
            .find(|p| p.name == path)
            .map(|p| (p.json(), "Prompt")),
        _ => snapshot
            .resources
            .iter()
            .find(|r| r.uri == path || r.name == path)
            .map(|r| (r.json(), "Resource"))
            .or_else(|| {
                snapshot
                    .templates
                    .iter()
                    .find(|t| t.uri_template == path || t.name == path)
                    .map(|t| (t.json(), "ResourceTemplate"))
            }),
    };
    let Some((value, python_type)) = found else {
        let mut kind_title = kind.to_owned();
        kind_title[..1].make_ascii_uppercase();
        return Err(format!(
            "{kind_title} '{path}' not found. Use action 'list' to see what exists."
        ));
    };
    let meta = json!({"proxyAction": "info", "proxyType": kind, "proxyPath": path, "pythonType": python_type});
    Ok(CallToolResult::success(vec![embedded_json(
        format!("{NAME}:info/{kind}/{path}"),
        &value,
        meta,
    )]))
}

async fn proxy_call(
    hub: &Arc<Hub>,
    kind: &str,
    path: &str,
    args: Option<JsonObject>,
    ct: CancellationToken,
) -> Result<CallToolResult, String> {
    let annotations = json!({"proxyType": kind, "proxyAction": "call", "proxyPath": path});
    match kind {
        "tool" => {
            let mut params = CallToolRequestParams::new(path.to_owned());
            params.arguments = args;
            let response = crate::call::call_tool_params(hub, &params, ct)
                .await
                .map_err(|e| e.message.to_string())?;
            let CallToolResponse::Complete(mut result) = response else {
                return Err(format!(
                    "Tool '{path}' asked for input or started a task; call it directly instead of through the proxy"
                ));
            };
            for block in &mut result.content {
                set_meta(block, &annotations);
            }
            Ok(result)
        }
        "resource" => {
            let params = ReadResourceRequestParams::new(path.to_owned());
            let response = hub
                .read_resource(params, ct)
                .await
                .map_err(|e| e.message.to_string())?;
            let ReadResourceResponse::Complete(result) = response else {
                return Err(format!(
                    "Resource '{path}' asked for input; read it directly instead of through the proxy"
                ));
            };
            let content = result
                .contents
                .into_iter()
                .map(|contents| {
                    let mut block =
                        ContentBlock::Resource(EmbeddedResource::new(objectify(contents)));
                    set_meta(&mut block, &annotations);
                    block
                })
                .collect();
            Ok(CallToolResult::success(content))
        }
        _ => {
            let mut params = GetPromptRequestParams::new(path.to_owned());
            params.arguments = args;
            let response = hub
                .get_prompt(params, ct)
                .await
                .map_err(|e| e.message.to_string())?;
            let GetPromptResponse::Complete(result) = response else {
                return Err(format!(
                    "Prompt '{path}' asked for input; get it directly instead of through the proxy"
                ));
            };
            let mut meta = annotations;
            if let Some(obj) = meta.as_object_mut() {
                obj.insert("pythonType".into(), json!("GetPromptResult"));
            }
            Ok(CallToolResult::success(vec![embedded_json(
                format!("{NAME}:{path}"),
                &serde_json::to_value(&result).unwrap_or(Value::Null),
                meta,
            )]))
        }
    }
}

/// Text that parses as JSON is re-encoded as `application/json`, keeping the original MIME type
/// in `_meta.contentType` (the proxy spec's "objectification").
fn objectify(contents: ResourceContents) -> ResourceContents {
    match contents {
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            meta,
        } if mime_type.as_deref() != Some("application/json") => {
            match serde_json::from_str::<Value>(&text) {
                Ok(parsed @ (Value::Object(_) | Value::Array(_))) => {
                    let mut meta = meta.unwrap_or_default();
                    if let Some(original) = &mime_type {
                        meta.insert("contentType".into(), json!(original));
                    }
                    ResourceContents::TextResourceContents {
                        uri,
                        mime_type: Some("application/json".into()),
                        text: parsed.to_string(),
                        meta: Some(meta),
                    }
                }
                _ => ResourceContents::TextResourceContents {
                    uri,
                    mime_type,
                    text,
                    meta,
                },
            }
        }
        other => other,
    }
}

fn embedded_json(uri: String, value: &Value, meta: Value) -> ContentBlock {
    let mut block = ContentBlock::Resource(EmbeddedResource::new(
        ResourceContents::TextResourceContents {
            uri,
            mime_type: Some("application/json".into()),
            text: value.to_string(),
            meta: None,
        },
    ));
    set_meta(&mut block, &meta);
    block
}

fn set_meta(block: &mut ContentBlock, values: &Value) {
    let slot = match block {
        ContentBlock::Text(c) => &mut c.meta,
        ContentBlock::Image(c) => &mut c.meta,
        ContentBlock::Audio(c) => &mut c.meta,
        ContentBlock::Resource(c) => &mut c.meta,
        ContentBlock::ResourceLink(c) => &mut c.meta,
        _ => return,
    };
    let meta = slot.get_or_insert_with(MetaObject::default);
    if let Some(values) = values.as_object() {
        for (k, v) in values {
            meta.insert(k.clone(), v.clone());
        }
    }
}

mod erased {
    //! Serialize any catalog item to JSON without naming its type at each call site.
    pub(super) trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
use erased::Json as _;
