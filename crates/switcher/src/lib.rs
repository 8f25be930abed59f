//! The switcher: one pass takes the newest staged artifact into service, or
//! leaves the running release running, and says which.
//!
//! Modules (see ARCHITECTURE.md for the steps of a pass):
//! - [`probe`]: is a port listening, does a health URL answer 2xx.
//! - [`status`]: the status page, its JSON and the Prometheus text file.
//! - [`cli`], [`exit_codes`]: the command line.
//! - [`pass`]: one pass, start to end; [`dry_run`]: the same plan in words.
//! - [`staged`], [`plan`]: what is staged and what to take into service.
//! - [`release`], [`unpack`]: making release folders, safely.
//! - [`switch`], [`command`], [`verify`]: stop, flip, start, verify, go back.
//! - [`bluegreen`] (with [`upstream`]): start beside, move nginx's traffic, drain.
//! - [`journal`], [`recover`]: crash safety.
//! - [`record`], [`history`], [`failure`]: what a pass writes down.
//! - [`retention`]: pruning releases and staging; [`logs`]: rotating command logs.
//! - [`transitions`]: one line when a component goes DOWN or unhealthy, or recovers.
//! - [`notify`]: word of deploys, failures and outages to webhooks and commands.
//! - [`rollback`], [`releases_cmd`]: the subcommands.
//! - [`control`]: deploy by hand, pin, freeze, retry, follow (state/control.json).
//! - [`check`] (with [`shell`]), [`nginx_site`], [`systemd_dropin`]: the
//!   machine checked; the nginx site and the unit's drop-in rendered.
//! - [`watch`]: `switcher watch`, collector and switcher within a second of an upload.
//! - `fleet_cmd` (feature `s3`): `switcher fleet`, the group from the store.

pub mod probe;
pub mod status;

pub mod bluegreen;
pub mod check;
pub mod cli;
pub mod command;
pub mod control;
pub mod dry_run;
pub mod exit_codes;
pub mod failure;
#[cfg(feature = "s3")]
pub mod fleet_cmd;
pub mod history;
pub mod journal;
pub mod logs;
pub mod nginx_site;
pub mod notify;
pub mod pass;
pub mod plan;
pub mod record;
pub mod recover;
pub mod release;
pub mod releases_cmd;
pub mod retention;
pub mod rollback;
#[cfg(feature = "s3")]
pub mod rolling;
pub mod shell;
pub mod staged;
pub mod switch;
pub mod systemd_dropin;
pub mod transitions;
pub mod unpack;
pub mod upstream;
pub mod verify;
pub mod watch;
