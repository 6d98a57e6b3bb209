//! POST bodies: read once, bounded, and the `400 Bad Request` one gets when it is no single
//! JSON-RPC message. rmcp answers such a body `415 Unsupported Media Type`; the MCP transport
//! says a server that cannot accept the input answers 400, with a JSON-RPC error without an
//! `id` as the body: parse error (-32700) for a body that is not JSON (an empty one included),
//! invalid request (-32600) for JSON that is not a message, and for a batch, which protocol
//! versions since 2025-06-18 no longer have.

use axum::{
    body::{Body, Bytes},
    http::{
        HeaderMap, StatusCode,
        header::{CONNECTION, CONTENT_TYPE},
    },
    response::{IntoResponse as _, Response},
};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use rmcp::model::{ClientJsonRpcMessage, ErrorData, JsonRpcError, RequestId};

use super::listen::{BodyTimedOut, is_body_timeout};

/// Reads `body` whole; a body over `limit` bytes is refused with `413 Payload Too Large` as
/// soon as it passes the limit, one that does not arrive in time with `408 Request Timeout`
/// (and the connection closed), and one that breaks off with `400 Bad Request`.
pub async fn read(body: Body, limit: usize) -> Result<Bytes, Response> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Payload Too Large: request body exceeds {limit} bytes"),
        )
            .into_response()),
        Err(error) if is_body_timeout(error.as_ref()) => {
            tracing::debug!("{error}");
            Err((
                StatusCode::REQUEST_TIMEOUT,
                [(CONNECTION, "close")],
                format!("Request Timeout: {BodyTimedOut}"),
            )
                .into_response())
        }
        Err(error) => Err((
            StatusCode::BAD_REQUEST,
            format!("Bad Request: cannot read the request body: {error}"),
        )
            .into_response()),
    }
}

/// Whether the request says its body is `application/json` (parameters aside).
pub fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The `400 Bad Request` for `body` when it is no single JSON-RPC message; `None` when it is
/// one.
pub fn rejection(body: &[u8]) -> Option<Response> {
    let error = if body.trim_ascii().is_empty() {
        ErrorData::parse_error("Parse error: the request body is empty", None)
    } else if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        ErrorData::parse_error(format!("Parse error: {error}"), None)
    } else if body.trim_ascii_start().starts_with(b"[") {
        ErrorData::invalid_request(
            "Invalid Request: JSON-RPC batches are not supported by this protocol version; \
             send each message in a request of its own",
            None,
        )
    } else {
        let error = serde_json::from_slice::<ClientJsonRpcMessage>(body).err()?;
        ErrorData::invalid_request(format!("Invalid Request: {error}"), None)
    };
    let body = serde_json::to_vec(&JsonRpcError::new(readable_id(body), error)).ok()?;
    Some(
        (
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    )
}

/// The `id` of a JSON object that is no valid message, when it has a usable one.
fn readable_id(body: &[u8]) -> Option<RequestId> {
    #[derive(serde::Deserialize)]
    struct WithId {
        id: Option<RequestId>,
    }
    serde_json::from_slice::<WithId>(body).ok()?.id
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rejected(body: &str) -> (StatusCode, serde_json::Value) {
        let response = rejection(body.as_bytes()).expect("a rejection");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[tokio::test]
    async fn not_json_is_a_parse_error_and_a_batch_an_invalid_request() {
        for body in ["", "  \n", "{\"jsonrpc\":", "[1,"] {
            let (status, error) = rejected(body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(error["error"]["code"], -32700, "{body:?}: {error}");
            assert!(error.get("id").is_none(), "{error}");
        }
        let (_, error) = rejected(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).await;
        assert_eq!(error["error"]["code"], -32600, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("batches")
        );
        let (_, error) = rejected(r#"{"jsonrpc":"2.0","id":4,"method":"ping","params":7}"#).await;
        assert_eq!(error["error"]["code"], -32600, "{error}");
        assert_eq!(error["id"], 4, "{error}");
    }

    #[test]
    fn a_message_is_not_rejected() {
        assert!(rejection(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_none());
    }
}
