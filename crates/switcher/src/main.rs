//! `switcher`: one pass from cron, or a subcommand (see `switcher --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let result = switcher::cli::run();
    // The store request counts, for the scale bench (CUTOVER_STORE_STATS),
    // whatever the outcome.
    #[cfg(feature = "s3")]
    fleet::store::stats::report("switcher");
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("switcher: {err:#}");
            ExitCode::from(switcher::exit_codes::ERROR)
        }
    }
}
