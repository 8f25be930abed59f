//! The switcher's exit codes, as `--help` and the README document them.
//!
//! The numbers are the workspace's shared constants
//! (`artifact_name::exit_codes`): one number means one thing across
//! collector, switcher and artifact-name.

/// `switcher check` found problems (each is printed with its fix).
pub use artifact_name::exit_codes::CHECK_FAILED;
/// The config file is missing or not valid (sysexits' EX_CONFIG).
pub use artifact_name::exit_codes::CONFIG;
/// A deploy failed: it was rolled back, or it failed while preparing and
/// nothing running was touched. The previous release runs.
pub use artifact_name::exit_codes::DEPLOY_FAILED;
/// Something else went wrong (the message says what).
pub use artifact_name::exit_codes::ERROR;
/// The pass ended well: deployed, nothing to do, or another run held the lock.
pub use artifact_name::exit_codes::OK;
/// A deploy failed and going back failed too: the service may be down.
pub use artifact_name::exit_codes::ROLLBACK_FAILED;
/// The store ignores conditional writes: `switcher check` found it, or
/// rolling mode (`[fleet] max_parallel`) refused to start on it.
pub use artifact_name::exit_codes::STORE_UNFIT;

/// The exit codes as `--help` shows them (keep in step with the constants).
pub const HELP: &str = "\
Exit codes:
  0   the pass ended well: deployed, nothing to do, or another run holds the lock
  1   any other error (the message says what)
  2   the command line is not valid
  3   a deploy failed: it was rolled back, or it failed while preparing and
      nothing running was touched; the previous release runs
  4   a deploy failed and going back failed too: the service may be down
  5   switcher check found problems (each is printed with its fix)
  10  the store ignores conditional writes: rolling mode ([fleet] max_parallel)
      refuses to start on it (switcher check says so too)
  78  the config file is missing or not valid";
