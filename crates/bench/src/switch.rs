//! The switch itself, measured from outside: the demo backend (started and
//! stopped with start-stop-daemon, as the docs advise) is replaced by a new
//! release while a thread probes its port every millisecond.
//!
//! - overhead: the stop command writes `date +%s%N` as its last act, the
//!   start command as its first; the gap is the switcher's own time
//!   between them (flip, spawning), plus the two shells and
//!   `date`s, which the reference measures alone;
//! - port closed: from the first refused probe to the first accepted one;
//!   the reference runs the same stop and start back to back in one shell;
//! - marker to answering: from the marker landing in drop/ to the backend
//!   answering the new version, for one collector pass then one switcher
//!   pass (cron's period left out); the reference is the seed's two cron
//!   scripts written as one shell script doing the same steps.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use cutover_tests::ArchiveBuilder;

use crate::data::{free_port, Root};
use crate::measure::{fmt_dur, median, Cmd};
use crate::{Ctx, Row};

const GROUP: &str = "Switch";
const OVERHEAD_TARGET: Duration = Duration::from_millis(5);

/// The old scripts' deploy, the same steps as collector + switcher.
const REF_DEPLOY: &str = r#"set -e
cd "$DROP"
sha256sum --check --status "$A.sha256"
mv "$A" "$A.sha256" "$STAGING/"
mkdir -p "$RELEASES/$ID"
tar -xzf "$STAGING/$A" -C "$RELEASES/$ID"
start-stop-daemon --stop --pidfile "$PID" --remove-pidfile --oknodo --retry TERM/5/KILL/5
ln -sfn "$RELEASES/$ID/backend" "$CURRENT"
start-stop-daemon --start --background --make-pidfile --pidfile "$PID" --chdir "$CURRENT" --output "$OUT" --exec "$APP" -- serve --port "$PORT" --release ."#;

/// Nanoseconds since the epoch (the clock `date +%s%N` reads).
pub(crate) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Stops every demo backend a pidfile names, whatever happened.
pub(crate) struct Stopper(pub(crate) Vec<PathBuf>);

impl Drop for Stopper {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("start-stop-daemon")
                .args([
                    "--stop",
                    "--oknodo",
                    "--retry",
                    "TERM/5/KILL/5",
                    "--remove-pidfile",
                ])
                .arg("--pidfile")
                .arg(pid)
                .output();
        }
    }
}

/// Makes this process the reaper of the demo backends it orphans, and
/// reaps them at once, as systemd or any usual init does.
///
/// `start-stop-daemon --stop` waits until the process is gone, and a dead
/// process is gone only once reaped. The PID 1 of some sandboxes (this
/// machine's among them) reaps orphans about once a second, which would add
/// that second to every stop, ours and the reference's alike, and hide
/// everything else. Only zombies named like the demo app or
/// start-stop-daemon are reaped: the bench's own children are waited for
/// by std, which must not find them gone.
pub(crate) struct Reaper {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Reaper {
    pub(crate) fn start() -> anyhow::Result<Reaper> {
        use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
        nix::sys::prctl::set_child_subreaper(true).context("becoming a child subreaper")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
            while !flag.load(Ordering::Relaxed) {
                let pid = match waitid(Id::All, peek) {
                    Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => pid,
                    _ => {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.starts_with("cutover-demo") || comm.starts_with("start-stop-daem") {
                    let _ = waitpid(pid, None);
                } else {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Ok(Reaper {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A thread that connects to a port every millisecond and keeps the
/// moments it changed from open to closed and back.
struct Poller {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(i128, bool)>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let handle = thread::spawn(move || {
            let mut changes = Vec::new();
            let mut last = None;
            while !flag.load(Ordering::Relaxed) {
                let t = now_ns();
                let open = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok();
                if last != Some(open) {
                    changes.push((t, open));
                    last = Some(open);
                }
                thread::sleep(Duration::from_millis(1));
            }
            changes
        });
        Poller { stop, handle }
    }

    /// The longest closed stretch seen.
    fn finish(self) -> anyhow::Result<Duration> {
        thread::sleep(Duration::from_millis(20));
        self.stop.store(true, Ordering::Relaxed);
        let changes = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the port poller panicked"))?;
        let mut longest = 0i128;
        let mut closed_at = None;
        for (t, open) in changes {
            match (open, closed_at) {
                (false, None) => closed_at = Some(t),
                (true, Some(c)) => {
                    longest = longest.max(t - c);
                    closed_at = None;
                }
                _ => {}
            }
        }
        anyhow::ensure!(closed_at.is_none(), "the port was still closed at the end");
        Ok(Duration::from_nanos(u64::try_from(longest).unwrap_or(0)))
    }
}

fn last_stamp(path: &Path) -> anyhow::Result<i128> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().parse::<i128>().ok())
        .next_back()
        .with_context(|| format!("no timestamp in {}", path.display()))
}

pub(crate) fn wait_listening(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..500 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(10));
    }
    anyhow::bail!("nothing listens on {port}")
}

/// Measures the switch rows.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let reps = ctx.mode.pick(15, 7, 2);
    let latency_reps = ctx.mode.pick(7, 3, 1);
    let dir = ctx.fresh("switch")?;
    let reaper = Reaper::start()?;
    let app = ctx.bin("cutover-demo-app");
    let port = free_port()?;
    let ts = dir.join("ts");
    std::fs::create_dir_all(&ts)?;
    let root_dir = dir.join("ours");
    let root_path = root_dir.join("root");
    let pid = root_path.join("state/backend.pid");
    let mut stopper = Stopper(vec![pid.clone()]);
    let stop_plain = format!(
        "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5",
        pid = pid.display()
    );
    let start_plain = format!(
        "start-stop-daemon --start --background --make-pidfile --pidfile {pid} --chdir {current} \
         --output {out} --exec {app} -- serve --port {port} --release .",
        pid = pid.display(),
        current = root_path.join("current/backend").display(),
        out = root_path.join("state/backend.out").display(),
        app = app.display(),
    );
    let stop = format!(
        "{stop_plain}; r=$?; date +%s%N >> {t}/stop_end; exit $r",
        t = ts.display()
    );
    let start = format!(
        "date +%s%N >> {t}/start_begin; exec {start_plain}",
        t = ts.display()
    );
    let backend = format!(
        "health_url = \"http://127.0.0.1:{port}/api/health\"\nstop = {stop:?}\nstart = {start:?}"
    );
    let root = Root::new(&root_dir, port, free_port()?, &backend)?;
    let switcher = Cmd::new(ctx.bin("switcher"), &[]).env("CUTOVER_CONFIG", &root.config);
    let collector = Cmd::new(ctx.bin("collector"), &[]).env("CUTOVER_CONFIG", &root.config);
    std::fs::create_dir_all(root.path("staging"))?;
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&root.path("staging"));
    switcher
        .time()
        .context("the first deploy of the demo backend")?;
    wait_listening(port)?;

    // Overhead and port closed, ours.
    let mut overhead = Vec::new();
    let mut closed = Vec::new();
    let mut passes = Vec::new();
    for i in 0..reps {
        ArchiveBuilder::demo("full", &format!("1.1.{i}"))
            .minute(10 + i as i64)
            .drop_into(&root.path("staging"));
        let poller = Poller::start(port);
        passes.push(switcher.time()?);
        closed.push(poller.finish()?);
        let gap = last_stamp(&ts.join("start_begin"))? - last_stamp(&ts.join("stop_end"))?;
        overhead.push(Duration::from_nanos(u64::try_from(gap).unwrap_or(0)));
    }
    // The same stamps with nothing in between: two shells run back to back.
    let a = Cmd::sh(&format!("true; date +%s%N >> {}/cal_a", ts.display()));
    let b = Cmd::sh(&format!("date +%s%N >> {}/cal_b; true", ts.display()));
    let mut floor = Vec::new();
    for _ in 0..reps {
        a.time()?;
        b.time()?;
        let gap = last_stamp(&ts.join("cal_b"))? - last_stamp(&ts.join("cal_a"))?;
        floor.push(Duration::from_nanos(u64::try_from(gap).unwrap_or(0)));
    }
    // Port closed when a shell runs the same stop and start back to back.
    let both = Cmd::sh(&format!("{stop_plain}\n{start_plain}"));
    let mut ref_closed = Vec::new();
    for _ in 0..reps {
        wait_listening(port)?;
        let poller = Poller::start(port);
        both.time()?;
        wait_listening(port)?;
        ref_closed.push(poller.finish()?);
    }
    wait_listening(port)?;
    let (o, f) = (median(&overhead), median(&floor));
    ctx.row(Row {
        what: "switch overhead: stop returned → start launched".into(),
        ours: fmt_dur(o),
        reference: format!("{} (same stamps, two shells back to back)", fmt_dur(f)),
        ratio: Some(o.as_secs_f64() / f.as_secs_f64()),
        target: format!("< {} ms", OVERHEAD_TARGET.as_millis()),
        met: Some(o < OVERHEAD_TARGET),
    });
    let (c, rc) = (median(&closed), median(&ref_closed));
    ctx.row(Row {
        what: "port closed during a switch (demo backend, starts at once)".into(),
        ours: fmt_dur(c),
        reference: format!("{} (`stop; start` in one shell)", fmt_dur(rc)),
        ratio: Some(c.as_secs_f64() / rc.as_secs_f64()),
        target: "≤ reference + 5 ms".into(),
        met: Some(c <= rc + OVERHEAD_TARGET),
    });
    ctx.note(
        GROUP,
        format!(
            "Switch overhead and port closed: {reps} switcher passes, each deploying a new \
             `full` demo release (backend: the demo app via start-stop-daemon, health URL \
             checked; frontend: files only). Overhead = `start`'s first `date +%s%N` minus \
             `stop`'s last; it includes two shells and two `date`s, which the reference \
             (`sh -c 'true; date …'` then `sh -c 'date …; true'` from the bench) measures \
             alone: ours minus the reference is {} (median). The whole switcher pass took {} \
             (median; it includes verify's 150 ms polling).",
            fmt_dur(o.saturating_sub(f)),
            fmt_dur(median(&passes))
        ),
    );
    let spread = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        format!(
            "min {} / median {} / max {}",
            fmt_dur(v[0]),
            fmt_dur(median(&v)),
            fmt_dur(v[v.len() - 1])
        )
    };
    ctx.note(
        GROUP,
        format!(
            "Spread over the {reps} switches: overhead {}; port closed {}; reference port closed {}.",
            spread(&overhead),
            spread(&closed),
            spread(&ref_closed)
        ),
    );
    ctx.note(
        GROUP,
        "The bench is a child subreaper during this group and reaps the demo backend the moment \
         it exits, as systemd would: this machine's PID 1 (a sandbox agent) reaps orphans about \
         once a second, and `start-stop-daemon --stop` waits for the reaping, which would add \
         about 1.5 s to every stop (ours and the reference's alike).",
    );
    ctx.note(
        GROUP,
        "Port closed: a thread connects to 127.0.0.1:PORT every 1 ms (resolution about 1 ms); \
         the figure is the first refused probe to the first accepted one. Most of it is \
         start-stop-daemon's `--retry` wait noticing that the old process is gone and the new \
         process binding its port; the reference is `stop_command; start_command` in one shell.",
    );

    // Marker written -> new version answering.
    let ref_dir = dir.join("reference");
    let ref_port = free_port()?;
    let ref_pid = ref_dir.join("backend.pid");
    stopper.0.push(ref_pid.clone());
    for d in ["drop", "staging", "releases"] {
        std::fs::create_dir_all(ref_dir.join(d))?;
    }
    let reference = |art: &ArchiveBuilder| {
        let name = art.name();
        Cmd::sh(REF_DEPLOY)
            .env("DROP", ref_dir.join("drop"))
            .env("STAGING", ref_dir.join("staging"))
            .env("RELEASES", ref_dir.join("releases"))
            .env("CURRENT", ref_dir.join("current-backend"))
            .env("PID", &ref_pid)
            .env("OUT", ref_dir.join("backend.out"))
            .env("APP", &app)
            .env("PORT", ref_port.to_string())
            .env("A", name.file_name())
            .env("ID", name.stem())
    };
    let first = ArchiveBuilder::demo("full", "2.0.0").minute(100);
    first.drop_into(&ref_dir.join("drop"));
    reference(&first).time()?;
    wait_listening(ref_port)?;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut coll_t = Vec::new();
    let mut sw_t = Vec::new();
    for i in 0..latency_reps {
        let art = ArchiveBuilder::demo("full", &format!("3.0.{i}")).minute(200 + i as i64);
        let (took, c, s) = deliver(&art, &root.path("drop"), port, || {
            Ok((collector.time()?, switcher.time()?))
        })?;
        ours.push(took);
        coll_t.push(c);
        sw_t.push(s);
        let (took, _, _) = deliver(&art, &ref_dir.join("drop"), ref_port, || {
            Ok((reference(&art).time()?, Duration::ZERO))
        })?;
        theirs.push(took);
    }
    let (o, r) = (median(&ours), median(&theirs));
    ctx.row(Row {
        what: "marker written → new version answering (collector + switcher, small artifact)"
            .into(),
        ours: fmt_dur(o),
        reference: format!("{} (the seed's scripts as one shell script)", fmt_dur(r)),
        ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
        target: "none set".into(),
        met: None,
    });
    ctx.note(
        GROUP,
        format!(
            "Marker to answering: the artifact is written to drop/, then its marker; the clock \
             starts when the marker is written and stops when GET /api/version (polled every \
             1 ms) answers the new version. Then, as cron would with the period left out: \
             collector ({} median), then switcher ({} median, which returns only after verify). \
             Median of {latency_reps}. Reference, on its own root and port: `{}`",
            fmt_dur(median(&coll_t)),
            fmt_dur(median(&sw_t)),
            REF_DEPLOY.replace('\n', "; ")
        ),
    );
    drop(stopper);
    drop(reaper);
    crate::remove(&dir)
}

/// Delivers `art` into `drop` (artifact, then marker), runs `passes`, and
/// returns the time from the marker to the new version answering on `port`.
fn deliver(
    art: &ArchiveBuilder,
    drop: &Path,
    port: u16,
    passes: impl FnOnce() -> anyhow::Result<(Duration, Duration)>,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let version = art.name().version().to_string();
    let name = art.name();
    let bytes = art.bytes();
    std::fs::write(drop.join(name.file_name()), &bytes)?;
    let marker = cutover_tests::archive::marker(name.file_name(), &bytes);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::fs::write(drop.join(name.marker_name()), marker)?;
    let t0 = now_ns();
    let watcher = thread::spawn(move || -> Option<i128> {
        let want = format!("backend {version}");
        while !flag.load(Ordering::Relaxed) {
            if let Ok((200, body)) = cutover_tests::net::get(port, "/api/version") {
                if body.trim() == want {
                    return Some(now_ns());
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
        None
    });
    let (c, s) = passes()?;
    // The new version must answer soon after the passes end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !watcher.is_finished() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let t1 = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the version watcher panicked"))?
        .with_context(|| format!("{} never answered", name.file_name()))?;
    Ok((
        Duration::from_nanos(u64::try_from(t1 - t0).unwrap_or(0)),
        c,
        s,
    ))
}

/// Requests nginx answered from the backend, and those it did not (an
/// error page, a refused or cut connection), by one client thread.
#[derive(Default)]
struct Load {
    ok: u64,
    failed: u64,
}

/// Sends GET /api/version through nginx at `port`, one after the other,
/// until `stop`.
fn hammer(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<Load> {
    thread::spawn(move || {
        let mut load = Load::default();
        while !stop.load(Ordering::Relaxed) {
            let r = cutover_tests::nginx::http_get(port, "/api/version");
            if r.status == 200 && r.body.starts_with("backend ") {
                load.ok += 1;
            } else {
                load.failed += 1;
            }
        }
        load
    })
}

/// `switches` deploys of the demo backend behind a real nginx, blue-green
/// or restart, under one client's load: what the client saw.
fn switches_under_load(
    ctx: &Ctx,
    dir: &Path,
    blue_green: bool,
    switches: usize,
) -> anyhow::Result<Load> {
    let app = ctx.bin("cutover-demo-app");
    let root = dir.join("root");
    let state = root.join("state");
    std::fs::create_dir_all(root.join("drop"))?;
    let (nginx_port, port) = (free_port()?, free_port()?);
    let ports = [free_port()?, free_port()?];
    let slot_pid = |s: &str| state.join(format!("backend-{s}.pid"));
    let _stopper = Stopper(vec![
        state.join("backend.pid"),
        slot_pid("blue"),
        slot_pid("green"),
    ]);
    let backend = if blue_green {
        let pid = "\"$CUTOVER_ROOT/state/backend-$CUTOVER_SLOT.pid\"";
        let start = format!(
            "start-stop-daemon --start --background --make-pidfile --pidfile {pid} \
             --chdir \"$CUTOVER_RELEASE\" --output /dev/null --exec {app} -- serve --release .",
            app = app.display()
        );
        let stop = format!(
            "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5"
        );
        format!(
            "switch = \"blue-green\"\nports = [{}, {}]\n\
             health_url = \"http://127.0.0.1:{{port}}/api/health\"\nstart = {start:?}\nstop = {stop:?}\n",
            ports[0], ports[1]
        )
    } else {
        let pid = state.join("backend.pid");
        format!(
            "port = {port}\nhealth_url = \"http://127.0.0.1:{port}/api/health\"\n\
             start = {:?}\nstop = {:?}\n",
            format!(
                "start-stop-daemon --start --background --make-pidfile --pidfile {pid} \
                 --chdir {current} --output /dev/null --exec {app} -- serve --port {port} --release .",
                pid = pid.display(),
                current = root.join("current/backend").display(),
                app = app.display(),
            ),
            format!(
                "start-stop-daemon --stop --pidfile {} --remove-pidfile --oknodo --retry TERM/5/KILL/5",
                pid.display()
            ),
        )
    };
    let config_path = dir.join("cutover.toml");
    let write_config = |reload: &str| {
        std::fs::write(
            &config_path,
            format!(
                "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\n\
                 [components.backend]\n{backend}\n[components.frontend]\nport = {nginx_port}\n\n\
                 [nginx]\nlisten = \"127.0.0.1:{nginx_port}\"\nreload = {reload:?}\n",
                root = root.display().to_string(),
            ),
        )
    };
    write_config("true")?;
    let switcher = Cmd::new(ctx.bin("switcher"), &[]).env("CUTOVER_CONFIG", &config_path);
    // The upstream include must exist before nginx loads the site.
    switcher
        .time()
        .context("a first pass with nothing staged")?;
    let config = deploy_root::Config::load(&config_path)?;
    let site = switcher::nginx_site::render(&config).map_err(anyhow::Error::msg)?;
    let web = cutover_tests::nginx::Nginx::start(&site, nginx_port);
    write_config(&web.reload_command())?;
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging)?;
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&staging);
    switcher.time().context("the first deploy")?;
    let stop = Arc::new(AtomicBool::new(false));
    let client = hammer(nginx_port, stop.clone());
    for i in 0..switches {
        ArchiveBuilder::demo("full", &format!("1.{}.0", i + 1))
            .minute(2 + i as i64)
            .drop_into(&staging);
        switcher.time()?;
    }
    stop.store(true, Ordering::Relaxed);
    client
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))
}

/// Failed requests during switches under the same load: blue-green
/// against restart (the `bluegreen` group).
pub fn run_load(ctx: &mut Ctx) -> anyhow::Result<()> {
    let switches = ctx.mode.pick(20, 5, 2);
    let dir = ctx.fresh("bluegreen")?;
    let reaper = Reaper::start()?;
    let bg = switches_under_load(ctx, &dir.join("blue-green"), true, switches)?;
    let restart = switches_under_load(ctx, &dir.join("restart"), false, switches)?;
    ctx.row(Row {
        what: format!(
            "failed requests during {switches} switches: blue-green vs restart, same load"
        ),
        ours: format!("{} of {}", bg.failed, bg.ok + bg.failed),
        reference: format!(
            "{} of {} (switch = \"restart\")",
            restart.failed,
            restart.ok + restart.failed
        ),
        ratio: None,
        target: "0".into(),
        met: Some(bg.failed == 0),
    });
    ctx.note(
        GROUP,
        format!(
            "Blue-green vs restart: real nginx in front of the demo backend; one client thread \
             sends GET /api/version through nginx, one request after the other, for the whole \
             of {switches} switcher passes each deploying a new `full` release. A request \
             fails when nginx does not answer 200 from the backend (502, refused, cut). \
             Blue-green: start on the idle slot, verify, upstream + reload, route check, \
             drain (2 s), stop the old one; restart: stop, flip, start."
        ),
    );
    drop(reaper);
    crate::remove(&dir)
}
