//! Headless Chromium for tests: Debian's package, a fresh profile per run,
//! no network beyond what the page itself asks for.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::target_dir;
use crate::packages;

/// The chromium binary, installed when missing (see [`packages::ensure`]).
pub fn binary() -> PathBuf {
    packages::ensure("chromium", &["chromium"])
}

/// Where tests keep what a person may want to look at (screenshots):
/// `<target>/test-output/`.
pub fn output_dir() -> PathBuf {
    let dir = target_dir().join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The viewer's zone for [`dump_dom`] and [`screenshot`]: not UTC, to show
/// that local times are added.
const VIEWER_TZ: &str = "Asia/Kolkata";

/// Runs headless chromium with `args` on `url` in the zone `tz` (the
/// machine's when `None`); returns stdout. Panics with the command and its
/// output when it fails or hangs.
fn run(args: &[String], url: &str, tz: Option<&str>) -> String {
    let bin = binary();
    let profile = tempfile::Builder::new()
        .prefix("cutover-chromium-")
        .tempdir()
        .unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url);
    if let Some(tz) = tz {
        cmd.env("TZ", tz);
    }
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "command: {shown}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM after the page loaded and its scripts ran.
pub fn dump_dom(url: &str) -> String {
    run(&["--dump-dom".to_string()], url, Some(VIEWER_TZ))
}

/// The DOM after load in a `width`×900 window, in the zone `tz` (the
/// machine's when `None`).
pub fn dump_dom_at(url: &str, width: u32, tz: Option<&str>) -> String {
    run(
        &[
            "--dump-dom".to_string(),
            format!("--window-size={width},900"),
            "--hide-scrollbars".to_string(),
        ],
        url,
        tz,
    )
}

/// A screenshot of `url` at `width`×`height` into `path`.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    run(
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_string(),
        ],
        url,
        Some(VIEWER_TZ),
    );
    assert!(
        std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
        "no screenshot at {}",
        path.display()
    );
}
