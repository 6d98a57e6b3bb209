//! Resource URIs under a prefix (`scheme://prefix/path`, as Magg does) and a small RFC 6570
//! matcher for the resource templates of backends that have no prefix.

/// `scheme://rest` under `prefix` becomes `scheme://prefix/rest`; a URI without `://` is
/// returned unchanged.
pub fn prefix_uri(uri: &str, prefix: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{prefix}/{rest}"),
        None => uri.to_owned(),
    }
}

/// The inverse of [`prefix_uri`]: `scheme://prefix/rest` gives `(prefix, "scheme://rest")`.
pub fn split_prefixed_uri(uri: &str) -> Option<(&str, String)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (prefix, path) = rest.split_once('/')?;
    if prefix.is_empty() {
        return None;
    }
    Some((prefix, format!("{scheme}://{path}")))
}

/// One part of a URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{var}`: one or more characters up to the next `/`, `?` or `#`.
    Segment,
    /// `{+var}`, `{#var}` and other operators: any characters.
    Any,
}

/// A compiled URI template, used only to decide whether a URI matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
    source: String,
}

impl UriTemplate {
    /// Compiles `template`; text outside `{…}` must match literally.
    pub fn new(template: &str) -> UriTemplate {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                parts.push(Part::Literal(rest[open..].to_owned()));
                rest = "";
                break;
            };
            let expr = &rest[open + 1..open + close];
            parts.push(
                if expr.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    Part::Segment
                } else {
                    Part::Any
                },
            );
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        UriTemplate {
            parts,
            source: template.to_owned(),
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `uri` is an expansion of the template.
    pub fn matches(&self, uri: &str) -> bool {
        matches_from(&self.parts, uri)
    }
}

fn matches_from(parts: &[Part], uri: &str) -> bool {
    match parts.split_first() {
        None => uri.is_empty(),
        Some((Part::Literal(lit), rest)) => uri
            .strip_prefix(lit.as_str())
            .is_some_and(|tail| matches_from(rest, tail)),
        Some((var, rest)) => {
            let limit = match var {
                Part::Segment => uri.find(['/', '?', '#']).unwrap_or(uri.len()),
                _ => uri.len(),
            };
            (1..=limit)
                .rev()
                .filter(|&i| uri.is_char_boundary(i))
                .any(|i| matches_from(rest, &uri[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixing_round_trips() {
        assert_eq!(prefix_uri("test://info", "tb"), "test://tb/info");
        assert_eq!(
            prefix_uri("file:///etc/hosts", "fs"),
            "file://fs//etc/hosts"
        );
        assert_eq!(
            split_prefixed_uri("test://tb/info"),
            Some(("tb", "test://info".to_owned()))
        );
        assert_eq!(
            split_prefixed_uri("file://fs//etc/hosts"),
            Some(("fs", "file:///etc/hosts".to_owned()))
        );
        assert_eq!(split_prefixed_uri("test://info"), None);
        assert_eq!(prefix_uri("urn:x", "p"), "urn:x");
    }

    #[test]
    fn templates_match_their_expansions() {
        let t = UriTemplate::new("test://item/{id}");
        assert!(t.matches("test://item/42"));
        assert!(!t.matches("test://item/"));
        assert!(!t.matches("test://item/4/2"));
        assert!(!t.matches("test://other/42"));
        let any = UriTemplate::new("file://{+path}");
        assert!(any.matches("file:///a/b/c"));
        let two = UriTemplate::new("db://{table}/{row}.json");
        assert!(two.matches("db://users/7.json"));
        assert!(!two.matches("db://users/7.txt"));
    }
}
