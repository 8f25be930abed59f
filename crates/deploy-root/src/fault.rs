//! Kill points for crash tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with
//! SIGKILL when the environment variable `CUTOVER_FAULT_POINT` names that
//! point, so that a test can stop collector or switcher exactly there and
//! check that the next run repairs the tree. When `CUTOVER_FAULT_PAUSE`
//! names the point instead, the process stops itself (SIGSTOP) there, so
//! that a test can change the world under it (rewrite a staged file) and
//! let it go on with SIGCONT. Without the feature it compiles to nothing.

/// The environment variable that names the point to die at.
pub const ENV: &str = "CUTOVER_FAULT_POINT";

/// The environment variable that names the point to pause at.
pub const PAUSE_ENV: &str = "CUTOVER_FAULT_PAUSE";

/// Dies here if `CUTOVER_FAULT_POINT` is `name`, pauses here if
/// `CUTOVER_FAULT_PAUSE` is (fault-injection builds only).
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var(ENV).is_ok_and(|v| v == name) {
        tracing::warn!("fault injection: killing the process at {name}");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(feature = "fault-injection")]
    if std::env::var(PAUSE_ENV).is_ok_and(|v| v == name) {
        tracing::warn!("fault injection: pausing the process at {name} until SIGCONT");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

/// Whether this build has fault injection compiled in.
pub const ENABLED: bool = cfg!(feature = "fault-injection");
