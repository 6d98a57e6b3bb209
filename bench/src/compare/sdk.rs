//! The official MCP Python SDK as an HTTP client of measurement 10: `bench/sdk_calls.py`
//! (needs `python3` with the SDK: `pip install -r tests/python/requirements.txt`), driven
//! over its stdin and stdout, timing its calls itself.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::{mcp::ECHO_TEXT, server};

/// How long the SDK may take to connect, and to make one batch of calls.
const WAIT: Duration = Duration::from_secs(120);

/// A running `sdk_calls.py`, connected and initialized.
pub struct SdkClient {
    label: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl SdkClient {
    /// Starts the script against `http://ADDR/mcp`, calling `tool`; stderr goes to `log`.
    pub async fn connect(label: &str, addr: SocketAddr, tool: &str, log: &Path) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk_calls.py");
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(format!("http://{addr}/mcp"))
            .args([tool, ECHO_TEXT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("{label}: cannot start python3 {}", script.display()))?;
        if let Some(pid) = child.id() {
            server::track(&[pid]);
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("{label}: python3's stdin or stdout is not piped");
        };
        let mut client = SdkClient {
            label: label.to_owned(),
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        };
        let line = client.line().await.with_context(|| {
            format!(
                "the Python SDK did not connect (is it installed? pip install -r \
                 tests/python/requirements.txt); its stderr is in {}",
                log.display()
            )
        })?;
        ensure!(line == "ready", "{label}: expected `ready`, got {line:?}");
        Ok(client)
    }

    async fn line(&mut self) -> Result<String> {
        match tokio::time::timeout(WAIT, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => bail!("{}: the script exited", self.label),
            Ok(Err(e)) => Err(e).with_context(|| format!("{}: cannot read", self.label)),
            Err(_) => bail!("{}: no answer within {WAIT:?}", self.label),
        }
    }

    /// Latencies of `count` sequential calls, as the script timed them.
    pub async fn call_latencies(&mut self, count: usize) -> Result<Vec<Duration>> {
        self.stdin
            .write_all(format!("{count}\n").as_bytes())
            .await
            .with_context(|| format!("{}: cannot write to the script", self.label))?;
        let line = self.line().await?;
        let nanos: Vec<u64> = serde_json::from_str(&line)
            .with_context(|| format!("{}: bad samples line {line:?}", self.label))?;
        Ok(nanos.into_iter().map(Duration::from_nanos).collect())
    }

    /// Closes the script's stdin and waits for it to exit (killing it after 10 s).
    pub async fn shutdown(self) {
        let SdkClient {
            label,
            mut child,
            stdin,
            ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            server::incident(format!("{label}: the SDK script did not exit; killed"));
            let _ = child.kill().await;
        }
    }
}
