//! The bearer-token check in front of `/mcp` when authentication is on: a request without a
//! valid `Authorization: Bearer <token>` gets `401 Unauthorized` with a `WWW-Authenticate`
//! challenge (RFC 6750) whose `error_description` says what to fix, and a JSON body with the
//! same `error` and `error_description` (the shape Magg's server answers with).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use crate::auth::{Rejection, Verifier};

/// Lets a request with a valid bearer token through; answers any other with 401.
pub(super) async fn require(
    State(verifier): State<Arc<Verifier>>,
    request: Request,
    next: Next,
) -> Response {
    let checked =
        token(request.headers().get(header::AUTHORIZATION)).and_then(|token| verifier.check(token));
    match checked {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            tracing::debug!("refused an HTTP request: {rejection}");
            unauthorized(&rejection)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn token(value: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let Some(value) = value else {
        return Err(Rejection(
            "Authentication required: send `Authorization: Bearer <token>` (make a token with \
             `magg auth token`)"
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

/// `401 Unauthorized` for `rejection`.
fn unauthorized(rejection: &Rejection) -> Response {
    let description = quotable(&rejection.0);
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    let body = serde_json::json!({
        "error": "invalid_token",
        "error_description": rejection.0,
    });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
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
}
