//! A group as its readers see it: every VM's report, when the store last
//! saw each VM, which VMs are missing, and the rollouts that halted.
//! `switcher fleet` and `artifact-name deliver --wait --group` read it.
//!
//! [`read`] makes one LIST of `fleet/<group>/` and a GET per VM report and
//! per halt record: nothing else. Whether a VM is live is judged by the
//! store's clock only, never by another host's: a VM was last seen at the
//! Last-Modified of its status object, and it is live while that is at most
//! two of its periods (`period_seconds` of its own report) behind the store's
//! `Date`. A VM not seen for longer is missing: named, and not waited for.
//!
//! [`render_table`] is the plain-text form both binaries print; untrusted
//! text (everything a VM or CI wrote) goes through the escaper it is given.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deploy_root::time::{age, human, serde_rfc3339};
use serde::Serialize;

use crate::layout;
use crate::report::VmReport;
use crate::rollout::HaltRecord;
use crate::store::{Store, StoreError};

/// The schema of the view's JSON (`switcher fleet --json`, fleet.json).
pub const SCHEMA: u32 = 1;

/// How many periods a VM may go unseen before it is missing.
pub const MISSING_AFTER_PERIODS: u32 = 2;

/// A group, as of the store's clock.
#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The group's name.
    pub group: String,
    /// The store, `s3://bucket/prefix`.
    pub store: String,
    /// The store's clock when the view was read (the `Date` of its last
    /// answer): every age and liveness is measured against it.
    #[serde(with = "serde_rfc3339")]
    pub now: DateTime<Utc>,
    /// Every VM with a status object, by id.
    pub vms: Vec<VmView>,
    /// The halted rollouts, by artifact.
    pub halted: Vec<Halt>,
    /// Per artifact, the VMs that recorded a failed deploy of it (from the
    /// keys of `failures/`; the records themselves are not read).
    pub failures: BTreeMap<String, Vec<String>>,
}

/// One VM of the group.
#[derive(Clone, Debug, Serialize)]
pub struct VmView {
    /// Its id (from the key of its status object).
    pub vm: String,
    /// The store's Last-Modified of its status object.
    #[serde(with = "serde_rfc3339")]
    pub last_seen: DateTime<Utc>,
    /// The period it passes at: its report's, else the reader's fallback.
    pub period_seconds: u64,
    /// Seen within [`MISSING_AFTER_PERIODS`] periods of the store's now.
    pub live: bool,
    /// Its report; None when it cannot be read (see `error`).
    pub report: Option<VmReport>,
    /// Why the report cannot be read, if it cannot.
    pub error: Option<String>,
}

/// A halted rollout: `halted/<artifact>.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Halt {
    /// The artifact no VM of the group tries any more.
    pub artifact: String,
    /// When the store wrote the record.
    #[serde(with = "serde_rfc3339")]
    pub written: DateTime<Utc>,
    /// The record; None when it cannot be read (see `error`).
    pub record: Option<HaltRecord>,
    /// Why the record cannot be read, if it cannot.
    pub error: Option<String>,
}

impl Halt {
    /// Where and why, in words: the record's summary, or why it is unreadable.
    pub fn summary(&self) -> String {
        match (&self.record, &self.error) {
            (Some(r), _) => r.summary(),
            (None, Some(e)) => format!("halted (the record cannot be read: {e})"),
            (None, None) => "halted".into(),
        }
    }
}

impl GroupView {
    /// The VMs seen recently.
    pub fn live(&self) -> impl Iterator<Item = &VmView> {
        self.vms.iter().filter(|v| v.live)
    }

    /// The VMs not seen for [`MISSING_AFTER_PERIODS`] periods.
    pub fn missing(&self) -> impl Iterator<Item = &VmView> {
        self.vms.iter().filter(|v| !v.live)
    }

    /// The halt of `artifact`'s rollout, if it halted.
    pub fn halt_of(&self, artifact: &str) -> Option<&Halt> {
        self.halted.iter().find(|h| h.artifact == artifact)
    }

    /// The artifacts some VMs failed without halting the rollout (fewer
    /// than `max_failures`), with those VMs.
    pub fn failed_not_halted(&self) -> Vec<(&String, &Vec<String>)> {
        self.failures
            .iter()
            .filter(|(a, _)| self.halt_of(a).is_none())
            .collect()
    }
}

/// Whether a VM last seen at `last_seen`, passing every `period`, is live at
/// the store's `now`: seen within [`MISSING_AFTER_PERIODS`] periods.
pub fn is_live(last_seen: DateTime<Utc>, period: Duration, now: DateTime<Utc>) -> bool {
    let limit = period.saturating_mul(MISSING_AFTER_PERIODS);
    let limit = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(last_seen) <= limit
}

/// The period a report states, else `fallback` (a report of 0 s, or none).
pub fn period_of(report: Option<&VmReport>, fallback: Duration) -> Duration {
    match report.map(|r| r.period_seconds) {
        Some(s) if s > 0 => Duration::from_secs(s),
        _ => fallback,
    }
}

/// Builds a VM's view from what was read (no I/O; `now` is the store's).
pub fn vm_view(
    vm: &str,
    read: Result<VmReport, String>,
    last_seen: DateTime<Utc>,
    fallback_period: Duration,
    now: DateTime<Utc>,
) -> VmView {
    let (report, error) = match read {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let period = period_of(report.as_ref(), fallback_period);
    VmView {
        vm: vm.to_string(),
        last_seen,
        period_seconds: period.as_secs(),
        live: is_live(last_seen, period, now),
        report,
        error,
    }
}

/// Reads `group` from the store: one LIST, a GET per VM report and per halt
/// record. `fallback_period` stands in for the period of a report that does
/// not say (or cannot be read).
pub fn read(
    store: &Store,
    group: &str,
    fallback_period: Duration,
) -> Result<GroupView, StoreError> {
    // The clock must be this read's, not an older answer's.
    store.forget_date();
    let listed = store.list(&layout::group(group))?;
    let halted_dir = layout::halted_dir(group);
    let failures_dir = format!("{}failures/", layout::group(group));
    let mut statuses = Vec::new();
    let mut halts = Vec::new();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in &listed {
        if let Some(vm) = layout::vm_of_status(group, &object.key) {
            statuses.push((vm.to_string(), object.key.clone()));
        } else if let Some(artifact) = object
            .key
            .strip_prefix(&halted_dir)
            .and_then(|rest| rest.strip_suffix(".json"))
            .filter(|a| !a.contains('/'))
        {
            halts.push((artifact.to_string(), object.key.clone()));
        } else if let Some((artifact, vm)) = object
            .key
            .strip_prefix(&failures_dir)
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(a, rest)| Some((a, rest.strip_suffix(".json")?)))
            .filter(|(_, vm)| !vm.contains('/'))
        {
            failures
                .entry(artifact.to_string())
                .or_default()
                .push(vm.to_string());
        }
    }
    let mut read_vms = Vec::new();
    for (vm, key) in statuses {
        // Gone between the LIST and the GET: not a VM of the group now.
        let Some((bytes, meta)) = store.get(&key)? else {
            continue;
        };
        read_vms.push((vm, VmReport::parse(&bytes), meta.last_modified));
    }
    let mut halted = Vec::new();
    for (artifact, key) in halts {
        let Some((bytes, meta)) = store.get(&key)? else {
            continue;
        };
        let (record, error) = match serde_json::from_slice::<HaltRecord>(&bytes) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("expected a halt record: {e}"))),
        };
        halted.push(Halt {
            artifact,
            written: meta.last_modified,
            record,
            error,
        });
    }
    let now = match store.last_date() {
        Some(d) => d,
        None => store.now(&layout::group(group))?,
    };
    let mut vms: Vec<VmView> = read_vms
        .into_iter()
        .map(|(vm, report, seen)| vm_view(&vm, report, seen, fallback_period, now))
        .collect();
    vms.sort_by(|a, b| a.vm.cmp(&b.vm));
    halted.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    for vms in failures.values_mut() {
        vms.sort();
    }
    Ok(GroupView {
        schema: SCHEMA,
        group: group.to_string(),
        store: store.label().to_string(),
        now,
        vms,
        halted,
        failures,
    })
}

/// "2026-11-26 23:50:12 UTC (12 s ago)", the age by the store's clock.
pub fn seen(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", human(t), age(t, now))
}

/// Makes text safe for a terminal or a CI log: control characters
/// (escape sequences, carriage returns, newlines) and the Unicode
/// bidirectional controls become visible `[U+001B]`, as the switcher's
/// `status::escape::terminal` shows them. For a binary that has no escaper
/// of its own (the switcher passes its own).
pub fn terminal(text: &str) -> String {
    text.chars()
        .map(|c| {
            let hidden = c.is_control()
                || matches!(c,
                    '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if hidden {
                format!("[U+{:04X}]", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The group as a plain-text table, one row per VM and component (VM,
/// COMPONENT, RUNNING, LAST, STATUS, SYNC, LAST SEEN), then the missing
/// VMs, the halted rollouts, the failures and each VM's notes. `esc`
/// makes untrusted text safe to print.
pub fn render_table(view: &GroupView, esc: &dyn Fn(&str) -> String) -> String {
    let now = view.now;
    let mut out = String::new();
    let live = view.live().count();
    let _ = writeln!(
        out,
        "Group {} in {}, by the store's clock {}: {} VM{}, {live} live",
        esc(&view.group),
        esc(&view.store),
        human(now),
        view.vms.len(),
        if view.vms.len() == 1 { "" } else { "s" },
    );
    let mut rows: Vec<[String; 7]> = vec![[
        "VM".into(),
        "COMPONENT".into(),
        "RUNNING".into(),
        "LAST".into(),
        "STATUS".into(),
        "SYNC".into(),
        "LAST SEEN".into(),
    ]];
    for v in &view.vms {
        let vm = if v.live {
            esc(&v.vm)
        } else {
            format!("{} (missing)", esc(&v.vm))
        };
        let last_seen = seen(v.last_seen, now);
        let Some(report) = &v.report else {
            rows.push([
                vm,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!(
                    "report unreadable: {}",
                    esc(v.error.as_deref().unwrap_or("?"))
                ),
                last_seen,
            ]);
            continue;
        };
        if report.components.is_empty() {
            rows.push([
                vm,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "no components".into(),
                last_seen,
            ]);
            continue;
        }
        for (i, (name, c)) in report.components.iter().enumerate() {
            let running = c.running.as_deref().map_or("-".into(), esc);
            let last = match (&c.last, &c.running) {
                (Some(l), Some(r)) if l == r => "(same)".into(),
                (Some(l), _) => esc(l),
                (None, _) => "-".into(),
            };
            let sync = match &c.reason {
                Some(r) if !r.is_empty() => format!("{}: {}", esc(&c.sync), esc(r)),
                _ => esc(&c.sync),
            };
            rows.push([
                vm.clone(),
                esc(name),
                running,
                last,
                esc(&c.status),
                sync,
                if i == 0 {
                    last_seen.clone()
                } else {
                    String::new()
                },
            ]);
        }
    }
    if view.vms.is_empty() {
        let _ = writeln!(out, "No VM of group {} has reported yet.", esc(&view.group));
    } else {
        out.push_str(&table(&rows));
    }
    let missing: Vec<&VmView> = view.missing().collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nMissing (not seen for {MISSING_AFTER_PERIODS} periods, not waited for):"
        );
        for v in missing {
            let _ = writeln!(
                out,
                "  {}: last seen {}, passes every {} s",
                esc(&v.vm),
                seen(v.last_seen, now),
                v.period_seconds
            );
        }
    }
    if !view.halted.is_empty() {
        out.push_str("\nHalted rollouts (no VM of the group tries these any more):\n");
        for h in &view.halted {
            let _ = writeln!(
                out,
                "  {}: {}, recorded {}",
                esc(&h.artifact),
                esc(&h.summary()),
                seen(h.written, now)
            );
        }
    }
    let failed = view.failed_not_halted();
    if !failed.is_empty() {
        out.push_str("\nFailed on some VMs (the rollout goes on):\n");
        for (artifact, vms) in failed {
            let vms: Vec<String> = vms.iter().map(|v| esc(v)).collect();
            let _ = writeln!(out, "  {}: {}", esc(artifact), vms.join(", "));
        }
    }
    let mut notes = Vec::new();
    for v in &view.vms {
        let Some(r) = &v.report else { continue };
        if let Some(s) = &r.switching {
            notes.push(format!("  {}: switching to {}", esc(&v.vm), esc(s)));
        }
        if let Some(s) = &r.rollout {
            notes.push(format!("  {}: {}", esc(&v.vm), esc(s)));
        }
        for p in &r.problems {
            notes.push(format!("  {}: problem: {}", esc(&v.vm), esc(p)));
        }
    }
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// Columns padded to their widest cell, two spaces apart.
fn table(rows: &[[String; 7]]) -> String {
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::VmComponent;
    use crate::rollout::FailureRecord;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn report(vm: &str, period: u64, running: &str, last: &str) -> VmReport {
        let mut components = BTreeMap::new();
        components.insert(
            "backend".to_string(),
            VmComponent {
                running: Some(running.into()),
                last: Some(last.into()),
                status: "UP".into(),
                sync: if running == last {
                    "in-sync".into()
                } else {
                    "out-of-sync".into()
                },
                reason: None,
            },
        );
        VmReport {
            schema: 1,
            vm: vm.into(),
            group: "g".into(),
            written_at: "2026-11-26T23:50:00Z".into(),
            period_seconds: period,
            components,
            ..Default::default()
        }
    }

    #[test]
    fn live_within_two_periods_by_the_stores_clock() {
        let now = at("2026-11-26T23:50:00Z");
        let p = Duration::from_secs(60);
        assert!(is_live(at("2026-11-26T23:48:00Z"), p, now));
        assert!(!is_live(at("2026-11-26T23:47:59Z"), p, now));
        // Seen "after" now (a Date a second behind Last-Modified): live.
        assert!(is_live(at("2026-11-26T23:50:01Z"), p, now));
        // A 1 s period is stale after 2 s.
        let one = Duration::from_secs(1);
        assert!(is_live(at("2026-11-26T23:49:58Z"), one, now));
        assert!(!is_live(at("2026-11-26T23:49:57Z"), one, now));
    }

    #[test]
    fn the_reports_period_wins_over_the_fallback() {
        let now = at("2026-11-26T23:50:00Z");
        let seen = at("2026-11-26T23:45:00Z");
        let fallback = Duration::from_secs(60);
        let v = vm_view("a", Ok(report("a", 600, "x", "x")), seen, fallback, now);
        assert!(v.live && v.period_seconds == 600);
        let v = vm_view("b", Ok(report("b", 0, "x", "x")), seen, fallback, now);
        assert!(!v.live && v.period_seconds == 60);
        let v = vm_view("c", Err("expected JSON".into()), seen, fallback, now);
        assert!(!v.live && v.error.is_some() && v.report.is_none());
    }

    #[test]
    fn the_table_names_missing_vms_halts_and_escapes() {
        let now = at("2026-11-26T23:50:00Z");
        let a = "full_20261126T234000Z_1.4.2_master.tar.zst";
        let b = "full_20261126T234500Z_1.4.3_x\u{1b}[31m.tar.zst";
        let fallback = Duration::from_secs(60);
        let view = GroupView {
            schema: SCHEMA,
            group: "staging".into(),
            store: "s3://b/p".into(),
            now,
            vms: vec![
                vm_view(
                    "vm-1",
                    Ok(report("vm-1", 60, a, a)),
                    at("2026-11-26T23:49:48Z"),
                    fallback,
                    now,
                ),
                vm_view(
                    "vm-2",
                    Ok(report("vm-2", 60, a, b)),
                    at("2026-11-26T23:40:00Z"),
                    fallback,
                    now,
                ),
            ],
            halted: vec![Halt {
                artifact: b.into(),
                written: at("2026-11-26T23:46:00Z"),
                record: Some(HaltRecord {
                    artifact: b.into(),
                    max_failures: 1,
                    failures: vec![FailureRecord {
                        vm: "vm-2".into(),
                        artifact: b.into(),
                        at: "2026-11-26T23:45:30Z".into(),
                        step: "verify".into(),
                        reason: "health check answered 500".into(),
                        rolled_back: true,
                    }],
                    at: "2026-11-26T23:45:31Z".into(),
                }),
                error: None,
            }],
            failures: BTreeMap::from([(b.to_string(), vec!["vm-2".to_string()])]),
        };
        let text = render_table(&view, &|s| terminal(s));
        assert!(text.contains("2 VMs, 1 live"), "{text}");
        assert!(
            text.contains("2026-11-26 23:49:48 UTC (12 s ago)"),
            "{text}"
        );
        assert!(text.contains("vm-2 (missing)"), "{text}");
        assert!(
            text.contains("vm-2: last seen 2026-11-26 23:40:00 UTC (10 min ago)"),
            "{text}"
        );
        assert!(
            text.contains("vm-2 (verify: health check answered 500)"),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}') && text.contains("[U+001B]"),
            "{text}"
        );
        // A failure of a halted rollout is told once, under the halt.
        assert!(!text.contains("the rollout goes on"), "{text}");
        let header = text.lines().nth(1).unwrap();
        assert!(
            header.starts_with("VM ") && header.ends_with("LAST SEEN"),
            "{text}"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["vms"][1]["live"], false);
        assert_eq!(json["now"], "2026-11-26T23:50:00Z");
    }
}
