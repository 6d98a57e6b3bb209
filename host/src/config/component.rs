//! Servers that are WebAssembly components: which file a server entry mounts, and the grants
//! its entry gives it.
//!
//! ```json
//! "fetch": {
//!   "source": "file:///opt/magg/fetch.wasm",
//!   "grants": {"http": ["example.com", "*.github.com:443"], "dirs": [{"path": "/data"}],
//!              "env": ["API_KEY"], "memory_mb": 64, "timeout_ms": 30000}
//! }
//! ```
//!
//! A server is a component when its entry has `wasm` (a path, relative to the config file's
//! directory), or when it has neither `command` nor `uri` and its `source` is a `file://` URL
//! or a path ending in `.wasm`. Grants deny by default: no network, no directories, no
//! environment variables.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a component server may use. Everything not listed is refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts it may send HTTP requests to: `example.com`, `example.com:8080` or
    /// `*.example.com` (the names `plugins.<name>.allow_hosts` takes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Directories it may open, each at its own path inside the component; read-only unless
    /// `write` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirGrant>,
    /// Environment variables it may read, by name; each has magg's value of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The most linear memory one call may use, in MiB. Default 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// The longest one call may run, in milliseconds. Default 30000 (and
    /// `backend_call_timeout` applies as for any server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// One directory granted to a component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory, relative to the config file's directory unless absolute. The component
    /// sees it at the same path.
    pub path: PathBuf,
    /// Whether the component may create, change and remove files in it. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub write: bool,
}

/// The component file of a server entry: `wasm` (relative to `base`), else a `source` that
/// names a local `.wasm` file or a `file://` URL, when the entry has neither `command` nor
/// `uri`.
pub(crate) fn component_file(
    wasm: Option<&str>,
    source: Option<&str>,
    runs_otherwise: bool,
    base: &Path,
) -> Option<PathBuf> {
    if let Some(wasm) = wasm.filter(|w| !w.is_empty()) {
        return Some(base.join(wasm));
    }
    if runs_otherwise {
        return None;
    }
    let source = source?.trim();
    if let Some(rest) = source.strip_prefix("file://") {
        let url = url::Url::parse(source).ok();
        return match url.and_then(|u| u.to_file_path().ok()) {
            Some(path) => Some(path),
            None => Some(PathBuf::from(rest)),
        };
    }
    let looks_local = !source.contains("://");
    (looks_local && source.ends_with(".wasm")).then(|| base.join(source))
}

impl Grants {
    /// The granted directories with their paths made absolute against `base`.
    pub fn dirs_from(&self, base: &Path) -> Vec<DirGrant> {
        self.dirs
            .iter()
            .map(|d| DirGrant {
                path: base.join(&d.path),
                write: d.write,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_comes_from_wasm_or_a_local_source() {
        let base = Path::new("/etc/magg");
        assert_eq!(
            component_file(Some("p/fetch.wasm"), Some("x"), false, base),
            Some(PathBuf::from("/etc/magg/p/fetch.wasm"))
        );
        assert_eq!(
            component_file(None, Some("file:///opt/f.wasm"), false, base),
            Some(PathBuf::from("/opt/f.wasm"))
        );
        assert_eq!(
            component_file(None, Some("f.wasm"), false, base),
            Some(PathBuf::from("/etc/magg/f.wasm"))
        );
        assert_eq!(
            component_file(None, Some("file:///opt/f.wasm"), true, base),
            None
        );
        assert_eq!(
            component_file(None, Some("https://x/f.wasm"), false, base),
            None
        );
    }

    #[test]
    fn unknown_grant_keys_are_named() {
        let err = serde_json::from_value::<Grants>(serde_json::json!({"htp": []})).unwrap_err();
        assert!(err.to_string().contains("htp"), "{err}");
    }
}
