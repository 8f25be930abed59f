//! The switcher's tests: the built binary against real temp deploy roots,
//! with the demo backend started and stopped by start-stop-daemon as the
//! config says. One test binary, with topic modules.

#![allow(clippy::unwrap_used)]

mod bluegreen;
mod check;
mod clock;
mod common;
mod control;
mod deploy;
mod dry_run;
mod failures;
mod faults;
mod integrity;
mod logs;
mod notify;
mod retention;
mod site;
mod staging;
mod transitions;
mod unpack;
