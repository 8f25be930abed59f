//! Crash anywhere, across both binaries: the fault-injection builds of the
//! collector and the switcher are killed (SIGKILL) at each of their fault
//! points, mid-copy and mid-unpack included, while a new release travels
//! from a drop folder on another filesystem to a real running backend.
//! Then one normal cron minute (collector, switcher) must leave the tree
//! consistent: current/ on complete releases, the service answering with
//! the right version, both state files parsing, every artifact staged
//! exactly once and none left in the drop folder.
//!
//! The per-binary crash tests (crates/*/tests) cover each binary alone;
//! this one proves the two together, with the real backend, and prints one
//! combined table: `cargo test --test e2e hostile::crash -- --nocapture`.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use cutover_tests::bins::fault_bin;
use cutover_tests::{ArchiveBuilder, Sandbox};

use super::archives::noise;
use super::{assert_consistent, assert_serves, demo_sandbox};

/// (binary, fault point, whether v2 is broken, the version that must serve
/// after the next normal minute).
const POINTS: &[(&str, &str, bool, &str)] = &[
    ("collector", "after-lock", false, "2.0.0"),
    ("collector", "before-move", false, "2.0.0"),
    ("collector", "mid-copy", false, "2.0.0"),
    ("collector", "after-artifact-move", false, "2.0.0"),
    ("collector", "before-sync", false, "2.0.0"),
    ("collector", "after-marker-rename", false, "2.0.0"),
    ("collector", "before-folder-sync", false, "2.0.0"),
    ("collector", "after-folder-sync", false, "2.0.0"),
    ("collector", "after-drop-removal", false, "2.0.0"),
    ("collector", "before-state-write", false, "2.0.0"),
    ("collector", "after-state-write", false, "2.0.0"),
    ("switcher", "after-lock", false, "2.0.0"),
    ("switcher", "mid-unpack", false, "2.0.0"),
    ("switcher", "after-unpack", false, "2.0.0"),
    ("switcher", "after-prepare", false, "2.0.0"),
    ("switcher", "after-stop", false, "2.0.0"),
    ("switcher", "after-flip", false, "2.0.0"),
    ("switcher", "after-start", false, "2.0.0"),
    ("switcher", "after-verify", false, "2.0.0"),
    ("switcher", "before-state-write", false, "2.0.0"),
    ("switcher", "mid-rollback", true, "1.0.0"),
    ("switcher", "before-state-write", true, "1.0.0"),
];

/// A drop folder on /dev/shm (another filesystem), so the collector copies.
fn shm_drop(sb: &Sandbox) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cutover-hostile-drop-")
        .tempdir_in("/dev/shm")
        .expect("a folder under /dev/shm (the mid-copy point needs another filesystem)");
    let config = fs::read_to_string(&sb.config).unwrap();
    sb.write_config_text(&format!(
        "drop = {:?}\n{config}",
        dir.path().display().to_string()
    ));
    dir
}

fn killed(sb: &Sandbox, bin: &str, point: &str) -> String {
    let run = sb
        .run_cmd(Command::new(fault_bin(bin)).env("CUTOVER_FAULT_POINT", format!("{bin}:{point}")));
    assert_eq!(
        run.output.status.signal(),
        Some(9),
        "{bin} did not stop at {point}\n{run}"
    );
    "SIGKILL".into()
}

fn one_case(bin: &str, point: &str, broken: bool, want: &str) -> String {
    let sb = demo_sandbox("", "");
    let drop = shm_drop(&sb);
    let v1 = ArchiveBuilder::demo("full", "1.0.0").minute(1);
    v1.drop_into(drop.path());
    sb.run("collector", &[]).success();
    sb.run("switcher", &[]).success();
    // Big enough for mid-copy to stop half-way (64 KiB blocks), with
    // enough entries for mid-unpack.
    let mut v2 = ArchiveBuilder::demo("full", "2.0.0")
        .minute(2)
        .file("frontend/noise.bin", noise(512 << 10));
    if broken {
        v2 = v2.file("backend/BEHAVIOUR", "exit");
    }
    v2.drop_into(drop.path());

    let how = if bin == "collector" {
        killed(&sb, "collector", point)
    } else {
        sb.run("collector", &[]).success();
        killed(&sb, "switcher", point)
    };
    // Right after the kill the old release must still be whole somewhere.
    let up_after_kill = cutover_tests::net::listening(sb.backend_port);

    // One normal minute.
    sb.run("collector", &[]).success();
    let run = sb.run("switcher", &[]);
    let context = format!("{bin}:{point}");
    assert!(
        matches!(run.code(), 0 | 3),
        "the normal pass after {context} must end with a release running\n{run}"
    );
    assert_serves(&sb, &run, want);
    let ids = assert_consistent(&sb, &run);
    assert!(
        ids.len() == 2 && ids.iter().all(|(_, v)| v == want),
        "current/ after {context}: {ids:?}\n{run}"
    );
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["components"]["backend"]["running"]["version"], want,
        "{context}\n{run}"
    );
    // No artifact lost or taken twice.
    let staged = sb.names("staging");
    for a in [&v1, &v2] {
        let n = a.name();
        let count = staged.iter().filter(|s| **s == n.file_name()).count();
        assert_eq!(
            count,
            1,
            "{} staged {count} times ({context})\n{run}",
            n.file_name()
        );
        assert!(
            staged.contains(&n.marker_name()),
            "{} staged without its marker ({context})\n{run}",
            n.file_name()
        );
        let bytes = fs::read(sb.path("staging").join(n.file_name())).unwrap();
        assert!(
            bytes == a.bytes(),
            "{} staged whole ({context})",
            n.file_name()
        );
    }
    assert!(
        staged.iter().all(|s| !s.starts_with('.')),
        "temporary files left in staging: {staged:?} ({context})\n{run}"
    );
    let left: Vec<_> = fs::read_dir(drop.path()).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the drop folder is not empty ({context})\n{run}"
    );
    if broken {
        assert!(
            state["failed"].get(v2.name().file_name()).is_some(),
            "{context}\n{run}"
        );
    }
    format!(
        "{how}, backend {} after the kill; next minute: switcher exit {}, serves {want}, current/ complete, state parses, each artifact staged once",
        if up_after_kill { "up" } else { "down" },
        run.code()
    )
}

#[test]
fn both_binaries_killed_at_every_fault_point_then_one_minute_repairs_everything() {
    let mut rows = Vec::new();
    for &(bin, point, broken, want) in POINTS {
        let outcome = one_case(bin, point, broken, want);
        rows.push(format!(
            "{:<32} | {:<6} | {outcome}",
            format!("{bin}:{point}"),
            if broken { "broken" } else { "good" }
        ));
    }
    println!("\n{:<32} | {:<6} | outcome", "stop point", "v2");
    println!("{:-<32}-+-{:-<6}-+-{:-<60}", "", "", "");
    for r in rows {
        println!("{r}");
    }
}
