//! A local HTTP server that answers with recorded responses, standing in for the public APIs
//! magg asks (the MCP Registry, npm, PyPI, GitHub, Glama, a server's card): tests point magg at
//! it instead of the real host, and it records what was asked.
//!
//! Routes match on the request path (with its query) by prefix, the longest prefix first; a
//! route can answer with any status and headers, after a delay, and a path no route matches
//! gets 404.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One recorded answer.
#[derive(Clone, Debug)]
pub struct Route {
    /// The path prefix it answers (e.g. `/v0.1/servers`).
    pub prefix: String,
    /// Its HTTP method, or any method when none.
    pub method: Option<&'static str>,
    /// The status line's code and text, e.g. `200 OK`.
    pub status: &'static str,
    /// Extra header lines (`name: value`).
    pub headers: Vec<String>,
    /// The body.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Route {
    /// `200 OK` with a JSON body for GETs of `prefix`.
    pub fn json(prefix: &str, body: impl Into<String>) -> Route {
        Route {
            prefix: prefix.to_owned(),
            method: None,
            status: "200 OK",
            headers: vec!["content-type: application/json".to_owned()],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// A plain-text body.
    pub fn text(prefix: &str, body: impl Into<String>) -> Route {
        Route {
            headers: vec!["content-type: text/plain; charset=utf-8".to_owned()],
            ..Route::json(prefix, body)
        }
    }

    /// Answers with another status (`403 Forbidden`, `429 Too Many Requests`, ...).
    pub fn status(mut self, status: &'static str) -> Route {
        self.status = status;
        self
    }

    /// Adds a header line.
    pub fn header(mut self, line: &str) -> Route {
        self.headers.push(line.to_owned());
        self
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Route {
        self.delay = delay;
        self
    }

    /// Answers only requests of `method`.
    pub fn method(mut self, method: &'static str) -> Route {
        self.method = Some(method);
        self
    }
}

/// A running replay server; it stops when dropped.
pub struct Replay {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http` or `https`.
    scheme: &'static str,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A request the server got.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET /path?query HTTP/1.1`.
    pub line: String,
    /// The header lines, as sent.
    pub headers: Vec<String>,
}

impl Request {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replay {
    /// Starts a server answering with `routes`.
    pub async fn start(routes: Vec<Route>) -> Replay {
        Replay::start_with(routes, None).await
    }

    /// Starts an HTTPS server answering with `routes`, with the certificate chain and key of
    /// the PEM files `cert` and `key`.
    pub async fn start_tls(
        routes: Vec<Route>,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Replay {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
        crate::harness::install_tls();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("certificate file")
            .collect::<Result<_, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("key file");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("TLS config");
        Replay::start_with(
            routes,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start_with(mut routes: Vec<Route>, tls: Option<tokio_rustls::TlsAcceptor>) -> Replay {
        // Longest prefix first, so `/v0.1/servers/x` wins over `/v0.1/servers`.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let routes = Arc::new(routes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the replay server");
        let port = listener.local_addr().expect("replay address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (routes, log) = (routes.clone(), log.clone());
                match &tls {
                    None => drop(tokio::spawn(serve(socket, routes, log))),
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            // A client that refuses the certificate ends the handshake.
                            if let Ok(stream) = tls.accept(socket).await {
                                serve(stream, routes, log).await;
                            }
                        });
                    }
                }
            }
        });
        Replay {
            port,
            scheme,
            seen,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// `127.0.0.1:PORT`, as a plugin's `allow_hosts` grant.
    pub fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("replay log").clone()
    }

    /// The request lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.line).collect()
    }

    /// Whether a request line contains every one of `parts`.
    pub fn asked(&self, parts: &[&str]) -> bool {
        self.lines()
            .iter()
            .any(|line| parts.iter().all(|p| line.contains(p)))
    }
}

/// Answers the requests of one connection (keep-alive), one at a time.
async fn serve(
    mut socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    routes: Arc<Vec<Route>>,
    log: Arc<Mutex<Vec<Request>>>,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<String> = lines.map(str::to_owned).collect();
        let request = Request { line, headers };
        let body_len: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        log.lock().expect("replay log").push(request.clone());
        let mut parts = request.line.split(' ');
        let method = parts.next().unwrap_or_default();
        let path = parts.next().unwrap_or_default();
        let route = routes
            .iter()
            .find(|r| path.starts_with(&r.prefix) && r.method.is_none_or(|m| m == method));
        let (status, headers, body, delay) = match route {
            Some(r) => (r.status, r.headers.clone(), r.body.clone(), r.delay),
            None => (
                "404 Not Found",
                vec!["content-type: application/json".to_owned()],
                r#"{"error":"not found"}"#.to_owned(),
                Duration::ZERO,
            ),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut response = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
        for h in headers {
            response.push_str(&h);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The text of a file in `tests/fixtures/replay/` (responses in each API's documented shape).
pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/replay")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
