//! The files ops install on the VM: the cron line, the systemd units, the
//! sudoers snippet — each checked by the tool that will read it.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use cutover_tests::bins::{bin, workspace_root};
use cutover_tests::net::get;
use cutover_tests::{ArchiveBuilder, Sandbox};

/// deploy/cron/cutover, run exactly as cron runs it: `env -i` with only the
/// variables the file sets (cron's SHELL and PATH among them), the job's
/// command through /bin/sh. The binaries are linked into a folder at the
/// front of cron's PATH instead of being installed in /usr/bin, and the job
/// runs as the test's user instead of `cutover`.
#[test]
fn cron_line_completes_a_pass_in_crons_environment() {
    let sandbox = Sandbox::new();
    sandbox.write_demo_config("[switcher]\nverify_timeout = \"10s\"\n");
    ArchiveBuilder::demo("full", "1.0.0").drop_into(&sandbox.drop_dir());

    let bin_dir = sandbox.dir().join("usr-bin");
    fs::create_dir_all(&bin_dir).unwrap();
    for b in ["collector", "switcher"] {
        symlink(bin(b), bin_dir.join(b)).unwrap();
    }

    let cron = fs::read_to_string(workspace_root().join("deploy/cron/cutover")).unwrap();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut jobs = Vec::new();
    for line in cron
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.split_once('=') {
            Some((name, value)) if !name.contains(' ') => {
                env.push((name.to_string(), value.trim_matches('"').to_string()))
            }
            _ => jobs.push(line.to_string()),
        }
    }
    assert_eq!(
        jobs.len(),
        1,
        "one job line expected in deploy/cron/cutover:\n{cron}"
    );
    let fields: Vec<&str> = jobs[0].splitn(7, ' ').collect();
    assert_eq!(&fields[..5], ["*"; 5], "every minute: {}", jobs[0]);
    assert_eq!(
        fields[5], "cutover",
        "runs as the cutover user: {}",
        jobs[0]
    );
    let command = fields[6];

    let mut cmd = Command::new("env");
    cmd.arg("-i");
    for (name, value) in &env {
        let value = match name.as_str() {
            "PATH" => format!("{}:{value}", bin_dir.display()),
            "CUTOVER_CONFIG" => sandbox.config.display().to_string(),
            _ => value.clone(),
        };
        cmd.arg(format!("{name}={value}"));
    }
    assert!(
        env.iter().any(|(n, _)| n == "SHELL"),
        "the cron file sets SHELL"
    );
    assert!(
        env.iter().any(|(n, _)| n == "PATH"),
        "the cron file sets PATH"
    );
    cmd.args(["/bin/sh", "-c", command]);
    let run = sandbox.run_cmd(&mut cmd);
    run.success();

    let current = fs::read_link(sandbox.path("current/backend")).unwrap_or_default();
    assert!(
        current.to_string_lossy().contains("1.0.0"),
        "current/backend should point to v1 after the cron line ran\n{run}"
    );
    let (code, body) = get(sandbox.backend_port, "/api/version").unwrap();
    assert_eq!((code, body.trim()), (200, "backend 1.0.0"), "\n{run}");
}

/// deploy/systemd's units pass `systemd-analyze verify` (the binaries'
/// paths are pointed at the built ones, since they are not installed here).
#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let src = workspace_root().join("deploy/systemd");
    let mut units = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace(
                "/usr/bin/collector",
                &bin("collector").display().to_string(),
            )
            .replace("/usr/bin/switcher", &bin("switcher").display().to_string())
            .replace(
                "/srv/cutover/current/backend/bin/catalog-backend",
                "/bin/true",
            );
        fs::write(dir.path().join(&name), text).unwrap();
        units.push(dir.path().join(&name));
    }
    assert!(
        units.len() >= 3,
        "expected cutover.service, cutover.timer and a backend unit"
    );
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("systemd-analyze (Debian's systemd package; tests/run installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // verify exits 0 for some warnings; none is acceptable.
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Failed to connect to bus") && !l.trim().is_empty())
        .collect();
    assert!(
        warnings.is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

/// deploy/sudoers/cutover parses (`visudo -c`).
#[test]
fn sudoers_snippet_parses() {
    let path = workspace_root().join("deploy/sudoers/cutover");
    let out = Command::new("visudo")
        .arg("-cf")
        .arg(&path)
        .output()
        .expect("visudo (Debian's sudo package; tests/run installs it)");
    assert!(
        out.status.success(),
        "visudo -cf {} failed:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
