//! A blocking HTTP GET over `wasi:http/outgoing-handler`, for search providers (world
//! `search-provider-plugin`, the one that imports `wasi:http`); magg lets a plugin reach only
//! the hosts its config grants.
//!
//! [`fetch`] sends one GET request, follows no redirects and reads the whole answer (up to
//! [`MAX_BODY`] bytes), whatever its status, headers included. [`get`] turns anything but a
//! `200 OK` into an [`Error`] whose text names the host and says what to do (e.g. `HTTP 429
//! from registry.npmjs.org (rate limited; try again in 30 s)`). Neither traps. [`SearchApi`] is
//! the whole round trip of a provider that asks one JSON search API, settings included.

use std::fmt;

use crate::SearchResult;
use crate::bindings::search_provider::wasi::http::outgoing_handler;
use crate::bindings::search_provider::wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::search_provider::wasi::io::streams::StreamError;
use crate::host;

/// The most body bytes [`get`] reads; a longer body is an error.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The default for [`Options::timeout_ms`].
pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;

/// How [`get`] makes its request.
#[derive(Debug, Clone)]
pub struct Options {
    /// The limit for connecting, for the first response byte and for each pause between body
    /// bytes, in milliseconds (the host may enforce a shorter one).
    pub timeout_ms: u64,
    /// The `user-agent` header.
    pub user_agent: &'static str,
    /// More request headers (name, value); an `accept` here replaces the default
    /// `application/json`.
    pub headers: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            user_agent: "magg-plugin (+https://github.com/sitbon/magg)",
            headers: Vec::new(),
        }
    }
}

/// A whole HTTP answer, whatever its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The URL's host (and port).
    pub host: String,
    /// The status code.
    pub status: u16,
    /// The headers (names in lower case, values as text), in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The body when the status is 200, else the [`Error::Status`] for this answer.
    pub fn ok(self) -> Result<Vec<u8>, Error> {
        if self.status == 200 {
            return Ok(self.body);
        }
        let retry_after = self
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok());
        Err(Error::Status {
            host: self.host,
            status: self.status,
            retry_after,
        })
    }
}

/// Why [`get`] failed; its `Display` text is meant for users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL is not an absolute `http://` or `https://` URL.
    BadUrl(String),
    /// The request could not be made or no response arrived.
    Network {
        /// The URL's host (and port).
        host: String,
        /// What went wrong.
        detail: String,
    },
    /// The server answered with a status other than 200.
    Status {
        /// The URL's host (and port).
        host: String,
        /// The status code.
        status: u16,
        /// The seconds its `retry-after` header asks to wait, if it sent one.
        retry_after: Option<u64>,
    },
    /// The body was longer than [`MAX_BODY`].
    TooLarge {
        /// The URL's host (and port).
        host: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUrl(url) => write!(f, "not an http(s) URL: {url}"),
            Error::Network { host, detail } => write!(f, "request to {host} failed: {detail}"),
            Error::Status { host, status, .. } if (300..400).contains(status) => {
                write!(f, "HTTP {status} from {host} (redirects are not followed)")
            }
            Error::Status {
                host,
                status: 429,
                retry_after,
            } => match retry_after {
                Some(secs) => write!(
                    f,
                    "HTTP 429 from {host} (rate limited; try again in {secs} s)"
                ),
                None => write!(f, "HTTP 429 from {host} (rate limited; try again later)"),
            },
            Error::Status {
                host, status: 404, ..
            } => write!(
                f,
                "HTTP 404 from {host} (not found; check the plugin's `base_url` setting)"
            ),
            Error::Status { host, status, .. } if (500..600).contains(status) => write!(
                f,
                "HTTP {status} from {host} (the service failed or is down; try again later)"
            ),
            Error::Status { host, status, .. } => write!(f, "HTTP {status} from {host}"),
            Error::TooLarge { host } => {
                write!(
                    f,
                    "response from {host} is larger than {} MiB",
                    MAX_BODY / (1024 * 1024)
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// The parts of an absolute http(s) URL that a `wasi:http` request takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Whether the scheme is `https`.
    pub https: bool,
    /// `host` or `host:port`.
    pub authority: &'a str,
    /// The path and query, at least `/`.
    pub path_with_query: &'a str,
}

/// The `base_url` setting of a search provider: `value` trimmed of quotes and a trailing `/`,
/// or `default` when unset or empty; an error naming the setting when it is not an http(s) URL.
pub fn base_url_setting(value: Option<String>, default: &str) -> Result<String, String> {
    let Some(base) = value
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
    else {
        return Ok(default.to_string());
    };
    let base = base.trim_matches('"').trim_end_matches('/').to_string();
    parse_url(&base).map_err(|_| format!("setting `base_url` is not an http(s) URL: {base}"))?;
    Ok(base)
}

/// The `timeout_ms` setting: [`DEFAULT_TIMEOUT_MS`] when unset; an error when not a number.
pub fn timeout_setting(value: Option<String>) -> Result<u64, String> {
    match value {
        None => Ok(DEFAULT_TIMEOUT_MS),
        Some(t) => t
            .trim()
            .trim_matches('"')
            .parse()
            .map_err(|_| format!("setting `timeout_ms` is not a number: {t}")),
    }
}

/// Splits an absolute `http://` or `https://` URL; the fragment is dropped.
pub fn parse_url(url: &str) -> Result<Target<'_>, Error> {
    let bad = || Error::BadUrl(url.to_string());
    let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(bad());
    }
    let path_with_query = if path.is_empty() {
        "/"
    } else if path.starts_with('?') {
        // `http://host?q` has an empty path; HTTP wants `/?q`, which the caller should give.
        return Err(bad());
    } else {
        path
    };
    Ok(Target {
        https,
        authority,
        path_with_query,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Percent-encodes `s` for use as a URL query value (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs `url` and returns its body, which must come with status 200 and be at most
/// [`MAX_BODY`] bytes.
pub fn get(url: &str, options: &Options) -> Result<Vec<u8>, Error> {
    fetch(url, options)?.ok()
}

/// GETs `url` and returns the whole answer, whatever its status; the body may be at most
/// [`MAX_BODY`] bytes.
pub fn fetch(url: &str, options: &Options) -> Result<Response, Error> {
    let target = parse_url(url)?;
    let host = target.authority.to_string();
    let network = |detail: String| Error::Network {
        host: host.clone(),
        detail,
    };

    let mut list = Vec::with_capacity(options.headers.len() + 2);
    if !options
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
    {
        list.push(("accept".to_string(), b"application/json".to_vec()));
    }
    list.push((
        "user-agent".to_string(),
        options.user_agent.as_bytes().to_vec(),
    ));
    for (name, value) in &options.headers {
        list.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
    }
    let headers =
        Fields::from_list(&list).map_err(|e| network(format!("bad request headers: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    let bad_part = |what: &str| network(format!("the host refused the request's {what}"));
    request
        .set_method(&Method::Get)
        .map_err(|()| bad_part("method"))?;
    request
        .set_scheme(Some(if target.https {
            &Scheme::Https
        } else {
            &Scheme::Http
        }))
        .map_err(|()| bad_part("scheme"))?;
    request
        .set_authority(Some(target.authority))
        .map_err(|()| bad_part("authority"))?;
    request
        .set_path_with_query(Some(target.path_with_query))
        .map_err(|()| bad_part("path"))?;

    let request_options = RequestOptions::new();
    let timeout_ns = Some(options.timeout_ms.saturating_mul(1_000_000));
    // A host that does not support a timeout refuses it; the request goes on without.
    let _ = request_options.set_connect_timeout(timeout_ns);
    let _ = request_options.set_first_byte_timeout(timeout_ns);
    let _ = request_options.set_between_bytes_timeout(timeout_ns);

    let pending = outgoing_handler::handle(request, Some(request_options))
        .map_err(|e| network(describe(&e)))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(network(describe(&e))),
        Some(Err(())) | None => return Err(network("no response".to_string())),
    };

    let status = response.status();
    let response_headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();

    let body = response
        .consume()
        .map_err(|()| network("the response has no body".to_string()))?;
    let stream = body
        .stream()
        .map_err(|()| network("the response body cannot be read".to_string()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(Error::TooLarge { host });
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(network(format!(
                    "reading the body failed: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
    drop(stream);
    drop(body);
    drop(response);
    Ok(Response {
        host,
        status,
        headers: response_headers,
        body: bytes,
    })
}

/// A JSON search API that a search provider asks, the way magg's own providers do: one GET per
/// search, settings `base_url` and `timeout_ms`, errors that name the provider and the host.
#[derive(Debug, Clone, Copy)]
pub struct SearchApi {
    /// The provider's name at the start of every error text (`npm search` gives
    /// `npm search: HTTP 503 from registry.npmjs.org`).
    pub name: &'static str,
    /// The API's base URL when the `base_url` setting is unset.
    pub default_base_url: &'static str,
    /// What a good response holds, for the error about a bad one (`a search result` gives
    /// `... sent a response that is not a search result: ...`).
    pub expected: &'static str,
}

/// One search's settings, read once: where to ask and how.
#[derive(Debug, Clone)]
pub struct Search {
    /// The `base_url` setting, or the API's default.
    pub base: String,
    /// The request options (`timeout_ms` setting).
    pub options: Options,
    expected: &'static str,
}

impl Search {
    /// Turns the body `url` answered with into results with `parse`; a parse failure names
    /// the host and what the answer should have been.
    pub fn parse(
        &self,
        url: &str,
        body: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<Vec<SearchResult>, String>,
    ) -> Result<Vec<SearchResult>, String> {
        parse(body).map_err(|e| {
            let from = parse_url(url)
                .map(|t| t.authority.to_string())
                .unwrap_or_else(|_| self.base.clone());
            format!("{from} sent a response that is not {}: {e}", self.expected)
        })
    }
}

impl SearchApi {
    /// Asks the API for up to `limit` servers: reads the settings `base_url` (see
    /// [`base_url_setting`]) and `timeout_ms` (see [`timeout_setting`]), GETs
    /// `request_url(base_url)`, turns the body into results with `parse` and keeps the first
    /// `limit`. With `limit` 0 it makes no request.
    pub fn search(
        &self,
        limit: u32,
        request_url: impl FnOnce(&str) -> String,
        parse: impl FnOnce(&[u8]) -> Result<Vec<SearchResult>, String>,
    ) -> Result<Vec<SearchResult>, String> {
        self.run(limit, |search| {
            let url = request_url(&search.base);
            let body = get(&url, &search.options).map_err(|e| e.to_string())?;
            search.parse(&url, &body, parse)
        })
    }

    /// Like [`SearchApi::search`], for a provider that makes its own requests (more than one,
    /// extra headers, its own reading of error answers): `ask` gets the settings read once and
    /// returns the results or an error text, which gets the provider's name in front. With
    /// `limit` 0 it makes no request; results past `limit` are dropped.
    pub fn run(
        &self,
        limit: u32,
        ask: impl FnOnce(&Search) -> Result<Vec<SearchResult>, String>,
    ) -> Result<Vec<SearchResult>, String> {
        self.try_run(limit, ask)
            .map_err(|e| format!("{}: {e}", self.name))
    }

    fn try_run(
        &self,
        limit: u32,
        ask: impl FnOnce(&Search) -> Result<Vec<SearchResult>, String>,
    ) -> Result<Vec<SearchResult>, String> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let search = Search {
            base: base_url_setting(host::setting("base_url"), self.default_base_url)?,
            options: Options {
                timeout_ms: timeout_setting(host::setting("timeout_ms"))?,
                ..Options::default()
            },
            expected: self.expected,
        };
        let mut results = ask(&search)?;
        results.truncate(limit as usize);
        Ok(results)
    }
}

/// Says what a `wasi:http` error code means, for users.
fn describe(e: &ErrorCode) -> String {
    match e {
        ErrorCode::DnsTimeout => "DNS lookup timed out".to_string(),
        ErrorCode::DnsError(d) => match (&d.rcode, d.info_code) {
            (Some(rcode), _) => format!("DNS lookup failed ({rcode})"),
            (None, Some(code)) => format!("DNS lookup failed (code {code})"),
            (None, None) => "DNS lookup failed".to_string(),
        },
        ErrorCode::DestinationNotFound => "host not found".to_string(),
        ErrorCode::DestinationUnavailable => "host unavailable".to_string(),
        ErrorCode::DestinationIpProhibited => "destination IP prohibited".to_string(),
        ErrorCode::DestinationIpUnroutable => "destination IP unroutable".to_string(),
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTerminated => "connection closed".to_string(),
        ErrorCode::ConnectionTimeout => "connection timed out".to_string(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for the response".to_string(),
        ErrorCode::ConnectionWriteTimeout => "timed out sending the request".to_string(),
        ErrorCode::ConnectionLimitReached => "connection limit reached".to_string(),
        ErrorCode::TlsProtocolError => "TLS error".to_string(),
        ErrorCode::TlsCertificateError => "TLS certificate error".to_string(),
        ErrorCode::TlsAlertReceived(a) => match &a.alert_message {
            Some(m) => format!("TLS alert: {m}"),
            None => "TLS alert".to_string(),
        },
        ErrorCode::HttpRequestDenied => {
            "request denied (is this host granted to the plugin?)".to_string()
        }
        ErrorCode::HttpResponseIncomplete => "incomplete response".to_string(),
        ErrorCode::HttpResponseTimeout => "timed out waiting for the response".to_string(),
        ErrorCode::InternalError(Some(m)) => format!("internal error: {m}"),
        ErrorCode::InternalError(None) => "internal error".to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("https://registry.npmjs.org/-/v1/search?text=a%20b&size=3").unwrap(),
            Target {
                https: true,
                authority: "registry.npmjs.org",
                path_with_query: "/-/v1/search?text=a%20b&size=3"
            }
        );
        assert_eq!(
            parse_url("HTTP://127.0.0.1:8080").unwrap(),
            Target {
                https: false,
                authority: "127.0.0.1:8080",
                path_with_query: "/"
            }
        );
        assert_eq!(parse_url("http://h/p#frag").unwrap().path_with_query, "/p");
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("https://").is_err());
        assert!(parse_url("https://user@h/").is_err());
        assert!(parse_url("registry.npmjs.org").is_err());
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("time mcp"), "time%20mcp");
        assert_eq!(encode_query_value("a&b=c/d?é"), "a%26b%3Dc%2Fd%3F%C3%A9");
        assert_eq!(encode_query_value("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn error_texts() {
        let host = "registry.npmjs.org".to_string();
        let status = |status, retry_after| Error::Status {
            host: host.clone(),
            status,
            retry_after,
        };
        assert_eq!(
            status(503, None).to_string(),
            "HTTP 503 from registry.npmjs.org (the service failed or is down; try again later)"
        );
        assert_eq!(
            status(301, None).to_string(),
            "HTTP 301 from registry.npmjs.org (redirects are not followed)"
        );
        assert_eq!(
            status(429, Some(30)).to_string(),
            "HTTP 429 from registry.npmjs.org (rate limited; try again in 30 s)"
        );
        assert_eq!(
            status(429, None).to_string(),
            "HTTP 429 from registry.npmjs.org (rate limited; try again later)"
        );
        assert_eq!(
            status(418, None).to_string(),
            "HTTP 418 from registry.npmjs.org"
        );
    }

    #[test]
    fn responses_become_errors_unless_200() {
        let answer = |status, headers: &[(&str, &str)]| Response {
            host: "h".into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: b"{}".to_vec(),
        };
        assert_eq!(answer(200, &[]).ok().unwrap(), b"{}");
        let limited = answer(429, &[("retry-after", " 12 ")]);
        assert_eq!(limited.header("Retry-After"), Some("12"));
        assert_eq!(
            limited.ok().unwrap_err(),
            Error::Status {
                host: "h".into(),
                status: 429,
                retry_after: Some(12)
            }
        );
    }
}
