//! Notifications: word of deploys, failures, rollbacks and components going
//! down, sent to the `[[notify.target]]`s of the config (docs/notifications.md).
//!
//! Delivery never blocks or fails a deploy. Where an outcome happens, the
//! pass calls [`emit`] (or [`emit_history`]), which writes the event to the
//! outbox (state/outbox/, see [`outbox`]) before the state write that
//! records the outcome; at the end of the pass, still under the lock,
//! [`flush`] notes what changed since the last pass (a component down,
//! unhealthy or recovered, a stale upload, a quarantined file) and sends
//! what waits, each target in its own thread with its own time limit
//! ([`send`]). What a target does not take is retried on later passes,
//! and dropped after `notify.give_up_after` with a log line and a line on
//! the status page ([`annotate`]). At least once: a receiver drops
//! duplicates by the event's `id`.
//!
//! - [`event`]: the event and its kinds; [`outbox`]: the files.
//! - [`send`]: HTTP and commands; [`slack`]: `{"text": ...}`.
//!
//! The control verbs (`crate::control`: freeze, unfreeze, pin, unpin, and
//! `switcher deploy`'s pin) [`emit`] after their state write, under the
//! lock, then [`flush`]; a hold that lapses by itself is emitted by the
//! pass that drops it.

pub mod event;
pub mod outbox;
pub mod send;
pub mod slack;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use deploy_root::state::{CollectorState, HistoryEntry, SwitcherState};
use deploy_root::{fault, Config, Layout};

pub use event::{Event, Kind};

use crate::status::model::{Problem, StatusDoc};
use outbox::{NotifyState, Progress};

/// A target failing this long is a problem on the status page.
const FAILING_PROBLEM_AFTER: chrono::Duration = chrono::Duration::minutes(10);
/// A dropped event stays a problem on the page this long.
const DROPPED_PROBLEM_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Puts `event` in the outbox, durably. Never fails the caller: an event
/// that cannot be written is logged as lost.
pub fn emit(layout: &Layout, event: Event) {
    match outbox::append(layout, &event) {
        Ok(path) => tracing::debug!(
            "notify: {} queued as {}",
            event.kind.as_str(),
            path.display()
        ),
        Err(e) => tracing::error!(
            "notify: the {} event could not be written to the outbox and is lost: {e:#}",
            event.kind.as_str()
        ),
    }
}

/// The events of a pass's, `switcher deploy`'s or `switcher rollback`'s
/// outcome, from its history entry and the state that records it; call
/// before the state is saved. `who`: the user of a command run by hand
/// (`switcher deploy`, `switcher rollback`), `None` for a pass.
pub fn emit_history(layout: &Layout, st: &SwitcherState, entry: &HistoryEntry, who: Option<&str>) {
    for mut event in events_of(st, entry) {
        if let Some(who) = who {
            event.who = Some(who.to_string());
            // What the command did is by hand; a rollback after a failed
            // deploy by hand is still automatic.
            if event.by.is_none() {
                event.by = Some("hand".into());
            }
        }
        emit(layout, event);
    }
}

/// What [`emit_history`] emits: `failed` (with step, component, tail),
/// then `rolled-back` or `rollback-failed` when the deploy went back; or
/// `deployed`; or, for `switcher rollback`, `rolled-back` / `rollback-failed`
/// by hand.
pub fn events_of(st: &SwitcherState, entry: &HistoryEntry) -> Vec<Event> {
    let artifact = entry.artifact.clone().unwrap_or_default();
    let base = |kind| {
        let e = Event::new(kind).components(entry.components.clone());
        if artifact.is_empty() {
            e
        } else {
            e.artifact(&artifact)
        }
    };
    let failed = || {
        let mut e = base(Kind::Failed);
        match st.failed.get(&artifact) {
            Some(f) => {
                e.component = Some(f.component.clone());
                e.step = Some(f.step.clone());
                e.exit_code = f.exit_code;
                e.reason = Some(f.reason.clone());
                e.tail = f.output_tail.clone();
            }
            None => e.reason = entry.reason.clone(),
        }
        e
    };
    let reason = |e: Event| match &entry.reason {
        Some(r) => e.reason(r.clone()),
        None => e,
    };
    match (entry.action.as_str(), entry.outcome.as_str()) {
        ("deploy", "deployed") => vec![base(Kind::Deployed)],
        ("deploy", "rolled-back") => vec![failed(), reason(base(Kind::RolledBack).by("automatic"))],
        ("deploy", "rollback-failed") => {
            vec![failed(), reason(base(Kind::RollbackFailed).by("automatic"))]
        }
        ("deploy", o) if o.ends_with("-failed") => vec![failed()],
        ("rollback", "rolled-back") => vec![base(Kind::RolledBack)
            .by("hand")
            .reason("rolled back by hand with `switcher rollback`")],
        ("rollback", "failed" | "rollback-failed") => {
            vec![reason(base(Kind::RollbackFailed).by("hand"))]
        }
        _ => Vec::new(),
    }
}

/// The end of a pass: note what changed since the last one, then send
/// what waits. Never fails the pass; problems are logged.
pub fn flush(config: &Config, layout: &Layout) {
    if config.notify.targets.is_empty() {
        // Nobody to tell: what was emitted is nobody's.
        if let Ok(entries) = outbox::list(layout) {
            let paths: Vec<_> = entries.into_iter().map(|(p, _)| p).collect();
            if let Err(e) = outbox::remove(layout, &paths) {
                tracing::warn!("notify: {e:#}");
            }
        }
        return;
    }
    let mut ns = match outbox::load_state(layout) {
        Ok(ns) => ns,
        Err(e) => {
            tracing::warn!("notify: {e:#}; starting a new one");
            NotifyState::default()
        }
    };
    for event in observe(layout, &mut ns) {
        emit(layout, event);
    }
    if let Err(e) = outbox::save_state(layout, &mut ns) {
        tracing::warn!("notify: {e:#}");
    }
    fault::point("switcher:before-notify-send");
    if let Err(e) = deliver(config, layout, &mut ns) {
        tracing::warn!("notify: {e:#}");
    }
    if let Err(e) = outbox::save_state(layout, &mut ns) {
        tracing::warn!("notify: {e:#}");
    }
}

/// Transitions since the last pass: component status from the status page
/// just written (deploy-status.json), stale uploads from the collector's
/// state, new files in quarantine/. The first time, only takes note.
fn observe(layout: &Layout, ns: &mut NotifyState) -> Vec<Event> {
    let first = ns.schema == 0;
    let mut events = Vec::new();

    let doc: Option<serde_json::Value> = std::fs::read(layout.state.join(crate::status::JSON_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let generated_at = doc
        .as_ref()
        .and_then(|d| d["generated_at"].as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Comparing the same page twice (a pass whose refresh failed) finds
    // nothing new: the record already holds what it says.
    if let (Some(doc), Some(at)) = (&doc, generated_at) {
        let components = doc["components"].as_object().cloned().unwrap_or_default();
        for (name, c) in &components {
            let now = component_state(c);
            let before = ns
                .components
                .insert(name.clone(), now.to_string())
                .unwrap_or_else(|| "absent".into());
            if first || before == now {
                continue;
            }
            let mut e = match now {
                "down" => Event::new(Kind::Down).reason(problem_of(c, "down")),
                "unhealthy" => Event::new(Kind::Unhealthy)
                    .reason(c["health"].as_str().unwrap_or("unhealthy").to_string()),
                "up" if before == "down" || before == "unhealthy" => {
                    Event::new(Kind::Recovered).reason(format!("was {before}"))
                }
                _ => continue,
            };
            e = e.components([name.clone()]);
            if let Some(a) = c["running"]["artifact"].as_str() {
                e = e.artifact(a);
            }
            events.push(e);
        }
        ns.status_seen_at = Some(at);
    }

    if let Ok(cs) = deploy_root::state::load::<CollectorState>(&layout.collector_state()) {
        let mut seen = Vec::new();
        for w in cs.waiting.iter().filter(|w| w.stale) {
            let key = format!("{}@{}", w.name, deploy_root::time::rfc3339(w.modified));
            if !first && !ns.stale_uploads.contains(&key) {
                events.push(
                    Event::new(Kind::UploadStale)
                        .artifact(&w.name)
                        .reason(w.reason.clone()),
                );
            }
            seen.push(key);
        }
        ns.stale_uploads = seen;
    }

    if let Ok(rd) = std::fs::read_dir(&layout.quarantine) {
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".reason")
                    .filter(|_| !n.starts_with(".tmp-"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        let known: BTreeSet<&String> = ns.quarantine.iter().collect();
        for n in names.iter().filter(|n| !first && !known.contains(n)) {
            let why = std::fs::read_to_string(layout.quarantine.join(format!("{n}.reason")))
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
                .unwrap_or_default();
            events.push(Event::new(Kind::Quarantined).artifact(n).reason(why));
        }
        ns.quarantine = names;
    }
    events
}

/// up, down, unhealthy or absent (nothing runs: not notified).
fn component_state(c: &serde_json::Value) -> &'static str {
    if c["running"].is_null() {
        "absent"
    } else if c["status"] == "DOWN" {
        "down"
    } else if c["health"]
        .as_str()
        .is_some_and(|h| h.starts_with("unhealthy"))
    {
        "unhealthy"
    } else {
        "up"
    }
}

/// The message of the page's problem `rule` for a component, or the rule.
fn problem_of(c: &serde_json::Value, rule: &str) -> String {
    c["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["rule"] == rule)
        .and_then(|p| p["message"].as_str())
        .unwrap_or(rule)
        .to_string()
}

/// Sends what waits in the outbox, each target in its own thread; writes
/// each result into its outbox file as it comes; removes finished files.
fn deliver(config: &Config, layout: &Layout, ns: &mut NotifyState) -> anyhow::Result<()> {
    let mut entries = outbox::list(layout)?;
    let targets = &config.notify.targets;
    let keys: Vec<String> = targets.iter().map(|t| t.key()).collect();
    let queues: Vec<Vec<send::Queued>> = targets
        .iter()
        .zip(&keys)
        .map(|(t, key)| {
            entries
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| t.wants(e.event.kind.as_str()))
                .filter_map(|(index, (_, e))| {
                    let p = e.targets.get(key).cloned().unwrap_or_default();
                    (!p.finished()).then(|| send::Queued {
                        index,
                        event: e.event.clone(),
                        attempts: p.attempts,
                        next_attempt_at: p.next_attempt_at,
                    })
                })
                .collect()
        })
        .collect();
    let logs = layout.logs();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for (ti, (target, queue)) in targets.iter().zip(queues).enumerate() {
            if queue.is_empty() {
                continue;
            }
            let tx = tx.clone();
            let notify = &config.notify;
            let logs = &logs;
            s.spawn(move || send::work(notify, logs, ti, target, queue, &tx));
        }
        drop(tx);
        // Each result is written as it comes: a crash mid-flush resends
        // only what it had not written down.
        for (ti, index, result) in rx {
            let target = &targets[ti];
            let label = target.label();
            let (path, entry) = &mut entries[index];
            let p = entry.targets.entry(keys[ti].clone()).or_default();
            let now = Utc::now();
            let status = ns.targets.entry(keys[ti].clone()).or_default();
            match result {
                send::Outcome::Delivered => {
                    tracing::info!("notify: {} sent to {label}", entry.event.kind.as_str());
                    *p = Progress {
                        delivered_at: Some(now),
                        ..p.clone()
                    };
                }
                send::Outcome::Failed {
                    attempts,
                    next,
                    error,
                } => {
                    tracing::warn!(
                        "notify: sending {} to {label} failed ({error}); attempt {attempts}, next not before {}",
                        entry.event.kind.as_str(),
                        deploy_root::time::rfc3339(next)
                    );
                    p.attempts = attempts;
                    p.next_attempt_at = Some(next);
                    p.last_error = Some(error);
                }
                send::Outcome::Dropped { attempts, error } => {
                    tracing::error!(
                        "notify: gave up sending {} event {} to {label} after {attempts} attempts over {}: {error}",
                        entry.event.kind.as_str(),
                        entry.event.id,
                        humantime_of(config.notify.give_up_after)
                    );
                    p.attempts = attempts;
                    p.last_error = Some(error);
                    p.dropped_at = Some(now);
                    ns.dropped_total += 1;
                    ns.last_dropped_at = Some(now);
                    status.dropped += 1;
                }
            }
            if let Err(e) = outbox::save(path, entry) {
                tracing::warn!("notify: {e:#}");
            }
        }
    });
    // What each target has left, for the page.
    let mut statuses = BTreeMap::new();
    for (t, key) in targets.iter().zip(&keys) {
        let waiting: Vec<&Progress> = entries
            .iter()
            .filter(|(_, e)| t.wants(e.event.kind.as_str()))
            .filter_map(|(_, e)| match e.targets.get(key) {
                Some(p) if p.finished() => None,
                Some(p) => Some(p),
                None => Some(&NOT_TRIED),
            })
            .collect();
        let mut status = ns.targets.remove(key).unwrap_or_default();
        status.label = t.label();
        status.pending = waiting.len();
        let head = waiting.first();
        status.last_error = head.and_then(|p| p.last_error.clone());
        status.failing_since = match head {
            Some(p) if p.attempts > 0 => status.failing_since.or(Some(Utc::now())),
            _ => None,
        };
        statuses.insert(key.clone(), status);
    }
    ns.targets = statuses;
    let done: Vec<_> = entries
        .iter()
        .filter(|(_, e)| {
            targets.iter().zip(&keys).all(|(t, key)| {
                !t.wants(e.event.kind.as_str())
                    || e.targets.get(key).is_some_and(Progress::finished)
            })
        })
        .map(|(p, _)| p.clone())
        .collect();
    outbox::remove(layout, &done)
}

static NOT_TRIED: Progress = Progress {
    attempts: 0,
    next_attempt_at: None,
    last_error: None,
    delivered_at: None,
    dropped_at: None,
};

fn humantime_of(d: std::time::Duration) -> String {
    humantime_secs(d.as_secs())
}

fn humantime_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The status page's line about notifications: events given up in the
/// last day, and targets failing for a while (named redacted).
pub fn annotate(doc: &mut StatusDoc, layout: &Layout) {
    let Ok(ns) = outbox::load_state(layout) else {
        return;
    };
    let now = doc.generated_at;
    if ns
        .last_dropped_at
        .is_some_and(|t| now - t < DROPPED_PROBLEM_FOR)
    {
        doc.problems.push(Problem {
            rule: "notify-dropped",
            message: format!(
                "{} notification(s) could not be delivered and were given up ({} in all; the last at {}); see the switcher's log",
                ns.targets.values().map(|t| t.dropped).sum::<u64>(),
                ns.dropped_total,
                ns.last_dropped_at.map(deploy_root::time::human).unwrap_or_default()
            ),
        });
    }
    for t in ns.targets.values() {
        if let Some(since) = t
            .failing_since
            .filter(|s| now - *s >= FAILING_PROBLEM_AFTER)
        {
            doc.problems.push(Problem {
                rule: "notify-failing",
                message: format!(
                    "notifications to {} have failed since {} ({} waiting): {}",
                    t.label,
                    deploy_root::time::human(since),
                    t.pending,
                    t.last_error.as_deref().unwrap_or("unknown error")
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &std::path::Path) -> anyhow::Result<Layout> {
        let config = Config::parse(
            &dir.join("cutover.toml"),
            "root = \"root\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 1\n",
        )?;
        let layout = Layout::new(&config);
        layout.ensure()?;
        Ok(layout)
    }

    #[test]
    fn the_page_names_drops_and_failing_targets_redacted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = Config::parse(
            &dir.path().join("cutover.toml"),
            "root = \"root\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 1\n",
        )?;
        let layout = Layout::new(&config);
        layout.ensure()?;
        let now = Utc::now();
        let mut ns = NotifyState {
            dropped_total: 3,
            last_dropped_at: Some(now - chrono::Duration::hours(1)),
            ..NotifyState::default()
        };
        ns.targets.insert(
            "k".into(),
            outbox::TargetStatus {
                label: deploy_root::notify_config::redact_url("https://hooks.example/T/SECRET"),
                pending: 2,
                failing_since: Some(now - chrono::Duration::minutes(20)),
                last_error: Some("answered HTTP 500, expected 2xx".into()),
                dropped: 1,
            },
        );
        outbox::save_state(&layout, &mut ns)?;
        let doc = crate::status::gather(&config, &layout, now);
        let text = crate::status::json(&doc)?;
        assert!(text.contains("\"notify-dropped\""), "{text}");
        assert!(text.contains("\"notify-failing\""), "{text}");
        assert!(text.contains("https://hooks.example/…"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        // A day after the last drop, and with no target failing, all quiet.
        ns.last_dropped_at = Some(now - chrono::Duration::hours(25));
        ns.targets.clear();
        outbox::save_state(&layout, &mut ns)?;
        let text = crate::status::json(&crate::status::gather(&config, &layout, now))?;
        assert!(!text.contains("notify-"), "{text}");
        Ok(())
    }

    fn page(layout: &Layout, backend: serde_json::Value) -> anyhow::Result<()> {
        let doc = serde_json::json!({
            "schema": 1,
            "generated_at": "2026-11-26T23:50:12Z",
            "components": { "backend": backend },
        });
        std::fs::write(
            layout.state.join(crate::status::JSON_FILE),
            serde_json::to_vec(&doc)?,
        )?;
        Ok(())
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn component_transitions_are_notified_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let layout = layout(dir.path())?;
        let running = serde_json::json!({"artifact": "full_20261126T000100Z_1.0.0_master.tar.gz"});
        let mut ns = NotifyState::default();
        let step = |status: &str, health: serde_json::Value, ns: &mut NotifyState| {
            page(
                &layout,
                serde_json::json!({"running": running, "status": status, "health": health,
                    "problems": [{"rule": "down", "message": "not listening"}]}),
            )
            .map(|()| {
                let events = observe(&layout, ns);
                ns.schema = 1;
                events
            })
        };
        let null = serde_json::Value::Null;
        // The first pass only takes note, even of a component that is down.
        assert_eq!(
            kinds(&step("DOWN", null.clone(), &mut ns)?),
            [] as [&str; 0]
        );
        assert_eq!(kinds(&step("UP", null.clone(), &mut ns)?), ["recovered"]);
        let down = step("DOWN", null.clone(), &mut ns)?;
        assert_eq!(kinds(&down), ["down"]);
        assert_eq!(down[0].reason.as_deref(), Some("not listening"));
        assert_eq!(down[0].version.as_deref(), Some("1.0.0"));
        assert_eq!(
            kinds(&step("DOWN", null.clone(), &mut ns)?),
            [] as [&str; 0]
        );
        let sick = serde_json::json!("unhealthy: answered 500");
        assert_eq!(kinds(&step("UP", sick.clone(), &mut ns)?), ["unhealthy"]);
        assert_eq!(kinds(&step("UP", sick, &mut ns)?), [] as [&str; 0]);
        let ok = serde_json::json!("healthy");
        assert_eq!(kinds(&step("UP", ok, &mut ns)?), ["recovered"]);
        // Nothing runs (a first deploy failed): not reported.
        page(
            &layout,
            serde_json::json!({"running": null, "status": "DOWN"}),
        )?;
        assert!(observe(&layout, &mut ns).is_empty());
        Ok(())
    }

    #[test]
    fn new_quarantined_files_and_stale_uploads_are_notified_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let layout = layout(dir.path())?;
        let q = &layout.quarantine;
        std::fs::write(q.join("old.tar"), "x")?;
        std::fs::write(q.join("old.tar.reason"), "old reason\n")?;
        let mut ns = NotifyState::default();
        assert!(
            observe(&layout, &mut ns).is_empty(),
            "the first pass takes note"
        );
        ns.schema = 1;
        std::fs::write(q.join("new.tar"), "x")?;
        std::fs::write(q.join("new.tar.reason"), "digest mismatch\nmore\n")?;
        let cs = serde_json::json!({"waiting": [
            {"name": "slow.tar.gz", "size": 1, "modified": "2026-11-26T23:00:00Z",
             "stale": true, "reason": "no marker for 45 min"},
            {"name": "fresh.tar.gz", "size": 1, "modified": "2026-11-26T23:40:00Z",
             "stale": false, "reason": "no marker yet"}]});
        std::fs::write(layout.collector_state(), serde_json::to_vec(&cs)?)?;
        let events = observe(&layout, &mut ns);
        assert_eq!(kinds(&events), ["upload-stale", "quarantined"]);
        assert_eq!(events[0].artifact.as_deref(), Some("slow.tar.gz"));
        assert_eq!(events[1].artifact.as_deref(), Some("new.tar"));
        assert_eq!(events[1].reason.as_deref(), Some("digest mismatch"));
        assert!(observe(&layout, &mut ns).is_empty(), "once each");
        Ok(())
    }

    #[test]
    fn outcomes_become_events_in_order() {
        let mut st = SwitcherState::default();
        let artifact = "full_20261126T000200Z_2.0.0_master.tar.gz";
        st.failed.insert(
            artifact.into(),
            deploy_root::state::Failure {
                artifact: artifact.into(),
                component: "backend".into(),
                step: "start".into(),
                exit_code: Some(2),
                reason: "exited with code 2".into(),
                output_tail: vec!["boom".into()],
                at: Utc::now(),
                running_instead: BTreeMap::new(),
                rollback_failed: false,
            },
        );
        let entry = |action: &str, outcome: &str| HistoryEntry {
            at: Utc::now(),
            action: action.into(),
            artifact: Some(artifact.into()),
            components: vec!["backend".into()],
            outcome: outcome.into(),
            reason: Some("why".into()),
            steps: Vec::new(),
            total_ms: 0,
            slot: None,
        };
        let events = events_of(&st, &entry("deploy", "rolled-back"));
        assert_eq!(kinds(&events), ["failed", "rolled-back"]);
        assert_eq!(events[0].step.as_deref(), Some("start"));
        assert_eq!(events[0].exit_code, Some(2));
        assert_eq!(events[0].tail, ["boom"]);
        assert_eq!(events[1].by.as_deref(), Some("automatic"));
        assert_eq!(
            kinds(&events_of(&st, &entry("deploy", "rollback-failed"))),
            ["failed", "rollback-failed"]
        );
        assert_eq!(
            kinds(&events_of(&st, &entry("deploy", "prepare-failed"))),
            ["failed"]
        );
        assert_eq!(
            kinds(&events_of(&st, &entry("deploy", "deployed"))),
            ["deployed"]
        );
        let hand = events_of(&st, &entry("rollback", "rolled-back"));
        assert_eq!(kinds(&hand), ["rolled-back"]);
        assert_eq!(hand[0].by.as_deref(), Some("hand"));
        assert_eq!(
            kinds(&events_of(&st, &entry("rollback", "failed"))),
            ["rollback-failed"]
        );
        assert!(events_of(&st, &entry("recover", "recovered")).is_empty());
    }
}
