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
