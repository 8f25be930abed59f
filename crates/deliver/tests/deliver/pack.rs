//! The archive `deliver` packs: exactly the kind's folders, sane metadata,
//! and a marker that matches; refusals name what they refuse.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{bin, run, Run};

const TIME: &str = "2026-11-26T23:50:12Z";
const TIME_SECS: u64 = 1_795_737_012;

/// One tar entry as the tests compare it.
#[derive(Debug, PartialEq)]
struct Entry {
    path: String,
    kind: char,
    mode: u32,
    link: Option<String>,
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A build folder holding backend/, frontend/, and things no kind carries.
fn build(dir: &Path) -> PathBuf {
    let b = dir.join("build");
    fs::create_dir_all(b.join("backend/lib/private")).unwrap();
    fs::create_dir_all(b.join("frontend/assets")).unwrap();
    fs::create_dir_all(b.join("extra")).unwrap();
    fs::write(b.join("README"), "not carried").unwrap();
    fs::write(b.join("extra/x"), "not carried").unwrap();
    fs::write(b.join("backend/run"), "#!/bin/sh\n").unwrap();
    chmod(&b.join("backend/run"), 0o700);
    fs::write(b.join("backend/secret.conf"), "k=v\n").unwrap();
    chmod(&b.join("backend/secret.conf"), 0o600);
    fs::write(b.join("backend/suid"), "x").unwrap();
    chmod(&b.join("backend/suid"), 0o6755);
    fs::write(b.join("backend/lib/private/a.so"), "so").unwrap();
    chmod(&b.join("backend/lib/private"), 0o700);
    symlink("run", b.join("backend/latest")).unwrap();
    symlink("../run", b.join("backend/lib/up")).unwrap();
    fs::write(b.join("frontend/index.html"), "<p>hi</p>").unwrap();
    fs::write(b.join("frontend/assets/app.js"), "1").unwrap();
    b
}

fn deliver(dir: &Path, from: &Path, kind: &str, extra: &[&str]) -> Run {
    let mut cmd: Command = bin();
    cmd.arg("deliver")
        .arg("--from")
        .arg(from)
        .args([
            "--kind",
            kind,
            "--version",
            "1.4.2",
            "--branch",
            "feature/x",
            "--time",
            TIME,
        ])
        .arg("--out")
        .arg(dir.join("dist"))
        .args(extra);
    run(&mut cmd, dir)
}

/// Lists the archive's entries; checks owner and mtime on each.
fn entries(path: &Path, run: &Run) -> Vec<Entry> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}\n{run}", path.display()));
    let raw: Box<dyn Read> = if path.to_string_lossy().ends_with(".tar.zst") {
        Box::new(zstd::Decoder::new(bytes.as_slice()).unwrap())
    } else {
        Box::new(flate2::read::GzDecoder::new(bytes.as_slice()))
    };
    let mut archive = tar::Archive::new(raw);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().display().to_string();
        assert_eq!(
            (h.uid().unwrap(), h.gid().unwrap()),
            (0, 0),
            "{path}\n{run}"
        );
        assert_eq!(h.username().unwrap(), Some("root"), "{path}");
        assert_eq!(h.groupname().unwrap(), Some("root"), "{path}");
        assert_eq!(h.mtime().unwrap(), TIME_SECS, "{path}");
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            other => panic!("{path}: unexpected entry type {other:?}"),
        };
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        out.push(Entry {
            path: path.trim_end_matches('/').to_string(),
            kind,
            mode: h.mode().unwrap(),
            link,
        });
    }
    out
}

fn e(path: &str, kind: char, mode: u32, link: Option<&str>) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode,
        link: link.map(String::from),
    }
}

fn frontend_entries() -> Vec<Entry> {
    vec![
        e("frontend", 'd', 0o755, None),
        e("frontend/assets", 'd', 0o755, None),
        e("frontend/assets/app.js", 'f', 0o644, None),
        e("frontend/index.html", 'f', 0o644, None),
    ]
}

#[test]
fn full_holds_exactly_backend_and_frontend_with_sane_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    let run = deliver(dir.path(), &from, "full", &[]);
    run.code_is(0);
    let name = "full_20261126T235012Z_1.4.2_feature~x.tar.zst";
    assert_eq!(run.stdout(), format!("{name}\n"), "{run}");

    let archive = dir.path().join("dist").join(name);
    let mut want = vec![
        e("backend", 'd', 0o755, None),
        e("backend/latest", 'l', 0o777, Some("run")),
        e("backend/lib", 'd', 0o755, None),
        e("backend/lib/private", 'd', 0o755, None),
        e("backend/lib/private/a.so", 'f', 0o644, None),
        e("backend/lib/up", 'l', 0o777, Some("../run")),
        e("backend/run", 'f', 0o755, None),
        e("backend/secret.conf", 'f', 0o644, None),
        e("backend/suid", 'f', 0o755, None),
    ];
    want.extend(frontend_entries());
    assert_eq!(entries(&archive, &run), want, "{run}");

    // The marker is sha256sum's line for the archive, and nothing else is
    // left in the output folder.
    let bytes = fs::read(&archive).unwrap();
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let marker =
        fs::read_to_string(dir.path().join("dist").join(format!("{name}.sha256"))).unwrap();
    assert_eq!(marker, format!("{hex}  {name}\n"));
    assert_eq!(artifact_name::parse_marker(&marker, name).unwrap(), hex);
    let mut names: Vec<String> = fs::read_dir(dir.path().join("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [name.to_string(), format!("{name}.sha256")], "{run}");

    // Packing the same tree at the same build time gives the same bytes.
    let again = deliver(dir.path(), &from, "full", &[]);
    again.code_is(0);
    assert_eq!(fs::read(&archive).unwrap(), bytes, "{again}");
}

#[test]
fn frontend_holds_only_frontend_and_gzip_makes_a_tar_gz() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    let run = deliver(dir.path(), &from, "frontend", &["--gzip"]);
    run.code_is(0);
    let name = "frontend_20261126T235012Z_1.4.2_feature~x.tar.gz";
    assert_eq!(run.stdout().trim(), name, "{run}");
    let got = entries(&dir.path().join("dist").join(name), &run);
    assert_eq!(got, frontend_entries(), "{run}");
}

#[test]
fn other_kinds_need_components() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    deliver(dir.path(), &from, "backend-only", &[])
        .code_is(1)
        .stderr_has("--components");
    let run = deliver(
        dir.path(),
        &from,
        "backend-only",
        &["--components", "backend"],
    );
    run.code_is(0);
    let got = entries(&dir.path().join("dist").join(run.stdout().trim()), &run);
    assert!(got.iter().all(|e| e.path.starts_with("backend")), "{got:?}");
    assert_eq!(got.len(), 9, "{got:?}");
    deliver(dir.path(), &from, "x", &["--components", "../etc"])
        .code_is(1)
        .stderr_has("\"../etc\" is not a component name");
}

/// A refusal: exit 1, the message on stderr, and no artifact written.
#[track_caller]
fn refused(dir: &Path, from: &Path, kind: &str, needles: &[&str]) {
    let run = deliver(dir, from, kind, &[]);
    run.code_is(1);
    for n in needles {
        run.stderr_has(n);
    }
    let left: Vec<_> = fs::read_dir(dir.join("dist"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a refused build left {left:?}\n{run}");
}

#[test]
fn links_out_of_the_component_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    symlink(
        "../../backend/secret.conf",
        from.join("frontend/assets/evil"),
    )
    .unwrap();
    // Still inside the build folder, but outside frontend/: the VM unpacks
    // each component on its own, so the link would dangle or worse.
    refused(
        dir.path(),
        &from,
        "frontend",
        &[
            "frontend/assets/evil",
            "../../backend/secret.conf",
            "stays inside frontend/",
        ],
    );
    fs::remove_file(from.join("frontend/assets/evil")).unwrap();
    symlink("/etc/passwd", from.join("frontend/abs")).unwrap();
    refused(
        dir.path(),
        &from,
        "frontend",
        &["frontend/abs", "is absolute"],
    );
}

#[test]
fn fifos_and_missing_folders_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    let fifo = from.join("backend/pipe");
    let out = Command::new("mkfifo").arg(&fifo).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    refused(dir.path(), &from, "full", &["backend/pipe", "is a fifo"]);
    // frontend alone does not carry backend/, so the fifo does not matter.
    deliver(dir.path(), &from, "frontend", &[]).code_is(0);
    fs::remove_dir_all(dir.path().join("dist")).unwrap();

    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    refused(
        dir.path(),
        &empty,
        "frontend",
        &["no component folder frontend/"],
    );
}

#[test]
fn an_output_folder_inside_a_packed_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    let mut cmd = bin();
    cmd.arg("deliver")
        .arg("--from")
        .arg(&from)
        .args([
            "--kind",
            "frontend",
            "--version",
            "1",
            "--branch",
            "master",
            "--out",
        ])
        .arg(from.join("frontend/dist"));
    run(&mut cmd, dir.path())
        .code_is(1)
        .stderr_has("is inside the component folder");
}
