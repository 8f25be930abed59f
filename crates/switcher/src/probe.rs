//! Probes: is something listening on a port, does a health URL answer 2xx.
//!
//! Both the verify step of a pass and the status page use these, so that
//! "UP" means the same thing in both places.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// The outcome of one health request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// It answered 2xx.
    Healthy(u16),
    /// It answered, but not 2xx.
    Unhealthy(u16),
    /// It did not answer (refused, timed out, not HTTP).
    NoAnswer(String),
}

impl Health {
    /// Whether it answered 2xx.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy(_))
    }

    /// In words, for logs, failures and the status page.
    pub fn describe(&self, url: &str) -> String {
        match self {
            Health::Healthy(code) => format!("{url} answered {code}"),
            Health::Unhealthy(code) => format!("{url} answered {code}, expected 2xx"),
            Health::NoAnswer(why) => format!("{url} did not answer: {why}"),
        }
    }
}

/// GETs `url` once, within `timeout`.
pub fn health(url: &str, timeout: Duration) -> Health {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if (200..300).contains(&code) {
                Health::Healthy(code)
            } else {
                Health::Unhealthy(code)
            }
        }
        Err(e) => Health::NoAnswer(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_port_is_not_listening_and_not_healthy() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").ok();
            l.and_then(|l| l.local_addr().ok()).map_or(1, |a| a.port())
        };
        assert!(!listening(port, Duration::from_millis(200)));
        let h = health(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(1));
        assert!(matches!(h, Health::NoAnswer(_)), "{h:?}");
    }
}
