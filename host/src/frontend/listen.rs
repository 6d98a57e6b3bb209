//! `subscriptions/listen` (protocol 2026-07-28): how a stateless client learns that magg's
//! lists changed, or that a resource it reads changed, without a session.
//!
//! A listen request stays open; its response stream carries the notifications. While it is
//! open it is a listener in the relay's fan-out ([`Session::listener`]), beside the sessions:
//! - `notifications/tools/list_changed` (and the prompts and resources ones) whenever the
//!   catalog is rebuilt with a change in what the listener's token may see: a server added,
//!   removed, restarted or changed by a config edit, `magg_add_server` or the management
//!   API, or a backend's own list_changed;
//! - `notifications/resources/updated` for the URIs it asked for. magg subscribes to the
//!   owning backend for each, once however many sessions and listeners want it (as
//!   `resources/subscribe` does for a session), and unsubscribes when the last one ends.
//!
//! What magg accepts ([`accepted`]): the list-changed kinds it was asked for, and of the URIs
//! those it can follow now: magg's own resources, and resources of a running backend that
//! takes subscriptions. The acknowledgment names what was accepted, so a client sees at once
//! which URIs it will not hear about. A URI the listener's token may not see is dropped when
//! the listen starts, as if it did not exist. The listen ends with its final result when magg
//! drains before it stops, and quietly when the client goes away.

use std::sync::Arc;

use rmcp::{ErrorData as McpError, model::SubscriptionFilter, service::SubscriptionContext};

use crate::{
    auth::Caller,
    backend::Status,
    hub::Hub,
    relay::{Session, Trust},
};

/// The part of `requested` magg can deliver (see the module's notes).
pub(super) fn accepted(hub: &Hub, requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut accepted = SubscriptionFilter::new();
    accepted.tools_list_changed = requested.tools_list_changed.filter(|&asked| asked);
    accepted.prompts_list_changed = requested.prompts_list_changed.filter(|&asked| asked);
    accepted.resources_list_changed = requested.resources_list_changed.filter(|&asked| asked);
    accepted.resource_subscriptions = requested
        .resource_subscriptions
        .as_ref()
        .map(|uris| {
            let mut followed: Vec<String> = Vec::new();
            for uri in uris {
                if !followed.contains(uri) && followable(hub, uri) {
                    followed.push(uri.clone());
                }
            }
            followed
        })
        .filter(|uris| !uris.is_empty());
    accepted
}

/// Whether magg can tell a listener when `uri` changes: one of magg's own resources, or a
/// resource of a running backend that takes subscriptions.
fn followable(hub: &Hub, uri: &str) -> bool {
    if hub.own().read(hub, uri).is_some() {
        return true;
    }
    let Some(route) = hub.full_snapshot().resource(uri) else {
        tracing::debug!(uri, "listen: no server has this resource");
        return false;
    };
    let state = route.backend.state();
    let subscribes = state
        .capabilities
        .as_ref()
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.subscribe)
        .unwrap_or(false);
    if !(subscribes && state.status == Status::Running) {
        tracing::debug!(
            uri,
            server = %route.backend.name,
            status = state.status.label(),
            subscribes,
            "listen: cannot follow this resource"
        );
    }
    subscribes && state.status == Status::Running
}

/// Runs one listen request until the client goes away or magg drains; `caller` is the
/// request's checked token, whose view bounds what the listener hears of.
pub(super) async fn run(
    hub: &Arc<Hub>,
    subscription: SubscriptionContext,
    trust: Trust,
    caller: Option<Arc<Caller>>,
) -> Result<(), McpError> {
    let request = subscription.request_context();
    let view = caller.as_ref().and_then(|c| c.view.clone());
    let listener = Session::listener(
        request.peer.clone(),
        subscription.sink().clone(),
        trust,
        caller,
    );
    hub.sessions().add_listener(listener.clone());
    let _open = Open {
        hub: hub.clone(),
        listener: listener.clone(),
    };
    let visible = hub.snapshot_for(view.as_ref());
    for uri in subscription
        .accepted()
        .resource_subscriptions
        .iter()
        .flatten()
    {
        let own = hub.own().read(hub, uri).is_some();
        if !own && visible.resource(uri).is_none() {
            tracing::debug!(
                uri,
                "listen: the caller's token does not show this resource"
            );
            continue;
        }
        match hub.subscribe(&listener, uri).await {
            // magg's own resources need no backend subscription: only the record.
            Ok(()) => {
                hub.sessions().subscribe(&listener, uri);
            }
            Err(e) => tracing::warn!(uri, "listen: cannot follow this resource: {}", e.message),
        }
    }
    tracing::debug!(
        listeners = hub.sessions().listener_count(),
        "a stateless client is listening"
    );
    let drain = hub.drain_token();
    tokio::select! {
        () = subscription.cancelled() => {}
        () = drain.cancelled() => {}
    }
    Ok(())
}

/// An open listen: dropping it (the request ended, however) takes the listener out of the
/// fan-out and ends the backend subscriptions only it held.
struct Open {
    hub: Arc<Hub>,
    listener: Arc<Session>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.hub.sessions().remove_listener(&self.listener);
        let uris = self.listener.subscriptions();
        tracing::debug!(
            listeners = self.hub.sessions().listener_count(),
            "a stateless client stopped listening"
        );
        if uris.is_empty() {
            return;
        }
        let hub = self.hub.clone();
        let listener = self.listener.clone();
        tokio::spawn(async move {
            for uri in uris {
                if let Err(e) = hub.unsubscribe(&listener, &uri).await {
                    tracing::debug!(uri, "listen ended: unsubscribing failed: {}", e.message);
                }
            }
        });
    }
}
