//! Which instance of a server a request goes to: the per-session instance of the calling
//! session for a server with `"isolation": "session"` (see [`crate::backend::isolation`]),
//! else the server's one shared instance.

use std::sync::Arc;

use super::Hub;
use crate::{
    backend::Backend,
    config::Isolation,
    relay::{SessionKey, current_origin},
};

impl Hub {
    /// The instance of `backend` that the current request's session uses: `backend` itself
    /// for a shared server, for a stateless client (no session) and outside a client request;
    /// the session's own instance (started now, on its first use) for a session-isolated
    /// server. An error, for the client, when that instance cannot be had.
    pub async fn instance_for(&self, backend: &Arc<Backend>) -> Result<Arc<Backend>, String> {
        if backend.config.isolation != Isolation::Session {
            return Ok(backend.clone());
        }
        let Some(origin) = current_origin() else {
            return Ok(backend.clone());
        };
        if origin.session.is_detached() {
            return Ok(backend.clone());
        }
        backend.for_session(&origin.session, &self.settings).await
    }

    /// Ends the per-session instances of the sessions `ended`, on every server.
    pub(super) fn end_session_instances(&self, ended: &[SessionKey]) {
        for backend in self.backends() {
            if backend.config.isolation == Isolation::Session {
                for session in ended {
                    backend.end_session(session);
                }
            }
        }
    }
}
