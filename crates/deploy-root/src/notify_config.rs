//! `[notify]`: where the switcher sends word of what happened (deploys,
//! failures, rollbacks, a component going down...), checked key by key.
//!
//! ```toml
//! [notify]
//! retry_after = "30s"      # first retry of a failed send; doubles up to 1 h
//! give_up_after = "24h"    # an event not delivered by then is dropped
//!
//! [[notify.target]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"         # or "json" (the default): docs/notifications.md
//! events = ["deployed", "failed", "rolled-back", "rollback-failed", "down"]
//! timeout = "5s"
//!
//! [[notify.target]]
//! command = "/usr/local/bin/page-someone"   # the event as JSON on stdin
//! ```
//!
//! A target's URL often is its secret (Slack puts the token in the path;
//! others in the query or as user:pass@), so it is never shown whole:
//! everything that names a target goes through [`redact_url`] (via
//! [`Target::label`]), error messages here included, and `Debug` too.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Every event kind a target can ask for in `events` (the switcher's
/// `notify::Kind` names the same, which its tests check).
pub const EVENT_KINDS: &[&str] = &[
    "deployed",
    "failed",
    "rolled-back",
    "rollback-failed",
    "down",
    "unhealthy",
    "recovered",
    "frozen",
    "unfrozen",
    "pinned",
    "unpinned",
    "upload-stale",
    "quarantined",
];

/// `[notify]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// How long after a failed send the first retry waits; each further
    /// failure doubles it, up to an hour. Retries happen on later passes.
    #[serde(deserialize_with = "crate::config::duration")]
    pub retry_after: Duration,
    /// An event that a target has not taken this long after it happened is
    /// dropped for that target (logged and counted on the status page).
    #[serde(deserialize_with = "crate::config::duration")]
    pub give_up_after: Duration,
    /// `[[notify.target]]`, in order.
    #[serde(rename = "target")]
    pub targets: Vec<Target>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            retry_after: Duration::from_secs(30),
            give_up_after: Duration::from_secs(24 * 3600),
            targets: Vec::new(),
        }
    }
}

/// What a URL target is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The event itself (docs/notifications.md, `"schema": 1`).
    #[default]
    Json,
    /// An incoming-webhook message, `{"text": "..."}` (Slack, Mattermost,
    /// Rocket.Chat).
    Slack,
}

/// `[[notify.target]]`: one receiver.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A name for logs and the page; a receiver is otherwise named by its
    /// redacted URL or its command's first word.
    #[serde(default)]
    pub name: Option<String>,
    /// An http:// or https:// URL to POST each event to.
    #[serde(default)]
    pub url: Option<String>,
    /// A shell command run once per event (clean environment, the event in
    /// `CUTOVER_EVENT_*` variables and as JSON on stdin); exit 0 is success.
    #[serde(default)]
    pub command: Option<String>,
    /// What a URL is sent: `json` or `slack`.
    #[serde(default)]
    pub format: Option<Format>,
    /// The event kinds it wants; empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The time limit of one send (the request, or the command).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The longest `timeout` a target may have: a pass waits for its sends.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

impl fmt::Debug for Target {
    // Derived Debug would print the URL and the command, secrets and all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label())
            .field("format", &self.format)
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Target {
    /// How logs, the page and the JSON name this target: its `name`, else
    /// the redacted URL, else `command <first word>`.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match (&self.url, &self.command) {
            (Some(url), _) => redact_url(url),
            (None, Some(cmd)) => {
                let first = cmd.split_whitespace().next().unwrap_or("");
                let more = if cmd.trim() == first { "" } else { " …" };
                format!("command {first}{more}")
            }
            (None, None) => "(no target)".into(),
        }
    }

    /// A stable key for this target's progress in the outbox: what it
    /// sends to (never shown: a hash, so the outbox holds no secret).
    pub fn key(&self) -> String {
        let what = match (&self.url, &self.command) {
            // Two targets may share a URL with different formats.
            (Some(url), _) => format!("url:{:?}:{url}", self.format.unwrap_or_default()),
            (None, Some(cmd)) => format!("command:{cmd}"),
            (None, None) => String::new(),
        };
        // FNV-1a, 64 bits: stable across versions and builds, unlike
        // std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in what.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// Whether it wants events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|k| k == kind)
    }
}

/// A URL as it may be shown: `scheme://host[:port]/…`, without user, path
/// or query, where secrets live. Text that is not a URL shows as
/// `(a URL that is not valid)`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a URL that is not valid)".into();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // user:pass@host: the part before the last '@' is the secret.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let ok_scheme = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok_scheme || host.is_empty() {
        return "(a URL that is not valid)".into();
    }
    let tail = if tail.is_empty() || tail == "/" {
        tail
    } else {
        "/…"
    };
    format!("{scheme}://{host}{tail}")
}

/// `text` with every http:// or https:// URL in it redacted (up to the
/// next space or quote): for messages that quote config text, such as a
/// TOML syntax error on a target's line.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = ["http://", "https://"]
        .iter()
        .filter_map(|s| rest.find(s))
        .min()
    {
        out.push_str(&rest[..i]);
        let url = &rest[i..];
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(url.len());
        out.push_str(&redact_url(&url[..end]));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

impl NotifyConfig {
    /// The checks that types alone do not make: (key, what was expected).
    /// Messages name targets by index and label, never by their URL.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.give_up_after < self.retry_after {
            return Err((
                "notify.give_up_after".into(),
                "expected at least notify.retry_after".into(),
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            let key = |k: &str| format!("notify.target[{i}].{k}");
            match (&t.url, &t.command) {
                (Some(_), Some(_)) => {
                    return Err((
                        key("command"),
                        "expected either url or command, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err((
                        format!("notify.target[{i}]"),
                        "expected url = \"https://...\" or command = \"...\"".into(),
                    ))
                }
                (Some(url), None) => {
                    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                    if !scheme_ok || redact_url(url).starts_with('(') {
                        // Not echoed: a mistyped URL is still a secret.
                        return Err((
                            key("url"),
                            "expected an http:// or https:// URL (not shown: it may hold a secret)"
                                .into(),
                        ));
                    }
                }
                (None, Some(cmd)) => {
                    if cmd.trim().is_empty() {
                        return Err((
                            key("command"),
                            "expected a shell command, found an empty string".into(),
                        ));
                    }
                    if t.format.is_some() {
                        return Err((
                            key("format"),
                            "expected no format for a command (it always gets the JSON)".into(),
                        ));
                    }
                }
            }
            if let Some(name) = &t.name {
                if name.trim().is_empty() || name.chars().any(char::is_control) {
                    return Err((key("name"), "expected a short name in words".into()));
                }
            }
            for e in &t.events {
                if !EVENT_KINDS.contains(&e.as_str()) {
                    return Err((
                        key("events"),
                        format!(
                            "expected event kinds among {}, found {e:?}",
                            EVENT_KINDS.join(", ")
                        ),
                    ));
                }
            }
            if t.timeout.is_zero() || t.timeout > MAX_TIMEOUT {
                return Err((
                    key("timeout"),
                    format!(
                        "expected more than 0 s and at most {} s (a pass waits for it)",
                        MAX_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_scheme_and_host_only() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T0/B0/secret",
                "https://hooks.slack.com/…",
            ),
            (
                "http://user:pa@ss@127.0.0.1:8080/hook?token=x",
                "http://127.0.0.1:8080/…",
            ),
            ("http://example.com?token=x", "http://example.com/…"),
            ("http://example.com/", "http://example.com/"),
            ("https://example.com", "https://example.com"),
            ("not a url", "(a URL that is not valid)"),
            ("https://user:secret@/x", "(a URL that is not valid)"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn urls_in_text_are_redacted() {
        assert_eq!(
            redact_urls_in("line 3: url = \"https://h.example/T/SECRET\nx http://a:b@c/d e"),
            "line 3: url = \"https://h.example/…\nx http://c/… e"
        );
        assert_eq!(redact_urls_in("no url here"), "no url here");
    }

    #[test]
    fn debug_and_label_hide_the_url() {
        let t = Target {
            name: None,
            url: Some("https://hooks.example/services/TOKEN123".into()),
            command: None,
            format: Some(Format::Slack),
            events: Vec::new(),
            timeout: default_timeout(),
        };
        assert!(!format!("{t:?}").contains("TOKEN123"));
        assert!(!t.label().contains("TOKEN123"));
        assert!(!t.key().contains("TOKEN123"));
        assert!(t.wants("deployed"));
    }

    const BASE: &str =
        "root = \"/srv\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 8080\n";

    fn parse(notify: &str) -> Result<crate::Config, crate::ConfigError> {
        crate::Config::parse(
            std::path::Path::new("/etc/cutover/cutover.toml"),
            &format!("{BASE}{notify}"),
        )
    }

    #[test]
    fn reads_targets_with_defaults() {
        let c = parse(
            "[notify]\nretry_after = \"10s\"\n[[notify.target]]\nurl = \"https://hooks.example/T/B/X\"\nformat = \"slack\"\n\
             [[notify.target]]\ncommand = \"cat\"\nevents = [\"down\", \"recovered\"]\ntimeout = 2\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let n = &c.notify;
        assert_eq!(n.retry_after, Duration::from_secs(10));
        assert_eq!(n.give_up_after, Duration::from_secs(86_400));
        assert_eq!(n.targets.len(), 2);
        assert_eq!(n.targets[0].format, Some(Format::Slack));
        assert_eq!(n.targets[0].timeout, Duration::from_secs(5));
        assert!(n.targets[1].wants("down") && !n.targets[1].wants("deployed"));
        assert!(parse("")
            .unwrap_or_else(|e| panic!("{e}"))
            .notify
            .targets
            .is_empty());
    }

    #[test]
    fn errors_name_the_key_and_never_the_url() {
        for (notify, needle) in [
            (
                "[[notify.target]]\nurl = \"ftp://secret@x/TOKEN\"\n",
                "notify.target[0].url",
            ),
            (
                "[[notify.target]]\nurl = \"https://x/TOKEN\"\ncommand = \"cat\"\n",
                "notify.target[0].command",
            ),
            ("[[notify.target]]\nname = \"ops\"\n", "notify.target[0]"),
            (
                "[[notify.target]]\ncommand = \"cat\"\nformat = \"slack\"\n",
                "notify.target[0].format",
            ),
            (
                "[[notify.target]]\nurl = \"https://x/TOKEN\"\nevents = [\"deploy\"]\n",
                "notify.target[0].events",
            ),
            (
                "[[notify.target]]\nurl = \"https://x/TOKEN\"\ntimeout = \"0s\"\n",
                "notify.target[0].timeout",
            ),
            (
                "[[notify.target]]\nurl = \"https://x/TOKEN\"\nformat = \"xml\"\n",
                "format",
            ),
            (
                "[notify]\nretry_after = \"2h\"\ngive_up_after = \"1h\"\n",
                "notify.give_up_after",
            ),
            ("[notify]\ntargets = []\n", "targets"),
            (
                "[[notify.target]]\nurl = \"https://x/TOKEN\ntimeout = 5\n",
                "line 7",
            ),
        ] {
            let e = parse(notify).expect_err(notify).to_string();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
            assert!(!e.contains("TOKEN"), "{e}");
        }
    }

    /// The commented `[notify]` example in deploy/cutover.toml, uncommented,
    /// must load: the documented keys are the real ones.
    #[test]
    fn the_commented_example_loads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cutover.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let start = text.find("# [notify]").unwrap_or(text.len());
        let example: String = text[start..]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        assert_eq!(c.notify.targets.len(), 3, "{example}");
        assert_eq!(c.notify.targets[0].label(), "https://hooks.slack.com/…");
        assert_eq!(c.notify.targets[1].label(), "ops-webhook");
        assert_eq!(c.notify.targets[2].label(), "command logger …");
    }
}
