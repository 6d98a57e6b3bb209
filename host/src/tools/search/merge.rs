//! The merge of `magg_search_servers`: the results of every search provider become one list
//! of servers, each found once, best first.
//!
//! - **Same server.** Two results of different providers are one server when they name the
//!   same package (`npm:time-mcp`), or the same repository while their packages (if both name
//!   any) agree. Packages and repositories come from the providers' facet tags
//!   (`package:<registry>:<id>`, `repository:<url>`, see `magg_plugin_sdk::facets`), from a
//!   result's `install` config (`npx -y ID`, `uvx ID`, `docker run ... IMAGE`) and from a `url`
//!   that is a GitHub, GitLab, Codeberg or Bitbucket repository; they are compared normalized
//!   (`git+https://github.com/A/B.git` is `github.com/a/b`). Results of one provider are never
//!   merged with each other: the provider already told them apart.
//! - **Richest first.** The fields of a merged server come from its richest result (a ready
//!   config, a URL, a description, an install command), the gaps filled from the others;
//!   `sources` lists every source that found it, `tags` all their labels. Its `config` is
//!   `magg_add_server`'s arguments (`command` the whole command line); a server with none gets
//!   a `next_step` naming the source to give `magg_smart_configure`.
//! - **Rank.** How well the name matches the query (the whole name, all its words, some of
//!   them; then the description), a ready config, the weight of the best source that found it
//!   (MCP Registry 3, Glama 2.5, GitHub 1.5, npm 1; Magg's order) and one more per other source,
//!   stars, and a penalty for `deprecated` or `archived` that puts them below the rest. Ties keep the providers' own order.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::{
    plugins::{PluginServerConfig, SearchResult},
    tools::manage::{CommandForm, add_server_args},
};

/// One result of one provider, with what it says about its identity.
#[derive(Debug)]
pub(crate) struct Found {
    /// The provider's plugin name.
    plugin: String,
    /// Its position in the provider's answer.
    position: usize,
    result: SearchResult,
    /// Its repository, normalized (`github.com/a/b`), and as given.
    repository: Option<(String, String)>,
    /// Its packages, normalized (`npm:@a/b`).
    packages: Vec<String>,
    stars: Option<u64>,
    /// Its tags less the facet tags.
    labels: Vec<String>,
}

impl Found {
    /// Reads the facts of `result`, found by `plugin` at `position` of its answer.
    pub(crate) fn new(plugin: &str, position: usize, result: SearchResult) -> Found {
        let mut repository = None;
        let mut packages = Vec::new();
        let mut stars = None;
        let mut labels = Vec::new();
        for tag in &result.tags {
            if let Some(url) = tag.strip_prefix("repository:") {
                if repository.is_none() {
                    repository = repository_key(url).map(|key| (key, url.trim().to_owned()));
                }
            } else if let Some(rest) = tag.strip_prefix("package:") {
                if let Some((registry, id)) = rest.split_once(':')
                    && let Some(key) = package_key(registry, id)
                {
                    push_new(&mut packages, key);
                }
            } else if let Some(n) = tag.strip_prefix("stars:") {
                stars = n.trim().parse().ok().max(stars);
            } else {
                push_new(&mut labels, tag.clone());
            }
        }
        if let Some(key) = result.install.as_ref().and_then(config_package) {
            push_new(&mut packages, key);
        }
        if repository.is_none()
            && let Some(url) = &result.url
            && is_code_host(url)
        {
            repository = repository_key(url).map(|key| (key, url.clone()));
        }
        Found {
            plugin: plugin.to_owned(),
            position,
            result,
            repository,
            packages,
            stars,
            labels,
        }
    }

    /// How much this result says: a ready config counts most.
    fn richness(&self) -> u32 {
        let r = &self.result;
        4 * u32::from(r.install.is_some())
            + u32::from(r.url.is_some())
            + u32::from(!r.description.trim().is_empty())
            + u32::from(r.install_command.is_some())
            + u32::from(self.repository.is_some())
    }
}

/// Several results that name one server.
struct Server {
    /// Richest first.
    members: Vec<Found>,
}

impl Server {
    fn accepts(&self, found: &Found) -> bool {
        if self.members.iter().any(|m| m.plugin == found.plugin) {
            return false;
        }
        let packages: HashSet<&str> = self
            .members
            .iter()
            .flat_map(|m| m.packages.iter().map(String::as_str))
            .collect();
        if found.packages.iter().any(|p| packages.contains(p.as_str())) {
            return true;
        }
        let same_repository = found.repository.as_ref().is_some_and(|(key, _)| {
            self.members
                .iter()
                .any(|m| m.repository.as_ref().is_some_and(|(k, _)| k == key))
        });
        same_repository && (packages.is_empty() || found.packages.is_empty())
    }

    fn best(&self) -> &Found {
        &self.members[0]
    }

    fn score(&self, terms: &[String]) -> f64 {
        let best = self.best();
        let mut score = 0.0;

        let mut name_score: f64 = 0.0;
        for m in &self.members {
            name_score = name_score.max(name_match(&m.result.name, terms));
        }
        score += name_score;
        let described = self
            .members
            .iter()
            .map(|m| share_of(terms, &words(&m.result.description)))
            .fold(0.0, f64::max);
        score += 2.0 * described;

        if best.result.install.is_some() {
            score += 4.0;
        }
        let weights: Vec<f64> = self
            .members
            .iter()
            .map(|m| source_weight(&m.result.source))
            .collect();
        score += weights.iter().copied().fold(0.0, f64::max);
        score += (self.sources().len().saturating_sub(1)) as f64;
        if let Some(stars) = self.stars() {
            score += 0.8 * ((stars as f64) + 1.0).log10().min(5.0);
        }
        if self
            .labels()
            .iter()
            .any(|l| l == "deprecated" || l == "archived")
        {
            score -= 10.0;
        }
        score
    }

    fn position(&self) -> usize {
        self.members.iter().map(|m| m.position).min().unwrap_or(0)
    }

    fn sources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.members {
            if !out.contains(&m.result.source.as_str()) {
                out.push(&m.result.source);
            }
        }
        out
    }

    fn stars(&self) -> Option<u64> {
        self.members.iter().filter_map(|m| m.stars).max()
    }

    fn labels(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.members {
            for l in &m.labels {
                push_new(&mut out, l.clone());
            }
        }
        out
    }

    fn to_json(&self) -> Value {
        let best = self.best();
        let first = |f: &dyn Fn(&Found) -> Option<String>| self.members.iter().find_map(f);
        let mut item = Map::new();
        item.insert("name".into(), json!(best.result.name));
        item.insert("source".into(), json!(best.result.source));
        item.insert("sources".into(), json!(self.sources()));
        let description =
            first(&|m| Some(m.result.description.trim().to_owned()).filter(|d| !d.is_empty()));
        item.insert("description".into(), json!(description.unwrap_or_default()));
        let url = first(&|m| m.result.url.clone());
        if let Some(url) = &url {
            item.insert("url".into(), json!(url));
        }
        let repository = first(&|m| m.repository.as_ref().map(|(_, given)| given.clone()));
        if let Some(repository) = &repository {
            item.insert("repository".into(), json!(repository));
        }
        let mut packages = Vec::new();
        for m in &self.members {
            for p in &m.packages {
                push_new(&mut packages, p.clone());
            }
        }
        if !packages.is_empty() {
            item.insert("packages".into(), json!(packages));
        }
        if let Some(stars) = self.stars() {
            item.insert("stars".into(), json!(stars));
        }
        if let Some(cmd) = first(&|m| m.result.install_command.clone()) {
            item.insert("install_command".into(), json!(cmd));
        }
        let labels = self.labels();
        if !labels.is_empty() {
            item.insert("tags".into(), json!(labels));
        }
        match self.members.iter().find_map(|m| m.result.install.as_ref()) {
            Some(config) => {
                item.insert("config".into(), add_server_args(config, CommandForm::Line));
            }
            None => {
                if let Some(source) = repository.as_ref().or(url.as_ref()) {
                    item.insert(
                        "next_step".into(),
                        json!(format!(
                            "No source says how to run it: call magg_smart_configure with \
                             source \"{}\" for a config.",
                            clean_url(source)
                        )),
                    );
                }
            }
        }
        Value::Object(item)
    }
}

/// Merges every provider's results, ranks them for `query` and keeps the best `limit`;
/// returns them with the number of distinct servers found.
pub(crate) fn merge(query: &str, found: Vec<Found>, limit: usize) -> (Vec<Value>, usize) {
    let mut found = found;
    // Richest first, so each server's first member is its best; then the better source, then
    // the providers' own order.
    found.sort_by(|a, b| {
        b.richness()
            .cmp(&a.richness())
            .then_with(|| {
                source_weight(&b.result.source).total_cmp(&source_weight(&a.result.source))
            })
            .then_with(|| a.position.cmp(&b.position))
    });
    let mut servers: Vec<Server> = Vec::new();
    for f in found {
        match servers.iter_mut().find(|s| s.accepts(&f)) {
            Some(server) => server.members.push(f),
            None => servers.push(Server { members: vec![f] }),
        }
    }
    let terms = words(query);
    let mut ranked: Vec<(f64, Server)> =
        servers.into_iter().map(|s| (s.score(&terms), s)).collect();
    ranked.sort_by(|(sa, a), (sb, b)| {
        sb.total_cmp(sa)
            .then_with(|| a.position().cmp(&b.position()))
            .then_with(|| a.best().result.name.cmp(&b.best().result.name))
    });
    let total = ranked.len();
    let results = ranked
        .iter()
        .take(limit)
        .map(|(_, server)| server.to_json())
        .collect();
    (results, total)
}

fn push_new(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The weight of a source in the ranking (Magg's order).
fn source_weight(source: &str) -> f64 {
    match source {
        "mcp-registry" => 3.0,
        "glama" => 2.5,
        "github" => 1.5,
        "npm" => 1.0,
        _ => 0.5,
    }
}

/// Words that say nothing about what a server does.
const FILLER: &[&str] = &[
    "mcp",
    "server",
    "model",
    "context",
    "protocol",
    "modelcontextprotocol",
];

/// The lower-case words of `text`, filler words left out.
fn words(text: &str) -> Vec<String> {
    let all: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let meaningful: Vec<String> = all
        .iter()
        .filter(|w| !FILLER.contains(&w.as_str()))
        .cloned()
        .collect();
    if meaningful.is_empty() {
        all
    } else {
        meaningful
    }
}

/// The share of `terms` found among `words`.
fn share_of(terms: &[String], words: &[String]) -> f64 {
    if terms.is_empty() {
        return 0.0;
    }
    let hits = terms.iter().filter(|t| words.contains(t)).count();
    hits as f64 / terms.len() as f64
}

/// How well a result's name matches the query's words: 10 when its last part (after `/`)
/// is the query, filler words aside; 6 when it holds every word; less for some.
fn name_match(name: &str, terms: &[String]) -> f64 {
    if terms.is_empty() {
        return 0.0;
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    let short_words = words(short);
    if short_words == terms {
        return 10.0;
    }
    let share = share_of(terms, &words(name));
    if share >= 1.0 { 6.0 } else { 3.0 * share }
}

/// The package a config runs: `npx -y ID`, `uvx ID`, `docker run ... IMAGE`.
fn config_package(config: &PluginServerConfig) -> Option<String> {
    let command = config.command.as_deref()?;
    let program = command.rsplit(['/', '\\']).next().unwrap_or(command);
    let mut args = config.args.iter().map(String::as_str);
    match program {
        "npx" => package_key("npm", args.find(|a| !a.starts_with('-'))?),
        "uvx" => package_key("pypi", args.find(|a| !a.starts_with('-'))?),
        "docker" | "podman" => {
            args.find(|a| *a == "run")?;
            // Options of `docker run` that take a value.
            const VALUED: &[&str] = &[
                "-e",
                "--env",
                "--env-file",
                "-v",
                "--volume",
                "-p",
                "--publish",
                "--name",
                "--network",
                "-w",
                "--workdir",
                "--mount",
                "--entrypoint",
                "-u",
                "--user",
                "--platform",
                "-l",
                "--label",
            ];
            while let Some(arg) = args.next() {
                if VALUED.contains(&arg) {
                    args.next();
                } else if !arg.starts_with('-') {
                    return package_key("oci", arg);
                }
            }
            None
        }
        _ => None,
    }
}

/// A package id as magg compares it: `npm:@a/b` (no version), `pypi:a-b` (PEP 503 name),
/// `oci:a/b` (no registry `docker.io`, no tag or digest).
fn package_key(registry: &str, id: &str) -> Option<String> {
    let registry = registry.trim().to_ascii_lowercase();
    let id = id.trim().to_lowercase();
    if id.is_empty() {
        return None;
    }
    let id = match registry.as_str() {
        "npm" => match id[1..].find('@') {
            Some(at) => id[..at + 1].to_owned(),
            None => id,
        },
        "pypi" => {
            let name = id
                .split(['=', '<', '>', '~', '!', '[', ' '])
                .next()
                .unwrap_or_default();
            name.replace(['_', '.'], "-")
        }
        "oci" => {
            let id = id.split('@').next().unwrap_or_default();
            let id = id
                .strip_prefix("docker.io/")
                .or_else(|| id.strip_prefix("index.docker.io/"))
                .unwrap_or(id);
            let id = id.strip_prefix("library/").unwrap_or(id);
            match id.rfind(':') {
                Some(colon) if !id[colon..].contains('/') => id[..colon].to_owned(),
                _ => id.to_owned(),
            }
        }
        _ => id,
    };
    (!id.is_empty()).then(|| format!("{registry}:{id}"))
}

/// Hosts whose URLs name a repository as `host/owner/name`.
const CODE_HOSTS: &[&str] = &["github.com", "gitlab.com", "codeberg.org", "bitbucket.org"];

fn is_code_host(url: &str) -> bool {
    repository_key(url)
        .is_some_and(|key| CODE_HOSTS.iter().any(|h| key.starts_with(&format!("{h}/"))))
}

/// A URL without `git+`, `.git` or a trailing `/`.
fn clean_url(url: &str) -> String {
    let url = url.trim();
    let url = url.strip_prefix("git+").unwrap_or(url);
    let url = url.trim_end_matches('/');
    url.strip_suffix(".git").unwrap_or(url).to_owned()
}

/// A repository URL as magg compares it: host and path in lower case, no scheme, `www.`,
/// `git+`, `.git`, query or fragment; on a code host, `owner/name` and a `tree/<ref>/<dir>`
/// subfolder's path without the ref.
fn repository_key(url: &str) -> Option<String> {
    let url = clean_url(url).to_lowercase();
    let url = url.split(['#', '?']).next().unwrap_or_default();
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        // git@github.com:owner/name
        None => url
            .strip_prefix("git@")
            .map(|r| r.replacen(':', "/", 1))
            .unwrap_or_else(|| url.to_owned()),
    };
    let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let mut parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let host = *parts.first()?;
    if CODE_HOSTS.contains(&host) {
        if parts.len() < 3 {
            return None;
        }
        let mut key = parts[..3].to_vec();
        // github.com/o/n/tree/<ref>/dir... (GitLab: /-/tree/<ref>/...)
        let tail: Vec<&str> = parts.drain(3..).collect();
        let tail = match tail.first() {
            Some(&"-") => &tail[1..],
            _ => &tail[..],
        };
        if tail.len() > 2 && (tail[0] == "tree" || tail[0] == "blob") {
            key.extend_from_slice(&tail[2..]);
        }
        return Some(key.join("/"));
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(source: &str, name: &str, tags: &[&str]) -> SearchResult {
        SearchResult {
            name: name.into(),
            description: String::new(),
            source: source.into(),
            url: None,
            install_command: None,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            install: None,
        }
    }

    fn npx(id: &str) -> PluginServerConfig {
        PluginServerConfig {
            name: id.into(),
            source: id.into(),
            prefix: None,
            command: Some("npx".into()),
            args: vec!["-y".into(), id.into()],
            uri: None,
            env: Vec::new(),
            cwd: None,
            notes: None,
        }
    }

    #[test]
    fn repositories_and_packages_normalize() {
        for url in [
            "git+https://github.com/A/B.git",
            "https://www.github.com/a/b/",
            "git@github.com:a/b.git",
            "http://github.com/a/b#readme",
        ] {
            assert_eq!(
                repository_key(url).as_deref(),
                Some("github.com/a/b"),
                "{url}"
            );
        }
        assert_eq!(
            repository_key("https://github.com/a/b/tree/HEAD/src/time").as_deref(),
            Some("github.com/a/b/src/time")
        );
        assert_eq!(repository_key("https://github.com/a"), None);
        assert!(is_code_host("https://gitlab.com/g/p"));
        assert!(!is_code_host("https://www.npmjs.com/package/x"));
        assert_eq!(
            package_key("npm", "@A/b@1.2.3").as_deref(),
            Some("npm:@a/b")
        );
        assert_eq!(
            package_key("npm", "time-mcp").as_deref(),
            Some("npm:time-mcp")
        );
        assert_eq!(
            package_key("PyPI", "Mcp_Server.Time==1").as_deref(),
            Some("pypi:mcp-server-time")
        );
        assert_eq!(
            package_key("oci", "docker.io/a/b:1.2").as_deref(),
            Some("oci:a/b")
        );
        assert_eq!(
            package_key("oci", "ghcr.io:443/a/b@sha256:00").as_deref(),
            Some("oci:ghcr.io:443/a/b")
        );
        let mut docker = npx("x");
        docker.command = Some("docker".into());
        docker.args = [
            "run",
            "-i",
            "--rm",
            "-e",
            "TOKEN",
            "ghcr.io/e/d:3",
            "--flag",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(config_package(&docker).as_deref(), Some("oci:ghcr.io/e/d"));
    }

    #[test]
    fn merges_across_sources_only() {
        let mut registry = result(
            "mcp-registry",
            "io.github.a/time-mcp",
            &["npm", "package:npm:time-mcp"],
        );
        registry.install = Some(npx("time-mcp"));
        registry.url = Some("https://github.com/a/time-mcp".into());
        let mut npm = result(
            "npm",
            "time-mcp",
            &["time", "repository:git+https://github.com/a/time-mcp.git"],
        );
        npm.install = Some(npx("time-mcp@1.0.0"));
        let mut github = result("github", "a/time-mcp", &["mcp-server", "stars:42"]);
        github.url = Some("https://github.com/a/time-mcp".into());
        // Same repository as the npm result, but from one provider: kept apart.
        let other_npm = result(
            "npm",
            "time-mcp-cli",
            &["repository:https://github.com/a/time-mcp"],
        );
        let found = vec![
            Found::new("npm-search", 0, npm),
            Found::new("npm-search", 1, other_npm),
            Found::new("github-search", 0, github),
            Found::new("mcp-registry", 0, registry),
        ];
        let (results, total) = merge("time", found, 10);
        assert_eq!(total, 2, "{results:?}");
        let top = &results[0];
        assert_eq!(top["source"], json!("mcp-registry"));
        assert_eq!(top["sources"], json!(["mcp-registry", "npm", "github"]));
        assert_eq!(top["stars"], json!(42));
        assert_eq!(top["packages"], json!(["npm:time-mcp"]));
        assert_eq!(top["repository"], json!("https://github.com/a/time-mcp"));
        assert_eq!(top["tags"], json!(["npm", "time", "mcp-server"]));
        assert_eq!(top["config"]["command"], json!("npx -y time-mcp"));
        assert_eq!(results[1]["name"], json!("time-mcp-cli"));
        assert!(
            results[1]["next_step"]
                .as_str()
                .is_some_and(|s| s.contains("\"https://github.com/a/time-mcp\"")),
            "{}",
            results[1]
        );
    }

    #[test]
    fn monorepo_servers_stay_apart() {
        let a = result(
            "npm",
            "@m/server-time",
            &[
                "package:npm:@m/server-time",
                "repository:https://github.com/m/servers",
            ],
        );
        let b = result(
            "mcp-registry",
            "m/fetch",
            &[
                "package:npm:@m/server-fetch",
                "repository:https://github.com/m/servers",
            ],
        );
        let (_, total) = merge(
            "time",
            vec![
                Found::new("npm-search", 0, a),
                Found::new("mcp-registry", 0, b),
            ],
            10,
        );
        assert_eq!(total, 2);
    }

    #[test]
    fn ranks_name_matches_configs_and_stars() {
        let mut exact = result("npm", "@x/server-weather", &[]);
        exact.install = Some(npx("@x/server-weather"));
        let partial = result("mcp-registry", "io.github.y/weather-and-maps", &[]);
        let unrelated = result("github", "z/other", &["stars:100000"]);
        let mut deprecated = result("mcp-registry", "io.github.d/weather", &["deprecated"]);
        deprecated.install = Some(npx("weather-old"));
        let found = vec![
            Found::new("github-search", 0, unrelated),
            Found::new("mcp-registry", 0, partial),
            Found::new("mcp-registry", 1, deprecated),
            Found::new("npm-search", 0, exact),
        ];
        let (results, total) = merge("weather", found, 3);
        assert_eq!(total, 4);
        let names: Vec<&str> = results.iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "@x/server-weather",
                "io.github.y/weather-and-maps",
                "io.github.d/weather"
            ]
        );
    }

    #[test]
    fn words_leave_filler_out() {
        assert_eq!(words("mcp-server-time"), ["time"]);
        assert_eq!(words("MCP server"), ["mcp", "server"]);
        assert_eq!(name_match("io.github.a/time-mcp", &words("time")), 10.0);
        assert_eq!(name_match("a/world-time", &words("time")), 6.0);
        assert_eq!(name_match("a/clock", &words("time")), 0.0);
    }
}
