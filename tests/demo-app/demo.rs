//! `cutover-demo-app demo DIR`: the README's first command.
//!
//! Plays the whole story in a sandbox: CI delivers a `full` v1, a
//! `frontend` v2 and a `full` v3 whose backend cannot start; between
//! deliveries, collector and switcher run as cron would run them. Each step
//! shows what the app answers and what the switcher recorded.

#![allow(clippy::print_stdout)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context};
use cutover_tests::net::{free_port, get, wait_listening};
use cutover_tests::ArchiveBuilder;

/// Runs the demo in `dir` (made afresh; a previous demo there is stopped).
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the demo binary has no folder")?
        .to_path_buf();
    for b in ["collector", "switcher"] {
        if !bin_dir.join(b).exists() {
            bail!(
                "{} not found next to the demo: run ./demo, which builds the workspace",
                bin_dir.join(b).display()
            );
        }
    }
    let dir = std::path::absolute(dir)?;
    stop_previous(&dir);
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the old sandbox {}", dir.display()))?;
    }
    let root = dir.join("root");
    let state = root.join("state");
    fs::create_dir_all(root.join("drop"))?;
    fs::create_dir_all(state.join("logs"))?;
    let demo_app = std::env::current_exe()?;
    let backend_port = free_port();
    let frontend_port = free_port();
    let config = dir.join("cutover.toml");
    let pid = state.join("backend.pid");
    fs::write(
        &config,
        format!(
            r#"# The demo's config: the same keys as deploy/cutover.toml.
root = "root"

[kinds]
full = ["backend", "frontend"]
frontend = ["frontend"]

[components.backend]
port = {backend_port}
health_url = "http://127.0.0.1:{backend_port}/api/health"
start = "start-stop-daemon --start --background --make-pidfile --pidfile {pid} --chdir {root}/current/backend --output {state}/logs/backend.out --exec {app} -- serve --port {backend_port} --release ."
stop = "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5"

[components.frontend]
# Served by the demo's static server (nginx in production), which follows
# current/frontend on every request: no reload needed.
port = {frontend_port}

[switcher]
verify_timeout = "10s"
"#,
            pid = pid.display(),
            root = root.display(),
            state = state.display(),
            app = demo_app.display(),
        ),
    )?;
    let cron = Cron {
        bin_dir,
        config: config.clone(),
        root: root.clone(),
    };

    println!("cutover demo in {}\n", dir.display());
    // The frontend server stands in for nginx; it serves current/frontend.
    let static_pid = state.join("frontend-server.pid");
    let status = Command::new("start-stop-daemon")
        .args(["--start", "--background", "--make-pidfile", "--pidfile"])
        .arg(&static_pid)
        .arg("--output")
        .arg(state.join("logs/frontend-server.out"))
        .arg("--exec")
        .arg(&demo_app)
        .args([
            "--",
            "static",
            "--port",
            &frontend_port.to_string(),
            "--root",
        ])
        .arg(root.join("current/frontend"))
        .status()
        .context("starting the demo frontend server with start-stop-daemon")?;
    if !status.success() {
        bail!("start-stop-daemon could not start the demo frontend server");
    }
    wait_listening(frontend_port, true, Duration::from_secs(5));

    step("1. CI delivers full v1.0.0 from master (backend and frontend)");
    ArchiveBuilder::demo("full", "1.0.0")
        .at(built(30))
        .drop_into(&root.join("drop"));
    cron.pass()?;
    show(backend_port, frontend_port);

    step("2. CI delivers frontend v2.0.0 (the backend keeps running untouched)");
    let pid_before = fs::read_to_string(&pid).unwrap_or_default();
    ArchiveBuilder::demo("frontend", "2.0.0")
        .at(built(20))
        .drop_into(&root.join("drop"));
    cron.pass()?;
    show(backend_port, frontend_port);
    let pid_after = fs::read_to_string(&pid).unwrap_or_default();
    println!(
        "   backend pid before {} and after {}: {}",
        pid_before.trim(),
        pid_after.trim(),
        if pid_before == pid_after {
            "the same process"
        } else {
            "restarted (unexpected)"
        }
    );

    step("3. CI delivers full v3.0.0, whose backend exits at once");
    ArchiveBuilder::demo("full", "3.0.0")
        .at(built(10))
        .file("backend/BEHAVIOUR", "exit\n")
        .drop_into(&root.join("drop"));
    cron.pass()?;
    show(backend_port, frontend_port);
    // The backend runs in the background, so its own words are in its log,
    // not in the start command's output.
    if let Ok(log) = fs::read_to_string(state.join("logs/backend.out")) {
        println!("   the backend's own log (state/logs/backend.out) ends:");
        for line in log
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("     {line}");
        }
    }

    step("What the switcher says now (switcher status)");
    let out = cron.command("switcher").arg("status").output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if let Ok(json) = fs::read_to_string(state.join("switcher.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
            if let Some(f) = v["failed"].as_object().and_then(|m| m.values().next()) {
                println!(
                    "\n   v3 was rolled back: step {}, {}",
                    f["step"].as_str().unwrap_or("?"),
                    f["reason"].as_str().unwrap_or("?")
                );
            }
        }
    }

    println!("\nThe sandbox stays for you to explore:");
    println!("   {}   the config", config.display());
    println!(
        "   {}/{{drop,staging,releases,current,state}}",
        root.display()
    );
    println!("   state/deploy-status.html   the status page; state/history.jsonl the passes");
    println!(
        "   CUTOVER_CONFIG={} target/debug/switcher --dry-run",
        config.display()
    );
    println!("\nThe demo backend answers on http://127.0.0.1:{backend_port}/api/version and the");
    println!("frontend on http://127.0.0.1:{frontend_port}/. Stop both with:");
    println!(
        "   start-stop-daemon --stop --pidfile {} --remove-pidfile",
        pid.display()
    );
    println!(
        "   start-stop-daemon --stop --pidfile {} --remove-pidfile",
        static_pid.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the binaries as cron does: collector, then switcher.
struct Cron {
    bin_dir: PathBuf,
    config: PathBuf,
    root: PathBuf,
}

impl Cron {
    fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(bin));
        cmd.env("CUTOVER_CONFIG", &self.config)
            .current_dir(&self.root);
        cmd
    }

    fn pass(&self) -> anyhow::Result<()> {
        for bin in ["collector", "switcher"] {
            let out = self
                .command(bin)
                .arg("-v")
                .output()
                .with_context(|| format!("running {bin}"))?;
            let code = out.status.code().unwrap_or(-1);
            println!("   $ {bin} -v   (exit {code})");
            for line in String::from_utf8_lossy(&out.stderr).lines() {
                println!("     {line}");
            }
        }
        Ok(())
    }
}

/// A build time `minutes` ago, so that the ages shown are realistic.
fn built(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::minutes(minutes)
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn show(backend_port: u16, frontend_port: u16) {
    match get(backend_port, "/api/version") {
        Ok((code, body)) => println!("   GET /api/version -> {code} {}", body.trim()),
        Err(e) => println!("   GET /api/version -> no answer ({e})"),
    }
    match get(frontend_port, "/") {
        Ok((code, body)) => {
            let text = body
                .split("<p>")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or(body.trim());
            println!("   GET /            -> {code} {text}");
        }
        Err(e) => println!("   GET /            -> no answer ({e})"),
    }
}

/// Stops the processes a previous demo in `dir` left running.
fn stop_previous(dir: &Path) {
    for pidfile in ["root/state/backend.pid", "root/state/frontend-server.pid"] {
        let path = dir.join(pidfile);
        if path.exists() {
            let _ = Command::new("start-stop-daemon")
                .args([
                    "--stop",
                    "--oknodo",
                    "--retry",
                    "TERM/5/KILL/5",
                    "--remove-pidfile",
                    "--pidfile",
                ])
                .arg(&path)
                .output();
        }
    }
}
