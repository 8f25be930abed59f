//! `switcher watch`: a long-running process that deploys an upload within
//! seconds of its marker landing in the drop folder, instead of within
//! cron's minute.
//!
//! It waits on inotify (the drop folder) and a signalfd (SIGTERM, SIGINT)
//! with one `poll`, so it costs nothing while nothing arrives. A *round* is
//! what one cron minute does: the `collector` binary (spawned, with this
//! process's `--config`), then one switcher pass in process
//! ([`pass::run`]). Each takes its own lock as it does from cron, so cron
//! (or the timer) and `watch` can run side by side: whichever holds a lock
//! does the work, the other finds it held and does nothing.
//!
//! A round runs:
//! - at start (what arrived while nothing watched);
//! - [`DEBOUNCE`] after a marker (`*.sha256`) is closed after writing or
//!   renamed into the drop folder (CI's deliver writes `.cutover-*.part`
//!   temp names, then renames), so that a burst of uploads is one round;
//! - every `status.period`, as a safety net: a missed event, a drop folder
//!   on NFS (where inotify sees only this machine's writes);
//! - after the inotify queue overflowed, and when the drop folder comes
//!   back after being removed or renamed (while it is gone, the nearest
//!   existing parent is watched for it to reappear);
//! - [`LOCK_RETRY`] after a round that found a lock held (cron's run may
//!   have looked at the folder just before the marker arrived).
//!
//! SIGTERM and SIGINT are blocked and read from a signalfd, never handled
//! asynchronously: a pass under way always finishes (its journal is then
//! gone), and the process exits 0 after it. Children get a clean signal
//! mask (std resets it before exec), and the collector runs in its own
//! process group, so a Ctrl-C in a terminal does not cut its pass short.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use deploy_root::logging::LogArgs;
use deploy_root::{lock, Config, Layout};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::{exit_codes, pass};

/// Events within this long of the first one make one round: an upload's
/// artifact and marker, several components delivered together.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// How soon a round that found a lock held is tried again.
pub const LOCK_RETRY: Duration = Duration::from_secs(1);

/// What is watched on the drop folder: a marker written in place or
/// renamed in, and the folder itself going away.
const DROP_MASK: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// What is watched on a parent while the drop folder (or a folder on the
/// way to it) is missing: the next folder appearing, or the parent itself
/// going away too.
const PARENT_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// Which of our watches an event came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The drop folder.
    Drop,
    /// A parent, watched while the folder below it on the way to the drop
    /// folder (named here) is missing.
    Parent(OsString),
    /// No current watch: the queue overflowed (wd -1), or a watch removed
    /// since (its last events, IN_IGNORED).
    Other,
}

/// One inotify event, with its watch resolved to what it watches.
#[derive(Clone, Debug)]
pub struct Event {
    /// Where it came from.
    pub source: Source,
    /// What happened.
    pub mask: AddWatchFlags,
    /// The entry's name, for events about an entry of a watched folder.
    pub name: Option<OsString>,
}

/// What an event calls for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Run a round (after [`DEBOUNCE`]).
    pub round: bool,
    /// Set the watches up again (the drop folder went away or came back,
    /// or events were lost).
    pub rewatch: bool,
}

impl Reaction {
    fn merge(&mut self, other: Reaction) {
        self.round |= other.round;
        self.rewatch |= other.rewatch;
    }
}

/// Decides what one event calls for. Pure, so that the cases the kernel
/// makes hard to provoke (a queue overflow) are tested directly.
pub fn react(event: &Event) -> Reaction {
    let gone = AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_IGNORED
        | AddWatchFlags::IN_UNMOUNT;
    if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        // Events were dropped, a marker's or the folder's own among them
        // maybe: look at everything again.
        return Reaction {
            round: true,
            rewatch: true,
        };
    }
    match &event.source {
        Source::Drop if event.mask.intersects(gone) => Reaction {
            round: false,
            rewatch: true,
        },
        Source::Drop => {
            let arrived = event
                .mask
                .intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO)
                && !event.mask.contains(AddWatchFlags::IN_ISDIR);
            Reaction {
                round: arrived && event.name.as_deref().is_some_and(is_marker),
                rewatch: false,
            }
        }
        Source::Parent(_) if event.mask.intersects(gone) => Reaction {
            round: false,
            rewatch: true,
        },
        Source::Parent(next) => Reaction {
            round: false,
            // The rewatch runs the round when it finds the drop folder.
            rewatch: event.name.as_deref() == Some(next.as_os_str()),
        },
        Source::Other => Reaction::default(),
    }
}

/// Whether a name is a completion marker (`<artifact>.sha256`), not a
/// temp name (`.cutover-<hex>.part`, rsync's `.<name>.XXXXXX`).
fn is_marker(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.ends_with(artifact_name::MARKER_SUFFIX.as_bytes()) && !name.starts_with(b".")
}

/// What the inotify instance currently watches.
#[derive(Debug)]
enum Target {
    /// Nothing (inotify refused every path: only the period runs rounds).
    Nothing,
    /// The drop folder itself.
    Drop(WatchDescriptor),
    /// A parent, until the named folder below it appears.
    Parent(WatchDescriptor, OsString),
}

/// The inotify side: the drop folder, or the parent to wait on.
#[derive(Debug)]
struct DropWatch {
    inotify: Inotify,
    drop: PathBuf,
    target: Target,
}

impl DropWatch {
    fn new(drop: &Path) -> anyhow::Result<DropWatch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .context("starting inotify")?;
        Ok(DropWatch {
            inotify,
            drop: drop.to_path_buf(),
            target: Target::Nothing,
        })
    }

    /// Sets the watch up anew: on the drop folder if it is there, else on
    /// its nearest existing parent. Returns whether the drop folder is now
    /// watched by a new watch (it was not watched, or it is another folder
    /// than before: removed and made again between two reads of events):
    /// then a round should look at it, as things may have arrived unseen.
    fn rewatch(&mut self) -> bool {
        let mut before = match std::mem::replace(&mut self.target, Target::Nothing) {
            Target::Drop(wd) => Some(wd),
            Target::Parent(wd, _) => {
                // EINVAL: the kernel removed it already (the folder is gone).
                let _ = self.inotify.rm_watch(wd);
                None
            }
            Target::Nothing => None,
        };
        // A folder may appear between a failed watch and the parent's watch
        // (then the parent never sees it created): go round again, a few
        // times at most.
        for _ in 0..8 {
            // The same folder gives the same watch back (the kernel keys
            // watches by inode); another folder, a new one.
            match self.inotify.add_watch(&self.drop, DROP_MASK) {
                Ok(wd) => {
                    self.target = Target::Drop(wd);
                    if before == Some(wd) {
                        return false;
                    }
                    if let Some(old) = before {
                        let _ = self.inotify.rm_watch(old);
                    }
                    tracing::info!("watching {}", self.drop.display());
                    return true;
                }
                Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => {
                    tracing::warn!(
                        "cannot watch {}: {e}; looking every status.period only",
                        self.drop.display()
                    );
                    return false;
                }
            }
            if let Some(old) = before.take() {
                let _ = self.inotify.rm_watch(old);
            }
            match self.watch_parent() {
                Some((wd, next, present)) => {
                    if !present {
                        tracing::warn!(
                            "the drop folder {} is missing; waiting for {} to appear",
                            self.drop.display(),
                            next.to_string_lossy()
                        );
                        self.target = Target::Parent(wd, next);
                        return false;
                    }
                    let _ = self.inotify.rm_watch(wd);
                }
                None => {
                    tracing::warn!(
                        "cannot watch {} nor any folder above it; looking every status.period only",
                        self.drop.display()
                    );
                    return false;
                }
            }
        }
        false
    }

    /// Watches the nearest existing parent of the drop folder. Returns the
    /// watch, the name of the missing folder below it, and whether that
    /// folder exists after all (it appeared meanwhile).
    fn watch_parent(&self) -> Option<(WatchDescriptor, OsString, bool)> {
        let mut below = self.drop.as_path();
        for parent in self.drop.ancestors().skip(1) {
            let next = below.file_name()?.to_os_string();
            if let Ok(wd) = self.inotify.add_watch(parent, PARENT_MASK) {
                return Some((wd, next, below.is_dir()));
            }
            below = parent;
        }
        None
    }

    /// The events waiting, each resolved to its source.
    fn events(&self) -> anyhow::Result<Vec<Event>> {
        let mut all = Vec::new();
        loop {
            match self.inotify.read_events() {
                Ok(batch) if batch.is_empty() => return Ok(all),
                Ok(batch) => all.extend(batch.into_iter().map(|e| self.resolve(e))),
                Err(Errno::EAGAIN) => return Ok(all),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e).context("reading inotify events"),
            }
        }
    }

    fn resolve(&self, e: InotifyEvent) -> Event {
        let source = match &self.target {
            Target::Drop(wd) if *wd == e.wd => Source::Drop,
            Target::Parent(wd, next) if *wd == e.wd => Source::Parent(next.clone()),
            _ => Source::Other,
        };
        Event {
            source,
            mask: e.mask,
            name: e.name,
        }
    }
}

/// SIGTERM and SIGINT, blocked and read from a signalfd.
#[derive(Debug)]
struct StopSignals {
    fd: SignalFd,
}

impl StopSignals {
    /// Blocks the signals (before any thread starts: threads inherit the
    /// mask, and an unblocked thread would take the default action, death).
    fn block() -> anyhow::Result<StopSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set.thread_block().context("blocking SIGTERM and SIGINT")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("opening a signalfd")?;
        Ok(StopSignals { fd })
    }

    /// The stop signal received, if any (does not wait).
    fn take(&self) -> anyhow::Result<Option<String>> {
        match self.fd.read_signal() {
            Ok(Some(info)) => {
                let name = i32::try_from(info.ssi_signo)
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok())
                    .map_or_else(|| format!("signal {}", info.ssi_signo), |s| s.to_string());
                Ok(Some(name))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e).context("reading the signalfd"),
        }
    }
}

/// How a round ended.
#[derive(Debug, Default)]
struct RoundEnd {
    /// A lock was held by another run: try again soon.
    locked: bool,
    /// A stop signal arrived during the round (its name).
    stop: Option<String>,
}

/// The long-running watcher.
#[derive(Debug)]
struct Watcher<'a> {
    config: &'a Config,
    layout: &'a Layout,
    log: LogArgs,
    collector: PathBuf,
    signals: StopSignals,
    watch: DropWatch,
}

/// Runs `switcher watch` until SIGTERM or SIGINT; returns the exit code.
/// With `dry_run` (the global `--dry-run`) it refuses: watching is all
/// doing, and `switcher --dry-run` already says what a pass would do.
pub fn run(config: &Config, layout: &Layout, log: LogArgs, dry_run: bool) -> anyhow::Result<u8> {
    if dry_run {
        eprintln!(
            "switcher: watch has no --dry-run (it deploys what arrives); \
             `switcher --dry-run` says what the next pass would do"
        );
        return Ok(artifact_name::exit_codes::USAGE);
    }
    let signals = StopSignals::block()?;
    let mut watch = DropWatch::new(&layout.drop)?;
    watch.rewatch();
    let watcher = Watcher {
        config,
        layout,
        log,
        collector: collector_path(),
        signals,
        watch,
    };
    watcher.run()
}

/// The `collector` binary: beside this executable (an installed package,
/// a build folder), else whatever PATH finds.
fn collector_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("collector"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("collector"))
}

impl Watcher<'_> {
    fn run(mut self) -> anyhow::Result<u8> {
        let period = self.config.status.period.max(Duration::from_secs(1));
        tracing::info!(
            "switcher watch: {} (and every {} s); collector: {}",
            self.layout.drop.display(),
            period.as_secs(),
            self.collector.display()
        );
        // What arrived while nothing watched.
        let mut due = Some(Instant::now());
        let mut next_period = Instant::now() + period;
        loop {
            let now = Instant::now();
            if due.is_some_and(|d| d <= now) || next_period <= now {
                if !matches!(self.watch.target, Target::Drop(_)) {
                    // The round may recreate the drop folder (the passes
                    // make missing folders); the parent's watch sees it.
                    self.watch.rewatch();
                }
                let started = Instant::now();
                let end = self.round();
                tracing::debug!("round done in {} ms", started.elapsed().as_millis());
                due = end.locked.then(|| Instant::now() + LOCK_RETRY);
                next_period = Instant::now() + period;
                if let Some(signal) = end.stop {
                    return Ok(stopped(&signal));
                }
                continue;
            }
            let wake = due.map_or(next_period, |d| d.min(next_period));
            let timeout = timeout_until(wake, now);
            let (signalled, changed) = {
                let mut fds = [
                    PollFd::new(self.signals.fd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.watch.inotify.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("waiting for events"),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if signalled {
                if let Some(signal) = self.signals.take()? {
                    return Ok(stopped(&signal));
                }
            }
            if changed {
                let mut reaction = Reaction::default();
                for event in self.watch.events()? {
                    tracing::trace!("{event:?}");
                    reaction.merge(react(&event));
                }
                if reaction.rewatch && self.watch.rewatch() {
                    reaction.round = true;
                }
                if reaction.round && due.is_none() {
                    due = Some(Instant::now() + DEBOUNCE);
                }
            }
        }
    }

    /// One round: the collector's pass, then the switcher's, as cron runs
    /// them. A stop signal between the two skips the switcher's pass (it
    /// has not begun; cron or the next start will run it).
    fn round(&self) -> RoundEnd {
        let mut end = RoundEnd::default();
        if self.held(&self.layout.collector_lock()) {
            // Another collector (cron's) is at work, and cron runs the
            // switcher right after it; look again soon, in case it listed
            // the drop folder before this marker arrived.
            end.locked = true;
            return end;
        }
        self.collect();
        match self.signals.take() {
            Ok(Some(signal)) => {
                end.stop = Some(signal);
                return end;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e:#}"),
        }
        if self.held(&self.layout.switcher_lock()) {
            // pass::run would find it held and do nothing, and the holder
            // may have listed staging/ before this collector's pass.
            end.locked = true;
        } else if let Err(e) = pass::run(self.config, self.layout) {
            // Other outcomes are logged by the pass itself.
            tracing::error!("{e:#}");
        }
        match self.signals.take() {
            Ok(signal) => end.stop = signal,
            Err(e) => tracing::warn!("{e:#}"),
        }
        end
    }

    /// Runs the collector binary once and waits for it.
    fn collect(&self) {
        let mut cmd = Command::new(&self.collector);
        cmd.arg("--config")
            .arg(&self.config.path)
            .args(log_flags(self.log))
            .stdin(Stdio::null())
            // Its own process group: a Ctrl-C meant for the watcher must
            // not cut the collector's pass short.
            .process_group(0);
        match cmd.status() {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!("{} ended with {status}", self.collector.display()),
            Err(e) => tracing::error!("cannot run {}: {e}", self.collector.display()),
        }
    }

    /// Whether another process holds the lock at `path` now. Taking the
    /// lock for this instant is harmless: a cron run that finds it held
    /// does nothing, and this round does the work right after.
    fn held(&self, path: &Path) -> bool {
        match lock::try_lock(path) {
            Ok(Some(_guard)) => false,
            Ok(None) => {
                tracing::info!("{} is held; trying again shortly", path.display());
                true
            }
            // No state folder yet, say: the passes make it, or say why not.
            Err(_) => false,
        }
    }
}

fn stopped(signal: &str) -> u8 {
    tracing::info!("switcher watch: {signal}: stopping");
    exit_codes::OK
}

/// The `-v`/`-q` flags that give the collector this process's log level.
fn log_flags(log: LogArgs) -> Vec<&'static str> {
    let mut flags = vec!["-v"; usize::from(log.verbose)];
    flags.extend(vec!["-q"; usize::from(log.quiet)]);
    flags
}

/// A poll timeout that reaches `wake` (rounded up to the millisecond, so
/// that the loop does not spin through the last fraction).
fn timeout_until(wake: Instant, now: Instant) -> PollTimeout {
    let left = wake.saturating_duration_since(now) + Duration::from_millis(1);
    PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: Source, mask: AddWatchFlags, name: Option<&str>) -> Event {
        Event {
            source,
            mask,
            name: name.map(OsString::from),
        }
    }

    const MARKER: &str = "full_20261126T235012Z_1.4.2_master.tar.gz.sha256";

    #[test]
    fn a_queue_overflow_rescans_and_rewatches() {
        // The kernel's overflow event: wd -1, no name, from no watch of ours.
        let overflow = event(Source::Other, AddWatchFlags::IN_Q_OVERFLOW, None);
        assert_eq!(
            react(&overflow),
            Reaction {
                round: true,
                rewatch: true
            }
        );
    }

    #[test]
    fn a_marker_closed_or_renamed_in_makes_a_round() {
        for mask in [AddWatchFlags::IN_CLOSE_WRITE, AddWatchFlags::IN_MOVED_TO] {
            let r = react(&event(Source::Drop, mask, Some(MARKER)));
            assert!(r.round && !r.rewatch, "{mask:?}");
        }
    }

    #[test]
    fn temp_names_and_artifacts_make_no_round() {
        for name in [
            ".cutover-3f2a9c1d.part",
            ".cutover-3f2a9c1d.part.Xy12Ab",
            "full_20261126T235012Z_1.4.2_master.tar.gz",
            ".full_20261126T235012Z_1.4.2_master.tar.gz.sha256",
        ] {
            let r = react(&event(Source::Drop, AddWatchFlags::IN_MOVED_TO, Some(name)));
            assert_eq!(r, Reaction::default(), "{name}");
        }
        let dir = AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ISDIR;
        assert_eq!(
            react(&event(Source::Drop, dir, Some("x.sha256"))),
            Reaction::default()
        );
    }

    #[test]
    fn the_drop_folder_going_away_rewatches() {
        for mask in [
            AddWatchFlags::IN_DELETE_SELF,
            AddWatchFlags::IN_MOVE_SELF,
            AddWatchFlags::IN_IGNORED,
            AddWatchFlags::IN_UNMOUNT,
        ] {
            let r = react(&event(Source::Drop, mask, None));
            assert!(r.rewatch && !r.round, "{mask:?}");
        }
    }

    #[test]
    fn the_parent_rewatches_only_for_the_missing_folder() {
        let parent = Source::Parent(OsString::from("drop"));
        let r = react(&event(
            parent.clone(),
            AddWatchFlags::IN_CREATE,
            Some("drop"),
        ));
        assert!(r.rewatch, "drop created");
        let r = react(&event(
            parent.clone(),
            AddWatchFlags::IN_MOVED_TO,
            Some("drop"),
        ));
        assert!(r.rewatch, "drop renamed in");
        let r = react(&event(
            parent.clone(),
            AddWatchFlags::IN_CREATE,
            Some("state"),
        ));
        assert_eq!(r, Reaction::default());
        let r = react(&event(parent, AddWatchFlags::IN_DELETE_SELF, None));
        assert!(r.rewatch, "the parent went too");
    }

    #[test]
    fn stale_watches_are_ignored() {
        let r = react(&event(Source::Other, AddWatchFlags::IN_IGNORED, None));
        assert_eq!(r, Reaction::default());
    }

    #[test]
    fn the_drop_folder_is_watched_again_after_it_comes_back() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let drop = dir.path().join("root/drop");
        let mut w = DropWatch::new(&drop)?;
        assert!(!w.rewatch(), "nothing to watch yet");
        assert!(matches!(&w.target, Target::Parent(_, n) if n == "root"));
        std::fs::create_dir_all(&drop)?;
        let reaction = w
            .events()?
            .iter()
            .map(react)
            .fold(Reaction::default(), |mut a, r| {
                a.merge(r);
                a
            });
        assert!(reaction.rewatch, "root/ appearing is seen");
        assert!(
            w.rewatch(),
            "drop/ is there now: watched, and a round is due"
        );
        assert!(matches!(w.target, Target::Drop(_)));
        std::fs::remove_dir(&drop)?;
        let reaction = w
            .events()?
            .iter()
            .map(react)
            .fold(Reaction::default(), |mut a, r| {
                a.merge(r);
                a
            });
        assert!(reaction.rewatch, "drop/ going away is seen");
        assert!(!w.rewatch());
        assert!(matches!(&w.target, Target::Parent(_, n) if n == "drop"));
        // Removed and made again before the events are read: another
        // folder, so a round must look at it.
        std::fs::create_dir(&drop)?;
        assert!(w.rewatch());
        assert!(!w.rewatch(), "the same folder: nothing new");
        std::fs::remove_dir(&drop)?;
        std::fs::create_dir(&drop)?;
        assert!(w.rewatch(), "a new folder under the same name");
        Ok(())
    }

    #[test]
    fn log_flags_follow_the_watchers_level() {
        let log = LogArgs {
            verbose: 2,
            quiet: 0,
        };
        assert_eq!(log_flags(log), ["-v", "-v"]);
        assert!(log_flags(LogArgs::default()).is_empty());
    }
}
