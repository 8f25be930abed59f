//! The safe unpacker against hostile archives, built header by header so
//! that names the `tar` builder would refuse can be tested.

use std::collections::BTreeSet;
use std::path::Path;

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
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("backend/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid must be dropped");
    assert_eq!(
        std::fs::read_link(dir.path().join("backend/lib")).unwrap(),
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
