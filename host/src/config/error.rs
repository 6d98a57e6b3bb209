//! [`ConfigError`]: everything that can go wrong while finding, reading,
//! validating or writing a config file, with messages that name the file,
//! the line and column, the field path and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error from loading or saving a config file.
///
/// Every message names the file. Parse and validation errors also give the
/// line and column (1-based) in `file:line:column:` form, the field path
/// (e.g. `servers.fs.prefix`) and a suggested fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, a directory, no permission, not UTF-8...).
    #[error("cannot read config file {}: {source}. Fix: check that the path is right and the file is readable", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The file is not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON: {message}. Fix: correct the syntax at that position (config files are plain JSON: no comments, no trailing commas, keys and strings in double quotes)", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description, without its position suffix.
        message: String,
    },

    /// The file is valid JSON but a value has the wrong type or is not allowed.
    #[error("{}{}: {}{message}. Fix: {fix}", path.display(), Pos(*line, *column), Field(field))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key (or its closest located parent), if found.
        line: Option<u32>,
        /// 1-based column of the offending key, if found.
        column: Option<u32>,
        /// Field path such as `servers.fs.prefix`; empty for the whole document.
        field: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },

    /// A `MAGG_*` environment variable has a value that cannot be used.
    #[error("environment variable {var}={value:?} (overriding {}): {message}. Fix: {fix}", path.display())]
    Env {
        /// The config file whose settings the variable overrides.
        path: PathBuf,
        /// The variable's name, e.g. `MAGG_READ_ONLY`.
        var: String,
        /// The variable's value.
        value: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },

    /// The file could not be written.
    #[error("cannot write config file {}: {source}. Fix: check that its directory exists and is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// Saving was refused because it would lose information.
    #[error("not saving config file {}: {reason}", path.display())]
    NotSaved {
        /// The file.
        path: PathBuf,
        /// Why, and what to do instead.
        reason: String,
    },
}

impl ConfigError {
    /// The config file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::Syntax { path, .. }
            | Self::Invalid { path, .. }
            | Self::Env { path, .. }
            | Self::Write { path, .. }
            | Self::NotSaved { path, .. } => path,
        }
    }

    /// The 1-based line the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. } => Some(*line),
            Self::Invalid { line, .. } => line.map(|l| l as usize),
            _ => None,
        }
    }

    /// The 1-based column the error points at, when known.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Syntax { column, .. } => Some(*column),
            Self::Invalid { column, .. } => column.map(|c| c as usize),
            _ => None,
        }
    }

    /// The field path (e.g. `servers.fs.prefix`) for validation errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// serde_json's description of a syntax error, without its
/// ` at line N column M` suffix (the position is reported separately).
pub(crate) fn syntax_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Renders `:line:column` (or nothing when unknown).
pub(crate) struct Pos(pub(crate) Option<u32>, pub(crate) Option<u32>);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, ":{line}:{column}"),
            (Some(line), None) => write!(f, ":{line}"),
            _ => Ok(()),
        }
    }
}

/// Renders `field: ` (or nothing for the whole document).
pub(crate) struct Field<'a>(pub(crate) &'a str);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}
