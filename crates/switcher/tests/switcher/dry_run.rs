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
