//! `--dry-run` says what it would do and changes nothing under the root.

use crate::common::*;

#[test]
fn dry_run_changes_nothing_and_explains() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    let v1_name = v1.name().file_name().to_string();
    // Before anything exists: not even state/ or the lock is created.
    stage(&sb, &v1);
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has(&format!("Would deploy {v1_name}"))
        .stdout_has("start-stop-daemon --start")
        .stdout_has("flip ");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");

    switcher(&sb, &[]).success();
    let v2 = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit");
    let v2_name = v2.name().file_name().to_string();
    stage(&sb, &v2);
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has(&format!("backend: runs {v1_name}"))
        .stdout_has(&format!("Would deploy {v2_name}"))
        .stdout_has("stop command");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");

    switcher(&sb, &[]).code_is(3);
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has(&format!("Passed over {v2_name}: it failed before"))
        .stdout_has("Nothing to deploy");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");
}

#[test]
fn rollback_dry_run_says_what_it_would_do_and_changes_nothing() {
    let sb = sandbox();
    // Nothing to roll back to: it says why, as the rollback would.
    let run = switcher(&sb, &["rollback", "--dry-run"]);
    run.code_is(1).stderr_has("nothing to roll back to");

    let v1 = demo("full", "1.0.0", 1);
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    stage(&sb, &v2);
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();

    let before = sb.listing();
    let run = switcher(&sb, &["rollback", "--dry-run"]);
    run.success()
        .stdout_has("Dry run: nothing is changed")
        .stdout_has(&format!(
            "Would roll back backend, frontend (from {})",
            v2.name().file_name()
        ))
        .stdout_has("run the backend stop command")
        .stdout_has(&format!("-> ../releases/backend/{}", v1.name().stem()))
        .stdout_has("run the backend start command")
        .stdout_has(&format!("mark {} failed", v2.name().file_name()));
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");
    assert_eq!(sb.backend_pid(), pid, "{run}");
    assert_serves(&sb, &run, "2.0.0");
    // The flag goes before the command too, and with one component.
    let run = switcher(&sb, &["--dry-run", "rollback", "backend"]);
    run.success().stdout_has("Would roll back backend (from ");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");

    // The commands that change nothing take the flag and change nothing.
    for args in [["releases", "--dry-run"], ["status", "--dry-run"]] {
        let run = switcher(&sb, &args);
        run.success();
        assert_eq!(before, sb.listing(), "{args:?} changed the tree\n{run}");
    }
    let run = switcher(&sb, &["check", "--dry-run"]);
    assert_ne!(run.code(), 2, "--dry-run is accepted by check\n{run}");

    // The real rollback still works.
    let run = switcher(&sb, &["rollback"]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
}
