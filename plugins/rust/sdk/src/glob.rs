//! Glob matching, for plugins that select tools by name (e.g. `time_*`).
//!
//! A pattern matches a whole string: `*` matches any run of characters (also none), `?` matches
//! exactly one character, and every other character matches itself. Matching is case-sensitive
//! and works on characters, not bytes.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern index after it and the text index it
    // currently stands for the end of.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after, from)) => {
                    p = after;
                    t = from + 1;
                    star = Some((after, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_and_wildcards() {
        assert!(matches("time_now", "time_now"));
        assert!(!matches("time_now", "time_now2"));
        assert!(!matches("time_now2", "time_now"));
        assert!(matches("time_*", "time_now"));
        assert!(matches("time_*", "time_"));
        assert!(!matches("time_*", "tim"));
        assert!(matches("*_now", "time_now"));
        assert!(matches("*", ""));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("t?me_*", "tame_x"));
        assert!(!matches("t?me", "tme"));
        assert!(matches("*a*b*c", "xxaxxbxxbxc"));
        assert!(!matches("*a*b*c", "xxaxxbxxbx"));
        assert!(matches("a**b", "ab"));
        assert!(matches("srv/*", "srv/tool"));
        assert!(matches("é?", "éü"));
    }
}
