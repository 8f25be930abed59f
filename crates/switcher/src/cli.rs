//! The command line, and what each subcommand runs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use deploy_root::logging::LogArgs;
use deploy_root::{Config, Layout};

use crate::{
    check, control, dry_run, exit_codes, nginx_site, pass, releases_cmd, rollback, status,
    systemd_dropin, watch,
};

/// Takes the newest staged artifact into service: prepares its release,
/// stops the service, flips current/ atomically, starts it and verifies it,
/// and rolls back by itself when any of that fails. Run it from cron.
///
/// Commands (stop, start, reload, prepare) run as `/bin/sh -c` with a clean
/// environment: PATH, HOME, LANG=C.UTF-8, CUTOVER_ROOT, CUTOVER_RELEASE,
/// CUTOVER_COMPONENT, CUTOVER_VERSION, CUTOVER_BRANCH, CUTOVER_ARTIFACT,
/// CUTOVER_STEP, and for a blue-green component CUTOVER_SLOT and
/// CUTOVER_PORT; their output goes to state/logs/<component>-<step>.log.
#[derive(Debug, Parser)]
#[command(
    name = "switcher",
    version,
    max_term_width = 100,
    after_help = exit_codes::HELP
)]
pub struct Cli {
    /// The config file [default: $CUTOVER_CONFIG, else /etc/cutover/cutover.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print what would be done, in plain words, and change nothing: one
    /// pass, `rollback`, `deploy`, `pin`, `unpin`, `freeze`, `unfreeze`,
    /// `retry`, `follow`. The other commands change nothing anyway.
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print the man page or a shell's completions and exit (for packaging).
    #[arg(long, value_name = "KIND", hide = true)]
    pub generate: Option<deploy_root::generate::Generate>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands; without one, the switcher runs one pass.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Go back to the previous good release (stop, flip, start, verify).
    ///
    /// Without COMPONENT: the most recently deployed artifact, on every
    /// component it carried. The artifact rolled back from is marked failed,
    /// so that the next pass does not deploy it again by itself.
    Rollback {
        /// Roll back only this component.
        component: Option<String>,
    },
    /// List the releases on disk per component, marking the running, the
    /// previous and failed ones.
    Releases,
    /// Print the status page's facts: Last, Running, Status per component.
    ///
    /// Probes the ports now; changes nothing.
    Status {
        /// Print the documented JSON (schema 2) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the config and the machine before the first deploy: folders,
    /// owners and modes, the drop folder's group, ports, whether every
    /// program of each command resolves, the nginx site nginx loads, the
    /// systemd unit's writable paths, the state files, and the store
    /// ([store]): that it answers, and honours conditional writes.
    ///
    /// Prints each finding, and each problem with how to fix it; exits 5 if
    /// there is any problem. Changes nothing on the machine; with [store],
    /// it writes and removes probe objects under the store's probe/ and
    /// records the answer in state/store-probe.json (rolling mode reads it).
    Check {
        /// The user that runs collector and switcher [default: cutover when
        /// run as root and that user exists, else the current user].
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// nginx's main config file, when nginx is not run from its own
        /// (default: asked with `nginx -T`, which lists every file nginx
        /// loads; without root, /etc/nginx/nginx.conf and its includes).
        #[arg(long, value_name = "PATH")]
        nginx_conf: Option<PathBuf>,
        /// A folder systemd reads cutover.service and its drop-ins from
        /// (repeat it) [default: /etc/systemd/system, /run/systemd/system,
        /// /lib/systemd/system, /usr/lib/systemd/system].
        #[arg(long, value_name = "DIR")]
        systemd_dir: Vec<PathBuf>,
    },
    /// deploy, pin, unpin, freeze, unfreeze, retry, follow (see control.rs).
    #[command(flatten)]
    Control(control::Verb),
    /// Print the nginx site for this config: root, [nginx] listen, the
    /// frontend and backend components (what the package writes to
    /// /etc/nginx/sites-available/cutover).
    NginxSite,
    /// Print the drop-in that lets cutover.service write this config's root
    /// and drop folder (what the package writes to
    /// /etc/systemd/system/cutover.service.d/paths.conf).
    SystemdDropin,
    /// Print this VM's fleet group from the store ([store], [fleet]): per
    /// VM and component Running, Last, Status, Sync and when the store last
    /// saw the VM; VMs not seen for two periods are named missing; halted
    /// rollouts with where and why.
    ///
    /// Also writes fleet.html and fleet.json (into state/, or --out), which
    /// nginx serves at /fleet and /fleet.json. Changes nothing in the store.
    /// Needs a switcher built with the `s3` feature (the .deb's is).
    Fleet {
        /// Print the JSON (what fleet.json holds) instead of the table.
        #[arg(long)]
        json: bool,
        /// Write fleet.html and fleet.json here instead of state/.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run until stopped: collector then switcher within a second of an
    /// upload's marker landing in the drop folder (inotify), and every
    /// status.period anyway.
    ///
    /// Takes the same locks as cron's runs, so it can run beside them.
    /// SIGTERM or SIGINT lets the pass under way finish, then exits 0. The
    /// collector is the `collector` binary beside this one, else on PATH.
    Watch,
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<u8> {
    let cli = Cli::parse();
    cli.log.init();
    if let Some(kind) = cli.generate {
        use clap::CommandFactory;
        deploy_root::generate::write(Cli::command(), kind, &mut std::io::stdout().lock())?;
        return Ok(exit_codes::OK);
    }
    let path = Config::resolve_path(cli.config.as_deref());
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switcher: {e}");
            return Ok(exit_codes::CONFIG);
        }
    };
    let layout = Layout::new(&config);
    match cli.command {
        None if cli.dry_run => {
            let text = dry_run::render(&config, &layout)?;
            print(&text)?;
            Ok(exit_codes::OK)
        }
        None => pass::run(&config, &layout),
        Some(Command::Rollback { component }) if cli.dry_run => {
            print(&dry_run::render_rollback(
                &config,
                &layout,
                component.as_deref(),
            )?)?;
            Ok(exit_codes::OK)
        }
        Some(Command::Rollback { component }) => {
            rollback::run(&config, &layout, component.as_deref())
        }
        Some(Command::Releases) => {
            print(&releases_cmd::render(&config, &layout)?)?;
            Ok(exit_codes::OK)
        }
        Some(Command::Status { json: false }) => {
            print(&status::render_text(&config, &layout)?)?;
            Ok(exit_codes::OK)
        }
        Some(Command::Status { json: true }) => {
            print(&status::render_json(&config, &layout)?)?;
            Ok(exit_codes::OK)
        }
        Some(Command::Control(verb)) => control::run(&config, &layout, verb, cli.dry_run),
        Some(Command::Check {
            user,
            nginx_conf,
            systemd_dir,
        }) => {
            let mut opts = check::CheckOptions::defaults();
            opts.nginx_conf = nginx_conf;
            if !systemd_dir.is_empty() {
                opts.systemd_dirs = systemd_dir;
            }
            if let Some(user) = user {
                opts.user = user;
            }
            let problems = check::run(&config, &layout, &opts, &mut std::io::stdout().lock())?;
            Ok(if problems == 0 {
                exit_codes::OK
            } else {
                exit_codes::CHECK_FAILED
            })
        }
        Some(Command::Watch) => watch::run(&config, &layout, cli.log, cli.dry_run),
        Some(Command::Fleet { json, out }) => fleet(&config, &layout, json, out.as_deref()),
        Some(Command::NginxSite) => rendered(nginx_site::render(&config)),
        Some(Command::SystemdDropin) => rendered(systemd_dropin::render(&config, &layout)),
    }
}

/// `switcher fleet`, with the store built in.
#[cfg(feature = "s3")]
fn fleet(
    config: &Config,
    layout: &Layout,
    json: bool,
    out: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    crate::fleet_cmd::run(config, layout, json, out)
}

/// `switcher fleet` without the store: says which build has it.
#[cfg(not(feature = "s3"))]
fn fleet(_: &Config, _: &Layout, _: bool, _: Option<&std::path::Path>) -> anyhow::Result<u8> {
    eprintln!(
        "switcher: `switcher fleet` reads the store, and this switcher was built without the `s3` feature; use a build with it (the .deb's; from source: cargo build -p switcher --features s3)"
    );
    Ok(exit_codes::ERROR)
}

/// Prints a rendering, or says why there is none (exit 78: the config).
fn rendered(text: Result<String, String>) -> anyhow::Result<u8> {
    match text {
        Ok(text) => print(&text).map(|()| exit_codes::OK),
        Err(why) => {
            eprintln!("switcher: {why}");
            Ok(exit_codes::CONFIG)
        }
    }
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}
