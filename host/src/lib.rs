//! magg: a meta-MCP server. One `magg serve` stands between an MCP client and many backend MCP
//! servers, shows all their tools, resources and prompts as one server under per-backend
//! prefixes, and lets the model manage the set of servers mid-session.
//!
//! The modules follow one tools/call from client to backend: [`frontend`] (the MCP server the
//! client talks to) → [`hub`] (shared state and the dispatch path) → [`catalog`] (name mapping)
//! → [`plugins`] (routing hooks) → [`backend`] (the supervised connection to one server).
//! [`config`] reads Magg's config file, [`tools`] holds magg's own tools, [`cli`] the command line.

pub mod backend;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod frontend;
pub mod hub;
pub mod kits;
pub mod pipes;
pub mod plugins;
pub mod relay;
pub mod reload;
pub mod tools;
