//! Control by hand: `switcher deploy`, pin/unpin, freeze/unfreeze, retry,
//! follow, `--until` lapsing by itself, `--dry-run` of every verb, and the
//! holds surviving a crash at every fault point.

use std::process::Command;
use std::time::Duration;

use cutover_tests::{bins, Run, Sandbox};

use crate::common::*;

/// Runs the switcher as `user` behind sudo (SUDO_USER wins over USER).
fn switcher_as(sb: &Sandbox, user: &str, args: &[&str]) -> Run {
    sb.run_cmd(
        Command::new(switcher_bin())
            .args(args)
            .env("SUDO_USER", user)
            .env("USER", "root"),
    )
}

/// Runs the fault-injection build with `args`, killed at `point`.
fn switcher_killed_with(sb: &Sandbox, point: &str, args: &[&str]) -> Run {
    sb.run_cmd(
        Command::new(bins::fault_bin("switcher"))
            .args(args)
            .env("CUTOVER_FAULT_POINT", format!("switcher:{point}")),
    )
}

/// A freeze made by `switcher freeze` whose `until` is then set
/// `minutes_ago` before now: the command refuses a past time, and waiting
/// for a short one to pass would make the test wait on the clock.
fn freeze_lapsed(sb: &Sandbox, minutes_ago: i64) {
    switcher(sb, &["freeze", "--until", "1h"]).success();
    let path = sb.root.join("state/control.json");
    let mut doc = control(sb);
    let past = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    doc["freeze"]["until"] = past
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .into();
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

fn control(sb: &Sandbox) -> serde_json::Value {
    sb.state_json("control.json")
}

fn history(sb: &Sandbox) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sb.root.join("state/history.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status_json(sb: &Sandbox) -> serde_json::Value {
    let run = switcher(sb, &["status", "--json"]);
    run.success();
    serde_json::from_str(&run.stdout()).unwrap()
}

/// The seed's story: a feature build deployed by hand, the midnight master
/// build arriving and waiting (held), and `unpin` letting it deploy.
#[test]
fn a_feature_build_deployed_by_hand_holds_until_unpinned() {
    let sb = sandbox_with("", "branches = [\"master\"]");
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();

    let feature = demo("full", "2.0.0-login", 2).branch("feature/login");
    stage(&sb, &feature);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");

    // Not staged: the error names what is.
    switcher(&sb, &["deploy", "full_20261126T000900Z_9_master.tar.gz"])
        .code_is(1)
        .stderr_has("is not staged")
        .stderr_has(feature.name().file_name());

    let run = switcher_as(&sb, "alice", &["deploy", feature.name().file_name()]);
    run.success().stdout_has("pinned backend, frontend");
    assert_serves(&sb, &run, "2.0.0-login");
    let c = control(&sb);
    assert_eq!(c["schema"], 1, "{c:#}");
    for comp in ["backend", "frontend"] {
        assert_eq!(c["pins"][comp]["who"], "alice", "{c:#}");
        assert_eq!(c["pins"][comp]["artifact"], feature.name().file_name());
        assert!(c["pins"][comp]["since"].as_str().unwrap().ends_with('Z'));
        assert!(c["pins"][comp]["until"].is_null(), "{c:#}");
    }
    let last = history(&sb).pop().unwrap();
    assert_eq!(last["action"], "deploy", "{last}");
    assert_eq!(last["outcome"], "deployed", "{last}");
    assert_eq!(last["who"], "alice", "{last}");

    // The midnight master build (newer) arrives through the collector.
    let master = demo("full", "3.0.0", 3);
    master.drop_into(&sb.drop_dir());
    sb.run("collector", &[]).success();
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0-login");
    let doc = status_json(&sb);
    assert_eq!(doc["schema"], 2);
    let b = &doc["components"]["backend"];
    assert_eq!(b["last"]["artifact"], master.name().file_name(), "{doc:#}");
    assert_eq!(b["sync"]["state"], "held", "{doc:#}");
    assert!(
        b["sync"]["reason"]
            .as_str()
            .unwrap()
            .contains("pinned by alice"),
        "{doc:#}"
    );
    assert!(
        !b["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rule"] == "out-of-sync"),
        "{doc:#}"
    );
    assert_eq!(doc["control"]["pins"]["backend"]["who"], "alice");
    let page = std::fs::read_to_string(sb.root.join("state/deploy-status.html")).unwrap();
    assert!(page.contains("id=\"holds\""), "{page}");
    assert!(page.contains("data-sync=\"held\""), "{page}");
    assert!(page.contains("alice"), "{page}");
    switcher(&sb, &["status"])
        .success()
        .stdout_has("Pinned: backend on ")
        .stdout_has("held");
    switcher(&sb, &["--dry-run"])
        .success()
        .stdout_has("backend: held: pinned by alice since ")
        .stdout_has("backend is held: pinned by alice");

    switcher_as(&sb, "bob", &["unpin"])
        .success()
        .stdout_has("Unpin backend, frontend");
    assert!(control(&sb)["pins"].as_object().unwrap().is_empty());
    let last = history(&sb).pop().unwrap();
    assert_eq!(
        (&last["action"], &last["who"]),
        (&"unpin".into(), &"bob".into())
    );
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
}

#[test]
fn a_failed_deploy_by_hand_rolls_back_and_pins_nothing() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let bad = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &bad);
    let run = switcher(&sb, &["deploy", bad.name().file_name()]);
    run.code_is(3);
    assert_serves(&sb, &run, "1.0.0");
    assert!(!sb.root.join("state/control.json").exists(), "{run}");
    // Older than what runs, by hand: fine, and pinned.
    let old = demo("full", "0.9.0", 0);
    stage(&sb, &old);
    let run = switcher(
        &sb,
        &["deploy", old.name().file_name(), "--component", "backend"],
    );
    run.success();
    assert_serves(&sb, &run, "0.9.0");
    let c = control(&sb);
    assert!(c["pins"]["backend"].is_object(), "{c:#}");
    assert!(c["pins"].get("frontend").is_none(), "{c:#}");
}

#[test]
fn pin_unpin_freeze_unfreeze_hold_and_release() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let v1 = current(&sb, "backend").unwrap();

    switcher(&sb, &["pin", "backend", "--reason", "load test"]).success();
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    let run = switcher(&sb, &[]);
    run.success();
    // The frontend is not pinned: it moves; the backend stays.
    assert_serves(&sb, &run, "1.0.0");
    assert_eq!(current(&sb, "backend"), Some(v1.clone()), "{run}");
    assert_eq!(current(&sb, "frontend").as_deref(), Some(v2.name().stem()));
    switcher(&sb, &["pin", "nosuch"])
        .code_is(1)
        .stderr_has("no component \"nosuch\"");
    switcher(&sb, &["unpin", "backend"]).success();
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");

    switcher(&sb, &["freeze", "--reason", "release review"]).success();
    let doc = status_json(&sb);
    assert_eq!(doc["control"]["freeze"]["reason"], "release review");
    stage(&sb, &demo("full", "3.0.0", 3));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    switcher(&sb, &["--dry-run"])
        .success()
        .stdout_has("frontend: held: frozen by ");
    switcher(&sb, &["unfreeze"]).success();
    switcher(&sb, &["unfreeze"])
        .code_is(1)
        .stderr_has("not frozen");
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
    let actions: Vec<String> = history(&sb)
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_string())
        .collect();
    for want in ["pin", "unpin", "freeze", "unfreeze"] {
        assert!(actions.contains(&want.to_string()), "{actions:?}");
    }
}

#[test]
fn retry_lets_the_next_pass_try_a_failed_artifact_again() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let bad = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &bad);
    switcher(&sb, &[]).code_is(3);
    // Marked failed: passes leave it alone.
    switcher(&sb, &[]).success();
    switcher(&sb, &["retry", "full_x.tar.gz"])
        .code_is(1)
        .stderr_has(bad.name().file_name());
    switcher_as(&sb, "carol", &["retry", bad.name().file_name()])
        .success()
        .stdout_has("Cleared the failure mark");
    let st = sb.state_json("switcher.json");
    assert!(st["failed"].get(bad.name().file_name()).is_none(), "{st:#}");
    assert_eq!(history(&sb).pop().unwrap()["who"], "carol");
    // Tried again (and, being broken, failed again).
    let run = switcher(&sb, &[]);
    run.code_is(3);
    assert_serves(&sb, &run, "1.0.0");
}

#[test]
fn follow_changes_the_branches_passes_deploy() {
    let sb = sandbox_with("", "branches = [\"master\"]");
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    stage(&sb, &demo("full", "2.0.0", 2).branch("feature/x"));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");

    switcher(&sb, &["follow", "feature/x", "--reason", "demo"]).success();
    assert_eq!(control(&sb)["follow"]["branches"][0], "feature/x");
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");

    switcher(&sb, &["follow", "--default"]).success();
    assert!(control(&sb)["follow"].is_null());
    stage(&sb, &demo("full", "3.0.0", 3).branch("other"));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");

    switcher(&sb, &["follow", "--any"]).success();
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
    switcher(&sb, &["follow"]).code_is(2);
}

#[test]
fn holds_with_until_lapse_by_themselves() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();

    // A freeze whose time has passed (relative to now): the next pass drops it.
    freeze_lapsed(&sb, 5);
    stage(&sb, &demo("full", "2.0.0", 2));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    assert!(control(&sb)["freeze"].is_null(), "{run}");
    let lapse = history(&sb)
        .into_iter()
        .find(|h| h["action"] == "lapse")
        .unwrap();
    assert!(
        lapse["reason"].as_str().unwrap().contains("the freeze"),
        "{lapse}"
    );

    // A span: held before it ends, lapsed after.
    switcher(&sb, &["pin", "--until", "2s"]).success();
    let until = control(&sb)["pins"]["backend"]["until"]
        .as_str()
        .unwrap()
        .to_string();
    let until = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
    stage(&sb, &demo("full", "3.0.0", 3));
    let run = switcher(&sb, &[]);
    run.success();
    if chrono::Utc::now() < until {
        assert_serves(&sb, &run, "2.0.0");
    }
    while chrono::Utc::now() <= until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
    assert!(
        control(&sb)["pins"].as_object().unwrap().is_empty(),
        "{run}"
    );
    switcher(&sb, &["pin", "--until", "tomorrow"])
        .code_is(2)
        .stderr_has("RFC 3339");
    switcher(&sb, &["freeze", "--until", "1000000years"])
        .code_is(2)
        .stderr_has("at most 100 years");
}

#[test]
fn dry_run_of_every_verb_changes_nothing() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let bad = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &bad);
    switcher(&sb, &[]).code_is(3);
    let v3 = demo("full", "3.0.0", 3);
    stage(&sb, &v3);
    switcher(&sb, &["pin", "frontend"]).success();
    switcher(&sb, &["freeze"]).success();
    switcher(&sb, &["follow", "--any"]).success();
    let (v3, bad) = (v3.name(), bad.name());
    let cases: &[(&[&str], &str)] = &[
        (&["deploy", v3.file_name(), "--dry-run"], "Would deploy"),
        (
            &["pin", "backend", "--until", "8h", "--dry-run"],
            "Would pin backend",
        ),
        (&["unpin", "--dry-run"], "Would unpin frontend"),
        (&["freeze", "--reason", "x", "--dry-run"], "Would freeze"),
        (&["unfreeze", "--dry-run"], "Would unfreeze"),
        (&["retry", bad.file_name(), "--dry-run"], "Would clear"),
        (
            &["follow", "master", "--dry-run"],
            "Would follow branch(es) master",
        ),
        (&["follow", "--any", "--dry-run"], "Would follow any branch"),
        (
            &["follow", "--default", "--dry-run"],
            "Would follow the config's",
        ),
    ];
    for (args, says) in cases {
        // The flag is the switcher's global one: after the verb, or before.
        let before_verb: Vec<&str> = std::iter::once("--dry-run")
            .chain(args.iter().copied().filter(|a| *a != "--dry-run"))
            .collect();
        for args in [args.to_vec(), before_verb] {
            let before = sb.listing();
            let run = switcher(&sb, &args);
            run.success().stdout_has("Dry run").stdout_has(says);
            assert_eq!(before, sb.listing(), "{args:?} changed the tree\n{run}");
        }
    }
}

/// Holds survive a kill at every fault point of a pass, and the recovery
/// pass after it; a kill between the control write and the history line
/// leaves the hold in force.
#[test]
fn holds_survive_a_crash_at_every_fault_point() {
    const POINTS: &[(&str, bool)] = &[
        ("after-lock", false),
        ("after-control-write", false),
        ("mid-unpack", false),
        ("after-unpack", false),
        ("after-prepare", false),
        ("after-stop", false),
        ("after-flip", false),
        ("after-start", false),
        ("after-verify", false),
        ("before-state-write", false),
        ("mid-rollback", true),
        ("before-state-write", true),
    ];
    for &(point, broken) in POINTS {
        let sb = sandbox_with("", "branches = [\"master\"]");
        stage(&sb, &demo("full", "1.0.0", 1));
        switcher(&sb, &[]).success();
        let v1 = current(&sb, "frontend").unwrap();
        switcher_as(&sb, "alice", &["pin", "frontend", "--reason", "qa"]).success();
        switcher_as(&sb, "alice", &["follow", "master", "release"]).success();
        // A hold that lapses at this pass: its write is the control-write point.
        freeze_lapsed(&sb, 1);
        let mut v2 = demo("full", "2.0.0", 2);
        if broken {
            v2 = v2.file("backend/BEHAVIOUR", "exit");
        }
        stage(&sb, &v2);
        let held = |c: &serde_json::Value| (c["pins"].clone(), c["follow"].clone());
        let before = held(&control(&sb));

        let killed = switcher_killed_with(&sb, point, &[]);
        assert_eq!(killed.code(), -1, "should die at {point}\n{killed}");
        assert_eq!(held(&control(&sb)), before, "after the kill at {point}");
        let run = switcher(&sb, &[]);
        run.success();
        let after = control(&sb);
        assert_eq!(held(&after), before, "after recovery from {point}\n{run}");
        assert!(
            after["freeze"].is_null(),
            "the lapsed freeze goes ({point})"
        );
        assert_eq!(current(&sb, "frontend"), Some(v1.clone()), "{point}\n{run}");
        assert_serves(&sb, &run, if broken { "1.0.0" } else { "2.0.0" });
        assert!(!sb.root.join("state/journal.json").exists(), "{point}");
    }

    // A verb killed between its control write and its history line: the
    // hold is in force (the line is what is lost), and passes respect it.
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let lines = history(&sb).len();
    for args in [
        &["freeze"][..],
        &["pin", "backend"][..],
        &["follow", "--any"][..],
    ] {
        let killed = switcher_killed_with(&sb, "after-control-write", args);
        assert_eq!(killed.code(), -1, "{args:?}\n{killed}");
    }
    assert_eq!(history(&sb).len(), lines);
    let c = control(&sb);
    assert!(
        c["freeze"].is_object() && c["pins"]["backend"].is_object(),
        "{c:#}"
    );
    assert!(
        c["follow"]["branches"].as_array().unwrap().is_empty(),
        "{c:#}"
    );
    stage(&sb, &demo("full", "2.0.0", 2));
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
}

#[test]
fn a_hold_is_on_the_page_at_once_and_says_who_without_user_variables() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    // No SUDO_USER or USER (cron, su -c): the effective user's name.
    let run = sb.run_cmd(
        Command::new(switcher_bin())
            .args(["pin", "backend", "--reason", "demo at 3"])
            .env_remove("SUDO_USER")
            .env_remove("USER"),
    );
    run.success();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the test user has a name");
    // Not after the next pass: the page the pin itself wrote.
    let page = sb.state_json("deploy-status.json");
    assert_eq!(
        page["control"]["pins"]["backend"]["who"], me,
        "the page shows the pin and who made it, without a pass\n{page:#}\n{run}"
    );
    let html = std::fs::read_to_string(sb.root.join("state/deploy-status.html")).unwrap();
    assert!(
        html.contains("demo at 3"),
        "the HTML page shows the pin's reason"
    );
}

#[test]
fn until_in_the_past_or_without_a_zone_is_refused_with_what_is_expected() {
    let sb = sandbox();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let run = switcher(&sb, &["pin", "backend", "--until", &past]);
    run.code_is(2).stderr_has("already past");
    let naive = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let run = switcher(&sb, &["freeze", "--until", &naive]);
    run.code_is(2).stderr_has("has no zone");
    assert!(
        !sb.root.join("state/control.json").exists(),
        "nothing was held"
    );
}
