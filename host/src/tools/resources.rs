//! magg's own resources: the servers in its config as JSON (`magg://servers/all`,
//! `magg://server/{name}`) and its kits (`magg://kits/all`, `magg://kit/{name}`), under the
//! configured self prefix as the URI scheme, as Magg serves them. Servers are shown with their
//! `env` and `transport.headers` values masked ([`ServerConfig::masked`]).

use rmcp::{
    ErrorData as McpError,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::Value;

use crate::{
    config::{ServerConfig, Settings},
    hub::Hub,
};

/// magg's own resources and resource templates.
pub fn own_resources(settings: &Settings) -> (Vec<Resource>, Vec<ResourceTemplate>) {
    let scheme = scheme(settings);
    (
        vec![
            Resource::new(format!("{scheme}://servers/all"), "all_servers")
                .with_description("Every server in magg's config, as in the config file (env and header values shown as ***)")
                .with_mime_type("application/json"),
            Resource::new(format!("{scheme}://kits/all"), "all_kits")
                .with_description("Every kit magg can load, and whether it is loaded")
                .with_mime_type("application/json"),
        ],
        vec![
            ResourceTemplate::new(format!("{scheme}://server/{{name}}"), "server")
                .with_description("One server's config, by name (env and header values shown as ***)")
                .with_mime_type("application/json"),
            ResourceTemplate::new(format!("{scheme}://kit/{{name}}"), "kit")
                .with_description("One kit's description and servers, by name")
                .with_mime_type("application/json"),
        ],
    )
}

fn scheme(settings: &Settings) -> &str {
    if settings.self_prefix.is_empty() {
        "magg"
    } else {
        &settings.self_prefix
    }
}

/// One server's file form with its secrets masked.
fn shown(server: &ServerConfig) -> Value {
    server.masked().to_json()
}

/// Reads one of magg's own resources; `None` when `uri` is not one of them.
pub fn read_own(hub: &Hub, uri: &str) -> Option<Result<ReadResourceResult, McpError>> {
    let rest = uri
        .strip_prefix(scheme(&hub.settings))?
        .strip_prefix("://")?;
    let config = hub.config();
    let value = match rest.split_once('/') {
        Some(("servers", "all")) => Ok(Value::Object(
            config
                .servers
                .iter()
                .map(|(name, s)| (name.clone(), shown(s)))
                .collect(),
        )),
        Some(("server", name)) => config
            .servers
            .get(name)
            .map(shown)
            .ok_or_else(|| format!("Server '{name}' not found in configuration")),
        Some(("kits", "all")) => Ok(super::kits::all_kits_json(hub)),
        Some(("kit", name)) => super::kits::kit_json(hub, name),
        _ => return None,
    };
    Some(match value {
        Ok(value) => Ok(ReadResourceResult::new(vec![
            ResourceContents::TextResourceContents {
                uri: uri.to_owned(),
                mime_type: Some("application/json".into()),
                text: value.to_string(),
                meta: None,
            },
        ])),
        Err(message) => Err(McpError::resource_not_found(message, None)),
    })
}
