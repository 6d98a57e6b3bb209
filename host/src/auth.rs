//! Bearer-token authentication, compatible with Magg's: an RSA key pair, the `auth.json`
//! beside the config file that names its issuer, audience and directory, RS256 tokens signed
//! with the private key, and their validation with the public key.
//!
//! # Design
//! - [`BearerConfig`] is `auth.json` (`{"bearer": {"issuer", "audience", "key_path"}}`, Magg's
//!   shape); the private key is `{key_path}/{audience}.key` (PKCS#1 PEM, mode 0600) beside
//!   `{audience}.key.pub` (OpenSSH), or the PEM text in `MAGG_PRIVATE_KEY`, which wins.
//!   Authentication is on exactly when such a key exists, as Magg decides it.
//! - [`SigningKey`] holds the parsed private key: it makes key files, prints the key in
//!   Magg's formats and signs tokens ([`SigningKey::issue`]).
//! - [`Verifier`] checks a token: the key is read once when it is made, the signature
//!   (RS256 only, checked with `ring`: [`ring_rs256`]), then issuer, audience, expiry and not-before, each with an error that says
//!   what to fix. A token that passed is remembered (with its expiry), so a client that sends
//!   the same token on every request costs one lookup after the first.
//! - [`oauth`]: OAuth 2.1 resource-server mode, for tokens of an authorization server magg
//!   does not run (its keys found through discovery, refetched when they rotate).
//! - [`access`]: scopes decide which servers, tools, prompts and resources a token sees.
//! - [`Gate`] puts these together: the frontend asks it about the token a request carries
//!   and gets the [`Caller`] (identity and view) or a [`Refusal`] (401, 403 or 503).
//! - This module knows nothing of HTTP or MCP.

pub mod access;
mod gate;
mod keys;
pub mod oauth;
mod ring_rs256;
mod settings;
mod token;

pub use self::{
    gate::{Caller, Gate, Refusal, oauth_summary},
    keys::SigningKey,
    settings::{AUTH_FILE_NAME, BearerConfig, PRIVATE_KEY_ENV},
    token::{Claims, Identity, Rejection, Verifier},
};

/// What went wrong with magg's auth files or key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `auth.json` exists but cannot be read or is not Magg's shape.
    #[error("cannot use {path}: {message}; fix it or remove it to use the defaults")]
    Settings {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The private key (file or `MAGG_PRIVATE_KEY`) is not an unencrypted RSA key in PEM.
    #[error(
        "Private key from {source_name} could not be loaded (invalid or passphrase-protected): {message}"
    )]
    BadKey {
        /// Where the key came from: the file's path or `MAGG_PRIVATE_KEY`.
        source_name: String,
        /// What the parser said.
        message: String,
    },
    /// `magg auth init` found a key already in place.
    #[error("Private key already exists at {0}. Remove it manually to regenerate.")]
    KeyExists(std::path::PathBuf),
    /// Making the key or writing a file failed.
    #[error("{0}")]
    Io(String),
}
