//! Quarantine: rejected uploads move to quarantine/ with a `<name>.reason`
//! file beside them (one line: when, in UTC, and why).
//!
//! The move is as safe as a move into staging (see [`crate::mover`]): the
//! file is whole in drop/ or quarantine/ at every instant. A name is kept
//! byte for byte, even one with control characters or invalid UTF-8 (it is
//! only ever shown escaped), unless it is too long to have `.reason` beside
//! it: then it is cut short to fit (see `fitting`). An existing quarantined file is never
//! overwritten: the newcomer gets a UTC timestamp suffix. The reason file is
//! written before the move, so a quarantined file always has its reason,
//! and pruning, which goes by reason files, always sees it.
//!
//! A pass quarantines in two steps ([`crate::batch`]): [`prepare`] writes
//! the reason (renamed into place, not fsynced) while the pass goes over
//! the drop folder; after the pass's one `syncfs`, which makes every reason
//! durable, [`finish`] moves the upload. A reason whose file never came (a
//! run killed in between) is removed by the next pass ([`tidy`]).
//! [`quarantine`] does both at once, durably, for the rare file that must
//! leave staging.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::mover::{self, How, Move, MoveError};
use crate::open::{self, Ident, Opened};

/// The suffix of reason files.
pub const REASON_SUFFIX: &str = ".reason";

/// An upload to quarantine: its name in the drop folder and the open file.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// Its name in the drop folder.
    pub name: &'a OsStr,
    /// It, open.
    pub opened: &'a Opened,
}

/// Moves `upload` (and `marker`, if given) from `from` to `quarantine` with
/// `reason`, durably (reason, move, fsyncs, then the source of a copy
/// removed); returns the name it has in quarantine. For a file that must
/// leave staging at once; the drop folder's rejects go through [`prepare`]
/// and [`finish`].
pub fn quarantine(
    from: &Path,
    quarantine: &Path,
    now: DateTime<Utc>,
    upload: Rejected<'_>,
    reason: &str,
) -> anyhow::Result<OsString> {
    let src = from.join(upload.name);
    quarantine_as(&src, upload.opened, quarantine, now, upload.name, reason)
}

/// [`quarantine`] for a file whose name in quarantine is not its own: the
/// file at `src` (open as `opened`) goes to quarantine as `name` (or a
/// free variant of it). A download from the store is written under a
/// temporary name in staging, and is quarantined under the store's name.
pub fn quarantine_as(
    src: &Path,
    opened: &Opened,
    quarantine: &Path,
    now: DateTime<Utc>,
    name: &OsStr,
    reason: &str,
) -> anyhow::Result<OsString> {
    let dest = free_name(quarantine, name, now)?;
    let reason_path = quarantine.join(with_suffix(&dest, REASON_SUFFIX));
    deploy_root::atomic::write(&reason_path, reason_line(now, reason).as_bytes())
        .with_context(|| format!("writing {}", reason_path.display()))?;
    let moved = move_one(src, &quarantine.join(&dest), opened);
    let how = match moved {
        Ok(how) => how,
        Err(e) => {
            // Nothing was quarantined: no reason may claim it was.
            let _ = std::fs::remove_file(&reason_path);
            return Err(e);
        }
    };
    deploy_root::atomic::fsync_dir(quarantine)?;
    if how == How::Copied {
        mover::remove_source(src, opened.ident())?;
    }
    deploy_root::atomic::fsync_dir(src.parent().unwrap_or(Path::new(".")))?;
    Ok(dest)
}

/// The first step of quarantining `name`: picks its name in quarantine
/// and writes its reason there (renamed into place, not fsynced: the pass
/// syncs once before any upload moves). Returns the name in quarantine.
pub fn prepare(
    quarantine: &Path,
    now: DateTime<Utc>,
    name: &OsStr,
    reason: &str,
) -> anyhow::Result<OsString> {
    let dest = free_name(quarantine, name, now)?;
    let reason_path = quarantine.join(with_suffix(&dest, REASON_SUFFIX));
    deploy_root::atomic::write_unsynced(&reason_path, reason_line(now, reason).as_bytes())
        .with_context(|| format!("writing {}", reason_path.display()))?;
    Ok(dest)
}

/// A file to move in [`finish`]: its name in the source folder and which
/// file it was when judged.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Its name in the source folder.
    pub name: OsString,
    /// The file that was judged.
    pub ident: Ident,
}

/// What [`finish`] did.
#[derive(Debug, Default)]
pub struct Finished {
    /// Whether the upload is in quarantine now (false: its name no longer
    /// held the file that was judged, so it was left alone and its reason
    /// removed).
    pub moved: bool,
    /// Sources that were copied (across filesystems) and are to be
    /// removed once quarantine/ is fsynced, with the file each must be.
    pub copied: Vec<(PathBuf, Ident)>,
}

/// The second step: moves the upload (then its marker, if any) from
/// `from` into quarantine under `dest`, whose reason [`prepare`] wrote.
/// Each file is opened again and must be the one judged; nothing is
/// fsynced, and the sources of copies stay for the caller to remove.
pub fn finish(
    from: &Path,
    quarantine: &Path,
    upload: &Pending,
    marker: Option<&Pending>,
    dest: &OsStr,
) -> anyhow::Result<Finished> {
    let mut done = Finished::default();
    let reason_path = quarantine.join(with_suffix(dest, REASON_SUFFIX));
    let moved = move_pending(from, quarantine, upload, dest);
    match moved {
        Ok(Some(how)) => {
            done.moved = true;
            if how == How::Copied {
                done.copied.push((from.join(&upload.name), upload.ident));
            }
        }
        Ok(None) | Err(_) => {
            // Nothing was quarantined: no reason may claim it was.
            let _ = std::fs::remove_file(&reason_path);
            return moved.map(|_| done);
        }
    }
    if let Some(marker) = marker {
        let marker_dest = with_suffix(dest, artifact_name::MARKER_SUFFIX);
        if move_pending(from, quarantine, marker, &marker_dest)? == Some(How::Copied) {
            done.copied.push((from.join(&marker.name), marker.ident));
        }
    }
    Ok(done)
}

/// Moves one pending file if its name still holds it; `None` if not.
fn move_pending(
    from: &Path,
    quarantine: &Path,
    f: &Pending,
    dest: &OsStr,
) -> anyhow::Result<Option<How>> {
    let src = from.join(&f.name);
    let opened = match open::open_regular(&src) {
        Ok(Ok(opened)) if opened.ident() == f.ident => opened,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", src.display())),
    };
    move_one(&src, &quarantine.join(dest), &opened).map(Some)
}

fn move_one(src: &Path, dest: &Path, opened: &Opened) -> anyhow::Result<How> {
    mover::move_file(&Move {
        src,
        opened,
        dest,
        expect: None,
        try_rename: true,
    })
    .map_err(|e| match e {
        MoveError::Io(e) => e,
        // Cannot happen without an expected digest; say what it was anyway.
        MoveError::Digest { found } => anyhow::anyhow!(
            "moving {} to {}: unexpected digest {found}",
            src.display(),
            dest.display()
        ),
    })
}

/// The one line of a reason file.
fn reason_line(now: DateTime<Utc>, reason: &str) -> String {
    format!("{}: {}\n", deploy_root::time::human(now), one_line(reason))
}

/// Removes what a run cut short left in quarantine: a reason whose file is
/// not there (written, then the run killed before the move; or a prune cut
/// short, which removes the reason last). Returns the names removed.
pub fn tidy(quarantine: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let listing = std::fs::read_dir(quarantine)
        .with_context(|| format!("listing {}", quarantine.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("listing {}", quarantine.display()))?;
        let name = entry.file_name();
        let Some(item) = name.as_bytes().strip_suffix(REASON_SUFFIX.as_bytes()) else {
            continue;
        };
        // A quarantined upload may itself be named `x.reason`: it has a
        // reason of its own.
        let is_item =
            std::fs::symlink_metadata(quarantine.join(with_suffix(&name, REASON_SUFFIX))).is_ok();
        if item.is_empty() || name.as_bytes().starts_with(b".") || is_item {
            continue;
        }
        let item = quarantine.join(OsStr::from_bytes(item));
        if matches!(std::fs::symlink_metadata(&item), Err(e) if e.kind() == io::ErrorKind::NotFound)
        {
            let path = entry.path();
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// The longest file name Linux filesystems take, in bytes.
const NAME_MAX: usize = 255;

/// `name` + `suffix`, with `name` cut short (byte-wise) so that the result
/// still leaves room for `.reason` and `.sha256` beside it. A 255-byte name
/// in the drop folder is legal, but `<name>.reason` would not be: without
/// this, such a file could never be quarantined and every pass would fail
/// on it. The reason itself names the upload in full.
fn fitting(name: &OsStr, suffix: &str) -> OsString {
    let room =
        NAME_MAX - REASON_SUFFIX.len().max(artifact_name::MARKER_SUFFIX.len()) - suffix.len();
    let bytes = name.as_bytes();
    let mut out = bytes[..bytes.len().min(room)].to_vec();
    out.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(out)
}

/// `name`, or `name.<UTC time>[-n]` when `name` (or its reason or marker)
/// is already in quarantine; shortened where a reason file beside it would
/// not fit (see [`fitting`]).
fn free_name(quarantine: &Path, name: &OsStr, now: DateTime<Utc>) -> anyhow::Result<OsString> {
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let taken = |candidate: &OsStr| {
        [
            candidate.to_os_string(),
            with_suffix(candidate, REASON_SUFFIX),
            with_suffix(candidate, artifact_name::MARKER_SUFFIX),
        ]
        .iter()
        .any(|n| std::fs::symlink_metadata(quarantine.join(n)).is_ok())
    };
    let first = fitting(name, "");
    if !taken(&first) {
        return Ok(first);
    }
    for n in 1..1000 {
        let suffix = if n == 1 {
            format!(".{stamp}")
        } else {
            format!(".{stamp}-{n}")
        };
        let candidate = fitting(name, &suffix);
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "no free name for {:?} in {}",
        name.to_string_lossy(),
        quarantine.display()
    )
}

/// `name` + `suffix`, byte for byte.
pub fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut bytes = name.as_bytes().to_vec();
    bytes.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(bytes)
}

/// Text on one line, control characters escaped (names in the drop folder
/// are untrusted and may hold newlines or terminal escapes).
pub fn one_line(reason: &str) -> String {
    reason
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quarantined_names_leave_room_for_their_reason() {
        use std::os::unix::ffi::OsStrExt;
        let long = std::ffi::OsString::from("x".repeat(255));
        let fit = super::fitting(&long, ".20261126T000000Z-2");
        assert_eq!(fit.len() + ".reason".len(), 255);
        assert!(fit.as_bytes().ends_with(b"x.20261126T000000Z-2"));
        let short = std::ffi::OsStr::new("full.tar.gz");
        assert_eq!(super::fitting(short, ""), short);
    }

    #[test]
    fn reasons_stay_on_one_line() {
        assert_eq!(super::one_line("a\nb\tc"), "a\\nb\\tc");
    }
}
