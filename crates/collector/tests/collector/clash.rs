//! Two artifacts with one stem (`x.tar.gz` and `x.tgz`) would share a
//! release id, `releases/<component>/x/`: the switcher could deploy only
//! one, and would fail on the other every pass (or unpack it over the
//! release a rollback returns to). The collector keeps the first one
//! staged and quarantines the other, naming it; an upload whose release
//! folder exists already is quarantined too.

use std::fs;

use artifact_name::Ext;
use cutover_tests::Sandbox;

use crate::support::{artifact, assert_staged, collect_ok, reason};

#[test]
fn two_of_one_stem_in_one_pass_the_first_by_name_is_staged() {
    let sb = Sandbox::new();
    let gz = artifact("full", "1.0.0", 10).ext(Ext::TarGz);
    let tgz = artifact("full", "1.0.0", 10).ext(Ext::Tgz);
    let (gz_name, tgz_name) = (gz.name(), tgz.name());
    assert_eq!(gz_name.stem(), tgz_name.stem());
    // Dropped in the other order: the pass goes by name, not by arrival.
    tgz.drop_into(&sb.drop_dir());
    gz.drop_into(&sb.drop_dir());
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &gz, &run);
    assert!(sb.names("drop").is_empty(), "{run}");
    let tgz_file = tgz_name.file_name();
    assert!(
        !sb.path("staging").join(tgz_file).exists(),
        "both staged\n{run}"
    );
    assert_eq!(
        fs::read(sb.path("quarantine").join(tgz_file)).unwrap(),
        tgz.bytes(),
        "{run}"
    );
    assert!(sb.path("quarantine").join(tgz_name.marker_name()).exists());
    let why = reason(&sb, tgz_file, &run);
    assert!(why.contains("release id"), "{why}");
    assert!(why.contains("clash"), "{why}");
    assert!(why.contains(gz_name.file_name()), "names the other: {why}");
    run.stderr_has("quarantined");
    // Nothing more the next pass.
    let run = collect_ok(&sb);
    assert_eq!(sb.names("quarantine").len(), 3, "{run}");
}

#[test]
fn a_later_upload_of_a_staged_stem_is_quarantined() {
    let sb = Sandbox::new();
    let tar = artifact("frontend", "2.0.0", 20).ext(Ext::Tar);
    let zst = artifact("frontend", "2.0.0", 20).ext(Ext::TarZst);
    tar.drop_into(&sb.drop_dir());
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &tar, &run);
    zst.drop_into(&sb.drop_dir());
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &tar, &run);
    assert!(sb.names("drop").is_empty(), "{run}");
    let why = reason(&sb, zst.name().file_name(), &run);
    assert!(why.contains(tar.name().file_name()), "{why}");
    assert!(why.contains("already in staging"), "{why}");
}

#[test]
fn an_upload_whose_release_folder_exists_is_quarantined() {
    let sb = Sandbox::new();
    let tgz = artifact("full", "3.0.0", 30).ext(Ext::Tgz);
    let name = tgz.name();
    // Deployed from x.tar.gz, which was pruned from staging since.
    let release = sb.path("releases/backend").join(name.stem());
    fs::create_dir_all(&release).unwrap();
    tgz.drop_into(&sb.drop_dir());
    let before = cutover_tests::sandbox::listing(&sb.path("releases"));
    let run = collect_ok(&sb);
    assert!(sb.names("staging").is_empty(), "{run}");
    assert!(sb.names("drop").is_empty(), "{run}");
    let why = reason(&sb, name.file_name(), &run);
    assert!(why.contains("release id"), "{why}");
    assert!(
        why.contains(&format!("releases/backend/{}", name.stem())),
        "names the release folder: {why}"
    );
    assert_eq!(
        cutover_tests::sandbox::listing(&sb.path("releases")),
        before,
        "the collector never writes releases/"
    );
}

#[test]
fn the_first_staged_wins_even_when_the_first_by_name_is_refused() {
    let sb = Sandbox::new();
    let gz = artifact("full", "4.0.0", 40).ext(Ext::TarGz);
    let tgz = artifact("full", "4.0.0", 40).ext(Ext::Tgz);
    gz.drop_into(&sb.drop_dir());
    tgz.drop_into(&sb.drop_dir());
    // The first by name is corrupt: quarantined for its digest, and the
    // second is the first staged.
    let path = sb.drop_dir().join(gz.name().file_name());
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &tgz, &run);
    let why = reason(&sb, gz.name().file_name(), &run);
    assert!(why.contains("digest mismatch"), "{why}");
}
