//! The RSA key pair: making it, reading it back, and writing it in Magg's formats (PKCS#1 PEM
//! for the private key, SubjectPublicKeyInfo PEM for `magg auth public-key`, OpenSSH for the
//! `.key.pub` file).

use std::{
    fs::{DirBuilder, OpenOptions},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
};

use base64::Engine as _;
use rsa::{
    pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _},
    pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding},
    traits::PublicKeyParts as _,
};

use super::{AuthError, BearerConfig, PRIVATE_KEY_ENV};

/// The size of keys `magg auth init` makes, as Magg.
const KEY_BITS: usize = 2048;

/// A parsed RSA private key.
pub struct SigningKey {
    key: rsa::PrivateKey,
}

impl SigningKey {
    /// Makes a new 2048-bit key (public exponent 65537).
    pub fn generate() -> Result<SigningKey, AuthError> {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .map_err(|e| AuthError::Io(format!("cannot make an RSA key: {e}")))?;
        Ok(SigningKey { key })
    }

    /// Reads an unencrypted RSA private key in PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what Magg
    /// writes) or PKCS#8 (`BEGIN PRIVATE KEY`). `source_name` names it in the error.
    pub fn from_pem(pem: &str, source_name: &str) -> Result<SigningKey, AuthError> {
        let pem = pem.trim();
        let parsed = if pem.contains("BEGIN RSA PRIVATE KEY") {
            rsa::PrivateKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
        } else {
            rsa::PrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())
        };
        parsed
            .map(|key| SigningKey { key })
            .map_err(|message| AuthError::BadKey {
                source_name: source_name.to_owned(),
                message,
            })
    }

    /// The key of `config`, as Magg finds it: `MAGG_PRIVATE_KEY` first, then the key file.
    /// `Ok(None)` when there is none (authentication is off).
    pub fn load(config: &BearerConfig) -> Result<Option<SigningKey>, AuthError> {
        if let Some(pem) = config.private_key_env() {
            return Self::from_pem(&pem, PRIVATE_KEY_ENV).map(Some);
        }
        let path = config.private_key_path();
        match std::fs::read_to_string(&path) {
            Ok(pem) => Self::from_pem(&pem, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuthError::BadKey {
                source_name: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Makes a new key and writes it for `config`, as `magg auth init` does: the directory
    /// (mode 0700) if needed, the private key created owner-only (0600, never over an existing
    /// file) and the OpenSSH public key beside it.
    pub fn create_files(config: &BearerConfig) -> Result<SigningKey, AuthError> {
        let private_path = config.private_key_path();
        if private_path.exists() {
            return Err(AuthError::KeyExists(private_path));
        }
        let key = Self::generate()?;
        let failed = |what: &str, e: std::io::Error| {
            AuthError::Io(format!(
                "Failed to generate keypair in {}: cannot {what}: {e}",
                config.key_path.display()
            ))
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.key_path)
            .map_err(|e| failed("create the directory", e))?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&private_path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => AuthError::KeyExists(private_path.clone()),
                _ => failed("create the private key file", e),
            })?;
        file.write_all(key.private_pem().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| failed("write the private key", e))?;
        std::fs::write(config.public_key_path(), key.openssh_public())
            .map_err(|e| failed("write the public key", e))?;
        Ok(key)
    }

    /// The private key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), as Magg writes it.
    pub fn private_pem(&self) -> String {
        self.key
            .to_pkcs1_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// The public key as SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
    pub fn public_pem(&self) -> String {
        self.key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The public key in OpenSSH's format: `ssh-rsa AAAA...` (no comment, no newline, as
    /// Python's `cryptography` writes it).
    pub fn openssh_public(&self) -> String {
        let (n, e) = self.public_components();
        let mut blob = Vec::with_capacity(n.len() + e.len() + 32);
        for part in [b"ssh-rsa".as_slice(), &mpint(&e), &mpint(&n)] {
            blob.extend_from_slice(&u32::try_from(part.len()).unwrap_or(0).to_be_bytes());
            blob.extend_from_slice(part);
        }
        format!(
            "ssh-rsa {}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    /// The public key's DER (PKCS#1 `RSAPublicKey`), for a [`super::Verifier`].
    pub(super) fn public_der(&self) -> Vec<u8> {
        self.key
            .to_public_key()
            .to_pkcs1_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The private key's DER (PKCS#1 `RSAPrivateKey`), for signing.
    pub(super) fn private_der(&self) -> Vec<u8> {
        self.key
            .to_pkcs1_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The modulus and public exponent, big-endian without leading zeros.
    fn public_components(&self) -> (Vec<u8>, Vec<u8>) {
        (self.key.n_bytes().into_vec(), self.key.e_bytes().into_vec())
    }
}

/// An unsigned big-endian integer as an SSH `mpint`: no leading zeros, and a zero byte in front
/// when the top bit is set.
fn mpint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let mut out = Vec::with_capacity(bytes.len() + 1);
    if bytes.first().is_some_and(|&b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_keeps_the_sign_bit_clear() {
        assert_eq!(mpint(&[0x01, 0x00, 0x01]), vec![0x01, 0x00, 0x01]);
        assert_eq!(mpint(&[0x00, 0x80]), vec![0x00, 0x80]);
        assert_eq!(mpint(&[0xff]), vec![0x00, 0xff]);
    }

    #[test]
    fn a_key_reads_back_from_its_pem() {
        let key = SigningKey::generate().expect("generate");
        let pem = key.private_pem();
        assert!(
            pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
            "{pem}"
        );
        let again = SigningKey::from_pem(&pem, "test").expect("read back");
        assert_eq!(again.public_pem(), key.public_pem());
        assert!(
            key.openssh_public()
                .starts_with("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB")
        );
        let err = SigningKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nnope\n", "X")
            .err()
            .expect("bad key");
        assert!(
            err.to_string().contains("from X could not be loaded"),
            "{err}"
        );
    }
}
