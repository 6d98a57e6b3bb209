//! `mcp-registry`: searches the official MCP Registry for servers (world
//! `search-provider-plugin`).
//!
//! It sends `GET {base_url}/v0.1/servers?search=<query>&limit=<limit>&version=latest` (the
//! registry's stable API) and, when that path answers 404 (a registry that speaks only the
//! older API), the same request to `/v0/servers`; both answer `{servers: [{server, _meta}],
//! metadata: {nextCursor, count}}`. Entries the registry marks other than `active`
//! (`deprecated`, `deleted`) in `_meta["io.modelcontextprotocol.registry/official"].status`,
//! and versions it says are not the latest (`isLatest: false`), are left out.
//!
//! Each entry is mapped like Magg's `_parse_registry_results`: `url` is the server's
//! `websiteUrl`, else its repository URL, else its first remote's URL; `tags` are its
//! packages' registry types (once each), `remote` when it has remotes, and the facet tags (see
//! `magg_plugin_sdk::facets`) of its repository (with its `subfolder`, for a server in a
//! monorepo) and packages; `install-command` comes from its
//! first npm, PyPI or OCI package (`npx -y <id>`, `uvx <id>`, `docker run -i --rm <id>`).
//! `install` is a ready config, chosen in this order: the first npm or PyPI package that speaks
//! stdio (`npx -y <id>` / `uvx <id>`), else the first streamable-http or SSE remote (`uri`),
//! else the first OCI package that speaks stdio (`docker run -i --rm [-e VAR]... <id>`). Its
//! `env` holds only the values the registry gives (a fixed `value` or a `default`); the
//! variables, headers and arguments the user must supply are listed in its notes, never
//! invented. `source` is `mcp-registry`.
//!
//! Settings (`plugins.mcp-registry.settings` in magg's config), both optional:
//!
//! - `base_url`: the registry to ask (default `https://registry.modelcontextprotocol.io`); magg
//!   must grant the plugin its host.
//! - `timeout_ms`: the limit for connecting and for each wait on the response (default 15000).
//!
//! Network failures, non-200 answers and bodies that are not the registry's JSON come back as
//! an error text such as `mcp-registry search: HTTP 503 from registry.modelcontextprotocol.io
//! (...)`.

use magg_plugin_sdk::{SearchProvider, SearchResult, ServerConfig, facets, http};
use serde_json::Value;

/// The official MCP Registry's search.
const API: http::SearchApi = http::SearchApi {
    name: "mcp-registry search",
    default_base_url: "https://registry.modelcontextprotocol.io",
    expected: "a server list",
};

/// The registry's page size limit.
const MAX_LIMIT: u32 = 100;

/// The API versions asked, newest first; the next is asked only when one answers 404.
const VERSIONS: [&str; 2] = ["v0.1", "v0"];

struct McpRegistry;

impl SearchProvider for McpRegistry {
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        API.run(limit, |search| {
            let mut last = None;
            for version in VERSIONS {
                let url = request_url(&search.base, version, &query, limit);
                match http::get(&url, &search.options) {
                    Ok(body) => return search.parse(&url, &body, parse),
                    Err(e @ http::Error::Status { status: 404, .. }) => last = Some(e),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err(last.map_or_else(String::new, |e| {
                format!("{e}: neither /v0.1/servers nor /v0/servers answered")
            }))
        })
    }
}

magg_plugin_sdk::export_search_provider!(McpRegistry);

fn request_url(base: &str, version: &str, query: &str, limit: u32) -> String {
    format!(
        "{base}/{version}/servers?search={}&limit={}&version=latest",
        http::encode_query_value(query.trim()),
        limit.min(MAX_LIMIT)
    )
}

/// Maps a `/v0.1/servers` (or `/v0/servers`) response body to search results.
fn parse(body: &[u8]) -> Result<Vec<SearchResult>, String> {
    let data: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let servers = data
        .get("servers")
        .and_then(Value::as_array)
        .ok_or("it has no `servers` array")?;
    Ok(servers.iter().filter_map(entry).collect())
}

fn entry(entry: &Value) -> Option<SearchResult> {
    let server = entry.get("server")?;
    let name = text(server, "name")?;
    let official = entry
        .get("_meta")
        .and_then(|m| m.get("io.modelcontextprotocol.registry/official"));
    if let Some(official) = official {
        if text(official, "status").is_some_and(|s| !s.eq_ignore_ascii_case("active")) {
            return None;
        }
        if official.get("isLatest").and_then(Value::as_bool) == Some(false) {
            return None;
        }
    }
    let packages: &[Value] = server
        .get("packages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let remotes: &[Value] = server
        .get("remotes")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let repository_url = server.get("repository").and_then(|r| text(r, "url"));

    let url = text(server, "websiteUrl")
        .or(repository_url)
        .or_else(|| remotes.first().and_then(|r| text(r, "url")))
        .map(str::to_string);

    let mut tags: Vec<String> = Vec::new();
    for package in packages {
        if let Some(kind) = text(package, "registryType")
            && !tags.iter().any(|t| t == kind)
        {
            tags.push(kind.to_string());
        }
    }
    if !remotes.is_empty() {
        tags.push("remote".into());
    }
    if let Some(repository) = repository_url {
        // A server in a monorepo is that subfolder, not every server of the repository.
        let subfolder = server
            .get("repository")
            .and_then(|r| text(r, "subfolder"))
            .map(|s| s.trim_matches('/'))
            .filter(|s| !s.is_empty());
        tags.push(facets::repository(&match subfolder {
            Some(dir) => format!("{}/tree/HEAD/{dir}", repository.trim_end_matches('/')),
            None => repository.to_string(),
        }));
    }
    for package in packages {
        if let (Some(kind), Some(id)) = (text(package, "registryType"), text(package, "identifier"))
        {
            tags.push(facets::package(kind, id));
        }
    }

    let install_command = packages.iter().find_map(|p| {
        let id = text(p, "identifier")?;
        match text(p, "registryType")? {
            "npm" => Some(format!("npx -y {id}")),
            "pypi" => Some(format!("uvx {id}")),
            "oci" => Some(format!("docker run -i --rm {id}")),
            _ => None,
        }
    });

    let description = text(server, "description")
        .or_else(|| text(server, "title"))
        .unwrap_or_default()
        .to_string();
    let install = install_config(server, name, packages, remotes, url.as_deref());
    Some(SearchResult {
        name: name.to_string(),
        description,
        source: "mcp-registry".into(),
        url,
        install_command,
        tags,
        install,
    })
}

/// A config for the best way to run the server (see the module docs).
fn install_config(
    server: &Value,
    name: &str,
    packages: &[Value],
    remotes: &[Value],
    url: Option<&str>,
) -> Option<ServerConfig> {
    let stdio = |p: &&Value| {
        p.get("transport")
            .and_then(|t| text(t, "type"))
            .is_none_or(|t| t == "stdio")
    };
    let of_type = |kind: &'static str| {
        move |p: &&Value| text(p, "registryType") == Some(kind) && text(p, "identifier").is_some()
    };
    let config_name = name
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
        .to_string();
    let base = |source: String| ServerConfig {
        name: config_name.clone(),
        source,
        prefix: None,
        command: None,
        args: Vec::new(),
        uri: None,
        env: Vec::new(),
        cwd: None,
        notes: None,
    };
    let mut about = name.to_string();
    if let Some(version) = text(server, "version") {
        about.push_str(&format!(" {version}"));
    }

    if let Some(package) = packages
        .iter()
        .filter(stdio)
        .find(|p| of_type("npm")(p) || of_type("pypi")(p))
    {
        let id = text(package, "identifier")?;
        let mut config = if text(package, "registryType") == Some("npm") {
            let mut c = base(format!("https://www.npmjs.com/package/{id}"));
            c.command = Some("npx".into());
            c.args = vec!["-y".into(), id.into()];
            c
        } else {
            let mut c = base(format!("https://pypi.org/project/{id}/"));
            c.command = Some("uvx".into());
            c.args = vec![id.into()];
            c
        };
        let (env, needs) = environment(package);
        let (args, args_needed) = arguments(package);
        config.args.extend(args);
        config.env = env;
        config.notes = Some(notes(&about, &needs, &args_needed));
        return Some(config);
    }
    let speaks_http = |r: &&Value| {
        text(r, "url").is_some()
            && text(r, "type").is_none_or(|t| t == "streamable-http" || t == "sse")
    };
    if let Some(remote) = remotes.iter().find(speaks_http) {
        let uri = text(remote, "url")?;
        let mut config = base(uri.to_string());
        config.uri = Some(uri.to_string());
        let headers = inputs(remote.get("headers"));
        let mut extra = Vec::new();
        if uri.contains('{') {
            extra.push("Fill in the `{...}` parts of the URL.".to_string());
        }
        let mut note = notes(&about, &[], &extra);
        if !headers.is_empty() {
            note.push_str(&format!(" Needs HTTP headers: {}.", headers.join(", ")));
        }
        config.notes = Some(note);
        return Some(config);
    }
    if let Some(package) = packages.iter().filter(stdio).find(of_type("oci")) {
        let id = text(package, "identifier")?;
        let mut config = base(url.map_or_else(|| id.to_string(), str::to_string));
        let (env, needs) = environment(package);
        let mut args = vec!["run".to_string(), "-i".into(), "--rm".into()];
        for var in package
            .get("environmentVariables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(var) = text(var, "name") {
                args.extend(["-e".to_string(), var.to_string()]);
            }
        }
        args.push(id.to_string());
        let (more, mut extra) = arguments(package);
        args.extend(more);
        extra.push("Needs Docker.".to_string());
        config.command = Some("docker".into());
        config.args = args;
        config.env = env;
        config.notes = Some(notes(&about, &needs, &extra));
        return Some(config);
    }
    None
}

/// The package's environment variables: those with a fixed value or a default as config
/// entries, and descriptions of the ones the user must set.
fn environment(package: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = Vec::new();
    let mut needs = Vec::new();
    for var in package
        .get("environmentVariables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = text(var, "name") else {
            continue;
        };
        if let Some(value) = text(var, "value").or_else(|| text(var, "default")) {
            env.push((name.to_string(), value.to_string()));
        } else {
            needs.push(describe_input(name, var));
        }
    }
    (env, needs)
}

/// The package's arguments (`packageArguments`) that the registry gives a value for, ready to
/// pass (a fixed `value`, or the `default` of a required one), and a note naming the required
/// ones the user must add.
fn arguments(package: &Value) -> (Vec<String>, Vec<String>) {
    let mut args = Vec::new();
    let mut needs = Vec::new();
    for arg in package
        .get("packageArguments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let required = arg.get("isRequired").and_then(Value::as_bool) == Some(true);
        let value = text(arg, "value").or_else(|| required.then(|| text(arg, "default")).flatten());
        let named = text(arg, "type") == Some("named");
        let label = text(arg, "name").or_else(|| text(arg, "valueHint"));
        match (value, named, label) {
            (Some(v), true, Some(name)) => args.extend([name.to_string(), v.to_string()]),
            (Some(v), false, _) => args.push(v.to_string()),
            (None, _, Some(name)) if required => needs.push(describe_input(name, arg)),
            _ => {}
        }
    }
    let note = if needs.is_empty() {
        Vec::new()
    } else {
        vec![format!("Add arguments: {}.", needs.join(", "))]
    };
    (args, note)
}

/// Descriptions of a list of inputs (headers).
fn inputs(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|input| Some(describe_input(text(input, "name")?, input)))
        .collect()
}

fn describe_input(name: &str, input: &Value) -> String {
    let mut flags = Vec::new();
    if input.get("isRequired").and_then(Value::as_bool) == Some(true) {
        flags.push("required");
    }
    if input.get("isSecret").and_then(Value::as_bool) == Some(true) {
        flags.push("secret");
    }
    let mut out = name.to_string();
    match (text(input, "description"), flags.is_empty()) {
        (Some(d), true) => out.push_str(&format!(" ({d})")),
        (Some(d), false) => out.push_str(&format!(" ({}; {d})", flags.join(", "))),
        (None, false) => out.push_str(&format!(" ({})", flags.join(", "))),
        (None, true) => {}
    }
    out
}

fn notes(about: &str, env_needed: &[String], extra: &[String]) -> String {
    let mut notes = format!("From the MCP Registry: {about}.");
    if !env_needed.is_empty() {
        notes.push_str(&format!(
            " Set environment variables: {}.",
            env_needed.join(", ")
        ));
    }
    for e in extra {
        notes.push(' ');
        notes.push_str(e);
    }
    notes
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../../tests/fixtures/replay/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn builds_the_request_url() {
        assert_eq!(
            request_url("https://r.example", "v0.1", " time zone&x ", 500),
            "https://r.example/v0.1/servers?search=time%20zone%26x&limit=100&version=latest"
        );
        assert_eq!(
            request_url("https://r.example", "v0", "t", 5),
            "https://r.example/v0/servers?search=t&limit=5&version=latest"
        );
    }

    #[test]
    fn parses_the_v0_fixture() {
        let results = parse(&fixture("mcp-registry-v0-servers.json")).unwrap();
        // The fourth entry is deprecated.
        assert_eq!(results.len(), 3);
        for r in &results {
            assert_eq!(r.source, "mcp-registry");
            assert!(!r.name.is_empty());
        }
        let npm = results
            .iter()
            .find(|r| r.tags.first().map(String::as_str) == Some("npm"))
            .unwrap();
        let install = npm.install.as_ref().unwrap();
        assert_eq!(install.command.as_deref(), Some("npx"));
        assert_eq!(
            npm.install_command.as_deref(),
            Some(format!("npx -y {}", install.args[1]).as_str())
        );
        assert!(npm.tags.contains(&"package:npm:time-mcp".to_string()));
        assert!(
            npm.tags
                .contains(&"repository:https://github.com/yokingma/time-mcp".to_string())
        );
        let pypi = results
            .iter()
            .find(|r| r.tags.first().map(String::as_str) == Some("pypi"))
            .unwrap();
        assert!(pypi.install_command.as_deref().unwrap().starts_with("uvx "));
        let remote = results
            .iter()
            .find(|r| r.tags.first().map(String::as_str) == Some("remote"))
            .unwrap();
        assert!(remote.install.as_ref().unwrap().uri.is_some());
        assert_eq!(remote.install_command, None);
    }

    #[test]
    fn parses_the_v0_1_fixture_keeping_only_active_latest_entries() {
        let results = parse(&fixture("mcp-registry-v0.1-servers.json")).unwrap();
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "io.github.modelcontextprotocol/time",
                "io.github.tz-tools/timezone-mcp",
                "com.example/clock-remote",
                "io.github.clockworks/clock-oci",
            ]
        );
        let config = |i: usize| results[i].install.as_ref().unwrap();
        assert_eq!(config(0).command.as_deref(), Some("npx"));
        assert_eq!(config(0).args, ["-y", "@modelcontextprotocol/server-time"]);
        assert_eq!(config(1).command.as_deref(), Some("uvx"));
        assert_eq!(config(1).args, ["timezone-mcp"]);
        let notes = config(1).notes.as_deref().unwrap();
        assert!(notes.contains("TZ_API_KEY (required, secret"), "{notes}");
        assert!(config(1).env.is_empty(), "{:?}", config(1).env);
        assert_eq!(
            config(2).uri.as_deref(),
            Some("https://clock.example.com/mcp")
        );
        assert_eq!(config(3).command.as_deref(), Some("docker"));
        assert_eq!(
            config(3).args,
            ["run", "-i", "--rm", "docker.io/clockworks/clock-mcp:1.2.0"]
        );
    }

    #[test]
    fn maps_entries() {
        let body = br#"{"servers": [
            {"server": {"name": "io.github.a/time", "description": "Time", "version": "1.0.0",
              "repository": {"url": "https://github.com/a/time", "source": "github"},
              "packages": [
                {"registryType": "oci", "identifier": "docker.io/a/time:1.0.0", "transport": {"type": "stdio"},
                 "environmentVariables": [{"name": "TZ", "description": "Zone", "isRequired": true}]},
                {"registryType": "pypi", "identifier": "a-time", "version": "1.0.0", "transport": {"type": "stdio"},
                 "environmentVariables": [{"name": "TZ", "default": "UTC"}, {"name": "KEY", "isSecret": true}],
                 "packageArguments": [
                   {"type": "named", "name": "--zone", "isRequired": true, "description": "Zone"},
                   {"type": "named", "name": "--mode", "value": "fast"},
                   {"type": "positional", "valueHint": "dir", "isRequired": true, "default": "."}
                 ]}
              ]},
             "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active", "isLatest": true}}},
            {"server": {"name": "old/x", "description": "x", "version": "1"},
             "_meta": {"io.modelcontextprotocol.registry/official": {"status": "deprecated"}}},
            {"server": {"name": "gone/x", "description": "x", "version": "1"},
             "_meta": {"io.modelcontextprotocol.registry/official": {"status": "deleted"}}},
            {"server": {"name": "older/x", "description": "x", "version": "0.9"},
             "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active", "isLatest": false}}},
            {"server": {"description": "no name"}},
            {"server": {"name": "com.example/remote", "description": "R", "version": "2",
              "remotes": [{"type": "websocket", "url": "wss://mcp.example.com/ws"},
                {"type": "streamable-http", "url": "https://mcp.example.com/mcp",
                "headers": [{"name": "Authorization", "isRequired": true, "isSecret": true}]}]}},
            {"server": {"name": "com.example/docker", "description": "D", "version": "3", "websiteUrl": "https://example.com",
              "packages": [{"registryType": "oci", "identifier": "ghcr.io/e/d:3", "transport": {"type": "stdio"},
                "environmentVariables": [{"name": "TOKEN", "isSecret": true, "isRequired": true}]}]}}
        ], "metadata": {"count": 7}}"#;
        let results = parse(body).unwrap();
        assert_eq!(results.len(), 3);

        let time = &results[0];
        assert_eq!(time.url.as_deref(), Some("https://github.com/a/time"));
        assert_eq!(
            time.tags,
            [
                "oci",
                "pypi",
                "repository:https://github.com/a/time",
                "package:oci:docker.io/a/time:1.0.0",
                "package:pypi:a-time"
            ]
        );
        assert_eq!(
            time.install_command.as_deref(),
            Some("docker run -i --rm docker.io/a/time:1.0.0")
        );
        let install = time.install.as_ref().unwrap();
        assert_eq!(
            (install.name.as_str(), install.command.as_deref()),
            ("time", Some("uvx"))
        );
        assert_eq!(install.args, ["a-time", "--mode", "fast", "."]);
        assert_eq!(install.env, [("TZ".to_string(), "UTC".to_string())]);
        assert_eq!(install.source, "https://pypi.org/project/a-time/");
        assert_eq!(
            install.notes.as_deref(),
            Some(
                "From the MCP Registry: io.github.a/time 1.0.0. Set environment variables: KEY \
                 (secret). Add arguments: --zone (required; Zone)."
            )
        );

        let remote = &results[1];
        assert_eq!(remote.url.as_deref(), Some("wss://mcp.example.com/ws"));
        assert_eq!(remote.tags, ["remote"]);
        let install = remote.install.as_ref().unwrap();
        assert_eq!(install.uri.as_deref(), Some("https://mcp.example.com/mcp"));
        assert!(
            install
                .notes
                .as_deref()
                .unwrap()
                .ends_with("Needs HTTP headers: Authorization (required, secret).")
        );

        let docker = &results[2];
        let install = docker.install.as_ref().unwrap();
        assert_eq!(install.command.as_deref(), Some("docker"));
        assert_eq!(
            install.args,
            ["run", "-i", "--rm", "-e", "TOKEN", "ghcr.io/e/d:3"]
        );
        assert_eq!(install.source, "https://example.com");

        assert!(parse(b"{}").is_err());
        assert!(parse(b"<html>").is_err());
    }
}
