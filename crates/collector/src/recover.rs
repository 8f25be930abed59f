//! Markers without their artifact in the drop folder.
//!
//! Most often that is the second half of a move a killed run began: the
//! artifact reached staging, its marker did not. If the staged artifact
//! matches the marker, the move is finished (the staged marker written, the
//! drop marker removed); a second marker for an artifact already staged is
//! removed. Anything else is left alone and reported as waiting.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use artifact_name::ArtifactName;
use tracing::info;

use crate::collect::{collected, open_entry, remove_from_drop};
use crate::open;
use crate::pass::Ctx;
use crate::staging;
use crate::verdict::{shown, wait};

/// Handles the marker `name` for `artifact`, which is not in the drop folder.
pub fn orphan_marker(ctx: &mut Ctx<'_>, name: &OsStr, artifact: &OsStr) -> anyhow::Result<()> {
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
            remove_from_drop(ctx, name, &opened);
            if finished {
                info!("collected {file_name} (finished a move a run cut short)");
                collected(ctx, &file_name);
            } else {
                info!(
                    "removed {}: a second marker for the staged {file_name}",
                    shown(name)
                );
                ctx.summary
                    .duplicates_removed
                    .push(name.to_string_lossy().into_owned());
            }
        }
        Ok(digest) => wait(
            ctx,
            name,
            &format!(
                "a marker (digest {digest}) for {file_name}, which is staged with another \
                 digest ({staged})"
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
