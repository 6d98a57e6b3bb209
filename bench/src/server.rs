//! Child MCP servers (`magg serve` or `magg-test-backend`) with an rmcp client
//! on their stdio, plus the `/proc` helpers used to measure and clean them up.

use std::{
    fs::File,
    path::Path,
    process::Stdio,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    service::{Peer, RunningService},
};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a server may take to answer `initialize`.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every pid this bench started or saw as a child of magg, to check at the end
/// that nothing outlived the run.
static TRACKED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Things that went wrong while stopping servers, for the report's notes.
static INCIDENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds `pids` to the processes checked at the end of the run.
pub fn track(pids: &[u32]) {
    if let Ok(mut tracked) = TRACKED.lock() {
        tracked.extend_from_slice(pids);
    }
}

/// Records something that went wrong for the report's notes (and says it on stderr).
pub fn incident(message: String) {
    eprintln!("magg-bench: {message}");
    if let Ok(mut incidents) = INCIDENTS.lock() {
        incidents.push(message);
    }
}

/// The incidents recorded so far (servers that had to be signalled or killed).
pub fn incidents() -> Vec<String> {
    INCIDENTS.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Tracked processes still alive; kills them (SIGKILL) and returns their pids.
pub fn kill_leftovers() -> Vec<u32> {
    let tracked = TRACKED.lock().map(|v| v.clone()).unwrap_or_default();
    let alive: Vec<u32> = tracked.into_iter().filter(|&pid| is_alive(pid)).collect();
    for &pid in &alive {
        signal(pid, "KILL");
    }
    alive
}

/// A running MCP server process with an initialized client session on its
/// stdio, whose server-to-client messages go to the handler `H`.
pub struct Server<H: ClientHandler = ()> {
    label: String,
    pid: u32,
    child: Child,
    client: RunningService<RoleClient, H>,
    /// When the process was spawned.
    pub spawned_at: Instant,
    /// From spawn to receiving the `initialize` result.
    pub init_time: Duration,
}

impl Server {
    /// Spawns `program args` with `env` added, stderr to `log`, and performs the
    /// MCP handshake over its stdin/stdout; notifications are ignored.
    pub async fn start(
        label: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Server> {
        Server::start_with((), label, program, args, env, log).await
    }
}

impl<H: ClientHandler> Server<H> {
    /// As [`Server::start`], with `handler` receiving the server's requests
    /// and notifications.
    pub async fn start_with(
        handler: H,
        label: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Server<H>> {
        let Spawned {
            pid,
            mut child,
            stdin,
            stdout,
            spawned_at,
        } = spawn(label, program, args, env, log)?;
        let handshake = tokio::time::timeout(INIT_TIMEOUT, handler.serve((stdout, stdin))).await;
        let init_time = spawned_at.elapsed();
        let client = match handshake {
            Ok(Ok(client)) => client,
            failed => {
                // The transport (and so the child's stdin) is gone with the
                // failed handshake: stop the process and any backends it started.
                let children = children_of(pid);
                stop(label, pid, &mut child, &children).await;
                let error = match failed {
                    Ok(Err(e)) => anyhow!(e).context("initialize failed"),
                    _ => anyhow!("no initialize result within {INIT_TIMEOUT:?}"),
                };
                return Err(error.context(format!(
                    "{label} (pid {pid}); its stderr is in {}",
                    log.display()
                )));
            }
        };
        Ok(Server {
            label: label.to_owned(),
            pid,
            child,
            client,
            spawned_at,
            init_time,
        })
    }

    /// The client side of the session.
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.client.peer()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The resident set size of this process alone (not its children), in kB.
    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.pid).with_context(|| format!("{}: cannot read VmRSS", self.label))
    }

    /// Closes the session (which closes the child's stdin), waits for the
    /// process to exit, escalating to SIGTERM and SIGKILL, and makes sure the
    /// backends it started are gone too. Returns how long the exit took.
    pub async fn shutdown(self) -> Duration {
        let Server {
            label,
            pid,
            mut child,
            client,
            ..
        } = self;
        // Taken before magg is told to stop, so that a backend it fails to
        // stop is still found once magg has exited.
        let children = children_of(pid);
        let started = Instant::now();
        // Dropping the transport closes the child's stdin: magg then stops its
        // backends and exits, a test backend just exits.
        if tokio::time::timeout(Duration::from_secs(5), client.cancel())
            .await
            .is_err()
        {
            incident(format!("{label}: closing the client session took over 5 s"));
        }
        stop(&label, pid, &mut child, &children).await;
        started.elapsed()
    }
}

/// A freshly spawned child with piped stdin and stdout.
pub struct Spawned {
    pub pid: u32,
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub spawned_at: Instant,
}

/// Spawns `program args` with `env` added and stderr to `log`; the child is
/// killed if its handle is dropped.
pub fn spawn(
    label: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Spawned> {
    let log_file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    let spawned_at = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("{label}: cannot start {}", program.display()))?;
    let pid = child
        .id()
        .with_context(|| format!("{label}: spawned process has no pid"))?;
    track(&[pid]);
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("{label}: stdout not piped"))?;
    let stdin = child
        .stdin
        .take()
        .with_context(|| format!("{label}: stdin not piped"))?;
    Ok(Spawned {
        pid,
        child,
        stdin,
        stdout,
        spawned_at,
    })
}

/// Stops `child` (pid `pid`) whose stdin has been closed, and then
/// `children`, the processes it had started (magg's backends).
pub async fn stop(label: &str, pid: u32, child: &mut Child, children: &[u32]) {
    track(children);
    stop_child(label, pid, child).await;
    reap(label, children).await;
}

/// Stops `child` (pid `pid`), a server that does not read its stdin, with SIGTERM (SIGKILL
/// after 5 s), and then `children`, the processes it had started.
pub async fn terminate(label: &str, pid: u32, child: &mut Child, children: &[u32]) {
    track(children);
    signal(pid, "TERM");
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        incident(format!(
            "{label} (pid {pid}) ignored SIGTERM for 5 s; sent SIGKILL"
        ));
        if let Err(e) = child.kill().await {
            incident(format!("{label} (pid {pid}): SIGKILL failed: {e}"));
        }
    }
    reap(label, children).await;
}

/// Waits for `child` to exit after its stdin closed; SIGTERM, then SIGKILL, if it does not.
async fn stop_child(label: &str, pid: u32, child: &mut Child) {
    if tokio::time::timeout(EXIT_TIMEOUT, child.wait())
        .await
        .is_ok()
    {
        return;
    }
    incident(format!(
        "{label} (pid {pid}) still running {EXIT_TIMEOUT:?} after its stdin closed; sent SIGTERM"
    ));
    signal(pid, "TERM");
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_ok()
    {
        return;
    }
    incident(format!(
        "{label} (pid {pid}) ignored SIGTERM for 5 s; sent SIGKILL"
    ));
    if let Err(e) = child.kill().await {
        incident(format!("{label} (pid {pid}): SIGKILL failed: {e}"));
    }
}

/// Gives the processes `pids` (backends of a magg that has exited) 5 s to go,
/// then kills the rest.
async fn reap(label: &str, pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            incident(format!(
                "{label}: {} child process(es) still alive 5 s after it exited ({alive:?}); sent SIGKILL",
                alive.len()
            ));
            for pid in alive {
                signal(pid, "KILL");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `SIG{sig}` to `pid` with kill(1); failures (already gone) are ignored.
pub fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// State letter and parent pid of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// The live child processes of `pid`, not counting magg's reaper.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| matches!(stat(p), Some((state, ppid)) if ppid == pid && state != 'Z'))
        .filter(|&p| !is_reaper(p))
        .collect()
}

/// Whether `pid` is magg's reaper (`magg __reaper`), which ends the backends if magg is
/// killed: a helper of magg's, not a backend.
fn is_reaper(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == b"__reaper"))
}

/// CPU time used so far by all threads of `pid`, in nanoseconds (the first
/// field of each `/proc/PID/task/TID/schedstat`).
pub fn cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))? {
        let path = entry.with_context(|| format!("cannot list {dir}"))?.path();
        // A thread may end between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let first = text.split_whitespace().next().unwrap_or("0");
        total += first
            .parse::<u64>()
            .with_context(|| format!("bad schedstat in {}", path.display()))?;
    }
    Ok(total)
}

/// `VmRSS` of `pid` in kB, from `/proc/PID/status`.
pub fn rss_kb(pid: u32) -> Result<u64> {
    status_kb(pid, "VmRSS")
}

/// The anonymous part of a process's RSS (heap, stacks, plugin memory), in KiB: VmRSS less
/// the pages of files it maps (its own executable's code, above all).
pub fn rss_anon_kb(pid: u32) -> Result<u64> {
    status_kb(pid, "RssAnon")
}

fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} line in {path}"))?;
    let kb = line.trim().trim_end_matches("kB").trim();
    kb.parse()
        .with_context(|| format!("bad {field} value {kb:?} in {path}"))
}
