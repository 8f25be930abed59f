//! Partial and slow uploads, through cron minutes of both binaries: writers
//! (separate `sh`/`dd` processes) append to artifacts in the drop folder
//! for seconds, with and without a marker at the end; a marker arrives
//! before its artifact (written in place, or as a `.part` renamed in); a
//! marker's digest is wrong; a marker's artifact never comes. Nothing
//! incomplete is ever staged or deployed, and what waits past
//! `stale_upload_after` is reported (state/collector.json `stale: true`,
//! and an `upload-waiting` problem on the status page), not left silent.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use artifact_name::ArtifactName;
use cutover_tests::archive::marker;
use cutover_tests::{ArchiveBuilder, Run, Sandbox};
use sha2::{Digest, Sha256};

use super::archives::noise;
use super::{assert_consistent, assert_serves, demo, demo_sandbox};

/// A writer process appending `bytes` to `dest` in 16 KiB chunks, one
/// every 0.2 s, then (if `marker_after`) writing the marker beside it.
fn slow_writer(sb: &Sandbox, dest: &Path, bytes: &[u8], marker_after: Option<&str>) -> Child {
    let src = sb.dir().join(format!(
        "src-{}",
        dest.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&src, bytes).unwrap();
    let chunks = bytes.len().div_ceil(16 << 10);
    let mut script = format!(
        "set -e; i=0; while [ $i -lt {chunks} ]; do \
         dd if='{src}' of='{dest}' bs=16384 skip=$i seek=$i count=1 conv=notrunc status=none; \
         i=$((i+1)); sleep 0.2; done",
        src = src.display(),
        dest = dest.display(),
    );
    if let Some(m) = marker_after {
        let mfile = sb.dir().join(format!(
            "marker-{}",
            dest.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&mfile, m).unwrap();
        script.push_str(&format!(
            "; cp '{}' '{}.sha256'",
            mfile.display(),
            dest.display()
        ));
    }
    Command::new("sh").args(["-c", &script]).spawn().unwrap()
}

/// Every artifact staged with its marker is whole: its bytes match one of
/// the artifacts this test knows, by name.
#[track_caller]
fn assert_only_whole_staged(sb: &Sandbox, known: &[(String, Vec<u8>)], run: &Run) {
    for name in sb.names("staging") {
        if name.ends_with(".sha256") || name.starts_with('.') {
            continue;
        }
        if !sb.names("staging").contains(&format!("{name}.sha256")) {
            continue;
        }
        let bytes = fs::read(sb.path("staging").join(&name)).unwrap();
        let want = known
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} staged, but it was never complete\n{run}"));
        assert!(
            Sha256::digest(&bytes) == Sha256::digest(&want.1),
            "{name} staged incomplete ({} of {} bytes)\n{run}",
            bytes.len(),
            want.1.len()
        );
    }
}

fn big(kind: &str, version: &str, minute: i64) -> ArchiveBuilder {
    ArchiveBuilder::demo(kind, version)
        .minute(minute)
        .file("frontend/noise.bin", noise(200 << 10))
}

fn path_of(sb: &Sandbox, n: &ArtifactName) -> PathBuf {
    sb.drop_dir().join(n.file_name())
}

#[test]
fn incomplete_uploads_are_never_taken_and_stale_ones_are_reported() {
    let sb = demo_sandbox("", "[collector]\nstale_upload_after = \"2s\"\n");
    demo("full", "1.0.0", 1).drop_into(&sb.drop_dir());
    sb.run("collector", &[]).success();
    sb.run("switcher", &[]).success();

    // A: appended for seconds, no marker ever.
    let a = big("full", "2.0.0", 2);
    // B: appended for seconds, then its marker.
    let b = big("frontend", "3.0.0", 3);
    // C: its marker first, then the artifact written as a .part and renamed.
    let c = big("frontend", "4.0.0", 4);
    // D: its marker first, then the artifact written in place, slowly.
    let d = big("full", "5.0.0", 5);
    // E: complete, but its marker's digest is another file's.
    let e = demo("full", "6.0.0", 6);
    // F: a marker whose artifact never comes.
    let f = demo("full", "7.0.0", 7);
    // G: complete, its marker created but not yet written (empty); older
    // than what runs, so it is only collected (the checks stay simple).
    let g = demo("frontend", "0.8.0", 0);
    let known: Vec<(String, Vec<u8>)> = [&a, &b, &c, &d, &e, &g]
        .iter()
        .map(|x| (x.name().file_name().to_string(), x.bytes()))
        .chain([(
            demo("full", "1.0.0", 1).name().file_name().to_string(),
            demo("full", "1.0.0", 1).bytes(),
        )])
        .collect();

    let drop = sb.drop_dir();
    let (an, bn, cn, dn, en, fname) = (a.name(), b.name(), c.name(), d.name(), e.name(), f.name());
    let gn = g.name();

    fs::write(
        drop.join(cn.marker_name()),
        marker(cn.file_name(), &c.bytes()),
    )
    .unwrap();
    fs::write(
        drop.join(dn.marker_name()),
        marker(dn.file_name(), &d.bytes()),
    )
    .unwrap();
    fs::write(drop.join(en.file_name()), e.bytes()).unwrap();
    fs::write(
        drop.join(en.marker_name()),
        marker(en.file_name(), b"another build"),
    )
    .unwrap();
    fs::write(
        drop.join(fname.marker_name()),
        marker(fname.file_name(), &f.bytes()),
    )
    .unwrap();
    let c_part = drop.join(format!(".{}.part", cn.file_name()));
    let mut writers = vec![
        slow_writer(&sb, &path_of(&sb, &an), &a.bytes(), None),
        slow_writer(
            &sb,
            &path_of(&sb, &bn),
            &b.bytes(),
            Some(&marker(bn.file_name(), &b.bytes())),
        ),
        slow_writer(&sb, &c_part, &c.bytes(), None),
        slow_writer(&sb, &path_of(&sb, &dn), &d.bytes(), None),
    ];

    // Cron minutes, back to back, while the writers write.
    let mut minutes = 0;
    loop {
        let done = writers.iter_mut().all(|w| w.try_wait().unwrap().is_some());
        sb.run("collector", &[]).success();
        let run = sb.run("switcher", &[]);
        assert!(matches!(run.code(), 0 | 3), "{run}");
        assert_only_whole_staged(&sb, &known, &run);
        assert!(
            !sb.names("staging").contains(&an.file_name().to_string()),
            "A has no marker: it must never be staged\n{run}"
        );
        minutes += 1;
        if done {
            break;
        }
    }
    for w in &mut writers {
        assert!(w.wait().unwrap().success());
    }
    // G, whole, with its marker created but still empty: it waits.
    fs::write(drop.join(gn.file_name()), g.bytes()).unwrap();
    fs::write(drop.join(gn.marker_name()), b"").unwrap();
    let run = sb.run("collector", &[]);
    run.success();
    assert!(
        drop.join(gn.file_name()).is_file() && !sb.path("quarantine").join(gn.file_name()).exists(),
        "an empty marker is one being written: G must wait\n{run}"
    );
    fs::write(
        drop.join(gn.marker_name()),
        marker(gn.file_name(), &g.bytes()),
    )
    .unwrap();
    // C's upload completes: renamed into place, as rsync does.
    fs::rename(&c_part, path_of(&sb, &cn)).unwrap();
    let collected = sb.run("collector", &["--json"]);
    collected.success();
    let summary: serde_json::Value = serde_json::from_str(&collected.stdout()).unwrap();
    assert!(
        summary["collected"]
            .as_array()
            .is_some_and(|c| c.iter().any(|n| n == gn.file_name())),
        "G, its marker written, is collected\n{collected}"
    );
    let run = sb.run("switcher", &[]);
    assert!(matches!(run.code(), 0 | 3), "{run}");
    assert_only_whole_staged(&sb, &known, &run);

    // B and C came whole with their markers: staged and, C being newest
    // of the frontend artifacts, deployed.
    let staged = sb.names("staging");
    for n in [&bn, &cn] {
        assert!(
            staged.contains(&n.file_name().to_string()),
            "{} should be staged after {minutes} minutes\n{run}",
            n.file_name()
        );
    }
    assert_serves(&sb, &run, "1.0.0");
    let ids = assert_consistent(&sb, &run);
    assert!(
        ids.contains(&("frontend".to_string(), "4.0.0".to_string())),
        "{ids:?}\n{run}"
    );
    // D was partial when its marker was read: never staged; reported
    // (quarantined with the mismatch, or waiting).
    assert!(!staged.contains(&dn.file_name().to_string()), "{run}");
    let d_quarantined = fs::read_to_string(
        sb.path("quarantine")
            .join(format!("{}.reason", dn.file_name())),
    )
    .is_ok_and(|r| r.contains("digest mismatch"));
    let d_waiting = sb.state_json("collector.json")["waiting"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|w| w["name"] == dn.file_name() || w["name"] == dn.marker_name());
    assert!(
        d_quarantined || d_waiting,
        "D is neither quarantined nor reported waiting\n{run}"
    );
    // E: quarantined with both digests named.
    let reason = fs::read_to_string(
        sb.path("quarantine")
            .join(format!("{}.reason", en.file_name())),
    )
    .unwrap_or_else(|err| panic!("E not quarantined: {err}\n{run}"));
    assert!(reason.contains("digest mismatch"), "{reason}");

    // Past stale_upload_after, A and F are reported as stale.
    std::thread::sleep(Duration::from_millis(2500));
    sb.run("collector", &[]).success();
    let run = sb.run("switcher", &[]);
    run.success();
    let state = sb.state_json("collector.json");
    let waiting = state["waiting"].as_array().cloned().unwrap_or_default();
    for (what, name) in [
        ("A, without a marker", an.file_name().to_string()),
        ("F, a marker without its artifact", fname.marker_name()),
    ] {
        let w = waiting
            .iter()
            .find(|w| w["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{what} is not reported as waiting: {state:#}\n{run}"));
        assert_eq!(w["stale"], true, "{what}: {state:#}\n{run}");
        assert!(
            w["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{what}: {state:#}"
        );
    }
    let doc = sb.state_json("deploy-status.json");
    let problems: Vec<String> = doc["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|p| p["rule"] == "upload-waiting")
        .map(|p| p["message"].as_str().unwrap_or_default().to_string())
        .collect();
    for name in [an.file_name().to_string(), fname.marker_name()] {
        assert!(
            problems.iter().any(|m| m.contains(&name)),
            "no upload-waiting problem names {name}: {problems:#?}\n{doc:#}"
        );
    }
    let html = fs::read_to_string(sb.path("state/deploy-status.html")).unwrap();
    assert!(html.contains(an.file_name()), "the page names A");
    // Still nothing incomplete anywhere it could run from.
    assert_only_whole_staged(&sb, &known, &run);
    assert_serves(&sb, &run, "1.0.0");
}
