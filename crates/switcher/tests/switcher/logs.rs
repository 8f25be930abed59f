//! Command logs stay bounded: a pass rotates a log over
//! switcher.max_log_size copytruncate-style, so a daemon that keeps the
//! descriptor goes on appending to the same, now short, file.

use std::fs::{self, OpenOptions};
use std::io::Write;

use crate::common::*;

#[test]
fn a_pass_rotates_a_big_command_log_that_a_daemon_keeps_open() {
    let sb = sandbox_with("", "max_log_size = \"4 KiB\"");
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    let log = sb.path("state/logs/backend-start.log");
    let first = fs::read(&log).unwrap();
    assert!(!first.is_empty());
    // A daemon started by `start` writes on through its inherited O_APPEND
    // descriptor: here, the test's own.
    let mut daemon = OpenOptions::new().append(true).open(&log).unwrap();
    daemon.write_all(&[b'x'; 8192]).unwrap();

    let run = switcher(&sb, &[]);
    run.success();
    assert_eq!(run.stderr(), "", "rotation is not news for cron\n{run}");
    let rotated = fs::read(sb.path("state/logs/backend-start.log.1")).unwrap();
    assert_eq!(rotated.len(), first.len() + 8192, "{run}");
    assert!(rotated.starts_with(&first), "{run}");
    assert_eq!(fs::metadata(&log).unwrap().len(), 0, "{run}");
    daemon.write_all(b"still here\n").unwrap();
    assert_eq!(fs::read(&log).unwrap(), b"still here\n", "no hole\n{run}");

    // Under the limit now: the next pass leaves both alone.
    switcher(&sb, &[]).success();
    assert_eq!(fs::read(&log).unwrap(), b"still here\n");
    assert_eq!(
        fs::read(sb.path("state/logs/backend-start.log.1"))
            .unwrap()
            .len(),
        rotated.len()
    );
}
