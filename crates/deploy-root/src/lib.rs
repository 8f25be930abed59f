//! What collector and switcher share beyond the artifact name.
//!
//! - [`config`]: the TOML config file, checked key by key.
//! - [`layout`]: where everything lives under the deploy root.
//! - [`lock`]: one `flock` per binary, close-on-exec, never inherited.
//! - [`atomic`]: writes and symlink flips that are all-or-nothing.
//! - [`state`]: the state files both binaries write and the status page reads.
//! - [`control`]: state/control.json, the holds operators set by hand.
//! - [`staging`]: what counts as staged, its order, "newer than what runs",
//!   and what pruning must keep: one policy for both binaries.
//! - [`time`]: UTC times stored as RFC 3339 with `Z`.
//! - [`digest`]: streaming SHA-256.
//! - [`fleet_config`]: `[store]` and `[fleet]`, the S3-compatible store and this VM's group.
//! - [`notify_config`]: `[notify]`, the targets of notifications, and URL redaction.
//! - [`logging`]: the `-v`/`-q` flags and the tracing subscriber.
//! - [`generate`]: man pages and shell completions from a binary's clap definition.
//! - [`fault`]: kill points for crash tests (feature `fault-injection`).

pub mod atomic;
pub mod config;
pub mod control;
pub mod digest;
pub mod fault;
pub mod fleet_config;
pub mod generate;
pub mod layout;
pub mod lock;
pub mod logging;
pub mod notify_config;
pub mod staging;
pub mod state;
pub mod time;

pub use config::{Config, ConfigError};
pub use layout::Layout;
