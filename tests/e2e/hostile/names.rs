//! Hostile file names in the drop folder: newlines, control characters,
//! invalid UTF-8, 255-byte names, names that differ only in case. None of
//! them makes a run fail for the others: in the same cron minute the valid
//! artifacts beside them are collected and deployed, both binaries exit 0,
//! and what is refused is quarantined byte for byte with a one-line reason.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use artifact_name::{ArtifactName, Ext};
use chrono::{Duration, TimeZone, Utc};
use cutover_tests::archive::{epoch, marker};
use cutover_tests::{ArchiveBuilder, Sandbox};

use super::{assert_consistent, assert_serves, demo, demo_sandbox};

/// Writes `bytes` under the raw `name` and, when it fits, its marker.
fn plant(sb: &Sandbox, name: &[u8], bytes: &[u8]) {
    let drop = sb.drop_dir();
    fs::write(drop.join(OsStr::from_bytes(name)), bytes).unwrap();
    let mut m = name.to_vec();
    m.extend_from_slice(b".sha256");
    if m.len() <= 255 {
        let text = marker(&String::from_utf8_lossy(name), bytes);
        fs::write(drop.join(OsStr::from_bytes(&m)), text).unwrap();
    }
}

#[test]
fn hostile_names_never_stop_the_valid_artifacts_beside_them() {
    let sb = demo_sandbox("", "[collector]\nstale_upload_after = \"2s\"\n");
    demo("full", "1.0.0", 1).drop_into(&sb.drop_dir());
    let run = super::cron(&sb);
    run.success();

    let junk = demo("full", "9.9.9", 50).bytes();
    let mut hostile: Vec<Vec<u8>> = vec![
        b"full_20261126T005000Z_9.9.9_master\n.tar.gz".to_vec(),
        b"full_20261126T005000Z_9.9.9_master\r\x1b[2J\x07.tar.gz".to_vec(),
        b"full_20261126T005000Z_9.9.9_ma\xff\xfester.tar.gz".to_vec(),
        b"FULL_20261126T005000Z_9.9.9_master.tar.gz".to_vec(),
        b"full_20261126T005000Z_9.9.9_master.TAR.GZ".to_vec(),
        b"\x01\x02\x03".to_vec(),
    ];
    // 255 bytes, the longest name Linux takes (no room for a marker or a
    // reason file beside it), and not an artifact name.
    let mut long = b"junk-".to_vec();
    long.resize(255 - ".tar.gz".len(), b'x');
    long.extend_from_slice(b".tar.gz");
    hostile.push(long.clone());
    for name in &hostile {
        plant(&sb, name, &junk);
    }

    // Valid artifacts beside them: two branches that differ only in case
    // (both valid, distinct), a name of the longest length whose marker
    // still fits (248 bytes), and the newest, which must deploy now.
    let t = |m: i64| epoch() + Duration::minutes(m);
    let lower = ArchiveBuilder::demo("frontend", "2.0.0")
        .at(t(2))
        .branch("release/x");
    let upper = ArchiveBuilder::demo("frontend", "2.0.0")
        .at(t(2))
        .branch("Release/X");
    let prefix = format!("full_{}_3.0.0_", t(3).format("%Y%m%dT%H%M%SZ"));
    let branch = "b".repeat(248 - prefix.len() - ".tar.gz".len());
    let longest = ArchiveBuilder::demo("full", "3.0.0")
        .at(t(3))
        .branch(&branch);
    assert_eq!(longest.name().file_name().len(), 248);
    let newest = demo("full", "4.0.0", 4);
    for a in [&lower, &upper, &longest, &newest] {
        a.drop_into(&sb.drop_dir());
    }

    let collected = sb.run("collector", &["--json"]);
    collected.success();
    let summary: serde_json::Value = serde_json::from_str(&collected.stdout()).unwrap();
    let run = sb.run("switcher", &[]);
    run.success();
    assert_serves(&sb, &run, "4.0.0");
    let ids = assert_consistent(&sb, &run);
    assert!(ids.iter().all(|(_, v)| v == "4.0.0"), "{ids:?}\n{run}");
    // Each valid one was taken into staging by that very run (the
    // switcher may prune the older ones at once: nothing needs them).
    for a in [&lower, &upper, &longest, &newest] {
        let n = a.name();
        assert!(
            summary["collected"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == n.file_name())),
            "{} not collected\n{collected}",
            n.file_name()
        );
    }

    // The hostile ones with a marker are quarantined at once, each with a
    // one-line reason; the 255-byte one waits (it may still be being
    // written) until it is stale, then goes too.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let again = super::cron(&sb);
    again.success();
    let quarantine = sb.path("quarantine");
    for name in &hostile {
        let shown = String::from_utf8_lossy(name);
        // Byte for byte, except that a name too long to have a `.reason`
        // beside it is cut to leave room (the reason names it in full).
        let kept = &name[..name.len().min(255 - ".reason".len())];
        assert!(
            quarantine.join(OsStr::from_bytes(kept)).is_file(),
            "{shown:?} not quarantined\n{again}"
        );
        let mut reason = kept.to_vec();
        reason.extend_from_slice(b".reason");
        let text = fs::read(quarantine.join(OsStr::from_bytes(&reason))).unwrap();
        assert_eq!(
            text.iter().filter(|b| **b == b'\n').count(),
            1,
            "{shown:?}: {}",
            String::from_utf8_lossy(&text)
        );
        assert!(
            !text[..text.len() - 1].iter().any(u8::is_ascii_control),
            "{shown:?}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    // Neither run printed a raw control character (cron mails it).
    for r in [&collected, &run, &again] {
        assert!(
            !r.stderr().chars().any(|c| c.is_control() && c != '\n'),
            "{r}"
        );
    }
    assert!(
        sb.names("drop").is_empty(),
        "every drop entry is settled\n{again}"
    );
}

/// A name the contract accepts must be completable: its marker
/// `<name>.sha256` is 7 bytes longer and must still fit in the 255 bytes
/// Linux allows for a file name. Names of 249 to 255 bytes pass the
/// contract today, yet no upload of them can ever complete.
#[test]
fn every_name_the_contract_accepts_leaves_room_for_its_marker() {
    let prefix = "full_20261126T000300Z_3.0.0_";
    for len in [248usize, 249, 255] {
        let branch = "b".repeat(len - prefix.len() - ".tar.gz".len());
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 0, 3, 0).unwrap();
        let built = ArtifactName::new("full", t, "3.0.0", &branch, Ext::TarGz);
        let fits = len + ".sha256".len() <= 255;
        if fits {
            let n = built.unwrap_or_else(|e| panic!("{len} bytes: {e}"));
            assert_eq!(n.file_name().len(), len);
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(n.marker_name()), b"x").unwrap();
        } else {
            assert!(
                built.is_err(),
                "a {len}-byte name is accepted, but its marker ({} bytes) cannot exist on Linux",
                len + 7
            );
        }
    }
}
