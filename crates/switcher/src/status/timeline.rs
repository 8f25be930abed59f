//! The timeline of the last days, per component: which version ran when,
//! the deploys, failures, rollbacks and recoveries, and DOWN as far as it
//! is known. Built from state/history.jsonl (one line per pass that did
//! something) and state/switcher.json; drawn by [`super::svg`].
//!
//! What runs is replayed from the history, oldest first: a deploy that
//! succeeded starts its artifact; a hand rollback goes back to what ran
//! before (or to the release switcher.json recorded for it); failed deploys
//! change nothing. What switcher.json says runs now has the last word.
//!
//! DOWN is not recorded by any state file: the listen check runs at each
//! pass and only its latest result is kept. The timeline shades what can
//! be derived: the current DOWN stretch (since the first check that found
//! it, carried from the previous deploy-status.json), and the time after a
//! rollback or recovery that failed (the service may be down) until the
//! next change. DOWN stretches that have ended are not known.

use std::collections::BTreeMap;

use artifact_name::ArtifactName;
use chrono::{DateTime, Duration, Utc};
use deploy_root::state::{HistoryEntry, SwitcherState};
use deploy_root::time::serde_rfc3339;
use serde::Serialize;

use super::model::{ComponentStatus, UpDown};

/// The longest stretch the timeline shows.
pub const MAX_SPAN: Duration = Duration::days(7);
/// The shortest: a young history is not squeezed into a sliver.
pub const MIN_SPAN: Duration = Duration::hours(1);

/// What the timeline shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// Its start.
    #[serde(with = "serde_rfc3339::option")]
    pub from: Option<DateTime<Utc>>,
    /// Its end: the document's time.
    #[serde(with = "serde_rfc3339::option")]
    pub to: Option<DateTime<Utc>>,
    /// Per component, by name.
    pub lanes: BTreeMap<String, Lane>,
}

/// One component's lane.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lane {
    /// What ran, oldest first; a gap is a time nothing is known to run.
    pub runs: Vec<Run>,
    /// What happened, oldest first.
    pub events: Vec<Event>,
    /// When it was (or may have been) DOWN, as far as it is known.
    pub down: Vec<Down>,
}

/// One release running from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The artifact (or, when only that is known, the release id).
    /// Untrusted text.
    pub artifact: String,
    /// Its version, where the name tells it. Untrusted text.
    pub version: Option<String>,
    /// Since when.
    #[serde(with = "serde_rfc3339")]
    pub from: DateTime<Utc>,
    /// Until when (the timeline's end while it still runs).
    #[serde(with = "serde_rfc3339")]
    pub to: DateTime<Utc>,
}

/// The kinds of [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A release started.
    Deploy,
    /// A deploy (or a rollback) failed at this component's step.
    Failed,
    /// Another component of the artifact failed; this one went back (or
    /// was not switched) with it.
    WentBack,
    /// Rolled back by hand (`switcher rollback`).
    Rollback,
    /// A pass cut short was finished or undone.
    Recover,
}

/// Something that happened to a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When (the pass's start).
    #[serde(with = "serde_rfc3339")]
    pub at: DateTime<Utc>,
    /// Which kind.
    pub kind: EventKind,
    /// The artifact concerned. Untrusted text.
    pub artifact: Option<String>,
    /// Its version, where the name tells it. Untrusted text.
    pub version: Option<String>,
    /// Who, for a hand rollback, where recorded. Untrusted text.
    pub by: Option<String>,
    /// What happened, in words. Untrusted text (it quotes reasons).
    pub text: String,
}

/// A stretch when the component was, or may have been, DOWN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Down {
    /// Since when.
    #[serde(with = "serde_rfc3339")]
    pub from: DateTime<Utc>,
    /// Until when.
    #[serde(with = "serde_rfc3339")]
    pub to: DateTime<Utc>,
    /// `true` when the check found it DOWN; `false` when it only may have
    /// been (a rollback or recovery failed).
    pub seen: bool,
    /// Why, in words.
    pub why: String,
}

/// The version in an artifact's name (or a release id's), if it parses.
pub fn version_of(name: &str) -> Option<String> {
    ArtifactName::parse(name)
        .or_else(|_| ArtifactName::parse(&format!("{name}.tar")))
        .ok()
        .map(|n| n.version().to_string())
}

/// Builds the timeline as of `now` from `history` (newest first, as the
/// page reads it), the switcher's state and the components' status.
pub fn build(
    switcher: &SwitcherState,
    history: &[HistoryEntry],
    components: &BTreeMap<String, ComponentStatus>,
    now: DateTime<Utc>,
) -> Timeline {
    let oldest_first: Vec<&HistoryEntry> = history.iter().rev().collect();
    let mut lanes = BTreeMap::new();
    let mut earliest = now;
    for (name, c) in components {
        let lane = lane(name, c, switcher, &oldest_first, now);
        if let Some(t) = lane
            .runs
            .iter()
            .map(|r| r.from)
            .chain(lane.events.iter().map(|e| e.at))
            .chain(lane.down.iter().map(|d| d.from))
            .min()
        {
            earliest = earliest.min(t);
        }
        lanes.insert(name.clone(), lane);
    }
    let span = (now - earliest).clamp(MIN_SPAN, MAX_SPAN);
    // A little room before the first thing, so that it is not on the edge.
    let span = (span + span / 20).min(MAX_SPAN);
    let from = now - span;
    for lane in lanes.values_mut() {
        clip(lane, from, now);
    }
    Timeline {
        from: Some(from),
        to: Some(now),
        lanes,
    }
}

/// One component's runs, events and DOWN stretches, unclipped.
fn lane(
    name: &str,
    c: &ComponentStatus,
    switcher: &SwitcherState,
    history: &[&HistoryEntry],
    now: DateTime<Utc>,
) -> Lane {
    let mut lane = Lane::default();
    // What ran before each release, most recent last: a hand rollback
    // returns to the top.
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<(String, DateTime<Utc>)> = None;
    // Since when it may be down (a rollback or recovery failed).
    let mut maybe_down: Option<(DateTime<Utc>, String)> = None;
    let start = |lane: &mut Lane,
                 current: &mut Option<(String, DateTime<Utc>)>,
                 maybe_down: &mut Option<(DateTime<Utc>, String)>,
                 artifact: Option<String>,
                 at: DateTime<Utc>| {
        if let Some((a, from)) = current.take() {
            lane.runs.push(Run {
                version: version_of(&a),
                artifact: a,
                from,
                to: at,
            });
        }
        if let Some((from, why)) = maybe_down.take() {
            lane.down.push(Down {
                from,
                to: at,
                seen: false,
                why,
            });
        }
        *current = artifact.map(|a| (a, at));
    };
    for e in history
        .iter()
        .filter(|e| e.components.iter().any(|x| x == name))
    {
        let artifact = e.artifact.clone();
        let version = artifact.as_deref().and_then(version_of);
        let event = |kind, by: Option<String>, text: String| Event {
            at: e.at,
            kind,
            artifact: artifact.clone(),
            version: version.clone(),
            by,
            text,
        };
        let failed_here = || {
            let failure = artifact.as_ref().and_then(|a| switcher.failed.get(a));
            match failure {
                Some(f) if f.component != name && e.components.contains(&f.component) => {
                    EventKind::WentBack
                }
                _ => EventKind::Failed,
            }
        };
        let reason = e.reason.clone().unwrap_or_default();
        match (e.action.as_str(), e.outcome.as_str()) {
            ("deploy", "deployed") => {
                if let Some((a, _)) = &current {
                    stack.push(a.clone());
                }
                start(
                    &mut lane,
                    &mut current,
                    &mut maybe_down,
                    artifact.clone(),
                    e.at,
                );
                lane.events
                    .push(event(EventKind::Deploy, None, "started".to_string()));
            }
            ("rollback", "rolled-back") => {
                let record = artifact.as_ref().and_then(|a| switcher.rollbacks.get(a));
                let back_to = stack
                    .pop()
                    .or_else(|| record.and_then(|r| r.to.get(name).cloned()));
                let by = record.and_then(|r| r.by.clone());
                start(
                    &mut lane,
                    &mut current,
                    &mut maybe_down,
                    back_to.clone(),
                    e.at,
                );
                let to = back_to
                    .map(|b| format!("; {b} runs again"))
                    .unwrap_or_default();
                lane.events.push(event(
                    EventKind::Rollback,
                    by.clone(),
                    format!(
                        "rolled back by hand by {}{to}",
                        by.as_deref().unwrap_or("someone (not recorded)")
                    ),
                ));
            }
            ("recover", "recovered") => {
                lane.events.push(event(EventKind::Recover, None, reason));
            }
            (action, outcome) => {
                let kind = failed_here();
                let failure = artifact.as_ref().and_then(|a| switcher.failed.get(a));
                let what = match failure {
                    Some(f) => format!(
                        "the {} failed at step {}: {}",
                        f.component, f.step, f.reason
                    ),
                    None => format!("{action} {outcome}: {reason}"),
                };
                let text = match kind {
                    EventKind::WentBack => format!("went back with it: {what}"),
                    _ => what,
                };
                lane.events.push(event(kind, None, text));
                if outcome == "rollback-failed" || outcome == "recover-failed" {
                    maybe_down.get_or_insert((
                        e.at,
                        format!("{action} {outcome}: the service may be down"),
                    ));
                }
            }
        }
    }
    // switcher.json has the last word on what runs now.
    match (&c.running, &current) {
        (Some(r), Some((a, _))) if *a == r.info.artifact || *a == r.release => {}
        (Some(r), _) => {
            if current.as_ref().is_some_and(|(_, from)| *from > r.since) {
                // The history says something started after it: trust the
                // state, and do not draw a run that ends before it starts.
                current = None;
            }
            start(
                &mut lane,
                &mut current,
                &mut maybe_down,
                Some(r.info.artifact.clone()),
                r.since,
            );
        }
        (None, _) => {}
    }
    start(&mut lane, &mut current, &mut maybe_down, None, now);
    if c.status == UpDown::Down {
        let from = c.down_since.unwrap_or(c.checked_at).min(now);
        lane.down.push(Down {
            from,
            to: now,
            seen: true,
            why: "DOWN: nothing listens on its port (since the first check that found it)".into(),
        });
    }
    lane
}

/// Drops what ended before `from` and cuts what began before it.
fn clip(lane: &mut Lane, from: DateTime<Utc>, to: DateTime<Utc>) {
    lane.runs.retain(|r| r.to > from && r.from < r.to);
    for r in &mut lane.runs {
        r.from = r.from.max(from);
        r.to = r.to.min(to);
    }
    lane.events.retain(|e| e.at >= from && e.at <= to);
    lane.down.retain(|d| d.to > from || d.seen);
    for d in &mut lane.down {
        d.from = d.from.max(from);
        d.to = d.to.min(to);
    }
}
