//! Takes one upload into staging, or decides its fate (quarantine or wait).
//!
//! An upload is taken once its marker has arrived and the digest of the
//! very file we opened matches it, and its release id (its stem) is not
//! taken already. The artifact moves first and the marker second: the
//! artifact is renamed (or copied) into staging here, its staged marker
//! written under a temporary name from the verified digest; the pass then
//! renames the marker into place and only after that, once staging is
//! fsynced, removes the drop marker ([`crate::batch`]). So the switcher
//! never sees a staged artifact that is not complete and verified, and at
//! every instant the artifact is whole in drop/ or staging/. A run killed
//! in between leaves a drop marker whose artifact is staged without one;
//! the next pass finishes the move ([`crate::recover`], or
//! [`already_staged`] when the cross-filesystem copy's source is still
//! there).

use std::ffi::OsStr;
use std::fs::FileType;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;
use artifact_name::{ArtifactName, NameError};
use deploy_root::fault;
use tracing::info;

use crate::batch::Staged;
use crate::mover::{self, How, Move, MoveError};
use crate::open::{self, Opened, Refusal, Seen};
use crate::pass::Ctx;
use crate::quarantine::Rejected;
use crate::scan::{marker_name, Item};
use crate::staging;
use crate::verdict::{
    is_stale, is_stale_since, reject, reject_unverified_in_staging, shown, wait, wait_seen,
};

/// Handles one item of the drop folder.
pub fn handle(ctx: &mut Ctx<'_>, item: Item) -> anyhow::Result<()> {
    match item {
        Item::Upload {
            name,
            file_type,
            marker,
        } => upload(ctx, &name, file_type, marker.as_deref()),
        Item::OrphanMarker { name, artifact } => {
            crate::recover::orphan_marker(ctx, &name, &artifact)
        }
    }
}

/// An upload and its marker, both open.
struct Pair<'a> {
    name: &'a OsStr,
    opened: &'a Opened,
    marker: &'a OsStr,
    marker_opened: &'a Opened,
}

impl Pair<'_> {
    /// Quarantines both with `reason`.
    fn reject(&self, ctx: &mut Ctx<'_>, reason: &str) -> anyhow::Result<()> {
        let marker = Rejected {
            name: self.marker,
            opened: self.marker_opened,
        };
        reject(ctx, self.name, self.opened, Some(marker), reason)
    }

    /// The reason for a digest that does not match the marker's.
    fn mismatch(&self, expect: &str, found: &str) -> String {
        format!(
            "digest mismatch: the marker {} says {expect}, the file has {found}",
            shown(self.marker)
        )
    }

    /// The digest of the upload, read from the open file.
    fn digest(&self, ctx: &Ctx<'_>) -> anyhow::Result<String> {
        mover::digest_of(&self.opened.file)
            .with_context(|| format!("reading {}", ctx.layout.drop.join(self.name).display()))
    }
}

fn upload(
    ctx: &mut Ctx<'_>,
    name: &OsStr,
    file_type: FileType,
    marker: Option<&OsStr>,
) -> anyhow::Result<()> {
    if let Some(refusal) = Refusal::of_type(file_type) {
        wait(ctx, name, &refusal.reason(), true);
        return Ok(());
    }
    let parsed = ArtifactName::parse_bytes(name.as_bytes());
    let problem = name_problem(ctx, name, &parsed);
    let Some(marker) = marker else {
        return without_marker(ctx, name, problem);
    };
    let Some(opened) = open_entry(ctx, name, name, "")? else {
        return Ok(());
    };
    let what = format!("its marker {}: ", shown(marker));
    let Some(marker_opened) = open_entry(ctx, marker, name, &what)? else {
        return Ok(());
    };
    let pair = Pair {
        name,
        opened: &opened,
        marker,
        marker_opened: &marker_opened,
    };
    let parsed = match (parsed, problem) {
        (Ok(parsed), None) => parsed,
        (_, problem) => return pair.reject(ctx, &problem.unwrap_or_default()),
    };
    // An empty marker is most likely one being written (`echo ... > x.sha256`
    // creates the file before it writes): it waits like a missing one, and
    // is quarantined only once stale.
    if marker_opened.meta.len() == 0 && !is_stale(ctx, &marker_opened.meta) {
        let reason = format!(
            "its marker {} is still empty (being written?)",
            shown(marker)
        );
        wait_seen(ctx, name, &reason, false, Seen::from(&opened.meta));
        return Ok(());
    }
    let expect = match open::read_marker(&marker_opened).and_then(|text| {
        artifact_name::parse_marker(&text, parsed.file_name()).map_err(|e| e.to_string())
    }) {
        Ok(digest) => digest,
        Err(why) => {
            let reason = format!("its marker {} is not valid: {why}", shown(marker));
            return pair.reject(ctx, &reason);
        }
    };
    match staging::digest(&ctx.layout.staging, name)? {
        Some(staged) => already_staged(ctx, &pair, &parsed, &expect, &staged),
        None => match clash(ctx, &parsed) {
            Some(reason) => pair.reject(ctx, &reason),
            None => take(ctx, &pair, &parsed, &expect),
        },
    }
}

/// Why an upload would take a release id already taken: its stem (the
/// name without the extension, which the switcher unpacks it under) is the
/// stem of another artifact in staging (`x.tar.gz` and `x.tgz`), or a
/// release folder of that id exists. The switcher could never deploy it
/// (it would fail every pass, or overwrite the release a rollback returns
/// to). The first one staged is kept; in one pass, the first by name.
fn clash(ctx: &Ctx<'_>, parsed: &ArtifactName) -> Option<String> {
    let stem = parsed.stem();
    if let Some(other) = ctx.stems.get(stem) {
        return Some(format!(
            "its release id {stem} would clash with {other}, already in staging: the two names \
             differ only in the extension and would unpack into the same release folder \
             releases/<component>/{stem}/ (the first one staged is kept)"
        ));
    }
    ctx.config.components.keys().find_map(|c| {
        let dir = ctx.layout.release(c, stem);
        std::fs::symlink_metadata(&dir).is_ok().then(|| {
            format!(
                "its release id {stem} would clash with the release {} that exists already \
                 (unpacked from an earlier artifact with this name up to the extension); it \
                 could never be deployed",
                dir.display()
            )
        })
    })
}

/// Why a name cannot be taken: not an artifact name, or a kind the config
/// does not know.
fn name_problem(
    ctx: &Ctx<'_>,
    name: &OsStr,
    parsed: &Result<ArtifactName, NameError>,
) -> Option<String> {
    match parsed {
        Err(e) => Some(e.to_string()),
        Ok(n) if ctx.config.components_of(n.kind()).is_none() => Some(format!(
            "the kind {:?} of {} is not in the config {} (known kinds: {})",
            n.kind(),
            shown(name),
            ctx.config.path.display(),
            ctx.config
                .kinds
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(_) => None,
    }
}

/// An upload whose marker has not arrived: it waits. A bad name waits too,
/// since the file may still be being written, until it has not changed for
/// `stale_upload_after`: then it is junk, not an upload, and quarantined.
///
/// A waiting upload is not read, so it is only inspected (one `lstat`, no
/// open: see [`open::inspect`]); it is opened, with every check, only to be
/// quarantined.
fn without_marker(ctx: &mut Ctx<'_>, name: &OsStr, problem: Option<String>) -> anyhow::Result<()> {
    let path = ctx.layout.drop.join(name);
    let inspected = match &ctx.drop_dir {
        Some(dir) => open::inspect(dir.as_fd(), name),
        None => open::inspect(nix::fcntl::AT_FDCWD, path.as_os_str()),
    };
    let seen = match inspected {
        Ok(Ok(seen)) => seen,
        Ok(Err(refusal)) => {
            wait(ctx, name, &refusal.reason(), true);
            return Ok(());
        }
        // Removed or renamed since the listing (an uploader tidying up).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    let stale_after = humantime::format_duration(ctx.config.collector.stale_upload_after);
    let Some(problem) = problem else {
        let reason = format!(
            "no marker yet (the upload is complete once {} arrives)",
            shown(&marker_name(name))
        );
        wait_seen(ctx, name, &reason, false, seen);
        return Ok(());
    };
    let waiting = format!("{problem}; quarantined once its marker arrives or after {stale_after}");
    if !is_stale_since(ctx, seen.modified) {
        wait_seen(ctx, name, &waiting, false, seen);
        return Ok(());
    }
    let Some(opened) = open_entry(ctx, name, name, "")? else {
        return Ok(());
    };
    // Decided on the open file itself: the name may have been written to,
    // or replaced, since the lstat.
    if is_stale(ctx, &opened.meta) {
        let reason = format!("{problem} (and no marker arrived within {stale_after})");
        reject(ctx, name, &opened, None, &reason)?;
    } else {
        wait_seen(ctx, name, &waiting, false, Seen::from(&opened.meta));
    }
    Ok(())
}

/// The upload's name is already in staging: a second upload of the same
/// artifact (removed from the drop folder), a move a killed run began
/// (finished), or another build under the same name (quarantined).
fn already_staged(
    ctx: &mut Ctx<'_>,
    pair: &Pair<'_>,
    parsed: &ArtifactName,
    expect: &str,
    staged: &str,
) -> anyhow::Result<()> {
    let found = pair.digest(ctx)?;
    if found != expect {
        return pair.reject(ctx, &pair.mismatch(expect, &found));
    }
    if found != staged {
        let reason = format!(
            "an artifact of the same name with another digest ({staged}) is already in staging"
        );
        return pair.reject(ctx, &reason);
    }
    let staging = &ctx.layout.staging;
    let finished = !staging::has_marker(staging, pair.name);
    if finished {
        staging::write_marker(staging, pair.name, expect)?;
    }
    remove_from_drop(ctx, pair.name, pair.opened);
    remove_from_drop(ctx, pair.marker, pair.marker_opened);
    let file_name = parsed.file_name();
    if finished {
        info!("collected {file_name} (finished a move a run cut short)");
        collected(ctx, file_name);
    } else {
        info!("{file_name} is already in staging with the same digest; removed the second upload");
        ctx.summary.duplicates_removed.push(file_name.to_string());
    }
    Ok(())
}

/// Moves a verified upload into staging: the artifact, then its marker.
fn take(
    ctx: &mut Ctx<'_>,
    pair: &Pair<'_>,
    parsed: &ArtifactName,
    expect: &str,
) -> anyhow::Result<()> {
    if ctx.same_fs {
        // rename(2) keeps the very file: verify it before it moves. (Across
        // filesystems the copy is verified as it is made.)
        let found = pair.digest(ctx)?;
        if found != expect {
            return pair.reject(ctx, &pair.mismatch(expect, &found));
        }
    }
    fault::point("collector:before-move");
    let src = ctx.layout.drop.join(pair.name);
    let dest = ctx.layout.staging.join(pair.name);
    let moved = mover::move_file(&Move {
        src: &src,
        opened: pair.opened,
        dest: &dest,
        expect: Some(expect),
        try_rename: ctx.same_fs,
    });
    let moved = match moved {
        // Swapped between our check and the rename: not what we verified.
        Ok(How::Renamed) if !pair.opened.is_at(&dest) => {
            return reject_unverified_in_staging(ctx, pair.name)
        }
        Ok(how) => how,
        Err(MoveError::Digest { found }) => {
            return pair.reject(ctx, &pair.mismatch(expect, &found))
        }
        Err(MoveError::Io(e)) => return Err(e),
    };
    let copied = match moved {
        How::Copied => Some((src.clone(), pair.opened.ident())),
        _ => None,
    };
    fault::point("collector:after-artifact-move");
    ctx.stems
        .insert(parsed.stem().to_string(), parsed.file_name().to_string());
    let staged = Staged {
        name: pair.name,
        file_name: parsed.file_name(),
        digest: expect,
        drop_marker: (
            ctx.layout.drop.join(pair.marker),
            pair.marker_opened.ident(),
        ),
        copied,
    };
    ctx.batch.staged(&ctx.layout.staging, staged)
}

/// Opens a drop entry; `None` when it is refused (then reported as waiting
/// under `waiting_as`, the reason prefixed with `what`) or gone.
pub fn open_entry(
    ctx: &mut Ctx<'_>,
    name: &OsStr,
    waiting_as: &OsStr,
    what: &str,
) -> anyhow::Result<Option<Opened>> {
    let path = ctx.layout.drop.join(name);
    match open::open_regular(&path) {
        Ok(Ok(opened)) => Ok(Some(opened)),
        Ok(Err(refusal)) => {
            wait(
                ctx,
                waiting_as,
                &format!("{what}{}", refusal.reason()),
                true,
            );
            Ok(None)
        }
        // Removed or renamed since the listing (an uploader tidying up).
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

/// Removes a drop entry when the pass commits, after staging/ is fsynced,
/// if its name still holds the file we opened then (a new upload under the
/// same name stays).
pub fn remove_from_drop(ctx: &mut Ctx<'_>, name: &OsStr, opened: &Opened) {
    let path = ctx.layout.drop.join(name);
    ctx.batch.remove_later(path, opened.ident());
}

/// Records an artifact taken into staging by this pass.
pub fn collected(ctx: &mut Ctx<'_>, file_name: &str) {
    ctx.summary.collected.push(file_name.to_string());
    ctx.collected_at.insert(file_name.to_string(), ctx.now);
}
