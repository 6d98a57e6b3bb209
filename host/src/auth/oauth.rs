//! OAuth 2.1 resource-server mode: access tokens issued by an authorization server magg does
//! not run (an OpenID provider, a company's identity service), checked against its published
//! keys, as the MCP authorization specification has a server do.
//!
//! # Design
//! - [`OAuthConfig`] is the `oauth` object of `auth.json`: the `issuer` (its keys are found
//!   through discovery: `{issuer}/.well-known/openid-configuration`, else RFC 8414's
//!   `/.well-known/oauth-authorization-server`), or a `jwks_uri` directly; the `audience` tokens
//!   must name (the resource, magg's public `/mcp` URL, by default); the `resource` URL
//!   magg's protected-resource metadata announces; and the scopes every request needs.
//! - [`JwksVerifier`] keeps the issuer's keys by `kid`. A token whose `kid` is not among them
//!   makes it fetch the key set again (keys rotate without a restart), at most once a second
//!   and one fetch at a time; keys older than an hour are fetched again on the next use.
//! - Signatures are asymmetric only (RS*, PS*, ES*, EdDSA, as the key says); a token's claims
//!   are checked as magg's own tokens are (issuer, audience, expiry, not-before), and one that
//!   passed is remembered until it expires.
//! - An issuer that cannot be reached is not the client's fault: that is [`Unavailable`],
//!   which the frontend answers with 503, and magg keeps serving and retries on the next
//!   request.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{Jwk, KeyAlgorithm},
};
use serde_json::Value;

use super::token::{
    Identity, Rejection, Remembered, Seen, check_claims, decode_error, now_seconds,
};

/// How long a fetched key set is used before it is fetched again.
const KEYS_FRESH: Duration = Duration::from_secs(3600);

/// The least time between two fetches of the key set (an unknown `kid` fetches it again).
const REFETCH_GAP: Duration = Duration::from_secs(1);

/// How long one fetch of discovery metadata or keys may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The algorithms accepted from an issuer's keys: asymmetric ones only (a shared secret
/// cannot be published in a key set, and `none` signs nothing).
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The `oauth` object of `auth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier; tokens' `iss` must equal it.
    pub issuer: String,
    /// Where its keys are; found through discovery when not given.
    pub jwks_uri: Option<String>,
    /// The audience tokens must name; the resource URL when not given.
    pub audience: Option<String>,
    /// magg's public URL of `/mcp`, as clients reach it (through a proxy, say); taken from
    /// each request's `Host` when not given.
    pub resource: Option<String>,
    /// Scopes every request's token must grant (else `403 insufficient_scope`).
    pub required_scopes: Vec<String>,
}

impl OAuthConfig {
    /// Reads the `oauth` member of `auth.json` (`top`); `Ok(None)` when there is none.
    pub fn from_auth_json(top: &serde_json::Map<String, Value>) -> Result<Option<Self>, String> {
        let oauth = match top.get("oauth") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(oauth)) => oauth,
            Some(_) => return Err("`oauth` must be an object".into()),
        };
        let text = |name: &str| -> Result<Option<String>, String> {
            match oauth.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(format!("`oauth.{name}` must be a non-empty string")),
            }
        };
        let url = |name: &str| -> Result<Option<String>, String> {
            let value = text(name)?;
            if let Some(value) = &value {
                let parsed = url::Url::parse(value)
                    .map_err(|e| format!("`oauth.{name}` is not a URL ({e}): `{value}`"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("`oauth.{name}` must be an http(s) URL: `{value}`"));
                }
            }
            Ok(value)
        };
        let issuer = url("issuer")?.ok_or(
            "`oauth.issuer` is missing: name the authorization server whose tokens magg \
             accepts, e.g. {\"oauth\": {\"issuer\": \"https://id.example.com\", \"audience\": \
             \"https://magg.example.com/mcp\"}}",
        )?;
        let required_scopes = super::settings::string_list(
            oauth.get("required_scopes"),
            "oauth.required_scopes",
            true,
        )?;
        Ok(Some(OAuthConfig {
            issuer,
            jwks_uri: url("jwks_uri")?,
            audience: text("audience")?,
            resource: url("resource")?,
            required_scopes,
        }))
    }
}

/// The issuer's keys could not be had: the request cannot be checked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// A token check that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The token is not valid (401).
    Invalid(Rejection),
    /// magg could not check it (503).
    Unavailable(Unavailable),
}

impl From<Rejection> for Failure {
    fn from(rejection: Rejection) -> Self {
        Failure::Invalid(rejection)
    }
}

/// The issuer's keys as last fetched.
struct KeySet {
    by_kid: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    /// Keys without a `kid` (a set of one key often has none).
    unnamed: Vec<(DecodingKey, Option<Algorithm>)>,
    fetched: Instant,
}

/// Checks access tokens of one authorization server.
pub struct JwksVerifier {
    config: OAuthConfig,
    client: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching, so that concurrent requests with a new `kid` fetch once.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// The key set's URL, once known.
    jwks_uri: RwLock<Option<String>>,
    passed: Remembered,
    /// Claims whose values count as scopes.
    scope_claims: Vec<String>,
}

impl JwksVerifier {
    /// A verifier for the tokens of `config`'s issuer. Nothing is fetched yet.
    pub fn new(config: OAuthConfig) -> JwksVerifier {
        super::ring_rs256::install();
        crate::tls::install();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        JwksVerifier {
            jwks_uri: RwLock::new(config.jwks_uri.clone()),
            config,
            client,
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
            passed: Remembered::default(),
            scope_claims: Vec::new(),
        }
    }

    /// This verifier, counting the values of the claims `names` as scopes
    /// (`NAME:VALUE`).
    pub fn with_scope_claims(mut self, names: Vec<String>) -> JwksVerifier {
        self.scope_claims = names;
        self
    }

    /// The settings it was made with.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The audience tokens must name, given the resource URL of this request.
    fn audience<'a>(&'a self, resource: &'a str) -> &'a str {
        self.config
            .audience
            .as_deref()
            .or(self.config.resource.as_deref())
            .unwrap_or(resource)
    }

    /// Fetches the keys now (at startup, so that a wrong issuer shows at once); an error says
    /// what failed.
    pub async fn prefetch(&self) -> Result<usize, Unavailable> {
        let keys = self.fetch_keys(None).await.map_err(|f| match f {
            Failure::Unavailable(why) => why,
            Failure::Invalid(rejection) => Unavailable(rejection.0),
        })?;
        Ok(keys.by_kid.len() + keys.unnamed.len())
    }

    /// Checks `token` for a request to `resource` (magg's `/mcp` URL as the client reached
    /// it): signature with the issuer's key, issuer, audience, expiry and not-before.
    pub async fn check(&self, token: &str, resource: &str) -> Result<Arc<Identity>, Failure> {
        let now = now_seconds();
        if let Some(known) = self.passed.get(token, now) {
            return known.map_err(Failure::Invalid);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| decode_error(token, e.kind(), ""))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(Rejection(format!(
                "the token is signed with {:?}; magg accepts tokens signed with the issuer's \
                 published keys (RS256, ES256 and the like) only",
                header.alg
            ))
            .into());
        }
        let (key, alg) = self.key_for(header.kid.as_deref(), header.alg).await?;
        if alg.is_some_and(|alg| alg != header.alg) {
            return Err(Rejection(format!(
                "the token says it is signed with {:?}, but the issuer's key `{}` is for {:?}",
                header.alg,
                header.kid.as_deref().unwrap_or(""),
                alg.unwrap_or(header.alg)
            ))
            .into());
        }
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let seen = jsonwebtoken::decode::<Seen>(token.as_bytes(), &key, &validation)
            .map_err(|e| {
                decode_error(
                    token,
                    e.kind(),
                    &format!(
                        "the signature does not match the key `{}` of {} (the token was \
                         changed, or signed by another server)",
                        header.kid.as_deref().unwrap_or(""),
                        self.config.issuer
                    ),
                )
            })?
            .claims;
        check_claims(&seen, &self.config.issuer, self.audience(resource), now)?;
        let identity = Arc::new(seen.identity(token, &self.scope_claims));
        self.passed.put(token, seen.exp, identity.clone());
        Ok(identity)
    }

    /// The key for `kid`, fetching the key set again when it does not have it.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(DecodingKey, Option<Algorithm>), Failure> {
        let current = self.keys.read().ok().and_then(|k| k.clone());
        let fresh = current
            .as_ref()
            .is_some_and(|k| k.fetched.elapsed() < KEYS_FRESH);
        if fresh && let Some(found) = current.as_deref().and_then(|k| pick(k, kid, alg)) {
            return Ok(found);
        }
        let keys = match self.fetch_keys(current.as_ref().map(|k| k.fetched)).await {
            Ok(keys) => keys,
            // Keys past their time still serve while the issuer cannot be reached.
            Err(failure) => match current.as_deref().and_then(|k| pick(k, kid, alg)) {
                Some(found) => {
                    tracing::warn!("using the issuer's keys fetched earlier: {failure:?}");
                    return Ok(found);
                }
                None => return Err(failure),
            },
        };
        pick(&keys, kid, alg).ok_or_else(|| {
            Failure::Invalid(Rejection(match kid {
                Some(kid) => format!(
                    "the token's key `{kid}` is not among the keys {} publishes (it may have \
                     been retired); get a new token",
                    self.config.issuer
                ),
                None => format!(
                    "the token names no key (`kid`) and none of {}'s keys is for {alg:?}",
                    self.config.issuer
                ),
            }))
        })
    }

    /// Fetches the key set, unless another request did since `seen` (the time of the set the
    /// caller had); at most once per [`REFETCH_GAP`].
    async fn fetch_keys(&self, seen: Option<Instant>) -> Result<Arc<KeySet>, Failure> {
        let mut last = self.fetching.lock().await;
        if let Some(current) = self.keys.read().ok().and_then(|k| k.clone())
            && Some(current.fetched) != seen
        {
            return Ok(current);
        }
        if let Some(last) = *last {
            let since = last.elapsed();
            if since < REFETCH_GAP {
                tokio::time::sleep(REFETCH_GAP - since).await;
            }
        }
        *last = Some(Instant::now());
        let keys = Arc::new(self.download_keys().await.map_err(Failure::Unavailable)?);
        tracing::info!(
            issuer = %self.config.issuer,
            kids = ?keys.by_kid.keys().collect::<Vec<_>>(),
            "fetched the issuer's signing keys"
        );
        if let Ok(mut slot) = self.keys.write() {
            *slot = Some(keys.clone());
        }
        Ok(keys)
    }

    async fn download_keys(&self) -> Result<KeySet, Unavailable> {
        let uri = match self.jwks_uri.read().ok().and_then(|u| u.clone()) {
            Some(uri) => uri,
            None => {
                let uri = self.discover().await?;
                if let Ok(mut slot) = self.jwks_uri.write() {
                    *slot = Some(uri.clone());
                }
                uri
            }
        };
        let set = self.get_json(&uri).await?;
        let Some(Value::Array(list)) = set.get("keys") else {
            return Err(Unavailable(format!(
                "the key set at {uri} has no `keys` list"
            )));
        };
        let mut keys = KeySet {
            by_kid: HashMap::new(),
            unnamed: Vec::new(),
            fetched: Instant::now(),
        };
        for value in list {
            // Keys magg cannot use (encryption keys, unknown types) are left out, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let alg = jwk.common.key_algorithm.and_then(algorithm_of);
            match jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid, (key, alg));
                }
                None => keys.unnamed.push((key, alg)),
            }
        }
        if keys.by_kid.is_empty() && keys.unnamed.is_empty() {
            return Err(Unavailable(format!(
                "the key set at {uri} has no signing key magg can use"
            )));
        }
        Ok(keys)
    }

    /// The issuer's `jwks_uri`, from its OpenID or OAuth metadata.
    async fn discover(&self) -> Result<String, Unavailable> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let mut tried = Vec::new();
        for url in discovery_urls(issuer) {
            match self.get_json(&url).await {
                Ok(metadata) => {
                    if let Some(named) = metadata.get("issuer").and_then(Value::as_str)
                        && named.trim_end_matches('/') != issuer
                    {
                        return Err(Unavailable(format!(
                            "the metadata at {url} is for the issuer `{named}`, not `{}`; set \
                             `oauth.issuer` to the issuer's exact identifier",
                            self.config.issuer
                        )));
                    }
                    return metadata
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            Unavailable(format!(
                                "the metadata at {url} names no `jwks_uri`; set `oauth.jwks_uri`"
                            ))
                        });
                }
                Err(Unavailable(why)) => tried.push(why),
            }
        }
        Err(Unavailable(format!(
            "cannot discover the keys of {}: {}",
            self.config.issuer,
            tried.join("; ")
        )))
    }

    async fn get_json(&self, url: &str) -> Result<Value, Unavailable> {
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Unavailable(format!("GET {url} failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Unavailable(format!("GET {url} answered {status}")));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Unavailable(format!("GET {url} failed: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Unavailable(format!("GET {url} is not JSON: {e}")))
    }
}

/// Where an issuer's metadata may be: OpenID Connect's place, then RFC 8414's (with the
/// issuer's path after the well-known part).
fn discovery_urls(issuer: &str) -> Vec<String> {
    let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
    if let Ok(parsed) = url::Url::parse(issuer) {
        let path = parsed.path().trim_end_matches('/');
        let origin = parsed.origin().ascii_serialization();
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
        if !path.is_empty() {
            urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
        }
    }
    urls
}

/// The key of `keys` for `kid` (or, for a token that names none, the only key or the one for
/// `alg`).
fn pick(
    keys: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<(DecodingKey, Option<Algorithm>)> {
    match kid {
        Some(kid) => keys.by_kid.get(kid).cloned(),
        None => {
            let all: Vec<_> = keys.unnamed.iter().chain(keys.by_kid.values()).collect();
            let fits: Vec<_> = all
                .iter()
                .filter(|(_, a)| a.is_none_or(|a| a == alg))
                .collect();
            (fits.len() == 1).then(|| (*fits[0]).clone())
        }
    }
}

/// The signing algorithm a key's `alg` names.
fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<Option<OAuthConfig>, String> {
        match value {
            Value::Object(top) => OAuthConfig::from_auth_json(&top),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_oauth_section_reads_with_its_defaults() {
        assert_eq!(parse(json!({"bearer": {}})), Ok(None));
        let config = parse(json!({"oauth": {
            "issuer": "https://id.example.com",
            "required_scopes": "mcp  tools",
        }}))
        .expect("valid")
        .expect("present");
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(config.required_scopes, ["mcp", "tools"]);
        assert_eq!(config.audience, None);
        let verifier = JwksVerifier::new(config);
        assert_eq!(verifier.audience("http://h/mcp"), "http://h/mcp");
    }

    #[test]
    fn a_wrong_oauth_section_says_what_to_write() {
        let err = parse(json!({"oauth": {}})).unwrap_err();
        assert!(err.contains("`oauth.issuer` is missing"), "{err}");
        let err = parse(json!({"oauth": {"issuer": "id.example.com"}})).unwrap_err();
        assert!(err.contains("not a URL"), "{err}");
        let err =
            parse(json!({"oauth": {"issuer": "https://a", "required_scopes": [1]}})).unwrap_err();
        assert!(err.contains("required_scopes"), "{err}");
    }

    #[test]
    fn discovery_looks_where_both_specifications_say() {
        assert_eq!(
            discovery_urls("https://id.example.com"),
            [
                "https://id.example.com/.well-known/openid-configuration",
                "https://id.example.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            discovery_urls("https://id.example.com/tenant"),
            [
                "https://id.example.com/tenant/.well-known/openid-configuration",
                "https://id.example.com/.well-known/oauth-authorization-server/tenant",
                "https://id.example.com/.well-known/openid-configuration/tenant",
            ]
        );
    }
}
