//! `--wait --group NAME`: poll a fleet group's reports in the store until
//! every live VM of it runs the artifact, or the rollout halted, or time
//! runs out (feature `s3`).
//!
//! Each poll is one read of the group ([`fleet::view::read`]: one LIST, a
//! GET per VM report and halt record). A VM not seen for two of its
//! periods, by the store's clock, is missing: named, and not waited for.
//! Per live VM, the single-VM rules of `--wait` hold ([`judge_vm`]):
//!
//! - The VM *has* the artifact when every component of the kind that the
//!   VM reports runs it or a build made later (the contract's order). So
//!   at least one component runs it (or a later build), and no component
//!   lists it as Last without running it (or a later build). A VM that
//!   reports none of the kind's components does not take the kind: it is
//!   not waited for.
//! - It *failed* the artifact when its status page (the report's `page`)
//!   records a failed deploy of it, or when the store holds its failure
//!   record (`failures/<artifact>/<vm>.json`); it is *held* when the VM is
//!   frozen or a component is pinned. Neither changes by itself.
//!
//! The wait ends:
//! - exit 9 (ROLLOUT_HALTED) as soon as `halted/<artifact>.json` exists,
//!   with its summary (which VMs failed it, where, why);
//! - exit 0 once every live VM that takes the kind has it;
//! - once every such VM has it or failed it or is held, seen twice in a
//!   row (so that a halt written just after the failure is not missed):
//!   exit 3 (DEPLOY_FAILED) if any failed it (fewer than `max_failures`,
//!   since there is no halt: the rollout went on without them), else exit
//!   8 (WAIT_HELD);
//! - exit 7 (WAIT_TIMED_OUT) after `--wait-timeout`.
//!
//! Every ending prints the group's table ([`fleet::view::render_table`])
//! on stdout; progress goes to stderr, one line per VM when what it says
//! changes. A store that cannot be read is polled again until the time-out.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use artifact_name::ArtifactName;
use fleet::report::VmReport;
use fleet::view::{self, GroupView};
use fleet::Store;

use super::progress::Progress;
use super::wait::{self, Spec, Verdict};
use super::Failure;
use artifact_name::exit_codes;

/// The period of a VM whose report does not state one: the switcher's
/// default `[status] period`.
const FALLBACK_PERIOD: Duration = Duration::from_secs(60);

/// What one VM's report says about the delivered artifact.
#[derive(Debug, PartialEq)]
pub enum VmVerdict {
    /// Every component of the kind it carries runs it or a build made
    /// later; one line per component that runs a later one.
    Done(Vec<String>),
    /// Not yet: what runs instead, in words.
    Pending(String),
    /// Its switcher marked the artifact failed there (component, step,
    /// reason in words).
    Failed(String),
    /// It will not deploy by itself: frozen, or a component pinned.
    Held(String),
    /// It carries none of the kind's components.
    NotConcerned,
}

/// Judges one VM's report (see the module's rules).
pub fn judge_vm(report: &VmReport, spec: &Spec) -> VmVerdict {
    let involved: Vec<String> = spec
        .components
        .iter()
        .filter(|c| report.components.contains_key(*c))
        .cloned()
        .collect();
    if involved.is_empty() {
        return VmVerdict::NotConcerned;
    }
    let ours = ArtifactName::parse(&spec.artifact).ok();
    // A name outside the contract is never "later": it is not a build.
    let later = |a: &str| match (&ours, ArtifactName::parse(a)) {
        (Some(ours), Ok(theirs)) => theirs > *ours,
        _ => false,
    };
    let mut newer = Vec::new();
    let mut instead = Vec::new();
    for c in &involved {
        let Some(state) = report.components.get(c) else {
            continue;
        };
        let mut line = match state.running.as_deref() {
            Some(a) if a == spec.artifact => continue,
            Some(a) if later(a) => {
                newer.push(format!("{c} runs a newer build: {a}"));
                continue;
            }
            Some(a) => format!("{c} runs {a}"),
            None => format!("{c} runs nothing"),
        };
        if state.last.as_deref() != Some(spec.artifact.as_str()) {
            line.push_str(" (not collected yet)");
        }
        if let Some(r) = state.reason.as_deref().filter(|r| !r.is_empty()) {
            line.push_str(&format!(": {r}"));
        }
        instead.push(line);
    }
    if instead.is_empty() {
        return VmVerdict::Done(newer);
    }
    // The VM's own page (deploy-status.json) says whether it failed the
    // artifact or holds it, with the same reading as the single-VM wait.
    let sub = Spec {
        artifact: spec.artifact.clone(),
        components: involved,
        timeout: spec.timeout,
        interval: spec.interval,
    };
    match wait::judge(&report.page, &sub) {
        Ok(Verdict::Failed {
            component,
            step,
            reason,
        }) => VmVerdict::Failed(format!(
            "the switcher marked it failed ({component}, step {step:?}): {reason}"
        )),
        Ok(Verdict::Held(why)) => VmVerdict::Held(why),
        _ => VmVerdict::Pending(instead.join(", ")),
    }
}

/// Where the group stands after one poll.
#[derive(Debug, Default)]
struct Tally {
    done: Vec<String>,
    pending: Vec<String>,
    failed: Vec<String>,
    held: Vec<String>,
}

/// Judges every VM of `view`; says on `progress` what changed since `said`.
fn tally(
    view: &GroupView,
    spec: &Spec,
    said: &mut BTreeMap<String, String>,
    progress: &Progress,
) -> Tally {
    let mut t = Tally::default();
    for v in &view.vms {
        let vm = view::terminal(&v.vm);
        let line = if !v.live {
            format!(
                "missing: last seen {}, passes every {} s; not waited for",
                view::seen(v.last_seen, view.now),
                v.period_seconds
            )
        } else {
            match &v.report {
                None => {
                    let why = format!(
                        "its report cannot be read: {}",
                        v.error.as_deref().unwrap_or("?")
                    );
                    t.pending.push(format!("{vm}: {why}"));
                    why
                }
                Some(report) => match judge_vm(report, spec) {
                    // Its failure record in the store says so even when
                    // its page has moved on (another artifact failed since).
                    VmVerdict::Pending(_) if recorded_failure(view, spec, &v.vm) => {
                        let why = format!(
                            "it recorded a failed deploy of it (fleet/{}/failures/)",
                            view.group
                        );
                        t.failed.push(format!("{vm}: {}", view::terminal(&why)));
                        why
                    }
                    VmVerdict::Done(newer) if newer.is_empty() => {
                        t.done.push(vm.clone());
                        format!("{} runs", spec.artifact)
                    }
                    VmVerdict::Done(newer) => {
                        t.done.push(vm.clone());
                        format!(
                            "done, {} or a newer build runs: {}",
                            spec.artifact,
                            newer.join(", ")
                        )
                    }
                    VmVerdict::Pending(instead) => {
                        t.pending
                            .push(format!("{vm}: {}", view::terminal(&instead)));
                        instead
                    }
                    VmVerdict::Failed(why) => {
                        t.failed.push(format!("{vm}: {}", view::terminal(&why)));
                        why
                    }
                    VmVerdict::Held(why) => {
                        t.held.push(format!("{vm}: {}", view::terminal(&why)));
                        format!("held: {why}")
                    }
                    VmVerdict::NotConcerned => format!(
                        "carries none of {}: not waited for",
                        spec.components.join(", ")
                    ),
                },
            }
        };
        let line = view::terminal(&line);
        if said.get(&v.vm) != Some(&line) {
            progress.line(format_args!("{}/{vm}: {line}", view::terminal(&view.group)));
            said.insert(v.vm.clone(), line);
        }
    }
    t
}

/// Whether `vm` has a failure record of the artifact in the store.
fn recorded_failure(view: &GroupView, spec: &Spec, vm: &str) -> bool {
    view.failures
        .get(&spec.artifact)
        .is_some_and(|vms| vms.iter().any(|v| v == vm))
}

/// Polls the group until the artifact runs on every live VM of it that
/// takes the kind; prints the group's table on `out` when it ends.
pub fn wait(
    store: &Store,
    group: &str,
    spec: &Spec,
    progress: &Progress,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + spec.timeout;
    progress.line(format_args!(
        "waiting up to {} for every live VM of group {group} in {} to run {} ({})",
        humantime::format_duration(spec.timeout),
        store.label(),
        spec.artifact,
        spec.components.join(", ")
    ));
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    let mut last_view: Option<GroupView> = None;
    let mut unreadable = String::new();
    let mut settled_polls = 0u32;
    let mut still = String::new();
    loop {
        match view::read(store, group, FALLBACK_PERIOD) {
            Err(e) => {
                let why = format!("cannot read group {group} in the store: {e}");
                if why != unreadable {
                    progress.line(format_args!("{why}"));
                }
                still.clone_from(&why);
                unreadable = why;
                settled_polls = 0;
            }
            Ok(view) => {
                unreadable.clear();
                if let Some(halt) = view.halt_of(&spec.artifact) {
                    let summary = view::terminal(&halt.summary());
                    print_table(out, &view)?;
                    return Err(Failure::new(
                        exit_codes::ROLLOUT_HALTED,
                        anyhow!(
                            "the rollout of {} in group {group} halted: {summary}; no VM of the \
                             group tries it any more",
                            spec.artifact
                        ),
                    )
                    .into());
                }
                let t = tally(&view, spec, &mut said, progress);
                let concerned = t.done.len() + t.pending.len() + t.failed.len() + t.held.len();
                if concerned == 0 {
                    still = format!(
                        "no live VM of group {group} reports any of {}",
                        spec.components.join(", ")
                    );
                    if said.get("") != Some(&still) {
                        progress.line(format_args!("{still}"));
                        said.insert(String::new(), still.clone());
                    }
                    settled_polls = 0;
                } else if t.pending.is_empty() {
                    if t.failed.is_empty() && t.held.is_empty() {
                        print_table(out, &view)?;
                        progress.line(format_args!(
                            "{} runs on every live VM of group {group} that takes it ({})",
                            spec.artifact,
                            t.done.join(", ")
                        ));
                        return Ok(());
                    }
                    settled_polls += 1;
                    if settled_polls >= 2 {
                        print_table(out, &view)?;
                        return Err(settled(group, spec, &t));
                    }
                } else {
                    settled_polls = 0;
                    still = t.pending.join("; ");
                }
                last_view = Some(view);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            if let Some(view) = &last_view {
                print_table(out, view)?;
            }
            let mut what = vec![still.clone()];
            if let Some(v) = &last_view {
                let t = tally(v, spec, &mut said, progress);
                what.extend(t.failed.iter().map(|f| format!("failed on {f}")));
                what.extend(t.held.iter().map(|h| format!("held on {h}")));
            }
            what.retain(|w| !w.is_empty());
            return Err(Failure::new(
                exit_codes::WAIT_TIMED_OUT,
                anyhow!(
                    "{} did not run on every live VM of group {group} within {}; {}",
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

/// The ending of a group where every VM has, failed or holds the artifact.
fn settled(group: &str, spec: &Spec, t: &Tally) -> anyhow::Error {
    let ran = if t.done.is_empty() {
        "it runs on no VM".to_string()
    } else {
        format!("it runs on {}", t.done.join(", "))
    };
    if t.failed.is_empty() {
        Failure::new(
            exit_codes::WAIT_HELD,
            anyhow!(
                "{} will not deploy by itself on some VMs of group {group}: {} ({ran}; switcher \
                 unpin / unfreeze on the VM lifts it)",
                spec.artifact,
                t.held.join("; ")
            ),
        )
        .into()
    } else {
        let mut words = t.failed.join("; ");
        if !t.held.is_empty() {
            words.push_str(&format!("; held: {}", t.held.join("; ")));
        }
        Failure::new(
            exit_codes::DEPLOY_FAILED,
            anyhow!(
                "{} failed on some VMs of group {group} (the rollout did not halt: fewer than \
                 [fleet] max_failures): {words} ({ran})",
                spec.artifact
            ),
        )
        .into()
    }
}

fn print_table(out: &mut dyn Write, view: &GroupView) -> anyhow::Result<()> {
    out.write_all(view::render_table(view, &view::terminal).as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet::report::VmComponent;
    use serde_json::json;

    const OURS: &str = "full_20261126T235012Z_1.4.2_master.tar.zst";
    const OLD: &str = "full_20261125T000000Z_1.4.1_master.tar.zst";
    const LATER: &str = "frontend_20261127T000000Z_1.4.3_master.tar.zst";

    fn spec() -> Spec {
        Spec {
            artifact: OURS.into(),
            components: vec!["backend".into(), "frontend".into()],
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
        }
    }

    fn report(components: &[(&str, Option<&str>, Option<&str>)]) -> VmReport {
        VmReport {
            schema: 1,
            vm: "vm-1".into(),
            group: "g".into(),
            period_seconds: 60,
            components: components
                .iter()
                .map(|(name, running, last)| {
                    (
                        name.to_string(),
                        VmComponent {
                            running: running.map(str::to_string),
                            last: last.map(str::to_string),
                            status: "UP".into(),
                            sync: "in-sync".into(),
                            reason: None,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_vm_has_it_when_every_component_it_carries_runs_it_or_later() {
        let r = report(&[
            ("backend", Some(OURS), Some(OURS)),
            ("frontend", Some(OURS), Some(OURS)),
        ]);
        assert_eq!(judge_vm(&r, &spec()), VmVerdict::Done(vec![]));
        // Only the backend on this VM: that is all it takes.
        let r = report(&[("backend", Some(OURS), Some(OURS))]);
        assert_eq!(judge_vm(&r, &spec()), VmVerdict::Done(vec![]));
        // A later frontend runs: only the backend was deployed.
        let r = report(&[
            ("backend", Some(OURS), Some(OURS)),
            ("frontend", Some(LATER), Some(LATER)),
        ]);
        assert!(matches!(judge_vm(&r, &spec()), VmVerdict::Done(v) if v.len() == 1));
        // Listed as Last without running it: not yet.
        let r = report(&[
            ("backend", Some(OURS), Some(OURS)),
            ("frontend", Some(OLD), Some(OURS)),
        ]);
        assert_eq!(
            judge_vm(&r, &spec()),
            VmVerdict::Pending(format!("frontend runs {OLD}"))
        );
        let r = report(&[("backend", None, None)]);
        assert_eq!(
            judge_vm(&r, &spec()),
            VmVerdict::Pending("backend runs nothing (not collected yet)".into())
        );
        // A VM of other components is not waited for.
        let r = report(&[("worker", Some(OLD), None)]);
        assert_eq!(judge_vm(&r, &spec()), VmVerdict::NotConcerned);
    }

    #[test]
    fn failures_and_holds_come_from_the_vms_page() {
        let mut r = report(&[("backend", Some(OLD), Some(OURS))]);
        r.page = json!({"schema": 2, "components": {"backend": {"running": {"artifact": OLD},
            "last": {"artifact": OURS},
            "last_failure": {"artifact": OURS, "step": "verify", "reason": "health 500"}}}});
        assert_eq!(
            judge_vm(&r, &spec()),
            VmVerdict::Failed(
                "the switcher marked it failed (backend, step \"verify\"): health 500".into()
            )
        );
        let hold = json!({"who": "alice", "since": "2026-11-30T09:00:00Z", "reason": "demo"});
        r.page = json!({"schema": 2, "components": {"backend": {"running": {"artifact": OLD}}},
            "control": {"pins": {"backend": hold}, "freeze": null}});
        assert!(
            matches!(judge_vm(&r, &spec()), VmVerdict::Held(w) if w.starts_with("backend is pinned by alice"))
        );
        // Running it wins over an old failure record.
        let mut r = report(&[("backend", Some(OURS), Some(OURS))]);
        r.page = json!({"schema": 2, "components": {"backend": {"running": {"artifact": OURS},
            "last_failure": {"artifact": OURS, "step": "verify", "reason": "x"}}}});
        assert_eq!(judge_vm(&r, &spec()), VmVerdict::Done(vec![]));
    }
}
