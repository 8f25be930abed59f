//! Streaming SHA-256, for checking an artifact against its marker.

use std::fs::File;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The lower-case hex SHA-256 of everything `reader` yields.
///
/// Reads in 1 MiB blocks, so memory stays constant whatever the size.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The lower-case hex SHA-256 of an open file, read from where it stands.
pub fn sha256_file(file: &File) -> io::Result<String> {
    sha256_reader(file)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        assert_eq!(
            super::sha256_reader(&b"test"[..]).ok().as_deref(),
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
    }
}
