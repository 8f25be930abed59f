//! Where `deliver` finds the version and the branch nobody gave it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{bin, run, Run};

/// A build folder with just frontend/, inside `dir`.
fn build(dir: &Path) -> PathBuf {
    let b = dir.join("build");
    fs::create_dir_all(b.join("frontend")).unwrap();
    fs::write(b.join("frontend/index.html"), "hi").unwrap();
    b
}

/// `deliver --kind frontend` from `cwd`, with the given extra arguments
/// and environment.
fn deliver(dir: &Path, from: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = bin();
    cmd.current_dir(cwd)
        .arg("deliver")
        .arg("--from")
        .arg(from)
        .args([
            "--kind",
            "frontend",
            "--time",
            "2026-11-26T23:50:12Z",
            "--out",
        ])
        .arg(dir.join("dist"))
        .args(args)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, dir)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "init.defaultBranch=master",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn version_from_package_json_or_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    let cwd = dir.path().join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    fs::write(
        from.join("package.json"),
        r#"{"name": "web", "version": "3.1.0-beta.2"}"#,
    )
    .unwrap();
    let r = deliver(dir.path(), &from, &cwd, &["--branch", "master"], &[]);
    r.code_is(0);
    assert_eq!(
        r.stdout().trim(),
        "frontend_20261126T235012Z_3.1.0-beta.2_master.tar.zst",
        "{r}"
    );

    fs::remove_file(from.join("package.json")).unwrap();
    fs::write(
        cwd.join("Cargo.toml"),
        "[package]\nname = \"x\"\nversion = \"0.9.1+ci\"\n",
    )
    .unwrap();
    let r = deliver(dir.path(), &from, &cwd, &["--branch", "master"], &[]);
    r.code_is(0);
    assert_eq!(
        r.stdout().trim(),
        "frontend_20261126T235012Z_0.9.1+ci_master.tar.zst",
        "{r}"
    );

    // A version outside the contract is refused, naming where it was read.
    fs::write(
        cwd.join("Cargo.toml"),
        "[package]\nname = \"x\"\nversion = \"1.0_rc\"\n",
    )
    .unwrap();
    deliver(dir.path(), &from, &cwd, &["--branch", "master"], &[])
        .code_is(1)
        .stderr_has("\"1.0_rc\"")
        .stderr_has("Cargo.toml");
}

#[test]
fn version_and_branch_from_git() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    let from = build(&repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1.4.2"]);
    fs::write(from.join("frontend/more.js"), "2").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "two"]);
    git(&repo, &["checkout", "-q", "-b", "feature/search"]);
    let hash = git(&repo, &["rev-parse", "--short", "HEAD"]);

    // Run from outside the repository: git is asked in the build folder.
    let r = deliver(dir.path(), &from, dir.path(), &[], &[]);
    r.code_is(0);
    assert_eq!(
        r.stdout().trim(),
        format!("frontend_20261126T235012Z_1.4.2-1-g{hash}_feature~search.tar.zst"),
        "{r}"
    );
    r.stderr_has("version from git describe")
        .stderr_has("branch from git rev-parse");

    // The CI's variable wins over git (CI checkouts are often detached).
    let r = deliver(
        dir.path(),
        &from,
        dir.path(),
        &[],
        &[("BITBUCKET_BRANCH", "release/2.0")],
    );
    r.code_is(0);
    assert!(r.stdout().trim().ends_with("_release~2.0.tar.zst"), "{r}");
    let r = deliver(
        dir.path(),
        &from,
        dir.path(),
        &[],
        &[("GITHUB_REF_NAME", "master"), ("BITBUCKET_BRANCH", "other")],
    );
    r.code_is(0);
    assert!(r.stdout().trim().ends_with("_master.tar.zst"), "{r}");

    // Detached and no variable: say what to give.
    git(&repo, &["checkout", "-q", "--detach"]);
    deliver(dir.path(), &from, dir.path(), &[], &[])
        .code_is(1)
        .stderr_has("detached")
        .stderr_has("--branch");
    // A branch git would refuse is refused, naming where it came from.
    deliver(
        dir.path(),
        &from,
        dir.path(),
        &[],
        &[("CI_COMMIT_REF_NAME", "a..b")],
    )
    .code_is(1)
    .stderr_has("$CI_COMMIT_REF_NAME");
}

#[test]
fn no_version_anywhere_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let from = build(dir.path());
    deliver(dir.path(), &from, dir.path(), &["--branch", "master"], &[])
        .code_is(1)
        .stderr_has("no version found")
        .stderr_has("--version");
}
