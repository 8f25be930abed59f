//! Overlapping runs: 25 collectors and 25 switchers started in five
//! overlapping waves against one root, a new artifact in the drop folder
//! before each wave (cron firing while a slow pass still runs, a person
//! running `switcher` by hand...).
//!
//! No corruption (state files parse, current/ points to complete
//! releases), each artifact moved exactly once (the collectors' `--json`
//! summaries together collect each name once), and at most one switch at a
//! time: the backend's stop and start commands append `begin`/`end` lines
//! with the switcher's pid (the shell's parent) to a log, and no two
//! switchers' lines ever interleave.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};

use cutover_tests::bins::bin;
use cutover_tests::Sandbox;

use super::{assert_consistent, assert_serves, demo};

/// The demo config, with stop/start wrapped to log who runs them. The
/// log is appended with `>>` (O_APPEND, one write per line), no flock: a
/// switcher running without its lock would show as interleaved lines.
fn configure(sb: &Sandbox) -> std::path::PathBuf {
    let log = sb.dir().join("switches.log");
    let (start, stop) = sb.demo_backend_commands();
    let wrap = |step: &str, cmd: &str| {
        format!(
            "echo \"begin $PPID {step}\" >> {log}; sleep 0.3; {cmd}; s=$?; echo \"end $PPID {step}\" >> {log}; exit $s",
            log = log.display()
        )
    };
    let text = format!(
        "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
         [components.backend]\nport = {bp}\nhealth_url = \"http://127.0.0.1:{bp}/api/health\"\n\
         start = {start:?}\nstop = {stop:?}\n\n[components.frontend]\nport = {fp}\n\n\
         [switcher]\nverify_timeout = \"10s\"\ncommand_timeout = \"30s\"\n",
        root = sb.root.display().to_string(),
        bp = sb.backend_port,
        fp = sb.frontend_port,
        start = wrap("start", &start),
        stop = wrap("stop", &stop),
    );
    sb.write_config_text(&text);
    log
}

#[test]
fn fifty_overlapping_runs_corrupt_nothing_and_never_switch_twice_at_once() {
    let sb = Sandbox::new();
    let log = configure(&sb);
    let first = demo("full", "1.0.0", 1);
    first.drop_into(&sb.drop_dir());
    super::cron(&sb).success();

    // Five waves, each a new artifact then 5 collectors and 5 switchers,
    // the waves overlapping (a pass holds its lock for seconds: the
    // commands are slow), so that several switches are due while others
    // still run. The newest is a full one, so whatever order the passes
    // take them in, the end is the same: both components on 3.0.0. (A
    // full artifact never takes a component back to an older build, so
    // were a frontend artifact newest, an older full one might rightly be
    // passed over.)
    let artifacts = [
        demo("full", "2.0.0", 2),
        demo("frontend", "2.1.0", 3),
        demo("full", "2.2.0", 4),
        demo("frontend", "2.3.0", 5),
        demo("full", "3.0.0", 6),
    ];
    let spawn = |name: &str, args: &[&str]| {
        Command::new(bin(name))
            .args(args)
            .env("CUTOVER_CONFIG", &sb.config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = Vec::new();
    for a in &artifacts {
        a.drop_into(&sb.drop_dir());
        // Interleaved, so both kinds start as together as a loop allows.
        for _ in 0..5 {
            children.push(("collector", spawn("collector", &["--json"])));
            children.push(("switcher", spawn("switcher", &[])));
        }
        // Pacing only (no assertion depends on it): let the wave start.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let mut collected: BTreeMap<String, usize> = BTreeMap::new();
    let mut report = Vec::new();
    for (name, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code().unwrap_or(-1);
        report.push(format!("{name}: exit {code}\n{stderr}"));
        assert!(
            code == 0,
            "{name} exited {code}\n{stdout}\n{stderr}\n{}",
            sb.listing()
        );
        if name == "collector" {
            let summary: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("collector --json: {e}\n{stdout}"));
            for n in summary["collected"].as_array().into_iter().flatten() {
                *collected
                    .entry(n.as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let story = report.join("\n");

    // Each artifact taken exactly once.
    for a in &artifacts {
        let n = a.name();
        assert_eq!(
            collected.get(n.file_name()).copied(),
            Some(1),
            "{} collected {:?} times\n{story}",
            n.file_name(),
            collected.get(n.file_name())
        );
    }

    // Two more minutes settle whatever the last runs left to do (a pass
    // takes one artifact; frontend 2.2.0 and full 3.0.0 may both be due).
    super::cron(&sb).success();
    let run = super::cron(&sb);
    run.success();
    assert_serves(&sb, &run, "3.0.0");
    let ids = assert_consistent(&sb, &run);
    assert!(
        ids.contains(&("backend".to_string(), "3.0.0".to_string()))
            && ids.contains(&("frontend".to_string(), "3.0.0".to_string())),
        "{ids:?}\n{run}"
    );
    assert_eq!(
        sb.state_json("switcher.json")["failed"],
        serde_json::json!({}),
        "{run}"
    );
    // What runs and the rollback target are still staged (older ones may
    // rightly be pruned: no release needs them).
    let staged = sb.names("staging");
    let state = sb.state_json("switcher.json");
    for c in ["backend", "frontend"] {
        for which in ["running", "previous"] {
            if let Some(a) = state["components"][c][which]["artifact"].as_str() {
                assert!(
                    staged.contains(&a.to_string()) && staged.contains(&format!("{a}.sha256")),
                    "{c} {which} {a} is not staged\n{run}"
                );
            }
        }
    }
    assert!(sb.names("drop").is_empty(), "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");

    // At most one switch at a time: every begin is followed by its own
    // end, and each switcher's lines form one block.
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let mut seen_done: Vec<&str> = Vec::new();
    let mut current: Option<&str> = None;
    for pair in lines.chunks(2) {
        assert!(
            pair.len() == 2
                && pair[0][0] == "begin"
                && pair[1][0] == "end"
                && pair[0][1] == pair[1][1]
                && pair[0][2] == pair[1][2],
            "a command's begin and end are not adjacent: {pair:?}\n{text}"
        );
        let pid = pair[0][1];
        if current != Some(pid) {
            assert!(
                !seen_done.contains(&pid),
                "switcher {pid} ran commands again after another switcher had\n{text}"
            );
            if let Some(prev) = current {
                seen_done.push(prev);
            }
            current = Some(pid);
        }
    }
    // The pass that deployed v1 plus deploys of this race.
    assert!(seen_done.len() + 1 >= 2, "{text}");
    println!(
        "switch log ({} switchers ran commands):\n{text}",
        seen_done.len() + 1
    );
}
