//! `state/history.jsonl`: one JSON line per pass that did something.
//!
//! Each line is written with one write(2) on an `O_APPEND` descriptor and
//! then fsynced, so that concurrent readers never see half a line and a
//! crash loses at most the line being written.

use std::fs::OpenOptions;
use std::io::Write;

use anyhow::Context;
use deploy_root::state::HistoryEntry;
use deploy_root::Layout;

/// Appends `entry` as one line.
pub fn append(layout: &Layout, entry: &HistoryEntry) -> anyhow::Result<()> {
    append_any(layout, entry)
}

/// Appends any serializable line the same way as [`append`] (a history
/// line with more fields, such as who ran a command by hand).
pub fn append_any<T: serde::Serialize>(layout: &Layout, entry: &T) -> anyhow::Result<()> {
    let path = layout.history();
    let mut line = serde_json::to_vec(entry).context("serializing a history entry")?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(&line)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Reads every entry (lines that do not parse are skipped: the file is a
/// log, and one bad line must not hide the rest).
pub fn read(layout: &Layout) -> anyhow::Result<Vec<HistoryEntry>> {
    let path = layout.history();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
