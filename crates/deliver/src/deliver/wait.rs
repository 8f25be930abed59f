//! `--wait`: poll the VM's status page until the delivered artifact runs,
//! the switcher gives up on it, or time runs out.
//!
//! The page is `deploy-status.json`, schema 1 or 2: per component
//! `components.<c>.running.artifact` (what runs) and
//! `components.<c>.last_failure.{artifact,step,reason}` (what failed and
//! why); from schema 2, `control.freeze` and `control.pins.<c>` (held by
//! hand: the wait ends at once, since nothing will deploy it by itself).
//! Only plain http is built in. A page that cannot be fetched or read
//! is retried until the time-out (the VM may be rebooting); a page of
//! another schema ends the wait at once, since it cannot be read correctly.
//!
//! The deploy went as designed when each component of the kind runs the
//! artifact or a build made later (in the contract's order: build time,
//! then name): a `full` older than the running frontend deploys only its
//! backend, and an artifact superseded before the first poll never runs at
//! all. Either way the wait ends well, saying which component runs what.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use artifact_name::ArtifactName;
use serde_json::Value;

use super::progress::Progress;
use super::Failure;
use artifact_name::exit_codes;

/// The schemas of deploy-status.json this reads (2 adds `control`, the
/// holds set by hand, and the sync state `held`).
const SCHEMAS: [u64; 2] = [1, 2];

/// The largest status document read (it is a few KiB).
const MAX_BYTES: u64 = 4 << 20;

/// What to wait for.
#[derive(Debug)]
pub struct Spec {
    /// The delivered artifact's file name.
    pub artifact: String,
    /// The components it carries: each must run it.
    pub components: Vec<String>,
    /// How long to wait in all.
    pub timeout: Duration,
    /// The pause between polls.
    pub interval: Duration,
}

/// The URL of the status document: `url` itself when it names a `.json`,
/// else `<url>/deploy-status.json`.
pub fn status_url(url: &str) -> anyhow::Result<String> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!(
            "--wait {url:?}: expected an http:// URL of the VM's status page \
             (https is not built in; serve the status page over http on the VM's network)"
        );
    };
    if rest.is_empty()
        || rest.starts_with('/')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("--wait {url:?}: expected http://HOST[:PORT][/PATH]");
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.ends_with(".json") {
        Ok(url.to_string())
    } else {
        Ok(format!("{}/deploy-status.json", url.trim_end_matches('/')))
    }
}

/// What one status document says about the delivered artifact.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Every component runs it or a build made later; for the latter, one
    /// line each ("frontend runs a newer build: <name>").
    Running(Vec<String>),
    /// The switcher marked it failed.
    Failed {
        component: String,
        step: String,
        reason: String,
    },
    /// Not yet: what runs instead, in words.
    Pending(String),
    /// It will not deploy by itself: the VM is frozen or a component it
    /// carries is pinned (who, since, why, in words).
    Held(String),
}

/// Reads a status document. `Err` for a page that is not a status document
/// of schema 1 or 2.
pub fn judge(doc: &Value, spec: &Spec) -> Result<Verdict, Problem> {
    let Some(obj) = doc.as_object() else {
        return Err(Problem::Unreadable("is not a JSON object".into()));
    };
    match obj.get("schema").and_then(Value::as_u64) {
        Some(n) if SCHEMAS.contains(&n) => {}
        Some(other) => return Err(Problem::Schema(other.to_string())),
        None => {
            return Err(Problem::Unreadable(
                "has no \"schema\": expected a deploy-status document of schema 1 or 2".into(),
            ))
        }
    }
    let components = obj.get("components").and_then(Value::as_object);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let ours = ArtifactName::parse(&spec.artifact).ok();
    // A name outside the contract is never "later": it is not a build.
    let later = |a: &str| match (&ours, ArtifactName::parse(a)) {
        (Some(ours), Ok(theirs)) => theirs > *ours,
        _ => false,
    };
    let mut instead = Vec::new();
    let mut held = Vec::new();
    let control = obj.get("control");
    let hold_words = |h: &Value| {
        let mut w = format!("by {} since {}", text(h.get("who")), text(h.get("since")));
        if let Some(u) = h.get("until").and_then(Value::as_str) {
            w.push_str(&format!(" until {u}"));
        }
        if let Some(r) = h.get("reason").and_then(Value::as_str) {
            w.push_str(&format!(": {r}"));
        }
        w
    };
    if let Some(f) = control
        .and_then(|c| c.get("freeze"))
        .filter(|f| f.is_object())
    {
        held.push(format!("the VM is frozen {}", hold_words(f)));
    }
    let mut newer = Vec::new();
    for c in &spec.components {
        let state = components.and_then(|cs| cs.get(c));
        let failure = state.and_then(|s| s.get("last_failure"));
        if failure
            .and_then(|f| f.get("artifact"))
            .and_then(Value::as_str)
            == Some(&spec.artifact)
        {
            return Ok(Verdict::Failed {
                component: c.clone(),
                step: text(failure.and_then(|f| f.get("step"))),
                reason: match failure
                    .and_then(|f| f.get("exit_code"))
                    .and_then(Value::as_i64)
                {
                    Some(code) => format!(
                        "{} (exit code {code})",
                        text(failure.and_then(|f| f.get("reason")))
                    ),
                    None => text(failure.and_then(|f| f.get("reason"))),
                },
            });
        }
        let running = state
            .and_then(|s| s.get("running"))
            .and_then(|r| r.get("artifact"))
            .and_then(Value::as_str);
        let mut line = match (state, running) {
            (None, _) => format!("{c}: not on the status page"),
            (_, Some(a)) if a == spec.artifact => continue,
            (_, Some(a)) if later(a) => {
                newer.push(format!("{c} runs a newer build: {a}"));
                continue;
            }
            (_, Some(a)) => format!("{c} runs {a}"),
            (_, None) => format!("{c} runs nothing"),
        };
        // Pinned and not done: nothing will deploy it there by itself.
        if let Some(p) = control
            .and_then(|ctl| ctl.get("pins"))
            .and_then(|p| p.get(c))
            .filter(|p| p.is_object())
        {
            held.push(format!("{c} is pinned {}", hold_words(p)));
        }
        // Whether the collector has taken it tells "upload not seen" from
        // "seen but not started"; the switcher's reason says why not.
        let last = state
            .and_then(|s| s.get("last"))
            .and_then(|l| l.get("artifact"))
            .and_then(Value::as_str);
        if state.is_some() && last != Some(&spec.artifact) {
            line.push_str(" (not collected yet)");
        }
        let reason = text(
            state
                .and_then(|s| s.get("sync"))
                .and_then(|s| s.get("reason")),
        );
        if !reason.is_empty() {
            line.push_str(&format!(": {reason}"));
        }
        instead.push(line);
    }
    if instead.is_empty() {
        Ok(Verdict::Running(newer))
    } else if !held.is_empty() {
        Ok(Verdict::Held(held.join("; ")))
    } else {
        Ok(Verdict::Pending(instead.join(", ")))
    }
}

/// Why a poll told nothing.
#[derive(Debug, PartialEq)]
pub enum Problem {
    /// Not fetched, or not a status document: try again.
    Unreadable(String),
    /// A status document of another schema: give up.
    Schema(String),
}

/// Polls every URL until the artifact runs on all of them.
pub fn wait(urls: &[String], spec: &Spec, progress: &Progress) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let deadline = Instant::now() + spec.timeout;
    let mut pending: Vec<(String, String)> =
        urls.iter().map(|u| (u.clone(), String::new())).collect();
    progress.line(format_args!(
        "waiting up to {} for {} to run ({})",
        humantime::format_duration(spec.timeout),
        spec.artifact,
        spec.components.join(", ")
    ));
    loop {
        let mut still = Vec::new();
        for (url, last) in pending {
            let now = match fetch(&agent, &url).and_then(|doc| judge(&doc, spec)) {
                Ok(Verdict::Running(newer)) if newer.is_empty() => {
                    progress.line(format_args!("{url}: {} runs", spec.artifact));
                    continue;
                }
                Ok(Verdict::Running(newer)) => {
                    progress.line(format_args!(
                        "{url}: done, {} or a newer build runs: {}",
                        spec.artifact,
                        newer.join(", ")
                    ));
                    continue;
                }
                Ok(Verdict::Failed {
                    component,
                    step,
                    reason,
                }) => {
                    return Err(Failure::new(
                        exit_codes::DEPLOY_FAILED,
                        anyhow!(
                            "{url}: the switcher marked {} failed ({component}, step {step:?}): {reason}",
                            spec.artifact
                        ),
                    )
                    .into());
                }
                Ok(Verdict::Held(why)) => {
                    return Err(Failure::new(
                        exit_codes::WAIT_HELD,
                        anyhow!(
                            "{url}: {} will not deploy by itself: {why} (switcher unpin / unfreeze on the VM lifts it)",
                            spec.artifact
                        ),
                    )
                    .into());
                }
                Ok(Verdict::Pending(instead)) => instead,
                Err(Problem::Schema(found)) => {
                    bail!("{url}: the status document has schema {found}: expected schema 1 or 2")
                }
                Err(Problem::Unreadable(why)) => why,
            };
            // One line per change, not per poll: CI logs stay short.
            if now != last {
                progress.line(format_args!("{url}: {now}"));
            }
            still.push((url, now));
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            let what: Vec<String> = pending.iter().map(|(u, s)| format!("{u}: {s}")).collect();
            return Err(Failure::new(
                exit_codes::WAIT_TIMED_OUT,
                anyhow!(
                    "{} did not run within {}; {}",
                    spec.artifact,
                    humantime::format_duration(spec.timeout),
                    what.join("; ")
                ),
            )
            .into());
        }
        std::thread::sleep(spec.interval.min(deadline - now));
    }
}

/// GETs and parses one status document.
fn fetch(agent: &ureq::Agent, url: &str) -> Result<Value, Problem> {
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| Problem::Unreadable(format!("cannot fetch the status page: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Problem::Unreadable(format!(
            "the status page answered HTTP {status}"
        )));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_BYTES)
        .read_to_string()
        .map_err(|e| Problem::Unreadable(format!("cannot read the status page: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Problem::Unreadable(format!("the status page is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OURS: &str = "full_20261126T235012Z_1.4.2_master.tar.zst";

    fn spec() -> Spec {
        Spec {
            artifact: OURS.into(),
            components: vec!["backend".into(), "frontend".into()],
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            status_url("http://vm1/").unwrap(),
            "http://vm1/deploy-status.json"
        );
        assert_eq!(
            status_url("http://vm1:8080/s.json").unwrap(),
            "http://vm1:8080/s.json"
        );
        assert!(status_url("https://vm1/").is_err());
        assert!(status_url("vm1").is_err());
        assert!(status_url("http://").is_err());
    }

    #[test]
    fn verdicts() {
        let run = |a: &str| json!({"running": {"artifact": a}});
        let doc = json!({"schema": 1, "components": {"backend": run(OURS), "frontend": run(OURS)}});
        assert_eq!(judge(&doc, &spec()), Ok(Verdict::Running(vec![])));
        let doc =
            json!({"schema": 1, "components": {"backend": run(OURS), "frontend": run("old")}});
        assert_eq!(
            judge(&doc, &spec()),
            Ok(Verdict::Pending(
                "frontend runs old (not collected yet)".into()
            ))
        );
        let mut doc = doc;
        doc["components"]["frontend"]["last"] = json!({"artifact": OURS});
        doc["components"]["frontend"]["sync"] = json!({"reason": "waiting for the lock"});
        assert_eq!(
            judge(&doc, &spec()),
            Ok(Verdict::Pending(
                "frontend runs old: waiting for the lock".into()
            ))
        );
        let doc = json!({"schema": 1, "components": {"backend": {"running": {"artifact": "old"},
            "last_failure": {"artifact": OURS, "step": "start", "reason": "exit 3"}}}});
        assert_eq!(
            judge(&doc, &spec()),
            Ok(Verdict::Failed {
                component: "backend".into(),
                step: "start".into(),
                reason: "exit 3".into()
            })
        );
        // A frontend built later runs: only the backend was deployed.
        let newer = "frontend_20261127T000000Z_1.4.3_master.tar.zst";
        let doc =
            json!({"schema": 1, "components": {"backend": run(OURS), "frontend": run(newer)}});
        assert_eq!(
            judge(&doc, &spec()),
            Ok(Verdict::Running(vec![format!(
                "frontend runs a newer build: {newer}"
            )]))
        );
        // Superseded everywhere before the first poll.
        let later = "full_20261126T235013Z_1.4.2_master.tar.zst";
        let doc =
            json!({"schema": 1, "components": {"backend": run(later), "frontend": run(later)}});
        assert!(matches!(judge(&doc, &spec()), Ok(Verdict::Running(v)) if v.len() == 2));
        // Older builds, and names outside the contract, are not done.
        for other in ["frontend_20261126T235011Z_9.9.9_master.tar.zst", "zzz"] {
            let doc =
                json!({"schema": 1, "components": {"backend": run(OURS), "frontend": run(other)}});
            assert!(
                matches!(judge(&doc, &spec()), Ok(Verdict::Pending(_))),
                "{other}"
            );
        }
        assert!(matches!(
            judge(&json!({"schema": 3}), &spec()),
            Err(Problem::Schema(_))
        ));
        let hold = json!({"who": "alice", "since": "2026-11-30T09:00:00Z", "until": null, "reason": "demo"});
        let doc = json!({"schema": 2, "components": {"backend": run("old"), "frontend": run("old")},
            "control": {"pins": {"backend": hold}, "freeze": null, "follow": null}});
        assert_eq!(
            judge(&doc, &spec()),
            Ok(Verdict::Held(
                "backend is pinned by alice since 2026-11-30T09:00:00Z: demo".into()
            ))
        );
        // A pinned component that runs a later build is done, not held.
        let doc = json!({"schema": 2, "components": {"backend": run(OURS), "frontend": run(newer)},
            "control": {"pins": {"frontend": hold.clone()}, "freeze": hold.clone(), "follow": null}});
        assert!(matches!(judge(&doc, &spec()), Ok(Verdict::Running(v)) if v.len() == 1));
        let doc = json!({"schema": 2, "components": {"backend": run("old"), "frontend": run("old")},
            "control": {"pins": {}, "freeze": hold, "follow": null}});
        assert!(
            matches!(judge(&doc, &spec()), Ok(Verdict::Held(w)) if w.starts_with("the VM is frozen by alice"))
        );
        assert!(matches!(
            judge(&json!([1]), &spec()),
            Err(Problem::Unreadable(_))
        ));
        assert!(matches!(
            judge(&json!({}), &spec()),
            Err(Problem::Unreadable(_))
        ));
    }
}
