//! What `deploy/` and the `Containerfile` promise: every manifest is valid for Kubernetes, magg
//! started with exactly the Deployment's arguments and environment answers the probes and
//! listens where the Service sends traffic, a ConfigMap-mounted config is reloaded when
//! Kubernetes swaps it, the static binary serves HTTP backends and plugins, and the minimal
//! image builds from it.
//!
//! The manifests are read with PyYAML and checked with `kubernetes-validate` (both pinned in
//! `tests/python/requirements.txt`). The image is built with podman where it is installed, and
//! the static binary is the one `tests/run.sh` builds
//! (`cargo build --release -p magg --target x86_64-unknown-linux-musl`); without either, the
//! test that needs it says so and passes.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use serde_json::{Value, json};

use crate::{
    harness::{
        Client, ConfigMapDir, Magg, TempConfig, WAIT, eventually, magg_body, plugin,
        remote_test_backend, run_cli_env, target_dir, test_backend, text,
    },
    raw_http::Conn,
};

/// The Kubernetes versions the manifests are checked against (schemas bundled with
/// `kubernetes-validate`, no network needed).
const KUBERNETES_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_owned()
}

/// The Kubernetes resources of `deploy/`, each file's documents in order (kustomization.yaml,
/// which is kustomize's, not a resource, left out).
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("deploy"))
        .expect("deploy/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// Every document of the YAML `files`, as JSON (read by PyYAML).
fn read_yaml(files: &[PathBuf]) -> Vec<Value> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
             json.dump(docs, sys.stdout)",
        ])
        .args(files)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "PyYAML could not read {files:?} (pip install -r tests/python/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

/// The one resource of `kind` in `docs`.
fn resource<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let mut found = docs.iter().filter(|d| d["kind"] == json!(kind));
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in deploy/"));
    assert!(found.next().is_none(), "more than one {kind} in deploy/");
    first
}

#[test]
fn the_manifests_are_valid_kubernetes_resources() {
    let files = manifests();
    assert!(files.len() >= 5, "deploy/ has its manifests: {files:?}");
    for version in KUBERNETES_VERSIONS {
        let out = std::process::Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "-k", version])
            .args(&files)
            .output()
            .expect("run python3");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !said.contains("No module named kubernetes_validate"),
            "kubernetes-validate is missing: pip install -r tests/python/requirements.txt"
        );
        assert!(
            out.status.success(),
            "deploy/ against Kubernetes {version}:\n{said}"
        );
        assert_eq!(
            said.matches(" passed for resource ").count(),
            files.len(),
            "one resource per file, each checked:\n{said}"
        );
    }
    // The optional resources point at the Deployment and the Service.
    let docs = read_yaml(&files);
    let deployment = resource(&docs, "Deployment");
    let service = resource(&docs, "Service");
    let hpa = resource(&docs, "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], json!("Deployment"));
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    let ingress = resource(&docs, "Ingress");
    for rule in ingress["spec"]["rules"].as_array().expect("rules") {
        for path in rule["http"]["paths"].as_array().expect("paths") {
            let backend = &path["backend"]["service"];
            assert_eq!(backend["name"], service["metadata"]["name"], "{path}");
            let ports = service["spec"]["ports"].as_array().expect("ports");
            assert!(
                ports.iter().any(|p| p["name"] == backend["port"]["name"]),
                "the Ingress names a port of the Service: {path}"
            );
        }
    }
    // Everything kustomization.yaml lists is there.
    let kustomization = read_yaml(&[root().join("deploy/kustomization.yaml")]);
    for listed in kustomization[0]["resources"].as_array().expect("resources") {
        let name = listed.as_str().expect("a file name");
        assert!(files.contains(&root().join("deploy").join(name)), "{name}");
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("the Deployment's args have no {flag}: {args:?}"));
    args.get(at + 1).expect("a value after the flag")
}

/// A GET of `path` on `port` (loopback): (status, body); `None` while nothing listens there.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let reply = Conn::open(&format!("http://127.0.0.1:{port}"))
        .await
        .send("GET", path, &[("Host", "magg.example")], "")
        .await;
    Some((reply.status, reply.text()))
}

/// Every string literal `"MAGG_…"` in magg's source: the environment variables it reads.
fn variables_magg_reads() -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read host/src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("read a source file");
                for (at, _) in source.match_indices("\"MAGG_") {
                    let rest = &source[at + 1..];
                    if let Some(end) = rest.find('"') {
                        found.push(rest[..end].to_owned());
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&root().join("host/src"), &mut found);
    found
}

#[tokio::test]
async fn magg_runs_as_the_deployment_says_and_answers_its_probes_and_service() {
    let docs = read_yaml(&manifests());
    let deployment = resource(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    let container = &containers[0];

    // Safe defaults: a non-root user (the image's), no privilege, a read-only root.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], json!(true));
    assert_eq!(security["allowPrivilegeEscalation"], json!(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], json!(true));
    let containerfile =
        std::fs::read_to_string(root().join("Containerfile")).expect("read the Containerfile");
    let user = format!(
        "USER {}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert!(
        containerfile.contains(&user),
        "the minimal image runs as the Deployment's user ({user})"
    );
    for kind in ["cpu", "memory"] {
        assert!(
            container["resources"]["requests"][kind].is_string(),
            "a {kind} request"
        );
    }

    // Ports: each named port of the container is a port magg is told to listen on; here they
    // are moved to free ports of this machine, in the arguments and the probes alike.
    let args: Vec<String> = serde_json::from_value(container["args"].clone()).expect("args");
    let mut ports = std::collections::BTreeMap::new();
    for port in container["ports"].as_array().expect("ports") {
        let name = port["name"].as_str().expect("a named port").to_owned();
        let number = port["containerPort"].as_u64().expect("containerPort");
        ports.insert(name, (number.to_string(), free_port()));
    }
    assert_eq!(
        flag(&args, "--port"),
        ports["mcp"].0,
        "--port is the mcp port"
    );
    assert_eq!(
        flag(&args, "--admin-port"),
        ports["admin"].0,
        "--admin-port is the admin port"
    );
    let mut local_args = args.clone();
    for arg in local_args.iter_mut() {
        if let Some((_, local)) = ports.values().find(|(number, _)| number == arg) {
            *arg = local.to_string();
        }
    }

    // Volumes: the ConfigMap laid out as the kubelet mounts it, emptyDirs as empty directories.
    let configmap = resource(&docs, "ConfigMap");
    let secret = resource(&docs, "Secret");
    let mut mounts = Vec::new();
    let mut keep = Vec::new();
    let mut configmap_servers = None;
    for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("a volume for each mount");
        let dir = if volume["configMap"].is_object() {
            assert_eq!(volume["configMap"]["name"], configmap["metadata"]["name"]);
            let config: Value = serde_json::from_str(
                configmap["data"]["config.json"]
                    .as_str()
                    .expect("config.json in the ConfigMap"),
            )
            .expect("the ConfigMap's config.json is JSON");
            configmap_servers = config["servers"].as_object().map(|s| s.len());
            let mounted = ConfigMapDir::new(&config);
            let dir = mounted.dir.path().to_owned();
            keep.push(mounted.dir);
            dir
        } else {
            assert!(volume["emptyDir"].is_object(), "{volume}");
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().to_owned();
            keep.push(dir);
            path
        };
        mounts.push((
            mount["mountPath"].as_str().expect("mountPath").to_owned(),
            dir,
        ));
    }
    let local_path = |value: &str| -> String {
        for (at, dir) in &mounts {
            if let Some(rest) = value.strip_prefix(at.as_str()) {
                return format!("{}{rest}", dir.display());
            }
        }
        value.to_owned()
    };

    // Environment: values as they are, paths into the volumes, the Secret's key a real one
    // (the file holds a placeholder to replace, see deploy/secret.yaml).
    let home = tempfile::tempdir().expect("home");
    let key_dir = home.path().join("key");
    let (code, _, err) = run_cli_env(
        &[
            "--config",
            &home.path().join("config.json").display().to_string(),
            "auth",
            "init",
            "--key-path",
            &key_dir.display().to_string(),
        ],
        &[("HOME", &home.path().display().to_string())],
    );
    assert_eq!(code, 0, "{err}");
    let key = std::fs::read_to_string(key_dir.join("magg.key")).expect("the key");
    let mut env = Vec::new();
    for var in container["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("name").to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            local_path(value)
        } else {
            let from = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(from["name"], secret["metadata"]["name"], "{var}");
            let field = from["key"].as_str().expect("key");
            assert!(
                secret["stringData"][field].is_string(),
                "the Secret has {field}"
            );
            assert_eq!(name, "MAGG_PRIVATE_KEY");
            key.clone()
        };
        env.push((name, value));
    }
    let reads = variables_magg_reads();
    for (name, _) in &env {
        assert!(
            !name.starts_with("MAGG_") || reads.contains(name),
            "the Deployment sets {name}, which magg does not read"
        );
    }
    let cache = env
        .iter()
        .find(|(n, _)| n == "MAGG_CACHE_DIR")
        .map(|(_, v)| v.clone())
        .expect("MAGG_CACHE_DIR is set to a writable volume");
    assert!(
        mounts
            .iter()
            .any(|(_, dir)| cache.starts_with(&*dir.display().to_string())),
        "MAGG_CACHE_DIR is on a volume"
    );

    // The settings as magg reads them from that environment.
    let shown = std::process::Command::new(crate::harness::bin("magg"))
        .args(["config", "show"])
        .env_clear()
        .env("HOME", home.path())
        .envs(env.iter().map(|(n, v)| (n, v)))
        .output()
        .expect("magg config show");
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("config show prints JSON");
    assert_eq!(shown["settings"]["read_only"], json!(true), "{shown}");
    assert_eq!(
        shown["exists"],
        json!(true),
        "the ConfigMap's file is the config: {shown}"
    );
    assert_eq!(
        shown["servers"].as_object().map(|s| s.len()),
        configmap_servers,
        "{shown}"
    );

    // magg as the container starts it: the image's entrypoint, the Deployment's args, and the
    // container's environment only (plus the image's HOME).
    let mut cmd = tokio::process::Command::new(crate::harness::bin("magg"));
    cmd.args(&local_args)
        .env_clear()
        .env("HOME", home.path())
        .envs(env.iter().map(|(n, v)| (n, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let magg = Magg::http_from(cmd).await;

    // The probes, on the ports they name.
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get_ = &container[probe]["httpGet"];
        let path = get_["path"].as_str().expect("path");
        let port = ports[get_["port"].as_str().expect("a named port")].1;
        eventually(
            format!("{probe} GET {path} answering 200"),
            WAIT,
            || async { get(port, path).await.filter(|(status, _)| *status == 200) },
        )
        .await;
    }

    // Prometheus scrapes the port and path the pod's annotations name.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    let scrape_port = annotations["prometheus.io/port"].as_str().expect("a port");
    let (_, scrape_local) = ports
        .values()
        .find(|(number, _)| number == scrape_port)
        .expect("the scrape port is a container port");
    let scrape_path = annotations["prometheus.io/path"].as_str().expect("a path");
    let (status, metrics) = get(*scrape_local, scrape_path)
        .await
        .expect("the admin listener");
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("# TYPE "), "Prometheus text: {metrics}");

    // The Service sends its traffic to ports magg listens on: MCP on the mcp port (a token
    // is required, since the Secret's key is set), the admin endpoints on the admin port.
    let service = resource(&docs, "Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    for port in service["spec"]["ports"].as_array().expect("ports") {
        let target = port["targetPort"].as_str().expect("a named targetPort");
        let (_, local) = ports
            .get(target)
            .unwrap_or_else(|| panic!("targetPort {target} is a container port"));
        let path = if target == "mcp" { "/mcp" } else { "/healthz" };
        let (status, body) = get(*local, path)
            .await
            .unwrap_or_else(|| panic!("nothing listens on the {target} port"));
        let expected = if target == "mcp" { 401 } else { 200 };
        assert_eq!(status, expected, "{target}: {body}");
    }
    // The volumes last as long as magg.
    drop((magg, keep));
}

#[tokio::test]
async fn a_configmap_update_reaches_a_running_magg() {
    let mut mount = ConfigMapDir::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let mut magg = Magg::stdio_with(&mount.path, &[], &[("MAGG_READ_ONLY", "true")]).await;
    let pid = text(&magg.client().call_eventually("tb_pid", json!({})).await).to_owned();

    // The kubelet publishes a new version: config.json itself is never written, only the
    // `..data` link is swapped.
    mount.update(&json!({"servers": {
        "tb": test_backend("tb", "tb", &[]),
        "two": test_backend("two", "two", &[]),
    }}));
    let client = magg.client();
    assert_eq!(
        text(
            &client
                .call_eventually("two_echo", json!({"text": "swapped"}))
                .await
        ),
        "swapped"
    );
    assert_eq!(
        text(&client.call("tb_pid", json!({})).await.expect("pid")),
        pid,
        "the unchanged server kept its process"
    );
    let status = magg_body(&client.call("magg_status", json!({})).await.expect("status"));
    assert_eq!(status["output"]["servers"]["mounted"], json!(2), "{status}");
}

/// The static (musl) magg `tests/run.sh` builds, when it has been built.
fn static_magg(test: &str) -> Option<PathBuf> {
    let path = target_dir().join("x86_64-unknown-linux-musl/release/magg");
    if !path.exists() {
        eprintln!(
            "{test}: skipped, no static magg at {} (cargo build --release -p magg --target \
             x86_64-unknown-linux-musl)",
            path.display()
        );
        return None;
    }
    Some(path)
}

/// Whether the ELF file at `path` asks for a dynamic loader (has a `PT_INTERP` header).
fn needs_a_loader(path: &Path) -> bool {
    let elf = std::fs::read(path).expect("read the binary");
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF file");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let mut phoff = [0; 8];
    phoff.copy_from_slice(&elf[0x20..0x28]);
    let (phoff, size, count) = (
        u64::from_le_bytes(phoff) as usize,
        u16_at(0x36),
        u16_at(0x38),
    );
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes([elf[at], elf[at + 1], elf[at + 2], elf[at + 3]]) == 3 // PT_INTERP
    })
}

#[tokio::test]
async fn the_static_binary_serves_http_backends_and_plugins() {
    let Some(magg_bin) = static_magg("the_static_binary_serves_http_backends_and_plugins") else {
        return;
    };
    assert!(
        !needs_a_loader(&magg_bin),
        "{} is statically linked",
        magg_bin.display()
    );
    assert!(
        needs_a_loader(&crate::harness::bin("magg")),
        "the check can tell"
    );

    // An HTTP backend, through a WebAssembly plugin that renames one of its tools.
    let remote = remote_test_backend("tb").await;
    let config = TempConfig::new(&json!({
        "servers": {"tb": remote.entry("tb")},
        "plugins": {"tool-filter": {"settings": {"rename": {"tb_add": "tb_sum"}}}},
    }));
    let dir = config.plugins_dir();
    std::fs::copy(plugin("tool-filter"), dir.join("tool-filter.wasm")).expect("copy plugin");
    let mut cmd = tokio::process::Command::new(&magg_bin);
    cmd.args(["serve", "--config"])
        .arg(&config.path)
        .args(["--http", "--host", "127.0.0.1", "--port", "0"])
        .env_clear()
        .env("RUST_LOG", "info")
        .env("HOME", config.dir.path())
        .env("MAGG_CACHE_DIR", target_dir().join("test-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let magg = Magg::http_from(cmd).await;
    let client: Client = magg.http_client().await;
    eventually("tb_sum listed", WAIT, || async {
        client
            .tool_names()
            .await
            .contains(&"tb_sum".to_owned())
            .then_some(())
    })
    .await;
    let sum = client
        .call("tb_sum", json!({"a": 2, "b": 3}))
        .await
        .expect("tb_sum");
    assert_eq!(text(&sum), "5");
}

#[test]
fn the_minimal_image_builds_from_the_static_binary() {
    let test = "the_minimal_image_builds_from_the_static_binary";
    let Some(magg_bin) = static_magg(test) else {
        return;
    };
    if std::process::Command::new("podman")
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("{test}: skipped, podman is not installed (apt-get install podman)");
        return;
    }
    // The `build` stage's /out, made here: the image is built with no base image to pull.
    let stage = tempfile::tempdir().expect("temp dir");
    let out = stage.path().join("out");
    std::fs::create_dir_all(out.join("home")).expect("out/home");
    std::fs::create_dir_all(out.join("tmp")).expect("out/tmp");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(out.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod out/tmp");
    std::fs::copy(&magg_bin, out.join("magg")).expect("copy magg");
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        out.join("ca-certificates.crt"),
    )
    .expect("the system's CA certificates (apt-get install ca-certificates)");
    let context = tempfile::tempdir().expect("empty build context");
    let tag = format!("localhost/magg-test:{}", std::process::id());
    let built = std::process::Command::new("podman")
        .arg("build")
        .arg("--build-context")
        .arg(format!("build={}", stage.path().display()))
        .args([
            "--layers=false",
            "--target",
            "magg",
            "--tag",
            &tag,
            "--file",
        ])
        .arg(root().join("Containerfile"))
        .arg(context.path())
        .output()
        .expect("run podman build");
    assert!(
        built.status.success(),
        "podman build failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let inspect = std::process::Command::new("podman")
        .args(["image", "inspect", &tag])
        .output()
        .expect("run podman image inspect");
    let _ = std::process::Command::new("podman")
        .args(["rmi", "--force", &tag])
        .output();
    assert!(inspect.status.success(), "podman image inspect");
    let images: Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    let image = &images[0];
    let config = &image["Config"];
    assert_eq!(config["User"], json!("65532:65532"), "{config}");
    assert_eq!(config["Entrypoint"], json!(["/magg"]), "{config}");
    let docs = read_yaml(&manifests());
    let container = &resource(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        config["Cmd"], container["args"],
        "the image's command is the Deployment's"
    );
    for port in ["8000/tcp", "9090/tcp"] {
        assert!(config["ExposedPorts"][port].is_object(), "{port}: {config}");
    }
    let size = image["Size"].as_u64().expect("Size");
    let binary = std::fs::metadata(&magg_bin).expect("binary").len();
    eprintln!(
        "{test}: image {:.1} MiB, of which the static magg {:.1} MiB",
        size as f64 / 1048576.0,
        binary as f64 / 1048576.0
    );
    assert!(
        size < binary + 2 * 1024 * 1024,
        "the image holds magg and little else ({size} bytes, magg {binary})"
    );
}
