//! The page's Content-Security-Policy: only the page's own inline script
//! and style may run, named by their SHA-256, and nothing may load.
//!
//! Escaping is the first defence; this is the second: even if some text
//! slipped through unescaped, a browser would refuse any script or style
//! that is not byte for byte ours, and any request to anywhere.

/// The policy for a page whose only inline script is `script` and only
/// inline style is `style` (each exactly as between its tags).
pub fn policy(script: &str, style: &str) -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
        hash_source(script),
        hash_source(style)
    )
}

/// `sha256-<base64 of the digest>`, the CSP form of a hash.
pub fn hash_source(text: &str) -> String {
    format!("sha256-{}", base64(&sha256(text.as_bytes())))
}

/// The raw SHA-256 of `bytes`, through the workspace's one SHA-256 helper.
fn sha256(bytes: &[u8]) -> Vec<u8> {
    // Reading from a slice cannot fail; the fallback only satisfies the
    // type, and a wrong hash would show at once (the script would not run).
    let hex = deploy_root::digest::sha256_reader(bytes).unwrap_or_default();
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Standard base64 with padding (RFC 4648, section 4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(s & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn hash_of_known_text() {
        // printf 'test' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            hash_source("test"),
            "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
        );
    }

    #[test]
    fn policy_allows_nothing_else() {
        let p = policy("a()", "b{}");
        assert!(p.starts_with("default-src 'none';"), "{p}");
        assert!(!p.contains("unsafe"), "{p}");
        assert_eq!(p.matches("'sha256-").count(), 2, "{p}");
    }
}
