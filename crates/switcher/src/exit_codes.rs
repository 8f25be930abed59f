//! The switcher's exit codes, as `--help` and the README document them.

/// The pass ended well: deployed, nothing to do, or another run held the lock.
pub const OK: u8 = 0;
/// Something else went wrong (the message says what).
pub const ERROR: u8 = 1;
/// A deploy failed: it was rolled back, or it failed while preparing and
/// nothing running was touched. The previous release runs.
pub const DEPLOY_FAILED: u8 = 3;
/// A deploy failed and going back failed too: the service may be down.
pub const ROLLBACK_FAILED: u8 = 4;
/// `switcher check` found problems (each is printed with its fix).
pub const CHECK_FAILED: u8 = 5;
/// The config file is missing or not valid (sysexits' EX_CONFIG).
pub const CONFIG: u8 = 78;

/// The exit codes as `--help` shows them (keep in step with the constants).
pub const HELP: &str = "\
Exit codes:
  0   the pass ended well: deployed, nothing to do, or another run holds the lock
  1   any other error (the message says what)
  3   a deploy failed: it was rolled back, or it failed while preparing and
      nothing running was touched; the previous release runs
  4   a deploy failed and going back failed too: the service may be down
  5   switcher check found problems (each is printed with its fix)
  78  the config file is missing or not valid";
