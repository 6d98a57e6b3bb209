//! `auth.json`, Magg's auth settings file beside `config.json`, and where the key lives.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::AuthError;

/// The auth settings file's name, in the config file's directory.
pub const AUTH_FILE_NAME: &str = "auth.json";

/// The environment variable that may hold the private key's PEM text (newlines may be written
/// as the two characters `\n`); it wins over the key file.
pub const PRIVATE_KEY_ENV: &str = "MAGG_PRIVATE_KEY";

/// The issuer tokens carry unless `auth.json` names another.
pub const DEFAULT_ISSUER: &str = "https://magg.local";

/// The audience tokens carry unless `auth.json` names another; also the key files' name.
pub const DEFAULT_AUDIENCE: &str = "magg";

/// A list of strings in `auth.json` (one string stands for a list of one; with
/// `split_words`, a string is split at spaces, as OAuth writes scopes); `field` names it in the
/// error.
pub(super) fn string_list(
    value: Option<&Value>,
    field: &str,
    split_words: bool,
) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if split_words => {
            Ok(s.split_whitespace().map(str::to_owned).collect())
        }
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{field}` must be a list of strings")),
        Some(_) => Err(format!("`{field}` must be a list of strings")),
    }
}

/// The top-level object of the `auth.json` of `config_path`; empty when there is no file.
pub(super) fn read_auth_json(config_path: &Path) -> Result<Map<String, Value>, AuthError> {
    let path = BearerConfig::file_for(config_path);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => {
            return Err(AuthError::Settings {
                path,
                message: e.to_string(),
            });
        }
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(top)) => Ok(top),
        Ok(_) => Err(AuthError::Settings {
            path,
            message: "expected a JSON object".into(),
        }),
        Err(e) => Err(AuthError::Settings {
            path,
            message: format!("not JSON ({e})"),
        }),
    }
}

/// Magg's bearer settings: `{"bearer": {"issuer": ..., "audience": ..., "key_path": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerConfig {
    /// The `iss` of tokens (default `https://magg.local`).
    pub issuer: String,
    /// The `aud` of tokens and the key files' name (default `magg`).
    pub audience: String,
    /// The directory of the key files (default `~/.ssh/magg`).
    pub key_path: PathBuf,
}

impl Default for BearerConfig {
    fn default() -> Self {
        BearerConfig {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            key_path: default_key_path(),
        }
    }
}

/// `~/.ssh/magg`.
fn default_key_path() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ssh")
        .join("magg")
}

/// `path` with a leading `~/` replaced by the home directory.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => dirs::home_dir().unwrap_or_else(|| PathBuf::from(path)),
        _ => PathBuf::from(path),
    }
}

impl BearerConfig {
    /// The auth settings file that belongs to the config file `config_path`.
    pub fn file_for(config_path: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(AUTH_FILE_NAME),
            _ => PathBuf::from(AUTH_FILE_NAME),
        }
    }

    /// The settings of the config file `config_path`: its `auth.json` when there is one, else
    /// the defaults. A file that is there but unreadable is an error (falling back to the
    /// defaults could turn authentication off).
    pub fn load(config_path: &Path) -> Result<BearerConfig, AuthError> {
        let path = Self::file_for(config_path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(BearerConfig::default());
            }
            Err(e) => {
                return Err(AuthError::Settings {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Self::parse(&text).map_err(|message| AuthError::Settings { path, message })
    }

    /// Reads `auth.json`'s text; absent fields keep their defaults, unknown ones are ignored.
    pub fn parse(text: &str) -> Result<BearerConfig, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let Value::Object(top) = value else {
            return Err(
                "expected a JSON object like {\"bearer\": {\"audience\": \"magg\"}}".into(),
            );
        };
        let mut config = BearerConfig::default();
        let bearer = match top.get("bearer") {
            None | Some(Value::Null) => return Ok(config),
            Some(Value::Object(bearer)) => bearer,
            Some(_) => return Err("`bearer` must be an object".into()),
        };
        let text_field = |name: &str| -> Result<Option<String>, String> {
            match bearer.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`bearer.{name}` must be a string")),
            }
        };
        if let Some(issuer) = text_field("issuer")? {
            config.issuer = issuer;
        }
        if let Some(audience) = text_field("audience")? {
            config.audience = audience;
        }
        if let Some(key_path) = text_field("key_path")? {
            config.key_path = expand_home(&key_path);
        }
        Ok(config)
    }

    /// Writes these settings to the `auth.json` of `config_path` (atomically), in Magg's shape.
    pub fn save(&self, config_path: &Path) -> Result<PathBuf, AuthError> {
        let path = Self::file_for(config_path);
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| AuthError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Keep what else the file holds (`oauth`, `access`): only `bearer` is this's to write.
        let mut top = read_auth_json(config_path)?;
        if let Value::Object(mine) = self.to_json() {
            top.extend(mine);
        }
        crate::config::write_json_atomic(&path, &Value::Object(top))
            .map_err(|e| AuthError::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// The settings as `auth.json` holds them.
    pub fn to_json(&self) -> Value {
        let mut bearer = Map::new();
        bearer.insert("issuer".into(), json!(self.issuer));
        bearer.insert("audience".into(), json!(self.audience));
        bearer.insert(
            "key_path".into(),
            json!(self.key_path.display().to_string()),
        );
        json!({ "bearer": bearer })
    }

    /// Whether these are the defaults (then `magg auth init` writes no `auth.json`, as Magg).
    pub fn is_default(&self) -> bool {
        *self == BearerConfig::default()
    }

    /// `{key_path}/{audience}.key`.
    pub fn private_key_path(&self) -> PathBuf {
        self.key_path.join(format!("{}.key", self.audience))
    }

    /// `{key_path}/{audience}.key.pub`.
    pub fn public_key_path(&self) -> PathBuf {
        self.key_path.join(format!("{}.key.pub", self.audience))
    }

    /// The private key's PEM text from `MAGG_PRIVATE_KEY`, when set and not empty, with `\n`
    /// written as two characters turned back into newlines.
    pub fn private_key_env(&self) -> Option<String> {
        std::env::var(PRIVATE_KEY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| v.replace("\\n", "\n"))
    }

    /// Whether a private key exists (in `MAGG_PRIVATE_KEY` or the key file): authentication is
    /// on exactly then.
    pub fn private_key_exists(&self) -> bool {
        self.private_key_env().is_some() || self.private_key_path().exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magg_auth_json_reads_and_writes_in_the_same_shape() {
        let text = r#"{"bearer": {"issuer": "https://id.example", "audience": "team", "key_path": "/keys", "extra": 1}}"#;
        let config = BearerConfig::parse(text).expect("parse");
        assert_eq!(config.issuer, "https://id.example");
        assert_eq!(config.audience, "team");
        assert_eq!(config.private_key_path(), Path::new("/keys/team.key"));
        assert_eq!(config.public_key_path(), Path::new("/keys/team.key.pub"));
        assert_eq!(
            config.to_json(),
            json!({"bearer": {"issuer": "https://id.example", "audience": "team", "key_path": "/keys"}})
        );
    }

    #[test]
    fn absent_fields_keep_the_defaults() {
        let config = BearerConfig::parse(r#"{"bearer": {"audience": "x"}}"#).expect("parse");
        assert_eq!(config.issuer, DEFAULT_ISSUER);
        assert_eq!(config.audience, "x");
        assert!(BearerConfig::parse("{}").expect("parse").is_default());
    }

    #[test]
    fn a_wrong_shape_names_the_field() {
        let err = BearerConfig::parse(r#"{"bearer": {"audience": 3}}"#).unwrap_err();
        assert!(err.contains("bearer.audience"), "{err}");
        assert!(BearerConfig::parse("[1]").is_err());
    }
}
