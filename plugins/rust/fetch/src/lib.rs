//! `fetch` (a tool provider: world `tool-provider-plugin`, mounted as a server of magg's
//! config): one tool, `fetch`, that GETs a URL and returns its text, or markdown for an HTML
//! page. It reaches only the hosts the server entry grants (`grants.http`):
//!
//! ```json
//! "fetch": {"source": "file:///…/fetch.wasm", "grants": {"http": ["example.com"]}}
//! ```

mod markdown;

use magg_plugin_sdk::{CallResult, ToolProvider, ToolSpec, http};
use serde_json::{Value, json};

/// How many characters `fetch` returns when `max_length` is not given.
const DEFAULT_MAX_LENGTH: usize = 5000;

struct Fetch;

impl ToolProvider for Fetch {
    fn list_tools() -> Vec<ToolSpec> {
        let schema = json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "The http(s) URL to fetch"},
                "max_length": {
                    "type": "integer",
                    "minimum": 1,
                    "description": format!("The most characters to return (default {DEFAULT_MAX_LENGTH})"),
                },
                "raw": {
                    "type": "boolean",
                    "description": "Return HTML as it is instead of as markdown (default false)",
                },
            },
            "required": ["url"],
        });
        let annotations = json!({"readOnlyHint": true, "openWorldHint": true});
        vec![ToolSpec {
            annotations: Some(annotations.to_string()),
            title: Some("Fetch a URL".to_owned()),
            ..ToolSpec::new(
                "fetch",
                "Fetches a URL and returns its content as text; HTML pages come back as markdown \
                 (headings, links, lists, paragraphs, code). Only the hosts the server is granted \
                 can be reached.",
                &schema.to_string(),
            )
        }]
    }

    fn call_tool(name: String, arguments: String) -> CallResult {
        if name != "fetch" {
            return CallResult::error(&format!("unknown tool `{name}`; this server has `fetch`"));
        }
        match fetch(&arguments) {
            Ok(text) => CallResult::text(&text),
            Err(message) => CallResult::error(&message),
        }
    }
}

fn fetch(arguments: &str) -> Result<String, String> {
    let args: Value =
        serde_json::from_str(arguments).map_err(|e| format!("arguments are not JSON: {e}"))?;
    let url = args["url"]
        .as_str()
        .ok_or("`url` is required: the http(s) URL to fetch")?;
    let max_length = match &args["max_length"] {
        Value::Null => DEFAULT_MAX_LENGTH,
        value => value
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or("`max_length` must be a positive integer")? as usize,
    };
    let raw = args["raw"].as_bool().unwrap_or(false);
    let options = http::Options {
        headers: vec![("accept".to_owned(), "text/html, text/*, */*".to_owned())],
        user_agent: "magg-fetch",
        ..http::Options::default()
    };
    let response = http::fetch(url, &options).map_err(|e| e.to_string())?;
    let html = response
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
    let body = response.ok().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&body);
    let text = if html && !raw {
        markdown::from_html(&text)
    } else {
        text.into_owned()
    };
    Ok(cut(&text, max_length))
}

/// `text` cut to `max` characters, saying so when it was cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!(
            "{}\n\n[cut at {max} of {} characters; call again with a larger max_length for more]",
            &text[..end],
            text.chars().count()
        ),
    }
}

magg_plugin_sdk::export_tool_provider!(Fetch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_and_says_so() {
        assert_eq!(cut("hello", 10), "hello");
        let cut = cut("hello world", 5);
        assert!(cut.starts_with("hello\n\n[cut at 5 of 11"), "{cut}");
    }
}
