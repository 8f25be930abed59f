//! The safe archive reader: our own loop over the `tar` crate's entries.
//!
//! An artifact is written by another party, so every entry is hostile until
//! checked. The loop never lets `tar` write anything itself (its `unpack`
//! follows rules we do not control); instead each entry is checked and then
//! created with `O_CREAT|O_EXCL|O_NOFOLLOW`, inside a fresh folder that only
//! this loop has written to:
//!
//! - paths: taken byte for byte (a name that is not UTF-8 lands as it is;
//!   messages show such bytes escaped, `\xe9`); no absolute paths, no `..`,
//!   a leading `./` is tolerated; the first path component must be one of
//!   the expected top-level folders; the same path twice is refused, except
//!   a folder listed twice with the same mode (`tar -cf a.tar backend
//!   backend/lib`); nothing is ever written through a symlink the archive
//!   created.
//! - symlinks: relative, and resolving (lexically) inside their component
//!   folder; hardlinks only to a regular file written earlier in the same
//!   component.
//! - no device nodes, fifos or other special entries (named in words);
//!   setuid, setgid and sticky bits are dropped; a pax global header
//!   (metadata, as `git archive` writes) is skipped.
//! - no sparse files, in any of their four formats (GNU type `S`, pax 0.0,
//!   0.1 and 1.0): refused with the way to build without them, rather than
//!   restored by a parser of our own or written wrong (see docs/archives.md).
//! - an old-style file entry whose name ends in `/` is a folder (as GNU
//!   tar and bsdtar read it) when it carries no data, and refused when it
//!   does.
//! - gzip: every member of a multi-member stream (`cat a.gz b.gz`, pigz);
//!   zstd: every frame.
//! - the total size and the entry count are capped before anything is
//!   written, so an archive bomb stops early; only regular files may carry
//!   data (tar would skip data behind a folder by decompressing it all,
//!   unseen by the cap).
//! - errors say where: a rule names the entry, a broken archive the entry
//!   it broke in or after. A write that fails because of what the archive
//!   asks (a name too long for the filesystem, a file where a folder is)
//!   is the archive's fault, an [`UnpackError::Entry`]; any other failed
//!   write (a full disk) is an [`UnpackError::Write`], the machine's fault.
//!
//! [`unpack`] takes any reader, so a fuzz target can drive it directly.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use artifact_name::{Compression, Ext};

/// The limits an archive must stay within.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The most bytes the regular files may add up to.
    pub max_unpacked_size: u64,
    /// The most entries (of any type).
    pub max_entries: u64,
    /// The top-level folders the archive may hold (the components of its kind).
    pub top_level: BTreeSet<String>,
}

/// The most data a pax global header may carry (git archive's is ~50 bytes).
const GLOBAL_HEADER_CAP: u64 = 64 << 10;

/// What a refused sparse file is told to do instead.
const SPARSE_FIX: &str = "sparse files are refused; build the archive without sparse support: \
     GNU tar without -S/--sparse, or bsdtar with --no-read-sparse";

/// What an unpack wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries read.
    pub entries: u64,
    /// Bytes of regular files written.
    pub bytes: u64,
    /// The top-level folders found.
    pub top_level: BTreeSet<String>,
}

/// Why an archive was refused; the message names the entry and the rule.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The archive could not be read (truncated, not tar, bad compression).
    #[error("the archive cannot be read: {0}")]
    Read(#[source] io::Error),
    /// An entry breaks a rule, or asks for what the filesystem cannot make.
    #[error("entry \"{path}\": {reason}")]
    Entry {
        /// The entry's path as the archive gives it, escaped for display
        /// ([`escape_bytes`]).
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The archive is larger than the limits allow.
    #[error("{0}")]
    Limit(String),
    /// Writing into the destination failed: the machine's fault (a full
    /// disk, a read-only filesystem), not the archive's.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// `bytes` as text for a message, without the quotes: valid UTF-8 as Rust's
/// `Debug` shows a string (`"`, `\`, control and unprintable characters
/// such as bidi overrides escaped), every byte that is not UTF-8 as `\xNN`.
/// Two different byte strings never show the same.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let valid = format!("{:?}", chunk.valid());
        out.push_str(&valid[1..valid.len() - 1]);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// `bytes` escaped and in double quotes.
fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape_bytes(bytes))
}

fn entry_err(shown: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        path: shown.to_string(),
        reason: reason.into(),
    }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// An entry type in words, for messages (never the `tar` crate's Debug).
fn describe(kind: tar::EntryType) -> String {
    let text = match kind.as_byte() {
        b'0' | b'\0' => "a regular file",
        b'1' => "a hardlink",
        b'2' => "a symlink",
        b'3' => "a character device",
        b'4' => "a block device",
        b'5' => "a folder",
        b'6' => "a fifo (named pipe)",
        b'7' => "a contiguous file",
        b'x' => "a pax extended header",
        b'g' => "a pax global header",
        b'L' => "a GNU long name",
        b'K' => "a GNU long link name",
        b'S' => "a GNU sparse file",
        b'D' => "a GNU dumpdir (a folder listing of an incremental backup, 'D')",
        b'M' => "a GNU multi-volume continuation ('M'; the archive is one volume of several)",
        b'V' => "a GNU volume label ('V')",
        b'N' => "an old GNU long names entry ('N')",
        b => {
            let shown = if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                escape_bytes(&[b])
            };
            return format!("an unknown entry type '{shown}' (0x{b:02x})");
        }
    };
    text.to_string()
}

/// Unpacks the archive that `reader` yields (compressed as `ext` says) into
/// `dest`, an existing empty folder. On error, `dest` holds a partial tree
/// that the caller removes.
///
/// `on_entry` is called after each entry with the count so far (the
/// switcher uses it for its mid-unpack fault point).
pub fn unpack(
    reader: impl Read,
    ext: Ext,
    dest: &Path,
    limits: &Limits,
    mut on_entry: impl FnMut(u64),
) -> Result<Summary, UnpackError> {
    let reader: Box<dyn Read> = match ext.compression() {
        Compression::None => Box::new(reader),
        // Every member: `cat a.gz b.gz` and pigz write several, and a
        // single-member decoder would stop after the first, silently.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        // zstd's decoder reads every frame (`cat a.zst b.zst`) by default.
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(reader).map_err(UnpackError::Read)?)
        }
    };
    let tap = Tap::new(reader);
    let last_block = tap.last.clone();
    let mut archive = tar::Archive::new(tap);
    let mut state = State::default();
    let mut summary = Summary::default();
    let entries = archive.entries().map_err(UnpackError::Read)?;
    // The last entry read whole (escaped), so that an archive that breaks
    // says where.
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| read_error(e, last.as_deref(), Some(&last_block.borrow())))?;
        summary.entries += 1;
        if summary.entries > limits.max_entries {
            return Err(UnpackError::Limit(format!(
                "the archive holds more than {} entries (switcher.max_entries)",
                limits.max_entries
            )));
        }
        let raw: Vec<u8> = entry.path_bytes().into_owned();
        let shown = escape_bytes(&raw);
        let mut kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            // A pax global header (`git archive` writes one holding the
            // commit id) is metadata for the reader, not a file: skipped.
            // tar reads its data to skip it, so it is capped (a bomb could
            // hide there as behind a folder).
            if entry.size() > GLOBAL_HEADER_CAP {
                return Err(entry_err(
                    &shown,
                    format!(
                        "a pax global header of {} bytes; expected at most {GLOBAL_HEADER_CAP}",
                        entry.size()
                    ),
                ));
            }
            continue;
        }
        // Before anything reads the size: a sparse entry's is the size it
        // expands to, not data the archive holds.
        check_sparse(&mut entry, kind, &raw, &shown)?;
        // The type before the path: a volume label or a device is refused
        // as what it is, wherever it claims to be.
        if !matches!(
            kind,
            tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Directory
                | tar::EntryType::Symlink
                | tar::EntryType::Link
        ) {
            return Err(entry_err(
                &shown,
                format!(
                    "is {}; only files, folders, symlinks and hardlinks are allowed",
                    describe(kind)
                ),
            ));
        }
        let trailing_slash = raw.ends_with(b"/");
        let rel = match clean_path(&raw) {
            Ok(Some(rel)) => rel,
            // "./" itself: the archive's root, nothing to create.
            Ok(None) => continue,
            Err(reason) => return Err(entry_err(&shown, reason)),
        };
        let is_file = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        if is_file && trailing_slash {
            // An old-style (v7) archive has no folder type: a file entry
            // whose name ends in '/' is a folder (GNU tar and bsdtar read it
            // so). Never a file named like a folder; and one that carries
            // data is no folder.
            if entry.size() > 0 {
                return Err(entry_err(
                    &shown,
                    format!(
                        "a file entry whose name ends in '/' (an old-style folder) that carries {} bytes of data; a folder carries none",
                        entry.size()
                    ),
                ));
            }
            kind = tar::EntryType::Directory;
        }
        let is_file = is_file && !kind.is_dir();
        let top = first_component(&rel);
        let Some(top_name) = limits
            .top_level
            .iter()
            .find(|t| t.as_bytes() == top.as_bytes())
        else {
            let expected: Vec<&str> = limits.top_level.iter().map(String::as_str).collect();
            return Err(entry_err(
                &shown,
                format!(
                    "unexpected top-level entry {}; expected only the folders {}",
                    quoted(top.as_bytes()),
                    expected.join(", ")
                ),
            ));
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        if let Some(first) = state.seen.get(&rel) {
            // A folder named on tar's command line and also inside another
            // one is listed twice (`tar -cf a.tar backend backend/lib`), and
            // GNU tar lists what it holds again as hardlinks to themselves:
            // the same thing again, nothing to do.
            let same_folder = first.kind == tar::EntryType::Directory
                && kind == tar::EntryType::Directory
                && first.mode == mode;
            let link_to_itself = kind == tar::EntryType::Link
                && first.kind != tar::EntryType::Directory
                && entry
                    .link_name_bytes()
                    .is_some_and(|l| clean_path(&l).ok().flatten().as_ref() == Some(&rel));
            if same_folder || link_to_itself {
                last = Some(shown);
                on_entry(summary.entries);
                continue;
            }
            return Err(entry_err(&shown, twice(first, kind, mode)));
        }
        state.seen.insert(rel.clone(), Seen { kind, mode });
        if let Some(link) = rel
            .ancestors()
            .skip(1)
            .find(|a| state.symlinks.contains(*a))
        {
            return Err(entry_err(
                &shown,
                format!(
                    "lies under {}, which the archive made a symlink (writing through it is refused)",
                    quoted(link.as_os_str().as_bytes())
                ),
            ));
        }
        let target = dest.join(&rel);
        let is_top = rel.components().count() == 1;
        if is_top && !kind.is_dir() {
            return Err(entry_err(
                &shown,
                format!(
                    "{} at the top level; a top-level entry must be a folder (one per component)",
                    describe(kind)
                ),
            ));
        }
        summary.top_level.insert(top_name.clone());
        if !is_file && entry.size() > 0 {
            // Only files hold data. tar skips the data of anything else by
            // reading (decompressing) it all, and the size cap, which counts
            // what is written, would never see it: a bomb behind a folder.
            return Err(entry_err(
                &shown,
                format!(
                    "{} that carries {} bytes of data; only regular files may",
                    describe(kind),
                    entry.size()
                ),
            ));
        }
        let mode = mode & 0o777;
        match kind {
            tar::EntryType::Directory => {
                state.make_parents(dest, &rel, &shown)?;
                match fs::create_dir(&target) {
                    Ok(()) => {}
                    // A folder made implicitly for an earlier entry.
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && state.dirs.contains(&rel) => {}
                    Err(e) => return Err(create_error(e, &shown, dest, &target)),
                }
                state.dirs.insert(rel.clone());
                state.dir_modes.push((target, mode | 0o700));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // entry.size() honours a pax size record; the header's
                // octal field alone would be wrong for very large files.
                let size = entry.size();
                summary.bytes = summary.bytes.saturating_add(size);
                if summary.bytes > limits.max_unpacked_size {
                    return Err(UnpackError::Limit(format!(
                        "the archive unpacks to more than {} bytes (switcher.max_unpacked_size)",
                        limits.max_unpacked_size
                    )));
                }
                state.make_parents(dest, &rel, &shown)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(|e| create_error(e, &shown, dest, &target))?;
                // Never trust the header's size alone: copy at most that much.
                let copied = copy(
                    &mut (&mut entry).take(size),
                    &mut file,
                    &shown,
                    dest,
                    &target,
                )?;
                if copied != size {
                    return Err(UnpackError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry \"{shown}\" is cut short ({copied} of {size} bytes)"),
                    )));
                }
                file.flush().map_err(|e| write_error(e, dest, &target))?;
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(write_err(&target))?;
                state.files.insert(rel.clone());
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&shown, "a symlink without a target"))?
                    .into_owned();
                check_symlink(&shown, &rel, &link)?;
                state.make_parents(dest, &rel, &shown)?;
                symlink(OsStr::from_bytes(&link), &target)
                    .map_err(|e| create_error(e, &shown, dest, &target))?;
                state.symlinks.insert(rel.clone());
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&shown, "a hardlink without a target"))?
                    .into_owned();
                let link_shown = quoted(&link);
                // The rule the target breaks, said of this entry (the
                // target is not an entry of the archive).
                let link_rel = match clean_path(&link) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Err(entry_err(&shown, "a hardlink to the archive's root")),
                    Err(reason) => {
                        return Err(entry_err(
                            &shown,
                            format!("a hardlink to {link_shown}, {reason}"),
                        ))
                    }
                };
                if first_component(&link_rel) != first_component(&rel) {
                    return Err(entry_err(
                        &shown,
                        format!("a hardlink to {link_shown}, outside its component folder"),
                    ));
                }
                if !state.files.contains(&link_rel) {
                    return Err(entry_err(
                        &shown,
                        format!("a hardlink to {link_shown}, which is not a regular file earlier in the archive"),
                    ));
                }
                state.make_parents(dest, &rel, &shown)?;
                // link(2) does not follow a symlink at the source, and the
                // source is a regular file this loop wrote.
                fs::hard_link(dest.join(&link_rel), &target)
                    .map_err(|e| create_error(e, &shown, dest, &target))?;
                state.files.insert(rel.clone());
            }
            // Refused above, before the path was looked at.
            other => {
                return Err(entry_err(
                    &shown,
                    format!("is {}; not allowed", describe(other)),
                ))
            }
        }
        last = Some(shown);
        on_entry(summary.entries);
    }
    // Modes last, so that a read-only folder did not stop its own entries.
    for (dir, mode) in state.dir_modes.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode)).map_err(write_err(dir))?;
    }
    Ok(summary)
}

/// Refuses a sparse file, in any of its formats: the GNU type `S`, the pax
/// formats 0.0, 0.1 and 1.0 (`GNU.sparse.*` keys in the entry's pax
/// header), and, should its pax header be lost, the `GNUSparseFile.` folder
/// that GNU tar and bsdtar put in a pax sparse file's stored name. A pax
/// header that cannot be parsed is refused too: its keys cannot be checked.
fn check_sparse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    kind: tar::EntryType,
    raw: &[u8],
    shown: &str,
) -> Result<(), UnpackError> {
    if kind == tar::EntryType::GNUSparse {
        return Err(entry_err(
            shown,
            format!("a sparse file (GNU format, entry type 'S'); {SPARSE_FIX}"),
        ));
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut real_name: Option<Vec<u8>> = None;
    let mut version = (None, None);
    let pax = entry.pax_extensions().map_err(|e| {
        entry_err(
            shown,
            format!("its pax extended header cannot be read: {e}"),
        )
    })?;
    if let Some(pax) = pax {
        for ext in pax {
            let ext = ext.map_err(|e| {
                entry_err(
                    shown,
                    format!("its pax extended header cannot be parsed: {e}"),
                )
            })?;
            let Some(key) = ext.key_bytes().strip_prefix(b"GNU.sparse.") else {
                continue;
            };
            match key {
                b"name" => real_name = Some(ext.value_bytes().to_vec()),
                b"major" => version.0 = Some(escape_bytes(ext.value_bytes())),
                b"minor" => version.1 = Some(escape_bytes(ext.value_bytes())),
                _ => {}
            }
            keys.push(key.to_vec());
        }
    }
    let backstop = raw
        .split(|b| *b == b'/')
        .any(|c| c.starts_with(b"GNUSparseFile."));
    if keys.is_empty() && !backstop {
        return Ok(());
    }
    let format = match version {
        (Some(major), Some(minor)) => format!("pax sparse format {major}.{minor}"),
        _ if keys.iter().any(|k| k == b"map") => "pax sparse format 0.1".to_string(),
        _ if keys.iter().any(|k| k == b"offset" || k == b"numbytes") => {
            "pax sparse format 0.0".to_string()
        }
        _ if !keys.is_empty() => "pax sparse format, GNU.sparse.* keys".to_string(),
        _ => "a GNUSparseFile. folder in its name, as pax sparse files are stored".to_string(),
    };
    let of = match real_name {
        Some(name) if name != raw => format!(" of {}", quoted(&name)),
        _ => String::new(),
    };
    Err(entry_err(
        shown,
        format!("a sparse file{of} ({format}); {SPARSE_FIX}"),
    ))
}

/// How an entry differs from the earlier one with the same path.
fn twice(first: &Seen, kind: tar::EntryType, mode: u32) -> String {
    if first.kind != kind {
        format!(
            "appears twice in the archive: first as {} (mode {:04o}), then as {} (mode {mode:04o})",
            describe(first.kind),
            first.mode,
            describe(kind)
        )
    } else if kind == tar::EntryType::Directory {
        format!(
            "appears twice in the archive as a folder, with different modes ({:04o}, then {mode:04o}); a folder may be listed twice only with the same mode",
            first.mode
        )
    } else {
        format!(
            "appears twice in the archive ({} both times); only a folder may be listed twice",
            describe(kind)
        )
    }
}

/// A read error of the archive, saying after which entry it broke, with
/// anything unprintable escaped (the tar crate quotes the raw bytes of a
/// broken header, and the reason ends up on the status page and terminals).
///
/// `block` is the last 512 bytes read: when they are a header (its checksum
/// holds), the `tar` crate refused that header, and the message names it
/// and its type (GNU tar's volume label, for one, has no size the crate
/// accepts).
fn read_error(e: io::Error, last: Option<&str>, block: Option<&[u8; 512]>) -> UnpackError {
    let text: String = e
        .to_string()
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    let mut text = match last {
        Some(last) => format!("after entry \"{last}\": {text}"),
        None => format!("at its first entry: {text}"),
    };
    if let Some((name, kind)) = block.and_then(header_of) {
        let _ = write!(
            text,
            " (in the header of \"{}\", {})",
            escape_bytes(name),
            describe(kind)
        );
    }
    // The tar crate expands GNU sparse entries itself, and refuses a broken
    // sparse map while reading the header: still a sparse file.
    if text.contains("sparse") {
        let _ = write!(text, " (a broken sparse file; {SPARSE_FIX})");
    }
    UnpackError::Read(io::Error::new(e.kind(), text))
}

/// The name and type of a tar header block, if `block` is one (its
/// checksum holds).
fn header_of(block: &[u8; 512]) -> Option<(&[u8], tar::EntryType)> {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .collect();
    let stored = u32::from_str_radix(std::str::from_utf8(&digits).ok()?, 8).ok()?;
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    if sum != stored || block.iter().all(|b| *b == 0) {
        return None;
    }
    let name = &block[..100];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Some((&name[..end], tar::EntryType::new(block[156])))
}

/// A reader that keeps the last 512 bytes read (a header block, when the
/// `tar` crate refuses one), for messages.
struct Tap<R> {
    inner: R,
    last: std::rc::Rc<std::cell::RefCell<[u8; 512]>>,
}

impl<R: Read> Tap<R> {
    fn new(inner: R) -> Self {
        Tap {
            inner,
            last: std::rc::Rc::new(std::cell::RefCell::new([0; 512])),
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut last = self.last.borrow_mut();
        if n >= 512 {
            last.copy_from_slice(&buf[n - 512..n]);
        } else {
            last.copy_within(n.., 0);
            last[512 - n..].copy_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// A failed write into `dest`; a full disk says which folder is full.
fn write_error(e: io::Error, dest: &Path, path: &Path) -> UnpackError {
    let source = match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => io::Error::new(
            e.kind(),
            format!("the filesystem holding {} is full ({e})", dest.display()),
        ),
        Some(nix::libc::EDQUOT) => io::Error::new(
            e.kind(),
            format!("the disk quota on {} is exhausted ({e})", dest.display()),
        ),
        _ => e,
    };
    UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A failed creation of an entry's file, folder or link. What the archive
/// asks for and the filesystem cannot make (a name too long, something
/// already at the path) is the archive's fault: it would fail the same on
/// every pass. Anything else (a full disk, a read-only filesystem, no
/// permission) is the machine's.
fn create_error(e: io::Error, shown: &str, dest: &Path, path: &Path) -> UnpackError {
    use nix::libc;
    let why = match e.raw_os_error() {
        Some(libc::ENAMETOOLONG) => {
            "its name is too long for the filesystem (a name component over 255 bytes, or a path over 4096)"
        }
        Some(libc::EEXIST) => {
            "something already exists at its path (an earlier entry made a folder or file there)"
        }
        Some(libc::ENOTDIR) => "a part of its path is not a folder",
        Some(libc::EISDIR) => "a folder already exists at its path",
        Some(libc::ELOOP) => "its path runs through a symlink",
        Some(libc::EMLINK) => "the filesystem's limit on links (hardlinks to one file, or subfolders of one folder) is reached",
        _ => return write_error(e, dest, path),
    };
    entry_err(shown, format!("cannot be created: {why} ({e})"))
}

/// `io::copy` that tells a read error of the archive (the artifact's
/// fault) from a write error of the destination (the machine's).
fn copy(
    from: &mut impl Read,
    to: &mut impl Write,
    shown: &str,
    dest: &Path,
    path: &Path,
) -> Result<u64, UnpackError> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let text = format!("in entry \"{shown}\": {e}");
                return Err(UnpackError::Read(io::Error::new(e.kind(), text)));
            }
        };
        to.write_all(&buf[..n])
            .map_err(|e| write_error(e, dest, path))?;
        total += n as u64;
    }
}

/// An entry as first seen: what a second entry with its path is compared to.
struct Seen {
    kind: tar::EntryType,
    mode: u32,
}

#[derive(Default)]
struct State {
    seen: HashMap<PathBuf, Seen>,
    dirs: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    symlinks: HashSet<PathBuf>,
    dir_modes: Vec<(PathBuf, u32)>,
}

impl State {
    /// Creates the missing parent folders of `rel` (no symlinks among them:
    /// the caller checked, and only this loop writes under `dest`).
    fn make_parents(&mut self, dest: &Path, rel: &Path, shown: &str) -> Result<(), UnpackError> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut walked = PathBuf::new();
        for c in parent.components() {
            walked.push(c);
            if self.dirs.contains(&walked) {
                continue;
            }
            let path = dest.join(&walked);
            if self.files.contains(&walked) {
                return Err(entry_err(
                    shown,
                    format!(
                        "lies under {}, which is a file",
                        quoted(walked.as_os_str().as_bytes())
                    ),
                ));
            }
            fs::create_dir(&path).map_err(|e| create_error(e, shown, dest, &path))?;
            self.dirs.insert(walked.clone());
        }
        Ok(())
    }
}

/// The entry's path without a leading `./`, checked; `None` for `./`
/// itself. The bytes are kept as they are (a name need not be UTF-8). The
/// error is the rule the path breaks.
fn clean_path(raw: &[u8]) -> Result<Option<PathBuf>, String> {
    if raw.contains(&0) {
        return Err("a path with a NUL byte".to_string());
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err("an absolute path; expected a relative one".to_string())
            }
            Component::ParentDir => return Err("a path with '..'".to_string()),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn first_component(rel: &Path) -> &OsStr {
    rel.components()
        .next()
        .map(|c| c.as_os_str())
        .unwrap_or_default()
}

/// A symlink at `rel` to `target` must stay inside its component folder.
fn check_symlink(shown: &str, rel: &Path, target: &[u8]) -> Result<(), UnpackError> {
    if target.is_empty() || target.contains(&0) {
        return Err(entry_err(shown, "a symlink with an empty target"));
    }
    let target_shown = quoted(target);
    let t = Path::new(OsStr::from_bytes(target));
    if t.is_absolute() {
        return Err(entry_err(
            shown,
            format!("a symlink to the absolute path {target_shown}; expected a relative target inside its component folder"),
        ));
    }
    // Depth below the component folder of the folder holding the link.
    // Every `..` must come first: then they climb through real folders
    // (nothing is written through a symlink), and the rest only descends,
    // so the lexical check below is also what the kernel resolves.
    let mut depth: i64 = rel.components().count() as i64 - 2;
    let mut descended = false;
    for c in t.components() {
        match c {
            Component::Normal(_) => {
                depth += 1;
                descended = true;
            }
            Component::CurDir => {}
            Component::ParentDir if descended => {
                return Err(entry_err(
                    shown,
                    format!(
                        "a symlink to {target_shown}; '..' is allowed only at the start of a target"
                    ),
                ));
            }
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(entry_err(
                        shown,
                        format!("a symlink to {target_shown}, which leaves its component folder"),
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(entry_err(shown, "a symlink with an absolute target"))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(
            clean_path(b"./backend/a").ok().flatten(),
            Some(PathBuf::from("backend/a"))
        );
        assert!(clean_path(b"./").ok().flatten().is_none());
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"backend/../../x").is_err());
        assert_eq!(
            clean_path(b"backend/caf\xe9").ok().flatten().unwrap(),
            Path::new(OsStr::from_bytes(b"backend/caf\xe9"))
        );
    }

    #[test]
    fn symlinks_stay_inside_their_component() {
        let rel = Path::new("backend/lib/a");
        assert!(check_symlink("x", rel, b"../VERSION").is_ok());
        assert!(check_symlink("x", rel, b"b").is_ok());
        assert!(check_symlink("x", rel, b"../..").is_err());
        assert!(check_symlink("x", rel, b"../../frontend/x").is_err());
        assert!(check_symlink("x", rel, b"/etc/passwd").is_err());
        assert!(check_symlink("x", Path::new("backend/a"), b"..").is_err());
        assert!(check_symlink("x", Path::new("backend/u"), b"a/..").is_err());
    }

    #[test]
    fn bytes_are_escaped_for_messages() {
        assert_eq!(escape_bytes(b"backend/caf\xe9"), r"backend/caf\xe9");
        assert_eq!(escape_bytes("backend/café".as_bytes()), "backend/café");
        assert_eq!(escape_bytes(b"a\"b\\c\nd\x7f"), r#"a\"b\\c\nd\u{7f}"#);
        assert_eq!(escape_bytes("x\u{202e}y".as_bytes()), r"x\u{202e}y");
        // Distinct bytes never show the same.
        assert_ne!(escape_bytes(b"\xe9"), escape_bytes(br"\xe9"));
    }

    #[test]
    fn entry_types_are_named_in_words() {
        use tar::EntryType as T;
        assert_eq!(describe(T::Char), "a character device");
        assert_eq!(describe(T::Block), "a block device");
        assert_eq!(describe(T::Fifo), "a fifo (named pipe)");
        assert!(describe(T::new(b'D')).contains("GNU dumpdir"));
        assert!(describe(T::new(b'M')).contains("multi-volume"));
        assert!(describe(T::new(b'V')).contains("volume label"));
        assert_eq!(describe(T::new(b'Q')), "an unknown entry type 'Q' (0x51)");
        assert_eq!(
            describe(T::new(0xfe)),
            r"an unknown entry type '\xfe' (0xfe)"
        );
    }
}
