//! HTTPS: `magg serve --http --tls-cert FILE --tls-key FILE` with a self-signed certificate
//! made by `openssl`, driven by the official Python SDK trusting that certificate; plain HTTP
//! to the same port gets no HTTP answer; unusable files stop magg with an error naming them.

use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{
    harness::{Magg, TempConfig, WAIT, run_cli, test_backend},
    sdk::python_client,
};

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key, written into `dir`:
/// (certificate, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[tokio::test]
async fn magg_serves_https_and_a_plain_http_client_gets_no_answer() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let (cert, key) = self_signed(config.dir.path());
    let (cert_arg, key_arg) = (cert.to_string_lossy(), key.to_string_lossy());
    let args = [
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ];
    let magg = Magg::http_with(&config.path, &args, &[]).await;
    let url = magg.url.clone().expect("url");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let ca = cert.to_string_lossy().into_owned();
    let sdk_url = url.clone();
    let (ok, output) =
        tokio::task::spawn_blocking(move || python_client(&["https", &sdk_url, &ca]))
            .await
            .expect("join");
    assert!(ok, "{output}");

    let authority = url.trim_start_matches("https://").trim_end_matches("/mcp");
    let mut plain = TcpStream::connect(authority).await.expect("connect");
    let request = format!("GET /mcp HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    plain.write_all(request.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut got))
        .await
        .expect("magg closes the connection");
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn tls_files_must_come_in_pairs_and_be_usable() {
    let config = TempConfig::new(&json!({"servers": {}}));
    let path = config.path.to_string_lossy().into_owned();
    let (cert, key) = self_signed(config.dir.path());
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    let serve = ["serve", "--http", "--port", "0", "--config", &path];

    let (code, _, stderr) = run_cli(&[&serve[..], &["--tls-cert", &cert]].concat());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");

    let missing = config.dir.path().join("missing.pem");
    let missing = missing.to_string_lossy();
    let (code, _, stderr) =
        run_cli(&[&serve[..], &["--tls-cert", &missing, "--tls-key", &key]].concat());
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("TLS certificate {missing}")),
        "{stderr}"
    );

    // The certificate given as the key: a file that holds no private key.
    let (code, _, stderr) =
        run_cli(&[&serve[..], &["--tls-cert", &cert, "--tls-key", &cert]].concat());
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("TLS private key {cert}")),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
