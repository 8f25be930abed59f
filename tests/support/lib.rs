//! Fixtures shared by every test in the workspace.
//!
//! - [`bins`]: the workspace's binaries, built fresh once per test process.
//! - [`sandbox`]: a deploy root in a temp dir, a config, and runs of the
//!   binaries against it with the environment set on the child only.
//! - [`archive`]: artifacts built from in-memory file trees, with markers.
//! - [`net`]: free loopback ports and a tiny HTTP GET.
//! - [`sshd`]: a real OpenSSH server on a loopback port, for deliveries.
//! - [`nginx`]: a real nginx child process serving deploy/nginx's site.
//! - [`chromium`]: headless Chromium: rendered DOM and screenshots.
//! - [`packages`]: Debian packages installed when missing (as root), or a
//!   failure that names the install command.
//! - [`seaweed`]: a real S3 server (SeaweedFS `weed mini`) on loopback
//!   ports, for deploy roots that share a store.
//! - [`fake_s3`]: an in-memory S3 double that ignores conditional writes.
//!
//! A failing test prints the command, its output and the tree it ran in:
//! [`sandbox::Run`]'s assertions do that.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

pub mod archive;
pub mod bins;
pub mod chromium;
pub mod fake_s3;
pub mod net;
pub mod nginx;
pub mod packages;
pub mod sandbox;
pub mod seaweed;
pub mod sshd;

pub use archive::{ArchiveBuilder, Entry};
pub use sandbox::{Run, Sandbox};
