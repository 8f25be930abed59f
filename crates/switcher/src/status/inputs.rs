//! Reading what the page shows: the state files, the journal, the history,
//! quarantine/, and the probes of each component's port and health URL.
//!
//! Nothing here fails the refresh: a file that is missing is an empty state
//! and a file that cannot be read or parsed becomes a message, so the page
//! can say what is broken instead of not being written at all.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deploy_root::state::{self, CollectorState, HistoryEntry, SwitcherState};
use deploy_root::{Config, Layout};

use super::model::Quarantined;
use crate::probe::{self, Health};

/// How many history lines the page lists.
pub const HISTORY_LINES: usize = 20;
/// How many history lines are read for the timeline (within the tail).
pub const TIMELINE_LINES: usize = 2000;
/// How long the listen check may wait: a local port answers at once.
const LISTEN_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a health request may take before it counts as no answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How much of the end of history.jsonl is read: days of passes that did
/// something, and bounded however long the file grows.
const HISTORY_TAIL_BYTES: u64 = 256 * 1024;

/// One component's probe, made at refresh time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Whether 127.0.0.1:port accepts connections.
    pub listening: bool,
    /// The health request's outcome, where a health URL is set and the
    /// port listens.
    pub health: Option<Health>,
    /// When the probe ran.
    pub checked_at: DateTime<Utc>,
}

/// Everything the rules look at, read at one instant.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// state/collector.json, or why it cannot be read.
    pub collector: Result<CollectorState, String>,
    /// state/switcher.json, or why it cannot be read.
    pub switcher: Result<SwitcherState, String>,
    /// The journal's modification time when a pass is under way.
    pub journal_since: Option<DateTime<Utc>>,
    /// The last [`TIMELINE_LINES`] history entries (in the tail read),
    /// newest first; the page lists the first [`HISTORY_LINES`].
    pub history: Vec<HistoryEntry>,
    /// Lines of the history that do not parse, in words.
    pub history_errors: Vec<String>,
    /// The quarantined files, newest first.
    pub quarantined: Vec<Quarantined>,
    /// Why quarantine/ cannot be listed, if it cannot.
    pub quarantine_error: Option<String>,
    /// The probes, per component.
    pub probes: BTreeMap<String, Probe>,
    /// state/control.json (the holds set by hand), or why it cannot be read.
    pub control: Result<deploy_root::control::ControlState, String>,
}

impl Inputs {
    /// Reads the state under `layout` and probes every component of
    /// `config`.
    pub fn read(config: &Config, layout: &Layout) -> Inputs {
        let (history, history_errors) = read_history(&layout.history());
        let (quarantined, quarantine_error) = match read_quarantine(&layout.quarantine) {
            Ok(q) => (q, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let switcher: Result<SwitcherState, String> =
            state::load(&layout.switcher_state()).map_err(|e| format!("{e:#}"));
        let probes = probe_all(config, switcher.as_ref().ok());
        Inputs {
            collector: state::load(&layout.collector_state()).map_err(|e| format!("{e:#}")),
            switcher,
            journal_since: fs::metadata(layout.journal()).ok().map(|m| {
                m.modified()
                    .map_or_else(|_| Utc::now(), DateTime::<Utc>::from)
            }),
            history,
            history_errors,
            quarantined,
            quarantine_error,
            probes,
            control: deploy_root::control::load(layout).map_err(|e| format!("{e:#}")),
        }
    }
}

/// Probes each component's port (a blue-green one's serving slot's), and
/// its health URL where it listens.
fn probe_all(config: &Config, switcher: Option<&SwitcherState>) -> BTreeMap<String, Probe> {
    config
        .components
        .iter()
        .map(|(name, c)| {
            let checked_at = Utc::now();
            let port = crate::bluegreen::serving_port(c, switcher, name);
            let listening = probe::listening(port, LISTEN_TIMEOUT);
            // A port that does not listen has nothing to be healthy with;
            // asking would only repeat "connection refused".
            let health = match (c.health_url_on(port), listening) {
                (Some(url), true) => Some(probe::health(&url, HEALTH_TIMEOUT)),
                _ => None,
            };
            (
                name.clone(),
                Probe {
                    listening,
                    health,
                    checked_at,
                },
            )
        })
        .collect()
}

/// The last [`TIMELINE_LINES`] entries of history.jsonl, newest first,
/// and the lines that do not parse.
fn read_history(path: &Path) -> (Vec<HistoryEntry>, Vec<String>) {
    let text = match tail(path, HISTORY_TAIL_BYTES) {
        Ok(Some(text)) => text,
        Ok(None) => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![format!("{}: {e}", path.display())]),
    };
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(TIMELINE_LINES);
    for line in lines.iter().skip(start).rev() {
        match serde_json::from_str::<HistoryEntry>(line) {
            Ok(e) => entries.push(e),
            Err(e) => errors.push(format!(
                "a line of {} does not parse ({e}): {}",
                path.display(),
                line.chars().take(200).collect::<String>()
            )),
        }
    }
    (entries, errors)
}

/// The last `limit` bytes of a file from the first whole line on, or
/// `None` when the file does not exist.
fn tail(path: &Path, limit: u64) -> std::io::Result<Option<String>> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(limit);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // Starting mid-file cuts the first line: drop it.
    Ok(Some(if start > 0 {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    } else {
        text
    }))
}

/// The files in quarantine/ (not the `.reason` files), newest first, with
/// the first line of each one's `.reason`.
fn read_quarantine(dir: &Path) -> Result<Vec<Quarantined>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let entries: Vec<fs::DirEntry> = entries.flatten().collect();
    let names: std::collections::HashSet<String> = entries
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".reason") || name.starts_with(".tmp-") {
            continue;
        }
        // A marker that was quarantined with its artifact is part of that
        // entry; one quarantined on its own has its own reason file.
        let with_its_artifact = name
            .strip_suffix(".sha256")
            .is_some_and(|a| names.contains(a) && !names.contains(&format!("{name}.reason")));
        if with_its_artifact {
            continue;
        }
        let mut reason_name = entry.file_name();
        reason_name.push(".reason");
        let reason = fs::read(dir.join(reason_name)).ok().map(|bytes| {
            let text = String::from_utf8_lossy(&bytes);
            text.lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(500)
                .collect()
        });
        let modified = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .map(DateTime::<Utc>::from);
        out.push(Quarantined {
            name,
            reason,
            modified,
        });
    }
    out.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.name.cmp(&b.name)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_empty_and_broken_files_are_messages() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        let config = Config::parse(
            &root.join("cutover.toml"),
            "root = \"root\"\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 1\n",
        )?;
        let layout = Layout::new(&config);
        let inputs = Inputs::read(&config, &layout);
        assert!(inputs.collector.is_ok() && inputs.switcher.is_ok());
        assert!(inputs.history.is_empty() && inputs.quarantined.is_empty());
        assert!(inputs.journal_since.is_none());
        assert!(!inputs.probes["backend"].listening);

        layout.ensure()?;
        fs::write(layout.collector_state(), "{ not json")?;
        fs::write(layout.switcher_state(), "{\"last_run\": 5}")?;
        fs::write(layout.journal(), "{}")?;
        fs::write(
            layout.history(),
            "{\"at\":\"2026-11-26T23:50:12Z\",\"action\":\"deploy\",\"outcome\":\"deployed\",\"total_ms\":5}\nbroken\n",
        )?;
        fs::write(layout.quarantine.join("bad.tar"), "x")?;
        fs::write(layout.quarantine.join("bad.tar.sha256"), "x")?;
        fs::write(layout.quarantine.join("lone.tar.sha256"), "x")?;
        fs::write(
            layout.quarantine.join("lone.tar.sha256.reason"),
            "a marker without its artifact\n",
        )?;
        fs::write(
            layout.quarantine.join("bad.tar.reason"),
            "digest mismatch\nmore\n",
        )?;
        let inputs = Inputs::read(&config, &layout);
        let err = inputs.collector.expect_err("broken collector.json");
        assert!(err.contains("collector.json"), "{err}");
        assert!(inputs.switcher.is_err());
        assert!(inputs.journal_since.is_some());
        assert_eq!(inputs.history.len(), 1);
        assert_eq!(
            inputs.history_errors.len(),
            1,
            "{:?}",
            inputs.history_errors
        );
        let mut q = inputs.quarantined.clone();
        q.sort_by(|a, b| a.name.cmp(&b.name));
        let shown: Vec<(&str, Option<&str>)> = q
            .iter()
            .map(|q| (q.name.as_str(), q.reason.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("bad.tar", Some("digest mismatch")),
                ("lone.tar.sha256", Some("a marker without its artifact"))
            ]
        );
        Ok(())
    }

    #[test]
    fn history_keeps_the_last_lines_newest_first() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("history.jsonl");
        let n = TIMELINE_LINES + 10;
        let lines: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"at\":\"2026-11-26T23:{:02}:00Z\",\"action\":\"deploy\",\"outcome\":\"deployed\",\"total_ms\":{i}}}\n",
                    i % 60
                )
            })
            .collect();
        fs::write(&path, lines)?;
        let (entries, errors) = read_history(&path);
        assert!(errors.is_empty());
        assert_eq!(entries.len(), TIMELINE_LINES);
        assert_eq!(entries[0].total_ms, n as u64 - 1);
        assert_eq!(entries[TIMELINE_LINES - 1].total_ms, 10);
        Ok(())
    }
}
