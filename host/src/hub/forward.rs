//! What clients send backends besides calls: the log level, resource subscriptions and the
//! news that a client's roots changed. Backends are shared, so each of these is merged across
//! sessions first: the most verbose level any session asked for, one backend subscription per
//! URI however many sessions hold it.

// Logging, roots and resources/subscribe are deprecated by SEP-2577, and what 2025-11-25
// servers speak.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError,
    model::{
        LoggingLevel, SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
    },
};

use super::{Hub, dispatch::backend_error};
use crate::{
    backend::{Backend, Status},
    catalog::Route,
    relay::{Session, Slept},
};

impl Hub {
    /// Sets a session's log level and sends every backend that logs the most verbose level
    /// any session asked for; the session's own instances of session-isolated servers get
    /// the session's level.
    pub async fn set_level(&self, session: &Session, level: LoggingLevel) {
        let most = self.sessions.set_level(session, level);
        self.send_level(most).await;
        if let Some(key) = session.key() {
            let own = self
                .backends()
                .iter()
                .filter_map(|backend| backend.instance_of(&key))
                .collect();
            send_level_to(own, level).await;
        }
    }

    /// Sends every running backend that logs `level`.
    async fn send_level(&self, level: LoggingLevel) {
        send_level_to(self.backends(), level).await;
    }

    /// Subscribes a session to the exposed resource `uri`; the backend is subscribed when the
    /// first session is.
    pub async fn subscribe(&self, session: &Session, uri: &str) -> Result<(), McpError> {
        let Some((route, peer)) = self.subscription_route(uri).await? else {
            return Ok(()); // magg's own resources: nothing to forward
        };
        let first = !self.sessions.anyone_subscribed(uri);
        if !self.sessions.subscribe(session, uri) || !first {
            return Ok(());
        }
        self.sessions
            .map_resource(&route.backend.name, &route.name, uri);
        if route.backend.follow_resources() {
            return Ok(()); // protocol 2026-07-28: on the backend's listen stream
        }
        if let Err(e) = peer
            .subscribe(SubscribeRequestParams::new(route.name.clone()))
            .await
        {
            self.sessions.unsubscribe(session, uri);
            self.sessions
                .unmap_resource(&route.backend.name, &route.name);
            return Err(backend_error(&route.backend.name, e));
        }
        Ok(())
    }

    /// Unsubscribes a session from `uri`; the backend is unsubscribed when no session is left.
    pub async fn unsubscribe(&self, session: &Session, uri: &str) -> Result<(), McpError> {
        if !self.sessions.unsubscribe(session, uri) || self.sessions.anyone_subscribed(uri) {
            return Ok(());
        }
        let Some((route, peer)) = self.subscription_route(uri).await? else {
            return Ok(());
        };
        self.sessions
            .unmap_resource(&route.backend.name, &route.name);
        if route.backend.follow_resources() {
            return Ok(());
        }
        peer.unsubscribe(UnsubscribeRequestParams::new(route.name.clone()))
            .await
            .map_err(|e| backend_error(&route.backend.name, e))
    }

    /// The backend resource behind `uri` and the backend's peer; `None` for magg's own.
    async fn subscription_route(
        &self,
        uri: &str,
    ) -> Result<Option<(Route, rmcp::service::Peer<rmcp::RoleClient>)>, McpError> {
        if self.own().read(self, uri).is_some() {
            return Ok(None);
        }
        let mut route = self.snapshot().resource(uri);
        if route.is_none() {
            self.wait_for_backends().await;
            route = self.snapshot().resource(uri);
        }
        let Some(route) = route else {
            return Err(McpError::resource_not_found(
                format!(
                    "Unknown resource `{uri}`: no server lists it, and no server prefix matches \
                     it. Call resources/list to see what is available."
                ),
                None,
            ));
        };
        let peer = subscribable(&route.backend)?;
        Ok(Some((route, peer)))
    }

    /// Cleans up after sessions that closed: their per-session server instances are ended,
    /// the subscriptions only they held are ended at the backends, and backends get the log
    /// level of the sessions that remain.
    pub async fn sweep_sessions(&self) {
        let closed = self.sessions.take_closed();
        if closed.is_empty() {
            return;
        }
        // A streamable HTTP session's record closes when it falls asleep too: what it holds
        // waits for it to wake, or for the HTTP front to end it (`Hub::http_session_ended`).
        let ended = self.sessions.put_to_sleep(closed);
        if ended.is_empty() {
            return;
        }
        tracing::debug!(sessions = ended.len(), "client sessions ended");
        self.release_sessions(&ended).await;
    }

    /// The streamable HTTP session whose `Mcp-Session-Id` hashes to `key` has ended (deleted
    /// by its client, or idle for too long): what it held is released, now if it was asleep,
    /// else once its record closes.
    pub fn http_session_ended(self: &Arc<Self>, key: u128) {
        self.end_session_instances(&[crate::relay::SessionKey::Http(key)]);
        if let Some(slept) = self.sessions.end_http(key) {
            let hub = self.clone();
            tokio::spawn(async move { hub.release_slept(slept).await });
        }
    }

    /// Releases what the ended sessions `ended` held: their per-session instances, the
    /// subscriptions only they held (ended at the backends), and a log level more verbose
    /// than the remaining sessions want.
    async fn release_sessions(&self, ended: &[Arc<Session>]) {
        let keys: Vec<_> = ended.iter().filter_map(|s| s.key()).collect();
        self.end_session_instances(&keys);
        let leveled = ended.iter().any(|s| s.log_level().is_some());
        self.release(ended.iter().flat_map(|s| s.subscriptions()), leveled)
            .await;
    }

    /// Releases what a streamable HTTP session that ended while asleep held: the
    /// subscriptions only it held, and its log level.
    async fn release_slept(&self, slept: Slept) {
        self.release(slept.subscriptions.into_iter(), slept.log_level.is_some())
            .await;
    }

    /// Ends at the backends the subscriptions to `uris` nobody holds any more, and, when the
    /// ended sessions had set a log level (`leveled`), sends the backends the level of the
    /// sessions that remain.
    async fn release(&self, uris: impl Iterator<Item = String>, leveled: bool) {
        for uri in uris {
            if self.sessions.anyone_subscribed(&uri) {
                continue;
            }
            if let Ok(Some((route, peer))) = self.subscription_route(&uri).await {
                self.sessions
                    .unmap_resource(&route.backend.name, &route.name);
                if route.backend.follow_resources() {
                    continue;
                }
                if let Err(e) = peer
                    .unsubscribe(UnsubscribeRequestParams::new(route.name.clone()))
                    .await
                {
                    tracing::warn!(server = %route.backend.name, "could not unsubscribe from {uri}: {e}");
                }
            }
        }
        if leveled && let Some(level) = self.sessions.most_verbose() {
            self.send_level(level).await;
        }
    }

    /// Tells every running backend that a client's roots changed (per-session instances
    /// too: each then asks its own session).
    pub fn roots_list_changed(&self) {
        let all = self
            .backends()
            .into_iter()
            .flat_map(|backend| std::iter::once(backend.clone()).chain(backend.instances()));
        for backend in all {
            let state = backend.state();
            let (Some(peer), Status::Running) = (state.peer.clone(), &state.status) else {
                continue;
            };
            tokio::spawn(async move {
                let _ = peer.notify_roots_list_changed().await;
            });
        }
    }
}

/// The peer of a running backend that takes resource subscriptions.
fn subscribable(backend: &Backend) -> Result<rmcp::service::Peer<rmcp::RoleClient>, McpError> {
    let state = backend.state();
    let supports = state
        .capabilities
        .as_ref()
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.subscribe)
        .unwrap_or(false);
    match (&state.peer, &state.status) {
        (Some(peer), Status::Running) if supports => Ok(peer.clone()),
        (Some(_), Status::Running) => Err(McpError::invalid_params(
            format!(
                "Server `{}` does not support resource subscriptions (it did not declare \
                 resources.subscribe); read the resource again to see changes.",
                backend.name
            ),
            None,
        )),
        _ => Err(McpError::internal_error(
            format!(
                "Server `{}` is not running; subscribe again once magg_status shows it running.",
                backend.name
            ),
            None,
        )),
    }
}

/// Sends each of `backends` that is running and logs `level`.
async fn send_level_to(backends: Vec<std::sync::Arc<Backend>>, level: LoggingLevel) {
    let sends = backends.into_iter().filter_map(|backend| {
        let state = backend.state();
        let peer = state.peer.clone()?;
        let logs = state.capabilities.as_ref()?.logging.is_some();
        (state.status == Status::Running && logs).then_some(async move {
            if let Err(e) = peer.set_level(SetLevelRequestParams::new(level)).await {
                tracing::warn!(server = %backend.name, "could not set its log level: {e}");
            }
        })
    });
    futures::future::join_all(sends).await;
}
