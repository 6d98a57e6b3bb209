//! The drain before magg stops: once it starts, the frontends take no new requests, and the
//! work already in flight (client requests, tools/calls) is counted down to none, so that
//! `magg serve` can wait for it (up to `shutdown_timeout`) before it ends the backends.
//!
//! Work is counted by guards ([`Work`]): taken when a request is accepted, dropped when its
//! answer has gone out. A frontend asks [`Hub::admit`], which refuses once the drain has
//! started; the call route counts every call with [`Hub::work`], which never refuses (a call
//! in flight may make another through `proxy`, and that one must run). A guard is taken before
//! the drain flag is read, and the flag is set before the count is waited on, so a request is
//! either refused or waited for, never lost between the two.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Hub;

/// The drain state shared by the hub and every [`Work`] guard.
#[derive(Default)]
pub(super) struct Drain {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    work: AtomicUsize,
    idle: Notify,
    started: CancellationToken,
}

/// One piece of work in flight (a request being answered); the drain waits until every guard
/// is dropped.
#[must_use = "the work counts as in flight only while the guard lives"]
pub struct Work {
    inner: Arc<Inner>,
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.inner.work.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl Hub {
    /// Whether magg is draining before it stops (it got SIGTERM or SIGINT, or its stdio client
    /// went away): new requests are refused while the calls in flight finish. For readiness
    /// checks, which should report not ready from then on.
    pub fn is_draining(&self) -> bool {
        self.drain.inner.draining.load(Ordering::SeqCst)
    }

    /// Starts the drain: from now on [`Hub::admit`] refuses, and [`Hub::drain_token`]s are
    /// cancelled. Starting it again changes nothing.
    pub fn start_draining(&self) {
        self.drain.inner.draining.store(true, Ordering::SeqCst);
        self.drain.inner.started.cancel();
    }

    /// A token cancelled when the drain starts (for a listener that stops accepting then).
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.inner.started.child_token()
    }

    /// Counts a request a frontend accepts as work in flight; `None` once the drain has
    /// started, when the frontend refuses the request instead.
    pub fn admit(&self) -> Option<Work> {
        let work = self.work();
        if self.is_draining() {
            return None;
        }
        Some(work)
    }

    /// Counts work in flight whether or not magg is draining: a call that is part of a request
    /// already admitted.
    pub fn work(&self) -> Work {
        self.drain.inner.work.fetch_add(1, Ordering::SeqCst);
        Work {
            inner: self.drain.inner.clone(),
        }
    }

    /// How many pieces of work are in flight.
    pub fn work_in_flight(&self) -> usize {
        self.drain.inner.work.load(Ordering::SeqCst)
    }

    /// Waits until no work is in flight.
    pub async fn idle(&self) {
        let inner = &self.drain.inner;
        loop {
            let notified = inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if inner.work.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
