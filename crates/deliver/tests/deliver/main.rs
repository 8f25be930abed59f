//! The `artifact-name` binary from outside: `format` and `parse`, and
//! `deliver`: the archive it packs, where it
//! finds version and branch, `--wait` against a status page served on
//! loopback, and the CI templates that call it (linted by real linters).
//!
//! Uploads through a real sshd are tested end to end in tests/e2e/deliver.rs.

#![allow(clippy::unwrap_used)]

mod cli;
mod detect;
mod pack;
mod support;
mod templates;
mod wait;
