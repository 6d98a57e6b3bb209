//! `magg serve`: start the hub and serve it on stdio, streamable HTTP, or both.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::ServeArgs;
use crate::{
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
    runtime.block_on(serve(config, args))
}

async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.plugins {
        config.settings.plugins_dir = Some(dir.clone());
    }
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
    let own = crate::tools::own_server(&config.settings);
    let hub = Hub::start(config, own);
    if let Some(dir) = hub.plugins.dir() {
        tracing::info!("plugins directory: {}", dir.display());
    }
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
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
        let (addr, serve) = http::bind(hub.clone(), &args.host, args.port, stop.clone()).await?;
        tracing::info!("listening on http://{addr}/mcp");
        Some(tokio::spawn(serve))
    } else {
        None
    };

    let result = if args.http {
        match http_task {
            Some(task) => task.await.context("HTTP server task failed")?,
            None => Ok(()),
        }
    } else {
        let stdio = serve_stdio(hub.clone(), stop.clone()).await;
        stop.cancel();
        if let Some(task) = http_task {
            let _ = task.await;
        }
        stdio
    };
    hub.shutdown().await;
    result
}

/// Serves one MCP session on stdin/stdout until the client closes it or `stop` fires.
async fn serve_stdio(hub: std::sync::Arc<Hub>, stop: CancellationToken) -> anyhow::Result<()> {
    let server = MaggServer::new(hub);
    let running = tokio::select! {
        r = stdio::serve(server) => match r {
            Ok(running) => running,
            Err(e) => {
                tracing::info!("stdio client went away before initializing: {e}");
                return Ok(());
            }
        },
        _ = stop.cancelled() => return Ok(()),
    };
    let ct = running.cancellation_token();
    tokio::select! {
        r = running.waiting() => { r.context("stdio session failed")?; }
        _ = stop.cancelled() => ct.cancel(),
    }
    tracing::info!("stdio client disconnected; shutting down");
    Ok(())
}

async fn stop_on_signal(stop: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
    stop.cancel();
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
