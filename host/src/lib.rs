//! magg: a meta-MCP server. One `magg serve` stands between an MCP client and many backend MCP
//! servers, shows all their tools, resources and prompts as one server under per-backend
//! prefixes, and lets the model manage the set of servers mid-session.
//!
//! Modules are layered, and each uses only those below it, bottom first:
//! - [`mcp`] (MCP's rules and shapes), [`metrics`] (Prometheus counters), [`telemetry`]
//!   (OpenTelemetry traces and the W3C trace context), [`config`] (Magg's config file),
//!   [`kits`], [`pipes`] (whole-line plumbing), [`tls`] (rustls for HTTPS), [`auth`] (bearer
//!   tokens, OAuth, scopes), [`reaper`] (ends the backends' process groups if magg is killed);
//! - [`relay`]: client sessions and what they are owed (progress, logs, backend requests);
//! - [`backend`]: one supervised connection per server, with its stdio lane;
//! - [`plugins`]: the WebAssembly plugins (tool filters, routing hooks, ...);
//! - [`search`]: the index and ranking of tool search (used by the catalog);
//! - [`catalog`]: the merged, prefixed, filtered view of all backends;
//! - [`hub`]: the running aggregator (backends, the current catalog snapshot, sessions);
//! - [`call`]: the one route of every tools/call;
//! - [`tools`] (magg's own tools), [`reload`] (config hot reload), [`frontend`] (the MCP
//!   server clients talk to, on stdio and HTTP);
//! - [`cli`]: the command line.
//!
//! One tools/call: [`frontend`] → [`call`] (lookup in the [`catalog`] snapshot, routing hooks
//! from [`plugins`]) → [`backend`] (its lane or rmcp client) → the backend, and back.

pub mod auth;
pub mod backend;
pub mod call;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod frontend;
pub mod hub;
pub mod kits;
pub mod mcp;
pub mod metrics;
pub mod pipes;
pub mod plugins;
pub mod reaper;
pub mod relay;
pub mod reload;
pub mod search;
pub mod telemetry;
pub mod tls;
pub mod tools;
