//! The command line.

use std::path::PathBuf;

use clap::Parser;
use deploy_root::logging::LogArgs;

/// What `--help` shows under the options.
const AFTER_HELP: &str = "\
Exit codes:
  0   pass done, nothing to do, or another run holds the lock
  1   the pass failed: an I/O error on some file (the others were still
      handled), or a state file that cannot be read; or the store
      ([store]) refused this VM (credentials, access denied, no such
      bucket). A store that cannot be reached, or fails on its side
      (HTTP 5xx), is not a failure: one warning when it begins, the
      status page while it lasts, and the drop folder is still collected
  2   the command line is not valid
  78  the config file is missing or not valid, or its drop folder is one
      of the deploy root's own folders (EX_CONFIG)

Logs go to stderr; the default level is warn, so a pass with nothing to
report prints nothing (cron mails what a job prints). A run that finds the
lock held logs one line at info level (-v shows it) and exits 0: a long
copy overlapping the next minute's run is normal, not news.";

/// Takes complete, verified artifacts from the drop folder into staging.
///
/// One pass per run (cron starts it every minute). An artifact is taken once
/// its marker <name>.sha256 has arrived and its digest matches; it moves to
/// staging/ atomically, even from another filesystem. Names outside the
/// contract, unknown kinds and digests that do not match go to quarantine/
/// with a <name>.reason file. Symbolic links, hard links and anything not a
/// regular file are never followed or moved. The newest staged artifact per
/// component ("Last") is recorded in state/collector.json; staging/ and
/// quarantine/ are pruned to their limits, never pruning what the switcher
/// runs or may roll back to.
///
/// With [store] (a build with S3 support), each pass also lists the
/// store's drop/ once and downloads, verified the same way, the complete
/// artifacts the switcher could deploy next; it never writes to the store.
#[derive(Debug, Parser)]
#[command(name = "collector", version, max_term_width = 100, after_help = AFTER_HELP)]
pub struct Cli {
    /// The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print a summary of the pass as JSON on stdout (collected, quarantined,
    /// waiting, pruned, errors; with [store], what was taken from the store).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub log: LogArgs,

    /// Print the man page or a shell's completions and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true)]
    pub generate: Option<deploy_root::generate::Generate>,
}
