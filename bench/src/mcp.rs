//! The MCP requests the bench times: `tools/call` of `echo` and raw `tools/list`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rmcp::{
    RoleClient,
    model::{
        CallToolRequestParams, ClientRequest, JsonObject, ListToolsRequest, PaginatedRequestParams,
        ServerResult,
    },
    service::Peer,
};
use serde_json::Value;

/// The text sent to `echo` (a small argument).
pub const ECHO_TEXT: &str = "hello, bench";

/// The arguments of every `echo` call.
pub fn echo_args() -> JsonObject {
    let mut args = JsonObject::new();
    args.insert("text".into(), Value::String(ECHO_TEXT.into()));
    args
}

/// Calls `tool` (an `echo`) once; a result flagged as an error is an error.
pub async fn call_echo(peer: &Peer<RoleClient>, tool: &str, args: &JsonObject) -> Result<()> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args.clone());
    let result = peer
        .call_tool(params)
        .await
        .with_context(|| format!("tools/call {tool} failed"))?;
    if result.is_error == Some(true) {
        bail!(
            "tools/call {tool} returned an error result: {:?}",
            result.content
        );
    }
    Ok(())
}

/// Calls `tool` once and checks that it echoes [`ECHO_TEXT`] back.
pub async fn check_echo(peer: &Peer<RoleClient>, tool: &str) -> Result<()> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(echo_args());
    let result = peer
        .call_tool(params)
        .await
        .with_context(|| format!("tools/call {tool} failed"))?;
    let content = serde_json::to_value(&result.content).context("cannot serialise content")?;
    let text = content.pointer("/0/text").and_then(Value::as_str);
    ensure!(
        result.is_error != Some(true) && text == Some(ECHO_TEXT),
        "tools/call {tool} did not echo {ECHO_TEXT:?}: {content}"
    );
    Ok(())
}

/// One `tools/list` page, sent as a raw request: rmcp's `list_tools` may
/// answer from its response cache, which would not measure the server.
/// Returns the tool names and the next cursor.
pub async fn list_page(
    peer: &Peer<RoleClient>,
    cursor: Option<String>,
) -> Result<(Vec<String>, Option<String>)> {
    let params = PaginatedRequestParams::default().with_cursor(cursor);
    let request = ClientRequest::ListToolsRequest(ListToolsRequest::with_param(params));
    match peer
        .send_request(request)
        .await
        .context("tools/list failed")?
    {
        ServerResult::ListToolsResult(result) => Ok((
            result
                .tools
                .into_iter()
                .map(|t| t.name.into_owned())
                .collect(),
            result.next_cursor,
        )),
        other => bail!("tools/list: unexpected reply {other:?}"),
    }
}

/// Every page of `tools/list`, following `nextCursor`. Returns the tool names
/// and the number of pages.
pub async fn list_all(peer: &Peer<RoleClient>) -> Result<(Vec<String>, usize)> {
    let mut names = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = list_page(peer, cursor).await?;
        names.extend(page);
        pages += 1;
        ensure!(pages <= 10_000, "tools/list: more than 10000 pages");
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok((names, pages)),
        }
    }
}

/// Lists all tools until `ready` accepts the names or `timeout` passes.
/// Returns the last listing.
pub async fn wait_for_tools(
    peer: &Peer<RoleClient>,
    timeout: Duration,
    ready: impl Fn(&[String]) -> bool,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let (names, _) = list_all(peer).await?;
        if ready(&names) {
            return Ok(names);
        }
        if Instant::now() >= deadline {
            bail!(
                "the expected tools were not listed within {timeout:?} ({} tools listed)",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Latencies of `count` sequential `echo` calls to `tool`, after `warmup` untimed ones.
///
/// The loop runs in a spawned task, like the throughput callers: a future
/// polled by `block_on` on the main thread pays for cross-thread wake-ups.
pub async fn call_latencies(
    peer: &Peer<RoleClient>,
    tool: &str,
    warmup: usize,
    count: usize,
) -> Result<Vec<Duration>> {
    let peer = peer.clone();
    let tool = tool.to_owned();
    tokio::spawn(async move {
        let args = echo_args();
        for _ in 0..warmup {
            call_echo(&peer, &tool, &args).await?;
        }
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            call_echo(&peer, &tool, &args).await?;
            samples.push(start.elapsed());
        }
        Ok(samples)
    })
    .await
    .context("the latency task panicked")?
}

/// The calls completed, and the time they took, by `callers` tasks calling
/// `tool` back to back over the one shared connection of `peer` for `duration`.
pub async fn throughput(
    peer: &Peer<RoleClient>,
    tool: &str,
    callers: usize,
    duration: Duration,
) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let peer = peer.clone();
        let tool = tool.to_owned();
        tasks.spawn(async move {
            let args = echo_args();
            let mut calls = 0u64;
            while Instant::now() < deadline {
                call_echo(&peer, &tool, &args).await?;
                calls += 1;
            }
            anyhow::Ok(calls)
        });
    }
    let mut total = 0u64;
    while let Some(joined) = tasks.join_next().await {
        total += joined.context("a caller task panicked")??;
    }
    Ok((total, start.elapsed()))
}

/// Times `reps` listings: the first page only (`full == false`) or every
/// page. Runs in a spawned task, as [`call_latencies`] does.
pub async fn list_latencies(
    peer: &Peer<RoleClient>,
    reps: usize,
    full: bool,
) -> Result<Vec<Duration>> {
    let peer = peer.clone();
    tokio::spawn(async move {
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            let start = Instant::now();
            if full {
                list_all(&peer).await?;
            } else {
                list_page(&peer, None).await?;
            }
            samples.push(start.elapsed());
        }
        Ok(samples)
    })
    .await
    .context("the tools/list task panicked")?
}
