//! The staging folder as the collector keeps it.
//!
//! Only the collector writes here, under its lock. An artifact is staged
//! when it and its marker are both here, as regular files; what counts as
//! staged is [`deploy_root::staging`]'s policy, the same the switcher uses. The marker in staging is written by the collector
//! itself from the digest it verified, so it is always the canonical
//! `<digest>  <name>` line.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use artifact_name::ArtifactName;

use crate::mover::TEMP_PREFIX;
use crate::scan::{marker_name, marker_target};

pub use deploy_root::staging::{has_marker, list, Staged};

/// The stem (release id) of every artifact in staging, marker or not ->
/// its name.
pub fn stems(staging: &Path) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let listing =
        fs::read_dir(staging).with_context(|| format!("listing {}", staging.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("listing {}", staging.display()))?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        if let Ok(parsed) = ArtifactName::parse_bytes(name.as_bytes()) {
            // Two of one stem already (staged by hand, or before this
            // check): the first by name, as a pass would have kept.
            let file_name = parsed.file_name().to_string();
            out.entry(parsed.stem().to_string())
                .and_modify(|other: &mut String| {
                    if file_name < *other {
                        other.clone_from(&file_name);
                    }
                })
                .or_insert(file_name);
        }
    }
    Ok(out)
}

/// The digest of the staged artifact `name`, if it is in staging: its
/// marker's, or, without a marker (a move cut short), computed.
pub fn digest(staging: &Path, name: &OsStr) -> anyhow::Result<Option<String>> {
    let path = staging.join(name);
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => anyhow::bail!("{} is in staging but not a regular file", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    let marker = staging.join(marker_name(name));
    match fs::read_to_string(&marker) {
        Ok(text) => {
            let digest = artifact_name::parse_marker(&text, &name.to_string_lossy())
                .with_context(|| format!("staged marker {}", marker.display()))?;
            Ok(Some(digest))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let file =
                fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let digest = crate::mover::digest_of(&file)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Some(digest))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", marker.display())),
    }
}

/// Writes the marker of the staged artifact `name` (atomically).
pub fn write_marker(staging: &Path, name: &OsStr, digest: &str) -> anyhow::Result<()> {
    let path = staging.join(marker_name(name));
    let line = format!("{digest}  {}\n", name.to_string_lossy());
    deploy_root::atomic::write(&path, line.as_bytes())
        .with_context(|| format!("writing marker {}", path.display()))
}

/// Removes what a killed run may have left in `dir`: copies in progress
/// and temporary files of atomic writes. Returns what it removed.
pub fn remove_temps(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let bytes = name.as_bytes();
        if bytes.starts_with(TEMP_PREFIX.as_bytes()) || bytes.starts_with(b".tmp-") {
            let path = entry.path();
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Finishes what a killed run left half done in staging, after the drop
/// folder has been handled: a marker without its artifact is removed, and
/// so is an artifact without its marker when the drop folder holds no
/// marker for it (a prune cut short: the marker goes first; or a download
/// from the store cut short after its rename: the store intake, which
/// comes after, takes it again). An artifact
/// whose marker is still in the drop folder was being collected; the drop
/// pass has repaired it already, or reported why not.
pub fn tidy(staging: &Path, drop: &Path) -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    let names: Vec<_> = fs::read_dir(staging)
        .with_context(|| format!("listing {}", staging.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| !n.as_bytes().starts_with(b"."))
        .collect();
    for name in &names {
        let path = staging.join(name);
        let orphan_marker = marker_target(name.as_bytes()).is_some_and(|t| {
            matches!(
                fs::symlink_metadata(staging.join(OsStr::from_bytes(t))),
                Err(e) if e.kind() == io::ErrorKind::NotFound
            )
        });
        let half_pruned = marker_target(name.as_bytes()).is_none()
            && ArtifactName::parse_bytes(name.as_bytes()).is_ok()
            && !has_marker(staging, name)
            && matches!(
                fs::symlink_metadata(drop.join(marker_name(name))),
                Err(e) if e.kind() == io::ErrorKind::NotFound
            );
        if orphan_marker || half_pruned {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(name.to_string_lossy().into_owned());
        }
    }
    if !removed.is_empty() {
        deploy_root::atomic::fsync_dir(staging)?;
    }
    Ok(removed)
}
