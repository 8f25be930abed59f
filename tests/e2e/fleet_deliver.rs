//! Delivery to a fleet through a real S3 server (SeaweedFS): `artifact-name
//! deliver --to s3://` publishes the artifact and then its marker, never
//! over anything published; a cancelled upload leaves no marker; `deliver
//! --wait --group` follows hand-written VM reports to the end (every live
//! VM runs it, a halted rollout, a VM gone missing); `switcher fleet`
//! prints the group and writes its page, escaped.
//!
//! The binaries are the `s3` build (`bins::fleet_bin`); the test itself
//! reads and writes the store with the `fleet` crate.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use artifact_name::exit_codes;
use deploy_root::fleet_config::StoreConfig;
use fleet::report::{VmComponent, VmReport};
use fleet::rollout::{FailureRecord, HaltRecord};
use fleet::{layout, Condition, Store, StoreError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

use cutover_tests::bins::fleet_bin;
use cutover_tests::seaweed::Seaweed;
use cutover_tests::{Run, Sandbox};

/// The name `deliver_cmd` gives a `full` build.
const NAME: &str = "full_20261126T235012Z_1.4.2_feature~x.tar.zst";
/// A build made before it.
const OLD: &str = "full_20261125T000000Z_1.4.1_master.tar.zst";

/// A build output folder with backend/ and frontend/; `extra` bytes of
/// noise in backend/blob (incompressible) make it as large as wanted.
fn build(dir: &Path, tag: &str, extra: usize) -> PathBuf {
    let from = dir.join(format!("build-{tag}"));
    fs::create_dir_all(from.join("backend")).unwrap();
    fs::create_dir_all(from.join("frontend")).unwrap();
    fs::write(from.join("backend/VERSION"), format!("{tag}\n")).unwrap();
    fs::write(from.join("frontend/index.html"), format!("<p>{tag}</p>\n")).unwrap();
    if extra > 0 {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut noise = Vec::with_capacity(extra);
        while noise.len() < extra {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        fs::write(from.join("backend/blob"), noise).unwrap();
    }
    from
}

/// `artifact-name deliver` of `from` as `full` 1.4.2 on feature/x at a
/// fixed time (so the name is [`NAME`]), into `out`, with the test keys.
fn deliver_cmd(weed: &Seaweed, from: &Path, out: &Path) -> Command {
    deliver_via(weed, &weed.endpoint(), from, out)
}

/// [`deliver_cmd`] through `endpoint`.
fn deliver_via(weed: &Seaweed, endpoint: &str, from: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(fleet_bin("artifact-name"));
    cmd.args(["deliver", "--from"])
        .arg(from)
        .args([
            "--kind",
            "full",
            "--version",
            "1.4.2",
            "--branch",
            "feature/x",
        ])
        .args(["--time", "2026-11-26T23:50:12Z", "--retries", "0", "--out"])
        .arg(out)
        .args(["--store-endpoint", endpoint])
        .envs(weed.env())
        .env_remove("CUTOVER_STORE_URL")
        .env_remove("CUTOVER_STORE_CREDENTIALS_FILE")
        .env_remove("CUTOVER_STORE_REGION");
    cmd
}

/// `s3://cutover/<prefix>`.
fn url(prefix: &str) -> String {
    format!("s3://cutover/{prefix}")
}

/// The test's own client of the store, under `prefix` (keys from a file,
/// so that nothing is set in this process's environment).
fn store(weed: &Seaweed, prefix: &str, dir: &Path) -> Store {
    let creds = dir.join(format!("store-{prefix}.credentials"));
    fs::write(
        &creds,
        format!(
            "access_key_id = {:?}\nsecret_access_key = {:?}\n",
            weed.access_key(),
            weed.secret_key()
        ),
    )
    .unwrap();
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();
    Store::open(&StoreConfig {
        url: url(prefix),
        endpoint: Some(weed.endpoint()),
        region: "us-east-1".into(),
        path_style: Some(true),
        credentials_file: Some(creds),
        timeout: Duration::from_secs(30),
    })
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `cmd` to its end, capturing it (the tree shown on failure is `dir`).
fn run(cmd: &mut Command, dir: &Path) -> Run {
    Run::capture(cmd.env_remove("RUST_LOG"), dir)
}

#[test]
fn deliver_publishes_once_and_never_over_what_is_published() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir();
    let weed = Seaweed::start();
    let s = store(&weed, "pub", dir);

    // Published: the artifact, then its marker, byte for byte the files.
    let first = build(dir, "one", 0);
    let out1 = dir.join("dist1");
    let mut cmd = deliver_cmd(&weed, &first, &out1);
    let r = run(cmd.args(["--to", &url("pub")]), dir);
    r.success()
        .stderr_has(&format!("delivered {NAME} to s3://cutover/pub"));
    assert_eq!(r.stdout().trim(), NAME, "{r}");
    let packed = fs::read(out1.join(NAME)).unwrap();
    let marker = fs::read(out1.join(format!("{NAME}.sha256"))).unwrap();
    let (object, _) = s.get(&layout::artifact(NAME)).unwrap().expect("artifact");
    assert!(
        object == packed,
        "the published artifact differs from the packed one"
    );
    let (published_marker, _) = s.get(&layout::marker(NAME)).unwrap().expect("marker");
    assert_eq!(published_marker, marker);
    let stated = artifact_name::parse_marker(&String::from_utf8_lossy(&marker), NAME).unwrap();
    assert_eq!(
        stated,
        sha256_hex(&object),
        "the marker's digest is the object's"
    );

    // The same build delivered again (a retried job): it goes through.
    let out2 = dir.join("dist2");
    let mut cmd = deliver_cmd(&weed, &first, &out2);
    let r = run(cmd.args(["--to", &url("pub")]), dir);
    r.success().stderr_has("byte for byte this build");

    // Another build under the same name: refused, and nothing changes.
    let other = build(dir, "two", 0);
    let out3 = dir.join("dist3");
    let mut cmd = deliver_cmd(&weed, &other, &out3);
    let r = run(cmd.args(["--to", &url("pub")]), dir);
    r.code_is(i32::from(exit_codes::UPLOAD_FAILED))
        .stderr_has(&format!("drop/{NAME} already exists in s3://cutover/pub"))
        .stderr_has("a published artifact is never overwritten");
    assert_ne!(
        fs::read(out3.join(NAME)).unwrap(),
        packed,
        "the builds must differ"
    );
    let (still, _) = s.get(&layout::artifact(NAME)).unwrap().unwrap();
    assert!(still == packed, "the published artifact was changed");
    let (still_marker, _) = s.get(&layout::marker(NAME)).unwrap().unwrap();
    assert_eq!(still_marker, marker);

    // The store checks the digest it is given: a wrong one is refused and
    // nothing is created.
    let file = fs::File::open(out3.join(NAME)).unwrap();
    let len = file.metadata().unwrap().len();
    let wrong = [7u8; 32];
    let key = "drop/checked.tar.zst";
    let e = s
        .put_file(key, &file, len, Some(&wrong), &Condition::Create)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Status {
                status: 400..=499,
                ..
            }
        ),
        "expected a 4xx refusal of a wrong checksum, got {e:?}"
    );
    assert_eq!(s.head(key).unwrap(), None, "an object was created: {e}");
    let right: [u8; 32] = Sha256::digest(fs::read(out3.join(NAME)).unwrap()).into();
    s.put_file(key, &file, len, Some(&right), &Condition::Create)
        .unwrap();
    assert_eq!(s.head(key).unwrap().unwrap().size, len);
}

/// A TCP proxy to `upstream` that passes what the client sends at
/// `bytes_per_sec`: an upload slow enough to be cut short.
fn slow_proxy(upstream: SocketAddr, bytes_per_sec: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let chunk = (bytes_per_sec / 20).max(1);
                let mut buf = vec![0u8; chunk];
                loop {
                    match c_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                let _ = s_out.shutdown(Shutdown::Both);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(Shutdown::Both);
            });
        }
    });
    addr
}

/// Starts `cmd` with stderr read line by line into the returned channel.
fn spawn_watched(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines from `rx` until one holds `needle` (all of them returned), or
/// panics after `limit` with what came.
fn lines_until(rx: &mpsc::Receiver<String>, needle: &str, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!(
        "no line with {needle:?} within {limit:?} (or before stderr closed):\n{}",
        seen.join("\n")
    );
}

#[test]
fn a_cancelled_delivery_leaves_no_marker() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir();
    let weed = Seaweed::start();
    let s = store(&weed, "cancel", dir);
    // 8 MiB through a proxy passing 1 MiB/s: the upload takes 8 s.
    let from = build(dir, "big", 8 << 20);
    let upstream: SocketAddr = weed
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = slow_proxy(upstream, 1 << 20);
    let mut cmd = deliver_via(&weed, &format!("http://{proxy}"), &from, &dir.join("dist"));
    cmd.args(["--to", &url("cancel")]);
    let (mut child, rx) = spawn_watched(&mut cmd);
    let mut said = lines_until(&rx, "uploading", Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(1500));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    said.extend(rx.iter());
    let said = said.join("\n");
    assert_eq!(
        status.code(),
        Some(i32::from(exit_codes::CANCELLED_SIGTERM)),
        "{said}"
    );
    assert!(said.contains("cancelled by SIGTERM"), "{said}");
    assert!(said.contains("no marker was written"), "{said}");
    // Nothing a VM would take: no marker; and the store kept nothing of
    // the PUT cut short.
    assert_eq!(s.head(&layout::marker(NAME)).unwrap(), None, "{said}");
    let listed: Vec<String> = s.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert!(listed.is_empty(), "left in the store: {listed:?}\n{said}");

    // Delivered again, it completes.
    let mut cmd = deliver_cmd(&weed, &from, &dir.join("dist"));
    let r = run(cmd.args(["--to", &url("cancel")]), dir);
    r.success();
    assert!(s.head(&layout::marker(NAME)).unwrap().is_some(), "{r}");
}

/// A VM's report: each component runs `running` and has `last` collected.
fn report(vm: &str, group: &str, period: u64, running: &str, last: &str) -> VmReport {
    let mut components = BTreeMap::new();
    for c in ["backend", "frontend"] {
        components.insert(
            c.to_string(),
            VmComponent {
                running: Some(running.into()),
                last: Some(last.into()),
                status: "UP".into(),
                sync: if running == last {
                    "in-sync".into()
                } else {
                    "out-of-sync".into()
                },
                reason: None,
            },
        );
    }
    VmReport {
        schema: fleet::report::SCHEMA,
        vm: vm.into(),
        group: group.into(),
        written_at: "2026-11-26T23:50:00Z".into(),
        period_seconds: period,
        components,
        ..Default::default()
    }
}

fn put_report(s: &Store, r: &VmReport) {
    let bytes = serde_json::to_vec(r).unwrap();
    s.put_bytes(
        &layout::status(&r.group, &r.vm),
        &bytes,
        &Condition::Overwrite,
    )
    .unwrap();
}

#[test]
fn deliver_waits_for_every_live_vm_of_the_group() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir();
    let weed = Seaweed::start();
    let s = store(&weed, "fleet", dir);
    put_report(&s, &report("vm-1", "web", 60, NAME, NAME));
    put_report(&s, &report("vm-2", "web", 60, OLD, OLD));
    // vm-3 passes every second and then stops: missing 2 s later.
    put_report(&s, &report("vm-3", "web", 1, OLD, OLD));

    let from = build(dir, "one", 0);
    let mut cmd = deliver_cmd(&weed, &from, &dir.join("dist"));
    cmd.args(["--to", &url("fleet"), "--wait", "--group", "web"])
        .args(["--wait-interval", "1s", "--wait-timeout", "90s"]);
    let (mut child, rx) = spawn_watched(&mut cmd);
    // vm-2 has not collected it yet: waited for.
    let mut said = lines_until(&rx, "web/vm-2: backend runs", Duration::from_secs(60));
    // vm-3 is named missing, and not waited for.
    said.extend(lines_until(
        &rx,
        "web/vm-3: missing",
        Duration::from_secs(30),
    ));
    // vm-2 collects it and switches.
    put_report(&s, &report("vm-2", "web", 60, OLD, NAME));
    put_report(&s, &report("vm-2", "web", 60, NAME, NAME));
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    said.extend(rx.iter());
    let said = said.join("\n");
    assert_eq!(status.code(), Some(0), "{said}\n{stdout}");
    assert!(said.contains("not waited for"), "{said}");
    // stdout: the name, then the group's table.
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(NAME), "{stdout}");
    assert!(
        stdout.contains("VM ") && stdout.contains("LAST SEEN"),
        "{stdout}"
    );
    for vm in ["vm-1", "vm-2", "vm-3 (missing)"] {
        assert!(stdout.contains(vm), "{vm} not in\n{stdout}");
    }
    assert!(
        stdout.contains("Missing (not seen for 2 periods"),
        "{stdout}"
    );
    assert!(stdout.contains(" UTC ("), "{stdout}");

    // A halted rollout ends the wait at once, with exit 9 and its summary
    // (the store given by --store-url, nothing uploaded).
    let halt = HaltRecord {
        artifact: NAME.into(),
        max_failures: 1,
        failures: vec![FailureRecord {
            vm: "vm-7".into(),
            artifact: NAME.into(),
            at: "2026-11-26T23:55:00Z".into(),
            step: "verify".into(),
            reason: "health check answered 500".into(),
            rolled_back: true,
        }],
        at: "2026-11-26T23:55:01Z".into(),
    };
    put_report(&s, &report("vm-7", "api", 60, OLD, NAME));
    s.put_bytes(
        &layout::halted("api", NAME),
        &serde_json::to_vec(&halt).unwrap(),
        &Condition::Create,
    )
    .unwrap();
    let mut cmd = deliver_cmd(&weed, &from, &dir.join("dist-api"));
    cmd.args(["--store-url", &url("fleet"), "--wait", "--group", "api"])
        .args(["--wait-interval", "1s", "--wait-timeout", "60s"]);
    let r = run(&mut cmd, dir);
    r.code_is(i32::from(exit_codes::ROLLOUT_HALTED))
        .stderr_has("the rollout of")
        .stderr_has("halted after 1 failed VM: vm-7 (verify: health check answered 500)")
        .stdout_has("Halted rollouts");
    assert_eq!(s.list("fleet/api/").unwrap().len(), 2, "{r}");

    // A VM that failed it, fewer than max_failures (no halt), and every
    // other VM done: nothing changes any more, exit 3.
    put_report(&s, &report("vm-8", "db", 60, NAME, NAME));
    put_report(&s, &report("vm-9", "db", 60, OLD, NAME));
    let failure = FailureRecord {
        vm: "vm-9".into(),
        ..halt.failures[0].clone()
    };
    s.put_bytes(
        &layout::failure("db", NAME, "vm-9"),
        &serde_json::to_vec(&failure).unwrap(),
        &Condition::Create,
    )
    .unwrap();
    let mut cmd = deliver_cmd(&weed, &from, &dir.join("dist-db"));
    cmd.args(["--store-url", &url("fleet"), "--group", "db"])
        .args(["--wait-interval", "1s", "--wait-timeout", "60s"]);
    let r = run(&mut cmd, dir);
    r.code_is(i32::from(exit_codes::DEPLOY_FAILED))
        .stderr_has("failed on some VMs of group db")
        .stderr_has("vm-9: it recorded a failed deploy of it")
        .stderr_has("it runs on vm-8")
        .stdout_has("Failed on some VMs (the rollout goes on):");
}

#[test]
fn switcher_fleet_prints_the_group_and_writes_an_escaped_page() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir();
    let weed = Seaweed::start();
    let s = store(&weed, "vms", dir);
    sandbox.write_config(&format!(
        "{}\n[fleet]\ngroup = \"web\"\nid = \"vm-1\"\n",
        weed.config_snippet("vms")
    ));
    let evil = "full_20261126T235012Z_1.4.2_<script>alert(1)</script>.tar.zst";
    put_report(&s, &report("vm-1", "web", 60, NAME, NAME));
    let mut hostile = report("<b>vm-2", "web", 60, OLD, evil);
    hostile.rollout = Some("waiting <img src=x onerror=alert(2)>".into());
    put_report(&s, &hostile);

    let out = dir.join("page");
    let r = sandbox.run_cmd(
        Command::new(fleet_bin("switcher"))
            .arg("fleet")
            .arg("--out")
            .arg(&out)
            .envs(weed.env()),
    );
    r.success()
        .stdout_has("Group web in s3://cutover/vms")
        .stdout_has("2 VMs, 2 live")
        .stdout_has(NAME)
        .stdout_has("<b>vm-2");
    let page = fs::read_to_string(out.join("fleet.html")).unwrap();
    for raw in ["<script>alert", "<b>vm-2", "<img src"] {
        assert!(!page.contains(raw), "{raw} unescaped in the page:\n{page}");
    }
    assert!(page.contains("&lt;b&gt;vm-2"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("Content-Security-Policy"), "{page}");
    assert!(page.contains("default-src &#39;none&#39;"), "{page}");
    assert_eq!(page.matches("<script>").count(), 1, "{page}");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(json["group"], "web");
    let vms: Vec<&str> = json["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vm"].as_str().unwrap())
        .collect();
    assert_eq!(vms, ["<b>vm-2", "vm-1"]);

    // Into state/ by default, and --json prints what fleet.json holds.
    let r = sandbox.run_cmd(
        Command::new(fleet_bin("switcher"))
            .args(["fleet", "--json"])
            .envs(weed.env()),
    );
    r.success();
    let printed: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(printed["vms"][1]["vm"], "vm-1");
    assert!(sandbox.path("state/fleet.html").is_file());
    assert!(sandbox.path("state/fleet.json").is_file());

    // Without [fleet]: a config error.
    sandbox.write_config(&weed.config_snippet("vms"));
    let r = sandbox.run_cmd(
        Command::new(fleet_bin("switcher"))
            .arg("fleet")
            .envs(weed.env()),
    );
    r.code_is(i32::from(exit_codes::CONFIG))
        .stderr_has("[fleet]");
}
