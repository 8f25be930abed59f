//! `collector`: takes complete, verified artifacts from the drop folder into
//! staging, once per run (cron starts it every minute).
//!
//! `main` only parses the command line and maps the outcome to an exit code;
//! [`pass`] does the work. See `collector --help` for the exit codes.

mod batch;
mod cli;
mod collect;
mod drop_check;
mod exit_codes;
mod last;
mod mover;
mod open;
mod pass;
mod prune;
mod quarantine;
mod recover;
mod scan;
mod staging;
#[cfg(feature = "s3")]
mod store_intake;
#[cfg(any(feature = "s3", test))]
mod store_select;
mod summary;
mod verdict;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use deploy_root::{Config, ConfigError, Layout};

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("collector: {err:#}");
            let config_error = err.downcast_ref::<ConfigError>().is_some()
                || err.downcast_ref::<drop_check::DropConflict>().is_some();
            if config_error {
                ExitCode::from(exit_codes::CONFIG)
            } else {
                ExitCode::from(exit_codes::FAILED)
            }
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Some(kind) = cli.generate {
        use clap::CommandFactory;
        deploy_root::generate::write(Cli::command(), kind, &mut std::io::stdout().lock())?;
        return Ok(ExitCode::from(exit_codes::OK));
    }
    let path = Config::resolve_path(cli.config.as_deref());
    let config = Config::load(&path)?;
    let layout = Layout::new(&config);
    let outcome = pass::run(&config, &layout);
    // The request counts, for the scale bench, whatever the outcome.
    #[cfg(feature = "s3")]
    fleet::store::stats::report("collector");
    let outcome = outcome?;
    let code = match &outcome {
        pass::Outcome::Locked => exit_codes::OK,
        pass::Outcome::Done(summary) if !summary.failed() => exit_codes::OK,
        pass::Outcome::Done(_) => exit_codes::FAILED,
    };
    if cli.json {
        let json = match &outcome {
            pass::Outcome::Locked => summary::Summary::locked_json(),
            pass::Outcome::Done(summary) => serde_json::to_string_pretty(summary)?,
        };
        writeln!(std::io::stdout().lock(), "{json}").context("writing to stdout")?;
    }
    Ok(ExitCode::from(code))
}
