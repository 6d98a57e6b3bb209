//! Field paths (`servers.fs.prefix`) and finding where a field sits in the
//! config file's text, so validation errors can point at a line and column.
//!
//! The scanner only runs on text that serde_json has already accepted, so it
//! can be simple; on anything unexpected it gives up and returns `None`.

use std::fmt;

/// One step of a field path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A path from the document root to a value, e.g. `servers.fs.args[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    /// The document root.
    pub(crate) fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by an object key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Seg::Key(key) => {
                    let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Keys that can be shown bare in a dotted path.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The 1-based (line, column) of `path` in `text`: the position of the last
/// key for object members, of the value for array elements. When the full
/// path is not in the text, the closest located ancestor is used.
pub(crate) fn locate(text: &str, path: &FieldPath) -> Option<(usize, usize)> {
    let mut segs = path.0.as_slice();
    loop {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            text,
            pos: 0,
        };
        if let Some(offset) = scanner.find(segs) {
            return Some(line_column(text, offset));
        }
        let (_, parent) = segs.split_last()?;
        segs = parent;
    }
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// One member of a JSON object, as byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The decoded key.
    pub(crate) key: String,
    /// Offset of the key's opening quote.
    pub(crate) key_start: usize,
    /// Offset of the value's first byte.
    pub(crate) value_start: usize,
    /// Offset just after the value.
    pub(crate) value_end: usize,
}

/// Where a JSON object and its members sit in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectLayout {
    /// Offset of the opening `{`.
    pub(crate) open: usize,
    /// Offset of the closing `}`.
    pub(crate) close: usize,
    /// The members in text order (duplicate keys included).
    pub(crate) members: Vec<Member>,
}

/// The layout of the top-level object of `text` (already-valid JSON).
/// `None` if the text is not an object or not as expected.
pub(crate) fn top_level_object(text: &str) -> Option<ObjectLayout> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    scanner.skip_ws();
    scanner.object()
}

/// A key that appears twice in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateKey {
    /// The path of the key (e.g. `servers.fs.command`).
    pub(crate) path: FieldPath,
    /// Offset of the key's first appearance.
    pub(crate) first: usize,
    /// Offset of its second appearance.
    pub(crate) second: usize,
}

/// The first key of `text` (already-valid JSON) that appears twice in the same object, outer
/// objects first. serde_json keeps the last of such keys without a word, so a config that has
/// one says something other than what its author sees.
pub(crate) fn first_duplicate_key(text: &str) -> Option<DuplicateKey> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    scanner.duplicate(&FieldPath::root())
}

/// A forgiving walker over already-valid JSON text.
struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Byte offset of `segs` starting from the value at the current position.
    fn find(&mut self, segs: &[Seg]) -> Option<usize> {
        self.skip_ws();
        let Some((first, rest)) = segs.split_first() else {
            return Some(self.pos);
        };
        match (first, self.peek()?) {
            (Seg::Key(want), b'{') => {
                // serde_json keeps the last of duplicate keys, so find the last one.
                let object = self.object()?;
                let member = object.members.iter().rev().find(|m| m.key == *want)?;
                if rest.is_empty() {
                    return Some(member.key_start);
                }
                self.pos = member.value_start;
                self.find(rest)
            }
            (Seg::Index(want), b'[') => {
                self.pos += 1;
                let mut index = 0;
                while self.next_element()? {
                    if index == *want {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    index += 1;
                }
                None
            }
            _ => None,
        }
    }

    /// The first duplicate key in the value at the current position.
    fn duplicate(&mut self, path: &FieldPath) -> Option<DuplicateKey> {
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                let object = self.object()?;
                let mut seen = std::collections::HashMap::new();
                for member in &object.members {
                    if let Some(first) = seen.insert(member.key.as_str(), member.key_start) {
                        return Some(DuplicateKey {
                            path: path.key(&member.key),
                            first,
                            second: member.key_start,
                        });
                    }
                }
                object.members.iter().find_map(|member| {
                    self.at(member.value_start)
                        .duplicate(&path.key(&member.key))
                })
            }
            b'[' => {
                self.pos += 1;
                let mut index = 0;
                while self.next_element()? {
                    if let Some(found) = self.at(self.pos).duplicate(&path.index(index)) {
                        return Some(found);
                    }
                    self.skip_value()?;
                    index += 1;
                }
                None
            }
            _ => None,
        }
    }

    /// Inside an array: moves to the next element (past white space and a comma); `true` at
    /// one, `false` at the closing `]`, `None` at the end of the text.
    fn next_element(&mut self) -> Option<bool> {
        loop {
            self.skip_ws();
            match self.peek()? {
                b']' => return Some(false),
                b',' => self.pos += 1,
                _ => return Some(true),
            }
        }
    }

    /// A scanner over the same text at `pos`.
    fn at(&self, pos: usize) -> Self {
        Self {
            bytes: self.bytes,
            text: self.text,
            pos,
        }
    }

    /// Reads the object at the current position (its `{`), up to and
    /// including its `}`.
    fn object(&mut self) -> Option<ObjectLayout> {
        let open = self.pos;
        if self.peek()? != b'{' {
            return None;
        }
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.skip_ws();
            match self.peek()? {
                b'}' => break,
                b',' => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let key_start = self.pos;
            let key = self.string()?;
            self.skip_ws();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_ws();
            let value_start = self.pos;
            self.skip_value()?;
            members.push(Member {
                key,
                key_start,
                value_start,
                value_end: self.pos,
            });
        }
        let close = self.pos;
        self.pos += 1;
        Some(ObjectLayout {
            open,
            close,
            members,
        })
    }

    /// Reads a string token and returns its decoded value.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.skip_string()?;
        let raw = self.text.get(start..self.pos)?;
        serde_json::from_str(raw).ok()
    }

    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.pos += 1,
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }
}
