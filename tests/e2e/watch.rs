//! `switcher watch`: an upload runs within seconds without cron, whatever
//! happens to the watcher (killed mid-pass, stopped mid-pass) or to the drop
//! folder (removed, renamed, made again).
//!
//! Each test starts its own watcher by pid and ends it by pid. The status
//! period is an hour, so that only inotify can explain a deploy within
//! seconds; no test counts rounds, only what runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cutover_tests::archive::epoch;
use cutover_tests::bins::{bin, fault_bin};
use cutover_tests::net::get;
use cutover_tests::sshd::Sshd;
use cutover_tests::{ArchiveBuilder, Sandbox};

/// How long an upload may take to run (the issue says "seconds").
const WITHIN: Duration = Duration::from_secs(30);

/// A sandbox with the demo backend, and a status period no test waits for.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write_demo_config(
        "[switcher]\nverify_timeout = \"5s\"\ncommand_timeout = \"30s\"\n\n[status]\nperiod = \"1h\"\n",
    );
    sb
}

/// A running `switcher watch`, killed (by pid) if the test did not stop it.
struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    /// Starts `switcher watch -vv` (`exe`: the normal or the fault build)
    /// with `env` on the child.
    fn start(sb: &Sandbox, exe: &Path, env: &[(&str, &str)]) -> Watcher {
        let log = sb.dir().join(format!("watch-{}.log", unique()));
        let mut cmd = Command::new(exe);
        cmd.args(["watch", "-vv"])
            .env("CUTOVER_CONFIG", &sb.config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        Watcher { child, log }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// Its log so far.
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for it to exit.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Its state letter in /proc/<pid>/stat (`T` when stopped).
    fn state(&self) -> char {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('?')
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A number unique within this test process (log names).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What the backend answers at /api/version.
fn served(sb: &Sandbox) -> String {
    match get(sb.backend_port, "/api/version") {
        Ok((200, body)) => body.trim().to_string(),
        Ok((code, body)) => format!("HTTP {code}: {body}"),
        Err(e) => format!("no answer: {e}"),
    }
}

/// Waits up to [`WITHIN`] for the backend to serve `version`; returns how
/// long it took, or panics with the watcher's log and the tree.
#[track_caller]
fn wait_serving(sb: &Sandbox, w: &Watcher, version: &str) -> Duration {
    let want = format!("backend {version}");
    let start = Instant::now();
    loop {
        let got = served(sb);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < WITHIN,
            "expected {want:?} within {WITHIN:?}, got {got:?}\n--- watcher log\n{}\n--- tree\n{}",
            w.log(),
            sb.listing()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deploys v1 the cron way, so that the tests start from a running release.
fn deploy_first(sb: &Sandbox) {
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&sb.drop_dir());
    sb.run("collector", &[]).success();
    sb.run("switcher", &[]).success();
}

/// The state a finished pass leaves: `version` recorded as running, no
/// journal. The backend answers before its pass has recorded it, so this
/// waits (bounded) for the pass to end.
#[track_caller]
fn assert_settled(sb: &Sandbox, version: &str, w: &Watcher) {
    let start = Instant::now();
    let journal = sb.path("state/journal.json");
    while journal.exists() && start.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !journal.exists(),
        "a journal is left: the pass was not finished or undone
{}
{}",
        w.log(),
        sb.listing()
    );
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["components"]["backend"]["running"]["version"],
        version,
        "{state:#}\n{}",
        w.log()
    );
}

/// A build output folder for `artifact-name deliver --from`.
fn build(sb: &Sandbox, version: &str) -> PathBuf {
    let dir = sb.dir().join(format!("build-{version}"));
    fs::create_dir_all(dir.join("backend")).unwrap();
    fs::create_dir_all(dir.join("frontend")).unwrap();
    fs::write(dir.join("backend/VERSION"), format!("{version}\n")).unwrap();
    fs::write(dir.join("frontend/VERSION"), format!("{version}\n")).unwrap();
    fs::write(
        dir.join("frontend/index.html"),
        format!("<!doctype html><p>frontend {version}</p>\n"),
    )
    .unwrap();
    dir
}

#[test]
fn an_upload_over_ssh_runs_within_seconds_without_cron() {
    let sb = sandbox();
    let sshd = Sshd::start();
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&sb.drop_dir());
    let w = Watcher::start(&sb, &bin("switcher"), &[]);
    // What waited in the drop folder is taken at start.
    wait_serving(&sb, &w, "1.0.0");

    let from = build(&sb, "2.0.0");
    let time = (epoch() + chrono::Duration::minutes(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut args: Vec<String> = ["deliver", "--kind", "full", "--version", "2.0.0"]
        .map(String::from)
        .to_vec();
    args.extend(["--branch", "master", "--time", &time, "--retries", "0"].map(String::from));
    args.push("--from".into());
    args.push(from.display().to_string());
    args.push("--out".into());
    args.push(sb.dir().join("dist").display().to_string());
    args.push("--target".into());
    args.push(sshd.target(&sb.drop_dir()));
    args.extend(sshd.deliver_args());
    let delivered = sb.run_cmd(
        Command::new(bin("artifact-name"))
            .args(&args)
            .env("CUTOVER_SSH", sshd.ssh_command()),
    );
    assert!(
        delivered.code() == 0,
        "{delivered}\n--- sshd log\n{}",
        sshd.log()
    );
    let took = wait_serving(&sb, &w, "2.0.0");
    println!("delivered -> serving 2.0.0: {took:?}");
    assert_settled(&sb, "2.0.0", &w);
}

#[test]
fn a_watcher_killed_mid_pass_converges_when_started_again() {
    let sb = sandbox();
    deploy_first(&sb);
    let mut killed = Watcher::start(
        &sb,
        &fault_bin("switcher"),
        &[("CUTOVER_FAULT_POINT", "switcher:after-stop")],
    );
    ArchiveBuilder::demo("full", "2.0.0")
        .minute(2)
        .drop_into(&sb.drop_dir());
    let status = killed.wait(WITHIN).unwrap_or_else(|| {
        panic!(
            "the fault build should have killed itself at after-stop\n{}",
            killed.log()
        )
    });
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}\n{}",
        killed.log()
    );
    assert!(
        sb.path("state/journal.json").exists(),
        "killed after stop, the pass leaves its journal\n{}",
        sb.listing()
    );

    let w = Watcher::start(&sb, &bin("switcher"), &[]);
    wait_serving(&sb, &w, "2.0.0");
    assert_settled(&sb, "2.0.0", &w);
}

#[test]
fn a_drop_folder_removed_or_renamed_and_made_again_is_still_watched() {
    let sb = sandbox();
    deploy_first(&sb);
    let w = Watcher::start(&sb, &bin("switcher"), &[]);
    let drop = sb.drop_dir();
    // Once its start-up round is over (-vv logs each round's end).
    let started = Instant::now();
    while !w.log().contains("round done") && started.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(20));
    }

    fs::remove_dir_all(&drop).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::create_dir(&drop).unwrap();
    ArchiveBuilder::demo("full", "2.0.0")
        .minute(2)
        .drop_into(&drop);
    wait_serving(&sb, &w, "2.0.0");
    // The watcher blocks SIGTERM for its signalfd; what it starts must not
    // inherit that, or the next stop would wait for --retry's KILL.
    let pid = sb.backend_pid().expect("the backend's pidfile");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let blocked = status.lines().find(|l| l.starts_with("SigBlk:"));
    assert_eq!(
        blocked.map(|l| l.split_whitespace().nth(1).unwrap_or_default()),
        Some("0000000000000000"),
        "the backend started by the watcher blocks signals\n{status}"
    );

    fs::rename(&drop, sb.path("drop.old")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::create_dir(&drop).unwrap();
    ArchiveBuilder::demo("full", "3.0.0")
        .minute(3)
        .drop_into(&drop);
    wait_serving(&sb, &w, "3.0.0");
    assert_settled(&sb, "3.0.0", &w);
    // An upload into the renamed-away folder is not the watcher's business.
    ArchiveBuilder::demo("full", "4.0.0")
        .minute(4)
        .drop_into(&sb.path("drop.old"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(served(&sb), "backend 3.0.0", "{}", w.log());
}

#[test]
fn sigterm_during_a_pass_lets_it_finish_then_exits_0() {
    let sb = sandbox();
    deploy_first(&sb);
    // The fault build stops itself (SIGSTOP) right after the backend's
    // stop: the signal lands in the middle of the pass, deterministically.
    let mut w = Watcher::start(
        &sb,
        &fault_bin("switcher"),
        &[("CUTOVER_FAULT_PAUSE", "switcher:after-stop")],
    );
    ArchiveBuilder::demo("full", "2.0.0")
        .minute(2)
        .drop_into(&sb.drop_dir());
    let started = Instant::now();
    while w.state() != 'T' {
        assert!(
            started.elapsed() < WITHIN,
            "the watcher never reached after-stop\n{}",
            w.log()
        );
        assert!(w.child.try_wait().unwrap().is_none(), "{}", w.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sb.path("state/journal.json").exists(),
        "paused mid-pass: the journal is there"
    );
    kill(w.pid(), Signal::SIGTERM).unwrap();
    kill(w.pid(), Signal::SIGCONT).unwrap();
    let status = w
        .wait(WITHIN)
        .unwrap_or_else(|| panic!("the watcher did not exit after SIGTERM\n{}", w.log()));
    assert_eq!(status.code(), Some(0), "{status}\n{}", w.log());
    assert_eq!(served(&sb), "backend 2.0.0", "{}", w.log());
    assert_settled(&sb, "2.0.0", &w);
}

#[test]
fn sigint_while_idle_exits_0_at_once() {
    let sb = sandbox();
    let mut w = Watcher::start(&sb, &bin("switcher"), &[]);
    let started = Instant::now();
    while !w.log().contains("watching") && started.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(w.pid(), Signal::SIGINT).unwrap();
    let status = w
        .wait(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the watcher did not exit after SIGINT\n{}", w.log()));
    assert_eq!(status.code(), Some(0), "{status}\n{}", w.log());
}

#[test]
fn a_lock_held_by_cron_delays_the_round_until_it_is_released() {
    let sb = sandbox();
    deploy_first(&sb);
    let w = Watcher::start(&sb, &bin("switcher"), &[]);
    let started = Instant::now();
    while !w.log().contains("round done") && started.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A cron collector at work: the watcher must leave drop/ to it.
    let held = deploy_root::lock::try_lock(&sb.path("state/collector.lock"))
        .unwrap()
        .expect("the collector lock is free");
    ArchiveBuilder::demo("full", "2.0.0")
        .minute(2)
        .drop_into(&sb.drop_dir());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sb.names("staging").iter().all(|n| !n.contains("2.0.0")),
        "the watcher collected while another collector held the lock\n{}",
        w.log()
    );
    assert_eq!(served(&sb), "backend 1.0.0");
    // The lock goes (cron's collector ended without seeing the marker):
    // the watcher tries again by itself, well before its hour-long period.
    drop(held);
    wait_serving(&sb, &w, "2.0.0");
    assert_settled(&sb, "2.0.0", &w);
}

#[test]
fn watch_refuses_dry_run_instead_of_deploying() {
    let sb = sandbox();
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&sb.drop_dir());
    let run = sb.run("switcher", &["--dry-run", "watch"]);
    run.code_is(2).stderr_has("no --dry-run");
    assert!(sb.names("staging").is_empty(), "{run}");
}
