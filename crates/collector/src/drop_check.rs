//! Refuses a drop folder that is one of the deploy root's own folders.
//!
//! The collector removes what it takes from the drop folder; were the drop
//! folder staging/ (or quarantine/, or the root), a pass would delete
//! staged artifacts as "duplicates". The config file's own checks cannot
//! see this (the folders may be links), so it is checked here, on the real
//! paths, and reported as a config error.

use std::fmt;
use std::path::{Path, PathBuf};

use deploy_root::{Config, Layout};

/// A drop folder that is one of the root's folders: a config error.
#[derive(Debug)]
pub struct DropConflict {
    file: PathBuf,
    drop: PathBuf,
    what: &'static str,
}

impl fmt::Display for DropConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config file {}: key `drop`: expected a folder of its own, found {}, which is {}",
            self.file.display(),
            self.drop.display(),
            self.what
        )
    }
}

impl std::error::Error for DropConflict {}

/// Checks that the drop folder is none of the root's own folders (after
/// resolving links); folders that do not exist cannot conflict.
pub fn check(config: &Config, layout: &Layout) -> Result<(), DropConflict> {
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    let Some(drop) = real(&layout.drop) else {
        return Ok(());
    };
    let own = [
        (&layout.root, "the deploy root itself"),
        (&layout.staging, "the staging folder"),
        (&layout.quarantine, "the quarantine folder"),
        (&layout.releases, "the releases folder"),
        (&layout.current, "the current folder"),
        (&layout.shared, "the shared folder"),
        (&layout.state, "the state folder"),
    ];
    for (dir, what) in own {
        if real(dir).is_some_and(|d| d == drop) {
            return Err(DropConflict {
                file: config.path.clone(),
                drop: layout.drop.clone(),
                what,
            });
        }
    }
    Ok(())
}
