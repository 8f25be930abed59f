//! Opening files in the drop folder without trusting them.
//!
//! The drop folder is writable by the upload user, who may plant symbolic
//! links, fifos, devices or hard links to files they cannot read themselves.
//! So a file is opened with `O_NOFOLLOW | O_NONBLOCK` (a link fails to open;
//! a fifo does not block), the checks run on the open descriptor (`fstat`),
//! and everything afterwards (digest, copy) reads that same descriptor:
//! swapping the name after the check changes nothing we read.
//!
//! An upload whose marker has not arrived is never read, only reported
//! (and, once stale, quarantined, which opens it then): [`inspect`] applies
//! the same refusals to it with one `lstat` and one access check, and no
//! open. In a crowded drop folder most entries are such uploads, seen again
//! every minute.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// The largest marker we read; a sha256sum line is under 400 bytes.
pub const MARKER_CAP: u64 = 4096;

/// A regular file with one link, open for reading.
#[derive(Debug)]
pub struct Opened {
    /// The open file.
    pub file: File,
    /// Its `fstat`.
    pub meta: Metadata,
}

impl Opened {
    /// Whether `path` (not followed) is still this very file.
    pub fn is_at(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.dev() == self.meta.dev() && m.ino() == self.meta.ino())
    }
}

/// Why a drop entry is refused (left in place, reported, never read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A symbolic link.
    Symlink,
    /// A folder, fifo, socket or device.
    NotRegular(&'static str),
    /// A regular file with more than one hard link.
    HardLinked(u64),
    /// A file the collector may not read (its uploader's mode or owner).
    Unreadable,
}

impl Refusal {
    /// The refusal from a file type seen without following links.
    pub fn of_type(ft: std::fs::FileType) -> Option<Refusal> {
        if ft.is_symlink() {
            Some(Refusal::Symlink)
        } else if ft.is_file() {
            None
        } else {
            Some(Refusal::NotRegular(type_name(ft)))
        }
    }

    /// The reason, in words, for the state file and the logs.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Symlink => {
                "refused: a symbolic link (links in the drop folder are never followed)".into()
            }
            Refusal::NotRegular(what) => format!("refused: a {what}, not a regular file"),
            Refusal::Unreadable => "refused: the collector may not read it (permission \
                 denied); upload it readable by the collector's user or group"
                .into(),
            Refusal::HardLinked(n) => format!(
                "refused: a regular file with {n} hard links (a hard link may point at a \
                 file the uploader cannot read; upload a copy)"
            ),
        }
    }
}

fn type_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "folder"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "file of unknown type"
    }
}

/// Opens `path` if it is a regular file with a single link.
///
/// `Ok(Err(_))` is a refusal (a link, not a regular file, hard-linked,
/// not readable);
/// `Err(_)` an I/O error (including "vanished", which callers skip).
pub fn open_regular(path: &Path) -> io::Result<Result<Opened, Refusal>> {
    // Look before opening: a hard link to a file the collector may not read
    // (planted by the upload user) must be refused, not fail the pass with
    // EACCES every minute. The same checks run again on the descriptor
    // below, since the name may change in between.
    let seen = std::fs::symlink_metadata(path)?;
    if let Some(refusal) = Refusal::of_type(seen.file_type()) {
        return Ok(Err(refusal));
    }
    if seen.nlink() > 1 {
        return Ok(Err(Refusal::HardLinked(seen.nlink())));
    }
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Ok(Err(Refusal::Symlink)),
        // The uploader's file, not the machine's fault: reported as
        // waiting (warned once), not an error that fails every pass.
        Err(e) if e.raw_os_error() == Some(nix::libc::EACCES) => {
            return Ok(Err(Refusal::Unreadable))
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if let Some(refusal) = Refusal::of_type(meta.file_type()) {
        return Ok(Err(refusal));
    }
    if meta.nlink() > 1 {
        return Ok(Err(Refusal::HardLinked(meta.nlink())));
    }
    Ok(Ok(Opened { file, meta }))
}

/// What [`open_regular`] would say of `path`, without opening it: its
/// `lstat` if it is a regular file with a single link that the collector
/// may read.
///
/// For uploads that are only reported, never read: nothing is read, so
/// nothing can be read through a link, and the refusals (and their
/// reasons) are the ones [`open_regular`] gives. Readability is asked of
/// the kernel (`faccessat` with the effective ids, not following a link),
/// which applies modes, ACLs and capabilities exactly as open(2) would.
/// `Err(_)` is an I/O error (including "vanished", which callers skip).
pub fn inspect(path: &Path) -> io::Result<Result<Metadata, Refusal>> {
    let seen = std::fs::symlink_metadata(path)?;
    if let Some(refusal) = Refusal::of_type(seen.file_type()) {
        return Ok(Err(refusal));
    }
    if seen.nlink() > 1 {
        return Ok(Err(Refusal::HardLinked(seen.nlink())));
    }
    let access = nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        nix::unistd::AccessFlags::R_OK,
        nix::fcntl::AtFlags::AT_EACCESS | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    match access {
        Ok(()) => Ok(Ok(seen)),
        Err(nix::errno::Errno::EACCES) => Ok(Err(Refusal::Unreadable)),
        Err(e) => Err(e.into()),
    }
}

/// Reads a marker's content from its open file, at most [`MARKER_CAP`] bytes.
pub fn read_marker(opened: &Opened) -> Result<String, String> {
    if opened.meta.len() > MARKER_CAP {
        return Err(format!(
            "the marker is {} bytes; expected one sha256sum line (at most {MARKER_CAP} bytes)",
            opened.meta.len()
        ));
    }
    let mut bytes = Vec::new();
    (&opened.file)
        .take(MARKER_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the marker cannot be read: {e}"))?;
    if bytes.len() as u64 > MARKER_CAP {
        return Err(format!(
            "the marker grew past {MARKER_CAP} bytes while being read"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "the marker is not UTF-8 text".to_string())
}
