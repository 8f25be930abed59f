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
//! the same refusals to it with one `lstat` and one access check, both by
//! the open drop folder, and no open. In a crowded drop folder most entries are such uploads, seen again
//! every minute.

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::fstatat;
use nix::unistd::{faccessat, AccessFlags};

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
        self.ident().is_at(path)
    }

    /// Which file it is, to recognise it later without keeping it open.
    pub fn ident(&self) -> Ident {
        Ident {
            dev: self.meta.dev(),
            ino: self.meta.ino(),
        }
    }
}

/// A file's identity (device and inode): what a pass remembers of a file
/// it acts on only later, at the end of the pass, without keeping
/// thousands of descriptors open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    dev: u64,
    ino: u64,
}

impl Ident {
    /// Whether `path` (not followed) is this very file.
    pub fn is_at(self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
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

    /// The refusal from a `st_mode` (of an `lstat`), as [`Refusal::of_type`].
    pub fn of_mode(mode: nix::libc::mode_t) -> Option<Refusal> {
        use nix::libc::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
        match mode & S_IFMT {
            S_IFREG => None,
            S_IFLNK => Some(Refusal::Symlink),
            S_IFDIR => Some(Refusal::NotRegular("folder")),
            S_IFIFO => Some(Refusal::NotRegular("fifo")),
            S_IFSOCK => Some(Refusal::NotRegular("socket")),
            S_IFBLK => Some(Refusal::NotRegular("block device")),
            S_IFCHR => Some(Refusal::NotRegular("character device")),
            _ => Some(Refusal::NotRegular("file of unknown type")),
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

/// What the waiting list needs of a file: its size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its size in bytes.
    pub len: u64,
    /// Its last modification.
    pub modified: DateTime<Utc>,
}

impl From<&Metadata> for Seen {
    fn from(meta: &Metadata) -> Seen {
        Seen {
            len: meta.len(),
            modified: meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_default(),
        }
    }
}

/// What [`open_regular`] would say of the entry `name` of the folder `dir`
/// (open; [`nix::fcntl::AT_FDCWD`] with a whole path works too), without
/// opening it: its size and time if it is a regular file with a single
/// link that the collector may read.
///
/// For uploads that are only reported, never read: nothing is read, so
/// nothing can be read through a link, and the refusals (and their
/// reasons) are the ones [`open_regular`] gives. Readability is asked of
/// the kernel (`faccessat` with the effective ids, not following a link),
/// which applies modes, ACLs and capabilities exactly as open(2) would.
/// Both calls go by the open folder, so the kernel looks up one name, not
/// every component of the root's path. `Err(_)` is an I/O error
/// (including "vanished", which callers skip).
pub fn inspect(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Result<Seen, Refusal>> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if let Some(refusal) = Refusal::of_mode(st.st_mode) {
        return Ok(Err(refusal));
    }
    // st_nlink is u64 here but u32 on other targets.
    #[allow(clippy::useless_conversion)]
    let nlink = u64::from(st.st_nlink);
    if nlink > 1 {
        return Ok(Err(Refusal::HardLinked(nlink)));
    }
    let access = faccessat(
        dir,
        name,
        AccessFlags::R_OK,
        AtFlags::AT_EACCESS | AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    match access {
        Ok(()) => {}
        Err(Errno::EACCES) => return Ok(Err(Refusal::Unreadable)),
        Err(e) => return Err(e.into()),
    }
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    Ok(Ok(Seen {
        len: u64::try_from(st.st_size).unwrap_or(0),
        modified: DateTime::from_timestamp(st.st_mtime, nanos).unwrap_or_default(),
    }))
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
