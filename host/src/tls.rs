//! TLS for magg's HTTP clients (HTTPS backends, an OAuth authorization server's keys) and
//! server: rustls with the `ring` provider, installed once as the process's default, with the
//! system's trusted certificates.

use std::sync::Once;

/// Makes rustls use `ring` in this process. Call before making an HTTP client; calls after
/// the first do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which then serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
