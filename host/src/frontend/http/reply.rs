//! A request's answer as one `application/json` body when nothing comes before it.
//!
//! rmcp answers every request POSTed in a session with an event stream: a priming event (an
//! event id to resume from), then the messages for the request, the last of them its response.
//! The transport lets a server answer with `application/json` instead, and rmcp does so only
//! for stateless requests. [`prefer_json`] reads the first events of the stream: when the first
//! message is the response, that message alone goes out as `application/json`, its length
//! known, so the whole answer leaves in one write. When anything else comes first (progress, a
//! log message, a sampling or elicitation request for the caller), the stream goes out as it
//! is, the events read so far first, and the rest follows as it comes.
//!
//! The headers wait for the first message at most `hold`: a call still running by then keeps
//! its event stream, with the priming event and the keep-alives that go with it.

use std::{cell::Cell, fmt, ops::Range, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::{
        HeaderValue, StatusCode,
        header::{CONTENT_TYPE, HeaderMap},
    },
    response::Response,
};
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

/// `response` itself, or, when it is an event stream whose first message is a JSON-RPC
/// response that arrives within `hold`, that message as an `application/json` response with the
/// same status and headers.
pub async fn prefer_json(response: Response, hold: Duration) -> Response {
    if response.status() != StatusCode::OK || !is_event_stream(response.headers()) {
        return response;
    }
    let (mut parts, mut body) = response.into_parts();
    let mut read = Vec::new();
    let first = tokio::time::timeout(hold, first_message(&mut body, &mut read)).await;
    let replay = futures::stream::iter(read.into_iter().map(Ok));
    let body = match first {
        Ok(First::Message(message)) if is_response(&message) => {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            // Only a stream needs proxies told not to buffer it.
            parts.headers.remove("x-accel-buffering");
            Body::from(message)
        }
        Ok(First::Failed(error)) => {
            Body::from_stream(replay.chain(futures::stream::once(async { Err(error) })))
        }
        _ => Body::from_stream(replay.chain(body.into_data_stream())),
    };
    Response::from_parts(parts, body)
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// How an event stream begins.
enum First {
    /// The data of its first event that has any.
    Message(Bytes),
    /// It ended before any event with data.
    Ended,
    /// Reading it failed.
    Failed(axum::Error),
}

/// Reads `body` up to the end of its first event with data; every frame read is kept in `read`.
async fn first_message(body: &mut Body, read: &mut Vec<Bytes>) -> First {
    let mut unscanned = Bytes::new();
    loop {
        let frame = match body.frame().await {
            None => return First::Ended,
            Some(Err(error)) => return First::Failed(error),
            Some(Ok(frame)) => frame,
        };
        // An event stream has no trailers.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.push(data.clone());
        unscanned = if unscanned.is_empty() {
            data
        } else {
            Bytes::from([&unscanned[..], &data[..]].concat())
        };
        while let Some(event) = take_event(&mut unscanned) {
            if !event.is_empty() {
                return First::Message(event);
            }
        }
    }
}

/// Takes the first whole event off `buffer` and returns its data: its `data` fields joined
/// with `\n`, empty for a comment (a keep-alive) or a priming event. `None` while `buffer` holds
/// no whole event.
fn take_event(buffer: &mut Bytes) -> Option<Bytes> {
    let mut start = 0;
    let mut data: Vec<Range<usize>> = Vec::new();
    loop {
        let length = buffer[start..].iter().position(|&b| b == b'\n')?;
        let line = &buffer[start..start + length];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            let event = buffer.split_to(start + length + 1);
            return Some(match data.as_slice() {
                [] => Bytes::new(),
                [only] => event.slice(only.clone()),
                several => Bytes::from(
                    several
                        .iter()
                        .map(|range| &event[range.clone()])
                        .collect::<Vec<_>>()
                        .join(&b'\n'),
                ),
            });
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let from = start + "data:".len() + usize::from(value.starts_with(b" "));
            data.push(from..start + line.len());
        }
        start += length + 1;
    }
}

/// Whether a JSON-RPC message is a response (a result or an error) rather than a request or a
/// notification, judged by the first of `result`, `error` and `method` among its keys, so that
/// a large result is not read through.
fn is_response(message: &[u8]) -> bool {
    /// Records the kind of message in `.0` when it sees a deciding key, and stops there.
    struct Kind<'a>(&'a Cell<Option<bool>>);

    impl<'de> Visitor<'de> for Kind<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON-RPC message")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let response = match key.as_str() {
                    "result" | "error" => true,
                    "method" => false,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                self.0.set(Some(response));
                return Ok(());
            }
            Ok(())
        }
    }

    let kind = Cell::new(None);
    // Stopping inside the object makes the deserializer report the rest as an error; the kind is
    // known by then.
    let _ = serde_json::Deserializer::from_slice(message).deserialize_map(Kind(&kind));
    kind.get() == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<String> {
        let mut buffer = Bytes::copy_from_slice(text.as_bytes());
        std::iter::from_fn(|| take_event(&mut buffer))
            .map(|data| String::from_utf8_lossy(&data).into_owned())
            .collect()
    }

    #[test]
    fn events_are_split_at_blank_lines_and_their_data_joined() {
        assert_eq!(
            events("data: \nid: 0\nretry: 3000\n\ndata: {\"id\":1}\nid: 1\n\n"),
            ["", r#"{"id":1}"#]
        );
        assert_eq!(events(":\n\ndata:a\r\ndata: b\r\n\r\n"), ["", "a\nb"]);
        assert_eq!(events("data: {\"id\":1}\n"), Vec::<String>::new());
    }

    #[test]
    fn responses_are_told_from_requests_and_notifications() {
        assert!(is_response(
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#
        ));
        assert!(is_response(
            br#"{"jsonrpc":"2.0","id":"a","error":{"code":-1}}"#
        ));
        assert!(!is_response(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#
        ));
        assert!(!is_response(
            br#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage"}"#
        ));
        assert!(!is_response(b"not json"));
    }

    #[tokio::test]
    async fn a_lone_response_becomes_json_and_anything_else_stays_a_stream() {
        let sse = |events: &[&str]| {
            let frames: Vec<_> = events
                .iter()
                .map(|e| Ok::<_, axum::Error>(Bytes::copy_from_slice(e.as_bytes())))
                .collect();
            Response::builder()
                .header(CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(frames)))
                .expect("response")
        };
        let body = |response: Response| async move {
            let bytes = response.into_body().collect().await.expect("body");
            String::from_utf8_lossy(&bytes.to_bytes()).into_owned()
        };
        let hold = Duration::from_secs(5);

        let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let framed = [
            "data: \nid: 0\nretry: 3000\n\n",
            "data: ",
            answer,
            "\nid: 1\n\n",
        ];
        let response = prefer_json(sse(&framed), hold).await;
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(body(response).await, answer);

        let progress = [
            "data: \nid: 0\nretry: 3000\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        ];
        let response = prefer_json(sse(&progress), hold).await;
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        assert_eq!(body(response).await, progress.concat());
    }
}
