//! Classifies the names in the drop folder: uploads (with or without their
//! marker), markers without an upload, and names to ignore.
//!
//! Only names and the entry type as the folder reports it (never following a
//! link) are looked at here; contents are read later through
//! [`crate::open`]. Names are raw bytes: a name need not be UTF-8.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::FileType;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use artifact_name::MARKER_SUFFIX;

/// One thing the drop folder holds.
#[derive(Debug)]
pub enum Item {
    /// A file that may be an artifact, and its marker if it has arrived.
    Upload {
        /// The upload's name.
        name: OsString,
        /// Its type, not following links.
        file_type: FileType,
        /// The marker's name, if the marker is there.
        marker: Option<OsString>,
    },
    /// A marker whose artifact is not in the drop folder.
    OrphanMarker {
        /// The marker's name.
        name: OsString,
        /// The name of the artifact it is for.
        artifact: OsString,
    },
}

/// Whether a name is never looked at: dotfiles (CI uploads as
/// `.<name>.part` and renames), `*.part` and `*.tmp` (uploads in progress).
pub fn is_ignored(name: &[u8]) -> bool {
    name.starts_with(b".") || name.ends_with(b".part") || name.ends_with(b".tmp")
}

/// The artifact name a marker name is for, if it is a marker name.
pub fn marker_target(name: &[u8]) -> Option<&[u8]> {
    name.strip_suffix(MARKER_SUFFIX.as_bytes())
        .filter(|s| !s.is_empty())
}

/// The marker name of an artifact name.
pub fn marker_name(artifact: &OsStr) -> OsString {
    let mut bytes = artifact.as_bytes().to_vec();
    bytes.extend_from_slice(MARKER_SUFFIX.as_bytes());
    OsString::from_vec(bytes)
}

/// Lists the drop folder, sorted by name.
pub fn scan(drop: &Path) -> io::Result<Vec<Item>> {
    let mut entries: BTreeMap<OsString, FileType> = BTreeMap::new();
    for entry in std::fs::read_dir(drop)? {
        let entry = entry?;
        let name = entry.file_name();
        if is_ignored(name.as_bytes()) {
            continue;
        }
        // DirEntry::file_type does not follow links.
        entries.insert(name, entry.file_type()?);
    }
    let mut items = Vec::new();
    for (name, file_type) in &entries {
        match marker_target(name.as_bytes()) {
            Some(target) => {
                let target = OsStr::from_bytes(target);
                // Paired markers are handled with their upload; a marker for
                // an ignored name (x.part.sha256) waits with it.
                if !entries.contains_key(target) && !is_ignored(target.as_bytes()) {
                    items.push(Item::OrphanMarker {
                        name: name.clone(),
                        artifact: target.to_os_string(),
                    });
                }
            }
            None => {
                let marker = marker_name(name);
                items.push(Item::Upload {
                    name: name.clone(),
                    file_type: *file_type,
                    marker: entries.contains_key(&marker).then_some(marker),
                });
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_uploads_in_progress_and_dotfiles() {
        assert!(is_ignored(b".full_x.tar.gz.part"));
        assert!(is_ignored(b"full_x.tar.gz.part"));
        assert!(is_ignored(b"x.tmp"));
        assert!(!is_ignored(b"full_x.tar.gz"));
        assert!(!is_ignored(b"full_x.tar.gz.sha256"));
    }

    #[test]
    fn marker_names() {
        assert_eq!(marker_target(b"a.tar.sha256"), Some(&b"a.tar"[..]));
        assert_eq!(marker_target(b".sha256"), None);
        assert_eq!(marker_target(b"a.tar"), None);
        assert_eq!(
            marker_name(OsStr::new("a.tar")),
            OsString::from("a.tar.sha256")
        );
    }
}
