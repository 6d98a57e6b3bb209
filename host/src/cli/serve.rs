//! `magg serve`: start the hub and serve it on stdio, streamable HTTP, or both.
//!
//! HTTP is authenticated exactly when a key exists (`magg auth init`, or `MAGG_PRIVATE_KEY`),
//! as in Magg; the key is read once, here. A key that exists but cannot be read stops an HTTP
//! server from starting rather than serving it open. Without a key, HTTP is served on
//! loopback only unless `--insecure-no-auth` says otherwise, and its clients may not use the
//! tools that change servers or the config (see `call`). stdio is local and never asks for a
//! token.
//!
//! # Stopping
//! The first SIGTERM or SIGINT, or the stdio client closing magg's stdin, starts the drain
//! ([`Hub::start_draining`]): the HTTP listener closes, new requests are refused (HTTP `503` with
//! `Retry-After`, an error on stdio), and the work in flight is waited for, up to
//! `shutdown_timeout`. A second signal ends the wait at once. Then the frontends close, every
//! backend's process group is ended (SIGTERM, SIGKILL after a short grace) and magg exits 0.
//! If magg is killed outright, [`crate::reaper`] ends the groups.

use std::{net::IpAddr, sync::Arc};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::{Failed, ServeArgs};
use crate::{
    auth::Gate,
    config::Config,
    frontend::{MaggServer, http, stdio},
    hub::Hub,
    reload,
};

/// Runs the server until the stdio client goes away or magg gets SIGINT / SIGTERM.
pub fn run(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    crate::hub::limit_retained_memory();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config, args));
    // A read of stdin runs on a thread of its own until a line or the end of input comes: a
    // client that keeps stdin open and silent must not keep magg from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.plugins {
        config.settings.plugins_dir = Some(dir.clone());
    }
    let serves_http = args.http || args.hybrid;
    let auth = if serves_http {
        http_auth(&config, &args).await?
    } else {
        None
    };
    let tls = tls(&args, serves_http)?;
    let where_from = if config.exists {
        config.path.display().to_string()
    } else {
        let what = if config.servers.is_empty() {
            "empty"
        } else {
            "embedded default"
        };
        format!("{what} (no file at {})", config.path.display())
    };
    let enabled = config.enabled_servers().count();
    let auto_reload = config.settings.auto_reload;
    crate::metrics::set_enabled(config.settings.metrics);
    let own = crate::tools::own_server(&config.settings);
    let hub = Hub::start(config, own);
    if let Some(dir) = hub.plugins.dir() {
        tracing::info!("plugins directory: {}", dir.display());
    }
    // `stop` closes the frontends once the drain is over; `now` cuts the drain short.
    let stop = CancellationToken::new();
    let now = CancellationToken::new();
    tokio::spawn(drain_on_signal(hub.clone(), now.clone()));
    tokio::spawn(reload_on_sighup(std::sync::Arc::downgrade(&hub)));
    if auto_reload {
        reload::watch(&hub);
    }
    let mode = if args.hybrid {
        "stdio + HTTP"
    } else if args.http {
        "HTTP"
    } else {
        "stdio"
    };
    if !args.no_banner {
        tracing::info!(
            "magg {} serving on {mode}; config: {where_from}; starting {enabled} server(s)",
            env!("CARGO_PKG_VERSION")
        );
    }

    let http_task = if args.http || args.hybrid {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (addr, serve) =
            http::bind(hub.clone(), &args.host, args.port, auth, tls, stop.clone()).await?;
        tracing::info!("listening on {scheme}://{addr}/mcp");
        Some(tokio::spawn(serve))
    } else {
        None
    };

    let admin_task = match args.admin_port {
        Some(port) => {
            let host = args.admin_host.as_deref().unwrap_or(&args.host);
            let (addr, serve) = http::bind_admin(hub.clone(), host, port, stop.clone()).await?;
            tracing::info!("admin endpoints on http://{addr}/healthz, /readyz, /metrics");
            Some(tokio::spawn(serve))
        }
        None => None,
    };

    let result = if args.http {
        let mut task = http_task.context("HTTP server task missing")?;
        let draining = hub.drain_token();
        tokio::select! {
            ended = &mut task => ended.context("HTTP server task failed")?,
            () = draining.cancelled() => {
                drain(&hub, &now).await;
                stop.cancel();
                task.await.context("HTTP server task failed")?
            }
        }
    } else {
        let stdio = serve_stdio(hub.clone(), stop.clone(), now.clone()).await;
        stop.cancel();
        if let Some(task) = http_task {
            let _ = task.await;
        }
        stdio
    };
    hub.start_draining();
    stop.cancel();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    hub.shutdown().await;
    result
}

/// Waits until the work in flight is done, for at most `shutdown_timeout`, or until `now`.
async fn drain(hub: &Hub, now: &CancellationToken) {
    hub.start_draining();
    if hub.work_in_flight() == 0 {
        return;
    }
    let limit = hub.settings.shutdown_timeout;
    tracing::info!(
        "waiting up to {:.1}s (shutdown_timeout) for the requests in flight",
        limit.as_secs_f64()
    );
    tokio::select! {
        () = hub.idle() => tracing::info!("the requests in flight are done"),
        () = tokio::time::sleep(limit) => tracing::warn!(
            "requests still in flight after {:.1}s (shutdown_timeout); stopping without them",
            limit.as_secs_f64()
        ),
        () = now.cancelled() => tracing::warn!("stopping now, without the requests in flight"),
    }
}

/// The token check for HTTP: `Some` when a key exists or an OAuth authorization server is
/// set up in `auth.json`; an error when either is there but cannot be used, or when there is
/// none and `--host` reaches beyond this machine without `--insecure-no-auth`.
async fn http_auth(config: &Config, args: &ServeArgs) -> anyhow::Result<Option<Arc<Gate>>> {
    let gate = Gate::load(&config.path).map_err(|e| {
        Failed::new(format!(
            "{e}; refusing to serve HTTP without authentication"
        ))
        .hint("Fix the key (or MAGG_PRIVATE_KEY) or auth.json, or remove them to serve without authentication")
    })?;
    if let Some(gate) = gate {
        if let Some(bearer) = gate.bearer() {
            tracing::info!(
                "HTTP requires a bearer token (issuer {}, audience {}); make one with `magg auth token`",
                bearer.issuer,
                bearer.audience
            );
        }
        if let Some(oauth) = gate.oauth() {
            let config = oauth.config();
            tracing::info!(
                issuer = %config.issuer,
                audience = config.audience.as_deref().or(config.resource.as_deref()).unwrap_or("magg's /mcp URL"),
                "HTTP accepts access tokens of the OAuth authorization server"
            );
            match oauth.prefetch().await {
                Ok(keys) => {
                    tracing::info!("the authorization server publishes {keys} signing key(s)")
                }
                Err(why) => tracing::warn!(
                    "cannot fetch the authorization server's keys yet (magg tries again on each request): {}",
                    why.0
                ),
            }
        }
        return Ok(Some(Arc::new(gate)));
    }
    if !is_loopback(&args.host) && !args.insecure_no_auth {
        return Err(Failed::new(format!(
            "refusing to serve HTTP on {} without authentication: anyone who can reach it could \
             start programs as this user through magg",
            args.host
        ))
        .hint("Turn authentication on with 'magg auth init' (clients then send 'Authorization: Bearer <token>')")
        .hint("or serve on loopback (--host 127.0.0.1), or pass --insecure-no-auth to serve it open anyway")
        .into());
    }
    if config.settings.allow_unauthenticated_changes {
        tracing::warn!(
            "HTTP authentication is off and allow_unauthenticated_changes is on: any HTTP client can add servers (run commands) and change the config"
        );
    } else {
        tracing::info!(
            "HTTP authentication is off (`magg auth init` turns it on): HTTP clients cannot use the tools that change servers or the config"
        );
    }
    Ok(None)
}

/// The TLS side of the HTTP server, from `--tls-cert` and `--tls-key` (clap makes sure they
/// come together): `None` without them; an error when they cannot be used, or are given
/// without HTTP to serve.
fn tls(args: &ServeArgs, serves_http: bool) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    if !serves_http {
        return Err(
            Failed::new("--tls-cert and --tls-key are for serving HTTPS")
                .hint("add --http (or --hybrid), or leave them out to serve stdio")
                .into(),
        );
    }
    let acceptor = http::tls_acceptor(cert, key).map_err(|e| {
        Failed::new(format!("{e}; refusing to start"))
            .hint("--tls-cert takes a PEM certificate chain, --tls-key its PEM private key (e.g. from `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem`)")
    })?;
    Ok(Some(acceptor))
}

/// Whether `host` names this machine only: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Serves one MCP session on stdin/stdout until the client closes it or magg drains; then
/// waits for the work in flight ([`drain`]) and for its answers to be written.
async fn serve_stdio(
    hub: std::sync::Arc<Hub>,
    stop: CancellationToken,
    now: CancellationToken,
) -> anyhow::Result<()> {
    let server = MaggServer::new(hub.clone());
    let draining = hub.drain_token();
    let (running, writer) = tokio::select! {
        r = stdio::serve(server) => match r {
            Ok(served) => served,
            Err(e) => {
                tracing::info!("stdio client went away before initializing: {e}");
                return Ok(());
            }
        },
        _ = stop.cancelled() => return Ok(()),
        _ = draining.cancelled() => return Ok(()),
    };
    let ct = running.cancellation_token();
    let session = tokio::select! {
        r = running.waiting() => {
            tracing::info!("stdio client disconnected; shutting down");
            r.map(|_| ()).context("stdio session failed")
        }
        _ = stop.cancelled() => Ok(()),
        _ = draining.cancelled() => Ok(()),
    };
    drain(&hub, &now).await;
    // A client that stopped reading must not hold magg up for good.
    let flush_limit = hub
        .settings
        .shutdown_timeout
        .max(std::time::Duration::from_secs(1));
    tokio::select! {
        () = writer.flush() => {}
        () = tokio::time::sleep(flush_limit) => {
            tracing::warn!("the stdio client is not reading magg's answers; stopping without writing them");
        }
        () = now.cancelled() => {}
    }
    ct.cancel();
    session
}

/// Starts the drain at the first SIGINT or SIGTERM, and cancels `now` at the second.
async fn drain_on_signal(hub: std::sync::Arc<Hub>, now: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => (int, term),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("cannot watch SIGINT and SIGTERM: {e}");
            return;
        }
    };
    let mut first = true;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        if first {
            first = false;
            tracing::info!(
                "{name}: shutting down; no new requests, finishing those in flight (a second signal stops at once)"
            );
            hub.start_draining();
        } else {
            tracing::info!("{name} again: stopping now");
            now.cancel();
            return;
        }
    }
}

/// SIGHUP re-reads the config file and applies what changed.
async fn reload_on_sighup(hub: std::sync::Weak<Hub>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(hub) = hub.upgrade() else { break };
        tracing::info!("SIGHUP: reloading the config");
        if let Ok(Some(diff)) = reload::reload(&hub, true).await {
            tracing::info!(?diff, "config reloaded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.0.2.1", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
