//! The shape of the workspace: the VM's binaries stay light.
//!
//! The contract crate (`artifact-name`) is a dependency of the collector and
//! the switcher; the packing, upload and HTTP crates that CI's `deliver`
//! needs belong to crates/deliver alone, and TLS (rustls, for https
//! notification targets) to the switcher.

use std::process::Command;

use cutover_tests::bins::workspace_root;

/// Crates only `deliver` (and the switcher's unpacker) may need.
const DELIVER_ONLY: [&str; 5] = ["tar", "zstd", "flate2", "ureq", "walkdir"];

/// TLS, which only the switcher's notifications need (https targets).
const TLS: [&str; 4] = ["rustls", "rustls-webpki", "ring", "webpki-roots"];

/// The names of the crates `package` depends on (normal edges only).
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_collector_and_the_contract_pull_in_no_packing_or_http_crates() {
    for package in ["collector", "artifact-name"] {
        let deps = normal_dependencies(package);
        assert!(
            deps.iter().any(|d| d == "chrono"),
            "cargo tree -p {package} lists no chrono: is the output read right?\n{deps:?}"
        );
        let found: Vec<&str> = DELIVER_ONLY
            .into_iter()
            .filter(|c| deps.iter().any(|d| d == c))
            .collect();
        assert!(
            found.is_empty(),
            "{package} depends on {found:?}, which only deliver needs:\n{deps:?}"
        );
        let tls: Vec<&str> = TLS
            .into_iter()
            .filter(|c| deps.iter().any(|d| d == c))
            .collect();
        assert!(
            tls.is_empty(),
            "{package} depends on {tls:?}, which only the switcher's notifications need:\n{deps:?}"
        );
    }
    // The switcher does need rustls (https notification targets): were it
    // gone, the check above would prove nothing about the names.
    let switcher = normal_dependencies("switcher");
    assert!(
        switcher.iter().any(|d| d == "rustls"),
        "cargo tree -p switcher lists no rustls:\n{switcher:?}"
    );
    // The contract crate has no command line either.
    let deps = normal_dependencies("artifact-name");
    for c in ["clap", "clap_complete", "clap_mangen", "toml", "anyhow"] {
        assert!(!deps.iter().any(|d| d == c), "artifact-name depends on {c}");
    }
}
