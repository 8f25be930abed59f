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
