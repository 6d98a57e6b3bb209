//! What `deploy/` and the `Containerfile` promise: a ConfigMap-mounted config is reloaded when
//! Kubernetes swaps it.

use serde_json::json;

use crate::harness::{ConfigMapDir, Magg, magg_body, test_backend, text};

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
