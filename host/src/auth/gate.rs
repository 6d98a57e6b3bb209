//! The one check in front of magg's HTTP routes: which tokens pass (magg's own key, an OAuth
//! authorization server's keys, or both), who the caller is, and what the caller may see.

use std::{path::Path, sync::Arc};

use serde_json::{Map, Value, json};

use super::{
    AuthError, BearerConfig, Identity, Rejection, SigningKey, Verifier,
    access::{AccessRules, View},
    oauth::{Failure, JwksVerifier, OAuthConfig},
};

/// A client whose token passed.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the token speaks for, and its scopes.
    pub identity: Arc<Identity>,
    /// What it may see; `None`: everything (no `access` rules).
    pub view: Option<Arc<View>>,
}

impl Caller {
    /// Whether the caller may use magg's tools that change servers or the config.
    pub fn may_change(&self) -> bool {
        self.view.as_ref().is_none_or(|v| v.admin())
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token: 401.
    Invalid(Rejection),
    /// The token is valid but lacks scopes the request needs: 403.
    Insufficient {
        /// The scopes needed.
        needed: Vec<String>,
        /// What to do about it.
        message: String,
    },
    /// The token cannot be checked now (the issuer's keys cannot be fetched): 503.
    Unavailable(String),
}

/// Everything that decides about a request's token.
pub struct Gate {
    magg: Option<(Verifier, BearerConfig)>,
    oauth: Option<JwksVerifier>,
    access: Option<AccessRules>,
}

impl Gate {
    /// The gate of the config file `config_path`: magg's key when one exists, the `oauth` and
    /// `access` objects of `auth.json`. `Ok(None)` when neither a key nor `oauth` is set up
    /// (authentication is off).
    pub fn load(config_path: &Path) -> Result<Option<Gate>, AuthError> {
        let bearer = BearerConfig::load(config_path)?;
        let top = super::settings::read_auth_json(config_path)?;
        let settings_error = |message: String| AuthError::Settings {
            path: BearerConfig::file_for(config_path),
            message,
        };
        let oauth = OAuthConfig::from_auth_json(&top).map_err(settings_error)?;
        let access = AccessRules::from_auth_json(&top).map_err(settings_error)?;
        let key = SigningKey::load(&bearer)?;
        if key.is_none() && oauth.is_none() {
            if access.is_some() {
                tracing::warn!(
                    "auth.json has `access` rules, but authentication is off (no key from \
                     `magg auth init`, no `oauth` issuer): they apply to nobody"
                );
            }
            return Ok(None);
        }
        let claims = access
            .as_ref()
            .map(|a| a.scope_claims().to_vec())
            .unwrap_or_default();
        Ok(Some(Gate {
            magg: key.map(|key| {
                let verifier = Verifier::new(&key, &bearer).with_scope_claims(claims.clone());
                (verifier, bearer)
            }),
            oauth: oauth.map(|o| JwksVerifier::new(o).with_scope_claims(claims)),
            access,
        }))
    }

    /// A gate of magg's own key only, with no access rules.
    pub fn of_key(key: &SigningKey, bearer: BearerConfig) -> Gate {
        Gate {
            magg: Some((Verifier::new(key, &bearer), bearer)),
            oauth: None,
            access: None,
        }
    }

    /// magg's own bearer settings, when its key is in use.
    pub fn bearer(&self) -> Option<&BearerConfig> {
        self.magg.as_ref().map(|(_, b)| b)
    }

    /// The OAuth verifier, when an authorization server is set up.
    pub fn oauth(&self) -> Option<&JwksVerifier> {
        self.oauth.as_ref()
    }

    /// The scope that magg's changing tools need, when scopes decide.
    pub fn admin_scope(&self) -> Option<&str> {
        self.access.as_ref().map(AccessRules::admin_scope)
    }

    /// Checks `token` of a request to `resource` (magg's `/mcp` URL as the client reached it).
    pub async fn check(&self, token: &str, resource: &str) -> Result<Caller, Refusal> {
        let identity = match (&self.magg, &self.oauth) {
            (Some((magg, _)), Some(oauth)) => {
                if issuer_of(token).as_deref() == Some(oauth.config().issuer.as_str()) {
                    check_oauth(oauth, token, resource).await?
                } else {
                    magg.check(token).map_err(Refusal::Invalid)?
                }
            }
            (Some((magg, _)), None) => magg.check(token).map_err(Refusal::Invalid)?,
            (None, Some(oauth)) => check_oauth(oauth, token, resource).await?,
            (None, None) => {
                return Err(Refusal::Invalid(Rejection(
                    "authentication is not set up".into(),
                )));
            }
        };
        if let Some(oauth) = &self.oauth {
            let missing: Vec<String> = oauth
                .config()
                .required_scopes
                .iter()
                .filter(|s| !identity.has_scope(s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(Refusal::Insufficient {
                    message: format!(
                        "the token lacks the scope(s) {} that every request to magg needs; \
                         ask the authorization server for a token with them",
                        missing.join(" ")
                    ),
                    needed: oauth.config().required_scopes.clone(),
                });
            }
        }
        let view = self.access.as_ref().map(|rules| rules.view(&identity));
        Ok(Caller { identity, view })
    }

    /// RFC 9728 protected-resource metadata for `resource` (magg's `/mcp` URL), when an
    /// authorization server is set up.
    pub fn resource_metadata(&self, resource: &str) -> Option<Value> {
        let oauth = self.oauth.as_ref()?;
        let config = oauth.config();
        // What a client should ask for: the scopes every request needs and those that grant
        // something, but not the admin scope (a client asks for that on purpose, or when a
        // change is refused for want of it).
        let mut scopes: Vec<String> = config.required_scopes.clone();
        if let Some(access) = &self.access {
            scopes.extend(
                access
                    .scopes()
                    .filter(|s| *s != access.admin_scope())
                    .map(str::to_owned),
            );
        }
        scopes.sort();
        scopes.dedup();
        let mut metadata = Map::new();
        metadata.insert(
            "resource".into(),
            json!(config.resource.as_deref().unwrap_or(resource)),
        );
        metadata.insert("authorization_servers".into(), json!([config.issuer]));
        metadata.insert("bearer_methods_supported".into(), json!(["header"]));
        if !scopes.is_empty() {
            metadata.insert("scopes_supported".into(), json!(scopes));
        }
        metadata.insert("resource_name".into(), json!("magg"));
        Some(Value::Object(metadata))
    }

    /// The scopes a `401` tells a client to ask for: those every request needs, if any.
    pub fn challenge_scope(&self) -> Option<String> {
        let scopes = &self.oauth.as_ref()?.config().required_scopes;
        (!scopes.is_empty()).then(|| scopes.join(" "))
    }

    /// magg's `/mcp` URL as set in `oauth.resource`, if it is.
    pub fn configured_resource(&self) -> Option<&str> {
        self.oauth.as_ref()?.config().resource.as_deref()
    }
}

/// What `auth.json` of `config_path` sets up beyond magg's key, as lines for `magg auth
/// status`: the OAuth authorization server and the scope rules.
pub fn oauth_summary(config_path: &Path) -> Result<Vec<String>, AuthError> {
    let top = super::settings::read_auth_json(config_path)?;
    let settings_error = |message: String| AuthError::Settings {
        path: BearerConfig::file_for(config_path),
        message,
    };
    let mut lines = Vec::new();
    if let Some(oauth) = OAuthConfig::from_auth_json(&top).map_err(settings_error)? {
        lines.push(format!("OAuth issuer: {}", oauth.issuer));
        lines.push(format!(
            "OAuth audience: {}",
            oauth
                .audience
                .as_deref()
                .or(oauth.resource.as_deref())
                .unwrap_or("magg's /mcp URL as clients reach it")
        ));
        if let Some(jwks) = &oauth.jwks_uri {
            lines.push(format!("OAuth keys: {jwks}"));
        }
        if !oauth.required_scopes.is_empty() {
            lines.push(format!(
                "Scopes every request needs: {}",
                oauth.required_scopes.join(" ")
            ));
        }
    }
    if let Some(access) = AccessRules::from_auth_json(&top).map_err(settings_error)? {
        lines.push(format!(
            "Scopes decide what clients see ({} rule(s)); admin scope: {}",
            access.len(),
            access.admin_scope()
        ));
    }
    Ok(lines)
}

async fn check_oauth(
    oauth: &JwksVerifier,
    token: &str,
    resource: &str,
) -> Result<Arc<Identity>, Refusal> {
    oauth.check(token, resource).await.map_err(|f| match f {
        Failure::Invalid(rejection) => Refusal::Invalid(rejection),
        Failure::Unavailable(why) => Refusal::Unavailable(why.0),
    })
}

/// The `iss` a token claims, read without checking it (to pick which verifier checks it).
fn issuer_of(token: &str) -> Option<String> {
    let claims = token.split('.').nth(1)?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}
