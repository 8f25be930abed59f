//! What a pass writes into `state/switcher.json`: what runs now, and which
//! artifacts failed and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::{Failure, HandRollback, RunningRelease, SwitcherState};

/// How many hand rollbacks state/switcher.json remembers (the newest).
pub const ROLLBACKS_KEPT: usize = 50;

/// Marks an artifact failed: never picked again by itself. `from` is what
/// runs instead (per component of the unit). Marking twice counts once.
pub fn mark_failed(
    state: &mut SwitcherState,
    mut failure: Failure,
    from: &BTreeMap<String, Option<RunningRelease>>,
) {
    if failure.running_instead.is_empty() {
        failure.running_instead = from
            .iter()
            .map(|(c, r)| {
                let what = match r {
                    Some(r) => r.release.clone(),
                    None => "nothing (stopped)".to_string(),
                };
                (c.clone(), what)
            })
            .collect();
    }
    for c in from.keys() {
        state.components.entry(c.clone()).or_default().last_failure = Some(failure.clone());
    }
    // A hand rollback is marked failed only so that no pass takes the
    // artifact back by itself: it is not a failed deploy.
    if !state.failed.contains_key(&failure.artifact) && failure.step != "rollback" {
        state.failures_total += 1;
    }
    state.failed.insert(failure.artifact.clone(), failure);
}

/// Records that `to` runs now (since `at`); what ran before becomes the
/// previous good release.
pub fn deployed(
    state: &mut SwitcherState,
    to: &BTreeMap<String, RunningRelease>,
    at: DateTime<Utc>,
) {
    for (c, r) in to {
        let cs = state.components.entry(c.clone()).or_default();
        let mut r = r.clone();
        r.since = at;
        if let Some(old) = cs.running.take() {
            if old.release != r.release {
                cs.previous = Some(old);
            }
        }
        cs.running = Some(r);
    }
}

/// Records a hand rollback of `artifact` on `components` (now running
/// `to`, component to release), by [`operator`]; keeps the newest
/// [`ROLLBACKS_KEPT`].
pub fn rolled_back(
    state: &mut SwitcherState,
    artifact: &str,
    to: &BTreeMap<String, RunningRelease>,
    at: DateTime<Utc>,
) {
    state.rollbacks.insert(
        artifact.to_string(),
        HandRollback {
            artifact: artifact.to_string(),
            components: to.keys().cloned().collect(),
            by: operator(),
            at,
            to: to
                .iter()
                .map(|(c, r)| (c.clone(), r.release.clone()))
                .collect(),
        },
    );
    while state.rollbacks.len() > ROLLBACKS_KEPT {
        let oldest = state
            .rollbacks
            .iter()
            .min_by_key(|(_, r)| r.at)
            .map(|(a, _)| a.clone());
        match oldest {
            Some(a) => state.rollbacks.remove(&a),
            None => break,
        };
    }
}

/// Who runs this command: `SUDO_USER` (the person behind `sudo -u
/// cutover`), else `USER`. Untrusted text, shown escaped.
pub fn operator() -> Option<String> {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().chars().take(64).collect::<String>())
        .find(|v| !v.is_empty())
}

/// Stamps the end of a pass.
pub fn stamp(state: &mut SwitcherState, started: std::time::Instant) {
    state.schema = deploy_root::state::SCHEMA;
    state.last_run = Some(Utc::now());
    state.last_pass_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
}
