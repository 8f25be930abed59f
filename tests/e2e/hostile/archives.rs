//! Hostile archives through the real binaries: CI's upload is whatever its
//! build made, so each of these is delivered to the drop folder with a
//! correct marker, collected, and tried by the switcher, which must refuse
//! it with a reason naming the entry (in state/switcher.json), write
//! nothing outside releases/.tmp-*, and leave the running service alone
//! (same pid, still answering).
//!
//! The archives are built header by header: the `tar` builder refuses most
//! of these names, and ArchiveBuilder only makes well-formed ones.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use artifact_name::{ArtifactName, Compression, Ext};
use chrono::Duration;
use cutover_tests::archive::{compress, epoch, marker};
use cutover_tests::Sandbox;

use super::{assert_consistent, assert_serves, cron, demo, demo_sandbox, paths, Sentinel};

/// One raw tar entry.
#[derive(Clone, Debug)]
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    link: Vec<u8>,
    data: Vec<u8>,
    mode: u32,
    /// The size the header declares, when it lies about the data.
    declared: Option<u64>,
}

fn raw(name: &str, kind: tar::EntryType, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        link: Vec::new(),
        data: data.to_vec(),
        mode: if kind.is_dir() { 0o755 } else { 0o644 },
        declared: None,
    }
}

fn dir(name: &str) -> Raw {
    raw(name, tar::EntryType::Directory, b"")
}

fn file(name: &str, data: &[u8]) -> Raw {
    raw(name, tar::EntryType::Regular, data)
}

fn link(name: &str, kind: tar::EntryType, target: &str) -> Raw {
    Raw {
        link: target.as_bytes().to_vec(),
        mode: 0o777,
        ..raw(name, kind, b"")
    }
}

/// The tar bytes of `entries`, each header written by hand (GNU format;
/// names and link targets up to 100 bytes).
fn tar_bytes(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..e.name.len()].copy_from_slice(&e.name);
            gnu.linkname[..e.link.len()].copy_from_slice(&e.link);
        }
        h.set_entry_type(e.kind);
        h.set_size(e.declared.unwrap_or(e.data.len() as u64));
        h.set_mode(e.mode);
        h.set_mtime(1_764_201_012);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The good part of every hostile archive: both component folders with
/// what the demo app needs, so that only the hostile entry is at fault.
fn good(version: &str) -> Vec<Raw> {
    vec![
        dir("backend/"),
        file("backend/VERSION", format!("{version}\n").as_bytes()),
        dir("frontend/"),
        file("frontend/VERSION", format!("{version}\n").as_bytes()),
        file("frontend/index.html", b"<!doctype html><p>hostile</p>\n"),
    ]
}

/// A full artifact name `minute` minutes after the test epoch.
fn name(version: &str, minute: i64, ext: Ext) -> ArtifactName {
    let t = epoch() + Duration::minutes(minute);
    ArtifactName::new("full", t, version, "master", ext).unwrap()
}

/// Drops `bytes` under `name` with a correct marker, as CI would.
fn deliver(sb: &Sandbox, name: &ArtifactName, bytes: &[u8]) {
    let drop = sb.drop_dir();
    fs::write(drop.join(name.file_name()), bytes).unwrap();
    fs::write(
        drop.join(name.marker_name()),
        marker(name.file_name(), bytes),
    )
    .unwrap();
}

/// One hostile case: what it is, the archive's bytes and extension, and
/// what the failure reason must contain (the entry, the rule).
struct Case {
    what: &'static str,
    ext: Ext,
    bytes: Vec<u8>,
    reason_has: Vec<String>,
}

fn case(what: &'static str, entries: Vec<Raw>, reason_has: &[&str]) -> Case {
    Case {
        what,
        ext: Ext::Tar,
        bytes: tar_bytes(&entries),
        reason_has: reason_has.iter().map(|s| s.to_string()).collect(),
    }
}

fn with(version: &str, extra: Vec<Raw>) -> Vec<Raw> {
    let mut e = good(version);
    e.extend(extra);
    e
}

/// Incompressible bytes, so that a copy or an unpack really writes them.
pub fn noise(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ size as u64;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn cases(sentinel: &Path) -> Vec<Case> {
    let abs = sentinel.join("abs-escaped").display().to_string();
    let abs_secret = sentinel.join("secret").display().to_string();
    let v = "6.6.6";
    use tar::EntryType as T;
    let mut out = vec![
        case(
            "a ../ path",
            with(v, vec![file("backend/../../../sentinel/dotdot", b"x")]),
            &["backend/../../../sentinel/dotdot", "'..'"],
        ),
        case(
            "an absolute path",
            with(v, vec![file(&abs, b"x")]),
            &[&abs, "absolute"],
        ),
        case(
            "a symlink outside, then a file through it",
            with(
                v,
                vec![
                    link("backend/out", T::Symlink, "../../../../sentinel"),
                    file("backend/out/through", b"x"),
                ],
            ),
            &["backend/out", "leaves its component folder"],
        ),
        case(
            "an absolute symlink, then a file through it",
            with(
                v,
                vec![
                    link("backend/abs", T::Symlink, &sentinel.display().to_string()),
                    file("backend/abs/through", b"x"),
                ],
            ),
            &["backend/abs", "absolute"],
        ),
        case(
            "a symlink inside, then a file written through it",
            with(
                v,
                vec![
                    link("backend/here", T::Symlink, "."),
                    file("backend/here/through", b"x"),
                ],
            ),
            &["backend/here/through", "symlink"],
        ),
        case(
            "a hardlink to a file outside (absolute)",
            with(v, vec![link("backend/h", T::Link, &abs_secret)]),
            &["backend/h", "absolute"],
        ),
        case(
            "a hardlink to a file outside (relative)",
            with(
                v,
                vec![link("backend/h", T::Link, "../../../sentinel/secret")],
            ),
            &["backend/h", "'..'"],
        ),
        case(
            "a character device",
            with(v, vec![raw("backend/null", T::Char, b"")]),
            &["backend/null", "Char"],
        ),
        case(
            "a block device",
            with(v, vec![raw("backend/sda", T::Block, b"")]),
            &["backend/sda", "Block"],
        ),
        case(
            "a fifo",
            with(v, vec![raw("backend/fifo", T::Fifo, b"")]),
            &["backend/fifo", "Fifo"],
        ),
        case(
            "two entries with the same path",
            with(
                v,
                vec![
                    file("backend/run", b"first"),
                    file("backend/run", b"second"),
                ],
            ),
            &["backend/run", "twice"],
        ),
    ];

    // A header that declares more bytes than the archive holds.
    let mut lying = with(v, vec![file("backend/liar", &[7u8; 100])]);
    lying.last_mut().unwrap().declared = Some(1 << 20);
    let mut bytes = tar_bytes(&lying);
    bytes.truncate(bytes.len() - 1024);
    out.push(Case {
        what: "an entry whose declared size is larger than its data",
        ext: Ext::Tar,
        bytes,
        reason_has: vec!["backend/liar".into(), "cut short".into()],
    });
    // A header that declares fewer bytes: the rest of its data is read as
    // the next header, which cannot pass its checksum.
    let mut lying = with(v, vec![file("backend/liar", &noise(2000))]);
    lying.last_mut().unwrap().declared = Some(10);
    let mut tail = tar_bytes(&lying);
    // Make sure what follows the short entry is not a valid header.
    tail.truncate(tail.len() - 1024);
    out.push(Case {
        what: "an entry whose declared size is smaller than its data",
        ext: Ext::Tar,
        bytes: tail,
        // Where it broke: after which entry.
        reason_has: vec!["cannot be read".into(), "backend/liar".into()],
    });

    // Bombs: far more than the configured caps (see the sandbox config).
    let zeros = vec![0u8; 48 << 20];
    let bomb = tar_bytes(&with(v, vec![file("backend/zeros", &zeros)]));
    out.push(Case {
        what: "a gzip bomb (48 MiB of zeros)",
        ext: Ext::TarGz,
        bytes: compress(&bomb, Compression::Gzip),
        reason_has: vec!["max_unpacked_size".into()],
    });
    out.push(Case {
        what: "a zstd bomb (48 MiB of zeros)",
        ext: Ext::TarZst,
        bytes: compress(&bomb, Compression::Zstd),
        reason_has: vec!["max_unpacked_size".into()],
    });
    let many: Vec<Raw> = (0..400)
        .map(|i| file(&format!("backend/f{i}"), b""))
        .collect();
    out.push(Case {
        what: "an entry-count bomb (400 empty files)",
        ext: Ext::TarGz,
        bytes: compress(&tar_bytes(&with(v, many)), Compression::Gzip),
        reason_has: vec!["max_entries".into()],
    });

    // A truncated archive whose marker matches it (CI uploaded what it had).
    let whole = compress(
        &tar_bytes(&with(v, vec![file("backend/blob", &noise(200_000))])),
        Compression::Gzip,
    );
    out.push(Case {
        what: "a truncated .tar.gz",
        ext: Ext::TarGz,
        bytes: whole[..whole.len() / 2].to_vec(),
        reason_has: vec!["cannot be read".into()],
    });
    // Other formats behind a .tar.gz name.
    let plain = tar_bytes(&good(v));
    out.push(Case {
        what: "a plain tar named .tar.gz",
        ext: Ext::TarGz,
        bytes: plain.clone(),
        reason_has: vec!["cannot be read".into()],
    });
    out.push(Case {
        what: "a zstd tar named .tar.gz",
        ext: Ext::TarGz,
        bytes: compress(&plain, Compression::Zstd),
        reason_has: vec!["cannot be read".into()],
    });
    out.push(Case {
        what: "a zip file named .tar.gz",
        ext: Ext::TarGz,
        bytes: b"PK\x03\x04\x14\x00\x00\x00\x08\x00backend/VERSION".to_vec(),
        reason_has: vec!["cannot be read".into()],
    });
    // Last, since an archive that is (wrongly) deployed changes what runs.
    // Data behind a folder entry: tar skips it by reading (decompressing)
    // it all, and a cap that counts only regular files never sees it.
    let mut hidden = dir("backend/hidden/");
    hidden.data = vec![0u8; 64 << 20];
    out.push(Case {
        what: "64 MiB of zeros hidden behind a folder entry (zstd)",
        ext: Ext::TarZst,
        bytes: compress(&tar_bytes(&with(v, vec![hidden])), Compression::Zstd),
        reason_has: vec!["backend/hidden".into()],
    });
    out
}

/// Every path under the sandbox that is not where a pass may write:
/// state/ (state files, logs, status page), staging/ and drop/ (the
/// collector's), quarantine/, and the releases that were there before.
fn unexpected_new_paths(sb: &Sandbox, before: &[String]) -> Vec<String> {
    paths(sb.dir())
        .into_iter()
        .filter(|p| !before.contains(p))
        .filter(|p| {
            !["root/state", "root/staging", "root/drop", "root/quarantine"]
                .iter()
                .any(|d| p == d || p.starts_with(&format!("{d}/")))
        })
        .collect()
}

#[test]
fn hostile_archives_are_refused_naming_the_entry_and_nothing_escapes() {
    let sb = demo_sandbox("max_unpacked_size = \"8 MiB\"\nmax_entries = 300\n", "");
    let sentinel = Sentinel::new(&sb);
    let v1 = demo("full", "1.0.0", 1);
    v1.drop_into(&sb.drop_dir());
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    let pid = sb.backend_pid();
    assert!(pid.is_some(), "{run}");

    let mut table = vec![format!("{:<56} | outcome", "archive")];
    let mut wrong = Vec::new();
    for (i, c) in cases(&sentinel.dir).into_iter().enumerate() {
        let name = name(&format!("6.6.{i}"), 10 + i as i64, c.ext);
        let file_name = name.file_name().to_string();
        let before = paths(sb.dir());
        deliver(&sb, &name, &c.bytes);
        let run = cron(&sb);
        if run.code() != 3 {
            wrong.push(format!("{}: not refused\n{run}", c.what));
            table.push(format!(
                "{:<56} | NOT REFUSED (exit {})",
                c.what,
                run.code()
            ));
            continue;
        }
        let context = format!("{}: {file_name}\n{run}", c.what);
        let state = sb.state_json("switcher.json");
        let failure = &state["failed"][&file_name];
        let reason = failure["reason"].as_str().unwrap_or_default();
        // Every case runs before this fails, so that the table shows all.
        for needle in &c.reason_has {
            if !reason.contains(needle.as_str()) {
                wrong.push(format!(
                    "{}: the reason {reason:?} should contain {needle:?}",
                    c.what
                ));
            }
        }
        assert_eq!(failure["step"], "unpack", "{context}");
        sentinel.assert_untouched(&context);
        let new = unexpected_new_paths(&sb, &before);
        assert!(
            new.is_empty(),
            "paths appeared outside state/, staging/, quarantine/: {new:?} ({context})"
        );
        assert!(
            sb.names("staging").contains(&file_name),
            "the artifact stays in staging ({context})"
        );
        assert_eq!(
            sb.backend_pid(),
            pid,
            "the backend was restarted ({context})"
        );
        assert_serves(&sb, &run, "1.0.0");
        let ids = assert_consistent(&sb, &run);
        assert!(ids.iter().all(|(_, v)| v == "1.0.0"), "{ids:?} ({context})");
        table.push(format!("{:<56} | refused: {reason}", c.what));
    }
    println!("{}", table.join("\n"));
    assert!(
        wrong.is_empty(),
        "reasons that do not name the entry and the rule:\n{}",
        wrong.join("\n")
    );
}

/// setuid, setgid and sticky bits in an archive are stripped: the release
/// deploys, its files keep only their permission bits.
#[test]
fn setuid_and_setgid_bits_are_stripped() {
    let sb = demo_sandbox("", "");
    let sentinel = Sentinel::new(&sb);
    let mut entries = good("2.0.0");
    let mut suid = file("backend/suid", b"#!/bin/sh\nid\n");
    suid.mode = 0o4755;
    let mut sgid = file("backend/sgid", b"#!/bin/sh\nid\n");
    sgid.mode = 0o2755;
    let mut sticky = dir("backend/tmp/");
    sticky.mode = 0o3777;
    entries.extend([suid, sgid, sticky]);
    let n = name("2.0.0", 2, Ext::Tar);
    deliver(&sb, &n, &tar_bytes(&entries));
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "2.0.0");
    for (path, want) in [
        ("current/backend/suid", 0o755),
        ("current/backend/sgid", 0o755),
        ("current/backend/tmp", 0o777),
    ] {
        let mode = fs::metadata(sb.path(path)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, want, "{path} has mode {mode:o}\n{run}");
    }
    sentinel.assert_untouched("setuid");
}

/// The other side of strictness: a tarball `git archive` makes (it starts
/// with a `pax_global_header` entry holding the commit id, metadata rather
/// than a file) is a well-formed archive and deploys.
#[test]
fn a_git_archive_tarball_deploys() {
    let sb = demo_sandbox("", "");
    let repo = sb.dir().join("repo");
    for (path, text) in [
        ("backend/VERSION", "4.0.0\n"),
        ("frontend/VERSION", "4.0.0\n"),
        ("frontend/index.html", "<!doctype html><p>git archive</p>\n"),
    ] {
        let p = repo.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.email=ci@example.invalid", "-c", "user.name=ci"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        out.stdout
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "release 4.0.0"]);
    let bytes = git(&["archive", "--format=tar.gz", "HEAD"]);
    let n = name("4.0.0", 4, Ext::TarGz);
    deliver(&sb, &n, &bytes);
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "4.0.0");
    assert_consistent(&sb, &run);
}
