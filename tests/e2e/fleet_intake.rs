//! The collector's intake from a real S3 store (SeaweedFS): complete
//! artifacts of the kinds this VM deploys are staged byte for byte with
//! their marker; incomplete ones and other kinds are left; a digest
//! mismatch or a bad marker is quarantined with a reason naming the object
//! and never downloaded again; with the store down the drop folder is
//! still collected, the run exits 0, the state and the page say since when,
//! and nothing staged or running is touched; a download cut short (the
//! store dying mid-transfer, or the collector killed anywhere) leaves no
//! temporary file and loses nothing.
//!
//! Objects are put with curl (`--aws-sigv4`), not with the collector's own
//! client; the binaries are those built with the `s3` feature
//! (`bins::fleet_bin`). The request counts come from `CUTOVER_STORE_STATS`.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use artifact_name::Ext;
use cutover_tests::archive::marker;
use cutover_tests::bins::fleet_bin;
use cutover_tests::seaweed::Seaweed;
use cutover_tests::{ArchiveBuilder, Run, Sandbox};
use serde_json::Value;

/// A deploy root whose config has `[store]` on `s3` under `prefix`.
fn sandbox(s3: &Seaweed, prefix: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(&s3.config_snippet(prefix));
    sb
}

/// Puts `bytes` as the object `key` (under the bucket) with curl.
fn put(s3: &Seaweed, key: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    fs::write(&body, bytes).unwrap();
    let out = s3
        .curl()
        .args(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "120"])
        .arg("-T")
        .arg(&body)
        .arg(s3.url(key))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "PUT {key}: {}\n--- weed log tail\n{}",
        String::from_utf8_lossy(&out.stderr),
        s3.log_tail()
    );
}

/// The store key of `name` under `prefix`'s drop/.
fn key(prefix: &str, name: &str) -> String {
    format!("{prefix}/drop/{name}")
}

/// Delivers an artifact as CI does: the artifact, then its marker.
/// Returns its bytes.
fn deliver(s3: &Seaweed, prefix: &str, a: &ArchiveBuilder) -> Vec<u8> {
    let name = a.name();
    let bytes = a.bytes();
    put(s3, &key(prefix, name.file_name()), &bytes);
    put(
        s3,
        &key(prefix, &name.marker_name()),
        marker(name.file_name(), &bytes).as_bytes(),
    );
    bytes
}

/// One collector run (`--json`) and the store requests it made.
struct Pass {
    run: Run,
    requests: BTreeMap<String, u64>,
}

impl Pass {
    /// The `--json` summary.
    fn summary(&self) -> Value {
        serde_json::from_str(&self.run.stdout())
            .unwrap_or_else(|e| panic!("--json is not JSON: {e}\n{}", self.run))
    }

    /// How many requests of `op` (LIST, GET, PUT, DELETE, HEAD).
    fn count(&self, op: &str) -> u64 {
        self.requests.get(op).copied().unwrap_or(0)
    }

    /// Panics unless the collector made exactly these requests, and never
    /// one that writes.
    #[track_caller]
    fn made(&self, list: u64, get: u64) {
        let got = (self.count("LIST"), self.count("GET"));
        assert_eq!(
            got,
            (list, get),
            "(LIST, GET) {:?}\n{}",
            self.requests,
            self.run
        );
        for op in ["PUT", "DELETE", "HEAD"] {
            assert_eq!(
                self.count(op),
                0,
                "{op}: the collector only reads\n{}",
                self.run
            );
        }
    }
}

/// Runs the collector with the store's credentials.
fn collect(sb: &Sandbox, s3: &Seaweed) -> Pass {
    collect_with(sb, s3, &[])
}

fn collect_with(sb: &Sandbox, s3: &Seaweed, env: &[(&str, &str)]) -> Pass {
    let stats = sb.dir().join("store-requests.jsonl");
    let _ = fs::remove_file(&stats);
    let run = sb.run_cmd(
        Command::new(fleet_bin("collector"))
            .arg("--json")
            .envs(s3.env())
            .envs(env.iter().copied())
            .env("CUTOVER_STORE_STATS", &stats),
    );
    let mut requests = BTreeMap::new();
    if let Some(line) = fs::read_to_string(&stats)
        .unwrap_or_default()
        .lines()
        .last()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        for (op, n) in v.as_object().unwrap() {
            if let Some(n) = n.as_u64() {
                requests.insert(op.clone(), n);
            }
        }
    }
    Pass { run, requests }
}

/// Runs the switcher (the `s3` build) once.
fn switch(sb: &Sandbox, s3: &Seaweed) -> Run {
    sb.run_cmd(Command::new(fleet_bin("switcher")).envs(s3.env()))
}

/// The staged file `name`'s bytes, and its marker's text.
fn staged(sb: &Sandbox, name: &str) -> (Vec<u8>, String) {
    let bytes = fs::read(sb.path("staging").join(name))
        .unwrap_or_else(|e| panic!("staging/{name}: {e}\n{}", sb.listing()));
    let marker = fs::read_to_string(sb.path(&format!("staging/{name}.sha256")))
        .unwrap_or_else(|e| panic!("staging/{name}.sha256: {e}\n{}", sb.listing()));
    (bytes, marker)
}

/// Whether staging holds `name` (the artifact or any file of that name).
fn in_staging(sb: &Sandbox, name: &str) -> bool {
    sb.path("staging").join(name).exists()
}

/// The names in staging that are temporary files (dot names).
fn temps(sb: &Sandbox) -> Vec<String> {
    sb.names("staging")
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn complete_artifacts_of_known_kinds_are_staged_byte_for_byte_and_nothing_else() {
    let s3 = Seaweed::start();
    let prefix = "vm-take";
    let sb = sandbox(&s3, prefix);

    let v1 = ArchiveBuilder::demo("full", "1.0").minute(1);
    let v1_bytes = deliver(&s3, prefix, &v1);
    // Newer, but its marker has not arrived: not complete.
    let v2 = ArchiveBuilder::demo("full", "2.0").minute(2);
    let v2_bytes = v2.bytes();
    put(&s3, &key(prefix, v2.name().file_name()), &v2_bytes);
    // A kind this VM's config does not know: never downloaded.
    let docs = ArchiveBuilder::new("docs", "9.0")
        .minute(3)
        .file("docs/index.html", "docs");
    deliver(&s3, prefix, &docs);
    // A name outside the contract: warned about once, left in the store.
    put(&s3, &key(prefix, "notes.txt"), b"hello");
    // And an upload in the drop folder at the same time.
    let local = ArchiveBuilder::demo("frontend", "1.5").minute(1);
    local.drop_into(&sb.drop_dir());

    let pass = collect(&sb, &s3);
    pass.run.success();
    // One LIST, the marker and the artifact of v1: nothing else.
    pass.made(1, 2);
    let v1_name = v1.name();
    let (bytes, marker_text) = staged(&sb, v1_name.file_name());
    assert!(bytes == v1_bytes, "staged bytes differ\n{}", pass.run);
    assert_eq!(marker_text, marker(v1_name.file_name(), &v1_bytes));
    assert!(in_staging(&sb, local.name().file_name()), "{}", pass.run);
    assert!(!in_staging(&sb, v2.name().file_name()), "{}", pass.run);
    assert!(!in_staging(&sb, docs.name().file_name()), "{}", pass.run);
    assert!(temps(&sb).is_empty(), "{}", pass.run);
    let summary = pass.summary();
    assert_eq!(
        summary["store"]["pulled"],
        serde_json::json!([v1_name.file_name()]),
        "{summary:#}"
    );
    assert_eq!(summary["store"]["error"], Value::Null, "{summary:#}");
    let stderr = pass.run.stderr();
    assert_eq!(
        stderr.lines().filter(|l| l.contains("notes.txt")).count(),
        1,
        "the bad name is warned about once\n{}",
        pass.run
    );
    assert!(
        stderr.contains(&format!("ignoring s3://cutover/{prefix}/drop/notes.txt")),
        "{}",
        pass.run
    );
    let state = sb.state_json("collector.json");
    assert_eq!(state["store"]["url"], format!("s3://cutover/{prefix}"));
    assert!(state["store"]["last_ok"].is_string(), "{state:#}");
    assert!(state["store"]["last_error"].is_null(), "{state:#}");
    assert_eq!(
        state["last"]["backend"]["artifact"],
        v1_name.file_name(),
        "{state:#}"
    );

    // Nothing new: one LIST, no GET, and the bad name is not news.
    let pass = collect(&sb, &s3);
    pass.run.success();
    pass.made(1, 0);
    assert_eq!(
        pass.run.stderr(),
        "",
        "a quiet pass prints nothing\n{}",
        pass.run
    );

    // v2's marker arrives: now it is complete, and taken.
    put(
        &s3,
        &key(prefix, &v2.name().marker_name()),
        marker(v2.name().file_name(), &v2_bytes).as_bytes(),
    );
    let pass = collect(&sb, &s3);
    pass.run.success();
    pass.made(1, 2);
    assert!(staged(&sb, v2.name().file_name()).0 == v2_bytes);
    let run = switch(&sb, &s3);
    run.success();
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["components"]["backend"]["running"]["artifact"],
        v2.name().file_name(),
        "{state:#}\n{run}"
    );
}

#[test]
fn a_mismatch_or_a_bad_marker_is_quarantined_naming_the_object_and_not_fetched_again() {
    let s3 = Seaweed::start();
    let prefix = "vm-bad";
    let sb = sandbox(&s3, prefix);

    // full: the marker states another digest.
    let full = ArchiveBuilder::demo("full", "1.0").minute(1);
    let full_name = full.name();
    let full_bytes = full.bytes();
    let other = marker(full_name.file_name(), b"other bytes");
    let expected = other.split_whitespace().next().unwrap().to_string();
    put(&s3, &key(prefix, full_name.file_name()), &full_bytes);
    put(
        &s3,
        &key(prefix, &full_name.marker_name()),
        other.as_bytes(),
    );
    // frontend: the marker is not a marker.
    let front = ArchiveBuilder::demo("frontend", "1.1").minute(2);
    let front_name = front.name();
    deliver(&s3, prefix, &front);
    put(
        &s3,
        &key(prefix, &front_name.marker_name()),
        b"not a digest\n",
    );

    let pass = collect(&sb, &s3);
    // Bad artifacts are quarantined, not failures.
    pass.run.success();
    pass.made(1, 3);
    let q = sb.path("quarantine");
    let reason = fs::read_to_string(q.join(format!("{}.reason", full_name.file_name())))
        .unwrap_or_else(|e| panic!("{e}\n{}", pass.run));
    let object = format!("s3://cutover/{prefix}/drop/{}", full_name.file_name());
    let found = marker(full_name.file_name(), &full_bytes)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    for needle in [
        format!("from {object}: digest mismatch"),
        format!("expected {expected}"),
        format!("found {found}"),
    ] {
        assert!(reason.contains(&needle), "{needle:?} not in {reason:?}");
    }
    // What was downloaded is kept, for a look.
    assert!(fs::read(q.join(full_name.file_name())).unwrap() == full_bytes);
    let reason = fs::read_to_string(q.join(format!("{}.reason", front_name.marker_name())))
        .unwrap_or_else(|e| panic!("{e}\n{}", pass.run));
    assert!(
        reason.contains(&format!(
            "from s3://cutover/{prefix}/drop/{}: the marker is not valid",
            front_name.marker_name()
        )),
        "{reason}"
    );
    assert!(sb.names("staging").is_empty(), "{}", pass.run);
    let summary = pass.summary();
    assert_eq!(
        summary["store"]["quarantined"].as_array().map(Vec::len),
        Some(2),
        "{summary:#}"
    );
    assert!(pass.run.stderr().contains("quarantined"), "{}", pass.run);

    // The next passes do not download either again, and change nothing.
    let before = fs::read_dir(&q).unwrap().count();
    for _ in 0..2 {
        let pass = collect(&sb, &s3);
        pass.run.success();
        pass.made(1, 0);
        assert_eq!(fs::read_dir(&q).unwrap().count(), before, "{}", pass.run);
        assert!(sb.names("staging").is_empty(), "{}", pass.run);
    }

    // An older good build is taken instead of the quarantined newest.
    let older = ArchiveBuilder::demo("full", "0.9").minute(0);
    let older_bytes = deliver(&s3, prefix, &older);
    let pass = collect(&sb, &s3);
    pass.run.success();
    pass.made(1, 2);
    assert!(staged(&sb, older.name().file_name()).0 == older_bytes);
}

#[test]
fn with_the_store_down_the_drop_folder_is_collected_and_nothing_is_lost() {
    let mut s3 = Seaweed::start();
    let prefix = "vm-down";
    let sb = sandbox(&s3, prefix);

    let v1 = ArchiveBuilder::demo("full", "1.0").minute(1);
    deliver(&s3, prefix, &v1);
    collect(&sb, &s3).run.success();
    switch(&sb, &s3).success();
    let current = || fs::read_link(sb.path("current/backend")).unwrap();
    let running = current();
    assert!(running.ends_with(v1.name().stem()), "{running:?}");

    s3.stop();
    let v2 = ArchiveBuilder::demo("full", "2.0").minute(2);
    v2.drop_into(&sb.drop_dir());
    let pass = collect(&sb, &s3);
    // A store outage is not a failed run (cron would mail every minute).
    pass.run.success();
    let stderr = pass.run.stderr();
    assert!(
        stderr.contains(&format!("store s3://cutover/{prefix} unreachable")),
        "{}",
        pass.run
    );
    assert_eq!(stderr.lines().count(), 1, "one line\n{}", pass.run);
    assert!(in_staging(&sb, v2.name().file_name()), "{}", pass.run);
    assert!(in_staging(&sb, v1.name().file_name()), "{}", pass.run);
    assert!(temps(&sb).is_empty(), "{}", pass.run);
    assert_eq!(current(), running, "what runs is untouched");
    let summary = pass.summary();
    assert_eq!(summary["store"]["transient"], true, "{summary:#}");
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary:#}");
    let state = sb.state_json("collector.json");
    let since = state["store"]["error_since"].clone();
    assert!(since.is_string(), "{state:#}");
    assert!(state["store"]["last_ok"].is_string(), "{state:#}");
    assert!(state["last_error"].is_null(), "{state:#}");
    assert_eq!(state["last"]["backend"]["artifact"], v2.name().file_name());

    // Still down: quiet, and "since" stays.
    let pass = collect(&sb, &s3);
    pass.run.success();
    assert_eq!(pass.run.stderr(), "", "{}", pass.run);
    let state = sb.state_json("collector.json");
    assert_eq!(state["store"]["error_since"], since, "{state:#}");

    // The switcher deploys what the drop folder brought, and the page
    // says the store cannot be reached, since when.
    let run = switch(&sb, &s3);
    run.success();
    assert!(current().ends_with(v2.name().stem()), "{run}");
    let page = sb.state_json("deploy-status.json");
    let problem = page["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["rule"] == "store-unreachable")
        .unwrap_or_else(|| panic!("no store-unreachable problem: {page:#}"));
    assert!(
        problem["message"].as_str().unwrap().starts_with(&format!(
            "the store s3://cutover/{prefix} cannot be reached since "
        )),
        "{problem:#}"
    );
    assert!(fs::read_to_string(sb.path("state/deploy-status.html"))
        .unwrap()
        .contains("cannot be reached since"),);

    // Back: the next pass takes what was delivered meanwhile.
    s3.start_again();
    let v3 = ArchiveBuilder::demo("full", "3.0").minute(3);
    let v3_bytes = deliver(&s3, prefix, &v3);
    let pass = collect(&sb, &s3);
    pass.run.success();
    pass.made(1, 2);
    assert!(pass.run.stderr().contains("answers again"), "{}", pass.run);
    assert!(staged(&sb, v3.name().file_name()).0 == v3_bytes);
    let state = sb.state_json("collector.json");
    assert!(state["store"]["error_since"].is_null(), "{state:#}");
    assert!(state["store"]["last_error"].is_null(), "{state:#}");
    let run = switch(&sb, &s3);
    run.success();
    let page = sb.state_json("deploy-status.json");
    assert!(
        !page["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rule"] == "store-unreachable"),
        "{page:#}"
    );
}

#[test]
fn a_store_that_refuses_this_vm_fails_the_run_but_not_the_drop_folder() {
    let s3 = Seaweed::start();
    let prefix = "vm-refused";
    let sb = sandbox(&s3, prefix);
    let local = ArchiveBuilder::demo("full", "1.0").minute(1);
    local.drop_into(&sb.drop_dir());
    let pass = collect_with(
        &sb,
        &s3,
        &[(
            "AWS_SECRET_ACCESS_KEY",
            "not-the-secret-key-at-all-0000000000",
        )],
    );
    pass.run.code_is(1);
    assert!(in_staging(&sb, local.name().file_name()), "{}", pass.run);
    let summary = pass.summary();
    assert_eq!(summary["store"]["transient"], false, "{summary:#}");
    assert!(
        summary["store"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("403")),
        "{summary:#}"
    );
    let state = sb.state_json("collector.json");
    assert!(state["store"]["error_since"].is_string(), "{state:#}");
}

/// A file of `len` bytes that no compressor shrinks (xorshift).
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

/// Waits until the process `pid` is stopped (SIGSTOP at a pause point).
fn wait_stopped(pid: u32) {
    let start = Instant::now();
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state is the field after the parenthesised command name.
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the collector did not pause: {stat}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_store_dying_mid_download_leaves_no_temporary_file_and_the_next_pass_takes_it() {
    let mut s3 = Seaweed::start();
    let prefix = "vm-cut";
    let sb = sandbox(&s3, prefix);
    // Big enough that the transfer is still going when the store dies.
    let big = ArchiveBuilder::new("full", "1.0")
        .minute(1)
        .ext(Ext::Tar)
        .dir("backend")
        .dir("frontend")
        .file("backend/blob", noise(48 << 20));
    let bytes = deliver(&s3, prefix, &big);

    let mut child = Command::new(fleet_bin("collector"))
        .arg("--json")
        .env("CUTOVER_CONFIG", &sb.config)
        .env("CUTOVER_FAULT_PAUSE", "collector:store-mid-get")
        .env_remove("RUST_LOG")
        .envs(s3.env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(child.id());
    assert_eq!(
        temps(&sb).len(),
        1,
        "the download in progress\n{}",
        sb.listing()
    );
    s3.stop();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the collector did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{}", sb.listing());
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(temps(&sb).is_empty(), "{stderr}\n{}", sb.listing());
    assert!(!in_staging(&sb, big.name().file_name()), "{}", sb.listing());

    s3.start_again();
    let pass = collect(&sb, &s3);
    pass.run.success();
    pass.made(1, 2);
    assert!(staged(&sb, big.name().file_name()).0 == bytes);
}

#[test]
fn a_collector_killed_anywhere_in_a_pull_loses_nothing_and_stages_nothing_unverified() {
    let s3 = Seaweed::start();
    for (i, point) in [
        "collector:store-mid-get",
        "collector:store-before-rename",
        "collector:store-after-rename",
        "collector:before-sync",
        "collector:after-marker-rename",
        "collector:before-folder-sync",
        "collector:after-folder-sync",
        "collector:before-state-write",
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("vm-crash-{i}");
        let sb = sandbox(&s3, &prefix);
        let a = ArchiveBuilder::demo("full", "1.0").minute(1);
        let bytes = deliver(&s3, &prefix, &a);
        let name = a.name();
        let killed = collect_with(&sb, &s3, &[("CUTOVER_FAULT_POINT", point)]);
        assert_eq!(killed.run.code(), -1, "{point}: not killed\n{}", killed.run);
        // Staged (artifact and marker) means whole and verified.
        if sb.path(&format!("staging/{}", name.marker_name())).exists() {
            assert!(staged(&sb, name.file_name()).0 == bytes, "{point}");
        }
        let pass = collect(&sb, &s3);
        pass.run.success();
        let (got, marker_text) = staged(&sb, name.file_name());
        assert!(got == bytes, "{point}: staged bytes differ\n{}", pass.run);
        assert_eq!(marker_text, marker(name.file_name(), &bytes), "{point}");
        assert!(temps(&sb).is_empty(), "{point}\n{}", pass.run);
        assert_eq!(
            sb.names("quarantine"),
            Vec::<String>::new(),
            "{point}\n{}",
            pass.run
        );
    }
}
