//! Kill points for crash tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with
//! SIGKILL when the environment variable `CUTOVER_FAULT_POINT` names that
//! point, so that a test can stop collector or switcher exactly there and
//! check that the next run repairs the tree. Without the feature it compiles
//! to nothing.

/// The environment variable that names the point to die at.
pub const ENV: &str = "CUTOVER_FAULT_POINT";

/// Dies here if `CUTOVER_FAULT_POINT` is `name` (fault-injection builds only).
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var(ENV).is_ok_and(|v| v == name) {
        tracing::warn!("fault injection: killing the process at {name}");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

/// Whether this build has fault injection compiled in.
pub const ENABLED: bool = cfg!(feature = "fault-injection");
