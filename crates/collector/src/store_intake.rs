//! The intake from the S3-compatible store (`[store]`, docs/fleet.md):
//! the store's complete artifacts taken into staging with every guarantee
//! the drop folder's have.
//!
//! Once per pass, after the drop folder's moves are committed, under the
//! same lock:
//!
//! 1. One LIST of `drop/` (`fleet::layout`). An artifact is complete when
//!    its marker `drop/<name>.sha256` is listed: deliver writes the marker
//!    only after the artifact. A key whose name breaks the naming contract
//!    is skipped and warned about once, when it first shows up: the store
//!    is shared, not the collector's to tidy, and the collector never
//!    writes to it.
//! 2. [`crate::store_select`] picks what the switcher could deploy next,
//!    among the kinds this VM's config knows; older builds are not taken.
//! 3. Each pick: GET its marker (parsed as the drop folder's are), check
//!    the free space, stream GET the artifact into a temporary file in
//!    staging/ (the mover's dot name) hashing it on the way, fsync it. A
//!    match is renamed to its name, and its marker goes through the pass's
//!    group commit ([`crate::batch`]) like a local upload's. A mismatch, or
//!    a marker that is not valid, goes to quarantine/ (what was downloaded,
//!    under the object's name) with a reason naming the object, what was
//!    expected and what was found; since a quarantined name is never taken
//!    again, the next pass does not download it again.
//!
//! The drop folder's invariants hold:
//!
//! - Nothing unverified is staged: the download keeps its dot name (never
//!   staged) until its digest matched; its staged marker is written after,
//!   made durable before it gets its name.
//! - A crash at any point loses nothing: the store keeps its copy. A
//!   download cut short is removed by the next pass
//!   (`staging::remove_temps`); an artifact renamed into staging whose
//!   marker never came has no drop marker, so `staging::tidy` removes it
//!   and the intake takes it again.
//! - A store that cannot be reached, or answers slowly, damages nothing:
//!   the drop folder's work is durable before the first request, a partial
//!   download is removed, and what runs is never touched. Each request has
//!   the time limit `[store] timeout` (per read, not per download: a slow
//!   but moving transfer goes on, holding this run's lock; the next runs
//!   find it held and exit 0). The error is one warning when it begins (and
//!   one when the store answers again, not one every minute: cron mails
//!   each), `store` in state/collector.json while it lasts (the status
//!   page's `store-unreachable` problem), and exit code 0. A store error
//!   that is not the store's passing trouble (access denied, no such
//!   bucket, credentials) is this VM's to fix: warned every pass, exit 1.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use artifact_name::ArtifactName;
use deploy_root::fault;
use deploy_root::fleet_config::StoreConfig;
use deploy_root::state::{self, StoreIntake, SwitcherState};
use fleet::store::Op;
use fleet::{layout, ObjectMeta, Store, StoreError};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::mover;
use crate::open::{self, MARKER_CAP};
use crate::pass::Ctx;
use crate::quarantine;
use crate::scan::is_ignored;
use crate::store_select::{self, Judge};
use crate::summary::{Quarantined, StoreSummary};
use crate::verdict::shown;

/// Room a download must leave free on staging's filesystem: a download
/// that would fill the disk is not started (the running release may need
/// that disk too).
const HEADROOM: u64 = 16 << 20;

/// Runs the store's intake, if `[store]` is set, and commits what it
/// staged; returns what state/collector.json records of it. `previous` is
/// what the last pass recorded.
pub fn run(ctx: &mut Ctx<'_>, previous: Option<&StoreIntake>) -> Option<StoreIntake> {
    let config = ctx.config.store.as_ref()?;
    let url = label(config);
    // A record of another store says nothing about this one.
    let previous = previous.filter(|p| p.url == url);
    let mut intake = Intake {
        summary: StoreSummary {
            url: url.clone(),
            ..StoreSummary::default()
        },
        error: None,
        ignored: previous.map(|p| p.ignored.clone()).unwrap_or_default(),
    };
    let picks = match Store::open(config) {
        Ok(store) => intake.take(ctx, &store),
        Err(e) => {
            intake.error = Some(e);
            Vec::new()
        }
    };
    // What was staged before an error is committed all the same.
    crate::batch::commit(ctx);
    intake.summary.pulled = picks
        .into_iter()
        .filter(|name| ctx.collected_at.contains_key(name))
        .collect();

    let was_failing = previous.and_then(|p| p.error_since);
    let error = intake.error.map(|e| (e.is_transient(), e.to_string()));
    match (&error, was_failing) {
        (Some((true, e)), None) => warn!("store {url} unreachable: {e}"),
        (Some((true, e)), Some(since)) => info!(
            "store {url} still unreachable (since {}): {e}",
            deploy_root::time::human(since)
        ),
        (Some((false, e)), _) => warn!("store {url}: {e}"),
        (None, Some(since)) => warn!(
            "store {url} answers again (it could not be used since {})",
            deploy_root::time::human(since)
        ),
        (None, None) => debug!("store {url}: intake done"),
    }
    let now = ctx.now;
    let record = StoreIntake {
        url,
        last_ok: match error {
            None => Some(now),
            Some(_) => previous.and_then(|p| p.last_ok),
        },
        last_error: error.as_ref().map(|(_, e)| e.clone()),
        error_since: error.as_ref().map(|_| was_failing.unwrap_or(now)),
        ignored: intake.ignored,
    };
    intake.summary.transient = error.as_ref().is_some_and(|(t, _)| *t);
    intake.summary.error = error.map(|(_, e)| e);
    ctx.summary.store = Some(Box::new(intake.summary));
    Some(record)
}

/// `s3://bucket/prefix`, as the store names itself in messages (known
/// even when the store cannot be opened).
fn label(config: &StoreConfig) -> String {
    match config.bucket_and_prefix() {
        Ok((bucket, prefix)) if prefix.is_empty() => format!("s3://{bucket}"),
        Ok((bucket, prefix)) => format!("s3://{bucket}/{prefix}"),
        Err(_) => config.url.clone(),
    }
}

/// One pass's intake in progress.
struct Intake {
    summary: StoreSummary,
    /// The first store error (the pass goes on after one that concerns a
    /// single object, stops at one that concerns the store).
    error: Option<StoreError>,
    /// The names under `drop/` that break the naming contract.
    ignored: Vec<String>,
}

/// Why a pick was not staged.
enum Trouble {
    /// The store's answer (or its silence).
    Store(StoreError),
    /// This machine: staging cannot be written, or the disk is full.
    Local(anyhow::Error),
}

/// What became of one pick.
enum Pulled {
    /// Downloaded, verified, renamed into staging; the marker waits for
    /// the commit.
    Staged,
    /// Quarantined.
    Quarantined(Quarantined),
    /// No longer in the store (removed since the listing).
    Gone,
}

impl Intake {
    /// Lists, selects and pulls; returns the names it staged (their
    /// markers wait for the commit).
    fn take(&mut self, ctx: &mut Ctx<'_>, store: &Store) -> Vec<String> {
        let objects = match store.list(layout::DROP) {
            Ok(objects) => objects,
            Err(e) => {
                self.error = Some(e);
                return Vec::new();
            }
        };
        let listing = Listing::of(&objects);
        self.note_ignored(store, listing.ignored);
        let picks = match pick(ctx, &listing.complete) {
            Ok(picks) => picks,
            Err(e) => {
                ctx.error(&e);
                return Vec::new();
            }
        };
        let mut staged = Vec::new();
        for name in picks {
            let size = listing.complete.get(&name).copied().unwrap_or(0);
            match pull(ctx, store, &name, size) {
                Ok(Pulled::Staged) => staged.push(name.file_name().to_string()),
                Ok(Pulled::Quarantined(q)) => self.summary.quarantined.push(q),
                Ok(Pulled::Gone) => {
                    debug!("{} left the store since it was listed", name.file_name())
                }
                // The store is down or failing: the other picks would
                // fail alike, each after its time limit.
                Err(Trouble::Store(e)) if e.is_transient() => {
                    self.error = Some(e);
                    break;
                }
                // One object refused (access denied to it, say): the
                // others may still come.
                Err(Trouble::Store(e)) => {
                    self.error.get_or_insert(e);
                }
                // Most likely a full disk: the next download would fail too.
                Err(Trouble::Local(e)) => {
                    ctx.error(&e);
                    break;
                }
            }
        }
        staged
    }

    /// Records the names that break the contract, warning about those the
    /// last pass did not see.
    fn note_ignored(&mut self, store: &Store, ignored: BTreeMap<String, String>) {
        let seen: BTreeSet<&String> = self.ignored.iter().collect();
        for (name, why) in &ignored {
            // Keys are anyone's text: escaped, as drop folder names are.
            let line = quarantine::one_line(&format!(
                "ignoring {}/{}{name}: {why} (not the collector's to delete)",
                store.label(),
                layout::DROP,
            ));
            if seen.contains(name) {
                debug!("{line}");
            } else {
                warn!("{line}");
            }
        }
        self.ignored = ignored.into_keys().collect();
    }
}

/// The store's `drop/` as one LIST shows it.
#[derive(Debug, Default)]
struct Listing {
    /// The complete artifacts (marker listed) with a valid name, and their
    /// sizes as listed.
    complete: BTreeMap<ArtifactName, u64>,
    /// Names under `drop/` that break the naming contract -> why (an
    /// artifact and its marker count once).
    ignored: BTreeMap<String, String>,
}

impl Listing {
    fn of(objects: &[ObjectMeta]) -> Listing {
        let mut artifacts: BTreeMap<&str, (ArtifactName, u64)> = BTreeMap::new();
        let mut markers: BTreeSet<&str> = BTreeSet::new();
        let mut ignored = BTreeMap::new();
        let mut bad_markers = BTreeMap::new();
        for o in objects {
            let Some(rest) = o.key.strip_prefix(layout::DROP) else {
                continue;
            };
            // As in the drop folder: temporary names of uploads in progress.
            if is_ignored(rest.as_bytes()) {
                continue;
            }
            if let Some(name) = layout::artifact_of(&o.key) {
                match ArtifactName::parse(name) {
                    Ok(parsed) => {
                        artifacts.insert(name, (parsed, o.size));
                    }
                    Err(e) => {
                        ignored.insert(name.to_string(), e.to_string());
                    }
                }
            } else if let Some(name) = layout::marker_of(&o.key) {
                match ArtifactName::parse(name) {
                    Ok(_) => {
                        markers.insert(name);
                    }
                    Err(e) => {
                        bad_markers.insert(name, e.to_string());
                    }
                }
            } else {
                ignored.insert(
                    rest.to_string(),
                    "a folder in drop/, where only artifacts and their markers belong".into(),
                );
            }
        }
        // A bad artifact's marker is the same bad name: one line, not two.
        for (name, why) in bad_markers {
            if !ignored.contains_key(name) {
                ignored.insert(format!("{name}{}", layout::MARKER_SUFFIX), why);
            }
        }
        let complete = artifacts
            .into_iter()
            .filter(|(name, _)| markers.contains(name))
            .map(|(_, named)| named)
            .collect();
        Listing { complete, ignored }
    }
}

/// The complete artifacts to take (see [`crate::store_select`]).
fn pick(
    ctx: &Ctx<'_>,
    complete: &BTreeMap<ArtifactName, u64>,
) -> anyhow::Result<Vec<ArtifactName>> {
    let layout = ctx.layout;
    let staged: Vec<ArtifactName> = deploy_root::staging::list(&layout.staging)
        .with_context(|| format!("listing {}", layout.staging.display()))?
        .into_iter()
        .map(|s| s.name)
        .collect();
    // Unreadable, the switcher's state is taken as "nothing runs": the
    // newest build is then taken, which is what it would be anyway unless
    // something newer runs (the prune reports the state itself).
    let switcher: SwitcherState = state::load(&layout.switcher_state()).unwrap_or_else(|e| {
        debug!("choosing from the store as if nothing ran: {e:#}");
        SwitcherState::default()
    });
    let control = deploy_root::control::load(layout).unwrap_or_else(|e| {
        debug!("choosing from the store by switcher.branches: {e:#}");
        deploy_root::control::ControlState::default()
    });
    let judge = Judge {
        config: ctx.config,
        branches: control.branches(&ctx.config.switcher.branches, ctx.now),
        switcher: &switcher,
    };
    let offered: Vec<ArtifactName> = complete.keys().cloned().collect();
    let refused = |name: &ArtifactName| refused(ctx, name);
    Ok(store_select::select(&judge, &staged, &offered, &refused))
}

/// Why `name` must not be taken from the store, if it must not.
fn refused(ctx: &Ctx<'_>, name: &ArtifactName) -> Option<String> {
    let layout = ctx.layout;
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    for q in [name.file_name().to_string(), name.marker_name()] {
        let reason = layout
            .quarantine
            .join(format!("{q}{}", quarantine::REASON_SUFFIX));
        if exists(&reason) {
            return Some(format!(
                "{} is quarantined (remove it and its reason to take it again)",
                reason.display()
            ));
        }
    }
    let stem = name.stem();
    if let Some(other) = ctx.stems.get(stem) {
        return Some(format!(
            "its release id {stem} is taken by {other} in staging (the first one staged is kept)"
        ));
    }
    ctx.config.components.keys().find_map(|c| {
        let dir = layout.release(c, stem);
        exists(&dir).then(|| format!("the release {} exists already", dir.display()))
    })
}

/// `s3://bucket/prefix/<key>`, for messages and reasons.
fn object_url(store: &Store, key: &str) -> String {
    format!("{}/{key}", store.label())
}

/// Downloads, verifies and stages one artifact (or quarantines it).
fn pull(
    ctx: &mut Ctx<'_>,
    store: &Store,
    name: &ArtifactName,
    size: u64,
) -> Result<Pulled, Trouble> {
    let file_name = name.file_name();
    let key = layout::artifact(file_name);
    let marker_key = layout::marker(file_name);
    let Some((bytes, _)) = store.get(&marker_key).map_err(Trouble::Store)? else {
        return Ok(Pulled::Gone);
    };
    let expect = match marker_digest(&bytes, file_name) {
        Ok(digest) => digest,
        Err(why) => {
            let reason = format!(
                "from {}: the marker is not valid: {why}",
                object_url(store, &marker_key)
            );
            return quarantine_bytes(ctx, &bytes, &name.marker_name(), &reason);
        }
    };
    check_space(&ctx.layout.staging, size, &object_url(store, &key)).map_err(Trouble::Local)?;
    let temp = mover::temp_in(&ctx.layout.staging);
    let found = match download(store, &key, &temp) {
        Ok(found) => found,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return match e {
                StoreError::NotFound { .. } => Ok(Pulled::Gone),
                StoreError::Local { .. } => {
                    Err(Trouble::Local(anyhow::Error::from(e).context(format!(
                        "downloading {} into {}",
                        object_url(store, &key),
                        temp.display()
                    ))))
                }
                e => Err(Trouble::Store(e)),
            };
        }
    };
    if found != expect {
        let reason = format!(
            "from {}: digest mismatch: its marker {marker_key} expected {expect}, found {found}",
            object_url(store, &key)
        );
        return quarantine_temp(ctx, &temp, file_name, &reason);
    }
    fault::point("collector:store-before-rename");
    let dest = ctx.layout.staging.join(file_name);
    if let Err(e) = mover::rename_noreplace(&temp, &dest) {
        let _ = std::fs::remove_file(&temp);
        return Err(Trouble::Local(anyhow::Error::from(e).context(format!(
            "renaming {} to {}",
            temp.display(),
            dest.display()
        ))));
    }
    fault::point("collector:store-after-rename");
    ctx.stems
        .insert(name.stem().to_string(), file_name.to_string());
    ctx.batch
        .pulled(
            &ctx.layout.staging,
            OsStr::new(file_name),
            file_name,
            &expect,
        )
        .map_err(Trouble::Local)?;
    info!(
        "took {file_name} ({size} bytes) from {}, digest verified",
        object_url(store, &key)
    );
    Ok(Pulled::Staged)
}

/// The digest a marker's bytes state for `file_name`, or why they are not
/// a marker (the drop folder's rules: one sha256sum line, or the digest
/// alone, `\n` or `\r\n`).
fn marker_digest(bytes: &[u8], file_name: &str) -> Result<String, String> {
    if bytes.len() as u64 > MARKER_CAP {
        return Err(format!(
            "it is {} bytes; expected one sha256sum line (at most {MARKER_CAP} bytes)",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    artifact_name::parse_marker(text, file_name).map_err(|e| e.to_string())
}

/// Fails when staging's filesystem has no room for `size` bytes and the
/// headroom.
fn check_space(staging: &Path, size: u64, what: &str) -> anyhow::Result<()> {
    let stat = nix::sys::statvfs::statvfs(staging)
        .with_context(|| format!("the free space of {}", staging.display()))?;
    #[allow(clippy::useless_conversion)] // c_ulong and fsblkcnt_t differ by platform
    let free = u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size()));
    if size.saturating_add(HEADROOM) > free {
        anyhow::bail!(
            "not taking {what} ({size} bytes): {free} bytes are free in {}, and a download \
             must leave {HEADROOM} more",
            staging.display()
        );
    }
    Ok(())
}

/// Streams the object `key` into the new file `temp`, fsyncs it, and
/// returns the SHA-256 of what arrived.
fn download(store: &Store, key: &str, temp: &Path) -> Result<String, StoreError> {
    let local = |source: io::Error| StoreError::Local {
        op: Op::Get,
        key: key.to_string(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(temp)
        .map_err(local)?;
    let mut out = Hashing {
        file: &file,
        hasher: Sha256::new(),
        first: true,
    };
    store.get_to(key, &mut out)?;
    let digest = mover::hex(&out.hasher.finalize());
    file.sync_all().map_err(local)?;
    Ok(digest)
}

/// A file that hashes what is written to it: the digest is of the very
/// bytes that reach the disk, in the one pass over them.
struct Hashing<'a> {
    file: &'a File,
    hasher: Sha256,
    first: bool,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        if std::mem::take(&mut self.first) {
            fault::point("collector:store-mid-get");
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Quarantines the download at `temp` as `name`, durably; the temporary
/// file is gone either way.
fn quarantine_temp(
    ctx: &mut Ctx<'_>,
    temp: &Path,
    name: &str,
    reason: &str,
) -> Result<Pulled, Trouble> {
    let moved = match open::open_regular(temp) {
        Ok(Ok(opened)) => quarantine::quarantine_as(
            temp,
            &opened,
            &ctx.layout.quarantine,
            ctx.now,
            OsStr::new(name),
            reason,
        ),
        Ok(Err(refusal)) => Err(anyhow::anyhow!("{} {}", temp.display(), refusal.reason())),
        Err(e) => Err(anyhow::Error::from(e).context(format!("opening {}", temp.display()))),
    };
    let dest = match moved {
        Ok(dest) => dest,
        Err(e) => {
            let _ = std::fs::remove_file(temp);
            return Err(Trouble::Local(e.context(format!(
                "quarantining {} ({reason})",
                shown(OsStr::new(name))
            ))));
        }
    };
    // A quarantine is news: warn, so that cron mails it (once: the name is
    // not taken again).
    warn!(
        "quarantined {} as {}: {reason}",
        shown(OsStr::new(name)),
        shown(&dest)
    );
    Ok(Pulled::Quarantined(Quarantined {
        name: name.to_string(),
        quarantined_as: dest.to_string_lossy().into_owned(),
        reason: reason.to_string(),
    }))
}

/// Quarantines `bytes` (a marker that is not valid) as `name`.
fn quarantine_bytes(
    ctx: &mut Ctx<'_>,
    bytes: &[u8],
    name: &str,
    reason: &str,
) -> Result<Pulled, Trouble> {
    let temp = mover::temp_in(&ctx.layout.staging);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(Trouble::Local(
            anyhow::Error::from(e).context(format!("writing {}", temp.display())),
        ));
    }
    quarantine_temp(ctx, &temp, name, reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;

    use super::*;

    fn object(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size,
            etag: "\"x\"".into(),
            last_modified: Utc::now(),
        }
    }

    #[test]
    fn complete_means_marker_listed_and_bad_names_count_once() {
        let a = "full_20261127T100000Z_1.0_master.tar.gz";
        let b = "full_20261127T110000Z_1.1_master.tar.gz";
        let listing = Listing::of(&[
            object(&format!("drop/{a}"), 10),
            object(&format!("drop/{a}.sha256"), 80),
            // No marker yet: not complete.
            object(&format!("drop/{b}"), 20),
            // A marker without its artifact: nothing to take.
            object("drop/full_20261127T120000Z_1.2_master.tar.gz.sha256", 80),
            object("drop/junk.txt", 1),
            object("drop/junk.txt.sha256", 1),
            object("drop/lone.sha256", 1),
            object("drop/sub/x.tar.gz", 1),
            object("drop/.hidden", 1),
            object("fleet/g/status/vm.json", 1),
        ]);
        let complete: Vec<(&str, u64)> = listing
            .complete
            .iter()
            .map(|(n, s)| (n.file_name(), *s))
            .collect();
        assert_eq!(complete, [(a, 10)]);
        let ignored: Vec<&str> = listing.ignored.keys().map(String::as_str).collect();
        assert_eq!(ignored, ["junk.txt", "lone.sha256", "sub/x.tar.gz"]);
    }

    #[test]
    fn markers_as_the_drop_folder_takes_them() {
        let name = "full_20261127T100000Z_1.0_master.tar.gz";
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for ok in [
            format!("{hex}  {name}\n"),
            format!("{hex}  {name}\r\n"),
            hex.to_string(),
            hex.to_uppercase(),
        ] {
            assert_eq!(marker_digest(ok.as_bytes(), name).unwrap(), hex, "{ok:?}");
        }
        assert!(marker_digest(format!("{hex}  other.tar.gz\n").as_bytes(), name).is_err());
        assert!(marker_digest(b"\xff\xfe", name)
            .unwrap_err()
            .contains("UTF-8"));
        assert!(marker_digest(&[b'a'; 5000], name)
            .unwrap_err()
            .contains("5000 bytes"));
        assert!(marker_digest(b"", name).is_err());
    }
}
