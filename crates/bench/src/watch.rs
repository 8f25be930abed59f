//! `switcher watch`, measured from outside (`--only watch`).
//!
//! - marker to answering: the artifact is written to drop/, then its
//!   marker; the clock runs from the marker's write to the demo backend
//!   answering the new version on its own port (GET /api/version, polled
//!   every millisecond; the bench has no nginx fixture, so it goes direct
//!   to the backend). p50 and p95 over N deploys. The reference is cron:
//!   the same passes start on the next minute, half a minute on average.
//! - idle: two watchers with nothing arriving, each on its own root with
//!   one release running. One has the default `status.period` (60 s: a
//!   safety-net round every minute, what cron would run anyway); the other
//!   a period longer than the window, so what it costs is the waiting
//!   alone. CPU is utime+stime (and the waited-for children's
//!   cutime+cstime: the collector) from /proc/<pid>/stat before and after
//!   the window; memory is VmRSS (and VmHWM, the peak) at the end.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use cutover_tests::ArchiveBuilder;

use crate::data::{free_port, Root};
use crate::measure::{fmt_dur, fmt_kib, Cmd};
use crate::switch::{now_ns, wait_listening, Reaper, Stopper};
use crate::{Ctx, Mode, Row};

const GROUP: &str = "Watch mode";
const P50_TARGET: Duration = Duration::from_secs(1);
const P95_TARGET: Duration = Duration::from_secs(2);
const RSS_TARGET_KIB: u64 = 8 * 1024;

/// A `switcher watch` child, stopped with SIGTERM (by pid) when dropped.
struct Watcher(Child);

impl Watcher {
    fn start(switcher: &Path, config: &Path, log: &Path) -> anyhow::Result<Watcher> {
        let child = Command::new(switcher)
            .arg("watch")
            .env("CUTOVER_CONFIG", config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {} watch", switcher.display()))?;
        Ok(Watcher(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// The process's own CPU ticks (utime+stime) and its waited-for
/// children's (cutime+cstime), from /proc/<pid>/stat.
fn cpu_ticks(pid: u32) -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: count fields after its ')'.
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat")?;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14-17 of stat(5), counted from 3 (the state) here.
    let at = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    Ok((at(14) + at(15), at(16) + at(17)))
}

/// VmRSS and VmHWM in KiB, from /proc/<pid>/status.
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// The `q` quantile (nearest rank) of some durations.
fn quantile(xs: &[Duration], q: f64) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Waits for `done`, up to `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while !done() {
        anyhow::ensure!(start.elapsed() < limit, "{what} within {limit:?}");
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Measures the watch rows.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    latency(ctx)?;
    idle(ctx)
}

fn latency(ctx: &mut Ctx) -> anyhow::Result<()> {
    let deploys = ctx.mode.pick(30, 10, 2);
    let dir = ctx.fresh("watch-latency")?;
    let reaper = Reaper::start()?;
    let app = ctx.bin("cutover-demo-app");
    let port = free_port()?;
    let root_path = dir.join("root");
    let pid = root_path.join("state/backend.pid");
    let stopper = Stopper(vec![pid.clone()]);
    let stop = format!(
        "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5",
        pid = pid.display()
    );
    let start = format!(
        "start-stop-daemon --start --background --make-pidfile --pidfile {pid} --chdir {current} \
         --output {out} --exec {app} -- serve --port {port} --release .",
        pid = pid.display(),
        current = root_path.join("current/backend").display(),
        out = root_path.join("state/backend.out").display(),
        app = app.display(),
    );
    let backend = format!(
        "health_url = \"http://127.0.0.1:{port}/api/health\"\nstop = {stop:?}\nstart = {start:?}"
    );
    let root = Root::new(&dir, port, free_port()?, &backend)?;
    std::fs::create_dir_all(root.path("staging"))?;
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&root.path("staging"));
    Cmd::new(ctx.bin("switcher"), &[])
        .env("CUTOVER_CONFIG", &root.config)
        .time()
        .context("the first deploy of the demo backend")?;
    wait_listening(port)?;
    let log = dir.join("watch.log");
    let watcher = Watcher::start(&ctx.bin("switcher"), &root.config, &log)?;
    // Its start-up round (nothing new) is over when it sleeps.
    thread::sleep(Duration::from_millis(500));

    let journal = root.path("state/journal.json");
    let drop_dir = root.path("drop");
    let mut took = Vec::new();
    for i in 0..deploys {
        let art = ArchiveBuilder::demo("full", &format!("2.0.{i}")).minute(10 + i as i64);
        let name = art.name();
        let bytes = art.bytes();
        std::fs::write(drop_dir.join(name.file_name()), &bytes)?;
        let marker = cutover_tests::archive::marker(name.file_name(), &bytes);
        std::fs::write(drop_dir.join(name.marker_name()), marker)?;
        let t0 = now_ns();
        let want = format!("backend 2.0.{i}");
        let answered = || {
            matches!(cutover_tests::net::get(port, "/api/version"),
                Ok((200, body)) if body.trim() == want)
        };
        let mut t1 = None;
        let limit = Instant::now() + Duration::from_secs(30);
        while Instant::now() < limit {
            if answered() {
                t1 = Some(now_ns());
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let t1 = t1.with_context(|| {
            format!(
                "{} did not answer within 30 s; the watcher's log:\n{}",
                name.file_name(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        took.push(Duration::from_nanos(u64::try_from(t1 - t0).unwrap_or(0)));
        // Let the pass record it before the next upload (it answers first).
        wait_for(Duration::from_secs(30), "the pass ends", || {
            !journal.exists()
        })?;
        thread::sleep(Duration::from_millis(100));
    }
    drop(watcher);
    let (p50, p95) = (quantile(&took, 0.5), quantile(&took, 0.95));
    ctx.row(Row {
        what: "watch: marker written → new version answering, p50 (demo backend, direct)".into(),
        ours: fmt_dur(p50),
        reference: "30 s on average with cron (the next minute), + the passes".into(),
        ratio: None,
        target: format!("< {} s", P50_TARGET.as_secs()),
        met: Some(p50 < P50_TARGET),
    });
    ctx.row(Row {
        what: "watch: marker written → new version answering, p95".into(),
        ours: fmt_dur(p95),
        reference: "up to 60 s with cron, + the passes".into(),
        ratio: None,
        target: format!("< {} s", P95_TARGET.as_secs()),
        met: Some(p95 < P95_TARGET),
    });
    let mut sorted = took.clone();
    sorted.sort();
    ctx.note(
        GROUP,
        format!(
            "Marker to answering with `switcher watch`: {deploys} deploys of a `full` demo \
             artifact, each written to drop/ then its marker; the clock starts when the marker \
             is written and stops when GET /api/version on the backend's own port (no nginx \
             fixture in the bench) answers the new version, polled every 1 ms. It includes the \
             watcher's 200 ms debounce, the collector (spawned), the switcher pass up to the \
             new backend listening (stop, flip, start via start-stop-daemon). p50/p95 are \
             nearest-rank over {deploys} (with 10, p95 is the largest). min {} / max {}.",
            fmt_dur(sorted[0]),
            fmt_dur(sorted[sorted.len() - 1]),
        ),
    );
    // In this order: the backend's pidfile is under `dir`.
    drop(stopper);
    drop(reaper);
    crate::remove(&dir)
}

fn idle(ctx: &mut Ctx) -> anyhow::Result<()> {
    let window = ctx.mode.pick(
        Duration::from_secs(600),
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    let dir = ctx.fresh("watch-idle")?;
    let mut roots = Vec::new();
    for (name, period) in [("rounds", "60s"), ("quiet", "10h")] {
        let d = dir.join(name);
        let root = Root::new(&d, free_port()?, free_port()?, "")?;
        let mut text = std::fs::read_to_string(&root.config)?;
        text.push_str(&format!("\n[status]\nperiod = {period:?}\n"));
        std::fs::write(&root.config, text)?;
        std::fs::create_dir_all(root.path("staging"))?;
        ArchiveBuilder::demo("full", "1.0.0")
            .minute(1)
            .drop_into(&root.path("staging"));
        Cmd::new(ctx.bin("switcher"), &[])
            .env("CUTOVER_CONFIG", &root.config)
            .time()?;
        roots.push((d, root));
    }
    let rounds = Watcher::start(&ctx.bin("switcher"), &roots[0].1.config, &dir.join("r.log"))?;
    let quiet = Watcher::start(&ctx.bin("switcher"), &roots[1].1.config, &dir.join("q.log"))?;
    // Past their start-up rounds.
    thread::sleep(Duration::from_secs(2));
    let before = (cpu_ticks(rounds.pid())?, cpu_ticks(quiet.pid())?);
    // Rounds seen: each pass rewrites state/switcher.json (its last run).
    let stamp = |root: &Root| {
        std::fs::metadata(root.path("state/switcher.json"))
            .and_then(|m| m.modified())
            .ok()
    };
    let mut seen = [stamp(&roots[0].1), stamp(&roots[1].1)];
    let mut passes = [0u64, 0u64];
    let end = Instant::now() + window;
    while Instant::now() < end {
        thread::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())));
        for (i, (_, root)) in roots.iter().enumerate() {
            let now = stamp(root);
            if now != seen[i] {
                passes[i] += 1;
                seen[i] = now;
            }
        }
    }
    let after = (cpu_ticks(rounds.pid())?, cpu_ticks(quiet.pid())?);
    let (rss_r, hwm_r) = rss_kib(rounds.pid())?;
    let (rss_q, hwm_q) = rss_kib(quiet.pid())?;
    drop(rounds);
    drop(quiet);
    let hz = clock_ticks();
    let ms = |ticks: u64| Duration::from_millis(ticks * 1000 / hz);
    let own_q = after.1 .0 - before.1 .0;
    let kids_q = after.1 .1 - before.1 .1;
    let own_r = after.0 .0 - before.0 .0;
    let kids_r = after.0 .1 - before.0 .1;
    let secs = window.as_secs();
    let n_rounds = passes[0];
    ctx.row(Row {
        what: format!("watch idle CPU over {secs} s, nothing arriving, no round due"),
        ours: format!(
            "{} ({own_q} ticks; children {kids_q}; {} rounds)",
            fmt_dur(ms(own_q)),
            passes[1]
        ),
        reference: "–".into(),
        ratio: None,
        target: "no measurable CPU (0 ticks)".into(),
        met: Some(own_q + kids_q == 0),
    });
    ctx.row(Row {
        what: format!(
            "watch idle CPU over {secs} s with the 60 s safety-net rounds ({n_rounds} seen)"
        ),
        ours: format!(
            "{} + collector {} ({:.4} % of a core)",
            fmt_dur(ms(own_r)),
            fmt_dur(ms(kids_r)),
            (own_r + kids_r) as f64 * 100.0 / (hz * secs.max(1)) as f64
        ),
        reference: "what cron's idle collector + switcher cost each minute (Idle passes)".into(),
        ratio: None,
        target: "none: the rounds cron runs anyway".into(),
        met: None,
    });
    let rss = rss_r.max(rss_q);
    ctx.row(Row {
        what: "watch RSS after the idle window (VmRSS)".into(),
        ours: fmt_kib(rss),
        reference: "–".into(),
        ratio: None,
        target: format!("< {}", fmt_kib(RSS_TARGET_KIB)),
        met: Some(rss < RSS_TARGET_KIB),
    });
    ctx.note(
        GROUP,
        format!(
            "Idle: two release-build watchers, each on its own root with one release running \
             (components without commands) and nothing arriving, measured over the same {secs} s \
             after their start-up rounds. CPU = utime+stime of the watcher (and cutime+cstime: \
             the collectors it waited for) from /proc/<pid>/stat, {hz} ticks per second. \
             Without a round due it sleeps in one poll(2) on inotify and a signalfd. Rounds \
             are counted from state/switcher.json's mtime (each pass rewrites it), looked at \
             once a second; a tick is {} ms, so an idle round costing less reads as 0. RSS: \
             VmRSS {} / {} (rounds / quiet), peak VmHWM {} / {}.{}",
            1000 / hz,
            fmt_kib(rss_r),
            fmt_kib(rss_q),
            fmt_kib(hwm_r),
            fmt_kib(hwm_q),
            if ctx.mode == Mode::Full {
                ""
            } else {
                " (--quick: a shorter window than the full run's 10 minutes.)"
            }
        ),
    );
    crate::remove(&dir)
}
