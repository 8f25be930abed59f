//! One pass: lock, handle every drop entry, tidy, take from the store
//! (with `[store]`), prune, record "Last".
//!
//! One bad file never fails the pass: it is quarantined or reported as
//! waiting, and the pass goes on. An I/O error on one file is logged and
//! recorded, the pass goes on with the others, and the run exits 1.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::fault;
use deploy_root::lock;
use deploy_root::state::{self, CollectorState, StoreIntake, SwitcherState};
use deploy_root::{Config, Layout};
use tracing::{debug, error, info};

use crate::batch::{self, Batch};
use crate::summary::Summary;
use crate::verdict::PreviouslyWaiting;
use crate::{collect, last, prune, quarantine, scan, staging};

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Another run holds the lock; nothing was done.
    Locked,
    /// The pass ran; errors, if any, are in the summary.
    Done(Summary),
}

/// What the handlers of one pass share.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The config.
    pub config: &'a Config,
    /// The deploy root's folders.
    pub layout: &'a Layout,
    /// When the pass began.
    pub now: DateTime<Utc>,
    /// Whether drop/ and staging/ are on one filesystem (then the digest is
    /// checked before rename; otherwise while copying).
    pub same_fs: bool,
    /// The drop folder, open, to look its entries up by name alone
    /// (`None` if it could not be opened: then by whole path, and the
    /// listing reports the error).
    pub drop_dir: Option<std::fs::File>,
    /// The uploads the previous pass reported waiting (to warn only once).
    pub previously_waiting: PreviouslyWaiting,
    /// What this pass did.
    pub summary: Summary,
    /// The artifacts this pass took into staging, and when.
    pub collected_at: BTreeMap<String, DateTime<Utc>>,
    /// The stem (release id) of each artifact in staging -> its name: a
    /// second artifact with one of these stems is refused.
    pub stems: HashMap<String, String>,
    /// The moves this pass began, made durable together at its end.
    pub batch: Batch,
}

impl Ctx<'_> {
    /// Records an error of this pass (the pass goes on).
    pub fn error(&mut self, e: &anyhow::Error) {
        // Paths in the message may carry untrusted names: escape them.
        let message = quarantine::one_line(&format!("{e:#}"));
        error!("{message}");
        self.summary.errors.push(message);
    }
}

/// Runs one pass.
pub fn run(config: &Config, layout: &Layout) -> anyhow::Result<Outcome> {
    layout.ensure()?;
    crate::drop_check::check(config, layout)?;
    let lock_path = layout.collector_lock();
    let Some(_lock) = lock::try_lock(&lock_path)? else {
        // info, not warn: a long copy overlapping the next cron run is
        // normal, and cron would mail a warning every minute.
        info!(
            "another collector run holds {}; leaving this pass to it",
            lock_path.display()
        );
        return Ok(Outcome::Locked);
    };
    fault::point("collector:after-lock");

    let mut previous: CollectorState = state::load(&layout.collector_state())?;
    let mut ctx = Ctx {
        config,
        layout,
        now: Utc::now(),
        same_fs: same_device(&layout.drop, &layout.staging)?,
        drop_dir: std::fs::File::open(&layout.drop).ok(),
        previously_waiting: PreviouslyWaiting::new(std::mem::take(&mut previous.waiting)),
        summary: Summary::default(),
        collected_at: BTreeMap::new(),
        stems: HashMap::new(),
        batch: Batch::default(),
    };

    for dir in [&layout.staging, &layout.quarantine] {
        match staging::remove_temps(dir) {
            Ok(removed) => {
                for path in removed {
                    info!("removed {} left by a run cut short", path.display());
                }
            }
            Err(e) => ctx.error(&e),
        }
    }

    match quarantine::tidy(&layout.quarantine) {
        Ok(removed) => {
            for path in removed {
                info!(
                    "removed {}, a reason without its file (a run cut short)",
                    path.display()
                );
            }
        }
        Err(e) => ctx.error(&e),
    }
    match staging::stems(&layout.staging) {
        Ok(stems) => ctx.stems = stems,
        Err(e) => ctx.error(&e),
    }

    match scan::scan(&layout.drop) {
        Ok(items) => {
            for item in items {
                if let Err(e) = collect::handle(&mut ctx, item) {
                    ctx.error(&e);
                }
            }
        }
        Err(e) => ctx.error(
            &anyhow::Error::from(e)
                .context(format!("listing the drop folder {}", layout.drop.display())),
        ),
    }
    // Every move begun above, durable at once (one flush, one fsync per
    // folder), before anything leaves the drop folder for good.
    batch::commit(&mut ctx);

    match staging::tidy(&layout.staging, &layout.drop) {
        Ok(removed) => {
            for name in removed {
                info!(
                    "removed staging/{name}, left half pruned (or half taken from the store) by a run cut short"
                );
                // Its release id is free again (for the store's intake,
                // which comes next and may take it again).
                if let Ok(parsed) = artifact_name::ArtifactName::parse(&name) {
                    if ctx.stems.get(parsed.stem()) == Some(&name) {
                        ctx.stems.remove(parsed.stem());
                    }
                }
            }
        }
        Err(e) => ctx.error(&e),
    }

    // The store's artifacts come after the drop folder's are durable and
    // after staging is tidy (an artifact a cut-short pull left without its
    // marker is gone, so it can be pulled again): a store that hangs or
    // fails never holds up or spoils the local intake.
    let store = store_intake(&mut ctx, previous.store.as_ref());

    prune(&mut ctx);

    let last = match staging::list(&layout.staging) {
        Ok(staged) => last::compute(config, &staged, &previous.last, &ctx.collected_at),
        Err(e) => {
            ctx.error(
                &anyhow::Error::from(e).context(format!("listing {}", layout.staging.display())),
            );
            previous.last.clone()
        }
    };

    let state = CollectorState {
        schema: state::SCHEMA,
        last_run: Some(Utc::now()),
        last_error: (!ctx.summary.errors.is_empty()).then(|| ctx.summary.errors.join("; ")),
        last,
        waiting: ctx.summary.waiting.clone(),
        store,
    };
    fault::point("collector:before-state-write");
    state::save(&layout.collector_state(), &state)?;
    fault::point("collector:after-state-write");
    debug!("pass done: {:?}", ctx.summary);
    Ok(Outcome::Done(ctx.summary))
}

/// The intake from the store, with `[store]` (see `store_intake`).
#[cfg(feature = "s3")]
fn store_intake(ctx: &mut Ctx<'_>, previous: Option<&StoreIntake>) -> Option<StoreIntake> {
    crate::store_intake::run(ctx, previous)
}

/// Without the `s3` feature, `[store]` cannot be used: say so on the page
/// and in the exit code rather than ignore a config that asks for it.
#[cfg(not(feature = "s3"))]
fn store_intake(ctx: &mut Ctx<'_>, previous: Option<&StoreIntake>) -> Option<StoreIntake> {
    let url = ctx.config.store.as_ref()?.url.clone();
    let error = "this collector is built without the store (its s3 feature): [store] is \
                 ignored; install the build with it (the .deb), or remove [store]"
        .to_string();
    tracing::warn!("store {url}: {error}");
    ctx.summary.store = Some(Box::new(crate::summary::StoreSummary {
        url: url.clone(),
        error: Some(error.clone()),
        ..Default::default()
    }));
    let since = previous
        .filter(|p| p.url == url)
        .and_then(|p| p.error_since)
        .unwrap_or(ctx.now);
    Some(StoreIntake {
        url,
        last_error: Some(error),
        error_since: Some(since),
        ..StoreIntake::default()
    })
}

/// Prunes staging and quarantine, recording what went and any error.
fn prune(ctx: &mut Ctx<'_>) {
    let layout = ctx.layout;
    let staged = staging::list(&layout.staging)
        .with_context(|| format!("listing {}", layout.staging.display()));
    let switcher = state::load::<SwitcherState>(&layout.switcher_state())
        .context("staging is not pruned while the switcher's state cannot be read");
    let pruned = staged.and_then(|staged| {
        let switcher = switcher?;
        prune::staging(ctx.config, &layout.staging, &staged, &switcher)
    });
    match pruned {
        Ok(names) => ctx.summary.pruned.extend(names),
        Err(e) => ctx.error(&e),
    }
    match prune::quarantine(&layout.quarantine, ctx.config.collector.quarantine_keep) {
        Ok(names) => ctx.summary.pruned.extend(names),
        Err(e) => ctx.error(&e),
    }
    for name in &ctx.summary.pruned {
        info!("pruned {name}");
    }
}

/// Whether two folders are on the same filesystem.
fn same_device(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let dev = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.dev())
            .with_context(|| format!("inspecting {}", p.display()))
    };
    Ok(dev(a)? == dev(b)?)
}
