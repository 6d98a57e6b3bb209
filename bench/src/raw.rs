//! A bare JSON-RPC client over a child's stdio, for timing tools/list and
//! tools/call without any client-side parsing: a request is written as one line
//! and the reply line is read back as text. What is timed is the server's work
//! plus the pipe, which the rmcp client figures hide behind the cost of
//! deserialising 1000 tools (or of its own request bookkeeping).

use std::{path::Path, time::Duration, time::Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, ChildStdout},
};

use crate::server::{Spawned, children_of, spawn, stop};

/// A server process spoken to in raw JSON-RPC lines.
pub struct RawServer {
    label: String,
    pid: u32,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
    /// When the first `notifications/tools/list_changed` since the last
    /// [`RawServer::take_list_changed`] was read.
    list_changed: Option<Instant>,
}

impl RawServer {
    /// Spawns the server and performs the `initialize` handshake.
    pub async fn start(
        label: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<RawServer> {
        let Spawned {
            pid,
            child,
            stdin,
            stdout,
            ..
        } = spawn(label, program, args, env, log)?;
        let mut server = RawServer {
            label: label.to_owned(),
            pid,
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            next_id: 1,
            line: String::new(),
            list_changed: None,
        };
        let params = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "magg-bench-raw", "version": env!("CARGO_PKG_VERSION")},
        });
        let handshake = async {
            server.request("initialize", Some(params)).await?;
            server
                .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await
        };
        match tokio::time::timeout(Duration::from_secs(60), handshake).await {
            Ok(Ok(())) => Ok(server),
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.context("initialize failed"),
                    _ => anyhow::anyhow!("no initialize result within 60 s"),
                };
                let error = error.context(format!("{label} (raw client), pid {pid}"));
                server.shutdown().await;
                Err(error)
            }
        }
    }

    async fn send(&mut self, message: &Value) -> Result<()> {
        let mut text = serde_json::to_string(message).context("cannot serialise request")?;
        text.push('\n');
        self.stdin
            .write_all(text.as_bytes())
            .await
            .with_context(|| format!("{}: cannot write to stdin", self.label))?;
        self.stdin
            .flush()
            .await
            .with_context(|| format!("{}: cannot flush stdin", self.label))
    }

    /// Sends one request and returns its reply line, unparsed. Notifications
    /// from the server in between are skipped; an error reply is an error.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> Result<&str> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&request_message(id, method, params)).await?;
        loop {
            self.line.clear();
            let n = self
                .stdout
                .read_line(&mut self.line)
                .await
                .with_context(|| format!("{}: cannot read stdout", self.label))?;
            ensure!(
                n > 0,
                "{}: stdout closed while waiting for {method}",
                self.label
            );
            match reply_kind(&self.line, id) {
                Reply::Other => {
                    if self.line.contains(LIST_CHANGED) {
                        self.list_changed.get_or_insert_with(Instant::now);
                    }
                }
                Reply::Result => return Ok(&self.line),
                Reply::Error => bail!("{}: {method} failed: {}", self.label, self.line.trim()),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the first `notifications/tools/list_changed` read since the last
    /// call of this was read (notifications are read only while waiting for a
    /// reply); forgets it.
    pub fn take_list_changed(&mut self) -> Option<Instant> {
        self.list_changed.take()
    }

    /// Calls `tool` with `arguments`; returns the reply line, unparsed. A
    /// result flagged as an error is returned too (see [`is_error_result`]).
    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Result<&str> {
        let params = json!({"name": tool, "arguments": arguments});
        self.request("tools/call", Some(params)).await
    }

    /// Latencies of `count` sequential calls of `tool`, after `warmup` untimed
    /// ones; a result flagged as an error is an error.
    pub async fn call_latencies(
        &mut self,
        tool: &str,
        arguments: &Value,
        warmup: usize,
        count: usize,
    ) -> Result<Vec<Duration>> {
        for _ in 0..warmup {
            self.checked_call(tool, arguments).await?;
        }
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            self.checked_call(tool, arguments).await?;
            samples.push(start.elapsed());
        }
        Ok(samples)
    }

    async fn checked_call(&mut self, tool: &str, arguments: &Value) -> Result<()> {
        let failed = is_error_result(self.call(tool, arguments).await?);
        ensure!(
            !failed,
            "{}: tools/call {tool} returned an error result: {}",
            self.label,
            self.line.trim()
        );
        Ok(())
    }

    /// One tools/list page; returns the reply's `nextCursor`.
    pub async fn list_page(&mut self, cursor: Option<String>) -> Result<Option<String>> {
        let params = cursor.map(|c| json!({ "cursor": c }));
        let line = self.request("tools/list", params).await?;
        Ok(next_cursor(line))
    }

    /// Every tools/list page; returns the number of pages.
    pub async fn list_all(&mut self) -> Result<usize> {
        let mut cursor = None;
        let mut pages = 0;
        loop {
            cursor = self.list_page(cursor).await?;
            pages += 1;
            ensure!(pages <= 10_000, "{}: more than 10000 pages", self.label);
            if cursor.is_none() {
                return Ok(pages);
            }
        }
    }

    /// Every tool name, parsing each page (untimed: used to check readiness).
    pub async fn tool_names(&mut self) -> Result<Vec<String>> {
        let tools = self.tools().await?;
        Ok(tools
            .iter()
            .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
            .collect())
    }

    /// Every tool as listed, parsing each page (untimed).
    pub async fn tools(&mut self) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let params = cursor.take().map(|c| json!({ "cursor": c }));
            let line = self.request("tools/list", params).await?;
            let reply: Value = serde_json::from_str(line).context("tools/list: bad JSON")?;
            let result = reply.get("result").context("tools/list: no result")?;
            let tools = result
                .get("tools")
                .and_then(Value::as_array)
                .context("tools/list: no tools array")?;
            all.extend(tools.iter().cloned());
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(all),
            }
        }
        bail!("{}: more than 10000 pages", self.label)
    }

    /// Times `reps` tools/list requests for the first page, or full listings.
    pub async fn list_latencies(&mut self, reps: usize, full: bool) -> Result<Vec<Duration>> {
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            let start = Instant::now();
            if full {
                self.list_all().await?;
            } else {
                self.list_page(None).await?;
            }
            samples.push(start.elapsed());
        }
        Ok(samples)
    }

    /// Closes stdin and waits for the process (and its backends) to exit.
    pub async fn shutdown(self) {
        let RawServer {
            label,
            pid,
            mut child,
            stdin,
            ..
        } = self;
        let children = children_of(pid);
        drop(stdin);
        stop(&label, pid, &mut child, &children).await;
    }
}

/// The JSON-RPC request `id` calling `method` with `params`.
pub fn request_message(id: u64, method: &str, params: Option<Value>) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(params) = params {
        message["params"] = params;
    }
    message
}

/// The method of the notification [`RawServer`] keeps track of.
const LIST_CHANGED: &str = "\"method\":\"notifications/tools/list_changed\"";

/// Whether a tools/call reply line holds a result flagged as an error.
pub fn is_error_result(line: &str) -> bool {
    line.contains("\"isError\":true")
}

/// What a reply line is to the request waited for.
pub enum Reply {
    Result,
    Error,
    Other,
}

/// Whether `line` is the reply to request `id`, judged from its head only so
/// as not to parse the whole line: rmcp writes `{"jsonrpc":"2.0","id":N,"result"...`.
pub fn reply_kind(line: &str, id: u64) -> Reply {
    let head = &line.as_bytes()[..line.len().min(64)];
    let head = String::from_utf8_lossy(head);
    let Some(rest) = head
        .strip_prefix("{\"jsonrpc\":\"2.0\",\"id\":")
        .and_then(|r| r.strip_prefix(id.to_string().as_str()))
    else {
        return Reply::Other;
    };
    if rest.starts_with(",\"result\"") {
        Reply::Result
    } else if rest.starts_with(",\"error\"") {
        Reply::Error
    } else {
        Reply::Other
    }
}

/// The `nextCursor` of a tools/list reply line, found by text search (tool
/// names and descriptions of the test backends never contain the key).
fn next_cursor(line: &str) -> Option<String> {
    const KEY: &str = "\"nextCursor\":\"";
    let start = line.find(KEY)? + KEY.len();
    let len = line[start..].find('"')?;
    Some(line[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_replies() {
        let ok = r#"{"jsonrpc":"2.0","id":12,"result":{"nextCursor":"magg:1000","tools":[]}}"#;
        assert!(matches!(reply_kind(ok, 12), Reply::Result));
        assert!(matches!(reply_kind(ok, 1), Reply::Other));
        let err = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1}}"#;
        assert!(matches!(reply_kind(err, 3), Reply::Error));
        let note = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        assert!(matches!(reply_kind(note, 3), Reply::Other));
        assert_eq!(next_cursor(ok).as_deref(), Some("magg:1000"));
        assert_eq!(next_cursor(r#"{"result":{"tools":[]}}"#), None);
        assert!(note.contains(LIST_CHANGED));
        let denied = r#"{"jsonrpc":"2.0","id":4,"result":{"content":[],"isError":true}}"#;
        assert!(is_error_result(denied));
        assert!(!is_error_result(ok));
    }
}
