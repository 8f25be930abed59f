//! Moving one file into another folder so that, at every instant, it exists
//! whole in the source folder or in the destination (or both).
//!
//! On one filesystem that is rename(2), with `RENAME_NOREPLACE` so that
//! nothing is ever overwritten. Across filesystems (`EXDEV`) it is: copy the
//! open file into a dot-named temporary file inside the destination folder
//! (hashing as it goes), fsync it, check the digest and rename it into
//! place. The source stays: the caller removes it ([`remove_source`]) only
//! once the destination folder is fsynced. A failed copy removes its
//! temporary file and leaves the source untouched.
//!
//! No folder is fsynced here: a pass makes its renames, then fsyncs each
//! folder it changed once (see [`crate::batch`]). A rename is atomic
//! without the fsync (the file is under one name or the other, never
//! neither); the fsync only makes it survive a power cut, and nothing that
//! relies on that (removing the copy's source, a drop marker) happens
//! before it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use sha2::{Digest, Sha256};

use crate::open::{Ident, Opened};

/// The prefix of the copies in progress; a pass removes leftovers of a
/// killed run before it starts (it holds the lock, so none is in progress).
pub const TEMP_PREFIX: &str = ".collector-tmp-";

/// The size of one copy block.
const BLOCK: usize = 64 << 10;

/// Why a move did not happen. In every case the source is where it was.
#[derive(Debug)]
pub enum MoveError {
    /// The copy's digest is not the one expected; the copy was removed.
    Digest {
        /// The digest of what was read.
        found: String,
    },
    /// An I/O error, with the paths involved.
    Io(anyhow::Error),
}

impl From<anyhow::Error> for MoveError {
    fn from(e: anyhow::Error) -> MoveError {
        MoveError::Io(e)
    }
}

/// One file to move.
#[derive(Debug)]
pub struct Move<'a> {
    /// Where it is.
    pub src: &'a Path,
    /// It, open (what is copied is what was checked).
    pub opened: &'a Opened,
    /// Where it goes; must not exist.
    pub dest: &'a Path,
    /// The digest a copy must have (a rename keeps the very file, which the
    /// caller has verified already).
    pub expect: Option<&'a str>,
    /// Whether to try rename(2) first. Callers that verify the digest only
    /// while copying pass false.
    pub try_rename: bool,
}

/// How a file was moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// rename(2) on one filesystem.
    Renamed,
    /// Copied across filesystems (and the copy fsynced); the source is
    /// still there, for the caller to remove once the destination folder
    /// is fsynced.
    Copied,
}

/// Moves the file; see the module doc.
pub fn move_file(m: &Move<'_>) -> Result<How, MoveError> {
    if m.try_rename {
        match rename_noreplace(m.src, m.dest) {
            Ok(()) => return Ok(How::Renamed),
            Err(Errno::EXDEV) => {}
            Err(e) => {
                return Err(MoveError::Io(anyhow::Error::from(e).context(format!(
                    "renaming {} to {}",
                    m.src.display(),
                    m.dest.display()
                ))))
            }
        }
    }
    copy(m)?;
    Ok(How::Copied)
}

/// rename(2) that never replaces an existing file.
pub fn rename_noreplace(src: &Path, dest: &Path) -> Result<(), Errno> {
    match renameat2(AT_FDCWD, src, AT_FDCWD, dest, RenameFlags::RENAME_NOREPLACE) {
        // A filesystem without RENAME_NOREPLACE: we hold the lock and are the
        // only writer of the destination folders, so check, then rename.
        Err(Errno::EINVAL) => {
            if std::fs::symlink_metadata(dest).is_ok() {
                return Err(Errno::EEXIST);
            }
            std::fs::rename(src, dest)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))
        }
        other => other,
    }
}

/// A new temporary name in `dir` for a file being written there (a copy,
/// or a download from the store): dot-named, so never staged, and removed
/// by the next pass if this run dies before renaming it into place.
pub fn temp_in(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn copy(m: &Move<'_>) -> Result<(), MoveError> {
    let tmp = temp_in(parent(m.dest));
    let result = copy_to_temp(m, &tmp).and_then(|found| match m.expect {
        Some(expect) if found != expect => Err(MoveError::Digest { found }),
        _ => rename_noreplace(&tmp, m.dest).map_err(|e| {
            MoveError::Io(anyhow::Error::from(e).context(format!(
                "renaming {} to {}",
                tmp.display(),
                m.dest.display()
            )))
        }),
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Removes the source of a copy, once the copy is durable (its folder
/// fsynced), and only if its name still holds the file that was copied (a
/// new upload under the same name stays). Returns whether it removed it.
pub fn remove_source(src: &Path, copied: Ident) -> anyhow::Result<bool> {
    if !copied.is_at(src) {
        return Ok(false);
    }
    match std::fs::remove_file(src) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", src.display())),
    }
}

/// Copies the open source into `tmp` (created new), fsyncs it and returns
/// the digest of what was copied.
fn copy_to_temp(m: &Move<'_>, tmp: &Path) -> Result<String, MoveError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(tmp)
        .map_err(|e| io_error(e, tmp, m))?;
    let mut src = &m.opened.file;
    src.seek(SeekFrom::Start(0))
        .map_err(|e| io_error(e, m.src, m))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    let mut first = true;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e, m.src, m)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io_error(e, tmp, m))?;
        if first {
            first = false;
            deploy_root::fault::point("collector:mid-copy");
        }
    }
    out.sync_all().map_err(|e| io_error(e, tmp, m))?;
    Ok(hex(&hasher.finalize()))
}

/// An I/O error of the copy, saying which path and, when a disk is full,
/// which one.
fn io_error(e: io::Error, path: &Path, m: &Move<'_>) -> MoveError {
    let what = format!(
        "copying {} into {} ({} left untouched)",
        m.src.display(),
        parent(m.dest).display(),
        m.src.display()
    );
    let detail = match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => format!(
            "{}: the filesystem holding {} is full",
            path.display(),
            parent(m.dest).display()
        ),
        Some(nix::libc::EDQUOT) => format!(
            "{}: the disk quota on {} is exhausted",
            path.display(),
            parent(m.dest).display()
        ),
        _ => path.display().to_string(),
    };
    MoveError::Io(anyhow::Error::from(e).context(detail).context(what))
}

/// The lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lower-case hex SHA-256 of an open file, from its start.
pub fn digest_of(file: &File) -> io::Result<String> {
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    deploy_root::digest::sha256_file(file)
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
