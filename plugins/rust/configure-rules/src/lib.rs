//! The rules that turn a source into a runnable MCP server config: what
//! `magg_smart_configure` answers, whether magg's bundled `smart-configure` plugin runs them
//! (a thin wrapper over this crate) or magg itself (with the plugin turned off). Plain Rust on
//! plain structs, with no I/O: the caller collects the [`Facts`] (a local directory's marker
//! files, and what the package registries, the GitHub API and the endpoint itself said, under
//! the reserved names of [`names`]) and [`suggest`] reads them.
//!
//! **Sources** ([`classify`]):
//!
//! - npm: a package page (`https://www.npmjs.com/package/<name>`, scoped names too) or a bare
//!   package name (`@scope/name`, `name`) → `npx -y <name>` (`npx -y --package <name> <bin>`
//!   when it has several bins and none has its name). With the registry's document: its description,
//!   version and bins, and the README's `mcpServers` snippet for the package (its arguments).
//! - PyPI (`https://pypi.org/project/<name>/`) → `uvx <name>`, or `uvx --from <name> <script>`
//!   when the README's snippet or the project's `pyproject.toml` (read from its GitHub
//!   repository) names a console script of another name.
//! - GitHub (`https://github.com/<owner>/<repo>[/tree/<ref>/<dir>]`), with the repository's
//!   metadata, README and manifests: a `server.json` (the MCP registry's) → its package; else
//!   the README's `mcpServers` snippet → its command and arguments; else a `package.json` with
//!   a `bin` → `npx -y github:<owner>/<repo>`; else a `pyproject.toml` with
//!   `[project.scripts]` → `uvx --from git+https://github.com/<owner>/<repo> <script>`; else no
//!   command, and notes saying to clone it and configure the checkout.
//! - An OCI image (`docker://…`, `ghcr.io/…`, `docker.io/…`, any `registry.host/…`, an
//!   `image:tag` reference, or a Docker Hub page) → `docker run -i --rm <image>`.
//! - A remote MCP endpoint (any other http(s) URL, except the pages of package registries and
//!   code forges): its server card (`/.well-known/mcp/server-card.json`, SEP-2127) for name,
//!   description, remotes and required headers and env; the probe (an `initialize` POST, then a
//!   legacy SSE GET) for the transport → `uri` (see [`transport`]). Without a probe, a URL
//!   with a port, on a loopback host, or whose path ends in `/mcp` or `/sse` still gets `uri`.
//! - A local directory (or file) that exists: marker files, see [`local`].
//!
//! Env vars a server needs (from the README's snippets, `server.json`, the server card) are
//! named in `notes` with how to set them; their values are never copied or invented.
//!
//! The name is the requested one, else derived from the source like Magg (the stem of its last
//! path part: `server-time` for `.../@scope/server-time`); the prefix is the name stripped of
//! everything but ASCII letters and digits (`s` in front of a leading digit, `server` if
//! nothing is left). `facts` lines follow Magg's metadata summary (`Project type:
//! node_project`, `Setup commands: npm install, node index.js`, `GitHub: <description>`).

pub mod endpoint;
pub mod local;
pub mod packages;
pub mod readme;
mod toml;

/// The reserved names, in [`Facts::contents`], of what was fetched about a remote source.
pub mod names {
    /// npm: the registry's manifest of the package's latest version (JSON).
    pub const NPM_PACKAGE: &str = "npm:package.json";
    /// npm: the package's README, from the registry's document.
    pub const NPM_README: &str = "npm:README.md";
    /// PyPI: the JSON API's `{"info": …}` of the project (its README is `info.description`).
    pub const PYPI_PROJECT: &str = "pypi:project.json";
    /// GitHub: the repository (`GET /repos/{owner}/{repo}`).
    pub const GITHUB_REPO: &str = "github:repo.json";
    /// GitHub: the README (of the folder, for a URL into a folder).
    pub const GITHUB_README: &str = "github:README.md";
    /// GitHub: `package.json` at the repository's (or folder's) top.
    pub const GITHUB_PACKAGE: &str = "github:package.json";
    /// GitHub: `pyproject.toml` at the repository's (or folder's) top; for a PyPI project, of
    /// the repository its metadata names.
    pub const GITHUB_PYPROJECT: &str = "github:pyproject.toml";
    /// GitHub: an MCP registry `server.json` at the repository's (or folder's) top.
    pub const GITHUB_SERVER: &str = "github:server.json";
    /// A remote endpoint's server card (SEP-2127), when its origin serves one.
    pub const MCP_CARD: &str = "mcp:server-card.json";
    /// What answered when the endpoint was probed (JSON, see [`crate::endpoint::Probe`]).
    pub const MCP_PROBE: &str = "mcp:probe";
}

/// What is known about a source (the WIT `source-facts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The source as the user gave it: a URL, a package name, an image or a local path.
    pub source: String,
    /// The server name the user asked for, if any.
    pub name: Option<String>,
    /// For a local source, its absolute path.
    pub path: Option<String>,
    /// Whether the local path exists.
    pub exists: bool,
    /// Whether the local path is a directory.
    pub is_directory: bool,
    /// The names of the files at the top of the directory.
    pub files: Vec<String>,
    /// Marker files' texts (by file name), and what was fetched (by a name of [`names`]).
    pub contents: Vec<(String, String)>,
}

impl Facts {
    /// The text stored under `name` in [`Facts::contents`].
    pub fn text(&self, name: &str) -> Option<&str> {
        self.contents
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text.as_str())
    }

    /// The JSON stored under `name`, if it parses.
    pub fn json(&self, name: &str) -> Option<serde_json::Value> {
        self.text(name).and_then(|t| serde_json::from_str(t).ok())
    }
}

/// A server config (the WIT `server-config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's name.
    pub name: String,
    /// Where it comes from.
    pub source: String,
    /// The prefix for its tools.
    pub prefix: Option<String>,
    /// The program to run, for a stdio server.
    pub command: Option<String>,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The URL of a remote server.
    pub uri: Option<String>,
    /// Environment variables for the process (never secrets: those are named in `notes`).
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub cwd: Option<String>,
    /// Setup steps and required env vars, for the user.
    pub notes: Option<String>,
}

/// A suggested config and what it rests on (the WIT `suggestion`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suggestion {
    /// The config.
    pub config: ServerConfig,
    /// The kind of project (`node_project`, `python_project`, ...), when known.
    pub project_type: Option<String>,
    /// What the suggestion rests on, one fact per line.
    pub facts: Vec<String>,
}

/// What kind of source a string names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A local path (or `file://` URL).
    Local,
    /// An npm package.
    Npm {
        /// Its name, `@scope/name` or `name`.
        package: String,
    },
    /// A PyPI project.
    Pypi {
        /// Its name, as written in the URL.
        package: String,
    },
    /// A GitHub repository, or a folder in one.
    GitHub {
        /// The owner.
        owner: String,
        /// The repository, without `.git`.
        repo: String,
        /// The branch, tag or commit of a `/tree/<ref>/…` URL.
        reference: Option<String>,
        /// The folder of a `/tree/<ref>/<dir>` URL.
        subdir: Option<String>,
    },
    /// An OCI (Docker) image.
    Oci {
        /// The image reference, as `docker run` takes it.
        image: String,
    },
    /// Any other http(s) URL: maybe an MCP endpoint.
    Endpoint {
        /// The URL.
        url: String,
    },
    /// A page of a package registry or code forge this crate has no rule for, or nothing
    /// recognisable.
    Other,
}

/// What kind of source `source` names, from its text alone (a local path wins when it exists:
/// see [`suggest`]).
pub fn classify(source: &str) -> Source {
    let source = source.trim();
    if let Some(url) = Url::parse(source) {
        return packages::classify_url(source, &url);
    }
    if let Some(image) = strip_prefix_ignore_case(source, "docker://") {
        return if packages::valid_image(image) {
            Source::Oci {
                image: image.to_owned(),
            }
        } else {
            Source::Other
        };
    }
    if source.contains("://") && !starts_with_ignore_case(source, "file://") {
        return Source::Other;
    }
    if starts_with_ignore_case(source, "file://")
        || source.starts_with(['/', '.', '~', '\\'])
        || source.as_bytes().get(1) == Some(&b':') && source.as_bytes().get(2) == Some(&b'\\')
    {
        return Source::Local;
    }
    if let Some(package) = packages::npm_name(source) {
        return Source::Npm { package };
    }
    if packages::looks_like_image(source) {
        return Source::Oci {
            image: source.to_owned(),
        };
    }
    Source::Local
}

/// The suggestion for `facts`, or none when no rule knows the source.
pub fn suggest(facts: &Facts) -> Option<Suggestion> {
    if facts.exists {
        return local::suggest(facts);
    }
    match classify(&facts.source) {
        Source::Local => local::suggest(facts),
        Source::Npm { package } => Some(packages::npm(facts, &package)),
        Source::Pypi { package } => Some(packages::pypi(facts, &package)),
        Source::GitHub {
            owner,
            repo,
            reference,
            subdir,
        } => Some(packages::github(
            facts,
            &owner,
            &repo,
            reference.as_deref(),
            subdir.as_deref(),
        )),
        Source::Oci { image } => Some(packages::oci(facts, &image)),
        Source::Endpoint { url } => endpoint::suggest(facts, &url),
        Source::Other => None,
    }
}

/// The transport of a config's `uri` as far as the facts tell: `"sse"` when the endpoint
/// answered (or its card lists it) as legacy SSE, `"http"` when it answered as streamable HTTP;
/// none when nothing says (magg then goes by the URL's path). For a config's
/// `transport.type`.
pub fn transport(facts: &Facts, uri: &str) -> Option<&'static str> {
    endpoint::transport_of(facts, uri)
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The parts of an http(s) URL the rules look at.
#[derive(Debug)]
pub(crate) struct Url<'a> {
    /// `http` or `https`, lowercased.
    pub(crate) scheme: &'static str,
    /// Lowercased host, without brackets for IPv6.
    pub(crate) host: String,
    pub(crate) port: Option<&'a str>,
    /// The path without query or fragment; at least `/`.
    pub(crate) path: &'a str,
}

impl<'a> Url<'a> {
    pub(crate) fn parse(s: &'a str) -> Option<Url<'a>> {
        let (scheme, rest) = match strip_prefix_ignore_case(s, "https://") {
            Some(rest) => ("https", rest),
            None => ("http", strip_prefix_ignore_case(s, "http://")?),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        Some(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    pub(crate) fn segments(&self) -> Vec<&'a str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    pub(crate) fn is_host(&self, domain: &str) -> bool {
        self.host == domain || self.host.strip_prefix("www.") == Some(domain)
    }
}

/// The origin (`scheme://host[:port]`) of an http(s) URL, where its server card is.
pub fn origin(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim())?;
    let host = if parsed.host.contains(':') {
        format!("[{}]", parsed.host)
    } else {
        parsed.host.clone()
    };
    Some(match parsed.port {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme),
        None => format!("{}://{host}", parsed.scheme),
    })
}

// ---------------------------------------------------------------------------------------------
// Names, configs and notes

pub(crate) fn chosen_name(facts: &Facts, derive: impl FnOnce() -> String) -> String {
    match facts.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            let name = derive();
            if name.is_empty() {
                "server".into()
            } else {
                name
            }
        }
    }
}

/// Like Python's `Path(s).stem`: the last path part without its last extension.
pub fn stem(s: &str) -> String {
    let last = s
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    match last.rfind('.') {
        Some(i) if i > 0 => last[..i].to_string(),
        _ => last.to_string(),
    }
}

/// magg's prefix rule: ASCII letters and digits only, not starting with a digit.
pub fn prefix_from_name(name: &str) -> String {
    let kept: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    match kept.chars().next() {
        None => "server".into(),
        Some(c) if c.is_ascii_digit() => format!("s{kept}"),
        Some(_) => kept,
    }
}

pub(crate) fn config(name: String, source: &str) -> ServerConfig {
    ServerConfig {
        prefix: Some(prefix_from_name(&name)),
        name,
        source: source.trim().to_string(),
        ..ServerConfig::default()
    }
}

/// A command line for display, quoting arguments that need it.
pub fn command_line(command: &str, args: &[String]) -> String {
    let mut line = command.to_string();
    for arg in args {
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            line.push('\'');
            line.push_str(&arg.replace('\'', "'\\''"));
            line.push('\'');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// The note naming env vars a server needs: by name only, never with a value.
pub(crate) fn env_note(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!(
            "Set {one} before starting: the server reads it from its environment (set it in \
             magg's environment, or in this server's `env`)."
        )),
        many => Some(format!(
            "Set {} before starting: the server reads them from its environment (set them in \
             magg's environment, or in this server's `env`).",
            many.join(", ")
        )),
    }
}

/// Joins notes into one text.
pub(crate) fn join_notes(notes: Vec<String>) -> Option<String> {
    let notes: Vec<String> = notes.into_iter().filter(|n| !n.is_empty()).collect();
    (!notes.is_empty()).then(|| notes.join(" "))
}

/// Adds `name` to `names` unless it is there already.
pub(crate) fn push_unique(names: &mut Vec<String>, name: &str) {
    if !name.is_empty() && !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// A name that can safely be a package, owner or repository name (and a command argument).
pub(crate) fn valid_package_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    strip_prefix_ignore_case(s, prefix).is_some()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn url_facts(source: &str, name: Option<&str>) -> Facts {
        Facts {
            source: source.into(),
            name: name.map(Into::into),
            ..Facts::default()
        }
    }

    pub(crate) fn with(mut facts: Facts, contents: &[(&str, &str)]) -> Facts {
        facts
            .contents
            .extend(contents.iter().map(|(n, t)| (n.to_string(), t.to_string())));
        facts
    }

    pub(crate) fn dir_facts(path: &str, files: &[&str], contents: &[(&str, &str)]) -> Facts {
        Facts {
            source: path.into(),
            name: None,
            path: Some(path.into()),
            exists: true,
            is_directory: true,
            files: files.iter().map(|f| f.to_string()).collect(),
            contents: contents
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .collect(),
        }
    }

    pub(crate) fn cmd(s: &Suggestion) -> String {
        command_line(
            s.config.command.as_deref().unwrap_or("<none>"),
            &s.config.args,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_classified() {
        let npm = |p: &str| Source::Npm { package: p.into() };
        let oci = |i: &str| Source::Oci { image: i.into() };
        assert_eq!(
            classify("@modelcontextprotocol/server-memory"),
            npm("@modelcontextprotocol/server-memory")
        );
        assert_eq!(classify("mcp-server-time"), npm("mcp-server-time"));
        assert_eq!(
            classify("ghcr.io/github/github-mcp-server"),
            oci("ghcr.io/github/github-mcp-server")
        );
        assert_eq!(classify("docker://mcp/time"), oci("mcp/time"));
        assert_eq!(classify("mcp/time:latest"), oci("mcp/time:latest"));
        assert_eq!(classify("localhost:5000/x/y"), oci("localhost:5000/x/y"));
        assert_eq!(
            classify("https://hub.docker.com/r/mcp/time"),
            oci("mcp/time")
        );
        assert_eq!(classify("./srv"), Source::Local);
        assert_eq!(classify("/srv/x"), Source::Local);
        assert_eq!(classify("file:///srv/x"), Source::Local);
        assert_eq!(classify("some/dir"), Source::Local);
        assert_eq!(classify("ftp://example.com/x"), Source::Other);
        assert_eq!(
            classify("https://pypi.org/project/mcp-server-time/"),
            Source::Pypi {
                package: "mcp-server-time".into()
            }
        );
        assert_eq!(
            classify("https://example.com/mcp"),
            Source::Endpoint {
                url: "https://example.com/mcp".into()
            }
        );
        assert_eq!(classify("https://gitlab.com/a/b"), Source::Other);
    }

    #[test]
    fn names() {
        assert_eq!(stem("/a/b/my.server.py"), "my.server");
        assert_eq!(stem("https://github.com/o/r/"), "r");
        assert_eq!(prefix_from_name("7-zip"), "s7zip");
        assert_eq!(prefix_from_name("--"), "server");
        assert_eq!(
            command_line("echo", &["a b".into(), "it's".into()]),
            "echo 'a b' 'it'\\''s'"
        );
        assert_eq!(
            origin("https://Mcp.Example.com/v1/mcp?x=1").as_deref(),
            Some("https://mcp.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/mcp").as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
