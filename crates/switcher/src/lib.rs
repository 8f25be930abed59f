//! The switcher: one pass takes the newest staged artifact into service, or
//! leaves the running release running, and says which.
//!
//! Modules (see ARCHITECTURE.md for the steps of a pass):
//! - [`probe`]: is a port listening, does a health URL answer 2xx.
//! - [`status`]: the status page, its JSON and the Prometheus text file.

pub mod probe;
pub mod status;
