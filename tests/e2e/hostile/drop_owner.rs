//! The drop folder belongs to CI's upload user, who may plant a symlink to
//! /etc/shadow or a hard link to a file they cannot read, each with a
//! marker that matches the target (following it would "verify"). The
//! collector, run as an unprivileged user of its own (as the `cutover`
//! user runs it) and then as root (who could read anything), never reads,
//! moves or follows them: it exits 0, leaves them in place, reports why,
//! and the targets' contents appear nowhere under the deploy root. An
//! upload its user may not read is refused and reported the same way.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cutover_tests::archive::marker;
use cutover_tests::bins::bin;
use cutover_tests::packages::is_root;
use cutover_tests::{Run, Sandbox};

use super::demo;

/// The unprivileged user the collector runs as in this test.
const USER: &str = "cutover-htest";

/// The uid and gid of [`USER`], created (a system user without a home or
/// a shell) when missing.
fn test_user() -> (u32, u32) {
    assert!(
        is_root(),
        "this test creates the user {USER} and runs the collector as it: run ./tests/run as root"
    );
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if id("-u").is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .output()
            .unwrap();
        // Another test process may have created it meanwhile.
        assert!(
            out.status.success() || id("-u").is_some(),
            "useradd {USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// Every regular file under `dir` (links not followed) whose bytes contain
/// `needle`, except the hard link `skip_ino` itself.
fn holders(dir: &Path, needle: &[u8], skip_ino: u64) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(holders(&p, needle, skip_ino));
        } else if meta.is_file() && meta.ino() != skip_ino {
            let bytes = fs::read(&p).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn check(sb: &Sandbox, run: &Run, shadow_link: &Path, hard: &Path, private: &Path) {
    run.success();
    assert_eq!(
        fs::read_link(shadow_link).unwrap(),
        Path::new("/etc/shadow"),
        "{run}"
    );
    assert_eq!(
        fs::metadata(hard).unwrap().ino(),
        fs::metadata(private).unwrap().ino(),
        "{run}"
    );
    for dir in ["staging", "quarantine"] {
        assert!(
            sb.names(dir).iter().all(|n| n.starts_with('.')),
            "{dir}/ must stay empty\n{run}"
        );
    }
    let state = sb.state_json("collector.json");
    let waiting = state["waiting"].to_string();
    assert!(waiting.contains("symbolic link"), "{state:#}\n{run}");
    assert!(waiting.contains("hard links"), "{state:#}\n{run}");
}

#[test]
fn planted_links_in_the_drop_folder_are_never_read_moved_or_followed() {
    let (uid, gid) = test_user();
    let sb = Sandbox::new();
    let drop = sb.drop_dir();
    let shadow = fs::read("/etc/shadow").expect("/etc/shadow (root can read it)");
    // A file of root's the upload user cannot read, outside the root.
    let private = sb.dir().join("private");
    let secret = b"private: only root may read this\n".to_vec();
    fs::write(&private, &secret).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();

    let a = demo("full", "1.0.0", 1).name();
    let b = demo("full", "2.0.0", 2).name();
    let shadow_link = drop.join(a.file_name());
    symlink("/etc/shadow", &shadow_link).unwrap();
    fs::write(drop.join(a.marker_name()), marker(a.file_name(), &shadow)).unwrap();
    let hard = drop.join(b.file_name());
    fs::hard_link(&private, &hard).unwrap();
    fs::write(drop.join(b.marker_name()), marker(b.file_name(), &secret)).unwrap();

    // The root belongs to the collector's user; the temp dir above it must
    // let that user through (0711), the private file stays root's 0600.
    fs::set_permissions(sb.dir(), fs::Permissions::from_mode(0o711)).unwrap();
    let chown = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&sb.root)
        .arg(&sb.config)
        .status()
        .unwrap();
    assert!(chown.success());
    // chown -R does not follow the symlink, and the hard link's inode is
    // root's private file: give it back.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&private, Some(0), Some(0)).unwrap();

    let as_user = sb.run_cmd(
        Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
            ])
            .arg(bin("collector")),
    );
    check(&sb, &as_user, &shadow_link, &hard, &private);
    // Root could read both: it must refuse them all the same.
    let as_root = sb.run("collector", &[]);
    check(&sb, &as_root, &shadow_link, &hard, &private);

    let skip = fs::metadata(&private).unwrap().ino();
    let shadow_line = shadow.split(|b| *b == b'\n').next().unwrap_or_default();
    if !shadow_line.is_empty() {
        let found = holders(&sb.root, shadow_line, skip);
        assert!(
            found.is_empty(),
            "/etc/shadow's content is in {found:?}\n{as_root}"
        );
    }
    let found = holders(&sb.root, &secret, skip);
    assert!(
        found.is_empty(),
        "the private file's content is in {found:?}\n{as_root}"
    );
    // Neither was quarantined under another name either.
    assert!(sb.names("quarantine").is_empty(), "{as_root}");

    // An upload the collector's user may not read (its uploader's mode):
    // refused and reported, not an error that fails every pass.
    let c = demo("full", "3.0.0", 3);
    let cn = c.name();
    let unreadable = drop.join(cn.file_name());
    fs::write(&unreadable, c.bytes()).unwrap();
    fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        drop.join(cn.marker_name()),
        marker(cn.file_name(), &c.bytes()),
    )
    .unwrap();
    let run = sb.run_cmd(
        Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
            ])
            .arg(bin("collector")),
    );
    run.success();
    assert!(unreadable.is_file(), "{run}");
    assert!(
        !sb.names("staging").contains(&cn.file_name().to_string()),
        "{run}"
    );
    let state = sb.state_json("collector.json");
    assert!(
        state["waiting"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w["name"] == cn.file_name()
                && w["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("may not read"))),
        "{state:#}\n{run}"
    );
}
