//! RS256 tokens: issuing them (`magg auth token`) and checking the ones requests carry.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AuthError, BearerConfig, SigningKey};

/// How many tokens that passed are remembered; past that the memory starts over.
const REMEMBERED: usize = 256;

/// How far in the future a token's `nbf` may be and still be accepted, for clocks that differ
/// a little between the machine that made it and this one (seconds).
const NBF_LEEWAY: f64 = 30.0;

/// The claims of a token magg (or Magg) issues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject (the user).
    pub sub: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Space-separated scopes, when any were asked for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
}

impl SigningKey {
    /// Signs a token for `subject`, valid for `hours`, with `scopes` (space-separated in the
    /// `scope` claim, as OAuth 2.0 writes them), as Magg's `create_token` does.
    pub fn issue(
        &self,
        config: &BearerConfig,
        subject: &str,
        hours: i64,
        scopes: &[String],
    ) -> Result<String, AuthError> {
        let now = now_seconds() as i64;
        let claims = Claims {
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            sub: subject.to_owned(),
            iat: now,
            exp: now.saturating_add(hours.saturating_mul(3600)),
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        };
        let key = EncodingKey::from_rsa_der(&self.private_der());
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
            .map_err(|e| AuthError::Io(format!("Failed to create token: {e}")))
    }
}

/// Why a token was refused: a sentence saying what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The claims a check reads; any of them may be missing or odd in a token from outside.
#[derive(Deserialize)]
pub(super) struct Seen {
    iss: Option<Value>,
    aud: Option<Value>,
    pub(super) exp: Option<f64>,
    nbf: Option<f64>,
    sub: Option<Value>,
    /// OAuth 2.0's space-separated scopes (RFC 8693, RFC 9068).
    scope: Option<Value>,
    /// Scopes as a list, as some providers write them.
    scp: Option<Value>,
    client_id: Option<Value>,
}

impl Seen {
    /// Who the token `token` (whose claims these are, checked) speaks for and what it grants:
    /// its scopes, and for each claim named in `scope_claims` (say `groups`) each of its values
    /// as the scope `NAME:VALUE` (`groups:admins`).
    pub(super) fn identity(&self, token: &str, scope_claims: &[String]) -> Identity {
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_owned);
        let mut scopes: Vec<String> = match (&self.scope, &self.scp) {
            (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => {
                s.split_whitespace().map(str::to_owned).collect()
            }
            (_, Some(Value::Array(list))) | (Some(Value::Array(list)), _) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        // The other claims are read again only when some count as scopes: most setups have
        // none, and every token's first check pays for what is read here.
        let rest = match scope_claims.is_empty() {
            true => serde_json::Map::new(),
            false => jsonwebtoken::dangerous::insecure_decode::<serde_json::Map<String, Value>>(
                token.as_bytes(),
            )
            .map(|data| data.claims)
            .unwrap_or_default(),
        };
        for name in scope_claims {
            match rest.get(name) {
                Some(Value::String(value)) => scopes.push(format!("{name}:{value}")),
                Some(Value::Array(values)) => scopes.extend(
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|value| format!("{name}:{value}")),
                ),
                _ => {}
            }
        }
        scopes.sort();
        scopes.dedup();
        Identity {
            subject: text(&self.sub).or_else(|| text(&self.client_id)),
            scopes,
        }
    }
}

/// Who a valid token speaks for and what it grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The token's subject (`sub`), or its client (`client_id`) when it has none.
    pub subject: Option<String>,
    /// The scopes it grants, sorted, each once.
    pub scopes: Vec<String>,
}

impl Identity {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .binary_search_by(|s| s.as_str().cmp(scope))
            .is_ok()
    }
}

/// Tokens that passed, with their expiry and identity, so that a client that sends the same
/// token on every request costs one lookup after the first.
#[derive(Default)]
pub(super) struct Remembered(Mutex<HashMap<Box<str>, Passed>>);

/// A token that passed: its expiry, if it has one, and what it grants.
type Passed = (Option<f64>, Arc<Identity>);

impl Remembered {
    /// What is known of `token` at `now`: its identity, or that it has expired since.
    pub(super) fn get(&self, token: &str, now: f64) -> Option<Result<Arc<Identity>, Rejection>> {
        let passed = self.0.lock().ok()?;
        let (exp, identity) = passed.get(token)?;
        Some(match exp {
            Some(exp) if *exp <= now => Err(expired(*exp, now)),
            _ => Ok(identity.clone()),
        })
    }

    /// Remembers that `token` passed.
    pub(super) fn put(&self, token: &str, exp: Option<f64>, identity: Arc<Identity>) {
        if let Ok(mut passed) = self.0.lock() {
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
            passed.insert(token.into(), (exp, identity));
        }
    }
}

/// Checks tokens against one public key, issuer and audience.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    passed: Remembered,
    /// Claims whose values count as scopes.
    scope_claims: Vec<String>,
}

impl Verifier {
    /// A verifier for tokens signed by `key`, for the issuer and audience of `config`.
    pub fn new(key: &SigningKey, config: &BearerConfig) -> Verifier {
        super::ring_rs256::install();
        let mut validation = Validation::new(Algorithm::RS256);
        // The claims are checked below, each with its own message.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Verifier {
            key: DecodingKey::from_rsa_der(&key.public_der()),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            passed: Remembered::default(),
            scope_claims: Vec::new(),
        }
    }

    /// This verifier, counting the values of the claims `names` as scopes
    /// (`NAME:VALUE`).
    pub fn with_scope_claims(mut self, names: Vec<String>) -> Verifier {
        self.scope_claims = names;
        self
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `token`: signature (RS256 with magg's key), issuer, audience, expiry and
    /// not-before; what the token grants.
    pub fn check(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        self.check_at(token, now_seconds())
    }

    /// [`Verifier::check`] at the time `now` (seconds since the epoch).
    fn check_at(&self, token: &str, now: f64) -> Result<Arc<Identity>, Rejection> {
        if let Some(known) = self.passed.get(token, now) {
            return known;
        }
        let seen = jsonwebtoken::decode::<Seen>(token.as_bytes(), &self.key, &self.validation)
            .map_err(|e| decode_error(token, e.kind(), MAGG_KEY_HINT))?
            .claims;
        check_claims(&seen, &self.issuer, &self.audience, now)?;
        let identity = Arc::new(seen.identity(token, &self.scope_claims));
        self.passed.put(token, seen.exp, identity.clone());
        Ok(identity)
    }
}

/// What a bad signature's message adds for tokens of magg's own key.
const MAGG_KEY_HINT: &str = "the signature does not match magg's key (the token was signed \
     with another key, or changed); make one with `magg auth token`";

/// Checks a token's claims: issuer, audience, expiry and not-before (with a little leeway
/// for clocks), each with an error that says what is wrong.
pub(super) fn check_claims(
    seen: &Seen,
    issuer: &str,
    audience: &str,
    now: f64,
) -> Result<(), Rejection> {
    match &seen.iss {
        // Providers differ on a trailing `/` (`https://id.example.com/`); it names the same
        // issuer either way.
        Some(Value::String(iss)) if iss.trim_end_matches('/') == issuer.trim_end_matches('/') => {}
        Some(other) => {
            return Err(Rejection(format!(
                "issuer is {}, expected `{issuer}`",
                shown(other),
            )));
        }
        None => {
            return Err(Rejection(format!(
                "the token has no issuer (`iss`), expected `{issuer}`",
            )));
        }
    }
    let audience_ok = match &seen.aud {
        Some(Value::String(aud)) => *aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(Rejection(match &seen.aud {
            Some(aud) => format!("audience is {}, expected `{audience}`", shown(aud)),
            None => format!("the token has no audience (`aud`), expected `{audience}`"),
        }));
    }
    if let Some(exp) = seen.exp
        && exp <= now
    {
        return Err(expired(exp, now));
    }
    if let Some(nbf) = seen.nbf
        && nbf > now + NBF_LEEWAY
    {
        return Err(Rejection(format!(
            "token is not valid before {} (`nbf`); check this machine's clock",
            utc(nbf)
        )));
    }
    Ok(())
}

pub(super) fn expired(exp: f64, now: f64) -> Rejection {
    Rejection(format!(
        "token expired at {} ({} s ago); make a new one with `magg auth token`",
        utc(exp),
        (now - exp).round() as i64
    ))
}

/// A claim's value as a message shows it: a string in backticks, anything else as JSON, cut
/// short when long.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        format!("`{cut}...`")
    } else {
        format!("`{cut}`")
    }
}

/// The message for a token the decoder refused; `bad_signature` is the one for a signature
/// that does not match.
pub(super) fn decode_error(token: &str, kind: &ErrorKind, bad_signature: &str) -> Rejection {
    Rejection(match kind {
        ErrorKind::InvalidSignature => bad_signature.to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            let alg = jsonwebtoken::decode_header(token)
                .map(|h| format!("{:?}", h.alg))
                .unwrap_or_else(|_| "an unknown algorithm".to_owned());
            format!("the token is signed with {alg}; magg accepts RS256 tokens only")
        }
        ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            "the token's `alg` is not one magg knows; magg accepts RS256 tokens only".to_owned()
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::Json(_) => "not a JWT (three base64url parts separated by dots, with \
             JSON header and claims); make one with `magg auth token`"
            .to_owned(),
        other => format!("the token cannot be checked: {other:?}"),
    })
}

/// Seconds since the Unix epoch.
pub(super) fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(secs: f64) -> String {
    let secs = secs.floor() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sign(key: &SigningKey, claims: &Value) -> String {
        let encoding = EncodingKey::from_rsa_der(&key.private_der());
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &encoding).expect("sign")
    }

    fn setup() -> (SigningKey, BearerConfig, Verifier) {
        let key = SigningKey::generate().expect("key");
        let config = BearerConfig::default();
        let verifier = Verifier::new(&key, &config);
        (key, config, verifier)
    }

    #[test]
    fn an_issued_token_passes_and_says_what_magg_puts_in_it() {
        let (key, config, verifier) = setup();
        let token = key
            .issue(&config, "ann", 2, &["read".into(), "write".into()])
            .expect("issue");
        let identity = verifier.check(&token).expect("valid");
        assert_eq!(identity.subject.as_deref(), Some("ann"));
        assert_eq!(identity.scopes, ["read", "write"]);
        verifier.check(&token).expect("valid again (remembered)");
        let claims: Claims = jsonwebtoken::dangerous::insecure_decode(&token)
            .expect("decode")
            .claims;
        assert_eq!(claims.iss, "https://magg.local");
        assert_eq!(claims.aud, "magg");
        assert_eq!(claims.sub, "ann");
        assert_eq!(claims.exp - claims.iat, 7200);
        assert_eq!(claims.scope.as_deref(), Some("read write"));
    }

    #[test]
    fn each_wrong_claim_is_named() {
        let (key, _, verifier) = setup();
        let now = now_seconds() as i64;
        let base = json!({"iss": "https://magg.local", "aud": "magg", "sub": "x", "exp": now + 60});
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            sign(&key, &c)
        };
        let err = verifier.check(&with("aud", json!("x"))).unwrap_err();
        assert_eq!(err.0, "audience is `x`, expected `magg`");
        verifier
            .check(&with("aud", json!(["other", "magg"])))
            .expect("a list naming magg");
        verifier
            .check(&with("iss", json!("https://magg.local/")))
            .expect("the issuer with a trailing slash");
        let err = verifier
            .check(&with("iss", json!("https://evil")))
            .unwrap_err();
        assert_eq!(
            err.0,
            "issuer is `https://evil`, expected `https://magg.local`"
        );
        let err = verifier.check(&with("exp", json!(86_400))).unwrap_err();
        assert!(
            err.0.starts_with("token expired at 1970-01-02T00:00:00Z ("),
            "{err}"
        );
        let err = verifier.check(&with("nbf", json!(now + 3600))).unwrap_err();
        assert!(err.0.starts_with("token is not valid before"), "{err}");
        let other = SigningKey::generate().expect("key");
        let err = verifier.check(&sign(&other, &base)).unwrap_err();
        assert!(err.0.contains("signature does not match"), "{err}");
        let err = verifier.check("abc").unwrap_err();
        assert!(err.0.starts_with("not a JWT"), "{err}");
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &base,
            &EncodingKey::from_secret(b"s").expect("secret"),
        )
        .expect("hs256");
        let err = verifier.check(&hs).unwrap_err();
        assert_eq!(
            err.0,
            "the token is signed with HS256; magg accepts RS256 tokens only"
        );
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let (key, _, verifier) = setup();
        let now = now_seconds();
        let token = sign(
            &key,
            &json!({"iss": "https://magg.local", "aud": "magg", "exp": now + 60.0}),
        );
        verifier.check_at(&token, now).expect("valid now");
        let err = verifier.check_at(&token, now + 61.0).unwrap_err();
        assert!(err.0.starts_with("token expired at"), "{err}");
    }

    #[test]
    fn named_claims_count_as_scopes() {
        let (key, config, _) = setup();
        let verifier = Verifier::new(&key, &config).with_scope_claims(vec!["groups".into()]);
        let now = now_seconds() as i64;
        let token = sign(
            &key,
            &json!({"iss": "https://magg.local", "aud": "magg", "exp": now + 60,
                    "scp": ["b", "a"], "groups": ["admins", "ops"], "client_id": "svc"}),
        );
        let identity = verifier.check(&token).expect("valid");
        assert_eq!(identity.scopes, ["a", "b", "groups:admins", "groups:ops"]);
        assert_eq!(identity.subject.as_deref(), Some("svc"));
        assert!(identity.has_scope("groups:ops") && !identity.has_scope("ops"));
    }

    #[test]
    fn utc_formats_dates() {
        assert_eq!(utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_798_761_599.0), "2026-12-31T23:59:59Z");
    }
}
