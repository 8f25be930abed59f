//! A deploy root in a temp dir, its config, and runs of the binaries.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::bins;
use crate::net::free_port;

/// A temp dir holding `cutover.toml` and the deploy root `root/`.
///
/// Dropping it removes the tree, after stopping any demo backend it started.
#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
    /// The deploy root.
    pub root: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The backend's port.
    pub backend_port: u16,
    /// The frontend's port.
    pub frontend_port: u16,
}

impl Sandbox {
    /// A sandbox whose config knows `full` and `frontend` and two components
    /// with no commands (enough for the collector).
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("cutover-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let config = dir.path().join("cutover.toml");
        let sandbox = Sandbox {
            root,
            config,
            backend_port: free_port(),
            frontend_port: free_port(),
            dir,
        };
        sandbox.write_config("");
        sandbox
    }

    /// The temp dir that holds everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The drop folder.
    pub fn drop_dir(&self) -> PathBuf {
        self.root.join("drop")
    }

    /// A folder under the root, e.g. `staging`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes the base config with `extra` TOML appended (extra tables, or
    /// keys for `[components.*]` via [`Sandbox::write_config_text`]).
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
             [components.backend]\nport = {bp}\n\n[components.frontend]\nport = {fp}\n\n{extra}",
            root = self.root.display().to_string(),
            bp = self.backend_port,
            fp = self.frontend_port,
        );
        self.write_config_text(&text);
    }

    /// Writes a config whose backend is the demo app, started and stopped by
    /// [`Sandbox::demo_backend_commands`] and checked at `/api/health`, with
    /// `extra` TOML appended (e.g. a `[switcher]` table).
    pub fn write_demo_config(&self, extra: &str) {
        let (start, stop) = self.demo_backend_commands();
        let text = format!(
            "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
             [components.backend]\nport = {bp}\nhealth_url = \"http://127.0.0.1:{bp}/api/health\"\n\
             start = {start:?}\nstop = {stop:?}\n\n[components.frontend]\nport = {fp}\n\n{extra}",
            root = self.root.display().to_string(),
            bp = self.backend_port,
            fp = self.frontend_port,
        );
        self.write_config_text(&text);
    }

    /// Writes the config file as given.
    pub fn write_config_text(&self, text: &str) {
        fs::create_dir_all(&self.root).unwrap();
        fs::create_dir_all(self.root.join("drop")).unwrap();
        fs::write(&self.config, text).unwrap();
    }

    /// The start and stop commands of the demo backend, run through
    /// start-stop-daemon with a pidfile, as cron would run them.
    pub fn demo_backend_commands(&self) -> (String, String) {
        let app = bins::bin("cutover-demo-app");
        let state = self.root.join("state");
        let pid = state.join("backend.pid");
        let start = format!(
            "start-stop-daemon --start --background --make-pidfile --pidfile {pid} \
             --chdir {current} --output {out} --exec {app} -- serve --port {port} --release .",
            pid = pid.display(),
            current = self.root.join("current/backend").display(),
            out = state.join("logs/backend.out").display(),
            app = app.display(),
            port = self.backend_port,
        );
        let stop = format!(
            "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5",
            pid = pid.display()
        );
        (start, stop)
    }

    /// The demo backend's pid, from its pidfile.
    pub fn backend_pid(&self) -> Option<i32> {
        fs::read_to_string(self.root.join("state/backend.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Runs a workspace binary with `CUTOVER_CONFIG` pointing at this
    /// sandbox (set on the child only).
    pub fn run(&self, bin: &str, args: &[&str]) -> Run {
        self.run_cmd(Command::new(bins::bin(bin)).args(args))
    }

    /// Runs a prepared command with `CUTOVER_CONFIG` set, and records it.
    pub fn run_cmd(&self, cmd: &mut Command) -> Run {
        cmd.env("CUTOVER_CONFIG", &self.config)
            .env_remove("RUST_LOG");
        Run::capture(cmd, self.dir())
    }

    /// A listing of the whole tree (path, type, size, mtime, link target),
    /// for before/after comparisons and failure messages.
    pub fn listing(&self) -> String {
        listing(self.dir())
    }

    /// The names in a folder under the root, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.root.join(rel)) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Reads a JSON state file under state/.
    pub fn state_json(&self, name: &str) -> serde_json::Value {
        let path = self.root.join("state").join(name);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", path.display(), self.listing()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never leave a demo backend running after a test (blue-green
        // backends keep one pidfile per slot).
        for name in ["backend.pid", "backend-blue.pid", "backend-green.pid"] {
            let pid = fs::read_to_string(self.root.join("state").join(name))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                let _ = Command::new("kill").arg(pid.to_string()).output();
            }
        }
    }
}

/// One finished run of a binary.
#[derive(Debug)]
pub struct Run {
    /// The command as run.
    pub cmd: String,
    /// What it printed and how it exited.
    pub output: Output,
    /// The tree after the run.
    pub tree: String,
}

impl Run {
    /// Runs `cmd` to completion and records it with the listing of `tree`
    /// (the folder it worked on) for failure messages.
    pub fn capture(cmd: &mut Command, tree: &Path) -> Run {
        let shown = format!("{cmd:?}");
        let output = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        Run {
            cmd: shown,
            output,
            tree: listing(tree),
        }
    }

    /// stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code (-1 for a signal).
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Panics with the whole story unless it exited 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code_is(0)
    }

    /// Panics with the whole story unless it exited with `code`.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert!(self.code() == code, "expected exit code {code}\n{self}");
        self
    }

    /// Panics with the whole story unless stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr().contains(needle),
            "expected {needle:?} on stderr\n{self}"
        );
        self
    }

    /// Panics with the whole story unless stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout().contains(needle),
            "expected {needle:?} on stdout\n{self}"
        );
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}\n--- tree\n{}",
            self.cmd,
            self.output.status,
            self.stdout(),
            self.stderr(),
            self.tree
        )
    }
}

/// path, type, size, mtime (ns), link target: one line per entry, sorted.
pub fn listing(dir: &Path) -> String {
    let mut lines = Vec::new();
    walk(dir, dir, &mut lines);
    lines.sort();
    lines.join("\n")
}

fn walk(base: &Path, dir: &Path, lines: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .display()
            .to_string();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            lines.push(format!("{rel} -> {target}"));
        } else if meta.is_dir() {
            lines.push(format!("{rel}/ mtime={mtime}"));
            walk(base, &path, lines);
        } else {
            lines.push(format!(
                "{rel} size={} mtime={mtime} mode={:o}",
                meta.len(),
                meta.mode()
            ));
        }
    }
}
