//! Two artifacts with one stem (`x.tar.gz` and `x.tgz`) share a release id,
//! `releases/<component>/x/`. Through real cron minutes (collector, then
//! switcher): a pair arriving together deploys one of them, and a twin of
//! the running release arriving later (newer by name, so the switcher
//! would pick it and fail to unpack it over what runs, pass after pass)
//! never fails a pass nor touches the running release or the one a
//! rollback returns to. The collector quarantines the twin.

use artifact_name::Ext;
use cutover_tests::{Run, Sandbox};

use super::{assert_consistent, assert_serves, cron, demo, demo_sandbox};

/// Three cron minutes: at most one failing pass, and not the last two.
#[track_caller]
fn three_minutes(sb: &Sandbox) -> Run {
    let mut codes = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let run = cron(sb);
        assert_consistent(sb, &run);
        codes.push(run.code());
        last = Some(run);
    }
    let last = last.unwrap();
    let failures = codes.iter().filter(|c| **c != 0).count();
    assert!(
        failures <= 1 && codes[1..].iter().all(|c| *c == 0),
        "switcher exit codes over three minutes: {codes:?}\n{last}"
    );
    last
}

#[test]
fn artifacts_with_one_stem_never_fail_pass_after_pass_nor_touch_what_runs() {
    let sb = demo_sandbox("", "");

    // A pair in one pass.
    let tar = demo("full", "1.0.0", 1).ext(Ext::Tar);
    let zst = demo("full", "1.0.0", 1).ext(Ext::TarZst);
    tar.drop_into(&sb.drop_dir());
    zst.drop_into(&sb.drop_dir());
    let run = three_minutes(&sb);
    assert_serves(&sb, &run, "1.0.0");
    let quarantined = sb.names("quarantine");
    assert!(
        quarantined.contains(&zst.name().file_name().to_string()),
        "the twin is quarantined: {quarantined:?}\n{run}"
    );
    let reason = std::fs::read_to_string(
        sb.path("quarantine")
            .join(format!("{}.reason", zst.name().file_name())),
    )
    .unwrap();
    assert!(reason.contains(tar.name().file_name()), "{reason}");

    // v2 deploys (v1 becomes the rollback target); then a twin of v2.
    let gz = demo("full", "2.0.0", 2).ext(Ext::TarGz);
    gz.drop_into(&sb.drop_dir());
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    let releases = cutover_tests::sandbox::listing(&sb.path("releases"));
    let tgz = demo("full", "2.0.0", 2)
        .ext(Ext::Tgz)
        .file("backend/BEHAVIOUR", "unhealthy");
    tgz.drop_into(&sb.drop_dir());
    let run = three_minutes(&sb);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    assert_eq!(
        cutover_tests::sandbox::listing(&sb.path("releases")),
        releases,
        "a release changed\n{run}"
    );
    assert!(
        sb.names("quarantine")
            .contains(&tgz.name().file_name().to_string()),
        "{run}"
    );
    let state = sb.state_json("switcher.json");
    let backend = &state["components"]["backend"];
    assert_eq!(
        backend["running"]["artifact"],
        gz.name().file_name(),
        "{state:#}"
    );
    assert_eq!(
        backend["previous"]["artifact"],
        tar.name().file_name(),
        "{state:#}"
    );
}
