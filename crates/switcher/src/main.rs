//! `switcher`: one pass from cron, or a subcommand (see `switcher --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match switcher::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("switcher: {err:#}");
            switcher::exit_codes::ERROR
        }
    };
    // The store's request counts (CUTOVER_STORE_STATS), if any were made.
    #[cfg(feature = "s3")]
    fleet::store::stats::report("switcher");
    ExitCode::from(code)
}
