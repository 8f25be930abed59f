//! The seed's troubleshooting rules, applied: from what [`Inputs`] read to
//! the [`StatusDoc`], with every rule that fires named in words.
//!
//! The seed (the operations note this product replaces) says: Status DOWN
//! means the server has crashed; UP does not prove it works; Last and
//! Running may differ for a few minutes after a pipeline, and if they
//! differ for long someone must find out why the new version does not
//! start; if the pipeline passed but Last stays stale, the script that
//! receives artifacts is not working. Each of those is a [`Problem`] here,
//! plus what the new parts add: failed deploys, uploads waiting for their
//! marker, quarantined files, unreadable state.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use deploy_root::state::{
    CollectorState, Failure, HandRollback, LastArtifact, Slot, SwitcherState,
};
use deploy_root::time::{age, human};
use deploy_root::Config;

use super::inputs::HISTORY_LINES;
use super::inputs::{Inputs, Probe};
use super::model::{
    BlueGreen, CollectorRun, ComponentStatus, Problem, StatusDoc, SwitcherRun, Sync, SyncState,
    UpDown, FAILURES_LISTED, SCHEMA,
};
use super::timeline;
use crate::probe::Health;

/// A quarantined file counts as a problem this long; after that it is only
/// listed (quarantine/ keeps files until the collector prunes them).
const RECENT_QUARANTINE: Duration = Duration::hours(24);

/// Builds the document from `inputs` as of `now`.
pub fn document(config: &Config, inputs: &Inputs, now: DateTime<Utc>) -> StatusDoc {
    document_with(config, inputs, &BTreeMap::new(), now)
}

/// [`document`], knowing since when each component that the previous
/// page found DOWN has been DOWN (`down_before`: component to time).
pub fn document_with(
    config: &Config,
    inputs: &Inputs,
    down_before: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StatusDoc {
    let empty_collector = CollectorState::default();
    let empty_switcher = SwitcherState::default();
    let collector = inputs.collector.as_ref().unwrap_or(&empty_collector);
    let switcher = inputs.switcher.as_ref().unwrap_or(&empty_switcher);
    let states_readable = inputs.collector.is_ok() && inputs.switcher.is_ok();

    let mut components = BTreeMap::new();
    for (name, component) in &config.components {
        let last = collector.last.get(name).cloned();
        let state = switcher.components.get(name);
        let running = state.and_then(|s| s.running.clone());
        let probe = inputs.probes.get(name).cloned().unwrap_or(Probe {
            listening: false,
            health: None,
            checked_at: now,
        });
        let sync = if states_readable {
            sync_of(
                name,
                config,
                last.as_ref(),
                running.as_ref(),
                switcher,
                inputs,
                now,
            )
        } else {
            Sync {
                state: SyncState::Unknown,
                since: None,
                minutes: None,
                reason: Some("a state file cannot be read (see the problems)".into()),
            }
        };
        // Held by hand (pinned, frozen): waiting is what was asked for.
        let sync = super::control::held_sync(name, sync, &inputs.control, now);
        let failed_last = last
            .as_ref()
            .and_then(|l| switcher.failed.get(&l.info.artifact));
        let last_failure = match (sync.state, failed_last) {
            (SyncState::Failed | SyncState::RolledBack, Some(f)) => Some(f.clone()),
            _ => state.and_then(|s| s.last_failure.clone()),
        };
        let rolled_back = match (sync.state, last.as_ref()) {
            (SyncState::RolledBack, Some(l)) => hand_rollback(switcher, &l.info.artifact),
            _ => None,
        };
        let failures = failures_of(config, name, running.as_ref(), switcher);

        let mut problems = Vec::new();
        let status = if probe.listening {
            UpDown::Up
        } else {
            UpDown::Down
        };
        let down_since = (status == UpDown::Down).then(|| {
            down_before
                .get(name)
                .copied()
                .unwrap_or(probe.checked_at)
                .min(probe.checked_at)
        });
        if status == UpDown::Down {
            let during = if sync.state == SyncState::Switching {
                " (a switch is under way, so this may last only moments)"
            } else {
                ""
            };
            problems.push(Problem {
                rule: "down",
                message: format!(
                    "the {name} is not listening on port {}: it has crashed or was stopped, and is not working{during}",
                    component.port
                ),
            });
        }
        let health = probe.health.as_ref().map(|h| match h {
            Health::Healthy(_) => "healthy".to_string(),
            other => format!(
                "unhealthy: {}",
                other.describe(component.health_url.as_deref().unwrap_or(""))
            ),
        });
        if let (Some(h), Some(url)) = (&probe.health, &component.health_url) {
            if !h.is_healthy() {
                problems.push(Problem {
                    rule: "unhealthy",
                    message: format!(
                        "the {name} is UP but not healthy: {}. Listening does not prove it works; someone has to investigate (the cause may be in the business logic)",
                        h.describe(url)
                    ),
                });
            }
        }
        if let Some(p) = sync_problem(name, &sync, last.as_ref(), config, now) {
            problems.push(p);
        }

        let blue_green = component.is_blue_green().then(|| {
            let slot = state.and_then(|s| s.slot).unwrap_or(Slot::Blue);
            BlueGreen {
                slot,
                port: slot.port(&component.ports),
                idle_slot: slot.other(),
                idle_port: slot.other().port(&component.ports),
                idle_release: state.and_then(|s| s.idle.clone()),
            }
        });
        components.insert(
            name.clone(),
            ComponentStatus {
                port: blue_green.as_ref().map_or(component.port, |b| b.port),
                last,
                running,
                status,
                down_since,
                checked_at: probe.checked_at,
                health_url: component.health_url.clone(),
                health,
                sync,
                last_failure,
                failures,
                rolled_back,
                problems,
                blue_green,
            },
        );
    }
    failed_deploy_problems(&mut components, switcher);
    let timeline = timeline::build(switcher, &inputs.history, &components, now);

    StatusDoc {
        schema: SCHEMA,
        generated_at: now,
        components,
        collector: CollectorRun {
            last_run: collector.last_run,
            last_error: collector.last_error.clone(),
            state_error: inputs.collector.as_ref().err().cloned(),
            store: collector.store.clone(),
        },
        switcher: SwitcherRun {
            last_run: switcher.last_run,
            last_pass_ms: switcher.last_pass_ms,
            failures_total: switcher.failures_total,
            state_error: inputs.switcher.as_ref().err().cloned(),
        },
        waiting: collector.waiting.clone(),
        quarantined: inputs.quarantined.clone(),
        history: inputs.history.iter().take(HISTORY_LINES).cloned().collect(),
        timeline,
        control: super::control::view(&inputs.control, now),
        problems: global_problems(config, inputs, collector, switcher, now),
    }
}

/// Which of the sync cases holds for one component.
fn sync_of(
    name: &str,
    config: &Config,
    last: Option<&LastArtifact>,
    running: Option<&deploy_root::state::RunningRelease>,
    switcher: &SwitcherState,
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> Sync {
    let make = |state, since: Option<DateTime<Utc>>, reason: Option<String>| Sync {
        state,
        since,
        minutes: since.map(|s| (now - s).num_minutes().max(0)),
        reason,
    };
    if let Some(since) = inputs.journal_since {
        return make(SyncState::Switching, Some(since), None);
    }
    let Some(last) = last else {
        // Nothing collected: nothing newer waits to run.
        return make(
            SyncState::InSync,
            running.map(|r| r.since),
            Some("no artifact collected yet".into()),
        );
    };
    if running.is_some_and(|r| r.info.artifact == last.info.artifact) {
        return make(SyncState::InSync, running.map(|r| r.since), None);
    }
    if let Some(r) = hand_rollback(switcher, &last.info.artifact) {
        return make(
            SyncState::RolledBack,
            Some(r.at),
            Some(format!(
                "{} rolled it back by hand with `switcher rollback`; it is not deployed again by itself: deploy it by hand, or deliver a newer build",
                r.by.as_deref().unwrap_or("someone (who was not recorded)")
            )),
        );
    }
    if let Some(f) = switcher.failed.get(&last.info.artifact) {
        let owner = owner_of(f);
        let reason = if owner != name {
            format!(
                "went back with the {owner}, which failed at step {}: {}",
                f.step, f.reason
            )
        } else {
            format!("step {}: {}", f.step, f.reason)
        };
        return make(SyncState::Failed, Some(f.at), Some(reason));
    }
    // Why the switcher holds it back now (a build dated ahead, a fleet slot
    // or the store being waited for), else what it recorded last.
    let held = switcher.held.get(&last.info.artifact).cloned();
    make(
        SyncState::OutOfSync,
        Some(last.collected_at),
        held.or_else(|| recorded_reason(&last.info.artifact, inputs))
            .or_else(|| branch_reason(config, last)),
    )
}

/// Whether a held reason is a fleet VM waiting its turn (rolling::gate's
/// words), not something for a person to look at.
fn is_fleet_wait(reason: &str) -> bool {
    reason.starts_with("waiting for one of the group")
        || reason.starts_with("waiting for the store")
}

/// Why the switcher will not pick `last` by itself, when its branch is not
/// one it deploys (the same test as the switcher's plan: exact names).
fn branch_reason(config: &Config, last: &LastArtifact) -> Option<String> {
    let branches = &config.switcher.branches;
    (!branches.is_empty() && !branches.contains(&last.info.branch)).then(|| {
        format!(
            "its branch {} is not in switcher.branches ({}), so it does not deploy by itself; deploy it by hand or add the branch",
            last.info.branch,
            branches.join(", ")
        )
    })
}

/// The newest reason the switcher recorded about `artifact` in its history.
fn recorded_reason(artifact: &str, inputs: &Inputs) -> Option<String> {
    inputs
        .history
        .iter()
        .find(|h| h.artifact.as_deref() == Some(artifact) && h.reason.is_some())
        .and_then(|h| {
            h.reason
                .as_ref()
                .map(|r| format!("the switcher recorded {}: {r}", h.outcome))
        })
}

/// The problem a sync state is, if it is one. A failed deploy is listed
/// by [`failed_deploy_problems`], once, under the component that failed.
fn sync_problem(
    name: &str,
    sync: &Sync,
    last: Option<&LastArtifact>,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<Problem> {
    let last = last?;
    match sync.state {
        SyncState::OutOfSync => {
            let since = sync.since?;
            let limit = config.status.out_of_sync_after;
            if (now - since).to_std().map_or(true, |d| d <= limit) {
                // A few minutes after a pipeline this is normal (the seed).
                return None;
            }
            let why = match &sync.reason {
                Some(r) => format!(" ({r})"),
                None => {
                    " (no reason recorded: see the switcher's last runs and state/logs/)".into()
                }
            };
            Some(Problem {
                rule: "out-of-sync",
                message: format!(
                    "the new {name} version {} ({}) has not started for {} min, longer than the {} allowed{why}; someone has to find out why",
                    last.info.version,
                    last.info.artifact,
                    sync.minutes.unwrap_or(0),
                    span(limit)
                ),
            })
        }
        _ => None,
    }
}

/// The hand rollback of `artifact`, if it was rolled back by hand: as
/// recorded, or (state written before who was recorded) from its failure
/// mark at step `rollback`.
fn hand_rollback(switcher: &SwitcherState, artifact: &str) -> Option<HandRollback> {
    if let Some(r) = switcher.rollbacks.get(artifact) {
        return Some(r.clone());
    }
    let f = switcher.failed.get(artifact)?;
    (f.step == "rollback").then(|| HandRollback {
        artifact: f.artifact.clone(),
        components: f.running_instead.keys().cloned().collect(),
        by: None,
        at: f.at,
        to: f.running_instead.clone(),
    })
}

/// The component a failure belongs to: the one whose step failed. A
/// failure recorded under a name that is not one of the artifact's
/// components (an older state) belongs to the first of them.
fn owner_of(f: &Failure) -> String {
    if f.running_instead.is_empty() || f.running_instead.contains_key(&f.component) {
        f.component.clone()
    } else {
        f.running_instead
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| f.component.clone())
    }
}

/// The failed deploys listed under `name`: its own step failed, and it has
/// not started a release since (a later deploy that succeeded ends the
/// listing). Hand rollbacks are not failures. Newest first.
fn failures_of(
    config: &Config,
    name: &str,
    running: Option<&deploy_root::state::RunningRelease>,
    switcher: &SwitcherState,
) -> Vec<Failure> {
    let mut out: Vec<Failure> = switcher
        .failed
        .values()
        .filter(|f| f.step != "rollback" && !switcher.rollbacks.contains_key(&f.artifact))
        .filter(|f| {
            let owner = owner_of(f);
            owner == name || (!config.components.contains_key(&owner) && f.component == name)
        })
        .filter(|f| running.map_or(true, |r| f.at > r.since))
        .cloned()
        .collect();
    out.sort_by(|a, b| b.at.cmp(&a.at).then(a.artifact.cmp(&b.artifact)));
    out.truncate(FAILURES_LISTED);
    out
}

/// One `deploy-failed` problem per failed artifact that is still some
/// component's Last: under the component that failed when that component
/// lists it, else under the first whose Last it is.
fn failed_deploy_problems(
    components: &mut BTreeMap<String, ComponentStatus>,
    switcher: &SwitcherState,
) {
    let mut by_artifact: BTreeMap<String, (Failure, Vec<String>)> = BTreeMap::new();
    for (name, c) in components.iter() {
        if c.sync.state != SyncState::Failed {
            continue;
        }
        let Some(f) = c
            .last
            .as_ref()
            .and_then(|l| switcher.failed.get(&l.info.artifact))
        else {
            continue;
        };
        by_artifact
            .entry(f.artifact.clone())
            .or_insert_with(|| (f.clone(), Vec::new()))
            .1
            .push(name.clone());
    }
    for (artifact, (f, with_last)) in by_artifact {
        let owner = owner_of(&f);
        let under = if components
            .get(&owner)
            .is_some_and(|c| c.failures.iter().any(|x| x.artifact == artifact))
        {
            owner.clone()
        } else {
            with_last[0].clone()
        };
        let version = components
            .get(&with_last[0])
            .and_then(|c| c.last.as_ref())
            .map(|l| l.info.version.clone())
            .unwrap_or_default();
        let message = failed_message(&f, &owner, &version);
        if let Some(c) = components.get_mut(&under) {
            c.problems.push(Problem {
                rule: "deploy-failed",
                message,
            });
        }
    }
}

/// The steps of a deploy after which the running release was touched
/// (and so went back); before them nothing running was touched.
const SWITCH_STEPS: &[&str] = &["stop", "flip", "start", "reload", "verify", "switch"];

/// "the new version 3 (full_...) did not start: the backend failed at step
/// start (exit code 1): ...; the frontend went back with it; running
/// instead: ...".
pub fn failed_message(f: &Failure, owner: &str, version: &str) -> String {
    let exit = f
        .exit_code
        .map(|c| format!(" (exit code {c})"))
        .unwrap_or_default();
    let others: Vec<&str> = f
        .running_instead
        .keys()
        .map(String::as_str)
        .filter(|c| *c != owner)
        .collect();
    let with = if others.is_empty() {
        String::new()
    } else if SWITCH_STEPS.contains(&f.step.as_str()) {
        format!("; the {} went back with it", others.join(" and the "))
    } else {
        format!(
            "; the {} was not switched either (nothing running was touched)",
            others.join(" and the ")
        )
    };
    let instead = if f.running_instead.is_empty() {
        "nothing runs instead".to_string()
    } else {
        let list: Vec<String> = f
            .running_instead
            .iter()
            .map(|(c, a)| format!("{c}: {a}"))
            .collect();
        format!("running instead: {}", list.join(", "))
    };
    let rollback = if f.rollback_failed {
        "; going back failed too, so the service may be down"
    } else {
        ""
    };
    format!(
        "the new version {version} ({}) did not start: the {owner} failed at step {}{exit}: {}{with}; {instead}{rollback}. It will not be tried again by itself",
        f.artifact, f.step, f.reason
    )
}

/// A config duration in words: "10 min", "90 s", "2 h".
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// "1 problem", "2 problems": a count with its noun.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// When a time is shown in a message: "2026-11-26 23:50:12 UTC (12 min ago)".
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", human(t), age(t, now))
}

/// The problems that concern no single component.
fn global_problems(
    config: &Config,
    inputs: &Inputs,
    collector: &CollectorState,
    switcher: &SwitcherState,
    now: DateTime<Utc>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (file, err) in [
        ("state/collector.json", inputs.collector.as_ref().err()),
        ("state/switcher.json", inputs.switcher.as_ref().err()),
    ] {
        if let Some(err) = err {
            problems.push(Problem {
                rule: "state-unreadable",
                message: format!(
                    "{file} cannot be read, so this page cannot tell Last or Running: {err}"
                ),
            });
        }
    }

    // Cron runs both every period; two periods without a run is not a
    // late start any more.
    let period = config.status.period;
    let limit = Duration::from_std(period * 2).unwrap_or(Duration::MAX);
    let stale = |last_run: Option<DateTime<Utc>>| last_run.map_or(true, |t| now - t > limit);
    let not_run = |last_run: Option<DateTime<Utc>>, file: &str| match last_run {
        Some(t) => format!(
            "has not run since {}, more than two periods ({})",
            when(t, now),
            span(period * 2)
        ),
        None => format!("has never run ({file} records no run)"),
    };
    if inputs.collector.is_ok() && stale(collector.last_run) {
        problems.push(Problem {
            rule: "collector-not-running",
            message: format!(
                "the artifact receiver (collector) {}: if a pipeline passed but Last stays stale, this is why; check its cron job or timer",
                not_run(collector.last_run, "state/collector.json")
            ),
        });
    }
    if inputs.switcher.is_ok() && stale(switcher.last_run) {
        problems.push(Problem {
            rule: "switcher-not-running",
            message: format!(
                "the switcher {}: new versions will not start; check its cron job or timer",
                not_run(switcher.last_run, "state/switcher.json")
            ),
        });
    }
    if let Some(since) = inputs.journal_since {
        if (now - since)
            .to_std()
            .is_ok_and(|d| d > config.status.out_of_sync_after)
        {
            problems.push(Problem {
                rule: "switch-stuck",
                message: format!(
                    "a switch has been under way since {} (state/journal.json exists): the switcher was probably killed mid-pass; its next pass recovers from the journal",
                    when(since, now)
                ),
            });
        }
    }
    // A build the switcher holds back (dated ahead of this VM's clock)
    // would otherwise only show as Last != Running with no reason.
    for (artifact, reason) in &switcher.held {
        // A fleet VM waiting for a switch slot (or for the store) is a
        // rollout going its normal way: the component's sync reason says
        // so, and out-of-sync becomes a problem only past
        // status.out_of_sync_after, as after any pipeline.
        if is_fleet_wait(reason) {
            continue;
        }
        problems.push(Problem {
            rule: "build-held",
            message: format!("{artifact} is not deployed: {reason}"),
        });
    }
    if let Some(err) = &collector.last_error {
        problems.push(Problem {
            rule: "collector-error",
            message: format!("the collector's last pass failed: {err}"),
        });
    }
    // The store's outage stops only what is delivered there; the drop
    // folder and what runs go on. The collector exits 0 through it (cron
    // would mail every minute), so this line is where it is noticed.
    if let Some(store) = &collector.store {
        if let (Some(err), Some(since)) = (&store.last_error, store.error_since) {
            problems.push(Problem {
                rule: "store-unreachable",
                message: format!(
                    "the store {} cannot be reached since {}: {err}; builds delivered there are not collected until it can be (the drop folder still is)",
                    store.url,
                    when(since, now)
                ),
            });
        }
    }
    for w in collector.waiting.iter().filter(|w| w.stale) {
        problems.push(Problem {
            rule: "upload-waiting",
            message: format!(
                "the upload {} ({} bytes) has waited for its marker since {}: {}",
                w.name,
                w.size,
                when(w.modified, now),
                w.reason
            ),
        });
    }
    for q in &inputs.quarantined {
        if q.modified.is_some_and(|t| now - t <= RECENT_QUARANTINE) {
            problems.push(Problem {
                rule: "quarantined",
                message: format!(
                    "{} was quarantined: {}",
                    q.name,
                    q.reason.as_deref().unwrap_or("no reason file")
                ),
            });
        }
    }
    if let Some(err) = &inputs.quarantine_error {
        problems.push(Problem {
            rule: "state-unreadable",
            message: err.clone(),
        });
    }
    for err in &inputs.history_errors {
        problems.push(Problem {
            rule: "history-unreadable",
            message: err.clone(),
        });
    }
    problems
}
