//! The crash journal: `state/journal.json`, written (atomically) before
//! the steps of a switch, so that a run that finds it can finish or undo a
//! pass that was cut short.
//!
//! The journal says which unit was being switched (artifact, components),
//! from which release to which, and the step about to run. It is written
//! before prepare, stop, verify, rollback and record, but not before flip
//! and start: recovery handles a pass cut short at stop, flip or start
//! alike, and the service is down between stop and start (see
//! [`crate::switch`]), so a pass cut short at flip or start reads as cut
//! short at stop. Recovery (see [`crate::recover`]) undoes everything from `stop` on by going back to
//! the from-release; before `stop` nothing running was touched, so it only
//! removes half-made folders. A blue-green switch (see [`crate::bluegreen`])
//! writes idle-start, route and drain instead of stop and verify, and the
//! slots it moves to; recovery moves traffic back from any of them. The
//! journal exists only while a pass is under
//! way (the status page reads its presence as "switching"). It counts
//! interrupted attempts: recovery hands the count to the pass that runs
//! right after it in the same process, which writes it into its own journal
//! when it takes the same artifact, and a second interruption marks the
//! artifact failed ("interrupted twice") so that a crashing deploy cannot
//! loop for ever.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::state::{Failure, RunningRelease};
use deploy_root::time::serde_rfc3339;
use deploy_root::Layout;
use serde::{Deserialize, Serialize};

/// The step a switch is about to run (or has reached).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Unpacking, linking shared files, running prepare: nothing running touched.
    Prepare,
    /// Stopping the running release.
    Stop,
    /// Flipping current/.
    Flip,
    /// Starting (or reloading) the new release.
    Start,
    /// Checking that it listens and is healthy.
    Verify,
    /// Blue-green: starting the new release on the idle slot and checking
    /// it there; the old one serves, untouched.
    IdleStart,
    /// Blue-green: moving traffic (the upstream file, nginx's reload, the
    /// check through nginx, current/).
    Route,
    /// Blue-green: traffic moved; the old release drains, then stops.
    Drain,
    /// Going back to the from-release after a failure.
    Rollback,
    /// Writing the state files.
    Record,
}

impl Step {
    /// The step's name, as in the journal and fault points.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Stop => "stop",
            Step::Flip => "flip",
            Step::Start => "start",
            Step::Verify => "verify",
            Step::IdleStart => "idle-start",
            Step::Route => "route",
            Step::Drain => "drain",
            Step::Rollback => "rollback",
            Step::Record => "record",
        }
    }
}

/// `state/journal.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journal {
    /// deploy or rollback (a `switcher rollback` run).
    pub action: String,
    /// The artifact being taken into service.
    pub artifact: String,
    /// The components of the unit.
    pub components: Vec<String>,
    /// What ran before, per component (`None`: nothing, a first deploy).
    pub from: BTreeMap<String, Option<RunningRelease>>,
    /// What is being taken into service, per component.
    pub to: BTreeMap<String, RunningRelease>,
    /// The step about to run.
    pub step: Step,
    /// How many passes with this artifact were cut short before.
    #[serde(default)]
    pub attempts: u32,
    /// The failure being rolled back from, once one happened.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// When the pass started.
    #[serde(with = "serde_rfc3339")]
    pub started_at: DateTime<Utc>,
    /// Blue-green: the slot each blue-green component of the unit moves to
    /// (the from-release serves on the other); see [`crate::bluegreen`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slots: BTreeMap<String, deploy_root::state::Slot>,
}

/// Reads the journal, if there is one.
pub fn load(layout: &Layout) -> anyhow::Result<Option<Journal>> {
    let path = layout.journal();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
            format!(
                "journal {} is not valid JSON of the expected shape (check the deploy root by hand, then move it aside)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading journal {}", path.display())),
    }
}

/// Writes the journal atomically.
///
/// Fault point (fault-injection builds): `CUTOVER_FAULT_FAIL=
/// switcher:journal-write:<step>` makes this write fail as on a full disk.
pub fn save(layout: &Layout, journal: &Journal) -> anyhow::Result<()> {
    let path = layout.journal();
    deploy_root::fault::fail(&format!("switcher:journal-write:{}", journal.step.as_str()))
        .with_context(|| format!("writing journal {}", path.display()))?;
    deploy_root::atomic::write_json(&path, journal)
}

/// Records that the switch is about to run `step`.
pub fn step(layout: &Layout, journal: &mut Journal, step: Step) -> anyhow::Result<()> {
    journal.step = step;
    save(layout, journal)
}

/// Removes the journal (the pass is complete).
pub fn remove(layout: &Layout) -> anyhow::Result<()> {
    remove_path(&layout.journal())
}

fn remove_path(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        deploy_root::atomic::fsync_dir(dir)?;
    }
    Ok(())
}
