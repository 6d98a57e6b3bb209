//! magg's own accept loop under the router: HTTP/1.1 on each accepted connection (plain, or
//! TLS with rustls), with limits on what a client may hold.
//!
//! - **Headers**: a request's headers must arrive whole within `http_read_timeout`
//!   (`header_read_timeout`, which also ends a kept-alive connection idle that long between
//!   requests), and may be at most [`MAX_HEADER_BYTES`]; a larger head gets hyper's
//!   `431 Request Header Fields Too Large` (`414 URI Too Long` for a long target).
//! - **Bodies**: a body must arrive within `http_read_timeout` too, with one more second for
//!   each [`MIN_BODY_RATE`] bytes it has sent, so a large body on a working link is never cut
//!   off but one trickled byte by byte is ([`Deadline`]; `408 Request Timeout` where magg reads
//!   the body, see `body::read`).
//! - **TLS**: the handshake has the same time limit as the headers.
//!
//! Every connection is a task of its own, so a slow client holds nothing but its socket and
//! its task; everyone else is served meanwhile. Accepted connections have `TCP_NODELAY` set,
//! so a response written in more than one piece is never held back waiting for the client's
//! (delayed) acknowledgement of the first. On `drain`, the listener closes: no more
//! connections are accepted, and open ones go on (the router refuses their new requests). On
//! `stop`, each open connection finishes the request it is serving and closes, and [`serve`]
//! returns once they have all closed (or after [`SHUTDOWN_GRACE`]).

use std::{
    error::Error as StdError,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::watch,
    time::{Instant, Sleep},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    },
};
use tokio_util::sync::CancellationToken;

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The rate (bytes per second) a body must keep up, on average, to be given more time than
/// `http_read_timeout`.
pub const MIN_BODY_RATE: u64 = 64 * 1024;

/// How long open connections may take to finish after `stop` before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What each connection is allowed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `http_read_timeout`: for the headers, the TLS handshake, and (at first) a body.
    pub read_timeout: Option<Duration>,
}

/// Serves `app` on the connections `listener` accepts (over TLS with `tls`): accepts until
/// `drain` (or `stop`), serves the open connections until `stop`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    drain: CancellationToken,
    stop: CancellationToken,
) {
    // Every connection task holds a receiver; the sender sees them all gone when they end.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!("cannot accept a connection: {error}");
                    if !is_connection_error(&error) {
                        // Out of file descriptors or the like: give it time to pass.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            _ = drain.cancelled() => break,
            _ = stop.cancelled() => break,
        };
        let connection = Connection {
            app: app.clone(),
            limits,
            stop: stop.clone(),
            _open: open_rx.clone(),
        };
        tokio::spawn(connection.serve(stream, tls.clone()));
    }
    drop(listener);
    stop.cancelled().await;
    drop(open_rx);
    if tokio::time::timeout(SHUTDOWN_GRACE, open_tx.closed())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after {SHUTDOWN_GRACE:?}; dropping them");
    }
}

/// An error of one incoming connection, after which the listener goes on at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One accepted connection and what serving it needs.
struct Connection {
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    /// Held while the connection is open (see [`serve`]).
    _open: watch::Receiver<()>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an accepted connection: {error}");
        }
        let Some(acceptor) = tls else {
            return self.http(stream).await;
        };
        let handshake = acceptor.accept(stream);
        let stream = match self.limits.read_timeout {
            Some(limit) => match tokio::time::timeout(limit, handshake).await {
                Ok(stream) => stream,
                Err(_) => {
                    tracing::debug!("TLS handshake not done within {limit:?}; closing");
                    return;
                }
            },
            None => handshake.await,
        };
        match stream {
            Ok(stream) => self.http(stream).await,
            Err(error) => tracing::debug!("TLS handshake failed: {error}"),
        }
    }

    /// HTTP/1.1 on `io` until the client closes it, a limit ends it, or magg stops.
    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app, limits, stop, ..
        } = self;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request =
                request.map(|body| axum::body::Body::new(Deadline::new(body, limits.read_timeout)));
            // A router is always ready (`poll_ready` is `Ready(Ok)`), so it is called directly.
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.read_timeout)
            .max_header_size(MAX_HEADER_BYTES);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!("HTTP connection ended: {error}");
        }
    }
}

/// A request body that must arrive in time: within `limit` of its headers, plus a second for
/// every [`MIN_BODY_RATE`] bytes received. Past that it fails with [`BodyTimedOut`].
pub struct Deadline {
    body: Incoming,
    /// `None` when there is no limit.
    timer: Option<(Instant, Duration, Pin<Box<Sleep>>)>,
    received: u64,
}

impl Deadline {
    fn new(body: Incoming, limit: Option<Duration>) -> Deadline {
        let timer = limit.map(|limit| {
            let start = Instant::now();
            (
                start,
                limit,
                Box::pin(tokio::time::sleep_until(start + limit)),
            )
        });
        Deadline {
            body,
            timer,
            received: 0,
        }
    }
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body did not arrive within the time allowed (http_read_timeout, and a second more for each {MIN_BODY_RATE} bytes received)"
)]
pub struct BodyTimedOut;

/// Whether `error` (or what caused it) is a [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        next = error.source();
    }
    false
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((start, limit, sleep))) =
                    (frame.data_ref(), this.timer.as_mut())
                {
                    this.received += data.len() as u64;
                    let more = Duration::from_secs(this.received / MIN_BODY_RATE);
                    sleep.as_mut().reset(*start + *limit + more);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some((_, _, sleep)) = this.timer.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(BodyTimedOut.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why the TLS certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read, or holds nothing usable.
    #[error("cannot use the TLS {what} {}: {reason}", path.display())]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refuses the pair (e.g. the key is not the certificate's).
    #[error("cannot serve TLS with the certificate {} and the key {}: {reason}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// Reads a PEM certificate chain (`cert`, the server's certificate first) and its PEM private
/// key (`key`), and makes the TLS side of the server from them (TLS 1.2 and 1.3, ring's
/// cryptography, HTTP/1.1 offered by ALPN).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let file_error = |what, path: &Path, reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("certificate", cert, pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("certificate", cert, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            cert,
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("private key", key, pem_reason(&e)))?;
    let pair_error = |e: rustls::Error| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pair_error)?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(pair_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What is wrong with a PEM file, in words.
fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(error) => error.to_string(),
        Error::NoItemsFound => "it holds no PEM item of that kind".to_owned(),
        other => format!("it is not valid PEM ({other})"),
    }
}
