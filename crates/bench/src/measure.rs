//! Timing and memory of child processes, and the statistics the table shows.
//!
//! Wall time is taken in this process around spawn and wait (like
//! `hyperfine -N`: no shell in between), so that millisecond figures are not
//! rounded the way `/usr/bin/time`'s `%e` (10 ms steps) would round them.
//! Peak RSS comes from `/usr/bin/time -f %M`, which reads the child's
//! `wait4` rusage (the largest of the child and the children it waited for,
//! e.g. GNU tar and its gzip).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A command that can be run many times (std's `Command` cannot be cloned).
#[derive(Clone, Debug)]
pub struct Cmd {
    /// The program.
    pub prog: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Whether a non-zero exit is fine (reference scripts that answer
    /// "nothing new" with exit 1).
    pub any_exit: bool,
}

impl Cmd {
    /// `prog args...`.
    pub fn new(prog: impl Into<PathBuf>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Cmd {
        Cmd {
            prog: prog.into(),
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
            env: Vec::new(),
            any_exit: false,
        }
    }

    /// `/bin/sh -c script`.
    pub fn sh(script: &str) -> Cmd {
        Cmd::new("/bin/sh", &[&"-c", &script])
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Accepts any exit code.
    pub fn any_exit(mut self) -> Cmd {
        self.any_exit = true;
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.prog);
        c.args(&self.args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Shown in the report.
    pub fn shown(&self) -> String {
        let mut s = self.prog.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Runs it once; the wall time from spawn to reaped.
    pub fn time(&self) -> anyhow::Result<Duration> {
        let mut c = self.command();
        let t = Instant::now();
        let out = c
            .output()
            .with_context(|| format!("running {}", self.shown()))?;
        let elapsed = t.elapsed();
        self.check(&out)?;
        Ok(elapsed)
    }

    /// Runs it once under `/usr/bin/time`: the wall time (measured here, so
    /// it includes time(1)'s own small spawn) and the peak RSS in KiB.
    pub fn time_rss(&self, scratch: &Path) -> anyhow::Result<(Duration, u64)> {
        let out_file = scratch.join(".rss");
        let mut wrapped = self.clone();
        wrapped.prog = PathBuf::from("/usr/bin/time");
        let mut args: Vec<OsString> = vec![
            "-f".into(),
            "%M".into(),
            "-o".into(),
            out_file.clone().into_os_string(),
            self.prog.clone().into_os_string(),
        ];
        args.extend(self.args.iter().cloned());
        wrapped.args = args;
        let mut c = wrapped.command();
        let t = Instant::now();
        let out = c.output().context("running /usr/bin/time")?;
        let elapsed = t.elapsed();
        self.check(&out)?;
        let text = std::fs::read_to_string(&out_file).context("reading /usr/bin/time's output")?;
        // time(1) prefixes "Command exited with non-zero status N" lines.
        let kib = text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .with_context(|| format!("no RSS figure in /usr/bin/time's output {text:?}"))?;
        Ok((elapsed, kib))
    }

    fn check(&self, out: &std::process::Output) -> anyhow::Result<()> {
        if !self.any_exit && !out.status.success() {
            bail!(
                "{} exited with {}: {}",
                self.shown(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Runs `f` `warmup` times unmeasured, then `runs` times; the durations.
pub fn repeat(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..warmup {
        f()?;
    }
    (0..runs.max(1)).map(|_| f()).collect()
}

/// The median (the mean of the middle two for an even count).
pub fn median(xs: &[Duration]) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// The median of plain numbers.
pub fn median_u64(xs: &[u64]) -> u64 {
    let mut v = xs.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// A duration for the table: µs below 1 ms, ms below 10 s, else s.
pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.001 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 0.1 {
        format!("{:.2} ms", s * 1e3)
    } else if s < 10.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// KiB as MiB for the table.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Bytes per second as MB/s (decimal, like most tools print).
pub fn fmt_rate(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / d.as_secs_f64().max(1e-9) / 1e6)
}

/// Flushes dirty pages, so that one run's writeback does not slow the next.
pub fn sync() {
    nix::unistd::sync();
}
