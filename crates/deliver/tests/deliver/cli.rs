//! `format` and `parse` on the command line: the contract as CI scripts
//! see it.

use std::process::Command;

use artifact_name::ArtifactName;
use chrono::Utc;

#[track_caller]
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run artifact-name");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bin() -> Command {
    crate::support::bin()
}

#[test]
fn binary_formats() {
    let (ok, out, err) = run(bin().args([
        "format",
        "--kind",
        "full",
        "--version",
        "1.4.2",
        "--branch",
        "feature/x",
        "--time",
        "2026-11-26T23:50:12Z",
        "--ext",
        "tar.gz",
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "full_20261126T235012Z_1.4.2_feature~x.tar.gz\n");
    // A time with an offset is converted to UTC.
    let (ok, out, err) = run(bin().args([
        "format",
        "--kind",
        "full",
        "--version",
        "1",
        "--branch",
        "m",
        "--time",
        "2026-11-27T01:50:12+02:00",
        "--ext",
        "tar",
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "full_20261126T235012Z_1_m.tar\n");
    // --time defaults to now.
    let (ok, out, err) = run(bin().args([
        "format",
        "--kind",
        "full",
        "--version",
        "1",
        "--branch",
        "m",
    ]));
    assert!(ok, "{err}");
    let parsed = ArtifactName::parse(out.trim_end()).unwrap();
    assert!((Utc::now() - parsed.build_time()).num_seconds().abs() < 60);
}

#[test]
fn binary_rejects_with_reason() {
    let (ok, out, err) = run(bin().args([
        "format",
        "--kind",
        "full",
        "--version",
        "1_2",
        "--branch",
        "m",
    ]));
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.contains("version") && err.contains("[0-9A-Za-z.+-]"),
        "{err}"
    );
    let (ok, _, err) = run(bin().args(["parse", "junk.txt"]));
    assert!(!ok);
    assert!(
        err.contains("extension") && err.contains("\"junk.txt\""),
        "{err}"
    );
}

#[test]
fn binary_parses_to_json() {
    let (ok, out, err) = run(bin().args([
        "parse",
        "/drop/frontend_20261127T101500Z_1.5.0-rc.1+g3f2a9c1_feature~search_v2.tar.zst",
    ]));
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["kind"], "frontend");
    assert_eq!(json["build_time"], "2026-11-27T10:15:00Z");
    assert_eq!(json["version"], "1.5.0-rc.1+g3f2a9c1");
    assert_eq!(json["branch"], "feature/search_v2");
    assert_eq!(json["ext"], "tar.zst");
}

#[test]
fn a_time_without_a_zone_is_refused_saying_a_zone_is_needed() {
    let format = |time: &str| {
        run(bin().args([
            "format",
            "--kind",
            "full",
            "--version",
            "1",
            "--branch",
            "m",
            "--time",
            time,
        ]))
    };
    let (ok, out, err) = format("2026-11-30T01:02:03");
    assert!(!ok && out.is_empty(), "{out}{err}");
    assert!(
        err.contains("has no zone")
            && err.contains("expected RFC 3339 with a zone, like 2026-11-30T01:02:03Z"),
        "{err}"
    );
    assert!(!err.contains("premature end of input"), "{err}");
    let (ok, _, err) = format("2026-11-30");
    assert!(
        !ok && err.contains("a date without a time and a zone"),
        "{err}"
    );
    let (ok, _, err) = format("yesterday");
    assert!(!ok && err.contains("with a zone, like"), "{err}");
    // Zones of any kind are converted to UTC.
    let (ok, out, err) = format("2026-11-30T02:02:03+01:00");
    assert!(ok, "{err}");
    assert_eq!(out, "full_20261130T010203Z_1_m.tar.zst\n");

    // deliver's --time, before anything is packed.
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(bin()
        .current_dir(dir.path())
        .args(["deliver", "--from", "build", "--kind", "full", "--time"])
        .arg("2026-11-30T01:02:03"));
    assert!(!ok, "{err}");
    assert!(err.contains("expected RFC 3339 with a zone"), "{err}");
    assert!(!dir.path().join("dist").exists());
}

/// `deliver` with a store or a group, before anything is packed: a build
/// without the `s3` feature names it; one with it wants the store's keys.
/// Neither packs a thing.
#[test]
fn store_flags_are_checked_before_packing() {
    let dir = tempfile::tempdir().unwrap();
    let deliver = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(["deliver", "--from", "build", "--kind", "full"])
            .args(["--version", "1", "--branch", "m"])
            .args(extra)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("CUTOVER_STORE_URL")
            .env_remove("CUTOVER_STORE_CREDENTIALS_FILE");
        run(&mut cmd)
    };
    let (ok, _, err) = deliver(&["--to", "s3://builds/catalog"]);
    assert!(!ok, "{err}");
    if cfg!(feature = "s3") {
        assert!(
            err.contains("no store credentials") && err.contains("--store-credentials-file"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("`s3` feature") && err.contains("--to"),
            "{err}"
        );
    }
    let (ok, _, err) = deliver(&["--wait", "--group", "web"]);
    assert!(!ok, "{err}");
    if cfg!(feature = "s3") {
        assert!(err.contains("--store-url"), "{err}");
    } else {
        assert!(
            err.contains("`s3` feature") && err.contains("--group"),
            "{err}"
        );
    }
    // A bare --wait needs a group.
    let (ok, _, err) = deliver(&["--wait"]);
    assert!(!ok && err.contains("add --group NAME"), "{err}");
    // A store is not an ssh target.
    let (ok, _, err) = deliver(&["--target", "s3://builds/catalog"]);
    assert!(!ok && err.contains("--to s3://builds/catalog"), "{err}");
    assert!(!dir.path().join("dist").exists());
}
