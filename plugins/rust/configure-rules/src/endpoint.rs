//! Remote MCP endpoints: any http(s) URL that is not a registry or forge page. What the
//! endpoint's server card (SEP-2127) and the probes said decides the `uri` and its transport:
//!
//! 1. a probe that got an answer (an `initialize` result over streamable HTTP, or an
//!    `endpoint` event over legacy SSE) → that URL;
//! 2. a probe refused for want of authorization (401, 403) → that URL, with a note;
//! 3. a card's remote (streamable HTTP first) → its URL;
//! 4. no probe made (offline) → the URL itself when it has a port, is on a loopback host, or
//!    its path ends in `/mcp` or `/sse`; probes made but none answered → the same, with a note
//!    saying nothing answered.
//!
//! The name is the requested one, else the card's `name` (its last `/` part), else the name
//! the server gave in its `initialize` result, else one from the host. Headers the card marks
//! as required, and its `authentication`, go to the notes by name.

use serde_json::{Value, json};

use crate::{Facts, Suggestion, Url, chosen_name, config, join_notes, names};

/// What one probe of a URL found: the JSON stored under [`names::MCP_PROBE`] (a list of these,
/// in the order they were made).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// The URL probed.
    pub url: String,
    /// `streamable-http` or `sse` when it answered as one; none otherwise.
    pub transport: Option<String>,
    /// The last HTTP status it answered with, if any.
    pub status: Option<u16>,
    /// Whether it asked for authorization (401 or 403).
    pub auth: bool,
    /// The server's name from its `initialize` result.
    pub server_name: Option<String>,
    /// The server's version from its `initialize` result.
    pub server_version: Option<String>,
    /// What went wrong, for a URL that did not answer.
    pub detail: Option<String>,
}

impl Probe {
    /// The probe as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url,
            "transport": self.transport,
            "status": self.status,
            "auth": self.auth,
            "server_name": self.server_name,
            "server_version": self.server_version,
            "detail": self.detail,
        })
    }

    /// A probe read back from JSON.
    pub fn from_json(value: &Value) -> Option<Probe> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Probe {
            url: text("url")?,
            transport: text("transport"),
            status: value
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            auth: value.get("auth").and_then(Value::as_bool).unwrap_or(false),
            server_name: text("server_name"),
            server_version: text("server_version"),
            detail: text("detail"),
        })
    }

    /// A list of probes as the text stored under [`names::MCP_PROBE`].
    pub fn list_text(probes: &[Probe]) -> String {
        Value::Array(probes.iter().map(Probe::to_json).collect()).to_string()
    }
}

/// The probes in `facts`.
pub fn probes(facts: &Facts) -> Vec<Probe> {
    match facts.json(names::MCP_PROBE) {
        Some(Value::Array(all)) => all.iter().filter_map(Probe::from_json).collect(),
        Some(one @ Value::Object(_)) => Probe::from_json(&one).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A card's remote.
struct Remote {
    kind: String,
    url: String,
    headers: Vec<String>,
    auth: bool,
}

fn remotes(card: &Value) -> Vec<Remote> {
    card.get("remotes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let url = r.get("url")?.as_str()?.to_owned();
            let kind = r
                .get("type")
                .or_else(|| r.get("transport_type"))
                .and_then(Value::as_str)
                .unwrap_or("streamable-http")
                .to_ascii_lowercase();
            let headers = r
                .get("headers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|h| {
                    h.get("isRequired")
                        .or_else(|| h.get("is_required"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .filter_map(|h| h.get("name")?.as_str().map(str::to_owned))
                .collect();
            let auth = r
                .get("authentication")
                .and_then(|a| a.get("required"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(Remote {
                kind,
                url,
                headers,
                auth,
            })
        })
        .collect()
}

/// The URL is shaped like an endpoint (magg's guess without a probe).
fn looks_like_endpoint(url: &Url) -> bool {
    let path = url.path.trim_end_matches('/');
    let loopback = url.host == "localhost"
        || url.host.ends_with(".localhost")
        || url.host.starts_with("127.")
        || url.host == "::1"
        || url.host == "0.0.0.0";
    url.port.is_some() || loopback || path.ends_with("/sse") || path.ends_with("/mcp")
}

fn path_is_sse(uri: &str) -> bool {
    Url::parse(uri).is_some_and(|u| u.path.trim_end_matches('/').ends_with("/sse"))
}

/// The suggestion for an endpoint URL.
pub(crate) fn suggest(facts: &Facts, source: &str) -> Option<Suggestion> {
    let url = Url::parse(source)?;
    let card = facts.json(names::MCP_CARD).filter(Value::is_object);
    let probes = probes(facts);
    let card_remotes = card.as_ref().map(remotes).unwrap_or_default();
    let mut lines = Vec::new();
    let mut notes = Vec::new();

    let answered = probes.iter().find(|p| p.transport.is_some());
    let refused = probes.iter().find(|p| p.auth);
    let from_card = card_remotes
        .iter()
        .find(|r| r.kind.contains("http"))
        .or(card_remotes.first());
    let uri = if let Some(p) = answered {
        lines.push("Direct MCP server detected via HTTP".into());
        p.url.clone()
    } else if let Some(p) = refused {
        lines.push(format!(
            "MCP endpoint asks for authorization ({})",
            p.status.map_or_else(|| "401".to_owned(), |s| s.to_string())
        ));
        p.url.clone()
    } else if let Some(r) = from_card {
        lines.push("MCP endpoint from the server card (did not answer the probe)".into());
        r.url.clone()
    } else if probes.is_empty() {
        if !looks_like_endpoint(&url) {
            return None;
        }
        lines.push("Direct MCP server URL (not checked)".into());
        source.trim().to_owned()
    } else {
        if !looks_like_endpoint(&url) {
            return None;
        }
        let why = probes
            .iter()
            .find_map(|p| p.detail.clone())
            .unwrap_or_else(|| "no answer".into());
        lines.push(format!("No MCP server answered at {source}: {why}"));
        notes.push(format!(
            "Nothing answered as an MCP server at {source} when magg checked ({why}); check the \
             URL and that the server is running."
        ));
        source.trim().to_owned()
    };

    let transport = transport_of(facts, &uri).or_else(|| path_is_sse(&uri).then_some("sse"));
    lines.push(format!(
        "Transport: {}",
        if transport == Some("sse") {
            "SSE"
        } else {
            "streamable HTTP"
        }
    ));
    if let Some(p) = answered
        && let Some(name) = &p.server_name
    {
        lines.push(format!(
            "Server: {name}{}",
            p.server_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ));
    }
    let card_name = card.as_ref().and_then(|c| {
        c.get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    });
    if let Some(card) = &card {
        lines.push("Server card found".into());
        let text = |k: &str| {
            card.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(title) = text("title") {
            lines.push(format!("Title: {title}"));
        }
        if let Some(d) = text("description") {
            lines.push(format!("Description: {d}"));
        }
        if let Some(v) = text("version") {
            lines.push(format!("Version: {v}"));
        }
    }
    let mut headers: Vec<String> = Vec::new();
    let mut auth = refused.is_some() && answered.is_none();
    for r in card_remotes
        .iter()
        .filter(|r| r.url == uri || card_remotes.len() == 1)
    {
        auth |= r.auth;
        for h in &r.headers {
            crate::push_unique(&mut headers, h);
        }
    }
    if !headers.is_empty() {
        lines.push(format!("Required headers: {}", headers.join(", ")));
        notes.push(format!(
            "The server needs the header{} {}: add {} under `transport.headers` (the value is \
             yours to fill in).",
            if headers.len() > 1 { "s" } else { "" },
            headers.join(", "),
            if headers.len() > 1 { "them" } else { "it" },
        ));
    }
    if auth
        && !headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
    {
        notes.push(
            "The server asks for authorization: add `Authorization: Bearer <token>` under \
             `transport.headers` with a token it accepts."
                .into(),
        );
    }

    let server_name = answered.and_then(|p| p.server_name.clone());
    let name = chosen_name(facts, || {
        card_name
            .or(server_name)
            .unwrap_or_else(|| host_name(&url.host))
    });
    let mut config = config(name, &facts.source);
    config.uri = Some(uri);
    config.notes = join_notes(notes);
    Some(Suggestion {
        config,
        project_type: None,
        facts: lines,
    })
}

/// See [`crate::transport`].
pub(crate) fn transport_of(facts: &Facts, uri: &str) -> Option<&'static str> {
    let kind = |t: &str| {
        if t.eq_ignore_ascii_case("sse") {
            Some("sse")
        } else if path_is_sse(uri) {
            // Streamable HTTP at a path magg would otherwise take for SSE.
            Some("http")
        } else {
            None
        }
    };
    if let Some(p) = probes(facts)
        .into_iter()
        .find(|p| p.url == uri && p.transport.is_some())
    {
        return p.transport.as_deref().and_then(kind);
    }
    let card = facts.json(names::MCP_CARD)?;
    let remote = remotes(&card).into_iter().find(|r| r.url == uri)?;
    kind(&remote.kind)
}

/// A server name from a host: `mcp.example.com` → `example`, `localhost` → `localhost`.
fn host_name(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return "local".into();
    }
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let significant = labels.len().saturating_sub(1).max(1);
    labels
        .iter()
        .take(significant)
        .find(|l| !matches!(**l, "www" | "mcp" | "api" | "server"))
        .or(labels.first())
        .map_or_else(|| "server".into(), |l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        suggest,
        test_support::{url_facts, with},
        transport,
    };

    #[test]
    fn unprobed_urls_go_by_their_shape() {
        let s = suggest(&url_facts("http://localhost:8080/mcp", None)).unwrap();
        assert_eq!(s.config.uri.as_deref(), Some("http://localhost:8080/mcp"));
        assert_eq!(s.config.command, None);
        assert_eq!(s.config.name, "localhost");
        let s = suggest(&url_facts("https://mcp.example.com/sse/", None)).unwrap();
        assert_eq!(s.config.name, "example");
        assert!(s.facts.contains(&"Transport: SSE".to_string()));
        assert!(suggest(&url_facts("https://example.com/docs", None)).is_none());
        assert!(suggest(&url_facts("https://gitlab.com/a/mcp", None)).is_none());
        assert!(suggest(&url_facts("ftp://example.com:21/mcp", None)).is_none());
    }

    #[test]
    fn probes_and_cards_decide() {
        let sse = Probe {
            url: "https://example.com/events".into(),
            transport: Some("sse".into()),
            ..Probe::default()
        };
        let facts = with(
            url_facts("https://example.com/events", None),
            &[(names::MCP_PROBE, &Probe::list_text(&[sse]))],
        );
        let s = suggest(&facts).unwrap();
        assert_eq!(s.config.uri.as_deref(), Some("https://example.com/events"));
        assert!(
            s.facts.contains(&"Transport: SSE".to_string()),
            "{:?}",
            s.facts
        );
        assert_eq!(transport(&facts, "https://example.com/events"), Some("sse"));

        let card = r#"{"name":"io.example/weather","title":"Weather","description":"Forecasts",
            "remotes":[{"type":"streamable-http","url":"https://example.com/v1/mcp",
            "headers":[{"name":"X-Api-Key","isRequired":true,"isSecret":true},{"name":"X-Trace"}]}]}"#;
        let refused = Probe {
            url: "https://example.com/v1/mcp".into(),
            status: Some(401),
            auth: true,
            ..Probe::default()
        };
        let s = suggest(&with(
            url_facts("https://example.com", None),
            &[
                (names::MCP_CARD, card),
                (names::MCP_PROBE, &Probe::list_text(&[refused])),
            ],
        ))
        .unwrap();
        assert_eq!(s.config.uri.as_deref(), Some("https://example.com/v1/mcp"));
        assert_eq!(s.config.name, "weather");
        let notes = s.config.notes.unwrap();
        assert!(
            notes.contains("X-Api-Key") && !notes.contains("X-Trace"),
            "{notes}"
        );
        assert!(s.facts.contains(&"Description: Forecasts".to_string()));

        let silent = Probe {
            url: "https://example.com/docs".into(),
            status: Some(404),
            detail: Some("404 Not Found".into()),
            ..Probe::default()
        };
        assert!(
            suggest(&with(
                url_facts("https://example.com/docs", None),
                &[(names::MCP_PROBE, &Probe::list_text(&[silent]))],
            ))
            .is_none()
        );
    }
}
