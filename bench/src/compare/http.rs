//! Streamable HTTP for measurement 10: servers listening on HTTP (`magg serve --http` and
//! `magg-test-backend --http`) and a bare kept-alive HTTP/1.1 client.
//!
//! The client holds one TCP connection (`TCP_NODELAY`), writes each POST in one write and
//! reads the whole response (a JSON body, or the event stream rmcp answers a request with,
//! chunked or not) before sending the next request. The JSON-RPC reply is found by its head,
//! as `raw.rs` does on stdio, and never parsed. A call is timed until the end of its
//! response, when the connection can take the next request.

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::Child,
};

use crate::{
    raw::{Reply, is_error_result, reply_kind, request_message},
    server::{self, Spawned},
};

/// How long a server may take to say where it listens, and to answer one request.
const WAIT: Duration = Duration::from_secs(60);

/// A server process listening on HTTP; stopped with SIGTERM.
pub struct HttpServer {
    label: String,
    pid: u32,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Starts `program serve --http` on a free port of 127.0.0.1 with `config`; the address
    /// comes from its log line `listening on http://ADDR/mcp` (in `log`).
    pub async fn magg(
        label: &str,
        program: &Path,
        config: &Path,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<HttpServer> {
        let args = [
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-banner",
            "--config",
        ]
        .map(str::to_owned);
        let mut args = args.to_vec();
        args.push(config.display().to_string());
        let Spawned { pid, child, .. } = server::spawn(label, program, &args, env, log)?;
        let mut server = HttpServer {
            label: label.to_owned(),
            pid,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = listening_on(&text) {
                server.addr = addr;
                return Ok(server);
            }
            if Instant::now() >= deadline || !server::is_alive(pid) {
                server.shutdown().await;
                bail!(
                    "{label} (pid {pid}) did not say where it listens within {WAIT:?}; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts `program ARGS --http 127.0.0.1:0` (the test backend), which prints
    /// `listening on http://ADDR/mcp` on stdout.
    pub async fn backend(
        label: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<HttpServer> {
        let mut args = args.to_vec();
        args.extend(["--http".to_owned(), "127.0.0.1:0".to_owned()]);
        let Spawned {
            pid, child, stdout, ..
        } = server::spawn(label, program, &args, &[], log)?;
        let mut server = HttpServer {
            label: label.to_owned(),
            pid,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        let read = tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line)).await;
        match read
            .ok()
            .and_then(|r| r.ok())
            .and_then(|_| listening_on(&line))
        {
            Some(addr) => {
                server.addr = addr;
                Ok(server)
            }
            None => {
                server.shutdown().await;
                bail!("{label} (pid {pid}) did not print its address; got {line:?}")
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the process with SIGTERM (it does not read its stdin), and the backends it
    /// started.
    pub async fn shutdown(mut self) {
        let children = server::children_of(self.pid);
        server::signal(self.pid, "TERM");
        server::stop(&self.label, self.pid, &mut self.child, &children).await;
    }
}

/// The address in a line `... listening on http://ADDR/mcp`.
fn listening_on(text: &str) -> Option<SocketAddr> {
    const KEY: &str = "listening on http://";
    let start = text.find(KEY)? + KEY.len();
    let rest = &text[start..];
    rest[..rest.find('/')?].parse().ok()
}

/// An MCP session over one kept-alive HTTP/1.1 connection.
pub struct HttpClient {
    label: String,
    stream: BufReader<TcpStream>,
    host: String,
    session: Option<String>,
    next_id: u64,
    head: String,
    body: Vec<u8>,
}

impl HttpClient {
    /// Connects to `addr` and performs the `initialize` handshake.
    pub async fn connect(label: &str, addr: SocketAddr) -> Result<HttpClient> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("{label}: cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut client = HttpClient {
            label: label.to_owned(),
            stream: BufReader::with_capacity(1 << 16, stream),
            host: addr.to_string(),
            session: None,
            next_id: 1,
            head: String::new(),
            body: Vec::new(),
        };
        let params = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "magg-bench-http", "version": env!("CARGO_PKG_VERSION")},
        });
        client.request("initialize", Some(params)).await?;
        let status = client
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await?;
        ensure!(
            (200..300).contains(&status),
            "{label}: notifications/initialized answered HTTP {status}"
        );
        Ok(client)
    }

    /// POSTs `body` and reads the whole response; returns its status.
    async fn post(&mut self, body: &str) -> Result<u16> {
        let mut request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(session) = &self.session {
            request.push_str("Mcp-Session-Id: ");
            request.push_str(session);
            request.push_str("\r\nMcp-Protocol-Version: 2025-06-18\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        let stream = self.stream.get_mut();
        stream
            .write_all(request.as_bytes())
            .await
            .with_context(|| format!("{}: cannot send a request", self.label))?;
        match tokio::time::timeout(WAIT, self.read_response()).await {
            Ok(result) => result.with_context(|| format!("{}: bad HTTP response", self.label)),
            Err(_) => bail!("{}: no response within {WAIT:?}", self.label),
        }
    }

    /// Reads a response's head and body (into `self.body`); returns its status.
    async fn read_response(&mut self) -> Result<u16> {
        self.head.clear();
        self.body.clear();
        let mut length = None;
        let mut chunked = false;
        let mut status = 0;
        loop {
            let start = self.head.len();
            ensure!(
                self.stream.read_line(&mut self.head).await? > 0,
                "connection closed"
            );
            let line = self.head[start..].trim_end();
            if line.is_empty() {
                break;
            }
            if start == 0 {
                status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .with_context(|| format!("bad status line {line:?}"))?;
            } else if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                } else if name.eq_ignore_ascii_case("mcp-session-id") {
                    self.session = Some(value.to_owned());
                }
            }
        }
        if chunked {
            let mut size_line = String::new();
            loop {
                size_line.clear();
                self.stream.read_line(&mut size_line).await?;
                let hex = size_line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(hex, 16)
                    .with_context(|| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        size_line.clear();
                        self.stream.read_line(&mut size_line).await?;
                        if size_line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let at = self.body.len();
                self.body.resize(at + size + 2, 0);
                self.stream.read_exact(&mut self.body[at..]).await?;
                self.body.truncate(at + size);
            }
        } else if let Some(length) = length {
            self.body.resize(length, 0);
            self.stream.read_exact(&mut self.body).await?;
        }
        Ok(status)
    }

    /// Sends one request and returns its reply, unparsed; an error reply is an error.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> Result<&str> {
        let id = self.next_id;
        self.next_id += 1;
        let body = serde_json::to_string(&request_message(id, method, params))?;
        let status = self.post(&body).await?;
        let text = std::str::from_utf8(&self.body).context("response body is not UTF-8")?;
        ensure!(
            status == 200,
            "{}: {method} answered HTTP {status}: {text}",
            self.label
        );
        // A JSON body is the reply; an event stream holds it in one of its `data:` lines.
        let found = std::iter::once(text)
            .chain(text.lines().filter_map(|l| l.strip_prefix("data:")))
            .map(str::trim_start)
            .find_map(|candidate| match reply_kind(candidate, id) {
                Reply::Other => None,
                kind => Some((kind, candidate)),
            });
        match found {
            Some((Reply::Result, reply)) => Ok(reply),
            Some((_, reply)) => bail!("{}: {method} failed: {reply}", self.label),
            None => bail!("{}: no reply to {method} in {text:?}", self.label),
        }
    }

    /// Lists tools until `tool` is there (magg's first listing waits for its backends).
    pub async fn wait_for_tool(&mut self, tool: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        let needle = format!("\"name\":\"{tool}\"");
        loop {
            if self.request("tools/list", None).await?.contains(&needle) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{}: {tool} not listed within {WAIT:?}",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Calls `tool` with `arguments`; a result flagged as an error is an error.
    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Result<()> {
        let params = json!({"name": tool, "arguments": arguments});
        let reply = self.request("tools/call", Some(params)).await?;
        if is_error_result(reply) {
            let reply = reply.to_owned();
            bail!(
                "{}: tools/call {tool} returned an error result: {reply}",
                self.label
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address() {
        let line = "2025-01-01T00:00:00Z  INFO listening on http://127.0.0.1:40123/mcp\n";
        assert_eq!(
            listening_on(line),
            Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
        );
        assert_eq!(
            listening_on("listening on http://127.0.0.1:1/mcp"),
            Some(SocketAddr::from(([127, 0, 0, 1], 1)))
        );
        assert_eq!(listening_on("starting"), None);
    }
}
