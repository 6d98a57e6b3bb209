//! Starting the real `magg` binary and real backends, and connecting real MCP clients to them.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    },
    service::{NotificationContext, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

/// How long a test waits for any one event before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A binary built from this workspace (`cargo build --workspace` builds them all).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    bin("magg")
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_owned()
}

/// A built plugin: `target/plugins/<name>.wasm` (shipped with magg) or
/// `target/plugins/fixtures/<name>.wasm` (test plugins).
pub fn plugin(name: &str) -> PathBuf {
    let dir = target_dir().join("plugins");
    let path = [
        dir.join(format!("{name}.wasm")),
        dir.join("fixtures").join(format!("{name}.wasm")),
    ]
    .into_iter()
    .find(|p| p.exists());
    path.unwrap_or_else(|| {
        panic!("plugin {name} is not built: run plugins/build.sh before the tests")
    })
}

/// `dist/index.js` of `@modelcontextprotocol/server-everything` from npm.
pub fn everything_js() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.exists(),
        "{} is missing: run `npm ci --prefix tests/node` before the tests",
        path.display()
    );
    path
}

/// A config entry for the rmcp test backend.
pub fn test_backend(name: &str, prefix: &str, extra_args: &[&str]) -> Value {
    let mut args = vec!["--name".to_owned(), name.to_owned()];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    json!({
        "source": "tests/fixtures/test-backend",
        "prefix": prefix,
        "command": bin("magg-test-backend"),
        "args": args,
    })
}

/// A config entry for server-everything on stdio.
pub fn everything(prefix: &str) -> Value {
    json!({
        "source": "https://www.npmjs.com/package/@modelcontextprotocol/server-everything",
        "prefix": prefix,
        "command": "node",
        "args": [everything_js(), "stdio"],
    })
}

/// A temporary directory holding a `config.json`.
pub struct TempConfig {
    /// The directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub path: PathBuf,
}

impl TempConfig {
    /// Writes `config` as `config.json` in a fresh temporary directory.
    pub fn new(config: &Value) -> TempConfig {
        Self::raw(&serde_json::to_string_pretty(config).expect("config json"))
    }

    /// The config file as JSON, as it is on disk now.
    pub fn read(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.path).expect("read config"))
            .expect("config JSON")
    }

    /// Replaces the config file the way many editors save: a new file renamed over the old.
    pub fn write(&self, value: &Value) {
        let tmp = self.dir.path().join(".config.json.swp");
        std::fs::write(&tmp, serde_json::to_string_pretty(value).expect("json")).expect("write");
        std::fs::rename(&tmp, &self.path).expect("rename");
    }

    /// The plugins directory beside the config (where magg looks by default), created.
    pub fn plugins_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("plugins");
        std::fs::create_dir_all(&dir).expect("plugins dir");
        dir
    }

    /// Installs the built plugin `name` as `<as_name>.wasm` in the plugins directory, the way a
    /// deploy does: copied beside it, then renamed into place.
    pub fn install_plugin(&self, name: &str, as_name: &str) {
        let dir = self.plugins_dir();
        let tmp = dir.join(format!(".{as_name}.partial"));
        std::fs::copy(plugin(name), &tmp).expect("copy plugin");
        std::fs::rename(&tmp, dir.join(format!("{as_name}.wasm"))).expect("rename plugin");
    }

    /// Writes `text` verbatim as `config.json`.
    pub fn raw(text: &str) -> TempConfig {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).expect("write config");
        TempConfig { dir, path }
    }
}

/// What the test client heard from magg, in order.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("magg-e2e", "0"),
        )
    }

    async fn on_tool_list_changed(&self, _c: NotificationContext<RoleClient>) {
        let _ = self.tx.send("tools/list_changed".into());
    }

    async fn on_prompt_list_changed(&self, _c: NotificationContext<RoleClient>) {
        let _ = self.tx.send("prompts/list_changed".into());
    }

    async fn on_resource_list_changed(&self, _c: NotificationContext<RoleClient>) {
        let _ = self.tx.send("resources/list_changed".into());
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        let token = serde_json::to_string(&params.progress_token).unwrap_or_default();
        let _ = self
            .tx
            .send(format!("progress {token} {}", params.progress));
    }
}

/// An MCP client session with magg.
pub struct Client {
    /// The rmcp client (derefs to its `Peer`).
    pub service: RunningService<RoleClient, Recorder>,
    events: mpsc::UnboundedReceiver<String>,
}

impl Client {
    fn pair() -> (Recorder, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Recorder { tx }, rx)
    }

    /// Connects over streamable HTTP.
    pub async fn http(url: &str) -> Client {
        let (recorder, events) = Self::pair();
        let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
        let service = tokio::time::timeout(WAIT, recorder.serve(transport))
            .await
            .expect("HTTP initialize timed out")
            .expect("HTTP initialize failed");
        Client { service, events }
    }

    /// Waits for a notification named `what` (e.g. `tools/list_changed`).
    pub async fn notified(&mut self, what: &str) {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(event) = self.events.recv().await {
                if event == what {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "no {what} notification within {WAIT:?}"
        );
    }

    /// Every event heard within `window` (for counting; tests wait on events, not on time).
    pub async fn events_for(&mut self, window: Duration) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            seen.push(event);
        }
        seen
    }

    /// The names of all tools, every page.
    pub async fn tool_names(&self) -> Vec<String> {
        self.service
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Calls a tool; the result as JSON, or the JSON-RPC error as `Err`.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, rmcp::ServiceError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        let result: CallToolResult = self.service.call_tool(params).await?;
        Ok(serde_json::to_value(result).expect("result json"))
    }

    /// Calls a tool until it succeeds (a backend may still be starting or restarting).
    pub async fn call_eventually(&self, name: &str, args: Value) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.call(name, args.clone()).await {
                Ok(v) if v["isError"] != json!(true) => return v,
                other if tokio::time::Instant::now() > deadline => {
                    panic!("{name} never succeeded; last answer: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// The first text block of a tool result.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// The Magg-style `{"errors", "output"}` body of one of magg's own tools.
pub fn magg_body(result: &Value) -> Value {
    serde_json::from_str(text(result)).expect("magg tool result is JSON")
}

/// A running `magg` process.
pub struct Magg {
    /// The child process.
    pub child: Child,
    /// Everything magg wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// `http://…/mcp` when serving HTTP.
    pub url: Option<String>,
    /// The stdio client session, when serving stdio.
    pub stdio: Option<Client>,
}

impl Magg {
    fn command(config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("magg"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .env("MAGG_LIST_WAIT", "15")
            .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn collect_stderr(
        child: &mut Child,
    ) -> (Arc<Mutex<Vec<String>>>, mpsc::UnboundedReceiver<String>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line.clone());
                sink.lock().expect("log lock").push(line);
            }
        });
        (log, rx)
    }

    /// Starts `magg serve` on stdio and connects a client to it.
    pub async fn stdio(config: &Path) -> Magg {
        Self::stdio_with(config, &[], &[]).await
    }

    /// Like [`Magg::stdio`], with extra `serve` flags and environment variables.
    pub async fn stdio_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Magg {
        let mut cmd = Self::command(config, args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn magg");
        let (log, _lines) = Self::collect_stderr(&mut child);
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (recorder, events) = Client::pair();
        let service = tokio::time::timeout(WAIT, recorder.serve((stdout, stdin)))
            .await
            .expect("initialize timed out")
            .expect("initialize failed");
        Magg {
            child,
            log,
            url: None,
            stdio: Some(Client { service, events }),
        }
    }

    /// Starts `magg serve --http` (or `--hybrid` when `hybrid`) on a free port.
    pub async fn http(config: &Path, hybrid: bool) -> Magg {
        let mode = if hybrid { "--hybrid" } else { "--http" };
        let mut child = Self::command(config, &[mode, "--host", "127.0.0.1", "--port", "0"])
            .spawn()
            .expect("spawn magg");
        let (log, mut lines) = Self::collect_stderr(&mut child);
        let url = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.recv().await {
                if let Some(at) = line.find("listening on ") {
                    return Some(line[at + "listening on ".len()..].trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("magg never said where it listens");
        Magg {
            child,
            log,
            url: Some(url),
            stdio: None,
        }
    }

    /// The stdio client.
    pub fn client(&mut self) -> &mut Client {
        self.stdio.as_mut().expect("a stdio session")
    }

    /// Connects a new HTTP client session.
    pub async fn http_client(&self) -> Client {
        Client::http(self.url.as_deref().expect("serving HTTP")).await
    }

    /// Whether magg's log has a line containing `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .expect("log lock")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Waits until magg's log has a line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_within(needle, WAIT).await;
    }

    /// Like [`Magg::wait_for_log`], for events that may take longer than [`WAIT`] (compiling
    /// a large plugin on a cold cache).
    pub async fn wait_for_log_within(&self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.logged(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "magg never logged {needle:?}; log:\n{}",
                self.log.lock().expect("log lock").join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs `magg` with `args` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin("magg"))
        .args(args)
        .env_remove("MAGG_CONFIG_PATH")
        .output()
        .expect("run magg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
