//! Measurement 9: a kept-alive HTTP/1.1 client's tools/call, one request at a time, the way
//! Python's `http.client` talks (each request in one write, `TCP_NODELAY` on its socket, the
//! next request only after the whole response). Timed from writing the request to the end of
//! its response, through `magg serve --http` (server-everything behind it on stdio, `ev_echo`)
//! and straight to server-everything's own streamable HTTP server (`echo`). What shows here and
//! not over stdio: how the server frames and writes its responses, and whether a response
//! written in pieces waits for the client's delayed acknowledgement (Nagle's algorithm).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
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
    Env, MAGG_ENV, Options,
    report::{Budget, Section},
    server::{self, Spawned},
    stats::Summary,
    table_row,
};

/// How long a server may take to start listening, and to answer any one request.
const WAIT: Duration = Duration::from_secs(30);
/// The message every `echo` call sends.
const MESSAGE: &str = "hello, bench";

/// `dist/index.js` of `@modelcontextprotocol/server-everything` (installed by
/// `npm ci --prefix tests/node`).
fn everything_js() -> Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    ensure!(
        path.is_file(),
        "{} is missing: run `npm ci --prefix tests/node`",
        path.display()
    );
    Ok(path)
}

/// `magg serve --http` on loopback at `port` with the config file `config`.
pub(crate) fn serve_http_args(port: u16, config: &Path) -> Vec<String> {
    let port = port.to_string();
    let config = config.display().to_string();
    [
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--config",
        &config,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A server process listening on `addr`, stopped by SIGTERM (it does not read its stdin).
pub(crate) struct Listening {
    label: String,
    pub(crate) pid: u32,
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Listening {
    /// Spawns `program args` and waits until `port` accepts connections.
    pub(crate) async fn start(
        env: &Env,
        label: &str,
        log: &str,
        program: &Path,
        args: &[String],
        vars: &[(&str, &str)],
        port: u16,
    ) -> Result<Listening> {
        let Spawned {
            pid,
            child,
            mut stdout,
            ..
        } = server::spawn(label, program, args, vars, &env.log(log))?;
        // server-everything logs every request on stdout: keep the pipe drained.
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
        });
        let server = Listening {
            label: label.to_owned(),
            pid,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(server.addr).await.is_err() {
            if Instant::now() > deadline {
                server.stop().await;
                bail!("{label} did not listen on {port} within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    pub(crate) async fn stop(mut self) {
        let children = server::children_of(self.pid);
        server::terminate(&self.label, self.pid, &mut self.child, &children).await;
    }
}

/// One HTTP response: status, headers (names in lower case) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC message answering request `id`, from a JSON body or an event stream.
    fn answer(&self, id: u64) -> Result<Value> {
        let text = String::from_utf8_lossy(&self.body);
        let json = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        let mut messages: Vec<Value> = if json {
            vec![serde_json::from_str(&text).context("a JSON body that does not parse")?]
        } else {
            text.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str(data.trim_start()).ok())
                .collect()
        };
        let at = messages
            .iter()
            .position(|m| m["id"] == json!(id) && m.get("method").is_none())
            .with_context(|| {
                format!("no answer to request {id} in HTTP {}: {text}", self.status)
            })?;
        let answer = messages.swap_remove(at);
        ensure!(
            answer.get("error").is_none(),
            "request {id} failed: {answer}"
        );
        Ok(answer)
    }
}

/// An MCP session over one kept-alive HTTP/1.1 connection.
pub(crate) struct Client {
    host: String,
    stream: BufReader<TcpStream>,
    session: Option<String>,
    version: Option<String>,
    next_id: u64,
    line: String,
    /// The `Authorization` header sent with every request.
    pub(crate) authorization: Option<String>,
    /// A stateless client (protocol 2026-07-28): no session; each request names its method
    /// and target in `Mcp-Method` / `Mcp-Name`.
    stateless: bool,
}

impl Client {
    /// Connects to `addr` and performs the `initialize` handshake.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Client> {
        Self::connect_as(addr, None).await
    }

    /// Connects to `addr` sending `authorization` with every request, and performs the
    /// `initialize` handshake.
    pub(crate) async fn connect_as(
        addr: SocketAddr,
        authorization: Option<String>,
    ) -> Result<Client> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            host: addr.to_string(),
            stream: BufReader::new(stream),
            session: None,
            version: None,
            next_id: 0,
            line: String::new(),
            authorization,
            stateless: false,
        };
        let init = client
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "magg-bench-http", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        client.version = init["result"]["protocolVersion"]
            .as_str()
            .map(str::to_owned);
        let ack = client
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        ensure!(
            ack.status == 202,
            "notifications/initialized: HTTP {}",
            ack.status
        );
        Ok(client)
    }

    /// Connects to `addr` as a stateless client of protocol 2026-07-28: no handshake.
    pub(crate) async fn stateless(addr: SocketAddr) -> Result<Client> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            host: addr.to_string(),
            stream: BufReader::new(stream),
            session: None,
            version: Some("2026-07-28".to_owned()),
            next_id: 0,
            line: String::new(),
            authorization: None,
            stateless: true,
        })
    }

    /// Sends a request and returns its answer.
    pub(crate) async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&message).await?;
        if self.session.is_none() {
            self.session = response.header("mcp-session-id").map(str::to_owned);
        }
        ensure!(
            response.status == 200,
            "{method}: HTTP {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        response.answer(id)
    }

    /// POSTs `message` to `/mcp` in one write and reads the whole response.
    async fn post(&mut self, message: &Value) -> Result<Response> {
        let body = message.to_string();
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(session) = &self.session {
            head.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        if let Some(version) = &self.version {
            head.push_str(&format!("MCP-Protocol-Version: {version}\r\n"));
        }
        if let Some(authorization) = &self.authorization {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        if self.stateless
            && let Some(method) = message["method"].as_str()
        {
            head.push_str(&format!("Mcp-Method: {method}\r\n"));
            let params = &message["params"];
            if let Some(name) = params["name"].as_str().or(params["uri"].as_str()) {
                head.push_str(&format!("Mcp-Name: {name}\r\n"));
            }
        }
        head.push_str("\r\n");
        head.push_str(&body);
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        tokio::time::timeout(WAIT, self.read_response())
            .await
            .context("no response in time")?
    }

    async fn read_line(&mut self) -> Result<&str> {
        self.line.clear();
        let n = self.stream.read_line(&mut self.line).await?;
        ensure!(n > 0, "the server closed the connection");
        Ok(self.line.trim_end_matches(['\r', '\n']))
    }

    async fn read_response(&mut self) -> Result<Response> {
        let status_line = self.read_line().await?.to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = self.read_line().await?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or_default(), 16)
                    .with_context(|| format!("bad chunk size {size:?}"))?;
                if size == 0 {
                    while !self.read_line().await?.is_empty() {}
                    break;
                }
                let at = response.body.len();
                response.body.resize(at + size + 2, 0);
                self.stream.read_exact(&mut response.body[at..]).await?;
                response.body.truncate(at + size);
            }
        } else {
            let length = match response.header("content-length") {
                Some(length) => length.parse().context("bad Content-Length")?,
                None => 0,
            };
            response.body.resize(length, 0);
            self.stream.read_exact(&mut response.body).await?;
        }
        Ok(response)
    }

    /// Calls `tool` with `{"message": MESSAGE}` and checks the echo.
    async fn echo(&mut self, tool: &str) -> Result<()> {
        let params = json!({"name": tool, "arguments": {"message": MESSAGE}});
        let answer = self.request("tools/call", params).await?;
        let text = answer["result"]["content"][0]["text"].as_str();
        ensure!(
            text.is_some_and(|t| t.ends_with(MESSAGE)),
            "{tool} did not echo: {answer}"
        );
        Ok(())
    }

    /// Latencies of `count` sequential calls of `tool` after `warmup` untimed ones.
    async fn latencies(
        &mut self,
        tool: &str,
        warmup: usize,
        count: usize,
    ) -> Result<Vec<Duration>> {
        for _ in 0..warmup {
            self.echo(tool).await?;
        }
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            self.echo(tool).await?;
            samples.push(start.elapsed());
        }
        Ok(samples)
    }

    /// Waits until `tools/list` names `tool` (magg's backend may still be starting).
    pub(crate) async fn wait_for_tool(&mut self, tool: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = self.request("tools/list", json!({})).await?;
            let listed = list["result"]["tools"]
                .as_array()
                .is_some_and(|tools| tools.iter().any(|t| t["name"] == json!(tool)));
            if listed {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "{tool} was never listed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Times `tool` on a fresh kept-alive connection to `addr`.
async fn time(addr: SocketAddr, tool: &str, opts: Options) -> Result<Vec<Duration>> {
    let mut client = Client::connect(addr).await?;
    client.wait_for_tool(tool).await?;
    client.latencies(tool, WARMUP, calls(opts)).await
}

/// Untimed calls before the timed ones.
const WARMUP: usize = 50;

/// Calls timed per server: fewer than over stdio, as each may take tens of milliseconds when a
/// server's responses wait for delayed acknowledgements.
fn calls(opts: Options) -> usize {
    opts.calls / 10
}

/// Measurement 9.
pub async fn keepalive(env: &Env, opts: Options) -> Result<Section> {
    eprintln!("magg-bench: 9 HTTP keep-alive client (magg vs server-everything's own HTTP)");
    let js = everything_js()?;
    let node = PathBuf::from("node");

    let port = free_port()?;
    let args = [js.display().to_string(), "streamableHttp".to_owned()];
    let direct = Listening::start(
        env,
        "server-everything (streamableHttp)",
        "everything-http",
        &node,
        &args,
        &[("PORT", &port.to_string())],
        port,
    )
    .await?;
    let direct_samples = time(direct.addr, "echo", opts).await;
    direct.stop().await;
    let direct_samples = direct_samples?;

    let config = env.work.join("keepalive.json");
    let text = serde_json::to_string_pretty(&json!({"servers": {"ev": {
        "source": "bench",
        "prefix": "ev",
        "command": "node",
        "args": [js, "stdio"],
    }}}))?;
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let args = serve_http_args(port, &config);
    let magg = Listening::start(
        env,
        "magg --http (server-everything on stdio)",
        "magg-http",
        &env.magg,
        &args,
        MAGG_ENV,
        port,
    )
    .await?;
    let magg_samples = time(magg.addr, "ev_echo", opts).await;
    magg.stop().await;
    let magg_samples = magg_samples?;

    let (d, m) = (Summary::of(&direct_samples), Summary::of(&magg_samples));
    let mut s = Section::new(
        "http_keepalive",
        format!(
            "9. HTTP keep-alive client: tools/call echo, {} sequential calls on one HTTP/1.1 \
             connection after {WARMUP} warm-up",
            calls(opts)
        ),
    );
    s.line(crate::TABLE_HEAD);
    s.line(table_row("everything HTTP", &d));
    s.line(table_row("through magg", &m));
    s.line(
        "(server-everything's own streamable HTTP server vs magg serve --http with it on stdio)",
    );
    s.figure(
        "direct_p50_us",
        "server-everything's HTTP server, p50",
        d.p50,
        "µs",
        None,
    );
    s.figure("magg_p50_us", "magg serve --http, p50", m.p50, "µs", None);
    s.figure(
        "added_p50_us",
        "added p50 (magg − server-everything)",
        m.p50 - d.p50,
        "µs",
        Some(Budget::AtMost(1000.0)),
    );
    s.figure(
        "p50_ratio",
        "p50 ratio (magg / server-everything)",
        m.p50 / d.p50,
        "×",
        None,
    );
    s.data("direct", d.to_json());
    s.data("magg", m.to_json());
    Ok(s)
}
