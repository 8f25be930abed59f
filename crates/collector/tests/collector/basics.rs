//! The everyday cases: a complete upload, one without its marker yet, one
//! still being written by another process, --help and --version.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::Sandbox;

use crate::support::{artifact, assert_no_temps, assert_staged, collect, collect_ok, waiting};

#[test]
fn complete_artifact_moves_with_its_marker_quietly() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &a, &run);
    assert_no_temps(&sb, &run);
    // Quiet by default: cron mails whatever is printed.
    assert_eq!(run.stderr(), "", "{run}");
    assert_eq!(run.stdout(), "", "{run}");
    // A second pass has nothing to do, and says nothing.
    let again = collect_ok(&sb);
    assert_eq!(again.stderr(), "", "{again}");
    assert_staged(&sb, &sb.drop_dir(), &a, &again);
}

#[test]
fn json_summary_on_stdout() {
    let sb = Sandbox::new();
    let a = artifact("frontend", "2.0.0", 20);
    a.drop_into(&sb.drop_dir());
    let run = collect(&sb, &["--json"]);
    run.success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{run}"));
    assert_eq!(
        json["collected"],
        serde_json::json!([a.name().file_name()]),
        "{run}"
    );
    assert_eq!(json["errors"], serde_json::json!([]), "{run}");
}

#[test]
fn without_marker_nothing_moves() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let path = sb.drop_dir().join(a.name().file_name());
    fs::write(&path, a.bytes()).unwrap();
    let before = fs::read(&path).unwrap();
    let run = collect_ok(&sb);
    assert_eq!(fs::read(&path).unwrap(), before, "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");
    let waiting = waiting(&sb);
    assert_eq!(waiting.len(), 1, "{run}");
    assert!(waiting[0].1.contains("no marker yet"), "{waiting:?}");
    // Uploads in progress are no news.
    assert_eq!(run.stderr(), "", "{run}");
}

#[test]
fn uploads_in_progress_and_dotfiles_are_ignored() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    let name = a.name().file_name().to_string();
    for ignored in [
        format!(".{name}.part"),
        format!("{name}.part"),
        "x.tmp".into(),
    ] {
        fs::write(sb.drop_dir().join(ignored), b"partial").unwrap();
    }
    let run = collect_ok(&sb);
    assert_eq!(sb.names("drop").len(), 3, "{run}");
    assert!(sb.names("staging").is_empty(), "{run}");
    assert!(sb.names("quarantine").is_empty(), "{run}");
    assert!(waiting(&sb).is_empty(), "{run}");
}

/// A real writer (another process) appends to the artifact and only then
/// writes the marker (under a dotfile name, renamed into place, as CI
/// does). It holds still after its first byte until the test says go, so
/// one collector pass certainly runs mid-write, whatever the machine's
/// speed; more passes run while it finishes. What matters: no pass stages
/// or quarantines the partial file, and the pass after the marker stages
/// all of it.
#[test]
fn artifact_being_written_is_never_moved_until_its_marker_arrives() {
    let sb = Sandbox::new();
    let name = artifact("full", "1.0.0", 10).name().file_name().to_string();
    let go = sb.dir().join("go");
    let script = format!(
        "cd '{drop}' && printf x >> '{name}' && while [ ! -e '{go}' ]; do sleep 0.05; done; \
         for i in $(seq 29); do printf x >> '{name}'; sleep 0.02; done; \
         sha256sum '{name}' > '.{name}.sha256.part' && mv '.{name}.sha256.part' '{name}.sha256'",
        drop = sb.drop_dir().display(),
        go = go.display(),
    );
    let mut writer = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let partial = sb.drop_dir().join(&name);
    while !fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
        assert!(started.elapsed() < Duration::from_secs(60), "writer hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The writer waits for `go`: this pass runs mid-write.
    let run = collect_ok(&sb);
    assert!(
        sb.names("staging").is_empty() && sb.names("quarantine").is_empty(),
        "moved while being written\n{run}"
    );
    assert_eq!(
        waiting(&sb).len(),
        1,
        "the partial upload is waiting\n{run}"
    );
    fs::write(&go, b"").unwrap();
    while writer.try_wait().unwrap().is_none() {
        let run = collect_ok(&sb);
        if writer.try_wait().unwrap().is_some() {
            break; // the marker may have arrived during this run
        }
        assert!(
            sb.names("staging").is_empty() && sb.names("quarantine").is_empty(),
            "moved while being written\n{run}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "writer hangs");
    }
    assert!(writer.wait().unwrap().success());
    let run = collect_ok(&sb);
    let staged = fs::read(sb.path("staging").join(&name))
        .unwrap_or_else(|e| panic!("not staged after the marker arrived ({e})\n{run}"));
    assert_eq!(staged, vec![b'x'; 30], "{run}");
    assert!(sb.names("drop").is_empty(), "{run}");
    assert!(sb.names("staging").contains(&format!("{name}.sha256")));
}

#[test]
fn help_documents_exit_codes_and_version_prints() {
    let sb = Sandbox::new();
    let help = collect(&sb, &["--help"]);
    help.success();
    for needle in ["Exit codes", "78", "--config", "--json", "-v"] {
        help.stdout_has(needle);
    }
    let version = collect(&sb, &["--version"]);
    version.success().stdout_has(env!("CARGO_PKG_VERSION"));
    collect(&sb, &["--no-such-flag"]).code_is(2);
}

#[test]
fn duplicate_upload_is_taken_once() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    a.drop_into(&sb.drop_dir());
    let run = collect(&sb, &["--json"]);
    run.success();
    assert_staged(&sb, &sb.drop_dir(), &a, &run);
    assert!(sb.names("quarantine").is_empty(), "{run}");
    run.stdout_has("duplicates_removed");
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        json["duplicates_removed"],
        serde_json::json!([a.name().file_name()])
    );
}

#[test]
fn second_marker_for_a_staged_artifact_is_removed() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    collect_ok(&sb);
    let marker = a.name().marker_name();
    fs::write(
        sb.drop_dir().join(&marker),
        cutover_tests::archive::marker(a.name().file_name(), &a.bytes()),
    )
    .unwrap();
    let run = collect_ok(&sb);
    assert!(sb.names("drop").is_empty(), "{run}");
    assert_staged(&sb, &sb.drop_dir(), &a, &run);
}

#[test]
fn corrupt_state_file_fails_the_run_and_is_kept() {
    let sb = Sandbox::new();
    let a = artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    fs::create_dir_all(sb.path("state")).unwrap();
    let state = sb.path("state/collector.json");
    fs::write(&state, "{ half a file").unwrap();
    let run = collect(&sb, &[]);
    run.code_is(1).stderr_has(&state.display().to_string());
    assert_eq!(
        fs::read_to_string(&state).unwrap(),
        "{ half a file",
        "{run}"
    );
    // Moved aside, as the message says, the next run starts afresh.
    fs::rename(&state, sb.path("state/collector.json.bad")).unwrap();
    let run = collect_ok(&sb);
    assert_staged(&sb, &sb.drop_dir(), &a, &run);
}
