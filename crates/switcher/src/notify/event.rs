//! One event: what happened, to what, when and where, in the documented
//! shape (docs/notifications.md, `"schema": 1`).
//!
//! Every event carries a unique `id` (a random UUID v4): delivery is at
//! least once, so a receiver that sees an id twice drops the second.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_name::ArtifactName;
use chrono::{DateTime, Utc};
use deploy_root::time::serde_rfc3339;
use serde::{Deserialize, Serialize};

/// The version of the event's shape; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An artifact runs now.
    Deployed,
    /// A deploy failed (step, component, the last output lines).
    Failed,
    /// Back to the previous release: after a failure (`by` = automatic) or
    /// with `switcher rollback` (`by` = hand).
    RolledBack,
    /// Going back failed too: the service may be down.
    RollbackFailed,
    /// A component that ran stopped listening.
    Down,
    /// A component listens but its health URL does not answer 2xx.
    Unhealthy,
    /// A component that was down or unhealthy is up and healthy again.
    Recovered,
    /// Deploys were frozen (control verbs).
    Frozen,
    /// Deploys were unfrozen.
    Unfrozen,
    /// A component was pinned to an artifact.
    Pinned,
    /// A pin was lifted.
    Unpinned,
    /// An upload in drop/ has waited too long for its marker.
    UploadStale,
    /// The collector put a file in quarantine/.
    Quarantined,
}

impl Kind {
    /// Every kind, in the documented order.
    pub const ALL: [Kind; 13] = [
        Kind::Deployed,
        Kind::Failed,
        Kind::RolledBack,
        Kind::RollbackFailed,
        Kind::Down,
        Kind::Unhealthy,
        Kind::Recovered,
        Kind::Frozen,
        Kind::Unfrozen,
        Kind::Pinned,
        Kind::Unpinned,
        Kind::UploadStale,
        Kind::Quarantined,
    ];

    /// The name in events, configs (`events = [...]`) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployed => "deployed",
            Kind::Failed => "failed",
            Kind::RolledBack => "rolled-back",
            Kind::RollbackFailed => "rollback-failed",
            Kind::Down => "down",
            Kind::Unhealthy => "unhealthy",
            Kind::Recovered => "recovered",
            Kind::Frozen => "frozen",
            Kind::Unfrozen => "unfrozen",
            Kind::Pinned => "pinned",
            Kind::Unpinned => "unpinned",
            Kind::UploadStale => "upload-stale",
            Kind::Quarantined => "quarantined",
        }
    }
}

/// One event, as sent (`format = "json"`), as written to the outbox and
/// as a command reads it on stdin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Unique (UUID v4): the receiver's key to drop duplicates.
    pub id: String,
    /// When it happened.
    #[serde(with = "serde_rfc3339")]
    pub at: DateTime<Utc>,
    /// The machine's host name.
    pub host: String,
    /// What happened.
    pub kind: Kind,
    /// The components concerned (may be empty: a quarantined file).
    #[serde(default)]
    pub components: Vec<String>,
    /// The one component whose step failed, for `failed`.
    #[serde(default)]
    pub component: Option<String>,
    /// The artifact's file name (or the upload's, the quarantined file's).
    #[serde(default)]
    pub artifact: Option<String>,
    /// The version from the artifact's name.
    #[serde(default)]
    pub version: Option<String>,
    /// The branch from the artifact's name. Untrusted text.
    #[serde(default)]
    pub branch: Option<String>,
    /// Why, in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// The step that failed: unpack, prepare, stop, start, verify, ...
    #[serde(default)]
    pub step: Option<String>,
    /// The failed command's exit code, where a command failed.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The last lines of the failed command's output.
    #[serde(default)]
    pub tail: Vec<String>,
    /// Who did it: `automatic` or `hand` (rollbacks, control verbs).
    #[serde(default)]
    pub by: Option<String>,
    /// By hand: the user who ran the command (`SUDO_USER`, else `USER`).
    /// Untrusted text.
    #[serde(default)]
    pub who: Option<String>,
    /// `frozen`, `pinned`: when the hold lapses by itself (null: when it is
    /// lifted by hand).
    #[serde(default, with = "deploy_root::time::serde_rfc3339::option")]
    pub until: Option<DateTime<Utc>>,
}

impl Event {
    /// A new event of `kind`, now, on this host, with a fresh id.
    pub fn new(kind: Kind) -> Event {
        Event {
            schema: SCHEMA,
            id: new_id(),
            at: Utc::now(),
            host: host(),
            kind,
            components: Vec::new(),
            component: None,
            artifact: None,
            version: None,
            branch: None,
            reason: None,
            step: None,
            exit_code: None,
            tail: Vec::new(),
            by: None,
            who: None,
            until: None,
        }
    }

    /// The components concerned.
    pub fn components<I, S>(mut self, components: I) -> Event
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.components = components.into_iter().map(Into::into).collect();
        self
    }

    /// The artifact, by file name; version and branch come from the name
    /// when it is one of ours.
    pub fn artifact(mut self, file_name: &str) -> Event {
        if let Ok(name) = ArtifactName::parse(file_name) {
            self.version = Some(name.version().to_string());
            self.branch = Some(name.branch().to_string());
        }
        self.artifact = Some(file_name.to_string());
        self
    }

    /// Why, in words.
    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    /// Who: `automatic` or `hand`.
    pub fn by(mut self, by: &str) -> Event {
        self.by = Some(by.to_string());
        self
    }

    /// By hand, by this user: `by` is `hand`, `who` the user.
    pub fn who(mut self, who: &str) -> Event {
        self.by = Some("hand".to_string());
        self.who = Some(who.to_string());
        self
    }

    /// When the hold lapses by itself.
    pub fn until(mut self, until: Option<DateTime<Utc>>) -> Event {
        self.until = until;
        self
    }

    /// One line in words, for chat messages and logs.
    pub fn summary(&self) -> String {
        let what = match (&self.artifact, &self.version) {
            (Some(a), Some(v)) => format!(
                "{a} (version {v}, branch {})",
                self.branch.as_deref().unwrap_or("?")
            ),
            (Some(a), None) => a.clone(),
            _ => String::new(),
        };
        let on = if self.components.is_empty() {
            String::new()
        } else {
            self.components.join(", ")
        };
        let mut line = match self.kind {
            Kind::Deployed => format!("deployed {what} to {on}"),
            Kind::Failed => format!(
                "deploy of {what} failed at {} of {}",
                self.step.as_deref().unwrap_or("?"),
                self.component.as_deref().unwrap_or(&on)
            ),
            Kind::RolledBack => format!(
                "rolled back {on} from {what} ({})",
                self.by.as_deref().unwrap_or("automatic")
            ),
            Kind::RollbackFailed => {
                format!("going back from {what} failed on {on}: the service may be down")
            }
            Kind::Down => format!("{on} is DOWN"),
            Kind::Unhealthy => format!("{on} is UP but unhealthy"),
            Kind::Recovered => format!("{on} recovered: UP and healthy"),
            Kind::Frozen => format!("automatic deploys frozen for {on}"),
            Kind::Unfrozen => format!("automatic deploys unfrozen for {on}"),
            Kind::Pinned if what.is_empty() => format!("{on} pinned on what runs"),
            Kind::Pinned => format!("{on} pinned to {what}"),
            Kind::Unpinned => format!("{on} unpinned"),
            Kind::UploadStale => format!("upload {what} is stale: still no marker"),
            Kind::Quarantined => format!("{what} was quarantined"),
        };
        if let Some(who) = &self.who {
            line.push_str(&format!(" by {who}"));
        }
        if let Some(u) = self.until {
            line.push_str(&format!(" until {}", deploy_root::time::human(u)));
        }
        if let Some(r) = &self.reason {
            line.push_str(": ");
            line.push_str(r);
        }
        format!("[{}] {}", self.host, line)
    }
}

/// A random UUID v4 from /dev/urandom; should that fail, the time, the
/// pid and a counter keep it unique on this host.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        b[..8].copy_from_slice(&nanos.to_be_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_be_bytes());
        b[12..].copy_from_slice(&(n as u32).to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The host name (the kernel's), or `localhost`.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_config_list() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, deploy_root::notify_config::EVENT_KINDS);
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn ids_are_uuid_v4_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
