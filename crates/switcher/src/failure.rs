//! A step that failed, in the words a [`Failure`] records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::Failure;

/// A step of a deploy that failed: which component, which step, and why.
#[derive(Clone, Debug)]
pub struct StepFailure {
    /// The component whose step failed.
    pub component: String,
    /// unpack, digest, link, prepare, stop, start, reload, verify, ...
    pub step: String,
    /// The command's exit code, where a command failed.
    pub exit_code: Option<i32>,
    /// The reason in words.
    pub reason: String,
    /// The last lines of the command's output.
    pub tail: Vec<String>,
}

impl StepFailure {
    /// A failure that is not a command's.
    pub fn new(component: &str, step: &str, reason: impl Into<String>) -> StepFailure {
        StepFailure {
            component: component.to_string(),
            step: step.to_string(),
            exit_code: None,
            reason: reason.into(),
            tail: Vec::new(),
        }
    }

    /// The record for state/switcher.json.
    pub fn to_failure(&self, artifact: &str, at: DateTime<Utc>) -> Failure {
        Failure {
            artifact: artifact.to_string(),
            component: self.component.clone(),
            step: self.step.clone(),
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            output_tail: self.tail.clone(),
            at,
            running_instead: BTreeMap::new(),
            rollback_failed: false,
        }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.component, self.step, self.reason)
    }
}
