//! Tool search: an inverted index over a catalog's tools and the ranking of a query against
//! it, for `magg_search_tools`.
//!
//! # Design
//! - Built once per catalog snapshot, never per query. Each tool is a [`Doc`] of four fields:
//!   its name, its server (name and prefix), its title and description, and its parameters'
//!   names and descriptions. Text is read by [`text`]: split at separators and camelCase,
//!   lowercased, common words dropped, lightly stemmed.
//! - Ranking is BM25F: a term's frequency in each field is weighted ([`FIELDS`]) and
//!   normalised by that field's length before BM25's saturation, so a word in a tool's name
//!   counts for more than the same word deep in a long description, and one long description
//!   does not outweigh a precise name. Each posting holds its term's whole contribution to the
//!   tool's score, so a query only adds numbers.
//! - A query word also finds, at lower weights, the longer terms it begins (`repo` finds
//!   `repository`) and its word family (`delete` finds `remove`); per query word a tool counts
//!   its best match only, so one word with many expansions cannot outweigh the others. Tools
//!   that match more of the query's words rank higher ([`COVERAGE`]).
//! - The index knows documents by number (their order in [`Index::build`]); which of them a
//!   caller may see is the caller's `keep`, asked only for documents that matched.

mod text;

use std::collections::HashMap;

pub use self::text::{stem, terms};

/// A tool as the index reads it: the text of each field.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// The tool's name (its name on its server; the exposed name adds the prefix).
    pub name: String,
    /// The server's name and prefix.
    pub server: String,
    /// The tool's title and description.
    pub description: String,
    /// Its parameters' names and descriptions.
    pub params: String,
}

impl Doc {
    /// A tool as the index reads it, from its JSON definition (`title`, `annotations.title`,
    /// `description`, `inputSchema`): `name` is its name without the server's prefix,
    /// `server` the server's name and `prefix` its prefix.
    pub fn of_tool(
        name: &str,
        server: &str,
        prefix: Option<&str>,
        tool: &serde_json::Value,
    ) -> Doc {
        fn text(v: Option<&serde_json::Value>) -> &str {
            v.and_then(|v| v.as_str()).unwrap_or_default()
        }
        Doc {
            name: name.to_owned(),
            server: format!("{server} {}", prefix.unwrap_or_default()),
            description: format!(
                "{} {} {}",
                text(tool.get("title")),
                text(tool.get("annotations").and_then(|a| a.get("title"))),
                text(tool.get("description"))
            ),
            params: tool.get("inputSchema").map(schema_text).unwrap_or_default(),
        }
    }
}

/// A field of a [`Doc`]: its weight in BM25F and how strongly its length normalises (`b`).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// How much a term in this field counts.
    pub weight: f32,
    /// BM25's `b` for this field: 0 ignores its length, 1 divides by it fully.
    pub b: f32,
}

/// The fields' weights, in [`Doc`]'s order: name, server, description, parameters.
pub const FIELDS: [Field; 4] = [
    Field {
        weight: 3.0,
        b: 0.3,
    },
    Field {
        weight: 1.5,
        b: 0.0,
    },
    Field {
        weight: 1.0,
        b: 0.75,
    },
    Field {
        weight: 0.3,
        b: 0.5,
    },
];

/// BM25's term-frequency saturation: higher than the usual 1.2, so that a term named in
/// both a tool's name and its description counts for more than one named once.
const K1: f32 = 2.0;

/// The weight of a longer term that a query word begins, against the word itself.
const PREFIX_WEIGHT: f32 = 0.6;

/// At most this many longer terms are tried per query word.
const MAX_PREFIX_TERMS: usize = 16;

/// A query word begins longer terms only from this many characters on.
const MIN_PREFIX_LEN: usize = 3;

/// How much matching every word of the query lifts a tool over matching one: the score is
/// multiplied by `1 + COVERAGE * (matched words / query words)`.
const COVERAGE: f32 = 0.5;

/// A term's documents while the index is built, each with the term's frequency per field.
type Frequencies = Vec<(u32, [u16; 4])>;

/// One document's share of a term.
#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    /// The term's contribution to the document's score (idf × saturated weighted frequency).
    score: f32,
}

/// A search hit: a document's number and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The document's number, its position in [`Index::build`]'s input.
    pub doc: u32,
    /// How well it matches; only the order means something.
    pub score: f32,
}

/// The inverted index of one catalog.
#[derive(Debug, Default)]
pub struct Index {
    /// Every term, sorted, laid end to end.
    term_text: String,
    /// Where each term ends in `term_text`.
    term_ends: Vec<u32>,
    /// Where each term's postings start in `postings` (one more entry at the end).
    term_postings: Vec<u32>,
    postings: Vec<Posting>,
    docs: u32,
}

impl Index {
    /// Builds the index of `docs`; a document's number is its position.
    pub fn build<'a>(docs: impl IntoIterator<Item = &'a Doc>) -> Index {
        // term → (doc, per-field frequency), docs in order.
        let mut by_term: HashMap<String, Frequencies> = HashMap::new();
        let mut lengths: Vec<[u32; 4]> = Vec::new();
        for (n, doc) in docs.into_iter().enumerate() {
            let n = n as u32;
            let mut length = [0u32; 4];
            for (f, field) in [&doc.name, &doc.server, &doc.description, &doc.params]
                .into_iter()
                .enumerate()
            {
                text::for_each_term(field, |term| {
                    length[f] += 1;
                    let list = by_term.entry(term).or_default();
                    match list.last_mut() {
                        Some((d, freq)) if *d == n => freq[f] = freq[f].saturating_add(1),
                        _ => {
                            let mut freq = [0u16; 4];
                            freq[f] = 1;
                            list.push((n, freq));
                        }
                    }
                });
            }
            lengths.push(length);
        }
        let docs = lengths.len() as u32;
        let mut average = [0f32; 4];
        for (f, avg) in average.iter_mut().enumerate() {
            let total: u64 = lengths.iter().map(|l| u64::from(l[f])).sum();
            *avg = (total as f32 / docs.max(1) as f32).max(1.0);
        }
        let mut terms: Vec<(String, Frequencies)> = by_term.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut index = Index {
            docs,
            ..Index::default()
        };
        index.term_postings.push(0);
        for (term, list) in terms {
            let df = list.len() as f32;
            let idf = (1.0 + (docs as f32 - df + 0.5) / (df + 0.5)).ln();
            index.term_text.push_str(&term);
            index.term_ends.push(index.term_text.len() as u32);
            for (doc, freq) in list {
                let length = lengths[doc as usize];
                let weighted: f32 = (0..4)
                    .map(|f| {
                        let field = FIELDS[f];
                        let norm = 1.0 - field.b + field.b * length[f] as f32 / average[f];
                        field.weight * f32::from(freq[f]) / norm
                    })
                    .sum();
                index.postings.push(Posting {
                    doc,
                    score: idf * weighted / (K1 + weighted),
                });
            }
            index.term_postings.push(index.postings.len() as u32);
        }
        index.term_text.shrink_to_fit();
        index.term_ends.shrink_to_fit();
        index.term_postings.shrink_to_fit();
        index.postings.shrink_to_fit();
        index
    }

    /// How many documents the index holds.
    pub fn len(&self) -> usize {
        self.docs as usize
    }

    /// Whether the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }

    /// The bytes the index holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.term_text.capacity()
            + (self.term_ends.capacity() + self.term_postings.capacity()) * 4
            + self.postings.capacity() * std::mem::size_of::<Posting>()
    }

    fn term_count(&self) -> usize {
        self.term_ends.len()
    }

    fn term(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.term_ends[i - 1] as usize
        };
        &self.term_text[start..self.term_ends[i] as usize]
    }

    fn postings_of(&self, i: usize) -> &[Posting] {
        &self.postings[self.term_postings[i] as usize..self.term_postings[i + 1] as usize]
    }

    /// The number of the first term not less than `key`.
    fn lower_bound(&self, key: &str) -> usize {
        let (mut lo, mut hi) = (0, self.term_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.term(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The number of the term `key`, if the index has it.
    fn find(&self, key: &str) -> Option<usize> {
        let i = self.lower_bound(key);
        (i < self.term_count() && self.term(i) == key).then_some(i)
    }

    /// The terms a query word looks for, each with its weight: the word itself, the longer
    /// terms it begins, and its family's words.
    fn expand(&self, word: &str) -> Vec<(usize, f32)> {
        let mut out: Vec<(usize, f32)> = Vec::new();
        let mut add = |term: usize, weight: f32| match out.iter_mut().find(|(t, _)| *t == term) {
            Some((_, w)) => *w = w.max(weight),
            None => out.push((term, weight)),
        };
        if let Some(i) = self.find(word) {
            add(i, 1.0);
        }
        if word.chars().count() >= MIN_PREFIX_LEN {
            let start = self.lower_bound(word);
            for i in (start..self.term_count())
                .take_while(|&i| self.term(i).starts_with(word))
                .filter(|&i| self.term(i) != word)
                .take(MAX_PREFIX_TERMS)
            {
                add(i, PREFIX_WEIGHT);
            }
        }
        for synonym in text::synonyms(word) {
            if let Some(i) = self.find(&synonym) {
                add(i, text::SYNONYM_WEIGHT);
            }
        }
        out
    }

    /// The best `limit` documents for `query` that `keep` keeps, best first. Documents that
    /// match no word of the query are never returned.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(u32) -> bool) -> Vec<Hit> {
        let mut words = text::terms(query);
        words.sort_unstable();
        words.dedup();
        if words.is_empty() || limit == 0 || self.docs == 0 {
            return Vec::new();
        }
        let n = self.docs as usize;
        let mut scores = vec![0f32; n];
        let mut matched = vec![0u16; n];
        let mut best = vec![0f32; n];
        let mut touched: Vec<u32> = Vec::new();
        let mut word_docs: Vec<u32> = Vec::new();
        for word in &words {
            for (term, weight) in self.expand(word) {
                for posting in self.postings_of(term) {
                    let d = posting.doc as usize;
                    let score = posting.score * weight;
                    if best[d] == 0.0 {
                        word_docs.push(posting.doc);
                    }
                    if score > best[d] {
                        best[d] = score;
                    }
                }
            }
            for &doc in &word_docs {
                let d = doc as usize;
                if scores[d] == 0.0 {
                    touched.push(doc);
                }
                scores[d] += best[d];
                matched[d] += 1;
                best[d] = 0.0;
            }
            word_docs.clear();
        }
        let total = words.len() as f32;
        let mut hits: Vec<Hit> = touched
            .into_iter()
            .filter(|&doc| keep(doc))
            .map(|doc| {
                let d = doc as usize;
                let coverage = f32::from(matched[d]) / total;
                Hit {
                    doc,
                    score: scores[d] * (1.0 + COVERAGE * coverage),
                }
            })
            .collect();
        let order = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        hits
    }
}

/// The text of a tool's parameters for [`Doc::params`]: each property's name and description
/// in its JSON Schema (`inputSchema`), one level down into objects and arrays' items.
pub fn schema_text(schema: &serde_json::Value) -> String {
    let mut out = String::new();
    push_properties(schema, &mut out, 0);
    out
}

fn push_properties(schema: &serde_json::Value, out: &mut String, depth: usize) {
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    for (name, property) in properties {
        out.push_str(name);
        out.push(' ');
        if let Some(description) = property.get("description").and_then(|d| d.as_str()) {
            out.push_str(description);
            out.push(' ');
        }
        if depth < 1 {
            push_properties(property, out, depth + 1);
            if let Some(items) = property.get("items") {
                push_properties(items, out, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, server: &str, description: &str, params: &str) -> Doc {
        Doc {
            name: name.into(),
            server: server.into(),
            description: description.into(),
            params: params.into(),
        }
    }

    fn catalog() -> Vec<Doc> {
        vec![
            doc(
                "read_file",
                "filesystem",
                "Read the complete contents of a file from the file system.",
                "path",
            ),
            doc(
                "list_directory",
                "filesystem",
                "Get a detailed listing of all files and directories in a specified path.",
                "path",
            ),
            doc(
                "create_issue",
                "github",
                "Create a new issue in a GitHub repository.",
                "owner repo title body",
            ),
            doc(
                "get_current_time",
                "time",
                "Get the current time in a specific timezone.",
                "timezone IANA timezone name",
            ),
            doc("delete_file", "dropbox", "Remove a file for good.", "path"),
        ]
    }

    fn top(index: &Index, query: &str) -> Vec<u32> {
        index
            .search(query, 3, |_| true)
            .into_iter()
            .map(|h| h.doc)
            .collect()
    }

    #[test]
    fn the_obvious_tool_ranks_first() {
        let docs = catalog();
        let index = Index::build(&docs);
        assert_eq!(index.len(), 5);
        assert_eq!(top(&index, "what time is it in Tokyo")[0], 3);
        assert_eq!(top(&index, "open a bug report on a repo")[0], 2);
        assert_eq!(top(&index, "show me what's inside this folder")[0], 1);
        assert_eq!(top(&index, "erase a file")[0], 4);
        assert_eq!(top(&index, "readFile")[0], 0);
    }

    #[test]
    fn unmatched_and_hidden_documents_are_left_out() {
        let docs = catalog();
        let index = Index::build(&docs);
        assert!(index.search("zebra", 5, |_| true).is_empty());
        assert!(index.search("the of a", 5, |_| true).is_empty());
        let hits = index.search("file", 5, |doc| doc != 0);
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|h| h.doc != 0));
        assert_eq!(index.search("file", 1, |_| true).len(), 1);
    }

    #[test]
    fn parameters_are_read_from_the_schema() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "owner": {"type": "string", "description": "Repository owner"},
                "options": {"type": "object", "properties": {"draft": {"description": "As a draft"}}}
            }
        });
        let text = schema_text(&schema);
        assert!(text.contains("owner Repository owner"), "{text}");
        assert!(text.contains("draft As a draft"), "{text}");
    }
}
