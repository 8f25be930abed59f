//! `deliver --wait` against a status page served on loopback by a tiny
//! HTTP server in the test: success (the artifact runs, or a build made
//! later does), a recorded failure, and a time-out.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::{bin, run, Run};

const NAME: &str = "full_20261126T235012Z_1.4.2_master.tar.zst";

/// Serves `docs` in turn at any path (the last one forever); returns the
/// base URL and the paths requested.
fn serve(docs: Vec<serde_json::Value>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => req.extend_from_slice(&buf[..k]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            log.lock().unwrap().push(line);
            let body = docs[n.min(docs.len() - 1)].to_string();
            n += 1;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

fn running(backend: &str, frontend: &str) -> serde_json::Value {
    json!({"schema": 1, "components": {
        "backend": {"running": {"artifact": backend, "kind": "full"}, "last_failure": null},
        "frontend": {"running": {"artifact": frontend, "kind": "full"}},
    }})
}

fn deliver_wait(dir: &Path, url: &str, timeout: &str) -> Run {
    let from = dir.join("build");
    for c in ["backend", "frontend"] {
        std::fs::create_dir_all(from.join(c)).unwrap();
        std::fs::write(from.join(c).join("VERSION"), "1.4.2").unwrap();
    }
    let mut cmd = bin();
    cmd.arg("deliver")
        .arg("--from")
        .arg(&from)
        .args(["--kind", "full", "--version", "1.4.2", "--branch", "master"])
        .args(["--time", "2026-11-26T23:50:12Z", "--out"])
        .arg(dir.join("dist"))
        .args([
            "--wait",
            url,
            "--wait-timeout",
            timeout,
            "--wait-interval",
            "100ms",
        ]);
    run(&mut cmd, dir)
}

#[test]
fn succeeds_once_every_component_runs_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let old = "full_20261125T000000Z_1.4.1_master.tar.zst";
    let (url, seen) = serve(vec![
        json!("not yet a status document"),
        running(old, old),
        running(NAME, old),
        running(NAME, NAME),
    ]);
    let r = deliver_wait(dir.path(), &url, "30s");
    r.code_is(0);
    assert_eq!(r.stdout().trim(), NAME, "{r}");
    r.stderr_has("backend runs full_20261125T000000Z_1.4.1_master.tar.zst")
        .stderr_has(&format!("{NAME} runs"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}\n{r}");
    assert!(
        seen.iter()
            .all(|l| l.starts_with("GET /deploy-status.json ")),
        "{seen:?}"
    );
}

#[test]
fn fails_with_the_recorded_reason_when_the_switcher_marks_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let old = "full_20261125T000000Z_1.4.1_master.tar.zst";
    let mut doc = running(old, old);
    doc["components"]["backend"]["last_failure"] = json!({
        "artifact": NAME, "component": "backend", "step": "start", "exit_code": 3,
        "reason": "start command exited with 3: port 8080 in use",
    });
    let (url, _) = serve(vec![running(old, old), doc]);
    deliver_wait(dir.path(), &url, "30s")
        .code_is(3)
        .stderr_has("start command exited with 3: port 8080 in use (exit code 3)")
        .stderr_has("\"start\"")
        .stderr_has(NAME);
}

#[test]
fn times_out_saying_what_runs_instead() {
    let dir = tempfile::tempdir().unwrap();
    let old = "full_20261125T000000Z_1.4.1_master.tar.zst";
    let (url, _) = serve(vec![running(NAME, old)]);
    let started = std::time::Instant::now();
    let r = deliver_wait(dir.path(), &url, "1s");
    r.code_is(7)
        .stderr_has(&format!("frontend runs {old}"))
        .stderr_has("within 1s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{r}"
    );
    // Another schema is not guessed at.
    let (url, _) = serve(vec![json!({"schema": 3, "components": {}})]);
    deliver_wait(dir.path(), &url, "5s")
        .code_is(1)
        .stderr_has("schema 3");
    // Only plain http is built in; https is refused before packing.
    deliver_wait(dir.path(), "https://vm1/", "5s")
        .code_is(1)
        .stderr_has("expected an http:// URL");
}

#[test]
fn ends_at_once_with_exit_8_when_the_vm_is_frozen_or_a_component_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let old = "full_20261125T000000Z_1.4.1_master.tar.zst";
    let hold = json!({"reason": "release review", "who": "alice",
        "since": "2026-11-26T23:00:00Z", "until": null});
    let mut frozen = running(old, old);
    frozen["schema"] = json!(2);
    frozen["control"] = json!({"pins": {}, "freeze": hold, "follow": null});
    let started = std::time::Instant::now();
    let (url, _) = serve(vec![frozen]);
    deliver_wait(dir.path(), &url, "60s")
        .code_is(8)
        .stderr_has("the VM is frozen by alice since 2026-11-26T23:00:00Z: release review");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let mut pinned = running(NAME, old);
    pinned["schema"] = json!(2);
    pinned["control"] = json!({"pins": {"frontend": hold, "backend": hold}, "freeze": null});
    let (url, _) = serve(vec![pinned]);
    let r = deliver_wait(dir.path(), &url, "60s");
    r.code_is(8).stderr_has("frontend is pinned by alice");
    // The backend runs it already: its pin is no reason.
    assert!(!r.stderr().contains("backend is pinned"), "{r}");
}

#[test]
fn a_full_older_than_the_running_frontend_is_done_once_its_backend_runs() {
    let dir = tempfile::tempdir().unwrap();
    let old = "full_20261125T000000Z_1.4.1_master.tar.zst";
    // Built after NAME: the switcher keeps it and deploys only our backend.
    let frontend = "frontend_20261127T080000Z_1.4.3_master.tar.zst";
    let (url, seen) = serve(vec![running(old, frontend), running(NAME, frontend)]);
    let r = deliver_wait(dir.path(), &url, "30s");
    r.code_is(0)
        .stderr_has(&format!("frontend runs a newer build: {frontend}"));
    assert_eq!(seen.lock().unwrap().len(), 2, "{r}");
}

#[test]
fn an_artifact_superseded_before_the_first_poll_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let later = "full_20261126T235500Z_1.4.3_master.tar.zst";
    let (url, seen) = serve(vec![running(later, later)]);
    let r = deliver_wait(dir.path(), &url, "30s");
    r.code_is(0)
        .stderr_has(&format!("backend runs a newer build: {later}"))
        .stderr_has(&format!("frontend runs a newer build: {later}"));
    assert_eq!(seen.lock().unwrap().len(), 1, "{r}");
    // An older build running is not "done": that still times out.
    let older = "frontend_20261126T235011Z_1.4.2_master.tar.zst";
    let (url, _) = serve(vec![running(NAME, older)]);
    deliver_wait(dir.path(), &url, "1s")
        .code_is(7)
        .stderr_has(&format!("frontend runs {older}"));
}
