//! The artifact naming contract shared by CI and the VM.
//!
//! Every artifact that CI delivers is named
//!
//! ```text
//! <kind>_<build time>_<version>_<branch>.<ext>
//! ```
//!
//! for example `full_20261126T235012Z_1.4.2_master.tar.gz`. The collector and
//! the switcher read everything they know about an artifact from its name, so
//! this crate is the single source of truth for the format: it parses,
//! formats, validates and orders names, and reads the `.sha256` completion
//! marker that CI writes once the artifact is complete.
//!
//! File names in the drop folder are written by another party and are
//! untrusted: [`ArtifactName::parse`] rejects anything outside the contract
//! with a [`NameError`] that names the field at fault and shows the input.

mod branch;
mod error;
pub mod exit_codes;
mod ext;
mod marker;
mod name;

pub use branch::{decode_branch, encode_branch, validate_branch};
pub use error::{Field, NameError};
pub use ext::{Compression, Ext};
pub use marker::{parse_marker, MarkerError, MARKER_SUFFIX};
pub use name::{ArtifactName, BUILD_TIME_FORMAT, MAX_NAME_BYTES};
