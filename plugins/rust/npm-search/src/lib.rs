//! `npm-search`: searches npm for MCP server packages (world `search-provider-plugin`).
//!
//! It sends `GET {base_url}/-/v1/search?text=<query>%20mcp&size=<limit>` and maps each package
//! like Magg's `_parse_npm_results`: `url` is `https://www.npmjs.com/package/<name>`, `tags` its
//! keywords and the facet tags (see `magg_plugin_sdk::facets`) of the package and of its
//! repository (`links.repository`), `install-command` `npx -y <name>`, and `install` a config
//! running `npx -y <name>` (named after the package without its scope). `source` is `npm`.
//!
//! Settings (`plugins.npm-search.settings` in magg's config), both optional:
//!
//! - `base_url`: the registry to ask (default `https://registry.npmjs.org`); magg must grant the
//!   plugin its host.
//! - `timeout_ms`: the limit for connecting and for each wait on the response (default 15000).
//!
//! Network failures, non-200 answers and bodies that are not npm's JSON come back as an error
//! text such as `npm search: HTTP 503 from registry.npmjs.org`.

use magg_plugin_sdk::{SearchProvider, SearchResult, ServerConfig, facets, http};
use serde_json::Value;

/// npm's search.
const API: http::SearchApi = http::SearchApi {
    name: "npm search",
    default_base_url: "https://registry.npmjs.org",
    expected: "a search result",
};

/// npm's page size limit.
const MAX_LIMIT: u32 = 250;

struct NpmSearch;

impl SearchProvider for NpmSearch {
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        API.search(limit, |base| request_url(base, &query, limit), parse)
    }
}

magg_plugin_sdk::export_search_provider!(NpmSearch);

fn request_url(base: &str, query: &str, limit: u32) -> String {
    let query = query.trim();
    let text = if query.is_empty() {
        "mcp".to_string()
    } else {
        format!("{query} mcp")
    };
    format!(
        "{base}/-/v1/search?text={}&size={}",
        http::encode_query_value(&text),
        limit.min(MAX_LIMIT)
    )
}

/// Maps a `/-/v1/search` response body to search results.
fn parse(body: &[u8]) -> Result<Vec<SearchResult>, String> {
    let data: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let objects = data
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("it has no `objects` array")?;
    Ok(objects
        .iter()
        .filter_map(|o| package(o.get("package")?))
        .collect())
}

fn package(package: &Value) -> Option<SearchResult> {
    let name = package
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())?;
    let description = package
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let url = format!("https://www.npmjs.com/package/{name}");
    let mut tags: Vec<String> = package
        .get("keywords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    tags.push(facets::package("npm", name));
    if let Some(repository) = package
        .get("links")
        .and_then(|l| l.get("repository"))
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        tags.push(facets::repository(repository));
    }
    let mut about = format!("npm package {name}");
    if let Some(version) = package.get("version").and_then(Value::as_str) {
        about.push_str(&format!(" {version}"));
    }
    let install = ServerConfig {
        name: name
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(name)
            .to_string(),
        source: url.clone(),
        prefix: None,
        command: Some("npx".into()),
        args: vec!["-y".into(), name.to_string()],
        uri: None,
        env: Vec::new(),
        cwd: None,
        notes: Some(format!(
            "From {about}; its README says which environment variables or arguments it needs."
        )),
    };
    Some(SearchResult {
        name: name.to_string(),
        description,
        source: "npm".into(),
        url: Some(url),
        install_command: Some(format!("npx -y {name}")),
        tags,
        install: Some(install),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_request_url() {
        assert_eq!(
            request_url("https://registry.npmjs.org", "time", 5),
            "https://registry.npmjs.org/-/v1/search?text=time%20mcp&size=5"
        );
        assert_eq!(
            request_url("http://127.0.0.1:9", " @a/b ", 1000),
            "http://127.0.0.1:9/-/v1/search?text=%40a%2Fb%20mcp&size=250"
        );
    }

    #[test]
    fn parses_the_fixture() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/replay/npm-search.json"
        ))
        .unwrap();
        let results = parse(&body).unwrap();
        assert_eq!(results.len(), 4);
        let first = &results[0];
        assert_eq!(first.name, "@modelcontextprotocol/server-time");
        assert_eq!(first.source, "npm");
        assert_eq!(
            first.url.as_deref(),
            Some("https://www.npmjs.com/package/@modelcontextprotocol/server-time")
        );
        assert_eq!(
            first.install_command.as_deref(),
            Some("npx -y @modelcontextprotocol/server-time")
        );
        assert_eq!(
            first.tags,
            [
                "mcp",
                "time",
                "timezone",
                "model-context-protocol",
                "package:npm:@modelcontextprotocol/server-time",
                "repository:git+https://github.com/modelcontextprotocol/servers.git"
            ]
        );
        let install = first.install.as_ref().unwrap();
        assert_eq!(install.name, "server-time");
        assert_eq!(install.args, ["-y", "@modelcontextprotocol/server-time"]);
        assert_eq!(results[3].description, "");
        assert_eq!(results[3].tags, ["package:npm:mcp-clock"]);
        assert!(parse(b"{\"error\": \"nope\"}").is_err());
    }
}
