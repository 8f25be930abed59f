//! Uploads that are refused go to quarantine/ with a one-line reason, and
//! are never lost.

use std::fs;

use cutover_tests::Sandbox;

use crate::support::{age, artifact, assert_staged, collect_ok, reason, waiting};

#[test]
fn bad_digest_is_quarantined_with_its_marker() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    a.drop_into(&sb.drop_dir());
    // Corrupt one byte after the marker was written.
    let path = sb.drop_dir().join(&name);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("drop").is_empty(), "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    assert_eq!(
        fs::read(sb.path("quarantine").join(&name)).unwrap(),
        bytes,
        "{run}"
    );
    assert!(sb
        .path("quarantine")
        .join(format!("{name}.sha256"))
        .exists());
    let why = reason(&sb, &name, &run);
    assert!(why.contains("digest mismatch"), "{why}");
    // Quarantine is news: cron should mail it.
    run.stderr_has("quarantined");
}

#[test]
fn junk_name_with_marker_is_quarantined() {
    let sb = Sandbox::new();
    fs::write(sb.drop_dir().join("backup.zip"), b"junk").unwrap();
    fs::write(sb.drop_dir().join("backup.zip.sha256"), b"x").unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("drop").is_empty(), "{run}");
    assert_eq!(
        sb.names("quarantine"),
        ["backup.zip", "backup.zip.reason", "backup.zip.sha256"],
        "{run}"
    );
    let why = reason(&sb, "backup.zip", &run);
    assert!(why.contains("invalid artifact name"), "{why}");
    assert!(why.contains("extension"), "{why}");
}

#[test]
fn junk_name_without_marker_waits_then_is_quarantined_when_stale() {
    let sb = Sandbox::new();
    sb.write_config("[collector]\nstale_upload_after = \"10m\"\n");
    let fresh = sb.drop_dir().join("notes.txt");
    fs::write(&fresh, b"still being written, maybe").unwrap();
    let run = collect_ok(&sb);
    assert_eq!(sb.names("drop"), ["notes.txt"], "{run}");
    let w = waiting(&sb);
    assert!(
        w.iter()
            .any(|(n, r)| n == "notes.txt" && r.contains("invalid artifact name")),
        "{w:?}"
    );
    age(&fresh, 3600);
    let run = collect_ok(&sb);
    assert!(sb.names("drop").is_empty(), "{run}");
    let why = reason(&sb, "notes.txt", &run);
    assert!(why.contains("no marker arrived within 10m"), "{why}");
}

#[test]
fn unknown_kind_is_quarantined() {
    let sb = Sandbox::new();
    let a = artifact("mobile", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    a.drop_into(&sb.drop_dir());
    let run = collect_ok(&sb);
    assert!(sb.names("drop").is_empty(), "{run}");
    let why = reason(&sb, &name, &run);
    assert!(why.contains("\"mobile\""), "{why}");
    assert!(why.contains("not in the config"), "{why}");
    assert!(
        why.contains("full, frontend") || why.contains("frontend, full"),
        "{why}"
    );
}

#[test]
fn name_collisions_in_quarantine_never_overwrite() {
    let sb = Sandbox::new();
    for content in [&b"first"[..], b"second", b"third"] {
        fs::write(sb.drop_dir().join("junk.bin"), content).unwrap();
        fs::write(sb.drop_dir().join("junk.bin.sha256"), content).unwrap();
        collect_ok(&sb);
    }
    let names = sb.names("quarantine");
    let artifacts: Vec<&String> = names
        .iter()
        .filter(|n| !n.ends_with(".reason") && !n.ends_with(".sha256"))
        .collect();
    assert_eq!(artifacts.len(), 3, "{names:?}");
    let mut contents: Vec<Vec<u8>> = artifacts
        .iter()
        .map(|n| fs::read(sb.path("quarantine").join(n)).unwrap())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    for a in artifacts {
        assert!(names.contains(&format!("{a}.reason")), "{names:?}");
    }
}

#[test]
fn same_name_with_another_digest_is_quarantined_and_staged_stays() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    // The same name, other content, with a correct marker for it.
    let name = a.name().file_name().to_string();
    let other = b"another build under the same name".to_vec();
    fs::write(sb.drop_dir().join(&name), &other).unwrap();
    fs::write(
        sb.drop_dir().join(format!("{name}.sha256")),
        cutover_tests::archive::marker(&name, &other),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &a, &run);
    assert_eq!(fs::read(sb.path("quarantine").join(&name)).unwrap(), other);
    let why = reason(&sb, &name, &run);
    assert!(why.contains("already in staging"), "{why}");
}

#[test]
fn invalid_marker_content_is_quarantined() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    fs::write(sb.drop_dir().join(&name), a.bytes()).unwrap();
    fs::write(sb.drop_dir().join(format!("{name}.sha256")), "done\n").unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    let why = reason(&sb, &name, &run);
    assert!(why.contains("marker"), "{why}");
}

#[test]
fn orphan_marker_is_left_and_reported() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let marker = format!("{}.sha256", a.name().file_name());
    fs::write(
        sb.drop_dir().join(&marker),
        cutover_tests::archive::marker(a.name().file_name(), b"x"),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert_eq!(sb.names("drop"), std::slice::from_ref(&marker), "{run}");
    let w = waiting(&sb);
    assert!(
        w.iter()
            .any(|(n, r)| n == &marker && r.contains("without its artifact")),
        "{w:?}"
    );
}

#[test]
fn oversized_marker_is_quarantined_without_being_read_whole() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    fs::write(sb.drop_dir().join(&name), a.bytes()).unwrap();
    let mut big = cutover_tests::archive::marker(&name, &a.bytes()).into_bytes();
    big.resize(1 << 20, b' ');
    fs::write(sb.drop_dir().join(format!("{name}.sha256")), &big).unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    let why = reason(&sb, &name, &run);
    assert!(why.contains("4096 bytes"), "{why}");
    assert_eq!(
        fs::read(sb.path("quarantine").join(format!("{name}.sha256"))).unwrap(),
        big
    );
}
