//! Hostile drop entries: symbolic links, hard links, fifos, and names with
//! control characters or invalid UTF-8.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};

use cutover_tests::archive::marker;
use cutover_tests::Sandbox;

use crate::support::{artifact, collect_ok, raw_names, waiting};

/// A file outside the deploy root, standing in for /etc/shadow.
fn secret(sb: &Sandbox) -> (std::path::PathBuf, Vec<u8>) {
    let path = sb.dir().join("shadow");
    let content = b"root:$6$secret:19000:0:99999:7:::\n".to_vec();
    fs::write(&path, &content).unwrap();
    (path, content)
}

#[test]
fn symlink_is_never_followed_nor_moved() {
    let sb = Sandbox::new();
    let (secret, content) = secret(&sb);
    let name = artifact("full", "1.0.0", 10).name().file_name().to_string();
    let link = sb.drop_dir().join(&name);
    symlink(&secret, &link).unwrap();
    // A marker that matches the target: following the link would "verify".
    fs::write(
        sb.drop_dir().join(format!("{name}.sha256")),
        marker(&name, &content),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{run}"
    );
    assert_eq!(fs::read_link(&link).unwrap(), secret, "{run}");
    assert_eq!(fs::read(&secret).unwrap(), content, "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");
    let waiting = waiting(&sb);
    assert!(
        waiting
            .iter()
            .any(|(n, r)| n == &name && r.contains("symbolic link")),
        "{waiting:?}\n{run}"
    );
    run.stderr_has("symbolic link");
    // Said once, not every minute.
    let again = collect_ok(&sb);
    assert_eq!(again.stderr(), "", "{again}");
}

#[test]
fn symlinked_marker_is_not_followed() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    fs::write(sb.drop_dir().join(&name), a.bytes()).unwrap();
    let real_marker = sb.dir().join("marker");
    fs::write(&real_marker, marker(&name, &a.bytes())).unwrap();
    symlink(&real_marker, sb.drop_dir().join(format!("{name}.sha256"))).unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    assert_eq!(sb.names("drop").len(), 2, "{run}");
    let waiting = waiting(&sb);
    assert!(
        waiting
            .iter()
            .any(|(n, r)| n == &name && r.contains("marker") && r.contains("symbolic link")),
        "{waiting:?}\n{run}"
    );
}

#[test]
fn hardlink_is_refused() {
    let sb = Sandbox::new();
    let (secret, content) = secret(&sb);
    let name = artifact("full", "1.0.0", 10).name().file_name().to_string();
    let linked = sb.drop_dir().join(&name);
    fs::hard_link(&secret, &linked).unwrap();
    fs::write(
        sb.drop_dir().join(format!("{name}.sha256")),
        marker(&name, &content),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert!(linked.exists() && secret.exists(), "{run}");
    assert_eq!(fs::read(&secret).unwrap(), content);
    assert!(sb.names("staging").is_empty(), "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");
    let waiting = waiting(&sb);
    assert!(
        waiting
            .iter()
            .any(|(n, r)| n == &name && r.contains("hard links") && r.contains("cannot read")),
        "{waiting:?}\n{run}"
    );
    run.stderr_has("hard links");
}

#[test]
fn fifo_does_not_block_and_is_refused() {
    let sb = Sandbox::new();
    let name = artifact("full", "1.0.0", 10).name().file_name().to_string();
    let fifo = sb.drop_dir().join(&name);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    fs::write(
        sb.drop_dir().join(format!("{name}.sha256")),
        marker(&name, b""),
    )
    .unwrap();
    let started = Instant::now();
    let run = collect_ok(&sb);
    assert!(started.elapsed() < Duration::from_secs(20), "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    let waiting = waiting(&sb);
    assert!(
        waiting
            .iter()
            .any(|(n, r)| n == &name && r.contains("fifo")),
        "{waiting:?}\n{run}"
    );
}

#[test]
fn dangerous_names_are_quarantined_byte_for_byte() {
    let sb = Sandbox::new();
    let names: [&[u8]; 3] = [
        b"full_20261126T000000Z_1.0_master\n.tar.gz",
        b"evil\x1b[31mred\x07.tar.gz",
        b"bad-\xff\xfe-utf8.tar.gz",
    ];
    for name in names {
        let name = OsStr::from_bytes(name);
        fs::write(sb.drop_dir().join(name), b"junk").unwrap();
        let mut m = name.as_bytes().to_vec();
        m.extend_from_slice(b".sha256");
        fs::write(sb.drop_dir().join(OsStr::from_bytes(&m)), b"whatever\n").unwrap();
    }
    let run = collect_ok(&sb);
    assert!(raw_names(&sb.drop_dir()).is_empty(), "{run}");
    let quarantined = raw_names(&sb.path("quarantine"));
    for name in names {
        for suffix in [&b""[..], b".sha256", b".reason"] {
            let mut want = name.to_vec();
            want.extend_from_slice(suffix);
            assert!(
                quarantined.contains(&want),
                "{:?} not in quarantine\n{run}",
                String::from_utf8_lossy(&want)
            );
        }
        let mut reason = name.to_vec();
        reason.extend_from_slice(b".reason");
        let text = fs::read(sb.path("quarantine").join(OsStr::from_bytes(&reason))).unwrap();
        // One line, no raw control characters: safe to cat.
        assert_eq!(text.iter().filter(|b| **b == b'\n').count(), 1, "{run}");
        assert!(
            !text[..text.len() - 1].iter().any(|b| b.is_ascii_control()),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
    }
    // The log escapes the names too.
    assert!(!run.stderr().contains('\x1b'), "{run}");
}
