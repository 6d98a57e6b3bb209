//! Published sources: npm packages, PyPI projects, GitHub repositories and OCI images, each
//! with what its registry or the GitHub API said when the caller could ask (see
//! [`crate::names`]); without those facts, the rules still give the command the source's
//! kind implies.

use serde_json::Value;

use crate::{
    Facts, Source, Suggestion, Url, chosen_name, command_line, config, env_note, join_notes, names,
    percent_decode, push_unique,
    readme::{self, Entry},
    stem,
    toml::Toml,
    valid_package_name,
};

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
    "hub.docker.com",
];

/// The kind of an http(s) URL.
pub(crate) fn classify_url(source: &str, url: &Url) -> Source {
    let segments = url.segments();
    if url.is_host("npmjs.com") {
        return npm_page(url).map_or(Source::Other, |package| Source::Npm { package });
    }
    if url.is_host("pypi.org") {
        return match segments.as_slice() {
            ["project", package, ..] if valid_package_name(package) => Source::Pypi {
                package: package.to_string(),
            },
            _ => Source::Other,
        };
    }
    if url.is_host("github.com") {
        let [owner, repo, rest @ ..] = segments.as_slice() else {
            return Source::Other;
        };
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        if !valid_package_name(owner) || !valid_package_name(repo) {
            return Source::Other;
        }
        let (reference, subdir) = match rest {
            ["tree" | "blob", reference, sub @ ..] => (
                Some(reference.to_string()),
                (!sub.is_empty()).then(|| sub.join("/")),
            ),
            _ => (None, None),
        };
        return Source::GitHub {
            owner: owner.to_string(),
            repo: repo.to_string(),
            reference,
            subdir,
        };
    }
    if url.is_host("hub.docker.com") {
        let image = match segments.as_slice() {
            ["_", name, ..] => name.to_string(),
            ["r", owner, name, ..] => format!("{owner}/{name}"),
            _ => return Source::Other,
        };
        return if valid_image(&image) {
            Source::Oci { image }
        } else {
            Source::Other
        };
    }
    if NOT_MCP_HOSTS.iter().any(|h| url.is_host(h)) {
        return Source::Other;
    }
    Source::Endpoint {
        url: source.trim().to_owned(),
    }
}

/// The package name in an npm package page URL.
fn npm_page(url: &Url) -> Option<String> {
    let segments: Vec<String> = url.segments().iter().map(|s| percent_decode(s)).collect();
    let segments: Vec<&str> = segments.iter().flat_map(|s| s.split('/')).collect();
    let name = match segments.as_slice() {
        ["package", scope, name, ..] if scope.starts_with('@') => format!("{scope}/{name}"),
        ["package", name, ..] if !name.starts_with('@') => name.to_string(),
        _ => return None,
    };
    npm_name(&name)
}

/// `s` as an npm package name (`@scope/name` or `name`), if it is one.
pub(crate) fn npm_name(s: &str) -> Option<String> {
    let ok = |part: &str| valid_package_name(part) && part.bytes().all(|b| !b.is_ascii_uppercase());
    let valid = match s.split_once('/') {
        Some((scope, name)) => scope
            .strip_prefix('@')
            .is_some_and(|scope| ok(scope) && ok(name)),
        None => ok(s),
    };
    valid.then(|| s.to_owned())
}

/// Whether `s` is an OCI image reference magg can pass to `docker run`.
pub(crate) fn valid_image(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '/', '.', ':'])
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b':' | b'.' | b'-' | b'_' | b'@')
        })
}

/// Whether `s` (not a URL, not a path, not an npm name) reads as an image reference: a
/// registry host first (`ghcr.io/…`, `localhost:5000/…`), or a `:tag` / `@sha256:` suffix.
pub(crate) fn looks_like_image(s: &str) -> bool {
    if !valid_image(s) {
        return false;
    }
    let first = s.split('/').next().unwrap_or_default();
    let registry =
        s.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let last = s.rsplit('/').next().unwrap_or_default();
    let tagged = last
        .split_once(':')
        .is_some_and(|(name, tag)| !name.is_empty() && !tag.is_empty());
    registry || tagged || s.contains("@sha256:")
}

// ---------------------------------------------------------------------------------------------
// npm

/// `npx -y <package>`, refined by the registry's manifest and README.
pub(crate) fn npm(facts: &Facts, package: &str) -> Suggestion {
    let name = chosen_name(facts, || stem(package));
    let mut config = config(name, &facts.source);
    let manifest = facts.json(names::NPM_PACKAGE);
    let readme_text = facts
        .text(names::NPM_README)
        .map(str::to_owned)
        .or_else(|| {
            manifest
                .as_ref()
                .and_then(|m| m.get("readme")?.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    let mut lines = vec![format!("npm package: {package}")];
    if let Some(m) = &manifest {
        describe(&mut lines, m.get("description"), m.get("version"));
    }
    let mut notes = Vec::new();
    let snippet = readme::find(&readme_text, |e| {
        e.command.as_deref() == Some("npx") && e.mentions(package)
    });
    let bins: Vec<String> = match manifest.as_ref().and_then(|m| m.get("bin")) {
        Some(Value::Object(bins)) => bins.keys().cloned().collect(),
        Some(Value::String(_)) => vec![unscoped(package).to_owned()],
        _ => Vec::new(),
    };
    let args = match &snippet {
        Some(entry) => {
            let mut args = entry.args.clone();
            if !args.iter().any(|a| a == "-y" || a == "--yes") {
                args.insert(0, "-y".into());
            }
            args
        }
        // npx runs a package's only bin, or the one named like the package; of several
        // others, the one that says `mcp` (else the first) must be named.
        None if bins.len() > 1 && !bins.iter().any(|b| b == unscoped(package)) => {
            let bin = bins.iter().find(|b| b.contains("mcp")).unwrap_or(&bins[0]);
            vec!["-y".into(), "--package".into(), package.into(), bin.clone()]
        }
        None => vec!["-y".into(), package.into()],
    };
    if manifest.is_some() && bins.is_empty() && snippet.is_none() {
        notes.push(format!(
            "The package declares no `bin`, so `npx -y {package}` may not start a server; \
             check its README for the command."
        ));
    }
    if bins.len() > 1 {
        lines.push(format!("Commands: {}", bins.join(", ")));
    }
    config.command = Some("npx".into());
    config.args = args;
    let env = required_env(snippet.as_ref(), &readme_text);
    finish(&mut config, &mut lines, &mut notes, &env);
    Suggestion {
        config,
        project_type: Some("node_project".into()),
        facts: lines,
    }
}

fn unscoped(package: &str) -> &str {
    package.rsplit('/').next().unwrap_or(package)
}

// ---------------------------------------------------------------------------------------------
// PyPI

/// `uvx <package>` (`uvx --from <package> <script>` for a script of another name).
pub(crate) fn pypi(facts: &Facts, package: &str) -> Suggestion {
    let project = facts.json(names::PYPI_PROJECT);
    let info = project.as_ref().and_then(|p| p.get("info"));
    let package = info
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .filter(|n| valid_package_name(n))
        .unwrap_or(package)
        .to_owned();
    let mut config = config(chosen_name(facts, || package.clone()), &facts.source);
    let readme_text = info
        .and_then(|i| i.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut lines = vec![format!("PyPI package: {package}")];
    if let Some(info) = info {
        describe(&mut lines, info.get("summary"), info.get("version"));
    }
    let snippet = readme::find(&readme_text, |e| {
        e.command.as_deref() == Some("uvx") && e.mentions(&package)
    });
    let scripts = facts
        .text(names::GITHUB_PYPROJECT)
        .map(Toml::parse)
        .filter(|t| {
            t.get("project", "name")
                .is_some_and(|n| normalise(&n) == normalise(&package))
        })
        .map(|t| t.table("project.scripts"))
        .unwrap_or_default();
    let args = match (&snippet, scripts.as_slice()) {
        (Some(entry), _) => entry.args.clone(),
        (None, scripts) if !scripts.is_empty() => {
            let same = scripts
                .iter()
                .any(|(s, _)| normalise(s) == normalise(&package));
            if same {
                vec![package.clone()]
            } else {
                vec!["--from".into(), package.clone(), scripts[0].0.clone()]
            }
        }
        _ => vec![package.clone()],
    };
    config.command = Some("uvx".into());
    config.args = args;
    let env = required_env(snippet.as_ref(), &readme_text);
    let mut notes = Vec::new();
    finish(&mut config, &mut lines, &mut notes, &env);
    Suggestion {
        config,
        project_type: Some("python_project".into()),
        facts: lines,
    }
}

/// A Python package name compared the PyPI way (case, `-`, `_` and `.` alike).
fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

// ---------------------------------------------------------------------------------------------
// GitHub

/// A GitHub repository (or a folder in one): its `server.json`, README snippet or manifests.
pub(crate) fn github(
    facts: &Facts,
    owner: &str,
    repo: &str,
    reference: Option<&str>,
    subdir: Option<&str>,
) -> Suggestion {
    let derived = subdir.map_or_else(|| repo.to_string(), stem);
    let mut config = config(chosen_name(facts, || derived), &facts.source);
    let mut lines = Vec::new();
    if let Some(meta) = facts.json(names::GITHUB_REPO) {
        let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
        lines.push(format!(
            "GitHub: {}",
            text("description").unwrap_or_else(|| "No description".into())
        ));
        lines.push(format!(
            "Language: {}",
            text("language").unwrap_or_else(|| "Unknown".into())
        ));
        lines.push(format!(
            "Stars: {}",
            meta.get("stargazers_count")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        ));
    } else {
        lines.push(format!("GitHub: {owner}/{repo}"));
    }
    if let Some(sub) = subdir {
        lines.push(format!("Subfolder: {sub}"));
    }
    let readme_text = facts
        .text(names::GITHUB_README)
        .unwrap_or_default()
        .to_owned();
    if !readme::servers(&readme_text).is_empty() || !readme::shell_commands(&readme_text).is_empty()
    {
        lines.push("Setup hints found in README".into());
    }
    let mut notes = Vec::new();
    let mut env = Vec::new();
    let mut project_type = None;
    let git_url = format!("https://github.com/{owner}/{repo}");

    let from_server_json = facts
        .json(names::GITHUB_SERVER)
        .and_then(|s| server_json_package(&s));
    let snippet = readme::find(&readme_text, |e| {
        e.command.as_deref().is_some_and(|c| c != "docker") && e.url.is_none()
    })
    .or_else(|| readme::find(&readme_text, |e| e.command.is_some()));
    let package: Option<Value> = facts.json(names::GITHUB_PACKAGE);
    let pyproject = facts.text(names::GITHUB_PYPROJECT).map(Toml::parse);
    let scripts = pyproject
        .as_ref()
        .map(|t| t.table("project.scripts"))
        .unwrap_or_default();
    let node_bin = package.as_ref().is_some_and(|p| match p.get("bin") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        _ => false,
    });

    if let Some(package) = from_server_json {
        lines.push("Package from server.json".into());
        config.command = Some(package.command);
        config.args = package.args;
        env = package.env;
        project_type = package.project_type;
    } else if let Some(entry) = snippet {
        lines.push(format!("Command from the README's `{}` snippet", entry.key));
        config.command = entry.command.clone();
        config.args = entry.args.clone();
        project_type = match entry.command.as_deref() {
            Some("npx" | "node" | "npm" | "pnpm" | "bunx") => Some("node_project".into()),
            Some("uvx" | "uv" | "python" | "python3" | "pipx") => Some("python_project".into()),
            _ => None,
        };
        env = required_env(Some(&entry), &readme_text);
    } else if node_bin {
        let mut target = format!("github:{owner}/{repo}");
        if let Some(reference) = reference {
            target.push('#');
            target.push_str(reference);
        }
        config.command = Some("npx".into());
        config.args = vec!["-y".into(), target];
        project_type = Some("node_project".into());
        if subdir.is_some() {
            notes.push(
                "npx installs the repository's top-level package; the server is in a \
                 subfolder, so check that the top-level package is the server."
                    .into(),
            );
        }
        notes.push(
            "npx fetches the repository's head on each start; pin a commit with \
             `github:owner/repo#<commit>` for a fixed version."
                .into(),
        );
    } else if !scripts.is_empty() {
        let mut from = format!("git+{git_url}");
        if let Some(reference) = reference {
            from.push('@');
            from.push_str(reference);
        }
        if let Some(sub) = subdir {
            from.push_str("#subdirectory=");
            from.push_str(sub);
        }
        config.command = Some("uvx".into());
        config.args = vec!["--from".into(), from, scripts[0].0.clone()];
        project_type = Some("python_project".into());
    } else {
        let clone = format!("{git_url}.git");
        let mut note = format!("Clone it with `git clone {clone}`");
        if let Some(sub) = subdir {
            note.push_str(&format!(" (the server is in `{sub}`)"));
        }
        note.push_str(
            ", install its dependencies, then run magg_smart_configure on the local checkout to \
             get its start command: ",
        );
        note.push_str(if facts.text(names::GITHUB_REPO).is_some() {
            "neither its README nor its manifests say how the server starts."
        } else {
            "the repository could not be read, and the URL alone does not tell how the server \
             starts."
        });
        notes.push(note);
        lines.push(format!("Setup commands: git clone {clone}"));
    }
    if env.is_empty() {
        env = readme::env_names(&readme_text);
    }
    if let Some(command) = &config.command {
        lines.push(format!(
            "Setup commands: {}",
            command_line(command, &config.args)
        ));
    }
    placeholders(&config.args, &mut notes);
    if !env.is_empty() {
        lines.push(format!("Required env: {}", env.join(", ")));
    }
    config.notes = join_notes(notes.into_iter().chain(env_note(&env)).collect());
    Suggestion {
        config,
        project_type,
        facts: lines,
    }
}

/// How to run a package a `server.json` lists.
struct Package {
    command: String,
    args: Vec<String>,
    /// The env vars it marks as required.
    env: Vec<String>,
    project_type: Option<String>,
}

/// The command of the first package an MCP registry `server.json` lists, with its required
/// env vars and project type.
fn server_json_package(server: &Value) -> Option<Package> {
    let packages = server.get("packages")?.as_array()?;
    packages.iter().find_map(|p| {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        };
        let kind = text(&["registryType", "registry_type", "registry_name"])?;
        let id = text(&["identifier", "name"])?;
        let version = text(&["version"]).filter(|v| !v.is_empty() && v != "latest");
        let (command, args, project) = match kind.as_str() {
            "npm" => {
                let id = match &version {
                    Some(v) => format!("{id}@{v}"),
                    None => id,
                };
                ("npx", vec!["-y".to_owned(), id], Some("node_project"))
            }
            "pypi" => {
                let id = match &version {
                    Some(v) => format!("{id}=={v}"),
                    None => id,
                };
                ("uvx", vec![id], Some("python_project"))
            }
            "oci" | "docker" => {
                let image = match &version {
                    Some(v) if !id.contains(':') => format!("{id}:{v}"),
                    _ => id,
                };
                (
                    "docker",
                    vec!["run".into(), "-i".into(), "--rm".into(), image],
                    None,
                )
            }
            _ => return None,
        };
        let mut env = Vec::new();
        for var in p
            .get("environmentVariables")
            .or_else(|| p.get("environment_variables"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let required = var
                .get("isRequired")
                .or_else(|| var.get("is_required"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if let Some(name) = var.get("name").and_then(Value::as_str)
                && required
            {
                push_unique(&mut env, name);
            }
        }
        Some(Package {
            command: command.to_owned(),
            args,
            env,
            project_type: project.map(str::to_owned),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// OCI images

/// `docker run -i --rm <image>`.
pub(crate) fn oci(facts: &Facts, image: &str) -> Suggestion {
    let repository = image.split('@').next().unwrap_or(image);
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let base = last.split(':').next().unwrap_or(last).to_owned();
    let mut config = config(chosen_name(facts, || base), &facts.source);
    config.command = Some("docker".into());
    config.args = vec!["run".into(), "-i".into(), "--rm".into(), image.to_owned()];
    config.notes = Some(
        "Needs Docker. Env vars the server needs go to docker as `-e NAME` before the image (the \
         container sees only those)."
            .into(),
    );
    Suggestion {
        config,
        project_type: Some("oci_image".into()),
        facts: vec![
            format!("OCI image: {image}"),
            format!("Setup commands: docker pull {image}"),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Shared

/// Description and version lines.
fn describe(lines: &mut Vec<String>, description: Option<&Value>, version: Option<&Value>) {
    if let Some(d) = description
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        lines.push(format!("Description: {d}"));
    }
    if let Some(v) = version.and_then(Value::as_str) {
        lines.push(format!("Version: {v}"));
    }
}

/// The env vars of the chosen snippet, else all the README names.
fn required_env(snippet: Option<&Entry>, readme_text: &str) -> Vec<String> {
    match snippet {
        Some(entry) if !entry.env.is_empty() => entry.env.clone(),
        _ => readme::env_names(readme_text),
    }
}

/// Notes for placeholder arguments.
fn placeholders(args: &[String], notes: &mut Vec<String>) {
    let found: Vec<&str> = args
        .iter()
        .filter(|a| readme::is_placeholder(a))
        .map(String::as_str)
        .collect();
    if !found.is_empty() {
        notes.push(format!(
            "Replace the placeholder argument{} {} with your own value{}.",
            if found.len() > 1 { "s" } else { "" },
            found
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if found.len() > 1 { "s" } else { "" },
        ));
    }
}

/// The common tail of a package suggestion: setup line, placeholders, env.
fn finish(
    config: &mut crate::ServerConfig,
    lines: &mut Vec<String>,
    notes: &mut Vec<String>,
    env: &[String],
) {
    if let Some(command) = &config.command {
        lines.push(format!(
            "Setup commands: {}",
            command_line(command, &config.args)
        ));
    }
    placeholders(&config.args, notes);
    if !env.is_empty() {
        lines.push(format!("Required env: {}", env.join(", ")));
    }
    config.notes = join_notes(
        std::mem::take(notes)
            .into_iter()
            .chain(env_note(env))
            .collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        suggest,
        test_support::{cmd, url_facts, with},
    };

    #[test]
    fn npm_urls_and_names() {
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
        let s = suggest(&url_facts("@modelcontextprotocol/server-memory", None)).unwrap();
        assert_eq!(cmd(&s), "npx -y @modelcontextprotocol/server-memory");
        assert_eq!(s.config.name, "server-memory");
    }

    #[test]
    fn npm_registry_facts_refine_the_command() {
        let manifest = r#"{"name":"@acme/files","version":"2.1.0","description":"Files over MCP","bin":{"acme-files":"dist/x.js","acme-files-mcp":"dist/cli.js"}}"#;
        let readme = "```json\n{\"mcpServers\":{\"files\":{\"command\":\"npx\",\"args\":[\"-y\",\"@acme/files\",\"/path/to/dir\"],\"env\":{\"ACME_KEY\":\"sk-secret\"}}}}\n```";
        let s = suggest(&with(
            url_facts("@acme/files", None),
            &[(names::NPM_PACKAGE, manifest), (names::NPM_README, readme)],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npx -y @acme/files /path/to/dir");
        let notes = s.config.notes.unwrap();
        assert!(notes.contains("Set ACME_KEY before starting"), "{notes}");
        assert!(notes.contains("`/path/to/dir`"), "{notes}");
        assert!(!notes.contains("sk-secret"), "{notes}");
        assert!(s.config.env.is_empty());
        assert!(s.facts.contains(&"Description: Files over MCP".to_string()));
        // Without the snippet: of its bins named unlike the package, the MCP one.
        let s = suggest(&with(
            url_facts("@acme/files", None),
            &[(names::NPM_PACKAGE, manifest)],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "npx -y --package @acme/files acme-files-mcp");
        let s = suggest(&with(
            url_facts("left-pad", None),
            &[(
                names::NPM_PACKAGE,
                r#"{"name":"left-pad","version":"1.3.0"}"#,
            )],
        ))
        .unwrap();
        assert!(s.config.notes.unwrap().contains("declares no `bin`"));
    }

    #[test]
    fn pypi_projects() {
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
        let project = r#"{"info":{"name":"acme-weather","summary":"Weather","version":"0.3.0","description":"Set `WEATHER_API_KEY`.\n\n```bash\nexport WEATHER_API_KEY=...\n```\n"}}"#;
        let pyproject = "[project]\nname = \"acme_weather\"\n[project.scripts]\nweather-mcp = \"acme_weather:main\"\n";
        let s = suggest(&with(
            url_facts("https://pypi.org/project/acme-weather/", None),
            &[
                (names::PYPI_PROJECT, project),
                (names::GITHUB_PYPROJECT, pyproject),
            ],
        ))
        .unwrap();
        assert_eq!(cmd(&s), "uvx --from acme-weather weather-mcp");
        assert!(s.config.notes.unwrap().contains("WEATHER_API_KEY"));
    }

    #[test]
    fn github_repositories() {
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

        let gh = url_facts("https://github.com/acme/tools", None);
        let node = with(
            gh.clone(),
            &[(names::GITHUB_PACKAGE, r#"{"name":"tools","bin":"cli.js"}"#)],
        );
        assert_eq!(cmd(&suggest(&node).unwrap()), "npx -y github:acme/tools");
        let py = with(
            gh.clone(),
            &[(
                names::GITHUB_PYPROJECT,
                "[project]\nname='tools'\n[project.scripts]\nacme-tools = 'tools:main'\n",
            )],
        );
        assert_eq!(
            cmd(&suggest(&py).unwrap()),
            "uvx --from git+https://github.com/acme/tools acme-tools"
        );
        let server = r#"{"name":"io.github.acme/tools","packages":[{"registryType":"pypi","identifier":"acme-tools","version":"1.0.0","environmentVariables":[{"name":"ACME_TOKEN","isRequired":true,"isSecret":true},{"name":"ACME_DEBUG"}]}]}"#;
        let s = suggest(&with(py.clone(), &[(names::GITHUB_SERVER, server)])).unwrap();
        assert_eq!(cmd(&s), "uvx acme-tools==1.0.0");
        let notes = s.config.notes.unwrap();
        assert!(
            notes.contains("ACME_TOKEN") && !notes.contains("ACME_DEBUG"),
            "{notes}"
        );
        let readme = "```json\n{\"mcpServers\":{\"github\":{\"command\":\"docker\",\"args\":[\"run\",\"-i\",\"--rm\",\"-e\",\"GITHUB_PERSONAL_ACCESS_TOKEN\",\"ghcr.io/github/github-mcp-server\"],\"env\":{\"GITHUB_PERSONAL_ACCESS_TOKEN\":\"<YOUR_TOKEN>\"}}}}\n```";
        let s = suggest(&with(gh, &[(names::GITHUB_README, readme)])).unwrap();
        assert_eq!(
            cmd(&s),
            "docker run -i --rm -e GITHUB_PERSONAL_ACCESS_TOKEN ghcr.io/github/github-mcp-server"
        );
        let notes = s.config.notes.unwrap();
        assert!(
            notes.contains("Set GITHUB_PERSONAL_ACCESS_TOKEN"),
            "{notes}"
        );
        assert!(!notes.contains("YOUR_TOKEN"), "{notes}");
    }

    #[test]
    fn oci_images() {
        let s = suggest(&url_facts("ghcr.io/github/github-mcp-server:v1", None)).unwrap();
        assert_eq!(
            cmd(&s),
            "docker run -i --rm ghcr.io/github/github-mcp-server:v1"
        );
        assert_eq!(s.config.name, "github-mcp-server");
        let s = suggest(&url_facts("docker://mcp/time", None)).unwrap();
        assert_eq!(cmd(&s), "docker run -i --rm mcp/time");
        assert_eq!(s.config.name, "time");
    }
}
