//! `state/control.json`: what operators hold by hand (pins, a freeze, the
//! branches to follow), read by every switcher pass and by the status page.
//!
//! The switcher alone writes it, whole and atomically (see
//! [`crate::atomic`]), under its lock, like state/switcher.json. It is a
//! file of its own, not part of switcher.json, so that a hand command never
//! rewrites what a pass recorded and the schema of each can move on its
//! own. A missing file holds nothing; a file that does not parse is an
//! error that names it (a pass never guesses that nothing is held).
//!
//! ```json
//! {
//!   "schema": 1,
//!   "pins": {"backend": {"reason": "demo of the login", "who": "alice",
//!            "since": "2026-11-30T09:00:00Z", "until": null,
//!            "artifact": "full_20261129T170000Z_1.5.0_feature~login.tar.gz"}},
//!   "freeze": null,
//!   "follow": {"branches": ["release"], "reason": null, "who": "bob",
//!              "since": "2026-11-30T08:00:00Z", "until": null}
//! }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::HistoryEntry;
use crate::time::{human, serde_rfc3339};
use crate::Layout;

/// The version of control.json's format.
pub const SCHEMA: u32 = 1;

/// `<root>/state/control.json`.
pub fn path(layout: &Layout) -> PathBuf {
    layout.state.join("control.json")
}

/// Who asked, when, why, and until when: what every hold records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Why, in the operator's words (untrusted text).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who ran the command: `SUDO_USER`, else `USER`.
    pub who: String,
    /// When the command ran.
    #[serde(with = "serde_rfc3339")]
    pub since: DateTime<Utc>,
    /// When the hold lapses by itself; null: until it is lifted by hand.
    #[serde(default, with = "serde_rfc3339::option")]
    pub until: Option<DateTime<Utc>>,
}

impl Hold {
    /// Whether the hold still applies at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.until.map_or(true, |u| now < u)
    }

    /// "by alice since 2026-11-30 09:00:00 UTC until ...: reason".
    pub fn words(&self) -> String {
        let mut s = format!("by {} since {}", self.who, human(self.since));
        if let Some(u) = self.until {
            s.push_str(&format!(" until {}", human(u)));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(": {r}"));
        }
        s
    }
}

/// A pin: automatic passes leave the component on what runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Who, when, why, until when.
    #[serde(flatten)]
    pub hold: Hold,
    /// What ran when it was pinned (for people; the pin holds whatever runs).
    #[serde(default)]
    pub artifact: Option<String>,
}

/// The branches automatic passes deploy, set at run time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    /// The branches (git form, with `/`); empty: any branch.
    pub branches: Vec<String>,
    /// Who, when, why, until when.
    #[serde(flatten)]
    pub hold: Hold,
}

/// `state/control.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    /// [`SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// Pinned components, by name.
    #[serde(default)]
    pub pins: BTreeMap<String, Pin>,
    /// No automatic deploys for any component while set.
    #[serde(default)]
    pub freeze: Option<Hold>,
    /// Overrides `switcher.branches` while set.
    #[serde(default)]
    pub follow: Option<Follow>,
}

impl ControlState {
    /// Whether nothing is held (the file may then be absent).
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty() && self.freeze.is_none() && self.follow.is_none()
    }

    /// Why `component` is held at `now`, in words, if it is: the freeze
    /// first (it holds everything), then its pin.
    pub fn held(&self, component: &str, now: DateTime<Utc>) -> Option<String> {
        if let Some(f) = self.freeze.as_ref().filter(|f| f.active(now)) {
            return Some(format!("frozen {}", f.words()));
        }
        self.pins
            .get(component)
            .filter(|p| p.hold.active(now))
            .map(|p| format!("pinned {}", p.hold.words()))
    }

    /// The branches automatic passes deploy at `now`: the follow's when one
    /// is set and active, else `default` (the config's). Empty: any.
    pub fn branches<'a>(&'a self, default: &'a [String], now: DateTime<Utc>) -> &'a [String] {
        match self.follow.as_ref().filter(|f| f.hold.active(now)) {
            Some(f) => &f.branches,
            None => default,
        }
    }

    /// Drops every hold whose `until` has passed at `now`, and says which,
    /// in words (empty: nothing lapsed).
    pub fn drop_lapsed(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let mut gone = Vec::new();
        self.pins.retain(|c, p| {
            let keep = p.hold.active(now);
            if !keep {
                gone.push(format!("the pin of {c} ({})", p.hold.words()));
            }
            keep
        });
        if let Some(f) = self.freeze.take_if(|f| !f.active(now)) {
            gone.push(format!("the freeze ({})", f.words()));
        }
        if let Some(f) = self.follow.take_if(|f| !f.hold.active(now)) {
            gone.push(format!("the follow ({})", f.hold.words()));
        }
        gone
    }
}

/// Reads control.json; a missing file holds nothing.
pub fn load(layout: &Layout) -> anyhow::Result<ControlState> {
    crate::state::load(&path(layout))
}

/// Writes control.json atomically (call it under the switcher's lock).
pub fn save(layout: &Layout, control: &ControlState) -> anyhow::Result<()> {
    let mut control = control.clone();
    control.schema = SCHEMA;
    crate::state::save(&path(layout), &control)
}

/// A history line that also says who ran the command (history.jsonl
/// readers that do not know `who` ignore it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributedEntry {
    /// The usual history line.
    #[serde(flatten)]
    pub entry: HistoryEntry,
    /// `SUDO_USER`, else `USER`.
    pub who: String,
}

/// Who runs this command: `SUDO_USER` (the person behind sudo), else
/// `USER`, else the name of the effective user (cron and `su -c` may set
/// neither), else its uid.
pub fn who() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| {
            let uid = nix::unistd::geteuid();
            match nix::unistd::User::from_uid(uid) {
                Ok(Some(user)) => user.name,
                _ => format!("uid {uid}"),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(until: Option<DateTime<Utc>>) -> Hold {
        Hold {
            reason: Some("why".into()),
            who: "alice".into(),
            since: Utc::now(),
            until,
        }
    }

    #[test]
    fn lapsed_holds_are_dropped_and_named() {
        let now = Utc::now();
        let past = Some(now - chrono::Duration::seconds(1));
        let future = Some(now + chrono::Duration::hours(1));
        let mut c = ControlState::default();
        c.pins.insert(
            "backend".into(),
            Pin {
                hold: hold(past),
                artifact: None,
            },
        );
        c.pins.insert(
            "frontend".into(),
            Pin {
                hold: hold(future),
                artifact: None,
            },
        );
        c.freeze = Some(hold(past));
        assert!(c.held("backend", now).is_none());
        assert!(c
            .held("frontend", now)
            .is_some_and(|w| w.contains("pinned by alice")));
        let gone = c.drop_lapsed(now);
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(c.freeze.is_none() && c.pins.len() == 1);
    }

    #[test]
    fn follow_overrides_the_default_branches_until_it_lapses() {
        let now = Utc::now();
        let default = vec!["master".to_string()];
        let mut c = ControlState::default();
        assert_eq!(c.branches(&default, now), &default[..]);
        c.follow = Some(Follow {
            branches: Vec::new(),
            hold: hold(None),
        });
        assert!(c.branches(&default, now).is_empty());
        c.follow = Some(Follow {
            branches: vec!["release".into()],
            hold: hold(Some(now - chrono::Duration::seconds(1))),
        });
        assert_eq!(c.branches(&default, now), &default[..]);
    }

    #[test]
    fn the_file_round_trips_with_utc_times() -> anyhow::Result<()> {
        let c = ControlState {
            freeze: Some(hold(None)),
            ..ControlState::default()
        };
        let text = serde_json::to_string(&c)?;
        assert!(text.contains("\"until\":null"), "{text}");
        assert!(text.contains('Z'), "{text}");
        let back: ControlState = serde_json::from_str(&text)?;
        assert_eq!(back.freeze.map(|f| f.who), Some("alice".to_string()));
        Ok(())
    }
}
