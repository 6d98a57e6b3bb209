//! `magg auth ...`: bearer authentication as Magg manages it. `init` makes the RSA key pair
//! (and `auth.json` beside the config when the settings are not the defaults), `status` says
//! whether authentication is on, `public-key` / `private-key` print the key, `token` signs a
//! token. What scripts read goes to stdout in Magg's formats: the token (`-q`), `export
//! MAGG_JWT=...` (`-e`), the PEM texts; messages go around it.

use std::{ffi::OsString, io::Write as _, path::PathBuf};

use clap::Subcommand;

use super::{Failed, say};
use crate::{
    auth::{BearerConfig, PRIVATE_KEY_ENV, SigningKey},
    config::Config,
};

/// `magg auth` actions.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Initialize authentication: make an RSA key pair for bearer tokens
    Init {
        /// Token issuer identifier (default: https://magg.local)
        #[arg(long)]
        issuer: Option<String>,
        /// Token audience, also used as key name (default: magg)
        #[arg(long)]
        audience: Option<String>,
        /// Path for authentication keys (default: ~/.ssh/magg)
        #[arg(long, value_name = "PATH")]
        key_path: Option<PathBuf>,
    },
    /// Show authentication status
    Status,
    /// Show public key in PEM format
    PublicKey,
    /// Show private key
    PrivateKey {
        /// Output as an export command for MAGG_PRIVATE_KEY, on one line (also -e)
        #[arg(long, conflicts_with = "oneline")]
        export: bool,
        /// Output in single-line format (newlines written as \n)
        #[arg(long)]
        oneline: bool,
    },
    /// Generate a token (RS256, signed with the private key)
    Token {
        /// Token subject
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// Token validity in hours
        #[arg(long, default_value_t = 24, allow_negative_numbers = true)]
        hours: i64,
        /// Permission scopes (space-separated)
        #[arg(long, num_args = 0.., value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Only output the token
        #[arg(short, long, conflicts_with = "export")]
        quiet: bool,
        /// Output as export command for eval: export MAGG_JWT=<token> (also -e)
        #[arg(long)]
        export: bool,
    },
}

/// The command line with Magg's `-e` of `magg auth token` and `magg auth private-key` spelled
/// `--export` (elsewhere `-e` is the global `--env-pass`).
pub(super) fn magg_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let action = args
        .windows(2)
        .position(|w| w[0] == "auth" && (w[1] == "token" || w[1] == "private-key"));
    if let Some(at) = action {
        for arg in args.iter_mut().skip(at + 2) {
            if arg == "-e" {
                *arg = OsString::from("--export");
            }
        }
    }
    args
}

/// Runs one `magg auth` action.
pub fn run(config: &Config, action: AuthCommand) -> anyhow::Result<()> {
    let bearer = BearerConfig::load(&config.path).map_err(|e| Failed::new(e.to_string()))?;
    match action {
        AuthCommand::Init {
            issuer,
            audience,
            key_path,
        } => init(config, bearer, issuer, audience, key_path),
        AuthCommand::Status => {
            let oauth =
                crate::auth::oauth_summary(&config.path).map_err(|e| Failed::new(e.to_string()))?;
            status(&bearer, &oauth);
            Ok(())
        }
        AuthCommand::PublicKey => {
            let key = load_key(&bearer)?;
            print_out(&format!("{}\n", key.public_pem()));
            Ok(())
        }
        AuthCommand::PrivateKey { export, oneline } => {
            let pem = load_key(&bearer)?.private_pem();
            let single_line = pem.replace('\n', "\\n");
            if export {
                print_out(&format!(
                    "export {PRIVATE_KEY_ENV}={}\n",
                    shell_quote(&single_line)
                ));
            } else if oneline {
                print_out(&format!("{single_line}\n"));
            } else {
                print_out(&format!("{pem}\n"));
            }
            Ok(())
        }
        AuthCommand::Token {
            subject,
            hours,
            scopes,
            quiet,
            export,
        } => {
            let key =
                load_key(&bearer).map_err(|e| e.hint("Run 'magg auth init' to generate keys"))?;
            let token = key
                .issue(&bearer, &subject, hours, &scopes)
                .map_err(|e| Failed::new(e.to_string()))?;
            if export {
                print_out(&format!("export MAGG_JWT={token}\n"));
            } else {
                if !quiet {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(
                        err,
                        "✓ Generated token for '{subject}' (valid for {hours} hours)\n"
                    );
                }
                print_out(&format!("{token}\n"));
            }
            Ok(())
        }
    }
}

fn init(
    config: &Config,
    mut bearer: BearerConfig,
    issuer: Option<String>,
    audience: Option<String>,
    key_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    if let Some(issuer) = issuer {
        bearer.issuer = issuer;
    }
    if let Some(audience) = audience {
        bearer.audience = audience;
    }
    if let Some(key_path) = key_path {
        bearer.key_path = key_path;
    }
    SigningKey::create_files(&bearer).map_err(|e| Failed::new(e.to_string()))?;
    say::success(&format!(
        "Generated new RSA keypair for audience '{}'",
        bearer.audience
    ));
    say::text(&format!(
        "Private key: {}\nSSH public key: {}",
        bearer.private_key_path().display(),
        bearer.public_key_path().display()
    ));
    let file = BearerConfig::file_for(&config.path);
    if !bearer.is_default() || file.exists() {
        if config.settings.read_only {
            return Err(Failed::new("Failed to save auth configuration")
                .hint("The config is read-only (read_only / MAGG_READ_ONLY)")
                .into());
        }
        let path = bearer
            .save(&config.path)
            .map_err(|e| Failed::new(format!("Failed to save auth configuration: {e}")))?;
        say::info(&format!("Auth config saved to: {}", path.display()));
    }
    say::success(&format!(
        "Authentication initialized with audience '{}'",
        bearer.audience
    ));
    Ok(())
}

fn status(bearer: &BearerConfig, oauth: &[String]) {
    if !oauth.is_empty() {
        say::info("OAuth resource server (auth.json)");
        say::text(&oauth.join("\n"));
    }
    if !bearer.private_key_exists() {
        if oauth.iter().any(|l| l.starts_with("OAuth issuer")) {
            say::info("Bearer tokens of magg's own key are off");
            say::text("Run 'magg auth init' to accept them too");
        } else {
            say::info("Authentication is DISABLED");
            say::text("Run 'magg auth init' to enable authentication");
        }
        return;
    }
    say::info("Authentication is ENABLED (Bearer Token)");
    say::text(&format!(
        "Issuer: {}\nAudience: {}\nKey path: {}",
        bearer.issuer,
        bearer.audience,
        bearer.key_path.display()
    ));
    if bearer.private_key_path().exists() {
        say::success(&format!(
            "Private key file: {}",
            bearer.private_key_path().display()
        ));
    }
    if bearer.private_key_env().is_some() {
        say::info(&format!(
            "Private key also available via {PRIVATE_KEY_ENV} env var"
        ));
    }
    if bearer.public_key_path().exists() {
        say::info(&format!(
            "SSH public key exists: {}",
            bearer.public_key_path().display()
        ));
    }
}

/// The key of `bearer`, or the failure to show when there is none or it cannot be read.
fn load_key(bearer: &BearerConfig) -> Result<SigningKey, Failed> {
    match SigningKey::load(bearer) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(Failed::new(
            "No authentication keys found. Run 'magg auth init' first",
        )),
        Err(e) => Err(Failed::new(e.to_string())),
    }
}

/// Writes `text` to stdout.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `text` quoted for a POSIX shell as Python's `shlex.quote` does it.
fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\"'\"'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_e_means_export_after_auth_token_only() {
        let args = |v: &[&str]| magg_args(v.iter().map(OsString::from));
        assert_eq!(
            args(&["magg", "-e", "auth", "token", "-e"]),
            ["magg", "-e", "auth", "token", "--export"]
        );
        assert_eq!(args(&["magg", "serve", "-e"]), ["magg", "serve", "-e"]);
    }

    #[test]
    fn shell_quote_matches_shlex() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b\\n"), "'a b\\n'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote(""), "''");
    }
}
