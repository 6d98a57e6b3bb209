//! End-to-end tests: the real `magg` binary in front of real MCP backends (the rmcp test backend
//! in `tests/fixtures/test-backend` and `@modelcontextprotocol/server-everything` from npm),
//! driven by a real rmcp client over stdio and streamable HTTP.
//!
//! Before running: `cargo build --workspace`, `npm ci --prefix tests/node` and
//! `npm ci --prefix tests/conformance`.

mod harness;
mod raw_http;
mod replay;

mod aggregation;
mod api;
mod auth;
mod bundled;
mod calls;
mod card;
mod cli;
mod config_watch;
mod conformance;
mod deploy;
mod discover;
mod eras;
mod failures;
mod guest_providers;
mod health;
mod http;
mod isolation;
mod kits;
mod limits;
mod live;
mod metrics;
mod modern_front;
mod oauth;
mod own_tools;
mod plain;
mod plugins;
mod protocol_errors;
mod providers;
mod proxy;
mod replicas;
mod sdk;
mod search;
mod secrets;
mod self_extend;
mod server_requests;
mod sessions;
mod shared_file;
mod shutdown;
mod smart_configure;
mod sse;
mod tls;
mod tool_search;
mod tracing;
mod transparency;
