//! The Debian package, as ops would use it: built with cargo-deb, installed
//! with dpkg on this Debian, run from /usr/bin, driven by Debian's real cron,
//! and purged.
//!
//! It changes the machine (a package, a system user, /srv/cutover), so it
//! runs only as root and refuses to touch a machine where cutover is already
//! installed or /srv/cutover already exists.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::bins::{target_dir, workspace_root};
use cutover_tests::packages;
use cutover_tests::ArchiveBuilder;

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    println!(
        "$ {shown}\nexit: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "the command above failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode_owner(path: &str) -> (u32, String, String) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let user = nix::unistd::User::from_uid(meta.uid().into())
        .unwrap()
        .unwrap()
        .name;
    let group = nix::unistd::Group::from_gid(meta.gid().into())
        .unwrap()
        .unwrap()
        .name;
    (meta.mode() & 0o7777, user, group)
}

/// The nginx site and the systemd drop-in that postinst renders.
const SITE: &str = "/etc/nginx/sites-available/cutover";
const DROPIN: &str = "/etc/systemd/system/cutover.service.d/paths.conf";

/// Purges the package and the root it made, whatever the test's outcome.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "cutover"]).output();
        let _ = fs::remove_dir_all("/srv/cutover");
        let _ = fs::remove_file(SITE);
        let _ = fs::remove_file(DROPIN);
    }
}

/// Debian's cron, started by the test in the foreground (`cron -f`) as its
/// own child, and ended by that child's pid only. Where the host already
/// runs cron, ours exits at once ("already running") and the host's cron
/// runs /etc/cron.d/cutover just the same; it is never touched.
struct OwnCron(Option<Child>);

impl OwnCron {
    fn start() -> OwnCron {
        let mut child = Command::new("cron")
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start cron -f: {e}"));
        std::thread::sleep(Duration::from_millis(500));
        match child.try_wait() {
            Ok(None) => {
                println!("started cron -f, pid {}", child.id());
                OwnCron(Some(child))
            }
            status => {
                println!("cron -f exited at once ({status:?}): the host's cron is running");
                OwnCron(None)
            }
        }
    }
}

impl Drop for OwnCron {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn deb_builds_installs_runs_from_cron_and_purges() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the package test installs a .deb with dpkg: run ./tests/run as root"
    );
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "cutover"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("installed"),
        "cutover is installed on this machine; the package test installs and purges it, so it refuses to run here"
    );
    assert!(
        !Path::new("/srv/cutover").exists(),
        "/srv/cutover exists on this machine; the package test would replace it, so it refuses to run here"
    );
    for path in [SITE, DROPIN] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists on this machine; the package writes and purges it, so the test refuses to run here"
        );
    }

    // Build: release binaries, then the .deb from them.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ok(Command::new(&cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "--workspace",
            "--bins",
            // The .deb carries the store and the fleet (docs/fleet.md).
            "--features",
            cutover_tests::bins::S3_FEATURES,
            "--target-dir",
        ])
        .arg(target_dir()));
    let out_dir = tempfile::tempdir().unwrap();
    let deb = out_dir.path().join("cutover.deb");
    ok(Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["deb", "-p", "cutover-tests", "--no-build", "--output"])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", target_dir()));

    // Install.
    let _cleanup = Installed;
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    let version = ok(Command::new("/usr/bin/collector").arg("--version"));
    assert!(version.starts_with("collector "), "{version}");
    ok(Command::new("/usr/bin/artifact-name").arg("--version"));
    ok(Command::new("getent").args(["passwd", "cutover"]));
    ok(Command::new("getent").args(["group", "cutover-upload"]));
    assert_eq!(
        mode_owner("/srv/cutover/drop"),
        (0o3775, "cutover".into(), "cutover-upload".into())
    );
    for dir in [
        "staging",
        "quarantine",
        "releases",
        "current",
        "shared",
        "state",
    ] {
        let path = format!("/srv/cutover/{dir}");
        assert_eq!(
            mode_owner(&path),
            (0o755, "cutover".into(), "cutover".into()),
            "{path}"
        );
    }
    let conffiles = ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "cutover"]));
    assert!(
        conffiles.contains("/etc/cutover/cutover.toml"),
        "the config is a conffile: {conffiles}"
    );
    for file in [
        "/etc/cron.d/cutover",
        "/lib/systemd/system/cutover.service",
        "/lib/systemd/system/cutover.timer",
        "/lib/systemd/system/cutover-watch.service",
        "/usr/share/man/man1/switcher.1.gz",
        "/usr/share/man/man1/collector.1.gz",
        "/usr/share/bash-completion/completions/switcher",
    ] {
        assert!(Path::new(file).exists(), "{file} is not installed");
    }

    // postinst rendered the nginx site and the unit's drop-in from the
    // installed config with the installed switcher: the site is the one
    // shipped as the example, the drop-in lets the unit write the root.
    if Path::new("/etc/nginx/sites-available").is_dir() {
        assert_eq!(
            fs::read_to_string(SITE).unwrap_or_else(|e| panic!("{SITE}: {e}")),
            fs::read_to_string(workspace_root().join("deploy/nginx/cutover.conf")).unwrap(),
            "postinst's {SITE} is not the shipped rendering of the example config"
        );
    }
    let dropin = fs::read_to_string(DROPIN).unwrap_or_else(|e| panic!("{DROPIN}: {e}"));
    assert!(
        dropin.contains("\nReadWritePaths=\nReadWritePaths=/srv/cutover\n"),
        "{dropin}"
    );

    // switcher check runs from /usr/bin against the installed config: the
    // folders are right; the example's commands and nginx site are the
    // site's to set up, so problems are reported (exit 5), not a crash or a
    // config error.
    let check = run(Command::new("/usr/bin/switcher").arg("check"));
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        matches!(check.status.code(), Some(0 | 5)),
        "switcher check: {check:?}"
    );
    assert!(
        report.contains("ok    drop /srv/cutover/drop is writable by group cutover-upload"),
        "{report}"
    );
    assert!(!report.contains("FAIL  staging"), "{report}");

    // Debian's cron runs the installed /etc/cron.d/cutover as the cutover
    // user: an artifact dropped now is staged within two minutes.
    packages::ensure("cron", &["cron"]);
    ArchiveBuilder::demo("full", "1.0.0").drop_into(Path::new("/srv/cutover/drop"));
    let cron = OwnCron::start();
    let staged = Path::new("/srv/cutover/staging")
        .join(ArchiveBuilder::demo("full", "1.0.0").name().file_name());
    // The collector stages the artifact, then writes its state: wait for
    // both, so that the state is not read between the two.
    let collector_state = Path::new("/srv/cutover/state/collector.json");
    let recorded =
        || fs::read_to_string(collector_state).is_ok_and(|state| state.contains("full_"));
    let start = Instant::now();
    while !(staged.exists() && recorded()) && start.elapsed() < Duration::from_secs(130) {
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        staged.exists(),
        "cron did not run the collector within two minutes; /srv/cutover:\n{}",
        cutover_tests::sandbox::listing(Path::new("/srv/cutover"))
    );
    assert!(
        recorded(),
        "cron's collector recorded Last: {:?}",
        fs::read_to_string(collector_state)
    );
    println!("cron staged the artifact after {:?}", start.elapsed());
    drop(cron);

    // Purge: the package's files and config go; releases and state stay.
    ok(Command::new("dpkg").args(["--purge", "cutover"]));
    assert!(!Path::new("/usr/bin/collector").exists());
    assert!(
        !Path::new("/etc/cutover").exists(),
        "/etc/cutover should go with purge"
    );
    assert!(!Path::new("/etc/cron.d/cutover").exists());
    assert!(!Path::new(DROPIN).exists(), "purge removes the drop-in");
    assert!(!Path::new(SITE).exists(), "purge removes the site it wrote");
    assert!(
        staged.exists(),
        "purge keeps the deploy root's data unless asked"
    );
}
