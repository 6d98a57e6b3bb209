//! The aggregator as an MCP server: the `ServerHandler` every client session talks to, and the
//! transports it is served on (stdio, streamable HTTP, or both at once over one hub).
//!
//! Design: all sessions share one [`Hub`], so backends are shared across clients, as Magg does.
//! Each session registers its peer with the hub when it initializes, so catalog changes reach
//! every session as list_changed notifications. This is the only module that talks to clients.

pub mod http;
pub mod stdio;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, InitializeRequestParams,
        InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
};

use crate::hub::Hub;

/// Items per page of magg's own list results.
pub const PAGE_SIZE: usize = 1000;

const INSTRUCTIONS: &str = "magg aggregates other MCP servers. Their tools, prompts and resources \
appear here under each server's prefix (e.g. `time_get_current_time`). Use {list_servers} and \
{status} to see the servers and their state. If a tool you expect is missing, the `proxy` tool \
can list and call everything magg serves.";

tokio::task_local! {
    /// The client session whose tools/call is running, for magg's own tools that ask the
    /// client something (sampling in `magg_smart_configure`).
    pub static CALLER: rmcp::service::Peer<RoleServer>;
}

/// The handler of one client session; cheap to clone, all state lives in the hub.
#[derive(Clone)]
pub struct MaggServer {
    hub: Arc<Hub>,
}

impl MaggServer {
    /// A handler over `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        MaggServer { hub }
    }
}

impl ServerHandler for MaggServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_completions()
            .build();
        let instructions = INSTRUCTIONS
            .replace(
                "{list_servers}",
                &self.hub.settings.prefixed("list_servers"),
            )
            .replace("{status}", &self.hub.settings.prefixed("status"));
        let mut info = InitializeResult::new(capabilities).with_instructions(instructions);
        info.server_info = Implementation::new("magg", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        self.hub.sessions().add(context.peer.clone());
        tracing::info!(
            client = %request.client_info.name,
            version = %request.client_info.version,
            protocol = %request.protocol_version,
            "client connected"
        );
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.hub.wait_for_backends().await;
        let snapshot = self.hub.snapshot();
        let (items, next) = page(&snapshot.tools, cursor(&request))?;
        let mut result = ListToolsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        CALLER
            .scope(
                context.peer.clone(),
                self.hub.call_tool(request, context.ct),
            )
            .await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.hub.wait_for_backends().await;
        let snapshot = self.hub.snapshot();
        let (items, next) = page(&snapshot.prompts, cursor(&request))?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.hub.get_prompt(request, context.ct).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.hub.wait_for_backends().await;
        let snapshot = self.hub.snapshot();
        let (items, next) = page(&snapshot.resources, cursor(&request))?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.hub.wait_for_backends().await;
        let snapshot = self.hub.snapshot();
        let (items, next) = page(&snapshot.templates, cursor(&request))?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.hub.read_resource(request, context.ct).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.hub.complete(request, context.ct).await
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }
}

fn cursor(request: &Option<PaginatedRequestParams>) -> Option<&str> {
    request.as_ref().and_then(|r| r.cursor.as_deref())
}

/// One page of `items` starting at `cursor` (an offset magg handed out earlier).
fn page<T: Clone>(items: &[T], cursor: Option<&str>) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match cursor {
        None | Some("") => 0,
        Some(c) => c
            .strip_prefix("magg:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                McpError::invalid_params(
                    format!(
                        "Invalid cursor {c:?}: pass the nextCursor of the previous page unchanged"
                    ),
                    None,
                )
            })?,
    };
    let start = start.min(items.len());
    let end = (start + PAGE_SIZE).min(items.len());
    let next = (end < items.len()).then(|| format!("magg:{end}"));
    Ok((items[start..end].to_vec(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_cursors() {
        let items: Vec<usize> = (0..2500).collect();
        let (first, next) = page(&items, None).unwrap_or_default();
        assert_eq!(first.len(), PAGE_SIZE);
        assert_eq!(next.as_deref(), Some("magg:1000"));
        let (second, next) = page(&items, next.as_deref()).unwrap_or_default();
        assert_eq!(second[0], 1000);
        let (third, next) = page(&items, next.as_deref()).unwrap_or_default();
        assert_eq!(third.len(), 500);
        assert_eq!(next, None);
        assert!(page(&items, Some("bogus")).is_err());
    }
}
