//! What was checked is exactly what runs: the digest is computed in the
//! read that unpacks, a release is on disk before current/ points to it,
//! and two artifacts with one release id never fail pass after pass.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artifact_name::Ext;
use cutover_tests::{bins, Run};

use crate::common::*;

/// Bytes that do not compress: a xorshift stream.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The one-letter state of process `pid` from /proc (`T` when stopped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_staged_artifact_rewritten_mid_unpack_is_refused_and_nothing_is_put_in_place() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    assert!(pid.is_some());

    // Plain tar, so that a byte written near the end of the file is a byte
    // of backend/blob's data, read long after the pause point.
    let v2 = demo("full", "2.0.0", 2)
        .ext(Ext::Tar)
        .file("backend/blob", noise(4 << 20, 7));
    let path = stage(&sb, &v2);
    let name = v2.name();

    let mut child = Command::new(bins::fault_bin("switcher"))
        .env("CUTOVER_CONFIG", &sb.config)
        .env("CUTOVER_FAULT_PAUSE", "switcher:mid-unpack")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the fault-injection switcher");
    let deadline = Instant::now() + Duration::from_secs(60);
    while proc_state(child.id()) != Some('T') {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().ok();
            panic!("the switcher never paused at mid-unpack: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The upload user can still write the staged file: it does so in place.
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&noise(4096, 99), len - 600_000).unwrap();
    drop(f);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        cmd: "switcher (paused at mid-unpack, staged file rewritten, continued)".into(),
        output,
        tree: cutover_tests::sandbox::listing(sb.dir()),
    };
    run.code_is(3).stderr_has("marker says");
    let state = sb.state_json("switcher.json");
    let failure = &state["failed"][name.file_name()];
    assert_eq!(failure["step"], "digest", "{run}\n{state:#}");
    let reason = failure["reason"].as_str().unwrap_or_default();
    let expected = std::fs::read_to_string(sb.path("staging").join(name.marker_name())).unwrap();
    let expected = expected.split_whitespace().next().unwrap();
    let actual = cutover_tests::archive::marker("x", &std::fs::read(&path).unwrap());
    let actual = actual.split_whitespace().next().unwrap();
    assert!(
        reason.contains(expected) && reason.contains(actual),
        "the reason names both digests ({actual} read, {expected} marked): {reason}\n{run}"
    );
    assert!(
        !sb.path("releases/backend").join(name.stem()).exists()
            && !sb.path("releases/frontend").join(name.stem()).exists(),
        "nothing may be renamed into place\n{run}"
    );
    assert!(
        !sb.names("releases").iter().any(|n| n.starts_with(".tmp")),
        "{run}"
    );
    assert_eq!(
        sb.backend_pid(),
        pid,
        "the service was never stopped\n{run}"
    );
    assert_serves(&sb, &run, "1.0.0");
}

#[test]
fn an_untouched_artifact_with_bytes_after_the_tar_end_is_checked_whole() {
    // The marker covers the whole file, also what tar never reads: a file
    // with junk after the end-of-archive blocks whose marker does not
    // cover the junk is refused, one whose marker does deploys.
    let sb = sandbox();
    let v1 = demo("full", "1.0.0", 1).ext(Ext::Tar);
    let path = stage(&sb, &v1);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"trailing bytes nobody unpacks").unwrap();
    drop(f);
    let run = switcher(&sb, &[]);
    run.code_is(3).stderr_has("marker says");

    let v2 = demo("full", "2.0.0", 2).ext(Ext::Tar);
    let path = stage(&sb, &v2);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"trailing bytes nobody unpacks");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(
        sb.path("staging").join(v2.name().marker_name()),
        cutover_tests::archive::marker(v2.name().file_name(), &bytes),
    )
    .unwrap();
    let run = switcher(&sb, &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
}

/// The system calls of `trace` (strace -o) in order, as lines.
fn traced(trace: &Path) -> Vec<String> {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_release_is_synced_to_disk_before_it_is_renamed_into_place_and_current_flips() {
    let sb = sandbox();
    stage(&sb, &demo("full", "1.0.0", 1));
    let trace = sb.dir().join("strace.out");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-qq",
        "-e",
        "trace=syncfs,fsync,rename,renameat,renameat2",
        "-o",
    ])
    .arg(&trace)
    .arg(switcher_bin());
    let run = sb.run_cmd(&mut cmd);
    run.success();
    let lines = traced(&trace);
    let id = demo("full", "1.0.0", 1).name().stem().to_string();
    let find = |what: &dyn Fn(&str) -> bool, label: &str| {
        lines
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("no {label} in the trace:\n{}\n{run}", lines.join("\n")))
    };
    let sync = find(&|l: &str| l.contains("syncfs("), "syncfs");
    let into_place = find(
        &|l: &str| l.contains("rename") && l.contains(&format!("releases/backend/{id}\"")),
        "rename of the release into place",
    );
    let flip = find(
        &|l: &str| l.contains("rename") && l.contains("current/backend\""),
        "rename flipping current/backend",
    );
    assert!(
        sync < into_place && into_place < flip,
        "syncfs (line {sync}) must come before the release is renamed into place (line {into_place}) and current/ flips (line {flip}):\n{}",
        lines.join("\n")
    );
    assert!(
        lines[sync].contains("= 0"),
        "syncfs must succeed: {}",
        lines[sync]
    );
}

#[test]
fn a_second_artifact_with_the_release_id_that_runs_fails_once_not_every_pass() {
    let sb = sandbox();
    let first = demo("full", "1.0.0", 1);
    stage(&sb, &first);
    switcher(&sb, &[]).success();
    let pid = sb.backend_pid();
    // Same kind, time, version and branch; another extension: one stem,
    // and a file name that sorts after the first (".tgz" > ".tar.gz").
    let twin = demo("full", "1.0.0", 1).ext(Ext::Tgz);
    assert_eq!(twin.name().stem(), first.name().stem());
    stage(&sb, &twin);

    let runs: Vec<Run> = (0..3).map(|_| switcher(&sb, &[])).collect();
    let failed: Vec<&Run> = runs.iter().filter(|r| r.code() != 0).collect();
    assert!(
        failed.len() <= 1,
        "at most one failing pass, got {}:\n{}",
        failed.len(),
        runs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let state = sb.state_json("switcher.json");
    let failure = &state["failed"][twin.name().file_name()];
    assert!(
        failure["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the release that runs")),
        "{state:#}"
    );
    assert_eq!(
        current(&sb, "backend").as_deref(),
        Some(first.name().stem())
    );
    assert_eq!(
        sb.backend_pid(),
        pid,
        "the running release was never touched"
    );
    assert_serves(&sb, &runs[2], "1.0.0");
}
