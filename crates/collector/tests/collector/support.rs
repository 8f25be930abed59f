//! Helpers shared by the collector's tests.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_tests::{ArchiveBuilder, Run, Sandbox};
use tempfile::TempDir;

/// The collector built for this test run.
pub fn collector_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_collector"))
}

/// Runs the collector against the sandbox.
pub fn collect(sb: &Sandbox, args: &[&str]) -> Run {
    sb.run_cmd(Command::new(collector_bin()).args(args))
}

/// Runs the collector, which must exit 0, and returns the run.
#[track_caller]
pub fn collect_ok(sb: &Sandbox) -> Run {
    let run = collect(sb, &[]);
    run.success();
    run
}

/// An artifact with a little content, built `minute` minutes after a fixed
/// epoch.
pub fn artifact(kind: &str, version: &str, minute: i64) -> ArchiveBuilder {
    ArchiveBuilder::demo(kind, version).minute(minute)
}

/// Asserts that `b` is in staging, whole, with its marker, exactly once,
/// and gone from the drop folder `drop`.
#[track_caller]
pub fn assert_staged(sb: &Sandbox, drop: &Path, b: &ArchiveBuilder, run: &Run) {
    let name = b.name();
    let file = name.file_name();
    let staged = sb.path("staging").join(file);
    let bytes = fs::read(&staged).unwrap_or_else(|e| panic!("{file} not staged ({e})\n{run}"));
    assert!(
        bytes == b.bytes(),
        "{file} staged with other content\n{run}"
    );
    let marker = fs::read_to_string(sb.path("staging").join(name.marker_name()))
        .unwrap_or_else(|e| panic!("{file} staged without its marker ({e})\n{run}"));
    assert_eq!(
        marker,
        cutover_tests::archive::marker(file, &bytes),
        "staged marker\n{run}"
    );
    let count = sb.names("staging").iter().filter(|n| *n == file).count();
    assert_eq!(count, 1, "{run}");
    assert!(
        !drop.join(file).exists(),
        "{file} still in the drop folder\n{run}"
    );
    assert!(
        !drop.join(name.marker_name()).exists(),
        "the marker of {file} still in the drop folder\n{run}"
    );
}

/// Asserts that no temporary file is left in staging or quarantine.
#[track_caller]
pub fn assert_no_temps(sb: &Sandbox, run: &Run) {
    for dir in ["staging", "quarantine"] {
        let temps: Vec<String> = sb
            .names(dir)
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(
            temps.is_empty(),
            "temporary files in {dir}: {temps:?}\n{run}"
        );
    }
}

/// A drop folder on /dev/shm, another filesystem than the sandbox's.
#[derive(Debug)]
pub struct ShmDrop {
    /// The temp dir (removed on drop).
    pub dir: TempDir,
}

impl ShmDrop {
    /// Makes the folder and points the sandbox's config at it. Fails the
    /// test when /dev/shm is not another filesystem than the sandbox.
    pub fn new(sb: &Sandbox) -> ShmDrop {
        let dir = tempfile::Builder::new()
            .prefix("cutover-drop-")
            .tempdir_in("/dev/shm")
            .expect("a folder under /dev/shm (cross-filesystem tests need it)");
        let shm_dev = fs::metadata(dir.path()).unwrap().dev();
        let sb_dev = fs::metadata(sb.dir()).unwrap().dev();
        assert_ne!(
            shm_dev,
            sb_dev,
            "/dev/shm is on the same filesystem as {}: the cross-filesystem test cannot run here \
             (mount a tmpfs on /dev/shm)",
            sb.dir().display()
        );
        let config = fs::read_to_string(&sb.config).unwrap();
        let text = format!("drop = {:?}\n{config}", dir.path().display().to_string());
        sb.write_config_text(&text);
        ShmDrop { dir }
    }

    /// The drop folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The names in a folder as raw bytes, sorted.
pub fn raw_names(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    names
}

/// Sets a file's mtime to `secs` seconds ago.
pub fn age(path: &Path, secs: u64) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// The `waiting` entries of state/collector.json as (name, reason).
pub fn waiting(sb: &Sandbox) -> Vec<(String, String)> {
    let state = sb.state_json("collector.json");
    state["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_string(),
                w["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The reason file of a quarantined name, which must be one line.
#[track_caller]
pub fn reason(sb: &Sandbox, name: &str, run: &Run) -> String {
    let path = sb.path("quarantine").join(format!("{name}.reason"));
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no reason file {} ({e})\n{run}", path.display()));
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "the reason is not one line: {text:?}\n{run}"
    );
    assert!(
        text.contains(" UTC: "),
        "the reason says when, in UTC: {text:?}"
    );
    text
}

/// An artifact of about `size` bytes that does not compress (so a copy of
/// it takes many blocks).
pub fn big_artifact(kind: &str, version: &str, minute: i64, size: usize) -> ArchiveBuilder {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64;
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    artifact(kind, version, minute).file("frontend/noise.bin", noise)
}
