//! All-or-nothing writes: a temp file in the same folder, fsync, rename(2),
//! fsync of the folder. A reader sees the old content or the new, never a
//! mix, and a crash at any instant leaves one of the two on disk.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `bytes` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = parent(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    set_mode(tmp.as_file(), 0o644)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming into place {}", path.display()))?;
    fsync_dir(dir)
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
        .with_context(|| format!("renaming {} over {}", tmp.display(), link.display()))?;
    fsync_dir(dir)
}

/// fsyncs a folder, so that a rename or create inside it is durable.
pub fn fsync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync of folder {}", dir.display()))
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
