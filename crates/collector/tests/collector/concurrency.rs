//! Overlapping runs: the lock keeps them from interleaving.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use cutover_tests::{ArchiveBuilder, Sandbox};

use crate::support::{
    assert_no_temps, assert_staged, big_artifact, collect, collector_bin, ShmDrop,
};

/// Starts `n` collectors at once, waits for all, and checks each exited 0.
fn race(sb: &Sandbox, n: usize) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(collector_bin())
                .env("CUTOVER_CONFIG", &sb.config)
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{o:?}\n{}", sb.listing());
    }
    outputs
}

fn check_each_once(sb: &Sandbox, drop: &Path, artifacts: &[ArchiveBuilder]) {
    // Runs that lost the race exited early; one more run finishes anything
    // a winner had not reached (there is none, but it must do no harm).
    let run = collect(sb, &[]);
    run.success();
    for a in artifacts {
        assert_staged(sb, drop, a, &run);
    }
    let names = sb.names("staging");
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    assert_eq!(names.len(), artifacts.len() * 2, "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");
    assert_no_temps(sb, &run);
    assert!(fs::read_dir(drop).unwrap().next().is_none(), "{run}");
}

#[test]
fn concurrent_collectors_move_each_artifact_exactly_once() {
    let sb = Sandbox::new();
    let artifacts: Vec<_> = (0..12)
        .map(|i| big_artifact("full", &format!("1.0.{i}"), i, 64 << 10))
        .collect();
    for a in &artifacts {
        a.drop_into(&sb.drop_dir());
    }
    race(&sb, 6);
    check_each_once(&sb, &sb.drop_dir(), &artifacts);
}

#[test]
fn concurrent_collectors_across_filesystems() {
    let sb = Sandbox::new();
    let shm = ShmDrop::new(&sb);
    let artifacts: Vec<_> = (0..6)
        .map(|i| big_artifact("frontend", &format!("2.0.{i}"), i, 1 << 20))
        .collect();
    for a in &artifacts {
        a.drop_into(shm.path());
    }
    race(&sb, 4);
    check_each_once(&sb, shm.path(), &artifacts);
}

#[test]
fn lock_held_by_another_process_exits_0_with_one_line() {
    let sb = Sandbox::new();
    let a = big_artifact("full", "1.0.0", 1, 1024);
    a.drop_into(&sb.drop_dir());
    let state = sb.path("state");
    fs::create_dir_all(&state).unwrap();
    // Another process: flock(1) holds the lock while `cat` waits for the
    // end of its input (-o: cat itself does not inherit the lock).
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(state.join("collector.lock"))
        .arg("cat")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it really holds it.
    let lock_path = state.join("collector.lock");
    for _ in 0..100 {
        if deploy_root::lock::try_lock(&lock_path).unwrap().is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let verbose = collect(&sb, &["-v"]);
    let quiet = collect(&sb, &[]);
    let json = collect(&sb, &["--json"]);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    verbose.success();
    let stderr = verbose.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{verbose}");
    assert!(lines[0].contains("holds"), "{verbose}");
    quiet.success();
    assert_eq!(quiet.stderr(), "", "{quiet}");
    json.success();
    let summary: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(summary["locked"], true, "{json}");
    assert_eq!(sb.names("staging").len(), 0, "{quiet}");
    assert_eq!(sb.names("drop").len(), 2, "{quiet}");
    // Once the lock is free, the next run does the work.
    let run = collect(&sb, &[]);
    run.success();
    assert_eq!(sb.names("staging").len(), 2, "{run}");
}
