//! One life of a backend connection: spawn or connect, initialize, fetch the lists, then keep
//! them current until the connection ends or the backend is stopped.

use std::{collections::HashMap, process::Stdio, sync::Arc, time::Duration};

use rmcp::{
    RoleClient,
    model::ProtocolVersion,
    service::{ClientInitializeError, ClientLifecycleMode, ClientServiceExt, Peer, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use super::{
    Backend, Changed, ListKind, State, Status, client::BackendClient, lane::Lane, process::Process,
};
use crate::{
    config::{Protocol, ServerConfig, Settings},
    relay::Calls,
};

/// Variables a stdio backend inherits from magg's environment; everything else comes from its
/// `env`. The same set the MCP SDKs pass by default, plus locale and temp dir.
const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR",
];

/// How one life of a connection ended.
pub(super) enum Outcome {
    /// The backend was stopped on purpose.
    Stopped,
    /// The connection failed or ended; the supervisor decides what to do next.
    Ended {
        reason: String,
        /// Whether it got as far as serving (resets the restart backoff).
        was_running: bool,
    },
}

type Service = RunningService<RoleClient, BackendClient>;

/// For a backend of protocol 2026-07-28, which tells only listeners what changed: keeps a
/// `subscriptions/listen` stream open for the lists it says change and for the resources
/// magg's clients are subscribed to on it, and turns what arrives into the same events as a
/// session's notifications. The stream is opened again with the new set of resources whenever
/// that set changes ([`Backend::follow_resources`]). It ends with the connection.
fn listen(
    backend: &Arc<Backend>,
    peer: &Peer<RoleClient>,
    capabilities: Option<&rmcp::model::ServerCapabilities>,
    lists: mpsc::UnboundedSender<ListKind>,
) {
    let Some(capabilities) = capabilities else {
        return;
    };
    let changes = |flag: Option<bool>| flag.unwrap_or(false);
    let mut kinds = Vec::new();
    if capabilities
        .tools
        .as_ref()
        .is_some_and(|t| changes(t.list_changed))
    {
        kinds.push(ListKind::Tools);
    }
    if capabilities
        .prompts
        .as_ref()
        .is_some_and(|p| changes(p.list_changed))
    {
        kinds.push(ListKind::Prompts);
    }
    if capabilities
        .resources
        .as_ref()
        .is_some_and(|r| changes(r.list_changed))
    {
        kinds.push(ListKind::Resources);
    }
    let subscribes = capabilities
        .resources
        .as_ref()
        .is_some_and(|r| changes(r.subscribe));
    if kinds.is_empty() && !subscribes {
        return;
    }
    let peer = peer.clone();
    let backend = backend.clone();
    tokio::spawn(async move {
        let name = backend.name.clone();
        let mut first = true;
        loop {
            let uris = if subscribes {
                backend.sessions.subscribed_on(&name)
            } else {
                Vec::new()
            };
            if kinds.is_empty() && uris.is_empty() {
                // Nothing to hear until a client subscribes to one of its resources.
                tokio::select! {
                    () = backend.resources_to_follow.notified() => continue,
                    () = closed(&peer) => return,
                }
            }
            let mut filter = rmcp::model::SubscriptionFilter::builder();
            for kind in &kinds {
                filter = match kind {
                    ListKind::Tools => filter.tools_list_changed(),
                    ListKind::Prompts => filter.prompts_list_changed(),
                    ListKind::Resources => filter.resources_list_changed(),
                };
            }
            if !uris.is_empty() {
                filter = filter.resource_subscriptions(uris);
            }
            let mut subscription = match peer.listen(filter.build()).await {
                Ok(subscription) => subscription,
                Err(e) => {
                    tracing::warn!(
                        server = %name,
                        "could not listen for its changes (subscriptions/listen): {e}; \
                         its lists are read again only when it restarts"
                    );
                    return;
                }
            };
            if first {
                // A change between the first listing and the stream's acknowledgement was told
                // to nobody: read those lists again.
                for kind in &kinds {
                    let _ = lists.send(*kind);
                }
                first = false;
            }
            loop {
                let note = tokio::select! {
                    note = subscription.next() => note,
                    // Followed resources changed: a new stream with the new set (this one
                    // ends when it is dropped).
                    () = backend.resources_to_follow.notified() => break,
                };
                let kind = match note {
                    Ok(Some(rmcp::model::ServerNotification::ToolListChangedNotification(_))) => {
                        ListKind::Tools
                    }
                    Ok(Some(rmcp::model::ServerNotification::PromptListChangedNotification(_))) => {
                        ListKind::Prompts
                    }
                    Ok(Some(rmcp::model::ServerNotification::ResourceListChangedNotification(
                        _,
                    ))) => ListKind::Resources,
                    Ok(Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(
                        update,
                    ))) => {
                        backend
                            .sessions
                            .backend_resource_updated(&name, &update.params.uri);
                        continue;
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return,
                };
                if lists.send(kind).is_err() {
                    return;
                }
            }
        }
    });
}

/// Returns once the connection of `peer` has closed (checked every second).
async fn closed(peer: &Peer<RoleClient>) {
    while !peer.is_transport_closed() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Tells a backend that has just started what the clients already asked of all backends: the
/// log level, and the resource subscriptions it has.
#[allow(deprecated)] // logging and resources/subscribe are what 2025-11-25 servers speak
fn catch_up(
    backend: &Backend,
    peer: &Peer<RoleClient>,
    capabilities: Option<&rmcp::model::ServerCapabilities>,
) {
    let sessions = &backend.sessions;
    let level = sessions
        .most_verbose()
        .filter(|_| capabilities.is_some_and(|c| c.logging.is_some()));
    let uris = if capabilities
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.subscribe)
        .unwrap_or(false)
    {
        sessions.subscribed_on(&backend.name)
    } else {
        Vec::new()
    };
    if level.is_none() && uris.is_empty() {
        return;
    }
    let peer = peer.clone();
    let name = backend.name.clone();
    tokio::spawn(async move {
        if let Some(level) = level
            && let Err(e) = peer
                .set_level(rmcp::model::SetLevelRequestParams::new(level))
                .await
        {
            tracing::warn!(server = %name, "could not set its log level: {e}");
        }
        for uri in uris {
            if let Err(e) = peer
                .subscribe(rmcp::model::SubscribeRequestParams::new(uri.clone()))
                .await
            {
                tracing::warn!(server = %name, "could not subscribe again to {uri}: {e}");
            }
        }
    });
}

/// Connects, serves and watches one life of the backend's connection.
pub(super) async fn run(
    backend: &Arc<Backend>,
    settings: &Settings,
    changes: &mpsc::UnboundedSender<Changed>,
) -> Outcome {
    if backend.config.component.is_some() {
        return super::component::run(backend, changes).await;
    }
    let (lists_tx, mut lists_rx) = mpsc::unbounded_channel();
    let calls = Arc::new(Calls::default());
    let handler = BackendClient {
        server: backend.name.clone(),
        lists: lists_tx.clone(),
        sessions: backend.sessions.clone(),
        calls: calls.clone(),
    };
    let init = async {
        let (service, child, lane) = open(backend, settings, handler).await?;
        let peer = service.peer().clone();
        let lists = fetch_all(&backend.name, &peer, lane.as_deref())
            .await
            .map_err(|e| format!("listing failed: {e}"))?;
        Ok::<_, String>((service, child, lane, lists))
    };
    let init = async {
        match settings.backend_init_timeout {
            Some(limit) => match tokio::time::timeout(limit, init).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "did not finish initializing within {:.1}s (backend_init_timeout); check that \
                     the command starts an MCP server on stdio, or raise MAGG_BACKEND_INIT_TIMEOUT",
                    limit.as_secs_f64()
                )),
            },
            None => init.await,
        }
    };
    // Stopped while starting: dropping `init` kills the process group it spawned.
    let started = tokio::select! {
        started = init => started,
        _ = backend.stop.cancelled() => return Outcome::Stopped,
    };
    let (service, mut child, lane, lists) = match started {
        Ok(started) => started,
        Err(reason) => {
            return Outcome::Ended {
                reason,
                was_running: false,
            };
        }
    };
    let peer = service.peer().clone();
    let info = peer.peer_info();
    let pid = child.as_ref().and_then(Process::id);

    tracing::info!(
        server = %backend.name,
        pid,
        tools = lists.tools.len(),
        prompts = lists.prompts.len(),
        resources = lists.resources.len(),
        "backend ready"
    );
    backend.set(changes, |s| {
        s.status = Status::Running;
        s.since = std::time::Instant::now();
        s.peer = Some(peer.clone());
        s.lane = lane.clone();
        s.calls = Some(calls.clone());
        s.pid = pid;
        s.server_info = info.as_ref().and_then(|i| i.server_info.clone());
        s.capabilities = info.as_ref().map(|i| i.capabilities.clone());
        s.stateless = is_stateless(&peer);
        lists.apply(s);
    });

    if is_stateless(&peer) {
        listen(
            backend,
            &peer,
            info.as_ref().map(|i| &i.capabilities),
            lists_tx,
        );
    } else {
        catch_up(backend, &peer, info.as_ref().map(|i| &i.capabilities));
    }

    let service_ct = service.cancellation_token();
    let mut closed = tokio::spawn(service.waiting());
    let reason = loop {
        tokio::select! {
            _ = backend.stop.cancelled() => {
                service_ct.cancel();
                if let Some(child) = child.as_mut() {
                    child.end().await;
                }
                return Outcome::Stopped;
            }
            kind = lists_rx.recv() => {
                let Some(kind) = kind else { continue };
                // Coalesce a burst of notifications into one refetch per kind.
                let mut kinds = vec![kind];
                while let Ok(more) = lists_rx.try_recv() {
                    if !kinds.contains(&more) {
                        kinds.push(more);
                    }
                }
                for kind in kinds {
                    match fetch_kind(&backend.name, &peer, lane.as_deref(), kind).await {
                        Ok(lists) => backend.set(changes, |s| lists.apply(s)),
                        Err(e) => tracing::warn!(server = %backend.name, "refreshing {kind:?} after list_changed failed: {e}"),
                    }
                }
            }
            quit = &mut closed => {
                let _ = quit;
                break match child.as_mut() {
                    Some(child) => {
                        let reason = match tokio::time::timeout(Duration::from_millis(500), child.child.wait()).await {
                            Ok(Ok(status)) => format!("process exited ({status})"),
                            Ok(Err(e)) => format!("connection closed; waiting for the process failed: {e}"),
                            Err(_) => "connection closed (stdout ended while the process was still running; it was killed)".to_owned(),
                        };
                        // What it started goes with it.
                        child.end().await;
                        reason
                    }
                    None => "connection closed by the server".to_owned(),
                };
            }
        }
    };
    Outcome::Ended {
        reason,
        was_running: true,
    }
}

/// What [`open`] gives: the connection, the process and the lane of a stdio backend.
type Opened = (Service, Option<Process>, Option<Arc<Lane>>);

/// Spawns or connects the backend and runs the MCP handshake: by the server's `protocol`
/// setting, `server/discover` first, then `initialize` when the server answers that it speaks
/// no protocol version magg offers there (it lists only older ones).
async fn open(
    backend: &Arc<Backend>,
    settings: &Settings,
    handler: BackendClient,
) -> Result<Opened, String> {
    let mode = lifecycle(&backend.config);
    let auto = matches!(mode, ClientLifecycleMode::Auto { .. });
    match open_with(backend, settings, handler.clone(), mode).await {
        Err(Failed::NoSharedVersion(reason)) if auto => {
            tracing::info!(
                server = %backend.name,
                "{reason}; opening a session with initialize instead"
            );
            open_with(backend, settings, handler, ClientLifecycleMode::Initialize)
                .await
                .map_err(Failed::into_reason)
        }
        result => result.map_err(Failed::into_reason),
    }
}

/// Why [`open_with`] failed.
enum Failed {
    /// The server answered `server/discover` without a protocol version magg offers.
    NoSharedVersion(String),
    /// Anything else, said for the log and `magg_status`.
    Other(String),
}

impl Failed {
    fn into_reason(self) -> String {
        match self {
            Failed::NoSharedVersion(reason) | Failed::Other(reason) => reason,
        }
    }

    /// The failed handshake `error`, said with `what` before it.
    fn handshake(error: &ClientInitializeError, what: String) -> Failed {
        let reason = format!("{what}: {error}");
        match error {
            ClientInitializeError::NoCompatibleProtocolVersion { .. } => {
                Failed::NoSharedVersion(reason)
            }
            _ => Failed::Other(reason),
        }
    }
}

impl From<String> for Failed {
    fn from(reason: String) -> Failed {
        Failed::Other(reason)
    }
}

impl From<&str> for Failed {
    fn from(reason: &str) -> Failed {
        Failed::Other(reason.to_owned())
    }
}

/// [`open`] with the lifecycle `mode`.
async fn open_with(
    backend: &Arc<Backend>,
    settings: &Settings,
    handler: BackendClient,
    mode: ClientLifecycleMode,
) -> Result<Opened, Failed> {
    let config = &backend.config;
    if let Some((command, args)) = config.argv() {
        let command = command.as_str();
        let child = spawn(config, command, &args).map_err(|e| {
            format!(
                "could not start `{}`: {e}",
                config.command_line().unwrap_or_else(|| command.to_owned())
            )
        })?;
        let mut process = Process::new(child);
        let child = &mut process.child;
        let stdout = child.stdout.take().ok_or("child stdout was not captured")?;
        let stdin = child.stdin.take().ok_or("child stdin was not captured")?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(
                backend.clone(),
                stderr,
                settings.stderr_show,
            ));
        }
        let (lane, transport) = super::lane::wire(stdout, stdin);
        match handler.serve_with_lifecycle(transport, mode).await {
            Ok(service) => {
                if let Some(info) = service.peer().peer_info()
                    && is_stateless(service.peer())
                {
                    lane.set_envelope(super::client::envelope(&info.protocol_version));
                }
                Ok((service, Some(process), Some(lane)))
            }
            Err(e) => {
                let status =
                    match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
                        Ok(Ok(status)) => format!(" (process exited: {status})"),
                        _ => String::new(),
                    };
                process.end().await;
                Err(Failed::handshake(
                    &e,
                    format!("MCP initialize failed{status}"),
                ))
            }
        }
    } else if let Some(uri) = config.uri.as_deref()
        && super::sse::speaks_sse(config)
    {
        let read_timeout = super::sse::read_timeout(config)?;
        let transport = super::sse::connect(uri, headers(config)?, read_timeout).await?;
        // Legacy SSE predates protocol 2026-07-28: always a session.
        let service = handler
            .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
            .await
            .map_err(|e| {
                Failed::handshake(&e, format!("MCP initialize with {uri} (SSE) failed"))
            })?;
        Ok((service, None, None))
    } else if let Some(uri) = config.uri.as_deref() {
        crate::tls::install();
        let transport_config = StreamableHttpClientTransportConfig::with_uri(uri.to_owned())
            .custom_headers(headers(config)?);
        let transport =
            StreamableHttpClientTransport::<reqwest::Client>::from_config(transport_config);
        let service = handler
            .serve_with_lifecycle(transport, mode)
            .await
            .map_err(|e| Failed::handshake(&e, format!("MCP initialize with {uri} failed")))?;
        Ok((service, None, None))
    } else {
        Err("needs a way to run: set `command` or `uri` in its config".into())
    }
}

/// How magg opens the server of `config`: by its `protocol` setting, `server/discover` first
/// (2026-07-28 when the server speaks it, else a session), or only one of the two.
fn lifecycle(config: &ServerConfig) -> ClientLifecycleMode {
    let modern = || vec![ProtocolVersion::V_2026_07_28];
    match config.protocol.unwrap_or(Protocol::Auto) {
        Protocol::Auto => ClientLifecycleMode::Auto {
            preferred_versions: modern(),
            legacy_version: None,
        },
        Protocol::Stateless => ClientLifecycleMode::Discover {
            preferred_versions: modern(),
        },
        Protocol::Session => ClientLifecycleMode::Initialize,
    }
}

/// Whether the server behind `peer` was opened on protocol 2026-07-28 or later (no session:
/// every request carries its own metadata).
pub(crate) fn is_stateless(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .is_some_and(|info| !info.protocol_version.has_initialize())
}

/// Starts a stdio backend in its own process group, with a minimal inherited environment.
fn spawn(config: &ServerConfig, command: &str, args: &[String]) -> std::io::Result<Child> {
    let mut cmd = Command::new(command);
    let (pass_all, extra) = super::EXTRA_ENV
        .get()
        .map_or((false, &[][..]), |(p, e)| (*p, &e[..]));
    if !pass_all {
        cmd.env_clear().envs(
            INHERITED_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        );
    }
    cmd.args(args)
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .envs(&config.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &config.cwd {
        cmd.current_dir(cwd);
    }
    cmd.spawn()
}

/// Sends the backend's stderr to magg's log (stderr), never to stdout.
async fn forward_stderr(backend: Arc<Backend>, stderr: tokio::process::ChildStderr, show: bool) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        backend.remember_stderr(&line);
        if show {
            tracing::info!(target: "magg::backend::stderr", server = %backend.name, "{line}");
        } else {
            tracing::debug!(target: "magg::backend::stderr", server = %backend.name, "{line}");
        }
    }
}

fn headers(
    config: &ServerConfig,
) -> Result<HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>, String> {
    let mut out = HashMap::new();
    let Some(map) = config
        .transport
        .as_ref()
        .and_then(|t| t.get("headers"))
        .and_then(|h| h.as_object())
    else {
        return Ok(out);
    };
    for (name, value) in map {
        let Some(value) = value.as_str() else {
            return Err(format!("transport.headers.{name} must be a string"));
        };
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("transport.headers: bad header name {name:?}: {e}"))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|e| format!("transport.headers.{name}: bad value: {e}"))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// Freshly fetched lists; `None` for a kind that was not fetched.
#[derive(Default)]
struct Lists {
    tools: Vec<crate::mcp::ToolText>,
    prompts: Vec<rmcp::model::Prompt>,
    resources: Vec<rmcp::model::Resource>,
    templates: Vec<rmcp::model::ResourceTemplate>,
    kinds: Vec<ListKind>,
}

impl Lists {
    fn apply(&self, s: &mut State) {
        for kind in &self.kinds {
            match kind {
                ListKind::Tools => s.tools = Arc::new(self.tools.clone()),
                ListKind::Prompts => s.prompts = Arc::new(self.prompts.clone()),
                ListKind::Resources => {
                    s.resources = Arc::new(self.resources.clone());
                    s.templates = Arc::new(self.templates.clone());
                }
            }
        }
    }
}

async fn fetch_all(
    server: &str,
    peer: &Peer<RoleClient>,
    lane: Option<&Lane>,
) -> Result<Lists, String> {
    let mut all = Lists::default();
    for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
        let one = fetch_kind(server, peer, lane, kind).await?;
        all.tools.extend(one.tools);
        all.prompts.extend(one.prompts);
        all.resources.extend(one.resources);
        all.templates.extend(one.templates);
        all.kinds.extend(one.kinds);
    }
    Ok(all)
}

/// Fetches every page of one kind of list, if the backend has that capability: tools as text
/// on the lane where there is one, everything else through rmcp.
async fn fetch_kind(
    server: &str,
    peer: &Peer<RoleClient>,
    lane: Option<&Lane>,
    kind: ListKind,
) -> Result<Lists, String> {
    let caps = peer
        .peer_info()
        .map(|i| i.capabilities.clone())
        .unwrap_or_default();
    let mut lists = Lists {
        kinds: vec![kind],
        ..Lists::default()
    };
    match kind {
        // Held as the text they are listed as: a fraction of the parsed form's memory.
        ListKind::Tools if caps.tools.is_some() => match lane {
            Some(lane) => lists.tools = super::lane::list_tools(lane, server).await?,
            None => {
                let tools = peer.list_all_tools().await.map_err(|e| e.to_string())?;
                lists.tools = tools.iter().map(crate::mcp::ToolText::new).collect();
            }
        },
        ListKind::Prompts if caps.prompts.is_some() => {
            lists.prompts = peer.list_all_prompts().await.map_err(|e| e.to_string())?
        }
        ListKind::Resources if caps.resources.is_some() => {
            lists.resources = peer.list_all_resources().await.map_err(|e| e.to_string())?;
            // Templates are optional even for servers with resources.
            lists.templates = peer.list_all_resource_templates().await.unwrap_or_default();
        }
        _ => {}
    }
    Ok(lists)
}
