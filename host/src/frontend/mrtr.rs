//! Multi round-trip requests for stateless clients (protocol 2026-07-28) whose backends still
//! ask the client in the middle of a call (sampling, elicitation, roots, as 2025-11-25 servers
//! do).
//!
//! A stateless client's tools/call runs in a task of its own. When its backend asks the
//! client something, the call answers `input_required` with that request and a `requestState`
//! naming the suspended call; the backend's request stays open. The client's retry (same
//! call, with `inputResponses` and the `requestState`) answers the backend's request, and the
//! call goes on, to its result or to the next `input_required`. A suspended call that is not
//! resumed within [`SUSPEND_LIMIT`] is cancelled at its backend.
//!
//! A backend of protocol 2026-07-28 answers `input_required` itself: that result reaches the
//! client as the backend sent it, and the retry, with the backend's own `requestState` (or
//! none), goes to the backend as a new call carrying the client's `inputResponses`.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientResult, ErrorCode,
        GetPromptRequestParams, GetPromptResponse, InputRequest, InputRequests,
        InputRequiredResult, ReadResourceRequestParams, ReadResourceResponse, ServerRequest,
    },
    service::RequestContext,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Caller,
    hub::Hub,
    relay::{Ask, InputAsk, ORIGIN, Origin, Session, Trust, inputs::Retried},
};

/// How the `requestState` of a call magg suspended begins; any other is a backend's.
const STATE_PREFIX: &str = "magg-call-";

/// How long a suspended call waits for the client's retry.
pub const SUSPEND_LIMIT: Duration = Duration::from_secs(300);

type Answer = oneshot::Sender<Result<ClientResult, McpError>>;

/// How a stateless request that may ask the client ended: a tools/call, prompts/get or
/// resources/read result (complete, or a backend's own `input_required`).
enum Done {
    Tool(CallToolResponse),
    Prompt(GetPromptResponse),
    Resource(ReadResourceResponse),
}

/// What [`wait`] comes back with: the request's end, or what its backend asks.
enum Waited {
    Done(Done),
    Asked(InputRequiredResult),
}

/// The work of a stateless request, run in a task of its own inside the request's origin.
type Work = Pin<Box<dyn Future<Output = Result<Done, McpError>> + Send>>;

/// A stateless client's call waiting for its retry.
struct Suspended {
    result: oneshot::Receiver<Result<Done, McpError>>,
    inputs: mpsc::UnboundedReceiver<InputAsk>,
    /// The backend requests handed to the client, by their key in `inputRequests`.
    pending: HashMap<String, (Ask, Answer)>,
    next_key: u64,
    cancel: CancellationToken,
    touched: Instant,
    /// The request's one-request session, which follows the client's rounds.
    session: Arc<Session>,
}

type Slot = Arc<tokio::sync::Mutex<Suspended>>;

/// The suspended calls of this process, by `requestState`.
static SUSPENDED: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Mutex::default);
static NEXT: AtomicU64 = AtomicU64::new(0);

fn slot(state: &str) -> Option<Slot> {
    SUSPENDED.lock().ok()?.get(state).cloned()
}

fn forget(state: &str) {
    if let Ok(mut map) = SUSPENDED.lock() {
        map.remove(state);
    }
}

/// Runs a stateless client's tools/call: a new call, or the retry of a suspended one.
pub async fn call_tool(
    hub: &Arc<Hub>,
    mut params: CallToolRequestParams,
    context: RequestContext<RoleServer>,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> Result<CallToolResponse, McpError> {
    // What the client can answer goes to the backend, which may ask only that (a backend of
    // protocol 2026-07-28 reads it from the request's `_meta`).
    if let Some(caps) = context.meta.client_capabilities() {
        params
            .meta
            .get_or_insert_default()
            .set_client_capabilities(caps);
    }
    let parent = super::trace_parent(&context);
    let hub = hub.clone();
    let work = move |params: CallToolRequestParams| -> Work {
        Box::pin(async move {
            let ct = CancellationToken::new();
            let reply = crate::call::call_tool_params_from(&hub, &params, parent, ct).await;
            reply.map(Done::Tool)
        })
    };
    match run(params, work, &context, trust, caller).await? {
        Waited::Done(Done::Tool(response)) => Ok(response),
        Waited::Asked(asked) => Ok(CallToolResponse::InputRequired(asked)),
        Waited::Done(_) => Err(mixed()),
    }
}

/// Runs a stateless client's prompts/get whose backend may ask it something.
pub async fn get_prompt(
    hub: &Arc<Hub>,
    params: GetPromptRequestParams,
    context: RequestContext<RoleServer>,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> Result<GetPromptResponse, McpError> {
    let hub = hub.clone();
    let work = move |params| -> Work {
        Box::pin(async move {
            let ct = CancellationToken::new();
            hub.get_prompt(params, ct).await.map(Done::Prompt)
        })
    };
    match run(params, work, &context, trust, caller).await? {
        Waited::Done(Done::Prompt(response)) => Ok(response),
        Waited::Asked(asked) => Ok(GetPromptResponse::InputRequired(asked)),
        Waited::Done(_) => Err(mixed()),
    }
}

/// Runs a stateless client's resources/read whose backend may ask it something.
pub async fn read_resource(
    hub: &Arc<Hub>,
    params: ReadResourceRequestParams,
    context: RequestContext<RoleServer>,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> Result<ReadResourceResponse, McpError> {
    let hub = hub.clone();
    let work = move |params| -> Work {
        Box::pin(async move {
            let ct = CancellationToken::new();
            hub.read_resource(params, ct).await.map(Done::Resource)
        })
    };
    match run(params, work, &context, trust, caller).await? {
        Waited::Done(Done::Resource(response)) => Ok(response),
        Waited::Asked(asked) => Ok(ReadResourceResponse::InputRequired(asked)),
        Waited::Done(_) => Err(mixed()),
    }
}

/// A retry whose `requestState` names a suspended request of another method.
fn mixed() -> McpError {
    McpError::invalid_params(
        "the requestState names a request of another method; send the retry with the method \
         and params of the request that was answered with input_required",
        None,
    )
}

/// A new stateless request (its `work`, given the params to send its backend), or the retry
/// of a suspended one (the params' `requestState` is magg's: their `inputResponses` answer
/// what the suspended request asked).
async fn run<P: Retried>(
    mut params: P,
    work: impl FnOnce(P) -> Work,
    context: &RequestContext<RoleServer>,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> Result<Waited, McpError> {
    let (state, responses) = params.take_retry();
    let (state, slot) = match state {
        // A backend's own state (a backend of protocol 2026-07-28 answered `input_required`
        // itself): the retry goes to it as the client sent it.
        Some(state) if !state.starts_with(STATE_PREFIX) => {
            params.set_retry(Some(state), responses);
            start(work(params), context, trust, caller)
        }
        Some(state) => {
            let slot = self::slot(&state).ok_or_else(|| {
                McpError::invalid_params(
                    format!(
                        "requestState {state:?} names no request magg is holding (it finished, \
                         expired after {} s, or magg restarted); send the request again without it",
                        SUSPEND_LIMIT.as_secs()
                    ),
                    None,
                )
            })?;
            let mut suspended = slot.lock().await;
            // What the request sends from now on belongs on this round's stream.
            suspended.session.follow(context.peer.clone());
            for (key, value) in responses.unwrap_or_default() {
                match suspended.pending.remove(&key) {
                    Some((ask, answer)) => {
                        let _ = answer.send(parse_answer(ask, value));
                    }
                    None => tracing::debug!("inputResponses key {key:?} answers nothing"),
                }
            }
            drop(suspended);
            (state, slot)
        }
        // No state: a new request; answers without one are the backend's (its own, stateless
        // `input_required` that carried no state).
        None => {
            params.set_retry(None, responses);
            start(work(params), context, trust, caller)
        }
    };
    wait(&state, &slot, context).await
}

/// Starts a stateless request's `work` in a task of its own, suspended until it ends or asks
/// something.
fn start(
    work: Work,
    context: &RequestContext<RoleServer>,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> (String, Slot) {
    let (inputs_tx, inputs) = mpsc::unbounded_channel();
    let (result_tx, result) = oneshot::channel();
    let cancel = CancellationToken::new();
    let session = Session::detached(context.peer.clone(), trust);
    session.set_caller(caller);
    session.set_request_log_level(context.meta.log_level());
    let origin = Origin {
        inputs: Some(inputs_tx),
        ..Origin::new(
            session.clone(),
            Some(context.id.clone()),
            context.meta.get_progress_token(),
        )
    };
    let ct = cancel.clone();
    tokio::spawn(async move {
        let outcome = tokio::select! {
            outcome = ORIGIN.scope(origin, work) => outcome,
            () = ct.cancelled() => Err(McpError::internal_error("cancelled", None)),
        };
        let _ = result_tx.send(outcome);
    });
    let state = format!(
        "{STATE_PREFIX}{}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed),
        unguessable()
    );
    let slot: Slot = Arc::new(tokio::sync::Mutex::new(Suspended {
        result,
        inputs,
        pending: HashMap::new(),
        next_key: 0,
        cancel: cancel.clone(),
        touched: Instant::now(),
        session,
    }));
    (state, slot)
}

/// Holds `slot` under `state` for the client's retry (the first time its request asks
/// something), until it ends or [`SUSPEND_LIMIT`] passes without a retry. A request that asks
/// nothing is never held.
fn hold(state: &str, slot: &Slot) {
    let new = SUSPENDED
        .lock()
        .is_ok_and(|mut map| map.insert(state.to_owned(), slot.clone()).is_none());
    if new {
        tokio::spawn(expire(state.to_owned(), slot.clone()));
    }
}

/// Cancels a suspended call nobody resumed in time.
async fn expire(state: String, slot: Slot) {
    loop {
        tokio::time::sleep(SUSPEND_LIMIT / 4).await;
        if self::slot(&state).is_none() {
            return;
        }
        if let Ok(suspended) = slot.try_lock()
            && suspended.touched.elapsed() > SUSPEND_LIMIT
        {
            tracing::info!(
                "a stateless client did not resume its call within {SUSPEND_LIMIT:?}; cancelling it"
            );
            suspended.cancel.cancel();
            forget(&state);
            return;
        }
    }
}

/// Waits for the call's result, or for what its backend asks: then answers `input_required`,
/// or, when the client's request declared capabilities that do not cover what is asked,
/// `-32021` naming the capabilities it lacks (and the call ends).
async fn wait(
    state: &str,
    slot: &Slot,
    context: &RequestContext<RoleServer>,
) -> Result<Waited, McpError> {
    let client_ct = &context.ct;
    let mut suspended = slot.lock().await;
    suspended.touched = Instant::now();
    let Suspended {
        result,
        inputs,
        pending,
        next_key,
        cancel,
        ..
    } = &mut *suspended;
    tokio::select! {
        () = client_ct.cancelled() => {
            cancel.cancel();
            forget(state);
            Err(McpError::internal_error("request cancelled by the client", None))
        }
        outcome = result => {
            forget(state);
            outcome
                .unwrap_or_else(|_| Err(McpError::internal_error("the call's task ended without a result", None)))
                .map(Waited::Done)
        }
        Some(first) = inputs.recv() => {
            let mut asked = vec![first];
            while let Ok(more) = inputs.try_recv() {
                asked.push(more);
            }
            if let Some(missing) = context
                .meta
                .client_capabilities()
                .and_then(|declared| missing_capabilities(&declared, &asked))
            {
                cancel.cancel();
                forget(state);
                return Err(missing);
            }
            let mut requests = InputRequests::new();
            let mut add = |asked: InputAsk| {
                let key = next_key.to_string();
                *next_key += 1;
                match input_request(asked.request) {
                    Some(request) => {
                        requests.insert(key.clone(), request);
                        pending.insert(key, (asked.ask, asked.answer));
                    }
                    None => {
                        let _ = asked.answer.send(Err(McpError::invalid_request(
                            "only sampling, elicitation and roots requests reach a stateless client",
                            None,
                        )));
                    }
                }
            };
            for one in asked {
                add(one);
            }
            hold(state, slot);
            Ok(Waited::Asked(InputRequiredResult::new(
                Some(requests),
                Some(state.to_owned()),
            )))
        }
    }
}

/// Protocol 2026-07-28's `-32021` (missing required client capability) when what the backend
/// asks is more than the client declared in its request: the error names what is missing in
/// `data.requiredCapabilities`, so that the client can declare it and send the request again.
fn missing_capabilities(declared: &ClientCapabilities, asked: &[InputAsk]) -> Option<McpError> {
    let missing: Vec<&InputAsk> = asked
        .iter()
        .filter(|a| !a.ask.declared_in(declared))
        .collect();
    let first = missing.first()?;
    let mut required = serde_json::Map::new();
    for one in &missing {
        let (name, value) = one.ask.required();
        match (required.get_mut(name), value) {
            (Some(serde_json::Value::Object(have)), serde_json::Value::Object(more)) => {
                have.extend(more);
            }
            (_, value) => {
                required.insert(name.to_owned(), value);
            }
        }
    }
    let names: Vec<&str> = missing.iter().map(|a| a.ask.capability()).collect();
    Some(McpError::new(
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!(
            "server `{}` asks the client for {} ({}), a capability this request did not declare; \
             declare it in the request's _meta io.modelcontextprotocol/clientCapabilities and send \
             the request again",
            first.server,
            names.join(" and "),
            first.ask.method()
        ),
        Some(serde_json::json!({"requiredCapabilities": required})),
    ))
}

/// 128 random bits, hex: a `requestState` is all a client needs to resume (and answer for)
/// a call, so another client must not be able to guess one.
fn unguessable() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // No /dev/urandom: the clock and the address of a fresh allocation, hashed.
        use sha2::Digest as _;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let here = Box::new(0u8);
        let seed = format!("{nanos}-{:p}-{}", &*here, std::process::id());
        bytes.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes())[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn input_request(request: ServerRequest) -> Option<InputRequest> {
    match request {
        ServerRequest::CreateMessageRequest(r) => Some(InputRequest::CreateMessage(r)),
        ServerRequest::ElicitRequest(r) => Some(InputRequest::Elicitation(r)),
        ServerRequest::ListRootsRequest(r) => Some(InputRequest::ListRoots(r)),
        _ => None,
    }
}

/// The client's answer (an `inputResponses` value) as the result the backend waits for.
fn parse_answer(ask: Ask, value: serde_json::Value) -> Result<ClientResult, McpError> {
    let bad = |e: serde_json::Error| {
        McpError::invalid_params(
            format!("the client's answer is not a valid result: {e}"),
            None,
        )
    };
    #[allow(deprecated)] // sampling and roots: what 2025-11-25 backends ask for
    Ok(match ask {
        Ask::Sampling => {
            ClientResult::CreateMessageResult(Box::new(serde_json::from_value(value).map_err(bad)?))
        }
        Ask::Roots => ClientResult::ListRootsResult(serde_json::from_value(value).map_err(bad)?),
        Ask::ElicitForm | Ask::ElicitUrl => {
            ClientResult::ElicitResult(serde_json::from_value(value).map_err(bad)?)
        }
    })
}
