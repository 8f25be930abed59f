//! `artifact-name deliver`: pack a build, name it, upload it, wait for it.
//!
//! The steps live in their own modules: [`components`] decides which
//! folders a kind carries, [`version`] and [`branch`] find what the name
//! says when the command line does not, [`pack`] writes the archive and its
//! marker, [`upload`] puts both into each VM's drop folder so that the
//! collector never sees a partial file, and [`wait`] polls the status page
//! until the switcher runs the artifact or gives up on it. [`cancel`]
//! stops an upload cut short by SIGTERM or SIGINT and cleans up after it.
//! With the `s3` feature, `s3` publishes to an S3-compatible store
//! (`--to s3://`) and `fleet_wait` waits for a fleet group
//! (`--wait --group`); without it, both flags are refused, naming the
//! feature.

mod branch;
mod cancel;
mod components;
#[cfg(feature = "s3")]
mod fleet_wait;
mod git;
mod pack;
mod progress;
mod quote;
#[cfg(feature = "s3")]
mod s3;
mod upload;
mod version;
mod wait;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// An S3-compatible store to publish to, beside or instead of the
    /// targets: drop/<name>, then its marker, each created only where
    /// nothing is (a published artifact is never overwritten). Needs the
    /// `s3` feature; see the --store-* options.
    #[arg(long = "to", value_name = "s3://BUCKET/PREFIX")]
    to: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
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
    /// exit 8); repeatable. Without URL, waits for the --group.
    #[arg(long = "wait", value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    wait: Vec<String>,
    /// Waits (implies --wait) until every live VM of this fleet group runs
    /// the artifact, reading the VMs' reports in the store (--to, else
    /// --store-url); exit 9 if the group's rollout halted. Prints the
    /// group's table on stdout at the end. Needs the `s3` feature.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// How long --wait waits, e.g. 15m or 90s.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    /// How often --wait polls.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    wait_interval: Duration,
}

/// The store's settings (`--to`, `--wait --group`), with environment
/// fallbacks; a VM's `[store]` section has the same keys.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The S3 endpoint, http:// or https://; not set: AWS S3 in the region.
    #[arg(long, value_name = "URL", env = "CUTOVER_STORE_ENDPOINT")]
    pub store_endpoint: Option<String>,
    /// The region requests are signed for.
    #[arg(
        long,
        value_name = "REGION",
        env = "CUTOVER_STORE_REGION",
        default_value = "us-east-1"
    )]
    pub store_region: String,
    /// Path-style addressing (endpoint/bucket/key); default: on with
    /// --store-endpoint, off for AWS. --store-path-style=false turns it off.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub store_path_style: Option<bool>,
    /// A TOML file with access_key_id and secret_access_key, readable only
    /// by its owner; not set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "FILE", env = "CUTOVER_STORE_CREDENTIALS_FILE")]
    pub store_credentials_file: Option<PathBuf>,
    /// The time limit of a request's connect and of each read or write.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub store_timeout: Duration,
    /// The store --group reads when there is no --to (the artifact went
    /// over ssh, or elsewhere).
    #[arg(long, value_name = "s3://BUCKET/PREFIX", env = "CUTOVER_STORE_URL")]
    pub store_url: Option<String>,
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
    if let Some(t) = args.targets.iter().find(|t| t.starts_with("s3://")) {
        anyhow::bail!("--target {t:?}: a store is given with --to {t}, not --target (which takes USER@HOST:/PATH)");
    }
    let targets = args
        .targets
        .iter()
        .map(|t| upload::Target::parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fleet = Fleet::open(&args)?;
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
        .filter(|u| !u.is_empty())
        .map(|u| wait::status_url(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.wait.iter().any(String::is_empty) && args.group.is_none() {
        anyhow::bail!(
            "--wait without a URL waits for a fleet group: add --group NAME, or give the VM's status page (--wait http://HOST/)"
        );
    }

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
    let uploads = targets.len() + usize::from(fleet.publishes());
    if let Err(err) = fleet.publish(&packed, args.retries, &progress) {
        progress.line(format_args!("{err:#}"));
        failed.push(format!("{err:#}"));
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            exit_codes::UPLOAD_FAILED,
            anyhow::anyhow!(
                "{} of {} upload(s) failed: {}",
                failed.len(),
                uploads,
                failed.join("; ")
            ),
        )
        .into());
    }
    let spec = wait::Spec {
        artifact: name.file_name().to_string(),
        components,
        timeout: args.wait_timeout,
        interval: args.wait_interval,
    };
    if status_urls.is_empty() {
        return fleet.wait(&spec, &progress, stdout);
    }
    let started = Instant::now();
    wait::wait(&status_urls, &spec, &progress)?;
    // One --wait-timeout for every wait (what is left, in whole seconds).
    let left = spec.timeout.saturating_sub(started.elapsed());
    let spec = wait::Spec {
        timeout: Duration::from_secs(left.as_secs()),
        ..spec
    };
    fleet.wait(&spec, &progress, stdout)
}

/// The store and the fleet group of `--to` and `--group`: with the `s3`
/// feature, the store opened (no request yet) and the group checked;
/// without it, a refusal that names the feature.
#[derive(Debug)]
struct Fleet {
    #[cfg(feature = "s3")]
    publish_to: Option<fleet::Store>,
    #[cfg(feature = "s3")]
    group: Option<(String, fleet::Store)>,
}

#[cfg(not(feature = "s3"))]
impl Fleet {
    fn open(args: &DeliverArgs) -> anyhow::Result<Fleet> {
        let flag = match (&args.to, &args.group) {
            (Some(to), _) => format!("--to {to}"),
            (None, Some(group)) => format!("--group {group}"),
            (None, None) => return Ok(Fleet {}),
        };
        anyhow::bail!(
            "{flag}: this artifact-name was built without the `s3` feature, so it cannot use an S3-compatible store; \
             use a build with it (the .deb and the release build have it; from source: cargo build -p deliver --features s3)"
        )
    }

    fn publishes(&self) -> bool {
        false
    }

    fn publish(&self, _: &pack::Packed, _: u32, _: &Progress) -> anyhow::Result<()> {
        Ok(())
    }

    fn wait(&self, _: &wait::Spec, _: &Progress, _: &mut dyn Write) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "s3")]
impl Fleet {
    fn open(args: &DeliverArgs) -> anyhow::Result<Fleet> {
        let publish_to = match &args.to {
            Some(url) => Some(s3::open(url, "--to", &args.store)?),
            None => None,
        };
        let group = match &args.group {
            None => None,
            Some(group) => {
                if !deploy_root::fleet_config::is_name(group) {
                    anyhow::bail!(
                        "--group {group:?}: expected a group name of 1 to 64 of A-Z a-z 0-9 . _ - (the [fleet] group of the VMs)"
                    );
                }
                let store = match (&args.to, &args.store.store_url) {
                    (Some(url), _) => s3::open(url, "--to", &args.store)?,
                    (None, Some(url)) => s3::open(url, "--store-url", &args.store)?,
                    (None, None) => anyhow::bail!(
                        "--group {group}: the group's reports are in the store: give it with --to s3://BUCKET/PREFIX or --store-url s3://BUCKET/PREFIX (or CUTOVER_STORE_URL)"
                    ),
                };
                Some((group.clone(), store))
            }
        };
        Ok(Fleet { publish_to, group })
    }

    fn publishes(&self) -> bool {
        self.publish_to.is_some()
    }

    fn publish(
        &self,
        packed: &pack::Packed,
        retries: u32,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match &self.publish_to {
            Some(store) => s3::publish(store, packed, &s3::Options { retries }, progress),
            None => Ok(()),
        }
    }

    fn wait(
        &self,
        spec: &wait::Spec,
        progress: &Progress,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        match &self.group {
            Some((group, store)) => fleet_wait::wait(store, group, spec, progress, out),
            None => Ok(()),
        }
    }
}
