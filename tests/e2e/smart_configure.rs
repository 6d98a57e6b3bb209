//! `magg_smart_configure` for every kind of source, through `magg serve`, with a replay server
//! standing in for the npm registry, PyPI, the GitHub API and remote MCP servers: each row is
//! a source and the command line (or uri) and notes a user would check. The table runs with
//! the bundled `smart-configure` plugin and with it turned off (magg's built-in rules), and the
//! answers must be the same.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, call_sampled, magg_body, remote_test_backend},
    replay::{Replay, Route},
};

/// One source and what its suggestion must say.
struct Row {
    source: String,
    /// `command args...` as one line, or `uri <url>`, or `none` (no way to run it).
    runs: String,
    /// The transport type the config names, if any.
    transport: Option<&'static str>,
    /// Words the notes must contain (required env vars, headers).
    notes: Vec<&'static str>,
    /// Words the notes must not contain (secret values from READMEs).
    not_in_notes: Vec<&'static str>,
    /// Words the metadata must contain.
    metadata: Vec<&'static str>,
}

fn row(source: impl Into<String>, runs: impl Into<String>) -> Row {
    Row {
        source: source.into(),
        runs: runs.into(),
        transport: None,
        notes: Vec::new(),
        not_in_notes: Vec::new(),
        metadata: Vec::new(),
    }
}

impl Row {
    fn notes(mut self, words: &[&'static str]) -> Row {
        self.notes = words.to_vec();
        self
    }
    fn not_in_notes(mut self, words: &[&'static str]) -> Row {
        self.not_in_notes = words.to_vec();
        self
    }
    fn metadata(mut self, words: &[&'static str]) -> Row {
        self.metadata = words.to_vec();
        self
    }
    fn transport(mut self, kind: &'static str) -> Row {
        self.transport = Some(kind);
        self
    }
}

/// How a suggested config runs, in a row's `runs` form.
fn runs(config: &Value) -> String {
    if let Some(command) = config["command"].as_str() {
        let mut line = vec![command.to_owned()];
        line.extend(
            config["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        );
        return line.join(" ");
    }
    match config["uri"].as_str() {
        Some(uri) => format!("uri {uri}"),
        None => "none".to_owned(),
    }
}

/// A README with a Claude Desktop snippet for `package` that needs `env` (with a value that
/// must never reach the notes).
fn readme_with_snippet(command: &str, args: Value, env: &str) -> String {
    let snippet = json!({"mcpServers": {"server": {"command": command, "args": args, "env": {env: "sk-live-do-not-copy"}}}});
    format!(
        "# A server\n\nAdd to `claude_desktop_config.json`:\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&snippet).unwrap_or_default()
    )
}

/// The public APIs: the npm registry at `/npm`, PyPI at `/pypi-mirror`, the GitHub API at
/// `/gh`, and a few endpoints of a remote server.
async fn apis() -> Replay {
    let memory_readme = readme_with_snippet(
        "npx",
        json!(["-y", "@modelcontextprotocol/server-memory"]),
        "MEMORY_FILE_PATH",
    );
    let memory = json!({
        "name": "@modelcontextprotocol/server-memory",
        "description": "MCP server for enabling memory for Claude through a knowledge graph",
        "dist-tags": {"latest": "2025.8.4"},
        "versions": {
            "2025.8.4": {
                "name": "@modelcontextprotocol/server-memory",
                "version": "2025.8.4",
                "bin": {"mcp-server-memory": "dist/index.js"},
            },
        },
        "readme": memory_readme,
    });
    let weather = json!({
        "name": "@acme/weather",
        "dist-tags": {"latest": "0.4.1"},
        "versions": {"0.4.1": {"name": "@acme/weather", "version": "0.4.1", "description": "Forecasts", "bin": {"acme-weather": "cli.js", "acme-weather-mcp": "mcp.js"}}},
        "readme": "# Weather\n\n```bash\nexport WEATHER_API_KEY=your-key\nnpx -y --package @acme/weather acme-weather-mcp\n```\n",
    });
    let pypi = json!({"info": {
        "name": "acme-forecast",
        "summary": "Forecasts over MCP",
        "version": "1.0.3",
        "description": "# acme-forecast\n\n```sh\nexport FORECAST_TOKEN=...\n```\n",
        "project_urls": {"Homepage": "https://acme.example", "Source": "https://github.com/acme/forecast-py"},
    }});
    let forecast_pyproject = "[project]\nname = \"acme-forecast\"\n\n[project.scripts]\nforecast-mcp = \"acme_forecast.server:main\"\n";
    let tools_pyproject =
        "[project]\nname = \"py-tools\"\n[project.scripts]\nacme-tools = \"py_tools:main\"\n";
    // The contents API's JSON form (base64), as an API that ignores the raw media type sends.
    let tools_pyproject_json = json!({
        "type": "file", "encoding": "base64", "name": "pyproject.toml", "path": "pyproject.toml",
        "content": base64::engine::general_purpose::STANDARD.encode(tools_pyproject),
    });
    let gh_readme = readme_with_snippet(
        "docker",
        json!([
            "run",
            "-i",
            "--rm",
            "-e",
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "ghcr.io/acme/gh-server"
        ]),
        "GITHUB_PERSONAL_ACCESS_TOKEN",
    );
    let repo = |name: &str, language: &str| {
        json!({"full_name": format!("acme/{name}"), "description": format!("The {name} server"), "language": language, "stargazers_count": 42, "default_branch": "main"})
            .to_string()
    };
    Replay::start(vec![
        // npm
        Route::json("/npm/@modelcontextprotocol%2Fserver-memory", memory.to_string()),
        Route::json("/npm/@acme%2Fweather", weather.to_string()),
        // A registry document without its README (as mirrors serve them): the README comes
        // from the repository's folder the package names.
        Route::json(
            "/npm/@acme%2Ffiles",
            json!({
                "name": "@acme/files",
                "dist-tags": {"latest": "1.0.0"},
                "versions": {"1.0.0": {
                    "name": "@acme/files", "version": "1.0.0", "bin": "dist/index.js",
                    "repository": {"type": "git", "url": "git+https://github.com/acme/files.git", "directory": "packages/server"},
                }},
            })
            .to_string(),
        ),
        Route::text(
            "/gh/repos/acme/files/readme/packages/server",
            readme_with_snippet("npx", json!(["-y", "@acme/files", "/path/to/allowed/dir"]), "FILES_ROOT"),
        ),
        Route::json("/npm/not-a-package", r#"{"error":"Not found"}"#).status("404 Not Found"),
        // PyPI, and the repository its metadata names
        Route::json("/pypi-mirror/pypi/acme-forecast/json", pypi.to_string()),
        Route::text(
            "/gh/repos/acme/forecast-py/contents/pyproject.toml",
            forecast_pyproject,
        ),
        // GitHub: a Node server with a bin
        Route::json("/gh/repos/acme/notes-server", repo("notes-server", "TypeScript")),
        Route::text(
            "/gh/repos/acme/notes-server/readme",
            "# Notes\n\n```bash\nexport NOTES_TOKEN=xyz\n```\n",
        ),
        Route::text(
            "/gh/repos/acme/notes-server/contents/package.json",
            json!({"name": "notes-server", "bin": {"notes-server": "build/index.js"}, "scripts": {"prepare": "tsc"}}).to_string(),
        ),
        // GitHub: a Python server with a console script
        Route::json("/gh/repos/acme/py-tools", repo("py-tools", "Python")),
        Route::json(
            "/gh/repos/acme/py-tools/contents/pyproject.toml",
            tools_pyproject_json.to_string(),
        ),
        // GitHub: a Python server in a folder of a repository, at a tag
        Route::json("/gh/repos/acme/mono", repo("mono", "Python")),
        Route::text(
            "/gh/repos/acme/mono/contents/servers/time/pyproject.toml?ref=v2",
            "[project]\nname = \"acme-time\"\n[project.scripts]\ntime-mcp = \"acme_time:main\"\n",
        ),
        // GitHub: a README with an mcpServers snippet
        Route::json("/gh/repos/acme/gh-server", repo("gh-server", "Go")),
        Route::text("/gh/repos/acme/gh-server/readme", gh_readme),
        // GitHub: rate limited
        Route::json(
            "/gh/repos/acme/limited",
            r#"{"message":"API rate limit exceeded for 127.0.0.1."}"#,
        )
        .status("403 Forbidden")
        .header("x-ratelimit-remaining: 0")
        .header("x-ratelimit-limit: 60"),
        // A remote server's streamable HTTP endpoint (named by another origin's card).
        Route::json(
            "/remote/v1/mcp",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "weather-remote", "version": "3.1.0"}}}).to_string(),
        )
        .method("POST"),
        // A legacy SSE server.
        Route {
            headers: vec![
                "content-type: text/event-stream".to_owned(),
                "cache-control: no-cache".to_owned(),
            ],
            ..Route::text(
                "/legacy/events",
                "event: endpoint\ndata: /legacy/messages?session=1\n\n",
            )
        }
        .method("GET"),
        // A server that wants a token.
        Route::json("/private/mcp", r#"{"error":"unauthorized"}"#)
            .status("401 Unauthorized")
            .header("www-authenticate: Bearer resource_metadata=\"/.well-known/oauth-protected-resource\""),
    ])
    .await
}

/// A second origin whose server card names the remote endpoint of `apis`.
async fn carded(apis: &Replay) -> Replay {
    let card = json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json",
        "name": "io.example/weather",
        "title": "Weather",
        "description": "Forecasts for anywhere",
        "version": "3.1.0",
        "remotes": [{
            "type": "streamable-http",
            "url": format!("{}/remote/v1/mcp", apis.base()),
            "headers": [
                {"name": "X-Api-Key", "description": "Your API key", "isRequired": true, "isSecret": true},
                {"name": "X-Trace", "isRequired": false},
            ],
        }],
    });
    Replay::start(vec![
        Route::json("/.well-known/mcp/server-card.json", card.to_string())
            .header("access-control-allow-origin: *"),
    ])
    .await
}

fn rows(apis: &Replay, carded: &Replay, project: &str) -> Vec<Row> {
    let a = apis.base();
    vec![
        // The reported defect: a command, not just a name.
        row(
            "https://www.npmjs.com/package/@modelcontextprotocol/server-memory",
            "npx -y @modelcontextprotocol/server-memory",
        )
        .notes(&["MEMORY_FILE_PATH"])
        .not_in_notes(&["sk-live"])
        .metadata(&["knowledge graph", "Version: 2025.8.4"]),
        row(
            "@acme/weather",
            "npx -y --package @acme/weather acme-weather-mcp",
        )
        .notes(&["WEATHER_API_KEY"])
        .not_in_notes(&["your-key"]),
        row("@acme/files", "npx -y @acme/files /path/to/allowed/dir")
            .notes(&["FILES_ROOT", "`/path/to/allowed/dir`"])
            .not_in_notes(&["sk-live"]),
        row("not-a-package", "npx -y not-a-package").metadata(&["npm: no package not-a-package"]),
        row(
            "https://pypi.org/project/acme-forecast/",
            "uvx --from acme-forecast forecast-mcp",
        )
        .notes(&["FORECAST_TOKEN"])
        .metadata(&["Forecasts over MCP"]),
        row(
            "https://github.com/acme/notes-server",
            "npx -y github:acme/notes-server",
        )
        .notes(&["NOTES_TOKEN"])
        .not_in_notes(&["xyz"])
        .metadata(&["GitHub: The notes-server server", "Language: TypeScript"]),
        row(
            "https://github.com/acme/py-tools",
            "uvx --from git+https://github.com/acme/py-tools acme-tools",
        ),
        row(
            "https://github.com/acme/mono/tree/v2/servers/time",
            "uvx --from git+https://github.com/acme/mono@v2#subdirectory=servers/time time-mcp",
        )
        .metadata(&["Subfolder: servers/time"]),
        row(
            "https://github.com/acme/gh-server",
            "docker run -i --rm -e GITHUB_PERSONAL_ACCESS_TOKEN ghcr.io/acme/gh-server",
        )
        .notes(&["GITHUB_PERSONAL_ACCESS_TOKEN"])
        .not_in_notes(&["sk-live"])
        .metadata(&["Setup hints found in README"]),
        row("https://github.com/acme/limited", "none")
            .notes(&["git clone https://github.com/acme/limited.git"])
            .metadata(&["GitHub: 403 rate limited; set GITHUB_TOKEN"]),
        row(
            "ghcr.io/acme/mcp-time:1.0",
            "docker run -i --rm ghcr.io/acme/mcp-time:1.0",
        ),
        row(
            format!("{}/", carded.base()),
            format!("uri {a}/remote/v1/mcp"),
        )
        .notes(&["X-Api-Key"])
        .not_in_notes(&["X-Trace"])
        .metadata(&["Forecasts for anywhere", "Server: weather-remote 3.1.0"]),
        row(
            format!("{a}/legacy/events"),
            format!("uri {a}/legacy/events"),
        )
        .transport("sse")
        .metadata(&["Transport: SSE"]),
        row(format!("{a}/private/mcp"), format!("uri {a}/private/mcp"))
            .notes(&["Authorization: Bearer"])
            .metadata(&["authorization (401)"]),
        row(project, "node server.js").metadata(&["node_project"]),
    ]
}

async fn run_table(plugin_enabled: bool) -> Vec<(String, Value)> {
    let apis = apis().await;
    let carded = carded(&apis).await;
    let plugins = if plugin_enabled {
        json!({})
    } else {
        json!({"smart-configure": {"enabled": false}})
    };
    let config = TempConfig::new(&json!({"servers": {}, "plugins": plugins}));
    let project = config.dir.path().join("notes-local");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::write(
        project.join("package.json"),
        json!({"name": "notes-local", "main": "server.js"}).to_string(),
    )
    .expect("package.json");
    let npm = format!("{}/npm", apis.base());
    let pypi = format!("{}/pypi-mirror", apis.base());
    let github = format!("{}/gh", apis.base());
    let mut magg = Magg::stdio_with(
        &config.path,
        &[],
        &[
            ("NPM_CONFIG_REGISTRY", npm.as_str()),
            ("MAGG_PYPI_URL", pypi.as_str()),
            ("GITHUB_API_URL", github.as_str()),
            ("GITHUB_TOKEN", ""),
        ],
    )
    .await;
    let client = magg.client();
    // Once magg lists its tools, its plugins have loaded.
    client.tool_names().await;
    let by = if plugin_enabled {
        "smart-configure"
    } else {
        "built-in rules"
    };
    let mut answers = Vec::new();
    for row in rows(&apis, &carded, &project.display().to_string()) {
        let body = magg_body(
            &client
                .call("magg_smart_configure", json!({"source": row.source}))
                .await
                .expect("smart configure"),
        );
        let out = &body["output"];
        let suggested = &out["suggested_config"];
        let at = format!("{} → {body}", row.source);
        assert_eq!(out["action"], json!("metadata_based_config"), "{at}");
        assert_eq!(out["suggested_by"], json!(by), "{at}");
        assert_eq!(runs(suggested), row.runs, "{at}");
        assert_eq!(
            suggested["transport"]["type"].as_str(),
            row.transport,
            "{at}"
        );
        let notes = suggested["notes"].as_str().unwrap_or_default();
        for word in &row.notes {
            assert!(notes.contains(word), "notes lack {word:?}: {at}");
        }
        for word in &row.not_in_notes {
            assert!(!notes.contains(word), "notes have {word:?}: {at}");
        }
        // Values from a README's snippet are never copied into the config.
        assert!(!suggested.to_string().contains("sk-live"), "{at}");
        let metadata = out["metadata"].to_string();
        for word in &row.metadata {
            assert!(metadata.contains(word), "metadata lacks {word:?}: {at}");
        }
        answers.push((
            row.source
                .replace(&apis.base(), "APIS")
                .replace(&carded.base(), "CARD"),
            suggested.clone(),
        ));
    }
    // GitHub was asked as the API documents: raw contents, with its version header.
    let contents = apis
        .requests()
        .into_iter()
        .find(|r| {
            r.line
                .contains("/gh/repos/acme/notes-server/contents/package.json")
        })
        .expect("package.json was asked for");
    assert_eq!(
        contents.header("accept"),
        Some("application/vnd.github.raw")
    );
    assert!(contents.header("x-github-api-version").is_some());
    assert!(
        contents.header("authorization").is_none(),
        "no token, no header"
    );
    assert!(apis.asked(&["POST /remote/v1/mcp"]));
    assert!(carded.asked(&["GET /.well-known/mcp/server-card.json"]));
    // Suggesting added nothing.
    assert_eq!(config.read()["servers"], json!({}));
    // The local project's absolute path differs between runs.
    answers.retain(|(source, _)| !source.contains("notes-local"));
    answers
}

#[tokio::test]
async fn every_source_kind_gets_a_runnable_config_with_or_without_the_plugin() {
    let with_plugin = run_table(true).await;
    let built_in = run_table(false).await;
    let strip = |answers: Vec<(String, Value)>| -> Vec<(String, Value)> {
        answers
            .into_iter()
            .map(|(source, config)| {
                // The replay's port differs between the runs.
                let text = regex_free_ports(&config.to_string());
                (
                    regex_free_ports(&source),
                    serde_json::from_str(&text).unwrap_or(config),
                )
            })
            .collect()
    };
    assert_eq!(strip(with_plugin), strip(built_in));
}

/// `text` with every `127.0.0.1:<port>` written as `127.0.0.1:PORT`.
fn regex_free_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = rest[at + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn a_probed_remote_endpoint_is_added_and_its_tools_answer() {
    let remote = remote_test_backend("probed").await;
    let config = TempConfig::new(&json!({"servers": {}}));
    let mut magg = Magg::stdio(&config.path).await;
    let client = magg.client();
    let body = magg_body(
        &client
            .call(
                "magg_smart_configure",
                json!({"source": remote.url, "server_name": "probed", "allow_add": true}),
            )
            .await
            .expect("smart configure"),
    );
    assert_eq!(
        body["output"]["action"],
        json!("smart_configured"),
        "{body}"
    );
    let saved = config.read();
    assert_eq!(
        saved["servers"]["probed"]["uri"],
        json!(remote.url),
        "{saved}"
    );
    let echoed = client
        .call_eventually(
            "probed_echo",
            json!({"text": "through the probed endpoint"}),
        )
        .await;
    assert!(
        echoed.to_string().contains("through the probed endpoint"),
        "{echoed}"
    );
}

#[tokio::test]
async fn the_clients_llm_refines_the_rules_suggestion_and_cannot_drop_the_command() {
    let apis = apis().await;
    let config = TempConfig::new(&json!({"servers": {}, "allow_unauthenticated_changes": true}));
    let npm = format!("{}/npm", apis.base());
    let magg = Magg::http_with(
        &config.path,
        &["--http", "--host", "127.0.0.1", "--port", "0"],
        &[("NPM_CONFIG_REGISTRY", npm.as_str())],
    )
    .await;
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // An LLM that answers with notes only: no command, no uri.
    let client = crate::harness::Sampler {
        answer: json!({"name": "memory", "notes": "a knowledge graph"}).to_string(),
        asked: asked.clone(),
    }
    .connect(&magg)
    .await;
    client.list_all_tools().await.expect("tools");
    let body = call_sampled(
        &client,
        "magg_smart_configure",
        json!({"source": "@modelcontextprotocol/server-memory"}),
    )
    .await;
    let out = &body["output"];
    assert_eq!(out["action"], json!("smart_configure_prompt"), "{body}");
    assert_eq!(
        runs(&out["suggested_config"]),
        "npx -y @modelcontextprotocol/server-memory",
        "{body}"
    );
    assert_eq!(out["suggested_by"], json!("smart-configure"), "{body}");
    let prompt = asked.lock().expect("asked").join("\n");
    // The LLM saw the rules' suggestion and what the registry said.
    assert!(prompt.contains("SUGGESTED CONFIGURATION"), "{prompt}");
    assert!(prompt.contains("npx"), "{prompt}");
    assert!(prompt.contains("knowledge graph"), "{prompt}");
}

#[tokio::test]
async fn github_token_is_sent_and_a_rate_limit_says_so() {
    let apis = apis().await;
    let config = TempConfig::new(&json!({"servers": {}}));
    let github = format!("{}/gh", apis.base());
    let mut magg = Magg::stdio_with(
        &config.path,
        &[],
        &[
            ("GITHUB_API_URL", github.as_str()),
            ("GITHUB_TOKEN", "ghp_test_token"),
        ],
    )
    .await;
    let client = magg.client();
    let body = magg_body(
        &client
            .call(
                "magg_smart_configure",
                json!({"source": "https://github.com/acme/limited"}),
            )
            .await
            .expect("smart configure"),
    );
    let metadata = body["output"]["metadata"].to_string();
    assert!(
        metadata.contains("rate limited even with GITHUB_TOKEN"),
        "{body}"
    );
    let asked = apis
        .requests()
        .into_iter()
        .find(|r| r.line.contains("/gh/repos/acme/limited"))
        .expect("GitHub was asked");
    assert_eq!(asked.header("authorization"), Some("Bearer ghp_test_token"));
    // The token is never shown.
    assert!(!body.to_string().contains("ghp_test_token"), "{body}");
}

#[tokio::test]
async fn an_llm_answer_without_a_command_keeps_the_rules_config_and_the_server_runs() {
    let remote = remote_test_backend("kept").await;
    let config = TempConfig::new(&json!({"servers": {}, "allow_unauthenticated_changes": true}));
    let magg = Magg::http(&config.path, false).await;
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = crate::harness::Sampler {
        answer: "Looks like a remote server; add it.".to_owned(),
        asked: asked.clone(),
    }
    .connect(&magg)
    .await;
    let body = call_sampled(
        &client,
        "magg_smart_configure",
        json!({"source": remote.url, "server_name": "kept", "allow_add": true}),
    )
    .await;
    assert_eq!(
        body["output"]["action"],
        json!("smart_configured"),
        "{body}"
    );
    assert_ne!(
        body["output"]["suggested_by"],
        json!("the client's LLM"),
        "{body}"
    );
    assert_eq!(config.read()["servers"]["kept"]["uri"], json!(remote.url));
    assert!(
        !asked.lock().expect("asked").is_empty(),
        "the LLM was asked"
    );
    let echoed = crate::harness::eventually("kept_echo answers", crate::harness::WAIT, || {
        let client = &client;
        async move {
            let params = rmcp::model::CallToolRequestParams::new("kept_echo").with_arguments(
                json!({"text": "kept"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
            client
                .call_tool(params)
                .await
                .ok()
                .filter(|r| r.is_error != Some(true))
        }
    })
    .await;
    assert!(format!("{echoed:?}").contains("kept"), "{echoed:?}");
}
