//! What the routes beside `/mcp` (the SSE transport and the management API) check before they
//! answer, as rmcp checks it for `/mcp`: the `Host` header names an allowed host, so a web page
//! cannot reach a magg on localhost by DNS rebinding; and a request a browser sent from another
//! site (its `Origin` names a host that is not allowed) is refused, so a page cannot drive the
//! API or post into an SSE session.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, Uri, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

/// The hosts requests may name; empty when any host is allowed (magg listens on all
/// interfaces and leaves the check to a proxy in front of it).
#[derive(Clone, Debug)]
pub struct Hosts(Arc<[String]>);

impl Hosts {
    /// Allows `hosts` (entries as rmcp takes them: `localhost`, `example.com:8080`); none
    /// allows all.
    pub fn new(hosts: &[String]) -> Hosts {
        Hosts(hosts.into())
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
    if hosts.0.is_empty() {
        return Ok(());
    }
    let headers = request.headers();
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
            "the Host header {host} is not a host magg serves (start magg with --host set to the name clients use)"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
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
        let hosts = Hosts::new(&["localhost".into(), "example.com:8080".into(), "::1".into()]);
        assert!(hosts.allows("LOCALHOST", Some(8000)));
        assert!(hosts.allows("[::1]", None));
        assert!(hosts.allows("example.com", Some(8080)));
        assert!(!hosts.allows("example.com", Some(80)));
        assert!(!hosts.allows("evil.example", Some(8000)));
        assert!(Hosts::new(&[]).allows("anything", None));
    }
}
