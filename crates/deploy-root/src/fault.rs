//! Kill points for crash tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with
//! SIGKILL when the environment variable `CUTOVER_FAULT_POINT` names that
//! point, so that a test can stop collector or switcher exactly there and
//! check that the next run repairs the tree. When `CUTOVER_FAULT_PAUSE`
//! names the point instead, the process stops itself (SIGSTOP) there, so
//! that a test can change the world under it (rewrite a staged file) and
//! let it go on with SIGCONT. When `CUTOVER_FAULT_FAIL` names a point given
//! to [`fail`], that call returns an I/O error there instead (a full disk,
//! without filling one), so that a test can check how the binary takes a
//! write that fails. Without the feature it compiles to nothing.

/// The environment variable that names the point to die at.
pub const ENV: &str = "CUTOVER_FAULT_POINT";

/// The environment variable that names the point to pause at.
pub const PAUSE_ENV: &str = "CUTOVER_FAULT_PAUSE";

/// The environment variable that names the point to fail at.
pub const FAIL_ENV: &str = "CUTOVER_FAULT_FAIL";

/// Returns an error ("No space left on device") if `CUTOVER_FAULT_FAIL` is
/// `name` (fault-injection builds only); `Ok` otherwise.
#[inline]
pub fn fail(name: &str) -> std::io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if std::env::var(FAIL_ENV).is_ok_and(|v| v == name) {
        tracing::warn!("fault injection: failing at {name}");
        return Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC));
    }
    let _ = name;
    Ok(())
}

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
