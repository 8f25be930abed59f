//! `switcher`: one pass from cron, or a subcommand (see `switcher --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match switcher::cli::run() {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("switcher: {err:#}");
            ExitCode::from(switcher::exit_codes::ERROR)
        }
    }
}
