//! The machine the figures were measured on, for the report's header.
//!
//! Read from /proc and from the usual tools; a fact that cannot be read is
//! shown as "unknown" rather than failing the whole run.

use std::path::Path;
use std::process::Command;

/// What BENCHMARKS.md says about the machine.
#[derive(Debug)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Cores this process may use.
    pub cores: usize,
    /// MemTotal.
    pub ram: String,
    /// The device, filesystem type and size holding the work folder.
    pub disk: String,
    /// `uname -r`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// GNU tar, gzip, zstd, sha256sum versions (the references).
    pub tools: String,
    /// When the run started, UTC.
    pub date: String,
    /// The load average when the run started (others may share the machine).
    pub load: String,
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Describes this machine; `work` is where the test data lives.
pub fn describe(work: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let disk = first_line(
        Command::new("df")
            .args(["-h", "--output=source,fstype,size,avail"])
            .arg(work),
        1,
    )
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [src, fs, size, avail] => {
                format!(
                    "{src}, {fs}, {size} ({avail} free), mounted at the work folder's filesystem"
                )
            }
            _ => l,
        }
    })
    .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = first_line(Command::new("rustc").arg("-V"), 0).unwrap_or_else(|| "unknown".into());
    let tools = [
        ("tar", "--version"),
        ("gzip", "--version"),
        ("zstd", "--version"),
        ("sha256sum", "--version"),
    ]
    .iter()
    .map(|(t, a)| first_line(Command::new(t).arg(a), 0).unwrap_or_else(|| format!("{t}: missing")))
    .collect::<Vec<_>>()
    .join("; ");
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ram,
        disk,
        kernel,
        rustc,
        tools,
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        load: load_average(),
    }
}

fn first_line(cmd: &mut Command, skip: usize) -> Option<String> {
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().nth(skip).map(|l| l.trim().to_string())
}
