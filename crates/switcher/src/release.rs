//! Release folders: making one from a staged artifact, before anything
//! running is touched.
//!
//! The archive is unpacked into `releases/.tmp-<id>/` (one folder per
//! component) in the same read that computes its digest, which must match
//! its marker; the shared files and folders are linked in, the filesystem
//! is synced, and each component's folder is renamed into
//! `releases/<component>/<id>/`; then each component's `prepare` command
//! runs there. A failure anywhere removes what this step made and leaves
//! every running release alone.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufReader;
use std::os::unix::fs::symlink;
use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::Context;
use artifact_name::parse_marker;
use deploy_root::digest::Sha256Reader;
use deploy_root::state::SwitcherState;
use deploy_root::{fault, Config, Layout};

use crate::command::{self, CommandContext};
use crate::failure::StepFailure;
use crate::staged::Staged;
use crate::unpack::{self, Limits};

/// The prefix of the temporary folders under releases/.
pub const TMP_PREFIX: &str = ".tmp-";

/// The fault point inside the unpack loop fires after this many entries.
const MID_UNPACK_ENTRIES: u64 = 2;

/// The read size for archives: large reads, few system calls.
const READ_BUFFER: usize = 256 << 10;

/// Makes the release folders of `staged` for `components`. `Ok(Err(_))`
/// is the artifact's fault (mark it failed); `Err(_)` is the machine's.
pub fn prepare(
    config: &Config,
    layout: &Layout,
    state: &SwitcherState,
    staged: &Staged,
    components: &[String],
) -> anyhow::Result<Result<(), StepFailure>> {
    let id = staged.name.stem().to_string();
    let tmp = layout.releases.join(format!("{TMP_PREFIX}{id}"));
    remove_dir_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let made = make_folders(config, layout, state, staged, components, &tmp);
    remove_dir_if_exists(&tmp)?;
    match made {
        Ok(Ok(())) => {}
        other => {
            remove_releases(layout, components, &id)?;
            return other;
        }
    }
    fault::point("switcher:after-unpack");
    for c in components {
        let Some(cmd) = config.components.get(c).and_then(|c| c.prepare.as_deref()) else {
            continue;
        };
        let ctx = CommandContext {
            component: c.clone(),
            step: "prepare".into(),
            release: layout.release(c, &id),
            version: staged.name.version().to_string(),
            branch: staged.name.branch().to_string(),
            artifact: staged.name.file_name().to_string(),
            slot: None,
        };
        let out = command::run(layout, cmd, &ctx, config.switcher.command_timeout)?;
        if !out.success() {
            remove_releases(layout, components, &id)?;
            return Ok(Err(StepFailure {
                component: c.clone(),
                step: "prepare".into(),
                exit_code: out.code,
                reason: format!(
                    "the prepare command {} (output in {})",
                    out.describe(config.switcher.command_timeout),
                    out.log.display()
                ),
                tail: out.tail,
            }));
        }
    }
    fault::point("switcher:after-prepare");
    Ok(Ok(()))
}

/// Unpack with the digest computed in the same read, checks, shared links,
/// syncfs, rename into place.
fn make_folders(
    config: &Config,
    layout: &Layout,
    state: &SwitcherState,
    staged: &Staged,
    components: &[String],
    tmp: &Path,
) -> anyhow::Result<Result<(), StepFailure>> {
    let first = components.first().map(String::as_str).unwrap_or("");
    let file_name = staged.name.file_name();
    let id = staged.name.stem();
    // Two artifacts with one stem (x.tar.gz, then x.tgz) would share this
    // release id. The collector quarantines the second; should one still
    // come (staged by hand), it must neither overwrite the release that
    // runs or the one a rollback returns to, nor fail every pass: it is
    // the artifact's fault, marked once.
    for c in components {
        if let Some(kept) = kept_release(layout, state, c, id) {
            return Ok(Err(StepFailure::new(
                c,
                "unpack",
                format!(
                    "{file_name} would unpack into {}, which is {kept}; another artifact with the same name and another extension was deployed before",
                    layout.release(c, id).display()
                ),
            )));
        }
    }
    // A file that cannot be opened (pruned meanwhile, permissions) is the
    // machine's problem, not the artifact's: an error, never a failure mark.
    let file =
        File::open(&staged.path).with_context(|| format!("opening {}", staged.path.display()))?;
    let marker = fs::read_to_string(&staged.marker)
        .with_context(|| format!("reading the marker {}", staged.marker.display()))?;
    let expected = match parse_marker(&marker, file_name) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Err(StepFailure::new(
                first,
                "digest",
                format!("marker {}: {e}", staged.marker.display()),
            )))
        }
    };
    let limits = Limits {
        max_unpacked_size: config.switcher.max_unpacked_size,
        max_entries: config.switcher.max_entries,
        // The archive holds every folder its kind carries, even when only
        // some of them deploy (the others already run something newer).
        top_level: config
            .components_of(staged.name.kind())
            .unwrap_or(components)
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
    };
    // One read: the digest is computed over exactly the bytes the unpacker
    // consumes, so a writer that changes the staged file meanwhile (the
    // upload user may still own it) changes the digest, and nothing it
    // wrote can reach releases/ unchecked.
    let mut reader = Sha256Reader::new(file);
    let unpacked = unpack::unpack(
        BufReader::with_capacity(READ_BUFFER, &mut reader),
        staged.name.ext(),
        tmp,
        &limits,
        |n| {
            if n == MID_UNPACK_ENTRIES {
                fault::point("switcher:mid-unpack");
            }
        },
    );
    if let Err(e @ unpack::UnpackError::Write { .. }) = unpacked {
        // The machine's fault (a full disk, a folder it may not write), not
        // the artifact's: it is not marked failed, so that the first pass
        // after the machine is mended takes it.
        return Err(anyhow::Error::from(e).context(format!(
            "unpacking {file_name} into {} (nothing running was touched)",
            tmp.display()
        )));
    }
    // The rest of the file (tar's end blocks, anything after them) counts
    // too: the marker covers the whole file.
    let actual = reader
        .finish()
        .with_context(|| format!("reading {}", staged.path.display()))?;
    if actual != expected {
        // Checked before the archive's own errors: bytes that are not the
        // ones CI checksummed explain any fault found in them.
        return Ok(Err(StepFailure::new(
            first,
            "digest",
            format!(
                "{} has SHA-256 {actual} as read, but its marker says {expected}; nothing was put in place",
                staged.path.display()
            ),
        )));
    }
    let summary = match unpacked {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(StepFailure::new(
                first,
                "unpack",
                format!("{file_name}: {e}"),
            )))
        }
    };
    tracing::debug!(
        "unpacked {file_name}: {} entries, {} bytes, SHA-256 {actual}",
        summary.entries,
        summary.bytes
    );
    for c in components {
        if !tmp.join(c).is_dir() {
            return Ok(Err(StepFailure::new(
                c,
                "unpack",
                format!(
                    "{file_name} has no {c}/ folder; a {} artifact must hold one top-level folder per component: {}/",
                    staged.name.kind(),
                    components.join("/, ")
                ),
            )));
        }
    }
    for c in components {
        if let Err(reason) = link_shared(config, layout, c, &tmp.join(c)) {
            return Ok(Err(StepFailure::new(c, "link", reason)));
        }
    }
    // Every file and folder of the release reaches the disk before it is
    // renamed into place (and so before current/ can point to it): one
    // syncfs(2) of the releases filesystem, measured far cheaper than an
    // fsync per file (BENCHMARKS.md). The renames below are then made
    // durable by the fsync of each releases/<component>/ folder.
    deploy_root::atomic::sync_filesystem(tmp)?;
    fault::point("switcher:after-sync");
    for c in components {
        let dir = layout.releases_of(c);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dest = layout.release(c, id);
        // A folder left by an earlier attempt: made afresh, so that a crash
        // half-way through a prepare command never leaves its traces.
        remove_dir_if_exists(&dest)?;
        fs::rename(tmp.join(c), &dest)
            .with_context(|| format!("renaming into place {}", dest.display()))?;
        deploy_root::atomic::fsync_dir(&dir)?;
    }
    Ok(Ok(()))
}

/// What the release folder `id` of `component` is kept as, when it is one
/// that must never be unpacked over: the running release, or the one a
/// rollback returns to.
fn kept_release(
    layout: &Layout,
    state: &SwitcherState,
    component: &str,
    id: &str,
) -> Option<&'static str> {
    if layout.current_release(component).as_deref() == Some(id) {
        return Some("the release that runs");
    }
    let cs = state.components.get(component)?;
    if cs.running.as_ref().is_some_and(|r| r.release == id) {
        return Some("the release that runs");
    }
    if cs.previous.as_ref().is_some_and(|r| r.release == id) {
        return Some("the release a rollback returns to");
    }
    None
}

/// Replaces each of the component's `linked_files` and `linked_dirs` in
/// `release` by a relative symlink to `shared/<component>/<path>`.
///
/// A missing shared folder is created (empty). A missing shared file is
/// seeded from the release's own copy when it has one; otherwise this
/// fails, naming the file, since starting without it would fail anyway.
fn link_shared(
    config: &Config,
    layout: &Layout,
    component: &str,
    release: &Path,
) -> Result<(), String> {
    let Some(c) = config.components.get(component) else {
        return Ok(());
    };
    let shared = layout.shared.join(component);
    let items = c
        .linked_dirs
        .iter()
        .map(|p| (p, true))
        .chain(c.linked_files.iter().map(|p| (p, false)));
    for (rel, is_dir) in items {
        let in_release = release.join(rel);
        let in_shared = shared.join(rel);
        // Every folder on the way inside the release must be a real folder:
        // a symlink from the archive must not redirect where the link goes.
        let mut walked = release.to_path_buf();
        for part in Path::new(rel)
            .parent()
            .into_iter()
            .flat_map(Path::components)
        {
            walked.push(part);
            match fs::symlink_metadata(&walked) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(format!(
                        "cannot link {rel}: {} in the release is not a folder",
                        walked.display()
                    ))
                }
                Err(_) => fs::create_dir(&walked)
                    .map_err(|e| format!("creating {}: {e}", walked.display()))?,
            }
        }
        let existing = fs::symlink_metadata(&in_release).ok();
        if is_dir {
            if !in_shared.is_dir() {
                fs::create_dir_all(&in_shared)
                    .map_err(|e| format!("creating shared folder {}: {e}", in_shared.display()))?;
            }
        } else if !in_shared.exists() {
            match &existing {
                Some(m) if m.is_file() => {
                    if let Some(p) = in_shared.parent() {
                        fs::create_dir_all(p)
                            .map_err(|e| format!("creating shared folder {}: {e}", p.display()))?;
                    }
                    fs::copy(&in_release, &in_shared).map_err(|e| {
                        format!("seeding shared file {}: {e}", in_shared.display())
                    })?;
                }
                _ => {
                    return Err(format!(
                        "the shared file {} (linked_files) does not exist and the release has no {rel} to seed it from; create it",
                        in_shared.display()
                    ))
                }
            }
        }
        if let Some(m) = existing {
            let removed = if m.is_dir() {
                fs::remove_dir_all(&in_release)
            } else {
                fs::remove_file(&in_release)
            };
            removed.map_err(|e| format!("removing {}: {e}", in_release.display()))?;
        }
        symlink(shared_target(component, rel), &in_release)
            .map_err(|e| format!("linking {}: {e}", in_release.display()))?;
    }
    Ok(())
}

/// The relative target from `releases/<component>/<id>/<rel>` to
/// `shared/<component>/<rel>` (the same depth as from the temp folder).
fn shared_target(component: &str, rel: &str) -> PathBuf {
    let depth = Path::new(rel)
        .components()
        .filter(|c| matches!(c, PathComponent::Normal(_)))
        .count();
    let mut t = PathBuf::new();
    for _ in 0..(depth + 2) {
        t.push("..");
    }
    t.join("shared").join(component).join(rel)
}

/// Removes the release folders `id` of `components` (not one current/ points to).
pub fn remove_releases(layout: &Layout, components: &[String], id: &str) -> anyhow::Result<()> {
    for c in components {
        if layout.current_release(c).as_deref() == Some(id) {
            continue;
        }
        remove_dir_if_exists(&layout.release(c, id))?;
    }
    Ok(())
}

/// Removes every `releases/.tmp-*` folder (left by a cut-short pass).
pub fn remove_temp_folders(layout: &Layout) -> anyhow::Result<()> {
    let rd = match fs::read_dir(&layout.releases) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", layout.releases.display())),
    };
    for entry in rd.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            remove_dir_if_exists(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes a folder tree; a missing one is fine.
pub fn remove_dir_if_exists(path: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_targets_climb_to_the_root() {
        assert_eq!(
            shared_target("backend", "config.yml"),
            Path::new("../../../shared/backend/config.yml")
        );
        assert_eq!(
            shared_target("backend", "var/uploads"),
            Path::new("../../../../shared/backend/var/uploads")
        );
    }
}
