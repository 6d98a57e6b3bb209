//! `npm-search`: searches npm for MCP server packages (world `search-provider-plugin`).
//!
//! It sends `GET {base_url}/-/v1/search?text=<query>%20mcp&size=<limit>` and maps each package
//! like Magg's `_parse_npm_results`: `url` is `https://www.npmjs.com/package/<name>`, `tags` its
//! keywords, `install-command` `npx -y <name>`, and `install` a config running `npx -y <name>`
//! (named after the package without its scope). `source` is `npm`.
//!
//! Settings (`plugins.npm-search.settings` in magg's config), both optional:
//!
//! - `base_url`: the registry to ask (default `https://registry.npmjs.org`); magg must grant the
//!   plugin its host.
//! - `timeout_ms`: the limit for connecting and for each wait on the response (default 15000).
//!
//! Network failures, non-200 answers and bodies that are not npm's JSON come back as an error
//! text such as `npm search: HTTP 503 from registry.npmjs.org`.

wit_bindgen::generate!({
    world: "search-provider-plugin",
    path: "../../../wit",
    with: {
        "wasi:http/outgoing-handler@0.2.12": http_get::wasi::http::outgoing_handler,
        "wasi:http/types@0.2.12": http_get::wasi::http::types,
        "wasi:io/error@0.2.12": http_get::wasi::io::error,
        "wasi:io/poll@0.2.12": http_get::wasi::io::poll,
        "wasi:io/streams@0.2.12": http_get::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": http_get::wasi::clocks::monotonic_clock,
    },
});

use exports::magg::plugin::search_provider::Guest;
use magg::plugin::host;
use magg::plugin::types::{SearchResult, ServerConfig};
use serde_json::Value;

/// The default for the `base_url` setting.
const DEFAULT_BASE_URL: &str = "https://registry.npmjs.org";

/// npm's page size limit.
const MAX_LIMIT: u32 = 250;

struct NpmSearch;

impl Guest for NpmSearch {
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        search(&query, limit).map_err(|e| format!("npm search: {e}"))
    }
}

export!(NpmSearch);

fn search(query: &str, limit: u32) -> Result<Vec<SearchResult>, String> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let base = base_url()?;
    let options = http_get::Options {
        timeout_ms: timeout_ms()?,
        ..http_get::Options::default()
    };
    let url = request_url(&base, query, limit);
    let body = http_get::get(&url, &options).map_err(|e| e.to_string())?;
    let mut results = parse(&body).map_err(|e| {
        let host = http_get::parse_url(&url)
            .map(|t| t.authority.to_string())
            .unwrap_or(base);
        format!("{host} sent a response that is not a search result: {e}")
    })?;
    results.truncate(limit as usize);
    Ok(results)
}

fn request_url(base: &str, query: &str, limit: u32) -> String {
    let query = query.trim();
    let text = if query.is_empty() {
        "mcp".to_string()
    } else {
        format!("{query} mcp")
    };
    format!(
        "{base}/-/v1/search?text={}&size={}",
        http_get::encode_query_value(&text),
        limit.min(MAX_LIMIT)
    )
}

fn base_url() -> Result<String, String> {
    http_get::base_url_setting(host::setting("base_url"), DEFAULT_BASE_URL)
}

fn timeout_ms() -> Result<u64, String> {
    http_get::timeout_setting(host::setting("timeout_ms"))
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
    let tags = package
        .get("keywords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
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
            "/../../../tests/fixtures/search/npm-search.json"
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
            ["mcp", "time", "timezone", "model-context-protocol"]
        );
        let install = first.install.as_ref().unwrap();
        assert_eq!(install.name, "server-time");
        assert_eq!(install.args, ["-y", "@modelcontextprotocol/server-time"]);
        assert_eq!(results[3].description, "");
        assert!(results[3].tags.is_empty());
        assert!(parse(b"{\"error\": \"nope\"}").is_err());
    }
}
