//! `Accept` wildcards. rmcp looks for `application/json` and `text/event-stream` by name, so a
//! client that sends `Accept: */*` (curl's default) got `406 Not Acceptable` although in HTTP
//! that range admits both (RFC 9110 §12.5.1). [`name_wildcard_types`] adds the types a wildcard
//! admits to the request's `Accept`, where rmcp finds them by name.

use axum::http::{HeaderMap, HeaderValue, header::ACCEPT};

/// The media types an MCP client must accept.
const TYPES: [&str; 2] = ["application/json", "text/event-stream"];

/// Appends to `Accept` each of the MCP media types that the header admits only through a
/// wildcard (`*/*`, `application/*`, `text/*`). As in HTTP, the most specific range that matches
/// a type decides, so `application/json;q=0, */*` still refuses JSON.
pub fn name_wildcard_types(headers: &mut HeaderMap) {
    let named: Vec<&str> = TYPES
        .into_iter()
        .filter(|media_type| admitted_by_wildcard(headers, media_type))
        .collect();
    if named.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&named.join(", ")) {
        headers.append(ACCEPT, value);
    }
}

/// Whether the most specific range of `Accept` matching `media_type` is a wildcard that does
/// not weigh it zero.
fn admitted_by_wildcard(headers: &HeaderMap, media_type: &str) -> bool {
    let kind = media_type.split('/').next().unwrap_or_default();
    // (specificity, admitted) of the most specific matching range so far.
    let mut best: Option<(u8, bool)> = None;
    for (range, admitted) in ranges(headers) {
        let specificity = if range.eq_ignore_ascii_case(media_type) {
            3
        } else if range
            .strip_suffix("/*")
            .is_some_and(|range_kind| range_kind.eq_ignore_ascii_case(kind))
        {
            2
        } else if range == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(most, _)| specificity > most) {
            best = Some((specificity, admitted));
        }
    }
    matches!(best, Some((1 | 2, true)))
}

/// The media ranges of every `Accept` header, each with whether its weight admits it (`q=0`
/// refuses; a weight that does not parse is ignored, as rmcp does).
fn ranges(headers: &HeaderMap) -> impl Iterator<Item = (&str, bool)> {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| {
            let mut fields = entry.split(';');
            let range = fields.next().unwrap_or_default().trim();
            let admitted = fields
                .filter_map(|parameter| parameter.split_once('='))
                .filter(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .all(|(_, weight)| weight.trim().parse::<f32>().map_or(true, |q| q > 0.0));
            (range, admitted)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(accept: &str) -> Vec<String> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("header"));
        name_wildcard_types(&mut headers);
        headers
            .get_all(ACCEPT)
            .iter()
            .skip(1)
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_wildcard_names_what_it_admits() {
        assert_eq!(named("*/*"), ["application/json, text/event-stream"]);
        assert_eq!(named("text/*"), ["text/event-stream"]);
        assert_eq!(
            named("text/event-stream, application/*;q=0.5"),
            ["application/json"]
        );
    }

    #[test]
    fn named_types_and_zero_weights_are_left_alone() {
        assert!(named("application/json, text/event-stream").is_empty());
        assert!(named("text/html").is_empty());
        assert!(named("*/*;q=0").is_empty());
        assert_eq!(named("application/json;q=0, */*"), ["text/event-stream"]);
        assert_eq!(named("*/*; q=0.000, text/*"), ["text/event-stream"]);
    }
}
