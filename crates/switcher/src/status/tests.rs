//! Unit tests of the status: each sync state, each rule, escaping, times,
//! and the shapes of the JSON, the Prometheus text and the text table.
//! The inputs are built in memory, so each case is exact.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use deploy_root::state::{
    ArtifactInfo, CollectorState, ComponentState, Failure, HistoryEntry, LastArtifact,
    RunningRelease, StoreIntake, SwitcherState, WaitingUpload,
};
use deploy_root::Config;

use super::inputs::{Inputs, Probe};
use super::model::{Quarantined, StatusDoc, SyncState};
use super::{csp, html, json, prom, rules, text};
use crate::probe::Health;

const EVIL: &str = "x/<svg/onload=alert(1)>";

thread_local! {
    /// The instant every input is built around (each test runs on its own
    /// thread). A fixed one, so that the texts are exact; a test whose page
    /// meets a real clock (a browser's) sets it with [`set_now`].
    static NOW: Cell<DateTime<Utc>> = Cell::new(
        Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
            .single()
            .expect("valid time"),
    );
}

fn now() -> DateTime<Utc> {
    NOW.with(Cell::get)
}

/// Builds this thread's inputs around `t` from here on.
fn set_now(t: DateTime<Utc>) {
    NOW.with(|n| n.set(t));
}

/// The real clock, to the second (as the page writes its times).
fn real_now() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::seconds(1))
        .expect("a time to the second")
}

const CONFIG: &str = r#"
root = "/srv/cutover"
[kinds]
full = ["backend", "frontend"]
frontend = ["frontend"]
[components.backend]
port = 8080
health_url = "http://127.0.0.1:8080/api/health"
[components.frontend]
port = 80
[status]
out_of_sync_after = "10m"
period = "60s"
"#;

fn config_with(extra: &str) -> Config {
    Config::parse(
        Path::new("/etc/cutover/cutover.toml"),
        &format!("{CONFIG}{extra}"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn config() -> Config {
    config_with("")
}

fn info(kind: &str, version: &str, branch: &str, built_min_ago: i64) -> ArtifactInfo {
    let build_time = now() - Duration::minutes(built_min_ago);
    ArtifactInfo {
        artifact: format!(
            "{kind}_{}_{version}_{}.tar.gz",
            build_time.format("%Y%m%dT%H%M%SZ"),
            branch.replace('/', "~")
        ),
        kind: kind.into(),
        version: version.into(),
        branch: branch.into(),
        build_time,
    }
}

fn last(i: &ArtifactInfo, collected_min_ago: i64) -> LastArtifact {
    LastArtifact {
        info: i.clone(),
        size: 1234,
        collected_at: now() - Duration::minutes(collected_min_ago),
    }
}

fn running(i: &ArtifactInfo, since_min_ago: i64) -> RunningRelease {
    RunningRelease {
        info: i.clone(),
        release: i.artifact.trim_end_matches(".tar.gz").into(),
        since: now() - Duration::minutes(since_min_ago),
    }
}

fn up(healthy: bool) -> Probe {
    Probe {
        listening: true,
        health: Some(if healthy {
            Health::Healthy(200)
        } else {
            Health::Unhealthy(500)
        }),
        checked_at: now(),
    }
}

/// Everything in sync and running: v1 of both components, fresh runs.
fn healthy_inputs() -> Inputs {
    let v1 = info("full", "1.0", "master", 30);
    let mut collector = CollectorState {
        schema: 1,
        last_run: Some(now() - Duration::seconds(30)),
        ..Default::default()
    };
    let mut switcher = SwitcherState {
        schema: 1,
        last_run: Some(now() - Duration::seconds(20)),
        last_pass_ms: Some(1500),
        ..Default::default()
    };
    for c in ["backend", "frontend"] {
        collector.last.insert(c.into(), last(&v1, 25));
        switcher.components.insert(
            c.into(),
            ComponentState {
                running: Some(running(&v1, 24)),
                ..Default::default()
            },
        );
    }
    let mut probes = BTreeMap::new();
    probes.insert("backend".to_string(), up(true));
    probes.insert(
        "frontend".to_string(),
        Probe {
            listening: true,
            health: None,
            checked_at: now(),
        },
    );
    Inputs {
        collector: Ok(collector),
        switcher: Ok(switcher),
        journal_since: None,
        history: Vec::new(),
        history_errors: Vec::new(),
        quarantined: Vec::new(),
        quarantine_error: None,
        probes,
        control: Ok(Default::default()),
    }
}

fn doc(inputs: &Inputs) -> StatusDoc {
    rules::document(&config(), inputs, now())
}

fn page(doc: &StatusDoc) -> String {
    html::render(doc, super::stale_after(&config()))
}

fn rules_of(doc: &StatusDoc) -> Vec<String> {
    doc.all_problems()
        .iter()
        .map(|(c, p)| format!("{}:{}", c.unwrap_or("-"), p.rule))
        .collect()
}

fn collector_mut(inputs: &mut Inputs) -> &mut CollectorState {
    inputs.collector.as_mut().expect("collector state")
}

fn switcher_mut(inputs: &mut Inputs) -> &mut SwitcherState {
    inputs.switcher.as_mut().expect("switcher state")
}

/// v2 (`full`) collected `min_ago` minutes ago while v1 runs.
fn with_new_last(inputs: &mut Inputs, min_ago: i64) -> ArtifactInfo {
    let v2 = info("full", "2.0", "master", min_ago + 5);
    for c in ["backend", "frontend"] {
        collector_mut(inputs)
            .last
            .insert(c.into(), last(&v2, min_ago));
    }
    v2
}

#[test]
fn in_sync_and_all_good() {
    let d = doc(&healthy_inputs());
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));
    let b = &d.components["backend"];
    assert_eq!(b.sync.state, SyncState::InSync);
    assert_eq!(b.sync.minutes, Some(24));
    assert_eq!(b.health.as_deref(), Some("healthy"));
    let page = page(&d);
    assert!(page.contains("All good"), "{page}");
}

#[test]
fn switching_while_the_journal_exists() {
    let mut i = healthy_inputs();
    with_new_last(&mut i, 1);
    i.journal_since = Some(now() - Duration::seconds(40));
    let d = doc(&i);
    assert_eq!(d.components["backend"].sync.state, SyncState::Switching);
    assert_eq!(d.components["backend"].sync.minutes, Some(0));
    assert!(page(&d).contains("switching now"));
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));

    // A journal older than out_of_sync_after: the pass was killed.
    i.journal_since = Some(now() - Duration::minutes(11));
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:switch-stuck"]);
    assert!(d.problems[0].message.contains("11 min ago"));
}

#[test]
fn out_of_sync_is_normal_for_a_few_minutes_then_a_problem() {
    let mut i = healthy_inputs();
    with_new_last(&mut i, 3);
    let d = doc(&i);
    assert_eq!(d.components["backend"].sync.state, SyncState::OutOfSync);
    assert_eq!(d.components["backend"].sync.minutes, Some(3));
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));

    let mut i = healthy_inputs();
    let v2 = with_new_last(&mut i, 42);
    i.history.push(HistoryEntry {
        at: now() - Duration::minutes(40),
        action: "deploy".into(),
        artifact: Some(v2.artifact.clone()),
        components: vec!["backend".into()],
        outcome: "skipped".into(),
        reason: Some("disk full while unpacking".into()),
        steps: Vec::new(),
        total_ms: 12,
        slot: None,
    });
    let d = doc(&i);
    assert_eq!(
        rules_of(&d),
        ["backend:out-of-sync", "frontend:out-of-sync"]
    );
    let msg = &d.components["backend"].problems[0].message;
    assert!(
        msg.contains("has not started for 42 min") && msg.contains("10 min allowed"),
        "{msg}"
    );
    assert!(msg.contains("disk full while unpacking"), "{msg}");
}

#[test]
fn a_fleet_vm_waiting_for_its_slot_says_why_and_is_no_problem_until_late() {
    let why = "waiting for one of the group staging's 1 switch slot (max_parallel = 1): vm-2 switches to full_x (slot 0, since 2026-11-26 10:00:00 UTC)";
    let mut i = healthy_inputs();
    let v2 = with_new_last(&mut i, 3);
    switcher_mut(&mut i)
        .held
        .insert(v2.artifact.clone(), why.into());
    let d = doc(&i);
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));
    let b = &d.components["backend"];
    assert_eq!(b.sync.state, SyncState::OutOfSync);
    assert_eq!(b.sync.reason.as_deref(), Some(why));
    assert!(
        page(&d).contains("waiting for one of the group"),
        "{}",
        page(&d)
    );

    // Past out_of_sync_after it is a problem, with the same reason.
    let mut i = healthy_inputs();
    let v2 = with_new_last(&mut i, 42);
    switcher_mut(&mut i)
        .held
        .insert(v2.artifact.clone(), why.into());
    let d = doc(&i);
    assert_eq!(
        rules_of(&d),
        ["backend:out-of-sync", "frontend:out-of-sync"]
    );
    assert!(d.components["backend"].problems[0]
        .message
        .contains("vm-2 switches"));

    // A halted rollout is a problem at once.
    let mut i = healthy_inputs();
    let v2 = with_new_last(&mut i, 3);
    switcher_mut(&mut i).held.insert(
        v2.artifact.clone(),
        "the group staging's rollout of it halted after 1 failed VM: vm-3 (verify: 500)".into(),
    );
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:build-held"]);
}

#[test]
fn a_branch_the_switcher_does_not_deploy_is_named_as_the_reason() {
    let mut i = healthy_inputs();
    let v2 = info("frontend", "2.0", "feature/x", 30);
    collector_mut(&mut i)
        .last
        .insert("frontend".into(), last(&v2, 25));
    let config = config_with("[switcher]\nbranches = [\"master\", \"release\"]\n");
    let d = rules::document(&config, &i, now());
    assert_eq!(rules_of(&d), ["frontend:out-of-sync"]);
    let msg = &d.components["frontend"].problems[0].message;
    assert!(
        msg.contains("has not started for 25 min")
            && msg.contains("its branch feature/x is not in switcher.branches (master, release)"),
        "{msg}"
    );
}

#[test]
fn failed_names_the_artifact_step_reason_output_and_what_runs_instead() {
    let mut i = healthy_inputs();
    let v3 = with_new_last(&mut i, 2);
    let failure = Failure {
        artifact: v3.artifact.clone(),
        component: "backend".into(),
        step: "verify".into(),
        exit_code: Some(3),
        reason: "port 8080 did not listen within 60 s".into(),
        output_tail: vec!["demo backend 2.0: this release is built to fail".into()],
        at: now() - Duration::minutes(1),
        running_instead: BTreeMap::from([("backend".to_string(), "full_v1".to_string())]),
        rollback_failed: false,
    };
    switcher_mut(&mut i)
        .failed
        .insert(v3.artifact.clone(), failure.clone());
    switcher_mut(&mut i).failures_total = 1;
    let d = doc(&i);
    let b = &d.components["backend"];
    assert_eq!(b.sync.state, SyncState::Failed);
    assert_eq!(b.last_failure.as_ref(), Some(&failure));
    // Listed once, under the component that failed.
    assert_eq!(rules_of(&d), ["backend:deploy-failed"]);
    let msg = &b.problems[0].message;
    for needle in [
        "2.0",
        "step verify",
        "exit code 3",
        "did not listen",
        "backend: full_v1",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    let page = page(&d);
    assert!(
        page.contains("built to fail") && page.contains("Running instead"),
        "{page}"
    );
    let t = text::render(&d);
    assert!(
        t.contains("| demo backend 2.0") && t.contains("failed"),
        "{t}"
    );
}

#[test]
fn unreadable_state_is_said_and_sync_is_unknown() {
    let mut i = healthy_inputs();
    i.switcher = Err("state file state/switcher.json is not valid JSON".into());
    let d = doc(&i);
    assert_eq!(d.components["backend"].sync.state, SyncState::Unknown);
    assert!(rules_of(&d).contains(&"-:state-unreadable".to_string()));
    assert_eq!(
        d.switcher.state_error.as_deref(),
        Some("state file state/switcher.json is not valid JSON")
    );
    assert!(page(&d).contains("state unreadable"));
}

#[test]
fn down_means_crashed() {
    let mut i = healthy_inputs();
    i.probes.insert(
        "backend".into(),
        Probe {
            listening: false,
            health: None,
            checked_at: now(),
        },
    );
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["backend:down"]);
    assert_eq!(
        d.components["backend"].problems[0].message,
        "the backend is not listening on port 8080: it has crashed or was stopped, and is not working"
    );
    assert!(page(&d).contains(">DOWN<"));
    assert!(prom::render(&d).contains("cutover_up{component=\"backend\"} 0\n"));
}

#[test]
fn up_but_not_healthy_is_its_own_state() {
    let mut i = healthy_inputs();
    i.probes.insert("backend".into(), up(false));
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["backend:unhealthy"]);
    let b = &d.components["backend"];
    assert_eq!(
        b.health.as_deref(),
        Some("unhealthy: http://127.0.0.1:8080/api/health answered 500, expected 2xx")
    );
    assert!(b.problems[0].message.contains("UP but not healthy"));
    assert!(page(&d).contains("UP but not healthy"));
    assert!(text::render(&d).contains("NOT healthy"));
}

#[test]
fn collector_and_switcher_that_do_not_run() {
    let mut i = healthy_inputs();
    collector_mut(&mut i).last_run = Some(now() - Duration::seconds(121));
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:collector-not-running"]);
    let msg = &d.problems[0].message;
    assert!(
        msg.starts_with(
            "the artifact receiver (collector) has not run since 2026-11-27 09:57:59 UTC (2 min ago)"
        ) && msg.contains("Last stays stale"),
        "{msg}"
    );

    // Exactly two periods is still fine; a run never recorded is not.
    let mut i = healthy_inputs();
    collector_mut(&mut i).last_run = Some(now() - Duration::seconds(120));
    switcher_mut(&mut i).last_run = None;
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:switcher-not-running"]);
    assert!(d.problems[0].message.contains("has never run"));
}

#[test]
fn a_store_the_collector_cannot_reach_is_a_top_problem_escaped() {
    let mut i = healthy_inputs();
    collector_mut(&mut i).store = Some(StoreIntake {
        url: "s3://builds/catalog".into(),
        last_ok: Some(now() - Duration::minutes(30)),
        ..StoreIntake::default()
    });
    // Reached: no problem, the Runs card says when it was last listed.
    let d = doc(&i);
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));
    assert!(page(&d).contains("store s3://builds/catalog: last listed"));
    assert_eq!(
        json(&d)
            .map(|j| j.contains("\"url\": \"s3://builds/catalog\""))
            .ok(),
        Some(true)
    );

    let store = collector_mut(&mut i).store.as_mut().expect("store");
    store.last_error = Some(format!("connection refused {EVIL}"));
    store.error_since = Some(now() - Duration::minutes(12));
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:store-unreachable"]);
    let msg = &d.problems[0].message;
    assert!(
        msg.starts_with(
            "the store s3://builds/catalog cannot be reached since 2026-11-27 09:48:00 UTC (12 min ago): connection refused"
        ),
        "{msg}"
    );
    let page = page(&d);
    assert!(page.contains("x/&lt;svg/onload=alert(1)&gt;"), "{page}");
    assert!(!page.contains(EVIL), "{page}");
}

#[test]
fn waiting_uploads_and_quarantine_are_listed_with_reasons() {
    let mut i = healthy_inputs();
    collector_mut(&mut i).waiting = vec![
        WaitingUpload {
            name: "full_x.tar.gz".into(),
            size: 10,
            modified: now() - Duration::minutes(45),
            stale: true,
            reason: "no marker full_x.tar.gz.sha256 yet".into(),
        },
        WaitingUpload {
            name: "full_y.tar.gz".into(),
            size: 10,
            modified: now() - Duration::minutes(1),
            stale: false,
            reason: "no marker yet".into(),
        },
    ];
    i.quarantined = vec![
        Quarantined {
            name: "junk.zip".into(),
            reason: Some("not an artifact name: unknown extension".into()),
            modified: Some(now() - Duration::hours(1)),
        },
        Quarantined {
            name: "old.zip".into(),
            reason: None,
            modified: Some(now() - Duration::days(3)),
        },
    ];
    let d = doc(&i);
    assert_eq!(rules_of(&d), ["-:upload-waiting", "-:quarantined"]);
    assert!(d.problems[0].message.contains("45 min ago"));
    assert!(d.problems[1].message.contains("unknown extension"));
    let page = page(&d);
    for needle in [
        "full_y.tar.gz",
        "old.zip",
        "no reason file",
        "waiting too long",
    ] {
        assert!(page.contains(needle), "page lacks {needle:?}");
    }
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let mut i = healthy_inputs();
    let evil = info("full", "6.6", EVIL, 1);
    let quoted = info("frontend", "6.7", "q/\"a'b&c\u{202E}fdp.exe", 1);
    collector_mut(&mut i)
        .last
        .insert("backend".into(), last(&evil, 1));
    collector_mut(&mut i)
        .last
        .insert("frontend".into(), last(&quoted, 1));
    let d = doc(&i);
    let page = page(&d);
    assert!(page.contains("x/&lt;svg/onload=alert(1)&gt;"), "{page}");
    assert!(
        page.contains("q/&quot;a&#39;b&amp;c[U+202E]fdp.exe"),
        "{page}"
    );
    // The only SVG is the page's own timeline.
    assert_eq!(
        page.matches("<svg").count(),
        page.matches("<svg class=\"tl").count(),
        "{page}"
    );
    assert!(!page.contains('\u{202E}'), "{page}");
    assert_eq!(page.matches("<script").count(), 1, "only our own script");
    let t = text::render(&d);
    assert!(
        t.contains(EVIL) && !t.contains('\u{202E}') && t.contains("[U+202E]"),
        "{t}"
    );
    // The JSON keeps the text as it is: it is data, and serde escapes it.
    let v: serde_json::Value = serde_json::from_str(&json(&d).expect("json")).expect("parse");
    assert_eq!(v["components"]["backend"]["last"]["branch"], EVIL);
}

#[test]
fn the_csp_names_the_hash_of_the_one_inline_script_and_style() {
    let page = page(&doc(&healthy_inputs()));
    let between = |open: &str, close: &str| -> String {
        let start = page.find(open).expect(open) + open.len();
        let end = start + page[start..].find(close).expect(close);
        page[start..end].to_string()
    };
    let script = between("<script>", "</script>");
    let style = between("<style>", "</style>");
    let meta = between("http-equiv=\"Content-Security-Policy\" content=\"", "\"");
    assert_eq!(meta, csp::policy(&script, &style).replace('\'', "&#39;"));
    assert!(meta.contains(&csp::hash_source(&script)));
    // The policy comes before anything it governs.
    assert!(page.find("Content-Security-Policy") < page.find("<style>"));
    for needle in [
        "<meta http-equiv=\"refresh\" content=\"30\">",
        "name=\"viewport\"",
        "<!doctype html>",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(
        !page.contains("http://") || !page.contains("src="),
        "nothing loads"
    );
}

#[test]
fn times_are_utc_with_age_and_a_data_utc_hook() {
    let d = doc(&healthy_inputs());
    let page = page(&d);
    assert!(page.contains(
        "<span class=\"when\" data-utc=\"2026-11-27T09:36:00Z\"><time datetime=\"2026-11-27T09:36:00Z\">2026-11-27 09:36:00 UTC</time> <span class=\"age\">(24 min ago)</span></span>"
    ), "{page}");
    assert!(page.contains(
        "id=\"generated\" data-generated=\"2026-11-27T10:00:00Z\" data-stale-after=\"120\">Generated <span class=\"when\" data-utc=\"2026-11-27T10:00:00Z\"><time datetime=\"2026-11-27T10:00:00Z\">2026-11-27 10:00:00 UTC</time></span>"
    ), "{page}");
    let t = text::render(&d);
    assert!(t.contains("2026-11-27 09:36:00 UTC (24 min ago)"), "{t}");
}

#[test]
fn json_has_the_documented_shape() {
    let mut i = healthy_inputs();
    collector_mut(&mut i).last.remove("frontend");
    let v: serde_json::Value = serde_json::from_str(&json(&doc(&i)).expect("json")).expect("parse");
    assert_eq!(v["schema"], 2);
    assert_eq!(v["generated_at"], "2026-11-27T10:00:00Z");
    let b = &v["components"]["backend"];
    for key in ["artifact", "kind", "version", "branch", "build_time"] {
        assert!(b["last"][key].is_string(), "last.{key}: {b}");
        assert!(b["running"][key].is_string(), "running.{key}: {b}");
    }
    assert_eq!(b["status"], "UP");
    assert_eq!(b["checked_at"], "2026-11-27T10:00:00Z");
    assert_eq!(b["health"], "healthy");
    assert_eq!(b["sync"]["state"], "in-sync");
    assert_eq!(b["sync"]["minutes"], 24);
    assert_eq!(b["sync"]["since"], "2026-11-27T09:36:00Z");
    assert!(b["last_failure"].is_null());
    assert!(b["problems"].as_array().is_some_and(Vec::is_empty));
    let f = &v["components"]["frontend"];
    assert!(f["last"].is_null());
    assert!(f["health"].is_null());
    assert_eq!(f["sync"]["state"], "in-sync");
    assert_eq!(v["collector"]["last_run"], "2026-11-27T09:59:30Z");
    assert_eq!(v["switcher"]["last_run"], "2026-11-27T09:59:40Z");
    for key in ["waiting", "quarantined", "history", "problems"] {
        assert!(v[key].is_array(), "{key}");
    }
}

#[test]
fn prometheus_text_is_well_formed() {
    let mut i = healthy_inputs();
    switcher_mut(&mut i).failures_total = 2;
    let out = prom::render(&doc(&i));
    let v1_build = (now() - Duration::minutes(30)).timestamp();
    for line in [
        "# TYPE cutover_up gauge".to_string(),
        "cutover_up{component=\"backend\"} 1".into(),
        "cutover_up{component=\"frontend\"} 1".into(),
        "cutover_healthy{component=\"backend\"} 1".into(),
        format!("cutover_last_build_timestamp_seconds{{component=\"backend\"}} {v1_build}"),
        format!("cutover_running_build_timestamp_seconds{{component=\"frontend\"}} {v1_build}"),
        "# TYPE cutover_deploy_failures_total counter".into(),
        "cutover_deploy_failures_total 2".into(),
        "cutover_last_pass_duration_seconds 1.5".into(),
        format!(
            "cutover_collector_last_run_timestamp_seconds {}",
            now().timestamp() - 30
        ),
        format!(
            "cutover_switcher_last_run_timestamp_seconds {}",
            now().timestamp() - 20
        ),
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    // No health URL, no healthy metric (not a made-up value).
    assert!(!out.contains("cutover_healthy{component=\"frontend\"}"));
    // Every sample has HELP and TYPE before it, and a number after it.
    let mut declared = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.push(rest.split(' ').next().unwrap_or("").to_string());
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').expect("sample");
            let name = series.split('{').next().unwrap_or("");
            assert!(declared.iter().any(|d| d == name), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
    assert!(out.ends_with('\n'));
}

#[test]
fn text_is_a_table_with_the_same_facts() {
    let mut i = healthy_inputs();
    with_new_last(&mut i, 20);
    let t = text::render(&doc(&i));
    let header = t
        .lines()
        .find(|l| l.starts_with("COMPONENT"))
        .expect("header");
    for col in ["LAST", "RUNNING", "STATUS", "HEALTH", "SYNC"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        t.lines().any(|l| l.starts_with("backend")
            && l.contains("2.0 (master)")
            && l.contains("1.0 (master)")
            && l.contains("out of sync 20 min")),
        "{t}"
    );
    assert!(t.contains("has not started for 20 min"), "{t}");
}

#[test]
fn refresh_writes_the_three_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config::parse(
        &dir.path().join("cutover.toml"),
        "root = \"root\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 1\n",
    )?;
    let layout = deploy_root::Layout::new(&config);
    // No state at all yet: the page still appears and says so.
    super::refresh(&config, &layout)?;
    for f in [super::HTML_FILE, super::JSON_FILE, super::PROM_FILE] {
        assert!(layout.state.join(f).is_file(), "{f}");
    }
    let page = std::fs::read_to_string(layout.state.join(super::HTML_FILE))?;
    assert!(page.contains("has never run"), "{page}");
    assert!(page.contains("not listening on port 1"), "{page}");
    let text = super::render_text(&config, &layout)?;
    assert!(text.contains("nothing deployed yet"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&super::render_json(&config, &layout)?)?;
    assert_eq!(json["components"]["backend"]["status"], "DOWN");
    Ok(())
}

/// A branch that would set the page's title if its script ever ran.
const TITLE_EVIL: &str = "x/<script>document.title=\"pwned\"</script>";

/// Hostile text everywhere the page shows names: branches that are markup
/// and script, a quarantined name and reason that try both.
fn hostile_inputs() -> Inputs {
    let mut i = healthy_inputs();
    let evil = info("full", "6.6", EVIL, 1);
    let titled = info("frontend", "6.7", TITLE_EVIL, 1);
    collector_mut(&mut i)
        .last
        .insert("backend".into(), last(&evil, 1));
    collector_mut(&mut i)
        .last
        .insert("frontend".into(), last(&titled, 1));
    i.quarantined.push(Quarantined {
        name: "q\u{202E}gpj.exe<img src=x onerror=alert(2)>".into(),
        reason: Some("'\"><script>document.title='pwned2'</script>".into()),
        modified: Some(now()),
    });
    i
}

#[test]
fn a_real_browser_shows_hostile_text_as_text_and_runs_only_our_script() -> anyhow::Result<()> {
    use cutover_tests::chromium;
    // The page's script compares the page's times with the browser's
    // clock: build the page around the real now, never a fixed date.
    set_now(real_now());
    let d = doc(&hostile_inputs());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("deploy-status.html");
    std::fs::write(&path, page(&d))?;
    let url = format!("file://{}", path.display());

    let dom = chromium::dump_dom(&url);
    let title = dom
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t.to_string());
    assert_eq!(
        title.as_deref(),
        Some("Deploy status: 1 problem"),
        "the page's title changed: some script ran\n{dom}"
    );
    for bad in ["<svg/", "<img", "pwned\"</script", "<script>document"] {
        assert!(!dom.contains(bad), "the DOM holds {bad:?}\n{dom}");
    }
    assert!(dom.contains("x/&lt;svg/onload=alert(1)&gt;"), "{dom}");
    assert!(
        dom.contains("x/&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;"),
        "{dom}"
    );
    assert!(
        dom.contains("[U+202E]") && !dom.contains('\u{202E}'),
        "{dom}"
    );
    // Our own script did run (its CSP hash is right): local times appear,
    // in the viewer's zone (chromium runs with TZ=Asia/Kolkata).
    assert!(
        dom.contains("class=\"local\"") && dom.contains("your time:"),
        "the page's own script did not run (CSP hash wrong?)\n{dom}"
    );
    assert!(dom.contains("GMT+5:30") || dom.contains("IST"), "{dom}");

    assert!(!dom.contains("id=\"stale\""), "{dom}");

    // A page nobody renewed for three hours says so, where JS runs: the
    // same inputs, all built and written three hours before the real now.
    set_now(real_now() - Duration::hours(3));
    let old = doc(&hostile_inputs());
    std::fs::write(&path, page(&old))?;
    let dom = chromium::dump_dom(&url);
    assert!(
        dom.contains("id=\"stale\"") && dom.contains("This page was written 180 min ago"),
        "{dom}"
    );

    // The second defence: even markup that escaping had missed could not
    // run script, because the CSP names only our own script's hash.
    let raw = page(&d).replace(
        "<h1>Deploy status</h1>",
        "<h1>Deploy status</h1><script>document.title='pwned'</script>\
         <img src=x onerror=\"document.title='pwned'\"><svg onload=\"document.title='pwned'\"></svg>",
    );
    std::fs::write(&path, raw)?;
    let dom = chromium::dump_dom(&url);
    assert!(
        dom.contains("<title>Deploy status: 1 problem</title>") && dom.contains("<svg"),
        "an injected script ran despite the CSP\n{dom}"
    );
    assert!(
        dom.contains("class=\"local\""),
        "our own script did not run\n{dom}"
    );

    let shot = chromium::output_dir().join("status-unit-hostile.png");
    chromium::screenshot(&url, &shot, 412, 1600);
    eprintln!("screenshot: {}", shot.display());
    Ok(())
}
