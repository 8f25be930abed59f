//! `artifact-name deliver` against a real sshd, with the collector on the
//! receiving end: what CI uploads is taken whole, and what a killed upload
//! leaves behind is never taken.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artifact_name::exit_codes;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cutover_tests::bins::bin;
use cutover_tests::sshd::Sshd;
use cutover_tests::{Run, Sandbox};

/// A build output folder with backend/ and frontend/ for `version`.
fn build(sandbox: &Sandbox, version: &str) -> PathBuf {
    let dir = sandbox.dir().join(format!("build-{version}"));
    fs::create_dir_all(dir.join("backend/bin")).unwrap();
    fs::create_dir_all(dir.join("frontend")).unwrap();
    fs::write(dir.join("backend/VERSION"), format!("{version}\n")).unwrap();
    fs::write(dir.join("backend/bin/run"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(dir.join("frontend/VERSION"), format!("{version}\n")).unwrap();
    fs::write(
        dir.join("frontend/index.html"),
        format!("<!doctype html><p>frontend {version}</p>\n"),
    )
    .unwrap();
    dir
}

/// The arguments of `artifact-name deliver` to the sandbox's drop folder
/// through `sshd`.
fn deliver_args(
    sandbox: &Sandbox,
    sshd: &Sshd,
    from: &Path,
    kind: &str,
    time: &str,
) -> Vec<String> {
    let mut args: Vec<String> = ["deliver", "--from"].map(String::from).to_vec();
    args.push(from.display().to_string());
    for a in [
        "--kind",
        kind,
        "--version",
        "1.4.2",
        "--branch",
        "feature/x",
    ] {
        args.push(a.into());
    }
    for a in ["--time", time, "--retries", "0", "--out"] {
        args.push(a.into());
    }
    args.push(sandbox.dir().join("dist").display().to_string());
    args.push("--target".into());
    args.push(sshd.target(&sandbox.drop_dir()));
    args.extend(sshd.deliver_args());
    args
}

/// Sets `flag`'s value in `args` (each flag is accepted once).
fn set(args: &mut [String], flag: &str, value: &str) {
    let at = args.iter().position(|a| a == flag).unwrap();
    args[at + 1] = value.to_string();
}

/// `artifact-name <args>` with the test's ssh command.
fn command(sshd: &Sshd, args: &[String]) -> Command {
    let mut cmd = Command::new(bin("artifact-name"));
    cmd.args(args).env("CUTOVER_SSH", sshd.ssh_command());
    cmd
}

/// `artifact-name deliver` to the sandbox's drop folder through `sshd`.
fn deliver(sandbox: &Sandbox, sshd: &Sshd, from: &Path, kind: &str, time: &str) -> Command {
    command(sshd, &deliver_args(sandbox, sshd, from, kind, time))
}

/// Panics with the run and the sshd log unless the run exited with `code`.
#[track_caller]
fn expect(run: &Run, code: i32, sshd: &Sshd) {
    assert!(
        run.code() == code,
        "expected exit code {code}\n{run}\n--- sshd log\n{}",
        sshd.log()
    );
}

#[test]
fn full_and_frontend_reach_the_drop_and_the_collector_takes_both() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");

    let full = sandbox.run_cmd(&mut deliver(
        &sandbox,
        &sshd,
        &from,
        "full",
        "2026-11-26T23:50:12Z",
    ));
    expect(&full, 0, &sshd);
    let full_name = "full_20261126T235012Z_1.4.2_feature~x.tar.zst";
    assert_eq!(full.stdout().trim(), full_name, "{full}");

    let frontend = sandbox.run_cmd(&mut deliver(
        &sandbox,
        &sshd,
        &from,
        "frontend",
        "2026-11-26T23:55:00Z",
    ));
    expect(&frontend, 0, &sshd);
    let frontend_name = "frontend_20261126T235500Z_1.4.2_feature~x.tar.zst";
    assert_eq!(frontend.stdout().trim(), frontend_name, "{frontend}");

    // Exactly the two artifacts and their markers: no .part left over.
    let mut want = vec![
        full_name.to_string(),
        format!("{full_name}.sha256"),
        frontend_name.to_string(),
        format!("{frontend_name}.sha256"),
    ];
    want.sort();
    assert_eq!(sandbox.names("drop"), want, "{}", sandbox.listing());
    // What arrived is byte for byte what was packed.
    for name in &want {
        assert_eq!(
            fs::read(sandbox.drop_dir().join(name)).unwrap(),
            fs::read(sandbox.dir().join("dist").join(name)).unwrap(),
            "{name} differs from the packed file"
        );
    }

    let collected = sandbox.run("collector", &[]);
    collected.success();
    assert_eq!(sandbox.names("drop"), Vec::<String>::new(), "{collected}");
    let staged = sandbox.names("staging");
    for name in &want {
        assert!(staged.contains(name), "{name} not in staging\n{collected}");
    }
}

/// Incompressible bytes (xorshift), so the archive is as large as the file.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn a_killed_upload_leaves_nothing_the_collector_takes_and_the_next_one_goes_through() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");
    fs::write(from.join("backend/blob"), noise(8 << 20)).unwrap();
    let name = "full_20261126T235012Z_1.4.2_feature~x.tar.zst";

    // 8 MiB at 512 KiB/s: some 16 s of upload to kill into. The deliver
    // process gets its own process group so that the kill takes rsync and
    // ssh with it, as a cancelled CI job does.
    let mut cmd = deliver(&sandbox, &sshd, &from, "full", "2026-11-26T23:50:12Z");
    cmd.args(["--bwlimit", "512"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap();
    let drop = sandbox.drop_dir();
    let start = Instant::now();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(60) {
        // rsync's file in the drop folder, once it holds some data.
        let partial = fs::read_dir(&drop)
            .unwrap()
            .flatten()
            .find(|e| e.metadata().is_ok_and(|m| m.len() > 0));
        if let Some(e) = partial {
            seen = Some((e.file_name(), e.metadata().unwrap().len()));
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pgid = child.id();
    // rsync and its ssh stay in deliver's process group: the kill takes them.
    let started = descendants(pgid);
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let status = child.wait().unwrap();
    let (seen_name, seen_len) = seen.unwrap_or_else(|| {
        panic!(
            "no upload appeared in the drop folder before {shown} ended ({status})\n{}\n--- sshd log\n{}",
            sandbox.listing(),
            sshd.log()
        )
    });
    // rsync writes into its own temp file `.<dest>.XXXXXX` (no second dot
    // for a dotfile), here `.cutover-<hex>.part.XXXXXX`.
    let seen_text = seen_name.to_string_lossy();
    assert!(
        seen_text.starts_with(".cutover-") && seen_text.contains(".part.") && seen_len < 8 << 20,
        "the upload in progress was {seen_name:?} ({seen_len} bytes): expected a partial dotfile"
    );
    assert!(!status.success(), "{shown} was not killed: {status}");
    assert!(
        within(Duration::from_secs(10), || started
            .iter()
            .all(|(p, c)| !runs(*p, c))),
        "a kill of deliver's process group left some of {started:?} running"
    );

    // The server side notices the dropped connection in its own time.
    std::thread::sleep(Duration::from_millis(500));
    for n in sandbox.names("drop") {
        assert!(
            n.starts_with('.'),
            "a killed upload left {n:?}, which is not a dotfile\n{}",
            sandbox.listing()
        );
    }
    let collected = sandbox.run("collector", &[]);
    collected.success();
    assert!(
        !sandbox
            .names("staging")
            .iter()
            .any(|n| n.starts_with("full_")),
        "the collector took part of a killed upload\n{collected}"
    );

    let again = sandbox.run_cmd(&mut deliver(
        &sandbox,
        &sshd,
        &from,
        "full",
        "2026-11-26T23:50:12Z",
    ));
    expect(&again, 0, &sshd);
    let collected = sandbox.run("collector", &[]);
    collected.success();
    let staged = sandbox.names("staging");
    assert!(
        staged.contains(&name.to_string()) && staged.contains(&format!("{name}.sha256")),
        "the second delivery was not taken\n{collected}"
    );
}

#[test]
fn an_unreachable_or_unknown_host_fails_with_exit_6_naming_the_target() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");

    // A host key that is not the server's: ssh must refuse, not prompt.
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let wrong = other.path().join("known_hosts");
    fs::write(&wrong, format!("[127.0.0.1]:{} {public}", sshd.port)).unwrap();
    let mut args = deliver_args(&sandbox, &sshd, &from, "full", "2026-11-26T23:50:12Z");
    set(&mut args, "--known-hosts", &wrong.display().to_string());
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 6, &sshd);
    run.stderr_has(&sshd.target(&sandbox.drop_dir()))
        .stderr_has("Host key verification failed");
    assert_eq!(sandbox.names("drop"), Vec::<String>::new(), "{run}");

    // Nothing listens: one retry after a pause, then exit 6.
    let closed = cutover_tests::net::free_port();
    let mut args = deliver_args(&sandbox, &sshd, &from, "full", "2026-11-26T23:50:12Z");
    set(&mut args, "--retries", "1");
    set(&mut args, "--port", &closed.to_string());
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 6, &sshd);
    run.stderr_has("attempt 1 of 2")
        .stderr_has("failed after 2 attempt(s)")
        .stderr_has("Connection refused");
}

#[test]
fn a_branch_full_of_shell_syntax_arrives_under_its_exact_name() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");
    // Valid for git, and a command injection if any shell saw it unquoted.
    let branch = "fix/it's'&&touch${IFS}pwned&&'\"$(id)";
    let mut args = deliver_args(&sandbox, &sshd, &from, "frontend", "2026-11-26T23:50:12Z");
    set(&mut args, "--branch", branch);
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 0, &sshd);
    let name = format!(
        "frontend_20261126T235012Z_1.4.2_{}.tar.zst",
        branch.replace('/', "~")
    );
    assert_eq!(run.stdout().trim(), name, "{run}");
    assert_eq!(
        sandbox.names("drop"),
        [name.clone(), format!("{name}.sha256")],
        "{run}"
    );
    // The remote commands run in the login user's home.
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    for dir in [home.as_path(), sandbox.drop_dir().as_path(), sandbox.dir()] {
        assert!(
            !dir.join("pwned").exists(),
            "the branch ran a command in {}",
            dir.display()
        );
    }
    let collected = sandbox.run("collector", &[]);
    collected.success();
    assert!(sandbox.names("staging").contains(&name), "{collected}");
}

/// `s` as one word for sh.
fn sh_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn progress_is_a_live_meter_on_a_terminal_and_plain_lines_in_logs() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");
    let args = deliver_args(&sandbox, &sshd, &from, "full", "2026-11-26T23:50:12Z");

    // In a log (stderr is a pipe): plain lines, no meter.
    let plain = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&plain, 0, &sshd);
    plain
        .stderr_has("uploading full_20261126T235012Z_1.4.2_feature~x.tar.zst")
        .stderr_has("delivered full_20261126T235012Z_1.4.2_feature~x.tar.zst to ");
    assert!(
        !plain.stderr().contains("xfr#"),
        "a meter in a log\n{plain}"
    );

    // On a terminal (util-linux `script` gives it one): rsync's meter.
    let line: Vec<String> = std::iter::once(bin("artifact-name").display().to_string())
        .chain(args)
        .map(|a| sh_word(&a))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .env("CUTOVER_SSH", sshd.ssh_command())
        .stdin(Stdio::null());
    let tty = sandbox.run_cmd(&mut cmd);
    expect(&tty, 0, &sshd);
    // `script` puts the terminal's output on its stdout.
    tty.stdout_has("xfr#").stdout_has("100%");
}

#[test]
fn every_target_gets_the_upload_and_one_bad_target_fails_the_run() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");
    let second = sandbox.dir().join("drop2");
    fs::create_dir_all(&second).unwrap();
    let name = "frontend_20261126T235012Z_1.4.2_feature~x.tar.zst";
    let want = [name.to_string(), format!("{name}.sha256")];

    let mut args = deliver_args(&sandbox, &sshd, &from, "frontend", "2026-11-26T23:50:12Z");
    args.push("--target".into());
    args.push(sshd.target(&second));
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 0, &sshd);
    assert_eq!(sandbox.names("drop"), want, "{run}");
    assert_eq!(sandbox.names("../drop2"), want, "{run}");

    // A drop folder that does not exist: that target fails (exit 6, named),
    // the other one is still delivered.
    fs::remove_dir_all(&second).unwrap();
    for n in &want {
        fs::remove_file(sandbox.drop_dir().join(n)).unwrap();
    }
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 6, &sshd);
    run.stderr_has(&format!("upload to {} failed", sshd.target(&second)))
        .stderr_has("1 of 2 upload(s) failed");
    assert_eq!(sandbox.names("drop"), want, "{run}");
}

#[test]
fn a_name_of_the_longest_length_arrives_with_its_marker() {
    let sandbox = Sandbox::new();
    let sshd = Sshd::start();
    let from = build(&sandbox, "1.4.2");
    // The contract's longest name, 248 bytes: its marker's name is 255, and
    // `.<name>.sha256.part` would be 261, too long for a file name.
    let prefix = "frontend_20261126T235012Z_1.4.2_";
    let branch = "b".repeat(248 - prefix.len() - ".tar.zst".len());
    let name = format!("{prefix}{branch}.tar.zst");
    assert_eq!(name.len(), artifact_name::MAX_NAME_BYTES);
    let mut args = deliver_args(&sandbox, &sshd, &from, "frontend", "2026-11-26T23:50:12Z");
    set(&mut args, "--branch", &branch);
    let run = sandbox.run_cmd(&mut command(&sshd, &args));
    expect(&run, 0, &sshd);
    assert_eq!(run.stdout().trim(), name, "{run}");
    assert_eq!(
        sandbox.names("drop"),
        [name.clone(), format!("{name}.sha256")],
        "{run}"
    );
    let collected = sandbox.run("collector", &[]);
    collected.success();
    let staged = sandbox.names("staging");
    assert!(
        staged.contains(&name) && staged.contains(&format!("{name}.sha256")),
        "{collected}"
    );
}

/// `(pid, parent pid, name, state)` of every process (from /proc/*/stat).
fn processes() -> Vec<(u32, u32, String, char)> {
    let mut all = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        all.push((pid, ppid, comm, state));
    }
    all
}

/// The live (not zombie) descendants of `root`, with their names.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found = vec![root];
    let mut out = Vec::new();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (pid, ppid, comm, state) in &all {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
                if *state != 'Z' {
                    out.push((*pid, comm.clone()));
                }
            }
        }
        i += 1;
    }
    out
}

/// Whether `pid` still runs as `comm` (a zombie has ended).
fn runs(pid: u32, comm: &str) -> bool {
    processes()
        .iter()
        .any(|(p, _, c, state)| *p == pid && c == comm && *state != 'Z')
}

/// Polls `done` until it holds or `limit` passes; returns whether it held.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cancelled_delivery_stops_its_upload_and_removes_its_temporary_files() {
    for (signal, code) in [
        (Signal::SIGTERM, exit_codes::CANCELLED_SIGTERM),
        (Signal::SIGINT, exit_codes::CANCELLED_SIGINT),
    ] {
        let sandbox = Sandbox::new();
        let sshd = Sshd::start();
        let from = build(&sandbox, "1.4.2");
        fs::write(from.join("backend/blob"), noise(8 << 20)).unwrap();
        // 8 MiB at 256 KiB/s: half a minute of upload to cancel.
        let mut cmd = deliver(&sandbox, &sshd, &from, "full", "2026-11-26T23:50:12Z");
        let stderr = sandbox.dir().join("deliver.stderr");
        cmd.args(["--bwlimit", "256"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let drop = sandbox.drop_dir();

        // Cancel once data flows: deliver's rsync runs, and the server's
        // rsync has written some of the file.
        let flowing = within(Duration::from_secs(60), || {
            let ours = descendants(pid).iter().any(|(_, c)| c == "rsync");
            let written = fs::read_dir(&drop)
                .unwrap()
                .flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 0));
            ours && written || child.try_wait().unwrap().is_some()
        });
        let ours = descendants(pid);
        let theirs: Vec<(u32, String)> = descendants(sshd.pid())
            .into_iter()
            .filter(|(_, c)| c == "rsync")
            .collect();
        assert!(
            flowing && ours.iter().any(|(_, c)| c == "rsync") && !theirs.is_empty(),
            "no upload in flight to cancel: deliver's children {ours:?}, the server's rsync {theirs:?}\n{}\n{}",
            fs::read_to_string(&stderr).unwrap_or_default(),
            sandbox.listing()
        );
        kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();

        // deliver ends at once, with the documented code.
        let ended = within(Duration::from_secs(20), || {
            child.try_wait().unwrap().is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let said = fs::read_to_string(&stderr).unwrap();
        assert!(ended, "deliver did not end after {signal}\n{said}");
        assert_eq!(status.code(), Some(i32::from(code)), "{status}\n{said}");
        assert!(said.contains(&format!("cancelled by {signal}")), "{said}");
        assert!(said.contains("removed "), "{said}");

        // Nothing it started runs on: not its rsync nor that rsync's ssh.
        let survivors: Vec<&(u32, String)> = ours.iter().filter(|(p, c)| runs(*p, c)).collect();
        assert!(
            survivors.is_empty(),
            "still running after {signal}: {survivors:?}"
        );
        // The server's rsync stops too (the connection is gone), and nothing
        // of the upload stays in the drop folder.
        let clean = within(Duration::from_secs(20), || {
            theirs.iter().all(|(p, c)| !runs(*p, c)) && sandbox.names("drop").is_empty()
        });
        assert!(
            clean,
            "after {signal}: the server's rsync {:?} still runs, or the drop folder holds {:?}\n{said}\n--- sshd log\n{}",
            theirs.iter().filter(|(p, c)| runs(*p, c)).collect::<Vec<_>>(),
            sandbox.names("drop"),
            sshd.log()
        );
    }
}
