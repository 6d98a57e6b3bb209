//! JSON-RPC errors of the MCP protocol itself, over raw HTTP: a request for a method magg serves
//! whose params do not fit is invalid-params (-32602) naming what is wrong, and only a method
//! magg does not serve is method-not-found (-32601).

use serde_json::{Value, json};

use crate::{
    harness::{Magg, TempConfig, test_backend},
    raw_http::{Conn, Reply},
};

const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

/// Sends a request in `session` and returns its JSON-RPC error object.
async fn error_of(conn: &mut Conn, session: &str, id: i64, method: &str, params: Value) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if !params.is_null() {
        request["params"] = params;
    }
    let message = message_with_id(&conn.post(Some(session), &request).await, id);
    assert!(
        message["error"].is_object(),
        "{method}: expected an error, got {message}"
    );
    message["error"].clone()
}

/// The JSON-RPC message with `id` in a reply.
fn message_with_id(reply: &Reply, id: i64) -> Value {
    reply
        .messages()
        .into_iter()
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no message with id {id} in:\n{reply}"))
}

#[tokio::test]
async fn malformed_params_of_a_known_method_are_invalid_params_not_method_not_found() {
    let config = TempConfig::new(&json!({"servers": {"tb": test_backend("tb", "tb", &[])}}));
    let magg = Magg::http(&config.path, false).await;
    let mut conn = Conn::open(magg.url.as_deref().expect("url")).await;
    let session = conn.open_session().await;

    let no_name = error_of(
        &mut conn,
        &session,
        2,
        "tools/call",
        json!({"arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(no_name["code"], json!(INVALID_PARAMS), "{no_name}");
    let message = no_name["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tools/call") && message.contains("name"),
        "says which method and which field: {no_name}"
    );

    let no_params = error_of(&mut conn, &session, 3, "tools/call", Value::Null).await;
    assert_eq!(no_params["code"], json!(INVALID_PARAMS), "{no_params}");

    let loud = error_of(
        &mut conn,
        &session,
        4,
        "logging/setLevel",
        json!({"level": "loud"}),
    )
    .await;
    assert_eq!(loud["code"], json!(INVALID_PARAMS), "{loud}");
    let message = loud["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("loud") && message.contains("debug"),
        "names the bad level and the good ones: {loud}"
    );

    let bad_uri = error_of(&mut conn, &session, 5, "resources/read", json!({"uri": 7})).await;
    assert_eq!(bad_uri["code"], json!(INVALID_PARAMS), "{bad_uri}");

    // A method magg does not serve is still method-not-found, and names the method.
    let unknown = error_of(&mut conn, &session, 6, "tools/frobnicate", json!({})).await;
    assert_eq!(unknown["code"], json!(METHOD_NOT_FOUND), "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tools/frobnicate"),
        "{unknown}"
    );

    // The session goes on serving well-formed requests.
    let reply = conn
        .post(
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel", "params": {"level": "info"}}),
        )
        .await;
    let ok = message_with_id(&reply, 7);
    assert!(ok["result"].is_object(), "{ok}");
}
