//! The safe unpacker against hostile archives: built header by header so
//! that names the `tar` builder would refuse can be tested, and made by the
//! real tools (GNU tar, bsdtar, gzip, pigz, zstd) for what they write.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use artifact_name::Ext;
use switcher::unpack::{unpack, Limits, UnpackError};

/// A raw tar entry: name, type, link target, content, mode.
struct Raw<'a>(&'a str, tar::EntryType, &'a str, &'a [u8], u32);

fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for Raw(name, kind, link, data, mode) in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn limits() -> Limits {
    Limits {
        max_unpacked_size: 1 << 20,
        max_entries: 100,
        top_level: BTreeSet::from(["backend".to_string(), "frontend".to_string()]),
    }
}

fn try_unpack(
    bytes: &[u8],
    limits: &Limits,
) -> (
    tempfile::TempDir,
    Result<switcher::unpack::Summary, UnpackError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(bytes, Ext::Tar, dir.path(), limits, |_| {});
    (dir, r)
}

use tar::EntryType as T;

#[track_caller]
fn refused(entries: &[Raw<'_>], needle: &str) {
    let (dir, r) = try_unpack(&raw_tar(entries), &limits());
    let e = r.expect_err("should be refused").to_string();
    assert!(e.contains(needle), "{e:?} should contain {needle:?}");
    // Nothing escaped the destination.
    assert!(!dir.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn a_good_archive_unpacks_with_modes_cleaned() {
    let bytes = raw_tar(&[
        Raw("./", T::Directory, "", b"", 0o755),
        Raw("./backend/", T::Directory, "", b"", 0o755),
        Raw("./backend/run", T::Regular, "", b"#!/bin/sh\n", 0o4755),
        Raw("./backend/lib", T::Symlink, "run", b"", 0o777),
        Raw("./backend/hard", T::Link, "backend/run", b"", 0o644),
    ]);
    let (dir, r) = try_unpack(&bytes, &limits());
    let s = r.unwrap();
    assert_eq!(s.top_level, BTreeSet::from(["backend".to_string()]));
    let mode = fs::metadata(dir.path().join("backend/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid must be dropped");
    assert_eq!(
        fs::read_link(dir.path().join("backend/lib")).unwrap(),
        Path::new("run")
    );
    assert!(dir.path().join("backend/hard").is_file());
}

#[test]
fn hostile_entries_are_refused() {
    let d = || Raw("backend/", T::Directory, "", b"", 0o755);
    refused(
        &[d(), Raw("/etc/escaped", T::Regular, "", b"x", 0o644)],
        "absolute",
    );
    refused(
        &[
            d(),
            Raw("backend/../../escaped", T::Regular, "", b"x", 0o644),
        ],
        "'..'",
    );
    refused(
        &[
            d(),
            Raw("backend/l", T::Symlink, "../../escaped", b"", 0o777),
        ],
        "leaves its component",
    );
    refused(
        &[d(), Raw("backend/l", T::Symlink, "/etc", b"", 0o777)],
        "absolute",
    );
    refused(
        &[d(), Raw("backend/l", T::Symlink, "a/../..", b"", 0o777)],
        "only at the start",
    );
    refused(
        &[
            d(),
            Raw("backend/l", T::Symlink, ".", b"", 0o777),
            Raw("backend/l/x", T::Regular, "", b"x", 0o644),
        ],
        "symlink",
    );
    refused(
        &[d(), Raw("backend/h", T::Link, "/etc/passwd", b"", 0o644)],
        "absolute",
    );
    refused(
        &[
            d(),
            Raw("frontend/", T::Directory, "", b"", 0o755),
            Raw("frontend/f", T::Regular, "", b"x", 0o644),
            Raw("backend/h", T::Link, "frontend/f", b"", 0o644),
        ],
        "outside its component",
    );
    refused(
        &[d(), Raw("backend/dev", T::Char, "", b"", 0o644)],
        "only files",
    );
    refused(
        &[d(), Raw("backend/fifo", T::Fifo, "", b"", 0o644)],
        "only files",
    );
    refused(
        &[
            d(),
            Raw("backend/a", T::Regular, "", b"x", 0o644),
            Raw("backend/a", T::Regular, "", b"y", 0o644),
        ],
        "twice",
    );
    refused(
        &[d(), Raw("other/", T::Directory, "", b"", 0o755)],
        "unexpected top-level",
    );
    refused(
        &[Raw("README", T::Regular, "", b"x", 0o644)],
        "unexpected top-level",
    );
    refused(
        &[Raw("backend", T::Regular, "", b"x", 0o644)],
        "must be a folder",
    );
}

#[test]
fn limits_stop_an_archive_bomb_early() {
    let big = vec![0u8; 4096];
    let entries = [
        Raw("backend/", T::Directory, "", b"", 0o755),
        Raw("backend/big", T::Regular, "", &big, 0o644),
    ];
    let mut l = limits();
    l.max_unpacked_size = 1000;
    let (_d, r) = try_unpack(&raw_tar(&entries), &l);
    assert!(r.unwrap_err().to_string().contains("max_unpacked_size"));
    let mut l = limits();
    l.max_entries = 1;
    let (_d, r) = try_unpack(&raw_tar(&entries), &l);
    assert!(r.unwrap_err().to_string().contains("max_entries"));
}

#[test]
fn garbage_and_truncation_are_read_errors() {
    let (_d, r) = try_unpack(b"this is not a tar archive at all", &limits());
    assert!(r.is_err());
    let mut bytes = raw_tar(&[
        Raw("backend/", T::Directory, "", b"", 0o755),
        Raw("backend/f", T::Regular, "", &[1u8; 3000], 0o644),
    ]);
    bytes.truncate(1500);
    let (_d, r) = try_unpack(&bytes, &limits());
    assert!(r.is_err(), "a truncated entry must fail");
}

// ---------------------------------------------------------------------------
// Archives made by the real tools (GNU tar, bsdtar, gzip, pigz, zstd), built
// in a temp dir by each test. A missing tool is installed (as root) or the
// test fails naming the package; it is never skipped.

/// Runs `program` (from Debian's `package`) in `dir`; panics with its
/// output unless it exits 0. Returns its stdout.
#[track_caller]
fn run(dir: &Path, program: &str, package: &str, args: &[&str]) -> Vec<u8> {
    cutover_tests::packages::run_tool(dir, program, package, args)
}

fn gnu_tar(dir: &Path, args: &[&str]) {
    run(dir, "tar", "tar", args);
}

fn bsdtar(dir: &Path, args: &[&str]) {
    run(dir, "bsdtar", "libarchive-tools", args);
}

/// Writes `files` (path bytes, content) under `dir`, making folders.
fn write_tree(dir: &Path, files: &[(&[u8], &[u8])]) {
    for (path, content) in files {
        let path = dir.join(OsStr::from_bytes(path));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn unpack_file(
    path: &Path,
    ext: Ext,
) -> (
    tempfile::TempDir,
    Result<switcher::unpack::Summary, UnpackError>,
) {
    let bytes = fs::read(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], ext, dir.path(), &limits_big(), |_| {});
    (dir, r)
}

fn limits_big() -> Limits {
    Limits {
        max_unpacked_size: 64 << 20,
        ..limits()
    }
}

#[track_caller]
fn refused_entry(r: Result<switcher::unpack::Summary, UnpackError>, needles: &[&str]) -> String {
    let e = match r {
        Ok(s) => panic!("should be refused, but unpacked {s:?}"),
        Err(e @ UnpackError::Write { .. }) => {
            panic!("refused as the machine's fault, not the archive's: {e}")
        }
        Err(e) => e.to_string(),
    };
    for needle in needles {
        assert!(e.contains(needle), "{e:?} should contain {needle:?}");
    }
    e
}

/// A 4 MiB file that is mostly holes, with data at 1 MiB and at 3 MiB.
fn sparse_file(path: &Path) -> Vec<u8> {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::File::create(path).unwrap();
    f.set_len(4 << 20).unwrap();
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    f.write_all(b"data at one MiB").unwrap();
    f.seek(SeekFrom::Start(3 << 20)).unwrap();
    f.write_all(b"data at three MiB").unwrap();
    drop(f);
    fs::read(path).unwrap()
}

/// The sparse archive must really be sparse, or the test proves nothing.
#[track_caller]
fn assert_stored_sparse(archive: &Path, how: &str) {
    let len = fs::metadata(archive).unwrap().len();
    assert!(
        len < 1 << 20,
        "{how} wrote {len} bytes for a 4 MiB file that is mostly holes: it did not store it \
         as sparse (does the temp filesystem keep holes?), so this test proves nothing"
    );
}

#[test]
fn sparse_files_are_refused_in_every_format_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src, &[(b"backend/VERSION", b"1\n")]);
    let content = sparse_file(&src.join("backend/holes"));
    let out = |name: &str| tmp.path().join(name).display().to_string();
    let cases: [(&str, &str, Vec<String>); 5] = [
        (
            "GNU tar -S --format=posix --sparse-version=0.0",
            "pax sparse format 0.0",
            vec![
                "-S".into(),
                "--format=posix".into(),
                "--sparse-version=0.0".into(),
            ],
        ),
        (
            "GNU tar -S --format=posix --sparse-version=0.1",
            "pax sparse format 0.1",
            vec![
                "-S".into(),
                "--format=posix".into(),
                "--sparse-version=0.1".into(),
            ],
        ),
        (
            "GNU tar -S --format=posix --sparse-version=1.0",
            "pax sparse format 1.0",
            vec![
                "-S".into(),
                "--format=posix".into(),
                "--sparse-version=1.0".into(),
            ],
        ),
        (
            "GNU tar -S --format=gnu",
            "GNU format, entry type 'S'",
            vec!["-S".into(), "--format=gnu".into()],
        ),
        ("bsdtar (its default)", "pax sparse format 1.0", vec![]),
    ];
    for (i, (how, format, args)) in cases.iter().enumerate() {
        let archive = out(&format!("{i}.tar"));
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["-cf", &archive, "backend"]);
        if how.starts_with("bsdtar") {
            bsdtar(&src, &all);
        } else {
            gnu_tar(&src, &all);
        }
        assert_stored_sparse(Path::new(&archive), how);
        let (dir, r) = unpack_file(Path::new(&archive), Ext::Tar);
        let e = refused_entry(
            r,
            &[
                "backend/",
                "holes",
                "sparse file",
                format,
                "GNU tar without -S/--sparse",
                "bsdtar with --no-read-sparse",
            ],
        );
        // The expanded size is no data the archive holds: never shown so.
        assert!(!e.contains(&(4u64 << 20).to_string()), "{how}: {e}");
        assert!(
            !dir.path().join("backend/holes").exists(),
            "{how}: the sparse file was written"
        );
        println!("{how}: {e}");
    }
    // The fix the message gives works, with both tools.
    for (how, tool_is_bsd, args) in [
        ("GNU tar without -S", false, vec!["--format=posix"]),
        ("bsdtar --no-read-sparse", true, vec!["--no-read-sparse"]),
    ] {
        let archive = out(&format!("fixed-{tool_is_bsd}.tar"));
        let mut all = args.clone();
        all.extend(["-cf", &archive, "backend"]);
        if tool_is_bsd {
            bsdtar(&src, &all);
        } else {
            gnu_tar(&src, &all);
        }
        let (dir, r) = unpack_file(Path::new(&archive), Ext::Tar);
        r.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert!(
            fs::read(dir.path().join("backend/holes")).unwrap() == content,
            "{how}: the file differs"
        );
    }
}

/// Rewrites the header block at `at` with `edit`, then its checksum.
fn edit_header(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut tar::Header)) {
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(&bytes[at..at + 512]);
    edit(&mut h);
    h.set_cksum();
    bytes[at..at + 512].copy_from_slice(h.as_bytes());
}

#[test]
fn a_malformed_sparse_file_is_refused_never_reported_ok() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sparse_file(&src.join("backend/holes"));
    // GNU 'S': the first block of its map made longer than the data.
    let gnu = tmp.path().join("gnu.tar");
    gnu_tar(
        &src,
        &[
            "-S",
            "--format=gnu",
            "-cf",
            gnu.to_str().unwrap(),
            "backend",
        ],
    );
    assert_stored_sparse(&gnu, "GNU tar -S --format=gnu");
    let mut bytes = fs::read(&gnu).unwrap();
    let at = (0..bytes.len())
        .step_by(512)
        .find(|&i| bytes[i + 156] == b'S')
        .expect("an 'S' header");
    edit_header(&mut bytes, at, |h| {
        let gnu = h.as_gnu_mut().unwrap();
        // numbytes of the first map entry (12 octal digits).
        gnu.sparse[0].numbytes.copy_from_slice(b"77777777777\0");
    });
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], Ext::Tar, dir.path(), &limits_big(), |_| {});
    let e = r
        .expect_err("a broken sparse map must be refused")
        .to_string();
    assert!(e.contains("sparse"), "{e}");
    assert!(!dir.path().join("backend/holes").exists());

    // pax 0.1: its map made garbage (same length, so the pax record holds).
    let pax = tmp.path().join("pax.tar");
    gnu_tar(
        &src,
        &[
            "-S",
            "--format=posix",
            "--sparse-version=0.1",
            "-cf",
            pax.to_str().unwrap(),
            "backend",
        ],
    );
    let mut bytes = fs::read(&pax).unwrap();
    let key = b"GNU.sparse.map=";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    for b in &mut bytes[at..] {
        if *b == b'\n' {
            break;
        }
        *b = b'z';
    }
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], Ext::Tar, dir.path(), &limits_big(), |_| {});
    refused_entry(r, &["sparse file", "pax sparse format 0.1"]);
    assert!(!dir.path().join("backend/holes").exists());

    // A pax header that cannot be parsed hides its keys: refused.
    let mut bytes = fs::read(&pax).unwrap();
    let key = b" GNU.sparse.map=";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    // The record's length digits before it become garbage.
    bytes[at - 1] = b'x';
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], Ext::Tar, dir.path(), &limits_big(), |_| {});
    let e = r
        .expect_err("a broken pax header must be refused")
        .to_string();
    assert!(e.contains("pax"), "{e}");
}

/// The files a multi-member test archive holds, big enough to split.
fn member_tree(src: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..6)
        .map(|i| {
            let content: Vec<u8> = (0..20_000u32).map(|j| (j * 7 + i * 13) as u8).collect();
            (format!("backend/f{i}").into_bytes(), content)
        })
        .collect();
    for (p, c) in &files {
        write_tree(src, &[(p, c)]);
    }
    files
}

#[track_caller]
fn assert_files(dest: &Path, files: &[(Vec<u8>, Vec<u8>)], how: &str) {
    for (p, c) in files {
        let got = fs::read(dest.join(OsStr::from_bytes(p)))
            .unwrap_or_else(|e| panic!("{how}: {} is missing: {e}", String::from_utf8_lossy(p)));
        assert!(&got == c, "{how}: {} differs", String::from_utf8_lossy(p));
    }
}

#[test]
fn every_gzip_member_and_zstd_frame_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = member_tree(&src);
    let tar_path = tmp.path().join("a.tar");
    gnu_tar(&src, &["-cf", tar_path.to_str().unwrap(), "backend"]);
    let whole = fs::read(&tar_path).unwrap();
    // Split inside the data of a file in the middle: neither half is a tar.
    let cut = whole.len() / 2 + 100;
    fs::write(tmp.path().join("part1"), &whole[..cut]).unwrap();
    fs::write(tmp.path().join("part2"), &whole[cut..]).unwrap();
    let dir = tmp.path();
    // gzip for the first part, pigz for the second: `cat` of the two.
    let mut gz = run(dir, "gzip", "gzip", &["-c", "part1"]);
    gz.extend(run(dir, "pigz", "pigz", &["-c", "part2"]));
    let mut zst = run(dir, "zstd", "zstd", &["-q", "-c", "part1"]);
    zst.extend(run(dir, "zstd", "zstd", &["-q", "-c", "part2"]));
    // pigz's own output, several members of its own: pigz of each third.
    let third = whole.len() / 3;
    let mut pigz = Vec::new();
    for (i, part) in [
        &whole[..third],
        &whole[third..2 * third],
        &whole[2 * third..],
    ]
    .iter()
    .enumerate()
    {
        let name = format!("third{i}");
        fs::write(dir.join(&name), part).unwrap();
        pigz.extend(run(dir, "pigz", "pigz", &["-c", &name]));
    }
    for (how, ext, bytes) in [
        ("cat of gzip and pigz members", Ext::TarGz, gz),
        ("cat of three pigz members", Ext::TarGz, pigz),
        ("cat of two zstd frames", Ext::TarZst, zst),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let r = unpack(&bytes[..], ext, dest.path(), &limits_big(), |_| {});
        let s = r.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_eq!(s.bytes, 6 * 20_000, "{how}");
        assert_files(dest.path(), &files, how);
    }
}

/// Names in legacy encodings, none of them UTF-8, two of which collapse
/// into the same text when decoded lossily.
const LEGACY: [&[u8]; 5] = [
    b"caf\xe9",                      // Latin-1 "café"
    b"caf\xe8",                      // Latin-1 "cafè": lossily the same as the above
    b"\xd0\xd2\xc9\xd7\xc5\xd4",     // KOI8-R "привет"
    b"\xc6\xfc\xcb\xdc\xb8\xec",     // EUC-JP "日本語"
    b"\xaf\xe0\xa8\xa2\xa5\xe2.txt", // CP866 "привет.txt"
];

#[test]
fn names_that_are_not_utf8_land_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut files = Vec::new();
    for name in LEGACY {
        let mut p = b"backend/".to_vec();
        p.extend_from_slice(name);
        files.push((p.clone(), p.clone()));
        // A folder with such a name, holding a file with one.
        let mut inner = b"backend/dir-".to_vec();
        inner.extend_from_slice(name);
        inner.push(b'/');
        inner.extend_from_slice(name);
        files.push((inner.clone(), inner));
    }
    for (p, c) in &files {
        write_tree(&src, &[(p, c)]);
    }
    let link = src.join("backend/link");
    std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9"), &link).unwrap();

    for (how, bsd, args) in [
        ("GNU tar (gnu format)", false, &["--format=gnu"][..]),
        ("GNU tar (posix format)", false, &["--format=posix"][..]),
        ("bsdtar", true, &[][..]),
    ] {
        let archive = tmp.path().join("names.tar");
        let archive_s = archive.to_str().unwrap();
        let mut all = args.to_vec();
        all.extend(["-cf", archive_s, "backend"]);
        if bsd {
            // bsdtar warns that it cannot translate the names to UTF-8 (and
            // exits 1), and stores them as they are (hdrcharset=BINARY).
            let path = cutover_tests::packages::ensure("bsdtar", &["libarchive-tools"]);
            let out = Command::new(path)
                .args(&all)
                .current_dir(&src)
                .env("LC_ALL", "C")
                .output()
                .unwrap();
            assert!(archive.exists(), "bsdtar wrote nothing: {out:?}");
        } else {
            gnu_tar(&src, &all);
        }
        let (dest, r) = unpack_file(&archive, Ext::Tar);
        r.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_files(dest.path(), &files, how);
        let names: BTreeSet<Vec<u8>> = fs::read_dir(dest.path().join("backend"))
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        for name in LEGACY {
            assert!(
                names.contains(name),
                "{how}: {name:x?} missing from {names:x?}"
            );
        }
        assert_eq!(names.len(), 2 * LEGACY.len() + 1, "{how}: {names:x?}");
        assert_eq!(
            fs::read_link(dest.path().join("backend/link"))
                .unwrap()
                .as_os_str()
                .as_bytes(),
            b"caf\xe9",
            "{how}: the symlink target changed"
        );
        fs::remove_file(&archive).unwrap();
    }

    // A refused entry with such a name is shown escaped, not replaced.
    let fifo_src = tmp.path().join("fifo");
    fs::create_dir_all(fifo_src.join("backend")).unwrap();
    let fifo = fifo_src.join(OsStr::from_bytes(b"backend/caf\xe9"));
    run(
        &fifo_src,
        "mkfifo",
        "coreutils",
        &[fifo.to_str().unwrap_or("backend/fifo")],
    );
    // mkfifo took a lossy name if the path was not UTF-8: name it by bytes.
    if !fifo.exists() {
        let made = fs::read_dir(fifo_src.join("backend"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        fs::rename(made.path(), &fifo).unwrap();
    }
    let archive = tmp.path().join("fifo.tar");
    gnu_tar(&fifo_src, &["-cf", archive.to_str().unwrap(), "backend"]);
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    let e = refused_entry(r, &[r#""backend/caf\xe9""#, "a fifo"]);
    assert!(!e.contains('\u{fffd}'), "{e}");
}

#[test]
fn a_folder_listed_twice_is_accepted_only_when_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src, &[(b"backend/lib/a", b"a"), (b"backend/x/b", b"b")]);
    let archive = tmp.path().join("twice.tar");
    let a = archive.to_str().unwrap();
    // GNU tar lists backend/lib twice, and what it holds again as
    // hardlinks to themselves: the same tree, accepted.
    gnu_tar(&src, &["-cf", a, "backend", "backend/lib"]);
    let listing = run(tmp.path(), "tar", "tar", &["-tvf", a]);
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.ends_with(" backend/lib/"))
            .count(),
        2,
        "{listing}"
    );
    assert!(
        listing.contains("backend/lib/a link to backend/lib/a"),
        "{listing}"
    );
    let (d, r) = unpack_file(&archive, Ext::Tar);
    r.unwrap_or_else(|e| panic!("{e}\n{listing}"));
    assert_eq!(fs::read(d.path().join("backend/lib/a")).unwrap(), b"a");
    // bsdtar stores the file again, data and all: a file twice, refused.
    bsdtar(&src, &["-cf", a, "backend", "backend/lib"]);
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    refused_entry(r, &["backend/lib/a", "twice", "a regular file both times"]);
    // The folder alone the second time (--no-recursion).
    gnu_tar(
        &src,
        &["-cf", a, "backend", "--no-recursion", "backend/lib"],
    );
    let (d, r) = unpack_file(&archive, Ext::Tar);
    r.unwrap();
    assert_eq!(fs::read(d.path().join("backend/lib/a")).unwrap(), b"a");
    // Another mode the second time: refused, saying so.
    fs::set_permissions(src.join("backend/lib"), fs::Permissions::from_mode(0o700)).unwrap();
    gnu_tar(&src, &["-rf", a, "--no-recursion", "backend/lib"]);
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    refused_entry(
        r,
        &["backend/lib", "twice", "different modes (0755, then 0700)"],
    );
    // Another type the second time: refused, saying so.
    gnu_tar(&src, &["-cf", a, "backend"]);
    fs::remove_dir_all(src.join("backend/x")).unwrap();
    fs::write(src.join("backend/x"), b"now a file").unwrap();
    gnu_tar(&src, &["-rf", a, "backend/x"]);
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    refused_entry(
        r,
        &[
            "backend/x",
            "twice",
            "first as a folder (mode 0755), then as a regular file",
        ],
    );
}

/// An old-style (v7) header: no type byte for folders, a name ending in '/'.
fn v7(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    // '\0': a v7 regular file (tar's builder would write '0').
    h.as_old_mut().linkflag[0] = 0;
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

#[test]
fn an_old_style_file_named_like_a_folder() {
    let end = vec![0u8; 1024];
    // No data: a folder, holding what follows.
    let bytes = [
        v7("backend/", b""),
        v7("backend/sub/", b""),
        v7("backend/sub/f", b"f"),
        end.clone(),
    ]
    .concat();
    let (dir, r) = try_unpack(&bytes, &limits());
    r.unwrap();
    assert!(dir.path().join("backend/sub").is_dir());
    assert_eq!(fs::read(dir.path().join("backend/sub/f")).unwrap(), b"f");
    // With data: refused; never a file, and the data is not read as the
    // next header (which would be backend/next).
    let mut data = v7("backend/next", b"hidden").to_vec();
    data.truncate(512);
    let bytes = [
        v7("backend/", b""),
        v7("backend/sub/", &data),
        v7("backend/after", b"a"),
        end,
    ]
    .concat();
    let (dir, r) = try_unpack(&bytes, &limits());
    refused_entry(r, &["backend/sub/", "ends in '/'", "512 bytes of data"]);
    assert!(!dir.path().join("backend/sub").exists());
    assert!(!dir.path().join("backend/next").exists());
}

#[test]
fn what_the_filesystem_cannot_make_is_the_archives_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(
        &src,
        &[(b"backend/VERSION", b"1\n"), (b"backend/d/f", b"f")],
    );
    let archive = tmp.path().join("a.tar");
    let a = archive.to_str().unwrap();
    // A name component of 300 bytes (GNU tar renames on the way in).
    let long = "n".repeat(300);
    gnu_tar(
        &src,
        &[
            "-cf",
            a,
            &format!("--transform=s,VERSION,{long},"),
            "backend",
        ],
    );
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    refused_entry(r, &["backend/nnnn", "too long"]);
    // A file where an earlier entry made a folder (implicitly, for backend/d/f).
    gnu_tar(
        &src,
        &["-cf", a, "--no-recursion", "backend", "backend/d/f"],
    );
    fs::write(src.join("backend/VERSION"), b"2\n").unwrap();
    gnu_tar(
        &src,
        &["-rf", a, "--transform=s,VERSION,d,", "backend/VERSION"],
    );
    let (_d, r) = unpack_file(&archive, Ext::Tar);
    refused_entry(r, &["\"backend/d\"", "already exists"]);
}

#[test]
fn special_entries_are_named_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src, &[(b"backend/big", &[7u8; 30_000])]);
    let path = |n: &str| tmp.path().join(n).display().to_string();
    let cases: Vec<(&str, Vec<String>, String, &str)> = vec![
        (
            "GNU dumpdir",
            vec![
                "--listed-incremental".into(),
                path("snap"),
                "-cf".into(),
                path("d.tar"),
            ],
            path("d.tar"),
            "a GNU dumpdir",
        ),
        (
            "volume label",
            vec![
                "-V".into(),
                "backend-label".into(),
                "-cf".into(),
                path("v.tar"),
            ],
            path("v.tar"),
            "a GNU volume label",
        ),
        (
            "multi-volume",
            vec![
                "-c".into(),
                "-M".into(),
                "-L".into(),
                "20".into(),
                "-f".into(),
                path("m1.tar"),
                "-f".into(),
                path("m2.tar"),
            ],
            path("m2.tar"),
            "a GNU multi-volume continuation",
        ),
    ];
    for (how, mut args, archive, words) in cases {
        args.push("backend".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gnu_tar(&src, &args);
        let (_d, r) = unpack_file(Path::new(&archive), Ext::Tar);
        let e = refused_entry(r, &[words]);
        assert!(!e.contains("Nonexhaustive"), "{how}: {e}");
    }
    refused(
        &[
            Raw("backend/", T::Directory, "", b"", 0o755),
            Raw("backend/q", T::new(b'Q'), "", b"", 0o644),
        ],
        "an unknown entry type 'Q' (0x51)",
    );
    refused(
        &[
            Raw("backend/", T::Directory, "", b"", 0o755),
            Raw("backend/dev", T::Block, "", b"", 0o644),
        ],
        "is a block device",
    );
}
