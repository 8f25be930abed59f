//! The collector's exit codes, as `--help` documents them: the workspace's
//! shared constants (`artifact_name::exit_codes`, one number one meaning
//! across collector, switcher and artifact-name).
//!
//! Cron mails whatever a job prints and systemd marks a unit failed on any
//! non-zero code, so "nothing to do" and "another run holds the lock" are
//! both success.

/// The config file is missing or not valid, or its drop folder is one of
/// the deploy root's own folders (`EX_CONFIG` from sysexits.h).
pub use artifact_name::exit_codes::CONFIG;
/// The pass failed: an I/O error on some file (the pass still handled the
/// others), or a state file that cannot be read (the shared `ERROR`).
pub use artifact_name::exit_codes::ERROR as FAILED;
/// The pass is done, or there was nothing to do, or another run holds the
/// lock. Bad files are quarantined: that is not a failure.
pub use artifact_name::exit_codes::OK;
/// The command line is not valid (clap's own code; listed for the docs).
#[allow(unused_imports)]
pub use artifact_name::exit_codes::USAGE;
