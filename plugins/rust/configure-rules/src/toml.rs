//! Just enough TOML for pyproject.toml: string values and arrays of strings, by table.

/// Just enough TOML for pyproject.toml: string values and arrays of strings, by table.
pub(crate) struct Toml {
    /// (table, key, value) with the value's raw text (an array may span lines).
    entries: Vec<(String, String, String)>,
}

impl Toml {
    pub(crate) fn parse(text: &str) -> Toml {
        let mut entries: Vec<(String, String, String)> = Vec::new();
        let mut table = String::new();
        let mut open_array: Option<usize> = None;
        for line in text.lines() {
            let line = strip_toml_comment(line);
            let trimmed = line.trim();
            if let Some(i) = open_array {
                entries[i].2.push(' ');
                entries[i].2.push_str(trimmed);
                if unquoted(trimmed).contains(']') {
                    open_array = None;
                }
                continue;
            }
            if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
                table = trimmed
                    .trim_matches(['[', ']'])
                    .trim()
                    .replace([' ', '"', '\''], "");
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                continue;
            };
            let key = key.trim().trim_matches(['"', '\'']).to_string();
            let value = value.trim().to_string();
            if value.starts_with('[') && !unquoted(&value).contains(']') {
                open_array = Some(entries.len());
            }
            entries.push((table.clone(), key, value));
        }
        Toml { entries }
    }

    /// The string value of `key` in `table`.
    pub(crate) fn get(&self, table: &str, key: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|(t, k, _)| t == table && k == key)
            .and_then(|(_, _, v)| unquote(v))
    }

    /// The strings of the array `key` in `table`.
    pub(crate) fn array(&self, table: &str, key: &str) -> Vec<String> {
        let Some((_, _, raw)) = self.entries.iter().find(|(t, k, _)| t == table && k == key) else {
            return Vec::new();
        };
        let mut strings = Vec::new();
        let mut current: Option<(char, String)> = None;
        for c in raw.chars() {
            match &mut current {
                None if c == '"' || c == '\'' => current = Some((c, String::new())),
                None => {}
                Some((q, s)) if c == *q => {
                    strings.push(std::mem::take(s));
                    current = None;
                }
                Some((_, s)) => s.push(c),
            }
        }
        strings
    }

    /// The string entries of `table`, in order.
    pub(crate) fn table(&self, table: &str) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|(t, _, _)| t == table)
            .filter_map(|(_, k, v)| Some((k.clone(), unquote(v)?)))
            .collect()
    }
}

fn strip_toml_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

/// `line` without its quoted strings.
fn unquoted(line: &str) -> String {
    let mut quote: Option<char> = None;
    let mut out = String::new();
    for c in line.chars() {
        match quote {
            None if c == '"' || c == '\'' => quote = Some(c),
            None => out.push(c),
            Some(q) if c == q => quote = None,
            Some(_) => {}
        }
    }
    out
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(s[1..s.len() - 1].to_string());
        }
    }
    None
}
