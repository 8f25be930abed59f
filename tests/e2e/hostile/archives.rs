//! Hostile archives through the real binaries: CI's upload is whatever its
//! build made, so each of these is delivered to the drop folder with a
//! correct marker, collected, and tried by the switcher, which must refuse
//! it with a reason naming the entry (in state/switcher.json), write
//! nothing outside releases/.tmp-*, and leave the running service alone
//! (same pid, still answering).
//!
//! Most archives are built header by header: the `tar` builder refuses most
//! of these names, and ArchiveBuilder only makes well-formed ones. What the
//! real tools write (sparse files, several gzip members, names that are
//! not UTF-8, a folder listed twice, names the filesystem cannot hold) is
//! made by them: GNU tar, bsdtar, gzip and pigz, run in the test.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

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
            &["backend/null", "a character device"],
        ),
        case(
            "a block device",
            with(v, vec![raw("backend/sda", T::Block, b"")]),
            &["backend/sda", "a block device"],
        ),
        case(
            "a fifo",
            with(v, vec![raw("backend/fifo", T::Fifo, b"")]),
            &["backend/fifo", "a fifo"],
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
        let out = Command::new("git")
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

/// Runs `program` (from Debian's `package`, installed when missing as
/// root, or a failure naming it) in `dir`; panics unless it exits 0.
/// Returns its stdout.
#[track_caller]
fn tool(dir: &Path, program: &str, package: &str, args: &[&str]) -> Vec<u8> {
    cutover_tests::packages::run_tool(dir, program, package, args)
}

/// A fresh folder holding the good tree of `version` (what [`good`] holds)
/// as files on disk, for the real tools to archive.
fn good_tree(sb: &Sandbox, version: &str) -> std::path::PathBuf {
    let dir = sb.dir().join(format!("src-{version}"));
    for e in good(version) {
        let path = dir.join(OsStr::from_bytes(&e.name));
        if e.kind.is_dir() {
            fs::create_dir_all(path).unwrap();
        } else {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, &e.data).unwrap();
        }
    }
    dir
}

/// GNU tar's (or bsdtar's) archive of `backend` and `frontend` in `dir`.
fn real_tar(dir: &Path, bsd: bool, args: &[&str]) -> Vec<u8> {
    let out = dir.with_extension("tar");
    let mut all = args.to_vec();
    all.extend(["-cf", out.to_str().unwrap(), "backend", "frontend"]);
    if bsd {
        tool(dir, "bsdtar", "libarchive-tools", &all);
    } else {
        tool(dir, "tar", "tar", &all);
    }
    fs::read(&out).unwrap()
}

/// A 4 MiB file that is mostly holes.
fn sparse_file(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::File::create(path).unwrap();
    f.set_len(4 << 20).unwrap();
    f.seek(SeekFrom::Start(2 << 20)).unwrap();
    f.write_all(b"data between holes").unwrap();
}

/// Through the binaries: what the real tools write is refused with the fix
/// (sparse files) or deploys exactly (several gzip members, names that are
/// not UTF-8, a folder listed twice).
#[test]
fn archives_made_by_the_real_tools() {
    let sb = demo_sandbox("", "");
    let sentinel = Sentinel::new(&sb);
    let v1 = demo("full", "1.0.0", 1);
    v1.drop_into(&sb.drop_dir());
    cron(&sb).success();

    // Sparse files, as bsdtar stores a file with holes by default and as
    // GNU tar -S does: refused, saying how to build without them.
    for (i, (how, bsd, args)) in [
        ("bsdtar (its default)", true, &[][..]),
        (
            "GNU tar -S --format=gnu",
            false,
            &["-S", "--format=gnu"][..],
        ),
        (
            "GNU tar -S --format=posix",
            false,
            &["-S", "--format=posix"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let version = format!("2.0.{i}");
        let src = good_tree(&sb, &version);
        sparse_file(&src.join("backend/holes"));
        let bytes = real_tar(&src, bsd, args);
        assert!(
            bytes.len() < 1 << 20,
            "{how} did not store the file as sparse ({} bytes); this test proves nothing",
            bytes.len()
        );
        let n = name(&version, 10 + i as i64, Ext::Tar);
        deliver(&sb, &n, &bytes);
        let run = cron(&sb);
        run.code_is(3);
        let state = sb.state_json("switcher.json");
        let failure = &state["failed"][n.file_name()];
        let reason = failure["reason"].as_str().unwrap_or_default();
        for needle in [
            "holes",
            "sparse file",
            "without -S/--sparse",
            "--no-read-sparse",
        ] {
            assert!(
                reason.contains(needle),
                "{how}: {reason:?} lacks {needle:?}\n{run}"
            );
        }
        assert!(
            !reason.contains(&(4u64 << 20).to_string()),
            "{how}: {reason}"
        );
        assert_eq!(failure["step"], "unpack", "{how}\n{run}");
        assert_serves(&sb, &run, "1.0.0");
    }

    // A .tar.gz in two gzip members (gzip, then pigz, `cat` together),
    // split inside a file's data: every file deploys.
    let src = good_tree(&sb, "3.0.0");
    let blob: Vec<u8> = noise(300_000);
    fs::write(src.join("backend/blob"), &blob).unwrap();
    let whole = real_tar(&src, false, &[]);
    let cut = whole.len() / 2;
    fs::write(sb.dir().join("part1"), &whole[..cut]).unwrap();
    fs::write(sb.dir().join("part2"), &whole[cut..]).unwrap();
    let mut gz = tool(sb.dir(), "gzip", "gzip", &["-c", "part1"]);
    gz.extend(tool(sb.dir(), "pigz", "pigz", &["-c", "part2"]));
    deliver(&sb, &name("3.0.0", 20, Ext::TarGz), &gz);
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
    assert_eq!(
        fs::read(sb.path("current/backend/blob")).unwrap(),
        blob,
        "{run}"
    );

    // Names and a symlink target that are not UTF-8 (Latin-1, KOI8-R,
    // EUC-JP, CP866), and a folder listed twice (GNU tar, named twice).
    let legacy: [&[u8]; 5] = [
        b"caf\xe9",
        b"caf\xe8",
        b"\xd0\xd2\xc9\xd7\xc5\xd4",
        b"\xc6\xfc\xcb\xdc\xb8\xec",
        b"\xaf\xe0\xa8\xa2\xa5\xe2.txt",
    ];
    let src = good_tree(&sb, "4.0.0");
    fs::create_dir_all(src.join("backend/lib")).unwrap();
    for n in legacy {
        fs::write(src.join("backend/lib").join(OsStr::from_bytes(n)), n).unwrap();
    }
    std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9"), src.join("backend/lib/link"))
        .unwrap();
    let out = sb.dir().join("names.tar");
    tool(
        &src,
        "tar",
        "tar",
        &[
            "-cf",
            out.to_str().unwrap(),
            "backend",
            "frontend",
            "backend/lib",
        ],
    );
    deliver(&sb, &name("4.0.0", 30, Ext::Tar), &fs::read(&out).unwrap());
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "4.0.0");
    let lib = sb.path("current/backend/lib");
    for n in legacy {
        let got = fs::read(lib.join(OsStr::from_bytes(n)))
            .unwrap_or_else(|e| panic!("{n:x?} did not land as it is: {e}\n{run}"));
        assert_eq!(got, n);
    }
    assert_eq!(
        fs::read_dir(&lib).unwrap().count(),
        legacy.len() + 1,
        "names collapsed\n{run}"
    );
    assert_eq!(
        fs::read_link(lib.join("link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"caf\xe9"
    );
    assert_consistent(&sb, &run);
    sentinel.assert_untouched("real tools");
}

/// What the archive asks and the filesystem cannot make (a name component
/// over 255 bytes; a file where an earlier entry made a folder) is the
/// artifact's fault: marked failed on the first pass, never tried again,
/// and no later pass fails for it.
#[test]
fn what_the_filesystem_cannot_make_is_marked_failed_once() {
    let sb = demo_sandbox("", "");
    let v1 = demo("full", "1.0.0", 1);
    v1.drop_into(&sb.drop_dir());
    cron(&sb).success();
    let long = "n".repeat(300);
    let cases: [(&str, &str, Vec<String>, &str); 2] = [
        (
            "a name component of 300 bytes",
            "5.0.0",
            vec![format!("--transform=s,VERSION$,{long},")],
            "too long",
        ),
        (
            "a file where an earlier entry made a folder",
            "5.0.1",
            vec![],
            "already exists",
        ),
    ];
    for (i, (what, version, args, needle)) in cases.into_iter().enumerate() {
        let src = good_tree(&sb, version);
        let out = src.with_extension("tar");
        let o = out.to_str().unwrap();
        if args.is_empty() {
            // backend/d/f without its folder (made implicitly), then a file
            // backend/d appended.
            fs::create_dir_all(src.join("backend/d")).unwrap();
            fs::write(src.join("backend/d/f"), b"f").unwrap();
            tool(
                &src,
                "tar",
                "tar",
                &["-cf", o, "--no-recursion", "backend", "backend/d/f"],
            );
            tool(
                &src,
                "tar",
                "tar",
                &["-rf", o, "backend/VERSION", "frontend"],
            );
            fs::write(src.join("backend/x"), b"x").unwrap();
            tool(
                &src,
                "tar",
                "tar",
                &["-rf", o, "--transform=s,backend/x,backend/d,", "backend/x"],
            );
        } else {
            let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
            all.extend(["-cf", o, "backend", "frontend"]);
            tool(&src, "tar", "tar", &all);
        }
        let n = name(version, 40 + i as i64, Ext::Tar);
        let file_name = n.file_name().to_string();
        deliver(&sb, &n, &fs::read(&out).unwrap());
        let before = sb.state_json("switcher.json")["failures_total"]
            .as_u64()
            .unwrap_or(0);
        let mut codes = Vec::new();
        let mut runs = String::new();
        for _ in 0..3 {
            let run = cron(&sb);
            codes.push(run.code());
            runs.push_str(&format!("{run}\n"));
        }
        let state = sb.state_json("switcher.json");
        let failure = &state["failed"][&file_name];
        let reason = failure["reason"].as_str().unwrap_or_default();
        assert_eq!(
            codes,
            [3, 0, 0],
            "{what}: marked failed on the first pass, then left alone\n{runs}"
        );
        assert_eq!(
            state["failures_total"].as_u64().unwrap_or(0),
            before + 1,
            "{what}: one failure recorded\n{runs}"
        );
        assert_eq!(failure["step"], "unpack", "{what}\n{runs}");
        assert!(
            reason.contains(needle),
            "{what}: {reason:?} lacks {needle:?}"
        );
        assert!(sb.names("staging").contains(&file_name), "{what}");
        let run = cron(&sb);
        assert_serves(&sb, &run, "1.0.0");
        assert_consistent(&sb, &run);
    }
}
