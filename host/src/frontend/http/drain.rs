//! `/mcp` while magg drains before it stops: which POSTs are new requests, the `503` they get,
//! and a response body that holds its work guard until it has been sent.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use rmcp::model::{ErrorData, JsonRpcError, RequestId};

use crate::{frontend::stdio::shutting_down, hub::Work};

/// How long a client refused while magg drains is asked to wait before it tries again (by
/// then a restarted magg, or another instance behind the same address, can answer).
const RETRY_AFTER_SECS: u32 = 5;

/// The parts of a POSTed message the drain looks at.
#[derive(serde::Deserialize)]
struct Head {
    method: Option<serde::de::IgnoredAny>,
    id: Option<RequestId>,
}

/// Whether a POST body is a request (a method and an id): the work magg refuses while it
/// drains. Notifications and answers to magg's own requests are not, and still pass.
pub fn is_request(body: &[u8]) -> bool {
    serde_json::from_slice::<Head>(body)
        .is_ok_and(|head| head.method.is_some() && head.id.is_some())
}

/// `503 Service Unavailable` with `Retry-After` and a JSON-RPC error naming the request's id
/// (when `body` has one).
pub fn refusal(body: &[u8]) -> Response {
    let id = serde_json::from_slice::<Head>(body)
        .ok()
        .and_then(|head| head.id);
    let error: ErrorData = shutting_down();
    let json = serde_json::to_vec(&JsonRpcError::new(id, error)).unwrap_or_default();
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// `response` with `work` held until its body has been sent whole (or dropped).
pub fn counted(response: Response, work: Work) -> Response {
    response.map(|body| Body::new(Counted { body, _work: work }))
}

/// A response body that counts as work in flight while it lives.
struct Counted {
    body: Body,
    _work: Work,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
