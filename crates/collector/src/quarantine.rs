//! Quarantine: rejected uploads move to quarantine/ with a `<name>.reason`
//! file beside them (one line: when, in UTC, and why).
//!
//! The move is as safe as a move into staging (see [`crate::mover`]): the
//! file is whole in drop/ or quarantine/ at every instant. A name is kept
//! byte for byte, even one with control characters or invalid UTF-8 (it is
//! only ever shown escaped), unless it is too long to have `.reason` beside
//! it: then it is cut short to fit (see `fitting`). An existing quarantined file is never
//! overwritten: the newcomer gets a UTC timestamp suffix. The reason file is
//! written (atomically) before the move, so a quarantined file always has
//! its reason, and pruning, which goes by reason files, always sees it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::mover::{self, Move, MoveError};
use crate::open::Opened;

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

/// Moves `upload` (and `marker`, if given) from `drop` to `quarantine` with
/// `reason`; returns the name it has in quarantine.
pub fn quarantine(
    drop: &Path,
    quarantine: &Path,
    now: DateTime<Utc>,
    upload: Rejected<'_>,
    marker: Option<Rejected<'_>>,
    reason: &str,
) -> anyhow::Result<OsString> {
    let dest = free_name(quarantine, upload.name, now)?;
    let reason_path = quarantine.join(with_suffix(&dest, REASON_SUFFIX));
    let line = format!("{}: {}\n", deploy_root::time::human(now), one_line(reason));
    deploy_root::atomic::write(&reason_path, line.as_bytes())
        .with_context(|| format!("writing {}", reason_path.display()))?;
    let moved = move_one(drop, quarantine, &upload, &dest);
    if let Err(e) = moved {
        // Nothing was quarantined: no reason may claim it was.
        let _ = std::fs::remove_file(&reason_path);
        return Err(e);
    }
    if let Some(marker) = marker {
        move_one(
            drop,
            quarantine,
            &marker,
            &with_suffix(&dest, artifact_name::MARKER_SUFFIX),
        )?;
    }
    Ok(dest)
}

fn move_one(drop: &Path, quarantine: &Path, f: &Rejected<'_>, dest: &OsStr) -> anyhow::Result<()> {
    let src = drop.join(f.name);
    let dest = quarantine.join(dest);
    mover::move_file(&Move {
        src: &src,
        opened: f.opened,
        dest: &dest,
        expect: None,
        try_rename: true,
    })
    .map(|_| ())
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
