//! The bearer-token check in front of every route when authentication is on, and the
//! protected-resource metadata (RFC 9728) that tells an OAuth client where to get a token.
//!
//! - A request without a valid `Authorization: Bearer <token>` gets `401 Unauthorized` with a
//!   `WWW-Authenticate` challenge (RFC 6750) whose `error_description` says what to fix (and,
//!   with an OAuth authorization server set up, `resource_metadata` pointing to the metadata),
//!   and a JSON body with the same `error` and `error_description` (the shape Magg's server
//!   answers with).
//! - A valid token without a scope every request needs gets `403 Forbidden` with
//!   `error="insufficient_scope"` and the `scope` to ask for.
//! - A token magg cannot check now (the authorization server's keys cannot be fetched) gets
//!   `503 Service Unavailable`: the client is not at fault, and may retry.
//! - A request that passes carries its [`Caller`] (identity and what it may see) in its
//!   extensions, for the MCP handler and the management API.
//! - `GET /.well-known/oauth-protected-resource` (and the same with `/mcp` after it, where
//!   RFC 9728 puts the metadata of the resource `/mcp`) answers without a token.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use crate::auth::{Caller, Gate, Refusal, Rejection};

/// Where RFC 9728 puts protected-resource metadata.
pub(super) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the check needs: the gate, and the scheme clients reach magg with.
#[derive(Clone)]
pub(super) struct Check {
    pub(super) gate: Arc<Gate>,
    pub(super) scheme: &'static str,
}

impl Check {
    /// magg's `/mcp` URL as the client of `headers` reached it (or as configured).
    pub(super) fn resource(&self, headers: &HeaderMap) -> String {
        if let Some(resource) = self.gate.configured_resource() {
            return resource.to_owned();
        }
        format!("{}/mcp", self.origin(headers))
    }

    /// `scheme://host` as the client of `headers` reached magg.
    fn origin(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }

    /// The URL of the metadata of `resource`.
    fn metadata_url(&self, headers: &HeaderMap) -> Option<String> {
        self.gate.oauth()?;
        let resource = self.resource(headers);
        Some(match url::Url::parse(&resource) {
            Ok(url) => format!(
                "{}{METADATA_PATH}{}",
                url.origin().ascii_serialization(),
                url.path().trim_end_matches('/')
            ),
            Err(_) => format!("{}{METADATA_PATH}/mcp", self.origin(headers)),
        })
    }
}

/// Lets a request with a valid bearer token through, with its [`Caller`]; answers any other
/// with 401, 403 or 503.
pub(super) async fn require(
    State(check): State<Check>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = match token(request.headers().get(header::AUTHORIZATION)) {
        Ok(token) => {
            let resource = check.resource(request.headers());
            check.gate.check(token, &resource).await
        }
        Err(missing) => Err(Refusal::Invalid(missing)),
    };
    match outcome {
        Ok(caller) => {
            request.extensions_mut().insert(Arc::new(caller));
            next.run(request).await
        }
        Err(refusal) => {
            tracing::debug!("refused an HTTP request: {refusal:?}");
            let scope = check.gate.challenge_scope();
            let metadata = check.metadata_url(request.headers());
            refused(&refusal, metadata.as_deref(), scope.as_deref())
        }
    }
}

/// `GET` of the protected-resource metadata: the resource, its authorization server, and the
/// scopes it knows.
pub(super) async fn metadata(State(check): State<Check>, request: Request) -> Response {
    let resource = check.resource(request.headers());
    match check.gate.resource_metadata(&resource) {
        Some(metadata) => {
            let mut response = axum::Json(metadata).into_response();
            response.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            response
        }
        None => (
            StatusCode::NOT_FOUND,
            "Not Found: magg has no OAuth authorization server set up (`oauth` in auth.json)",
        )
            .into_response(),
    }
}

/// The response to a refused request; `metadata` is the URL of magg's protected-resource
/// metadata and `scope` what a client without a valid token should ask for.
pub(super) fn refused(refusal: &Refusal, metadata: Option<&str>, scope: Option<&str>) -> Response {
    let mut params = Vec::new();
    if let Some(metadata) = metadata {
        params.push(format!("resource_metadata=\"{}\"", quotable(metadata)));
    }
    let (status, error, description) = match refusal {
        Refusal::Invalid(rejection) => {
            if let Some(scope) = scope {
                params.push(format!("scope=\"{}\"", quotable(scope)));
            }
            (StatusCode::UNAUTHORIZED, "invalid_token", &rejection.0)
        }
        Refusal::Insufficient { needed, message } => {
            params.push(format!("scope=\"{}\"", quotable(&needed.join(" "))));
            (StatusCode::FORBIDDEN, "insufficient_scope", message)
        }
        Refusal::Unavailable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            why,
        ),
    };
    params.insert(0, format!("error=\"{error}\""));
    params.push(format!("error_description=\"{}\"", quotable(description)));
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    } else if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", params.join(", "))) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The token of an `Authorization: Bearer <token>` header.
pub(super) fn token(value: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let Some(value) = value else {
        return Err(Rejection(
            "Authentication required: send `Authorization: Bearer <token>` (make a token with \
             `magg auth token`, or get one from the authorization server)"
                .to_owned(),
        ));
    };
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Rejection(
            "the Authorization header must be `Bearer <token>` (make a token with `magg auth \
             token`)"
                .to_owned(),
        )),
    }
}

/// The caller a request carries, when authentication is on and its token passed.
pub(super) fn caller_of(request: &Request) -> Option<Arc<Caller>> {
    request.extensions().get::<Arc<Caller>>().cloned()
}

/// `text` as it may stand inside a quoted header parameter: printable ASCII without `"` or `\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_header_gives_a_token() {
        let header = |v: &str| HeaderValue::from_str(v).expect("header");
        assert_eq!(token(Some(&header("Bearer abc"))), Ok("abc"));
        assert_eq!(token(Some(&header("bearer  abc "))), Ok("abc"));
        assert!(token(Some(&header("Basic abc"))).is_err());
        assert!(token(Some(&header("Bearer "))).is_err());
        assert!(
            token(None)
                .unwrap_err()
                .0
                .starts_with("Authentication required")
        );
    }

    #[test]
    fn descriptions_fit_in_a_quoted_string() {
        assert_eq!(quotable("a \"b\" \\ é"), "a 'b' / ?");
    }

    #[test]
    fn refusals_carry_their_challenge() {
        let response = refused(
            &Refusal::Insufficient {
                needed: vec!["mcp".into(), "tools".into()],
                message: "lacks mcp".into(),
            },
            Some("http://h/.well-known/oauth-protected-resource/mcp"),
            None,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii");
        assert_eq!(
            challenge,
            "Bearer error=\"insufficient_scope\", resource_metadata=\"http://h/.well-known/oauth-protected-resource/mcp\", scope=\"mcp tools\", error_description=\"lacks mcp\""
        );
        let response = refused(&Refusal::Unavailable("down".into()), None, None);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
