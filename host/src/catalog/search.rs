//! Tool search over a snapshot: the index of its backends' tools (built once per snapshot and
//! shared with every scoped copy of it), queries as a scoped caller sees them, and which tools
//! tools/list shows while tool search is on.

use std::{
    borrow::Cow,
    collections::HashSet,
    sync::{Arc, OnceLock},
};

use serde_json::Value;

use super::{ListedTool, Snapshot, ToolList, ToolRoute};
use crate::{
    auth::access::glob,
    config::{Settings, ToolSearch},
    search::{Doc, Index},
};

/// What the tool search settings say, as a snapshot keeps them.
#[derive(Debug, Clone, Default)]
pub struct SearchSettings {
    /// `off`, `on` or `auto`.
    pub mode: ToolSearch,
    /// Above how many backend tools `auto` searches.
    pub threshold: usize,
    /// Globs of exposed names listed even while searching.
    pub pinned: Arc<[String]>,
    /// The names of magg's `search_tools` and `call_tool` tools, hidden when `auto` lists
    /// every tool.
    pub own_names: [String; 2],
    /// The separator between a server's prefix and a tool's name.
    pub prefix_sep: String,
}

impl SearchSettings {
    /// The tool search settings of `settings`.
    pub fn of(settings: &Settings) -> SearchSettings {
        SearchSettings {
            mode: settings.tool_search,
            threshold: settings.tool_search_threshold,
            pinned: settings.tool_search_pinned.clone().into(),
            own_names: [
                settings.prefixed(SEARCH_TOOLS),
                settings.prefixed(CALL_TOOL),
            ],
            prefix_sep: settings.prefix_sep.clone(),
        }
    }
}

/// The name of the search tool, after magg's own prefix.
pub const SEARCH_TOOLS: &str = "search_tools";
/// The name of the call tool, after magg's own prefix.
pub const CALL_TOOL: &str = "call_tool";

/// The index of a snapshot's backend tools, and the exposed name of each document.
#[derive(Debug, Default)]
pub struct ToolIndex {
    index: Index,
    names: Vec<Arc<str>>,
}

impl ToolIndex {
    /// Indexes the backend tools of `tools` (magg's own are always listed, so never searched).
    fn build(tools: &ToolList, prefix_sep: &str) -> ToolIndex {
        let mut names = Vec::new();
        let mut docs = Vec::new();
        for tool in tools.iter() {
            let ToolRoute::Backend(route) = &tool.route else {
                continue;
            };
            names.push(tool.text.name_arc().clone());
            docs.push(doc_of(
                tool,
                &route.backend.name,
                route.backend.config.prefix.as_deref(),
                prefix_sep,
            ));
        }
        ToolIndex {
            index: Index::build(&docs),
            names,
        }
    }

    /// How many tools are indexed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no tool is indexed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The bytes the index holds on the heap (its terms and postings, and the names' handles).
    pub fn heap_bytes(&self) -> usize {
        self.index.heap_bytes() + self.names.capacity() * std::mem::size_of::<Arc<str>>()
    }
}

/// A tool as the index reads it: its exposed name without its server's prefix, its server,
/// and its definition.
pub fn doc_of(tool: &ListedTool, server: &str, prefix: Option<&str>, prefix_sep: &str) -> Doc {
    let exposed = tool.text.name();
    let name = prefix
        .filter(|p| !p.is_empty())
        .and_then(|p| exposed.strip_prefix(p)?.strip_prefix(prefix_sep))
        .unwrap_or(exposed);
    let json: Value = serde_json::from_str(&tool.text.json()).unwrap_or(Value::Null);
    Doc::of_tool(name, server, prefix, &json)
}

/// The parts of a snapshot tool search keeps: shared by the whole catalog and its scoped
/// copies (the index), or made per snapshot on first use (the lists).
#[derive(Debug, Default)]
pub(super) struct SearchState {
    pub(super) settings: SearchSettings,
    /// The index of the whole catalog's backend tools.
    pub(super) index: Arc<OnceLock<ToolIndex>>,
    /// How many backend tools this snapshot holds.
    backend_tools: OnceLock<usize>,
    /// What tools/list shows while searching: magg's own tools and the pinned ones.
    listed: OnceLock<ToolList>,
    /// What tools/list shows under `auto` below the threshold: every tool but the two search
    /// tools.
    unsearched: OnceLock<ToolList>,
}

impl SearchState {
    /// The state of a new snapshot (a new index).
    pub(super) fn new(settings: SearchSettings) -> SearchState {
        SearchState {
            settings,
            ..SearchState::default()
        }
    }

    /// The state of a scoped copy: the same index, its own lists.
    pub(super) fn scoped(&self) -> SearchState {
        SearchState {
            settings: self.settings.clone(),
            index: self.index.clone(),
            ..SearchState::default()
        }
    }
}

/// One tool search result.
#[derive(Debug, Clone)]
pub struct Found<'a> {
    /// The tool.
    pub tool: &'a ListedTool,
    /// How well it matched; only the order means something.
    pub score: f32,
}

impl Snapshot {
    /// The tool search index of the catalog's backend tools, built on first use (a scoped
    /// copy shares the index its whole catalog built before scoping).
    pub fn search_index(&self) -> &ToolIndex {
        self.search
            .index
            .get_or_init(|| ToolIndex::build(&self.tools, &self.search.settings.prefix_sep))
    }

    /// The best `limit` backend tools for `query` among those this snapshot shows, best
    /// first.
    pub fn search_tools(&self, query: &str, limit: usize) -> Vec<Found<'_>> {
        let index = self.search_index();
        let scoped = self.view.is_some();
        let hits = index.index.search(query, limit, |doc| {
            !scoped || self.tools.get(&index.names[doc as usize]).is_some()
        });
        hits.into_iter()
            .filter_map(|hit| {
                let tool = self.tools.get(&index.names[hit.doc as usize])?;
                Some(Found {
                    tool,
                    score: hit.score,
                })
            })
            .collect()
    }

    /// The candidates a tool ranker plugin orders for `query`: the best `count` of the
    /// built-in ranking, then, while fewer, the other backend tools this snapshot shows in
    /// catalog order (so with `count` or fewer tools, a ranker sees them all).
    pub fn search_candidates(&self, query: &str, count: usize) -> Vec<Found<'_>> {
        let mut found = self.search_tools(query, count);
        if found.len() < count {
            let seen: HashSet<&str> = found.iter().map(|f| f.tool.text.name()).collect();
            let rest: Vec<&ListedTool> = self
                .tools
                .iter()
                .filter(|t| matches!(t.route, ToolRoute::Backend(_)))
                .filter(|t| !seen.contains(t.text.name()))
                .take(count - found.len())
                .collect();
            found.extend(rest.into_iter().map(|tool| Found { tool, score: 0.0 }));
        }
        found
    }

    /// How many backend tools this snapshot shows.
    pub fn backend_tool_count(&self) -> usize {
        *self.search.backend_tools.get_or_init(|| {
            self.tools
                .iter()
                .filter(|t| matches!(t.route, ToolRoute::Backend(_)))
                .count()
        })
    }

    /// Whether tools/list is cut down to magg's own, the pinned and the added tools: tool
    /// search is `on`, or `auto` with more backend tools than its threshold.
    pub fn searching(&self) -> bool {
        match self.search.settings.mode {
            ToolSearch::Off => false,
            ToolSearch::On => true,
            ToolSearch::Auto => self.backend_tool_count() > self.search.settings.threshold,
        }
    }

    /// The tools tools/list shows to a session that added `added` (by exposed name) with
    /// tool search: every tool while not searching (without the search tools themselves
    /// under `auto`); while searching magg's own tools, the pinned tools and the added ones,
    /// in catalog order.
    pub fn listed_tools(&self, added: &[Arc<str>]) -> Cow<'_, ToolList> {
        let settings = &self.search.settings;
        if settings.mode == ToolSearch::Off {
            return Cow::Borrowed(&self.tools);
        }
        let own_name = |tool: &ListedTool| matches!(&tool.route, ToolRoute::Own(own) if settings.own_names.iter().any(|n| **n == **own));
        if !self.searching() {
            return Cow::Borrowed(
                self.search
                    .unsearched
                    .get_or_init(|| self.tools.retained(|t| !own_name(t))),
            );
        }
        let listed = self.search.listed.get_or_init(|| {
            self.tools.retained(|t| {
                matches!(t.route, ToolRoute::Own(_))
                    || settings
                        .pinned
                        .iter()
                        .any(|p| glob(p.as_bytes(), t.text.name().as_bytes()))
            })
        });
        let added: HashSet<&str> = added
            .iter()
            .map(|n| &**n)
            .filter(|n| listed.get(n).is_none() && self.tools.get(n).is_some())
            .collect();
        if added.is_empty() {
            return Cow::Borrowed(listed);
        }
        Cow::Owned(
            self.tools
                .retained(|t| listed.get(t.text.name()).is_some() || added.contains(t.text.name())),
        )
    }
}
