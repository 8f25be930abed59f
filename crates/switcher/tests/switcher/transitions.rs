//! A component going DOWN (or unhealthy) and recovering is said once each,
//! at the default level: cron mails what is printed, so it must not stay
//! silent while the page is red, nor repeat itself every minute.

use std::process::Command;
use std::time::{Duration, Instant};

use cutover_tests::net;

use crate::common::*;

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines(run: &cutover_tests::Run) -> Vec<String> {
    run.stderr().lines().map(str::to_string).collect()
}

#[test]
fn down_then_recovered_is_said_once_each() {
    let sb = sandbox_with(HEALTH_URL, "");
    stage(&sb, &demo("full", "1.0.0", 1));
    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(run.stderr(), "", "{run}");
    assert_serves(&sb, &run, "1.0.0");
    let port = sb.backend_port;

    // The demo backend dies (by its own pid, from its pidfile).
    let pid = sb.backend_pid().unwrap();
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("the backend is gone", || {
        net::get(port, "/api/health").is_err()
    });
    let down = switcher(&sb, &[]);
    down.success();
    let said = lines(&down);
    assert_eq!(said.len(), 1, "one line\n{down}");
    assert!(
        said[0].contains(&format!("backend is DOWN: nothing listens on port {port}")),
        "{down}"
    );
    assert_eq!(sb.state_json("switcher.json")["seen"]["backend"], "down");

    let again = switcher(&sb, &[]);
    again.success();
    assert_eq!(again.stderr(), "", "said once, not every pass\n{again}");

    // Started again by hand, with the configured start command.
    let (start, _) = sb.demo_backend_commands();
    assert!(Command::new("sh")
        .args(["-c", &start])
        .status()
        .unwrap()
        .success());
    wait_until("the backend answers", || {
        matches!(net::get(port, "/api/health"), Ok((200, _)))
    });
    let back = switcher(&sb, &[]);
    back.success();
    let said = lines(&back);
    assert_eq!(said.len(), 1, "one line\n{back}");
    assert!(said[0].contains("backend recovered (was DOWN)"), "{back}");
    assert_eq!(sb.state_json("switcher.json")["seen"]["backend"], "up");

    let quiet = switcher(&sb, &[]);
    quiet.success();
    assert_eq!(quiet.stderr(), "", "{quiet}");
}
