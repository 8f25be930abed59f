//! The collector's exit codes, as `--help` documents them.
//!
//! Cron mails whatever a job prints and systemd marks a unit failed on any
//! non-zero code, so "nothing to do" and "another run holds the lock" are
//! both success.

/// The pass is done, or there was nothing to do, or another run holds the
/// lock. Bad files are quarantined: that is not a failure.
pub const OK: u8 = 0;
/// The pass failed: an I/O error on some file (the pass still handled the
/// others), or a state file that cannot be read.
pub const FAILED: u8 = 1;
/// The command line is not valid (clap's own code; listed for the docs).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// The config file is missing or not valid, or its drop folder is one of
/// the deploy root's own folders (`EX_CONFIG` from sysexits.h).
pub const CONFIG: u8 = 78;
