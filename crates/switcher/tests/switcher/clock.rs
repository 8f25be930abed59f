//! A build dated in the future (CI's clock ahead, a mistyped `--time`) is
//! held, not deployed: deployed, it would block every later build. Build
//! times here are relative to the clock, never fixed dates.

use chrono::{Duration, Utc};

use crate::common::*;

#[test]
fn a_build_from_the_future_is_held_with_its_reason_and_an_older_one_deploys() {
    let sb = sandbox();
    let now = Utc::now();
    let good = demo("full", "1.0.0", 0).at(now - Duration::minutes(10));
    let ahead = demo("full", "9.0.0", 0).at(now + Duration::hours(1));
    stage(&sb, &good);
    stage(&sb, &ahead);
    let ahead_name = ahead.name().file_name().to_string();

    let dry = switcher(&sb, &["--dry-run"]);
    dry.success()
        .stdout_has(&format!("Passed over {ahead_name}: built in the future: "))
        .stdout_has("min ahead of this VM's clock")
        .stdout_has(&format!("Would deploy {}", good.name().file_name()));

    let run = switcher(&sb, &[]);
    run.success()
        .stderr_has(&format!("not deploying {ahead_name}: built in the future"));
    assert_serves(&sb, &run, "1.0.0");
    let held = &sb.state_json("switcher.json")["held"];
    let why = held[&ahead_name].as_str().unwrap_or_default();
    assert!(
        why.starts_with("built in the future: ") && why.contains("min ahead of this VM's clock"),
        "switcher.json held: {held}\n{run}"
    );

    // The page says why Last is not Running, in its problems (JSON, text
    // and HTML alike come from one model).
    let status = switcher(&sb, &["status", "--json"]);
    status.success();
    let doc: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    let held_problem = doc["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["rule"] == "build-held");
    assert!(
        held_problem.is_some_and(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains(&ahead_name) && m.contains("built in the future"))),
        "switcher status --json names the held build: {doc:#}"
    );
    let page = std::fs::read_to_string(sb.root.join("state/deploy-status.html")).unwrap();
    assert!(
        page.contains("built in the future"),
        "the page says why the build is held"
    );

    // Said once, not every minute; still held and recorded.
    let again = switcher(&sb, &[]);
    again.success();
    assert_eq!(again.stderr(), "", "{again}");
    assert!(sb.state_json("switcher.json")["held"][&ahead_name].is_string());
    assert_serves(&sb, &again, "1.0.0");
}

#[test]
fn a_build_within_the_allowed_skew_deploys() {
    let sb = sandbox_with("", "max_clock_skew = \"10m\"");
    let soon = demo("full", "2.0.0", 0).at(Utc::now() + Duration::minutes(3));
    stage(&sb, &soon);
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    let held = &sb.state_json("switcher.json")["held"];
    assert!(
        held.as_object().is_some_and(|m| m.is_empty()),
        "{held}\n{run}"
    );
}
