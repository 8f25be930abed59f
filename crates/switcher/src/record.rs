//! What a pass writes into `state/switcher.json`: what runs now, and which
//! artifacts failed and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::{Failure, RunningRelease, SwitcherState};

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
    if !state.failed.contains_key(&failure.artifact) {
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

/// Stamps the end of a pass.
pub fn stamp(state: &mut SwitcherState, started: std::time::Instant) {
    state.schema = deploy_root::state::SCHEMA;
    state.last_run = Some(Utc::now());
    state.last_pass_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
}
