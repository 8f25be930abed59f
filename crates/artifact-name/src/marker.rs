//! The completion marker: `<artifact name>.sha256` in `sha256sum` format.
//!
//! CI writes the marker only after the artifact is complete, so its presence
//! means "upload finished", and its digest must match the artifact's.

use std::fmt;

/// The suffix that turns an artifact name into its marker's name.
pub const MARKER_SUFFIX: &str = ".sha256";

/// A marker whose content is not `<64 hex digits>  <artifact name>` (or the
/// digits alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerError {
    content: String,
    expected: String,
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid marker content {:?}: expected {}",
            self.content, self.expected
        )
    }
}

impl std::error::Error for MarkerError {}

/// Reads a marker's content and returns the lower-case hex digest it states.
///
/// The content is one line in `sha256sum` format: 64 hex digits, two spaces
/// (or a space and `*`, sha256sum's binary mode), and the artifact's file
/// name, which must be `artifact`; or the 64 hex digits alone (what
/// `sha256sum | cut -d' ' -f1` and many CI scripts write). The line may end
/// in `\n` or `\r\n` (Windows runners), or in nothing.
pub fn parse_marker(content: &str, artifact: &str) -> Result<String, MarkerError> {
    let err = |expected: String| MarkerError {
        content: content.chars().take(300).collect(),
        expected,
    };
    let line = content
        .strip_suffix("\r\n")
        .or_else(|| content.strip_suffix('\n'))
        .unwrap_or(content);
    if line.contains('\n') {
        return Err(err(format!(
            "a single line \"<sha256 hex digest>  {artifact}\""
        )));
    }
    if line.contains('\r') {
        return Err(err(format!(
            "a line \"<sha256 hex digest>  {artifact}\" ending in \\n or \\r\\n (a carriage return elsewhere)"
        )));
    }
    let (digest, rest) = line.split_at_checked(64).ok_or_else(|| {
        err(format!(
            "a line \"<sha256 hex digest>  {artifact}\" (64 hex digits first)"
        ))
    })?;
    if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err("64 hex digits at the start of the line".to_string()));
    }
    if rest.is_empty() {
        // The digest alone: nothing to check the name against.
        return Ok(digest.to_ascii_lowercase());
    }
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .ok_or_else(|| {
            err(format!(
                "two spaces between the digest and the file name {artifact:?}, or the digest alone"
            ))
        })?;
    if name != artifact {
        return Err(err(format!(
            "the file name {artifact:?} after the digest, found {name:?}"
        )));
    }
    Ok(digest.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn reads_sha256sum_output() {
        assert_eq!(
            parse_marker(&format!("{D}  a.tar\n"), "a.tar").as_deref(),
            Ok(D)
        );
        assert_eq!(
            parse_marker(&format!("{D} *a.tar"), "a.tar").as_deref(),
            Ok(D)
        );
        let upper = D.to_ascii_uppercase();
        assert_eq!(
            parse_marker(&format!("{upper}  a.tar"), "a.tar").as_deref(),
            Ok(D)
        );
    }

    #[test]
    fn reads_a_bare_digest_and_crlf_line_ends() {
        for content in [
            D.to_string(),
            format!("{D}\n"),
            format!("{D}\r\n"),
            format!("{D}  a.tar\r\n"),
            format!("{D} *a.tar\r\n"),
            format!("{}\r\n", D.to_ascii_uppercase()),
        ] {
            assert_eq!(
                parse_marker(&content, "a.tar").as_deref(),
                Ok(D),
                "{content:?}"
            );
        }
    }

    #[test]
    fn says_why_it_refuses() {
        let why = |content: String| parse_marker(&content, "a.tar").unwrap_err().to_string();
        assert!(why(format!("{D}\r")).contains("carriage return"));
        assert!(why(format!("{D}\r\r\n")).contains("carriage return"));
        assert!(why(format!("{D}  a.tar\r")).contains("carriage return"));
        assert!(why(format!("{D}\n\n")).contains("single line"));
        assert!(why(format!("{D}\r\n{D}\r\n")).contains("single line"));
        assert!(why(format!("{D} ")).contains("or the digest alone"));
        assert!(why(format!("{D}0")).contains("or the digest alone"));
        assert!(why(format!("{D}  b.tar\r\n")).contains("found \"b.tar\""));
        assert!(why(D[..63].to_string()).contains("64 hex digits"));
    }

    #[test]
    fn rejects_others() {
        assert!(parse_marker("", "a.tar").is_err());
        assert!(parse_marker(&format!("{D}  b.tar"), "a.tar").is_err());
        assert!(parse_marker(&format!("{D} a.tar"), "a.tar").is_err());
        assert!(parse_marker(&format!("{}  a.tar", &D[..63]), "a.tar").is_err());
        assert!(parse_marker(&format!("{D}  a.tar\n{D}  a.tar\n"), "a.tar").is_err());
        assert!(parse_marker("é", "a.tar").is_err());
        assert!(parse_marker("\n", "a.tar").is_err());
        assert!(parse_marker(&format!(" {D}"), "a.tar").is_err());
        assert!(parse_marker(&format!("{D}\t"), "a.tar").is_err());
    }
}
