//! The safe archive reader: our own loop over the `tar` crate's entries.
//!
//! An artifact is written by another party, so every entry is hostile until
//! checked. The loop never lets `tar` write anything itself (its `unpack`
//! follows rules we do not control); instead each entry is checked and then
//! created with `O_CREAT|O_EXCL|O_NOFOLLOW`, inside a fresh folder that only
//! this loop has written to:
//!
//! - paths: no absolute paths, no `..`, a leading `./` is tolerated; the
//!   first path component must be one of the expected top-level folders;
//!   the same path twice is refused; nothing is ever written through a
//!   symlink the archive created.
//! - symlinks: relative, and resolving (lexically) inside their component
//!   folder; hardlinks only to a regular file written earlier in the same
//!   component.
//! - no device nodes, fifos or sparse files; setuid, setgid and sticky bits
//!   are dropped; a pax global header (metadata, as `git archive` writes)
//!   is skipped.
//! - the total size and the entry count are capped before anything is
//!   written, so an archive bomb stops early; only regular files may carry
//!   data (tar would skip data behind a folder by decompressing it all,
//!   unseen by the cap).
//! - errors say where: a rule names the entry, a broken archive the entry
//!   it broke in or after; a failed write (a full disk) is a
//!   [`UnpackError::Write`], the machine's fault rather than the archive's.
//!
//! [`unpack`] takes any reader, so a fuzz target can drive it directly.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
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
    /// An entry breaks a rule.
    #[error("entry {path:?}: {reason}")]
    Entry {
        /// The entry's path as the archive gives it.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The archive is larger than the limits allow.
    #[error("{0}")]
    Limit(String),
    /// Writing into the destination failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn entry_err(path: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
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
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(reader).map_err(UnpackError::Read)?)
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut state = State::default();
    let mut summary = Summary::default();
    let entries = archive.entries().map_err(UnpackError::Read)?;
    // The last entry read whole, so that an archive that breaks says where.
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(e, last.as_deref()))?;
        summary.entries += 1;
        if summary.entries > limits.max_entries {
            return Err(UnpackError::Limit(format!(
                "the archive holds more than {} entries (switcher.max_entries)",
                limits.max_entries
            )));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            // A pax global header (`git archive` writes one holding the
            // commit id) is metadata for the reader, not a file: skipped.
            // tar reads its data to skip it, so it is capped (a bomb could
            // hide there as behind a folder).
            if entry.size() > GLOBAL_HEADER_CAP {
                return Err(entry_err(
                    &raw,
                    format!(
                        "a pax global header of {} bytes; expected at most {GLOBAL_HEADER_CAP}",
                        entry.size()
                    ),
                ));
            }
            continue;
        }
        let Some(rel) = clean_path(&raw)? else {
            // "./" itself: the archive's root, nothing to create.
            continue;
        };
        let top = first_component(&rel);
        if !limits.top_level.contains(&top) {
            let expected: Vec<&str> = limits.top_level.iter().map(String::as_str).collect();
            return Err(entry_err(
                &raw,
                format!(
                    "unexpected top-level entry {top:?}; expected only the folders {}",
                    expected.join(", ")
                ),
            ));
        }
        if !state.seen.insert(rel.clone()) {
            return Err(entry_err(&raw, "appears twice in the archive"));
        }
        if let Some(link) = rel
            .ancestors()
            .skip(1)
            .find(|a| state.symlinks.contains(*a))
        {
            return Err(entry_err(
                &raw,
                format!(
                    "lies under {}, which the archive made a symlink (writing through it is refused)",
                    link.display()
                ),
            ));
        }
        let kind = entry.header().entry_type();
        let target = dest.join(&rel);
        let is_top = rel.components().count() == 1;
        if is_top && !kind.is_dir() {
            return Err(entry_err(
                &raw,
                "a top-level entry must be a folder (one per component)",
            ));
        }
        summary.top_level.insert(top);
        let is_file = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        if !is_file && entry.size() > 0 {
            // Only files hold data. tar skips the data of anything else by
            // reading (decompressing) it all, and the size cap, which counts
            // what is written, would never see it: a bomb behind a folder.
            return Err(entry_err(
                &raw,
                format!(
                    "a {kind:?} entry that carries {} bytes of data; only regular files may",
                    entry.size()
                ),
            ));
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            tar::EntryType::Directory => {
                state.make_parents(dest, &rel)?;
                match fs::create_dir(&target) {
                    Ok(()) => {}
                    // A folder made implicitly for an earlier entry.
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && state.dirs.contains(&rel) => {}
                    Err(e) => return Err(write_err(&target)(e)),
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
                state.make_parents(dest, &rel)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(write_err(&target))?;
                // Never trust the header's size alone: copy at most that much.
                let copied = copy(&mut (&mut entry).take(size), &mut file, &raw, dest, &target)?;
                if copied != size {
                    return Err(UnpackError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry {raw:?} is cut short ({copied} of {size} bytes)"),
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
                    .ok_or_else(|| entry_err(&raw, "a symlink without a target"))?;
                let link = String::from_utf8_lossy(&link).into_owned();
                check_symlink(&raw, &rel, &link)?;
                state.make_parents(dest, &rel)?;
                symlink(&link, &target).map_err(write_err(&target))?;
                state.symlinks.insert(rel.clone());
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&raw, "a hardlink without a target"))?;
                let link_raw = String::from_utf8_lossy(&link).into_owned();
                // The rule the target breaks, said of this entry (the
                // target is not an entry of the archive).
                let link_rel = match clean_path(&link_raw) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Err(entry_err(&raw, "a hardlink to the archive's root")),
                    Err(UnpackError::Entry { reason, .. }) => {
                        return Err(entry_err(
                            &raw,
                            format!("a hardlink to {link_raw:?}, {reason}"),
                        ))
                    }
                    Err(e) => return Err(e),
                };
                if first_component(&link_rel) != first_component(&rel) {
                    return Err(entry_err(
                        &raw,
                        format!("a hardlink to {link_raw:?}, outside its component folder"),
                    ));
                }
                if !state.files.contains(&link_rel) {
                    return Err(entry_err(
                        &raw,
                        format!("a hardlink to {link_raw:?}, which is not a regular file earlier in the archive"),
                    ));
                }
                state.make_parents(dest, &rel)?;
                // link(2) does not follow a symlink at the source, and the
                // source is a regular file this loop wrote.
                fs::hard_link(dest.join(&link_rel), &target).map_err(write_err(&target))?;
                state.files.insert(rel.clone());
            }
            other => {
                return Err(entry_err(
                    &raw,
                    format!(
                    "has type {other:?}; only files, folders, symlinks and hardlinks are allowed"
                ),
                ))
            }
        }
        last = Some(raw);
        on_entry(summary.entries);
    }
    // Modes last, so that a read-only folder did not stop its own entries.
    for (dir, mode) in state.dir_modes.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode)).map_err(write_err(dir))?;
    }
    Ok(summary)
}

/// A read error of the archive, saying after which entry it broke, with
/// anything unprintable escaped (the tar crate quotes the raw bytes of a
/// broken header, and the reason ends up on the status page and terminals).
fn read_error(e: io::Error, last: Option<&str>) -> UnpackError {
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
    let text = match last {
        Some(last) => format!("after entry {last:?}: {text}"),
        None => format!("at its first entry: {text}"),
    };
    UnpackError::Read(io::Error::new(e.kind(), text))
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

/// `io::copy` that tells a read error of the archive (the artifact's
/// fault) from a write error of the destination (the machine's).
fn copy(
    from: &mut impl Read,
    to: &mut impl Write,
    raw: &str,
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
                let text = format!("in entry {raw:?}: {e}");
                return Err(UnpackError::Read(io::Error::new(e.kind(), text)));
            }
        };
        to.write_all(&buf[..n])
            .map_err(|e| write_error(e, dest, path))?;
        total += n as u64;
    }
}

#[derive(Default)]
struct State {
    seen: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    symlinks: HashSet<PathBuf>,
    dir_modes: Vec<(PathBuf, u32)>,
}

impl State {
    /// Creates the missing parent folders of `rel` (no symlinks among them:
    /// the caller checked, and only this loop writes under `dest`).
    fn make_parents(&mut self, dest: &Path, rel: &Path) -> Result<(), UnpackError> {
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
                    &rel.display().to_string(),
                    format!("lies under {}, which is a file", walked.display()),
                ));
            }
            fs::create_dir(&path).map_err(write_err(&path))?;
            self.dirs.insert(walked.clone());
        }
        Ok(())
    }
}

/// The entry's path without a leading `./`, checked; `None` for `./` itself.
fn clean_path(raw: &str) -> Result<Option<PathBuf>, UnpackError> {
    if raw.contains('\0') {
        return Err(entry_err(raw, "a path with a NUL byte"));
    }
    let path = Path::new(raw);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(entry_err(raw, "an absolute path; expected a relative one"))
            }
            Component::ParentDir => return Err(entry_err(raw, "a path with '..'")),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn first_component(rel: &Path) -> String {
    rel.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A symlink at `rel` to `target` must stay inside its component folder.
fn check_symlink(raw: &str, rel: &Path, target: &str) -> Result<(), UnpackError> {
    if target.is_empty() || target.contains('\0') {
        return Err(entry_err(raw, "a symlink with an empty target"));
    }
    let t = Path::new(target);
    if t.is_absolute() {
        return Err(entry_err(
            raw,
            format!("a symlink to the absolute path {target:?}; expected a relative target inside its component folder"),
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
                    raw,
                    format!(
                        "a symlink to {target:?}; '..' is allowed only at the start of a target"
                    ),
                ));
            }
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(entry_err(
                        raw,
                        format!("a symlink to {target:?}, which leaves its component folder"),
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(entry_err(raw, "a symlink with an absolute target"))
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
            clean_path("./backend/a").ok().flatten(),
            Some(PathBuf::from("backend/a"))
        );
        assert!(clean_path("./").ok().flatten().is_none());
        assert!(clean_path("/etc/passwd").is_err());
        assert!(clean_path("backend/../../x").is_err());
    }

    #[test]
    fn symlinks_stay_inside_their_component() {
        let rel = Path::new("backend/lib/a");
        assert!(check_symlink("x", rel, "../VERSION").is_ok());
        assert!(check_symlink("x", rel, "b").is_ok());
        assert!(check_symlink("x", rel, "../..").is_err());
        assert!(check_symlink("x", rel, "../../frontend/x").is_err());
        assert!(check_symlink("x", rel, "/etc/passwd").is_err());
        assert!(check_symlink("x", Path::new("backend/a"), "..").is_err());
        assert!(check_symlink("x", Path::new("backend/u"), "a/..").is_err());
    }
}
