//! `cutover-bench`: measures collector and switcher against what an ops
//! script would use for the same job, prints one table, and writes it to
//! BENCHMARKS.md with the machine it ran on and the command to rerun.
//!
//! Run it through `benches/run` (release build first). Test data is made
//! under a temp folder beside the target folder (the same disk as the
//! repository, never tmpfs) and removed at the end. Nothing here asserts a
//! figure: a missed target is a row that says so, with the analysis in
//! `analysis.md` (kept beside this file and copied into BENCHMARKS.md).
//!
//! Modules: [`measure`] (timing and RSS of children), [`machine`] (the
//! header), [`data`] (archives, drop folders, deploy roots), one module per
//! group of rows ([`idle`], [`drop_folder`], [`release`], [`switch`],
//! [`watch`], [`fleet`]), and [`report`] (the table and the Markdown).
//!
//! Most groups add rows to the one table. A group with a [`Section`] of its
//! own ([`fleet`]: a scale run on an S3 store, measured apart) is written
//! between markers, so that `--only` of that group updates its section of
//! BENCHMARKS.md and leaves the rest of the file as it was.

// The table is this program's output.
#![allow(clippy::print_stdout)]

mod data;
mod drop_folder;
mod fleet;
mod idle;
mod machine;
mod measure;
mod release;
mod report;
mod switch;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Benchmarks of collector and switcher; prints one table and writes
/// BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "cutover-bench", max_term_width = 100)]
struct Cli {
    /// Smaller sizes (100 MiB release, drop folders up to 10,000 files) and
    /// fewer repetitions: a couple of minutes instead of about fifteen.
    #[arg(long)]
    quick: bool,
    /// Tiny sizes, one repetition, and BENCHMARKS.md is not written: checks
    /// that every row runs (the figures mean nothing).
    #[arg(long)]
    dry: bool,
    /// Where the built binaries are [default: this program's folder].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// A folder for test data, on the disk to measure [default: the target
    /// folder this program was built into].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Where to write the report [default: BENCHMARKS.md in the workspace].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Only the groups named (idle, drop, release, switch, bluegreen, watch,
    /// fleet); all by default. When only groups with a section of their own
    /// run (fleet), BENCHMARKS.md is updated in place: that section and the
    /// analysis are replaced, the rest of the file is kept.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// How big and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The real run.
    Full,
    /// Smaller sizes.
    Quick,
    /// Smoke run.
    Dry,
}

impl Mode {
    /// Pick by mode.
    pub fn pick<T>(self, full: T, quick: T, dry: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
            Mode::Dry => dry,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub what: String,
    /// Our figure.
    pub ours: String,
    /// The reference figure.
    pub reference: String,
    /// ours / reference, where both are numbers of one unit.
    pub ratio: Option<f64>,
    /// The target in words.
    pub target: String,
    /// Whether the target is met; `None` where there is none.
    pub met: Option<bool>,
}

/// A group's part of BENCHMARKS.md of its own, with its own table and
/// notes, and when it ran (it may be updated apart from the rest).
#[derive(Debug)]
pub struct Section {
    /// The group's name (`--only`), used in the markers around it.
    pub id: String,
    /// Its heading.
    pub title: String,
    /// A paragraph under the heading.
    pub about: String,
    /// Its table.
    pub rows: Vec<Row>,
    /// What each row measures.
    pub notes: Vec<String>,
    /// When it started (UTC, to the minute) and the load average then.
    pub started: (String, String),
    /// How long it took and the load average at its end (set by `finish`).
    pub ended: (std::time::Duration, String),
}

impl Section {
    /// An empty section, starting now.
    pub fn new(id: &str, title: &str) -> Section {
        Section {
            id: id.to_string(),
            title: title.to_string(),
            about: String::new(),
            rows: Vec::new(),
            notes: Vec::new(),
            started: (
                chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
                machine::load_average(),
            ),
            ended: (std::time::Duration::ZERO, String::new()),
        }
    }

    /// Adds a row and echoes it.
    pub fn row(&mut self, row: Row) {
        echo(&row);
        self.rows.push(row);
    }

    /// Adds a note.
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Records how long it took (`took`) and the load average now.
    pub fn finish(&mut self, took: std::time::Duration) {
        self.ended = (took, machine::load_average());
    }
}

/// Echoes a row on stderr, so a long run shows progress.
fn echo(row: &Row) {
    eprintln!(
        "  {} | ours {} | reference {} | {}",
        row.what,
        row.ours,
        row.reference,
        match row.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        }
    );
}

/// What every group of rows shares.
#[derive(Debug)]
pub struct Ctx {
    /// The built binaries.
    pub bins: PathBuf,
    /// A temp folder for test data (removed at the end).
    pub work: PathBuf,
    /// Sizes and repetitions.
    pub mode: Mode,
    /// The table so far.
    pub rows: Vec<Row>,
    /// What each group measured exactly, and side figures.
    pub notes: Vec<(String, Vec<String>)>,
    /// The groups with a section of their own that ran.
    pub sections: Vec<Section>,
}

impl Ctx {
    /// A workspace binary.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    /// Adds a row and echoes it, so a long run shows progress.
    pub fn row(&mut self, row: Row) {
        echo(&row);
        self.rows.push(row);
    }

    /// Adds notes under a group's heading.
    pub fn note(&mut self, group: &str, line: impl Into<String>) {
        let line = line.into();
        match self.notes.iter_mut().find(|(g, _)| g == group) {
            Some((_, lines)) => lines.push(line),
            None => self.notes.push((group.to_string(), vec![line])),
        }
    }

    /// A fresh empty folder under the work folder.
    pub fn fresh(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.work.join(name);
        remove(&dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

/// Removes a folder tree if it exists.
pub fn remove(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cutover-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this program")?;
    let exe_dir = exe.parent().context("this program has no folder")?;
    let bins = cli.bin_dir.clone().unwrap_or_else(|| exe_dir.to_path_buf());
    for b in ["collector", "switcher", "cutover-demo-app"] {
        anyhow::ensure!(
            bins.join(b).is_file(),
            "{} is missing; build first: cargo build --release --workspace --features \
             collector/s3,switcher/s3,deliver/s3 (benches/run does)",
            bins.join(b).display()
        );
    }
    for tool in ["/usr/bin/time", "/usr/sbin/start-stop-daemon"] {
        anyhow::ensure!(
            Path::new(tool).exists(),
            "{tool} is missing (apt-get install time dpkg; benches/run does)"
        );
    }
    let parent = match &cli.work_dir {
        Some(d) => d.clone(),
        // target/release/cutover-bench -> target/
        None => exe_dir.parent().unwrap_or(exe_dir).to_path_buf(),
    };
    std::fs::create_dir_all(&parent)?;
    let tmp = tempfile::Builder::new()
        .prefix("cutover-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("making a temp folder in {}", parent.display()))?;
    let mode = if cli.dry {
        Mode::Dry
    } else if cli.quick {
        Mode::Quick
    } else {
        Mode::Full
    };
    let machine = machine::describe(tmp.path());
    eprintln!(
        "cutover-bench ({mode:?}): test data in {}",
        tmp.path().display()
    );
    let mut ctx = Ctx {
        bins,
        work: tmp.path().to_path_buf(),
        mode,
        rows: Vec::new(),
        notes: Vec::new(),
        sections: Vec::new(),
    };
    let wanted = |g: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == g);
    let started = std::time::Instant::now();
    if wanted("idle") {
        eprintln!("idle passes");
        idle::run(&mut ctx)?;
    }
    // The groups that hinge on fsync latency run first, before the big
    // trees leave the disk busy with writeback.
    if wanted("switch") {
        eprintln!("switch: overhead, port closed, marker to answering");
        settle();
        switch::run(&mut ctx)?;
    }
    if wanted("bluegreen") {
        eprintln!("switch: failed requests, blue-green vs restart");
        settle();
        switch::run_load(&mut ctx)?;
    }
    if wanted("watch") {
        eprintln!("watch: marker to answering, idle CPU and memory");
        settle();
        watch::run(&mut ctx)?;
    }
    if wanted("drop") {
        eprintln!("collector over drop folders");
        settle();
        drop_folder::run(&mut ctx)?;
    }
    if wanted("release") {
        eprintln!("releases: unpack, digest, memory");
        settle();
        release::run(&mut ctx)?;
    }
    if wanted("fleet") {
        eprintln!("fleet: VMs on one S3 store (SeaweedFS)");
        settle();
        fleet::run(&mut ctx)?;
    }
    let took = started.elapsed();
    let command = rerun_command(cli);
    let table = report::table(&ctx.rows);
    println!("{table}");
    for s in &ctx.sections {
        println!("{}\n\n{}", s.title, report::table(&s.rows));
    }
    let md = report::markdown(
        &machine,
        &ctx,
        &table,
        &command,
        took,
        &machine::load_average(),
    );
    if mode == Mode::Dry {
        eprintln!("--dry: BENCHMARKS.md not written");
    } else {
        let out = cli
            .out
            .clone()
            .unwrap_or_else(|| workspace_root().join("BENCHMARKS.md"));
        let existing = match std::fs::read_to_string(&out) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
        };
        // Only groups with a section of their own ran: update those
        // sections (and the analysis) in place, keep the rest.
        let sections_only = !cli.only.is_empty()
            && cli
                .only
                .iter()
                .all(|g| SECTION_GROUPS.contains(&g.as_str()));
        let text = match existing {
            Some(old) if sections_only => {
                let fresh: Vec<(String, String)> = ctx
                    .sections
                    .iter()
                    .map(|s| (s.id.clone(), report::section(s, ctx.mode)))
                    .collect();
                eprintln!(
                    "updating the {} section of {}; the rest is kept",
                    cli.only.join(", "),
                    out.display()
                );
                report::update(&old, &fresh)
            }
            // A whole (or partial) run: written afresh, but the sections of
            // groups that did not run are carried over.
            Some(old) => report::carry_over(&md, &old),
            None => md,
        };
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    let work = tmp.path().to_path_buf();
    tmp.close()
        .with_context(|| format!("removing {}", work.display()))?;
    Ok(())
}

/// The groups written as a section of their own (see [`Section`]).
const SECTION_GROUPS: [&str; 1] = ["fleet"];

/// Lets the previous group's writeback finish before the next one starts.
fn settle() {
    measure::sync();
    std::thread::sleep(std::time::Duration::from_secs(2));
}

fn rerun_command(cli: &Cli) -> String {
    let mut c = String::from("benches/run");
    if cli.quick {
        c.push_str(" --quick");
    }
    if !cli.only.is_empty() {
        c.push_str(&format!(" --only {}", cli.only.join(",")));
    }
    c
}

/// The workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or(here)
}
