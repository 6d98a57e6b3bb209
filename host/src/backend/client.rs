//! The MCP client magg runs against each backend: it answers the backend's requests and turns
//! its notifications into events for the backend's supervisor.

// Logging notifications are deprecated by SEP-2577 but still sent by 2025-11-25 servers.
#![allow(deprecated)]

use rmcp::{
    ClientHandler, RoleClient,
    model::{
        ClientCapabilities, ClientConfig, Implementation, LoggingLevel,
        LoggingMessageNotificationParam,
    },
    service::NotificationContext,
};
use tokio::sync::mpsc;

/// Which of a backend's lists changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`
    Tools,
    /// `prompts/list`
    Prompts,
    /// `resources/list` and `resources/templates/list`
    Resources,
}

/// The client handler of one backend connection.
pub(super) struct BackendClient {
    pub(super) server: String,
    pub(super) lists: mpsc::UnboundedSender<ListKind>,
}

impl ClientHandler for BackendClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("magg", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Tools);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Prompts);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.lists.send(ListKind::Resources);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let logger = params.logger.as_deref().unwrap_or("");
        let data = match &params.data {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match params.level {
            LoggingLevel::Debug => tracing::debug!(server = %self.server, logger, "{data}"),
            LoggingLevel::Info | LoggingLevel::Notice => {
                tracing::info!(server = %self.server, logger, "{data}")
            }
            LoggingLevel::Warning => tracing::warn!(server = %self.server, logger, "{data}"),
            _ => tracing::error!(server = %self.server, logger, "{data}"),
        }
    }
}
