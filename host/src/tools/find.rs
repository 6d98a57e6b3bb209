//! Tool search's two tools: `magg_search_tools` finds the catalog's tools by what they do
//! (and may add them to the session's own tool list), and `magg_call_tool` calls any tool the
//! session may see by name. They exist while `tool_search` is `on` or `auto`, when tools/list
//! shows magg's own tools, these two and the pinned tools only.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{failure, success, tool};
use crate::{
    catalog::{Found, Snapshot},
    config::Settings,
    hub::Hub,
    mcp::error_result,
    plugins::FilterTool,
};

/// Results returned when the call does not say.
const DEFAULT_LIMIT: usize = 5;
/// The most results one search returns.
const MAX_LIMIT: usize = 50;
/// How many of the built-in ranking's best a tool ranker plugin is given to order (all the
/// tools the caller may see, when they are fewer).
pub const RANKER_CANDIDATES: usize = 100;

/// The `magg_search_tools` definition.
pub fn search_definition(settings: &Settings) -> Tool {
    let call = settings.prefixed(crate::catalog::CALL_TOOL);
    let description = format!(
        "Find tools by what they do. magg serves more tools than it lists: besides magg's own \
         tools and a few pinned ones, every tool of the connected MCP servers is found here. \
         Use it first whenever the task needs a capability not in your tool list (reading a \
         file, creating an issue, querying a database...): describe the task in plain words, \
         e.g. {{\"query\": \"create a github issue\"}}. Changes nothing unless `add` is true.\n\n\
         Parameters: query (what you want to do, in a few words); limit (results, default \
         {DEFAULT_LIMIT}, at most {MAX_LIMIT}); add (default false: also add the tools found \
         to this session's tool list, so you can call them directly; the client is sent \
         tools/list_changed).\n\n\
         Returns {{\"errors\": null, \"output\": {{\"query\", \"searched\": n, \"ranked_by\", \"results\": \
         [{{name, server, description, inputSchema, ...}}], \"added\": [...]}}}}, best match \
         first, each with the full input schema. Then call a result with {call} \
         {{\"name\": <name>, \"arguments\": {{...}}}} (or directly, if added). No result means \
         no tool matched those words: try other words, or fewer."
    );
    tool(
        settings.prefixed(crate::catalog::SEARCH_TOOLS),
        description,
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "What you want to do, in plain words, e.g. \"list open pull requests\" or \"current time in Tokyo\""},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT, "description": "Most results returned (default 5)"},
                "add": {"type": "boolean", "default": false, "description": "Also add the tools found to this session's tool list (default false)"}
            },
            "required": ["query"],
            "additionalProperties": false
        }),
        rmcp::model::ToolAnnotations::with_title("Search the available tools")
            .read_only(true)
            .idempotent(true)
            .open_world(false),
    )
}

/// The `magg_call_tool` definition.
pub fn call_definition(settings: &Settings) -> Tool {
    let search = settings.prefixed(crate::catalog::SEARCH_TOOLS);
    let description = format!(
        "Call any tool magg serves by its name, including tools not in your tool list: those \
         {search} found. The call takes the same route as a direct call (routing hooks, \
         permissions, progress, cancellation, time limits), and its result is the tool's own \
         result, unchanged. What it changes is what the called tool changes.\n\n\
         Parameters: name (the tool's name exactly as {search} returned it, e.g. \
         \"github_create_issue\"); arguments (an object matching that tool's inputSchema, e.g. \
         {{\"owner\": \"me\", \"repo\": \"x\", \"title\": \"Bug\"}}; default {{}}).\n\n\
         Errors: an unknown name is an error result naming close matches; search with \
         {search} to find the right tool. A tool's own failure comes back as its result with \
         isError true."
    );
    tool(
        settings.prefixed(crate::catalog::CALL_TOOL),
        description,
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "The tool's exposed name, as the search returned it"},
                "arguments": {"type": "object", "additionalProperties": true, "description": "The tool's arguments, matching its inputSchema (default {})"}
            },
            "required": ["name"],
            "additionalProperties": false
        }),
        rmcp::model::ToolAnnotations::with_title("Call a tool by name")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    add: Option<bool>,
}

/// Runs `magg_search_tools`.
pub async fn search_tools(hub: &Arc<Hub>, arguments: JsonObject) -> CallToolResult {
    let args: SearchArgs = match serde_json::from_value(Value::Object(arguments)) {
        Ok(args) => args,
        Err(e) => {
            return failure(format!(
                "Invalid arguments: {e}. Pass {{\"query\": \"what you want to do\"}}, and \
                 optionally \"limit\" (1-{MAX_LIMIT}) and \"add\" (true/false)."
            ));
        }
    };
    let query = args.query.trim();
    if query.is_empty() {
        return failure(
            "`query` is empty: describe what you want to do, e.g. \"read a file\" or \"send a \
             slack message\".",
        );
    }
    let limit = match args.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(n) => {
            return failure(format!(
                "`limit` must be between 1 and {MAX_LIMIT}, got {n}"
            ));
        }
    };
    hub.wait_for_backends().await;
    let snapshot = hub.snapshot();
    let (found, ranked_by) = ranked(hub, &snapshot, query, limit).await;
    let results: Vec<Value> = found
        .iter()
        .map(|f| {
            let mut tool: Value = serde_json::from_str(&f.tool.text.json()).unwrap_or(Value::Null);
            if let Some(obj) = tool.as_object_mut() {
                obj.insert("server".into(), json!(f.tool.route.server()));
            }
            tool
        })
        .collect();
    let mut output = json!({
        "query": query,
        "searched": snapshot.backend_tool_count(),
        "ranked_by": ranked_by,
        "results": results,
    });
    if args.add == Some(true) {
        let names: Vec<Arc<str>> = found
            .iter()
            .map(|f| f.tool.text.name_arc().clone())
            .collect();
        let (added, note) = add_to_session(&names).await;
        if let Some(obj) = output.as_object_mut() {
            obj.insert("added".into(), json!(added));
            if let Some(note) = note {
                obj.insert("note".into(), json!(note));
            }
        }
    }
    success(output)
}

/// The best `limit` tools for `query` and what ranked them: the first tool ranker plugin, given
/// the best [`RANKER_CANDIDATES`] of the built-in ranking, or (with none, or when it fails)
/// magg's own ranking.
async fn ranked<'a>(
    hub: &Hub,
    snapshot: &'a Snapshot,
    query: &str,
    limit: usize,
) -> (Vec<Found<'a>>, String) {
    if hub.plugins.has_ranker() {
        let candidates = snapshot.search_candidates(query, RANKER_CANDIDATES);
        let wit: Vec<FilterTool> = candidates
            .iter()
            .map(|f| FilterTool {
                server: f.tool.route.server().to_owned(),
                original_name: f.tool.route.original().to_owned(),
                name: f.tool.text.name().to_owned(),
                description: f.tool.text.description(),
                input_schema: f.tool.text.input_schema(),
            })
            .collect();
        if let Some((plugin, names)) = hub.plugins.rank_tools(query, &wit, limit as u32).await {
            let mut out: Vec<Found<'a>> = Vec::with_capacity(limit);
            for name in names {
                let Some(found) = candidates.iter().find(|f| f.tool.text.name() == name) else {
                    continue;
                };
                if !out.iter().any(|f| f.tool.text.name() == name) {
                    out.push(found.clone());
                }
                if out.len() == limit {
                    break;
                }
            }
            return (out, plugin);
        }
    }
    (snapshot.search_tools(query, limit), "magg".to_owned())
}

/// Adds `names` to the calling session's own tool list and, if that changed it, tells that
/// session (and no other) its list changed. Returns the names now in its list, and a note
/// when nothing could be added.
async fn add_to_session(names: &[Arc<str>]) -> (Vec<String>, Option<String>) {
    let Some(origin) = crate::relay::current_origin() else {
        return (
            Vec::new(),
            Some("no client session to add tools to".to_owned()),
        );
    };
    let session = &origin.session;
    if session.is_detached() {
        return (
            Vec::new(),
            Some(
                "this client is stateless (no MCP session), so magg keeps no tool list for it; \
                 call the tools found with call_tool instead"
                    .to_owned(),
            ),
        );
    }
    if session.add_tools(names.iter().cloned()) {
        if let Err(e) = session.peer().notify_tool_list_changed().await {
            tracing::debug!("could not send tools/list_changed to the session: {e}");
        } else {
            crate::metrics::count_list_changed(crate::metrics::List::tools);
        }
    }
    (names.iter().map(|n| n.to_string()).collect(), None)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallArgs {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Runs `magg_call_tool`: the named tool's call, through the call route.
pub async fn call_tool(
    hub: &Arc<Hub>,
    arguments: JsonObject,
    ct: CancellationToken,
) -> CallToolResult {
    let search = hub.settings.prefixed(crate::catalog::SEARCH_TOOLS);
    let args: CallArgs = match serde_json::from_value(Value::Object(arguments)) {
        Ok(args) => args,
        Err(e) => {
            return error_result(format!(
                "Invalid arguments: {e}. Pass {{\"name\": \"<tool name from {search}>\", \
                 \"arguments\": {{...}}}}."
            ));
        }
    };
    let arguments = match args.arguments {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            return error_result(format!(
                "`arguments` must be an object of the tool's parameters (e.g. {{\"path\": \
                 \"/tmp/a.txt\"}}), not {other}"
            ));
        }
    };
    let name = args.name.trim();
    if hub.wait_for_tool(name).await.tool(name).is_none() {
        return error_result(unknown(hub, name, &search));
    }
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments;
    match crate::call::call_tool_params(hub, &params, ct).await {
        Ok(CallToolResponse::Complete(result)) => result,
        Ok(_) => error_result(format!(
            "Tool `{name}` asked for input or started a task, which a call through \
             {} cannot pass on; add it with {search} (\"add\": true) and call it directly",
            hub.settings.prefixed(crate::catalog::CALL_TOOL)
        )),
        Err(e) => error_result(e.message.to_string()),
    }
}

/// The error for a tool the caller cannot see: the tools whose names look like it, and the
/// way to find the right one.
fn unknown(hub: &Hub, name: &str, search: &str) -> String {
    let snapshot = hub.snapshot();
    let mut like: Vec<String> = snapshot
        .similar_tools(name)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for found in snapshot.search_tools(name, 3) {
        let found = found.tool.text.name().to_owned();
        if !like.contains(&found) {
            like.push(found);
        }
    }
    like.truncate(3);
    let mut message = format!("Unknown tool `{name}`.");
    if !like.is_empty() {
        let names: Vec<String> = like.iter().map(|n| format!("`{n}`")).collect();
        message.push_str(&format!(" Did you mean {}?", names.join(", ")));
    }
    message.push_str(&format!(
        " Use {search} with a few words about the task to find the tool and its exact name."
    ));
    message
}
