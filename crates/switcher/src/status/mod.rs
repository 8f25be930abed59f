//! The status page: Last, Running, Status per component, with the seed's
//! troubleshooting rules applied (first cut: the three entry points).

use deploy_root::{Config, Layout};

/// Writes state/deploy-status.{html,json} and the Prometheus text file.
/// Every switcher pass calls this, even when nothing deploys.
pub fn refresh(_config: &Config, _layout: &Layout) -> anyhow::Result<()> {
    Ok(())
}

/// The status as a plain-text table, for `switcher status`.
pub fn render_text(_config: &Config, _layout: &Layout) -> anyhow::Result<String> {
    Ok("deploy status: not implemented yet\n".to_string())
}

/// The status as the documented JSON (schema 1), for `switcher status --json`.
pub fn render_json(_config: &Config, _layout: &Layout) -> anyhow::Result<String> {
    Ok("{\"schema\":1}\n".to_string())
}
