//! "Last" in state/collector.json: per component, the newest staged
//! artifact that carries it.

use cutover_tests::Sandbox;

use crate::support::{artifact, collect_ok};

fn last(sb: &Sandbox, component: &str) -> String {
    let state = sb.state_json("collector.json");
    state["last"][component]["artifact"]
        .as_str()
        .unwrap_or_else(|| panic!("no Last for {component}: {state}"))
        .to_string()
}

#[test]
fn last_per_component() {
    let sb = Sandbox::new();
    let full = artifact("full", "1.0.0", 10);
    full.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    assert_eq!(last(&sb, "backend"), full.name().file_name());
    assert_eq!(last(&sb, "frontend"), full.name().file_name());

    // A later frontend-only build updates only frontend's Last.
    let front = artifact("frontend", "1.0.1", 20);
    front.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    assert_eq!(last(&sb, "backend"), full.name().file_name());
    assert_eq!(last(&sb, "frontend"), front.name().file_name());

    // An older build arriving late is not "newest".
    let old = artifact("full", "0.9.0", 5);
    old.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    assert_eq!(last(&sb, "backend"), full.name().file_name());
    assert_eq!(last(&sb, "frontend"), front.name().file_name());

    let state = sb.state_json("collector.json");
    let entry = &state["last"]["frontend"];
    assert_eq!(entry["kind"], "frontend");
    assert_eq!(entry["version"], "1.0.1");
    assert_eq!(entry["branch"], "master");
    assert_eq!(entry["build_time"], front.name().build_time_rfc3339());
    assert_eq!(entry["size"], front.bytes().len() as u64);
    assert!(
        entry["collected_at"].as_str().unwrap().ends_with('Z'),
        "{state}"
    );
    assert!(
        state["last_run"].as_str().unwrap().ends_with('Z'),
        "{state}"
    );
    assert!(state["last_error"].is_null(), "{state}");

    // A staged file that goes away (pruned, or by hand) stops being Last.
    std::fs::remove_file(sb.path("staging").join(front.name().marker_name())).unwrap();
    std::fs::remove_file(sb.path("staging").join(front.name().file_name())).unwrap();
    collect_ok(&sb);
    assert_eq!(last(&sb, "frontend"), full.name().file_name());
}
