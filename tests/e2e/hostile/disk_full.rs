//! A full disk: staging/ (then releases/) on a tiny tmpfs mounted by the
//! test, the drop folder on the main filesystem so that the collector
//! copies. When the copy (or the unpack) runs out of space, the artifact
//! stays where it was (drop/, resp. staging/), the running release is
//! untouched (same pid, still answering), the error says which folder is
//! full, and the first pass after space is freed goes through.
//!
//! Mounting needs root; as another user these tests fail and say so, they
//! never skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_tests::packages::is_root;
use cutover_tests::Sandbox;

use super::archives::noise;
use super::{assert_consistent, assert_serves, cron, demo, demo_sandbox};

/// A tmpfs of `size` mounted on a folder; unmounted when dropped.
#[derive(Debug)]
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "the disk-full tests mount a small tmpfs and need root: run ./tests/run as root"
        );
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Fills the filesystem up to `leave` free bytes with a dot file (which
    /// neither binary takes for one of its own).
    fn fill(&self, leave: u64) -> PathBuf {
        let free = free_bytes(&self.dir);
        let filler = self.dir.join(".filler");
        let size = free.saturating_sub(leave);
        fs::write(&filler, vec![0xa5u8; size as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // A process still inside it (a backend started from it): detach.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df on {}: {out:?}", dir.display()))
}

/// A full release whose frontend holds 3 MiB that does not compress.
fn heavy(version: &str, minute: i64) -> cutover_tests::ArchiveBuilder {
    demo("full", version, minute).file("frontend/noise.bin", noise(3 << 20))
}

fn deployed_v1(sb: &Sandbox) -> i32 {
    demo("full", "1.0.0", 1).drop_into(&sb.drop_dir());
    let run = cron(sb);
    run.success();
    assert_serves(sb, &run, "1.0.0");
    sb.backend_pid().unwrap()
}

#[test]
fn staging_full_mid_copy_keeps_the_upload_in_drop_and_the_next_pass_takes_it() {
    let sb = demo_sandbox("", "");
    let staging = Tmpfs::mount(&sb.path("staging"), "8m");
    let pid = deployed_v1(&sb);

    let v2 = heavy("2.0.0", 2);
    let name = v2.name();
    v2.drop_into(&sb.drop_dir());
    let filler = staging.fill(1 << 20);
    let run = sb.run("collector", &[]);
    run.code_is(1);
    let staging_dir = sb.path("staging").display().to_string();
    run.stderr_has(&format!("the filesystem holding {staging_dir} is full"));
    let drop = sb.drop_dir();
    assert!(
        fs::read(drop.join(name.file_name())).unwrap() == v2.bytes(),
        "the upload stays whole in drop/\n{run}"
    );
    assert!(drop.join(name.marker_name()).is_file(), "{run}");
    assert!(
        !sb.names("staging")
            .iter()
            .any(|n| n.contains("2.0.0") || n.starts_with(".collector")),
        "nothing half-copied is left in staging\n{run}"
    );
    let state = sb.state_json("collector.json");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("is full")),
        "{state:#}"
    );
    let sw = sb.run("switcher", &[]);
    sw.success();
    assert_eq!(sb.backend_pid(), Some(pid), "{sw}");
    assert_serves(&sb, &sw, "1.0.0");

    fs::remove_file(filler).unwrap();
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    assert_consistent(&sb, &run);
    assert!(sb.names("drop").is_empty(), "{run}");
    std::mem::drop(staging);
}

#[test]
fn releases_full_mid_unpack_keeps_the_artifact_staged_and_the_next_pass_deploys_it() {
    let sb = demo_sandbox("", "");
    let releases = Tmpfs::mount(&sb.path("releases"), "8m");
    let pid = deployed_v1(&sb);

    let v2 = heavy("2.0.0", 2);
    let name = v2.name();
    v2.drop_into(&sb.drop_dir());
    sb.run("collector", &[]).success();
    let filler = releases.fill(1 << 20);
    let run = sb.run("switcher", &[]);
    assert_ne!(
        run.code(),
        0,
        "a pass that could not unpack is not a success\n{run}"
    );
    let releases_dir = sb.path("releases").display().to_string();
    assert!(
        run.stderr().contains(&releases_dir) && run.stderr().contains("is full"),
        "the error names the full folder {releases_dir}\n{run}"
    );
    assert!(
        sb.names("staging").contains(&name.file_name().to_string()),
        "the artifact stays in staging\n{run}"
    );
    let state = sb.state_json("switcher.json");
    assert!(
        state["failed"].get(name.file_name()).is_none(),
        "a full disk is the machine's fault, not the artifact's: it must not be marked failed\n{state:#}\n{run}"
    );
    assert_eq!(sb.backend_pid(), Some(pid), "{run}");
    assert_serves(&sb, &run, "1.0.0");
    assert_consistent(&sb, &run);

    fs::remove_file(filler).unwrap();
    let run = sb.run("switcher", &[]);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    assert_consistent(&sb, &run);
    // Stop the backend before the tmpfs holding its release goes.
    let (_, stop) = sb.demo_backend_commands();
    sb.run_cmd(Command::new("sh").args(["-c", &stop])).success();
    drop(releases);
}
