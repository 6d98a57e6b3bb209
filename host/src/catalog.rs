//! The merged view of every backend: one immutable [`Snapshot`] of tools, prompts, resources and
//! resource templates under their exposed names, and the map from each exposed name back to the
//! backend and the name it has there.
//!
//! # Design
//! - This is the only place names are mapped. A snapshot is built whole whenever a backend
//!   changes (never patched in place) and swapped in atomically; list requests read the current
//!   snapshot without locks and never fan out to backends.
//! - One merge function per list kind ([`merge_tools`], [`merge_prompts`],
//!   [`merge_resources`], [`merge_templates`]): magg's own items first, then each backend's in
//!   config order, under its prefix; a name already taken is hidden, with a warning. Tool
//!   filters run inside the tools merge.
//! - Tool search ([`search`]): with `tool_search` on, the snapshot also holds an index of its
//!   backends' tools (built once per snapshot, shared with its scoped copies) and the shorter
//!   list tools/list then shows ([`Snapshot::listed_tools`]).
//! - Tools are held as the JSON they are listed as ([`ToolText`], shared with the backend's
//!   copy), so a page of tools/list is written by copying text, and a tool costs about its
//!   size in bytes.

mod search;
mod tools;
mod uri;

use std::{collections::HashMap, sync::Arc, time::Instant};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

pub use self::{
    search::{CALL_TOOL, Found, SEARCH_TOOLS, SearchSettings, ToolIndex, doc_of},
    tools::{ListedTool, PAGE_SIZE, ToolList, page_range},
    uri::{UriTemplate, prefix_uri, split_prefixed_uri},
};
pub use crate::mcp::{ListChanges, MAX_TOOL_NAME};
use crate::{
    auth::access::View,
    backend::Backend,
    config::{Settings, ToolSearch},
    mcp::{OWN_SERVER, ToolText, is_tool_name_char},
    plugins::Plugins,
};

/// Where a call to an exposed tool goes.
#[derive(Debug, Clone)]
pub enum ToolRoute {
    /// One of magg's own tools, by the name magg gives it (a tool filter may list it under
    /// another).
    Own(Arc<str>),
    /// A backend's tool, under the name it has there.
    Backend(Route),
}

impl ToolRoute {
    /// The server that owns the tool (`magg` for magg's own).
    pub fn server(&self) -> &str {
        match self {
            ToolRoute::Own(_) => OWN_SERVER,
            ToolRoute::Backend(route) => &route.backend.name,
        }
    }

    /// The tool's name on its server (magg's own name for magg's own).
    pub fn tool(&self) -> &str {
        match self {
            ToolRoute::Own(name) => name,
            ToolRoute::Backend(route) => &route.name,
        }
    }

    /// The tool's name on its server.
    pub fn original(&self) -> &str {
        match self {
            ToolRoute::Own(name) => name,
            ToolRoute::Backend(route) => &route.name,
        }
    }
}

/// A backend and the name (or URI) an item has there.
#[derive(Debug, Clone)]
pub struct Route {
    /// The backend that serves the item.
    pub backend: Arc<Backend>,
    /// The item's own name (or URI) on that backend.
    pub name: String,
}

/// magg's own tools, resources and resource templates, listed before every backend's.
#[derive(Debug, Default)]
pub struct OwnItems {
    /// Tools.
    pub tools: Vec<Tool>,
    /// Resources (served by magg itself).
    pub resources: Vec<Resource>,
    /// Resource templates (served by magg itself).
    pub templates: Vec<ResourceTemplate>,
    /// Prompts (served by magg itself).
    pub prompts: Vec<Prompt>,
}

/// One immutable, merged view of all backends.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Counts up with every rebuild.
    pub generation: u64,
    /// When the backends' states were read for this snapshot (`None` before the first build):
    /// a backend whose state changed later is not yet reflected in it.
    pub read_at: Option<Instant>,
    /// Every exposed tool, magg's own first, then backends in config order.
    pub tools: ToolList,
    /// Every exposed prompt.
    pub prompts: Vec<Prompt>,
    /// Every exposed resource.
    pub resources: Vec<Resource>,
    /// Every exposed resource template.
    pub templates: Vec<ResourceTemplate>,
    prompt_routes: HashMap<String, Route>,
    resource_routes: HashMap<String, Route>,
    /// Backends by prefix, for prefixed resource URIs (`scheme://prefix/path`).
    prefixes: HashMap<String, Arc<Backend>>,
    /// Templates of backends without a prefix, matched against URIs nothing else claims.
    bare_templates: Vec<(UriTemplate, Arc<Backend>)>,
    /// Backends by server name.
    servers: HashMap<String, Arc<Backend>>,
    /// What this snapshot is cut down to ([`Snapshot::scoped`]); `None` for the whole catalog.
    view: Option<Arc<View>>,
    /// Tool search's settings, index and lists.
    search: search::SearchState,
}

impl Snapshot {
    /// Builds a snapshot from magg's own items and the backends, in config order, running the
    /// tool filters of `plugins` over the tools.
    pub async fn build(
        generation: u64,
        settings: &Settings,
        own: &OwnItems,
        backends: &[Arc<Backend>],
        plugins: &Plugins,
    ) -> Snapshot {
        let mut snapshot = Snapshot::unfiltered(generation, settings, own, backends);
        if plugins.has_filters() {
            let filtered = plugins.filter_tools(snapshot.tools.filter_input()).await;
            snapshot.tools = snapshot.tools.filtered(filtered);
        }
        snapshot
    }

    /// [`Snapshot::build`] without tool filters.
    pub fn unfiltered(
        generation: u64,
        settings: &Settings,
        own: &OwnItems,
        backends: &[Arc<Backend>],
    ) -> Snapshot {
        let read_at = Some(Instant::now());
        let (prompts, prompt_routes) = merge_prompts(settings, own, backends);
        let (resources, resource_routes) = merge_resources(own, backends);
        let (templates, bare_templates) = merge_templates(own, backends);
        let mut prefixes = HashMap::new();
        let mut servers = HashMap::new();
        for backend in backends {
            servers.insert(backend.name.clone(), backend.clone());
            if let Some(prefix) = prefix_of(backend) {
                prefixes.insert(prefix.to_owned(), backend.clone());
            }
        }
        Snapshot {
            generation,
            read_at,
            tools: merge_tools(settings, own, backends),
            prompts,
            resources,
            templates,
            prompt_routes,
            resource_routes,
            prefixes,
            bare_templates,
            servers,
            view: None,
            search: search::SearchState::new(SearchSettings::of(settings)),
        }
    }

    /// This snapshot as a caller limited to `view` sees it: the tools, prompts, resources and
    /// templates it grants; other names are unknown to it, and a resource URI reached through
    /// a server's prefix or template is found only when the view grants it. `changes` says
    /// which of magg's own tools (by magg's name) change servers or the config.
    pub fn scoped(&self, view: &Arc<View>, changes: impl Fn(&str) -> bool) -> Snapshot {
        if self.search.settings.mode != ToolSearch::Off {
            // The scoped copy shares the whole catalog's index.
            self.search_index();
        }
        let tools = self.tools.retained(|tool| match &tool.route {
            ToolRoute::Own(own) => view.tool(tool.text.name(), None, changes(own)),
            ToolRoute::Backend(route) => {
                view.tool(tool.text.name(), Some(&route.backend.name), false)
            }
        });
        let prompt_routes: HashMap<String, Route> = self
            .prompt_routes
            .iter()
            .filter(|(name, route)| view.prompt(name, Some(&route.backend.name)))
            .map(|(name, route)| (name.clone(), route.clone()))
            .collect();
        let prompts = self
            .prompts
            .iter()
            .filter(|p| match self.prompt_routes.get(p.name.as_str()) {
                Some(_) => prompt_routes.contains_key(p.name.as_str()),
                None => view.prompt(&p.name, None),
            })
            .cloned()
            .collect();
        let resource_routes: HashMap<String, Route> = self
            .resource_routes
            .iter()
            .filter(|(uri, route)| view.resource(uri, Some(&route.backend.name)))
            .map(|(uri, route)| (uri.clone(), route.clone()))
            .collect();
        let resources = self
            .resources
            .iter()
            .filter(|r| match self.resource_routes.get(&r.uri) {
                Some(_) => resource_routes.contains_key(&r.uri),
                None => view.resource(&r.uri, None),
            })
            .cloned()
            .collect();
        let templates = self
            .templates
            .iter()
            .filter(|t| view.resource(&t.uri_template, self.template_server(&t.uri_template)))
            .cloned()
            .collect();
        Snapshot {
            generation: self.generation,
            read_at: self.read_at,
            tools,
            prompts,
            resources,
            templates,
            prompt_routes,
            resource_routes,
            prefixes: self.prefixes.clone(),
            bare_templates: self.bare_templates.clone(),
            servers: self.servers.clone(),
            view: Some(view.clone()),
            search: self.search.scoped(),
        }
    }

    /// The server of an exposed resource template (`None`: magg's own).
    fn template_server(&self, template: &str) -> Option<&str> {
        if let Some((prefix, _)) = split_prefixed_uri(template)
            && let Some(backend) = self.prefixes.get(prefix)
        {
            return Some(&backend.name);
        }
        self.bare_templates
            .iter()
            .find(|(t, _)| t.source() == template)
            .map(|(_, backend)| backend.name.as_str())
    }

    /// Where a call to the exposed tool `name` goes.
    pub fn tool(&self, name: &str) -> Option<&ToolRoute> {
        self.tools.get(name).map(|t| &t.route)
    }

    /// Where a `prompts/get` for the exposed prompt `name` goes.
    pub fn prompt(&self, name: &str) -> Option<&Route> {
        self.prompt_routes.get(name)
    }

    /// Where a `resources/read` of the exposed URI goes: a listed resource, a prefixed URI of a
    /// backend with a prefix, or a URI matching a template of a backend without one.
    pub fn resource(&self, uri: &str) -> Option<Route> {
        if let Some(route) = self.resource_routes.get(uri) {
            return Some(route.clone());
        }
        let route = self.unlisted_resource(uri)?;
        match &self.view {
            Some(view) if !view.resource(uri, Some(&route.backend.name)) => None,
            _ => Some(route),
        }
    }

    /// Where a resource URI that no server lists goes: by a server's prefix or template.
    fn unlisted_resource(&self, uri: &str) -> Option<Route> {
        if let Some((prefix, original)) = split_prefixed_uri(uri)
            && let Some(backend) = self.prefixes.get(prefix)
        {
            return Some(Route {
                backend: backend.clone(),
                name: original,
            });
        }
        self.bare_templates
            .iter()
            .find(|(template, _)| template.matches(uri))
            .map(|(_, backend)| Route {
                backend: backend.clone(),
                name: uri.to_owned(),
            })
    }

    /// The backend whose prefix is `prefix`.
    pub fn backends_by_prefix(&self, prefix: &str) -> Option<&Arc<Backend>> {
        self.prefixes.get(prefix)
    }

    /// The backend named `server`, if it is configured and enabled.
    pub fn server(&self, server: &str) -> Option<&Arc<Backend>> {
        self.servers.get(server)
    }

    /// Exposed tool names that look like `name`, best first, for "did you mean" hints.
    pub fn similar_tools(&self, name: &str) -> Vec<&str> {
        let needle = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .tools
            .iter()
            .map(|t| t.text.name())
            .filter_map(|candidate| {
                let lower = candidate.to_ascii_lowercase();
                if lower.ends_with(&needle) || needle.ends_with(&lower) || lower.contains(&needle) {
                    Some((0, candidate))
                } else {
                    let d = edit_distance(&lower, &needle);
                    (d <= 3).then_some((d, candidate))
                }
            })
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }

    /// Which lists differ from `older`.
    pub fn changes_since(&self, older: &Snapshot) -> ListChanges {
        ListChanges {
            tools: !self.tools.same_listing(&older.tools),
            prompts: self.prompts != older.prompts,
            resources: self.resources != older.resources || self.templates != older.templates,
        }
    }
}

/// A backend's prefix, if it has a non-empty one.
fn prefix_of(backend: &Backend) -> Option<&str> {
    backend.config.prefix.as_deref().filter(|p| !p.is_empty())
}

/// The tools list: magg's own, then each backend's under its prefix (made to follow MCP's tool
/// name rule); a name already taken is hidden, with a warning.
pub fn merge_tools(settings: &Settings, own: &OwnItems, backends: &[Arc<Backend>]) -> ToolList {
    let mut list = ToolList::default();
    for tool in &own.tools {
        let text = ToolText::new(tool);
        let route = ToolRoute::Own(text.name_arc().clone());
        list.push(text, route);
    }
    for backend in backends {
        let prefix = prefix_of(backend);
        let state = backend.state();
        for tool in state.tools.iter() {
            let exposed = exposed_tool_name(prefix, &settings.prefix_sep, tool.name());
            if exposed != exposed_name(prefix, &settings.prefix_sep, tool.name()) {
                tracing::warn!(
                    server = %backend.name,
                    "tool `{}` would be exposed as `{}`, which breaks MCP's tool name rule \
                     (at most {MAX_TOOL_NAME} characters of A-Z a-z 0-9 _ . -); exposing it as `{exposed}`",
                    tool.name(),
                    exposed_name(prefix, &settings.prefix_sep, tool.name()),
                );
            }
            if let Some(existing) = list.get(&exposed) {
                warn_collision("tool", &exposed, &backend.name, existing.route.server());
                continue;
            }
            let text = if exposed == tool.name() {
                tool.clone()
            } else {
                tool.renamed(&exposed)
            };
            let route = ToolRoute::Backend(Route {
                backend: backend.clone(),
                name: tool.name().to_owned(),
            });
            list.push(text, route);
        }
    }
    list
}

/// The prompts list and where each goes: magg's own (no route: magg answers them), then each
/// backend's under its prefix.
pub fn merge_prompts(
    settings: &Settings,
    own: &OwnItems,
    backends: &[Arc<Backend>],
) -> (Vec<Prompt>, HashMap<String, Route>) {
    let mut prompts = own.prompts.clone();
    let mut routes: HashMap<String, Route> = HashMap::new();
    for backend in backends {
        let prefix = prefix_of(backend);
        for prompt in backend.state().prompts.iter() {
            let exposed = exposed_name(prefix, &settings.prefix_sep, &prompt.name);
            if own.prompts.iter().any(|p| p.name == exposed) {
                warn_collision("prompt", &exposed, &backend.name, "magg");
                continue;
            }
            if let Some(existing) = routes.get(&exposed) {
                warn_collision("prompt", &exposed, &backend.name, &existing.backend.name);
                continue;
            }
            let mut prompt = prompt.clone();
            let original = std::mem::replace(&mut prompt.name, exposed.clone());
            routes.insert(
                exposed,
                Route {
                    backend: backend.clone(),
                    name: original,
                },
            );
            prompts.push(prompt);
        }
    }
    (prompts, routes)
}

/// The resources list and where each goes: magg's own, then each backend's under its prefix
/// (`scheme://prefix/path`).
pub fn merge_resources(
    own: &OwnItems,
    backends: &[Arc<Backend>],
) -> (Vec<Resource>, HashMap<String, Route>) {
    let mut resources = own.resources.clone();
    let mut routes: HashMap<String, Route> = HashMap::new();
    for backend in backends {
        let prefix = prefix_of(backend);
        for resource in backend.state().resources.iter() {
            let exposed = match prefix {
                Some(prefix) => prefix_uri(&resource.uri, prefix),
                None => resource.uri.clone(),
            };
            if let Some(existing) = routes.get(&exposed) {
                warn_collision("resource", &exposed, &backend.name, &existing.backend.name);
                continue;
            }
            let mut resource = resource.clone();
            let original = std::mem::replace(&mut resource.uri, exposed.clone());
            routes.insert(
                exposed,
                Route {
                    backend: backend.clone(),
                    name: original,
                },
            );
            resources.push(resource);
        }
    }
    (resources, routes)
}

/// The resource templates list: magg's own, then each backend's under its prefix; templates
/// of backends without a prefix are also kept for matching URIs nothing else claims.
pub fn merge_templates(
    own: &OwnItems,
    backends: &[Arc<Backend>],
) -> (Vec<ResourceTemplate>, Vec<(UriTemplate, Arc<Backend>)>) {
    let mut templates = own.templates.clone();
    let mut bare = Vec::new();
    for backend in backends {
        let prefix = prefix_of(backend);
        for template in backend.state().templates.iter() {
            let mut template = template.clone();
            match prefix {
                Some(prefix) => template.uri_template = prefix_uri(&template.uri_template, prefix),
                None => bare.push((UriTemplate::new(&template.uri_template), backend.clone())),
            }
            templates.push(template);
        }
    }
    (templates, bare)
}

/// `{prefix}{sep}{name}`, or `name` for a backend without a prefix.
pub fn exposed_name(prefix: Option<&str>, sep: &str, name: &str) -> String {
    match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}{sep}{name}"),
        _ => name.to_owned(),
    }
}

/// The exposed name of a tool, made to follow MCP's tool name rule: characters outside
/// `[A-Za-z0-9_.-]` become `_`, and a name longer than 64 characters is shortened and given a
/// hash of the full name so two long names stay distinct.
pub fn exposed_tool_name(prefix: Option<&str>, sep: &str, name: &str) -> String {
    let full = exposed_name(prefix, sep, name);
    let mut clean: String = full
        .chars()
        .map(|c| if is_tool_name_char(c) { c } else { '_' })
        .collect();
    if clean.len() > MAX_TOOL_NAME {
        let hash = fnv1a(full.as_bytes());
        clean.truncate(MAX_TOOL_NAME - 9);
        clean = format!("{clean}_{hash:08x}");
    }
    clean
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn warn_collision(kind: &str, exposed: &str, server: &str, owner: &str) {
    tracing::warn!(
        server,
        "{kind} `{exposed}` of server `{server}` is hidden: `{owner}` already exposes that name; \
         give one of the servers a distinct `prefix` in the config"
    );
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::is_valid_tool_name;

    #[test]
    fn names_are_prefixed_with_the_separator() {
        assert_eq!(exposed_name(Some("time"), "_", "now"), "time_now");
        assert_eq!(exposed_name(Some("time"), ".", "now"), "time.now");
        assert_eq!(exposed_name(None, "_", "now"), "now");
        assert_eq!(exposed_name(Some(""), "_", "now"), "now");
    }

    #[test]
    fn tool_names_follow_the_mcp_rule() {
        assert_eq!(
            exposed_tool_name(Some("fs"), "_", "read file"),
            "fs_read_file"
        );
        let long = "x".repeat(80);
        let a = exposed_tool_name(Some("p"), "_", &long);
        let b = exposed_tool_name(Some("q"), "_", &long);
        assert_eq!(a.len(), MAX_TOOL_NAME);
        assert_ne!(a, b, "long names keep distinct hashes");
        assert!(is_valid_tool_name(&a));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("echo", "echo"), 0);
        assert_eq!(edit_distance("echo", "ech"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
