//! The branch in the name: given, from the CI's environment, or from git.
//!
//! CI checkouts are often detached, where git only says `HEAD`; the CI's
//! own variable is the truth there, so it is asked first.

use std::path::Path;

use anyhow::bail;

use super::git;

/// The CI variables that hold the branch being built, in the order asked:
/// GitHub Actions, Bitbucket Pipelines, GitLab CI.
pub const ENV_VARS: [&str; 3] = ["GITHUB_REF_NAME", "BITBUCKET_BRANCH", "CI_COMMIT_REF_NAME"];

/// A branch and where it came from (for messages).
#[derive(Debug)]
pub struct Found {
    /// The branch as git spells it (checked later, with the whole name).
    pub branch: String,
    /// Where it was found, e.g. "$GITHUB_REF_NAME".
    pub source: String,
}

/// Finds the branch for a build in `from`, run from `cwd`.
pub fn detect(from: &Path, cwd: &Path) -> anyhow::Result<Found> {
    for var in ENV_VARS {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let Some(branch) = value.to_str() else {
                bail!(
                    "${var} is not UTF-8: expected a git branch name (give --branch to override)"
                );
            };
            return Ok(Found {
                branch: branch.to_string(),
                source: format!("${var}"),
            });
        }
    }
    match git::ask(&["rev-parse", "--abbrev-ref", "HEAD"], &[from, cwd]) {
        Ok(branch) if branch == "HEAD" => bail!(
            "no branch found: git's HEAD is detached and none of ${} is set: expected --branch",
            ENV_VARS.join(", $")
        ),
        Ok(branch) => Ok(Found {
            branch,
            source: "git rev-parse --abbrev-ref HEAD".into(),
        }),
        Err(why) => bail!(
            "no branch found: expected --branch, one of ${}, or a git repository ({why})",
            ENV_VARS.join(", $")
        ),
    }
}
