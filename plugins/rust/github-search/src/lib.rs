//! `github-search`: searches GitHub for MCP server repositories (world
//! `search-provider-plugin`).
//!
//! It sends `GET {base_url}/search/repositories?q=<query>+topic:mcp-server&sort=stars&order=desc&per_page=<limit>`
//! with `Accept: application/vnd.github+json` (and `Authorization: Bearer <token>` when the
//! `token` setting is set) and maps each repository of the answer (`{total_count,
//! incomplete_results, items: [{full_name, html_url, description, stargazers_count, topics,
//! archived, ...}]}`): `name` is its `owner/name`, `url` its page, `tags` its topics,
//! `archived` when it is, and the facet tags (see `magg_plugin_sdk::facets`) of its repository
//! and its star count. A repository does not say how to run its server, so a result carries no
//! `install` config: `magg_smart_configure` on its `url` makes one. `source` is `github`.
//!
//! Settings (`plugins.github-search.settings` in magg's config), all optional:
//!
//! - `token`: a GitHub token, for GitHub's higher rate limit of signed-in searches (30 a
//!   minute instead of 10); it needs no scopes.
//! - `base_url`: the API to ask (default `https://api.github.com`); magg must grant the plugin
//!   its host.
//! - `timeout_ms`: the limit for connecting and for each wait on the response (default 15000).
//!
//! When GitHub refuses for its rate limit (HTTP 403 or 429 with `x-ratelimit-remaining: 0`,
//! or with `retry-after` for its secondary limit), the error says which limit, when it resets
//! and, without a token, to set `plugins.github-search.settings.token`.

use magg_plugin_sdk::{SearchProvider, SearchResult, facets, host, http};
use serde_json::Value;

/// GitHub's repository search.
const API: http::SearchApi = http::SearchApi {
    name: "github search",
    default_base_url: "https://api.github.com",
    expected: "a repository search result",
};

/// GitHub's page size limit.
const MAX_LIMIT: u32 = 100;

/// Where the token goes in magg's config.
const TOKEN_SETTING: &str = "plugins.github-search.settings.token";

struct GithubSearch;

impl SearchProvider for GithubSearch {
    fn search(query: String, limit: u32) -> Result<Vec<SearchResult>, String> {
        let token = host::setting("token")
            .map(|t| t.trim().trim_matches('"').to_string())
            .filter(|t| !t.is_empty());
        API.run(limit, |search| {
            let url = request_url(&search.base, &query, limit);
            let mut options = search.options.clone();
            options.headers = request_headers(token.as_deref());
            let answer = http::fetch(&url, &options).map_err(|e| e.to_string())?;
            if answer.status == 200 {
                return search.parse(&url, &answer.body, parse);
            }
            Err(refusal(&answer, token.is_some()))
        })
    }
}

magg_plugin_sdk::export_search_provider!(GithubSearch);

fn request_url(base: &str, query: &str, limit: u32) -> String {
    format!(
        "{base}/search/repositories?q={}+topic:mcp-server&sort=stars&order=desc&per_page={}",
        http::encode_query_value(query.trim()),
        limit.min(MAX_LIMIT)
    )
}

fn request_headers(token: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            "accept".to_string(),
            "application/vnd.github+json".to_string(),
        ),
        ("x-github-api-version".to_string(), "2022-11-28".to_string()),
    ];
    if let Some(token) = token {
        headers.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    headers
}

/// What a non-200 answer means, and what to do about it.
fn refusal(answer: &http::Response, has_token: bool) -> String {
    let status = answer.status;
    let host = &answer.host;
    let message = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string));
    let token_hint = if has_token {
        String::new()
    } else {
        format!(
            " Set {TOKEN_SETTING} to a GitHub token (no scopes needed) for the higher limit of \
             signed-in searches."
        )
    };
    let remaining = answer.header("x-ratelimit-remaining");
    if matches!(status, 403 | 429) && remaining == Some("0") {
        let limit = answer.header("x-ratelimit-limit").unwrap_or("its");
        let resource = answer.header("x-ratelimit-resource").unwrap_or("search");
        let reset = answer
            .header("x-ratelimit-reset")
            .and_then(|r| r.parse::<u64>().ok())
            .map(|r| format!(" It resets at {}.", utc(r)))
            .unwrap_or_default();
        return format!(
            "HTTP {status} from {host}: GitHub's rate limit of {limit} requests ({resource}) is \
             used up.{reset}{token_hint}"
        );
    }
    if matches!(status, 403 | 429)
        && let Some(wait) = answer.header("retry-after")
    {
        return format!(
            "HTTP {status} from {host}: GitHub's secondary rate limit was hit; try again in \
             {wait} s.{token_hint}"
        );
    }
    let said = message
        .map(|m| format!(" GitHub says: {m}"))
        .unwrap_or_default();
    match status {
        401 if has_token => format!(
            "HTTP 401 from {host}: GitHub refused the token in {TOKEN_SETTING}; check it or remove \
             it.{said}"
        ),
        403 => format!("HTTP 403 from {host}: GitHub refused the search.{said}{token_hint}"),
        422 => format!("HTTP 422 from {host}: GitHub could not run this query.{said}"),
        _ => {
            let retry_after = answer
                .header("retry-after")
                .and_then(|v| v.parse::<u64>().ok());
            let error = http::Error::Status {
                host: host.clone(),
                status,
                retry_after,
            };
            format!("{error}.{said}")
        }
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Maps a `/search/repositories` response body to search results.
fn parse(body: &[u8]) -> Result<Vec<SearchResult>, String> {
    let data: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let items = data
        .get("items")
        .and_then(Value::as_array)
        .ok_or("it has no `items` array")?;
    Ok(items.iter().filter_map(repository).collect())
}

fn repository(item: &Value) -> Option<SearchResult> {
    let name = text(item, "full_name").or_else(|| text(item, "name"))?;
    let url = text(item, "html_url");
    let mut tags: Vec<String> = item
        .get("topics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if item.get("archived").and_then(Value::as_bool) == Some(true) {
        tags.push("archived".into());
    }
    if let Some(url) = url {
        tags.push(facets::repository(url));
    }
    if let Some(stars) = item.get("stargazers_count").and_then(Value::as_u64) {
        tags.push(facets::stars(stars));
    }
    Some(SearchResult {
        name: name.to_string(),
        description: text(item, "description").unwrap_or_default().to_string(),
        source: "github".into(),
        url: url.map(str::to_string),
        install_command: None,
        tags,
        install: None,
    })
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

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response {
        http::Response {
            host: "api.github.com".into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn builds_the_request() {
        assert_eq!(
            request_url("https://api.github.com", " time zone ", 500),
            "https://api.github.com/search/repositories?q=time%20zone+topic:mcp-server&sort=stars&order=desc&per_page=100"
        );
        let headers = request_headers(Some("t0k"));
        assert!(headers.contains(&("authorization".into(), "Bearer t0k".into())));
        assert!(headers.contains(&("accept".into(), "application/vnd.github+json".into())));
        assert_eq!(request_headers(None).len(), 2);
    }

    #[test]
    fn parses_the_fixture() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/replay/github-search-repositories.json"
        ))
        .unwrap();
        let results = parse(&body).unwrap();
        assert_eq!(results.len(), 3);
        let first = &results[0];
        assert_eq!(first.name, "tz-tools/timezone-mcp");
        assert_eq!(first.source, "github");
        assert_eq!(
            first.url.as_deref(),
            Some("https://github.com/tz-tools/timezone-mcp")
        );
        assert_eq!(
            first.tags,
            [
                "mcp",
                "mcp-server",
                "timezone",
                "repository:https://github.com/tz-tools/timezone-mcp",
                "stars:850"
            ]
        );
        assert!(results.iter().all(|r| r.install.is_none()));
        assert!(results[2].tags.contains(&"archived".to_string()));
        assert!(parse(b"{\"message\": \"x\"}").is_err());
    }

    #[test]
    fn rate_limits_say_what_to_do() {
        let limited = answer(
            403,
            &[
                ("x-ratelimit-limit", "10"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1767225600"),
                ("x-ratelimit-resource", "search"),
            ],
            r#"{"message": "API rate limit exceeded"}"#,
        );
        let text = refusal(&limited, false);
        assert_eq!(
            text,
            "HTTP 403 from api.github.com: GitHub's rate limit of 10 requests (search) is used \
             up. It resets at 2026-01-01 00:00:00 UTC. Set plugins.github-search.settings.token \
             to a GitHub token (no scopes needed) for the higher limit of signed-in searches."
        );
        assert!(!refusal(&limited, true).contains("Set plugins"));

        let secondary = answer(429, &[("retry-after", "30")], "{}");
        assert!(
            refusal(&secondary, false).starts_with(
                "HTTP 429 from api.github.com: GitHub's secondary rate limit was hit; try again in 30 s."
            )
        );
        let refused = answer(401, &[], r#"{"message": "Bad credentials"}"#);
        assert!(refusal(&refused, true).contains("refused the token"));
        let down = answer(503, &[], "");
        assert!(refusal(&down, false).starts_with("HTTP 503 from api.github.com"));
    }

    #[test]
    fn formats_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
    }
}
