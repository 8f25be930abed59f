//! Cancelling a delivery: SIGTERM (a CI runner cancelling the job) or
//! SIGINT (Ctrl-C) stops the upload and removes what it left on the VM.
//!
//! Left alone, the rsync child would outlive `deliver`, finish, and leave a
//! full-size temporary file in the drop folder forever. So `deliver` blocks
//! both signals and a thread waits for them (`sigwait`: no signal handler,
//! no unsafe code). On one it kills the rsync or ssh running now and its
//! descendants (rsync's ssh), found in /proc before the kill; they stay in
//! deliver's process group, so a runner that kills the whole group still
//! takes them along. Then it removes the upload's temporary file on the VM with one ssh `rm -f`
//! bounded in time (best effort: the VM may be what failed), and exits
//! with 128 + the signal's number, as a shell reports it.
//!
//! Children inherit the blocked mask, which is why they are killed with
//! SIGKILL rather than sent the signal.
//!
//! An upload to an S3-compatible store (`--to s3://`) runs in this process:
//! the exit closes its connection, and the store keeps nothing of a PUT cut
//! short. The marker is written last and only after a [`checkpoint`], so a
//! cancel leaves no marker, hence nothing a VM would take; the [`set_note`]
//! says so in the cancel's line.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use artifact_name::exit_codes;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use wait_timeout::ChildExt;

/// How long the remote `rm` may take before it is given up.
const REMOTE_CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

/// What a cancel has to undo.
struct State {
    /// The rsync or ssh running now.
    child: Option<Pid>,
    /// The temporary file(s) on the VM, in words, and the ssh command that
    /// removes them.
    remote: Option<(String, Command)>,
    /// What an upload made by this process (to a store) leaves, in words.
    note: Option<String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    child: None,
    remote: None,
    note: None,
});

/// Set as soon as a signal arrives.
static CANCELLED: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blocks SIGINT and SIGTERM and starts the thread that handles them. Call
/// before any other thread exists, so that every thread inherits the mask.
pub fn install() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .context("blocking SIGINT and SIGTERM for the cancel handler")?;
    std::thread::Builder::new()
        .name("cancel".into())
        .spawn(move || loop {
            // sigwait fails only for an invalid set.
            if let Ok(signal) = set.wait() {
                cancel(signal);
            }
        })
        .context("starting the cancel handler")?;
    Ok(())
}

/// Starts `cmd`, which a cancel kills with its descendants. Blocks for good
/// once a cancel is under way (the process is about to exit).
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut state = state();
    if CANCELLED.load(Ordering::SeqCst) {
        // Never park holding the lock: the cancel thread needs it.
        drop(state);
        park_forever();
    }
    let child = cmd.spawn()?;
    state.child = i32::try_from(child.id()).ok().map(Pid::from_raw);
    Ok(child)
}

/// The child started by [`spawn`] has ended (call after waiting for it).
/// Parks for good if it ended because of a cancel.
pub fn ended() {
    checkpoint();
    state().child = None;
}

/// Until [`clear_remote`]: on cancel, run `rm` (an ssh command) to remove
/// `what` on the VM.
pub fn set_remote(what: String, rm: Command) {
    state().remote = Some((what, rm));
}

/// Nothing left on the VM to remove.
pub fn clear_remote() {
    state().remote = None;
}

/// Until cleared with None: on cancel, say `note` (what the upload under
/// way in this process leaves, e.g. to a store).
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub fn set_note(note: Option<String>) {
    state().note = note;
}

/// Parks the calling thread for good once a cancel is under way: the
/// cancel thread exits the process; nothing more may start or be printed.
pub fn checkpoint() {
    if CANCELLED.load(Ordering::SeqCst) {
        park_forever();
    }
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// Stops everything and exits with 128 + the signal's number.
fn cancel(signal: Signal) -> ! {
    CANCELLED.store(true, Ordering::SeqCst);
    // Held until exit: no other thread starts a process from here on.
    let mut state = state();
    let mut said = vec![format!("cancelled by {signal}")];
    if let Some(child) = state.child.take() {
        // Found first: once the child is gone they are someone else's.
        let descendants = descendants(child);
        for pid in std::iter::once(child).chain(descendants) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = waitpid(child, None);
        said.push(format!("stopped the upload (pid {child})"));
    }
    if let Some(note) = state.note.take() {
        said.push(note);
    }
    if let Some((what, mut rm)) = state.remote.take() {
        match run_bounded(&mut rm) {
            Ok(()) => said.push(format!("removed {what}")),
            Err(why) => said.push(format!("could not remove {what}: {why}")),
        }
    }
    eprintln!("artifact-name: {}", said.join("; "));
    let code = match signal {
        Signal::SIGINT => exit_codes::CANCELLED_SIGINT,
        _ => exit_codes::CANCELLED_SIGTERM,
    };
    std::process::exit(i32::from(code))
}

/// Runs `cmd`, killing it after [`REMOTE_CLEANUP_TIMEOUT`].
fn run_bounded(cmd: &mut Command) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    match child.wait_timeout(REMOTE_CLEANUP_TIMEOUT) {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => Err(format!("ssh exited with {status}")),
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "ssh did not finish within {}s",
                REMOTE_CLEANUP_TIMEOUT.as_secs()
            ))
        }
        Err(e) => Err(format!("waiting for ssh: {e}")),
    }
}

/// The processes below `root`, from the parent pids in /proc/*/stat.
fn descendants(root: Pid) -> Vec<Pid> {
    let mut parents: Vec<(Pid, Pid)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold ')' and spaces.
            let ppid = stat
                .rfind(')')
                .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((Pid::from_raw(pid), Pid::from_raw(ppid)));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        for (pid, ppid) in &parents {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_and_its_child() {
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("sh");
        let pid = Pid::from_raw(i32::try_from(sh.id()).expect("pid"));
        let start = std::time::Instant::now();
        let mut below = descendants(pid);
        while below.is_empty() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            below = descendants(pid);
        }
        for p in &below {
            let _ = kill(*p, Signal::SIGKILL);
        }
        let _ = sh.kill();
        let _ = sh.wait();
        assert_eq!(below.len(), 1, "{below:?}");
    }
}
