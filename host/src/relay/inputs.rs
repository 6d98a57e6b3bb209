//! What a backend of protocol 2026-07-28 asks in an `input_required` result, put to a client of
//! the session era as the ordinary requests it knows (`elicitation/create`,
//! `sampling/createMessage`, `roots/list`); their answers become the retry's `inputResponses`.

use rmcp::{
    ErrorData as McpError,
    model::{ErrorCode, InputRequest, InputRequests, InputResponses, ServerRequest},
};
use tokio_util::sync::CancellationToken;

use super::{Ask, Origin, ask_session};

/// The most `input_required` rounds magg answers for one request before it gives up: a server
/// that keeps asking would otherwise hold the client's request for ever.
pub const MAX_ROUNDS: usize = 16;

/// Whether the client of `origin` takes server-to-client requests, so that magg answers a
/// backend's `input_required` for it (a stateless client gets the result itself, to answer).
pub fn answers_for(origin: &Origin) -> bool {
    origin.inputs.is_none() && !origin.session.detached
}

/// Asks the client of `origin`, one by one, what `server` asked in its `input_required`
/// result; their answers under the same keys. The first request the client cannot or does
/// not answer ends it with that error.
pub async fn answer(
    origin: &Origin,
    server: &str,
    requests: InputRequests,
    ct: &CancellationToken,
) -> Result<InputResponses, McpError> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let (ask, request) = as_request(request).ok_or_else(|| {
            McpError::invalid_params(
                format!(
                    "server `{server}` asked for input {key:?} of a kind magg cannot put to a \
                     client (only elicitation, sampling and roots)"
                ),
                None,
            )
        })?;
        let answer = ask_session(
            &origin.session,
            origin.request_id.clone(),
            server,
            ask,
            request,
            Default::default(),
            ct,
        )
        .await?;
        let value = serde_json::to_value(&answer).map_err(|e| {
            McpError::internal_error(format!("the client's answer to {key:?}: {e}"), None)
        })?;
        responses.insert(key, value);
    }
    Ok(responses)
}

/// The error when `server` still asks for input after [`MAX_ROUNDS`] rounds.
pub fn too_many_rounds(server: &str) -> McpError {
    McpError::new(
        ErrorCode::INTERNAL_ERROR,
        format!(
            "server `{server}` asked for input {MAX_ROUNDS} times in one request without \
             finishing it; magg stopped answering. Check the server, or call it from a client of \
             protocol 2026-07-28, which answers input_required results itself"
        ),
        None,
    )
}

/// An input request as the client request it stands for.
fn as_request(request: InputRequest) -> Option<(Ask, ServerRequest)> {
    Some(match request {
        InputRequest::CreateMessage(r) => (Ask::Sampling, ServerRequest::CreateMessageRequest(r)),
        InputRequest::Elicitation(r) => {
            let ask = match &r.params {
                rmcp::model::ElicitRequestParams::UrlElicitationParams { .. } => Ask::ElicitUrl,
                _ => Ask::ElicitForm,
            };
            (ask, ServerRequest::ElicitRequest(r))
        }
        InputRequest::ListRoots(r) => (Ask::Roots, ServerRequest::ListRootsRequest(r)),
        _ => return None,
    })
}
