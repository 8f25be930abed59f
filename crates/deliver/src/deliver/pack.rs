//! The archive: exactly the kind's component folders, with sane metadata,
//! and its `.sha256` marker.
//!
//! Whatever the build left behind (modes, owners, setuid bits, timestamps,
//! links out of the tree, fifos) is either normalised or refused here, so
//! that what unpacks on the VM does not depend on the CI runner: folders
//! are 0755, files 0644 (0755 if the owner could execute them), owner
//! root:root (0/0), mtime the build time; a symlink is kept only if it
//! stays inside its component folder.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use artifact_name::{ArtifactName, Compression};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A packed artifact in the output folder.
#[derive(Debug)]
pub struct Packed {
    /// Its name.
    pub name: ArtifactName,
    /// The archive.
    pub path: PathBuf,
    /// Its `.sha256` marker.
    pub marker: PathBuf,
    /// The archive's size in bytes.
    pub size: u64,
    /// The archive's SHA-256, lower-case hex.
    pub sha256: String,
    /// How many entries it holds.
    pub entries: usize,
}

/// Packs `components` (folders of `from`) into `out/<name>` and writes the
/// marker next to it. Both appear under their final names only when
/// complete, so `out` may itself be a drop folder.
pub fn pack(
    from: &Path,
    components: &[String],
    name: &ArtifactName,
    time: DateTime<Utc>,
    out: &Path,
) -> anyhow::Result<Packed> {
    for c in components {
        let dir = from.join(c);
        let meta = fs::symlink_metadata(&dir).with_context(|| {
            format!(
                "the build folder {} has no component folder {c}/: expected {} \
                 (the kind's components)",
                from.display(),
                dir.display()
            )
        })?;
        if !meta.is_dir() {
            bail!(
                "{} is not a folder: expected the component folder {c}/ (a real folder, not a link)",
                dir.display()
            );
        }
    }
    fs::create_dir_all(out)
        .with_context(|| format!("creating the output folder {}", out.display()))?;
    // An archive written inside a folder it packs would pack itself.
    let out_real = fs::canonicalize(out).with_context(|| format!("resolving {}", out.display()))?;
    for c in components {
        let dir = from.join(c);
        let real =
            fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;
        if out_real.starts_with(&real) {
            bail!(
                "the output folder {} is inside the component folder {}: expected --out \
                 outside the folders that are packed",
                out.display(),
                dir.display()
            );
        }
    }
    let path = out.join(name.file_name());
    // Short temp names: `.<name>.sha256.part` of a 248-byte name is too long.
    let part = out.join(super::upload::temp_name(name.file_name()));
    let result = write_archive(from, components, name, time, &part);
    let (size, sha256, entries) = match result {
        Ok(done) => done,
        Err(err) => {
            let _ = fs::remove_file(&part);
            return Err(err);
        }
    };
    fs::rename(&part, &path)
        .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
    let marker = out.join(name.marker_name());
    let marker_part = out.join(super::upload::temp_name(&name.marker_name()));
    fs::write(&marker_part, format!("{sha256}  {}\n", name.file_name()))
        .with_context(|| format!("writing {}", marker_part.display()))?;
    fs::rename(&marker_part, &marker)
        .with_context(|| format!("renaming {} to {}", marker_part.display(), marker.display()))?;
    Ok(Packed {
        name: name.clone(),
        path,
        marker,
        size,
        sha256,
        entries,
    })
}

/// Writes the compressed archive to `dest`: its size, digest, entry count.
fn write_archive(
    from: &Path,
    components: &[String],
    name: &ArtifactName,
    time: DateTime<Utc>,
    dest: &Path,
) -> anyhow::Result<(u64, String, usize)> {
    let file = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let hashing = Hashing::new(BufWriter::new(file));
    let mtime = u64::try_from(time.timestamp()).unwrap_or(0);
    let (hashing, entries) = match name.ext().compression() {
        Compression::Zstd => {
            let enc = zstd::stream::write::Encoder::new(hashing, 3).context("starting zstd")?;
            let (enc, n) = append_all(tar::Builder::new(enc), from, components, mtime)?;
            (enc.finish().context("finishing zstd")?, n)
        }
        Compression::Gzip => {
            let enc = flate2::write::GzEncoder::new(hashing, flate2::Compression::default());
            let (enc, n) = append_all(tar::Builder::new(enc), from, components, mtime)?;
            (enc.finish().context("finishing gzip")?, n)
        }
        Compression::None => append_all(tar::Builder::new(hashing), from, components, mtime)?,
    };
    let (buf, size, digest) = hashing.finish();
    let file = buf
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", dest.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok((size, digest, entries))
}

/// Appends every component and finishes the tar stream.
fn append_all<W: Write>(
    mut tar: tar::Builder<W>,
    from: &Path,
    components: &[String],
    mtime: u64,
) -> anyhow::Result<(W, usize)> {
    let mut entries = 0;
    for c in components {
        entries += append_component(&mut tar, from, c, mtime)?;
    }
    let inner = tar.into_inner().context("finishing the tar stream")?;
    Ok((inner, entries))
}

/// Appends one component folder, sorted by name so that the same tree packs
/// to the same bytes.
fn append_component<W: Write>(
    tar: &mut tar::Builder<W>,
    from: &Path,
    component: &str,
    mtime: u64,
) -> anyhow::Result<usize> {
    let root = from.join(component);
    let mut count = 0;
    for entry in walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("reading {}", root.display()))?;
        let path = entry.path();
        let inside = path.strip_prefix(&root).unwrap_or(path);
        let rel = Path::new(component).join(inside);
        let meta = entry
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        let ft = meta.file_type();
        let mut header = header(mtime);
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, io::empty())
                .with_context(|| format!("packing {}", path.display()))?;
        } else if ft.is_file() {
            let exec = meta.permissions().mode() & 0o100 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if exec { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let reader = Exact {
                inner: file.take(meta.len()),
                left: meta.len(),
                path,
            };
            tar.append_data(&mut header, &rel, reader)
                .with_context(|| format!("packing {}", path.display()))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(path)
                .with_context(|| format!("reading the link {}", path.display()))?;
            check_link(inside, &target).map_err(|why| {
                anyhow::anyhow!(
                    "the symlink {} -> {} {why}: expected a relative link that stays inside \
                     {component}/ (replace it with the file, or make it relative)",
                    path.display(),
                    target.display()
                )
            })?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, &rel, &target)
                .with_context(|| format!("packing {}", path.display()))?;
        } else {
            let what = if ft.is_fifo() {
                "a fifo"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device file"
            } else {
                "of an unknown type"
            };
            bail!(
                "{} is {what}: expected only folders, regular files and symlinks in a build",
                path.display()
            );
        }
        count += 1;
    }
    Ok(count)
}

/// A GNU header owned by root:root (0/0) with the build time as mtime.
fn header(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    // "root" always fits the header's 32 bytes.
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h.set_mtime(mtime);
    h
}

/// Whether a link at `link` (relative to its component folder) pointing at
/// `target` stays inside the folder; `Err` says how it leaves.
pub fn check_link(link: &Path, target: &Path) -> Result<(), &'static str> {
    if target.as_os_str().is_empty() {
        return Err("has an empty target");
    }
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(parent) = link.parent() {
        for c in parent.components() {
            if let Component::Normal(n) = c {
                depth.push(n);
            }
        }
    }
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return Err("points outside its component folder");
                }
            }
            Component::Normal(n) => depth.push(n),
        }
    }
    Ok(())
}

/// A reader that yields exactly `left` bytes or fails: a file that shrinks
/// while packing would otherwise corrupt the tar stream.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} shrank by {} bytes while being packed: expected a finished build",
                    self.path.display(),
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, u64, String) {
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.inner, self.size, hex)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_must_stay_inside() {
        let ok = [
            ("a", "b"),
            ("x/a", "../b"),
            ("x/y/a", "../../b"),
            ("a", "./b/../c"),
        ];
        for (link, target) in ok {
            assert_eq!(
                check_link(Path::new(link), Path::new(target)),
                Ok(()),
                "{link} -> {target}"
            );
        }
        let bad = [
            ("a", "../b"),
            ("x/a", "../../b"),
            ("a", "/etc/passwd"),
            ("a", "b/../../c"),
            ("a", ""),
        ];
        for (link, target) in bad {
            assert!(
                check_link(Path::new(link), Path::new(target)).is_err(),
                "{link} -> {target}"
            );
        }
    }
}
