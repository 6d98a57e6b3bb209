//! The client side of the legacy HTTP+SSE transport (MCP 2024-11-05), which rmcp does not
//! have: `GET` the server's event stream, read the `endpoint` event (a URL relative to the
//! stream's), `POST` each message there, and take the server's messages from the stream's
//! `message` events. Messages are posted one at a time, in order, as the SDKs do.
//!
//! A stream that ends or breaks, stays silent longer than `transport.sse_read_timeout` seconds
//! (when set, as in Magg), or a POST the server refuses, ends the connection; the backend's
//! supervisor then restarts it like any other.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt as _;
use reqwest::{
    Client,
    header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue},
};
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use sse_stream::SseStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{config::ServerConfig, mcp::channel::Channels};

/// Whether `config` is reached over the legacy SSE transport: its `transport.type` says `sse`
/// (as a Claude Desktop or multi-mcp entry's `"type": "sse"` is read), or, with no type, its
/// `uri`'s path ends in `/sse` (Magg's rule).
pub fn speaks_sse(config: &ServerConfig) -> bool {
    match config.transport_type() {
        Some(kind) => kind.eq_ignore_ascii_case("sse"),
        None => config.uri.as_deref().is_some_and(|uri| {
            let path = Url::parse(uri).map_or_else(|_| uri.to_owned(), |u| u.path().to_owned());
            path.ends_with("/sse") || path.ends_with("/sse/")
        }),
    }
}

/// `transport.sse_read_timeout`: how long the stream may stay silent (keep-alives count)
/// before the connection is given up; `None` when not set.
pub fn read_timeout(config: &ServerConfig) -> Result<Option<Duration>, String> {
    let Some(value) = config
        .transport
        .as_ref()
        .and_then(|t| t.get("sse_read_timeout"))
    else {
        return Ok(None);
    };
    match value.as_f64() {
        _ if value.is_null() => Ok(None),
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
            Ok(Some(Duration::from_secs_f64(seconds)))
        }
        _ => Err(format!(
            "transport.sse_read_timeout must be a number of seconds above 0, not {value}"
        )),
    }
}

/// Opens the event stream at `uri` (sending `headers` with every request), waits for its
/// `endpoint` event, and returns the connection as a transport. A stream silent for longer
/// than `read_timeout` ends it.
pub async fn connect(
    uri: &str,
    headers: HashMap<HeaderName, HeaderValue>,
    read_timeout: Option<Duration>,
) -> Result<Channels<RoleClient>, String> {
    let base = Url::parse(uri).map_err(|e| format!("{uri:?} is not a URL: {e}"))?;
    let headers: reqwest::header::HeaderMap = headers.into_iter().collect();
    crate::tls::install();
    let client = Client::new();
    let response = client
        .get(base.clone())
        .headers(headers.clone())
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot open the SSE stream at {uri}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "GET {uri} answered HTTP {status}, not an SSE stream; check the uri (an SSE server's stream is usually at /sse)"
        ));
    }
    let mut events = Box::pin(SseStream::from_bytes_stream(response.bytes_stream()));
    let endpoint = loop {
        match events.next().await {
            Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                let data = event.data.unwrap_or_default();
                break endpoint_url(&base, data.trim())?;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("the SSE stream at {uri} broke: {e}")),
            None => {
                return Err(format!(
                    "the SSE stream at {uri} ended before its endpoint event"
                ));
            }
        }
    };
    tracing::debug!(%uri, %endpoint, "SSE backend stream open");

    let stop = CancellationToken::new();
    let (transport, ends) = Channels::<RoleClient>::new(Some(stop.clone().drop_guard()));
    let reading = stop.clone();
    let incoming = ends.incoming;
    let from = uri.to_owned();
    tokio::spawn(async move {
        loop {
            let next = async {
                match read_timeout {
                    Some(limit) => tokio::time::timeout(limit, events.next()).await.ok(),
                    None => Some(events.next().await),
                }
            };
            let event = tokio::select! {
                _ = reading.cancelled() => break,
                event = next => event,
            };
            let Some(event) = event else {
                tracing::warn!(uri = %from, "the SSE stream was silent for longer than transport.sse_read_timeout; closing it");
                break;
            };
            let event = match event {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    tracing::warn!(uri = %from, "the SSE stream broke: {e}");
                    break;
                }
                None => break,
            };
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                Ok(message) => {
                    if incoming.send(message).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(uri = %from, "ignoring an SSE message that is not JSON-RPC: {e}")
                }
            }
        }
        reading.cancel();
    });
    tokio::spawn(post_all(client, endpoint, headers, ends.outgoing, stop));
    Ok(transport)
}

/// The absolute URL of the `endpoint` event's `data`, which must be on the stream's origin
/// (the Python SDK's rule: a server cannot send the client's messages elsewhere).
fn endpoint_url(base: &Url, data: &str) -> Result<Url, String> {
    let endpoint = base
        .join(data)
        .map_err(|e| format!("the SSE endpoint event's {data:?} is not a URL: {e}"))?;
    if endpoint.origin() != base.origin() {
        return Err(format!(
            "the SSE endpoint {endpoint} is not on the stream's origin {}; refusing to post there",
            base.origin().ascii_serialization()
        ));
    }
    Ok(endpoint)
}

/// Posts each outgoing message, in order, until the connection ends.
async fn post_all(
    client: Client,
    endpoint: Url,
    headers: reqwest::header::HeaderMap,
    mut outgoing: mpsc::Receiver<ClientJsonRpcMessage>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            message = outgoing.recv() => message,
        };
        let Some(message) = message else { break };
        let body = match serde_json::to_vec(&message) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(%endpoint, "cannot encode a message for an SSE backend: {e}");
                continue;
            }
        };
        let sent = client
            .post(endpoint.clone())
            .headers(headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let problem = match sent {
            Ok(response) if response.status().is_success() => continue,
            Ok(response) => format!("HTTP {}", response.status()),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%endpoint, "posting to the SSE backend failed ({problem}); closing the connection");
        break;
    }
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(uri: &str, kind: Option<&str>) -> ServerConfig {
        let mut config = ServerConfig::new("s", "s");
        config.uri = Some(uri.to_owned());
        if let Some(kind) = kind {
            let mut transport = serde_json::Map::new();
            transport.insert("type".into(), kind.into());
            config.transport = Some(transport);
        }
        config
    }

    #[test]
    fn sse_is_chosen_by_the_uri_path_or_by_the_transport_type() {
        assert!(speaks_sse(&server("http://h:1/sse", None)));
        assert!(speaks_sse(&server("http://h:1/sse/", None)));
        assert!(speaks_sse(&server("http://h:1/sse?key=1", None)));
        assert!(!speaks_sse(&server("http://h:1/mcp", None)));
        assert!(!speaks_sse(&server("http://h:1/sse", Some("http"))));
        assert!(speaks_sse(&server("http://h:1/events", Some("sse"))));
    }

    #[test]
    fn the_read_timeout_is_seconds_above_zero() {
        let mut config = server("http://h:1/sse", None);
        assert_eq!(read_timeout(&config), Ok(None));
        let mut transport = serde_json::Map::new();
        transport.insert("sse_read_timeout".into(), 1.5.into());
        config.transport = Some(transport.clone());
        assert_eq!(read_timeout(&config), Ok(Some(Duration::from_millis(1500))));
        transport.insert("sse_read_timeout".into(), "soon".into());
        config.transport = Some(transport);
        let error = read_timeout(&config).unwrap_err();
        assert!(error.contains("sse_read_timeout"), "{error}");
    }

    /// A stream that sends its endpoint and then nothing ends the connection once the read
    /// timeout has passed.
    #[tokio::test]
    async fn a_silent_stream_ends_the_connection_after_the_read_timeout() {
        use rmcp::transport::Transport as _;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri = format!("http://{}/sse", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0; 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
            let endpoint = "event: endpoint\ndata: /messages/?session_id=ab\n\n";
            socket.write_all(head.as_bytes()).await.expect("write");
            socket.write_all(endpoint.as_bytes()).await.expect("write");
            // Silent from here on, with the connection open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let mut transport = connect(&uri, HashMap::new(), Some(Duration::from_millis(100)))
            .await
            .expect("connected");
        let received = tokio::time::timeout(Duration::from_secs(30), transport.receive()).await;
        assert!(matches!(received, Ok(None)), "the connection did not end");
    }

    #[test]
    fn the_endpoint_is_resolved_against_the_stream_and_must_stay_on_its_origin() {
        let base = Url::parse("http://127.0.0.1:3001/sse").expect("url");
        let endpoint = endpoint_url(&base, "/messages/?session_id=ab").expect("same origin");
        assert_eq!(
            endpoint.as_str(),
            "http://127.0.0.1:3001/messages/?session_id=ab"
        );
        let relative = endpoint_url(&base, "message?sessionId=1").expect("relative");
        assert_eq!(
            relative.as_str(),
            "http://127.0.0.1:3001/message?sessionId=1"
        );
        assert!(endpoint_url(&base, "http://elsewhere:1/messages/").is_err());
    }
}
