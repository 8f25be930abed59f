//! `artifact-name deliver`: pack a build, name it, upload it, wait for it.
//!
//! The steps live in their own modules: [`components`] decides which
//! folders a kind carries, [`version`] and [`branch`] find what the name
//! says when the command line does not, [`pack`] writes the archive and its
//! marker, [`upload`] puts both into each VM's drop folder so that the
//! collector never sees a partial file, and [`wait`] polls the status page
//! until the switcher runs the artifact or gives up on it. [`cancel`]
//! stops an upload cut short by SIGTERM or SIGINT and cleans up after it.

mod branch;
mod cancel;
mod components;
mod git;
mod pack;
mod progress;
mod quote;
mod upload;
mod version;
mod wait;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use artifact_name::{ArtifactName, Ext};
use chrono::{DateTime, Utc};

use artifact_name::exit_codes;
use progress::Progress;

/// `deliver`'s options.
#[derive(Debug, clap::Args)]
pub struct DeliverArgs {
    /// The build output folder: it holds one folder per component
    /// (backend/, frontend/, ...).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The kind: full, frontend, or any [a-z][a-z0-9-]* (other kinds need
    /// --components).
    #[arg(long)]
    kind: String,
    /// The component folders the artifact carries, comma-separated.
    /// Default by kind: full → backend,frontend; frontend → frontend.
    #[arg(long, value_delimiter = ',', value_name = "C1,C2")]
    components: Vec<String>,
    /// The version, [0-9A-Za-z.+-]+. Default: [package] version of
    /// Cargo.toml, else "version" of package.json (in --from, then in the
    /// current folder), else `git describe --tags --always` without a
    /// leading 'v'.
    #[arg(long)]
    version: Option<String>,
    /// The git branch. Default: $GITHUB_REF_NAME, $BITBUCKET_BRANCH,
    /// $CI_COMMIT_REF_NAME, else `git rev-parse --abbrev-ref HEAD`.
    #[arg(long)]
    branch: Option<String>,
    /// The build time, RFC 3339 (converted to UTC); defaults to now.
    #[arg(long, value_name = "RFC3339", value_parser = crate::parse_time)]
    time: Option<DateTime<Utc>>,
    /// Packs tar.gz instead of tar.zst.
    #[arg(long)]
    gzip: bool,
    /// Where the artifact and its .sha256 marker are written.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    out: PathBuf,
    /// A drop folder to upload to, over ssh with rsync; repeatable.
    #[arg(long = "target", value_name = "USER@HOST:/PATH")]
    targets: Vec<String>,
    /// The ssh port (ssh -p).
    #[arg(long)]
    port: Option<u16>,
    /// The ssh private key (ssh -i).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// A known_hosts file holding the VMs' host keys; unknown hosts are
    /// then refused (StrictHostKeyChecking=yes).
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// An ssh option (ssh -o OPTION), e.g. ProxyJump=bastion; repeatable.
    /// $CUTOVER_SSH replaces the ssh command itself (default "ssh").
    #[arg(long = "ssh-option", value_name = "OPTION")]
    ssh_options: Vec<String>,
    /// How often a failed upload is tried again, with growing pauses.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Limits the upload's bandwidth in KiB/s (rsync --bwlimit).
    #[arg(long, value_name = "KIBPS")]
    bwlimit: Option<u32>,
    /// After the upload, polls this status page (http://HOST/ or the URL of
    /// its deploy-status.json) until each component runs the artifact or a
    /// build made later, or the VM holds it (frozen, or a component pinned:
    /// exit 8); repeatable.
    #[arg(long = "wait", value_name = "URL")]
    wait: Vec<String>,
    /// How long --wait waits, e.g. 15m or 90s.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    /// How often --wait polls.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    wait_interval: Duration,
}

/// An error that ends the command with a specific exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// `error`, ending the command with `code`.
    pub fn new(code: u8, error: anyhow::Error) -> Failure {
        Failure { code, error }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// The exit code for an error: a [`Failure`]'s own, else "invalid".
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Failure>()
        .map_or(exit_codes::ERROR, |f| f.code)
}

/// Runs `deliver`; prints the artifact's file name on `stdout` as soon as
/// it is packed.
pub fn run(args: DeliverArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    // First, while this is the only thread: SIGTERM and SIGINT cancel.
    cancel::install()?;
    let progress = Progress::new();
    let components = components::resolve(&args.kind, &args.components)?;
    // Check the targets and the ssh setup before the (long) packing, so a
    // typo fails in a second.
    let targets = args
        .targets
        .iter()
        .map(|t| upload::Target::parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ssh = upload::Ssh::new(
        std::env::var("CUTOVER_SSH").ok().as_deref(),
        args.port,
        args.identity.as_deref(),
        args.known_hosts.as_deref(),
        &args.ssh_options,
    )?;
    let status_urls = args
        .wait
        .iter()
        .map(|u| wait::status_url(u))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let cwd = std::env::current_dir().context("finding the current folder")?;
    let version = match &args.version {
        Some(v) => version::check(v, "--version")?,
        None => version::detect(&args.from, &cwd)?,
    };
    let branch = match &args.branch {
        Some(b) => branch::Found {
            branch: b.clone(),
            source: "--branch".into(),
        },
        None => branch::detect(&args.from, &cwd)?,
    };
    let time = args.time.unwrap_or_else(Utc::now);
    let ext = if args.gzip { Ext::TarGz } else { Ext::TarZst };
    let name = ArtifactName::new(&args.kind, time, &version.version, &branch.branch, ext)
        .with_context(|| {
            format!(
                "naming the artifact (version from {}, branch from {})",
                version.source, branch.source
            )
        })?;
    progress.line(format_args!(
        "packing {} from {} (version from {}, branch from {})",
        components.join(", "),
        args.from.display(),
        version.source,
        branch.source
    ));
    let packed = pack::pack(&args.from, &components, &name, time, &args.out)?;
    progress.line(format_args!(
        "packed {} ({}, {} entries, sha256 {})",
        packed.path.display(),
        progress::size(packed.size),
        packed.entries,
        packed.sha256
    ));
    writeln!(stdout, "{name}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;

    let options = upload::Options {
        retries: args.retries,
        bwlimit: args.bwlimit,
    };
    let mut failed = Vec::new();
    for target in &targets {
        if let Err(err) = upload::deliver(&ssh, target, &packed, &options, &progress) {
            progress.line(format_args!("{err:#}"));
            failed.push(format!("{err:#}"));
        }
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            exit_codes::UPLOAD_FAILED,
            anyhow::anyhow!(
                "{} of {} upload(s) failed: {}",
                failed.len(),
                targets.len(),
                failed.join("; ")
            ),
        )
        .into());
    }
    if !status_urls.is_empty() {
        let spec = wait::Spec {
            artifact: name.file_name().to_string(),
            components,
            timeout: args.wait_timeout,
            interval: args.wait_interval,
        };
        wait::wait(&status_urls, &spec, &progress)?;
    }
    Ok(())
}
