//! A VM's report: `fleet/<group>/status/<vm>.json`, rewritten by the
//! switcher at the end of every pass. `switcher fleet` and
//! `artifact-name deliver --wait --group` read them; the store's
//! Last-Modified of the object (not `written_at`, another host's clock) is
//! when the VM was last seen.
//!
//! Schema 1. Fields may be added within a schema; readers ignore fields
//! they do not know. Text from CI (artifact names, branches) and from
//! commands is untrusted: escape it where it is shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema number of [`VmReport`].
pub const SCHEMA: u32 = 1;

/// One VM's report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VmReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The VM's id in the group.
    pub vm: String,
    /// The group.
    pub group: String,
    /// When the VM wrote it, by its own clock (RFC 3339, Z).
    pub written_at: String,
    /// How often the VM runs a pass (`[status] period`), in seconds: a VM
    /// not seen for two periods is named as missing.
    pub period_seconds: u64,
    /// Per component, by name.
    pub components: BTreeMap<String, VmComponent>,
    /// What the VM waits for or does about the group's newest artifact,
    /// in words ("waiting for a slot: vm-2 holds it"), if anything.
    #[serde(default)]
    pub rollout: Option<String>,
    /// The artifact this VM is switching to now (it holds a slot lease).
    #[serde(default)]
    pub switching: Option<String>,
    /// Problems of the VM as a whole (the page's top-level problems).
    #[serde(default)]
    pub problems: Vec<String>,
    /// The VM's `deploy-status.json` (schema 2) without its history,
    /// timeline, queue and failure lists: components (Running, Last,
    /// Status, sync, the failure that matters), holds and problems, read
    /// the way a single VM's page is read (`deliver --wait`).
    #[serde(default)]
    pub page: serde_json::Value,
}

/// One component on one VM.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VmComponent {
    /// The artifact that runs, if any.
    #[serde(default)]
    pub running: Option<String>,
    /// The newest artifact collected for it, if any.
    #[serde(default)]
    pub last: Option<String>,
    /// `UP` or `DOWN` (the page's Status), with ", unhealthy" when UP but
    /// its health URL does not answer 2xx.
    pub status: String,
    /// The page's sync state: `in-sync`, `out-of-sync`, `held`, `failed`,
    /// `rolled-back`, `switching`.
    pub sync: String,
    /// The sync state's reason in words, if any.
    #[serde(default)]
    pub reason: Option<String>,
}

impl VmReport {
    /// Parses a report, checking its schema.
    pub fn parse(bytes: &[u8]) -> Result<VmReport, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("expected JSON: {e}"))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(1) => {}
            other => return Err(format!("expected schema 1, found {other:?}")),
        }
        serde_json::from_value(value).map_err(|e| format!("expected a VM report: {e}"))
    }

    /// Whether every component of `components` runs `artifact`.
    pub fn runs(&self, artifact: &str, components: &[String]) -> bool {
        !components.is_empty()
            && components.iter().all(|c| {
                self.components
                    .get(c)
                    .and_then(|s| s.running.as_deref())
                    .is_some_and(|r| r == artifact)
            })
    }
}
