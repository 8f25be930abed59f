//! Where everything lives under the deploy root.
//!
//! ```text
//! <root>/
//!   drop/                 CI uploads here (or `drop = ...` elsewhere)
//!   staging/              complete, verified artifacts and their markers
//!   quarantine/           rejected files, each with <name>.reason
//!   releases/<component>/<release id>/   unpacked releases
//!   current/<component> -> ../releases/<component>/<release id>
//!   shared/<component>/   files and folders that outlive releases
//!   state/                state files, locks, command logs, status page
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::Config;

/// The paths of one deploy root.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The root folder.
    pub root: PathBuf,
    /// Where CI uploads.
    pub drop: PathBuf,
    /// Complete, verified artifacts.
    pub staging: PathBuf,
    /// Rejected files with their reasons.
    pub quarantine: PathBuf,
    /// Unpacked releases, per component.
    pub releases: PathBuf,
    /// One symlink per component to the running release.
    pub current: PathBuf,
    /// Per-component files that outlive releases.
    pub shared: PathBuf,
    /// State files, locks, logs.
    pub state: PathBuf,
}

impl Layout {
    /// The layout that `config` describes.
    pub fn new(config: &Config) -> Layout {
        let root = config.root.clone();
        Layout {
            drop: config.drop.clone().unwrap_or_else(|| root.join("drop")),
            staging: root.join("staging"),
            quarantine: root.join("quarantine"),
            releases: root.join("releases"),
            current: root.join("current"),
            shared: root.join("shared"),
            state: root.join("state"),
            root,
        }
    }

    /// Creates every folder that is missing (not the drop folder's owner or
    /// mode: packaging sets those).
    pub fn ensure(&self) -> anyhow::Result<()> {
        for dir in [
            &self.root,
            &self.drop,
            &self.staging,
            &self.quarantine,
            &self.releases,
            &self.current,
            &self.shared,
            &self.state,
            &self.logs(),
        ] {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating folder {}", dir.display()))?;
        }
        Ok(())
    }

    /// The collector's lock file.
    pub fn collector_lock(&self) -> PathBuf {
        self.state.join("collector.lock")
    }

    /// The switcher's lock file.
    pub fn switcher_lock(&self) -> PathBuf {
        self.state.join("switcher.lock")
    }

    /// The collector's state file ("Last").
    pub fn collector_state(&self) -> PathBuf {
        self.state.join("collector.json")
    }

    /// The switcher's state file ("Running", failures).
    pub fn switcher_state(&self) -> PathBuf {
        self.state.join("switcher.json")
    }

    /// The switcher's append-only pass history (JSON lines).
    pub fn history(&self) -> PathBuf {
        self.state.join("history.jsonl")
    }

    /// The switcher's journal of the pass in progress.
    pub fn journal(&self) -> PathBuf {
        self.state.join("journal.json")
    }

    /// Output of the commands the switcher runs.
    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }

    /// The folder of one component's releases.
    pub fn releases_of(&self, component: &str) -> PathBuf {
        self.releases.join(component)
    }

    /// One release folder.
    pub fn release(&self, component: &str, id: &str) -> PathBuf {
        self.releases.join(component).join(id)
    }

    /// The `current/<component>` symlink.
    pub fn current_link(&self, component: &str) -> PathBuf {
        self.current.join(component)
    }

    /// What `current/<component>` should point to for release `id`: a
    /// relative path, so that the whole root can be moved.
    pub fn current_target(component: &str, id: &str) -> PathBuf {
        Path::new("..").join("releases").join(component).join(id)
    }

    /// The release id that `current/<component>` points to, if any.
    pub fn current_release(&self, component: &str) -> Option<String> {
        let target = fs::read_link(self.current_link(component)).ok()?;
        target.file_name().map(|n| n.to_string_lossy().into_owned())
    }
}
