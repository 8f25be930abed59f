//! A rollout's failures and its halt: `fleet/<group>/failures/<artifact>/<vm>.json`
//! (one per VM that failed the artifact, so that VMs never contend for one
//! object) and `fleet/<group>/halted/<artifact>.json`.
//!
//! The failures are the truth: before it switches, a VM counts them, and
//! once there are `[fleet] max_failures` it does not try the artifact. The
//! halt record is what readers (the page, `switcher fleet`, `deliver
//! --wait`) look for; the VM whose failure reached the limit writes it, and
//! any VM that counts enough failures and finds no halt record writes it
//! too (a crash between the two is repaired by the next one that looks).

use serde::{Deserialize, Serialize};

/// One VM's failed deploy of one artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The VM.
    pub vm: String,
    /// The artifact.
    pub artifact: String,
    /// When (the VM's clock, RFC 3339 with Z).
    pub at: String,
    /// The step that failed (`verify`, `start`, `unpack`, ...).
    pub step: String,
    /// Why, in words.
    pub reason: String,
    /// Whether the VM runs its previous release again.
    pub rolled_back: bool,
}

/// A halted rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltRecord {
    /// The artifact no VM of the group tries any more.
    pub artifact: String,
    /// The limit that was reached (`[fleet] max_failures`).
    pub max_failures: u32,
    /// The failures counted when it halted.
    pub failures: Vec<FailureRecord>,
    /// When (the writing VM's clock).
    pub at: String,
}

impl HaltRecord {
    /// "halted after 1 failed VM: vm-3 (verify: health check answered 500)".
    pub fn summary(&self) -> String {
        let n = self.failures.len();
        let vms: Vec<String> = self
            .failures
            .iter()
            .map(|f| format!("{} ({}: {})", f.vm, f.step, f.reason))
            .collect();
        format!(
            "halted after {n} failed VM{}: {}",
            if n == 1 { "" } else { "s" },
            vms.join("; ")
        )
    }
}

/// What the group knows of `artifact`'s rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// The VMs that failed it.
    pub failed_vms: Vec<String>,
    /// The halt record, when one was written.
    pub halted: Option<HaltRecord>,
}

/// Reads the failures of `artifact` in `group` (one LIST) and, when they
/// reach `max_failures`, the halt record, writing it when it is missing.
pub fn standing(
    store: &crate::Store,
    group: &str,
    artifact: &str,
    max_failures: u32,
) -> Result<Standing, crate::StoreError> {
    let listed = store.list(&crate::layout::failures_dir(group, artifact))?;
    let failed_vms: Vec<String> = listed
        .iter()
        .filter_map(|o| {
            o.key
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    let mut standing = Standing {
        failed_vms,
        halted: None,
    };
    if standing.failed_vms.len() < max_failures as usize {
        return Ok(standing);
    }
    let key = crate::layout::halted(group, artifact);
    if let Some((bytes, _)) = store.get(&key)? {
        if let Ok(record) = serde_json::from_slice::<HaltRecord>(&bytes) {
            standing.halted = Some(record);
            return Ok(standing);
        }
    }
    let mut failures = Vec::new();
    for o in &listed {
        if let Some((bytes, _)) = store.get(&o.key)? {
            if let Ok(f) = serde_json::from_slice::<FailureRecord>(&bytes) {
                failures.push(f);
            }
        }
    }
    let record = HaltRecord {
        artifact: artifact.to_string(),
        max_failures,
        failures,
        at: deploy_root::time::rfc3339(chrono::Utc::now()),
    };
    let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
    match store.put_bytes(&key, &bytes, &crate::Condition::Create) {
        Ok(_) => tracing::warn!(
            "the rollout of {artifact} in group {group} {}",
            record.summary()
        ),
        // Another VM wrote it first: theirs stands.
        Err(crate::StoreError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    standing.halted = Some(record);
    Ok(standing)
}

/// Records this VM's failed deploy of `failure.artifact` (its own object,
/// overwritten if it failed before).
pub fn record_failure(
    store: &crate::Store,
    group: &str,
    failure: &FailureRecord,
) -> Result<(), crate::StoreError> {
    let key = crate::layout::failure(group, &failure.artifact, &failure.vm);
    let bytes = serde_json::to_vec_pretty(failure).unwrap_or_default();
    store.put_bytes(&key, &bytes, &crate::Condition::Overwrite)?;
    Ok(())
}
