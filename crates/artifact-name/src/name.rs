//! [`ArtifactName`]: parsing, formatting and ordering of artifact names.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use serde::Serialize;

use crate::branch::{decode_branch, encode_branch, validate_branch};
use crate::error::{Field, NameError};
use crate::ext::{expected_list, Ext};

/// The build time's format in names: ISO 8601 basic, UTC, always with `Z`.
pub const BUILD_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The longest artifact name, in bytes: Linux file systems accept 255, and
/// the marker `<name>.sha256` must fit too, or no upload could complete.
pub const MAX_NAME_BYTES: usize = 255 - crate::MARKER_SUFFIX.len();

/// A valid artifact name, `<kind>_<build time>_<version>_<branch>.<ext>`.
///
/// Two names order by build time, then by file name, so that the newest build
/// is the greatest and equal build times still order deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactName {
    kind: String,
    build_time: DateTime<Utc>,
    version: String,
    branch: String,
    ext: Ext,
    file_name: String,
}

/// The JSON form printed by `artifact-name parse` and stored in state files.
#[derive(Serialize)]
struct NameJson<'a> {
    artifact: &'a str,
    kind: &'a str,
    build_time: String,
    version: &'a str,
    branch: &'a str,
    ext: Ext,
}

impl ArtifactName {
    /// Builds a name from its parts, checking each against the contract.
    ///
    /// `branch` is the git branch as git spells it (with `/`); the build time
    /// is truncated to whole seconds, the precision the name carries.
    pub fn new(
        kind: &str,
        build_time: DateTime<Utc>,
        version: &str,
        branch: &str,
        ext: Ext,
    ) -> Result<ArtifactName, NameError> {
        let build_time = Utc
            .timestamp_opt(build_time.timestamp(), 0)
            .single()
            .unwrap_or(build_time);
        let file_name = format!(
            "{kind}_{}_{version}_{}.{ext}",
            build_time.format(BUILD_TIME_FORMAT),
            encode_branch(branch)
        );
        check_kind(&file_name, kind)?;
        check_version(&file_name, version)?;
        if let Some(expected) = validate_branch(branch) {
            return Err(NameError::new(&file_name, Field::Branch, branch, expected));
        }
        check_length(&file_name)?;
        Ok(ArtifactName {
            kind: kind.to_string(),
            build_time,
            version: version.to_string(),
            branch: branch.to_string(),
            ext,
            file_name,
        })
    }

    /// Parses a file name from the drop folder.
    pub fn parse(input: &str) -> Result<ArtifactName, NameError> {
        check_length(input)?;
        let (stem, ext) = Ext::ALL
            .into_iter()
            .find_map(|ext| {
                input
                    .strip_suffix(ext.as_str())
                    .and_then(|s| s.strip_suffix('.'))
                    .map(|stem| (stem, ext))
            })
            .ok_or_else(|| {
                let found = input.rsplit_once('.').map_or("", |(_, e)| e);
                NameError::new(input, Field::Ext, found, expected_list())
            })?;
        let mut parts = stem.splitn(4, '_');
        let (Some(kind), Some(time), Some(version), Some(branch)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NameError::new(
                input,
                Field::Name,
                input,
                "<kind>_<build time>_<version>_<branch>.<ext>, \
                 e.g. full_20261126T235012Z_1.4.2_master.tar.gz",
            ));
        };
        check_kind(input, kind)?;
        let build_time = parse_build_time(input, time)?;
        check_version(input, version)?;
        if branch.contains('/') {
            return Err(NameError::new(
                input,
                Field::Branch,
                branch,
                "the branch with every '/' written as '~'",
            ));
        }
        let decoded = decode_branch(branch);
        if let Some(expected) = validate_branch(&decoded) {
            return Err(NameError::new(input, Field::Branch, branch, expected));
        }
        Ok(ArtifactName {
            kind: kind.to_string(),
            build_time,
            version: version.to_string(),
            branch: decoded,
            ext,
            file_name: input.to_string(),
        })
    }

    /// Parses a file name given as raw bytes (names on disk need not be
    /// UTF-8; those that are not are rejected).
    pub fn parse_bytes(input: &[u8]) -> Result<ArtifactName, NameError> {
        match std::str::from_utf8(input) {
            Ok(s) => ArtifactName::parse(s),
            Err(_) => Err(NameError::new(
                &String::from_utf8_lossy(input),
                Field::Name,
                "",
                "a name in UTF-8",
            )),
        }
    }

    /// The kind, e.g. `full`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// When CI built it, in UTC, to the second.
    pub fn build_time(&self) -> DateTime<Utc> {
        self.build_time
    }

    /// The build time as RFC 3339 with `Z`, e.g. `2026-11-26T23:50:12Z`.
    pub fn build_time_rfc3339(&self) -> String {
        self.build_time.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// The version, e.g. `1.5.0-rc.1+g3f2a9c1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The git branch, with `/` restored. Untrusted text: escape it.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The archive format.
    pub fn ext(&self) -> Ext {
        self.ext
    }

    /// The whole file name.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The file name without its extension; unique per artifact, and what
    /// the switcher uses as the release id.
    pub fn stem(&self) -> &str {
        let cut = self.file_name.len() - self.ext.as_str().len() - 1;
        &self.file_name[..cut]
    }

    /// The name of this artifact's completion marker.
    pub fn marker_name(&self) -> String {
        format!("{}{}", self.file_name, crate::MARKER_SUFFIX)
    }

    /// The JSON object that `artifact-name parse` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let json = NameJson {
            artifact: &self.file_name,
            kind: &self.kind,
            build_time: self.build_time_rfc3339(),
            version: &self.version,
            branch: &self.branch,
            ext: self.ext,
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name)
    }
}

impl FromStr for ArtifactName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<ArtifactName, NameError> {
        ArtifactName::parse(s)
    }
}

impl Ord for ArtifactName {
    fn cmp(&self, other: &ArtifactName) -> Ordering {
        self.build_time
            .cmp(&other.build_time)
            .then_with(|| self.file_name.cmp(&other.file_name))
    }
}

impl PartialOrd for ArtifactName {
    fn partial_cmp(&self, other: &ArtifactName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn check_length(input: &str) -> Result<(), NameError> {
    if input.len() > MAX_NAME_BYTES {
        return Err(NameError::new(
            input,
            Field::Name,
            "",
            format!(
                "at most {MAX_NAME_BYTES} bytes (255 with the marker's \".sha256\"), found {}",
                input.len()
            ),
        ));
    }
    Ok(())
}

fn check_kind(input: &str, kind: &str) -> Result<(), NameError> {
    let mut bytes = kind.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::new(
            input,
            Field::Kind,
            kind,
            "[a-z][a-z0-9-]*, e.g. full or frontend",
        ))
    }
}

fn check_version(input: &str, version: &str) -> Result<(), NameError> {
    let ok = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError::new(
            input,
            Field::Version,
            version,
            "one or more of [0-9A-Za-z.+-], e.g. 1.5.0-rc.1+g3f2a9c1",
        ))
    }
}

fn parse_build_time(input: &str, time: &str) -> Result<DateTime<Utc>, NameError> {
    let err = || {
        NameError::new(
            input,
            Field::BuildTime,
            time,
            "UTC in ISO 8601 basic form YYYYMMDDTHHMMSSZ, e.g. 20261126T235012Z",
        )
    };
    // chrono accepts some variations (e.g. fewer digits); the contract is
    // exactly 16 characters, so check the shape first.
    let shape_ok = time.len() == 16
        && time.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(err());
    }
    // chrono reads second 60 as a leap second, which no UTC timestamp (and
    // so no formatted name) can hold: the name would not round-trip.
    NaiveDateTime::parse_from_str(time, BUILD_TIME_FORMAT)
        .ok()
        .filter(|naive| naive.nanosecond() == 0)
        .map(|naive| naive.and_utc())
        .ok_or_else(err)
}
