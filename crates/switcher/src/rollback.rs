//! `switcher rollback [COMPONENT]`: back to the previous good release, by
//! hand, with the same stop, flip, start and verify as a deploy.
//!
//! Without COMPONENT it rolls back the most recently deployed artifact, on
//! every component that runs it (a `full` artifact goes back as a unit).
//! The artifact rolled back from is marked failed ("rolled back by hand"),
//! so that the next pass does not take it straight back into service.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use deploy_root::state::{Failure, HistoryEntry, RunningRelease, SwitcherState};
use deploy_root::{lock, state, Config, Layout};

use crate::exit_codes;
use crate::journal::{self, Journal, Step};
use crate::recover::{self, Recovery};
use crate::switch::Outcome;
use crate::{bluegreen, history, record, status, switch};

/// Runs `switcher rollback` and returns the exit code.
pub fn run(config: &Config, layout: &Layout, component: Option<&str>) -> anyhow::Result<u8> {
    layout.ensure()?;
    let Some(_lock) = lock::try_lock(&layout.switcher_lock())? else {
        anyhow::bail!(
            "another switcher run holds {}; try again when it has finished",
            layout.switcher_lock().display()
        );
    };
    let started = Instant::now();
    let result = locked(config, layout, component, started);
    if let Err(e) = status::refresh(config, layout) {
        tracing::warn!("refreshing the status page: {e:#}");
    }
    // Last, still under the lock, like a pass.
    crate::notify::flush(config, layout);
    result
}

fn locked(
    config: &Config,
    layout: &Layout,
    component: Option<&str>,
    started: Instant,
) -> anyhow::Result<u8> {
    let mut st: SwitcherState = state::load(&layout.switcher_state())?;
    if let Recovery::Failed(why) = recover::recover(config, layout, &mut st)? {
        save(layout, &mut st, started)?;
        anyhow::bail!("recovering from a cut-short pass failed first: {why}");
    }
    let Unit {
        components,
        from,
        to,
        artifact,
    } = plan(config, layout, &st, component)?;
    let at = Utc::now();
    let mut j = Journal {
        action: "rollback".into(),
        artifact: artifact.clone(),
        components: components.clone(),
        from: from.clone(),
        to: to.clone(),
        step: Step::Stop,
        attempts: 0,
        failure: None,
        started_at: at,
        slots: BTreeMap::new(),
    };
    // switch writes the journal before it stops anything; when it cannot
    // (a full disk), nothing was touched and no journal may stay behind, or
    // the next pass would "recover" by restarting what runs.
    let outcome = match switch::switch(config, layout, &mut j) {
        Ok(outcome) => outcome,
        Err(e) => {
            if let Err(e) = journal::remove(layout) {
                tracing::error!("{e:#}");
            }
            return Err(e.context("not rolling back"));
        }
    };
    journal::step(layout, &mut j, Step::Record)?;
    bluegreen::record(&mut st, &j, matches!(outcome, Outcome::Done));
    let mut entry = HistoryEntry {
        at,
        action: "rollback".into(),
        artifact: Some(artifact.clone()),
        components: components.clone(),
        outcome: String::new(),
        reason: None,
        steps: Vec::new(),
        total_ms: 0,
        slot: None,
    };
    let code = match outcome {
        Outcome::Done => {
            for (c, prev) in &to {
                let cs = st.components.entry(c.clone()).or_default();
                let mut r = prev.clone();
                r.since = Utc::now();
                cs.running = Some(r);
                // The release before the previous one is not known.
                cs.previous = None;
            }
            let failure = Failure {
                artifact: artifact.clone(),
                component: components.first().cloned().unwrap_or_default(),
                step: "rollback".into(),
                exit_code: None,
                reason: "rolled back by hand with `switcher rollback`".into(),
                output_tail: Vec::new(),
                at: Utc::now(),
                running_instead: to
                    .iter()
                    .map(|(c, r)| (c.clone(), r.release.clone()))
                    .collect(),
                rollback_failed: false,
            };
            record::mark_failed(&mut st, failure, &BTreeMap::new());
            record::rolled_back(&mut st, &artifact, &to, Utc::now());
            entry.outcome = "rolled-back".into();
            let names: Vec<String> = to
                .iter()
                .map(|(c, r)| format!("{c} runs {}", r.release))
                .collect();
            tracing::warn!("rolled back: {}", names.join(", "));
            exit_codes::OK
        }
        Outcome::RolledBack(f) => {
            entry.outcome = "failed".into();
            entry.reason = Some(f.to_string());
            tracing::error!("rolling back failed: {f}; {artifact} runs again");
            exit_codes::DEPLOY_FAILED
        }
        Outcome::RollbackFailed(f, why) => {
            entry.outcome = "rollback-failed".into();
            entry.reason = Some(format!("{f}; going forward again failed: {why}"));
            tracing::error!("rolling back failed: {f}; going forward again failed too: {why}; the service may be down");
            exit_codes::ROLLBACK_FAILED
        }
    };
    // The events go to the outbox before the state that records them.
    let who = deploy_root::control::who();
    crate::notify::emit_history(layout, &st, &entry, Some(&who));
    save(layout, &mut st, started)?;
    entry.total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    history::append(layout, &entry)?;
    journal::remove(layout)?;
    Ok(code)
}

/// What a rollback takes back: the components, what they run, what they
/// go back to, and the artifact rolled back from.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The components, together.
    pub components: Vec<String>,
    /// What each runs now.
    pub from: BTreeMap<String, Option<RunningRelease>>,
    /// The previous good release each goes back to.
    pub to: BTreeMap<String, RunningRelease>,
    /// The artifact rolled back from (marked failed after).
    pub artifact: String,
}

/// Decides what `switcher rollback [COMPONENT]` would take back, or why it
/// refuses; the rollback and its dry run both use it.
pub fn plan(
    config: &Config,
    layout: &Layout,
    st: &SwitcherState,
    component: Option<&str>,
) -> anyhow::Result<Unit> {
    let components = unit(config, st, component)?;
    let mut from = BTreeMap::new();
    let mut to = BTreeMap::new();
    for c in &components {
        let cs = st.components.get(c);
        let running = cs.and_then(|s| s.running.clone());
        let previous = cs.and_then(|s| s.previous.clone()).ok_or_else(|| {
            anyhow::anyhow!("{c} has no previous good release recorded; nothing to roll back to")
        })?;
        if !layout.release(c, &previous.release).is_dir() {
            anyhow::bail!(
                "{c}: the previous release folder {} is not on disk",
                layout.release(c, &previous.release).display()
            );
        }
        from.insert(c.clone(), running);
        to.insert(c.clone(), previous);
    }
    let artifact = from
        .values()
        .flatten()
        .map(|r: &RunningRelease| r.info.artifact.clone())
        .next()
        .unwrap_or_default();
    Ok(Unit {
        components,
        from,
        to,
        artifact,
    })
}

/// The components to roll back: COMPONENT, or every component that runs
/// the most recently deployed artifact.
fn unit(
    config: &Config,
    st: &SwitcherState,
    component: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    if let Some(c) = component {
        switch::component(config, c)?;
        return Ok(vec![c.to_string()]);
    }
    let latest = st
        .components
        .iter()
        .filter(|(c, s)| config.components.contains_key(*c) && s.previous.is_some())
        .filter_map(|(_, s)| s.running.as_ref())
        .max_by_key(|r| r.since)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no component has a previous good release recorded; nothing to roll back to"
            )
        })?;
    Ok(st
        .components
        .iter()
        .filter(|(c, s)| {
            config.components.contains_key(*c)
                && s.previous.is_some()
                && s.running.as_ref().map(|r| &r.info.artifact) == Some(&latest.info.artifact)
        })
        .map(|(c, _)| c.clone())
        .collect())
}

fn save(layout: &Layout, st: &mut SwitcherState, started: Instant) -> anyhow::Result<()> {
    record::stamp(st, started);
    state::save(&layout.switcher_state(), st)
}
