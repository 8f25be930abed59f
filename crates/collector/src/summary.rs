//! What one pass did, for `--json` on stdout and for the logs.

use deploy_root::state::WaitingUpload;
use serde::Serialize;

/// One pass's outcome.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Whether another run held the lock (then nothing else was done).
    pub locked: bool,
    /// Artifacts taken into staging (or whose move a killed run had begun
    /// and this pass finished).
    pub collected: Vec<String>,
    /// Uploads already staged with the same digest, removed from the drop
    /// folder.
    pub duplicates_removed: Vec<String>,
    /// Uploads moved to quarantine, and why.
    pub quarantined: Vec<Quarantined>,
    /// Uploads left in the drop folder, and why.
    pub waiting: Vec<WaitingUpload>,
    /// Files pruned from staging and quarantine.
    pub pruned: Vec<String>,
    /// Errors; any makes the exit code 1.
    pub errors: Vec<String>,
    /// The intake from the store, when `[store]` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<Box<StoreSummary>>,
}

/// What one pass took from the store (`[store]`).
#[derive(Debug, Default, Serialize)]
pub struct StoreSummary {
    /// The store, as `s3://bucket/prefix`.
    pub url: String,
    /// Artifacts downloaded, verified and staged (also in `collected`).
    pub pulled: Vec<String>,
    /// Store objects that failed their check and are now in quarantine/
    /// (`name` is the object's key), so that they are not taken again.
    pub quarantined: Vec<Quarantined>,
    /// Why the store could not be used (or some object not taken), if so.
    pub error: Option<String>,
    /// Whether that error is the store's side (unreachable, a time limit,
    /// HTTP 5xx or 429): the page shows it and the exit code stays 0. Any
    /// other store error (credentials, access denied, no such bucket) is
    /// this VM's to fix and makes the exit code 1.
    pub transient: bool,
}

impl Summary {
    /// Whether the pass ends with exit code 1: an error of the pass, or a
    /// store error that is not the store's passing trouble.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
            || self
                .store
                .as_ref()
                .is_some_and(|s| s.error.is_some() && !s.transient)
    }
}

/// One quarantined upload.
#[derive(Debug, Serialize)]
pub struct Quarantined {
    /// Its name in the drop folder (lossily decoded).
    pub name: String,
    /// Its name in quarantine/ (differs when the name was taken).
    pub quarantined_as: String,
    /// Why.
    pub reason: String,
}

impl Summary {
    /// The JSON of a run that found the lock held.
    pub fn locked_json() -> String {
        let summary = Summary {
            locked: true,
            ..Summary::default()
        };
        serde_json::to_string_pretty(&summary).unwrap_or_else(|_| "{\"locked\":true}".into())
    }
}
