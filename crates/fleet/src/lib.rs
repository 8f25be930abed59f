//! Many VMs fed from one S3-compatible store (docs/fleet.md).
//!
//! - [`store`]: the S3 client (signed by rusty-s3, sent by ureq), with
//!   typed conditional-write outcomes and request counts.
//! - [`layout`]: the keys of everything in the store.
//! - [`lease`]: the rolling switch's slot leases (If-None-Match, If-Match,
//!   the store's clock).
//! - [`probe`]: whether the store honours conditional writes.
//! - [`report`]: a VM's report (`fleet/<group>/status/<vm>.json`).
//! - [`rollout`]: failed deploys per VM and the halt of a rollout.
//! - [`view`]: a group as readers see it (reports, liveness by the store's
//!   clock, missing VMs, halts) and its plain-text table.
//!
//! The binaries link this crate only with their `s3` feature (the .deb
//! enables it), so a build without it carries no HTTP or TLS code.

pub mod layout;
pub mod lease;
pub mod probe;
pub mod report;
pub mod rollout;
pub mod store;
pub mod view;

pub use store::{Condition, ObjectMeta, Store, StoreError, Written};
