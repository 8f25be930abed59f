//! The staged artifacts: what the collector has taken into staging/.
//!
//! Only a file with a valid artifact name *and* its `.sha256` marker beside
//! it counts: the collector writes the marker last, so an artifact without
//! one is still arriving (or was cut short) and is left alone.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use artifact_name::{ArtifactName, MARKER_SUFFIX};
use deploy_root::Layout;

/// One staged artifact with its marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// Its parsed name.
    pub name: ArtifactName,
    /// The archive.
    pub path: PathBuf,
    /// Its marker.
    pub marker: PathBuf,
}

/// The staged artifacts with markers, oldest first (by [`ArtifactName`]'s
/// order: build time, then file name). A missing staging folder is empty.
pub fn list(layout: &Layout) -> anyhow::Result<Vec<Staged>> {
    let rd = match fs::read_dir(&layout.staging) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("listing staging folder {}", layout.staging.display()))
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry
            .with_context(|| format!("listing staging folder {}", layout.staging.display()))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.ends_with(MARKER_SUFFIX) || file_name.starts_with('.') {
            continue;
        }
        let Ok(name) = ArtifactName::parse(file_name) else {
            tracing::debug!("staging: ignoring {file_name:?}: not an artifact name");
            continue;
        };
        let marker = layout.staging.join(name.marker_name());
        if !marker.is_file() {
            tracing::debug!("staging: ignoring {file_name}: no marker yet");
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push(Staged {
            path: entry.path(),
            marker,
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
