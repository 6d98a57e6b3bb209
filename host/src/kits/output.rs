//! The JSON that Magg's kit tools and `magg kit list --json` return, built
//! from the discovered kits and the config's `"kits"`.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{Kit, KitError};
use crate::config::Config;

/// Magg's `list_kits` tool result: `{"kits": {name: entry}, "summary":
/// {"total", "loaded", "available"}}`. Each entry is [`Kit::summary`]; the
/// loaded kits (the config's `"kits"`) come first, in the config's order,
/// then the others in discovery order. A loaded kit with no kit file gets
/// `"path": "unknown"`, no servers and the description recorded in the
/// config; a kit file listed in `errors` gets Magg's `"Failed to load kit
/// metadata"` entry.
pub fn list_kits(config: &Config, kits: &IndexMap<String, Kit>, errors: &[KitError]) -> Value {
    let mut entries = Map::new();
    for (name, info) in &config.kits {
        let entry = match kits.get(name) {
            Some(kit) => kit.summary(true),
            None => match broken(errors, name) {
                Some(error) => failed_entry(error, true),
                None => missing_entry(name, info).summary(true),
            },
        };
        entries.insert(name.clone(), entry);
    }
    for (name, kit) in kits {
        if !entries.contains_key(name) {
            entries.insert(name.clone(), kit.summary(false));
        }
    }
    for error in errors {
        if let Some(name) = error.kit_name()
            && !entries.contains_key(&name)
        {
            entries.insert(name, failed_entry(error, false));
        }
    }
    let loaded = entries
        .values()
        .filter(|entry| entry.get("loaded") == Some(&Value::Bool(true)))
        .count();
    let mut summary = Map::new();
    summary.insert("total".into(), entries.len().into());
    summary.insert("loaded".into(), loaded.into());
    summary.insert("available".into(), (entries.len() - loaded).into());
    let mut out = Map::new();
    out.insert("kits".into(), Value::Object(entries));
    out.insert("summary".into(), Value::Object(summary));
    Value::Object(out)
}

/// Magg's `kit_info` tool result for `name` ([`Kit::details`]): loaded when
/// the config lists it. A loaded kit with no kit file shows as an empty
/// kit. `None` when the kit is neither loaded nor found (Magg: "Kit 'x' not
/// found").
pub fn kit_info(config: &Config, kits: &IndexMap<String, Kit>, name: &str) -> Option<Value> {
    let loaded = config.kits.contains_key(name);
    match (kits.get(name), config.kits.get(name)) {
        (Some(kit), _) => Some(kit.details(loaded)),
        (None, Some(info)) => Some(missing_entry(name, info).details(true)),
        (None, None) => None,
    }
}

/// `magg kit list --json`: `{"kits": {name: {"path", "loaded",
/// "description", "servers": [sorted names]}}}` for the discovered kits (a
/// broken file has `"description": null` and no servers), then
/// `{"path": null, "loaded": true, "description": null, "servers": []}` for
/// loaded kits that have no kit file.
pub fn cli_list_json(config: &Config, kits: &IndexMap<String, Kit>, errors: &[KitError]) -> Value {
    let entry = |path: Value, loaded: bool, description: Value, servers: Vec<String>| {
        let mut entry = Map::new();
        entry.insert("path".into(), path);
        entry.insert("loaded".into(), loaded.into());
        entry.insert("description".into(), description);
        let servers = servers.into_iter().map(Value::String).collect();
        entry.insert("servers".into(), Value::Array(servers));
        Value::Object(entry)
    };
    let mut entries = Map::new();
    for (name, kit) in kits {
        let mut servers: Vec<String> = kit.servers.keys().cloned().collect();
        servers.sort();
        let description = kit.description.as_deref().unwrap_or_default();
        entries.insert(
            name.clone(),
            entry(
                kit.path.to_string_lossy().into(),
                config.kits.contains_key(name),
                description.into(),
                servers,
            ),
        );
    }
    for error in errors {
        if let Some(name) = error.kit_name()
            && !entries.contains_key(&name)
        {
            let loaded = config.kits.contains_key(&name);
            let path = error.path().to_string_lossy().into();
            entries.insert(name, entry(path, loaded, Value::Null, Vec::new()));
        }
    }
    for name in config.kits.keys() {
        if !entries.contains_key(name) {
            entries.insert(
                name.clone(),
                entry(Value::Null, true, Value::Null, Vec::new()),
            );
        }
    }
    let mut out = Map::new();
    out.insert("kits".into(), Value::Object(entries));
    Value::Object(out)
}

/// The error for kit file `name`, if it was broken.
fn broken<'a>(errors: &'a [KitError], name: &str) -> Option<&'a KitError> {
    errors
        .iter()
        .find(|error| error.kit_name().as_deref() == Some(name))
}

/// Magg's entry for a kit file that could not be read.
fn failed_entry(error: &KitError, loaded: bool) -> Value {
    let mut entry = Map::new();
    entry.insert("loaded".into(), loaded.into());
    entry.insert("path".into(), error.path().to_string_lossy().into());
    entry.insert("description".into(), "Failed to load kit metadata".into());
    entry.insert("author".into(), Value::Null);
    entry.insert("version".into(), Value::Null);
    entry.insert("keywords".into(), Value::Array(Vec::new()));
    entry.insert("servers".into(), Value::Array(Vec::new()));
    Value::Object(entry)
}

/// A loaded kit with no kit file, as Magg shows it: empty, at path
/// `"unknown"`, with the description the config recorded.
fn missing_entry(name: &str, info: &Value) -> Kit {
    let mut kit = Kit::new(name);
    kit.path = "unknown".into();
    kit.description = info
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    kit
}
