//! The status document: the facts that the page, the JSON file, the text
//! table and the metrics all show. Built by [`super::rules`], written as
//! `state/deploy-status.json` (documented in docs/status-json.md).
//!
//! ```json
//! {
//!   "schema": 2,
//!   "generated_at": "2026-11-26T23:50:12Z",
//!   "components": {
//!     "backend": {
//!       "port": 8080,
//!       "last":    {"artifact": "...", "kind": "full", "version": "1.4.2",
//!                   "branch": "master", "build_time": "...", "size": 123,
//!                   "collected_at": "..."} | null,
//!       "running": {"artifact": "...", "kind": "full", "version": "1.4.2",
//!                   "branch": "master", "build_time": "...",
//!                   "release": "...", "since": "..."} | null,
//!       "status": "UP" | "DOWN", "down_since": "..." | null,
//!       "checked_at": "...",
//!       "health_url": "http://..." | null,
//!       "health": "healthy" | "unhealthy: ..." | null,
//!       "sync": {"state": "in-sync" | "switching" | "out-of-sync" | "held" | "failed" | "rolled-back" | "unknown",
//!                "since": "..." | null, "minutes": 12 | null, "reason": "..." | null},
//!       "last_failure": {Failure} | null,
//!       "failures": [Failure], "rolled_back": {HandRollback} | null,
//!       "problems": [{"rule": "down", "message": "..."}],
//!       "blue_green": {"slot": "blue", "port": 8081, "idle_slot": "green",
//!                      "idle_port": 8082, "idle_release": "..." | null}   (blue-green only)
//!     }
//!   },
//!   "collector": {"last_run": "..." | null, "last_error": "..." | null, "state_error": "..." | null},
//!   "switcher": {"last_run": ..., "last_pass_ms": ..., "failures_total": 0, "state_error": ...},
//!   "waiting": [WaitingUpload], "quarantined": [{"name", "reason", "modified"}],
//!   "history": [HistoryEntry, newest first],
//!   "timeline": {"from", "to", "lanes": {"<component>": {runs, events, down}}, "notes"},
//!   "control": {"pins": {"backend": Pin}, "freeze": Hold | null, "follow": Follow | null, "state_error": ...},
//!   "problems": [{"rule", "message"}]
//! }
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::{
    Failure, HandRollback, HistoryEntry, LastArtifact, RunningRelease, WaitingUpload,
};
use deploy_root::time::serde_rfc3339;
use serde::Serialize;

use super::timeline::Timeline;

/// The version of this document's shape; bumped on any incompatible change.
pub const SCHEMA: u32 = 2;

/// How many failures a component lists.
pub const FAILURES_LISTED: usize = 5;

/// The whole status, at one instant.
#[derive(Clone, Debug, Serialize)]
pub struct StatusDoc {
    /// [`SCHEMA`].
    pub schema: u32,
    /// When this document was made.
    #[serde(with = "serde_rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// Per component, by name.
    pub components: BTreeMap<String, ComponentStatus>,
    /// The collector's last run, from state/collector.json.
    pub collector: CollectorRun,
    /// The switcher's last run, from state/switcher.json.
    pub switcher: SwitcherRun,
    /// Uploads in the drop folder still without their marker.
    pub waiting: Vec<WaitingUpload>,
    /// Files in quarantine/, newest first, with their reasons.
    pub quarantined: Vec<Quarantined>,
    /// The last switcher passes (state/history.jsonl), newest first.
    pub history: Vec<HistoryEntry>,
    /// The last days, per component: what ran when, deploys, failures,
    /// rollbacks, DOWN as far as it is known (see [`super::timeline`]).
    pub timeline: Timeline,
    /// The holds set by hand (state/control.json) in force now.
    pub control: super::control::ControlView,
    /// Problems that concern no single component.
    pub problems: Vec<Problem>,
}

/// One component: Last, Running, Status, Health, Sync.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentStatus {
    /// The port it is checked on (127.0.0.1).
    pub port: u16,
    /// "Last": the newest artifact collected for it.
    pub last: Option<LastArtifact>,
    /// "Running": what the switcher started, and since when.
    pub running: Option<RunningRelease>,
    /// Whether it listens on its port.
    pub status: UpDown,
    /// While DOWN: since the first check that found it DOWN, as far as the
    /// previous deploy-status.json tells (at most one pass late); null
    /// when UP.
    #[serde(with = "serde_rfc3339::option")]
    pub down_since: Option<DateTime<Utc>>,
    /// When `status` (and `health`) were checked.
    #[serde(with = "serde_rfc3339")]
    pub checked_at: DateTime<Utc>,
    /// The health URL, where the config sets one.
    pub health_url: Option<String>,
    /// `"healthy"`, `"unhealthy: <what it answered>"`, or null without a
    /// health URL or when it does not listen at all.
    pub health: Option<String>,
    /// Whether Running is Last.
    pub sync: Sync,
    /// The failure that matters now: the Last artifact's when it failed,
    /// else the component's latest.
    pub last_failure: Option<Failure>,
    /// The failed deploys this component's own step failed (each failure
    /// is listed once, under the component that failed), since it last
    /// started a release: newest first, at most [`FAILURES_LISTED`].
    pub failures: Vec<Failure>,
    /// When Last was rolled back by hand (`sync.state` is `rolled-back`):
    /// who, when, and what runs again.
    pub rolled_back: Option<HandRollback>,
    /// The rules that fire for it.
    pub problems: Vec<Problem>,
    /// A blue-green component's slots (absent for a restart one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
}

/// Which slot of a blue-green component serves, and what the other holds.
#[derive(Clone, Debug, Serialize)]
pub struct BlueGreen {
    /// The slot nginx routes to: blue or green.
    pub slot: deploy_root::state::Slot,
    /// Its port (also `port`).
    pub port: u16,
    /// The other slot.
    pub idle_slot: deploy_root::state::Slot,
    /// Its port.
    pub idle_port: u16,
    /// The release it held last (stopped since): the one traffic left, or
    /// one that failed there; null when it never held one.
    pub idle_release: Option<String>,
}

impl BlueGreen {
    /// In words, for the page and `switcher status`.
    pub fn words(&self) -> String {
        format!(
            "{} slot serves (port {}); {} slot (port {}): {}",
            self.slot.as_str(),
            self.port,
            self.idle_slot.as_str(),
            self.idle_port,
            self.idle_release
                .as_ref()
                .map_or("empty".to_string(), |r| format!("{r}, stopped"))
        )
    }
}

/// The result of the listen check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UpDown {
    /// Something listens on the port.
    #[serde(rename = "UP")]
    Up,
    /// Nothing listens on the port.
    #[serde(rename = "DOWN")]
    Down,
}

impl UpDown {
    /// `UP` or `DOWN`.
    pub fn word(self) -> &'static str {
        match self {
            UpDown::Up => "UP",
            UpDown::Down => "DOWN",
        }
    }
}

/// Sync: is Running the Last artifact, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sync {
    /// Which case.
    pub state: SyncState,
    /// Since when it is so: Running's start (in sync), the journal's time
    /// (switching), Last's collection (out of sync), the failure (failed).
    #[serde(with = "serde_rfc3339::option")]
    pub since: Option<DateTime<Utc>>,
    /// Whole minutes since `since`.
    pub minutes: Option<i64>,
    /// Why, in words, when there is more to say.
    pub reason: Option<String>,
}

/// The cases of [`Sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    /// Running is Last (or nothing newer was collected).
    InSync,
    /// A switcher pass is under way (its journal exists).
    Switching,
    /// Last is not running yet.
    OutOfSync,
    /// Last is not running because the component is pinned or the VM
    /// frozen by hand (not a problem: someone asked for it).
    Held,
    /// Last was tried and failed; something older runs instead.
    Failed,
    /// Last ran and was rolled back by hand (`switcher rollback`): an
    /// operator's decision, not a failure.
    RolledBack,
    /// A state file cannot be read, so Last or Running is not known.
    Unknown,
}

impl SyncState {
    /// The state as the JSON spells it.
    pub fn word(self) -> &'static str {
        match self {
            SyncState::InSync => "in-sync",
            SyncState::Switching => "switching",
            SyncState::OutOfSync => "out-of-sync",
            SyncState::Held => "held",
            SyncState::Failed => "failed",
            SyncState::RolledBack => "rolled-back",
            SyncState::Unknown => "unknown",
        }
    }

    /// The state in words, for people.
    pub fn words(self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::Switching => "switching now",
            SyncState::OutOfSync => "out of sync",
            SyncState::Held => "held",
            SyncState::Failed => "failed",
            SyncState::RolledBack => "rolled back by hand",
            SyncState::Unknown => "unknown",
        }
    }
}

/// One of the seed's troubleshooting rules that fires, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A stable identifier: `down`, `unhealthy`, `out-of-sync`,
    /// `deploy-failed`, `collector-not-running`, `switcher-not-running`,
    /// `switch-stuck`, `build-held`,
    /// `collector-error`, `store-unreachable`, `state-unreadable`, `upload-waiting`,
    /// `quarantined`, `history-unreadable`.
    pub rule: &'static str,
    /// What is wrong and what it means, for people.
    pub message: String,
}

/// The collector's side, from state/collector.json.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CollectorRun {
    /// When its last pass ended.
    #[serde(with = "serde_rfc3339::option")]
    pub last_run: Option<DateTime<Utc>>,
    /// Why its last pass failed, if it did.
    pub last_error: Option<String>,
    /// Why state/collector.json cannot be read, if it cannot.
    pub state_error: Option<String>,
    /// Its intake from the store (`[store]`), if it has one.
    pub store: Option<deploy_root::state::StoreIntake>,
}

/// The switcher's side, from state/switcher.json.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SwitcherRun {
    /// When its last pass ended.
    #[serde(with = "serde_rfc3339::option")]
    pub last_run: Option<DateTime<Utc>>,
    /// How long that pass took, in milliseconds.
    pub last_pass_ms: Option<u64>,
    /// How many deploys have failed since the state began.
    pub failures_total: u64,
    /// Why state/switcher.json cannot be read, if it cannot.
    pub state_error: Option<String>,
}

/// A file in quarantine/ and why it is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// The file name (lossily decoded). Untrusted text.
    pub name: String,
    /// The first line of `<name>.reason`, if there is one.
    pub reason: Option<String>,
    /// When it was quarantined (the file's modification time).
    #[serde(with = "serde_rfc3339::option")]
    pub modified: Option<DateTime<Utc>>,
}

impl StatusDoc {
    /// Every problem: the components' (prefixed with the component) and the
    /// others, in page order.
    pub fn all_problems(&self) -> Vec<(Option<&str>, &Problem)> {
        let mut all: Vec<(Option<&str>, &Problem)> = Vec::new();
        for (name, c) in &self.components {
            all.extend(c.problems.iter().map(|p| (Some(name.as_str()), p)));
        }
        all.extend(self.problems.iter().map(|p| (None, p)));
        all
    }
}
