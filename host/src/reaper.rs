//! Ends the stdio backends' process groups when magg dies, however it dies (`kill -9` too).
//!
//! # Design
//! Each stdio backend runs in a process group of its own, so that what it starts (an `npx` or
//! `uvx` launcher's server, a shell's children) can be ended with it. While magg lives it
//! ends those groups itself (see `backend`). A process that is killed outright cannot, and
//! `PR_SET_PDEATHSIG` would reach only the backend itself, not what it started.
//!
//! So magg starts one small helper, the reaper: magg's own binary run again as
//! `magg __reaper`, in a process group of its own, its stdin a pipe whose only writing end
//! magg holds (opened close-on-exec, so no backend inherits it). magg tells it, one line each,
//! `+<group>` for every group it starts and `-<group>` for every group it has ended. When that
//! pipe reads end of input, magg is gone (the kernel closes the pipe whatever ended magg): the
//! reaper sends SIGTERM to every group it was told of and not yet told was ended, SIGKILL to
//! those still there after [`GRACE`], and exits.
//!
//! - It costs nothing until the first stdio backend starts; then one process (a few MiB of
//!   resident memory, most of it magg's binary, shared) and one short write per backend start
//!   and end.
//! - It ignores SIGINT, SIGTERM, SIGHUP and SIGPIPE: Ctrl-C in a terminal or a signal sent to
//!   magg's process group must not end it before magg has stopped; it ends when magg does.
//! - If it dies, magg starts another at the next write and tells it of every group still
//!   running.
//! - A backend started in the instant magg is killed, before its `+` line is written, is not
//!   covered; its own end of input then tells it to exit.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, Write as _},
    process::{Child, ChildStdin, Command, ExitCode, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// The hidden subcommand that runs the reaper (`magg __reaper`).
pub const SUBCOMMAND: &str = "__reaper";

/// How long the groups have after SIGTERM before they get SIGKILL.
pub const GRACE: Duration = Duration::from_secs(1);

/// The running reaper, started at the first group.
static REAPER: Mutex<Option<Reaper>> = Mutex::new(None);

/// The groups magg has started and not ended.
static GROUPS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// magg's end of the reaper.
struct Reaper {
    child: Child,
    stdin: ChildStdin,
}

/// Tells the reaper of a process group magg started; it ends the group if magg dies before it
/// calls [`forget`].
pub fn watch(group: libc::pid_t) {
    let Ok(mut groups) = GROUPS.lock() else {
        return;
    };
    groups.insert(group);
    tell(&groups, &format!("+{group}\n"));
}

/// Tells the reaper that magg has ended a process group itself.
pub fn forget(group: libc::pid_t) {
    let Ok(mut groups) = GROUPS.lock() else {
        return;
    };
    if groups.remove(&group) {
        tell(&groups, &format!("-{group}\n"));
    }
}

/// Writes `line` to the reaper, starting it (again) first when there is none or the one there
/// was has gone; a new reaper is told of all of `groups`. Called with [`GROUPS`] held, so lines
/// go out in the order the groups changed.
fn tell(groups: &BTreeSet<libc::pid_t>, line: &str) {
    let Ok(mut reaper) = REAPER.lock() else {
        return;
    };
    if let Some(running) = reaper.as_mut() {
        if running.stdin.write_all(line.as_bytes()).is_ok() {
            return;
        }
        tracing::warn!(
            "the process that ends magg's backends if magg is killed has gone; starting it again"
        );
        let _ = running.child.kill();
        let _ = running.child.wait();
        *reaper = None;
    }
    if groups.is_empty() {
        return;
    }
    match start() {
        Ok(mut fresh) => {
            let all: String = groups.iter().map(|g| format!("+{g}\n")).collect();
            if let Err(e) = fresh.stdin.write_all(all.as_bytes()) {
                tracing::warn!("cannot tell the backend reaper of the backends: {e}");
            }
            *reaper = Some(fresh);
        }
        Err(e) => tracing::warn!(
            "cannot start the process that ends magg's backends if magg is killed ({e}); \
             if magg is killed with SIGKILL, its backends' processes may be left running"
        ),
    }
}

/// Starts `magg __reaper` from magg's own binary.
fn start() -> std::io::Result<Reaper> {
    use std::os::unix::process::CommandExt as _;
    // /proc/self/exe is this very binary, even if the file was replaced since magg started.
    let exe = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe()?
    };
    let mut child = Command::new(exe)
        .arg0("magg")
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    let Some(stdin) = child.stdin.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other("its stdin was not captured"));
    };
    tracing::debug!(pid = child.id(), "started the backend reaper");
    Ok(Reaper { child, stdin })
}

/// The reaper process (`magg __reaper`): reads `+<group>` / `-<group>` lines until end of
/// input, then ends every group still listed.
pub fn main() -> ExitCode {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: signal() only sets this process's disposition of the signal.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        match (sign, number.trim().parse::<libc::pid_t>()) {
            ("+", Ok(group)) if group > 1 => {
                groups.insert(group);
            }
            ("-", Ok(group)) => {
                groups.remove(&group);
            }
            _ => {}
        }
    }
    if groups.is_empty() {
        return ExitCode::SUCCESS;
    }
    let ended = end(&groups);
    eprintln!("magg went away without ending its backends; ended {ended} backend process group(s)");
    ExitCode::SUCCESS
}

/// Sends SIGTERM to every group, waits up to [`GRACE`] for them to go, then SIGKILL to those
/// left; how many groups there were.
fn end(groups: &BTreeSet<libc::pid_t>) -> usize {
    let live: Vec<libc::pid_t> = groups
        .iter()
        .copied()
        .filter(|&g| signal_group(g, libc::SIGTERM))
        .collect();
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && live.iter().any(|&g| signal_group(g, 0)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &group in &live {
        signal_group(group, libc::SIGKILL);
    }
    live.len()
}

/// Sends `signal` to every process of `group` (0 only checks that there is one); whether the
/// group has any process.
pub fn signal_group(group: libc::pid_t, signal: libc::c_int) -> bool {
    if group <= 1 {
        return false;
    }
    // SAFETY: killpg only sends a signal to the processes of one group; `group` is the id of a
    // group magg started (its leader's pid), never 0 or 1.
    unsafe { libc::killpg(group, signal) == 0 }
}
