//! Asking the client's LLM through sampling (`sampling/createMessage`), for the tools that
//! refine their answer with it (`magg_smart_configure`, `magg_analyze_servers`), as Magg does.

// Sampling is the 2025-11-25 way to ask the client's LLM; rmcp marks it deprecated for the
// stateless era, which most clients do not speak yet.
#![allow(deprecated)]

use rmcp::{RoleServer, model::CreateMessageRequestParams, service::Peer};
use serde_json::{Value, json};

/// The calling client, when it offers sampling.
pub fn client_llm() -> Option<Peer<RoleServer>> {
    let peer = crate::relay::current_origin().map(|o| o.session.peer().clone())?;
    peer.peer_info()
        .is_some_and(|info| info.capabilities.sampling.is_some())
        .then_some(peer)
}

/// Asks the client's LLM `prompt`; its text answer, or why there is none.
pub async fn ask(peer: &Peer<RoleServer>, prompt: &str, max_tokens: u32) -> Result<String, String> {
    let params: CreateMessageRequestParams = serde_json::from_value(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": max_tokens,
        "temperature": 0.7,
    }))
    .map_err(|e| format!("could not build the sampling request: {e}"))?;
    let result = peer
        .create_message(params)
        .await
        .map_err(|e| format!("the client's LLM did not answer (sampling failed): {e}"))?;
    let text = serde_json::to_value(&result)
        .ok()
        .and_then(|v| {
            let block = match v.get("content")? {
                Value::Array(blocks) => blocks.first()?.clone(),
                other => other.clone(),
            };
            block.get("text")?.as_str().map(str::to_owned)
        })
        .unwrap_or_default();
    Ok(text)
}

/// The first JSON object in `text` (an LLM may wrap it in prose or a code fence).
pub fn extract_json(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(text.trim()) {
        return Some(v);
    }
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    serde_json::from_str(text.get(start..=end)?).ok()
}
