//! The protocol errors rmcp answers at the transport, before magg's handler sees the request,
//! given a message that says what to do. rmcp's own texts name the fault ("Unsupported
//! protocol version"); the client's developer also needs the fix. The code, the id and the
//! `data` stay as rmcp made them, so clients that read codes see no change:
//! - `-32022` unsupported protocol version: which versions magg speaks, and where the version
//!   goes (the `MCP-Protocol-Version` header and the request's `_meta`);
//! - `-32020` header mismatch: which headers protocol 2026-07-28 asks for and what they must
//!   repeat from the body.
//!
//! - `-32601` for a method protocol 2026-07-28 removed (`ping`, `resources/subscribe` with
//!   valid params), which rmcp answers with the bare method name: what replaces it.
//!
//! Only `400 Bad Request` and `404 Not Found` answers with a JSON body are read, so no other
//! response is touched.

use axum::{
    body::Body,
    http::{StatusCode, header::CONTENT_TYPE},
    response::Response,
};
use http_body_util::BodyExt as _;
use rmcp::model::ErrorCode;
use serde_json::Value;

/// Largest body read for advice: rmcp's error bodies are a few hundred bytes.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// `response`, its JSON-RPC error's message extended with what to do when it is one of the
/// module's errors.
pub async fn advise(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let status = response.status();
    if !(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND) || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
    else {
        return Response::from_parts(parts, Body::empty());
    };
    let advised = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut message| {
            let error = message.get_mut("error")?.as_object_mut()?;
            let code = error.get("code")?.as_i64()?;
            let said = error.get("message")?.as_str()?.to_owned();
            let advice = advice(code, &said, error.get("data"))?;
            error.insert("message".to_owned(), Value::String(advice));
            serde_json::to_vec(&message).ok()
        });
    let bytes = match advised {
        Some(advised) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            advised.into()
        }
        None => bytes,
    };
    Response::from_parts(parts, Body::from(bytes))
}

/// The message for an error of `code` that said `said`, with what to do; `None` for an error
/// this module leaves alone.
fn advice(code: i64, said: &str, data: Option<&Value>) -> Option<String> {
    if code == i64::from(ErrorCode::UNSUPPORTED_PROTOCOL_VERSION.0) {
        let requested = data
            .and_then(|d| d.get("requested"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let supported: Vec<&str> = data
            .and_then(|d| d.get("supported"))
            .and_then(Value::as_array)
            .map(|all| all.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return Some(format!(
            "Unsupported protocol version {requested}: magg speaks {}. Send one of them in the \
             MCP-Protocol-Version header and in params._meta[\"io.modelcontextprotocol/\
             protocolVersion\"] (2026-07-28 and later), or open a session with initialize \
             (2025-11-25 and older)",
            supported.join(", ")
        ));
    }
    if code == i64::from(ErrorCode::METHOD_NOT_FOUND.0) {
        // rmcp names the removed method alone; magg's own answers say more already.
        return crate::frontend::removed_in_2026(said).map(|e| e.message.into_owned());
    }
    if code == i64::from(ErrorCode::HEADER_MISMATCH.0) {
        return Some(format!(
            "{said}. With protocol 2026-07-28 every request carries Mcp-Method (its method, as \
             in the body) and, for tools/call and prompts/get, Mcp-Name with params.name, for \
             resources/read and resources/subscribe params.uri; the MCP-Protocol-Version header \
             must match params._meta[\"io.modelcontextprotocol/protocolVersion\"]"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_versions_name_the_supported_ones() {
        let data = serde_json::json!({"requested": "2099-01-01", "supported": ["2025-11-25", "2026-07-28"]});
        let message =
            advice(-32022, "Unsupported protocol version", Some(&data)).unwrap_or_default();
        assert!(message.contains("2099-01-01"), "{message}");
        assert!(message.contains("2025-11-25, 2026-07-28"), "{message}");
        assert!(advice(-32600, "Invalid request", None).is_none());
    }
}
