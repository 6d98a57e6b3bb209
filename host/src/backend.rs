//! One supervised connection per configured server.
//!
//! A [`Backend`] owns the connection to one MCP server (a child process on stdio, a
//! streamable-HTTP URL, a legacy SSE URL: [`sse`], or a WebAssembly component run in
//! process: [`component`]), keeps the latest copy of its tools, prompts, resources and resource
//! templates, and restarts it with capped exponential backoff when it goes away. Every change of
//! its state is announced on the hub's change channel so the catalog can be rebuilt.
//!
//! Backends know nothing of plugins or of the catalog's names. What a backend sends for a
//! client (progress, logs, resource updates, sampling / elicitation / roots requests) is handed
//! to the relay ([`crate::relay`]), which finds the client session from the calls in flight
//! ([`Calls`]); a running stdio backend also has a [`lane`] that the call route uses to send
//! tools/calls as text.
//!
//! A server configured with `"isolation": "session"` also runs one instance per client
//! session that uses it ([`isolation`]); the instances are backends too, kept by the shared one.
//!
//! A stdio backend runs in a process group of its own, and stopping it ends the whole group
//! (SIGTERM, then SIGKILL after a short grace; [`process`]). HTTP and SSE backends are
//! connections only: stopping one closes it, and there is no process to end.

mod client;
pub mod component;
mod connect;
pub mod isolation;
pub mod lane;
mod process;
pub mod sse;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use rmcp::{
    RoleClient,
    model::{Implementation, Prompt, Resource, ResourceTemplate, ServerCapabilities},
    service::Peer,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::client::ListKind;
use crate::{
    config::{ServerConfig, Settings},
    mcp::ToolText,
    relay::{Calls, Sessions},
};

/// Longest pause between two restarts of a backend that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// First pause before restarting a backend that went away.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How many of a backend's last stderr lines are kept for its failure report.
const STDERR_TAIL: usize = 20;

/// Environment given to every stdio backend beyond the minimal inherited one (`magg -e`, `-E`).
static EXTRA_ENV: std::sync::OnceLock<(bool, Vec<(String, String)>)> = std::sync::OnceLock::new();

/// Sets, once per process, whether stdio backends get magg's whole environment (`--env-pass`)
/// and which variables are set for all of them (`--env-set KEY VALUE`).
pub fn set_extra_env(pass_all: bool, set: Vec<(String, String)>) {
    let _ = EXTRA_ENV.set((pass_all, set));
}

/// Where a backend is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Being spawned or connected, or waiting for its `initialize` reply.
    Starting,
    /// Connected and initialized; its lists are current.
    Running,
    /// It failed to start or went away; `reason` says why. It is retried after a pause.
    Failed {
        /// What went wrong, in words a user can act on.
        reason: String,
    },
    /// Stopped by magg (removed, disabled, or magg is shutting down).
    Stopped,
}

impl Status {
    /// A one-word name for the status, as shown by `magg_status` and `magg server list`.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Failed { .. } => "failed",
            Status::Stopped => "stopped",
        }
    }
}

/// Everything known about a backend at one moment; replaced whole on every change.
#[derive(Debug, Clone)]
pub struct State {
    /// Where the backend is in its life.
    pub status: Status,
    /// The client side of the live connection, when running.
    pub peer: Option<Peer<RoleClient>>,
    /// The fast lane for tools/call, for a running stdio backend.
    pub lane: Option<Arc<lane::Lane>>,
    /// The mounted component, for a running WebAssembly server.
    pub component: Option<Arc<dyn component::Mount>>,
    /// The calls in flight on the live connection, with the client requests they serve.
    pub calls: Option<Arc<Calls>>,
    /// Process id of a stdio backend, when running.
    pub pid: Option<u32>,
    /// The backend's own `serverInfo`.
    pub server_info: Option<Implementation>,
    /// The capabilities the backend announced.
    pub capabilities: Option<ServerCapabilities>,
    /// Whether the live connection speaks protocol 2026-07-28 (stateless: every request
    /// carries its own metadata, and the backend asks the client by `input_required`).
    pub stateless: bool,
    /// The backend's tools, under their own names, as the JSON they are listed as.
    pub tools: Arc<Vec<ToolText>>,
    /// The backend's prompts, under their own names.
    pub prompts: Arc<Vec<Prompt>>,
    /// The backend's resources, under their own URIs.
    pub resources: Arc<Vec<Resource>>,
    /// The backend's resource templates, under their own URI templates.
    pub templates: Arc<Vec<ResourceTemplate>>,
    /// How many times the backend has been (re)started.
    pub starts: u32,
    /// When the backend entered its current status.
    pub since: Instant,
}

impl State {
    fn new(status: Status) -> Self {
        State {
            status,
            peer: None,
            lane: None,
            component: None,
            calls: None,
            pid: None,
            server_info: None,
            capabilities: None,
            stateless: false,
            tools: Arc::default(),
            prompts: Arc::default(),
            resources: Arc::default(),
            templates: Arc::default(),
            starts: 0,
            since: Instant::now(),
        }
    }
}

/// A change the hub must hear about: which backend, and which of its lists may have changed.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The backend's server name.
    pub server: String,
}

/// One configured server and its supervised connection.
pub struct Backend {
    /// The server's name (its key in the config).
    pub name: String,
    /// The configuration it was started with. A changed configuration means a new `Backend`.
    pub config: ServerConfig,
    state: ArcSwap<State>,
    stop: CancellationToken,
    stderr_tail: Mutex<VecDeque<String>>,
    changed: tokio::sync::watch::Sender<u64>,
    /// The client sessions, for what the backend sends them (progress, logs, requests); for a
    /// per-session instance, its own session only.
    pub(crate) sessions: Arc<Sessions>,
    /// The per-session instances of a server with `"isolation": "session"`.
    instances: isolation::Instances,
    /// Told when the set of its resources clients are subscribed to changed, for a backend of
    /// protocol 2026-07-28, which follows them on its `subscriptions/listen` stream.
    resources_to_follow: tokio::sync::Notify,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("status", &self.state.load().status)
            .finish()
    }
}

impl Backend {
    /// Creates the backend and starts its supervisor task; changes are sent on `changes`.
    pub fn start(
        config: ServerConfig,
        settings: Arc<Settings>,
        changes: mpsc::UnboundedSender<Changed>,
        sessions: Arc<Sessions>,
    ) -> Arc<Backend> {
        Backend::launch(
            config,
            settings,
            changes,
            sessions,
            CancellationToken::new(),
        )
    }

    /// [`Backend::start`], stopped when `stop` is cancelled.
    fn launch(
        config: ServerConfig,
        settings: Arc<Settings>,
        changes: mpsc::UnboundedSender<Changed>,
        sessions: Arc<Sessions>,
        stop: CancellationToken,
    ) -> Arc<Backend> {
        let backend = Arc::new(Backend {
            sessions,
            name: config.name.clone(),
            config,
            state: ArcSwap::from_pointee(State::new(Status::Starting)),
            stop,
            stderr_tail: Mutex::new(VecDeque::new()),
            changed: tokio::sync::watch::Sender::new(0),
            instances: isolation::Instances::default(),
            resources_to_follow: tokio::sync::Notify::new(),
        });
        tokio::spawn(supervise(backend.clone(), settings, changes));
        backend
    }

    /// Follows the resources clients are subscribed to on this backend anew, when it speaks
    /// protocol 2026-07-28 (it has no `resources/subscribe`): true if it does, and the request
    /// is made; false for a backend of the session era, which is subscribed to URI by URI.
    pub fn follow_resources(&self) -> bool {
        let stateless = self.state().stateless;
        if stateless {
            self.resources_to_follow.notify_one();
        }
        stateless
    }

    /// The backend's current state.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// The client side of the live connection, if the backend is running.
    pub fn peer(&self) -> Option<Peer<RoleClient>> {
        self.state.load().peer.clone()
    }

    /// Whether the exposed tool `name` could be one of this backend's: it has no prefix, or
    /// `name` starts with its prefix and `sep`.
    pub fn may_serve_tool(&self, name: &str, sep: &str) -> bool {
        match self.config.prefix.as_deref().filter(|p| !p.is_empty()) {
            None => true,
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(sep)),
        }
    }

    /// A receiver that sees every change of the backend's state.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Stops the backend for good: closes the connection and ends its process (group), and
    /// those of its per-session instances.
    pub fn stop(&self) {
        self.stop.cancel();
        self.instances.clear();
    }

    /// A future that completes once [`Backend::stop`] was called.
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    fn set(&self, changes: &mpsc::UnboundedSender<Changed>, f: impl FnOnce(&mut State)) {
        let mut next = State::clone(&self.state.load());
        f(&mut next);
        self.state.store(Arc::new(next));
        self.changed.send_modify(|n| *n += 1);
        let _ = changes.send(Changed {
            server: self.name.clone(),
        });
    }

    fn remember_stderr(&self, line: &str) {
        if let Ok(mut tail) = self.stderr_tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        }
    }

    fn stderr_summary(&self) -> Option<String> {
        let tail = self.stderr_tail.lock().ok()?;
        let last: Vec<&str> = tail.iter().rev().take(3).map(String::as_str).collect();
        if last.is_empty() {
            None
        } else {
            Some(last.into_iter().rev().collect::<Vec<_>>().join(" | "))
        }
    }
}

/// Runs one backend until it is stopped: connect, serve, and restart after failures.
async fn supervise(
    backend: Arc<Backend>,
    settings: Arc<Settings>,
    changes: mpsc::UnboundedSender<Changed>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if backend.stop.is_cancelled() {
            break;
        }
        backend.set(&changes, |s| {
            *s = State {
                starts: s.starts + 1,
                ..State::new(Status::Starting)
            }
        });
        let run = connect::run(&backend, &settings, &changes);
        tokio::pin!(run);
        let outcome = tokio::select! {
            biased;
            outcome = &mut run => outcome,
            _ = backend.stop.cancelled() => {
                // The connection sees the stop too, and ends the process group (which takes up
                // to its grace); past twice that, dropping it kills the group.
                match tokio::time::timeout(process::GRACE * 2, &mut run).await {
                    Ok(outcome) => outcome,
                    Err(_) => break,
                }
            }
        };
        let reason = match outcome {
            connect::Outcome::Stopped => break,
            connect::Outcome::Ended {
                reason,
                was_running,
            } => {
                if was_running {
                    backoff = FIRST_BACKOFF;
                }
                reason
            }
        };
        let reason = match backend.stderr_summary() {
            Some(tail) if !reason.contains(&tail) => format!("{reason} (last stderr: {tail})"),
            _ => reason,
        };
        tracing::warn!(
            server = %backend.name,
            "backend failed: {reason}; restarting in {:.1}s",
            backoff.as_secs_f64()
        );
        backend.set(&changes, |s| {
            s.status = Status::Failed {
                reason: reason.clone(),
            };
            s.since = Instant::now();
            s.peer = None;
            s.lane = None;
            s.component = None;
            s.pid = None;
            s.tools = Arc::default();
            s.prompts = Arc::default();
            s.resources = Arc::default();
            s.templates = Arc::default();
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = backend.stop.cancelled() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    backend.set(&changes, |s| *s = State::new(Status::Stopped));
}
