//! Crash test: kill the collector (SIGKILL) at each of its fault points,
//! then run it normally once, and check that the artifacts end up in
//! staging exactly once, whole, with their marker, that a rejected upload
//! ends up in quarantine once with its reason, and that nothing in the
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

const POINTS: [&str; 11] = [
    "after-lock",
    "before-move",
    "mid-copy",
    "after-artifact-move",
    // The pass's group commit (crates/collector/src/batch.rs): artifacts
    // renamed, markers and reasons written under their temporary names...
    "before-sync",
    // ...one marker renamed into place...
    "after-marker-rename",
    // ...every marker in place and the rejected upload in quarantine, no
    // folder fsynced...
    "before-folder-sync",
    // ...staging/ and quarantine/ fsynced, nothing removed from drop/...
    "after-folder-sync",
    // ...one drop marker removed.
    "after-drop-removal",
    "before-state-write",
    "after-state-write",
];

/// A rejected upload (a name outside the contract, with a marker).
const JUNK: &str = "release 7 final.tgz";

/// Where the junk upload is, whole, right after the kill.
fn junk_whereabouts(sb: &Sandbox, drop: &Path) -> String {
    let want = junk_bytes();
    let in_drop = fs::read(drop.join(JUNK)).is_ok_and(|b| b == want);
    let in_quarantine = fs::read(sb.path("quarantine").join(JUNK)).is_ok_and(|b| b == want);
    let reason = sb.path("quarantine").join(format!("{JUNK}.reason"));
    if in_quarantine {
        assert!(
            fs::read_to_string(&reason).is_ok_and(|r| r.contains("UTC: ")),
            "a quarantined upload without its reason\n{}",
            sb.listing()
        );
    }
    match (in_drop, in_quarantine) {
        (true, false) if reason.exists() => "drop (reason written)".into(),
        (true, false) => "drop".into(),
        (false, true) => "quarantine".into(),
        (true, true) => "drop + quarantine".into(),
        (false, false) => panic!(
            "the rejected upload is whole neither in drop/ nor in quarantine/\n{}",
            sb.listing()
        ),
    }
}

fn junk_bytes() -> Vec<u8> {
    b"not an artifact\n".repeat(100)
}

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
    fs::write(drop.join(JUNK), junk_bytes()).unwrap();
    fs::write(
        drop.join(format!("{JUNK}.sha256")),
        cutover_tests::archive::marker(JUNK, &junk_bytes()),
    )
    .unwrap();
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
    let junk_was = junk_whereabouts(&sb, &drop);
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
    // The rejected upload: in quarantine with its marker and its reason,
    // and no reason without its file. Once, unless the kill left it whole
    // in both folders (a cross-filesystem copy whose source was not removed
    // yet): then the next run quarantines the drop folder's copy too.
    let quarantined = sb.names("quarantine");
    let reasons: Vec<&String> = quarantined
        .iter()
        .filter(|n| n.ends_with(".reason"))
        .collect();
    let copies = if junk_was == "drop + quarantine" {
        2
    } else {
        1
    };
    assert_eq!(reasons.len(), copies, "reasons in quarantine\n{run}");
    for reason in reasons {
        let item = reason.strip_suffix(".reason").unwrap();
        assert_eq!(
            fs::read(sb.path("quarantine").join(item)).unwrap(),
            junk_bytes(),
            "{run}"
        );
        assert!(
            quarantined.contains(&format!("{item}.sha256")),
            "the junk's marker in quarantine\n{run}"
        );
    }
    assert_eq!(quarantined.len(), 3 * copies, "{quarantined:?}\n{run}");
    let state = sb.state_json("collector.json");
    assert_eq!(
        state["last"]["backend"]["artifact"],
        b.name().file_name(),
        "{run}"
    );
    assert_eq!(state["last"]["frontend"]["artifact"], a.name().file_name());
    format!(
        "killed: 1st in {a_was}, 2nd in {b_was}, junk in {junk_was}, {temps} temp file(s); \
         next run: both staged once, junk quarantined {copies}x with its reason, drop empty, \
         Last right"
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
