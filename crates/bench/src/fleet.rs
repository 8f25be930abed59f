//! A group of VMs on one S3 store (`--only fleet`): the scale run of
//! docs/fleet.md. Its figures are a section of their own in BENCHMARKS.md.
//!
//! - The store: SeaweedFS `weed mini` (cutover_tests::seaweed, the fixture
//!   of the fleet tests: free loopback ports, bucket `cutover`, the keys in
//!   its environment), started here and stopped by pid at the end.
//! - The VMs: N deploy roots in the work folder, each with one kind
//!   `app = ["app"]` and one component `app` without commands (files only:
//!   the switcher unpacks, flips current/ and records; it has nothing to
//!   start or verify) whose port is a listener this process holds and
//!   accepts on, so that the status page says UP. `[status] period =
//!   "60s"`, `[store]` on the weed (path style), `[fleet] group = "bench"`,
//!   `max_parallel`, `lease_ttl = "2m"`. The store's keys reach the
//!   children as AWS_* in their environment.
//! - A rollout: one artifact published (`fleet::Store`: the artifact with
//!   If-None-Match and its SHA-256 checked by the store, then its marker),
//!   then a pool of worker threads plays cron: each takes the next VM that
//!   does not run it yet and makes one pass (collector, then switcher, the
//!   release binaries built with the store), back to back, no period in
//!   between. Every binary appends its request counts to the VM's
//!   CUTOVER_STORE_STATS file. A first rollout (fresh VMs, which also ask
//!   the store the conditional-write probe once) prepares the group; the
//!   second one, a real switch from that release, is measured.
//! - Slot holders: each VM's history.jsonl carries its deploy's slot span
//!   (`slot.taken_at` / `ended_at`, to the millisecond); the most spans
//!   open at once must not exceed `max_parallel`.
//! - An idle pass: one more pass per VM once all run it; the target is one
//!   LIST (collector) and one small PUT (the switcher's report) per VM.
//! - A waiting pass, which the simulated cron rarely produces (a files-only
//!   switch holds its slot for milliseconds): this process takes every
//!   slot (`fleet::lease`), publishes a third artifact, each VM makes one
//!   pass, then the slots are released and the group converges.
//! - The report as a VM ages: one VM deploys more artifacts from its drop
//!   folder (its status page's history and timeline grow), then uploads are
//!   left waiting there; its report's size after an idle pass each time.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use cutover_tests::seaweed::{self, Seaweed};
use cutover_tests::ArchiveBuilder;
use deploy_root::fleet_config::StoreConfig;
use fleet::{layout, Condition, Store};
use sha2::{Digest, Sha256};
use switcher::status::inputs::HISTORY_LINES;

use crate::measure::fmt_dur;
use crate::{Ctx, Row, Section};

/// The section's id (`--only fleet`).
const ID: &str = "fleet";
/// The VMs' `[fleet] group`.
const GROUP: &str = "bench";
/// The prefix under the bucket.
const PREFIX: &str = "bench";
/// The VMs' `[status] period`: an idle pass is one period's traffic.
const PERIOD: &str = "60s";
/// "Small" for the idle pass's PUT: a few times the request's own headers.
const SMALL_PUT: u64 = 4 * 1024;
/// The request kinds, in the order of the counts.
const OPS: [&str; 5] = ["LIST", "GET", "HEAD", "PUT", "DELETE"];

/// How many of what, by mode.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    vms: usize,
    workers: usize,
    max_parallel: usize,
    limit: Duration,
}

/// Store requests of one binary run (or a sum), by kind ([`OPS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts([u64; 5]);

impl Counts {
    fn of(line: &serde_json::Value) -> Counts {
        let mut c = Counts::default();
        for (i, op) in OPS.iter().enumerate() {
            c.0[i] = line[op].as_u64().unwrap_or(0);
        }
        c
    }

    fn plus(self, o: Counts) -> Counts {
        let mut c = self;
        for i in 0..OPS.len() {
            c.0[i] += o.0[i];
        }
        c
    }

    fn total(self) -> u64 {
        self.0.iter().sum()
    }

    /// Exactly `n` requests of kind `op` and nothing else.
    fn only(self, op: &str, n: u64) -> bool {
        OPS.iter()
            .zip(self.0)
            .all(|(o, k)| if *o == op { k == n } else { k == 0 })
    }
}

/// What a pass did about the artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The VM switched to it in this pass.
    Deploying,
    /// No slot was free: "waiting for one of the group's slots".
    Waiting,
    /// Anything else (the store unreachable, already running, ...).
    Other,
}

/// One pass of one VM.
#[derive(Clone, Debug)]
struct Pass {
    vm: usize,
    kind: Kind,
    collector: Counts,
    switcher: Counts,
    wall: Duration,
    failed: Option<String>,
}

/// One VM: its folder, config, deploy root and stats file.
#[derive(Debug)]
struct Vm {
    id: String,
    config: PathBuf,
    root: PathBuf,
    stats: PathBuf,
}

/// What the children need: the binaries and the store's keys.
#[derive(Debug)]
struct Env {
    bins: PathBuf,
    keys: Vec<(&'static str, &'static str)>,
}

/// A port the components "listen" on: accepted and closed at once, so the
/// status page's probe finds it UP; closed when dropped.
#[derive(Debug)]
struct Listener {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Listener {
    fn start() -> anyhow::Result<Listener> {
        let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                drop(conn);
            }
        });
        Ok(Listener {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One measured rollout.
#[derive(Debug)]
struct Rollout {
    artifact: String,
    /// Publishing (the artifact's PUT and its marker's).
    publish: Duration,
    /// From the start of publishing to the last VM running it; None when
    /// the time limit came first.
    took: Option<Duration>,
    passes: Vec<Pass>,
    converged: usize,
    /// The most passes that ran at once.
    in_flight: usize,
}

/// Runs the fleet group.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let sizes = ctx.mode.pick(
        Sizes {
            vms: 100,
            workers: 16,
            max_parallel: 10,
            limit: Duration::from_secs(900),
        },
        Sizes {
            vms: 30,
            workers: 16,
            max_parallel: 10,
            limit: Duration::from_secs(300),
        },
        Sizes {
            vms: 3,
            workers: 3,
            max_parallel: 1,
            limit: Duration::from_secs(120),
        },
    );
    let started = Instant::now();
    let mut sec = Section::new(
        ID,
        &format!(
            "Fleet: {} VMs on one S3 store (max_parallel = {})",
            sizes.vms, sizes.max_parallel
        ),
    );
    let dir = ctx.fresh("fleet")?;
    let weed = start_store()?;
    let weed_version = weed_version();
    let listener = Listener::start()?;
    let env = Env {
        bins: ctx.bins.clone(),
        keys: weed.env(),
    };
    let store = bench_store(&weed, &dir)?;
    let vms = make_vms(&dir, &weed, listener.port, sizes)?;
    eprintln!(
        "  {} VMs, {} passes at a time, store {} ({weed_version})",
        sizes.vms,
        sizes.workers,
        weed.endpoint()
    );

    // The group's first release: fresh VMs (each asks the store the
    // conditional-write probe once, at its first pass with a slot to take).
    let v1 = app_artifact("1.0.0", 1);
    let first = rollout(&env, &vms, &store, &dir, &v1, sizes)?;
    anyhow::ensure!(
        first.converged == vms.len(),
        "the first rollout did not converge within {:?}: {} of {} VMs run {}; failed passes: {}",
        sizes.limit,
        first.converged,
        vms.len(),
        first.artifact,
        failures(&first.passes)
    );
    // The measured one: every VM switches from that release.
    let v2 = app_artifact("2.0.0", 2);
    let second = rollout(&env, &vms, &store, &dir, &v2, sizes)?;
    let spans = slot_spans(&vms, &second.artifact)?;
    let idle = each_vm(&env, &vms, sizes.workers, "")?;
    let reports = store
        .list(&layout::status_dir(GROUP))
        .context("listing the VMs' reports")?;
    let report_part = report_parts(&store, &vms[0])?;
    let idle_deploys = deploys_of(&vms[0]);
    // Waiting passes, which the rollouts above may not show: every slot
    // is held by someone else while each VM makes one pass with a third
    // artifact to take; then the slots are freed and the group converges.
    let v3 = app_artifact("3.0.0", 3);
    let held = hold_slots(&store, &v3, sizes.max_parallel)?;
    let third_artifact = publish(&store, &dir, &v3)?;
    let waiting = each_vm(&env, &vms, sizes.workers, &third_artifact)?;
    for lease in &held {
        fleet::lease::release(&store, lease).context("releasing a slot held by the bench")?;
    }
    let third = converge(
        &env,
        &vms,
        third_artifact,
        Instant::now(),
        Duration::ZERO,
        sizes,
    );
    // The report of a VM that has been deploying for a while: its page's
    // history and timeline fill up, and uploads may wait in its drop folder.
    let aged = age(
        &env,
        &vms,
        &store,
        ctx.mode.pick(&[20, 20][..], &[20, 20][..], &[2][..]),
        ctx.mode.pick(100, 100, 3),
    )?;
    let aged = Aged {
        young_deploys: idle_deploys,
        ..aged
    };

    rows(
        &mut sec, sizes, &second, &spans, &waiting, &idle, &reports, &aged,
    );
    notes(
        &mut sec,
        sizes,
        &weed_version,
        [&first, &second, &third],
        &spans,
        (&waiting, &idle),
        &reports,
        &report_part,
        &aged,
    );
    sec.about = format!(
        "A group of {} VMs (deploy roots on this machine) fed from one `weed mini` \
         ({weed_version}), rolling with `max_parallel = {}`: how long the group takes to run a \
         new artifact, how many store requests a pass makes, and what an idle pass costs the \
         store per VM per `[status] period`.",
        sizes.vms, sizes.max_parallel
    );
    drop(listener);
    drop(weed);
    crate::remove(&dir)?;
    sec.finish(started.elapsed());
    ctx.sections.push(sec);
    Ok(())
}

/// Starts `weed mini` (the fleet tests' fixture: its flags, free ports,
/// the bucket, the keys); a failure to start is an error, not a panic.
fn start_store() -> anyhow::Result<Seaweed> {
    std::panic::catch_unwind(|| {
        seaweed::binary();
        Seaweed::start()
    })
    .map_err(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into());
        anyhow!(
            "starting SeaweedFS for the fleet group: {why}\n(benches/run installs it with \
             tests/install-seaweedfs and sets CUTOVER_WEED)"
        )
    })
}

/// `weed version`'s first line, for the notes.
fn weed_version() -> String {
    std::panic::catch_unwind(seaweed::binary)
        .ok()
        .and_then(|weed| Command::new(weed).arg("version").output().ok())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().next().map(|l| {
                let l = l.trim();
                format!("SeaweedFS {}", l.strip_prefix("version ").unwrap_or(l))
            })
        })
        .unwrap_or_else(|| "SeaweedFS, version unknown".into())
}

/// A store client for this process (publishing, listing the reports), with
/// the keys in a credentials file (the children get them as AWS_*).
fn bench_store(weed: &Seaweed, dir: &Path) -> anyhow::Result<Store> {
    let creds = dir.join("store.credentials");
    std::fs::write(
        &creds,
        format!(
            "access_key_id = {:?}\nsecret_access_key = {:?}\n",
            weed.access_key(),
            weed.secret_key()
        ),
    )?;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600))?;
    let config = StoreConfig {
        url: format!("s3://{}/{PREFIX}", weed.bucket()),
        endpoint: Some(weed.endpoint()),
        region: seaweed::REGION.into(),
        path_style: Some(true),
        credentials_file: Some(creds),
        timeout: Duration::from_secs(30),
    };
    Store::open(&config).context("opening the store")
}

/// The VMs' roots and configs.
fn make_vms(dir: &Path, weed: &Seaweed, port: u16, sizes: Sizes) -> anyhow::Result<Vec<Vm>> {
    (0..sizes.vms)
        .map(|i| {
            let id = format!("vm-{i:03}");
            let d = dir.join(&id);
            let root = d.join("root");
            std::fs::create_dir_all(root.join("drop"))?;
            let config = d.join("cutover.toml");
            std::fs::write(
                &config,
                format!(
                    "root = {root:?}\n\n[kinds]\napp = [\"app\"]\n\n[components.app]\nport = {port}\n\n\
                     [status]\nperiod = {PERIOD:?}\n\n\
                     [store]\nurl = {url:?}\nendpoint = {endpoint:?}\nregion = {region:?}\npath_style = true\n\n\
                     [fleet]\ngroup = {GROUP:?}\nid = {id:?}\nmax_parallel = {mp}\nlease_ttl = \"2m\"\n",
                    root = root.display().to_string(),
                    url = format!("s3://{}/{PREFIX}", weed.bucket()),
                    endpoint = weed.endpoint(),
                    region = seaweed::REGION,
                    mp = sizes.max_parallel,
                ),
            )?;
            Ok(Vm {
                id,
                config,
                root,
                stats: d.join("store-stats.jsonl"),
            })
        })
        .collect()
}

/// A tiny artifact of kind `app` (one folder, one file).
fn app_artifact(version: &str, minute: i64) -> ArchiveBuilder {
    ArchiveBuilder::new("app", version)
        .minute(minute)
        .dir("app")
        .file("app/VERSION", format!("{version}\n"))
}

/// Publishes `art` as CI would: the artifact (If-None-Match: *, the store
/// checks its SHA-256), then its marker. Returns its name.
fn publish(store: &Store, dir: &Path, art: &ArchiveBuilder) -> anyhow::Result<String> {
    let name = art.name();
    let file_name = name.file_name().to_string();
    let bytes = art.bytes();
    let path = dir.join(&file_name);
    std::fs::write(&path, &bytes)?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let file = std::fs::File::open(&path)?;
    store
        .put_file(
            &layout::artifact(&file_name),
            &file,
            bytes.len() as u64,
            Some(&digest),
            &Condition::Create,
        )
        .with_context(|| format!("publishing {file_name}"))?;
    store
        .put_bytes(
            &layout::marker(&file_name),
            cutover_tests::archive::marker(&file_name, &bytes).as_bytes(),
            &Condition::Create,
        )
        .with_context(|| format!("publishing the marker of {file_name}"))?;
    Ok(file_name)
}

/// The artifact VM `vm` runs, and why it holds `artifact` back (if it does),
/// from its switcher.json.
fn state(vm: &Vm, artifact: &str) -> (Option<String>, Option<String>) {
    let v: serde_json::Value = std::fs::read(vm.root.join("state/switcher.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        v["components"]["app"]["running"]["artifact"]
            .as_str()
            .map(str::to_string),
        v["held"][artifact].as_str().map(str::to_string),
    )
}

/// The JSON lines of a stats file.
fn stat_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// One pass of VM `i`: collector, then switcher, as cron runs them.
fn pass(env: &Env, vms: &[Vm], i: usize, artifact: &str) -> Pass {
    let vm = &vms[i];
    let before = stat_lines(&vm.stats).len();
    let was = state(vm, artifact).0;
    let t = Instant::now();
    let mut failed = None;
    for bin in ["collector", "switcher"] {
        let out = Command::new(env.bins.join(bin))
            .env("CUTOVER_CONFIG", &vm.config)
            .env("CUTOVER_STORE_STATS", &vm.stats)
            .envs(env.keys.iter().copied())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => continue,
            Ok(o) => format!(
                "{} {bin} exited with {}: {}",
                vm.id,
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("{} {bin}: cannot run {}: {e}", vm.id, env.bins.display()),
        };
        failed.get_or_insert(why);
    }
    let wall = t.elapsed();
    let (mut collector, mut switcher) = (Counts::default(), Counts::default());
    for line in stat_lines(&vm.stats).iter().skip(before) {
        match line["bin"].as_str() {
            Some("collector") => collector = collector.plus(Counts::of(line)),
            Some("switcher") => switcher = switcher.plus(Counts::of(line)),
            _ => {}
        }
    }
    let (now, held) = state(vm, artifact);
    let kind = if now.as_deref() == Some(artifact) && was.as_deref() != Some(artifact) {
        Kind::Deploying
    } else if held.is_some_and(|why| why.contains("waiting for one of")) {
        Kind::Waiting
    } else {
        Kind::Other
    };
    Pass {
        vm: i,
        kind,
        collector,
        switcher,
        wall,
        failed,
    }
}

/// Publishes `art`, then runs passes (`sizes.workers` at a time, each VM
/// again after the others until it runs it) until every VM runs it or the
/// time limit passes.
fn rollout(
    env: &Env,
    vms: &[Vm],
    store: &Store,
    dir: &Path,
    art: &ArchiveBuilder,
    sizes: Sizes,
) -> anyhow::Result<Rollout> {
    let t0 = Instant::now();
    let artifact = publish(store, dir, art)?;
    let publish_took = t0.elapsed();
    Ok(converge(env, vms, artifact, t0, publish_took, sizes))
}

/// Runs passes (`sizes.workers` at a time, each VM again after the others
/// until it runs `artifact`) until every VM runs it or the time limit
/// passes; the clock started at `t0`.
fn converge(
    env: &Env,
    vms: &[Vm],
    artifact: String,
    t0: Instant,
    publish_took: Duration,
    sizes: Sizes,
) -> Rollout {
    let queue = Mutex::new((0..vms.len()).collect::<VecDeque<usize>>());
    let passes = Mutex::new(Vec::new());
    let converged = AtomicUsize::new(0);
    let last = Mutex::new(Duration::ZERO);
    let in_flight = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..sizes.workers {
            scope.spawn(|| loop {
                if t0.elapsed() > sizes.limit {
                    break;
                }
                let Some(i) = lock(&queue).pop_front() else {
                    // The VMs left are in other workers' hands.
                    break;
                };
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                let p = pass(env, vms, i, &artifact);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let done = state(&vms[i], &artifact).0.as_deref() == Some(artifact.as_str());
                lock(&passes).push(p);
                if done {
                    converged.fetch_add(1, Ordering::SeqCst);
                    let mut l = lock(&last);
                    *l = (*l).max(t0.elapsed());
                } else {
                    lock(&queue).push_back(i);
                }
            });
        }
    });
    let converged = converged.into_inner();
    let last = *lock(&last);
    Rollout {
        artifact,
        publish: publish_took,
        took: (converged == vms.len()).then_some(last),
        passes: passes.into_inner().unwrap_or_else(|p| p.into_inner()),
        converged,
        in_flight: most.into_inner(),
    }
}

/// Takes every slot of the group for holders that are not VMs of it.
fn hold_slots(
    store: &Store,
    art: &ArchiveBuilder,
    slots: usize,
) -> anyhow::Result<Vec<fleet::lease::Lease>> {
    let n = u32::try_from(slots).unwrap_or(u32::MAX);
    (0..n)
        .map(|k| {
            match fleet::lease::acquire(
                store,
                GROUP,
                &format!("bench-holder-{k}"),
                art.name().file_name(),
                n,
                Duration::from_secs(120),
            )
            .context("taking a slot for the bench")?
            {
                fleet::lease::Acquired::Got(l) => Ok(l),
                fleet::lease::Acquired::Busy(_) => {
                    anyhow::bail!("slot {k} of {n}: every slot is held already")
                }
            }
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One pass on every VM (`workers` at a time), classified against
/// `artifact` ("" when nothing new was published).
fn each_vm(env: &Env, vms: &[Vm], workers: usize, artifact: &str) -> anyhow::Result<Vec<Pass>> {
    let queue = Mutex::new((0..vms.len()).collect::<VecDeque<usize>>());
    let passes = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(i) = {
                    let next = lock(&queue).pop_front();
                    next
                } {
                    let p = pass(env, vms, i, artifact);
                    lock(&passes).push(p);
                }
            });
        }
    });
    let mut passes = passes.into_inner().unwrap_or_else(|p| p.into_inner());
    passes.sort_by_key(|p| p.vm);
    Ok(passes)
}

/// Every deploy of `artifact` with its slot span (taken, ended), by VM.
fn slot_spans(vms: &[Vm], artifact: &str) -> anyhow::Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let mut spans = Vec::new();
    for vm in vms {
        let text = std::fs::read_to_string(vm.root.join("state/history.jsonl"))
            .with_context(|| format!("reading {}'s history", vm.id))?;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["action"] != "deploy" || v["artifact"] != artifact {
                continue;
            }
            let (Some(a), Some(b)) = (time(&v["slot"]["taken_at"]), time(&v["slot"]["ended_at"]))
            else {
                anyhow::bail!(
                    "{}'s deploy of {artifact} has no slot span in its history: {line}",
                    vm.id
                );
            };
            spans.push((a, b));
        }
    }
    Ok(spans)
}

/// The most spans open at one instant (one that ends when another starts
/// does not overlap it).
fn most_at_once(spans: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    let mut events: Vec<(DateTime<Utc>, i32)> =
        spans.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    // Ends before starts at the same instant.
    events.sort();
    let mut open = 0i32;
    let mut most = 0i32;
    for (_, d) in events {
        open += d;
        most = most.max(open);
    }
    usize::try_from(most).unwrap_or(0)
}

/// The size of VM `vm`'s report object as stored, of its `page` (the
/// embedded deploy-status.json), and of the page file on the VM.
#[derive(Debug)]
struct ReportParts {
    vm: String,
    whole: u64,
    without_page: u64,
    page_file: u64,
}

fn report_parts(store: &Store, vm: &Vm) -> anyhow::Result<ReportParts> {
    let key = layout::status(GROUP, &vm.id);
    let (bytes, _) = store
        .get(&key)
        .with_context(|| format!("reading {key}"))?
        .with_context(|| format!("{key} is not in the store"))?;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("page");
    }
    let mut page_file = Vec::new();
    std::fs::File::open(vm.root.join("state/deploy-status.json"))
        .and_then(|mut f| f.read_to_end(&mut page_file))
        .context("reading deploy-status.json")?;
    Ok(ReportParts {
        vm: vm.id.clone(),
        whole: bytes.len() as u64,
        without_page: serde_json::to_vec(&v)?.len() as u64,
        page_file: page_file.len() as u64,
    })
}

/// "LIST 1.0 (max 1), PUT 3.2 (max 5); total 4.2 (max 6)", kinds that
/// never occurred left out.
fn fmt_counts(cs: &[Counts]) -> String {
    if cs.is_empty() {
        return "none happened".into();
    }
    let n = cs.len() as f64;
    let mut parts = Vec::new();
    for (i, op) in OPS.iter().enumerate() {
        let max = cs.iter().map(|c| c.0[i]).max().unwrap_or(0);
        if max == 0 {
            continue;
        }
        let mean = cs.iter().map(|c| c.0[i]).sum::<u64>() as f64 / n;
        parts.push(format!("{op} {mean:.1} (max {max})"));
    }
    let mean = cs.iter().map(|c| c.total()).sum::<u64>() as f64 / n;
    let max = cs.iter().map(|c| c.total()).max().unwrap_or(0);
    if parts.is_empty() {
        return "no requests".into();
    }
    format!("{}; total {mean:.1} (max {max})", parts.join(", "))
}

fn of_kind(passes: &[Pass], kind: Kind) -> Vec<&Pass> {
    passes.iter().filter(|p| p.kind == kind).collect()
}

fn both(ps: &[&Pass]) -> Vec<Counts> {
    ps.iter().map(|p| p.collector.plus(p.switcher)).collect()
}

/// Passes per VM: min / median / max.
fn per_vm(passes: &[Pass], n: usize) -> (usize, usize, usize) {
    let mut counts = vec![0usize; n];
    for p in passes {
        counts[p.vm] += 1;
    }
    counts.sort_unstable();
    (
        counts.first().copied().unwrap_or(0),
        counts.get(n / 2).copied().unwrap_or(0),
        counts.last().copied().unwrap_or(0),
    )
}

fn failures(passes: &[Pass]) -> String {
    let failed: Vec<&str> = passes.iter().filter_map(|p| p.failed.as_deref()).collect();
    match failed.first() {
        None => "none".into(),
        Some(first) => format!("{}, the first: {first}", failed.len()),
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn mean_dur(ds: impl Iterator<Item = Duration>) -> Duration {
    let v: Vec<Duration> = ds.collect();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(u32::MAX)
}

#[allow(clippy::too_many_arguments)]
fn rows(
    sec: &mut Section,
    sizes: Sizes,
    r: &Rollout,
    spans: &[(DateTime<Utc>, DateTime<Utc>)],
    waiting_passes: &[Pass],
    idle: &[Pass],
    reports: &[fleet::ObjectMeta],
    aged: &Aged,
) {
    let n = sizes.vms;
    let waiting = of_kind(&r.passes, Kind::Waiting).len();
    let deploying = of_kind(&r.passes, Kind::Deploying).len();
    sec.row(Row {
        what: format!(
            "{n} VMs converge on a new artifact: publish → all running it ({} passes at a time, \
             back to back)",
            sizes.workers
        ),
        ours: match r.took {
            Some(t) => format!(
                "{} ({} passes: {deploying} deploying, {waiting} waiting for a slot, {} other)",
                fmt_dur(t),
                r.passes.len(),
                r.passes.len() - deploying - waiting
            ),
            None => format!(
                "not converged: {} of {n} within {}",
                r.converged,
                fmt_dur(sizes.limit)
            ),
        },
        reference: "–".into(),
        ratio: None,
        target: "every VM converges (no time set)".into(),
        met: Some(r.took.is_some()),
    });
    let (lo, mid, hi) = per_vm(&r.passes, n);
    sec.row(Row {
        what: "passes per VM until it runs it (min / median / max)".into(),
        ours: format!("{lo} / {mid} / {hi}"),
        reference: "–".into(),
        ratio: None,
        target: "none set".into(),
        met: None,
    });
    let most = most_at_once(spans);
    sec.row(Row {
        what: "most VMs switching at once (slot spans in history.jsonl, to the ms)".into(),
        ours: format!("{most} (of {} spans)", spans.len()),
        reference: "–".into(),
        ratio: None,
        target: format!("≤ {} (max_parallel)", sizes.max_parallel),
        met: Some(most <= sizes.max_parallel && spans.len() == n),
    });
    sec.row(Row {
        what: "store requests of a deploying pass (collector + switcher), mean (max)".into(),
        ours: fmt_counts(&both(&of_kind(&r.passes, Kind::Deploying))),
        reference: "–".into(),
        ratio: None,
        target: "none set".into(),
        met: None,
    });
    let waited = of_kind(waiting_passes, Kind::Waiting);
    sec.row(Row {
        what: format!(
            "store requests of a pass waiting for a slot (all {} held by others; collector + \
             switcher), mean (max)",
            sizes.max_parallel
        ),
        ours: format!(
            "{} ({} of {n} VMs waited)",
            fmt_counts(&both(&waited)),
            waited.len()
        ),
        reference: "–".into(),
        ratio: None,
        target: "none set".into(),
        met: None,
    });
    let exact = idle
        .iter()
        .filter(|p| p.collector.only("LIST", 1) && p.switcher.only("PUT", 1))
        .count();
    let all: Vec<Counts> = idle.iter().map(|p| p.collector.plus(p.switcher)).collect();
    sec.row(Row {
        what: format!("idle pass: store requests per VM per period ({PERIOD})"),
        ours: format!(
            "{exact} of {} VMs exactly 1 LIST + 1 PUT; {}",
            idle.len(),
            fmt_counts(&all)
        ),
        reference: "–".into(),
        ratio: None,
        target: "1 LIST (collector) and 1 PUT (switcher) per VM".into(),
        met: Some(exact == idle.len() && idle.len() == n),
    });
    let sizes_b: Vec<u64> = reports.iter().map(|o| o.size).collect();
    let max = sizes_b.iter().copied().max().unwrap_or(0);
    let mean = if sizes_b.is_empty() {
        0
    } else {
        sizes_b.iter().sum::<u64>() / sizes_b.len() as u64
    };
    let history_full = aged
        .steps
        .iter()
        .find(|st| st.deploys >= HISTORY_LINES)
        .or(aged.steps.last());
    let steps: Vec<String> = aged
        .steps
        .iter()
        .map(|st| format!("{} after {} deploys", kib(st.report.whole), st.deploys))
        .collect();
    sec.row(Row {
        what: "idle pass: the PUT's size (the VM's report, fleet/<group>/status/<vm>.json)".into(),
        ours: format!(
            "{} mean, {} max over {} VMs with {} deploys each; one VM aged: {}; {} with {} \
             uploads waiting in drop/",
            kib(mean),
            kib(max),
            sizes_b.len(),
            aged.young_deploys,
            steps.join(", "),
            kib(aged.with_uploads.whole),
            aged.uploads
        ),
        reference: "–".into(),
        ratio: None,
        target: format!(
            "small: ≤ {}, also with a full history ({HISTORY_LINES} deploys)",
            kib(SMALL_PUT)
        ),
        met: Some(
            max <= SMALL_PUT
                && sizes_b.len() == n
                && history_full.is_some_and(|st| st.report.whole <= SMALL_PUT),
        ),
    });
}

/// The deploys in a VM's history.
fn deploys_of(vm: &Vm) -> usize {
    std::fs::read_to_string(vm.root.join("state/history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"action\":\"deploy\""))
        .count()
}

/// The report of VM 0 as it ages.
#[derive(Debug)]
struct Aged {
    /// Deploys each VM had at the idle pass (set by the caller; `age`
    /// puts those it found).
    young_deploys: usize,
    /// After more deploys: an idle pass's report.
    steps: Vec<AgedStep>,
    /// Uploads waiting in its drop folder at the last step.
    uploads: usize,
    /// Its report with the uploads waiting too (after the last step).
    with_uploads: ReportParts,
    /// The switcher's requests of every idle pass of this.
    switcher: Vec<Counts>,
}

/// VM 0 after some deploys.
#[derive(Debug)]
struct AgedStep {
    /// Deploys in its history.
    deploys: usize,
    /// Its report after an idle pass.
    report: ReportParts,
}

/// Ages VM 0: for each of `more`, that many more artifacts through its
/// drop folder (one pass each; its history.jsonl grows, the page lists the
/// last 20 lines and a timeline of the last 7 days) and an idle pass; then
/// `uploads` uploads without their marker (the page lists every upload
/// waiting) and an idle pass. Its report after each idle pass.
fn age(
    env: &Env,
    vms: &[Vm],
    store: &Store,
    more: &[usize],
    uploads: usize,
) -> anyhow::Result<Aged> {
    let vm = &vms[0];
    let drop_dir = vm.root.join("drop");
    let young_deploys = deploys_of(vm);
    let mut steps = Vec::new();
    let mut switcher = Vec::new();
    let mut k = 0i64;
    for &m in more {
        for _ in 0..m {
            let art = app_artifact(&format!("4.0.{k}"), 10 + k);
            k += 1;
            art.drop_into(&drop_dir);
            let name = art.name().file_name().to_string();
            let p = pass(env, vms, 0, &name);
            anyhow::ensure!(
                p.kind == Kind::Deploying,
                "{} did not deploy {name} from its drop folder ({:?}; failed: {})",
                vm.id,
                p.kind,
                p.failed.unwrap_or_else(|| "no".into())
            );
        }
        switcher.push(pass(env, vms, 0, "").switcher);
        steps.push(AgedStep {
            deploys: deploys_of(vm),
            report: report_parts(store, vm)?,
        });
    }
    for u in 0..uploads {
        let name = app_artifact(&format!("5.0.{u}"), 10_000 + u as i64).name();
        std::fs::write(
            drop_dir.join(name.file_name()),
            b"an upload still arriving\n",
        )?;
    }
    switcher.push(pass(env, vms, 0, "").switcher);
    let with_uploads = report_parts(store, vm)?;
    Ok(Aged {
        young_deploys,
        steps,
        uploads,
        with_uploads,
        switcher,
    })
}

#[allow(clippy::too_many_arguments)]
fn notes(
    sec: &mut Section,
    sizes: Sizes,
    weed_version: &str,
    [first, second, third]: [&Rollout; 3],
    spans: &[(DateTime<Utc>, DateTime<Utc>)],
    (waiting, idle): (&[Pass], &[Pass]),
    reports: &[fleet::ObjectMeta],
    parts: &ReportParts,
    aged: &Aged,
) {
    let n = sizes.vms;
    sec.note(format!(
        "The store: {weed_version}, `weed mini` (master, volume, filer and S3 gateway in one \
         process) on loopback ports, started with the flags of the fleet tests' fixture \
         (tests/support/seaweed.rs) and stopped by pid at the end; the VMs sign with its keys, \
         given as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in each child's environment. It shares \
         this machine's {} cores with the passes.",
        thread::available_parallelism().map_or(1, |c| c.get())
    ));
    sec.note(format!(
        "The VMs: {n} deploy roots in the bench's work folder, each `[kinds] app = [\"app\"]`, one \
         component `app` without commands (files only: the switcher unpacks, flips current/ and \
         records; there is nothing to start, so nothing to verify) on a port this process \
         listens on and accepts, so its status is UP; `[status] period = {PERIOD:?}`, `[store]` \
         path style, `[fleet] group = {GROUP:?}, id = \"vm-NNN\", max_parallel = {}, lease_ttl = \
         \"2m\"`. The binaries are the release build with `--features \
         collector/s3,switcher/s3,deliver/s3` (the .deb's).",
        sizes.max_parallel
    ));
    sec.note(format!(
        "Publishing: `fleet::Store` from this process, the artifact with If-None-Match: * and \
         x-amz-checksum-sha256, then its marker with If-None-Match: *, the two PUTs `artifact-name \
         deliver --to s3://` makes (docs/fleet.md); deliver's store path is not on this branch \
         yet, so the bench does not run it. {} took {} to publish ({} bytes).",
        second.artifact,
        fmt_dur(second.publish),
        app_artifact("2.0.0", 2).bytes().len()
    ));
    sec.note(format!(
        "Cron, simulated: {} worker threads take the VMs in turn; a pass is `collector` then \
         `switcher` (fresh processes, as cron runs them), and a VM that does not run the \
         artifact yet goes to the back of the queue. There is no period between passes, so the \
         time is what the machine and the store take, not cron's minute: with cron, a VM makes \
         one pass a period, and a VM that found every slot taken tries again a period later. At \
         most {} passes ran at once. The clock runs from the start of publishing to the end of \
         the pass after which the last VM ran it.",
        sizes.workers, second.in_flight
    ));
    sec.note(format!(
        "Two rollouts: the first ({}) on fresh VMs prepares the group and is not in the table: \
         {} for all {n}, {} passes, requests per deploying pass {} (it includes each VM's \
         one-time conditional-write probe, asked at its first pass with a slot to take; \
         failed passes: {}). The second ({}), measured: every VM switches from the first \
         release; failed passes: {}.",
        first.artifact,
        first.took.map_or_else(|| "not converged".into(), fmt_dur),
        first.passes.len(),
        fmt_counts(&both(&of_kind(&first.passes, Kind::Deploying))),
        failures(&first.passes),
        second.artifact,
        failures(&second.passes),
    ));
    for (label, kind) in [
        ("deploying", Kind::Deploying),
        ("waiting", Kind::Waiting),
        ("other", Kind::Other),
    ] {
        let ps = of_kind(&second.passes, kind);
        if ps.is_empty() {
            continue;
        }
        let c: Vec<Counts> = ps.iter().map(|p| p.collector).collect();
        let s: Vec<Counts> = ps.iter().map(|p| p.switcher).collect();
        sec.note(format!(
            "A {label} pass ({} of them; wall {} mean, with up to {} passes sharing the cores): \
             collector {}; switcher {}.",
            ps.len(),
            fmt_dur(mean_dur(ps.iter().map(|p| p.wall))),
            second.in_flight,
            fmt_counts(&c),
            fmt_counts(&s)
        ));
    }
    sec.note(
        "Where the requests come from (docs/fleet.md, \"What a VM does each pass\"): the \
         collector LISTs drop/ and, at its first pass after the publish, GETs the marker and the \
         artifact; the switcher, with something to deploy, GETs control.json (404: no fleet \
         holds), LISTs failures/<artifact>/, then for slot 0, 1, ...: a create (PUT \
         If-None-Match, refused once the lease object exists), a GET of the lease and, when it \
         is free, a PUT If-Match to take it; after the switch a PUT to release it; every pass \
         ends with one PUT of the VM's report. A waiting pass tried every slot.",
    );
    // An uncontended take: GET control.json, LIST failures, PUT create
    // (refused), GET the lease, PUT If-Match, PUT release, PUT report.
    let deploying = of_kind(&second.passes, Kind::Deploying);
    let extra: Vec<u64> = deploying
        .iter()
        .map(|p| p.switcher.total().saturating_sub(7))
        .collect();
    let contended = extra.iter().filter(|&&e| e > 0).count();
    sec.note(format!(
        "Contention: an uncontended take costs the switcher 7 requests (GET control.json, LIST \
         failures, the refused create, GET and PUT If-Match of slot 0, the release, the report). \
         {contended} of {} deploying passes made more ({:.1} more on average, {} at most): \
         every VM scans the slots from 0, so each slot found held, or lost to another VM's \
         If-Match on the same free slot, costs 2 or 3 requests more.{}",
        deploying.len(),
        extra.iter().sum::<u64>() as f64 / extra.len().max(1) as f64,
        extra.iter().max().copied().unwrap_or(0),
        if of_kind(&second.passes, Kind::Waiting).is_empty() {
            " No pass of this rollout found every slot held (the most switching at once is in \
             the table), hence the next measurement."
        } else {
            ""
        }
    ));
    let waited = of_kind(waiting, Kind::Waiting);
    let c: Vec<Counts> = waited.iter().map(|p| p.collector).collect();
    let s: Vec<Counts> = waited.iter().map(|p| p.switcher).collect();
    sec.note(format!(
        "A waiting pass, measured on purpose: this process took all {mp} slots (as holders \
         `bench-holder-N`, through `fleet::lease`), published {}, and every VM made one pass: \
         {} of {n} found every slot held ({} other; failed passes: {}). Collector {} (its GETs: \
         the new \
         artifact and its marker, taken while it waits); switcher {}: for each of the {mp} \
         slots a refused create and a GET, besides GET control.json, LIST failures and the \
         report. Then the slots were released and the group converged on it in {} ({} passes; \
         failed passes: {}).",
        third.artifact,
        waited.len(),
        waiting.len() - waited.len(),
        failures(waiting),
        fmt_counts(&c),
        fmt_counts(&s),
        third
            .took
            .map_or_else(|| "not within the limit".into(), fmt_dur),
        third.passes.len(),
        failures(&third.passes),
        mp = sizes.max_parallel,
    ));
    let holds: Vec<i64> = spans
        .iter()
        .map(|(a, b)| (*b - *a).num_milliseconds())
        .collect();
    let mean_hold = if holds.is_empty() {
        0
    } else {
        holds.iter().sum::<i64>() / holds.len() as i64
    };
    sec.note(format!(
        "Slot holders: each VM's history.jsonl line of the deploy carries `slot: {{slot, \
         taken_at, ended_at}}` to the millisecond (taken after the lease was written, ended \
         before it is released, so the lease itself is held a little longer); the most spans \
         open at one instant, over all {} deploys, is the figure; a slot was held {} ms on \
         average ({} ms at most).",
        spans.len(),
        mean_hold,
        holds.iter().max().copied().unwrap_or(0)
    ));
    let idle_wall = mean_dur(idle.iter().map(|p| p.wall));
    let total_bytes: u64 = reports.iter().map(|o| o.size).sum();
    sec.note(format!(
        "Idle pass: once all {n} run it, one more pass per VM with nothing new (wall {} mean for \
         collector + switcher, against the store on this machine; failed passes: {}). The group's idle traffic \
         per period is therefore {} LISTs and {} PUTs ({} uploaded in reports). The report \
         object is {} for VM {} (as stored): the report's own fields take {} and the embedded \
         `page` (the VM's deploy-status.json without its history, timeline, waiting list and failure lists; the whole page is {} on disk) the rest. The LIST's answer \
         grows with drop/: one request reads up to 1,000 keys, so past 500 artifacts with their \
         markers an idle collector makes 2 LISTs, and so on.",
        fmt_dur(idle_wall),
        failures(idle),
        idle.iter().map(|p| p.collector.0[0]).sum::<u64>(),
        idle.iter().map(|p| p.switcher.0[3]).sum::<u64>(),
        kib(total_bytes),
        kib(parts.whole),
        parts.vm,
        kib(parts.without_page),
        kib(parts.page_file)
    ));
    let steps: Vec<String> = aged
        .steps
        .iter()
        .map(|st| {
            format!(
                "{} deploys: {} ({} of the report's own fields, the page the rest; the page is \
                 {} on disk)",
                st.deploys,
                kib(st.report.whole),
                kib(st.report.without_page),
                kib(st.report.page_file)
            )
        })
        .collect();
    sec.note(format!(
        "The report as a VM ages: {vm} made more deploys from its drop folder (one pass each; \
         the page lists the last {HISTORY_LINES} lines of history.jsonl and draws a timeline of \
         the last 7 days), each step followed by an idle pass: {}. Then {} uploads without a \
         marker were left in its drop folder (the page lists every upload waiting) and an idle \
         pass wrote {} (the page {} on disk). The switcher's requests in these idle passes: {}.",
        steps.join("; "),
        aged.uploads,
        kib(aged.with_uploads.whole),
        kib(aged.with_uploads.page_file),
        fmt_counts(&aged.switcher),
        vm = parts.vm,
    ));
    sec.note(
        "Client weight (measured by hand on this machine, not by the bench): a clean debug build \
         of the `fleet` crate (rusty-s3 + ureq, deploy-root included) took 71.6 s wall / 51.5 s \
         user; a crate with only object_store 0.14 (feature aws) and tokio took 130.8 s wall / \
         76.6 s user (0.55 of the wall time, 0.67 of the user time). The collector has 78 crates \
         in its dependency tree without the `s3` feature and 139 with it; object_store with \
         `aws` alone brings 146.",
    );
}
