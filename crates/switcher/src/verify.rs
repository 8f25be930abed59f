//! The verify step: a started release must listen on its port and, when
//! `health_url` is set, answer it with 2xx, within `switcher.verify_timeout`.
//!
//! Uses [`crate::probe`], so that "verified" here and "UP" on the status
//! page mean the same thing.

use std::time::{Duration, Instant};

use deploy_root::config::Component;

use crate::probe;

/// How often the probes are repeated.
const POLL: Duration = Duration::from_millis(150);

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Whether a component has anything to verify: only one that the switcher
/// starts or reloads (a component with neither is files only, served by
/// something the switcher does not manage).
pub fn applies(component: &Component) -> bool {
    component.start.is_some() || component.reload.is_some()
}

/// Waits until the component listens (and is healthy), or says why not.
pub fn verify(component: &Component, timeout: Duration) -> Result<(), String> {
    verify_at(component.port, component.health_url.as_deref(), timeout)
}

/// [`verify`] for an instance on `port` with health URL `health_url` (a
/// blue-green slot's).
pub fn verify_at(port: u16, health_url: Option<&str>, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if probe::listening(port, CONNECT_TIMEOUT) {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nothing listened on 127.0.0.1:{port} within {} s (switcher.verify_timeout)",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
    let Some(url) = health_url else {
        return Ok(());
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let health = probe::health(
            url,
            left.clamp(Duration::from_millis(200), Duration::from_secs(5)),
        );
        if health.is_healthy() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not healthy within {} s (switcher.verify_timeout): {}",
                timeout.as_secs_f64(),
                health.describe(url)
            ));
        }
        std::thread::sleep(POLL);
    }
}
