//! `artifact-name`: the naming contract on the command line, for CI scripts.
//!
//! `format` prints a name from its parts; `parse` prints a name's parts as
//! JSON. A CI script never assembles or splits a name itself, so there is
//! one implementation of the format: this crate's. `deliver` packs a build,
//! names it, uploads it to the VMs and optionally waits until it runs (see
//! the `deliver` module and docs/delivery.md).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use artifact_name::{exit_codes, ArtifactName, Ext};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Parser, Subcommand};

mod deliver;

/// Formats and parses artifact names: <kind>_<build time>_<version>_<branch>.<ext>
///
/// The build time is UTC in ISO 8601 basic form (20261126T235012Z); the
/// branch is the git branch with every '/' written as '~'.
///
/// Exit codes (one table for collector, switcher and artifact-name, see the
/// README): 0 done (deliver: uploaded everywhere, and running with --wait);
/// 1 the name or a part is not valid, or the build cannot be packed (the
/// reason is on stderr); 2 the command line is wrong; 3 deliver --wait: the
/// switcher marked the artifact failed (the deploy failed); 6 deliver: the
/// upload failed on some target; 7 deliver --wait: timed out; 8 deliver
/// --wait: held on the VM (frozen, or a component pinned); 9 deliver
/// --wait --group: the group's rollout halted; 130, 143 deliver: cancelled
/// by SIGINT, SIGTERM (the upload was stopped and its temporary files
/// removed).
#[derive(Debug, Parser)]
#[command(name = "artifact-name", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Print the man page or a shell's completions and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true, value_parser = ["man", "complete-bash", "complete-zsh", "complete-fish"])]
    generate: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the artifact name for the given parts.
    ///
    /// Example: artifact-name format --kind full --version 1.4.2 --branch feature/x
    /// --time 2026-11-26T23:50:12Z --ext tar.gz prints
    /// full_20261126T235012Z_1.4.2_feature~x.tar.gz
    Format {
        /// The kind: [a-z][a-z0-9-]*, e.g. full or frontend.
        #[arg(long)]
        kind: String,
        /// The version: one or more of [0-9A-Za-z.+-].
        #[arg(long)]
        version: String,
        /// The git branch as git spells it, e.g. feature/x.
        #[arg(long)]
        branch: String,
        /// The build time, RFC 3339 (converted to UTC); defaults to now.
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        time: Option<DateTime<Utc>>,
        /// The archive format: tar.gz, tgz, tar.zst or tar.
        #[arg(long, default_value = "tar.zst", value_parser = parse_ext)]
        ext: Ext,
    },
    /// Prints a name's parts as JSON: kind, build_time (RFC 3339, UTC), version,
    /// branch (with '/' restored), ext.
    Parse {
        /// The file name to parse (a path's folders are ignored).
        name: String,
    },
    /// Packs a build output folder, names it by the contract, uploads it to
    /// the VMs' drop folders over ssh (or publishes it to an S3-compatible
    /// store, --to), and optionally waits until it runs.
    ///
    /// Prints the artifact's file name on stdout (and with --group, the
    /// group's table at the end); progress goes to stderr.
    /// Exit codes: 0 delivered (and with --wait, running, or superseded by
    /// a build made later); 1 invalid input or packing error; 2 usage; 3 --wait: the
    /// switcher marked it failed; 6 the upload failed on some target; 7
    /// --wait: timed out; 8 --wait: held on the VM (frozen, or a component
    /// pinned); 9 --wait --group: the group's rollout halted; 130, 143
    /// cancelled by SIGINT, SIGTERM.
    Deliver(Box<deliver::DeliverArgs>),
}

/// `--time`: RFC 3339, converted to UTC. A time without a zone would be
/// ambiguous (the runner's zone? UTC?), so it is refused, saying so
/// (chrono's own words, "premature end of input", do not).
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let expected =
        "expected RFC 3339 with a zone, like 2026-11-30T01:02:03Z or 2026-11-30T02:02:03+01:00";
    match s.parse::<DateTime<Utc>>() {
        Ok(time) => Ok(time),
        Err(_) if s.parse::<NaiveDateTime>().is_ok() => Err(format!(
            "{s:?} has no zone: {expected} (a `Z` for UTC, or the offset)"
        )),
        Err(_) if s.parse::<NaiveDate>().is_ok() => Err(format!(
            "{s:?} is a date without a time and a zone: {expected}"
        )),
        Err(err) => Err(format!("{s:?} is not a time: {expected} ({err})")),
    }
}

fn parse_ext(s: &str) -> Result<Ext, String> {
    let s = s.strip_prefix('.').unwrap_or(s);
    Ext::from_str_opt(s)
        .ok_or_else(|| format!("expected one of tar.gz, tgz, tar.zst, tar; found {s:?}"))
}

/// `--generate KIND`, or the help and a usage error when no command is given.
///
/// The same generators as collector's and switcher's (deploy_root::generate),
/// written out here so that CI's binary does not pull in deploy-root.
fn generate(kind: Option<&str>, out: &mut dyn Write) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match kind {
        Some("man") => {
            clap_mangen::Man::new(cmd)
                .render(out)
                .context("rendering the man page")?;
            return Ok(exit_codes::OK);
        }
        Some("complete-bash") => Shell::Bash,
        Some("complete-zsh") => Shell::Zsh,
        Some("complete-fish") => Shell::Fish,
        _ => {
            // Like clap's own usage errors: help on stderr, exit 2.
            eprint!("{}", cmd.render_help());
            return Ok(exit_codes::USAGE);
        }
    };
    clap_complete::generate(shell, &mut cmd, "artifact-name", out);
    Ok(exit_codes::OK)
}

fn main() -> ExitCode {
    let code = match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("artifact-name: {err:#}");
            deliver::exit_code_of(&err)
        }
    };
    // The store's request counts (CUTOVER_STORE_STATS), if any were made.
    #[cfg(feature = "s3")]
    fleet::store::stats::report("artifact-name");
    ExitCode::from(code)
}

fn run() -> anyhow::Result<u8> {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let Some(command) = cli.command else {
        return generate(cli.generate.as_deref(), &mut stdout);
    };
    match command {
        Command::Format {
            kind,
            version,
            branch,
            time,
            ext,
        } => {
            let time = time.unwrap_or_else(Utc::now);
            let name = ArtifactName::new(&kind, time, &version, &branch, ext)?;
            writeln!(stdout, "{name}").context("writing to stdout")?;
        }
        Command::Parse { name } => {
            let file_name = name.rsplit('/').next().unwrap_or(&name);
            let parsed = ArtifactName::parse(file_name)?;
            let json = serde_json::to_string_pretty(&parsed.to_json())?;
            writeln!(stdout, "{json}").context("writing to stdout")?;
        }
        Command::Deliver(args) => {
            deliver::run(*args, &mut stdout)?;
        }
    }
    Ok(exit_codes::OK)
}
