//! Man pages and shell completions are generated from the binaries' clap
//! definitions (`--generate KIND`) and committed under deploy/ for
//! packaging. This test fails when a committed file drifts from what the
//! binary generates; `CUTOVER_UPDATE_GENERATED=1 ./tests/run generated`
//! rewrites them.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use cutover_tests::bins::{bin, workspace_root};

/// Every binary, and where each generated file lives.
const BINARIES: [&str; 3] = ["collector", "switcher", "artifact-name"];

fn files(name: &str) -> [(&'static str, PathBuf); 4] {
    let deploy = workspace_root().join("deploy");
    [
        ("man", deploy.join(format!("man/{name}.1"))),
        (
            "complete-bash",
            deploy.join(format!("completions/{name}.bash")),
        ),
        ("complete-zsh", deploy.join(format!("completions/_{name}"))),
        (
            "complete-fish",
            deploy.join(format!("completions/{name}.fish")),
        ),
    ]
}

#[test]
fn man_pages_and_completions_match_the_binaries() {
    let update = std::env::var_os("CUTOVER_UPDATE_GENERATED").is_some();
    let mut drifted = Vec::new();
    for name in BINARIES {
        for (kind, path) in files(name) {
            let out = Command::new(bin(name))
                .args(["--generate", kind])
                .output()
                .unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{name} --generate {kind} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if update {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, &out.stdout).unwrap();
            } else if fs::read(&path).ok().as_deref() != Some(out.stdout.as_slice()) {
                drifted.push(path.display().to_string());
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "these generated files differ from what the binaries generate (or are missing):\n  {}\n\
         regenerate them with: CUTOVER_UPDATE_GENERATED=1 ./tests/run generated",
        drifted.join("\n  ")
    );
}

/// The man pages say what each binary's --help says about exit codes, by
/// the numbers of the one table (README, `artifact_name::exit_codes`).
#[test]
fn man_pages_carry_the_exit_codes() {
    use artifact_name::exit_codes as codes;
    for (name, code) in [
        ("artifact-name", codes::UPLOAD_FAILED),
        ("artifact-name", codes::WAIT_TIMED_OUT),
        ("artifact-name", codes::CANCELLED_SIGTERM),
        ("switcher", codes::ROLLBACK_FAILED),
        ("switcher", codes::CHECK_FAILED),
    ] {
        let out = Command::new(bin(name))
            .args(["--generate", "man"])
            .output()
            .unwrap();
        let man = String::from_utf8_lossy(&out.stdout);
        assert!(
            man.contains(&format!(" {code} ")),
            "{name}'s man page should list exit code {code}:\n{man}"
        );
    }
    for name in ["collector", "switcher"] {
        let out = Command::new(bin(name))
            .args(["--generate", "man"])
            .output()
            .unwrap();
        let man = String::from_utf8_lossy(&out.stdout);
        assert!(
            man.contains("78"),
            "{name}'s man page should list exit code 78:\n{man}"
        );
    }
}
