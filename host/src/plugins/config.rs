//! Per-plugin configuration: the top-level `plugins` object of magg's config file.
//!
//! ```json
//! "plugins": {
//!   "routing-rules": {
//!     "settings": {"rules": [{"tool": "*_delete*", "action": "deny", "reason": "read-only"}]},
//!     "timeout_ms": 200, "memory_mb": 32, "on_error": "closed"
//!   },
//!   "npm-search": {"allow_hosts": ["registry.npmjs.org"]},
//!   "describe-servers": {"enabled": false}
//! }
//! ```
//!
//! A plugin is named after its file (`routing-rules.wasm` → `routing-rules`). Everything is
//! optional; a plugin with no entry gets no settings and no network, and the defaults of its
//! kind. An entry that does not parse keeps that plugin from loading, with the reason in the
//! log and in `magg_status`.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

/// What happens when a plugin fails (traps, times out, runs out of memory, or returns
/// something magg cannot use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Carry on as if the plugin were not there (a filter's input passes through; a hook's
    /// call proceeds unchanged).
    Open,
    /// Refuse: a routing hook's call gets an error result naming the plugin; a filter hides
    /// every tool of the list it was given.
    Closed,
}

/// One plugin's entry under `plugins`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin's name (its file name without `.wasm`).
    #[serde(skip)]
    pub name: String,
    /// False to keep the plugin from loading. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Values the plugin reads with `host.setting(key)`.
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// Hosts a search provider may send HTTP requests to: `example.com`, `example.com:8080`
    /// or `*.example.com`. Default: none, or for a bundled plugin the host it needs.
    #[serde(default)]
    pub allow_hosts: Option<Vec<String>>,
    /// The most linear memory one call may use, in MiB. Default 128.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// The longest one call may run, in milliseconds. Defaults per kind: filter 2000,
    /// routing hook 1000, configure 2000, search 10000 (one
    /// search provider that takes longer is reported as timed out and the others' results are
    /// shown).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// What a failure does. Defaults: filters `open`, routing hooks `closed`.
    #[serde(default)]
    pub on_error: Option<FailurePolicy>,
    /// For a WebAssembly server (a tool provider), the server entry's grants stand here:
    /// `allow_hosts` is `grants.http`, and these are its directories (absolute) and its
    /// environment variables with magg's values of them. Never read from `plugins`.
    #[serde(skip)]
    pub server: Option<ServerGrants>,
}

/// What a WebAssembly server's entry grants beyond the hosts and limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerGrants {
    /// Directories it may open: (absolute path, whether it may write).
    pub dirs: Vec<(std::path::PathBuf, bool)>,
    /// Environment variables it may read: (name, value), for those magg has.
    pub env: Vec<(String, String)>,
}

fn yes() -> bool {
    true
}

/// The default memory limit per call.
pub const DEFAULT_MEMORY_MB: u64 = 128;

/// The largest memory limit a plugin may be given, in MiB (`memory_mb` is capped to it).
pub const MAX_MEMORY_MB: u64 = 4096;

impl PluginConfig {
    /// The entry used for a plugin the config does not mention.
    pub fn default_for(name: &str) -> PluginConfig {
        PluginConfig {
            name: name.to_owned(),
            enabled: true,
            ..PluginConfig::default()
        }
    }

    /// The memory limit, in bytes.
    pub fn memory_bytes(&self) -> usize {
        let mb = self
            .memory_mb
            .unwrap_or(DEFAULT_MEMORY_MB)
            .clamp(1, MAX_MEMORY_MB);
        (mb as usize) << 20
    }

    /// The time limit for one call, given the default of the plugin kind.
    pub fn timeout(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(default_ms).max(1))
    }

    /// The failure policy, given the default of the plugin kind.
    pub fn policy(&self, default: FailurePolicy) -> FailurePolicy {
        self.on_error.unwrap_or(default)
    }

    /// The setting `key` as a plugin reads it: strings as they are, other values as JSON.
    pub fn setting(&self, key: &str) -> Option<String> {
        match self.settings.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The config key that sets `field` (`allow_hosts`, `timeout_ms`, `memory_mb`) for this
    /// plugin: `plugins.<name>.<field>`, or `servers.<name>.grants.<field>` for a server
    /// (where `allow_hosts` is `http`).
    pub fn key(&self, field: &str) -> String {
        match &self.server {
            Some(_) => {
                let field = if field == "allow_hosts" {
                    "http"
                } else {
                    field
                };
                format!("servers.{}.grants.{field}", self.name)
            }
            None => format!("plugins.{}.{field}", self.name),
        }
    }

    /// The hosts granted (none when `allow_hosts` is unset).
    pub fn hosts(&self) -> &[String] {
        self.allow_hosts.as_deref().unwrap_or_default()
    }

    /// Whether HTTP requests to `host` (with `port`, when not the scheme's default) are granted.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts().iter().any(|grant| {
            let grant = grant.trim().to_ascii_lowercase();
            let (grant_host, grant_port) = match grant.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
                    (h.to_owned(), p.parse::<u16>().ok())
                }
                _ => (grant.clone(), None),
            };
            let port_ok = grant_port.is_none() || grant_port == port;
            let host_ok = match grant_host.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => grant_host == host,
            };
            port_ok && host_ok
        })
    }
}

/// Every plugin entry of a config, and the entries that did not parse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginConfigs {
    /// Entries by plugin name.
    pub entries: IndexMap<String, PluginConfig>,
    /// Entries that did not parse: plugin name → what is wrong.
    pub invalid: IndexMap<String, String>,
}

impl PluginConfigs {
    /// Reads the `plugins` value of a config file (absent means no entries).
    pub fn from_json(value: Option<&Value>) -> PluginConfigs {
        let mut out = PluginConfigs::default();
        let Some(value) = value else { return out };
        let Value::Object(map) = value else {
            out.invalid.insert(
                "*".to_owned(),
                "`plugins` must be an object of plugin name → settings".to_owned(),
            );
            return out;
        };
        for (name, entry) in map {
            match PluginConfig::deserialize(entry) {
                Ok(mut config) => {
                    config.name = name.clone();
                    out.entries.insert(name.clone(), config);
                }
                Err(e) => {
                    out.invalid
                        .insert(name.clone(), format!("config entry `plugins.{name}`: {e}"));
                }
            }
        }
        out
    }

    /// The entry for `name`, or the defaults; an error if its entry is invalid.
    pub fn get(&self, name: &str) -> Result<PluginConfig, String> {
        if let Some(problem) = self.invalid.get(name).or_else(|| self.invalid.get("*")) {
            return Err(problem.clone());
        }
        Ok(self
            .entries
            .get(name)
            .cloned()
            .unwrap_or_else(|| PluginConfig::default_for(name)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_parse_and_typos_are_named() {
        let configs = PluginConfigs::from_json(Some(&json!({
            "a": {"settings": {"x": 1, "s": "text"}, "timeout_ms": 5, "on_error": "open"},
            "b": {"timout_ms": 5},
        })));
        let a = configs.get("a").unwrap();
        assert_eq!(a.setting("x").as_deref(), Some("1"));
        assert_eq!(a.setting("s").as_deref(), Some("text"));
        assert_eq!(a.timeout(1000), Duration::from_millis(5));
        assert_eq!(a.policy(FailurePolicy::Closed), FailurePolicy::Open);
        let b = configs.get("b").unwrap_err();
        assert!(b.contains("plugins.b") && b.contains("timout_ms"), "{b}");
        let c = configs.get("c").unwrap();
        assert!(c.enabled && c.settings.is_empty() && c.hosts().is_empty());
    }

    #[test]
    fn host_grants_match_exactly_by_port_and_wildcard() {
        let mut c = PluginConfig::default_for("p");
        c.allow_hosts = Some(vec![
            "registry.npmjs.org".into(),
            "127.0.0.1:8080".into(),
            "*.example.com".into(),
        ]);
        assert!(c.allows_host("registry.npmjs.org", None));
        assert!(c.allows_host("REGISTRY.npmjs.org", Some(443)));
        assert!(!c.allows_host("evil.npmjs.org", None));
        assert!(c.allows_host("127.0.0.1", Some(8080)));
        assert!(!c.allows_host("127.0.0.1", Some(8081)));
        assert!(c.allows_host("api.example.com", None));
        assert!(!c.allows_host("example.com", None));
        assert!(!PluginConfig::default_for("q").allows_host("localhost", None));
    }
}
