//! Running the binary and showing the whole story when a test fails.

use std::path::Path;
use std::process::Command;

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

/// One finished run: the workspace's shared [`Run`], which shows the
/// command, its output and the tree when an assertion fails.
pub use cutover_tests::Run;

/// Runs `cmd`, recording the listing of `dir` afterwards.
pub fn run(cmd: &mut Command, dir: &Path) -> Run {
    Run::capture(cmd, dir)
}
