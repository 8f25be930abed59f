//! Running the binary and showing the whole story when a test fails.

use std::fmt;
use std::path::Path;
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact-name"));
    // The CI's branch variables of the machine running the tests must not
    // leak into what the tests expect.
    for var in [
        "GITHUB_REF_NAME",
        "BITBUCKET_BRANCH",
        "CI_COMMIT_REF_NAME",
        "CUTOVER_SSH",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// One finished run: the command, its output, and the tree it worked on.
pub struct Run {
    pub cmd: String,
    pub out: Output,
    pub tree: String,
}

/// Runs `cmd`, recording the listing of `dir` afterwards.
pub fn run(cmd: &mut Command, dir: &Path) -> Run {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    Run {
        cmd: shown,
        out,
        tree: listing(dir),
    }
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(
            self.out.status.code(),
            Some(code),
            "expected exit code {code}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr().contains(needle),
            "expected {needle:?} on stderr\n{self}"
        );
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}\n--- tree\n{}",
            self.cmd,
            self.out.status,
            self.stdout(),
            self.stderr(),
            self.tree
        )
    }
}

/// Every path under `dir` with its type, sorted.
pub fn listing(dir: &Path) -> String {
    let mut lines = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap_or(e.path())
            .display()
            .to_string();
        let ft = e.file_type();
        let kind = if ft.is_dir() {
            "/".to_string()
        } else if ft.is_symlink() {
            format!(
                " -> {}",
                std::fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            )
        } else {
            format!(" ({} bytes)", e.metadata().map(|m| m.len()).unwrap_or(0))
        };
        lines.push(format!("{rel}{kind}"));
    }
    lines.join("\n")
}
