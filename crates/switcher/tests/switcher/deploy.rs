//! The good path: first deploy, an upgrade, a frontend-only artifact, and
//! the command environment.

use crate::common::*;

#[test]
fn v1_then_v2_then_a_frontend_artifact_leaves_the_backend_alone() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    let run = switcher(&sb, &[]);
    run.success();
    assert!(
        run.stderr().is_empty(),
        "a good pass is quiet for cron\n{run}"
    );
    assert_serves(&sb, &run, "1.0.0");
    assert_eq!(
        current(&sb, "backend").as_deref(),
        Some(v1.name().stem()),
        "{run}"
    );
    assert_eq!(
        current(&sb, "frontend").as_deref(),
        Some(v1.name().stem()),
        "{run}"
    );
    let link = std::fs::read_link(sb.root.join("current/backend")).unwrap();
    assert!(
        link.is_relative(),
        "current/backend should be a relative link: {link:?}"
    );

    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["components"]["backend"]["running"]["version"], "2.0.0",
        "{run}"
    );
    assert_eq!(
        state["components"]["backend"]["previous"]["version"], "1.0.0",
        "{run}"
    );
    let pid = sb.backend_pid();
    assert!(pid.is_some(), "{run}");

    let f3 = demo("frontend", "3.0.0", 3);
    stage(&sb, &f3);
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(
        sb.backend_pid(),
        pid,
        "a frontend artifact must not restart the backend\n{run}"
    );
    assert_serves(&sb, &run, "2.0.0");
    assert_eq!(
        current(&sb, "frontend").as_deref(),
        Some(f3.name().stem()),
        "{run}"
    );
    assert_eq!(
        current(&sb, "backend").as_deref(),
        Some(v2.name().stem()),
        "{run}"
    );
    let index = std::fs::read_to_string(sb.root.join("current/frontend/index.html")).unwrap();
    assert!(index.contains("frontend 3.0.0"), "{index}");

    // Nothing new: nothing happens, exit 0, same pid.
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(sb.backend_pid(), pid, "{run}");
    let history = std::fs::read_to_string(sb.root.join("state/history.jsonl")).unwrap();
    assert_eq!(
        history.lines().count(),
        3,
        "one history line per deploy:\n{history}"
    );
    for line in history.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["outcome"], "deployed", "{line}");
        assert!(v["at"].as_str().unwrap().ends_with('Z'), "{line}");
    }
    assert!(!sb.root.join("state/journal.json").exists(), "{run}");
}

#[test]
fn commands_get_the_documented_environment_and_shared_links() {
    let sb = sandbox_with(
        "prepare = \"env | sort > prepared.env; test -L config.yml\"\nlinked_files = [\"config.yml\"]\nlinked_dirs = [\"var/uploads\"]",
        "",
    );
    std::fs::create_dir_all(sb.root.join("shared/backend")).unwrap();
    std::fs::write(sb.root.join("shared/backend/config.yml"), "shared: true\n").unwrap();
    let v1 = demo("full", "1.0.0", 1)
        .file("backend/config.yml", "from the release\n")
        .dir("backend/var")
        .dir("backend/var/uploads")
        .file("backend/var/uploads/junk", "x");
    stage(&sb, &v1);
    let run = switcher(&sb, &[]);
    run.success();
    let rel = sb.root.join("releases/backend").join(v1.name().stem());
    let env = std::fs::read_to_string(rel.join("prepared.env")).unwrap();
    for want in [
        "CUTOVER_COMPONENT=backend".to_string(),
        "CUTOVER_STEP=prepare".to_string(),
        "CUTOVER_VERSION=1.0.0".to_string(),
        "CUTOVER_BRANCH=master".to_string(),
        format!("CUTOVER_ARTIFACT={}", v1.name().file_name()),
        format!("CUTOVER_RELEASE={}", rel.display()),
        format!("CUTOVER_ROOT={}", sb.root.display()),
        "LANG=C.UTF-8".to_string(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "missing {want:?} in\n{env}");
    }
    assert!(
        !env.contains("CUTOVER_CONFIG"),
        "the caller's environment leaked:\n{env}"
    );
    assert_eq!(
        std::fs::read_to_string(rel.join("config.yml")).unwrap(),
        "shared: true\n"
    );
    assert_eq!(
        std::fs::read_link(rel.join("config.yml")).unwrap(),
        std::path::Path::new("../../../shared/backend/config.yml")
    );
    assert!(sb.root.join("shared/backend/var/uploads").is_dir(), "{run}");
    assert!(!rel.join("var/uploads/junk").exists(), "{run}");
    assert!(
        sb.root.join("state/logs/backend-start.log").is_file(),
        "{run}"
    );
}

#[test]
fn a_held_lock_is_quiet_and_exit_0() {
    // Normal when a pass outlasts cron's minute: nothing for cron to mail
    // (info, like the collector); -v says why.
    let sb = sandbox();
    std::fs::create_dir_all(sb.root.join("state")).unwrap();
    let lock = sb.root.join("state/switcher.lock");
    let _held = deploy_root::lock::try_lock(&lock).unwrap().unwrap();
    stage(&sb, &demo("full", "1.0.0", 1));
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(run.stderr(), "", "{run}");
    assert!(current(&sb, "backend").is_none(), "{run}");
    let verbose = switcher(&sb, &["-v"]);
    verbose.success().stderr_has("another switcher run holds");
    assert_eq!(verbose.stderr().lines().count(), 1, "{verbose}");
}

#[test]
fn a_bad_config_exits_78_naming_the_key() {
    let sb = sandbox_with("", "keep_releases = 1");
    let run = switcher(&sb, &[]);
    run.code_is(78).stderr_has("switcher.keep_releases");
}

#[test]
fn rollback_by_hand_and_releases_listing() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    stage(&sb, &v2);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    let run = switcher(&sb, &["rollback"]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    assert_eq!(
        current(&sb, "frontend").as_deref(),
        Some(v1.name().stem()),
        "{run}"
    );
    // The next pass does not take v2 straight back.
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    let run = switcher(&sb, &["releases"]);
    run.success()
        .stdout_has(&format!("* {}", v1.name().stem()))
        .stdout_has("FAILED (rollback: rolled back by hand");
    // No previous any more: a second rollback says so.
    let run = switcher(&sb, &["rollback"]);
    run.code_is(1).stderr_has("previous good release recorded");
}

#[test]
fn status_subcommand_prints_what_runs() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    let run = switcher(&sb, &["status"]);
    run.success().stdout_has("1.0.0");
    let run = switcher(&sb, &["status", "--json"]);
    run.success();
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}\n{run}"));
    assert!(v.to_string().contains(v1.name().stem()), "{run}");
    // The pass refreshed the status page files.
    assert!(sb.root.join("state/deploy-status.json").is_file(), "{run}");
    // Nothing to go back to: the dry run refuses as the rollback would.
    let run = switcher(&sb, &["--dry-run", "rollback"]);
    run.code_is(1).stderr_has("nothing to roll back to");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = std::process::Command::new(switcher_bin())
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "Exit codes:",
        "  0   the pass ended well",
        "  1   any other error",
        "  3   a deploy failed",
        "  4   a deploy failed and going back failed too",
        "  78  the config file",
    ] {
        assert!(
            text.contains(needle),
            "--help should mention {needle:?}:\n{text}"
        );
    }
}

#[test]
fn a_broken_state_file_is_named_and_never_replaced() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    let state = sb.root.join("state/switcher.json");
    std::fs::write(&state, "{ not json").unwrap();
    stage(&sb, &demo("full", "2.0.0", 2));
    let run = switcher(&sb, &[]);
    run.code_is(1).stderr_has("switcher.json");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{ not json",
        "{run}"
    );
    assert_eq!(sb.backend_pid(), pid, "{run}");
    assert_serves(&sb, &run, "1.0.0");
    std::fs::remove_file(&state).unwrap();
    std::fs::write(sb.root.join("state/journal.json"), "garbage").unwrap();
    let run = switcher(&sb, &[]);
    run.code_is(1).stderr_has("journal.json");
    assert_eq!(sb.backend_pid(), pid, "{run}");
}

#[test]
fn rollback_of_one_component_leaves_the_other_alone() {
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    let run = switcher(&sb, &["rollback", "frontend"]);
    run.success();
    assert_eq!(
        current(&sb, "frontend").as_deref(),
        Some(v1.name().stem()),
        "{run}"
    );
    assert_eq!(
        current(&sb, "backend").as_deref(),
        Some(v2.name().stem()),
        "{run}"
    );
    assert_eq!(sb.backend_pid(), pid, "{run}");
    assert_serves(&sb, &run, "2.0.0");
    let run = switcher(&sb, &["rollback", "nosuch"]);
    run.code_is(1).stderr_has("\"nosuch\" is not in the config");
}

#[test]
fn generate_prints_a_man_page_with_the_exit_codes_without_a_config() {
    let out = std::process::Command::new(switcher_bin())
        .args(["--generate", "man"])
        .env("CUTOVER_CONFIG", "/nonexistent/cutover.toml")
        .output()
        .unwrap();
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(man.contains("78") && man.contains("rollback"), "{man}");
}

/// Per component, the newest artifact that carries it: a `full` artifact
/// built before the `frontend` one that runs deploys its backend only, and
/// the frontend keeps its newer build.
#[test]
fn an_older_full_artifact_deploys_its_backend_beside_a_newer_frontend() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let f3 = demo("frontend", "3.0.0", 3);
    stage(&sb, &f3);
    switcher(&sb, &[]).success();

    // full 2.0.0 was built before frontend 3.0.0 but arrives after it.
    let full2 = demo("full", "2.0.0", 2);
    stage(&sb, &full2);
    let dry = switcher(&sb, &["--dry-run"]);
    dry.success()
        .stdout_has("to backend:")
        .stdout_has("It deploys only backend from it");
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    assert_eq!(
        current(&sb, "backend").as_deref(),
        Some(full2.name().stem()),
        "{run}"
    );
    assert_eq!(
        current(&sb, "frontend").as_deref(),
        Some(f3.name().stem()),
        "{run}"
    );
    assert!(
        !sb.path("releases/frontend")
            .join(full2.name().stem())
            .exists(),
        "the frontend folder of the full artifact is not made a release\n{run}"
    );
    // And nothing more to do afterwards.
    let again = switcher(&sb, &["--dry-run"]);
    again.success().stdout_has("Nothing to deploy");
}
