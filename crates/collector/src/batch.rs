//! Group commit: a pass makes its moves durable with one flush per
//! filesystem and one fsync per folder, not several fsyncs per artifact.
//!
//! While the pass goes over the drop folder (step 0), each verified
//! upload's artifact is renamed into staging (or, across filesystems,
//! copied, the copy fsynced, and renamed into staging; its source stays in
//! drop/), and its staged marker is written under a temporary name; each
//! rejected upload gets its reason written in quarantine/. Nothing is
//! fsynced and nothing leaves the drop folder but the renamed artifacts.
//! Then [`commit`]:
//!
//! 1. `syncfs` of the staging filesystem (and of quarantine's, if another):
//!    the temporary markers, the reasons and the renamed artifacts reach
//!    the disk, data and names.
//! 2. Each temporary marker is renamed to `<artifact>.sha256` (the artifact
//!    is staged now); each rejected upload, then its marker, is moved into
//!    quarantine (its reason is already durable).
//! 3. staging/ and quarantine/ are fsynced, once each.
//! 4. Only now the drop markers of the staged artifacts and the sources of
//!    copies leave the drop folder; then drop/ is fsynced once.
//!
//! The pass writes state/collector.json after that.
//!
//! Why no artifact is lost, at any instant, killed or powered off:
//!
//! - An artifact leaves drop/ only by rename(2), which is atomic on crash
//!   too (one name or the other, never neither), or, across filesystems,
//!   by removing its source after the copy's data (step 0) and name
//!   (step 3) are durable.
//! - A drop marker is removed only after the staged marker is durable
//!   (step 3), and the staged marker gets its name only after its content
//!   is durable (step 1): a power cut never leaves an empty staged marker,
//!   which the switcher would take for a broken artifact. Until the drop
//!   marker goes, a staged artifact without its marker is "not yet staged"
//!   and the next pass finishes the move from the drop marker
//!   ([`crate::recover`]), as after a run killed half-way; a run killed in
//!   step 2 or 3 leaves a staged pair and a second drop marker, which the
//!   next pass removes.
//! - The artifact moves before its marker, in steps 0 and 2, so the
//!   switcher never sees a marker without its whole artifact.
//! - A quarantined upload moves only after its reason is durable; a
//!   reason whose upload never moved (a run killed before step 2) is
//!   removed by the next pass.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use deploy_root::atomic::fsync_dir;
use deploy_root::fault;
use tracing::{debug, info};

use crate::collect::collected;
use crate::mover::{self, TEMP_PREFIX};
use crate::open::Ident;
use crate::pass::Ctx;
use crate::quarantine::{self, Pending};
use crate::scan::marker_name;
use crate::verdict::{quarantined, shown};

/// What a pass has begun and [`commit`] finishes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Artifacts in staging whose marker waits under a temporary name.
    takes: Vec<Take>,
    /// Rejected uploads whose reason is written.
    rejects: Vec<Reject>,
    /// Drop entries to remove once staging/ and quarantine/ are fsynced, in
    /// groups removed in order: after an error the rest of its group stays
    /// (the marker that lets the next pass finish goes last).
    removals: Vec<Vec<(PathBuf, Ident)>>,
    /// Whether staging/ changed (or a removal relies on what it holds).
    staging_changed: bool,
    /// Whether an artifact was renamed out of drop/.
    drop_changed: bool,
}

/// A staged artifact whose marker is not in place yet.
#[derive(Debug)]
struct Take {
    /// Its name (in staging, as in drop).
    name: OsString,
    /// Its name as text.
    file_name: String,
    /// Its marker under a temporary name in staging.
    temp: PathBuf,
    /// Its marker in the drop folder, to remove once staged (none for an
    /// artifact from the store, which keeps its copy).
    drop_marker: Option<(PathBuf, Ident)>,
    /// Across filesystems: the source of the copy, to remove once staged.
    copied: Option<(PathBuf, Ident)>,
}

/// A rejected upload whose reason is written.
#[derive(Debug)]
struct Reject {
    upload: Pending,
    marker: Option<Pending>,
    /// Its name in quarantine.
    dest: OsString,
    reason: String,
}

/// An artifact moved into staging in step 0, and what [`Batch::staged`]
/// needs to finish it.
#[derive(Debug)]
pub struct Staged<'a> {
    /// Its name.
    pub name: &'a OsStr,
    /// Its name as text.
    pub file_name: &'a str,
    /// Its verified digest.
    pub digest: &'a str,
    /// Its marker in the drop folder.
    pub drop_marker: (PathBuf, Ident),
    /// Across filesystems: the source of the copy.
    pub copied: Option<(PathBuf, Ident)>,
}

impl Batch {
    /// Records an artifact moved into staging and writes its marker under
    /// a temporary name (not fsynced; [`commit`] renames it into place).
    /// On an error the artifact stays staged without a marker and its drop
    /// marker stays: the next pass finishes the move.
    pub fn staged(&mut self, staging: &Path, s: Staged<'_>) -> anyhow::Result<()> {
        if s.copied.is_none() {
            self.drop_changed = true;
        }
        self.staging_changed = true;
        let temp = temp_marker(staging, s.name, s.digest)?;
        self.takes.push(Take {
            name: s.name.to_os_string(),
            file_name: s.file_name.to_string(),
            temp,
            drop_marker: Some(s.drop_marker),
            copied: s.copied,
        });
        Ok(())
    }

    /// Records an artifact downloaded from the store and renamed into
    /// staging (its data fsynced before the rename, as a copy's is), and
    /// writes its marker under a temporary name, as [`Batch::staged`] does;
    /// [`commit`] renames the marker into place like any other. Nothing
    /// leaves the drop folder for it. On an error the artifact stays
    /// staged without a marker and with no drop marker: the next pass
    /// removes it (`staging::tidy`) and takes it from the store again.
    #[cfg(feature = "s3")]
    pub fn pulled(
        &mut self,
        staging: &Path,
        name: &OsStr,
        file_name: &str,
        digest: &str,
    ) -> anyhow::Result<()> {
        self.staging_changed = true;
        let temp = temp_marker(staging, name, digest)?;
        self.takes.push(Take {
            name: name.to_os_string(),
            file_name: file_name.to_string(),
            temp,
            drop_marker: None,
            copied: None,
        });
        Ok(())
    }

    /// Records an upload (and its marker) to move into quarantine as
    /// `dest`, whose reason is written.
    pub fn reject(
        &mut self,
        upload: Pending,
        marker: Option<Pending>,
        dest: OsString,
        reason: &str,
    ) {
        self.rejects.push(Reject {
            upload,
            marker,
            dest,
            reason: reason.to_string(),
        });
    }

    /// Records a drop entry to remove once staging/ is fsynced (a second
    /// upload or marker of an artifact already staged).
    pub fn remove_later(&mut self, path: PathBuf, ident: Ident) {
        self.staging_changed = true;
        self.removals.push(vec![(path, ident)]);
    }

    fn is_empty(&self) -> bool {
        self.takes.is_empty()
            && self.rejects.is_empty()
            && self.removals.is_empty()
            && !self.staging_changed
            && !self.drop_changed
    }
}

/// Writes `<digest>  <name>` into a new temporary file in staging.
fn temp_marker(staging: &Path, name: &OsStr, digest: &str) -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let temp = staging.join(format!(
        "{TEMP_PREFIX}marker-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let line = format!("{digest}  {}\n", name.to_string_lossy());
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(line.as_bytes())?;
            // The mode whatever the umask, as atomic writes do.
            f.set_permissions(std::fs::Permissions::from_mode(0o644))
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("writing the marker of {}", shown(name)));
    }
    Ok(temp)
}

/// Finishes what the pass began; see the module doc. Errors are recorded
/// in the pass; after a failed sync nothing more happens (what waits is
/// finished by the next pass).
pub fn commit(ctx: &mut Ctx<'_>) {
    let batch = std::mem::take(&mut ctx.batch);
    if batch.is_empty() {
        return;
    }
    let layout = ctx.layout;
    fault::point("collector:before-sync");

    // 1. Data and names of step 0, durable.
    let synced = sync_filesystems(
        (!batch.takes.is_empty()).then_some(layout.staging.as_path()),
        (!batch.rejects.is_empty()).then_some(layout.quarantine.as_path()),
    );
    if let Err(e) = synced {
        ctx.error(&e.context("nothing more is moved in this pass; the next pass finishes it"));
        for t in &batch.takes {
            let _ = std::fs::remove_file(&t.temp);
        }
        for r in &batch.rejects {
            let reason = quarantine::with_suffix(&r.dest, quarantine::REASON_SUFFIX);
            let _ = std::fs::remove_file(layout.quarantine.join(reason));
        }
        return;
    }

    // 2. Markers into place; rejected uploads into quarantine.
    let mut removals = batch.removals;
    let mut drop_changed = batch.drop_changed;
    let mut quarantine_changed = false;
    for t in batch.takes {
        let marker = layout.staging.join(marker_name(&t.name));
        match std::fs::rename(&t.temp, &marker) {
            Ok(()) => {
                fault::point("collector:after-marker-rename");
                info!("collected {} into staging", t.file_name);
                collected(ctx, &t.file_name);
                // The copy's source first: a drop marker without its
                // artifact is what the next pass finishes from.
                removals.push(t.copied.into_iter().chain(t.drop_marker).collect());
            }
            Err(e) => {
                let _ = std::fs::remove_file(&t.temp);
                ctx.error(
                    &anyhow::Error::from(e)
                        .context(format!("renaming into place {}", marker.display())),
                );
            }
        }
    }
    for r in batch.rejects {
        let finished = quarantine::finish(
            &layout.drop,
            &layout.quarantine,
            &r.upload,
            r.marker.as_ref(),
            &r.dest,
        );
        match finished {
            Ok(done) if done.moved => {
                quarantine_changed = true;
                drop_changed = true;
                removals.push(done.copied);
                quarantined(ctx, &r.upload.name, &r.dest, &r.reason);
            }
            Ok(_) => debug!(
                "{} changed after it was judged; the next pass judges it again",
                shown(&r.upload.name)
            ),
            Err(e) => ctx.error(&e.context(format!(
                "quarantining {} ({})",
                shown(&r.upload.name),
                r.reason
            ))),
        }
    }
    fault::point("collector:before-folder-sync");

    // 3. One fsync per folder that changed.
    for (dir, changed) in [
        (&layout.staging, batch.staging_changed),
        (&layout.quarantine, quarantine_changed),
    ] {
        if changed {
            if let Err(e) = fsync_dir(dir) {
                ctx.error(&e.context("the drop folder is left as it is until the next pass"));
                return;
            }
        }
    }
    fault::point("collector:after-folder-sync");

    // 4. What staging/ and quarantine/ now hold durably leaves drop/.
    for group in removals {
        for (path, ident) in group {
            match mover::remove_source(&path, ident) {
                Ok(true) => {
                    drop_changed = true;
                    fault::point("collector:after-drop-removal");
                }
                Ok(false) => {}
                Err(e) => {
                    ctx.error(&e);
                    break;
                }
            }
        }
    }
    if drop_changed {
        if let Err(e) = fsync_dir(&layout.drop) {
            ctx.error(&e);
        }
    }
}

/// `syncfs` of each folder's filesystem, once per filesystem.
fn sync_filesystems(staging: Option<&Path>, quarantine: Option<&Path>) -> anyhow::Result<()> {
    let mut done: Vec<u64> = Vec::new();
    for dir in [staging, quarantine].into_iter().flatten() {
        let file = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        let dev = file
            .metadata()
            .with_context(|| format!("inspecting {}", dir.display()))?
            .dev();
        if done.contains(&dev) {
            continue;
        }
        nix::unistd::syncfs(&file)
            .with_context(|| format!("syncfs of the filesystem holding {}", dir.display()))?;
        done.push(dev);
    }
    Ok(())
}
