//! The cron cycle: collector then switcher, over and over, as cron runs
//! them: uploads in the drop folder become running releases; a broken one
//! is rolled back and a later good one still goes through; what both prune
//! never takes an artifact the switcher still needs.

use std::time::Duration;

use cutover_tests::net::get;
use cutover_tests::{ArchiveBuilder, Run, Sandbox};

/// One cron minute: collector, then switcher. Returns the switcher's run.
fn minute(sb: &Sandbox) -> Run {
    let c = sb.run("collector", &[]);
    c.success();
    sb.run("switcher", &[])
}

#[track_caller]
fn serves(sb: &Sandbox, run: &Run, version: &str) {
    let want = format!("backend {version}");
    let mut got = String::new();
    for _ in 0..20 {
        got = match get(sb.backend_port, "/api/version") {
            Ok((_, body)) => body.trim().to_string(),
            Err(e) => format!("no answer: {e}"),
        };
        if got == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("expected {want:?}, got {got:?}\n{run}");
}

#[test]
fn collector_then_switcher_deploys_rolls_back_and_moves_on() {
    let sb = Sandbox::new();
    sb.write_demo_config("[switcher]\nverify_timeout = \"3s\"\nkeep_releases = 2\n");

    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&sb.drop_dir());
    let run = minute(&sb);
    run.success();
    serves(&sb, &run, "1.0.0");
    let pid = sb.backend_pid();

    ArchiveBuilder::demo("frontend", "1.1.0")
        .minute(2)
        .drop_into(&sb.drop_dir());
    let run = minute(&sb);
    run.success();
    assert_eq!(
        sb.backend_pid(),
        pid,
        "a frontend artifact leaves the backend alone\n{run}"
    );
    let index = std::fs::read_to_string(sb.path("current/frontend/index.html")).unwrap();
    assert!(index.contains("frontend 1.1.0"), "{index}\n{run}");

    let bad = ArchiveBuilder::demo("full", "2.0.0")
        .minute(3)
        .file("backend/BEHAVIOUR", "unhealthy");
    bad.drop_into(&sb.drop_dir());
    let run = minute(&sb);
    run.code_is(3);
    serves(&sb, &run, "1.0.0");
    // The next minute: nothing new, the failed artifact is not retried.
    let run = minute(&sb);
    run.success();
    serves(&sb, &run, "1.0.0");
    let state = sb.state_json("switcher.json");
    assert!(
        state["failed"].get(bad.name().file_name()).is_some(),
        "{state:#}"
    );

    ArchiveBuilder::demo("full", "3.0.0")
        .minute(4)
        .drop_into(&sb.drop_dir());
    let run = minute(&sb);
    run.success();
    serves(&sb, &run, "3.0.0");
    let index = std::fs::read_to_string(sb.path("current/frontend/index.html")).unwrap();
    assert!(index.contains("frontend 3.0.0"), "{index}\n{run}");

    // What runs and the rollback target are still staged after both pruned.
    let state = sb.state_json("switcher.json");
    let staging = sb.names("staging");
    for c in ["backend", "frontend"] {
        for which in ["running", "previous"] {
            if let Some(a) = state["components"][c][which]["artifact"].as_str() {
                assert!(
                    staging.contains(&a.to_string()),
                    "{c} {which} {a} missing from staging\n{run}"
                );
            }
        }
    }
    assert!(sb.names("releases/backend").len() <= 2, "{run}");
    assert!(sb.names("drop").iter().all(|n| n.starts_with('.')), "{run}");
}
