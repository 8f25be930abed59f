//! The workspace's binaries, for tests of any package.
//!
//! `CARGO_BIN_EXE_<name>` is set only for tests of the package that owns the
//! binary, and the end-to-end tests need all of them. So the first call in a
//! test process runs `cargo build --bins --workspace` (a no-op when nothing
//! changed; cargo releases its lock while tests run) and returns paths in
//! the target folder. `CUTOVER_BIN_DIR` overrides this with a folder of
//! prebuilt binaries (e.g. installed from the .deb), and
//! `CUTOVER_FAULT_BIN_DIR` likewise for the fault-injection build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of a workspace binary, built fresh.
pub fn bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("CUTOVER_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let target = target_dir();
        cargo_build(&target, &[]);
        target.join("debug")
    })
    .join(name)
}

/// The path of a workspace binary built with fault injection (kill points),
/// in its own target folder so that it never replaces the normal build.
pub fn fault_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Prebuilt (tests/shifted-clock: cargo must not run under faketime).
        if let Some(dir) = std::env::var_os("CUTOVER_FAULT_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let target = target_dir().join("fault-injection");
        cargo_build(
            &target,
            &[
                "--features",
                "collector/fault-injection,switcher/fault-injection",
            ],
        );
        target.join("debug")
    })
    .join(name)
}

/// The features that build the binaries with the store and the fleet
/// (docs/fleet.md); the .deb is built with them.
pub const S3_FEATURES: &str = "collector/s3,switcher/s3,deliver/s3";

/// The path of a workspace binary built with the store and the fleet (the
/// `s3` features) and fault injection, in its own target folder: the fleet
/// tests use these. `CUTOVER_FLEET_BIN_DIR` overrides it with prebuilt ones.
pub fn fleet_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("CUTOVER_FLEET_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let target = target_dir().join("fleet");
        let features = format!("{S3_FEATURES},collector/fault-injection,switcher/fault-injection");
        cargo_build(&target, &["--features", &features]);
        target.join("debug")
    })
    .join(name)
}

/// The workspace's target folder, found from this test executable's path
/// (`<target>/debug/deps/<test>`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent())
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The workspace root (where the top Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_build(target: &Path, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--bins", "--workspace", "--target-dir"])
        .arg(target)
        .args(extra);
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
