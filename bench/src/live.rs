//! Measurement 6: how fast changes to a running magg reach its client.
//!
//! * **Config file rewritten**: magg serves one test backend `tb` from a
//!   config file, which is rewritten atomically (a temp file in the same
//!   directory renamed over it) to add a second backend `tb2`, then to remove
//!   it again, alternately. Timed from just before the rename: to the first
//!   `notifications/tools/list_changed` and, when adding, to `tb2_echo`
//!   answering (called about every millisecond until it does). magg waits for
//!   150 ms without file events before reading the file, so that much of every
//!   figure is the debounce.
//! * **`magg_add_server` called** with a fresh name each round: timed from
//!   sending the call to its result (magg answers once the server is mounted)
//!   and to the new `<prefix>_echo` answering (polled from the moment the call
//!   is sent, alongside it); the server is then removed with
//!   `magg_remove_server`.
//!
//! Baseline: `magg-test-backend` spawned directly, from spawn to its
//! `initialize` result; "added by magg" is a p50 minus the baseline's p50.
//!
//! These maggs run with `MAGG_LIST_WAIT=0`: with a grace period, a call to a
//! tool that is not listed yet waits for starting backends instead of failing,
//! and the polling would time that wait rather than the tool appearing.

use std::{
    collections::HashSet,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use rmcp::{
    ClientHandler, RoleClient,
    model::{CallToolRequestParams, JsonObject},
    service::{NotificationContext, Peer},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    Env, Options,
    mcp::{self, echo_args},
    report::Section,
    server::{self, Server},
    stats::{Summary, micros, millis, round2},
    strings,
};

/// Environment of the maggs measured here (see the module docs).
const LIVE_ENV: &[(&str, &str)] = &[("MAGG_LIST_WAIT", "0")];
/// magg's quiet time after the last config file event (`reload::DEBOUNCE`).
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Pause before each round, so that no notification of the last one is counted.
const SETTLE: Duration = Duration::from_millis(100);
/// Interval between calls to a tool that is not callable yet.
const POLL: Duration = Duration::from_millis(1);
/// How long a change may take to show.
const CHANGE_LIMIT: Duration = Duration::from_secs(30);
/// How long a removed backend may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

/// Client handler that records when each `notifications/tools/list_changed` arrives.
struct ListChanged {
    arrivals: mpsc::UnboundedSender<Instant>,
}

impl ListChanged {
    /// The handler, and the receiver of its arrival times.
    fn new() -> (ListChanged, Arrivals) {
        let (arrivals, rx) = mpsc::unbounded_channel();
        (ListChanged { arrivals }, Arrivals(rx))
    }
}

impl ClientHandler for ListChanged {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.arrivals.send(Instant::now());
    }
}

/// Arrival times of `notifications/tools/list_changed`, from [`ListChanged`].
struct Arrivals(mpsc::UnboundedReceiver<Instant>);

impl Arrivals {
    /// Waits [`SETTLE`], then forgets the notifications received so far.
    async fn settle(&mut self) {
        tokio::time::sleep(SETTLE).await;
        while self.0.try_recv().is_ok() {}
    }

    /// The time from `since` to the first notification that arrived after it.
    async fn first_after(&mut self, since: Instant) -> Result<Duration> {
        let deadline = since + CHANGE_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.0.recv()).await {
                Ok(Some(at)) if at >= since => return Ok(at - since),
                Ok(Some(_)) => {}
                Ok(None) => bail!("the client session ended"),
                Err(_) => bail!("no notifications/tools/list_changed within {CHANGE_LIMIT:?}"),
            }
        }
    }
}

/// Calls `tool` (an `echo`) about every millisecond until it answers; returns
/// the time from `since` until the first answer came back.
async fn until_callable(peer: &Peer<RoleClient>, tool: &str, since: Instant) -> Result<Duration> {
    let args = echo_args();
    loop {
        match mcp::call_echo(peer, tool, &args).await {
            Ok(()) => return Ok(since.elapsed()),
            Err(e) if since.elapsed() >= CHANGE_LIMIT => {
                return Err(e.context(format!("{tool} not callable within {CHANGE_LIMIT:?}")));
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Child processes of `pid` that are not in `before`; they are tracked for
/// the end-of-run check.
fn new_children(pid: u32, before: &[u32]) -> Vec<u32> {
    let before: HashSet<u32> = before.iter().copied().collect();
    let new: Vec<u32> = server::children_of(pid)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    server::track(&new);
    new
}

/// Waits for the processes `pids` of the removed backend `name` to exit;
/// notes an incident if they are still alive after [`EXIT_LIMIT`].
async fn wait_gone(name: &str, pids: &[u32]) {
    let deadline = Instant::now() + EXIT_LIMIT;
    while pids.iter().any(|&p| server::is_alive(p)) {
        if Instant::now() >= deadline {
            server::incident(format!(
                "6 (live changes): backend {name} ({pids:?}) still running {EXIT_LIMIT:?} after it was removed"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `path` as one word of a shell-style command line (magg splits `command` with shell rules).
fn shell_word(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    Ok(if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    })
}

/// Calls one of magg's own tools; a result flagged as an error is an error.
/// Returns the structured result (`{"errors": ..., "output": ...}`).
async fn call_magg(peer: &Peer<RoleClient>, tool: &str, args: &[(&str, &str)]) -> Result<Value> {
    let args: JsonObject = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    let result = peer
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .with_context(|| format!("tools/call {tool} failed"))?;
    let content = serde_json::to_value(&result.content).context("cannot serialise content")?;
    ensure!(
        result.is_error != Some(true),
        "{tool} returned an error result: {content}"
    );
    result
        .structured_content
        .with_context(|| format!("{tool} returned no structured result: {content}"))
}

/// Spawn → initialize result of `magg-test-backend` alone, `rounds` times.
async fn baseline(env: &Env, rounds: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let backend = env
            .start_backend(
                "magg-test-backend (live baseline)",
                "direct-live-baseline",
                &strings(&["--name", "base"]),
            )
            .await?;
        times.push(backend.init_time);
        backend.shutdown().await;
    }
    Ok(times)
}

/// Timings of the config file rounds.
#[derive(Default)]
struct FileRounds {
    /// `tb2` added: rename → first list_changed.
    add_notified: Vec<Duration>,
    /// `tb2` added: rename → `tb2_echo` answered.
    add_callable: Vec<Duration>,
    /// `tb2` removed: rename → list_changed.
    remove_notified: Vec<Duration>,
}

/// Starts magg over a config file and times `rounds` rewrites of it.
async fn file_rounds(env: &Env, rounds: usize) -> Result<FileRounds> {
    let one = vec![("tb".to_owned(), Vec::new())];
    let two = vec![
        ("tb".to_owned(), Vec::new()),
        ("tb2".to_owned(), Vec::new()),
    ];
    let config = env.write_config("live-file.json", &one)?;
    let texts = [env.config_text(&two)?, env.config_text(&one)?];
    let (handler, mut arrivals) = ListChanged::new();
    let magg = env
        .start_magg_with(
            handler,
            LIVE_ENV,
            "magg (config file rewritten)",
            "magg-live-file",
            &config,
        )
        .await?;
    let result = measure_file(rounds, &magg, &mut arrivals, &config, &texts).await;
    magg.shutdown().await;
    result
}

/// Rewrites `config` with `texts[0]` (adding `tb2`) and `texts[1]`
/// (removing it) in turn, `rounds` times in all.
async fn measure_file(
    rounds: usize,
    magg: &Server<ListChanged>,
    arrivals: &mut Arrivals,
    config: &Path,
    texts: &[String; 2],
) -> Result<FileRounds> {
    mcp::wait_for_tools(magg.peer(), CHANGE_LIMIT, |names| {
        names.iter().any(|t| t == "tb_echo")
    })
    .await
    .context("magg did not list tb_echo")?;
    mcp::check_echo(magg.peer(), "tb_echo").await?;
    let file_name = config
        .file_name()
        .with_context(|| format!("{} has no file name", config.display()))?;
    let mut temp_name = file_name.to_owned();
    temp_name.push(".tmp");
    let temp = config.with_file_name(temp_name);
    let mut out = FileRounds::default();
    let mut tb2 = Vec::new();
    for round in 0..rounds {
        let adding = round % 2 == 0;
        arrivals.settle().await;
        let before = server::children_of(magg.pid());
        let text = &texts[usize::from(!adding)];
        std::fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
        let start = Instant::now();
        std::fs::rename(&temp, config)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), config.display()))?;
        if adding {
            let callable = until_callable(magg.peer(), "tb2_echo", start)
                .await
                .with_context(|| format!("round {round}: tb2 added to the config file"))?;
            let notified = arrivals
                .first_after(start)
                .await
                .with_context(|| format!("round {round}: tb2 added to the config file"))?;
            out.add_callable.push(callable);
            out.add_notified.push(notified);
            tb2 = new_children(magg.pid(), &before);
        } else {
            let notified = arrivals
                .first_after(start)
                .await
                .with_context(|| format!("round {round}: tb2 removed from the config file"))?;
            out.remove_notified.push(notified);
            wait_gone("tb2", &tb2).await;
        }
    }
    Ok(out)
}

/// Timings of the `magg_add_server` rounds.
#[derive(Default)]
struct ToolRounds {
    /// Call sent → `magg_add_server` result.
    returned: Vec<Duration>,
    /// Call sent → the new `echo` answered.
    callable: Vec<Duration>,
    /// Call sent → first list_changed.
    notified: Vec<Duration>,
    /// `magg_remove_server` sent → its result.
    remove_returned: Vec<Duration>,
    /// `magg_remove_server` sent → list_changed.
    remove_notified: Vec<Duration>,
}

/// Starts magg with one backend and times `rounds` servers added with `magg_add_server`.
async fn tool_rounds(env: &Env, rounds: usize) -> Result<ToolRounds> {
    let config = env.write_config("live-tool.json", &[("tb".to_owned(), Vec::new())])?;
    let backend = shell_word(&env.backend)?;
    let (handler, mut arrivals) = ListChanged::new();
    let magg = env
        .start_magg_with(
            handler,
            LIVE_ENV,
            "magg (magg_add_server)",
            "magg-live-tool",
            &config,
        )
        .await?;
    let result = measure_tool(rounds, &magg, &mut arrivals, &backend).await;
    magg.shutdown().await;
    result
}

/// Adds `add1`, `add2`, ... (each a test backend started as `backend`),
/// timing each, and removes each again.
async fn measure_tool(
    rounds: usize,
    magg: &Server<ListChanged>,
    arrivals: &mut Arrivals,
    backend: &str,
) -> Result<ToolRounds> {
    let peer = magg.peer();
    mcp::wait_for_tools(peer, CHANGE_LIMIT, |names| {
        names.iter().any(|t| t == "magg_add_server") && names.iter().any(|t| t == "tb_echo")
    })
    .await
    .context("magg did not list magg_add_server and tb_echo")?;
    let mut out = ToolRounds::default();
    for round in 1..=rounds {
        let name = format!("add{round}");
        let command = format!("{backend} --name {name}");
        let args = [
            ("name", name.as_str()),
            ("source", "bench"),
            ("prefix", name.as_str()),
            ("command", command.as_str()),
        ];
        arrivals.settle().await;
        let before = server::children_of(magg.pid());
        let tool = format!("{name}_echo");
        let start = Instant::now();
        // The new tool is polled while the call runs: it may answer before
        // magg_add_server does.
        let add = async {
            let result = call_magg(peer, "magg_add_server", &args).await?;
            let returned = start.elapsed();
            ensure!(
                result.pointer("/output/server/mounted") == Some(&Value::Bool(true)),
                "magg_add_server {name}: not mounted: {result}"
            );
            Ok(returned)
        };
        let poll = async {
            until_callable(peer, &tool, start)
                .await
                .with_context(|| format!("{name} added with magg_add_server"))
        };
        let (returned, callable) = tokio::try_join!(add, poll)?;
        let notified = arrivals
            .first_after(start)
            .await
            .with_context(|| format!("{name} added with magg_add_server"))?;
        let pids = new_children(magg.pid(), &before);

        let start = Instant::now();
        call_magg(peer, "magg_remove_server", &[("name", name.as_str())]).await?;
        let remove_returned = start.elapsed();
        let remove_notified = arrivals
            .first_after(start)
            .await
            .with_context(|| format!("{name} removed with magg_remove_server"))?;
        wait_gone(&name, &pids).await;

        out.returned.push(returned);
        out.callable.push(callable);
        out.notified.push(notified);
        out.remove_returned.push(remove_returned);
        out.remove_notified.push(remove_notified);
    }
    Ok(out)
}

/// A summary and its samples in milliseconds, for the JSON report.
fn data(samples: &[Duration]) -> Value {
    let ms: Vec<f64> = samples.iter().map(|&d| round2(millis(d))).collect();
    json!({"summary": Summary::of(samples).to_json(), "samples_ms": ms})
}

/// A table row: p50 and max in ms, and the number of rounds.
fn row(name: &str, x: &Summary) -> String {
    format!(
        "{name:<38} {:>9.2}  {:>9.2}  {:>6}",
        x.p50 / 1e3,
        x.max / 1e3,
        x.count
    )
}

/// Measurement 6.
pub async fn live(env: &Env, opts: Options) -> Result<Section> {
    let rounds = opts.live_rounds;
    eprintln!("magg-bench: 6/7 live changes ({rounds} rounds each)");
    let base = baseline(env, rounds).await?;
    let file = file_rounds(env, rounds).await?;
    let tool = tool_rounds(env, rounds).await?;

    let b = Summary::of(&base);
    let add_notified = Summary::of(&file.add_notified);
    let add_callable = Summary::of(&file.add_callable);
    let remove_notified = Summary::of(&file.remove_notified);
    let returned = Summary::of(&tool.returned);
    let callable = Summary::of(&tool.callable);
    let notified = Summary::of(&tool.notified);
    let remove_returned = Summary::of(&tool.remove_returned);
    let tool_remove_notified = Summary::of(&tool.remove_notified);

    let mut s = Section::new(
        "live_changes",
        format!(
            "6. Live changes: config file rewritten, and magg_add_server called, {rounds} rounds each (no budgets)"
        ),
    );
    s.line(format!(
        "Config file rewritten (temp file + rename) to add tb2 and to remove it, alternately; timed from just before the rename (magg's {} ms debounce included):",
        DEBOUNCE.as_millis()
    ));
    s.line("                                          p50 ms     max ms  rounds");
    s.line(row("tb2 added → tools/list_changed", &add_notified));
    s.line(row("tb2 added → tb2_echo callable", &add_callable));
    s.line(row("tb2 removed → tools/list_changed", &remove_notified));
    s.line("magg_add_server (fresh name addN each round), timed from sending the call (addN_echo polled meanwhile); then magg_remove_server:");
    s.line(row("add → result returned (mounted)", &returned));
    s.line(row("add → addN_echo callable", &callable));
    s.line(row("add → tools/list_changed", &notified));
    s.line(row("remove → result returned", &remove_returned));
    s.line(row("remove → tools/list_changed", &tool_remove_notified));
    s.line("Baseline:");
    s.line(row("magg-test-backend spawn → initialize", &b));
    s.line(format!(
        "\"callable\" is when the first successful echo call returned (calls about every {} ms before that); \"added by magg\" is p50 − baseline p50",
        POLL.as_millis()
    ));
    s.line("These maggs run with MAGG_LIST_WAIT=0: a call to a tool not listed yet fails at once instead of waiting for starting backends");

    let figures: [(&str, &str, f64); 16] = [
        (
            "file_add_list_changed_p50_ms",
            "file, tb2 added → list_changed, p50",
            add_notified.p50,
        ),
        (
            "file_add_list_changed_max_ms",
            "file, tb2 added → list_changed, max",
            add_notified.max,
        ),
        (
            "file_add_callable_p50_ms",
            "file, tb2 added → tb2_echo callable, p50",
            add_callable.p50,
        ),
        (
            "file_add_callable_max_ms",
            "file, tb2 added → tb2_echo callable, max",
            add_callable.max,
        ),
        (
            "file_remove_list_changed_p50_ms",
            "file, tb2 removed → list_changed, p50",
            remove_notified.p50,
        ),
        (
            "file_remove_list_changed_max_ms",
            "file, tb2 removed → list_changed, max",
            remove_notified.max,
        ),
        (
            "file_add_callable_added_p50_ms",
            "file, callable: added by magg, p50",
            add_callable.p50 - b.p50,
        ),
        (
            "file_add_callable_added_less_debounce_p50_ms",
            "  the same less the debounce",
            add_callable.p50 - b.p50 - micros(DEBOUNCE),
        ),
        (
            "tool_add_returned_p50_ms",
            "magg_add_server → result, p50",
            returned.p50,
        ),
        (
            "tool_add_returned_max_ms",
            "magg_add_server → result, max",
            returned.max,
        ),
        (
            "tool_add_callable_p50_ms",
            "magg_add_server → tool callable, p50",
            callable.p50,
        ),
        (
            "tool_add_callable_max_ms",
            "magg_add_server → tool callable, max",
            callable.max,
        ),
        (
            "tool_add_returned_added_p50_ms",
            "magg_add_server, result: added by magg, p50",
            returned.p50 - b.p50,
        ),
        (
            "tool_add_callable_added_p50_ms",
            "magg_add_server, callable: added by magg",
            callable.p50 - b.p50,
        ),
        (
            "baseline_p50_ms",
            "baseline: backend spawn → initialize, p50",
            b.p50,
        ),
        (
            "baseline_max_ms",
            "baseline: backend spawn → initialize, max",
            b.max,
        ),
    ];
    for (key, label, us) in figures {
        s.figure(key, label, us / 1e3, "ms", None);
    }
    s.data(
        "config_file",
        json!({
            "debounce_ms": millis(DEBOUNCE),
            "add_list_changed": data(&file.add_notified),
            "add_callable": data(&file.add_callable),
            "remove_list_changed": data(&file.remove_notified),
        }),
    );
    s.data(
        "add_server_tool",
        json!({
            "returned": data(&tool.returned),
            "callable": data(&tool.callable),
            "list_changed": data(&tool.notified),
            "remove_returned": data(&tool.remove_returned),
            "remove_list_changed": data(&tool.remove_notified),
        }),
    );
    s.data("baseline_spawn_to_initialize", data(&base));
    s.data("magg_env", json!({"MAGG_LIST_WAIT": "0"}));
    Ok(s)
}
