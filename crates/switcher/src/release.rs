//! Release folders: making one from a staged artifact, before anything
//! running is touched.
//!
//! The archive is checked against its marker, unpacked into
//! `releases/.tmp-<id>/` (one folder per component), the shared files and
//! folders are linked in, and each component's folder is renamed into
//! `releases/<component>/<id>/`; then each component's `prepare` command
//! runs there. A failure anywhere removes what this step made and leaves
//! every running release alone.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::symlink;
use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::Context;
use artifact_name::parse_marker;
use deploy_root::{fault, Config, Layout};

use crate::command::{self, CommandContext};
use crate::failure::StepFailure;
use crate::staged::Staged;
use crate::unpack::{self, Limits};

/// The prefix of the temporary folders under releases/.
pub const TMP_PREFIX: &str = ".tmp-";

/// The fault point inside the unpack loop fires after this many entries.
const MID_UNPACK_ENTRIES: u64 = 2;

/// Makes the release folders of `staged` for `components`. `Ok(Err(_))`
/// is the artifact's fault (mark it failed); `Err(_)` is the machine's.
pub fn prepare(
    config: &Config,
    layout: &Layout,
    staged: &Staged,
    components: &[String],
) -> anyhow::Result<Result<(), StepFailure>> {
    let id = staged.name.stem().to_string();
    let tmp = layout.releases.join(format!("{TMP_PREFIX}{id}"));
    remove_dir_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let made = make_folders(config, layout, staged, components, &tmp);
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

/// Digest, unpack, checks, shared links, rename into place.
fn make_folders(
    config: &Config,
    layout: &Layout,
    staged: &Staged,
    components: &[String],
    tmp: &Path,
) -> anyhow::Result<Result<(), StepFailure>> {
    let first = components.first().map(String::as_str).unwrap_or("");
    let file_name = staged.name.file_name();
    // One descriptor for digest and unpack: what was checked is what unpacks,
    // even if the collector replaces or prunes the path meanwhile.
    // A file that cannot be opened (pruned meanwhile, permissions) is the
    // machine's problem, not the artifact's: an error, never a failure mark.
    let mut file =
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
    let actual = deploy_root::digest::sha256_file(&file)
        .with_context(|| format!("reading {}", staged.path.display()))?;
    if actual != expected {
        return Ok(Err(StepFailure::new(
            first,
            "digest",
            format!(
                "{} has SHA-256 {actual}, but its marker says {expected}",
                staged.path.display()
            ),
        )));
    }
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("rewinding {}", staged.path.display()))?;
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
    let unpacked = unpack::unpack(
        std::io::BufReader::new(file),
        staged.name.ext(),
        tmp,
        &limits,
        |n| {
            if n == MID_UNPACK_ENTRIES {
                fault::point("switcher:mid-unpack");
            }
        },
    );
    let summary = match unpacked {
        Ok(s) => s,
        // The machine's fault (a full disk, a folder it may not write), not
        // the artifact's: it is not marked failed, so that the first pass
        // after the machine is mended takes it.
        Err(e @ unpack::UnpackError::Write { .. }) => {
            return Err(anyhow::Error::from(e).context(format!(
                "unpacking {file_name} into {} (nothing running was touched)",
                tmp.display()
            )))
        }
        Err(e) => {
            return Ok(Err(StepFailure::new(
                first,
                "unpack",
                format!("{file_name}: {e}"),
            )))
        }
    };
    tracing::debug!(
        "unpacked {file_name}: {} entries, {} bytes",
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
    let id = staged.name.stem();
    for c in components {
        let dir = layout.releases_of(c);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dest = layout.release(c, id);
        if layout.current_release(c).as_deref() == Some(id) {
            anyhow::bail!(
                "{} is what current/{c} points to; it cannot be unpacked again",
                dest.display()
            );
        }
        // A folder left by an earlier attempt: made afresh, so that a crash
        // half-way through a prepare command never leaves its traces.
        remove_dir_if_exists(&dest)?;
        fs::rename(tmp.join(c), &dest)
            .with_context(|| format!("renaming into place {}", dest.display()))?;
        deploy_root::atomic::fsync_dir(&dir)?;
    }
    Ok(Ok(()))
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
