//! End-to-end tests: collector and switcher together, as cron runs them.
//!
//! One test binary with topic modules; each test has its own sandbox.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod cycle;
mod deliver;
mod fleet_deliver;
mod fleet_intake;
mod fleet_rollout;
mod generated;
mod hostile;
mod naming;
mod ops;
mod package;
mod status;
mod status_glance;
mod store_fixture;
mod watch;
mod workspace;
