//! The status page: Last, Running, Status per component, with the seed's
//! troubleshooting rules applied and named in words.
//!
//! Every switcher pass calls [`refresh`], which writes three files under
//! state/, each atomically: `deploy-status.html` (the page nginx serves at
//! /deploy-status), `deploy-status.json` (the same facts, documented in
//! docs/status-json.md) and `cutover.prom` (Prometheus text). `switcher
//! status [--json]` prints [`render_text`] or [`render_json`].
//!
//! The three files are derived from the state and rewritten by every pass,
//! so they are renamed into place (readers see the old file or the new)
//! without fsync ([`atomic::write_unsynced`]): a crash can cost at most
//! the last minute's page, and their six fsyncs were most of an idle pass.
//!
//! - [`inputs`]: reads the state files and probes the ports (never fails).
//! - [`rules`]: the seed's rules applied: the [`model::StatusDoc`].
//! - [`model`]: the document; [`html`], [`text`], [`prom`]: its forms.
//! - [`escape`], [`csp`]: untrusted text made inert, and the page's CSP.
//! - [`control`]: the holds set by hand (pins, freeze, follow).
//! - `fleet_page` (feature `s3`): `switcher fleet`'s page, built from the
//!   same parts.

pub mod control;
pub mod csp;
pub mod escape;
#[cfg(feature = "s3")]
pub mod fleet_page;
pub mod html;
pub mod inputs;
pub mod model;
pub mod prom;
pub mod rules;
pub mod svg;
pub mod text;
pub mod timeline;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_glance;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::{atomic, Config, Layout};

use inputs::Inputs;
use model::StatusDoc;

/// The page, under state/.
pub const HTML_FILE: &str = "deploy-status.html";
/// The JSON, under state/.
pub const JSON_FILE: &str = "deploy-status.json";
/// The Prometheus text, under state/.
pub const PROM_FILE: &str = "cutover.prom";

/// Writes state/deploy-status.{html,json} and state/cutover.prom.
/// Every switcher pass calls this, even when nothing deploys.
pub fn refresh(config: &Config, layout: &Layout) -> anyhow::Result<()> {
    let doc = gather(config, layout, Utc::now());
    write_all(layout, &doc, stale_after(config))
}

/// The status as a plain-text table, for `switcher status`.
pub fn render_text(config: &Config, layout: &Layout) -> anyhow::Result<String> {
    Ok(text::render(&gather(config, layout, Utc::now())))
}

/// The status as the documented JSON (schema 2), for `switcher status --json`.
pub fn render_json(config: &Config, layout: &Layout) -> anyhow::Result<String> {
    json(&gather(config, layout, Utc::now()))
}

/// Reads everything and applies the rules as of `now` (the probes run now).
pub fn gather(config: &Config, layout: &Layout, now: DateTime<Utc>) -> StatusDoc {
    let down_before = previous_down(&layout.state.join(JSON_FILE));
    let inputs = Inputs::read(config, layout);
    // The branches `switcher follow` set, as a pass sees them.
    let config = &control::followed(config, &inputs.control, now);
    let mut doc = rules::document_with(config, &inputs, &down_before, now);
    crate::notify::annotate(&mut doc, layout);
    doc
}

/// Since when each component the previous deploy-status.json found DOWN
/// has been DOWN: its `down_since`, else its `checked_at`. No state file
/// records the listen check, so the page carries its own DOWN stretch
/// forward (a lost or unreadable page restarts it at the next check).
pub fn previous_down(path: &std::path::Path) -> std::collections::BTreeMap<String, DateTime<Utc>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Default::default();
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Default::default();
    };
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    doc.get("components")
        .and_then(serde_json::Value::as_object)
        .map(|cs| {
            cs.iter()
                .filter(|(_, c)| {
                    c.get("status").and_then(serde_json::Value::as_str) == Some("DOWN")
                })
                .filter_map(|(name, c)| {
                    let since = c
                        .get("down_since")
                        .and_then(time)
                        .or_else(|| c.get("checked_at").and_then(time))?;
                    Some((name.clone(), since))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON text of `doc`: pretty, newline-ended.
pub fn json(doc: &StatusDoc) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(doc).context("serializing the status")?;
    text.push('\n');
    Ok(text)
}

/// Writes the three files. The JSON goes first and the page last, so that a
/// page never shows facts the JSON beside it does not have yet.
pub fn write_all(
    layout: &Layout,
    doc: &StatusDoc,
    stale_after: std::time::Duration,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&layout.state)
        .with_context(|| format!("creating folder {}", layout.state.display()))?;
    atomic::write_unsynced(&layout.state.join(JSON_FILE), json(doc)?.as_bytes())?;
    atomic::write_unsynced(&layout.state.join(PROM_FILE), prom::render(doc).as_bytes())?;
    atomic::write_unsynced(
        &layout.state.join(HTML_FILE),
        html::render(doc, stale_after).as_bytes(),
    )?;
    Ok(())
}

/// How old the page may grow before it says it has not been renewed: two
/// periods, the same limit as the switcher-not-running rule.
pub fn stale_after(config: &Config) -> std::time::Duration {
    config.status.period * 2
}
