//! Releases that fail after the stop are rolled back; archives that fail
//! before it never touch the running service.

use cutover_tests::{ArchiveBuilder, Sandbox};

use crate::common::*;

/// Deploys a good v1, then a v2 that misbehaves as `behaviour` says, and
/// checks the rollback, the failure record, that v2 is not retried, and
/// that a good v3 then goes through.
fn broken_release_is_rolled_back(sb: &Sandbox, behaviour: &str, reason_has: &str) {
    stage(sb, &demo("full", "1.0.0", 1));
    let run = switcher(sb, &[]);
    run.success();
    assert_serves(sb, &run, "1.0.0");

    let bad = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", behaviour);
    stage(sb, &bad);
    let run = switcher(sb, &[]);
    run.code_is(3).stderr_has("rolled back");
    assert_serves(sb, &run, "1.0.0");
    assert_eq!(
        current(sb, "backend").as_deref(),
        Some(demo("full", "1.0.0", 1).name().stem()),
        "{run}"
    );
    // A full artifact is one unit: the frontend went back too.
    assert_eq!(
        current(sb, "frontend").as_deref(),
        Some(demo("full", "1.0.0", 1).name().stem()),
        "{run}"
    );
    let state = sb.state_json("switcher.json");
    let failure = &state["failed"][bad.name().file_name()];
    assert_eq!(failure["step"], "verify", "{run}\n{state:#}");
    assert!(
        failure["reason"].as_str().unwrap().contains(reason_has),
        "reason should mention {reason_has:?}: {failure:#}"
    );
    assert_eq!(
        state["components"]["backend"]["running"]["version"],
        "1.0.0"
    );
    assert!(
        sb.path("staging").join(bad.name().file_name()).exists(),
        "the artifact stays in staging\n{run}"
    );
    let pid = sb.backend_pid();

    // Not tried again by itself.
    let run = switcher(sb, &[]);
    run.success();
    assert_eq!(
        sb.backend_pid(),
        pid,
        "a failed artifact must not be tried again\n{run}"
    );
    assert_serves(sb, &run, "1.0.0");

    // A newer good one goes through.
    stage(sb, &demo("full", "3.0.0", 3));
    let run = switcher(sb, &[]);
    run.success();
    assert_serves(sb, &run, "3.0.0");
    let history = std::fs::read_to_string(sb.root.join("state/history.jsonl")).unwrap();
    let outcomes: Vec<String> = history
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        outcomes,
        ["deployed", "rolled-back", "deployed"],
        "{history}"
    );
}

#[test]
fn a_release_that_exits_at_once_is_rolled_back() {
    broken_release_is_rolled_back(&sandbox(), "exit", "nothing listened");
}

#[test]
fn a_release_that_never_listens_is_rolled_back() {
    broken_release_is_rolled_back(&sandbox(), "no-listen", "nothing listened");
}

#[test]
fn an_unhealthy_release_is_rolled_back() {
    broken_release_is_rolled_back(&sandbox_with(HEALTH_URL, ""), "unhealthy", "answered 500");
}

/// Deploys v1, then stages `bad` and checks that the pass fails before
/// touching the running service.
fn bad_archive_leaves_the_service_alone(bad: ArchiveBuilder, truncate: bool, step: &str) {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    assert!(pid.is_some());
    let staging = sb.path("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let name = bad.name();
    let mut bytes = bad.bytes();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    }
    std::fs::write(staging.join(name.file_name()), &bytes).unwrap();
    std::fs::write(
        staging.join(name.marker_name()),
        cutover_tests::archive::marker(name.file_name(), &bytes),
    )
    .unwrap();
    let run = switcher(&sb, &[]);
    run.code_is(3).stderr_has("nothing running was touched");
    assert_eq!(
        sb.backend_pid(),
        pid,
        "the running service must not be stopped\n{run}"
    );
    assert_serves(&sb, &run, "1.0.0");
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["failed"][name.file_name()]["step"],
        step,
        "{run}\n{state:#}"
    );
    assert!(staging.join(name.file_name()).exists(), "{run}");
    assert_eq!(
        sb.names("releases/backend").len(),
        1,
        "no half-made release is left\n{run}"
    );
    assert!(
        !sb.names("releases").iter().any(|n| n.starts_with(".tmp")),
        "no temp folder is left\n{run}"
    );
    assert!(!sb.root.join("state/journal.json").exists(), "{run}");
}

#[test]
fn an_archive_without_its_backend_folder_never_stops_the_service() {
    bad_archive_leaves_the_service_alone(
        demo("full", "2.0.0", 2).without("backend"),
        false,
        "unpack",
    );
}

#[test]
fn a_truncated_archive_never_stops_the_service() {
    let big = demo("full", "2.0.0", 2).file("backend/blob", vec![7u8; 200_000]);
    bad_archive_leaves_the_service_alone(big, true, "unpack");
}

#[test]
fn an_archive_whose_digest_differs_from_its_marker_never_stops_the_service() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    let bad = demo("full", "2.0.0", 2);
    let path = stage(&sb, &bad);
    std::fs::write(&path, b"not what the marker says").unwrap();
    let run = switcher(&sb, &[]);
    run.code_is(3).stderr_has("marker says");
    assert_eq!(sb.backend_pid(), pid, "{run}");
}

#[test]
fn a_failing_prepare_never_stops_the_service() {
    let sb = sandbox_with("prepare = \"echo preparing; echo broken >&2; exit 7\"", "");
    stage(
        &sb,
        &demo("full", "1.0.0", 1).file("backend/PREPARE_OK", ""),
    );
    // v1 must pass prepare: make the command depend on the release.
    let sb_cfg = std::fs::read_to_string(&sb.config).unwrap().replace(
        "echo preparing; echo broken >&2; exit 7",
        "echo preparing; test -e PREPARE_OK || { echo broken >&2; exit 7; }",
    );
    std::fs::write(&sb.config, sb_cfg).unwrap();
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    let bad = demo("full", "2.0.0", 2);
    stage(&sb, &bad);
    let run = switcher(&sb, &[]);
    run.code_is(3);
    assert_eq!(sb.backend_pid(), pid, "{run}");
    let state = sb.state_json("switcher.json");
    let f = &state["failed"][bad.name().file_name()];
    assert_eq!(f["step"], "prepare", "{f:#}");
    assert_eq!(f["exit_code"], 7, "{f:#}");
    assert!(f["output_tail"].to_string().contains("broken"), "{f:#}");
}

#[test]
fn a_failed_first_deploy_leaves_the_component_stopped_without_a_current_link() {
    let sb = sandbox();
    let bad = demo("full", "1.0.0", 1).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &bad);
    let run = switcher(&sb, &[]);
    run.code_is(3);
    assert!(current(&sb, "backend").is_none(), "{run}");
    assert!(current(&sb, "frontend").is_none(), "{run}");
    let state = sb.state_json("switcher.json");
    assert!(
        state["components"]["backend"]["running"].is_null(),
        "{state:#}"
    );
    assert_eq!(
        state["failed"][bad.name().file_name()]["running_instead"]["backend"],
        "nothing (stopped)",
        "{state:#}"
    );
    stage(&sb, &demo("full", "2.0.0", 2));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
}

#[test]
fn a_command_that_hangs_is_killed_at_the_timeout() {
    // The prepare command's child (a background sleep) is in its process
    // group: both die. Each writes its pid into the sandbox, so the test
    // looks at its own two processes only.
    let sb = sandbox_with(
        "prepare = \"echo $$ > $CUTOVER_ROOT/fg.pid; sleep 60 & echo $! > $CUTOVER_ROOT/bg.pid; exec sleep 60\"",
        "command_timeout = \"1s\"",
    );
    let started = std::time::Instant::now();
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    let run = switcher(&sb, &[]);
    run.code_is(3).stderr_has("did not finish within 1 s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{run}"
    );
    for file in ["fg.pid", "bg.pid"] {
        let pid =
            std::fs::read_to_string(sb.path(file)).unwrap_or_else(|e| panic!("{file}: {e}\n{run}"));
        let pid = pid.trim();
        // Gone, or a zombie that init has yet to reap.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        assert!(
            state.is_none() || state == Some("Z"),
            "the whole process group should be gone, but {file} {pid} lives: {stat}\n{run}"
        );
    }
}

#[test]
fn a_reload_only_component_is_flipped_then_reloaded_and_verified() {
    // The "frontend" is served by the demo app in static mode, started once
    // outside the switcher (as nginx would be); reload just records a line.
    let sb = sandbox();
    let text = std::fs::read_to_string(&sb.config).unwrap().replace(
        &format!("[components.frontend]\nport = {}\n", sb.frontend_port),
        &format!(
            "[components.frontend]\nport = {}\nreload = \"echo reloaded $CUTOVER_VERSION >> {}\"\n",
            sb.frontend_port,
            sb.root.join("reloads").display()
        ),
    );
    std::fs::write(&sb.config, text).unwrap();
    let mut nginx = std::process::Command::new(cutover_tests::bins::bin("cutover-demo-app"))
        .args(["static", "--port", &sb.frontend_port.to_string(), "--root"])
        .arg(sb.root.join("current/frontend"))
        .spawn()
        .unwrap();
    stage(&sb, &demo("full", "1.0.0", 1));
    let run = switcher(&sb, &[]);
    let _ = &run;
    stage(&sb, &demo("frontend", "1.1.0", 2));
    let run2 = switcher(&sb, &[]);
    let reloads = std::fs::read_to_string(sb.root.join("reloads")).unwrap_or_default();
    let _ = nginx.kill();
    let _ = nginx.wait();
    run.success();
    run2.success();
    assert_eq!(reloads, "reloaded 1.0.0\nreloaded 1.1.0\n", "{run2}");
}

#[test]
fn an_archive_with_an_escaping_symlink_never_stops_the_service() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    let evil = demo("full", "2.0.0", 2).symlink("backend/etc", "../../../../../etc");
    stage(&sb, &evil);
    let run = switcher(&sb, &[]);
    run.code_is(3).stderr_has("leaves its component folder");
    assert_eq!(sb.backend_pid(), pid, "{run}");
    assert_serves(&sb, &run, "1.0.0");
    assert_eq!(sb.names("releases/backend").len(), 1, "{run}");
}

#[test]
fn zstd_and_plain_tar_artifacts_deploy_too() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1).ext(artifact_name::Ext::TarZst);
    stage(&sb, &v1);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    let v2 = demo("full", "2.0.0", 2).ext(artifact_name::Ext::Tar);
    stage(&sb, &v2);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
}
