//! The state files: what each binary records and the status page reads.
//!
//! Each binary writes only its own file, under its own lock, atomically
//! (see [`crate::atomic`]): `state/collector.json` ("Last", waiting uploads)
//! and `state/switcher.json` ("Running", failures). A missing file is an
//! empty state; a file that does not parse is an error that names it (it is
//! never silently replaced).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use artifact_name::ArtifactName;
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::time::serde_rfc3339;

/// The version of the state files' format.
pub const SCHEMA: u32 = 1;

/// An artifact as the state files and the status page describe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// The file name.
    pub artifact: String,
    /// `full`, `frontend`, ...
    pub kind: String,
    /// The version from the name.
    pub version: String,
    /// The git branch (with `/`). Untrusted text.
    pub branch: String,
    /// When CI built it.
    #[serde(with = "serde_rfc3339")]
    pub build_time: DateTime<Utc>,
}

impl From<&ArtifactName> for ArtifactInfo {
    fn from(name: &ArtifactName) -> ArtifactInfo {
        ArtifactInfo {
            artifact: name.file_name().to_string(),
            kind: name.kind().to_string(),
            version: name.version().to_string(),
            branch: name.branch().to_string(),
            build_time: name.build_time(),
        }
    }
}

/// "Last": the newest artifact collected for a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastArtifact {
    /// Which artifact.
    #[serde(flatten)]
    pub info: ArtifactInfo,
    /// Its size in bytes.
    pub size: u64,
    /// When the collector took it into staging.
    #[serde(with = "serde_rfc3339")]
    pub collected_at: DateTime<Utc>,
}

/// An upload in the drop folder that has no marker yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingUpload {
    /// The file name (lossily decoded).
    pub name: String,
    /// Its size when last seen.
    pub size: u64,
    /// Its last modification.
    #[serde(with = "serde_rfc3339")]
    pub modified: DateTime<Utc>,
    /// Whether it has waited longer than `stale_upload_after`.
    pub stale: bool,
    /// What is wrong, in words.
    pub reason: String,
}

/// `state/collector.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CollectorState {
    /// [`SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// When the last pass ended (whatever its outcome).
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_run: Option<DateTime<Utc>>,
    /// Whether the last pass ended well, and if not, why.
    #[serde(default)]
    pub last_error: Option<String>,
    /// "Last", per component.
    #[serde(default)]
    pub last: BTreeMap<String, LastArtifact>,
    /// Uploads without their marker, as of the last pass.
    #[serde(default)]
    pub waiting: Vec<WaitingUpload>,
    /// The intake from the S3-compatible store (`[store]`), as of the last
    /// pass; absent without `[store]` (or a collector built without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreIntake>,
}

/// How the collector's intake from the store went (`state/collector.json`,
/// `store`). An error here never fails the local drop intake; the status
/// page shows it as a problem from `error_since` on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreIntake {
    /// The store, as `s3://bucket/prefix`.
    pub url: String,
    /// When a pass last listed the store and took what it should.
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_ok: Option<DateTime<Utc>>,
    /// Why the last pass could not use the store, if it could not.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Since when the passes have failed so, without a good pass between
    /// (set with `last_error`).
    #[serde(default, with = "serde_rfc3339::option")]
    pub error_since: Option<DateTime<Utc>>,
    /// The keys under `drop/` that do not follow the naming contract, as
    /// of the last listing: each is warned about once, when it first shows
    /// up (it is not ours to delete, and cron mails every warning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// Reads a state file; a missing file is the default state.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> anyhow::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "state file {} is not valid JSON of the expected shape (move it aside to start afresh)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading state file {}", path.display())),
    }
}

/// Writes a state file atomically.
pub fn save<T: Serialize>(path: &Path, state: &T) -> anyhow::Result<()> {
    crate::atomic::write_json(path, state)
}

/// What runs for one component, as the switcher recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRelease {
    /// The artifact the release came from.
    #[serde(flatten)]
    pub info: ArtifactInfo,
    /// The release id (the folder under releases/<component>/).
    pub release: String,
    /// Since when it runs.
    #[serde(with = "serde_rfc3339")]
    pub since: DateTime<Utc>,
}

/// Why an artifact was marked failed; it is never picked again by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The artifact's file name.
    pub artifact: String,
    /// The component whose step failed (or the first of the artifact's).
    pub component: String,
    /// The step: unpack, prepare, stop, flip, start, reload, verify, ...
    pub step: String,
    /// The command's exit code, where a command failed.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The reason in words.
    pub reason: String,
    /// The last lines of the command's output, where a command ran.
    #[serde(default)]
    pub output_tail: Vec<String>,
    /// When it failed.
    #[serde(with = "serde_rfc3339")]
    pub at: DateTime<Utc>,
    /// What runs instead, per component, after the rollback.
    #[serde(default)]
    pub running_instead: BTreeMap<String, String>,
    /// Whether the rollback itself failed too.
    #[serde(default)]
    pub rollback_failed: bool,
}

/// The switcher's record of one component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentState {
    /// "Running": what runs now.
    #[serde(default)]
    pub running: Option<RunningRelease>,
    /// The previous good release, the target of a rollback.
    #[serde(default)]
    pub previous: Option<RunningRelease>,
    /// The last failure of this component, if any.
    #[serde(default)]
    pub last_failure: Option<Failure>,
    /// Blue-green: the slot that serves (nginx routes to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// Blue-green: the release the other slot held last (stopped since:
    /// the one traffic left, or one that failed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<String>,
}

/// A blue-green component's two instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Slot {
    /// The first of `ports`.
    Blue,
    /// The second of `ports`.
    Green,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    /// `blue` or `green`, as in `CUTOVER_SLOT`, pidfile names and the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    /// The slot's port among a component's `ports` (blue, green).
    pub fn port(self, ports: &[u16]) -> u16 {
        let i = usize::from(self == Slot::Green);
        ports.get(i).copied().unwrap_or(0)
    }
}

/// `state/switcher.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SwitcherState {
    /// [`SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// When the last pass ended (whatever its outcome).
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_run: Option<DateTime<Utc>>,
    /// How long the last pass took, in milliseconds.
    #[serde(default)]
    pub last_pass_ms: Option<u64>,
    /// Per component.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentState>,
    /// Every artifact marked failed, by file name.
    #[serde(default)]
    pub failed: BTreeMap<String, Failure>,
    /// How many deploys have failed since the state began (for metrics).
    #[serde(default)]
    pub failures_total: u64,
    /// Staged artifacts the last pass would not deploy for a reason that is
    /// not the artifact's fault and may pass (a build time ahead of this
    /// machine's clock): artifact file name -> the reason in words.
    /// Rewritten by every pass.
    #[serde(default)]
    pub held: BTreeMap<String, String>,
    /// What the last pass saw of each component the switcher starts or
    /// reloads and that runs something, so that a pass speaks up only when
    /// this changes (going DOWN or unhealthy, recovering), not every minute.
    #[serde(default)]
    pub seen: BTreeMap<String, Seen>,
    /// Hand rollbacks (`switcher rollback`), by the artifact rolled back
    /// from: who and when. The artifact is in `failed` too (step
    /// `rollback`), so that no pass takes it back by itself.
    #[serde(default)]
    pub rollbacks: BTreeMap<String, HandRollback>,
}

/// A component as a pass saw it (see [`SwitcherState::seen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seen {
    /// It listens, and its health URL (if any) answers 2xx.
    Up,
    /// Nothing listens on its port.
    Down,
    /// It listens, but its health URL does not answer 2xx.
    Unhealthy,
}

/// A rollback by hand: an operator's decision, not a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandRollback {
    /// The artifact rolled back from.
    pub artifact: String,
    /// The components rolled back.
    #[serde(default)]
    pub components: Vec<String>,
    /// Who: `SUDO_USER`, else `USER`, of the `switcher rollback` process.
    #[serde(default)]
    pub by: Option<String>,
    /// When it was done.
    #[serde(with = "serde_rfc3339")]
    pub at: DateTime<Utc>,
    /// The release each component runs again.
    #[serde(default)]
    pub to: BTreeMap<String, String>,
}

impl SwitcherState {
    /// The artifacts that must stay in staging: what runs, and the previous
    /// good release (should its release folder be lost, the archive is the
    /// only copy left to deploy it from again).
    pub fn pinned_artifacts(&self) -> Vec<&str> {
        self.components
            .values()
            .flat_map(|c| [&c.running, &c.previous])
            .flatten()
            .map(|r| r.info.artifact.as_str())
            .collect()
    }
}

/// One line of `state/history.jsonl`: one switcher pass that did something.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the pass started.
    #[serde(with = "serde_rfc3339")]
    pub at: DateTime<Utc>,
    /// What it did: deploy, rollback, recover.
    pub action: String,
    /// The artifact, where there was one.
    #[serde(default)]
    pub artifact: Option<String>,
    /// The components touched.
    #[serde(default)]
    pub components: Vec<String>,
    /// deployed, rolled-back, rollback-failed, prepare-failed, recovered, ...
    pub outcome: String,
    /// The reason, when it did not deploy.
    #[serde(default)]
    pub reason: Option<String>,
    /// Milliseconds per step, in order (e.g. ["unpack", 120]).
    #[serde(default)]
    pub steps: Vec<(String, u64)>,
    /// The whole pass, in milliseconds.
    pub total_ms: u64,
    /// In a rolling fleet: the switch slot this deploy held, and when
    /// (to the millisecond, this VM's clock) it was taken and the deploy
    /// ended (the slot is released right after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotSpan>,
}

/// The switch slot a deploy held ([`HistoryEntry::slot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpan {
    /// The slot number.
    pub slot: u32,
    /// When it was taken (RFC 3339 with milliseconds and Z).
    pub taken_at: String,
    /// When the deploy ended (RFC 3339 with milliseconds and Z).
    #[serde(default)]
    pub ended_at: Option<String>,
}
