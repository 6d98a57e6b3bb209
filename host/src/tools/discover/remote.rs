//! What magg fetches about a remote source before the configure rules read it: the npm
//! registry's document of a package, PyPI's JSON of a project (and its repository's
//! `pyproject.toml`), a GitHub repository's metadata, README and manifests, and a remote
//! endpoint's server card and probes. Everything lands in the facts' `contents` under the
//! names of [`magg_configure_rules::names`], so configure plugins (which have no network) read
//! it too.
//!
//! Each request has a short time limit. A fetch that fails is a fact line (`GitHub: 403 rate
//! limited; set GITHUB_TOKEN`), never a failure of the tool.
//!
//! Where magg asks, overridable for mirrors and tests: `NPM_CONFIG_REGISTRY` (npm's own
//! setting; default `https://registry.npmjs.org`), `MAGG_PYPI_URL` (default
//! `https://pypi.org`), `GITHUB_API_URL` (GitHub Actions' name; default
//! `https://api.github.com`), and `GITHUB_TOKEN`, sent to the GitHub API when set.

use std::{sync::OnceLock, time::Duration};

use base64::Engine as _;
use magg_configure_rules::{Source, endpoint::Probe, names, origin};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

/// How long one request may take, body included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of one answer magg reads (an npm document with every version can be large).
const BODY_CAP: usize = 8 * 1024 * 1024;

/// The most of a README the facts carry (as of a local marker file).
const README_CAP: usize = 64 * 1024;

/// The most of an SSE stream a probe reads before giving up on it.
const STREAM_CAP: usize = 256 * 1024;

/// How many URLs of one endpoint magg probes (the source, then its card's remotes).
const MAX_PROBES: usize = 3;

/// What was fetched: `contents` entries for the facts, and lines for the metadata.
#[derive(Default)]
pub(super) struct Fetched {
    pub(super) contents: Vec<(String, String)>,
    pub(super) lines: Vec<String>,
}

impl Fetched {
    fn put(&mut self, name: &str, text: String) {
        self.contents.push((name.to_owned(), text));
    }

    /// Puts a README, cut at [`README_CAP`].
    fn put_readme(&mut self, name: &str, text: String) {
        self.put(name, cut(text, README_CAP));
    }

    fn line(&mut self, line: String) {
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }
}

/// The base URLs magg asks, from the environment.
struct Bases {
    npm: String,
    pypi: String,
    github: String,
    token: Option<String>,
}

impl Bases {
    fn from_env() -> Bases {
        let base = |var: &str, default: &str| {
            std::env::var(var)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Bases {
            npm: base("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org"),
            pypi: base("MAGG_PYPI_URL", "https://pypi.org"),
            github: base("GITHUB_API_URL", "https://api.github.com"),
            token: std::env::var("GITHUB_TOKEN")
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        }
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::tls::install();
        reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("magg/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Fetches what the rules can use about `source`.
pub(super) async fn fetch(source: &Source) -> Fetched {
    let bases = Bases::from_env();
    let mut out = Fetched::default();
    match source {
        Source::Npm { package } => npm(&bases, package, &mut out).await,
        Source::Pypi { package } => pypi(&bases, package, &mut out).await,
        Source::GitHub {
            owner,
            repo,
            reference,
            subdir,
        } => {
            let at = At {
                owner,
                repo,
                reference: reference.as_deref(),
                subdir: subdir.as_deref(),
            };
            github(&bases, &at, &mut out).await;
        }
        Source::Endpoint { url } => endpoint(url, &mut out).await,
        Source::Local | Source::Oci { .. } | Source::Other => {}
    }
    out
}

/// One answer, its body cut at [`BODY_CAP`].
struct Got {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Result<Got, String> {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send().await.map_err(|e| error_text(&e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_text(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() >= BODY_CAP {
            body.truncate(BODY_CAP);
            break;
        }
    }
    Ok(Got {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `text` cut at `cap` bytes, on a character boundary.
fn cut(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let mut at = cap;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

/// What went wrong with a request, briefly: its innermost cause (reqwest's own text says only
/// "error sending request for url (...)").
fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", FETCH_TIMEOUT.as_secs());
    }
    let mut innermost = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        innermost = c.to_string();
        cause = c.source();
    }
    innermost
}

// ---------------------------------------------------------------------------------------------
// npm

async fn npm(bases: &Bases, package: &str, out: &mut Fetched) {
    // The registry takes a scoped name with its slash encoded.
    let url = format!("{}/{}", bases.npm, package.replace('/', "%2F"));
    let got = match get(&url, &[("accept", "application/json")]).await {
        Ok(got) => got,
        Err(e) => {
            out.line(format!("npm: cannot reach {}: {e}", bases.npm));
            return;
        }
    };
    if got.status != 200 {
        out.line(match got.status {
            404 => format!("npm: no package {package} in the registry (404)"),
            s => format!("npm: the registry answered {s} for {package}"),
        });
        return;
    }
    let Ok(doc) = serde_json::from_str::<Value>(&got.body) else {
        out.line(format!(
            "npm: the registry's document of {package} is not JSON"
        ));
        return;
    };
    let latest = doc
        .get("dist-tags")
        .and_then(|t| t.get("latest"))
        .and_then(Value::as_str);
    // A registry that serves a version document directly has no `versions`.
    let mut manifest = match (latest, doc.get("versions")) {
        (Some(latest), Some(versions)) => versions.get(latest).cloned().unwrap_or(Value::Null),
        _ => doc.clone(),
    };
    let readme = doc
        .get("readme")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .or_else(|| manifest.get("readme").and_then(Value::as_str))
        .map(str::to_owned);
    if let Value::Object(fields) = &mut manifest {
        fields.remove("readme");
        if !fields.contains_key("description")
            && let Some(d) = doc.get("description")
        {
            fields.insert("description".into(), d.clone());
        }
        out.put(names::NPM_PACKAGE, manifest.to_string());
    }
    match readme {
        Some(readme) => out.put_readme(names::NPM_README, readme),
        // A registry document without the README (mirrors often leave it out): the README of
        // the repository (and folder) the package names on GitHub.
        None => {
            if let Some(readme) = repository_readme(bases, &manifest, out).await {
                out.put_readme(names::NPM_README, readme);
            }
        }
    }
}

/// The README of the GitHub repository an npm manifest's `repository` names.
async fn repository_readme(bases: &Bases, manifest: &Value, out: &mut Fetched) -> Option<String> {
    let repository = manifest.get("repository")?;
    let url = match repository {
        Value::String(url) => url.clone(),
        other => other.get("url")?.as_str()?.to_owned(),
    };
    let url = url
        .trim_start_matches("git+")
        .replacen("git://", "https://", 1)
        .replacen("ssh://git@", "https://", 1);
    let url = match url.strip_prefix("github:") {
        Some(short) => format!("https://github.com/{short}"),
        None => url,
    };
    let Source::GitHub { owner, repo, .. } = magg_configure_rules::classify(&url) else {
        return None;
    };
    let directory = repository
        .get("directory")
        .and_then(Value::as_str)
        .map(|d| d.trim_matches('/').to_owned())
        .filter(|d| !d.is_empty());
    let api = format!("{}/repos/{owner}/{repo}", bases.github);
    let path = match &directory {
        Some(dir) => format!("{api}/readme/{dir}"),
        None => format!("{api}/readme"),
    };
    match github_get(bases, &path, RAW, out).await {
        Some((200, body)) => Some(raw_contents(body)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// PyPI

async fn pypi(bases: &Bases, package: &str, out: &mut Fetched) {
    let url = format!("{}/pypi/{package}/json", bases.pypi);
    let got = match get(&url, &[("accept", "application/json")]).await {
        Ok(got) => got,
        Err(e) => {
            out.line(format!("PyPI: cannot reach {}: {e}", bases.pypi));
            return;
        }
    };
    if got.status != 200 {
        out.line(match got.status {
            404 => format!("PyPI: no project {package} (404)"),
            s => format!("PyPI: answered {s} for {package}"),
        });
        return;
    }
    let Some(mut info) = serde_json::from_str::<Value>(&got.body)
        .ok()
        .and_then(|v| v.get("info").cloned())
    else {
        out.line(format!("PyPI: the JSON of {package} has no `info`"));
        return;
    };
    // The project's repository, when its metadata names one on GitHub: its pyproject.toml
    // has the console scripts PyPI's JSON does not list.
    let repository = info
        .get("project_urls")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|urls| urls.values())
        .chain(info.get("home_page"))
        .filter_map(Value::as_str)
        .find_map(|url| match magg_configure_rules::classify(url) {
            Source::GitHub {
                owner,
                repo,
                reference,
                subdir,
            } => Some((owner, repo, reference, subdir)),
            _ => None,
        });
    // The description is the project's README.
    if let Some(Value::String(readme)) = info.get_mut("description") {
        *readme = cut(std::mem::take(readme), README_CAP);
    }
    out.put(names::PYPI_PROJECT, json!({"info": info}).to_string());
    if let Some((owner, repo, reference, subdir)) = repository {
        let at = At {
            owner: &owner,
            repo: &repo,
            reference: reference.as_deref(),
            subdir: subdir.as_deref(),
        };
        if let Some(text) = github_file(bases, &at, "pyproject.toml", out).await {
            out.put(names::GITHUB_PYPROJECT, text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub

/// A repository, or a folder of one at a ref.
struct At<'a> {
    owner: &'a str,
    repo: &'a str,
    reference: Option<&'a str>,
    subdir: Option<&'a str>,
}

impl At<'_> {
    fn api(&self, bases: &Bases) -> String {
        format!("{}/repos/{}/{}", bases.github, self.owner, self.repo)
    }

    fn query(&self) -> String {
        self.reference
            .map(|r| format!("?ref={r}"))
            .unwrap_or_default()
    }
}

async fn github(bases: &Bases, at: &At<'_>, out: &mut Fetched) {
    let api = at.api(bases);
    let readme_path = match at.subdir {
        Some(dir) => format!("{api}/readme/{dir}{}", at.query()),
        None => format!("{api}/readme{}", at.query()),
    };
    let mut meta_out = Fetched::default();
    let mut files_out: [Fetched; 4] = Default::default();
    let [readme_out, package_out, pyproject_out, server_out] = &mut files_out;
    let (meta, readme, package, pyproject, server) = tokio::join!(
        github_get(bases, &api, "application/vnd.github+json", &mut meta_out),
        github_get(bases, &readme_path, RAW, readme_out),
        github_file(bases, at, "package.json", package_out),
        github_file(bases, at, "pyproject.toml", pyproject_out),
        github_file(bases, at, "server.json", server_out),
    );
    for fetched in std::iter::once(meta_out).chain(files_out) {
        for line in fetched.lines {
            out.line(line);
        }
    }
    match meta {
        Some((404, _)) => out.line(format!(
            "GitHub: no repository {}/{} (404)",
            at.owner, at.repo
        )),
        Some((200, body)) => out.put(names::GITHUB_REPO, body),
        _ => {}
    }
    if let Some((200, body)) = readme {
        out.put_readme(names::GITHUB_README, raw_contents(body));
    }
    for (name, text) in [
        (names::GITHUB_PACKAGE, package),
        (names::GITHUB_PYPROJECT, pyproject),
        (names::GITHUB_SERVER, server),
    ] {
        if let Some(text) = text {
            out.put(name, text);
        }
    }
}

/// The media type for a file's raw text from the contents API.
const RAW: &str = "application/vnd.github.raw";

/// The text of a file at the top of the repository (or folder), or none.
async fn github_file(bases: &Bases, at: &At<'_>, file: &str, out: &mut Fetched) -> Option<String> {
    let path = match at.subdir {
        Some(dir) => format!("{dir}/{file}"),
        None => file.to_owned(),
    };
    let url = format!("{}/contents/{path}{}", at.api(bases), at.query());
    match github_get(bases, &url, RAW, out).await {
        Some((200, body)) => Some(raw_contents(body)),
        _ => None,
    }
}

/// A GET of the GitHub API: (status, body), with rate limits and refused tokens as fact lines;
/// none when GitHub cannot be reached.
async fn github_get(
    bases: &Bases,
    url: &str,
    accept: &str,
    out: &mut Fetched,
) -> Option<(u16, String)> {
    let bearer = bases.token.as_ref().map(|t| format!("Bearer {t}"));
    let mut headers = vec![("accept", accept), ("x-github-api-version", "2022-11-28")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let got = match get(url, &headers).await {
        Ok(got) => got,
        Err(e) => {
            out.line(format!("GitHub: cannot reach {}: {e}", bases.github));
            return None;
        }
    };
    let limited = matches!(got.status, 403 | 429)
        && (got
            .headers
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0")
            || got.body.to_ascii_lowercase().contains("rate limit"));
    if limited {
        out.line(if bases.token.is_some() {
            format!(
                "GitHub: {} rate limited even with GITHUB_TOKEN; try again after the limit resets",
                got.status
            )
        } else {
            format!("GitHub: {} rate limited; set GITHUB_TOKEN", got.status)
        });
    } else if got.status == 401 {
        out.line("GitHub: 401 unauthorized; check GITHUB_TOKEN".to_owned());
    } else if got.status >= 500 {
        out.line(format!("GitHub: {} from {url}", got.status));
    }
    Some((got.status, got.body))
}

/// A contents answer's text: raw already, or the JSON form's base64 `content` (an API that
/// ignores the raw media type).
fn raw_contents(body: String) -> String {
    let decoded = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
        (v.get("encoding")?.as_str()? == "base64").then_some(())?;
        let content: String = v
            .get("content")?
            .as_str()?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .ok()?;
        String::from_utf8(bytes).ok()
    });
    decoded.unwrap_or(body)
}

// ---------------------------------------------------------------------------------------------
// Remote endpoints

async fn endpoint(url: &str, out: &mut Fetched) {
    let mut targets = vec![url.to_owned()];
    if let Some(origin) = origin(url) {
        let card_url = format!("{origin}/.well-known/mcp/server-card.json");
        if let Ok(got) = get(&card_url, &[("accept", "application/json")]).await
            && got.status == 200
            && let Ok(card @ Value::Object(_)) = serde_json::from_str::<Value>(&got.body)
        {
            for remote in card
                .get("remotes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(u) = remote.get("url").and_then(Value::as_str)
                    && !targets.iter().any(|t| t == u)
                    && u.starts_with("http")
                {
                    targets.push(u.to_owned());
                }
            }
            out.put(names::MCP_CARD, card.to_string());
        }
    }
    let mut probes = Vec::new();
    for target in targets.into_iter().take(MAX_PROBES) {
        let probe = probe(&target).await;
        let done = probe.transport.is_some() || probe.auth;
        probes.push(probe);
        if done {
            break;
        }
    }
    out.put(names::MCP_PROBE, Probe::list_text(&probes));
}

/// Probes `url`: an `initialize` POST (streamable HTTP), then a GET for an SSE stream whose
/// first event is `endpoint` (the legacy transport).
async fn probe(url: &str) -> Probe {
    let mut probe = Probe {
        url: url.to_owned(),
        ..Probe::default()
    };
    let mut why = Vec::new();
    let initialize = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "magg", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let sent = client()
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .body(initialize.to_string())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            probe.status = Some(status);
            if matches!(status, 401 | 403) {
                probe.auth = true;
                probe.detail = Some(format!("initialize: {status}"));
                return probe;
            }
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer = if response.status().is_success() {
                first_message(response, |_, data| {
                    serde_json::from_str::<Value>(data)
                        .ok()
                        .filter(|m| m.get("result").is_some() || m.get("error").is_some())
                })
                .await
            } else {
                None
            };
            if let Some(session) = session {
                // End the session the probe opened.
                let _ = client()
                    .delete(url)
                    .header("mcp-session-id", session)
                    .send()
                    .await;
            }
            match answer.as_ref().and_then(|m| m.get("result")) {
                Some(result) => {
                    probe.transport = Some("streamable-http".into());
                    let info = result.get("serverInfo");
                    let text = |k: &str| {
                        info.and_then(|i| i.get(k))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    probe.server_name = text("name");
                    probe.server_version = text("version");
                    return probe;
                }
                None => why.push(format!("initialize: {status}")),
            }
        }
        Err(e) => why.push(format!("initialize: {}", error_text(&e))),
    }
    match client()
        .get(url)
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            probe.status = Some(status);
            let is_stream = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if matches!(status, 401 | 403) {
                probe.auth = true;
                why.push(format!("SSE: {status}"));
            } else if response.status().is_success() && is_stream {
                let endpoint = first_message(response, |event, data| {
                    (event == "endpoint").then(|| Value::String(data.to_owned()))
                })
                .await;
                if endpoint.is_some() {
                    probe.transport = Some("sse".into());
                    return probe;
                }
                why.push("SSE: no endpoint event".into());
            } else {
                why.push(format!("SSE: {status}"));
            }
        }
        Err(e) => why.push(format!("SSE: {}", error_text(&e))),
    }
    probe.detail = Some(why.join("; "));
    probe
}

/// The first message of an answer that `pick` accepts: the JSON body itself, or the first
/// matching event of an SSE stream (read up to [`STREAM_CAP`]).
async fn first_message(
    mut response: reqwest::Response,
    pick: impl Fn(&str, &str) -> Option<Value>,
) -> Option<Value> {
    let stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut buffer = String::new();
    let mut read = 0;
    loop {
        let chunk = response.chunk().await.ok().flatten();
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            read += chunk.len();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
        if stream {
            let normalised = buffer.replace("\r\n", "\n");
            let complete = normalised.rfind("\n\n").map_or("", |at| &normalised[..at]);
            for block in complete.split("\n\n") {
                let mut event = "message";
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                if let Some(found) = pick(event, &data.join("\n")) {
                    return Some(found);
                }
            }
        } else if done {
            return pick("message", &buffer);
        }
        if done || read > STREAM_CAP {
            return None;
        }
    }
}
