//! magg's own server as the hub sees it: the tools, resources and prompts magg serves itself, handed to
//! the hub when it starts, so that the hub (and everything below it) never names the module
//! that implements them.

use std::{future::Future, pin::Pin, sync::Arc};

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, GetPromptResult, JsonObject, ReadResourceResult},
};
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::{catalog::OwnItems, config::Settings};

/// The future of one own tool's call.
pub type OwnCall<'a> = Pin<Box<dyn Future<Output = Result<CallToolResult, McpError>> + Send + 'a>>;

/// The future of one own prompt's `prompts/get`.
pub type OwnPrompt<'a> =
    Pin<Box<dyn Future<Output = Result<GetPromptResult, McpError>> + Send + 'a>>;

/// magg's own tools, resources and resource templates.
pub trait OwnServer: Send + Sync + 'static {
    /// What magg lists of its own, under the names `settings` give them.
    fn items(&self, settings: &Settings) -> OwnItems;

    /// Runs the own tool `name` (its name as [`OwnServer::items`] listed it).
    fn call<'a>(
        &'a self,
        hub: &'a Arc<Hub>,
        name: &'a str,
        arguments: Option<JsonObject>,
        ct: CancellationToken,
    ) -> OwnCall<'a>;

    /// Whether calling the own tool `name` with `arguments` starts or stops servers or changes
    /// the config (the call route refuses such calls to clients that may not make them).
    fn changes(&self, name: &str, arguments: Option<&JsonObject>) -> bool;

    /// Reads `uri` if it is one of magg's own resources; `None` if it is not.
    fn read(&self, hub: &Hub, uri: &str) -> Option<Result<ReadResourceResult, McpError>>;

    /// Gets the own prompt `name` (its name as [`OwnServer::items`] listed it) with
    /// `arguments`.
    fn prompt<'a>(
        &'a self,
        hub: &'a Hub,
        name: &'a str,
        arguments: Option<JsonObject>,
    ) -> OwnPrompt<'a>;
}
