//! What a backend of protocol 2026-07-28 asks in an `input_required` result, put to a client of
//! the session era as the ordinary requests it knows (`elicitation/create`,
//! `sampling/createMessage`, `roots/list`); their answers become the retry's `inputResponses`.

use std::future::Future;

use rmcp::{
    ErrorData as McpError,
    model::{
        CallToolRequestParams, ErrorCode, GetPromptRequestParams, GetPromptResponse, InputRequest,
        InputRequests, InputRequiredResult, InputResponses, ReadResourceRequestParams,
        ReadResourceResponse, ServerRequest,
    },
};
use tokio_util::sync::CancellationToken;

use super::{Ask, Origin, ask_session};

/// The most `input_required` rounds magg answers for one request before it gives up: a server
/// that keeps asking would otherwise hold the client's request for ever.
pub const MAX_ROUNDS: usize = 16;

/// The params of a request a backend may answer with `input_required` (tools/call,
/// prompts/get, resources/read): the retry's `requestState` and `inputResponses`.
pub trait Retried {
    /// Takes the state and answers out of the params.
    fn take_retry(&mut self) -> (Option<String>, Option<InputResponses>);
    /// Puts `state` and `responses` in the params, for the request's next round.
    fn set_retry(&mut self, state: Option<String>, responses: Option<InputResponses>);
}

macro_rules! retried {
    ($($params:ty),*) => {$(
        impl Retried for $params {
            fn take_retry(&mut self) -> (Option<String>, Option<InputResponses>) {
                (self.request_state.take(), self.input_responses.take())
            }

            fn set_retry(&mut self, state: Option<String>, responses: Option<InputResponses>) {
                self.request_state = state;
                self.input_responses = responses;
            }
        }
    )*};
}

retried!(
    CallToolRequestParams,
    GetPromptRequestParams,
    ReadResourceRequestParams
);

/// A response that may be a backend's `input_required`.
pub trait MayAsk {
    /// What the backend asked, if it did.
    fn asked(&self) -> Option<&InputRequiredResult>;
}

impl MayAsk for GetPromptResponse {
    fn asked(&self) -> Option<&InputRequiredResult> {
        match self {
            GetPromptResponse::InputRequired(asked) => Some(asked),
            _ => None,
        }
    }
}

impl MayAsk for ReadResourceResponse {
    fn asked(&self) -> Option<&InputRequiredResult> {
        match self {
            ReadResourceResponse::InputRequired(asked) => Some(asked),
            _ => None,
        }
    }
}

/// Sends `params` to `server` with `send`; while the backend answers `input_required` and
/// `origin` is a client magg answers for ([`answers_for`]), asks the client and sends the
/// request again with its answers, up to [`MAX_ROUNDS`]. Otherwise the first answer is the
/// result, as the backend gave it.
pub async fn rounds<P, R, F>(
    origin: Option<&Origin>,
    server: &str,
    mut params: P,
    ct: &CancellationToken,
    send: impl Fn(P) -> F,
) -> Result<R, McpError>
where
    P: Retried + Clone,
    R: MayAsk,
    F: Future<Output = Result<R, McpError>>,
{
    for _ in 0..=MAX_ROUNDS {
        let result = send(params.clone()).await;
        let (Some(origin), Ok(asked)) = (origin, &result) else {
            return result;
        };
        let Some(asked) = asked.asked() else {
            return result;
        };
        let requests = asked.input_requests.clone().unwrap_or_default();
        let responses = answer(origin, server, requests, ct).await?;
        params.set_retry(asked.request_state.clone(), Some(responses));
    }
    Err(too_many_rounds(server))
}

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
