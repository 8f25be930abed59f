//! Fuzz target: arbitrary bytes as an artifact's archive, through the
//! switcher's safe unpacker.
//!
//! The first byte picks the format (0: tar, 1: tar.gz, 2: tar.zst, modulo
//! 3), the rest is the archive. It is unpacked into `<tmp>/outer/inner/dest`
//! with small limits, so each run stays fast even for a bomb. Whatever the
//! outcome, it must not panic, nothing may exist beside the destination
//! (each parent folder holds only the next one), and no symlink in the
//! destination may resolve outside it.

#![no_main]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use artifact_name::Ext;
use libfuzzer_sys::fuzz_target;
use switcher::unpack::{unpack, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else {
        return;
    };
    let ext = match selector % 3 {
        0 => Ext::Tar,
        1 => Ext::TarGz,
        _ => Ext::TarZst,
    };
    let tmp = tempfile::tempdir().expect("a temp dir");
    let outer = tmp.path().join("outer");
    let inner = outer.join("inner");
    let dest = inner.join("dest");
    fs::create_dir_all(&dest).expect("the destination");
    let limits = Limits {
        max_unpacked_size: 1 << 20,
        max_entries: 256,
        top_level: BTreeSet::from(["backend".to_string(), "frontend".to_string()]),
    };
    let _ = unpack(archive, ext, &dest, &limits, |_| {});

    for (dir, only) in [(tmp.path(), "outer"), (&*outer, "inner"), (&*inner, "dest")] {
        let names: Vec<String> = fs::read_dir(dir)
            .expect("a parent folder")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [only],
            "something was written beside {only} in {}",
            dir.display()
        );
    }
    let root = fs::canonicalize(&dest).expect("the destination");
    check_links(&dest, &root);
});

/// Every symlink under `dir` that resolves must resolve inside `root`.
fn check_links(dir: &Path, root: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(real) = fs::canonicalize(&path) {
                assert!(
                    real.starts_with(root),
                    "{} resolves to {}, outside the destination",
                    path.display(),
                    real.display()
                );
            }
        } else if meta.is_dir() {
            check_links(&path, root);
        }
    }
}
