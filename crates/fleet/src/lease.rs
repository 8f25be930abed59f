//! The rolling switch's slot leases: `fleet/<group>/leases/<slot>.json`.
//!
//! A VM switches only while it holds one of the group's `max_parallel`
//! slots. The protocol uses nothing but the store's conditional writes and
//! the store's clock (docs/fleet.md, "Leases"):
//!
//! - take a slot: create its object with `If-None-Match: *` (when one LIST
//!   of the leases did not show it); if it exists, read it, and take it over with `If-Match: <the etag read>` only when it
//!   is free: released (`holder` null), held by this same VM (a switcher
//!   killed mid-switch: this process holds the VM's lock, so that one is
//!   dead), or expired: its Last-Modified plus its `ttl_seconds` is before
//!   the store's `Date` of the answer that carried it. Two VMs that race
//!   for one slot both read the same etag; the store lets one If-Match win.
//! - renew: rewrite it with `If-Match` every third of the TTL
//!   ([`Keeper`], a thread), which moves its Last-Modified on;
//! - release: rewrite it as released with `If-Match`, so that a VM that
//!   took it over after an expiry is never undone.
//!
//! No host's clock is compared with another's: expiry is judged by the
//! store's Last-Modified against the store's Date.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::store::{Condition, Store, StoreError};

/// The body of a lease object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// The VM that holds it; None: released.
    #[serde(default)]
    pub holder: Option<String>,
    /// What the holder switches to.
    #[serde(default)]
    pub artifact: Option<String>,
    /// How long after its Last-Modified the lease expires, in seconds.
    pub ttl_seconds: u64,
    /// When the holder wrote it, by the holder's clock: for people only,
    /// never compared (expiry uses the store's clock).
    #[serde(default)]
    pub written_at: Option<String>,
}

/// A held slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The slot number.
    pub slot: u32,
    /// Its object key.
    pub key: String,
    /// The version this VM wrote last: every later write is If-Match on it.
    pub etag: String,
    /// What was written.
    pub body: LeaseBody,
}

/// Who holds a slot that could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    /// The slot number.
    pub slot: u32,
    /// The holder, as its object says.
    pub holder: String,
    /// What it switches to.
    pub artifact: Option<String>,
    /// When it was last written (taken or renewed), by the store's clock.
    pub since: DateTime<Utc>,
}

/// The outcome of [`acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// A slot is this VM's until released.
    Got(Lease),
    /// Every slot is held by another VM.
    Busy(Vec<Busy>),
}

fn body_bytes(body: &LeaseBody) -> Vec<u8> {
    // A struct of strings and a number always serializes.
    serde_json::to_vec_pretty(body).unwrap_or_default()
}

/// Tries to take one of `slots` slots of `group` for `vm`, switching to
/// `artifact`, for `ttl`.
pub fn acquire(
    store: &Store,
    group: &str,
    vm: &str,
    artifact: &str,
    slots: u32,
    ttl: Duration,
) -> Result<Acquired, StoreError> {
    let body = LeaseBody {
        holder: Some(vm.to_string()),
        artifact: Some(artifact.to_string()),
        ttl_seconds: ttl.as_secs().max(1),
        written_at: Some(deploy_root::time::rfc3339(Utc::now())),
    };
    let bytes = body_bytes(&body);
    let mut busy = Vec::new();
    // Each VM starts its scan at a slot of its own (from its id), so that
    // VMs arriving together do not all contend for slot 0 first.
    let slots = slots.max(1);
    let start = vm
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % slots;
    // One LIST says which slot objects exist: a slot that does not is
    // taken by a create, one that does is read first (a create of it
    // would only be refused), so a held slot costs one request.
    let existing: std::collections::BTreeSet<String> = store
        .list(&layout::leases_dir(group))?
        .into_iter()
        .map(|o| o.key)
        .collect();
    for slot in (0..slots).map(|k| (start + k) % slots) {
        let key = layout::lease(group, slot);
        if !existing.contains(&key) {
            match store.put_bytes(&key, &bytes, &Condition::Create) {
                Ok(w) => {
                    tracing::info!("took fleet slot {slot} of group {group} ({key})");
                    return Ok(Acquired::Got(Lease {
                        slot,
                        key,
                        etag: w.etag,
                        body,
                    }));
                }
                // Created by another VM since the LIST: read it.
                Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let Some((current, meta)) = store.get(&key)? else {
            // Released by deletion between the two requests (a hand
            // clean-up): the next pass creates it.
            continue;
        };
        let now = store.last_date().unwrap_or(meta.last_modified);
        let cur: LeaseBody = serde_json::from_slice(&current).unwrap_or_else(|e| {
            tracing::warn!("{key} is not a lease ({e}); it is taken over once expired");
            LeaseBody {
                holder: Some("(unreadable)".into()),
                ttl_seconds: ttl.as_secs(),
                ..LeaseBody::default()
            }
        });
        let expires = meta.last_modified
            + chrono::Duration::seconds(i64::try_from(cur.ttl_seconds).unwrap_or(i64::MAX / 2));
        let free = match cur.holder.as_deref() {
            None => true,
            Some(h) if h == vm => true,
            Some(_) => expires < now,
        };
        if !free {
            busy.push(Busy {
                slot,
                holder: cur.holder.clone().unwrap_or_default(),
                artifact: cur.artifact.clone(),
                since: meta.last_modified,
            });
            continue;
        }
        match store.put_bytes(&key, &bytes, &Condition::Match(meta.etag.clone())) {
            Ok(w) => {
                match cur.holder.as_deref() {
                    Some(h) if h != vm => tracing::warn!(
                        "took over fleet slot {slot} of group {group}: {h}'s lease expired (last renewed {} UTC by the store's clock)",
                        meta.last_modified.format("%Y-%m-%d %H:%M:%S")
                    ),
                    _ => tracing::info!("took fleet slot {slot} of group {group} ({key})"),
                }
                return Ok(Acquired::Got(Lease {
                    slot,
                    key,
                    etag: w.etag,
                    body,
                }));
            }
            // Another VM took it between our read and our write.
            Err(StoreError::Precondition { .. }) => busy.push(Busy {
                slot,
                holder: "(taken just now)".into(),
                artifact: None,
                since: now,
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(Acquired::Busy(busy))
}

/// Renews `lease` (If-Match on the version this VM wrote).
pub fn renew(store: &Store, lease: &mut Lease) -> Result<(), StoreError> {
    let mut body = lease.body.clone();
    body.written_at = Some(deploy_root::time::rfc3339(Utc::now()));
    let w = store.put_bytes(
        &lease.key,
        &body_bytes(&body),
        &Condition::Match(lease.etag.clone()),
    )?;
    lease.etag = w.etag;
    lease.body = body;
    Ok(())
}

/// Releases `lease`: rewritten as free, If-Match on the version this VM
/// wrote. A lease another VM took over after it expired is left alone.
pub fn release(store: &Store, lease: &Lease) -> Result<(), StoreError> {
    let body = LeaseBody {
        holder: None,
        artifact: None,
        ttl_seconds: lease.body.ttl_seconds,
        written_at: Some(deploy_root::time::rfc3339(Utc::now())),
    };
    match store.put_bytes(
        &lease.key,
        &body_bytes(&body),
        &Condition::Match(lease.etag.clone()),
    ) {
        Ok(_) => {
            tracing::info!("released fleet slot {} ({})", lease.slot, lease.key);
            Ok(())
        }
        Err(StoreError::Precondition { key }) => {
            tracing::warn!(
                "fleet slot {} was taken over by another VM before this one released it ({key}): its lease had expired",
                lease.slot
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Keeps a lease renewed from a thread while the switch runs.
#[derive(Debug)]
pub struct Keeper {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Lease>,
    slot: u32,
}

impl Keeper {
    /// Starts renewing `lease` every third of its TTL.
    pub fn start(store: Arc<Store>, lease: Lease) -> Keeper {
        let slot = lease.slot;
        let (stop, stopped) = mpsc::channel::<()>();
        let every = Duration::from_secs(lease.body.ttl_seconds.max(3)) / 3;
        let thread = std::thread::spawn(move || {
            let mut lease = lease;
            loop {
                match stopped.recv_timeout(every) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return lease,
                }
                match renew(&store, &mut lease) {
                    Ok(()) => tracing::debug!("renewed fleet slot {}", lease.slot),
                    Err(StoreError::Precondition { .. }) => {
                        // Nothing safe can be done mid-switch: it goes on,
                        // and another VM may switch at the same time.
                        tracing::error!(
                            "lost fleet slot {} ({}): another VM took it over; this switch goes on without it",
                            lease.slot,
                            lease.key
                        );
                        return lease;
                    }
                    Err(e) => tracing::warn!("renewing fleet slot {}: {e}", lease.slot),
                }
            }
        });
        Keeper { stop, thread, slot }
    }

    /// The slot held.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Stops renewing; the lease as last written.
    pub fn stop(self) -> Option<Lease> {
        let _ = self.stop.send(());
        self.thread.join().ok()
    }
}
