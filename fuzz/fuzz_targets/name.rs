//! Fuzz target: arbitrary bytes as a drop-folder file name.
//!
//! The parser must never panic; whatever it accepts must format back to the
//! same bytes and rebuild from its parts (the round trip CI relies on); the
//! marker reader must never panic either.

#![no_main]

use artifact_name::{parse_marker, ArtifactName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = ArtifactName::parse_bytes(data) {
        assert_eq!(name.file_name().as_bytes(), data);
        let rebuilt = ArtifactName::new(
            name.kind(),
            name.build_time(),
            name.version(),
            name.branch(),
            name.ext(),
        )
        .expect("a parsed name rebuilds from its parts");
        assert_eq!(rebuilt, name);
        let _ = name.to_json();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_marker(text, "full_20261126T235012Z_1.4.2_master.tar.gz");
    }
});
