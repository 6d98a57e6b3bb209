//! Starting the real `magg` binary and real backends, and connecting real MCP clients to them.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, ErrorData, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
        ClientCapabilities, ClientConfig, ClientRequest, ElicitRequestParams, ElicitResult,
        ElicitationAction, Implementation, PingRequest, RequestId,
        ResourceUpdatedNotificationParam, ServerResult, SubscribeRequestParams,
        UnsubscribeRequestParams,
    },
    service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
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
///
/// `MAGG_TEST_BIN` names another `magg` to run instead (say, the static musl build), so that
/// the suite tests that binary.
pub fn bin(name: &str) -> PathBuf {
    if name == "magg"
        && let Some(other) = std::env::var_os("MAGG_TEST_BIN").filter(|v| !v.is_empty())
    {
        // A relative path is taken from the workspace root, where `cargo test` is run.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(other);
        assert!(
            path.exists(),
            "MAGG_TEST_BIN: {} does not exist",
            path.display()
        );
        return path;
    }
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
    // target/<profile>/deps/<test executable>
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors().nth(3).expect("target directory").to_owned()
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

/// Makes rustls use ring in this process, before an HTTP client is made (rmcp's HTTP client
/// has no crypto provider of its own in this workspace).
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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

/// The rmcp test backend as one command line (`magg_add_server`'s `command`), named `name`.
pub fn test_backend_command(name: &str) -> String {
    format!("'{}' --name {name}", bin("magg-test-backend").display())
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

/// What a test client tells magg it can do, and the name it signs its answers with.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Signs the answers: sampling answers `<name> says hi`, roots are `file:///magg-e2e/<name>`,
    /// form elicitations answer `{"name": "<name>"}`.
    pub name: String,
    /// Declares `sampling`.
    pub sampling: bool,
    /// Declares `elicitation.form`.
    pub elicitation_form: bool,
    /// Declares `elicitation.url`.
    pub elicitation_url: bool,
    /// Declares `roots` (with `listChanged`).
    pub roots: bool,
}

impl ClientSpec {
    /// A client that declares sampling, form and URL elicitation, and roots.
    pub fn full(name: &str) -> ClientSpec {
        ClientSpec {
            name: name.to_owned(),
            sampling: true,
            elicitation_form: true,
            elicitation_url: true,
            roots: true,
        }
    }

    /// A client that declares none of them (it still answers if asked, so a test can see that
    /// it was asked).
    pub fn bare(name: &str) -> ClientSpec {
        ClientSpec {
            name: name.to_owned(),
            sampling: false,
            elicitation_form: false,
            elicitation_url: false,
            roots: false,
        }
    }

    /// The declared capabilities.
    pub fn capabilities(&self) -> ClientCapabilities {
        let mut caps = serde_json::Map::new();
        if self.sampling {
            caps.insert("sampling".into(), json!({}));
        }
        if self.elicitation_form || self.elicitation_url {
            let mut modes = serde_json::Map::new();
            if self.elicitation_form {
                modes.insert("form".into(), json!({}));
            }
            if self.elicitation_url {
                modes.insert("url".into(), json!({}));
            }
            caps.insert("elicitation".into(), Value::Object(modes));
        }
        if self.roots {
            caps.insert("roots".into(), json!({"listChanged": true}));
        }
        serde_json::from_value(Value::Object(caps)).expect("client capabilities")
    }
}

/// What the test client heard from magg, in order, as event strings:
/// - `tools/list_changed`, `prompts/list_changed`, `resources/list_changed`;
/// - `progress <token as JSON> <progress>`;
/// - `log <level> <logger or -> <data as compact JSON>`;
/// - `updated <uri>`;
/// - `sampling <text of the first message>`, `elicit form`, `elicit url <url>`, `roots`
///   (magg asked this client; it answers as its [`ClientSpec`] says).
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<String>,
    spec: Arc<ClientSpec>,
}

impl Recorder {
    fn record(&self, event: String) {
        let _ = self.tx.send(event);
    }
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            self.spec.capabilities(),
            Implementation::new(self.spec.name.clone(), "0"),
        )
    }

    async fn on_tool_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.record("tools/list_changed".into());
    }

    async fn on_prompt_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.record("prompts/list_changed".into());
    }

    async fn on_resource_list_changed(&self, _c: NotificationContext<RoleClient>) {
        self.record("resources/list_changed".into());
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        let token = serde_json::to_string(&params.progress_token).unwrap_or_default();
        self.record(format!("progress {token} {}", params.progress));
    }

    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        let level = serde_json::to_value(params.level).unwrap_or(Value::Null);
        self.record(format!(
            "log {} {} {}",
            level.as_str().unwrap_or("?"),
            params.logger.as_deref().unwrap_or("-"),
            params.data
        ));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _c: NotificationContext<RoleClient>,
    ) {
        self.record(format!("updated {}", params.uri));
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, ErrorData> {
        let first = params
            .messages
            .first()
            .and_then(|m| m.content.first())
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        self.record(format!("sampling {first}"));
        Ok(serde_json::from_value(json!({
            "model": "magg-e2e",
            "role": "assistant",
            "content": {"type": "text", "text": format!("{} says hi", self.spec.name)},
        }))
        .expect("sampling result"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        Ok(match request {
            ElicitRequestParams::FormElicitationParams { .. } => {
                self.record("elicit form".into());
                ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({"name": self.spec.name}))
            }
            ElicitRequestParams::UrlElicitationParams { url, .. } => {
                self.record(format!("elicit url {url}"));
                ElicitResult::new(ElicitationAction::Accept)
            }
            _ => {
                self.record("elicit other".into());
                ElicitResult::new(ElicitationAction::Decline)
            }
        })
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, ErrorData> {
        self.record("roots".into());
        Ok(rmcp::model::ListRootsResult::new(vec![
            rmcp::model::Root::new(format!("file:///magg-e2e/{}", self.spec.name)),
        ]))
    }
}

/// Sends `notifications/cancelled` for a request when dropped armed (the caller gave up).
struct CancelOnDrop {
    peer: rmcp::Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let peer = self.peer.clone();
            let param = CancelledNotificationParam::new(Some(id), Some("test gave up".into()));
            tokio::spawn(async move {
                let _ = peer.notify_cancelled(param).await;
            });
        }
    }
}

/// An MCP client session with magg.
pub struct Client {
    /// The rmcp client (derefs to its `Peer`).
    pub service: RunningService<RoleClient, Recorder>,
    events: mpsc::UnboundedReceiver<String>,
    /// Events received but not yet taken by [`Client::next_event`] (they did not match).
    backlog: VecDeque<String>,
    /// Every event received so far, for failure messages.
    history: Vec<String>,
}

impl Client {
    fn pair(spec: ClientSpec) -> (Recorder, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Recorder {
                tx,
                spec: Arc::new(spec),
            },
            rx,
        )
    }

    fn new(
        service: RunningService<RoleClient, Recorder>,
        events: mpsc::UnboundedReceiver<String>,
    ) -> Client {
        Client {
            service,
            events,
            backlog: VecDeque::new(),
            history: Vec::new(),
        }
    }

    /// The spec of the default clients: no capabilities.
    fn default_spec() -> ClientSpec {
        ClientSpec::bare("magg-e2e")
    }

    /// Connects over streamable HTTP.
    pub async fn http(url: &str) -> Client {
        Self::http_as(url, Self::default_spec()).await
    }

    /// Connects over streamable HTTP as a client described by `spec`.
    pub async fn http_as(url: &str, spec: ClientSpec) -> Client {
        install_tls();
        let (recorder, events) = Self::pair(spec);
        let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
        let service = tokio::time::timeout(WAIT, recorder.serve(transport))
            .await
            .expect("HTTP initialize timed out")
            .expect("HTTP initialize failed");
        Self::new(service, events)
    }

    /// Connects over streamable HTTP, sending `Authorization: Bearer <token>` with every
    /// request.
    pub async fn http_with_token(url: &str, token: &str) -> Client {
        install_tls();
        let (recorder, events) = Self::pair(Self::default_spec());
        let config =
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
        let transport = StreamableHttpClientTransport::from_config(config);
        let service = tokio::time::timeout(WAIT, recorder.serve(transport))
            .await
            .expect("HTTP initialize timed out")
            .expect("HTTP initialize failed");
        Self::new(service, events)
    }

    /// Connects over a child's stdio pipes as a client described by `spec`.
    async fn stdio_as(child: &mut Child, spec: ClientSpec) -> Client {
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (recorder, events) = Self::pair(spec);
        let service = tokio::time::timeout(WAIT, recorder.serve((stdout, stdin)))
            .await
            .expect("initialize timed out")
            .expect("initialize failed");
        Self::new(service, events)
    }

    /// Closes the session (over HTTP the transport ends it with a DELETE).
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.service.cancel()).await;
    }

    fn take(&mut self, event: String) -> String {
        self.history.push(event.clone());
        event
    }

    /// Waits up to [`WAIT`] for the first event that `pred` accepts and returns it. Events that
    /// don't match stay for later calls (and for [`Client::events_for`]).
    pub async fn next_event(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(at) = self.backlog.iter().position(|e| pred(e)) {
            return self.backlog.remove(at).expect("backlog entry");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    let event = self.take(event);
                    if pred(&event) {
                        return event;
                    }
                    self.backlog.push_back(event);
                }
                Ok(None) => panic!(
                    "the client stopped before the expected event; events so far: {:#?}",
                    self.history
                ),
                Err(_) => panic!(
                    "no expected event within {WAIT:?}; events so far: {:#?}",
                    self.history
                ),
            }
        }
    }

    /// Fails if an event that `pred` accepts is already here or arrives within `window`.
    /// Other events stay for later calls.
    pub async fn expect_no_event(&mut self, window: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            let event = self.take(event);
            self.backlog.push_back(event);
        }
        let unexpected: Vec<&String> = self.backlog.iter().filter(|e| pred(e)).collect();
        assert!(
            unexpected.is_empty(),
            "unexpected events {unexpected:?}; events so far: {:#?}",
            self.history
        );
    }

    /// Every event heard so far (taken or not), in order.
    pub fn history(&mut self) -> &[String] {
        while let Ok(event) = self.events.try_recv() {
            let event = self.take(event);
            self.backlog.push_back(event);
        }
        &self.history
    }

    /// Waits for a notification named `what` (e.g. `tools/list_changed`).
    pub async fn notified(&mut self, what: &str) {
        self.next_event(|e| e == what).await;
    }

    /// Every event heard within `window` (for counting; tests wait on events, not on time),
    /// including those still waiting from before.
    pub async fn events_for(&mut self, window: Duration) -> Vec<String> {
        let mut seen: Vec<String> = self.backlog.drain(..).collect();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            let event = self.take(event);
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

    fn params(name: &str, args: Value) -> CallToolRequestParams {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        params
    }

    /// Calls a tool; the result as JSON, or the JSON-RPC error as `Err`.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, rmcp::ServiceError> {
        let result: CallToolResult = self.service.call_tool(Self::params(name, args)).await?;
        Ok(serde_json::to_value(result).expect("result json"))
    }

    /// Calls a tool and also returns the progress token the request carried, as JSON text
    /// (the form `progress <token> <n>` events use). rmcp picks the token (a number, counting
    /// up per client); dropping the future sends `notifications/cancelled`.
    pub async fn call_tracked(
        &self,
        name: &str,
        args: Value,
    ) -> (String, Result<Value, ServiceError>) {
        let request =
            ClientRequest::CallToolRequest(CallToolRequest::new(Self::params(name, args)));
        let peer = self.service.peer();
        let handle = match peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(handle) => handle,
            Err(e) => return ("null".into(), Err(e)),
        };
        let token = serde_json::to_string(&handle.progress_token).expect("token json");
        let mut guard = CancelOnDrop {
            peer: peer.clone(),
            id: Some(handle.id.clone()),
        };
        let answer = handle.await_response().await;
        guard.id = None;
        let result = answer.and_then(|r| match r {
            ServerResult::CallToolResult(result) => {
                Ok(serde_json::to_value(result).expect("result json"))
            }
            _ => Err(ServiceError::UnexpectedResponse),
        });
        (token, result)
    }

    /// Sends a `ping` (it uses up one request id and one progress token of this client).
    pub async fn ping(&self) {
        self.service
            .send_request(ClientRequest::PingRequest(PingRequest::default()))
            .await
            .expect("ping");
    }

    /// `logging/setLevel` with an MCP level name (`debug`, `info`, … `emergency`).
    #[allow(deprecated)]
    pub async fn set_level(&self, level: &str) -> Result<(), ServiceError> {
        let level: rmcp::model::LoggingLevel =
            serde_json::from_value(json!(level)).expect("an MCP logging level");
        self.service
            .set_level(rmcp::model::SetLevelRequestParams::new(level))
            .await
    }

    /// `resources/subscribe` to `uri`.
    #[allow(deprecated)]
    pub async fn subscribe(&self, uri: &str) -> Result<(), ServiceError> {
        self.service
            .subscribe(SubscribeRequestParams::new(uri))
            .await
    }

    /// `resources/unsubscribe` from `uri`.
    #[allow(deprecated)]
    pub async fn unsubscribe(&self, uri: &str) -> Result<(), ServiceError> {
        self.service
            .unsubscribe(UnsubscribeRequestParams::new(uri))
            .await
    }

    /// Sends `notifications/roots/list_changed`.
    pub async fn notify_roots_list_changed(&self) -> Result<(), ServiceError> {
        self.service.notify_roots_list_changed().await
    }

    /// Calls a tool until it succeeds (a backend may still be starting or restarting).
    pub async fn call_eventually(&self, name: &str, args: Value) -> Value {
        eventually(&format!("a successful call of {name}"), WAIT, || async {
            self.call(name, args.clone())
                .await
                .ok()
                .filter(|v| v["isError"] != json!(true))
        })
        .await
    }
}

/// The first text block of a tool result.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// All text blocks of a tool result, one a line.
pub fn all_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The `progress <token> <n>` events among `events`: the steps each token got, in order.
pub fn progress_steps(events: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in events {
        let mut parts = event.split(' ');
        if parts.next() != Some("progress") {
            continue;
        }
        if let (Some(token), Some(n)) = (parts.next(), parts.next()) {
            steps
                .entry(token.to_owned())
                .or_default()
                .push(n.to_owned());
        }
    }
    steps
}

/// `["1", "2", …, "n"]`: the steps of a call that reports `n` progress notifications.
pub fn steps_to(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
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
    /// The `magg serve` command for `config` with extra `args`, its pipes captured.
    pub fn command(config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("magg"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .env("MAGG_LIST_WAIT", "15")
            .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
            .env_remove("MAGG_PRIVATE_KEY")
            .env_remove("MAGG_ALLOW_UNAUTHENTICATED_CHANGES")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Collects the child's stderr lines into a shared log and a channel.
    pub fn collect_stderr(
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
        Self::stdio_full(config, args, env, Client::default_spec()).await
    }

    /// Like [`Magg::stdio`], with a client described by `spec`.
    pub async fn stdio_as(config: &Path, spec: ClientSpec) -> Magg {
        Self::stdio_full(config, &[], &[], spec).await
    }

    async fn stdio_full(
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        spec: ClientSpec,
    ) -> Magg {
        let mut cmd = Self::command(config, args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn magg");
        let (log, _lines) = Self::collect_stderr(&mut child);
        let client = Client::stdio_as(&mut child, spec).await;
        Magg {
            child,
            log,
            url: None,
            stdio: Some(client),
        }
    }

    /// Starts `magg serve --http` (or `--hybrid` when `hybrid`) on a free port.
    pub async fn http(config: &Path, hybrid: bool) -> Magg {
        let mode = if hybrid { "--hybrid" } else { "--http" };
        Self::http_with(config, &[mode, "--host", "127.0.0.1", "--port", "0"], &[]).await
    }

    /// Starts `magg serve` with `args` (which serve HTTP) and environment variables `env`,
    /// and waits until it says where it listens.
    pub async fn http_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Magg {
        let mut cmd = Self::command(config, args);
        cmd.envs(env.iter().copied());
        Self::http_from(cmd).await
    }

    /// Spawns `cmd` (a `magg serve` on HTTP, its stderr piped) and waits for the address it
    /// listens on.
    pub async fn http_from(mut cmd: Command) -> Magg {
        let mut child = cmd.spawn().expect("spawn magg");
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

    /// `http://host:port` of the admin listener (`--admin-port`), as magg logged it.
    pub async fn admin_url(&self) -> String {
        self.wait_for_log("admin endpoints on ").await;
        let line = self
            .log
            .lock()
            .expect("log")
            .iter()
            .find(|l| l.contains("admin endpoints on "))
            .cloned()
            .expect("the admin line");
        let at = line.find("http://").expect("an address") + "http://".len();
        let addr = line[at..].split('/').next().expect("host:port");
        format!("http://{addr}")
    }

    /// The stdio client.
    pub fn client(&mut self) -> &mut Client {
        self.stdio.as_mut().expect("a stdio session")
    }

    /// Connects a new HTTP client session.
    pub async fn http_client(&self) -> Client {
        Client::http(self.url.as_deref().expect("serving HTTP")).await
    }

    /// Connects a new HTTP client session described by `spec`.
    pub async fn http_client_as(&self, spec: ClientSpec) -> Client {
        Client::http_as(self.url.as_deref().expect("serving HTTP"), spec).await
    }

    /// In hybrid mode, connects the stdio client (described by `spec`) to magg's own stdin
    /// and stdout; [`Magg::client`] and [`Magg::take_client`] then return it.
    pub async fn connect_stdio(&mut self, spec: ClientSpec) {
        assert!(
            self.stdio.is_none(),
            "the stdio client is already connected"
        );
        self.stdio = Some(Client::stdio_as(&mut self.child, spec).await);
    }

    /// Takes the stdio client out, so a test can use it and magg's log at the same time.
    pub fn take_client(&mut self) -> Client {
        self.stdio.take().expect("a stdio session")
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
        wait_for_line(&self.log, "magg", needle, 1, limit).await;
    }

    /// How many lines of magg's log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        count_lines(&self.log, needle)
    }

    /// Waits until at least `count` lines of magg's log contain `needle`.
    pub async fn wait_for_log_count(&self, needle: &str, count: usize) {
        wait_for_line(&self.log, "magg", needle, count, WAIT).await;
    }
}

fn count_lines(log: &Mutex<Vec<String>>, needle: &str) -> usize {
    log.lock()
        .expect("log lock")
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

/// Polls `log` until `count` of its lines contain `needle`, failing after `limit`.
async fn wait_for_line(
    log: &Mutex<Vec<String>>,
    who: &str,
    needle: &str,
    count: usize,
    limit: Duration,
) {
    struct Missing<'a> {
        log: &'a Mutex<Vec<String>>,
        who: &'a str,
        needle: &'a str,
        count: usize,
    }
    impl std::fmt::Display for Missing<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let (who, needle, count) = (self.who, self.needle, self.count);
            let log = self.log.lock().expect("log lock").join("\n");
            write!(f, "{who} logging {needle:?} {count} times (log:\n{log}\n)")
        }
    }
    let what = Missing {
        log,
        who,
        needle,
        count,
    };
    eventually(what, limit, || async {
        (count_lines(log, needle) >= count).then_some(())
    })
    .await;
}

/// The rmcp test backend serving streamable HTTP on its own (`--http 127.0.0.1:0`), for
/// configs that reach a backend by URL. Killed on drop.
pub struct RemoteBackend {
    /// The backend process, killed when this is dropped.
    _child: Child,
    /// `http://127.0.0.1:<port>/mcp`.
    pub url: String,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl RemoteBackend {
    /// A config entry reaching this backend by URL under `prefix`.
    pub fn entry(&self, prefix: &str) -> Value {
        json!({"source": "tests/fixtures/test-backend", "prefix": prefix, "uri": self.url})
    }

    /// Waits until the backend's stderr has a line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        wait_for_line(&self.log, "the remote backend", needle, 1, WAIT).await;
    }
}

/// Starts `magg-test-backend --name <name> --http 127.0.0.1:0` and reads its URL.
pub async fn remote_test_backend(name: &str) -> RemoteBackend {
    remote_test_backend_with(name, &[]).await
}

/// [`remote_test_backend`] with extra flags (e.g. `--clock`).
pub async fn remote_test_backend_with(name: &str, extra_args: &[&str]) -> RemoteBackend {
    let mut child = Command::new(bin("magg-test-backend"))
        .args(["--name", name, "--http", "127.0.0.1:0"])
        .args(extra_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn remote backend");
    let (log, _lines) = Magg::collect_stderr(&mut child);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("address line")
        .expect("read")
        .expect("a line");
    let url = line.trim_start_matches("listening on ").trim().to_owned();
    RemoteBackend {
        _child: child,
        url,
        log,
    }
}

/// Runs `magg` with `args` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_cli_env(args, &[])
}

/// Runs `magg` with `args` and extra environment variables: (exit code, stdout, stderr).
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(bin("magg"))
        .args(args)
        .env_remove("MAGG_CONFIG_PATH")
        .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
        .envs(env.iter().copied())
        .output()
        .expect("run magg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `check` gives a value, trying again every 20 ms; fails the test naming `what`
/// after `limit`.
pub async fn eventually<T, F, Fut>(what: impl std::fmt::Display, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `magg serve` on stdio driven with raw lines, for what a well-behaved MCP client never sends.
pub struct RawStdio {
    /// The magg process and its log.
    pub magg: Magg,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl RawStdio {
    /// Starts `magg serve` on `config` with extra environment variables; nothing is sent yet.
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> RawStdio {
        let mut cmd = Magg::command(config, &[]);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn magg");
        let (log, _lines) = Magg::collect_stderr(&mut child);
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        RawStdio {
            magg: Magg {
                child,
                log,
                url: None,
                stdio: None,
            },
            stdin,
            stdout,
        }
    }

    /// Writes `line` and a newline to magg's stdin.
    pub async fn send(&mut self, line: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stdin.write_all(line).await.expect("write to magg");
        self.stdin.write_all(b"\n").await.expect("write to magg");
        self.stdin.flush().await.expect("flush to magg");
    }

    /// The next line magg writes, as JSON.
    pub async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("magg answered nothing in time")
            .expect("read magg's stdout")
            .expect("magg closed its stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("magg wrote non-JSON {line:?}: {e}"))
    }

    /// The next response magg writes (notifications before it are skipped).
    pub async fn response(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message.get("method").is_none() {
                return message;
            }
        }
    }

    /// Sends a request and returns its response.
    pub async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(request.to_string().as_bytes()).await;
        let response = self.response().await;
        assert_eq!(
            response["id"], id,
            "a response to another request: {response}"
        );
        response
    }

    /// Initializes the session as a 2025-11-25 client.
    pub async fn initialize(&mut self) {
        let response = self
            .request(
                json!(0),
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}),
            )
            .await;
        assert!(response["result"]["serverInfo"].is_object(), "{response}");
        self.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }

    /// Calls a tool and returns the whole response.
    pub async fn call(&mut self, id: u64, name: &str, arguments: Value) -> Value {
        self.request(
            json!(id),
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
        .await
    }
}

/// A client whose "LLM" answers every sampling request with one fixed text.
pub struct Sampler {
    /// What the "LLM" answers.
    pub answer: String,
    /// Every sampling request's messages, as JSON text.
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Sampler {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let capabilities = serde_json::from_value(json!({"sampling": {}})).expect("capabilities");
        rmcp::model::ClientConfig::new(
            capabilities,
            rmcp::model::Implementation::new("sampler", "0"),
        )
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
        _context: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, rmcp::ErrorData> {
        self.asked
            .lock()
            .expect("asked")
            .push(serde_json::to_string(&params.messages).unwrap_or_default());
        Ok(serde_json::from_value(json!({
            "model": "test-model",
            "role": "assistant",
            "content": {"type": "text", "text": self.answer},
        }))
        .expect("sampling result"))
    }
}

impl Sampler {
    /// Connects to `magg`'s streamable HTTP endpoint as this client.
    pub async fn connect(
        self,
        magg: &Magg,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, Sampler> {
        use rmcp::ServiceExt;
        install_tls();
        let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(
            magg.url.clone().expect("url"),
        );
        self.serve(transport).await.expect("connect")
    }
}

/// Calls magg's tool `name` with `args` through a client connected with [`Sampler::connect`]:
/// the result's `structuredContent` (Magg's `{"errors", "output"}`).
pub async fn call_sampled(
    client: &rmcp::service::RunningService<rmcp::RoleClient, Sampler>,
    name: &str,
    args: Value,
) -> Value {
    let params = CallToolRequestParams::new(name.to_owned())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    let result = client.call_tool(params).await.expect(name);
    result
        .structured_content
        .clone()
        .expect("structured content")
}

/// A config file laid out as Kubernetes mounts a ConfigMap: `config.json` is a symbolic link to
/// `..data/config.json`, `..data` a link to a timestamped directory, and an update writes a new
/// directory and swaps `..data` to it with one rename (the kubelet's atomic writer).
pub struct ConfigMapDir {
    /// The mounted directory.
    pub dir: tempfile::TempDir,
    /// `<dir>/config.json`, the path magg is given.
    pub path: PathBuf,
    /// The current timestamped directory's name.
    current: String,
    /// How many versions were written.
    version: u32,
}

impl ConfigMapDir {
    /// A mounted ConfigMap whose `config.json` is `config`.
    pub fn new(config: &Value) -> ConfigMapDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        let mut mount = ConfigMapDir {
            dir,
            path,
            current: String::new(),
            version: 0,
        };
        mount.update(config);
        std::os::unix::fs::symlink("..data/config.json", &mount.path).expect("config.json link");
        mount
    }

    /// Publishes a new `config.json` as the kubelet does: a new timestamped directory, a
    /// `..data_tmp` link to it renamed over `..data`, then the old directory removed.
    pub fn update(&mut self, config: &Value) {
        self.version += 1;
        let name = format!("..2026_12_03_08_00_00.{:09}", self.version);
        let fresh = self.dir.path().join(&name);
        std::fs::create_dir(&fresh).expect("timestamped dir");
        std::fs::write(
            fresh.join("config.json"),
            serde_json::to_string_pretty(config).expect("json"),
        )
        .expect("write config.json");
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("..data_tmp link");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("swap ..data");
        let old = std::mem::replace(&mut self.current, name);
        if !old.is_empty() {
            std::fs::remove_dir_all(self.dir.path().join(old)).expect("remove the old version");
        }
    }
}
