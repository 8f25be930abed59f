//! Runs the configured stop, start, reload and prepare commands.
//!
//! Each command runs as `/bin/sh -c <command>` with a clean environment
//! (nothing from cron or the caller leaks in):
//!
//! | variable            | value                                              |
//! |---------------------|----------------------------------------------------|
//! | `PATH`              | `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` |
//! | `HOME`              | the caller's `HOME`, else `/`                      |
//! | `LANG`              | `C.UTF-8`                                          |
//! | `CUTOVER_ROOT`      | the deploy root                                    |
//! | `CUTOVER_RELEASE`   | the absolute path of the release folder concerned  |
//! | `CUTOVER_COMPONENT` | the component                                      |
//! | `CUTOVER_VERSION`   | the release's version                              |
//! | `CUTOVER_BRANCH`    | the release's git branch                           |
//! | `CUTOVER_ARTIFACT`  | the release's artifact file name                   |
//! | `CUTOVER_STEP`      | prepare, stop, start or reload                     |
//! | `CUTOVER_SLOT`      | blue-green only: `blue` or `green`, the instance concerned |
//! | `CUTOVER_PORT`      | blue-green only: that slot's port                  |
//!
//! stdin is /dev/null; stdout and stderr are appended to
//! `state/logs/<component>-<step>.log`, a file rather than a pipe, because
//! a daemon that `start` launches may keep its inherited descriptors open
//! for ever and a pipe would then never reach end-of-file. The command runs
//! in its own process group, and the whole group is killed when it
//! outlives `switcher.command_timeout`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use deploy_root::Layout;
use wait_timeout::ChildExt;

/// The `PATH` commands run with.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How many lines of output a failure keeps.
pub const TAIL_LINES: usize = 20;

/// What a command is about: the release and step it runs for.
#[derive(Clone, Debug)]
pub struct CommandContext {
    /// The component.
    pub component: String,
    /// prepare, stop, start, reload.
    pub step: String,
    /// The release folder (absolute).
    pub release: PathBuf,
    /// The release's version.
    pub version: String,
    /// The release's branch.
    pub branch: String,
    /// The release's artifact file name.
    pub artifact: String,
    /// Blue-green: the slot the command is about, with its port.
    pub slot: Option<(deploy_root::state::Slot, u16)>,
}

/// How a command ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The exit code, or `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    /// Whether it ran out of time (and was killed).
    pub timed_out: bool,
    /// The last lines it printed.
    pub tail: Vec<String>,
    /// The log file it wrote to.
    pub log: PathBuf,
    /// A signal that ended it, if any.
    pub signal: Option<i32>,
}

impl Outcome {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// How it ended, in words.
    pub fn describe(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!(
                "did not finish within {} (switcher.command_timeout) and was killed",
                humantime_secs(timeout)
            )
        } else if let Some(code) = self.code {
            format!("exited with code {code}")
        } else if let Some(sig) = self.signal {
            format!("was killed by signal {sig}")
        } else {
            "ended without an exit code".to_string()
        }
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Runs `command` for `ctx`, within `timeout`.
pub fn run(
    layout: &Layout,
    command: &str,
    ctx: &CommandContext,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(layout.logs())
        .with_context(|| format!("creating folder {}", layout.logs().display()))?;
    let log = layout
        .logs()
        .join(format!("{}-{}.log", ctx.component, ctx.step));
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening command log {}", log.display()))?;
    let start = file.seek(SeekFrom::End(0)).unwrap_or(0);
    // A header line, so that the log says which run wrote what.
    let _ = writeln!(
        file,
        "--- {} {} {} for {}: {}",
        deploy_root::time::rfc3339(chrono::Utc::now()),
        ctx.component,
        ctx.step,
        ctx.artifact,
        command
    );
    let err = file
        .try_clone()
        .with_context(|| format!("duplicating {}", log.display()))?;
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("CUTOVER_ROOT", &layout.root)
        .env("CUTOVER_RELEASE", &ctx.release)
        .env("CUTOVER_COMPONENT", &ctx.component)
        .env("CUTOVER_VERSION", &ctx.version)
        .env("CUTOVER_BRANCH", &ctx.branch)
        .env("CUTOVER_ARTIFACT", &ctx.artifact)
        .env("CUTOVER_STEP", &ctx.step);
    if let Some((slot, port)) = ctx.slot {
        cmd.env("CUTOVER_SLOT", slot.as_str())
            .env("CUTOVER_PORT", port.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .process_group(0);
    if ctx.release.is_dir() {
        cmd.current_dir(&ctx.release);
    } else {
        cmd.current_dir(&layout.root);
    }
    tracing::info!(
        component = %ctx.component,
        step = %ctx.step,
        "running: {command}"
    );
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "starting /bin/sh for the {} {} command",
            ctx.component, ctx.step
        )
    })?;
    let pid = child.id();
    let status = child
        .wait_timeout(timeout)
        .with_context(|| format!("waiting for the {} {} command", ctx.component, ctx.step))?;
    let (status, timed_out) = match status {
        Some(s) => (s, false),
        None => {
            kill_group(pid);
            let s = child
                .wait()
                .with_context(|| format!("reaping the {} {} command", ctx.component, ctx.step))?;
            (s, true)
        }
    };
    let tail = tail_since(&log, start);
    for line in &tail {
        tracing::debug!(component = %ctx.component, step = %ctx.step, "| {line}");
    }
    Ok(Outcome {
        code: status.code(),
        timed_out,
        tail,
        log,
        signal: status.signal(),
    })
}

/// Kills the command's whole process group (it is its own leader).
fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The last [`TAIL_LINES`] lines written to `log` after byte `start`
/// (without the header line this module writes).
fn tail_since(log: &Path, start: u64) -> Vec<String> {
    // Only the last MiB is read: a runaway command must not fill memory.
    const WINDOW: u64 = 1 << 20;
    let mut text = Vec::new();
    let mut from = start;
    let read = File::open(log).and_then(|mut f| {
        let end = f.metadata()?.len();
        from = start.max(end.saturating_sub(WINDOW));
        f.seek(SeekFrom::Start(from))?;
        f.take(WINDOW).read_to_end(&mut text)
    });
    if read.is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let skip = usize::from(from == start);
    let lines: Vec<&str> = text.lines().skip(skip).collect();
    let first = lines.len().saturating_sub(TAIL_LINES);
    lines[first..].iter().map(|s| (*s).to_string()).collect()
}
