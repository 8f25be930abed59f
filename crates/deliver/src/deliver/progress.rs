//! Progress for people: rsync's live meter on a terminal, plain lines in CI
//! logs (where a meter redrawn with '\r' turns into noise).

use std::fmt;
use std::io::IsTerminal;

/// Where progress goes: always stderr, since stdout carries the name.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
}

impl Progress {
    /// Progress for this process's stderr.
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// One line of progress.
    pub fn line(&self, message: fmt::Arguments<'_>) {
        eprintln!("artifact-name: {message}");
    }

    /// The rsync options that show progress: a live meter on a terminal,
    /// nothing in logs (the lines before and after say enough).
    pub fn rsync_args(&self) -> &'static [&'static str] {
        if self.tty {
            &["--info=progress2"]
        } else {
            &[]
        }
    }
}

/// A size for people, e.g. "12.3 MiB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(5 * 1024 * 1024), "5.0 MiB");
    }
}
