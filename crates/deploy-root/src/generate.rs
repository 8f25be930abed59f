//! Man pages and shell completions, generated from a binary's own clap
//! definition, so they cannot drift from `--help`.
//!
//! Each binary takes a hidden `--generate KIND` (as ripgrep does) and prints
//! the file to stdout; packaging installs the committed copies under deploy/,
//! and a test fails when those differ from what the binaries generate.

use std::io::Write;

use anyhow::Context;
use clap::ValueEnum;

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff).
    Man,
    /// bash completions.
    CompleteBash,
    /// zsh completions.
    CompleteZsh,
    /// fish completions.
    CompleteFish,
}

/// Writes `kind` for the command `cmd` to `out`.
pub fn write(mut cmd: clap::Command, kind: Generate, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = cmd.get_name().to_string();
    match kind {
        Generate::Man => clap_mangen::Man::new(cmd)
            .render(out)
            .context("rendering the man page")?,
        Generate::CompleteBash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, out)
        }
        Generate::CompleteZsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, out)
        }
        Generate::CompleteFish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, out)
        }
    }
    Ok(())
}
