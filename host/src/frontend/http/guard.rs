//! What the routes beside `/mcp` (the SSE transport and the management API) check before they
//! answer, as rmcp checks it for `/mcp`: the `Host` header names an allowed host, so a web page
//! cannot reach a magg on localhost by DNS rebinding; and a request a browser sent from another
//! site is refused, so a page cannot drive the API or post into an SSE session. A page's
//! `Origin` must be one of `allowed_origins` when that setting is given (as rmcp checks it),
//! else name an allowed host.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, Uri, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

/// The hosts requests may name (empty when any host is allowed: magg listens on all
/// interfaces and leaves the check to a proxy in front of it), and the origins whose pages
/// may send requests (`None`: those of the allowed hosts).
#[derive(Clone, Debug)]
pub struct Hosts(Arc<[String]>, Option<Arc<[String]>>);

impl Hosts {
    /// Allows `hosts` (entries as rmcp takes them: `localhost`, `example.com:8080`; none
    /// allows all) and `origins` (`https://app.example.com`, `http://localhost:*`, `null`).
    pub fn new(hosts: &[String], origins: Option<&[String]>) -> Hosts {
        Hosts(hosts.into(), origins.map(Into::into))
    }

    /// Whether a page of `origin` (a parsed `Origin` header) may send requests, by
    /// `allowed_origins`: the same scheme and host, and the same port unless the entry names
    /// none or `*` (a port left out of the origin is its scheme's default).
    fn allows_origin(origins: &[String], origin: &Uri) -> bool {
        let scheme = origin.scheme_str().unwrap_or_default();
        let default_port = match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let host = origin.host().map(normalize).unwrap_or_default();
        let port = origin.port_u16().or(default_port);
        origins.iter().any(|allowed| {
            let Some((allowed_scheme, rest)) = allowed.trim().split_once("://") else {
                return false;
            };
            let rest = rest.trim_end_matches('/');
            let (allowed_host, allowed_port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') && !rest.ends_with(']') => (h, Some(p)),
                _ => (rest, None),
            };
            allowed_scheme.eq_ignore_ascii_case(scheme)
                && normalize(allowed_host) == host
                && match allowed_port {
                    None | Some("*") => true,
                    Some(p) => p.parse::<u16>().ok() == port,
                }
        })
    }

    /// Whether `host` (and `port`) is allowed.
    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = normalize(host);
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|allowed| match Authority::try_from(allowed.trim()) {
                    Ok(authority) => {
                        normalize(authority.host()) == host
                            && authority.port_u16().is_none_or(|p| Some(p) == port)
                    }
                    Err(_) => normalize(allowed) == host,
                })
    }
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

/// Middleware: `403 Forbidden` for a request whose `Host` or `Origin` names a host that is not
/// allowed.
pub async fn check(State(hosts): State<Hosts>, request: Request, next: Next) -> Response {
    if let Err(refusal) = allowed(&hosts, &request) {
        tracing::warn!(path = %request.uri().path(), "refused: {refusal}");
        return (StatusCode::FORBIDDEN, format!("Forbidden: {refusal}")).into_response();
    }
    next.run(request).await
}

fn allowed(hosts: &Hosts, request: &Request) -> Result<(), String> {
    let headers = request.headers();
    if let (Some(origins), Some(origin)) = (&hosts.1, headers.get(header::ORIGIN)) {
        let origin = origin
            .to_str()
            .map_err(|_| "the Origin header is not text")?;
        let allowed = if origin.eq_ignore_ascii_case("null") {
            origins.iter().any(|o| o.eq_ignore_ascii_case("null"))
        } else {
            let uri = Uri::try_from(origin).map_err(|_| "the Origin header is not a URL")?;
            Hosts::allows_origin(origins, &uri)
        };
        if !allowed {
            return Err(format!(
                "requests from pages of {origin} are not accepted (it is not in allowed_origins)"
            ));
        }
    }
    if hosts.0.is_empty() {
        return Ok(());
    }
    let host = match headers.get(header::HOST) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| Authority::try_from(v).ok())
            .ok_or("the Host header is not a host name")?,
        None => request
            .uri()
            .authority()
            .cloned()
            .ok_or("the request names no host")?,
    };
    if !hosts.allows(host.host(), host.port_u16()) {
        return Err(format!(
            "the Host header {host} is not a host magg serves (start magg with --host set to the name clients use, or list it in allowed_hosts)"
        ));
    }
    if hosts.1.is_none()
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin
            .to_str()
            .map_err(|_| "the Origin header is not text")?;
        if !origin.eq_ignore_ascii_case("null") {
            let uri = Uri::try_from(origin).map_err(|_| "the Origin header is not a URL")?;
            let authority = uri.authority().ok_or("the Origin header names no host")?;
            if !hosts.allows(authority.host(), authority.port_u16()) {
                return Err(format!(
                    "requests from pages of {origin} are not accepted (Origin is not a host magg serves)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_and_by_port_when_one_is_given() {
        let hosts = Hosts::new(
            &["localhost".into(), "example.com:8080".into(), "::1".into()],
            None,
        );
        assert!(hosts.allows("LOCALHOST", Some(8000)));
        assert!(hosts.allows("[::1]", None));
        assert!(hosts.allows("example.com", Some(8080)));
        assert!(!hosts.allows("example.com", Some(80)));
        assert!(!hosts.allows("evil.example", Some(8000)));
        assert!(Hosts::new(&[], None).allows("anything", None));
    }

    #[test]
    fn origins_match_by_scheme_host_and_port() {
        let origins: Vec<String> = [
            "https://app.example.com",
            "http://localhost:*",
            "http://tool.example:8080",
        ]
        .map(String::from)
        .into();
        let allows =
            |origin: &str| Hosts::allows_origin(&origins, &Uri::try_from(origin).expect("origin"));
        assert!(allows("https://app.example.com"));
        assert!(allows("https://APP.example.com:8443"));
        assert!(allows("http://localhost:5173"));
        assert!(allows("http://tool.example:8080"));
        assert!(!allows("http://tool.example"));
        assert!(!allows("http://app.example.com"));
        assert!(!allows("https://evil.example"));
    }
}
