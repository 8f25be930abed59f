//! Speaking up when a component goes DOWN or unhealthy, and when it
//! recovers, so that cron (which mails what a job prints) is not silent
//! while the status page is red.
//!
//! Only transitions are printed, one line each, at the default log level:
//! every pass probes the components the switcher starts or reloads (a
//! component with neither is files only, served by something the switcher
//! does not manage) and that run something, compares with what the last
//! pass saw (`switcher.json`, `seen`), and keeps the new view. A component
//! first seen UP says nothing; first seen DOWN says so once.

use std::collections::BTreeMap;
use std::time::Duration;

use deploy_root::state::{Seen, SwitcherState};
use deploy_root::Config;

use crate::{probe, verify};

/// How long one connection attempt may take (as the status page's probe).
const LISTEN_TIMEOUT: Duration = Duration::from_millis(500);

/// How long the health URL may take to answer (as the status page's probe).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes the watched components, logs each change since the last pass,
/// and records what it saw in `state.seen`.
pub fn update(config: &Config, state: &mut SwitcherState) {
    let mut seen = BTreeMap::new();
    for (name, c) in &config.components {
        let runs = state
            .components
            .get(name)
            .is_some_and(|s| s.running.is_some());
        if !runs || !verify::applies(c) {
            continue;
        }
        // A blue-green component is checked on the slot that serves.
        let port = crate::bluegreen::serving_port(c, Some(state), name);
        let (now, detail) = if !probe::listening(port, LISTEN_TIMEOUT) {
            (Seen::Down, format!("nothing listens on port {port}"))
        } else {
            match c.health_url_on(port) {
                Some(url) => {
                    let h = probe::health(&url, HEALTH_TIMEOUT);
                    let state = if h.is_healthy() {
                        Seen::Up
                    } else {
                        Seen::Unhealthy
                    };
                    (state, h.describe(&url))
                }
                None => (Seen::Up, format!("listening on port {port}")),
            }
        };
        let before = state.seen.get(name).copied();
        if before != Some(now) {
            match (now, before) {
                (Seen::Down, _) => tracing::warn!("{name} is DOWN: {detail}"),
                (Seen::Unhealthy, _) => tracing::warn!("{name} is UP but not healthy: {detail}"),
                // At the default level too: the mail that said DOWN needs
                // its answer.
                (Seen::Up, Some(b)) => {
                    tracing::warn!("{name} recovered (was {}): {detail}", word(b));
                }
                (Seen::Up, None) => {}
            }
        }
        seen.insert(name.clone(), now);
    }
    state.seen = seen;
}

fn word(s: Seen) -> &'static str {
    match s {
        Seen::Up => "UP",
        Seen::Down => "DOWN",
        Seen::Unhealthy => "unhealthy",
    }
}
