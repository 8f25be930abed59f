//! The status page: Last, Running, Status per component, with the seed's
//! troubleshooting rules applied (placeholder until the status issue lands).

use deploy_root::{Config, Layout};

/// Writes state/deploy-status.{html,json} and the Prometheus text file.
/// Every switcher pass calls this, even when nothing deploys.
pub fn refresh(_config: &Config, _layout: &Layout) -> anyhow::Result<()> {
    Ok(())
}
