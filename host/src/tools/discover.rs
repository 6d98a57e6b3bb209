//! `magg_smart_configure`: turning a source (a package, a repository, an image, an MCP
//! endpoint or a local path) into a runnable server config.
//!
//! magg collects the facts (a local directory's marker files; for a remote source, what the
//! registries, the GitHub API or the endpoint say: [`remote`]), then asks the configure plugins
//! and, when none answers, runs the same rules itself (`magg-configure-rules`, which the
//! bundled `smart-configure` plugin wraps), so the answer is the same with that plugin off.
//! When the client offers sampling, its LLM refines the rules' suggestion, as Magg does; an
//! answer of the LLM with no command and no uri keeps the rules' config.

mod remote;

use std::{path::PathBuf, sync::Arc};

use magg_configure_rules as rules;

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, GetPromptResult, JsonObject, Prompt},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    failure, manage,
    sampling::{self, extract_json},
    success,
};
use crate::{
    hub::Hub,
    plugins::{PluginServerConfig, SourceFacts, Suggestion},
};

/// Marker files whose text a configure plugin gets (each cut at [`MARKER_CAP`]).
const MARKERS: &[&str] = &[
    "package.json",
    "pyproject.toml",
    "requirements.txt",
    "Pipfile",
    "setup.py",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "Makefile",
    "README.md",
    "README.rst",
    "README.txt",
    "README",
    "CLAUDE.md",
    "mcp.json",
    ".mcp.json",
];

/// The most of one marker file a configure plugin sees.
const MARKER_CAP: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmartConfigure {
    source: String,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    allow_add: bool,
}

/// `magg_smart_configure`.
pub async fn smart_configure(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let args: SmartConfigure = match super::manage::parse("magg_smart_configure", args) {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    if args.source.trim().is_empty() {
        return failure(
            "'source' is empty: give a URL (npm, PyPI, GitHub, or an MCP endpoint) or a local path",
        );
    }
    let gathered = gather(&args.source, args.server_name.as_deref()).await;
    let mut metadata = gathered.metadata();
    let (suggestion, by) = suggestion(hub, &gathered.facts).await;
    if let Some(suggestion) = &suggestion {
        metadata.extend(suggestion.facts.iter().cloned());
        if let Some(kind) = &suggestion.project_type
            && !metadata.iter().any(|m| m.starts_with("Project type:"))
        {
            metadata.push(format!("Project type: {kind}"));
        }
    }
    let config = gathered.config(suggestion.as_ref());
    if let Some(peer) = sampling::client_llm() {
        return refine(hub, &peer, &args, &metadata, config, by).await;
    }
    if !args.allow_add {
        return success(json!({
            "action": "metadata_based_config",
            "metadata": metadata,
            "suggested_config": config,
            "suggested_by": by,
        }));
    }
    add(hub, config, &by).await
}

/// The first configure plugin's suggestion, else the built-in rules'; with who made it.
async fn suggestion(hub: &Hub, facts: &SourceFacts) -> (Option<Suggestion>, String) {
    hub.wait_for_plugins().await;
    if let Some((plugin, suggestion)) = hub.plugins.suggest(facts).await {
        return (Some(suggestion), plugin);
    }
    let suggestion = rules::suggest(&rules_facts(facts)).map(|s| Suggestion {
        config: PluginServerConfig {
            name: s.config.name,
            source: s.config.source,
            prefix: s.config.prefix,
            command: s.config.command,
            args: s.config.args,
            uri: s.config.uri,
            env: s.config.env,
            cwd: s.config.cwd,
            notes: s.config.notes,
        },
        project_type: s.project_type,
        facts: s.facts,
    });
    (suggestion, "built-in rules".to_owned())
}

/// The facts as the rules take them.
fn rules_facts(facts: &SourceFacts) -> rules::Facts {
    rules::Facts {
        source: facts.source.clone(),
        name: facts.name.clone(),
        path: facts.path.clone(),
        exists: facts.exists,
        is_directory: facts.is_directory,
        files: facts.files.clone(),
        contents: facts.contents.clone(),
    }
}

/// What magg found out about a source: the facts for the rules and plugins, and the lines of
/// what it could not fetch.
struct Gathered {
    facts: SourceFacts,
    fetch_lines: Vec<String>,
}

/// Collects the facts of `source`: local ones for a path, fetched ones for a remote source.
async fn gather(source: &str, name: Option<&str>) -> Gathered {
    let mut facts = collect_facts(source, name);
    let mut fetch_lines = Vec::new();
    if !facts.exists {
        let fetched = remote::fetch(&rules::classify(source)).await;
        facts.contents.extend(fetched.contents);
        fetch_lines = fetched.lines;
    }
    Gathered { facts, fetch_lines }
}

impl Gathered {
    /// Magg's metadata summary lines for what magg itself found.
    fn metadata(&self) -> Vec<String> {
        let mut out = summary(&self.facts);
        out.extend(self.fetch_lines.iter().cloned());
        out
    }

    /// `suggestion`'s config as `magg_add_server`'s arguments (with the transport the probe
    /// found), or Magg's bare config (a name and the source) when there is none.
    fn config(&self, suggestion: Option<&Suggestion>) -> Value {
        let Some(suggestion) = suggestion else {
            return fallback(&self.facts);
        };
        let mut config = manage::add_server_args(&suggestion.config, manage::CommandForm::Split);
        if let Some(uri) = suggestion.config.uri.as_deref()
            && let Some(kind) = rules::transport(&rules_facts(&self.facts), uri)
            && let Value::Object(fields) = &mut config
        {
            fields.insert("transport".into(), json!({"type": kind}));
        }
        config
    }
}

/// magg's own prompts: `magg_configure_server` (Magg's prompt for configuring a server with
/// any LLM, for clients that drive configuration through prompts).
pub fn own_prompts(settings: &crate::config::Settings) -> Vec<Prompt> {
    let prompt = json!({
        "name": settings.prefixed("configure_server"),
        "title": "Configure an MCP server",
        "description": "Generate an enriched prompt template for configuring a server from a URL \
                        or local path: what magg found out about the source, and what \
                        magg_add_server takes. Use it with any LLM; magg_smart_configure does the \
                        same in one tool call.",
        "arguments": [
            {"name": "source", "description": "URL of the server to configure (npm, PyPI, GitHub, an MCP endpoint) or a local path", "required": true},
            {"name": "server_name", "description": "Optional server name", "required": false},
        ],
    });
    serde_json::from_value(prompt).into_iter().collect()
}

/// `prompts/get` of one of magg's own prompts.
pub async fn get_prompt(
    hub: &Hub,
    name: &str,
    arguments: JsonObject,
) -> Result<GetPromptResult, McpError> {
    if name != hub.settings.prefixed("configure_server") {
        return Err(McpError::invalid_params(
            format!("Unknown prompt `{name}`. Call prompts/list to see the available prompts."),
            None,
        ));
    }
    let text = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Some(source) = text("source") else {
        return Err(McpError::invalid_params(
            format!("prompt `{name}` needs the argument `source`: a URL or a local path"),
            None,
        ));
    };
    let server_name = text("server_name");
    let gathered = gather(&source, server_name.as_deref()).await;
    let mut metadata = gathered.metadata();
    if let (Some(suggestion), _) = suggestion(hub, &gathered.facts).await {
        metadata.extend(suggestion.facts.iter().cloned());
        metadata.push(format!(
            "Suggested config: {}",
            gathered.config(Some(&suggestion))
        ));
    }
    let metadata = if metadata.is_empty() {
        "No metadata available".to_owned()
    } else {
        metadata
            .iter()
            .map(|m| format!("- {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let add = hub.settings.prefixed("add_server");
    let user = format!(
        "Configure an MCP server for: {source}\n\nServer name: {name}\n\nCollected Metadata:\n\
         {metadata}\n\nPlease determine the following configuration:\n\
         1. name: A string, potentially user provided (can be human-readable)\n\
         2. prefix: A valid Python identifier (no underscores)\n\
         3. command: The full command to run (e.g., \"python server.py\", \"npx @playwright/mcp@latest\", or null for HTTP)\n\
         4. uri: For HTTP servers (if applicable)\n\
         5. cwd: If needed\n\
         6. env: Environment variables as an object (if needed; never invent secret values: name them in notes)\n\
         7. notes: Helpful setup instructions\n\
         8. transport: Any transport-specific configuration (optional dict)\n\n\
         Consider the URL type and metadata:\n\
         - GitHub repos may need cloning and setup\n\
         - NPM packages use npx\n\
         - Python packages may use uvx or python -m\n\
         - HTTP/HTTPS URLs may be direct MCP servers\n\n\
         Return the configuration as a JSON object, then call {add} with it.",
        name = server_name.as_deref().unwrap_or("auto-generate"),
    );
    let result = json!({
        "description": format!("Configure an MCP server for {source}"),
        "messages": [
            {"role": "assistant", "content": {"type": "text", "text": "You are an expert at configuring MCP servers. Analyze the provided URL and metadata to generate optimal server configuration."}},
            {"role": "user", "content": {"type": "text", "text": user}},
        ],
    });
    serde_json::from_value(result)
        .map_err(|e| McpError::internal_error(format!("cannot build the prompt: {e}"), None))
}

/// Adds a suggested config through `magg_add_server`'s path.
async fn add(hub: &Arc<Hub>, config: Value, by: &str) -> CallToolResult {
    let Value::Object(mut fields) = config.clone() else {
        return failure("the suggested config is not an object");
    };
    if fields.get("command").is_none() && fields.get("uri").is_none() {
        return failure(format!(
            "{by} found no way to run this source (no command and no uri); add it with \
             magg_add_server and a command, e.g. {config}"
        ));
    }
    // magg_add_server takes the command line as one string.
    if let Some(Value::Array(args)) = fields.remove("args") {
        let command = fields
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let words: Vec<String> = std::iter::once(command)
            .chain(args.iter().filter_map(|a| a.as_str().map(str::to_owned)))
            .collect();
        fields.insert("command".into(), json!(shell_words::join(words)));
    }
    let added = manage::add_server(hub, fields).await;
    if added.is_error == Some(true) {
        return added;
    }
    let server = added
        .structured_content
        .as_ref()
        .and_then(|v| v.get("output"))
        .and_then(|o| o.get("server"))
        .cloned()
        .unwrap_or(Value::Null);
    success(json!({
        "action": "smart_configured",
        "server": server,
        "config": config,
        "suggested_by": by,
    }))
}

/// Magg's sampling path: the client's LLM refines the rules' config. Its answer replaces the
/// config when it has a command or a uri; otherwise the rules' config stands.
async fn refine(
    hub: &Arc<Hub>,
    peer: &rmcp::service::Peer<rmcp::RoleServer>,
    args: &SmartConfigure,
    metadata: &[String],
    suggested: Value,
    by: String,
) -> CallToolResult {
    let prompt = format!(
        "You are being asked by the magg smart_configure tool to analyze metadata and generate \
         an optimal MCP server configuration.\n\nConfigure an MCP server for: {source}\n\n\
         Server name requested: {name}\n\n=== METADATA COLLECTED ===\n{meta}\n\n\
         === SUGGESTED CONFIGURATION ({by}) ===\n{suggested}\n\n=== TASK ===\n\
         Based on the URL, the metadata and the suggested configuration above, generate a \
         complete JSON configuration for magg's {add} tool: keep what the suggestion has \
         right, fix what it has wrong. Required fields: name (any string), prefix (letters and \
         digits, no underscores), command (the full command line: python, node, npx, uvx...; \
         omit for HTTP servers), uri (for HTTP servers), cwd (if needed), env (object, if \
         needed; never invent secret values: name the variables the user must set in notes), \
         notes (setup steps for the user), transport (optional object, e.g. {{\"type\": \
         \"sse\"}}).\n\nReturn ONLY valid JSON, no explanations or markdown formatting.",
        source = args.source,
        name = args
            .server_name
            .as_deref()
            .unwrap_or("<auto-generate based on source>"),
        meta = if metadata.is_empty() {
            "No metadata available".to_owned()
        } else {
            metadata
                .iter()
                .map(|m| format!("- {m}"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        add = hub.settings.prefixed("add_server"),
    );
    let text = match sampling::ask(peer, &prompt, 1000).await {
        Ok(text) => text,
        Err(e) => return failure(e),
    };
    let parsed = extract_json(&text);
    let runnable = |c: &Map<String, Value>| {
        ["command", "uri"].iter().any(|k| {
            c.get(*k)
                .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        })
    };
    let (config, by) = match &parsed {
        Some(Value::Object(answer)) if runnable(answer) => {
            let mut config = answer.clone();
            config.entry("source").or_insert_with(|| json!(args.source));
            if let Some(name) = &args.server_name {
                config.entry("name").or_insert_with(|| json!(name));
            }
            config.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "name"
                        | "source"
                        | "prefix"
                        | "command"
                        | "args"
                        | "uri"
                        | "env"
                        | "cwd"
                        | "notes"
                        | "enable"
                        | "transport"
                )
            });
            // The transport the probe found, for the uri it was found at.
            if !config.contains_key("transport")
                && config.get("uri").is_some()
                && config.get("uri") == suggested.get("uri")
                && let Some(transport) = suggested.get("transport")
            {
                config.insert("transport".into(), transport.clone());
            }
            (Value::Object(config), "the client's LLM".to_owned())
        }
        _ => (suggested, by),
    };
    if !args.allow_add {
        return success(json!({
            "action": "smart_configure_prompt",
            "source": args.source,
            "metadata": metadata,
            "response": parsed.unwrap_or(Value::String(text)),
            "suggested_config": config,
            "suggested_by": by,
        }));
    }
    add(hub, config, &by).await
}

/// What magg can tell about a source without a network: for a local path, its marker files.
pub fn collect_facts(source: &str, name: Option<&str>) -> SourceFacts {
    let mut facts = SourceFacts {
        source: source.to_owned(),
        name: name.map(str::to_owned),
        path: None,
        exists: false,
        is_directory: false,
        files: Vec::new(),
        contents: Vec::new(),
    };
    // Magg's rule: a `file://` URL, or anything with a slash that is not a URL.
    let local = source.starts_with("file://") || (!source.contains("://") && source.contains('/'));
    if !local {
        return facts;
    }
    let raw = source.strip_prefix("file://").unwrap_or(source);
    let path = match raw.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(raw),
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    facts.path = Some(path.display().to_string());
    facts.exists = path.exists();
    facts.is_directory = path.is_dir();
    if facts.is_directory
        && let Ok(entries) = std::fs::read_dir(&path)
    {
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        for marker in MARKERS {
            if files.iter().any(|f| f == marker)
                && let Ok(bytes) = std::fs::read(path.join(marker))
            {
                let cut = &bytes[..bytes.len().min(MARKER_CAP)];
                facts.contents.push((
                    (*marker).to_owned(),
                    String::from_utf8_lossy(cut).into_owned(),
                ));
            }
        }
        facts.files = files;
    }
    facts
}

/// Magg's metadata summary lines for what magg itself found.
fn summary(facts: &SourceFacts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(path) = &facts.path {
        // A missing path that reads as a package or an image is not a path at all.
        if !facts.exists && rules::classify(&facts.source) == rules::Source::Local {
            out.push(format!("Path does not exist: {path}"));
        } else if facts.is_directory {
            let markers: Vec<&str> = facts.contents.iter().map(|(n, _)| n.as_str()).collect();
            if !markers.is_empty() {
                out.push(format!("Marker files: {}", markers.join(", ")));
            }
        }
    }
    out
}

/// Magg's config when no rule knows the source (`metadata_based_config`): a name from the
/// source's last path segment, and the source; no command, so it cannot be added as it is.
fn fallback(facts: &SourceFacts) -> Value {
    let stem = facts
        .source
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(&facts.source)
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    let name = facts
        .name
        .clone()
        .unwrap_or_else(|| stem.replace(['-', '_'], ""));
    json!({"name": name, "source": facts.source})
}
