//! The artifact-name binary as CI scripts use it, from outside its package.

use cutover_tests::bins::bin;
use cutover_tests::ArchiveBuilder;

#[test]
fn ci_script_names_match_the_library() {
    let built = ArchiveBuilder::demo("full", "1.4.2").branch("feature/x");
    let out = std::process::Command::new(bin("artifact-name"))
        .args([
            "format",
            "--kind",
            "full",
            "--version",
            "1.4.2",
            "--branch",
            "feature/x",
        ])
        .args([
            "--time",
            &built.name().build_time_rfc3339(),
            "--ext",
            "tar.gz",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        built.name().file_name()
    );
}
