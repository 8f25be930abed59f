//! One staging policy: the collector and the switcher agree on what is
//! staged and on what is newer than what runs (deploy_root::staging).

use std::os::unix::fs::symlink;

use crate::common::*;

#[test]
fn a_symlinked_marker_counts_for_neither_binary() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    let path = stage(&sb, &v1);
    // The real marker moves out of staging; a symlink to it takes its place.
    let marker = path.with_file_name(v1.name().marker_name());
    let elsewhere = sb.dir().join("marker-elsewhere");
    std::fs::rename(&marker, &elsewhere).unwrap();
    symlink(&elsewhere, &marker).unwrap();

    let dry = switcher(&sb, &["--dry-run"]);
    dry.success().stdout_has("Nothing to deploy");
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(current(&sb, "backend"), None, "it must not deploy\n{run}");

    let collected = sb.run("collector", &[]);
    collected.success();
    let last = &sb.state_json("collector.json")["last"];
    assert!(
        last.as_object().is_some_and(|m| m.is_empty()),
        "the collector must not call it Last: {last}\n{collected}"
    );
}

#[test]
fn with_nothing_running_the_collector_keeps_what_the_switcher_would_deploy() {
    let sb = sandbox();
    sb.write_config_text(
        &std::fs::read_to_string(&sb.config)
            .unwrap()
            .replace("[switcher]", "[collector]\nstaging_keep = 1\n\n[switcher]"),
    );
    let builds: Vec<_> = (1..=3)
        .map(|i| demo("full", &format!("{i}.0.0"), i))
        .collect();
    for b in &builds {
        stage(&sb, b);
    }
    let before = sb.names("staging");
    let run = sb.run("collector", &[]);
    run.success();
    // Nothing runs: every artifact is newer than what runs, as the
    // switcher sees it, so the collector prunes none of them.
    assert_eq!(sb.names("staging"), before, "{run}");
    let dry = switcher(&sb, &["--dry-run"]);
    dry.success()
        .stdout_has(&format!("Would deploy {}", builds[2].name().file_name()));
}
