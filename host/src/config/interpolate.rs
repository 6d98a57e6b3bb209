//! `${VAR}` / `${VAR:-default}` interpolation for mcpServers-format files
//! (Claude Desktop, multi-mcp), from the process environment.
//!
//! `${VAR}` needs `VAR` to be set (an empty value is fine); `${VAR:-default}`
//! uses `default` when `VAR` is unset or empty, like a POSIX shell. A `$` not
//! followed by `{` is kept as it is.

use std::fmt;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolateError {
    /// `${VAR}` with `VAR` unset and no default.
    Unset(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset(var) => write!(f, "environment variable {var} is not set"),
            Self::Unterminated => f.write_str("\"${\" has no closing \"}\""),
            Self::BadName(name) => write!(
                f,
                "\"${{{name}}}\" is not a valid variable reference (names are letters, digits and underscores, not starting with a digit)"
            ),
        }
    }
}

impl InterpolateError {
    /// A suggested fix for the error.
    pub(crate) fn fix(&self) -> String {
        match self {
            Self::Unset(var) => format!(
                "set {var} in the environment magg runs in, or give a default with ${{{var}:-default}}"
            ),
            Self::Unterminated | Self::BadName(_) => {
                "write variable references as ${NAME} or ${NAME:-default}".to_owned()
            }
        }
    }
}

/// Expands every `${...}` in `input` using `env`.
pub(crate) fn interpolate(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(InterpolateError::Unterminated)?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_var_name(name) {
            return Err(InterpolateError::BadName(inner.to_owned()));
        }
        let value = env(name);
        match (value, default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(InterpolateError::Unset(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(interpolate("${HOME}/x", &env).as_deref(), Ok("/home/u/x"));
        assert_eq!(interpolate("${NOPE:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(interpolate("${EMPTY:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(interpolate("${EMPTY}", &env).as_deref(), Ok(""));
        assert_eq!(interpolate("${NOPE:-}", &env).as_deref(), Ok(""));
        assert_eq!(
            interpolate("$HOME $5 a$", &env).as_deref(),
            Ok("$HOME $5 a$")
        );
        assert_eq!(
            interpolate("a${HOME}b${NOPE:-c}d", &env).as_deref(),
            Ok("a/home/ubcd")
        );
    }

    #[test]
    fn reports_errors() {
        assert_eq!(
            interpolate("${NOPE}", &env),
            Err(InterpolateError::Unset("NOPE".into()))
        );
        assert_eq!(
            interpolate("x ${HOME", &env),
            Err(InterpolateError::Unterminated)
        );
        assert_eq!(
            interpolate("${1X}", &env),
            Err(InterpolateError::BadName("1X".into()))
        );
    }
}
