//! Local sources: a directory's marker files (or a single script) → project type and run
//! command. magg passes the directory's file names and marker file texts.
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
//! - Env vars named by the README's `mcpServers` snippet are listed in the notes.

use serde_json::Value;

use crate::{
    Facts, Suggestion, chosen_name, command_line, config, env_note, join_notes, percent_decode,
    readme, stem, strip_prefix_ignore_case, toml::Toml,
};

/// What is known about a local directory.
struct Dir<'a> {
    facts: &'a Facts,
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

/// The suggestion for a local path, when it exists and a rule knows it.
pub fn suggest(facts: &Facts) -> Option<Suggestion> {
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
    let readme = dir.text("README.md").unwrap_or_default();
    let env = readme::env_names(readme);
    config.notes = join_notes(
        plan.notes
            .clone()
            .into_iter()
            .chain(env_note(&env))
            .collect(),
    );
    for hint in readme::shell_commands(readme) {
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
    if !env.is_empty() {
        lines.push(format!("Required env: {}", env.join(", ")));
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

fn single_file(facts: &Facts, path: &str, name: String) -> Option<Suggestion> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{cmd, dir_facts};

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
}
