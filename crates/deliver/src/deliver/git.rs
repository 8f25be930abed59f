//! Asking git, for a version or a branch nobody gave.

use std::path::Path;
use std::process::Command;

/// `git <args>` run in the first of `dirs` where it succeeds: its trimmed
/// stdout, or why it failed everywhere.
pub fn ask(args: &[&str], dirs: &[&Path]) -> Result<String, String> {
    let mut why = Vec::new();
    for dir in dirs {
        let out = Command::new("git").args(args).current_dir(dir).output();
        match out {
            Ok(out) if out.status.success() => {
                return match String::from_utf8(out.stdout) {
                    Ok(s) => Ok(s.trim().to_string()),
                    Err(_) => Err(format!("git {} printed non-UTF-8", args.join(" "))),
                };
            }
            Ok(out) => why.push(format!(
                "in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => why.push(format!("cannot run git: {e}")),
        }
    }
    Err(format!("git {} failed {}", args.join(" "), why.join("; ")))
}
