//! A small HTML to markdown converter: headings, links, lists, paragraphs, line breaks,
//! emphasis and code (inline and blocks). Scripts, styles and the document head are dropped;
//! other tags keep their text. Not a full HTML parser: enough for reading pages.

/// The markdown for `html`.
pub fn from_html(html: &str) -> String {
    let mut out = Writer::default();
    let mut rest = html;
    // Open lists: whether each is ordered, and its next number.
    let mut lists: Vec<Option<u32>> = Vec::new();
    let mut links: Vec<Option<String>> = Vec::new();
    let mut pre = 0usize;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.text(rest, pre > 0);
            break;
        };
        out.text(&rest[..lt], pre > 0);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            out.text(rest, pre > 0);
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let body = tag.trim_start_matches('/');
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match (name.as_str(), closing) {
            ("script" | "style" | "head" | "noscript" | "template" | "svg", false) => {
                let end = format!("</{name}");
                let lower = rest.to_ascii_lowercase();
                rest = match lower.find(&end) {
                    Some(at) => {
                        let after = &rest[at..];
                        after.find('>').map_or("", |gt| &after[gt + 1..])
                    }
                    None => "",
                };
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => {
                let level = name[1..].parse::<usize>().unwrap_or(1);
                out.block();
                out.push(&"#".repeat(level));
                out.push(" ");
            }
            (
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "p" | "div" | "section" | "article",
                true,
            ) => out.block(),
            ("p" | "div" | "section" | "article" | "table" | "blockquote", false) => out.block(),
            ("br", _) => out.line(),
            ("tr", true) => out.line(),
            ("ul", false) => {
                out.block();
                lists.push(None);
            }
            ("ol", false) => {
                out.block();
                lists.push(Some(1));
            }
            ("ul" | "ol", true) => {
                lists.pop();
                out.block();
            }
            ("li", false) => {
                out.line();
                let depth = lists.len().saturating_sub(1);
                out.push(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push("- "),
                }
            }
            ("a", false) => {
                let href = attribute(body, "href").filter(|h| !h.starts_with("javascript:"));
                if href.is_some() {
                    out.push("[");
                }
                links.push(href);
            }
            ("a", true) => {
                if let Some(Some(href)) = links.pop() {
                    out.push(&format!("]({})", decode(&href)));
                }
            }
            ("strong" | "b", _) => out.push("**"),
            ("em" | "i", _) => out.push("*"),
            ("pre", false) => {
                out.block();
                out.push("```\n");
                pre += 1;
            }
            ("pre", true) => {
                pre = pre.saturating_sub(1);
                out.trim_end();
                out.push("\n```");
                out.block();
            }
            ("code", _) if pre == 0 => out.push("`"),
            _ => {}
        }
    }
    out.finish()
}

/// The value of attribute `name` in a tag's text (`a href="…"`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").to_owned(),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_owned(),
        });
    }
    None
}

/// `text` with the common HTML entities decoded.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The markdown being written: collapses whitespace outside `pre` and keeps at most one blank
/// line between blocks.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn text(&mut self, raw: &str, pre: bool) {
        let text = decode(raw);
        if pre {
            self.out.push_str(&text);
            return;
        }
        let starts_spaced = text.starts_with(char::is_whitespace);
        let mut any = false;
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 || starts_spaced {
                self.space();
            }
            self.out.push_str(word);
            any = true;
        }
        if text.ends_with(char::is_whitespace) || (!any && starts_spaced) {
            self.space();
        }
    }

    /// A space between words, unless at the start of a line or after one.
    fn space(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with([' ', '\n']) {
            self.out.push(' ');
        }
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn trim_end(&mut self) {
        while self.out.ends_with([' ', '\n']) {
            self.out.pop();
        }
    }

    /// Ends the current line.
    fn line(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    /// Ends the current block: a blank line after it.
    fn block(&mut self) {
        self.line();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn finish(mut self) -> String {
        self.trim_end();
        let start = self.out.len() - self.out.trim_start().len();
        self.out.split_off(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_links_lists_paragraphs_and_code() {
        let html = r#"<html><head><title>T</title><style>p{}</style></head><body>
            <h1>Title</h1><p>Some <b>bold</b> text &amp; a <a href="/x?a=1&amp;b=2">link</a>.</p>
            <ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>
            <pre><code>let x = 1;
let y = 2;</code></pre><script>alert(1)</script><p>inline <code>x</code></p></body></html>"#;
        let md = from_html(html);
        assert_eq!(
            md,
            "# Title\n\nSome **bold** text & a [link](/x?a=1&b=2).\n\n- one\n- two\n\n1. first\n2. second\n\n```\nlet x = 1;\nlet y = 2;\n```\n\ninline `x`"
        );
    }
}
