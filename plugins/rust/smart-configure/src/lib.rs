//! `smart-configure`: suggests a server config for a source from marker files and well-known
//! URLs, after Magg's `smart_configure` rules (world `configure-plugin`). It has no settings.
//!
//! **Local sources** (a path or `file://` URL that exists; magg passes the directory's file
//! names and marker file texts):
//!
//! - The project type comes from marker files with Magg's priority: `package.json` →
//!   `node_project`; `pyproject.toml`, `requirements.txt`, `Pipfile`, `poetry.lock`, `setup.py` →
//!   `python_project`; `go.mod` → `go_project`; `Cargo.toml` → `rust_project`; `pom.xml`,
//!   `build.gradle(.kts)` → `java_project`; `Makefile` → `make_project`. `cwd` is the path.
//! - node: `node <bin>` when package.json has a `bin` (the local entry point: `npx <name>` would
//!   look the name up on the npm registry rather than run this checkout), else `node <main>`,
//!   else `node index.js`, else `npm --silent start` (silent, so npm's banner stays off stdout).
//! - python: with `[project.scripts]` in pyproject.toml, `uv run <script>` (Magg's
//!   `python -m <entry point>` cannot run a `module:function` entry point, and `uv run` also
//!   installs the project); else `main.py`, `server.py` or `__main__.py` run with `uv run` (when
//!   there is a pyproject.toml) or `python`; else Magg's fallback `python -m <module>`.
//! - go: `go run .`; rust: `cargo run --release`; java: `gradle -q run` (or `./gradlew`) when
//!   build.gradle applies the `application` plugin, `mvn -q exec:java` when pom.xml uses the exec
//!   plugin; make: `make -s run` when the Makefile has a `run` target. Otherwise the config has
//!   no command and its notes say what to do.
//! - A single `.py` or `.js`/`.mjs`/`.cjs` file runs with `python` or `node` in its directory.
//!
//! **URLs**:
//!
//! - npm (`https://www.npmjs.com/package/<name>`, scoped names too) → `npx -y <name>`.
//! - PyPI (`https://pypi.org/project/<name>/`) → `uvx <name>`.
//! - GitHub (`https://github.com/<owner>/<repo>`) → a config with the source set, no command and
//!   notes saying to clone it and configure the checkout. From a URL alone the plugin cannot tell
//!   the language or entry point, so it does not guess `npx github:<owner>/<repo>`: that only
//!   works for a Node package with a `bin` that needs no build step, and it would fetch and run
//!   the repository's unpinned head on every start.
//! - An MCP HTTP endpoint (a URL with a port, on localhost or a loopback address, or whose path
//!   ends in `/mcp` or `/sse`; never on the package and code hosts above) → `uri`.
//!
//! The name is the requested one, else derived from the source like Magg (the stem of its last
//! path part: `server-time` for `.../@scope/server-time`); the prefix is the name stripped of
//! everything but ASCII letters and digits (`s` in front of a leading digit, `server` if
//! nothing is left). `facts` lines follow Magg's metadata summary (`Project type: node_project`,
//! `Setup commands: npm install, node index.js`). Sources it does not recognise get none.

use magg_plugin_sdk::{Configure, ServerConfig, SourceFacts, Suggestion};
use serde_json::Value;

struct SmartConfigure;

impl Configure for SmartConfigure {
    fn suggest(facts: SourceFacts) -> Option<Suggestion> {
        suggest(&facts)
    }
}

magg_plugin_sdk::export_configure!(SmartConfigure);

fn suggest(facts: &SourceFacts) -> Option<Suggestion> {
    let source = facts.source.trim();
    if let Some(url) = Url::parse(source) {
        return suggest_url(facts, &url);
    }
    if source.contains("://") && !starts_with_ignore_case(source, "file://") {
        return None;
    }
    suggest_local(facts)
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The parts of an http(s) URL the rules look at.
#[derive(Debug)]
struct Url<'a> {
    /// Lowercased host, without brackets for IPv6.
    host: String,
    port: Option<&'a str>,
    /// The path without query or fragment; at least `/`.
    path: &'a str,
}

impl<'a> Url<'a> {
    fn parse(s: &'a str) -> Option<Url<'a>> {
        let rest = strip_prefix_ignore_case(s, "https://")
            .or_else(|| strip_prefix_ignore_case(s, "http://"))?;
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
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    fn segments(&self) -> Vec<&'a str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    fn is_host(&self, domain: &str) -> bool {
        self.host == domain || self.host.strip_prefix("www.") == Some(domain)
    }
}

/// Hosts of package registries and code forges: their URLs are pages, not MCP endpoints.
const NOT_MCP_HOSTS: &[&str] = &[
    "npmjs.com",
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "pypi.org",
    "crates.io",
    "packagist.org",
    "nuget.org",
];

fn suggest_url(facts: &SourceFacts, url: &Url) -> Option<Suggestion> {
    if url.is_host("npmjs.com") {
        return npm_package(url).map(|package| {
            let name = chosen_name(facts, || stem(&package));
            let mut config = config(name, &facts.source);
            config.command = Some("npx".into());
            config.args = vec!["-y".into(), package.clone()];
            Suggestion {
                config,
                project_type: Some("node_project".into()),
                facts: vec![
                    format!("npm package: {package}"),
                    format!("Setup commands: npx -y {package}"),
                ],
            }
        });
    }
    if url.is_host("pypi.org") {
        let segments = url.segments();
        let [first, package, ..] = segments.as_slice() else {
            return None;
        };
        if *first != "project" || !valid_package_name(package) {
            return None;
        }
        let package = package.to_string();
        let mut config = config(chosen_name(facts, || package.clone()), &facts.source);
        config.command = Some("uvx".into());
        config.args = vec![package.clone()];
        return Some(Suggestion {
            config,
            project_type: Some("python_project".into()),
            facts: vec![
                format!("PyPI package: {package}"),
                format!("Setup commands: uvx {package}"),
            ],
        });
    }
    if url.is_host("github.com") {
        let segments = url.segments();
        let [owner, repo, rest @ ..] = segments.as_slice() else {
            return None;
        };
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        if !valid_package_name(owner) || !valid_package_name(repo) {
            return None;
        }
        let subfolder = match rest {
            ["tree", _branch, sub @ ..] if !sub.is_empty() => Some(sub.join("/")),
            _ => None,
        };
        let clone = format!("https://github.com/{owner}/{repo}.git");
        let mut notes = format!("Clone it with `git clone {clone}`");
        if let Some(sub) = &subfolder {
            notes.push_str(&format!(" (the server is in `{sub}`)"));
        }
        notes.push_str(
            ", install its dependencies, then run magg_smart_configure on the local checkout to get its \
             start command: the URL alone does not tell how the server starts.",
        );
        let derived = subfolder.as_deref().map_or_else(|| repo.to_string(), stem);
        let mut config = config(chosen_name(facts, || derived), &facts.source);
        config.notes = Some(notes);
        let mut lines = vec![format!("GitHub: {owner}/{repo}")];
        if let Some(sub) = subfolder {
            lines.push(format!("Subfolder: {sub}"));
        }
        lines.push(format!("Setup commands: git clone {clone}"));
        return Some(Suggestion {
            config,
            project_type: None,
            facts: lines,
        });
    }
    if NOT_MCP_HOSTS.iter().any(|h| url.is_host(h)) {
        return None;
    }
    let path = url.path.trim_end_matches('/');
    let loopback = url.host == "localhost"
        || url.host.ends_with(".localhost")
        || url.host.starts_with("127.")
        || url.host == "::1"
        || url.host == "0.0.0.0";
    let sse = path.ends_with("/sse");
    if !(url.port.is_some() || loopback || sse || path.ends_with("/mcp")) {
        return None;
    }
    let mut config = config(chosen_name(facts, || host_name(&url.host)), &facts.source);
    config.uri = Some(facts.source.trim().to_string());
    let transport = if sse { "SSE" } else { "streamable HTTP" };
    Some(Suggestion {
        config,
        project_type: None,
        facts: vec![
            "Direct MCP server URL (not checked)".into(),
            format!("Transport: {transport}"),
        ],
    })
}

/// The package name in an npm package page URL.
fn npm_package(url: &Url) -> Option<String> {
    let segments: Vec<String> = url.segments().iter().map(|s| percent_decode(s)).collect();
    let segments: Vec<&str> = segments.iter().flat_map(|s| s.split('/')).collect();
    let name = match segments.as_slice() {
        ["package", scope, name, ..] if scope.starts_with('@') => format!("{scope}/{name}"),
        ["package", name, ..] if !name.starts_with('@') => name.to_string(),
        _ => return None,
    };
    let ok = name
        .split('/')
        .all(|part| valid_package_name(part.strip_prefix('@').unwrap_or(part)));
    ok.then_some(name)
}

/// A name that can safely be a package, owner or repository name (and a command argument).
fn valid_package_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
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

// ---------------------------------------------------------------------------------------------
// Local sources

/// What is known about a local directory.
struct Dir<'a> {
    facts: &'a SourceFacts,
    path: String,
}

impl Dir<'_> {
    fn has(&self, file: &str) -> bool {
        self.facts.files.iter().any(|f| f == file)
    }

    fn text(&self, file: &str) -> Option<&str> {
        self.facts
            .contents
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, text)| text.as_str())
    }
}

fn suggest_local(facts: &SourceFacts) -> Option<Suggestion> {
    if !facts.exists {
        return None;
    }
    let source = facts.source.trim();
    let path = facts.path.clone().unwrap_or_else(|| {
        let p = strip_prefix_ignore_case(source, "file://").unwrap_or(source);
        percent_decode(p)
    });
    let name = chosen_name(facts, || stem(&path));
    if !facts.is_directory {
        return single_file(facts, &path, name);
    }
    let dir = Dir { facts, path };

    const MARKERS: &[(&str, &str)] = &[
        ("package.json", "node_project"),
        ("pyproject.toml", "python_project"),
        ("requirements.txt", "python_project"),
        ("Pipfile", "python_project"),
        ("poetry.lock", "python_project"),
        ("setup.py", "python_project"),
        ("go.mod", "go_project"),
        ("Cargo.toml", "rust_project"),
        ("pom.xml", "java_project"),
        ("build.gradle", "java_project"),
        ("build.gradle.kts", "java_project"),
        ("Makefile", "make_project"),
        ("makefile", "make_project"),
    ];
    let found = MARKERS
        .iter()
        .filter(|(file, _)| dir.has(file))
        .map(|(_, kind)| *kind);
    const PRIORITY: &[&str] = &[
        "node_project",
        "python_project",
        "go_project",
        "rust_project",
        "java_project",
        "make_project",
    ];
    let found: Vec<&str> = found.collect();
    let project_type = PRIORITY.iter().find(|p| found.contains(p)).copied();

    let plan = match project_type {
        Some("node_project") => node(&dir),
        Some("python_project") => python(&dir, &name),
        Some("go_project") => Plan::run("go", &["run", "."], &["go mod tidy"]),
        Some("rust_project") => {
            Plan::run("cargo", &["run", "--release"], &["cargo build --release"])
        }
        Some("java_project") => java(&dir),
        Some("make_project") => make(&dir),
        _ => {
            // No marker file: a bare entry point still tells the language.
            if ["main.py", "server.py", "__main__.py"]
                .iter()
                .any(|f| dir.has(f))
            {
                python(&dir, &name)
            } else if ["index.js", "server.js"].iter().any(|f| dir.has(f)) {
                node(&dir)
            } else {
                return None;
            }
        }
    };
    let project_type = project_type
        .map(str::to_string)
        .or_else(|| plan.kind.map(str::to_string));

    let mut config = config(name, source);
    config.cwd = Some(dir.path.clone());
    let mut setup = plan.setup.clone();
    if let Some((command, args)) = &plan.command {
        config.command = Some(command.clone());
        config.args = args.clone();
        setup.push(command_line(command, args));
    }
    config.notes = plan.notes.clone();
    for hint in readme_commands(&dir) {
        if !setup.contains(&hint) {
            setup.push(hint);
        }
    }

    let mut lines = vec![format!(
        "Project type: {}",
        project_type.as_deref().unwrap_or("unknown")
    )];
    if !setup.is_empty() {
        lines.push(format!("Setup commands: {}", setup.join(", ")));
    }
    if !plan.mcp_dependencies.is_empty() {
        lines.push(format!(
            "MCP dependencies: {}",
            plan.mcp_dependencies.join(", ")
        ));
    }
    if dir.text("README.md").is_some() || dir.has("README.md") {
        lines.push("README found".into());
    }
    Some(Suggestion {
        config,
        project_type,
        facts: lines,
    })
}

/// How to run a local project.
#[derive(Default)]
struct Plan {
    command: Option<(String, Vec<String>)>,
    /// Steps before the first start.
    setup: Vec<String>,
    notes: Option<String>,
    mcp_dependencies: Vec<String>,
    /// The project type, when no marker file said it.
    kind: Option<&'static str>,
}

impl Plan {
    fn run(command: &str, args: &[&str], setup: &[&str]) -> Plan {
        Plan {
            command: Some((command.into(), args.iter().map(|a| a.to_string()).collect())),
            setup: setup.iter().map(|s| s.to_string()).collect(),
            ..Plan::default()
        }
    }
}

fn node(dir: &Dir) -> Plan {
    let package: Value = dir
        .text("package.json")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let field = |key: &str| {
        package
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let scripts = package.get("scripts").and_then(Value::as_object);
    let bin = match package.get("bin") {
        Some(Value::String(bin)) if !bin.is_empty() => Some(bin.clone()),
        Some(Value::Object(bins)) => {
            let own = field("name").map(|n| n.rsplit('/').next().unwrap_or(n).to_string());
            own.and_then(|own| bins.get(&own))
                .or_else(|| bins.values().next())
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        _ => None,
    };
    let entry = bin
        .or_else(|| field("main").map(str::to_string))
        .or_else(|| {
            let has_start = scripts.is_some_and(|s| s.contains_key("start"));
            (dir.has("index.js") || !has_start).then(|| "index.js".to_string())
        });

    let mut plan = Plan {
        kind: Some("node_project"),
        setup: vec!["npm install".into()],
        ..Plan::default()
    };
    let has_build = scripts.is_some_and(|s| s.contains_key("build"));
    if has_build {
        plan.setup.push("npm run build".into());
    }
    plan.command = Some(match entry {
        Some(entry) => ("node".into(), vec![entry]),
        None => ("npm".into(), vec!["--silent".into(), "start".into()]),
    });
    plan.notes = Some(format!(
        "Run `npm install`{} in {} before the first start.",
        if has_build {
            " and `npm run build`"
        } else {
            ""
        },
        dir.path
    ));
    for key in ["dependencies", "devDependencies"] {
        if let Some(deps) = package.get(key).and_then(Value::as_object) {
            plan.mcp_dependencies
                .extend(deps.keys().filter(|d| is_mcp_dependency(d)).cloned());
        }
    }
    plan
}

fn python(dir: &Dir, name: &str) -> Plan {
    let pyproject = dir.text("pyproject.toml").map(Toml::parse);
    let has_pyproject = dir.has("pyproject.toml") || pyproject.is_some();
    let mut plan = Plan {
        kind: Some("python_project"),
        ..Plan::default()
    };
    if dir.has("requirements.txt") {
        plan.setup.push("pip install -r requirements.txt".into());
    }
    if has_pyproject {
        plan.setup.push("uv sync".into());
    }

    let script = pyproject
        .as_ref()
        .and_then(|t| t.table("project.scripts").into_iter().next());
    let entry = ["main.py", "server.py", "__main__.py"]
        .into_iter()
        .find(|f| dir.has(f));
    plan.command = Some(match (script, entry) {
        (Some((script, _)), _) => ("uv".into(), vec!["run".into(), script]),
        (None, Some(file)) => {
            let file = if file == "__main__.py" { "." } else { file };
            if has_pyproject {
                (
                    "uv".into(),
                    vec!["run".into(), "python".into(), file.into()],
                )
            } else {
                ("python".into(), vec![file.into()])
            }
        }
        (None, None) => {
            let project = pyproject.as_ref().and_then(|t| t.get("project", "name"));
            let module = project.as_deref().unwrap_or(name).replace(['-', '.'], "_");
            let module = if has_pyproject {
                vec!["run".into(), "python".into(), "-m".into(), module]
            } else {
                vec!["-m".into(), module]
            };
            (if has_pyproject { "uv" } else { "python" }.into(), module)
        }
    });
    if !has_pyproject && dir.has("requirements.txt") {
        plan.notes = Some(format!(
            "Install the dependencies first (`pip install -r requirements.txt` in {}), in the \
             Python that runs the server.",
            dir.path
        ));
    }

    let mut deps = Vec::new();
    if let Some(text) = dir.text("requirements.txt") {
        deps.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty() && !l.starts_with('-'))
                .map(requirement_name),
        );
    }
    if let Some(toml) = &pyproject {
        deps.extend(
            toml.array("project", "dependencies")
                .iter()
                .map(|d| requirement_name(d)),
        );
    }
    for dep in deps {
        if is_mcp_dependency(&dep) && !plan.mcp_dependencies.contains(&dep) {
            plan.mcp_dependencies.push(dep);
        }
    }
    plan
}

fn java(dir: &Dir) -> Plan {
    let gradle = dir
        .text("build.gradle")
        .or_else(|| dir.text("build.gradle.kts"));
    let gradle_program = if dir.has("gradlew") {
        "./gradlew"
    } else {
        "gradle"
    };
    if gradle.is_some_and(|t| t.contains("application")) {
        return Plan::run(
            gradle_program,
            &["-q", "run"],
            &[&format!("{gradle_program} build")],
        );
    }
    if dir
        .text("pom.xml")
        .is_some_and(|t| t.contains("exec-maven-plugin"))
    {
        return Plan::run("mvn", &["-q", "exec:java"], &["mvn -q package"]);
    }
    let build = if dir.has("pom.xml") {
        "mvn package".to_string()
    } else {
        format!("{gradle_program} build")
    };
    Plan {
        setup: vec![build],
        notes: Some(
            "Build the project, then set the command to start the server \
             (e.g. `java -jar <the built jar>`)."
                .into(),
        ),
        ..Plan::default()
    }
}

fn make(dir: &Dir) -> Plan {
    let makefile = dir.text("Makefile").or_else(|| dir.text("makefile"));
    let has_run = makefile.is_some_and(|t| {
        t.lines()
            .any(|l| l.starts_with("run:") || l.starts_with("run "))
    });
    if has_run {
        return Plan::run("make", &["-s", "run"], &["make", "make install"]);
    }
    Plan {
        setup: vec!["make".into(), "make install".into()],
        notes: Some(
            "The Makefile has no `run` target; set the command that starts the server.".into(),
        ),
        ..Plan::default()
    }
}

fn single_file(facts: &SourceFacts, path: &str, name: String) -> Option<Suggestion> {
    let lower = path.to_ascii_lowercase();
    let (program, kind) = if lower.ends_with(".py") {
        ("python", "python_project")
    } else if [".js", ".mjs", ".cjs"].iter().any(|e| lower.ends_with(e)) {
        ("node", "node_project")
    } else {
        return None;
    };
    let (parent, file) = match path.rfind(['/', '\\']) {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (".", path),
    };
    let mut config = config(name, facts.source.trim());
    config.command = Some(program.into());
    config.args = vec![file.into()];
    config.cwd = Some(parent.into());
    Some(Suggestion {
        config,
        project_type: Some(kind.into()),
        facts: vec![
            format!("Project type: {kind}"),
            format!("Setup commands: {program} {file}"),
        ],
    })
}

/// Shell commands from fenced shell blocks in the README (at most 5), like Magg's README hints.
fn readme_commands(dir: &Dir) -> Vec<String> {
    let Some(readme) = dir.text("README.md") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut in_shell = false;
    let mut in_fence = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            if in_fence {
                in_fence = false;
                in_shell = false;
            } else {
                in_fence = true;
                in_shell = matches!(lang.trim(), "bash" | "sh" | "shell" | "console" | "zsh");
            }
            continue;
        }
        if !in_shell {
            continue;
        }
        let command = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        let first = command.split_whitespace().next().unwrap_or_default();
        let relevant = matches!(
            first,
            "npm"
                | "npx"
                | "pnpm"
                | "yarn"
                | "pip"
                | "pip3"
                | "uv"
                | "uvx"
                | "python"
                | "python3"
                | "node"
                | "go"
                | "cargo"
                | "make"
        );
        if relevant && command.len() < 200 && !out.iter().any(|c| c == command) {
            out.push(command.to_string());
            if out.len() == 5 {
                break;
            }
        }
    }
    out
}

/// Whether a dependency looks like an MCP library (Magg: its name contains `mcp`).
fn is_mcp_dependency(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("mcp") || name.contains("modelcontextprotocol")
}

/// The package name of a requirement like `mcp[cli]>=1.2`.
fn requirement_name(requirement: &str) -> String {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    requirement[..end].to_string()
}

/// Just enough TOML for pyproject.toml: string values and arrays of strings, by table.
struct Toml {
    /// (table, key, value) with the value's raw text (an array may span lines).
    entries: Vec<(String, String, String)>,
}

impl Toml {
    fn parse(text: &str) -> Toml {
        let mut entries: Vec<(String, String, String)> = Vec::new();
        let mut table = String::new();
        let mut open_array: Option<usize> = None;
        for line in text.lines() {
            let line = strip_toml_comment(line);
            let trimmed = line.trim();
            if let Some(i) = open_array {
                entries[i].2.push(' ');
                entries[i].2.push_str(trimmed);
                if unquoted(trimmed).contains(']') {
                    open_array = None;
                }
                continue;
            }
            if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
                table = trimmed
                    .trim_matches(['[', ']'])
                    .trim()
                    .replace([' ', '"', '\''], "");
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                continue;
            };
            let key = key.trim().trim_matches(['"', '\'']).to_string();
            let value = value.trim().to_string();
            if value.starts_with('[') && !unquoted(&value).contains(']') {
                open_array = Some(entries.len());
            }
            entries.push((table.clone(), key, value));
        }
        Toml { entries }
    }

    /// The string value of `key` in `table`.
    fn get(&self, table: &str, key: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|(t, k, _)| t == table && k == key)
            .and_then(|(_, _, v)| unquote(v))
    }

    /// The strings of the array `key` in `table`.
    fn array(&self, table: &str, key: &str) -> Vec<String> {
        let Some((_, _, raw)) = self.entries.iter().find(|(t, k, _)| t == table && k == key) else {
            return Vec::new();
        };
        let mut strings = Vec::new();
        let mut current: Option<(char, String)> = None;
        for c in raw.chars() {
            match &mut current {
                None if c == '"' || c == '\'' => current = Some((c, String::new())),
                None => {}
                Some((q, s)) if c == *q => {
                    strings.push(std::mem::take(s));
                    current = None;
                }
                Some((_, s)) => s.push(c),
            }
        }
        strings
    }

    /// The string entries of `table`, in order.
    fn table(&self, table: &str) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|(t, _, _)| t == table)
            .filter_map(|(_, k, v)| Some((k.clone(), unquote(v)?)))
            .collect()
    }
}

fn strip_toml_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

/// `line` without its quoted strings.
fn unquoted(line: &str) -> String {
    let mut quote: Option<char> = None;
    let mut out = String::new();
    for c in line.chars() {
        match quote {
            None if c == '"' || c == '\'' => quote = Some(c),
            None => out.push(c),
            Some(q) if c == q => quote = None,
            Some(_) => {}
        }
    }
    out
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(s[1..s.len() - 1].to_string());
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Names and configs

fn chosen_name(facts: &SourceFacts, derive: impl FnOnce() -> String) -> String {
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
fn stem(s: &str) -> String {
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
fn prefix_from_name(name: &str) -> String {
    let kept: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    match kept.chars().next() {
        None => "server".into(),
        Some(c) if c.is_ascii_digit() => format!("s{kept}"),
        Some(_) => kept,
    }
}

fn config(name: String, source: &str) -> ServerConfig {
    ServerConfig {
        prefix: Some(prefix_from_name(&name)),
        name,
        source: source.trim().to_string(),
        command: None,
        args: Vec::new(),
        uri: None,
        env: Vec::new(),
        cwd: None,
        notes: None,
    }
}

/// A command line for display, quoting arguments that need it.
fn command_line(command: &str, args: &[String]) -> String {
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

fn percent_decode(s: &str) -> String {
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

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    strip_prefix_ignore_case(s, prefix).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_facts(source: &str, name: Option<&str>) -> SourceFacts {
        SourceFacts {
            source: source.into(),
            name: name.map(Into::into),
            path: None,
            exists: false,
            is_directory: false,
            files: vec![],
            contents: vec![],
        }
    }

    fn dir_facts(path: &str, files: &[&str], contents: &[(&str, &str)]) -> SourceFacts {
        SourceFacts {
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

    fn cmd(s: &Suggestion) -> String {
        command_line(
            s.config.command.as_deref().unwrap_or("<none>"),
            &s.config.args,
        )
    }

    #[test]
    fn npm_urls() {
        let s = suggest(&url_facts(
            "https://www.npmjs.com/package/@modelcontextprotocol/server-time",
            None,
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npx -y @modelcontextprotocol/server-time");
        assert_eq!(s.config.name, "server-time");
        assert_eq!(s.config.prefix.as_deref(), Some("servertime"));
        let s = suggest(&url_facts(
            "https://npmjs.com/package/%40scope%2Fpkg/v/1.0.0",
            Some("mine"),
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npx -y @scope/pkg");
        assert_eq!(s.config.name, "mine");
        let s = suggest(&url_facts(
            "https://www.npmjs.com/package/mcp-time?activeTab=readme",
            None,
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npx -y mcp-time");
        assert!(suggest(&url_facts("https://www.npmjs.com/search?q=mcp", None)).is_none());
    }

    #[test]
    fn pypi_and_github_urls() {
        let s = suggest(&url_facts(
            "https://pypi.org/project/mcp-server-time/",
            None,
        ))
        .unwrap();
        assert_eq!(cmd(&s), "uvx mcp-server-time");
        assert_eq!(
            (s.config.name.as_str(), s.config.prefix.as_deref()),
            ("mcp-server-time", Some("mcpservertime"))
        );
        let s = suggest(&url_facts("https://github.com/owner/my-server.git", None)).unwrap();
        assert_eq!(s.config.command, None);
        assert_eq!(s.config.name, "my-server");
        assert!(
            s.config
                .notes
                .as_deref()
                .unwrap()
                .contains("git clone https://github.com/owner/my-server.git")
        );
        let s = suggest(&url_facts(
            "https://github.com/modelcontextprotocol/servers/tree/main/src/time",
            None,
        ))
        .unwrap();
        assert_eq!(s.config.name, "time");
        assert!(s.facts.contains(&"Subfolder: src/time".to_string()));
        assert!(suggest(&url_facts("https://github.com/owner", None)).is_none());
    }

    #[test]
    fn endpoint_urls() {
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
    fn node_projects() {
        let pkg = r#"{"name": "@me/time-server", "main": "dist/index.js", "bin": {"time-server": "./dist/cli.js"},
            "scripts": {"build": "tsc", "start": "node dist/index.js"}, "dependencies": {"@modelcontextprotocol/sdk": "^1"}}"#;
        let s = suggest(&dir_facts(
            "/home/u/time-server",
            &["package.json", "README.md", "pyproject.toml"],
            &[("package.json", pkg)],
        ))
        .unwrap();
        assert_eq!(s.project_type.as_deref(), Some("node_project"));
        assert_eq!(cmd(&s), "node ./dist/cli.js");
        assert_eq!(s.config.cwd.as_deref(), Some("/home/u/time-server"));
        assert_eq!(s.config.name, "time-server");
        assert_eq!(s.facts[0], "Project type: node_project");
        assert_eq!(
            s.facts[1],
            "Setup commands: npm install, npm run build, node ./dist/cli.js"
        );
        assert_eq!(s.facts[2], "MCP dependencies: @modelcontextprotocol/sdk");
        let s = suggest(&dir_facts(
            "/p/x",
            &["package.json", "index.js"],
            &[("package.json", "{}")],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "node index.js");
        let s = suggest(&dir_facts(
            "/p/x",
            &["package.json"],
            &[("package.json", r#"{"scripts":{"start":"tsx src/a.ts"}}"#)],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npm --silent start");
    }

    #[test]
    fn python_projects() {
        let pyproject = "[project]\nname = \"mcp-time\" # comment\ndependencies = [\n  \"mcp[cli]>=1.2\",\n  \"httpx\",\n]\n\n[project.scripts]\nmcp-time = \"mcp_time.server:main\"\n";
        let s = suggest(&dir_facts(
            "/p/mcp-time",
            &["pyproject.toml", "requirements.txt"],
            &[
                ("pyproject.toml", pyproject),
                ("requirements.txt", "fastmcp==2.0 # x\nrequests\n"),
            ],
        ))
        .unwrap();
        assert_eq!(s.project_type.as_deref(), Some("python_project"));
        assert_eq!(cmd(&s), "uv run mcp-time");
        assert!(
            s.facts
                .contains(&"MCP dependencies: fastmcp, mcp".to_string()),
            "{:?}",
            s.facts
        );
        let s = suggest(&dir_facts(
            "/p/srv",
            &["requirements.txt", "server.py"],
            &[],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "python server.py");
        assert!(s.config.notes.is_some());
        let s = suggest(&dir_facts("/p/srv", &["pyproject.toml", "main.py"], &[])).unwrap();
        assert_eq!(cmd(&s), "uv run python main.py");
        let s = suggest(&dir_facts("/p/my-srv", &["setup.py"], &[])).unwrap();
        assert_eq!(cmd(&s), "python -m my_srv");
        let s = suggest(&dir_facts("/p/x", &["main.py"], &[])).unwrap();
        assert_eq!(
            (cmd(&s).as_str(), s.project_type.as_deref()),
            ("python main.py", Some("python_project"))
        );
    }

    #[test]
    fn other_projects() {
        let s = suggest(&dir_facts("/p/g", &["go.mod", "Makefile"], &[])).unwrap();
        assert_eq!(
            (cmd(&s).as_str(), s.project_type.as_deref()),
            ("go run .", Some("go_project"))
        );
        assert_eq!(s.facts[1], "Setup commands: go mod tidy, go run .");
        let s = suggest(&dir_facts("/p/r", &["Cargo.toml"], &[])).unwrap();
        assert_eq!(cmd(&s), "cargo run --release");
        let s = suggest(&dir_facts(
            "/p/m",
            &["Makefile"],
            &[("Makefile", "build:\n\tcc x.c\nrun: build\n\t./a.out\n")],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "make -s run");
        let s = suggest(&dir_facts(
            "/p/j",
            &["pom.xml"],
            &[("pom.xml", "<project/>")],
        ))
        .unwrap();
        assert_eq!(
            (s.config.command.as_deref(), s.project_type.as_deref()),
            (None, Some("java_project"))
        );
        assert!(suggest(&dir_facts("/p/empty", &["notes.txt"], &[])).is_none());
        let mut missing = dir_facts("/p/none", &["go.mod"], &[]);
        missing.exists = false;
        assert!(suggest(&missing).is_none());
    }

    #[test]
    fn files_and_readme() {
        let mut f = dir_facts("file:///srv/tools/time_server.py", &[], &[]);
        f.path = Some("/srv/tools/time_server.py".into());
        f.is_directory = false;
        let s = suggest(&f).unwrap();
        assert_eq!(
            (cmd(&s).as_str(), s.config.cwd.as_deref()),
            ("python time_server.py", Some("/srv/tools"))
        );
        assert_eq!(s.config.name, "time_server");
        assert_eq!(s.config.prefix.as_deref(), Some("timeserver"));
        let readme =
            "# X\n```bash\n$ npm install -g x\nls\nnpx x --help\n```\n```\nnpm run nope\n```\n";
        let s = suggest(&dir_facts(
            "/p/n",
            &["package.json", "README.md"],
            &[("README.md", readme)],
        ))
        .unwrap();
        assert_eq!(
            s.facts[1],
            "Setup commands: npm install, node index.js, npm install -g x, npx x --help"
        );
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
    }
}
