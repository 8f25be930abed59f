//! Logging: the shared `-v`/`-q` flags and the tracing subscriber.
//!
//! Logs go to stderr (stdout is for data), without colour when stderr is not
//! a terminal. The default level is `warn`, so a cron run that has nothing to
//! report prints nothing (cron mails whatever a job prints); each `-v` raises
//! it one level, each `-q` lowers it. `RUST_LOG` overrides both.

use std::io::IsTerminal;

use clap::Args;
use tracing_subscriber::EnvFilter;

/// The logging flags every binary flattens into its command line.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct LogArgs {
    /// More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output: -q errors only, -qq nothing.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl LogArgs {
    /// The level these flags ask for.
    pub fn level(&self) -> &'static str {
        match (self.verbose, self.quiet) {
            (0, 0) => "warn",
            (0, 1) => "error",
            (0, _) => "off",
            (1, _) => "info",
            (2, _) => "debug",
            _ => "trace",
        }
    }

    /// Installs the subscriber. Call once, first thing in `run`.
    pub fn init(&self) {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(self.level()));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init();
    }
}
