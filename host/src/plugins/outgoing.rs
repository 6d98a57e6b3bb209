//! How a plugin's granted `wasi:http` request leaves magg: through the same HTTP client magg
//! uses for its own requests, so plugins trust the certificates the system trusts (a company
//! proxy's or a registry mirror's own certificate authority too, and `SSL_CERT_FILE`). Redirects are not followed: a plugin sees the redirect, and a request to the host
//! it points at is checked against the plugin's grants like any other.

use std::{sync::OnceLock, time::Duration};

use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// How long a connection may take when the plugin does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the response's head may take when the plugin does not say.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::tls::install();
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// The response's future that reports errors of the request's body: none here, since the
/// body is sent whole before the response is awaited.
pub(super) type Done = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Sends `request` and returns the response with its body streaming.
pub(super) async fn send(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, Done), Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = http::Request::from_parts(parts, reqwest::Body::from(body));
    let request = reqwest::Request::try_from(request).map_err(|_| Error::HttpRequestUriInvalid)?;
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(FIRST_BYTE_TIMEOUT);
    let response = match tokio::time::timeout(first_byte, client().execute(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Err(error(&e)),
        Err(_) => return Err(Error::ConnectionReadTimeout),
    };
    let response: http::Response<reqwest::Body> = response.into();
    let response = response.map(|body| body.map_err(|e| error(&e)).boxed_unsync());
    Ok((response, Box::new(async { Ok(()) })))
}

/// The `wasi:http` error code closest to what went wrong.
fn error(e: &reqwest::Error) -> Error {
    let detail = format!("{e:?}").to_ascii_lowercase();
    if e.is_timeout() {
        Error::ConnectionTimeout
    } else if detail.contains("certificate") || detail.contains("invalidcert") {
        Error::TlsCertificateError
    } else if detail.contains("tls") || detail.contains("rustls") {
        Error::TlsProtocolError
    } else if detail.contains("dns") || detail.contains("lookup") {
        Error::DnsError {
            rcode: None,
            info_code: None,
        }
    } else if detail.contains("refused") {
        Error::ConnectionRefused
    } else if e.is_connect() {
        Error::DestinationUnavailable
    } else if e.is_body() || e.is_decode() {
        Error::HttpResponseIncomplete
    } else {
        Error::HttpProtocolError
    }
}
