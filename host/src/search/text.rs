//! How tool search reads text: words split on anything that is not a letter or digit and at
//! camelCase and letter/digit boundaries, lowercased, common English words and single letters
//! dropped, and cut to a light stem, so that `listIssues`, `list_issues` and "listing the
//! issue" share their terms.
//! Also the few word families a query is widened by (`delete` finds `remove`).

/// Words too common in tool descriptions and requests to tell tools apart.
const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "been", "by", "can", "could",
    "do", "does", "for", "from", "give", "has", "have", "how", "i", "if", "in", "into", "is", "it",
    "its", "let", "me", "my", "need", "of", "on", "one", "or", "our", "please", "should", "so",
    "some", "that", "the", "their", "them", "then", "there", "these", "this", "those", "to",
    "tool", "use", "using", "want", "was", "we", "were", "what", "when", "where", "which", "who",
    "will", "with", "would", "you", "your",
];

/// Words that mean the same to someone asking for a tool, as families: a query word of one
/// family also looks for the others, at a lower weight ([`SYNONYM_WEIGHT`]).
const FAMILIES: &[&[&str]] = &[
    &["delete", "remove", "erase", "destroy", "drop", "trash"],
    &["create", "add", "new", "make", "insert"],
    &[
        "get", "fetch", "retrieve", "read", "obtain", "show", "view", "display",
    ],
    &["list", "enumerate", "browse"],
    &["search", "find", "query", "lookup", "look", "locate"],
    &[
        "update", "edit", "modify", "change", "patch", "alter", "rename",
    ],
    &["send", "post", "publish", "message"],
    &["run", "execute", "exec", "launch", "trigger", "invoke"],
    &["stop", "kill", "halt", "terminate", "cancel"],
    &["write", "save", "store", "put"],
    &["directory", "folder", "dir"],
    &["image", "picture", "photo"],
    &["page", "webpage", "website", "site", "url", "web"],
    &["user", "person", "member", "people", "account"],
    &["issue", "ticket", "bug"],
    &["comment", "note", "reply"],
    &["repo", "repository"],
    &["event", "meeting", "appointment"],
    &["email", "mail"],
    &["location", "place", "address"],
    &["navigate", "open", "visit", "go"],
    &["click", "press", "tap"],
    &["fill", "type", "enter"],
    &["time", "clock"],
    &["content", "contents", "text"],
];

/// The weight of a query word's family members against the word itself.
pub const SYNONYM_WEIGHT: f32 = 0.8;

/// Whether `word` (lowercase) carries no meaning for search.
fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The search terms of `text`, in order (with repeats).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |term| out.push(term));
    out
}

/// Calls `f` with each search term of `text`, in order.
pub fn for_each_term(text: &str, mut f: impl FnMut(String)) {
    for word in words(text) {
        let lower = word.to_lowercase();
        let number = lower.bytes().all(|b| b.is_ascii_digit());
        if (!number && lower.chars().count() < 2) || is_stop_word(&lower) {
            continue;
        }
        f(stem(&lower));
    }
}

/// The words of `text`: runs of letters or of digits, split where a lowercase letter meets an
/// uppercase one (`listIssues`) and before the last capital of a run of capitals followed by a
/// lowercase letter (`HTMLPage` → `HTML`, `Page`).
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut start: Option<usize> = None;
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if let Some(s) = start.take() {
                out.push(&text[s..at]);
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(at);
            continue;
        };
        let (_, prev) = chars[i - 1];
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_alphabetic() != c.is_alphabetic())
            || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase));
        if boundary {
            out.push(&text[s..at]);
            start = Some(at);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out.into_iter()
}

/// A light stem of a lowercase word: plurals, `-ing`, `-ed`, `-ation`/`-tion` and a final `e`
/// come off, so a word and its usual forms meet (`creates`, `created`, `creating`, `creation`
/// → `creat`; `entries` → `entry`; `directories` → `directory`).
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 {
        return word.to_owned();
    }
    let mut w = word.to_owned();
    // Plurals.
    if w.len() > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if ["sses", "ches", "shes", "xes", "zes"]
        .iter()
        .any(|s| w.ends_with(s))
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.truncate(w.len() - 1);
    }
    // Verb and noun endings.
    if w.len() >= 9 && w.ends_with("ation") {
        w.truncate(w.len() - 5);
    } else if w.len() >= 7 && w.ends_with("tion") {
        w.truncate(w.len() - 3);
    } else if w.len() >= 6 && w.ends_with("ing") {
        w.truncate(w.len() - 3);
        undouble(&mut w);
    } else if w.len() >= 5 && w.ends_with("ed") && !w.ends_with("eed") {
        w.truncate(w.len() - 2);
        undouble(&mut w);
    }
    if w.len() > 4 && w.ends_with('e') {
        w.truncate(w.len() - 1);
    }
    w
}

/// `runn` → `run`: a doubled final consonant left by `-ing` or `-ed` is made single.
fn undouble(w: &mut String) {
    let b = w.as_bytes();
    let n = b.len();
    if n >= 3 && b[n - 1] == b[n - 2] && !b"aeiouls".contains(&b[n - 1]) {
        w.truncate(n - 1);
    }
}

/// The stemmed family members of the stemmed term `term`, itself left out.
pub fn synonyms(term: &str) -> impl Iterator<Item = String> + '_ {
    FAMILIES
        .iter()
        .filter(move |family| family.iter().any(|w| stem(w) == term))
        .flat_map(|family| family.iter().map(|w| stem(w)))
        .filter(move |w| w != term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn names_split_at_case_and_separators() {
        assert_eq!(terms("listIssues"), ["list", "issu"]);
        assert_eq!(terms("get-file_info.v2"), ["get", "file", "info", "2"]);
        assert_eq!(terms("HTMLPage"), ["html", "page"]);
        assert_eq!(terms("API-post-search"), ["api", "post", "search"]);
        assert_eq!(terms("the file of a user"), ["file", "user"]);
    }

    #[test]
    fn word_forms_share_a_stem() {
        for group in [
            &["create", "creates", "created", "creating", "creation"][..],
            &["directory", "directories"],
            &["entry", "entries"],
            &["run", "running", "runs"],
            &["configure", "configuration", "configured"],
            &["match", "matches"],
            &["list", "lists", "listing"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(
                stems.windows(2).all(|w| w[0] == w[1]),
                "{group:?}: {stems:?}"
            );
        }
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("address"), "address");
    }

    #[test]
    fn families_widen_a_query_word() {
        let found: Vec<String> = synonyms(&stem("delete")).collect();
        assert!(found.contains(&stem("remove")), "{found:?}");
        assert!(!found.contains(&stem("delete")));
        assert_eq!(synonyms("zzz").count(), 0);
    }
}
