//! Debian packages the tests need (nginx, chromium): found, or installed
//! with apt-get when the tests run as root, or a failure that says which
//! command installs them. Never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Serializes installs within one test process (apt-get takes dpkg's lock;
/// other processes wait for it through `DPkg::Lock::Timeout`).
static INSTALL: Mutex<()> = Mutex::new(());

/// The path of `program`, installing the first of `packages` that exists
/// when it is missing and this process is root.
pub fn ensure(program: &str, packages: &[&str]) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = find(program) {
        return path;
    }
    let wanted = packages.join(" or ");
    if !is_root() {
        panic!(
            "{program} is missing and the tests are not running as root, so they cannot install it; \
             install it with: sudo apt-get install {} (or run ./tests/run as root)",
            packages.first().copied().unwrap_or(program)
        );
    }
    let apt = |args: &[&str]| {
        let out = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("cannot run apt-get to install {wanted}: {e}"));
        (
            out.status.success(),
            format!(
                "apt-get {}\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (updated, log) = apt(&["update", "-qq"]);
    assert!(updated, "apt-get update failed:\n{log}");
    let mut tried = Vec::new();
    for package in packages {
        let (ok, log) = apt(&["install", "-y", "-q", "--no-install-recommends", package]);
        // A package that starts its service on install must not keep a
        // port busy: the tests start their own nginx.
        let _ = Command::new("service").args(["nginx", "stop"]).output();
        if ok {
            if let Some(path) = find(program) {
                return path;
            }
        }
        tried.push(log);
    }
    panic!(
        "{program} is missing and installing {wanted} did not provide it:\n{}",
        tried.join("\n")
    );
}

/// `program` on PATH or in the sbin folders (not on a normal user's PATH).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (`id -u`, to need no libc binding).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `program` (from Debian's `package`, installed when missing as root,
/// or a failure naming it) in `dir` with `LC_ALL=C`; panics with its stderr
/// unless it exits 0. Returns its stdout.
#[track_caller]
pub fn run_tool(dir: &Path, program: &str, package: &str, args: &[&str]) -> Vec<u8> {
    let path = ensure(program, &[package]);
    let out = Command::new(&path)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (package {package}): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
