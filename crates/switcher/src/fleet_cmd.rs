//! `switcher fleet`: this VM's group as the store has it (feature `s3`).
//!
//! Reads the group (`[fleet] group` in `[store]`: one LIST, a GET per VM
//! report and halt record, [`fleet::view::read`]), writes the fleet page
//! (`fleet.html`, `fleet.json`; state/ or `--out`) that nginx serves at
//! /fleet, and prints the table (or, with `--json`, the JSON). A VM not
//! seen for two of its periods, by the store's clock, is named missing.
//! Changes nothing in the store.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use deploy_root::{Config, Layout};
use fleet::{Store, StoreError};

use crate::exit_codes;
use crate::status::escape;
use crate::status::fleet_page;

/// Runs `switcher fleet`; the exit code.
pub fn run(config: &Config, layout: &Layout, json: bool, out: Option<&Path>) -> anyhow::Result<u8> {
    let (Some(store_config), Some(fleet_config)) = (&config.store, &config.fleet) else {
        eprintln!(
            "switcher: `switcher fleet` reads the group from the store: the config has no {} section(s); add [store] (url, endpoint, ...) and [fleet] (group)",
            match (&config.store, &config.fleet) {
                (None, None) => "[store] and [fleet]",
                (None, _) => "[store]",
                _ => "[fleet]",
            }
        );
        return Ok(exit_codes::CONFIG);
    };
    let store = match Store::open(store_config) {
        Ok(s) => s,
        Err(e @ StoreError::Setup(_)) => {
            eprintln!("switcher: {e}");
            return Ok(exit_codes::CONFIG);
        }
        Err(e) => return Err(e.into()),
    };
    let view = fleet::view::read(&store, &fleet_config.group, config.status.period).with_context(
        || {
            format!(
                "reading group {} from {}",
                fleet_config.group,
                store.label()
            )
        },
    )?;
    // Printed first: a page that cannot be written still leaves the table.
    let text = if json {
        fleet_page::json(&view)?
    } else {
        fleet::view::render_table(&view, &|s| escape::terminal(s, true))
    };
    {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing to stdout")?;
    }
    let dir = out.unwrap_or(&layout.state);
    fleet_page::write(dir, &view, crate::status::stale_after(config))?;
    Ok(exit_codes::OK)
}
