//! Crash test: kill the collector (SIGKILL) at each of its fault points,
//! then run it normally once, and check that the artifact ends up in
//! staging exactly once, whole, with its marker, and that nothing in the
//! drop folder was lost at any point.
//!
//! Prints a table of stop points and outcomes; see it with
//! `cargo test -p collector --test collector crash -- --nocapture`.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use cutover_tests::bins::fault_bin;
use cutover_tests::{ArchiveBuilder, Sandbox};
use sha2::{Digest, Sha256};

use crate::support::{assert_no_temps, assert_staged, big_artifact, ShmDrop};

const POINTS: [&str; 6] = [
    "after-lock",
    "before-move",
    "mid-copy",
    "after-artifact-move",
    "before-state-write",
    "after-state-write",
];

/// Where the artifact is, whole, right after the kill.
fn whereabouts(sb: &Sandbox, drop: &Path, a: &ArchiveBuilder) -> String {
    let name = a.name();
    let want = Sha256::digest(a.bytes());
    let whole = |p: &Path| fs::read(p).is_ok_and(|b| Sha256::digest(b) == want);
    let in_drop = whole(&drop.join(name.file_name()));
    let staged = sb.path("staging").join(name.file_name());
    let staged_marker = sb.path("staging").join(name.marker_name());
    let in_staging = whole(&staged);
    if staged_marker.exists() {
        assert!(
            in_staging,
            "a staged marker without its whole artifact\n{}",
            sb.listing()
        );
    }
    assert!(
        in_drop || in_staging,
        "the artifact is whole neither in drop/ nor in staging/\n{}",
        sb.listing()
    );
    match (in_drop, in_staging, staged_marker.exists()) {
        (true, false, _) => "drop".into(),
        (true, true, false) => "drop + staging (no marker yet)".into(),
        (true, true, true) => "drop + staged".into(),
        (false, true, false) => "staging (no marker yet)".into(),
        (false, true, true) => "staged".into(),
        (false, false, _) => unreachable!(),
    }
}

fn crash_at(point: &str, cross_fs: bool) -> String {
    let sb = Sandbox::new();
    let shm = cross_fs.then(|| ShmDrop::new(&sb));
    let drop = shm
        .as_ref()
        .map_or_else(|| sb.drop_dir(), |s| s.path().to_path_buf());
    // `a` sorts first, so it is the one in flight at each point; it is big
    // enough for mid-copy to stop halfway (copies go in 64 KiB blocks).
    let a = big_artifact("frontend", "1.0.1", 20, 512 << 10);
    let b = big_artifact("full", "1.0.0", 10, 4 << 10);
    a.drop_into(&drop);
    b.drop_into(&drop);
    let bin = fault_bin("collector");
    let killed =
        sb.run_cmd(Command::new(&bin).env("CUTOVER_FAULT_POINT", format!("collector:{point}")));
    assert_eq!(
        killed.output.status.signal(),
        Some(9),
        "the run did not stop at {point}\n{killed}"
    );
    let a_was = whereabouts(&sb, &drop, &a);
    let b_was = whereabouts(&sb, &drop, &b);
    let temps = ["staging", "quarantine"]
        .iter()
        .flat_map(|d| sb.names(d))
        .filter(|n| n.starts_with('.'))
        .count();
    let run = sb.run_cmd(&mut Command::new(&bin));
    run.success();
    assert_staged(&sb, &drop, &a, &run);
    assert_staged(&sb, &drop, &b, &run);
    assert_no_temps(&sb, &run);
    assert!(fs::read_dir(&drop).unwrap().next().is_none(), "{run}");
    let state = sb.state_json("collector.json");
    assert_eq!(
        state["last"]["backend"]["artifact"],
        b.name().file_name(),
        "{run}"
    );
    assert_eq!(state["last"]["frontend"]["artifact"], a.name().file_name());
    format!(
        "killed: 1st in {a_was}, 2nd in {b_was}, {temps} temp file(s); \
         next run: both staged once, drop empty, Last right"
    )
}

#[test]
fn crash_at_every_fault_point_loses_nothing() {
    let mut rows = Vec::new();
    for point in POINTS {
        for cross_fs in [false, true] {
            // A rename copies nothing: mid-copy exists only across filesystems.
            if point == "mid-copy" && !cross_fs {
                continue;
            }
            let fs = if cross_fs { "cross-fs" } else { "same fs" };
            rows.push((format!("collector:{point}"), fs, crash_at(point, cross_fs)));
        }
    }
    println!("\n{:<32} | {:<8} | outcome", "stop point", "fs");
    println!("{:-<32}-+-{:-<8}-+-{:-<100}", "", "", "");
    for (point, fs, outcome) in rows {
        println!("{point:<32} | {fs:<8} | {outcome}");
    }
}
