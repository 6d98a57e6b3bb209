//! Caching hints on results for protocol 2026-07-28 clients: `ttlMs` (how long the client may
//! use a result without asking again) and `cacheScope` (`public`: the same for every caller,
//! so a shared cache may keep it; `private`: only this caller's client may).
//!
//! # What magg says
//! - **Lists** (tools, prompts, resources, resource templates) come from magg's catalog, which
//!   changes when a backend starts, stops, restarts or says its lists changed, and when the
//!   config changes. So they are not cacheable (`ttlMs: 0`) while any backend is starting or
//!   has failed (it is retried) or changed state in the last [`SETTLING`]; once every backend
//!   has been steady that long, [`WATCHED_TTL`] (30 s) while magg follows edits of its config
//!   file (`auto_reload`, the default) and [`STEADY_TTL`] (5 min) when it does not. A client
//!   that must see a change at once listens for it (`subscriptions/listen`) instead.
//! - A list is `private` when the request's bearer token was checked: what it shows is what that
//!   token's grants show, and a shared cache must not hand it to a token that sees less. Without
//!   authentication every caller sees the same lists: `public`.
//! - **`server/discover`** answers the same to everyone for as long as magg runs: `public`,
//!   [`DISCOVER_TTL`].
//! - **`resources/read`**: the backend's own hints when it gave them (a `public` one is
//!   narrowed to `private` for a checked token), else `private` with `ttlMs: 0`.
//! - Clients of the session era (2025-11-25 and older) get none of these fields.

use std::time::{Duration, Instant};

use rmcp::{
    RoleServer,
    model::{CacheScope, ProtocolVersion, ReadResourceResponse},
    service::RequestContext,
};

use crate::{auth::Caller, backend::Status, hub::Hub};

/// How long after a backend changed state magg's lists are not cacheable.
pub const SETTLING: Duration = Duration::from_secs(10);

/// The lists' lifetime once every backend is steady, while magg follows its config file.
pub const WATCHED_TTL: u64 = 30_000;

/// The lists' lifetime once every backend is steady, when magg does not follow its config file.
pub const STEADY_TTL: u64 = 300_000;

/// The lifetime of `server/discover`'s answer.
pub const DISCOVER_TTL: u64 = 300_000;

/// The caching hints of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// `ttlMs`.
    pub ttl_ms: u64,
    /// `cacheScope`.
    pub scope: CacheScope,
}

/// Whether the request of `context` speaks protocol 2026-07-28 or later, whose results carry
/// caching hints.
pub fn modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The hints of a list result for `caller` (its checked token, if any).
pub fn for_list(hub: &Hub, caller: Option<&Caller>) -> Hints {
    Hints {
        ttl_ms: list_ttl(hub, Instant::now()),
        scope: scope(caller),
    }
}

/// `public` without a checked token, else `private`.
fn scope(caller: Option<&Caller>) -> CacheScope {
    match caller {
        Some(_) => CacheScope::Private,
        None => CacheScope::Public,
    }
}

/// How long the lists stay fresh as of `now` (see the module's notes).
fn list_ttl(hub: &Hub, now: Instant) -> u64 {
    let unsteady = hub.backends().iter().any(|backend| {
        let state = backend.state();
        matches!(state.status, Status::Starting | Status::Failed { .. })
            || now.saturating_duration_since(state.since) < SETTLING
    });
    match (unsteady, hub.settings.auto_reload) {
        (true, _) => 0,
        (false, true) => WATCHED_TTL,
        (false, false) => STEADY_TTL,
    }
}

/// Sets a list result's `ttlMs` and `cacheScope` for a 2026-07-28 request; leaves them unset
/// (and so absent) for older clients.
macro_rules! hint_list {
    ($result:expr, $context:expr, $hub:expr, $caller:expr) => {
        if $crate::frontend::cache::modern($context) {
            let hints = $crate::frontend::cache::for_list($hub, $caller);
            $result.ttl_ms = Some(hints.ttl_ms);
            $result.cache_scope = Some(hints.scope);
        }
    };
}
pub(crate) use hint_list;

/// A `resources/read` answer as its client should get it: the backend's hints for a
/// 2026-07-28 client (`modern`; a `public` one narrowed to `private` for a checked token;
/// missing ones are filled in as `private`, 0 by rmcp), none for an older client.
pub fn hint_read(
    mut response: ReadResourceResponse,
    modern: bool,
    caller: Option<&Caller>,
) -> ReadResourceResponse {
    if let ReadResourceResponse::Complete(result) = &mut response {
        if !modern {
            result.ttl_ms = None;
            result.cache_scope = None;
        } else if caller.is_some() && result.cache_scope == Some(CacheScope::Public) {
            result.cache_scope = Some(CacheScope::Private);
        }
    }
    response
}
