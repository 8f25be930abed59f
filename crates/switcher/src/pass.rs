//! One pass: recover from a cut-short pass if the journal says so, choose
//! the newest eligible staged artifact, prepare its release folders, switch
//! to them (rolling back by itself on failure), record the outcome, prune,
//! and refresh the status page.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use deploy_root::state::{ArtifactInfo, HistoryEntry, RunningRelease, SlotSpan, SwitcherState};
use deploy_root::{fault, lock, state, Config, Layout};

use crate::exit_codes;
use crate::journal::{self, Journal, Step};
use crate::recover::{self, Recovery};
use crate::switch::Outcome;
use crate::{
    bluegreen, control, history, logs, plan, record, release, retention, staged, status, switch,
    transitions,
};

/// Runs one pass and returns the exit code.
pub fn run(config: &Config, layout: &Layout) -> anyhow::Result<u8> {
    // Without the store, a VM of a rolling group would switch without a
    // slot: refuse rather than ignore [fleet].
    if !cfg!(feature = "s3") && (config.fleet.is_some() || config.store.is_some()) {
        tracing::error!(
            "config {}: [store]/[fleet] are set, but this switcher was built without the store (feature s3): install the cutover .deb, or build with --features collector/s3,switcher/s3,deliver/s3",
            config.path.display()
        );
        return Ok(exit_codes::CONFIG);
    }
    layout.ensure()?;
    let Some(_lock) = lock::try_lock(&layout.switcher_lock())? else {
        // Normal when a pass outlasts cron's minute: not worth a mail
        // (info, like the collector; shown with -v).
        tracing::info!(
            "another switcher run holds {}; nothing done",
            layout.switcher_lock().display()
        );
        return Ok(exit_codes::OK);
    };
    fault::point("switcher:after-lock");
    // nginx cannot load a site whose upstream include is missing.
    if let Err(e) = bluegreen::ensure_upstreams(config, layout) {
        tracing::warn!("writing the nginx upstream files: {e:#}");
    }
    // Before any command writes: bounded logs whatever the pass does.
    if let Err(e) = logs::rotate(config, layout) {
        tracing::warn!("rotating the command logs: {e:#}");
    }
    let started = Instant::now();
    let mut fleet_note = None;
    let result = locked_pass(config, layout, started, &mut fleet_note);
    // The status page is refreshed after every pass, whatever its outcome.
    if let Err(e) = status::refresh(config, layout) {
        tracing::warn!("refreshing the status page: {e:#}");
    }
    // ...and, in a fleet, this VM's report in the store (one PUT).
    #[cfg(feature = "s3")]
    match crate::rolling::Fleet::open(config) {
        Ok(Some(fleet)) => crate::rolling::publish_report(&fleet, config, layout, fleet_note, None),
        Ok(None) => {}
        Err(e) => tracing::warn!("the fleet's store: {e:#}"),
    }
    #[cfg(not(feature = "s3"))]
    let _ = fleet_note;
    // Last, still under the lock: word of the pass, never its outcome.
    crate::notify::flush(config, layout);
    result
}

fn locked_pass(
    config: &Config,
    layout: &Layout,
    started: Instant,
    fleet_note: &mut Option<String>,
) -> anyhow::Result<u8> {
    let mut st: SwitcherState = state::load(&layout.switcher_state())?;
    let mut retry = None;
    match recover::recover(config, layout, &mut st)? {
        Recovery::Nothing => {}
        Recovery::Recovered(r) => retry = r,
        Recovery::Failed(why) => {
            tracing::error!(
                "recovering from a cut-short pass failed: {why}; the service may be down"
            );
            save(config, layout, &mut st, started)?;
            return Ok(exit_codes::ROLLBACK_FAILED);
        }
    }
    release::remove_temp_folders(layout)?;
    // Holds set by hand (pin, freeze, follow): lapsed ones are dropped
    // first; `config` then carries the followed branches.
    let (config, held) = &control::for_pass(config, layout)?;
    let staged = staged::list(layout)?;
    #[cfg_attr(not(feature = "s3"), allow(unused_mut))]
    let mut plan = plan::choose_held(config, &st, held, &staged, Utc::now());
    // A fleet (`[fleet]`): the group's holds, the rollout's standing and,
    // in rolling mode, a slot, only when there is something to deploy (an
    // idle pass asks the store nothing).
    #[cfg(feature = "s3")]
    let mut keeper = None;
    #[cfg(feature = "s3")]
    let fleet = match &plan.choice {
        Some(_) => crate::rolling::Fleet::open(config)?,
        None => None,
    };
    #[cfg(feature = "s3")]
    if let Some(fleet) = &fleet {
        match fleet_gate(config, layout, &st, held, &staged, plan, fleet, fleet_note)? {
            FleetGate::Plan(p, k) => {
                plan = p;
                if k.is_some() {
                    fault::point("switcher:fleet-after-lease");
                }
                keeper = k;
            }
            FleetGate::Unfit(p, why) => {
                tracing::error!("{why}");
                st.held.clone_from(&p.held);
                save(config, layout, &mut st, started)?;
                return Ok(exit_codes::STORE_UNFIT);
            }
        }
    }
    #[cfg(not(feature = "s3"))]
    let _ = fleet_note;
    // Said once when an artifact starts being held (cron mails what is
    // printed: not every minute), and recorded for the status page.
    for (artifact, why) in &plan.held {
        if st.held.contains_key(artifact) {
            tracing::debug!("{artifact} is held: {why}");
        } else {
            tracing::warn!("not deploying {artifact}: {why}");
        }
    }
    st.held.clone_from(&plan.held);
    let Some(choice) = plan.choice else {
        tracing::debug!("nothing to deploy");
        save(config, layout, &mut st, started)?;
        retention::prune(config, layout, &st, &staged);
        return Ok(exit_codes::OK);
    };
    #[cfg(feature = "s3")]
    let slot = keeper.as_ref().map(|k| SlotSpan {
        slot: k.slot(),
        taken_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: None,
    });
    #[cfg(not(feature = "s3"))]
    let slot = None;
    let result = deploy(
        config, layout, &mut st, &choice, retry, &staged, started, None, slot,
    );
    #[cfg(feature = "s3")]
    if let Some(fleet) = &fleet {
        crate::rolling::after(fleet, keeper, choice.staged.name.file_name(), &st);
    }
    result
}

/// What the fleet made of a pass's plan.
#[cfg(feature = "s3")]
enum FleetGate {
    /// The plan to follow (its choice may be gone: waiting or halted),
    /// with the slot lease when one was taken.
    Plan(plan::Plan, Option<fleet::lease::Keeper>),
    /// Rolling mode refused to start: the store ignores conditional writes.
    Unfit(plan::Plan, String),
}

/// Applies the group's holds, skips artifacts whose rollout halted (the
/// next newest may go), and takes a slot in rolling mode.
#[cfg(feature = "s3")]
#[allow(clippy::too_many_arguments)]
fn fleet_gate(
    config: &Config,
    layout: &Layout,
    st: &SwitcherState,
    held: &control::Held,
    staged: &[staged::Staged],
    mut plan: plan::Plan,
    fleet: &crate::rolling::Fleet,
    note: &mut Option<String>,
) -> anyhow::Result<FleetGate> {
    use crate::rolling::Gate;
    let now = Utc::now();
    let mut held = held.clone();
    let mut extra = BTreeMap::new();
    match fleet.holds() {
        Ok(group) if !group.is_empty() => {
            let group_held = control::Held::at(config, &group, now);
            let before = plan.choice.take();
            for (c, why) in group_held.0 {
                held.0
                    .entry(c)
                    .or_insert_with(|| format!("{why} (fleet-wide, group {})", fleet.config.group));
            }
            plan = plan::choose_held(config, st, &held, staged, now);
            // What the group's hold kept back is said on the page.
            if let Some(before) = before {
                let artifact = before.staged.name.file_name().to_string();
                let still = plan
                    .choice
                    .as_ref()
                    .is_some_and(|c| c.staged.name.file_name() == artifact);
                let why: Vec<String> = before
                    .components
                    .iter()
                    .filter_map(|c| held.0.get(c).map(|w| format!("{c} {w}")))
                    .collect();
                if !still && !why.is_empty() {
                    extra.insert(artifact, format!("held: {}", why.join("; ")));
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            if let Some(choice) = plan.choice.take() {
                let why = format!("waiting for the store: {e}");
                tracing::warn!("not deploying {}: {why}", choice.staged.name.file_name());
                extra.insert(choice.staged.name.file_name().to_string(), why);
            }
        }
    }
    let mut left: Vec<staged::Staged> = staged.to_vec();
    let mut keeper = None;
    while let Some(choice) = &plan.choice {
        let artifact = choice.staged.name.file_name().to_string();
        let gate = match crate::rolling::gate(fleet, layout, &artifact, config.status.period) {
            Ok(g) => g,
            Err(e) if e.is::<crate::rolling::StoreUnfit>() => {
                plan.held.insert(artifact, e.to_string());
                return Ok(FleetGate::Unfit(plan, format!("{e:#}")));
            }
            Err(e) => return Err(e),
        };
        match gate {
            Gate::Go(k) => {
                keeper = k;
                break;
            }
            Gate::Halted(why) => {
                extra.insert(artifact.clone(), why);
                left.retain(|s| s.name.file_name() != artifact);
                plan = plan::choose_held(config, st, &held, &left, now);
            }
            Gate::Wait(why) => {
                tracing::info!("not deploying {artifact} yet: {why}");
                extra.insert(artifact, why);
                plan.choice = None;
            }
        }
    }
    *note = extra
        .iter()
        .next_back()
        .map(|(a, why)| format!("{a}: {why}"));
    plan.held.extend(extra);
    Ok(FleetGate::Plan(plan, keeper))
}

/// What a deploy by hand (`switcher deploy`) adds to the shared path: who
/// ran it, and what to do once it runs, before the state is written.
pub struct ByHand<'a> {
    /// `SUDO_USER`, else `USER`.
    pub who: String,
    /// Called when the switch succeeded, before the state write: the pin
    /// is written before the state says it runs, so that a crash in
    /// between leaves it pinned (on what ran before, after recovery) and
    /// never running unpinned, which the next pass would replace.
    pub on_deployed: &'a dyn Fn(&mut SwitcherState) -> anyhow::Result<()>,
}

impl std::fmt::Debug for ByHand<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByHand").field("who", &self.who).finish()
    }
}

/// Takes `choice` into service: prepare, stop, flip, start, verify, going
/// back on failure, then record, history and prune. A pass and `switcher
/// deploy` share it; `retry` carries interrupted attempts (see journal).
#[allow(clippy::too_many_arguments)]
pub fn deploy(
    config: &Config,
    layout: &Layout,
    st: &mut SwitcherState,
    choice: &plan::Choice,
    retry: Option<(String, u32)>,
    staged: &[staged::Staged],
    started: Instant,
    by_hand: Option<&ByHand<'_>>,
    slot: Option<SlotSpan>,
) -> anyhow::Result<u8> {
    let at = Utc::now();
    let name = &choice.staged.name;
    let artifact = name.file_name().to_string();
    let id = name.stem().to_string();
    tracing::info!("deploying {artifact} to {}", choice.components.join(", "));
    let info = ArtifactInfo::from(name);
    let from: BTreeMap<String, Option<RunningRelease>> = choice
        .components
        .iter()
        .map(|c| {
            let running = st.components.get(c).and_then(|s| s.running.clone());
            (c.clone(), running)
        })
        .collect();
    let to: BTreeMap<String, RunningRelease> = choice
        .components
        .iter()
        .map(|c| {
            let r = RunningRelease {
                info: info.clone(),
                release: id.clone(),
                since: at,
            };
            (c.clone(), r)
        })
        .collect();
    // Interrupted attempts of this same artifact carry on (see journal).
    let attempts = match retry {
        Some((a, n)) if a == artifact => n,
        _ => 0,
    };
    let mut j = Journal {
        action: "deploy".into(),
        artifact: artifact.clone(),
        components: choice.components.clone(),
        from: from.clone(),
        to: to.clone(),
        step: Step::Prepare,
        attempts,
        failure: None,
        started_at: at,
        slots: BTreeMap::new(),
    };
    journal::save(layout, &j)?;
    let mut steps: Vec<(String, u64)> = Vec::new();
    let t = Instant::now();
    let prepared = match release::prepare(config, layout, st, &choice.staged, &choice.components) {
        Ok(prepared) => prepared,
        Err(e) => {
            // The machine's fault (a full disk...), found before anything
            // running was touched: no journal is left, so the next pass does
            // not count an interrupted attempt against the artifact.
            journal::remove(layout)?;
            return Err(e);
        }
    };
    steps.push(("prepare".into(), ms(t)));
    let mut entry = HistoryEntry {
        at,
        action: "deploy".into(),
        artifact: Some(artifact.clone()),
        components: choice.components.clone(),
        outcome: String::new(),
        reason: None,
        steps: Vec::new(),
        total_ms: 0,
        slot,
    };
    if let Err(failure) = prepared {
        tracing::error!("{artifact}: {failure}; nothing running was touched");
        fault::point("switcher:before-state-write");
        record::mark_failed(st, failure.to_failure(&artifact, Utc::now()), &from);
        entry.outcome = format!("{}-failed", failure.step);
        entry.reason = Some(failure.to_string());
        finish(config, layout, st, entry, steps, started, by_hand)?;
        retention::prune(config, layout, st, staged);
        return Ok(exit_codes::DEPLOY_FAILED);
    }
    let t = Instant::now();
    let outcome = match switch::switch(config, layout, &mut j) {
        Ok(outcome) => outcome,
        Err(e) => {
            // The machine's fault (the journal cannot be written: a full
            // disk) before anything was stopped: the service runs on
            // untouched, nothing is marked, and no journal may be left, or
            // the next pass would count an interrupted attempt against the
            // artifact. The prepared folders go too: they hold space.
            if let Err(e) = journal::remove(layout) {
                tracing::error!("{e:#}");
            }
            if let Err(e) = release::remove_releases(layout, &choice.components, &id) {
                tracing::error!("{e:#}");
            }
            return Err(e.context(format!("not deploying {artifact}")));
        }
    };
    steps.push(("switch".into(), ms(t)));
    journal::step(layout, &mut j, Step::Record)?;
    fault::point("switcher:before-state-write");
    bluegreen::record(st, &j, matches!(outcome, Outcome::Done));
    let code = match outcome {
        Outcome::Done => {
            if let Some(h) = by_hand {
                (h.on_deployed)(st)?;
            }
            record::deployed(st, &to, Utc::now());
            entry.outcome = "deployed".into();
            tracing::info!("{artifact} runs now ({})", choice.components.join(", "));
            exit_codes::OK
        }
        Outcome::RolledBack(failure) => {
            tracing::error!("{artifact}: {failure}; rolled back, the previous release runs again");
            record::mark_failed(st, failure.to_failure(&artifact, Utc::now()), &from);
            entry.outcome = "rolled-back".into();
            entry.reason = Some(failure.to_string());
            exit_codes::DEPLOY_FAILED
        }
        Outcome::RollbackFailed(failure, why) => {
            tracing::error!(
                "{artifact}: {failure}; going back failed too: {why}; the service may be down"
            );
            let mut f = failure.to_failure(&artifact, Utc::now());
            f.rollback_failed = true;
            record::mark_failed(st, f, &from);
            entry.outcome = "rollback-failed".into();
            entry.reason = Some(format!("{failure}; going back failed: {why}"));
            exit_codes::ROLLBACK_FAILED
        }
    };
    finish(config, layout, st, entry, steps, started, by_hand)?;
    retention::prune(config, layout, st, staged);
    Ok(code)
}

/// Writes the state, appends the history line, removes the journal (in
/// that order: a crash in between leaves a journal that recovery sees as
/// complete or re-does harmlessly).
fn finish(
    config: &Config,
    layout: &Layout,
    st: &mut SwitcherState,
    mut entry: HistoryEntry,
    steps: Vec<(String, u64)>,
    started: Instant,
    by_hand: Option<&ByHand<'_>>,
) -> anyhow::Result<()> {
    // The events go to the outbox before the state that records them.
    crate::notify::emit_history(layout, st, &entry, by_hand.map(|h| h.who.as_str()));
    save(config, layout, st, started)?;
    entry.steps = steps;
    entry.total_ms = ms(started);
    if let Some(slot) = &mut entry.slot {
        slot.ended_at = Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    match by_hand {
        None => history::append(layout, &entry)?,
        Some(h) => history::append_any(
            layout,
            &deploy_root::control::AttributedEntry {
                entry,
                who: h.who.clone(),
            },
        )?,
    }
    journal::remove(layout)
}

fn save(
    config: &Config,
    layout: &Layout,
    st: &mut SwitcherState,
    started: Instant,
) -> anyhow::Result<()> {
    // Last thing before the state is written, so that what is seen (and
    // said) is what this pass leaves running.
    transitions::update(config, st);
    record::stamp(st, started);
    state::save(&layout.switcher_state(), st)
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}
