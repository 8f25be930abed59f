//! The staged artifacts: what the collector has taken into staging/.
//!
//! What counts as staged (a valid name, a regular file, its marker a
//! regular file), their order and "newer than what runs" are the policy of
//! [`deploy_root::staging`], shared with the collector so that both
//! binaries see the same staging folder.

use anyhow::Context;
use deploy_root::Layout;

pub use deploy_root::staging::Staged;

/// The staged artifacts with markers, oldest first (build time, then file
/// name). A missing staging folder is empty.
pub fn list(layout: &Layout) -> anyhow::Result<Vec<Staged>> {
    deploy_root::staging::list(&layout.staging)
        .with_context(|| format!("listing staging folder {}", layout.staging.display()))
}
