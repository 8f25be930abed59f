//! Keeping the command logs in `state/logs/` bounded.
//!
//! A daemon that `start` launches inherits the log's descriptor and keeps
//! writing to it for ever, so the file can neither be renamed away (the
//! daemon would go on writing to the renamed file) nor replaced. Each pass
//! therefore rotates copytruncate-style: a `*.log` larger than
//! `switcher.max_log_size` is copied to `<name>.1` (replacing the previous
//! one, atomically) and then truncated in place. [`crate::command`] opens
//! the logs with O_APPEND, and the daemon's descriptor shares that open
//! file, so its next write lands at the new end rather than at its old
//! offset (which would leave a hole as large as the old log). Lines written
//! between the copy and the truncation are lost: the price of copytruncate,
//! as with logrotate's.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use anyhow::Context;
use deploy_root::{Config, Layout};

/// The suffix of the one rotated copy kept.
pub const ROTATED_SUFFIX: &str = ".1";

/// Rotates every `*.log` in state/logs/ over the size limit; returns the
/// names rotated. A missing folder has nothing to rotate.
pub fn rotate(config: &Config, layout: &Layout) -> anyhow::Result<Vec<String>> {
    let dir = layout.logs();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut rotated = Vec::new();
    for entry in rd {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".log") || name.starts_with('.') {
            continue;
        }
        // Not a symlink: the switcher truncates only files it made.
        let meta = fs::symlink_metadata(entry.path())
            .with_context(|| format!("inspecting {}", entry.path().display()))?;
        if !meta.is_file() || meta.len() <= config.switcher.max_log_size {
            continue;
        }
        rotate_one(&dir, name).with_context(|| format!("rotating {}", dir.join(name).display()))?;
        tracing::info!("rotated state/logs/{name} ({} bytes)", meta.len());
        rotated.push(name.to_string());
    }
    Ok(rotated)
}

fn rotate_one(dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut src = File::open(&path)?;
    let tmp = dir.join(format!(".{name}{ROTATED_SUFFIX}.tmp"));
    let mut out = File::create(&tmp)?;
    io::copy(&mut src, &mut out)?;
    drop(out);
    fs::rename(&tmp, dir.join(format!("{name}{ROTATED_SUFFIX}")))?;
    // Truncate through a descriptor of our own: the daemon's stays valid.
    OpenOptions::new().write(true).open(&path)?.set_len(0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_big_log_is_copied_and_truncated_while_a_writer_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = Config::parse(
            &root.join("cutover.toml"),
            &format!(
                "root = {:?}\n[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 8080\n\
                 [switcher]\nmax_log_size = \"1 KiB\"\n",
                root.display().to_string()
            ),
        )
        .unwrap();
        let layout = Layout::new(&config);
        layout.ensure().unwrap();
        let log = layout.logs().join("backend-start.log");
        // The "daemon": an O_APPEND descriptor held across the rotation.
        let mut daemon = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        daemon.write_all(&[b'a'; 2000]).unwrap();
        fs::write(layout.logs().join("small.log"), b"small").unwrap();
        fs::write(layout.logs().join("other.txt"), [b'x'; 2000]).unwrap();

        assert_eq!(rotate(&config, &layout).unwrap(), ["backend-start.log"]);
        assert_eq!(fs::metadata(&log).unwrap().len(), 0);
        assert_eq!(
            fs::read(layout.logs().join("backend-start.log.1")).unwrap(),
            vec![b'a'; 2000]
        );
        daemon.write_all(b"after\n").unwrap();
        assert_eq!(fs::read(&log).unwrap(), b"after\n", "no hole");
        // Under the limit, or not a .log: left alone; nothing twice.
        assert!(rotate(&config, &layout).unwrap().is_empty());
        assert_eq!(fs::read(layout.logs().join("small.log")).unwrap(), b"small");
        assert!(!Path::new(&layout.logs().join("other.txt.1")).exists());
    }
}
