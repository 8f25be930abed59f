//! Finishing or undoing a pass that was cut short (killed, crashed, power
//! lost), from what the journal says it was about to do.
//!
//! - Cut short before `stop`: nothing running was touched; the temp and
//!   half-made release folders are removed.
//! - Cut short at `stop` or later: back to the from-release with
//!   [`switch::restore`] (stop, flip back unless current/ already points
//!   there, start, verify).
//! - The state already names the to-release (the pass died after its state
//!   write): the pass was complete; the journal is just removed.
//!
//! A crash is not the artifact's fault, so it is not marked failed; the
//! normal pass then tries it again. The journal counts interrupted
//! attempts ([`Recovery::Recovered`] hands the count to the pass that
//! follows), and the second one marks the artifact failed ("interrupted
//! twice"). A pass that died while rolling back from a real failure still
//! records that failure.

use chrono::Utc;
use deploy_root::state::{HistoryEntry, SwitcherState};
use deploy_root::{Config, Layout};

use crate::journal::{self, Step};
use crate::{history, record, release, switch};

/// After this many interrupted attempts an artifact is marked failed.
pub const MAX_INTERRUPTED: u32 = 2;

/// What recovery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// There was nothing to recover.
    Nothing,
    /// A cut-short pass was undone; what runs now is consistent. When its
    /// artifact may be tried again: the artifact and how many attempts
    /// were interrupted so far.
    Recovered(Option<(String, u32)>),
    /// Going back failed: the service may be down (the reason).
    Failed(String),
}

/// Recovers from the journal, if there is one to act on.
pub fn recover(
    config: &Config,
    layout: &Layout,
    state: &mut SwitcherState,
) -> anyhow::Result<Recovery> {
    let Some(mut j) = journal::load(layout)? else {
        return Ok(Recovery::Nothing);
    };
    let started = std::time::Instant::now();
    let at = Utc::now();
    let committed = j.components.iter().all(|c| {
        let running = state
            .components
            .get(c)
            .and_then(|s| s.running.as_ref())
            .map(|r| r.release.as_str());
        running.is_some() && running == j.to.get(c).map(|r| r.release.as_str())
    });
    let failure_recorded = j.failure.is_some() && state.failed.contains_key(&j.artifact);
    if j.step == Step::Record && ((committed && j.failure.is_none()) || failure_recorded) {
        tracing::info!(
            "journal: the pass for {} had completed; removing the journal",
            j.artifact
        );
        journal::remove(layout)?;
        return Ok(Recovery::Nothing);
    }
    tracing::warn!(
        "a pass was cut short at step {} while taking {} into service; recovering",
        j.step.as_str(),
        j.artifact
    );
    release::remove_temp_folders(layout)?;
    let restored = if j.step == Step::Prepare {
        if let Some(to) = j.to.values().next() {
            release::remove_releases(layout, &j.components, &to.release)?;
        }
        Ok(())
    } else {
        switch::restore(config, layout, &j.components, &j.from)?
    };
    let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut entry = HistoryEntry {
        at,
        action: "recover".into(),
        artifact: Some(j.artifact.clone()),
        components: j.components.clone(),
        outcome: "recovered".into(),
        reason: Some(format!("a pass was cut short at step {}", j.step.as_str())),
        steps: vec![("recover".into(), total_ms)],
        total_ms,
        slot: None,
    };
    if let Err(why) = &restored {
        entry.outcome = "recover-failed".into();
        entry.reason = Some(format!(
            "a pass was cut short at step {}; going back failed: {why}",
            j.step.as_str()
        ));
    }
    let mut retry = None;
    // What is marked failed is saved before the journal goes: once the
    // journal is removed nothing else remembers it, and the caller may still
    // stop on an error before its own save.
    let save = |state: &SwitcherState| deploy_root::state::save(&layout.switcher_state(), state);
    if let (Some(mut failure), "deploy") = (j.failure.clone(), j.action.as_str()) {
        // The pass had failed for real and died while going back.
        failure.rollback_failed = restored.is_err();
        record::mark_failed(state, failure, &j.from);
        save(state)?;
        journal::remove(layout)?;
    } else if j.action == "deploy" {
        j.attempts += 1;
        if j.attempts >= MAX_INTERRUPTED {
            let failure = deploy_root::state::Failure {
                artifact: j.artifact.clone(),
                component: j.components.first().cloned().unwrap_or_default(),
                step: j.step.as_str().to_string(),
                exit_code: None,
                reason: format!(
                    "interrupted twice (the last time at step {}); not tried again by itself",
                    j.step.as_str()
                ),
                output_tail: Vec::new(),
                at,
                running_instead: Default::default(),
                rollback_failed: restored.is_err(),
            };
            record::mark_failed(state, failure, &j.from);
            save(state)?;
        } else {
            retry = Some((j.artifact.clone(), j.attempts));
        }
        journal::remove(layout)?;
    } else {
        journal::remove(layout)?;
    }
    history::append(layout, &entry)?;
    Ok(match restored {
        Ok(()) => Recovery::Recovered(retry),
        Err(why) => Recovery::Failed(why),
    })
}
