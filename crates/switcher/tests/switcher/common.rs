//! Helpers: a sandbox whose backend is the demo app, runs of the switcher,
//! artifacts staged directly (as the collector would leave them).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cutover_tests::{bins, net, ArchiveBuilder, Run, Sandbox};

/// A sandbox whose backend is the demo app (start/stop through
/// start-stop-daemon), whose frontend has no commands, with a short
/// verify timeout. `backend_extra` adds keys to [components.backend],
/// `switcher_extra` to [switcher]; `{backend_port}` in `backend_extra`
/// becomes the backend's port.
pub fn sandbox_with(backend_extra: &str, switcher_extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    let (start, stop) = sb.demo_backend_commands();
    let backend_extra = backend_extra.replace("{backend_port}", &sb.backend_port.to_string());
    let text = format!(
        "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
         [components.backend]\nport = {bp}\nstart = {start:?}\nstop = {stop:?}\n{backend_extra}\n\n\
         [components.frontend]\nport = {fp}\n\n[switcher]\nverify_timeout = \"3s\"\n{command_timeout}{switcher_extra}\n",
        command_timeout = if switcher_extra.contains("command_timeout") { "" } else { "command_timeout = \"30s\"\n" },
        root = sb.root.display().to_string(),
        bp = sb.backend_port,
        fp = sb.frontend_port,
    );
    sb.write_config_text(&text);
    sb
}

/// The default test sandbox.
pub fn sandbox() -> Sandbox {
    sandbox_with("", "")
}

/// The health URL key for [components.backend] (see [`sandbox_with`]).
pub const HEALTH_URL: &str = "health_url = \"http://127.0.0.1:{backend_port}/api/health\"";

/// The switcher binary of this package.
pub fn switcher_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switcher"))
}

/// Runs the switcher with `args`.
pub fn switcher(sb: &Sandbox, args: &[&str]) -> Run {
    sb.run_cmd(Command::new(switcher_bin()).args(args))
}

/// Runs the fault-injection build of the switcher, killed at `point`.
pub fn switcher_killed_at(sb: &Sandbox, point: &str) -> Run {
    sb.run_cmd(
        Command::new(bins::fault_bin("switcher"))
            .env("CUTOVER_FAULT_POINT", format!("switcher:{point}")),
    )
}

/// Puts an artifact with its marker straight into staging/.
pub fn stage(sb: &Sandbox, b: &ArchiveBuilder) -> PathBuf {
    let dir = sb.path("staging");
    std::fs::create_dir_all(&dir).unwrap();
    b.drop_into(&dir)
}

/// A good demo artifact built `minute` minutes after the test epoch.
pub fn demo(kind: &str, version: &str, minute: i64) -> ArchiveBuilder {
    ArchiveBuilder::demo(kind, version).minute(minute)
}

/// What the backend serves at /api/version, e.g. "backend 1.0.0".
pub fn served(sb: &Sandbox) -> String {
    match net::get(sb.backend_port, "/api/version") {
        Ok((200, body)) => body.trim().to_string(),
        Ok((code, body)) => format!("HTTP {code}: {body}"),
        Err(e) => format!("no answer: {e}"),
    }
}

/// Waits briefly for the backend to answer (start-stop-daemon returns
/// before the app listens; the switcher's verify already waited, so this
/// is only a safety margin).
pub fn served_eventually(sb: &Sandbox, want: &str) -> String {
    for _ in 0..20 {
        let got = served(sb);
        if got == want {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    served(sb)
}

/// The release id current/<component> points to.
pub fn current(sb: &Sandbox, component: &str) -> Option<String> {
    std::fs::read_link(sb.root.join("current").join(component))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Asserts that what `run` did leaves the backend serving `version`.
#[track_caller]
pub fn assert_serves(sb: &Sandbox, run: &Run, version: &str) {
    let want = format!("backend {version}");
    let got = served_eventually(sb, &want);
    assert_eq!(got, want, "the backend should serve {version}\n{run}");
}
