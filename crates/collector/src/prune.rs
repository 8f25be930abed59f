//! Pruning, so that nothing grows without bound.
//!
//! Staging keeps the newest `collector.staging_keep` artifacts (by build
//! time), and beyond that never prunes what [`deploy_root::staging::protected`]
//! keeps: what the switcher pins (what runs and the previous good release,
//! which a rollback may unpack again) and an artifact newer than what runs
//! for a component it carries (the switcher may be about to deploy it; with
//! nothing running, every artifact is, as the switcher sees it too).
//! The marker goes first, so an artifact pruned halfway is merely "not
//! staged" and the next pass finishes it.
//!
//! Quarantine keeps the newest `collector.quarantine_keep` items, by the
//! time they were quarantined (the mtime of their reason file).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use deploy_root::state::SwitcherState;
use deploy_root::Config;

use crate::quarantine::{with_suffix, REASON_SUFFIX};
use crate::staging::Staged;

/// Prunes staging; returns the names pruned.
pub fn staging(
    config: &Config,
    dir: &Path,
    staged: &[Staged],
    switcher: &SwitcherState,
) -> anyhow::Result<Vec<String>> {
    let mut newest_first: Vec<&Staged> = staged.iter().collect();
    newest_first.sort_by(|a, b| b.name.cmp(&a.name));
    let mut pruned = Vec::new();
    for s in newest_first.into_iter().skip(config.collector.staging_keep) {
        let file = s.name.file_name();
        if deploy_root::staging::protected(config, switcher, &s.name).is_some() {
            continue;
        }
        remove(&dir.join(s.name.marker_name()))?;
        remove(&dir.join(file))?;
        pruned.push(format!("staging/{file}"));
    }
    if !pruned.is_empty() {
        deploy_root::atomic::fsync_dir(dir)?;
    }
    Ok(pruned)
}

/// Prunes quarantine; returns the names pruned.
pub fn quarantine(dir: &Path, keep: usize) -> anyhow::Result<Vec<String>> {
    let mut items: Vec<(SystemTime, OsString)> = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(item) = name.as_bytes().strip_suffix(REASON_SUFFIX.as_bytes()) else {
            continue;
        };
        if item.is_empty() || name.as_bytes().starts_with(b".") {
            continue;
        }
        let mtime = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        items.push((mtime, OsStr::from_bytes(item).to_os_string()));
    }
    items.sort_by(|a, b| b.cmp(a));
    let mut pruned = Vec::new();
    for (_, item) in items.into_iter().skip(keep) {
        // The reason goes last: pruning is found again through it.
        remove(&dir.join(&item))?;
        remove(&dir.join(with_suffix(&item, artifact_name::MARKER_SUFFIX)))?;
        remove(&dir.join(with_suffix(&item, REASON_SUFFIX)))?;
        pruned.push(format!("quarantine/{}", item.to_string_lossy()));
    }
    if !pruned.is_empty() {
        deploy_root::atomic::fsync_dir(dir)?;
    }
    Ok(pruned)
}

/// Removes a file; one already gone is fine.
fn remove(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("pruning {}", path.display())),
    }
}
