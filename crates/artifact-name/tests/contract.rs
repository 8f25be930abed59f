//! The naming contract, tested from outside: round trips over generated
//! names, each rejection with its reason, and ordering. The binary's
//! `format` and `parse` are tested in crates/deliver.

#![allow(clippy::unwrap_used)]

use artifact_name::{ArtifactName, Ext, Field};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// A git-valid branch: components of safe-but-hostile characters joined by
/// '/', none starting with '.', none ending in ".lock" or '.'.
fn branch() -> impl Strategy<Value = String> {
    let component = "[A-Za-z0-9_<>&'\"=(),!#%+-][A-Za-z0-9_.<>&'\"=(),!#%+é漢-]{0,12}"
        .prop_filter("git rules", |c| {
            !c.ends_with(".lock") && !c.ends_with('.') && !c.contains("..") && !c.starts_with('-')
        });
    prop::collection::vec(component, 1..4).prop_map(|parts| parts.join("/"))
}

fn ext() -> impl Strategy<Value = Ext> {
    prop::sample::select(Ext::ALL.to_vec())
}

proptest! {
    #[test]
    fn round_trips(
        kind in "[a-z][a-z0-9-]{0,10}",
        secs in 0i64..4_102_444_800,
        version in "[0-9A-Za-z.+-]{1,20}",
        branch in branch(),
        ext in ext(),
    ) {
        let time = Utc.timestamp_opt(secs, 0).unwrap();
        let name = ArtifactName::new(&kind, time, &version, &branch, ext).unwrap();
        let parsed = ArtifactName::parse(name.file_name()).unwrap();
        prop_assert_eq!(&parsed, &name);
        prop_assert_eq!(parsed.kind(), kind.as_str());
        prop_assert_eq!(parsed.build_time(), time);
        prop_assert_eq!(parsed.version(), version.as_str());
        prop_assert_eq!(parsed.branch(), branch.as_str());
        prop_assert_eq!(parsed.ext(), ext);
        prop_assert_eq!(parsed.to_string(), name.file_name());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = ArtifactName::parse_bytes(&bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}_\\PC{0,40}") {
        if let Ok(name) = ArtifactName::parse(&s) {
            // Whatever parses formats back to itself.
            prop_assert_eq!(name.file_name(), s.as_str());
        }
    }
}

#[track_caller]
fn rejected(input: &str, field: Field, needle: &str) {
    let err = ArtifactName::parse(input).expect_err(input);
    assert_eq!(err.field(), field, "{input:?}: {err}");
    let message = err.to_string();
    assert!(
        message.contains(needle),
        "{message:?} should contain {needle:?}"
    );
    assert!(
        message.contains(&format!("{input:?}")),
        "{message:?} should show the input"
    );
}

#[test]
fn each_rejection_names_its_field() {
    rejected(
        "full_20261126T235012Z_1.4.2_master.zip",
        Field::Ext,
        "tar.gz",
    );
    rejected(
        "full_20261126T235012Z_1.4.2.tar.gz",
        Field::Name,
        "<kind>_<build time>",
    );
    rejected(
        "Full_20261126T235012Z_1.4.2_master.tar.gz",
        Field::Kind,
        "[a-z][a-z0-9-]*",
    );
    rejected(
        "full_2026-11-26T23:50:12Z_1.4.2_master.tar.gz",
        Field::BuildTime,
        "YYYYMMDDTHHMMSSZ",
    );
    rejected(
        "full_20261126T235012_1.4.2_master.tar.gz",
        Field::BuildTime,
        "YYYYMMDDTHHMMSSZ",
    );
    rejected(
        "full_20261326T235012Z_1.4.2_master.tar.gz",
        Field::BuildTime,
        "UTC",
    );
    rejected(
        "full_20261126T235012Z_1.4 2_master.tar.gz",
        Field::Version,
        "[0-9A-Za-z.+-]",
    );
    rejected(
        "full_20261126T235012Z__master.tar.gz",
        Field::Version,
        "one or more",
    );
    rejected(
        "full_20261126T235012Z_1.4.2_a..b.tar.gz",
        Field::Branch,
        "'..'",
    );
    rejected(
        "full_20261126T235012Z_1.4.2_a~~b.tar.gz",
        Field::Branch,
        "empty path component",
    );
    rejected(
        "full_20261126T235012Z_1.4.2_a\nb.tar.gz",
        Field::Branch,
        "control characters",
    );
    rejected(
        "full_20261126T235012Z_1.4.2_.hidden.tar.gz",
        Field::Branch,
        "'.'",
    );
    let long = format!("full_20261126T235012Z_1.4.2_{}.tar.gz", "b".repeat(230));
    rejected(&long, Field::Name, "at most 248 bytes");
    let err = ArtifactName::parse_bytes(b"full_20261126T235012Z_1.4.2_\xff.tar.gz").unwrap_err();
    assert_eq!(err.field(), Field::Name);
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn examples_from_the_contract_parse() {
    let a = ArtifactName::parse("full_20261126T235012Z_1.4.2_master.tar.gz").unwrap();
    assert_eq!(a.kind(), "full");
    assert_eq!(a.build_time_rfc3339(), "2026-11-26T23:50:12Z");
    assert_eq!(a.stem(), "full_20261126T235012Z_1.4.2_master");
    let b = ArtifactName::parse(
        "frontend_20261127T101500Z_1.5.0-rc.1+g3f2a9c1_feature~search_v2.tar.zst",
    )
    .unwrap();
    assert_eq!(b.version(), "1.5.0-rc.1+g3f2a9c1");
    assert_eq!(b.branch(), "feature/search_v2");
    assert_eq!(b.ext(), Ext::TarZst);
    assert_eq!(b.marker_name(), format!("{}.sha256", b.file_name()));
    let xss = ArtifactName::parse("full_20261126T235012Z_1_x~<svg~onload=alert(1)>.tar").unwrap();
    assert_eq!(xss.branch(), "x/<svg/onload=alert(1)>");
}

#[test]
fn orders_by_build_time_then_name() {
    let mut names: Vec<ArtifactName> = [
        "full_20261127T000000Z_1.0.0_master.tar.gz",
        "frontend_20261126T000000Z_9.9.9_master.tar.gz",
        "full_20261126T000000Z_1.0.0_master.tar.gz",
        "full_20261125T235959Z_2.0.0_zeta.tar",
    ]
    .iter()
    .map(|n| ArtifactName::parse(n).unwrap())
    .collect();
    names.sort();
    let sorted: Vec<&str> = names.iter().map(|n| n.file_name()).collect();
    assert_eq!(
        sorted,
        [
            "full_20261125T235959Z_2.0.0_zeta.tar",
            "frontend_20261126T000000Z_9.9.9_master.tar.gz",
            "full_20261126T000000Z_1.0.0_master.tar.gz",
            "full_20261127T000000Z_1.0.0_master.tar.gz",
        ]
    );
}
