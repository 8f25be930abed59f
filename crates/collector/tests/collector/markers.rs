//! Markers as CI scripts really write them: the digest alone, or
//! `sha256sum` output with Windows line ends, are complete uploads; anything
//! else is still quarantined with the reason.

use std::fs;

use cutover_tests::Sandbox;

use crate::support::{artifact, collect_ok, reason};

/// The 64 hex digits of `bytes`' SHA-256.
fn hex(bytes: &[u8]) -> String {
    let line = cutover_tests::archive::marker("x", bytes);
    line[..64].to_string()
}

#[test]
fn a_bare_digest_and_crlf_line_ends_are_taken() {
    let sb = Sandbox::new();
    let bare = artifact("full", "1.0.0", 10);
    let bare_lf = artifact("full", "1.0.1", 11);
    let crlf = artifact("frontend", "1.0.2", 12);
    let bare_crlf = artifact("frontend", "1.0.3", 13);
    let markers = [
        (&bare, String::new(), ""),
        (&bare_lf, String::new(), "\n"),
        (&crlf, format!("  {}", crlf.name().file_name()), "\r\n"),
        (&bare_crlf, String::new(), "\r\n"),
    ];
    for (a, tail, end) in &markers {
        let name = a.name();
        let bytes = a.bytes();
        fs::write(sb.drop_dir().join(name.file_name()), &bytes).unwrap();
        fs::write(
            sb.drop_dir().join(name.marker_name()),
            format!("{}{tail}{end}", hex(&bytes)),
        )
        .unwrap();
    }
    let run = collect_ok(&sb);
    assert!(sb.names("quarantine").is_empty(), "{run}");
    assert!(sb.names("drop").is_empty(), "{run}");
    let staged = sb.names("staging");
    for (a, _, _) in &markers {
        let name = a.name();
        assert!(
            staged.contains(&name.file_name().to_string()) && staged.contains(&name.marker_name()),
            "{} not staged with its marker\n{run}",
            name.file_name()
        );
        assert_eq!(
            fs::read(sb.path("staging").join(name.file_name())).unwrap(),
            a.bytes(),
            "{run}"
        );
    }
    assert_eq!(run.stderr(), "", "{run}");
}

#[test]
fn other_markers_are_still_quarantined_with_the_reason() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    let bytes = a.bytes();
    fs::write(sb.drop_dir().join(&name), &bytes).unwrap();
    // A carriage return that does not end the line.
    fs::write(
        sb.drop_dir().join(a.name().marker_name()),
        format!("{}\r  {name}\n", hex(&bytes)),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    let why = reason(&sb, &name, &run);
    assert!(why.contains("carriage return"), "{why}");
}
