//! A stdio backend's process and its process group, which end together.
//!
//! A stdio backend is spawned as the leader of a process group of its own, so that what it
//! starts (an `npx` or `uvx` launcher's server, a shell's children) is in the group too.
//! Ending a backend ends the whole group: SIGTERM, then SIGKILL to whatever is left after
//! [`GRACE`]. A [`Process`] dropped without being ended (a backend stopped while still
//! starting) kills its group at once. While the group runs, [`crate::reaper`] knows of it, so
//! it is ended even if magg is killed.

use std::time::Duration;

use tokio::process::Child;

use crate::reaper;

/// How long a backend's group has to exit after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_millis(1000);

/// A running stdio backend: the child magg spawned, leader of its own process group.
pub struct Process {
    /// The backend process.
    pub child: Child,
    /// Its process group id (its pid); `None` once the group has been ended.
    group: Option<libc::pid_t>,
}

impl Process {
    /// Takes charge of `child`, which was spawned as the leader of a new process group.
    pub fn new(child: Child) -> Process {
        let group = child
            .id()
            .and_then(|pid| libc::pid_t::try_from(pid).ok())
            .filter(|&pid| pid > 1);
        if let Some(group) = group {
            reaper::watch(group);
        }
        Process { child, group }
    }

    /// The backend's pid, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Ends the backend and everything in its process group: SIGTERM to the group, then, once
    /// the group is empty or [`GRACE`] has passed, SIGKILL to what is left; the backend itself
    /// is reaped.
    pub async fn end(&mut self) {
        let Some(group) = self.group else {
            let _ = self.child.kill().await;
            return;
        };
        let deadline = tokio::time::Instant::now() + GRACE;
        reaper::signal_group(group, libc::SIGTERM);
        let _ = tokio::time::timeout_at(deadline, self.child.wait()).await;
        // The leader has gone (or the grace is over); what it started may still be ending.
        while tokio::time::Instant::now() < deadline && reaper::signal_group(group, 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        reaper::signal_group(group, libc::SIGKILL);
        let _ = self.child.kill().await;
        self.ended();
    }

    /// Marks the group ended: nothing signals it again (its id may be reused).
    fn ended(&mut self) {
        if let Some(group) = self.group.take() {
            reaper::forget(group);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            // Dropped without `end` (a backend stopped while starting): no grace.
            reaper::signal_group(group, libc::SIGKILL);
            self.ended();
        }
    }
}
