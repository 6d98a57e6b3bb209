//! `glama-search`: searches Glama's MCP server directory (world `search-provider-plugin`).
//!
//! It sends `GET {base_url}/api/mcp/v1/servers?query=<query>&first=<limit>` and maps each entry
//! of the answer (`{servers: [{id, name, namespace, slug, description, url, repository: {url},
//! attributes, spdxLicense, environmentVariablesJsonSchema, tools}], pageInfo}`) like Magg's
//! `_parse_glama_results`: `url` is the entry's page on Glama, `tags` are its hosting
//! (`remote`, `local`, `hybrid`), `official` when Glama says the author is, its licence (lower
//! case), `by:<namespace>`, and the facet tag of its repository (see
//! `magg_plugin_sdk::facets`), which lets magg merge it with the same server from another
//! source. The description names the environment variables the entry says the server needs.
//!
//! Glama's entries say where a server's code is, not how to run it, so a result carries no
//! `install` config and no `install-command`; `magg_smart_configure` on its repository makes
//! one. `source` is `glama`.
//!
//! Settings (`plugins.glama-search.settings` in magg's config), both optional:
//!
//! - `base_url`: the API to ask (default `https://glama.ai`); magg must grant the plugin its
//!   host.
//! - `timeout_ms`: the limit for connecting and for each wait on the response (default 15000).
//!
//! Network failures, non-200 answers and bodies that are not Glama's JSON come back as an error
//! text such as `glama search: HTTP 429 from glama.ai (rate limited; try again in 30 s)`.

use magg_plugin_sdk::{SearchProvider, SearchResult, facets, http};
use serde_json::Value;

/// Glama's server search.
const API: http::SearchApi = http::SearchApi {
    name: "glama search",
    default_base_url: "https://glama.ai",
    expected: "a server list",
};

/// The most entries asked for at once.
const MAX_LIMIT: u32 = 100;

struct GlamaSearch;

impl SearchProvider for GlamaSearch {
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        API.search(limit, |base| request_url(base, &query, limit), parse)
    }
}

magg_plugin_sdk::export_search_provider!(GlamaSearch);

fn request_url(base: &str, query: &str, limit: u32) -> String {
    format!(
        "{base}/api/mcp/v1/servers?query={}&first={}",
        http::encode_query_value(query.trim()),
        limit.min(MAX_LIMIT)
    )
}

/// Maps a `/api/mcp/v1/servers` response body to search results.
fn parse(body: &[u8]) -> Result<Vec<SearchResult>, String> {
    let data: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let servers = data
        .get("servers")
        .and_then(Value::as_array)
        .ok_or("it has no `servers` array")?;
    Ok(servers.iter().filter_map(entry).collect())
}

fn entry(server: &Value) -> Option<SearchResult> {
    let name = text(server, "name").or_else(|| text(server, "slug"))?;
    let attributes: Vec<&str> = server
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut tags = Vec::new();
    for (attribute, tag) in [
        ("hosting:remote-capable", "remote"),
        ("hosting:local-only", "local"),
        ("hosting:hybrid", "hybrid"),
        ("author:official", "official"),
    ] {
        if attributes.contains(&attribute) {
            tags.push(tag.to_string());
        }
    }
    if let Some(license) = server.get("spdxLicense").and_then(|l| text(l, "name")) {
        tags.push(license.to_lowercase());
    }
    if let Some(namespace) = text(server, "namespace") {
        tags.push(format!("by:{namespace}"));
    }
    let repository = server.get("repository").and_then(|r| text(r, "url"));
    if let Some(repository) = repository {
        tags.push(facets::repository(repository));
    }

    let mut description = text(server, "description").unwrap_or_default().to_string();
    let needs = environment(server);
    if !needs.is_empty() {
        if !description.is_empty() && !description.ends_with('.') {
            description.push('.');
        }
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(&format!(
            "Needs environment variables: {}.",
            needs.join(", ")
        ));
    }
    let url = text(server, "url").or(repository).map(str::to_string);
    Some(SearchResult {
        name: name.to_string(),
        description,
        source: "glama".into(),
        url,
        install_command: None,
        tags,
        install: None,
    })
}

/// The variables of `environmentVariablesJsonSchema`, the required ones marked so.
fn environment(server: &Value) -> Vec<String> {
    let Some(schema) = server.get("environmentVariablesJsonSchema") else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, _)| {
            if required.contains(&name.as_str()) {
                format!("{name} (required)")
            } else {
                name.clone()
            }
        })
        .collect()
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

    #[test]
    fn builds_the_request_url() {
        assert_eq!(
            request_url("https://glama.ai", " time zone ", 500),
            "https://glama.ai/api/mcp/v1/servers?query=time%20zone&first=100"
        );
    }

    #[test]
    fn parses_the_fixture() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/replay/glama-servers.json"
        ))
        .unwrap();
        let results = parse(&body).unwrap();
        assert_eq!(results.len(), 3);
        let first = &results[0];
        assert_eq!(first.name, "timezone-mcp");
        assert_eq!(first.source, "glama");
        assert_eq!(
            first.url.as_deref(),
            Some("https://glama.ai/mcp/servers/k7tq2fzv1x")
        );
        assert_eq!(
            first.tags,
            [
                "local",
                "mit license",
                "by:tz-tools",
                "repository:https://github.com/tz-tools/timezone-mcp"
            ]
        );
        assert!(
            first
                .description
                .ends_with("Needs environment variables: TZ_API_KEY (required)."),
            "{}",
            first.description
        );
        assert!(results.iter().all(|r| r.install.is_none()));
        let official = &results[1];
        assert_eq!(official.tags[..2], ["remote", "official"]);
    }

    #[test]
    fn maps_sparse_entries() {
        let body = br#"{"servers": [
            {"slug": "only-slug", "repository": null, "spdxLicense": null, "attributes": []},
            {"description": "no name"},
            {"name": "n", "repository": {"url": "https://gitlab.com/a/n"}}
        ], "pageInfo": {"hasNextPage": false}}"#;
        let results = parse(body).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].name, "only-slug");
        assert_eq!(results[0].url, None);
        assert_eq!(results[1].url.as_deref(), Some("https://gitlab.com/a/n"));
        assert!(parse(b"{\"data\": []}").is_err());
    }
}
