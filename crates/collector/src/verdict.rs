//! The two fates of a drop entry that is not taken into staging: quarantine
//! (with a reason) or waiting (left in place, with a reason), each recorded
//! in the pass summary and logged once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::state::WaitingUpload;
use tracing::{debug, warn};

use crate::open::{self, Opened, Seen};
use crate::pass::Ctx;
use crate::quarantine::{self, Pending, Rejected};
use crate::summary::Quarantined;

/// A name as logs and reasons show it: quoted, control characters escaped.
pub fn shown(name: &OsStr) -> String {
    format!("{:?}", name.to_string_lossy())
}

/// Quarantines an upload from the drop folder (and its marker) with a
/// reason: the reason is written now, the files move when the pass
/// commits ([`crate::batch`]).
pub fn reject(
    ctx: &mut Ctx<'_>,
    name: &OsStr,
    opened: &Opened,
    marker: Option<Rejected<'_>>,
    reason: &str,
) -> anyhow::Result<()> {
    let dest = quarantine::prepare(&ctx.layout.quarantine, ctx.now, name, reason)
        .with_context(|| format!("quarantining {} ({reason})", shown(name)))?;
    let pending = |name: &OsStr, opened: &Opened| Pending {
        name: name.to_os_string(),
        ident: opened.ident(),
    };
    let marker = marker.map(|m| pending(m.name, m.opened));
    ctx.batch
        .reject(pending(name, opened), marker, dest, reason);
    Ok(())
}

/// Quarantines a file that reached staging unverified: the drop folder's
/// file was swapped between its check and the rename. It has no marker in
/// staging, so the switcher never considered it. Done at once, durably.
pub fn reject_unverified_in_staging(ctx: &mut Ctx<'_>, name: &OsStr) -> anyhow::Result<()> {
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
        reason,
    )?;
    quarantined(ctx, name, &dest, reason);
    Ok(())
}

/// Records (and warns about) an upload now in quarantine as `dest`.
pub fn quarantined(ctx: &mut Ctx<'_>, name: &OsStr, dest: &OsStr, reason: &str) {
    // A quarantine is news: warn, so that cron mails it.
    warn!("quarantined {} as {}: {reason}", shown(name), shown(dest));
    ctx.summary.quarantined.push(Quarantined {
        name: name.to_string_lossy().into_owned(),
        quarantined_as: dest.to_string_lossy().into_owned(),
        reason: reason.to_string(),
    });
}

/// The uploads the previous pass reported waiting, by name, to warn about
/// each only once.
///
/// Looked up once per waiting upload, so it must not be a list: a linear
/// scan per upload made a crowded drop folder's pass quadratic.
#[derive(Debug, Default)]
pub struct PreviouslyWaiting {
    /// Name -> the (reason, stale) it was reported with (a hand-edited
    /// state file may repeat a name).
    by_name: HashMap<String, Vec<(String, bool)>>,
}

impl PreviouslyWaiting {
    /// Indexes the previous pass's waiting list.
    pub fn new(waiting: Vec<WaitingUpload>) -> Self {
        let mut by_name: HashMap<String, Vec<(String, bool)>> =
            HashMap::with_capacity(waiting.len());
        for w in waiting {
            by_name.entry(w.name).or_default().push((w.reason, w.stale));
        }
        PreviouslyWaiting { by_name }
    }

    /// Whether the previous pass reported `entry` with the same name,
    /// reason and staleness.
    pub fn contains(&self, entry: &WaitingUpload) -> bool {
        self.by_name.get(&entry.name).is_some_and(|seen| {
            seen.iter()
                .any(|(reason, stale)| *reason == entry.reason && *stale == entry.stale)
        })
    }
}

/// Reports a drop entry as waiting. Refused entries and stale ones are
/// logged as warnings once (when they first show up so), the rest at debug
/// level, so that a pass that only sees uploads in progress is quiet.
pub fn wait(ctx: &mut Ctx<'_>, name: &OsStr, reason: &str, refused: bool) {
    let meta = std::fs::symlink_metadata(ctx.layout.drop.join(name)).ok();
    report_waiting(ctx, name, reason, refused, meta.as_ref().map(Seen::from));
}

/// [`wait`] for an entry whose `lstat` (or `fstat`) the caller already
/// has: one system call fewer per waiting upload and per pass.
pub fn wait_seen(ctx: &mut Ctx<'_>, name: &OsStr, reason: &str, refused: bool, seen: Seen) {
    report_waiting(ctx, name, reason, refused, Some(seen));
}

fn report_waiting(
    ctx: &mut Ctx<'_>,
    name: &OsStr,
    reason: &str,
    refused: bool,
    seen: Option<Seen>,
) {
    let entry = WaitingUpload {
        name: name.to_string_lossy().into_owned(),
        size: seen.map_or(0, |s| s.len),
        modified: seen.map_or(ctx.now, |s| s.modified),
        stale: seen.is_some_and(|s| is_stale_since(ctx, s.modified)),
        reason: reason.to_string(),
    };
    let seen_before = ctx.previously_waiting.contains(&entry);
    // Formatted inside the macros, so only when that level is logged: a
    // quiet pass over a crowded drop folder would otherwise format (and
    // drop) a line with a date for every waiting upload.
    let line = |entry: &WaitingUpload| {
        format!(
            "waiting: {} ({} bytes, modified {}{}): {reason}",
            shown(name),
            entry.size,
            deploy_root::time::human(entry.modified),
            if entry.stale { ", stale" } else { "" }
        )
    };
    if (refused || entry.stale) && !seen_before {
        warn!("{}", line(&entry));
    } else {
        debug!("{}", line(&entry));
    }
    ctx.summary.waiting.push(entry);
}

/// Whether a file has not changed for longer than `stale_upload_after`.
pub fn is_stale(ctx: &Ctx<'_>, meta: &Metadata) -> bool {
    is_stale_since(ctx, Seen::from(meta).modified)
}

/// Whether `modified` is longer than `stale_upload_after` ago.
pub fn is_stale_since(ctx: &Ctx<'_>, modified: DateTime<Utc>) -> bool {
    let age = ctx.now - modified;
    age.to_std()
        .is_ok_and(|age| age > ctx.config.collector.stale_upload_after)
}
