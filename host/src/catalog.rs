//! The merged view of every backend: one immutable [`Snapshot`] of tools, prompts, resources and
//! resource templates under their exposed names, and the map from each exposed name back to the
//! backend and the name it has there.
//!
//! This is the only place names are mapped. A snapshot is rebuilt whole whenever a backend
//! changes (never patched in place) and swapped in atomically; list requests read the current
//! snapshot without locks and never fan out to backends.

mod uri;

use std::{collections::HashMap, sync::Arc};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

pub use self::uri::{UriTemplate, prefix_uri, split_prefixed_uri};
pub use crate::mcp::{ListChanges, MAX_TOOL_NAME};
use crate::{
    backend::Backend,
    config::Settings,
    mcp::{OWN_SERVER, is_tool_name_char, is_valid_tool_name},
    plugins::FilterTool,
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
}

/// One immutable, merged view of all backends.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Counts up with every rebuild.
    pub generation: u64,
    /// Every exposed tool, magg's own first, then backends in config order.
    pub tools: Vec<Tool>,
    /// Every exposed prompt.
    pub prompts: Vec<Prompt>,
    /// Every exposed resource.
    pub resources: Vec<Resource>,
    /// Every exposed resource template.
    pub templates: Vec<ResourceTemplate>,
    tool_routes: HashMap<String, ToolRoute>,
    prompt_routes: HashMap<String, Route>,
    resource_routes: HashMap<String, Route>,
    /// Backends by prefix, for prefixed resource URIs (`scheme://prefix/path`).
    prefixes: HashMap<String, Arc<Backend>>,
    /// Templates of backends without a prefix, matched against URIs nothing else claims.
    bare_templates: Vec<(UriTemplate, Arc<Backend>)>,
    /// Backends by server name.
    servers: HashMap<String, Arc<Backend>>,
}

impl Snapshot {
    /// Builds a snapshot from magg's own items and the backends, in config order.
    pub fn build(
        generation: u64,
        settings: &Settings,
        own: &OwnItems,
        backends: &[Arc<Backend>],
    ) -> Snapshot {
        let mut snap = Snapshot {
            generation,
            resources: own.resources.clone(),
            templates: own.templates.clone(),
            ..Snapshot::default()
        };
        let own = &own.tools;
        for tool in own {
            snap.tool_routes.insert(
                tool.name.to_string(),
                ToolRoute::Own(Arc::from(tool.name.as_ref())),
            );
            snap.tools.push(tool.clone());
        }
        for backend in backends {
            snap.servers.insert(backend.name.clone(), backend.clone());
            let prefix = backend.config.prefix.as_deref().filter(|p| !p.is_empty());
            if let Some(prefix) = prefix {
                snap.prefixes.insert(prefix.to_owned(), backend.clone());
            }
            let state = backend.state();
            for tool in state.tools.iter() {
                let exposed = exposed_tool_name(prefix, &settings.prefix_sep, &tool.name);
                if exposed != exposed_name(prefix, &settings.prefix_sep, &tool.name) {
                    tracing::warn!(
                        server = %backend.name,
                        "tool `{}` would be exposed as `{}`, which breaks MCP's tool name rule \
                         (at most {MAX_TOOL_NAME} characters of A-Z a-z 0-9 _ . -); exposing it as `{exposed}`",
                        tool.name,
                        exposed_name(prefix, &settings.prefix_sep, &tool.name),
                    );
                }
                if let Some(existing) = snap.tool_routes.get(&exposed) {
                    warn_collision("tool", &exposed, &backend.name, existing_owner(existing));
                    continue;
                }
                let mut tool = tool.clone();
                let original = std::mem::replace(&mut tool.name, exposed.clone().into());
                snap.tool_routes.insert(
                    exposed,
                    ToolRoute::Backend(Route {
                        backend: backend.clone(),
                        name: original.into_owned(),
                    }),
                );
                snap.tools.push(tool);
            }
            for prompt in state.prompts.iter() {
                let exposed = exposed_name(prefix, &settings.prefix_sep, &prompt.name);
                if let Some(existing) = snap.prompt_routes.get(&exposed) {
                    warn_collision("prompt", &exposed, &backend.name, &existing.backend.name);
                    continue;
                }
                let mut prompt = prompt.clone();
                let original = std::mem::replace(&mut prompt.name, exposed.clone());
                snap.prompt_routes.insert(
                    exposed,
                    Route {
                        backend: backend.clone(),
                        name: original,
                    },
                );
                snap.prompts.push(prompt);
            }
            for resource in state.resources.iter() {
                let exposed = match prefix {
                    Some(prefix) => prefix_uri(&resource.uri, prefix),
                    None => resource.uri.clone(),
                };
                if let Some(existing) = snap.resource_routes.get(&exposed) {
                    warn_collision("resource", &exposed, &backend.name, &existing.backend.name);
                    continue;
                }
                let mut resource = resource.clone();
                let original = std::mem::replace(&mut resource.uri, exposed.clone());
                snap.resource_routes.insert(
                    exposed,
                    Route {
                        backend: backend.clone(),
                        name: original,
                    },
                );
                snap.resources.push(resource);
            }
            for template in state.templates.iter() {
                let mut template = template.clone();
                match prefix {
                    Some(prefix) => {
                        template.uri_template = prefix_uri(&template.uri_template, prefix)
                    }
                    None => snap
                        .bare_templates
                        .push((UriTemplate::new(&template.uri_template), backend.clone())),
                }
                snap.templates.push(template);
            }
        }
        snap
    }

    /// Where a call to the exposed tool `name` goes.
    pub fn tool(&self, name: &str) -> Option<&ToolRoute> {
        self.tool_routes.get(name)
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

    /// The server that owns the exposed tool `name` (`magg` for magg's own tools).
    pub fn tool_server(&self, name: &str) -> Option<&str> {
        self.tool_routes.get(name).map(existing_owner)
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
            .map(|t| t.name.as_ref())
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

    /// The tools as tool filters see them: each with its server (`magg` for magg's own) and
    /// its name on that server.
    pub fn filter_input(&self) -> Vec<FilterTool> {
        self.tools
            .iter()
            .filter_map(|tool| {
                let (server, original) = match self.tool_routes.get(tool.name.as_ref())? {
                    ToolRoute::Own(own) => (OWN_SERVER.to_owned(), own.to_string()),
                    ToolRoute::Backend(route) => (route.backend.name.clone(), route.name.clone()),
                };
                Some(FilterTool {
                    server,
                    original_name: original,
                    name: tool.name.to_string(),
                    description: tool.description.as_ref().map(|d| d.to_string()),
                    input_schema: serde_json::to_string(&tool.input_schema)
                        .unwrap_or_else(|_| "{}".to_owned()),
                })
            })
            .collect()
    }

    /// Keeps only the tools the filters returned (matched by server and original name), in the
    /// order returned, with the names and descriptions they gave. A new name that breaks MCP's
    /// tool name rule, or that another tool already has, keeps the tool under its old name.
    pub fn apply_filtered(&mut self, filtered: Vec<FilterTool>) {
        let mut by_key: HashMap<(String, String), (Tool, ToolRoute)> = HashMap::new();
        for tool in std::mem::take(&mut self.tools) {
            let Some(route) = self.tool_routes.remove(tool.name.as_ref()) else {
                continue;
            };
            let key = match &route {
                ToolRoute::Own(own) => (OWN_SERVER.to_owned(), own.to_string()),
                ToolRoute::Backend(r) => (r.backend.name.clone(), r.name.clone()),
            };
            by_key.insert(key, (tool, route));
        }
        for out in filtered {
            let Some((mut tool, route)) = by_key.remove(&(out.server, out.original_name)) else {
                continue;
            };
            if out.name != tool.name {
                if !is_valid_tool_name(&out.name) {
                    tracing::warn!(
                        "a tool filter renamed `{}` to `{}`, which breaks MCP's tool name rule; keeping `{}`",
                        tool.name,
                        out.name,
                        tool.name
                    );
                } else if self.tool_routes.contains_key(&out.name)
                    || by_key.values().any(|(t, _)| t.name == out.name)
                {
                    tracing::warn!(
                        "a tool filter renamed `{}` to `{}`, which another tool has; keeping `{}`",
                        tool.name,
                        out.name,
                        tool.name
                    );
                } else {
                    tool.name = out.name.into();
                }
            }
            tool.description = out.description.map(Into::into);
            if self.tool_routes.contains_key(tool.name.as_ref()) {
                continue;
            }
            self.tool_routes.insert(tool.name.to_string(), route);
            self.tools.push(tool);
        }
    }

    /// Which lists differ from `older`.
    pub fn changes_since(&self, older: &Snapshot) -> ListChanges {
        ListChanges {
            tools: self.tools != older.tools,
            prompts: self.prompts != older.prompts,
            resources: self.resources != older.resources || self.templates != older.templates,
        }
    }
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

fn existing_owner(route: &ToolRoute) -> &str {
    match route {
        ToolRoute::Own(_) => OWN_SERVER,
        ToolRoute::Backend(route) => &route.backend.name,
    }
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
