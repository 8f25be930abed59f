//! The collector binary against real temp trees, real processes and, for
//! the cross-filesystem cases, a drop folder on /dev/shm.
//!
//! One test binary with topic modules. The crash test prints a table of
//! stop points and outcomes: `cargo test -p collector --test collector
//! crash -- --nocapture` shows it.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod basics;
mod clash;
mod concurrency;
mod config;
mod crash;
mod cross_fs;
mod hostile;
mod last;
mod markers;
mod prune;
mod quarantine;
mod support;
