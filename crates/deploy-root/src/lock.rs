//! One lock per binary, so that overlapping cron runs never interleave.
//!
//! The lock is `flock(2)` on a file in state/: the kernel releases it when
//! the process dies, so a crash cannot strand it. The file is opened
//! close-on-exec (Rust's `File::open` always passes `O_CLOEXEC`), so the
//! services that the switcher starts never inherit it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock at `path` without waiting: `Ok(None)` when another
/// process holds it.
pub fn try_lock(path: &Path) -> anyhow::Result<Option<LockGuard>> {
    let file = open(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(LockGuard {
            _lock: lock,
            path: path.to_path_buf(),
        })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => {
            Err(anyhow::Error::from(errno)).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Opens (creating) the lock file; std opens with `O_CLOEXEC`.
fn open(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let first = try_lock(&path)?;
        assert!(first.is_some());
        assert!(try_lock(&path)?.is_none());
        drop(first);
        assert!(try_lock(&path)?.is_some());
        Ok(())
    }
}
