//! All-or-nothing writes: a temp file in the same folder, fsync, rename(2),
//! fsync of the folder. A reader sees the old content or the new, never a
//! mix, and a crash at any instant leaves one of the two on disk.
//!
//! [`write_unsynced`] and [`replace_symlink_unsynced`] keep the rename (so a
//! reader still never sees a half file or a missing link) but leave out the
//! fsyncs, for callers whose crash safety does not rest on them: derived
//! files regenerated every pass, or a batch of links whose folder the caller
//! fsyncs once.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `bytes` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    replace_file(path, bytes, true)
}

/// Replaces `path` with `bytes` by rename, like [`write`], but without any
/// fsync: for derived files that every pass regenerates (the status page,
/// its JSON, the Prometheus text), never for state. Readers still see the
/// old content or the new, never a mix; a crash or power cut can at worst
/// leave the previous version (or, on a filesystem that does not order the
/// data before the rename, an empty file), which the next pass replaces.
/// An fsync costs a journal commit, several milliseconds on a busy disk,
/// and these files are rewritten every minute whatever happens.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    replace_file(path, bytes, false)
}

/// A temp file beside `path`, written (and fsynced with `durable`), renamed
/// over `path` (and the folder fsynced with `durable`).
fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> anyhow::Result<()> {
    let dir = parent(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if durable {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    set_mode(tmp.as_file(), 0o644)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming into place {}", path.display()))?;
    if durable {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Replaces `path` with the JSON form of `value` (pretty, newline-ended).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serializing JSON")?;
    bytes.push(b'\n');
    write(path, &bytes)
}

/// Points the symlink `link` at `target` atomically: a new link under a
/// temporary name, then rename(2) over the old one. Never the
/// unlink-then-create window of `ln -sfn`.
pub fn replace_symlink(link: &Path, target: &Path) -> anyhow::Result<()> {
    replace_symlink_unsynced(link, target)?;
    fsync_dir(parent(link)?)
}

/// [`replace_symlink`] without the fsync of the folder: the caller flips
/// several links in one folder and then calls [`fsync_dir`] once, which
/// makes every rename before it durable.
pub fn replace_symlink_unsynced(link: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = parent(link)?;
    let name = link
        .file_name()
        .with_context(|| format!("{} has no file name", link.display()))?;
    let tmp = dir.join(format!(
        ".tmp-link-{}-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {}", tmp.display())),
    }
    symlink(target, &tmp).with_context(|| format!("creating symlink {}", tmp.display()))?;
    fs::rename(&tmp, link)
        .with_context(|| format!("renaming {} over {}", tmp.display(), link.display()))
}

/// fsyncs a folder, so that a rename or create inside it is durable.
pub fn fsync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync of folder {}", dir.display()))
}

/// Makes everything written to the filesystem that holds `path` durable:
/// syncfs(2), one call whatever the number of files. The switcher calls
/// it on a freshly unpacked release before renaming it into place, which
/// the bench measured far cheaper than an fsync per file for a release of
/// many files (BENCHMARKS.md, "durability of a 1 GiB release").
pub fn sync_filesystem(path: &Path) -> anyhow::Result<()> {
    let dir = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    nix::unistd::syncfs(&dir)
        .map_err(std::io::Error::from)
        .with_context(|| format!("syncfs of the filesystem holding {}", path.display()))
}

fn parent(path: &Path) -> anyhow::Result<&Path> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        Some(_) => Ok(Path::new(".")),
        None => anyhow::bail!("{} has no parent folder", path.display()),
    }
}

fn set_mode(file: &File, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .context("setting file mode")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_leaves_no_temp() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("s.json");
        write(&p, b"one")?;
        write(&p, b"two")?;
        assert_eq!(fs::read(&p)?, b"two");
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn write_unsynced_replaces_and_leaves_no_temp() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("page.html");
        write_unsynced(&p, b"one")?;
        write_unsynced(&p, b"two")?;
        assert_eq!(fs::read(&p)?, b"two");
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn symlink_flip_is_a_rename() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let link = dir.path().join("current");
        replace_symlink(&link, Path::new("a"))?;
        replace_symlink(&link, Path::new("b"))?;
        assert_eq!(fs::read_link(&link)?, Path::new("b"));
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
