//! RS256 signature checks on `ring` for `jsonwebtoken`, installed as its process-wide crypto
//! provider: everything else (signing, other algorithms, key utilities) stays RustCrypto's.
//! `ring` checks an RS256 signature in about a third of the time of the `rsa` crate, which
//! matters on the request path (≈ 20 µs against ≈ 60 µs on the machines magg is measured on).

use std::sync::OnceLock;

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind,
    crypto::{CryptoProvider, JwtVerifier, rust_crypto},
    errors::Result,
    signature,
};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey};

/// An RS256 check against one public key.
struct Rs256(DecodingKeyKind);

impl signature::Verifier<Vec<u8>> for Rs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let checked =
            match &self.0 {
                DecodingKeyKind::SecretOrDer(der) => {
                    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
                        .verify(message, signature)
                }
                DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKeyComponents { n, e }
                    .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature),
            };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// RS256 on `ring`; any other algorithm as RustCrypto does it.
fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::RS256 && key.family() == AlgorithmFamily::Rsa {
        return Ok(Box::new(Rs256(key.kind().clone())));
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// Makes `jsonwebtoken` check RS256 signatures with `ring` from now on in this process. Has
/// no effect once `jsonwebtoken` has chosen its provider (it then keeps RustCrypto's, which
/// gives the same answers, more slowly).
pub(super) fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        verifier_factory: new_verifier,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    });
    let _ = provider.install_default();
}
