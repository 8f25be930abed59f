//! Unit tests of the page at a glance (issue 15): a hand rollback said as
//! an operator's action, a failure listed once under the component that
//! failed, the summary table first, local time only where it differs, and
//! the timeline. Every instant is relative to `Utc::now()`.

use std::collections::BTreeMap;
use std::path::Path;

use artifact_name::{ArtifactName, Ext};
use chrono::{DateTime, Duration, Utc};
use deploy_root::state::{
    ArtifactInfo, CollectorState, ComponentState, Failure, HandRollback, HistoryEntry,
    LastArtifact, RunningRelease, SwitcherState,
};
use deploy_root::Config;

use super::inputs::{Inputs, Probe};
use super::model::{StatusDoc, SyncState, UpDown};
use super::timeline::EventKind;
use super::{html, json, rules, svg, text};

const CONFIG: &str = r#"
root = "/srv/cutover"
[kinds]
full = ["backend", "frontend"]
frontend = ["frontend"]
[components.backend]
port = 8080
[components.frontend]
port = 80
[status]
out_of_sync_after = "10m"
period = "60s"
"#;

/// A branch that is markup.
const EVIL: &str = "x/<svg/onload=alert(1)>";

struct World {
    now: DateTime<Utc>,
    config: Config,
    inputs: Inputs,
}

fn config() -> Config {
    Config::parse(Path::new("/etc/cutover/cutover.toml"), CONFIG).unwrap_or_else(|e| panic!("{e}"))
}

/// An artifact built `ago` before now.
fn info(
    now: DateTime<Utc>,
    kind: &str,
    version: &str,
    branch: &str,
    ago: Duration,
) -> ArtifactInfo {
    let name = ArtifactName::new(kind, now - ago, version, branch, Ext::TarGz)
        .unwrap_or_else(|e| panic!("{e}"));
    ArtifactInfo::from(&name)
}

fn running(i: &ArtifactInfo, since: DateTime<Utc>) -> RunningRelease {
    RunningRelease {
        info: i.clone(),
        release: i
            .artifact
            .strip_suffix(".tar.gz")
            .unwrap_or(&i.artifact)
            .to_string(),
        since,
    }
}

fn last(i: &ArtifactInfo, at: DateTime<Utc>) -> LastArtifact {
    LastArtifact {
        info: i.clone(),
        size: 1000,
        collected_at: at,
    }
}

fn entry(
    at: DateTime<Utc>,
    action: &str,
    artifact: &ArtifactInfo,
    components: &[&str],
    outcome: &str,
) -> HistoryEntry {
    HistoryEntry {
        at,
        action: action.into(),
        artifact: Some(artifact.artifact.clone()),
        components: components.iter().map(|c| c.to_string()).collect(),
        outcome: outcome.into(),
        reason: None,
        steps: Vec::new(),
        total_ms: 900,
        slot: None,
    }
}

/// Both components run v1 (full), deployed 3 days ago; both UP.
fn world() -> (World, ArtifactInfo) {
    let now = Utc::now();
    let v1 = info(now, "full", "1.0", "master", Duration::days(3));
    let deployed = now - Duration::days(3) + Duration::minutes(5);
    let mut collector = CollectorState {
        schema: 1,
        last_run: Some(now - Duration::seconds(20)),
        ..Default::default()
    };
    let mut switcher = SwitcherState {
        schema: 1,
        last_run: Some(now - Duration::seconds(10)),
        ..Default::default()
    };
    let mut probes = BTreeMap::new();
    for c in ["backend", "frontend"] {
        collector.last.insert(c.into(), last(&v1, deployed));
        switcher.components.insert(
            c.into(),
            ComponentState {
                running: Some(running(&v1, deployed)),
                ..Default::default()
            },
        );
        probes.insert(
            c.to_string(),
            Probe {
                listening: true,
                health: None,
                checked_at: now,
            },
        );
    }
    let inputs = Inputs {
        collector: Ok(collector),
        switcher: Ok(switcher),
        journal_since: None,
        history: vec![entry(
            deployed,
            "deploy",
            &v1,
            &["backend", "frontend"],
            "deployed",
        )],
        history_errors: Vec::new(),
        quarantined: Vec::new(),
        quarantine_error: None,
        probes,
        control: Ok(Default::default()),
    };
    (
        World {
            now,
            config: config(),
            inputs,
        },
        v1,
    )
}

impl World {
    fn switcher(&mut self) -> &mut SwitcherState {
        self.inputs
            .switcher
            .as_mut()
            .unwrap_or_else(|e| panic!("{e}"))
    }
    fn collector(&mut self) -> &mut CollectorState {
        self.inputs
            .collector
            .as_mut()
            .unwrap_or_else(|e| panic!("{e}"))
    }
    /// History is newest first.
    fn happened(&mut self, e: HistoryEntry) {
        self.inputs.history.insert(0, e);
    }
    fn doc(&self) -> StatusDoc {
        rules::document(&self.config, &self.inputs, self.now)
    }
}

fn page(d: &StatusDoc) -> String {
    html::render(d, std::time::Duration::from_secs(120))
}

fn rules_of(d: &StatusDoc) -> Vec<String> {
    d.all_problems()
        .iter()
        .map(|(c, p)| format!("{}:{}", c.unwrap_or("-"), p.rule))
        .collect()
}

/// v2 (full) deployed 2 days ago, then rolled back by hand by `by` an hour
/// ago: v1 runs again, v2 is Last.
fn rolled_back_by_hand(by: Option<&str>) -> (World, ArtifactInfo, ArtifactInfo) {
    let (mut w, v1) = world();
    let now = w.now;
    let v2 = info(now, "full", "2.0", "master", Duration::days(2));
    let deployed = now - Duration::days(2) + Duration::minutes(3);
    let back = now - Duration::hours(1);
    for c in ["backend", "frontend"] {
        w.collector().last.insert(c.into(), last(&v2, deployed));
        let cs = w.switcher().components.entry(c.into()).or_default();
        cs.running = Some(running(&v1, back));
        cs.previous = None;
    }
    let to: BTreeMap<String, String> = ["backend", "frontend"]
        .iter()
        .map(|c| (c.to_string(), running(&v1, back).release))
        .collect();
    let failure = Failure {
        artifact: v2.artifact.clone(),
        component: "backend".into(),
        step: "rollback".into(),
        exit_code: None,
        reason: "rolled back by hand with `switcher rollback`".into(),
        output_tail: Vec::new(),
        at: back,
        running_instead: to.clone(),
        rollback_failed: false,
    };
    w.switcher().failed.insert(v2.artifact.clone(), failure);
    if let Some(by) = by {
        w.switcher().rollbacks.insert(
            v2.artifact.clone(),
            HandRollback {
                artifact: v2.artifact.clone(),
                components: vec!["backend".into(), "frontend".into()],
                by: Some(by.into()),
                at: back,
                to,
            },
        );
    }
    w.happened(entry(
        deployed,
        "deploy",
        &v2,
        &["backend", "frontend"],
        "deployed",
    ));
    w.happened(entry(
        back,
        "rollback",
        &v2,
        &["backend", "frontend"],
        "rolled-back",
    ));
    (w, v1, v2)
}

#[test]
fn a_hand_rollback_is_an_operator_action_not_a_failure() {
    let (w, _v1, v2) = rolled_back_by_hand(Some("alice<b>"));
    let d = w.doc();
    for c in ["backend", "frontend"] {
        let cs = &d.components[c];
        assert_eq!(cs.sync.state, SyncState::RolledBack, "{c}");
        assert_eq!(cs.sync.since, Some(w.now - Duration::hours(1)));
        assert!(cs.failures.is_empty(), "{c}: {:?}", cs.failures);
        let r = cs.rolled_back.as_ref().expect("rolled_back");
        assert_eq!(r.by.as_deref(), Some("alice<b>"));
        // Kept for `artifact-name deliver --wait`, which reads it.
        assert_eq!(
            cs.last_failure.as_ref().map(|f| f.artifact.as_str()),
            Some(v2.artifact.as_str())
        );
    }
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));
    let page = page(&d);
    assert!(!page.contains("has not started"), "{page}");
    assert!(!page.contains("did not start"), "{page}");
    assert!(page.contains("All good"), "{page}");
    assert!(page.contains("<strong>alice&lt;b&gt;</strong> rolled the backend and the frontend back by hand from 2.0"), "{page}");
    assert!(
        page.contains("badge hand\">rolled back by hand</span>"),
        "{page}"
    );
    assert!(!page.contains("badge bad"), "nothing is red\n{page}");
    // Listed once in the notes, and on each card.
    assert_eq!(page.matches("data-rollback=").count(), 1, "{page}");
    let t = text::render(&d);
    assert!(
        t.contains("Rollback by hand: alice<b> rolled backend, frontend back from")
            && t.contains("rolled back by hand")
            && t.contains("All good"),
        "{t}"
    );
    let v: serde_json::Value = serde_json::from_str(&json(&d).expect("json")).expect("parse");
    assert_eq!(v["components"]["backend"]["sync"]["state"], "rolled-back");
    assert_eq!(v["components"]["backend"]["rolled_back"]["by"], "alice<b>");
    assert_eq!(v["schema"], 2);
}

#[test]
fn a_hand_rollback_recorded_before_who_was_says_so() {
    let (w, _, _) = rolled_back_by_hand(None);
    let d = w.doc();
    assert_eq!(d.components["backend"].sync.state, SyncState::RolledBack);
    let page = page(&d);
    assert!(
        page.contains("Someone (who was not recorded) rolled"),
        "{page}"
    );
}

/// v3 (full) failed at the backend's start 30 min ago; both went back to v1.
fn full_failed_at_backend() -> (World, ArtifactInfo) {
    let (mut w, v1) = world();
    let now = w.now;
    let v3 = info(now, "full", "3.0", EVIL, Duration::minutes(40));
    let at = now - Duration::minutes(30);
    for c in ["backend", "frontend"] {
        w.collector()
            .last
            .insert(c.into(), last(&v3, at - Duration::minutes(1)));
    }
    let failure = Failure {
        artifact: v3.artifact.clone(),
        component: "backend".into(),
        step: "start".into(),
        exit_code: Some(1),
        reason: "start-stop-daemon: <exited>".into(),
        output_tail: vec!["demo backend 3.0: built to fail".into()],
        at,
        running_instead: ["backend", "frontend"]
            .iter()
            .map(|c| (c.to_string(), running(&v1, at).release))
            .collect(),
        rollback_failed: false,
    };
    for c in ["backend", "frontend"] {
        w.switcher()
            .components
            .entry(c.into())
            .or_default()
            .last_failure = Some(failure.clone());
    }
    w.switcher().failed.insert(v3.artifact.clone(), failure);
    w.switcher().failures_total = 1;
    let mut e = entry(at, "deploy", &v3, &["backend", "frontend"], "rolled-back");
    e.reason = Some("backend start: start-stop-daemon: <exited>".into());
    w.happened(e);
    (w, v3)
}

#[test]
fn a_failure_is_listed_once_under_the_component_that_failed() {
    let (w, v3) = full_failed_at_backend();
    let d = w.doc();
    assert_eq!(rules_of(&d), ["backend:deploy-failed"]);
    let msg = &d.components["backend"].problems[0].message;
    assert!(
        msg.contains("the new version 3.0")
            && msg.contains("did not start: the backend failed at step start (exit code 1)")
            && msg.contains("the frontend went back with it"),
        "{msg}"
    );
    let b = &d.components["backend"];
    let f = &d.components["frontend"];
    assert_eq!(b.sync.state, SyncState::Failed);
    assert_eq!(f.sync.state, SyncState::Failed);
    assert_eq!(b.failures.len(), 1);
    assert!(f.failures.is_empty(), "{:?}", f.failures);
    let reason = f.sync.reason.as_deref().unwrap_or("");
    assert!(
        reason.starts_with("went back with the backend, which failed at step start"),
        "{reason}"
    );
    let page = page(&d);
    assert_eq!(
        page.matches("data-failure=").count(),
        1,
        "one failure block\n{page}"
    );
    assert_eq!(page.matches("built to fail").count(), 1, "{page}");
    assert!(page.contains("the frontend went back with it"), "{page}");
    assert!(!page.contains("the new frontend version"), "{page}");
    assert!(page.contains(&v3.artifact.replace('<', "&lt;").replace('>', "&gt;")));
    assert!(!page.contains("<svg/"), "{page}");
    let t = text::render(&d);
    assert_eq!(t.matches("  Failure  ").count(), 1, "{t}");
}

#[test]
fn a_failure_is_no_longer_listed_once_a_later_deploy_succeeds() {
    let (mut w, v3) = full_failed_at_backend();
    let now = w.now;
    let v4 = info(now, "full", "4.0", "master", Duration::minutes(20));
    let since = now - Duration::minutes(10);
    for c in ["backend", "frontend"] {
        w.collector().last.insert(c.into(), last(&v4, since));
        w.switcher().components.entry(c.into()).or_default().running = Some(running(&v4, since));
    }
    w.happened(entry(
        since,
        "deploy",
        &v4,
        &["backend", "frontend"],
        "deployed",
    ));
    let d = w.doc();
    assert!(rules_of(&d).is_empty(), "{:?}", rules_of(&d));
    for c in ["backend", "frontend"] {
        assert_eq!(d.components[c].sync.state, SyncState::InSync);
        assert!(d.components[c].failures.is_empty());
    }
    let page = page(&d);
    assert_eq!(page.matches("data-failure=").count(), 0, "{page}");
    // The timeline still shows it happened.
    let lane = &d.timeline.lanes["backend"];
    assert!(lane
        .events
        .iter()
        .any(|e| e.kind == EventKind::Failed && e.artifact.as_deref() == Some(&v3.artifact)));
    let lane = &d.timeline.lanes["frontend"];
    assert!(lane.events.iter().any(|e| e.kind == EventKind::WentBack));
}

#[test]
fn the_summary_table_comes_first_with_one_badge_each() {
    let (w, _) = full_failed_at_backend();
    let d = w.doc();
    let page = page(&d);
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("no {needle}\n{page}"))
    };
    let summary = at("id=\"summary\"");
    assert!(summary < at("id=\"problems\""));
    assert!(summary < at("id=\"timeline\""));
    assert!(summary < at("id=\"component-backend\""));
    let table = &page[summary..summary + page[summary..].find("</table>").unwrap_or(0)];
    assert!(
        table.contains(
            "<th>Component</th><th>Running</th><th>Last</th><th>Status</th><th>Sync</th>"
        ),
        "{table}"
    );
    for c in ["backend", "frontend"] {
        let row_start = table
            .find(&format!("<tr data-component=\"{c}\""))
            .unwrap_or_else(|| panic!("no row for {c}\n{table}"));
        let row = &table[row_start..row_start + table[row_start..].find("</tr>").unwrap_or(0)];
        assert_eq!(row.matches("class=\"badge").count(), 2, "{row}");
        assert!(row.contains(">UP<") && row.contains(">failed<"), "{row}");
        assert!(
            row.contains("<strong>1.0</strong>") && row.contains("<strong>3.0</strong>"),
            "{row}"
        );
        assert!(row.contains("x/&lt;svg/onload=alert(1)&gt;"), "{row}");
    }
}

#[test]
fn local_time_is_added_only_where_the_zone_differs_and_kept_on_hover() {
    let (w, _) = world();
    let page = page(&w.doc());
    let script = page
        .split_once("<script>")
        .and_then(|(_, r)| r.split_once("</script>"))
        .map(|(s, _)| s)
        .unwrap_or("");
    assert!(script.contains("getTimezoneOffset()===0"), "{script}");
    assert!(script.contains("e.title="), "{script}");
    // No "your time" in the file itself: only the script adds it.
    assert!(!page[..page.find("<script>").unwrap_or(0)].contains("your time"));
}

#[test]
fn the_timeline_shows_versions_deploys_failures_rollbacks_and_down() {
    let (mut w, _v1, v2) = rolled_back_by_hand(Some("bob"));
    let now = w.now;
    // v3 (full, from a markup branch) failed at the backend 30 min ago.
    let v3 = info(now, "full", "3.0", EVIL, Duration::minutes(40));
    let at = now - Duration::minutes(30);
    w.switcher().failed.insert(
        v3.artifact.clone(),
        Failure {
            artifact: v3.artifact.clone(),
            component: "backend".into(),
            step: "verify".into(),
            exit_code: None,
            reason: "<b>no</b>".into(),
            output_tail: Vec::new(),
            at,
            running_instead: BTreeMap::new(),
            rollback_failed: false,
        },
    );
    w.happened(entry(
        at,
        "deploy",
        &v3,
        &["backend", "frontend"],
        "rolled-back",
    ));
    // The backend is DOWN, since 10 min by the previous page.
    w.inputs.probes.insert(
        "backend".into(),
        Probe {
            listening: false,
            health: None,
            checked_at: now,
        },
    );
    let down = BTreeMap::from([("backend".to_string(), now - Duration::minutes(10))]);
    let d = rules::document_with(&w.config, &w.inputs, &down, now);
    assert_eq!(d.components["backend"].status, UpDown::Down);
    assert_eq!(
        d.components["backend"].down_since,
        Some(now - Duration::minutes(10))
    );
    let t = &d.timeline;
    assert!(t
        .from
        .is_some_and(|f| f < now - Duration::days(3) && f >= now - Duration::days(7)));
    let b = &t.lanes["backend"];
    let versions: Vec<&str> = b.runs.iter().filter_map(|r| r.version.as_deref()).collect();
    assert_eq!(versions, ["1.0", "2.0", "1.0"], "{:?}", b.runs);
    assert_eq!(b.runs.last().map(|r| r.to), Some(now));
    let kinds: Vec<EventKind> = b.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Deploy,
            EventKind::Deploy,
            EventKind::Rollback,
            EventKind::Failed
        ]
    );
    let rb = &b.events[2];
    assert_eq!(rb.by.as_deref(), Some("bob"));
    assert_eq!(rb.artifact.as_deref(), Some(v2.artifact.as_str()));
    assert_eq!(b.down.len(), 1);
    assert!(b.down[0].seen && b.down[0].from == now - Duration::minutes(10));
    let f = &t.lanes["frontend"];
    assert_eq!(f.events.last().map(|e| e.kind), Some(EventKind::WentBack));
    assert!(f.down.is_empty());

    let drawn = svg::render(t);
    assert_eq!(drawn.matches("<g class=\"tl-lane\"").count(), 2, "{drawn}");
    assert_eq!(drawn.matches("tl-mark tl-deploy").count(), 4, "{drawn}");
    assert_eq!(drawn.matches("tl-mark tl-rollback").count(), 2, "{drawn}");
    assert_eq!(drawn.matches("tl-mark tl-failed").count(), 1, "{drawn}");
    assert_eq!(drawn.matches("tl-mark tl-wentback").count(), 1, "{drawn}");
    assert_eq!(drawn.matches("class=\"tl-down\"").count(), 1, "{drawn}");
    assert!(drawn.contains("width=\"100%\""), "{drawn}");
    assert!(!drawn.contains("viewBox"), "percent positions, no scaling");
    // Text from artifacts is escaped inside the SVG too.
    assert!(
        !drawn.contains("<svg/") && !drawn.contains("<b>"),
        "{drawn}"
    );
    assert!(drawn.contains("&lt;b&gt;no&lt;/b&gt;"), "{drawn}");
    assert!(drawn.contains("x~&lt;svg~onload=alert(1)&gt;"), "{drawn}");
    // Every position is a percentage within 0..100.
    for part in drawn.split(" x=\"").skip(1) {
        let v = part.split('"').next().unwrap_or("");
        if let Some(p) = v.strip_suffix('%') {
            let p: f64 = p.parse().unwrap_or(-1.0);
            assert!((0.0..=100.0).contains(&p), "x={v}");
        }
    }
    let page = page(&d);
    assert!(page.contains("id=\"timeline\"") && page.contains(&drawn));
    // Kept to look at (target/test-output/, as the browser tests do).
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output");
    if std::fs::create_dir_all(&out).is_ok() {
        let kept = out.join("status-glance-days.html");
        if std::fs::write(&kept, &page).is_ok() {
            eprintln!("a page with a timeline of days: {}", kept.display());
        }
    }
}

#[test]
fn down_since_is_carried_from_the_previous_page() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("deploy-status.json");
    assert!(super::previous_down(&path).is_empty());
    let (mut w, _) = world();
    let now = w.now;
    w.inputs.probes.insert(
        "frontend".into(),
        Probe {
            listening: false,
            health: None,
            checked_at: now - Duration::minutes(5),
        },
    );
    let first = rules::document(&w.config, &w.inputs, now - Duration::minutes(5));
    std::fs::write(&path, json(&first)?)?;
    let down = super::previous_down(&path);
    assert_eq!(down.keys().collect::<Vec<_>>(), ["frontend"]);
    w.inputs.probes.insert(
        "frontend".into(),
        Probe {
            listening: false,
            health: None,
            checked_at: now,
        },
    );
    let second = rules::document_with(&w.config, &w.inputs, &down, now);
    let since = second.components["frontend"].down_since;
    assert_eq!(
        since.map(|t| t.timestamp()),
        Some((now - Duration::minutes(5)).timestamp())
    );
    assert_eq!(second.components["backend"].down_since, None);
    std::fs::write(&path, "{ not json")?;
    assert!(super::previous_down(&path).is_empty());
    Ok(())
}
