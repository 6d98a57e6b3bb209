//! The tools of a snapshot: each as the JSON text it is listed as, where calls to it go, and
//! an index by exposed name. Pages of tools/list are written from the text (for clients on
//! stdio), or read back into rmcp's type (for rmcp's frontends).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, OnceLock},
};

use rmcp::{ErrorData as McpError, model::Tool};

use super::ToolRoute;
use crate::{
    mcp::{ToolText, is_valid_tool_name},
    plugins::FilterTool,
};

/// Tools per page of tools/list.
pub const PAGE_SIZE: usize = 1000;

/// Which items of a list of `len` the page at `cursor` (a `nextCursor` magg handed out, or
/// none for the first page) holds, and the cursor of the page after it.
pub fn page_range(
    len: usize,
    cursor: Option<&str>,
) -> Result<(std::ops::Range<usize>, Option<String>), McpError> {
    let start = match cursor {
        None | Some("") => 0,
        Some(c) => c
            .strip_prefix("magg:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                McpError::invalid_params(
                    format!(
                        "Invalid cursor {c:?}: pass the nextCursor of the previous page unchanged"
                    ),
                    None,
                )
            })?,
    };
    let start = start.min(len);
    let end = (start + PAGE_SIZE).min(len);
    let next = (end < len).then(|| format!("magg:{end}"));
    Ok((start..end, next))
}

/// A page of tools/list, made piece by piece: see [`ToolList::page_pieces`].
pub struct PagePieces<'a> {
    tools: &'a [ListedTool],
    /// How many of `tools` are written.
    done: usize,
    next: Option<String>,
    started: bool,
    finished: bool,
}

impl PagePieces<'_> {
    /// The next piece of the page's `result` object: at least one tool, and further tools
    /// while the piece is shorter than `size` bytes; none once the page is whole.
    pub fn next_piece(&mut self, size: usize) -> Option<String> {
        if self.finished {
            return None;
        }
        let rest = &self.tools[self.done..];
        let wanted: usize = rest
            .iter()
            .map(|t| t.text.json_len() + 1)
            .scan(0usize, |total, len| {
                let before = *total;
                *total += len;
                (before < size).then_some(len)
            })
            .sum();
        let mut out = String::with_capacity(wanted + 64);
        if !self.started {
            self.started = true;
            out.push_str("{\"tools\":[");
        }
        let mut wrote = false;
        for tool in rest {
            if wrote && out.len() >= size {
                break;
            }
            wrote = true;
            if self.done > 0 {
                out.push(',');
            }
            tool.text.write_json(&mut out);
            self.done += 1;
        }
        if self.done == self.tools.len() {
            self.finished = true;
            out.push(']');
            if let Some(next) = &self.next {
                out.push_str(",\"nextCursor\":\"");
                out.push_str(next);
                out.push('"');
            }
            out.push('}');
        }
        Some(out)
    }
}

/// One exposed tool.
#[derive(Debug, Clone)]
pub struct ListedTool {
    /// The tool as listed, under its exposed name.
    pub text: ToolText,
    /// Where calls to it go.
    pub route: ToolRoute,
}

/// The exposed tools, in list order, with an index by name.
#[derive(Debug, Default, Clone)]
pub struct ToolList {
    tools: Vec<ListedTool>,
    index: HashMap<Arc<str>, usize>,
    /// The tools as rmcp's type, read from the text once, the first time a frontend that
    /// lists through rmcp (HTTP) asks for them.
    typed: OnceLock<Vec<Tool>>,
}

impl ToolList {
    /// Adds a tool at the end, unless its name is taken; whether it was added.
    pub(super) fn push(&mut self, text: ToolText, route: ToolRoute) -> bool {
        if self.index.contains_key(text.name()) {
            return false;
        }
        self.index.insert(text.name_arc().clone(), self.tools.len());
        self.tools.push(ListedTool { text, route });
        true
    }

    /// The tool exposed as `name`.
    pub fn get(&self, name: &str) -> Option<&ListedTool> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    /// The tools in list order.
    pub fn iter(&self) -> impl Iterator<Item = &ListedTool> {
        self.tools.iter()
    }

    /// How many tools are listed.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is listed.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Whether `other` lists the same tools, the same way, in the same order.
    pub fn same_listing(&self, other: &ToolList) -> bool {
        self.tools.len() == other.tools.len()
            && self
                .tools
                .iter()
                .zip(&other.tools)
                .all(|(a, b)| a.text == b.text)
    }

    /// The page of tools/list that `cursor` (a `nextCursor` magg handed out, or none for the
    /// first) names: the `result` object as JSON text.
    pub fn page_text(&self, cursor: Option<&str>) -> Result<String, McpError> {
        let mut page = self.page_pieces(cursor)?;
        Ok(page.next_piece(usize::MAX).unwrap_or_default())
    }

    /// The same page as text in pieces, for a frontend that writes it out as it is made
    /// (a page of large tools is megabytes).
    pub fn page_pieces(&self, cursor: Option<&str>) -> Result<PagePieces<'_>, McpError> {
        let (range, next) = self.page(cursor)?;
        Ok(PagePieces {
            tools: &self.tools[range],
            done: 0,
            next,
            started: false,
            finished: false,
        })
    }

    /// The same page as rmcp's types, and the next cursor.
    pub fn page_typed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<Tool>, Option<String>), McpError> {
        let (range, next) = self.page(cursor)?;
        let typed = self.typed.get_or_init(|| {
            self.tools
                .iter()
                .filter_map(|t| match t.text.tool() {
                    Ok(tool) => Some(tool),
                    Err(e) => {
                        tracing::warn!("tool `{}` cannot be listed: {e}", t.text.name());
                        None
                    }
                })
                .collect()
        });
        let range = range.start.min(typed.len())..range.end.min(typed.len());
        Ok((typed[range].to_vec(), next))
    }

    fn page(
        &self,
        cursor: Option<&str>,
    ) -> Result<(std::ops::Range<usize>, Option<String>), McpError> {
        page_range(self.tools.len(), cursor)
    }

    /// The tools `keep` keeps, in the same order.
    pub fn retained(&self, mut keep: impl FnMut(&ListedTool) -> bool) -> ToolList {
        let mut out = ToolList::default();
        for tool in self.tools.iter().filter(|t| keep(t)) {
            out.push(tool.text.clone(), tool.route.clone());
        }
        out
    }

    /// The tools as tool filters see them: each with its server (`magg` for magg's own) and
    /// its name on that server.
    pub fn filter_input(&self) -> Vec<FilterTool> {
        self.tools
            .iter()
            .map(|tool| FilterTool {
                server: tool.route.server().to_owned(),
                original_name: tool.route.original().to_owned(),
                name: tool.text.name().to_owned(),
                description: tool.text.description(),
                input_schema: tool.text.input_schema(),
            })
            .collect()
    }

    /// The tools the filters returned (matched by server and original name), in the order
    /// returned, with the names and descriptions they gave. A new name that breaks MCP's tool
    /// name rule, or that another tool has, keeps the tool under its old name.
    pub fn filtered(self, filtered: Vec<FilterTool>) -> ToolList {
        let names: HashSet<Arc<str>> = self.index.keys().cloned().collect();
        let mut by_key: HashMap<(String, String), ListedTool> = self
            .tools
            .into_iter()
            .map(|t| {
                (
                    (t.route.server().to_owned(), t.route.original().to_owned()),
                    t,
                )
            })
            .collect();
        let mut out = ToolList::default();
        for given in filtered {
            let Some(tool) = by_key.remove(&(given.server, given.original_name)) else {
                continue;
            };
            let old = tool.text.name();
            let mut text = tool.text.clone();
            if given.name != old {
                if !is_valid_tool_name(&given.name) {
                    tracing::warn!(
                        "a tool filter renamed `{old}` to `{}`, which breaks MCP's tool name rule; keeping `{old}`",
                        given.name
                    );
                } else if names.contains(given.name.as_str()) || out.get(&given.name).is_some() {
                    tracing::warn!(
                        "a tool filter renamed `{old}` to `{}`, which another tool has; keeping `{old}`",
                        given.name
                    );
                } else {
                    text = text.renamed(&given.name);
                }
            }
            if given.description != tool.text.description() {
                text = text.with_description(given.description.as_deref());
            }
            out.push(text, tool.route);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> ToolList {
        let mut list = ToolList::default();
        for i in 0..n {
            let json = format!(r#"{{"name":"t{i}","description":"tool {i}","inputSchema":{{}}}}"#);
            let text = ToolText::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
            list.push(text, ToolRoute::Own(Arc::from(format!("t{i}").as_str())));
        }
        list
    }

    /// The pieces of a page make the same text as the page made whole, whatever their size.
    #[test]
    fn a_page_in_pieces_is_the_page() {
        let list = list(PAGE_SIZE + 5);
        for cursor in [None, Some("magg:1000")] {
            let whole = list.page_text(cursor).unwrap_or_else(|e| panic!("{e:?}"));
            let value: serde_json::Value =
                serde_json::from_str(&whole).unwrap_or_else(|e| panic!("{e}"));
            assert!(value["tools"].is_array());
            for size in [0, 1, 100, 64 * 1024] {
                let mut page = list.page_pieces(cursor).unwrap_or_else(|e| panic!("{e:?}"));
                let mut joined = String::new();
                let mut count = 0;
                while let Some(piece) = page.next_piece(size) {
                    joined.push_str(&piece);
                    count += 1;
                }
                assert_eq!(joined, whole, "pieces of {size} bytes");
                if size == 100 && cursor.is_none() {
                    assert!(count > 10, "{count} pieces");
                }
            }
        }
        assert_eq!(
            list.page_text(None)
                .map(|p| p.contains("\"nextCursor\":\"magg:1000\"")),
            Ok(true)
        );
    }
}
