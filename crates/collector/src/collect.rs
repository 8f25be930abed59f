//! Handles one drop entry: take it into staging, quarantine it, or leave it
//! waiting with a reason.
//!
//! An upload is taken once its marker has arrived and the digest of the
//! very file we opened matches it. The artifact moves first and the marker
//! second (the staged marker is written from the verified digest, then the
//! drop marker removed), so the switcher never sees a staged artifact that
//! is not complete and verified, and at every instant the artifact is whole
//! in drop/ or staging/. A run killed between the two steps leaves a drop
//! marker whose artifact is staged without one; [`orphan_marker`] finishes
//! that move on the next pass.

use std::ffi::OsStr;
use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;
use artifact_name::ArtifactName;
use chrono::{DateTime, Utc};
use deploy_root::fault;
use deploy_root::state::WaitingUpload;
use tracing::{debug, info, warn};

use crate::mover::{self, How, Move, MoveError};
use crate::open::{self, Opened, Refusal};
use crate::pass::Ctx;
use crate::quarantine::{self, Rejected};
use crate::scan::Item;
use crate::staging;
use crate::summary::Quarantined;

/// Handles one item of the drop folder.
pub fn handle(ctx: &mut Ctx<'_>, item: Item) -> anyhow::Result<()> {
    match item {
        Item::Upload {
            name,
            file_type,
            marker,
        } => upload(ctx, &name, file_type, marker.as_deref()),
        Item::OrphanMarker { name, artifact } => orphan_marker(ctx, &name, &artifact),
    }
}

/// A name as logs and reasons show it: quoted, control characters escaped.
pub fn shown(name: &OsStr) -> String {
    format!("{:?}", name.to_string_lossy())
}

/// Opens a drop entry; `None` when it is refused (then reported) or gone.
fn open_entry(
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
    let Some(opened) = open_entry(ctx, name, name, "")? else {
        return Ok(());
    };
    let parsed = ArtifactName::parse_bytes(name.as_bytes());
    let problem = match &parsed {
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
    };

    let Some(marker) = marker else {
        let stale_after = humantime::format_duration(ctx.config.collector.stale_upload_after);
        match problem {
            None => wait(
                ctx,
                name,
                &format!(
                    "no marker yet (the upload is complete once {} arrives)",
                    shown(&crate::scan::marker_name(name))
                ),
                false,
            ),
            // Never move a file that may still be being written; one that
            // no marker followed for this long is junk, not an upload.
            Some(problem) if is_stale(ctx, &opened.meta) => reject(
                ctx,
                name,
                &opened,
                None,
                &format!("{problem} (and no marker arrived within {stale_after})"),
            )?,
            Some(problem) => wait(
                ctx,
                name,
                &format!("{problem}; quarantined once its marker arrives or after {stale_after}"),
                false,
            ),
        }
        return Ok(());
    };

    let Some(marker_opened) = open_entry(
        ctx,
        marker,
        name,
        &format!("its marker {}: ", shown(marker)),
    )?
    else {
        return Ok(());
    };
    let marked = Some(Rejected {
        name: marker,
        opened: &marker_opened,
    });
    let parsed = match (parsed, problem) {
        (Ok(parsed), None) => parsed,
        (_, problem) => {
            let problem = problem.unwrap_or_default();
            return reject(ctx, name, &opened, marked, &problem);
        }
    };
    let file_name = parsed.file_name();
    let expect = match open::read_marker(&marker_opened)
        .and_then(|text| artifact_name::parse_marker(&text, file_name).map_err(|e| e.to_string()))
    {
        Ok(digest) => digest,
        Err(why) => {
            let reason = format!("its marker {} is not valid: {why}", shown(marker));
            return reject(ctx, name, &opened, marked, &reason);
        }
    };
    let drop_path = ctx.layout.drop.join(name);
    let staging = &ctx.layout.staging;
    let mismatch = |found: &str| {
        format!(
            "digest mismatch: the marker {} says {expect}, the file has {found}",
            shown(marker)
        )
    };

    // Already staged (a second upload, or a move a killed run began)?
    if let Some(staged) = staging::digest(staging, name)? {
        let found = mover::digest_of(&opened.file)
            .with_context(|| format!("reading {}", drop_path.display()))?;
        if found != expect {
            return reject(ctx, name, &opened, marked, &mismatch(&found));
        }
        if found != staged {
            let reason = format!(
                "an artifact of the same name with another digest ({staged}) is already in staging"
            );
            return reject(ctx, name, &opened, marked, &reason);
        }
        let finished = !staging::has_marker(staging, name);
        if finished {
            staging::write_marker(staging, name, &expect)?;
        }
        remove_from_drop(ctx, name, &opened)?;
        remove_from_drop(ctx, marker, &marker_opened)?;
        if finished {
            info!("collected {file_name} (finished a move a run cut short)");
            collected(ctx, file_name);
        } else {
            info!("{file_name} is already in staging with the same digest; removed the duplicate upload");
            ctx.summary.duplicates_removed.push(file_name.to_string());
        }
        return Ok(());
    }

    if ctx.same_fs {
        // rename(2) keeps the very file: verify it before it moves.
        let found = mover::digest_of(&opened.file)
            .with_context(|| format!("reading {}", drop_path.display()))?;
        if found != expect {
            return reject(ctx, name, &opened, marked, &mismatch(&found));
        }
    }
    fault::point("collector:before-move");
    let dest = staging.join(name);
    let how = mover::move_file(&Move {
        src: &drop_path,
        opened: &opened,
        dest: &dest,
        expect: Some(&expect),
        try_rename: ctx.same_fs,
    });
    match how {
        Ok(How::Renamed) if !opened.is_at(&dest) => {
            // Someone swapped the file between our check and the rename:
            // what reached staging is not what we verified. It has no
            // marker there, so the switcher ignores it; take it out.
            return unverified_in_staging(ctx, name);
        }
        Ok(_) => {}
        Err(MoveError::Digest { found }) => {
            return reject(ctx, name, &opened, marked, &mismatch(&found))
        }
        Err(MoveError::Io(e)) => return Err(e),
    }
    fault::point("collector:after-artifact-move");
    staging::write_marker(staging, name, &expect)?;
    remove_from_drop(ctx, marker, &marker_opened)?;
    info!("collected {file_name} into staging");
    collected(ctx, file_name);
    Ok(())
}

/// A marker without its artifact in the drop folder: the second half of a
/// move a killed run began, a duplicate, or an upload that lost its file.
fn orphan_marker(ctx: &mut Ctx<'_>, name: &OsStr, artifact: &OsStr) -> anyhow::Result<()> {
    let staging = &ctx.layout.staging;
    let staged = match ArtifactName::parse_bytes(artifact.as_bytes()) {
        Ok(_) => staging::digest(staging, artifact)?,
        Err(_) => None,
    };
    let Some(staged) = staged else {
        let reason = format!("a marker without its artifact {}", shown(artifact));
        wait(ctx, name, &reason, false);
        return Ok(());
    };
    let Some(opened) = open_entry(ctx, name, name, "")? else {
        return Ok(());
    };
    let file_name = artifact.to_string_lossy();
    let digest = open::read_marker(&opened)
        .and_then(|text| artifact_name::parse_marker(&text, &file_name).map_err(|e| e.to_string()));
    match digest {
        Ok(digest) if digest == staged => {
            let finished = !staging::has_marker(staging, artifact);
            if finished {
                staging::write_marker(staging, artifact, &digest)?;
            }
            remove_from_drop(ctx, name, &opened)?;
            if finished {
                info!("collected {file_name} (finished a move a run cut short)");
                collected(ctx, &file_name);
            } else {
                info!("removed {}: a second marker for the staged {file_name}", shown(name));
                ctx.summary.duplicates_removed.push(name.to_string_lossy().into_owned());
            }
        }
        Ok(digest) => wait(
            ctx,
            name,
            &format!(
                "a marker (digest {digest}) for {file_name}, which is staged with another digest ({staged})"
            ),
            true,
        ),
        Err(why) => wait(
            ctx,
            name,
            &format!("a marker that is not valid ({why}) for the staged {file_name}"),
            true,
        ),
    }
    Ok(())
}

/// Quarantines an upload (and its marker) with a reason.
fn reject(
    ctx: &mut Ctx<'_>,
    name: &OsStr,
    opened: &Opened,
    marker: Option<Rejected<'_>>,
    reason: &str,
) -> anyhow::Result<()> {
    let layout = ctx.layout;
    let dest = quarantine::quarantine(
        &layout.drop,
        &layout.quarantine,
        ctx.now,
        Rejected { name, opened },
        marker,
        reason,
    )
    .with_context(|| format!("quarantining {} ({reason})", shown(name)))?;
    warn!("quarantined {} as {}: {reason}", shown(name), shown(&dest));
    ctx.summary.quarantined.push(Quarantined {
        name: name.to_string_lossy().into_owned(),
        quarantined_as: dest.to_string_lossy().into_owned(),
        reason: reason.to_string(),
    });
    Ok(())
}

/// Moves a file that reached staging without being verified to quarantine.
fn unverified_in_staging(ctx: &mut Ctx<'_>, name: &OsStr) -> anyhow::Result<()> {
    let layout = ctx.layout;
    let path = layout.staging.join(name);
    let opened = match open::open_regular(&path) {
        Ok(Ok(opened)) => opened,
        Ok(Err(refusal)) => anyhow::bail!("{} {}", path.display(), refusal.reason()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let reason = "the file was replaced in the drop folder while being collected";
    let dest = quarantine::quarantine(
        &layout.staging,
        &layout.quarantine,
        ctx.now,
        Rejected {
            name,
            opened: &opened,
        },
        None,
        reason,
    )?;
    warn!("quarantined {} as {}: {reason}", shown(name), shown(&dest));
    ctx.summary.quarantined.push(Quarantined {
        name: name.to_string_lossy().into_owned(),
        quarantined_as: dest.to_string_lossy().into_owned(),
        reason: reason.to_string(),
    });
    Ok(())
}

/// Removes a drop entry if its name still holds the file we opened.
fn remove_from_drop(ctx: &Ctx<'_>, name: &OsStr, opened: &Opened) -> anyhow::Result<()> {
    let path = ctx.layout.drop.join(name);
    if opened.is_at(&path) {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        deploy_root::atomic::fsync_dir(&ctx.layout.drop)?;
    }
    Ok(())
}

fn collected(ctx: &mut Ctx<'_>, file_name: &str) {
    ctx.summary.collected.push(file_name.to_string());
    ctx.collected_at.insert(file_name.to_string(), ctx.now);
}

fn modified(meta: &Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
}

fn is_stale(ctx: &Ctx<'_>, meta: &Metadata) -> bool {
    let age = ctx.now - modified(meta);
    age.to_std()
        .is_ok_and(|age| age > ctx.config.collector.stale_upload_after)
}

/// Reports a drop entry as waiting. `refused` entries and stale ones are
/// logged as warnings, once (when they first show up so); the rest at
/// debug level, so that a pass with only uploads in progress is quiet.
fn wait(ctx: &mut Ctx<'_>, name: &OsStr, reason: &str, refused: bool) {
    let meta = std::fs::symlink_metadata(ctx.layout.drop.join(name)).ok();
    let entry = WaitingUpload {
        name: name.to_string_lossy().into_owned(),
        size: meta.as_ref().map_or(0, Metadata::len),
        modified: meta.as_ref().map(modified).unwrap_or(ctx.now),
        stale: meta.as_ref().is_some_and(|m| is_stale(ctx, m)),
        reason: reason.to_string(),
    };
    let seen_before = ctx
        .previously_waiting
        .iter()
        .any(|w| w.name == entry.name && w.reason == entry.reason && w.stale == entry.stale);
    let line = format!(
        "waiting: {} ({} bytes, modified {}{}): {reason}",
        shown(name),
        entry.size,
        deploy_root::time::human(entry.modified),
        if entry.stale { ", stale" } else { "" }
    );
    if (refused || entry.stale) && !seen_before {
        warn!("{line}");
    } else {
        debug!("{line}");
    }
    ctx.summary.waiting.push(entry);
}
