//! The kit tools (`magg_load_kit`, `magg_unload_kit`, `magg_list_kits`, `magg_kit_info`) and the
//! kit resources. Kit directories are rescanned on every call, so a kit file dropped into a
//! `kit.d/` folder is seen without a restart.

use std::{sync::Arc, time::Duration};

use indexmap::IndexMap;
use rmcp::model::{CallToolResult, JsonObject};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{failure, success};
use crate::{
    backend::Status,
    hub::Hub,
    kits::{self, Kit, KitError},
};

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

fn name_arg(tool: &str, args: JsonObject) -> Result<String, String> {
    serde_json::from_value::<Named>(Value::Object(args))
        .map(|n| n.name)
        .map_err(|e| format!("Invalid arguments for {tool}: {e}"))
}

/// Every kit in the kit directories (beside the config, in MAGG_PATH, and shipped with magg).
fn discover(hub: &Hub) -> (IndexMap<String, Kit>, Vec<KitError>) {
    let dirs = kits::kit_dirs(&hub.config().path, kits::shipped_dir().as_deref());
    kits::discover(&dirs)
}

/// `magg_load_kit`: adds the kit's servers to the config and starts them.
pub async fn load_kit(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let name = match name_arg("magg_load_kit", args) {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    let (found, errors) = discover(hub);
    let Some(kit) = found.get(&name) else {
        let broken = errors
            .iter()
            .find(|e| e.kit_name().as_deref() == Some(name.as_str()));
        return failure(match broken {
            Some(error) => format!("Kit '{name}' could not be read: {error}"),
            None => format!(
                "Kit '{name}' not found. Available kits: {}. Call magg_list_kits to see them.",
                found.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    };
    let result = hub
        .update_config(|config| kits::load_kit(config, kit, None).map_err(|e| e.to_string()))
        .await;
    let report = match result {
        Ok((report, _diff)) => report,
        Err(e) => return failure(e),
    };
    // Report exactly which of the added servers came up and which did not.
    let limit = hub
        .settings
        .backend_init_timeout
        .unwrap_or(Duration::from_secs(300));
    let mut mounted = Vec::new();
    let mut failed = serde_json::Map::new();
    for server in report.added.iter().chain(&report.tagged) {
        match hub.wait_started(server, limit).await {
            Some(Status::Running) => mounted.push(server.clone()),
            Some(Status::Failed { reason }) => {
                failed.insert(server.clone(), json!(reason));
            }
            Some(other) => {
                failed.insert(server.clone(), json!(other.label()));
            }
            None => {} // disabled in the kit
        }
    }
    let body = json!({
        "action": "kit_loaded",
        "kit": name,
        "message": report.loaded_message(),
        "details": report.to_json(),
        "mounted": mounted,
        "failed": failed,
    });
    if failed.is_empty() {
        success(body)
    } else {
        super::response(
            json!({"errors": [format!("Kit '{name}' was loaded, but {} of its servers failed to start: {}", failed.len(), failed.keys().cloned().collect::<Vec<_>>().join(", "))], "output": body}),
            true,
        )
    }
}

/// `magg_unload_kit`: removes the kit and the servers only it owned.
pub async fn unload_kit(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let name = match name_arg("magg_unload_kit", args) {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    match hub
        .update_config(|config| kits::unload_kit(config, &name).map_err(|e| e.to_string()))
        .await
    {
        Ok((report, _)) => success(json!({
            "action": "kit_unloaded",
            "kit": name,
            "message": report.unloaded_message(),
            "details": report.to_json(),
        })),
        Err(e) => failure(e),
    }
}

/// `magg_list_kits`.
pub fn list_kits(hub: &Arc<Hub>) -> CallToolResult {
    let (found, errors) = discover(hub);
    success(kits::list_kits(&hub.config(), &found, &errors))
}

/// `magg_kit_info`.
pub fn kit_info(hub: &Arc<Hub>, args: JsonObject) -> CallToolResult {
    let name = match name_arg("magg_kit_info", args) {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    let (found, _) = discover(hub);
    match kits::kit_info(&hub.config(), &found, &name) {
        Some(info) => success(info),
        None => failure(format!("Kit '{name}' not found")),
    }
}

/// `magg://kits/all`: the loaded kits, as kit files (Magg serves only loaded kits here).
pub fn all_kits_json(hub: &Hub) -> Value {
    let config = hub.config();
    let (found, _) = discover(hub);
    Value::Object(
        found
            .iter()
            .filter(|(name, _)| config.kits.contains_key(*name))
            .map(|(name, kit)| (name.clone(), kit.resource_json()))
            .collect(),
    )
}

/// `magg://kit/{name}`: one loaded kit, as a kit file.
pub fn kit_json(hub: &Hub, name: &str) -> Result<Value, String> {
    if !hub.config().kits.contains_key(name) {
        return Err(format!("Kit '{name}' not found in loaded kits"));
    }
    discover(hub)
        .0
        .get(name)
        .map(Kit::resource_json)
        .ok_or_else(|| format!("Kit '{name}' is loaded but its file is gone"))
}
