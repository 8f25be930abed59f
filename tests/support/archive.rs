//! Artifacts for tests: tar archives built from in-memory trees, named by the
//! contract, with their `.sha256` markers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use artifact_name::{ArtifactName, Compression, Ext};
use chrono::{DateTime, Duration, DurationRound, Utc};
use sha2::{Digest, Sha256};

/// One entry of a test archive.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file with its content and mode.
    File(String, Vec<u8>, u32),
    /// A folder.
    Dir(String),
    /// A symlink and its target.
    Symlink(String, String),
}

/// The build time tests count from: a day before this test process started,
/// to the minute. Relative to the real clock, never a fixed date, because
/// the binaries judge build times by their clock (the status page shows each
/// build's age, and "in the future" when the clocks disagree); a day back,
/// so that even [`ArchiveBuilder::minute`]s of a few hours stay in the past.
/// Fixed for the whole process, so names built twice are the same.
pub fn epoch() -> DateTime<Utc> {
    static EPOCH: OnceLock<DateTime<Utc>> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        (Utc::now() - Duration::days(1))
            .duration_trunc(Duration::minutes(1))
            .expect("a time to the minute")
    })
}

/// Builds an artifact: its name, and the bytes of its archive.
#[derive(Clone, Debug)]
pub struct ArchiveBuilder {
    kind: String,
    version: String,
    branch: String,
    time: DateTime<Utc>,
    ext: Ext,
    entries: Vec<Entry>,
}

impl ArchiveBuilder {
    /// An artifact of `kind` and `version`, from master, built at the
    /// [`epoch`] (pass `minute` or `at` to set it).
    pub fn new(kind: &str, version: &str) -> ArchiveBuilder {
        ArchiveBuilder {
            kind: kind.into(),
            version: version.into(),
            branch: "master".into(),
            time: epoch(),
            ext: Ext::TarGz,
            entries: Vec::new(),
        }
    }

    /// A demo-app artifact: `full` carries backend/ and frontend/, anything
    /// else frontend/ only; each holds VERSION and the frontend an index.html.
    pub fn demo(kind: &str, version: &str) -> ArchiveBuilder {
        let mut b = ArchiveBuilder::new(kind, version);
        if kind == "full" {
            b = b
                .dir("backend")
                .file("backend/VERSION", format!("{version}\n"));
        }
        b.dir("frontend")
            .file("frontend/VERSION", format!("{version}\n"))
            .file(
                "frontend/index.html",
                format!("<!doctype html><title>demo</title><p>frontend {version}</p>\n"),
            )
    }

    /// Sets the build time.
    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }

    /// Sets the build time `minutes` after the [`epoch`] (easy ordering).
    pub fn minute(self, minutes: i64) -> Self {
        self.at(epoch() + Duration::minutes(minutes))
    }

    /// Sets the branch (git form, with `/`).
    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = branch.into();
        self
    }

    /// Sets the archive format.
    pub fn ext(mut self, ext: Ext) -> Self {
        self.ext = ext;
        self
    }

    /// Adds a regular file (mode 0644).
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.entries
            .push(Entry::File(path.into(), content.into(), 0o644));
        self
    }

    /// Adds a regular file with a mode.
    pub fn file_mode(mut self, path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.entries
            .push(Entry::File(path.into(), content.into(), mode));
        self
    }

    /// Adds a folder.
    pub fn dir(mut self, path: &str) -> Self {
        self.entries.push(Entry::Dir(path.into()));
        self
    }

    /// Adds a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries
            .push(Entry::Symlink(path.into(), target.into()));
        self
    }

    /// Removes every entry under `prefix` (e.g. to drop a component folder).
    pub fn without(mut self, prefix: &str) -> Self {
        self.entries.retain(|e| {
            let p = match e {
                Entry::File(p, ..) | Entry::Dir(p) | Entry::Symlink(p, _) => p,
            };
            !(p == prefix || p.starts_with(&format!("{prefix}/")))
        });
        self
    }

    /// The artifact's name.
    pub fn name(&self) -> ArtifactName {
        ArtifactName::new(&self.kind, self.time, &self.version, &self.branch, self.ext).unwrap()
    }

    /// The archive's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_764_201_012);
            match e {
                Entry::File(p, content, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(content.len() as u64);
                    h.set_mode(*mode);
                    tar.append_data(&mut h, p, content.as_slice()).unwrap();
                }
                Entry::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    tar.append_data(&mut h, p, std::io::empty()).unwrap();
                }
                Entry::Symlink(p, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    h.set_mode(0o777);
                    tar.append_link(&mut h, p, target).unwrap();
                }
            }
        }
        let raw = tar.into_inner().unwrap();
        compress(&raw, self.ext.compression())
    }

    /// Writes the artifact and then its marker into `dir`; returns the
    /// artifact's path.
    pub fn drop_into(&self, dir: &Path) -> PathBuf {
        let name = self.name();
        let bytes = self.bytes();
        let path = dir.join(name.file_name());
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(
            dir.join(name.marker_name()),
            marker(name.file_name(), &bytes),
        )
        .unwrap();
        path
    }
}

/// Compresses a tar stream as an extension asks.
pub fn compress(raw: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => raw.to_vec(),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(raw).unwrap();
            gz.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(raw, 3).unwrap(),
    }
}

/// The `sha256sum`-format marker for `bytes` named `name`.
pub fn marker(name: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  {name}\n")
}
