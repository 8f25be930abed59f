//! Streaming SHA-256, for checking an artifact against its marker.
//!
//! [`Sha256Reader`] hashes what passes through it, so that the switcher can
//! check an archive in the same read that unpacks it: the bytes checked are
//! then exactly the bytes unpacked, whoever writes the file meanwhile.

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

/// A reader that hashes every byte it yields: wrap the file, let the
/// consumer read through it, then [`Sha256Reader::finish`] reads what the
/// consumer left (trailing blocks, bytes past the end of a compressed
/// stream) and returns the digest of the whole input.
#[derive(Debug)]
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Sha256Reader<R> {
    /// Starts hashing what `inner` yields from where it stands.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads the rest of the input and returns the lower-case hex SHA-256
    /// of everything read through this reader.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
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

    #[test]
    fn the_reader_hashes_what_it_yields_and_what_was_left() {
        use std::io::Read;
        let mut r = super::Sha256Reader::new(&b"test"[..]);
        let mut first = [0u8; 2];
        assert!(r.read_exact(&mut first).is_ok());
        assert_eq!(&first, b"te");
        assert_eq!(
            r.finish().ok().as_deref(),
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
    }
}
