//! The plugins built into magg: the search providers and the configure rules of
//! `plugins/rust/`, compiled to components by `build.rs` and embedded in the binary. They serve
//! with no plugins directory; a plugin of the same name in the plugins directory replaces the
//! bundled one, and `plugins.<name>.enabled: false` turns one off.
//!
//! Each bundled search provider is granted the one host it needs unless its config entry sets
//! `allow_hosts` itself.
//!
//! They are all search providers and configure rules, which only `magg_search_servers` and
//! `magg_smart_configure` (and its prompt) use, so they load on first use: a magg that never
//! searches pays neither their start-up time nor their memory. A tool filter or routing hook
//! bundled here would have to load at start instead (see `registry::scan`).

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The plugins built into this binary: (name, component), in name order.
pub(crate) fn all() -> Vec<(String, &'static [u8])> {
    let mut all: Vec<(String, &'static [u8])> = EMBEDDED
        .iter()
        .map(|(name, wasm)| ((*name).to_owned(), *wasm))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The hosts a bundled plugin may reach when its config entry does not say.
pub(crate) fn default_hosts(name: &str) -> &'static [&'static str] {
    match name {
        "mcp-registry" => &["registry.modelcontextprotocol.io"],
        "npm-search" => &["registry.npmjs.org"],
        "glama-search" => &["glama.ai"],
        "github-search" => &["api.github.com"],
        _ => &[],
    }
}

/// The names of the bundled plugins.
pub fn names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(name, _)| *name).collect()
}

/// The kinds of a bundled plugin, as its exports say once loaded.
pub(crate) fn kinds(name: &str) -> Vec<&'static str> {
    match name {
        "smart-configure" => vec![super::Kind::Configure.as_str()],
        _ => vec![super::Kind::SearchProvider.as_str()],
    }
}
