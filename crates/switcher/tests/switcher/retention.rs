//! Retention: at most keep_releases per component, never the running or
//! previous release, failed ones first; staging keeps what may be needed.

use crate::common::*;

#[test]
fn old_and_failed_releases_go_first() {
    let sb = sandbox_with("", "keep_releases = 2");
    let names: Vec<_> = (1..=3)
        .map(|i| demo("full", &format!("{i}.0.0"), i))
        .collect();
    for n in &names {
        stage(&sb, n);
        switcher(&sb, &[]).success();
    }
    // 1 is gone, 2 (previous) and 3 (running) stay.
    assert_eq!(
        sb.names("releases/backend"),
        [names[1].name().stem(), names[2].name().stem()],
        "{}",
        sb.listing()
    );
    // The staged archive of release 1 is gone too; 2 and 3 stay pinned.
    assert!(
        !sb.names("staging")
            .contains(&names[0].name().file_name().to_string()),
        "{}",
        sb.listing()
    );
    assert!(sb
        .names("staging")
        .contains(&names[1].name().file_name().to_string()));

    // A failed 4: kept until pruning, failed releases go first.
    let bad = demo("full", "4.0.0", 4).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &bad);
    switcher(&sb, &[]).code_is(3);
    assert_eq!(
        sb.names("releases/backend"),
        [names[1].name().stem(), names[2].name().stem()],
        "the failed release goes first; running and previous stay\n{}",
        sb.listing()
    );
    // The failed artifact is newer than what runs: it stays in staging.
    assert!(sb
        .names("staging")
        .contains(&bad.name().file_name().to_string()));

    let v5 = demo("full", "5.0.0", 5);
    stage(&sb, &v5);
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(
        sb.names("releases/backend"),
        [names[2].name().stem(), v5.name().stem()],
        "{run}"
    );
    assert_serves(&sb, &run, "5.0.0");
}
