//! magg's own tools (`magg_list_servers`, `magg_status`, and the `proxy` tool): their
//! definitions as the model sees them, and their implementations.
//!
//! Results follow Magg's shape, a JSON object `{"errors": [...] | null, "output": ...}` as text
//! and as `structuredContent`; a failure also sets `isError: true` so the model can tell.

mod analyze;
mod discover;
mod find;
mod kits;
pub mod manage;
mod proxy;
mod resources;
mod sampling;
mod search;

use std::{collections::HashMap, sync::Arc};

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    backend::Status,
    catalog::OwnItems,
    config::Settings,
    hub::{Hub, OwnCall, OwnServer},
};

/// magg's own server (its tools and resources), to hand to [`Hub::start`].
pub fn own_server(settings: &Settings) -> Arc<dyn OwnServer> {
    let tools = own_tools(settings);
    let by_name = tools
        .iter()
        .map(|(tool, own)| (tool.name.to_string(), *own))
        .collect();
    Arc::new(Own { tools, by_name })
}

/// magg's own tools and resources, as the hub sees them.
struct Own {
    tools: Vec<(Tool, OwnTool)>,
    by_name: HashMap<String, OwnTool>,
}

impl OwnServer for Own {
    fn items(&self, settings: &Settings) -> OwnItems {
        let (resources, templates) = resources::own_resources(settings);
        OwnItems {
            tools: self.tools.iter().map(|(tool, _)| tool.clone()).collect(),
            resources,
            templates,
            prompts: discover::own_prompts(settings),
        }
    }

    fn call<'a>(
        &'a self,
        hub: &'a Arc<Hub>,
        name: &'a str,
        arguments: Option<JsonObject>,
        ct: CancellationToken,
    ) -> OwnCall<'a> {
        Box::pin(async move {
            match self.by_name.get(name) {
                Some(own) => call_own(hub, *own, arguments, ct).await,
                None => Err(McpError::invalid_params(
                    format!("magg has no tool of its own named `{name}`"),
                    None,
                )),
            }
        })
    }

    fn changes(&self, name: &str, arguments: Option<&JsonObject>) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|own| own.changes(arguments))
    }

    fn read(
        &self,
        hub: &Hub,
        uri: &str,
    ) -> Option<Result<rmcp::model::ReadResourceResult, McpError>> {
        resources::read_own(hub, uri)
    }

    fn prompt<'a>(
        &'a self,
        hub: &'a Hub,
        name: &'a str,
        arguments: Option<JsonObject>,
    ) -> crate::hub::OwnPrompt<'a> {
        Box::pin(discover::get_prompt(
            hub,
            name,
            arguments.unwrap_or_default(),
        ))
    }
}

/// Which of magg's own tools a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnTool {
    /// `magg_list_servers`
    ListServers,
    /// `magg_status`
    Status,
    /// `proxy`
    Proxy,
    /// `magg_add_server`
    AddServer,
    /// `magg_remove_server`
    RemoveServer,
    /// `magg_enable_server`
    EnableServer,
    /// `magg_disable_server`
    DisableServer,
    /// `magg_reload_config`
    ReloadConfig,
    /// `magg_check`
    Check,
    /// `magg_load_kit`
    LoadKit,
    /// `magg_unload_kit`
    UnloadKit,
    /// `magg_list_kits`
    ListKits,
    /// `magg_kit_info`
    KitInfo,
    /// `magg_smart_configure`
    SmartConfigure,
    /// `magg_search_servers`
    SearchServers,
    /// `magg_analyze_servers`
    AnalyzeServers,
    /// `magg_search_tools` (with tool search on)
    SearchTools,
    /// `magg_call_tool` (with tool search on)
    CallTool,
}

impl OwnTool {
    /// Whether a call with `arguments` starts or stops servers or changes the config:
    /// the tools that manage servers and kits, reloading, `magg_check` with an action other
    /// than `report`, and `magg_smart_configure` with `allow_add`. The `proxy` tool changes
    /// nothing itself; a call it passes on is judged as a call of its own.
    pub fn changes(self, arguments: Option<&JsonObject>) -> bool {
        let argument = |name: &str| arguments.and_then(|a| a.get(name));
        match self {
            OwnTool::AddServer
            | OwnTool::RemoveServer
            | OwnTool::EnableServer
            | OwnTool::DisableServer
            | OwnTool::ReloadConfig
            | OwnTool::LoadKit
            | OwnTool::UnloadKit => true,
            OwnTool::Check => argument("action").is_some_and(|a| a.as_str() != Some("report")),
            OwnTool::SmartConfigure => {
                argument("allow_add").is_some_and(|a| a.as_bool() != Some(false) && !a.is_null())
            }
            OwnTool::ListServers
            | OwnTool::Status
            | OwnTool::Proxy
            | OwnTool::ListKits
            | OwnTool::KitInfo
            | OwnTool::SearchServers
            | OwnTool::AnalyzeServers
            | OwnTool::SearchTools
            | OwnTool::CallTool => false,
        }
    }
}

/// magg's own tools, named with the configured self prefix and separator.
fn own_tools(settings: &Settings) -> Vec<(Tool, OwnTool)> {
    let mut tools = own_tool_definitions(settings);
    if settings.tool_search != crate::config::ToolSearch::Off {
        tools.push((find::search_definition(settings), OwnTool::SearchTools));
        tools.push((find::call_definition(settings), OwnTool::CallTool));
    }
    // The descriptions name magg's tools as `magg_*`; with another self prefix, by that one.
    let own = settings.prefixed("");
    if own != "magg_" {
        for (tool, _) in &mut tools {
            if let Some(description) = &tool.description {
                tool.description = Some(description.replace("magg_", &own).into());
            }
        }
    }
    tools
}

/// magg's own tools as `magg_*` names appear in their descriptions.
fn own_tool_definitions(settings: &Settings) -> Vec<(Tool, OwnTool)> {
    vec![
        (
            tool(
                settings.prefixed("list_servers"),
                "List every server in magg's config with its live state.\n\n\
                 Returns {\"errors\": null, \"output\": [ {name, source, prefix, enabled, mounted, \
                 status, tools, command | uri, cwd, notes, reason} ]}. `mounted` is true when the \
                 server is connected and its tools are available; `status` is one of running, \
                 starting, failed (with `reason`), stopped. Changes nothing. Use it to see which \
                 servers exist and why one's tools are missing; use magg_status for totals.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("List configured MCP servers")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::ListServers,
        ),
        (
            tool(
                settings.prefixed("status"),
                "Report magg's health: how many servers are configured, enabled, mounted \
                 (connected), starting and failed; how many tools are exposed; each server's \
                 prefix, state, restart count and last failure reason; the config file in use; \
                 and connected clients. Changes nothing. Use it for a quick health overview; \
                 use magg_list_servers for each server's config and magg_analyze_servers for \
                 problems and what to do about them.\n\n\
                 Returns {\"errors\": null, \"output\": {\"servers\": {...}, \"tools\": {\"total\": n}, \
                 \"prefixes\": {...}, \"backends\": {name: {status, reason?, tools, pid?, starts}}, ...}}.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("magg status")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::Status,
        ),
        (proxy::definition(), OwnTool::Proxy),
        (
            tool(
                settings.prefixed("add_server"),
                "Add an MCP server to magg's config file and start it now; its tools appear in \
                 this server's tool list (prefixed) as soon as it is up, and clients are sent \
                 tools/list_changed.\n\n\
                 Use this for one server you know how to run. Use magg_load_kit to add a curated \
                 group of servers, and magg_reload_config after editing the config file by hand.\n\n\
                 Parameters: name (unique, e.g. \"time\"); source (URL of the package or repository); \
                 prefix (tools become <prefix>_<tool>; letters and digits, no underscores; omit to \
                 keep the tools' own names); command (the full command line, split like a shell, \
                 e.g. \"npx -y @modelcontextprotocol/server-everything\" or \"uvx mcp-server-time\"); \
                 or uri for an HTTP server (e.g. \"http://localhost:9000/mcp\"); env (object of \
                 variables, or a JSON string); cwd; notes; enable (default true); transport \
                 (object, e.g. {\"headers\": {\"Authorization\": \"Bearer …\"}}).\n\n\
                 Returns {\"errors\": null, \"output\": {\"action\": \"server_added\", \"server\": {..., \
                 \"mounted\": true}}}. If the server cannot start, nothing is saved and the result is \
                 an error with the reason (isError true). Refused in read-only mode.",
                json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Unique server name, e.g. \"time\""},
                        "source": {"type": "string", "description": "URL of the server package/repository"},
                        "prefix": {"type": ["string", "null"], "description": "Tool prefix (letters and digits, no underscores); default: none, tools keep their original names"},
                        "command": {"type": ["string", "null"], "description": "Full command to run, e.g. 'python server.py' or 'npx @playwright/mcp@latest'; split like a shell command line"},
                        "args": {"type": ["array", "null"], "items": {"type": "string"}, "description": "More arguments after those in command, as a config file's args (e.g. from magg_smart_configure's suggested_config)"},
                        "uri": {"type": ["string", "null"], "description": "URL of a streamable-HTTP MCP server"},
                        "env": {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "string"}, {"type": "null"}], "description": "Environment variables (object or JSON string)"},
                        "cwd": {"type": ["string", "null"], "description": "Working directory (for commands)"},
                        "notes": {"type": ["string", "null"], "description": "Setup notes for people and models"},
                        "enable": {"type": ["boolean", "null"], "description": "Whether to start the server now (default: true)"},
                        "transport": {"anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}], "description": "Transport-specific configuration (object or JSON string), e.g. {\"headers\": {...}}"},
                        "wasm": {"type": ["string", "null"], "description": "A WebAssembly tool provider (.wasm component) to mount instead of a command or uri; a file:// source ending in .wasm does the same"},
                        "grants": {"type": ["object", "null"], "description": "What a WebAssembly server may use (deny by default): {\"http\": [hosts], \"dirs\": [{\"path\", \"write\"}], \"env\": [names], \"memory_mb\", \"timeout_ms\"}"}
                    },
                    "required": ["name", "source"]
                }),
                ToolAnnotations::with_title("Add an MCP server")
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false)
                    .open_world(true),
            ),
            OwnTool::AddServer,
        ),
        (
            tool(
                settings.prefixed("remove_server"),
                "Remove a server from magg's config file and stop it; its tools leave the tool \
                 list (clients get tools/list_changed). The config entry is gone for good (the \
                 file is rewritten atomically); use magg_disable_server instead to keep it for \
                 later. Parameter: name (as shown by magg_list_servers). Returns {\"action\": \
                 \"server_removed\", \"server\": {name}}. Errors (isError) if no server has that \
                 name (call magg_list_servers to see the names), or in read-only mode.",
                named_schema("Server name to remove"),
                ToolAnnotations::with_title("Remove an MCP server")
                    .read_only(false)
                    .destructive(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::RemoveServer,
        ),
        (
            tool(
                settings.prefixed("enable_server"),
                "Enable a disabled server: sets \"enabled\": true in the config file and starts it; \
                 its tools join the tool list (clients get tools/list_changed). Use it to bring \
                 back a server turned off with magg_disable_server; use magg_add_server for a new \
                 one. Parameter: name. Returns whether it mounted; if it failed to start, the \
                 reason (see magg_list_servers). Errors if it is unknown or already enabled, or \
                 in read-only mode.",
                named_schema("Server name to enable"),
                ToolAnnotations::with_title("Enable an MCP server")
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::EnableServer,
        ),
        (
            tool(
                settings.prefixed("disable_server"),
                "Disable a server: sets \"enabled\": false in the config file and stops it, keeping \
                 its configuration (unlike magg_remove_server); its tools leave the tool list \
                 (clients get tools/list_changed). Use it for a server that fails or is not \
                 needed now; magg_enable_server brings it back. Parameter: name. Errors if it is \
                 unknown or already disabled, or in read-only mode.",
                named_schema("Server name to disable"),
                ToolAnnotations::with_title("Disable an MCP server")
                    .read_only(false)
                    .destructive(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::DisableServer,
        ),
        (
            tool(
                settings.prefixed("reload_config"),
                "Re-read magg's config file and apply what changed: added servers start, removed or \
                 disabled ones stop, servers whose command, args, env, uri, prefix, cwd, source or \
                 transport changed restart; all others keep running untouched. magg also does this \
                 by itself when the file changes and on SIGHUP, so use it only after an edit it \
                 has not picked up (e.g. a file on a network mount); magg_list_servers then shows \
                 the result. A file that does not parse is rejected whole and nothing \
                 changes; the error says where. Returns the changes applied.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("Reload the config file")
                    .read_only(false)
                    .destructive(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::ReloadConfig,
        ),
        (
            tool(
                settings.prefixed("check"),
                "Check the health of every mounted server by asking it for its tool list, and \
                 handle the unresponsive ones: action 'report' (default; changes nothing), \
                 'remount' (restart them), 'unmount' (stop them until magg restarts or the config \
                 is reloaded) or 'disable' (stop them and set enabled false in the config file). \
                 timeout: seconds to wait per server (default 2.5). Returns per-server status \
                 (healthy, timeout, error) and the actions taken. Use 'report' first; for a server \
                 that stays unhealthy, magg_list_servers shows why and magg_disable_server turns it \
                 off.",
                json!({
                    "type": "object",
                    "properties": {
                        "action": {"type": "string", "enum": ["report", "remount", "unmount", "disable"], "default": "report", "description": "Action to take for unresponsive servers"},
                        "timeout": {"type": "number", "default": 2.5, "description": "Timeout in seconds for health check per server"}
                    }
                }),
                ToolAnnotations::with_title("Check server health")
                    .read_only(false)
                    .destructive(true)
                    .idempotent(false)
                    .open_world(false),
            ),
            OwnTool::Check,
        ),
        (
            tool(
                settings.prefixed("load_kit"),
                "Load a kit: a named, curated group of MCP servers (e.g. \"web\": fetch + time) \
                 defined in a kit file. Adds its servers to the config file, tagged with the kit, \
                 and starts them; their tools appear in the tool list (clients get \
                 tools/list_changed). Use this instead of several magg_add_server calls when a kit \
                 fits; call magg_list_kits first to see the kits and what each contains.\n\n\
                 Parameter: name (the kit's file name without .json). A server whose name is \
                 already taken by a different server, or whose prefix clashes, is skipped and \
                 listed with the reason. Returns which servers were added, tagged, skipped, \
                 mounted and failed; if any failed to start, the result is an error that says \
                 which (the kit stays loaded). Refused in read-only mode.",
                named_schema("Kit name to load (filename without .json), e.g. \"web\""),
                ToolAnnotations::with_title("Load a kit of MCP servers")
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false)
                    .open_world(true),
            ),
            OwnTool::LoadKit,
        ),
        (
            tool(
                settings.prefixed("unload_kit"),
                "Unload a kit: use it to remove a kit's servers together. Removes the kit from the config file and stops and removes the servers \
                 that only this kit owned. Servers another kit also loaded keep running (only this \
                 kit's tag is removed), and servers you added yourself are never removed; clients \
                 get tools/list_changed. Parameter: name (see magg_list_kits for the loaded ones). \
                 Returns the servers removed and kept. Errors if the kit is not loaded, or in \
                 read-only mode.",
                named_schema("Kit name to unload"),
                ToolAnnotations::with_title("Unload a kit")
                    .read_only(false)
                    .destructive(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::UnloadKit,
        ),
        (
            tool(
                settings.prefixed("list_kits"),
                "List every kit magg can load (from kit.d/ beside the config file, the MAGG_PATH \
                 directories, and the kits shipped with magg): name, description, servers, and \
                 whether it is loaded. Changes nothing. Use it to find a ready group of servers for \
                 a task before adding servers one by one. Next step: magg_kit_info for a kit's \
                 details, magg_load_kit to add its servers.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("List kits")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::ListKits,
        ),
        (
            tool(
                settings.prefixed("kit_info"),
                "Show one kit in full: description, author, version, keywords, links, and each \
                 server's command, prefix and notes, plus whether it is loaded. Changes nothing. \
                 Use it before magg_load_kit to see what a kit would start. Parameter: name (from \
                 magg_list_kits); errors if no kit has that name.",
                named_schema("Kit name to get information about"),
                ToolAnnotations::with_title("Kit details")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::KitInfo,
        ),
        (
            tool(
                settings.prefixed("search_servers"),
                "Search MCP server registries for servers that do something, e.g. \"time\" or \
                 \"postgres\". Use it when the task needs a capability no listed tool offers. \
                 Every search provider plugin (the MCP Registry, Glama, GitHub, npm) \
                 is asked at once, each within its time limit; one server found by several is \
                 listed once (same repository or package), and results are ranked by how well the \
                 name matches, whether a ready config is known, the source and stars. Changes \
                 nothing; reaches the network only through the hosts the config grants each \
                 provider.\n\n\
                 Returns {\"errors\": null, \"output\": {\"query\", \"total\", \"found\", \"results\": \
                 [ {name, source, sources, description, url?, repository?, packages?, stars?, \
                 install_command?, tags?, config? | next_step?} ], \"sources\": {provider: \
                 {results: n} | {error}}}}. `config` is ready to pass to magg_add_server; without \
                 one, `next_step` names the source to give magg_smart_configure. A provider that \
                 failed, was rate limited or timed out is named in `sources` with what to do; the \
                 others' results still come. Fails (isError) only when no search provider plugin \
                 is loaded.",
                json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "What to look for, e.g. \"weather\" or \"github issues\""},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5,
                                  "description": "Most results returned, after merging (default 5); each provider is asked for as many"}
                    },
                    "required": ["query"],
                    "additionalProperties": false
                }),
                ToolAnnotations::with_title("Search for MCP servers")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(true),
            ),
            OwnTool::SearchServers,
        ),
        (
            tool(
                settings.prefixed("smart_configure"),
                "Work out a runnable server config from a source: an npm package (page URL or \
                 name, e.g. @scope/name) → npx, a PyPI project URL → uvx, a GitHub repository URL \
                 (its README's mcpServers snippet, server.json, package.json or pyproject.toml, read \
                 through the GitHub API), an OCI image (ghcr.io/..., docker://..., image:tag) → \
                 docker run, a remote MCP endpoint (its server card, and a probe for streamable \
                 HTTP or legacy SSE) → uri, or a local project directory (whose marker files — \
                 package.json, pyproject.toml, Cargo.toml, go.mod... — tell how to run it). Env \
                 vars and headers the server needs are named in notes, never filled in. Configure \
                 plugins are asked first, else magg's built-in rules (the same rules); when the \
                 client supports sampling, its LLM refines that suggestion (action \
                 smart_configure_prompt).\n\n\
                 With allow_add false (default) it changes nothing and returns {\"action\": \
                 \"metadata_based_config\", \"metadata\": [...], \"suggested_config\": {name, source, \
                 command?, args?, uri?, transport?, cwd?, env?, notes?}, \"suggested_by\"} — review \
                 it, then call \
                 magg_add_server. With allow_add true it also adds and starts the server (writing the \
                 config file, like magg_add_server) and returns {\"action\": \"smart_configured\", \
                 \"server\", \"config\"}. Required secrets and env vars are named in `notes`, never \
                 filled in: ask the user for them. Use magg_add_server directly when you already \
                 know the command; use magg_search_servers first when you have no source yet.",
                json!({
                    "type": "object",
                    "properties": {
                        "source": {"type": "string", "description": "URL or local path, e.g. \"https://www.npmjs.com/package/@modelcontextprotocol/server-memory\" or \"/home/me/my-server\""},
                        "server_name": {"type": "string", "description": "Name for the server (default: derived from the source)"},
                        "allow_add": {"type": "boolean", "default": false, "description": "Add and start the server too (default false: only suggest)"}
                    },
                    "required": ["source"],
                    "additionalProperties": false
                }),
                ToolAnnotations::with_title("Suggest (and optionally add) a server config")
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false)
                    .open_world(true),
            ),
            OwnTool::SmartConfigure,
        ),
        (
            tool(
                settings.prefixed("analyze_servers"),
                "Review the configured servers: which run, which failed and why, tools that two \
                 servers both offer (the model may pick the wrong one), servers configured twice, \
                 disabled servers and servers that offer no tools, and kits worth loading. Use it \
                 when tools seem missing or duplicated, or before tidying the config. Changes \
                 nothing. When the client supports sampling, its LLM adds written `insights`.\n\n\
                 Returns {\"errors\": null, \"output\": {total_servers, enabled_servers, \
                 mounted_servers, servers: {name: {source, enabled, mounted, status, command, uri, \
                 prefix, notes, tools, reason?}}, issues: [{server, issue, detail?, fix?}], \
                 duplicate_tools: [{tool, servers}], overlapping_servers: [{servers, shared_tools, \
                 overlap}], duplicate_servers: [{runs, servers}], suggested_kits: {available, \
                 servers_in_no_kit}, insights?}}. Next step: act on an issue's `fix` (e.g. \
                 magg_disable_server, magg_remove_server) or magg_load_kit.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                ToolAnnotations::with_title("Analyze the configured servers")
                    .read_only(true)
                    .idempotent(true)
                    .open_world(false),
            ),
            OwnTool::AnalyzeServers,
        ),
    ]
}

fn named_schema(description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "description": description}},
        "required": ["name"]
    })
}

fn tool(
    name: String,
    description: impl Into<std::borrow::Cow<'static, str>>,
    schema: Value,
    annotations: ToolAnnotations,
) -> Tool {
    let schema = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(name, description, Arc::new(schema)).with_annotations(annotations)
}

/// Runs one of magg's own tools.
async fn call_own(
    hub: &Arc<Hub>,
    own: OwnTool,
    arguments: Option<JsonObject>,
    ct: CancellationToken,
) -> Result<CallToolResult, McpError> {
    Ok(match own {
        OwnTool::ListServers => success(list_servers(hub)),
        OwnTool::Status => success(status(hub)),
        OwnTool::Proxy => proxy::call(hub, arguments.unwrap_or_default(), ct).await,
        OwnTool::AddServer => manage::add_server(hub, arguments.unwrap_or_default()).await,
        OwnTool::RemoveServer => manage::remove_server(hub, arguments.unwrap_or_default()).await,
        OwnTool::EnableServer => {
            manage::set_enabled(hub, arguments.unwrap_or_default(), true).await
        }
        OwnTool::DisableServer => {
            manage::set_enabled(hub, arguments.unwrap_or_default(), false).await
        }
        OwnTool::ReloadConfig => manage::reload_config(hub).await,
        OwnTool::Check => manage::check(hub, arguments.unwrap_or_default()).await,
        OwnTool::LoadKit => kits::load_kit(hub, arguments.unwrap_or_default()).await,
        OwnTool::UnloadKit => kits::unload_kit(hub, arguments.unwrap_or_default()).await,
        OwnTool::ListKits => kits::list_kits(hub),
        OwnTool::KitInfo => kits::kit_info(hub, arguments.unwrap_or_default()),
        OwnTool::SmartConfigure => {
            discover::smart_configure(hub, arguments.unwrap_or_default()).await
        }
        OwnTool::SearchServers => search::search_servers(hub, arguments.unwrap_or_default()).await,
        OwnTool::AnalyzeServers => analyze::analyze_servers(hub).await,
        OwnTool::SearchTools => find::search_tools(hub, arguments.unwrap_or_default()).await,
        OwnTool::CallTool => {
            Box::pin(find::call_tool(hub, arguments.unwrap_or_default(), ct)).await
        }
    })
}

/// A Magg-style success result: `{"errors": null, "output": output}`.
pub fn success(output: Value) -> CallToolResult {
    response(json!({"errors": null, "output": output}), false)
}

/// A Magg-style failure result: `{"errors": [message], "output": null}` with `isError: true`.
pub fn failure(message: impl Into<String>) -> CallToolResult {
    response(json!({"errors": [message.into()], "output": null}), true)
}

fn response(body: Value, is_error: bool) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(body.to_string())])
    } else {
        CallToolResult::success(vec![ContentBlock::text(body.to_string())])
    };
    result.structured_content = Some(body);
    result
}

fn list_servers(hub: &Hub) -> Value {
    let config = hub.config();
    let backends = hub.backends();
    let servers: Vec<Value> = config
        .servers
        .values()
        .map(|server| {
            let backend = backends.iter().find(|b| b.name == server.name);
            let state = backend.map(|b| b.state());
            let mut entry = json!({
                "name": server.name,
                "source": server.source,
                "prefix": server.prefix,
                "enabled": server.enabled,
                "mounted": state.as_ref().is_some_and(|s| s.status == Status::Running),
                "status": state.as_ref().map_or("disabled", |s| s.status.label()),
                "tools": state.as_ref().map_or(0, |s| s.tools.len()),
            });
            let obj = entry.as_object_mut();
            if let Some(obj) = obj {
                if let Some(command) = server.command_line() {
                    obj.insert("command".into(), json!(command));
                }
                if let Some(uri) = &server.uri {
                    obj.insert("uri".into(), json!(uri));
                }
                if let Some(file) = &server.component {
                    obj.insert("wasm".into(), json!(file.display().to_string()));
                }
                if let Some(cwd) = &server.cwd {
                    obj.insert("cwd".into(), json!(cwd.display().to_string()));
                }
                if let Some(notes) = &server.notes {
                    obj.insert("notes".into(), json!(notes));
                }
                if let Some(Status::Failed { reason }) = state.as_ref().map(|s| &s.status) {
                    obj.insert("reason".into(), json!(reason));
                }
            }
            entry
        })
        .collect();
    Value::Array(servers)
}

fn status(hub: &Hub) -> Value {
    let config = hub.config();
    let snapshot = hub.snapshot();
    let backends = hub.backends();
    let count = |status: &str| {
        backends
            .iter()
            .filter(|b| b.state().status.label() == status)
            .count()
    };
    let enabled = config.servers.values().filter(|s| s.enabled).count();
    let mut details = serde_json::Map::new();
    for backend in &backends {
        let state = backend.state();
        let mut entry = json!({
            "status": state.status.label(),
            "tools": state.tools.len(),
            "prompts": state.prompts.len(),
            "resources": state.resources.len(),
            "starts": state.starts,
        });
        if let Some(obj) = entry.as_object_mut() {
            if let Status::Failed { reason } = &state.status {
                obj.insert("reason".into(), json!(reason));
            }
            if let Some(pid) = state.pid {
                obj.insert("pid".into(), json!(pid));
            }
            if let Some(component) = &state.component {
                obj.insert("component".into(), component.status());
            } else if let Some(file) = &backend.config.component {
                obj.insert(
                    "component".into(),
                    json!({"file": file.display().to_string(), "grants": backend.config.grants}),
                );
            }
            if let Some(info) = &state.server_info {
                obj.insert(
                    "server_info".into(),
                    json!({"name": info.name, "version": info.version}),
                );
            }
            // The protocol version in use: 2026-07-28 is stateless, older ones a session.
            if let Some(info) = state.peer.as_ref().and_then(|p| p.peer_info()) {
                obj.insert("protocol".into(), json!(info.protocol_version.as_str()));
            }
        }
        details.insert(backend.name.clone(), entry);
    }
    let prefixes: serde_json::Map<String, Value> = backends
        .iter()
        .filter(|b| b.state().status == Status::Running)
        .filter_map(|b| Some((b.name.clone(), json!(b.config.prefix.as_ref()?))))
        .collect();
    json!({
        "servers": {
            "total": config.servers.len(),
            "enabled": enabled,
            "mounted": count("running"),
            "disabled": config.servers.len() - enabled,
            "starting": count("starting"),
            "failed": count("failed"),
        },
        "tools": {"total": snapshot.tools.len()},
        "prompts": {"total": snapshot.prompts.len()},
        "resources": {"total": snapshot.resources.len(), "templates": snapshot.templates.len()},
        "prefixes": prefixes,
        "backends": details,
        "config": {
            "path": config.path.display().to_string(),
            "exists": config.exists,
            "read_only": hub.settings.read_only,
            "last_reload_error": hub.reload_state().last_error(),
        },
        "plugins": {
            "dir": hub.plugins.dir().map(|d| d.display().to_string()),
            "loaded": hub.plugins.status(),
        },
        "sessions": hub.sessions().count(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}
