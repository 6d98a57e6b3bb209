//! A raw HTTP/1.1 client for magg's `/mcp`, for what an MCP SDK hides: status codes, headers,
//! how a response is framed, one connection kept alive from one request to the next.

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

use crate::harness::WAIT;

/// `Accept` as the transport asks clients to send it.
pub const BOTH: &str = "application/json, text/event-stream";

/// An HTTP/1.1 connection to magg, kept alive from one request to the next and spoken to byte
/// by byte, the way Python's `http.client` does: each request in one write, one at a time.
pub struct Conn {
    authority: String,
    stream: BufReader<TcpStream>,
}

/// One response read off a [`Conn`].
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC messages of the body: the body itself when it is JSON, the data of each
    /// event when it is an event stream.
    pub fn messages(&self) -> Vec<Value> {
        if self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            return vec![
                serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self}")),
            ];
        }
        self.text()
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim_start()).ok())
            .collect()
    }

    /// The body as the one JSON-RPC message of an `application/json` response.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "not a JSON answer:\n{self}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self}"))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        write!(f, "\n{}", self.text())
    }
}

impl Conn {
    /// Connects to the host and port of `url`.
    pub async fn open(url: &str) -> Conn {
        let authority = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_owned();
        let stream = TcpStream::connect(&authority).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Conn {
            authority,
            stream: BufReader::new(stream),
        }
    }

    /// Sends a request and reads its whole response. `Host` (unless `headers` has one) and
    /// `Content-Length` are added.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        self.write(method, path, headers, body).await;
        let (status, headers) = self.read_head().await;
        let body = self.read_body(status, &headers).await;
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Writes a request in one write.
    pub async fn write(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            request.push_str(&format!("Host: {}\r\n", self.authority));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write the request");
    }

    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(WAIT, self.stream.read_line(&mut line))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(read > 0, "magg closed the connection");
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// The status and headers of the next response.
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                return (status, headers);
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    /// The body of a response with `headers`: chunked, of a `Content-Length`, or none.
    pub async fn read_body(&mut self, status: u16, headers: &[(String, String)]) -> Vec<u8> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let size = self.line().await;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or_default(), 16)
                    .unwrap_or_else(|_| panic!("chunk size {size:?}"));
                if size == 0 {
                    // Trailers (none) up to the blank line.
                    while !self.line().await.is_empty() {}
                    return body;
                }
                let at = body.len();
                body.resize(at + size + 2, 0);
                tokio::time::timeout(WAIT, self.stream.read_exact(&mut body[at..]))
                    .await
                    .expect("a chunk in time")
                    .expect("read a chunk");
                body.truncate(at + size);
            }
        }
        let length = header("content-length").map_or(0, |v| v.parse().expect("Content-Length"));
        assert!(
            length > 0 || header("content-length").is_some() || status == 204 || status == 202,
            "a body of unknown length (HTTP {status}, {headers:?})"
        );
        body.resize(length, 0);
        tokio::time::timeout(WAIT, self.stream.read_exact(&mut body))
            .await
            .expect("a body in time")
            .expect("read the body");
        body
    }

    /// The next chunk of a chunked body, as it arrives (empty: the body has ended). For event
    /// streams, which never end on their own.
    pub async fn chunk(&mut self) -> Vec<u8> {
        let size = self.line().await;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default(), 16)
            .unwrap_or_else(|_| panic!("chunk size {size:?}"));
        let mut chunk = vec![0; size + 2];
        tokio::time::timeout(WAIT, self.stream.read_exact(&mut chunk))
            .await
            .expect("a chunk in time")
            .expect("read a chunk");
        chunk.truncate(size);
        chunk
    }

    /// The next JSON-RPC message of an event stream being read (its head already read), with
    /// `buffer` holding what was read of it beyond the messages returned so far.
    pub async fn next_message(&mut self, buffer: &mut String) -> Value {
        loop {
            while let Some(at) = buffer.find("\n\n") {
                let event: String = buffer.drain(..at + 2).collect();
                if let Some(message) = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data:"))
                    .and_then(|data| serde_json::from_str::<Value>(data.trim()).ok())
                {
                    return message;
                }
            }
            let chunk = self.chunk().await;
            assert!(!chunk.is_empty(), "the event stream ended");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// POSTs `body` to `path` as `content_type`, accepting `accept`.
    pub async fn post_as(
        &mut self,
        path: &str,
        content_type: &str,
        accept: &str,
        body: &str,
    ) -> Reply {
        let headers = [("Content-Type", content_type), ("Accept", accept)];
        self.send("POST", path, &headers, body).await
    }

    /// POSTs a JSON-RPC message to `/mcp` as a client should, in `session` if given.
    pub async fn post(&mut self, session: Option<&str>, message: &Value) -> Reply {
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", BOTH)];
        if let Some(session) = session {
            headers.push(("Mcp-Session-Id", session));
        }
        self.send("POST", "/mcp", &headers, &message.to_string())
            .await
    }

    /// `initialize` and `notifications/initialized`; returns the session id.
    pub async fn open_session(&mut self) -> String {
        self.open_session_as(&initialize()).await
    }

    /// [`Conn::open_session`] with the `initialize` request given.
    pub async fn open_session_as(&mut self, initialize: &Value) -> String {
        let reply = self.post(None, initialize).await;
        assert_eq!(reply.status, 200, "{reply}");
        let session = reply
            .header("mcp-session-id")
            .unwrap_or_else(|| panic!("no session id:\n{reply}"))
            .to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = self.post(Some(&session), &initialized).await;
        assert_eq!(ack.status, 202, "{ack}");
        session
    }
}

/// An `initialize` request with id 0.
pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-http", "version": "1"},
    }})
}

/// POSTs `initialize` to magg's `/mcp` at `url` with `authorization` as the `Authorization`
/// header, if any.
pub async fn initialize_with(url: &str, authorization: Option<&str>) -> Reply {
    let mut headers = vec![("Content-Type", "application/json"), ("Accept", BOTH)];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    Conn::open(url)
        .await
        .send("POST", "/mcp", &headers, &initialize().to_string())
        .await
}
