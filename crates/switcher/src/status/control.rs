//! Holds on the status page: pins, the freeze and the followed branches
//! (state/control.json), in the JSON, the text and the page, and the sync
//! state `held` that replaces "out of sync" while a component is held.
//!
//! A Last that does not run while its component is pinned or the VM is
//! frozen is what someone asked for, not a problem: it is shown as held,
//! with who, since when, until when and why. Holds whose `until` has
//! passed are left out (the next pass drops them from the file).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use deploy_root::control::{ControlState, Follow, Hold, Pin};
use deploy_root::time::{age, human};
use serde::Serialize;

use super::escape::{html as esc, terminal};
use super::model::{StatusDoc, Sync, SyncState};

/// `control` in the JSON: the holds in force at `generated_at`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ControlView {
    /// Pinned components, by name: `{reason, who, since, until, artifact}`.
    pub pins: BTreeMap<String, Pin>,
    /// The freeze, if any: `{reason, who, since, until}`.
    pub freeze: Option<Hold>,
    /// The followed branches, if set by hand: `{branches, reason, who,
    /// since, until}` (`branches` empty: any branch).
    pub follow: Option<Follow>,
    /// Why state/control.json cannot be read, if it cannot.
    pub state_error: Option<String>,
}

/// The holds in force at `now`.
pub fn view(control: &Result<ControlState, String>, now: DateTime<Utc>) -> ControlView {
    match control {
        Ok(c) => ControlView {
            pins: c
                .pins
                .iter()
                .filter(|(_, p)| p.hold.active(now))
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect(),
            freeze: c.freeze.clone().filter(|f| f.active(now)),
            follow: c.follow.clone().filter(|f| f.hold.active(now)),
            state_error: None,
        },
        Err(e) => ControlView {
            state_error: Some(e.clone()),
            ..ControlView::default()
        },
    }
}

/// `config` with the branches a pass follows at `now` (`switcher follow`),
/// so that the page's reasons name the branches really deployed.
pub fn followed(
    config: &deploy_root::Config,
    control: &Result<ControlState, String>,
    now: DateTime<Utc>,
) -> deploy_root::Config {
    let mut config = config.clone();
    if let Ok(c) = control {
        config.switcher.branches = c.branches(&config.switcher.branches, now).to_vec();
    }
    config
}

/// `sync` for a held component: out of sync becomes held (since the hold
/// began); every other state stays what it is.
pub fn held_sync(
    component: &str,
    sync: Sync,
    control: &Result<ControlState, String>,
    now: DateTime<Utc>,
) -> Sync {
    if sync.state != SyncState::OutOfSync {
        return sync;
    }
    let Ok(control) = control else { return sync };
    let hold = match control.freeze.as_ref().filter(|f| f.active(now)) {
        Some(f) => f,
        None => match control.pins.get(component).filter(|p| p.hold.active(now)) {
            Some(p) => &p.hold,
            None => return sync,
        },
    };
    let Some(why) = control.held(component, now) else {
        return sync;
    };
    Sync {
        state: SyncState::Held,
        since: Some(hold.since),
        minutes: Some((now - hold.since).num_minutes().max(0)),
        reason: Some(format!(
            "{why}; Last waits until it is lifted (switcher unpin / unfreeze)"
        )),
    }
}

fn hold_text(h: &Hold, now: DateTime<Utc>, s: &dyn Fn(&str) -> String) -> String {
    let mut out = format!(
        "by {} since {} ({})",
        s(&h.who),
        human(h.since),
        age(h.since, now)
    );
    match h.until {
        Some(u) => {
            let _ = write!(out, ", until {}", human(u));
        }
        None => out.push_str(", until lifted"),
    }
    if let Some(r) = &h.reason {
        let _ = write!(out, ": {}", s(r));
    }
    out
}

fn branches(f: &Follow, s: &dyn Fn(&str) -> String) -> String {
    if f.branches.is_empty() {
        "any branch".to_string()
    } else {
        f.branches
            .iter()
            .map(|b| s(b))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The holds as text lines for `switcher status` (empty: nothing held).
pub fn text(doc: &StatusDoc) -> String {
    let now = doc.generated_at;
    let c = &doc.control;
    let s = |x: &str| terminal(x, true);
    let mut out = String::new();
    if let Some(f) = &c.freeze {
        let _ = writeln!(
            out,
            "Frozen: no automatic deploys, {}",
            hold_text(f, now, &s)
        );
    }
    for (name, p) in &c.pins {
        let _ = writeln!(
            out,
            "Pinned: {} on {}, {}",
            s(name),
            s(p.artifact.as_deref().unwrap_or("what runs")),
            hold_text(&p.hold, now, &s)
        );
    }
    if let Some(f) = &c.follow {
        let _ = writeln!(
            out,
            "Following: {} (set by hand), {}",
            branches(f, &s),
            hold_text(&f.hold, now, &s)
        );
    }
    if let Some(e) = &c.state_error {
        let _ = writeln!(out, "Holds: state/control.json cannot be read: {}", s(e));
    }
    if out.is_empty() {
        out
    } else {
        format!("\n{out}")
    }
}

/// The holds as a section of the page (empty: nothing held).
pub fn html(doc: &StatusDoc) -> String {
    let now = doc.generated_at;
    let c = &doc.control;
    let s = |x: &str| esc(x);
    let mut rows = String::new();
    if let Some(f) = &c.freeze {
        let _ = writeln!(
            rows,
            "<tr data-hold=\"freeze\"><td>frozen</td><td>every component</td><td>{}</td></tr>",
            hold_text(f, now, &s)
        );
    }
    for (name, p) in &c.pins {
        let _ = writeln!(
            rows,
            "<tr data-hold=\"pin\" data-component=\"{n}\"><td>pinned</td><td>{n} on <code>{a}</code></td><td>{h}</td></tr>",
            n = esc(name),
            a = esc(p.artifact.as_deref().unwrap_or("what runs")),
            h = hold_text(&p.hold, now, &s)
        );
    }
    if let Some(f) = &c.follow {
        let _ = writeln!(
            rows,
            "<tr data-hold=\"follow\"><td>following</td><td>{}</td><td>{}</td></tr>",
            branches(f, &s),
            hold_text(&f.hold, now, &s)
        );
    }
    if let Some(e) = &c.state_error {
        let _ = writeln!(
            rows,
            "<tr><td>unreadable</td><td>state/control.json</td><td>{}</td></tr>",
            esc(e)
        );
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "<section class=\"card\" id=\"holds\"><h2>Held by hand</h2><div class=\"scroll\"><table>\n\
         <tr><th>Hold</th><th>What</th><th>Who, since, until, why</th></tr>\n{rows}</table></div></section>\n"
    )
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use deploy_root::control::Pin;

    use super::*;

    fn out_of_sync(now: DateTime<Utc>) -> Sync {
        Sync {
            state: SyncState::OutOfSync,
            since: Some(now - Duration::hours(2)),
            minutes: Some(120),
            reason: None,
        }
    }

    fn hold(now: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Hold {
        Hold {
            reason: Some("demo".into()),
            who: "alice".into(),
            since: now - Duration::minutes(30),
            until,
        }
    }

    #[test]
    fn out_of_sync_while_pinned_or_frozen_is_held_and_only_then() {
        let now = Utc::now();
        let mut c = ControlState::default();
        c.pins.insert(
            "backend".into(),
            Pin {
                hold: hold(now, None),
                artifact: None,
            },
        );
        let ok = Ok(c.clone());
        let s = held_sync("backend", out_of_sync(now), &ok, now);
        assert_eq!(s.state, SyncState::Held);
        assert_eq!(s.minutes, Some(30));
        assert!(s.reason.unwrap_or_default().contains("pinned by alice"));
        assert_eq!(
            held_sync("frontend", out_of_sync(now), &ok, now).state,
            SyncState::OutOfSync
        );
        // Failed stays failed: a hold does not hide a failure.
        let failed = Sync {
            state: SyncState::Failed,
            ..out_of_sync(now)
        };
        assert_eq!(
            held_sync("backend", failed, &ok, now).state,
            SyncState::Failed
        );
        // A lapsed freeze holds nothing and is not shown.
        c.pins.clear();
        c.freeze = Some(hold(now, Some(now - Duration::seconds(1))));
        let ok = Ok(c);
        assert_eq!(
            held_sync("frontend", out_of_sync(now), &ok, now).state,
            SyncState::OutOfSync
        );
        assert_eq!(view(&ok, now), ControlView::default());
    }
}
