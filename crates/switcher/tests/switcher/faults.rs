//! Crash safety: the fault-injection build is killed (SIGKILL) at each step
//! boundary, then one normal run must leave current/ on a complete release,
//! the service up, the state readable and every staged artifact in place.

use crate::common::*;

/// (fault point, whether the v2 release is broken, the version that must
/// serve after the normal run that follows the kill).
const POINTS: &[(&str, bool, &str)] = &[
    ("after-lock", false, "2.0.0"),
    ("mid-unpack", false, "2.0.0"),
    ("after-unpack", false, "2.0.0"),
    ("after-prepare", false, "2.0.0"),
    ("after-stop", false, "2.0.0"),
    ("after-flip", false, "2.0.0"),
    ("after-start", false, "2.0.0"),
    ("after-verify", false, "2.0.0"),
    ("before-state-write", false, "2.0.0"),
    ("mid-rollback", true, "1.0.0"),
    ("before-state-write", true, "1.0.0"),
];

#[test]
fn killed_at_every_step_then_one_normal_run_repairs_everything() {
    let mut table = vec![format!(
        "{:<20} {:<8} {:<8} {:<10} {:<8} {}",
        "stop point", "v2", "killed", "next exit", "serves", "current/backend"
    )];
    for &(point, broken, want) in POINTS {
        let sb = sandbox();
        let v1 = demo("full", "1.0.0", 1);
        stage(&sb, &v1);
        switcher(&sb, &[]).success();
        let mut v2 = demo("full", "2.0.0", 2);
        if broken {
            v2 = v2.file("backend/BEHAVIOUR", "exit");
        }
        stage(&sb, &v2);
        let staged_before = sb.names("staging");

        let killed = switcher_killed_at(&sb, point);
        assert_eq!(
            killed.code(),
            -1,
            "the switcher should die at {point}\n{killed}"
        );

        let run = switcher(&sb, &[]);
        run.success();
        assert_serves(&sb, &run, want);
        let cur = current(&sb, "backend").unwrap_or_default();
        let release = sb.root.join("releases/backend").join(&cur);
        let version = std::fs::read_to_string(release.join("VERSION")).unwrap_or_default();
        assert_eq!(
            version.trim(),
            want,
            "current/backend must point to a complete release ({point})\n{run}"
        );
        assert_eq!(
            current(&sb, "frontend"),
            Some(cur.clone()),
            "a full artifact moves as one unit ({point})\n{run}"
        );
        let state = sb.state_json("switcher.json");
        assert_eq!(
            state["components"]["backend"]["running"]["version"], want,
            "({point})\n{run}"
        );
        assert_eq!(
            sb.names("staging"),
            staged_before,
            "no staged artifact may be lost ({point})\n{run}"
        );
        assert!(
            !sb.root.join("state/journal.json").exists(),
            "the journal exists only mid-pass ({point})\n{run}"
        );
        assert!(
            !sb.names("releases").iter().any(|n| n.starts_with(".tmp")),
            "({point})\n{run}"
        );
        if broken {
            assert!(
                state["failed"].get(v2.name().file_name()).is_some(),
                "({point})\n{run}"
            );
        }
        table.push(format!(
            "{:<20} {:<8} {:<8} {:<10} {:<8} {}",
            point,
            if broken { "broken" } else { "good" },
            "yes",
            run.code(),
            served(&sb).trim_start_matches("backend "),
            cur
        ));
    }
    println!("{}", table.join("\n"));
}

#[test]
fn a_deploy_interrupted_twice_is_marked_failed() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    let first = switcher_killed_at(&sb, "after-start");
    assert_eq!(first.code(), -1, "{first}");
    // The second run recovers, tries v2 again, and dies again.
    let second = switcher_killed_at(&sb, "after-start");
    assert_eq!(second.code(), -1, "{second}");
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    let state = sb.state_json("switcher.json");
    let f = &state["failed"][v2.name().file_name()];
    assert!(
        f["reason"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted twice"),
        "{state:#}\n{run}"
    );
    assert!(!sb.root.join("state/journal.json").exists(), "{run}");
}

/// Runs the fault-injection build with the journal write before `step`
/// failing as on a full disk.
fn switcher_journal_fails_at(
    sb: &cutover_tests::Sandbox,
    step: &str,
    args: &[&str],
) -> cutover_tests::Run {
    sb.run_cmd(
        std::process::Command::new(cutover_tests::bins::fault_bin("switcher"))
            .args(args)
            .env(
                "CUTOVER_FAULT_FAIL",
                format!("switcher:journal-write:{step}"),
            ),
    )
}

#[test]
fn a_journal_that_cannot_be_written_before_stop_stops_nothing_and_marks_nothing() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    let pid = sb.backend_pid();
    assert!(pid.is_some(), "{}", sb.listing());

    let run = switcher_journal_fails_at(&sb, "stop", &[]);
    assert_eq!(run.code(), 1, "an error, not a failed deploy\n{run}");
    run.stderr_has("No space left on device")
        .stderr_has("nothing was stopped");
    assert_eq!(
        sb.backend_pid(),
        pid,
        "the backend must not be restarted\n{run}"
    );
    assert_serves(&sb, &run, "1.0.0");
    let state = sb.state_json("switcher.json");
    assert!(
        state["failed"].as_object().is_some_and(|m| m.is_empty()),
        "nothing may be marked failed: {state:#}\n{run}"
    );
    assert!(!sb.root.join("state/journal.json").exists(), "{run}");
    assert!(
        !sb.names("releases/backend")
            .contains(&v2.name().stem().to_string()),
        "the prepared release goes: it holds space\n{run}"
    );
    let history = std::fs::read_to_string(sb.root.join("state/history.jsonl")).unwrap_or_default();
    assert_eq!(
        history.lines().count(),
        1,
        "only the first deploy: {history}"
    );

    // Twice more (as on a disk that stays full): still never marked.
    for _ in 0..2 {
        switcher_journal_fails_at(&sb, "stop", &[]).code_is(1);
    }
    assert_eq!(sb.backend_pid(), pid);
    // Space again: the next pass deploys it.
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");

    // `switcher rollback` alike: nothing stopped, nothing marked.
    let pid = sb.backend_pid();
    let run = switcher_journal_fails_at(&sb, "stop", &["rollback"]);
    assert_eq!(run.code(), 1, "{run}");
    run.stderr_has("nothing was stopped");
    assert_eq!(sb.backend_pid(), pid, "{run}");
    assert_serves(&sb, &run, "2.0.0");
    let state = sb.state_json("switcher.json");
    assert!(
        state["failed"].as_object().is_some_and(|m| m.is_empty()),
        "{state:#}\n{run}"
    );
    assert!(!sb.root.join("state/journal.json").exists(), "{run}");
}
