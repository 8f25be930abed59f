//! The archive formats an artifact may come in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The extension of an artifact, which says how it is packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ext {
    /// `.tar.gz`: tar, gzip-compressed.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// `.tgz`: the same as `.tar.gz`.
    #[serde(rename = "tgz")]
    Tgz,
    /// `.tar.zst`: tar, zstd-compressed.
    #[serde(rename = "tar.zst")]
    TarZst,
    /// `.tar`: plain tar.
    #[serde(rename = "tar")]
    Tar,
}

/// How the tar stream inside an artifact is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Ext {
    /// Every extension, longest suffix first, so that `.tar.gz` is tried
    /// before `.tar` would wrongly match a prefix.
    pub const ALL: [Ext; 4] = [Ext::TarGz, Ext::TarZst, Ext::Tgz, Ext::Tar];

    /// The extension without the leading dot, as it appears in names.
    pub fn as_str(self) -> &'static str {
        match self {
            Ext::TarGz => "tar.gz",
            Ext::Tgz => "tgz",
            Ext::TarZst => "tar.zst",
            Ext::Tar => "tar",
        }
    }

    /// Parses an extension without its leading dot.
    pub fn from_str_opt(s: &str) -> Option<Ext> {
        Ext::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// How the tar stream is compressed.
    pub fn compression(self) -> Compression {
        match self {
            Ext::TarGz | Ext::Tgz => Compression::Gzip,
            Ext::TarZst => Compression::Zstd,
            Ext::Tar => Compression::None,
        }
    }
}

impl fmt::Display for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The list of accepted extensions, for messages.
pub(crate) fn expected_list() -> String {
    let names: Vec<String> = Ext::ALL.iter().map(|e| format!(".{e}")).collect();
    names.join(", ")
}
