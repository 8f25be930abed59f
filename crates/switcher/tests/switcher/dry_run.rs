//! `--dry-run` says what it would do and changes nothing under the root.

use crate::common::*;

#[test]
fn dry_run_changes_nothing_and_explains() {
    let sb = sandbox();
    // Before anything exists: not even state/ or the lock is created.
    stage(&sb, &demo("full", "1.0.0", 1));
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has("Would deploy full_20261126T000100Z_1.0.0_master.tar.gz")
        .stdout_has("start-stop-daemon --start")
        .stdout_has("flip ");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");

    switcher(&sb, &[]).success();
    stage(
        &sb,
        &demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit"),
    );
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has("backend: runs full_20261126T000100Z_1.0.0_master.tar.gz")
        .stdout_has("Would deploy full_20261126T000200Z_2.0.0_master.tar.gz")
        .stdout_has("stop command");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");

    switcher(&sb, &[]).code_is(3);
    let before = sb.listing();
    let run = switcher(&sb, &["--dry-run"]);
    run.success()
        .stdout_has("Passed over full_20261126T000200Z_2.0.0_master.tar.gz: it failed before")
        .stdout_has("Nothing to deploy");
    assert_eq!(before, sb.listing(), "--dry-run changed the tree\n{run}");
}
