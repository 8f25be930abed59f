//! The drop folder on another filesystem (/dev/shm, a tmpfs): the move is a
//! verified copy into staging, renamed into place, then the source removed.

use std::fs;
use std::process::Command;

use cutover_tests::Sandbox;

use crate::support::{
    assert_no_temps, assert_staged, big_artifact, collect, collect_ok, collector_bin, reason,
    ShmDrop,
};

#[test]
fn cross_filesystem_move_is_a_verified_copy() {
    let sb = Sandbox::new();
    let shm = ShmDrop::new(&sb);
    let a = big_artifact("full", "1.0.0", 10, 3 << 20);
    let b = big_artifact("frontend", "1.0.1", 11, 100 << 10);
    a.drop_into(shm.path());
    b.drop_into(shm.path());
    let run = collect_ok(&sb);
    assert_staged(&sb, shm.path(), &a, &run);
    assert_staged(&sb, shm.path(), &b, &run);
    assert_no_temps(&sb, &run);
    assert!(fs::read_dir(shm.path()).unwrap().next().is_none(), "{run}");
}

#[test]
fn cross_filesystem_bad_digest_is_quarantined_and_nothing_staged() {
    let sb = Sandbox::new();
    let shm = ShmDrop::new(&sb);
    let a = big_artifact("full", "1.0.0", 10, 200 << 10);
    let name = a.name().file_name().to_string();
    a.drop_into(shm.path());
    let path = shm.path().join(&name);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100_000] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    assert_no_temps(&sb, &run);
    assert_eq!(fs::read(sb.path("quarantine").join(&name)).unwrap(), bytes);
    assert!(reason(&sb, &name, &run).contains("digest mismatch"));
    assert!(fs::read_dir(shm.path()).unwrap().next().is_none(), "{run}");
}

/// A copy that cannot be written (a file size limit stands in for a full
/// disk: the write fails the same way, midway) removes its temporary file,
/// leaves the drop folder as it was, says which path, and exits 1.
#[test]
fn failed_copy_leaves_drop_untouched_and_says_why() {
    let sb = Sandbox::new();
    let shm = ShmDrop::new(&sb);
    let a = big_artifact("full", "1.0.0", 10, 256 << 10);
    let name = a.name().file_name().to_string();
    a.drop_into(shm.path());
    let before = fs::read(shm.path().join(&name)).unwrap();
    // 64 blocks of 512 bytes: the state file fits, the artifact does not.
    let script = format!(
        "ulimit -f 64; trap '' XFSZ; exec '{}'",
        collector_bin().display()
    );
    let run = sb.run_cmd(Command::new("sh").args(["-c", &script]));
    run.code_is(1);
    run.stderr_has(&shm.path().join(&name).display().to_string());
    run.stderr_has("staging");
    run.stderr_has("File too large");
    assert_eq!(fs::read(shm.path().join(&name)).unwrap(), before, "{run}");
    assert!(shm.path().join(format!("{name}.sha256")).exists(), "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    assert_no_temps(&sb, &run);
    let state = sb.state_json("collector.json");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("File too large")),
        "{state}"
    );
    // Once there is room, the next pass takes it.
    let run = collect(&sb, &[]);
    run.success();
    assert_staged(&sb, shm.path(), &a, &run);
    assert!(sb.state_json("collector.json")["last_error"].is_null());
}
