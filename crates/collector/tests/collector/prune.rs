//! Pruning keeps staging and quarantine within their limits, and never
//! prunes what the switcher runs, may roll back to, or may be about to
//! deploy.

use std::collections::BTreeMap;

use chrono::Utc;
use cutover_tests::{ArchiveBuilder, Sandbox};
use deploy_root::state::{self, ArtifactInfo, ComponentState, RunningRelease, SwitcherState};

use crate::support::{artifact, collect_ok};

fn release(a: &ArchiveBuilder) -> RunningRelease {
    RunningRelease {
        info: ArtifactInfo::from(&a.name()),
        release: a.name().stem().to_string(),
        since: Utc::now(),
    }
}

/// Writes state/switcher.json: both components run `running`, with
/// `previous` as the previous good release.
fn switcher_runs(sb: &Sandbox, running: &ArchiveBuilder, previous: &ArchiveBuilder) {
    let component = ComponentState {
        running: Some(release(running)),
        previous: Some(release(previous)),
        last_failure: None,
        ..ComponentState::default()
    };
    let st = SwitcherState {
        components: BTreeMap::from([
            ("backend".to_string(), component.clone()),
            ("frontend".to_string(), component),
        ]),
        ..SwitcherState::default()
    };
    std::fs::create_dir_all(sb.path("state")).unwrap();
    state::save(&sb.path("state/switcher.json"), &st).unwrap();
}

fn staged(sb: &Sandbox) -> Vec<String> {
    sb.names("staging")
        .into_iter()
        .filter(|n| !n.ends_with(".sha256"))
        .collect()
}

fn five(sb: &Sandbox) -> Vec<ArchiveBuilder> {
    sb.write_config("[collector]\nstaging_keep = 2\n");
    (1..=5)
        .map(|i| {
            let a = artifact("full", &format!("1.0.{i}"), i);
            a.drop_into(&sb.drop_dir());
            a
        })
        .collect()
}

#[test]
fn staging_keeps_its_limit_but_never_the_pinned() {
    let sb = Sandbox::new();
    let a = five(&sb);
    // Runs the newest; the oldest is the previous good one.
    switcher_runs(&sb, &a[4], &a[0]);
    let run = collect_ok(&sb);
    let want: Vec<String> = [&a[0], &a[3], &a[4]]
        .iter()
        .map(|b| b.name().file_name().to_string())
        .collect();
    assert_eq!(staged(&sb), want, "{run}");
    // Every kept artifact still has its marker.
    assert_eq!(sb.names("staging").len(), 6, "{run}");
}

#[test]
fn staging_never_prunes_what_may_be_about_to_deploy() {
    let sb = Sandbox::new();
    let a = five(&sb);
    // Runs the third: the fourth and fifth are newer and may deploy next;
    // the third runs and the first is the previous good one.
    switcher_runs(&sb, &a[2], &a[0]);
    let run = collect_ok(&sb);
    let want: Vec<String> = [&a[0], &a[2], &a[3], &a[4]]
        .iter()
        .map(|b| b.name().file_name().to_string())
        .collect();
    assert_eq!(staged(&sb), want, "{run}");
}

#[test]
fn staging_keeps_everything_while_nothing_runs() {
    // With nothing running, every artifact is newer than what runs (the
    // switcher's view too: it would deploy the newest), so none is pruned;
    // the limit holds again once something runs.
    let sb = Sandbox::new();
    let a = five(&sb);
    let run = collect_ok(&sb);
    let want: Vec<String> = a.iter().map(|b| b.name().file_name().to_string()).collect();
    assert_eq!(staged(&sb), want, "{run}");
}

#[test]
fn unreadable_switcher_state_prunes_nothing_and_fails_the_pass() {
    let sb = Sandbox::new();
    five(&sb);
    std::fs::create_dir_all(sb.path("state")).unwrap();
    std::fs::write(sb.path("state/switcher.json"), "{ not json").unwrap();
    let run = crate::support::collect(&sb, &[]);
    run.code_is(1).stderr_has("switcher.json");
    assert_eq!(staged(&sb).len(), 5, "{run}");
}

#[test]
fn quarantine_keeps_its_limit() {
    let sb = Sandbox::new();
    sb.write_config("[collector]\nquarantine_keep = 2\n");
    for i in 0..5 {
        std::fs::write(sb.drop_dir().join(format!("junk-{i}")), b"junk").unwrap();
        std::fs::write(sb.drop_dir().join(format!("junk-{i}.sha256")), b"x").unwrap();
        collect_ok(&sb);
        // Distinct quarantine times, whatever the clock's resolution.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        sb.names("quarantine"),
        [
            "junk-3",
            "junk-3.reason",
            "junk-3.sha256",
            "junk-4",
            "junk-4.reason",
            "junk-4.sha256"
        ]
    );
}

#[test]
fn half_pruned_leftovers_are_finished() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 1);
    let b = artifact("full", "1.0.1", 2);
    let c = artifact("full", "1.0.2", 3);
    for x in [&a, &b, &c] {
        x.drop_into(&sb.drop_dir());
    }
    collect_ok(&sb);
    // A prune cut short after the marker went: the artifact is not staged
    // any more, and the next pass removes it. A marker whose artifact went
    // by hand is removed too.
    std::fs::remove_file(sb.path("staging").join(a.name().marker_name())).unwrap();
    std::fs::remove_file(sb.path("staging").join(b.name().file_name())).unwrap();
    let run = collect_ok(&sb);
    assert_eq!(
        sb.names("staging"),
        [c.name().file_name().to_string(), c.name().marker_name()],
        "{run}"
    );
}
