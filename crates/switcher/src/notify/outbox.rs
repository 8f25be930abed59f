//! The outbox: `state/outbox/<seq>-<id>.json`, one file per event, with
//! each target's progress in it, and `state/notify.json`, what the last
//! passes observed and how delivery goes.
//!
//! An event is written (atomically, fsynced) before the state write that
//! records its outcome, so a crash anywhere after that loses nothing: the
//! next pass finds the file and sends it. The sequence number in the name
//! (one more than the highest present) keeps events in the order they were
//! emitted, whatever the clock does. A file is removed only once every
//! configured target has taken the event, given up on it, or does not want
//! it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::time::serde_rfc3339;
use deploy_root::{atomic, state, Layout};
use serde::{Deserialize, Serialize};

use super::event::Event;

/// One event waiting in the outbox, with each target's progress by
/// [`deploy_root::notify_config::Target::key`] (a hash, never the URL).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The event, as it will be sent.
    pub event: Event,
    /// Per target key.
    #[serde(default)]
    pub targets: BTreeMap<String, Progress>,
}

/// How far one target is with one event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Sends tried and failed so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be tried again before this (exponential backoff).
    #[serde(default, with = "serde_rfc3339::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last failure, in words (redacted).
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the target took it.
    #[serde(default, with = "serde_rfc3339::option")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up for this target.
    #[serde(default, with = "serde_rfc3339::option")]
    pub dropped_at: Option<DateTime<Utc>>,
}

impl Progress {
    /// Delivered or dropped: nothing more to do.
    pub fn finished(&self) -> bool {
        self.delivered_at.is_some() || self.dropped_at.is_some()
    }
}

/// `state/notify.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NotifyState {
    /// [`deploy_root::state::SCHEMA`]; 0 means never written, and the
    /// first pass only takes note of what it sees (no flood of events for
    /// what was already there before notifications were set up).
    #[serde(default)]
    pub schema: u32,
    /// The `generated_at` of the last status document compared.
    #[serde(default, with = "serde_rfc3339::option")]
    pub status_seen_at: Option<DateTime<Utc>>,
    /// The last notified state per component: up, down, unhealthy, absent.
    #[serde(default)]
    pub components: BTreeMap<String, String>,
    /// Stale uploads already notified (name@modified).
    #[serde(default)]
    pub stale_uploads: Vec<String>,
    /// Files in quarantine/ already notified.
    #[serde(default)]
    pub quarantine: Vec<String>,
    /// Events given up since the state began, all targets.
    #[serde(default)]
    pub dropped_total: u64,
    /// When the last event was given up.
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_dropped_at: Option<DateTime<Utc>>,
    /// Per target key (as in outbox entries), as of the last send: what is
    /// waiting and why.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetStatus>,
}

/// One target as of the last send.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TargetStatus {
    /// How logs and the page name it (redacted).
    #[serde(default)]
    pub label: String,
    /// Events waiting for it.
    pub pending: usize,
    /// Since when its oldest waiting event has been failing, if it is.
    #[serde(default, with = "serde_rfc3339::option")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Its last error (redacted).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Events given up for it.
    #[serde(default)]
    pub dropped: u64,
}

/// The outbox folder.
pub fn dir(layout: &Layout) -> PathBuf {
    layout.state.join("outbox")
}

/// `state/notify.json`.
pub fn state_path(layout: &Layout) -> PathBuf {
    layout.state.join("notify.json")
}

/// Reads `state/notify.json` (missing: never written).
pub fn load_state(layout: &Layout) -> anyhow::Result<NotifyState> {
    state::load(&state_path(layout))
}

/// Writes `state/notify.json` atomically.
pub fn save_state(layout: &Layout, st: &mut NotifyState) -> anyhow::Result<()> {
    st.schema = state::SCHEMA;
    state::save(&state_path(layout), st)
}

/// Writes `event` as a new outbox file, after every file already there.
pub fn append(layout: &Layout, event: &Event) -> anyhow::Result<PathBuf> {
    let dir = dir(layout);
    if !dir.is_dir() {
        fs::create_dir_all(&dir).with_context(|| format!("creating folder {}", dir.display()))?;
        // The folder itself must survive a crash, or so would not its files.
        atomic::fsync_dir(&layout.state)?;
    }
    let next = list_names(&dir)?
        .iter()
        .filter_map(|n| seq_of(n))
        .max()
        .unwrap_or(0)
        + 1;
    let path = dir.join(format!("{next:012}-{}.json", event.id));
    let entry = Entry {
        event: event.clone(),
        targets: BTreeMap::new(),
    };
    atomic::write_json(&path, &entry)?;
    Ok(path)
}

/// Every outbox file in order, oldest first, read; a file that does not
/// parse is moved aside (`.bad`) with a warning, so it cannot hold up the
/// queue for ever.
pub fn list(layout: &Layout) -> anyhow::Result<Vec<(PathBuf, Entry)>> {
    let dir = dir(layout);
    let mut out = Vec::new();
    for name in list_names(&dir)? {
        if seq_of(&name).is_none() {
            continue;
        }
        let path = dir.join(&name);
        let parsed = fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(anyhow::Error::from));
        match parsed {
            Ok(entry) => out.push((path, entry)),
            Err(e) => {
                tracing::warn!(
                    "notify: {} cannot be read ({e:#}); moved aside as .bad",
                    path.display()
                );
                let _ = fs::rename(&path, path.with_extension("json.bad"));
            }
        }
    }
    Ok(out)
}

/// Rewrites one outbox file with its progress.
pub fn save(path: &Path, entry: &Entry) -> anyhow::Result<()> {
    atomic::write_json(path, entry)
}

/// Removes finished outbox files, then makes the removals durable once.
pub fn remove(layout: &Layout, paths: &[PathBuf]) -> anyhow::Result<()> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    if !paths.is_empty() {
        atomic::fsync_dir(&dir(layout))?;
    }
    Ok(())
}

/// File names in `dir`, sorted (missing folder: none).
fn list_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The sequence number of an outbox file name (`000000000012-<id>.json`).
fn seq_of(name: &str) -> Option<u64> {
    let rest = name.strip_suffix(".json")?;
    let (seq, _) = rest.split_once('-')?;
    if seq.len() != 12 {
        return None;
    }
    seq.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::Kind;

    #[test]
    fn appends_in_order_and_sets_bad_files_aside() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = deploy_root::Config::parse(
            &dir.path().join("cutover.toml"),
            "root = \"root\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 1\n",
        )?;
        let layout = Layout::new(&config);
        layout.ensure()?;
        let kinds = [Kind::Deployed, Kind::Down, Kind::Recovered];
        for k in kinds {
            append(&layout, &Event::new(k))?;
        }
        fs::write(super::dir(&layout).join("000000000009-x.json"), "{")?;
        let got: Vec<Kind> = list(&layout)?
            .into_iter()
            .map(|(_, e)| e.event.kind)
            .collect();
        assert_eq!(got, kinds);
        assert!(super::dir(&layout).join("000000000009-x.json.bad").exists());
        append(&layout, &Event::new(Kind::Failed))?;
        let last = list(&layout)?.pop().map(|(_, e)| e.event.kind);
        assert_eq!(last, Some(Kind::Failed));
        Ok(())
    }
}
