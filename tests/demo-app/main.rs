//! `cutover-demo-app`: the small app that the demo and the tests deploy.
//!
//! `serve` is the backend: it serves its release's VERSION over HTTP
//! (`/api/version`, `/api/health`). What a release does is data in the
//! release folder, so tests can ship broken releases: a file `BEHAVIOUR`
//! holding `exit` (exits at once), `no-listen` (runs but never listens) or
//! `unhealthy` (listens, `/api/health` answers 500).
//!
//! The port is `--port PORT`, else `$CUTOVER_PORT` (what the switcher
//! gives a blue-green component's commands: the slot's port), so one
//! start command serves both slots.
//!
//! `demo DIR` plays the README's first command (see demo.rs).
//!
//! `static` is a stand-in for nginx where nginx is not installed: it serves
//! the files under a folder (following `current/frontend` anew on each
//! request), with `/api/` proxied nowhere.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

mod demo;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.first().map(String::as_str) == Some("demo") {
        let dir = PathBuf::from(args.get(1).map_or("sandbox", String::as_str));
        return match demo::run(&dir) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("demo: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let port = get("--port").or_else(|| std::env::var("CUTOVER_PORT").ok());
    let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: cutover-demo-app (serve [--port PORT] [--release DIR] | static --port PORT --root DIR); without --port, $CUTOVER_PORT");
        return ExitCode::from(2);
    };
    match args.first().map(String::as_str) {
        Some("serve") => serve(
            port,
            PathBuf::from(get("--release").unwrap_or_else(|| ".".into())),
        ),
        Some("static") => match get("--root") {
            Some(root) => serve_static(port, PathBuf::from(root)),
            None => {
                eprintln!("static needs --root DIR");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("unknown command; expected serve or static");
            ExitCode::from(2)
        }
    }
}

fn serve(port: u16, release: PathBuf) -> ExitCode {
    let version = std::fs::read_to_string(release.join("VERSION"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let behaviour = std::fs::read_to_string(release.join("BEHAVIOUR"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    eprintln!("demo backend {version} starting on port {port} (behaviour: {behaviour:?})");
    match behaviour.as_str() {
        "exit" => {
            eprintln!("demo backend {version}: this release is built to fail: exiting at once");
            return ExitCode::from(3);
        }
        "no-listen" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {}
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo backend {version}: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    let healthy = behaviour != "unhealthy";
    for stream in listener.incoming().flatten() {
        let version = version.clone();
        std::thread::spawn(move || {
            let Some(path) = request_path(&stream) else {
                return;
            };
            let (status, body) = match path.as_str() {
                "/api/version" | "/version" => (200, format!("backend {version}\n")),
                "/api/health" | "/health" if healthy => (200, "ok\n".to_string()),
                "/api/health" | "/health" => (500, "unhealthy\n".to_string()),
                _ => (
                    200,
                    format!("{{\"app\":\"demo\",\"version\":\"{version}\",\"path\":{path:?}}}\n"),
                ),
            };
            respond(stream, status, "text/plain", body.as_bytes());
        });
    }
    ExitCode::SUCCESS
}

fn serve_static(port: u16, root: PathBuf) -> ExitCode {
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo static server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        std::thread::spawn(move || {
            let Some(path) = request_path(&stream) else {
                return;
            };
            let path = path.split('?').next().unwrap_or("/").to_string();
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) && !path.eq("/") {
                respond(stream, 400, "text/plain", b"bad path\n");
                return;
            }
            let mut file = root.join(rel);
            if !file.is_file() {
                file = root.join("index.html");
            }
            match std::fs::read(&file) {
                Ok(body) => respond(stream, 200, "text/html; charset=utf-8", &body),
                Err(_) => respond(stream, 404, "text/plain", b"not found\n"),
            }
        });
    }
    ExitCode::SUCCESS
}

fn request_path(stream: &TcpStream) -> Option<String> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1).map(str::to_string)
}

fn respond(mut stream: TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let reason = if status == 200 { "OK" } else { "Error" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
}
