//! Sending: each target works through its own queue in its own thread, so
//! a target that hangs or fails holds up only itself, and a pass waits at
//! most about the longest target's time limit (a target starts no new send
//! once its time limit has passed since the flush began, so the worst case
//! is twice that limit).
//!
//! Per target, events go oldest first; the first one that fails stops that
//! target's queue until its `next_attempt_at` (exponential backoff from
//! `notify.retry_after`, doubling up to an hour), which keeps the order. An
//! event not taken `notify.give_up_after` after it happened is dropped for
//! that target, with a log line, and the queue moves on.
//!
//! What is sent: a POST of the event (`json`) or of `{"text": ...}`
//! (`slack`), 2xx is success; or a command (`/bin/sh -c`, clean
//! environment, the event in `CUTOVER_EVENT_*` and as JSON on stdin, its
//! output appended to state/logs/notify.log, its process group killed at
//! the time limit), exit 0 is success. Errors are scrubbed of the URL
//! before anything logs them.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deploy_root::notify_config::{redact_url, Format, NotifyConfig, Target};
use wait_timeout::ChildExt;

use super::event::Event;
use super::slack;

/// The longest wait between two tries of one event.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What became of one event for one target.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The target took it.
    Delivered,
    /// It failed; try again at `next` (attempts so far, the error).
    Failed {
        /// Attempts so far, this one included.
        attempts: u32,
        /// Not before this.
        next: DateTime<Utc>,
        /// Why (redacted).
        error: String,
    },
    /// Given up: too old (attempts so far, the last error).
    Dropped {
        /// Attempts so far, this one included.
        attempts: u32,
        /// Why the last try failed (redacted).
        error: String,
    },
}

/// One event in a target's queue: where it is in the outbox list, the
/// event, the attempts so far, and when it may be tried.
#[derive(Clone, Debug)]
pub struct Queued {
    /// Its index in the outbox list.
    pub index: usize,
    /// The event.
    pub event: Event,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Works through `queue` for `target`, reporting each result on `tx` as
/// (target index, outbox index, result), in order.
pub fn work(
    notify: &NotifyConfig,
    layout_logs: &Path,
    ti: usize,
    target: &Target,
    queue: Vec<Queued>,
    tx: &mpsc::Sender<(usize, usize, Outcome)>,
) {
    let started = Instant::now();
    for q in queue {
        if started.elapsed() >= target.timeout {
            tracing::debug!(
                "notify: {} used its time for this pass; the rest waits",
                target.label()
            );
            break;
        }
        if q.next_attempt_at.is_some_and(|t| t > Utc::now()) {
            // Backing off: the later events wait behind this one.
            break;
        }
        let result = match send(target, &q.event, layout_logs) {
            Ok(()) => Outcome::Delivered,
            Err(error) => {
                let attempts = q.attempts + 1;
                let age = (Utc::now() - q.event.at).to_std().unwrap_or_default();
                if age >= notify.give_up_after {
                    Outcome::Dropped { attempts, error }
                } else {
                    let next = Utc::now()
                        + chrono::Duration::from_std(backoff(notify.retry_after, attempts))
                            .unwrap_or_default();
                    Outcome::Failed {
                        attempts,
                        next,
                        error,
                    }
                }
            }
        };
        let stop = matches!(result, Outcome::Failed { .. });
        if tx.send((ti, q.index, result)).is_err() || stop {
            break;
        }
    }
}

/// The wait after `attempts` failures: `first`, doubled per further
/// failure, at most an hour.
pub fn backoff(first: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    first.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Sends one event to one target; the error is in words, redacted.
pub fn send(target: &Target, event: &Event, logs: &Path) -> Result<(), String> {
    match (&target.url, &target.command) {
        (Some(url), _) => post(
            url,
            target.format.unwrap_or_default(),
            target.timeout,
            event,
        )
        .map_err(|e| scrub(&e, url)),
        (None, Some(cmd)) => run_command(cmd, target.timeout, event, logs),
        (None, None) => Err("no url or command".into()),
    }
}

fn post(url: &str, format: Format, timeout: Duration, event: &Event) -> Result<(), String> {
    let body = match format {
        Format::Json => serde_json::to_vec(event),
        Format::Slack => serde_json::to_vec(&slack::payload(event)),
    }
    .map_err(|e| format!("serializing the event: {e}"))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("cutover-switcher/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Cutover-Event-Id", &event.id)
        .send(&body[..])
        .map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("answered HTTP {code}, expected 2xx"))
    }
}

/// Runs a command target with the event in its environment and on stdin.
fn run_command(cmd: &str, timeout: Duration, event: &Event, logs: &Path) -> Result<(), String> {
    let json = serde_json::to_vec(event).map_err(|e| format!("serializing the event: {e}"))?;
    let log_path = logs.join("notify.log");
    let _ = std::fs::create_dir_all(logs);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
    // The header names the event, never the command (it may hold a token).
    let _ = writeln!(
        log,
        "--- {} event {} ({})",
        deploy_root::time::rfc3339(Utc::now()),
        event.id,
        event.kind.as_str()
    );
    let err = log
        .try_clone()
        .map_err(|e| format!("duplicating {}: {e}", log_path.display()))?;
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .env_clear()
        .env("PATH", crate::command::PATH)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .envs(env_of(event))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .current_dir("/")
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting /bin/sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // Its own thread: a command that never reads must not block us
        // beyond its time limit (killing it ends the write with EPIPE).
        std::thread::spawn(move || {
            let _ = stdin.write_all(&json);
        });
    }
    let pid = child.id();
    let status = child
        .wait_timeout(timeout)
        .map_err(|e| format!("waiting for the command: {e}"))?;
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(match s.code() {
            Some(code) => format!("exited with code {code} (output in {})", log_path.display()),
            None => "was killed by a signal".into(),
        }),
        None => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait();
            Err(format!(
                "did not finish within {} s and was killed",
                timeout.as_secs_f64()
            ))
        }
    }
}

/// The `CUTOVER_EVENT_*` variables of `event`.
pub fn env_of(event: &Event) -> Vec<(String, String)> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        ("SCHEMA", event.schema.to_string()),
        ("ID", event.id.clone()),
        ("AT", deploy_root::time::rfc3339(event.at)),
        ("HOST", event.host.clone()),
        ("KIND", event.kind.as_str().to_string()),
        ("COMPONENTS", event.components.join(",")),
        ("COMPONENT", opt(&event.component)),
        ("ARTIFACT", opt(&event.artifact)),
        ("VERSION", opt(&event.version)),
        ("BRANCH", opt(&event.branch)),
        ("REASON", opt(&event.reason)),
        ("STEP", opt(&event.step)),
        (
            "EXIT_CODE",
            event.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("BY", opt(&event.by)),
        ("WHO", opt(&event.who)),
        (
            "UNTIL",
            event
                .until
                .map(deploy_root::time::rfc3339)
                .unwrap_or_default(),
        ),
        ("TAIL", event.tail.join("\n")),
        ("TEXT", event.summary()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("CUTOVER_EVENT_{k}"), v.replace('\0', "")))
    .collect()
}

/// `text` with `url`, and its path and query, replaced by the redacted
/// form: an HTTP client's error may quote the URL it was given.
pub fn scrub(text: &str, url: &str) -> String {
    let shown = redact_url(url);
    let mut out = text.replace(url, &shown);
    if let Some((_, rest)) = url.split_once("://") {
        if let Some(i) = rest.find(['/', '?', '#']) {
            let tail = &rest[i..];
            if tail.len() > 1 {
                out = out.replace(tail, "/…");
            }
        }
        // user:pass@ on its own, too.
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some((user, _)) = authority.rsplit_once('@') {
            out = out.replace(user, "…");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), 1), s(30));
        assert_eq!(backoff(s(30), 2), s(60));
        assert_eq!(backoff(s(30), 4), s(240));
        assert_eq!(backoff(s(30), 40), s(3600));
        assert_eq!(backoff(s(0), 9), s(0));
    }

    #[test]
    fn scrub_removes_every_part_of_the_secret() {
        let url = "https://bot:pw@hooks.example:8443/services/T1/B2/SECRET?token=TOK";
        let text = format!("error for {url}: no; path /services/T1/B2/SECRET?token=TOK bot:pw");
        let s = scrub(&text, url);
        for secret in ["SECRET", "TOK", "bot:pw"] {
            assert!(!s.contains(secret), "{s}");
        }
    }

    /// Slack webhooks are https: this build must speak TLS (rustls). A
    /// server that answers in plain text makes the TLS handshake fail,
    /// which only a client that tried one can report.
    #[test]
    fn https_targets_get_a_tls_handshake() -> std::io::Result<()> {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let e = Event::new(super::super::event::Kind::Deployed);
        let url = format!("https://127.0.0.1:{port}/services/SECRET");
        let err = post(&url, Format::Slack, Duration::from_secs(5), &e).err();
        let err = err.unwrap_or_default().to_lowercase();
        // rustls's words for a peer that does not speak TLS.
        assert!(err.contains("corrupt message"), "{err}");
        Ok(())
    }

    #[test]
    fn env_names_every_field() {
        let e = Event::new(super::super::event::Kind::Deployed)
            .components(["backend", "frontend"])
            .by("hand");
        let env = env_of(&e);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CUTOVER_EVENT_KIND"), Some("deployed"));
        assert_eq!(get("CUTOVER_EVENT_COMPONENTS"), Some("backend,frontend"));
        assert_eq!(get("CUTOVER_EVENT_BY"), Some("hand"));
        assert_eq!(get("CUTOVER_EVENT_SCHEMA"), Some("1"));
    }
}
