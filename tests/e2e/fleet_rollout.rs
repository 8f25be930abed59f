//! The rolling switch of a group of VMs on one real S3 store (SeaweedFS):
//! slots (`max_parallel`), halting on failures (`max_failures`), a VM
//! killed while it holds a slot, the store stopped mid-pass, and a store
//! that ignores conditional writes. Each VM is its own deploy root with its
//! own demo backend, and every VM converges by itself. Where delivery is the
//! point, builds go through the real `artifact-name deliver --to s3://`
//! (and `--wait --group`); where the switch is, they are put in each VM's
//! drop folder, as CI over ssh would.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cutover_tests::fake_s3::FakeS3;
use cutover_tests::fleet::Group;
use cutover_tests::sandbox::Run;
use cutover_tests::{ArchiveBuilder, Sandbox};

const LIMIT: Duration = Duration::from_secs(180);

fn deliver(group: &Group, artifact: &ArchiveBuilder) {
    for vm in &group.vms {
        artifact.drop_into(&vm.sb.drop_dir());
    }
}

fn runs_everywhere(artifact: &str) -> impl Fn(&Group, usize) -> bool + Sync {
    let artifact = artifact.to_string();
    move |g: &Group, i: usize| g.running(i, "backend").as_deref() == Some(artifact.as_str())
}

/// The switch intervals of `artifact` on every VM, printed.
fn intervals(group: &Group, artifact: &str) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let mut all = Vec::new();
    for (i, vm) in group.vms.iter().enumerate() {
        for (start, end, a, outcome) in group.deploys(i) {
            if a == artifact {
                println!(
                    "{}: {} .. {} {outcome}",
                    vm.id,
                    start.format("%H:%M:%S%.3f"),
                    end.format("%H:%M:%S%.3f")
                );
                all.push((vm.id.clone(), start, end));
            }
        }
    }
    all.sort_by_key(|(_, s, _)| *s);
    all
}

fn backend_pids(group: &Group) -> Vec<Option<i32>> {
    group.vms.iter().map(|vm| vm.sb.backend_pid()).collect()
}

/// The name of the artifact of `version` that `deliver` (running) packed
/// into the group's dist/ folder, once it is there.
fn packed_name(group: &Group, deliver: &mut std::process::Child, version: &str) -> String {
    let dist = group.vms[0].sb.dir().join("dist");
    let needle = format!("_{version}_");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let built: Vec<String> = std::fs::read_dir(&dist)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(&needle) && !n.ends_with(".sha256"))
                    .collect()
            })
            .unwrap_or_default();
        if let [one] = built.as_slice() {
            return one.clone();
        }
        if let Ok(Some(status)) = deliver.try_wait() {
            panic!("deliver ended ({status}) before it packed {version}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliver never packed {version}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The artifact name `deliver` printed first on stdout.
fn delivered_name(stdout: &str) -> String {
    stdout.lines().next().unwrap_or_default().trim().to_string()
}

/// Delivers 1.0.0 to every VM and waits until each runs it.
fn runs_v1_everywhere(group: &Group) -> ArchiveBuilder {
    let v1 = ArchiveBuilder::demo("full", "1.0.0").minute(1);
    deliver(group, &v1);
    group.converge(LIMIT, runs_everywhere(v1.name().file_name()));
    v1
}

#[test]
fn a_delivery_to_the_store_reaches_all_five_each_by_itself() {
    let group = Group::start(5, "max_parallel = 2", "");
    // The VMs are up and have reported once (as every pass does), so the
    // group is known before CI delivers.
    for i in 0..group.vms.len() {
        let (c, s) = group.pass(i);
        c.success();
        s.success();
    }
    let mut deliver = group.deliver("1.0.0", cutover_tests::archive::epoch(), None);
    // Each VM runs its own passes (collector, then switcher), as cron would,
    // until it runs what was delivered; no ssh, no coordinator.
    let name = packed_name(&group, &mut deliver, "1.0.0");
    group.converge(LIMIT, runs_everywhere(&name));
    let out = deliver.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("deliver --wait --group:\n{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(delivered_name(&stdout), name);
    for vm in &group.vms {
        assert!(
            stdout.contains(&vm.id),
            "the table names {}: {stdout}",
            vm.id
        );
        let staged = vm.sb.names("staging");
        assert!(staged.contains(&name), "{} pulled it: {staged:?}", vm.id);
    }
    // Nothing came through a drop folder.
    for vm in &group.vms {
        assert!(vm.sb.names("drop").is_empty(), "{:?}", vm.sb.names("drop"));
    }
}

#[test]
fn one_slot_lets_one_vm_switch_at_a_time() {
    let group = Group::start(5, "max_parallel = 1\nlease_ttl = \"20s\"", "");
    let v1 = runs_v1_everywhere(&group);
    let v2 = ArchiveBuilder::demo("full", "2.0.0").minute(2);
    deliver(&group, &v2);
    group.converge(LIMIT, runs_everywhere(v2.name().file_name()));

    for artifact in [v1.name().file_name(), v2.name().file_name()] {
        println!("switch intervals of {artifact}:");
        let spans = intervals(&group, artifact);
        assert_eq!(spans.len(), 5, "one deploy per VM: {spans:?}");
        for pair in spans.windows(2) {
            let (a, _, a_end) = &pair[0];
            let (b, b_start, _) = &pair[1];
            assert!(
                a_end <= b_start,
                "{a} and {b} switched at the same time with max_parallel = 1: {spans:?}"
            );
        }
    }
    // Every slot was released: the lease object says so.
    let lease = group
        .store
        .curl()
        .arg(group.store.url(&format!(
            "{}/fleet/{}/leases/0.json",
            group.prefix, group.name
        )))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&lease.stdout);
    assert!(text.contains("\"holder\": null"), "{text}");
}

#[test]
fn a_broken_artifact_fails_on_one_vm_and_halts_the_rollout() {
    let group = Group::start(5, "max_parallel = 1\nmax_failures = 1", "");
    let v1 = runs_v1_everywhere(&group);
    let pids = backend_pids(&group);

    let mut deliver = group.deliver(
        "2.0.0",
        cutover_tests::archive::epoch() + chrono::Duration::minutes(2),
        Some("unhealthy"),
    );
    let bad_name = packed_name(&group, &mut deliver, "2.0.0");
    let failed_or_halted = |g: &Group, i: usize| {
        let st = g.vms[i].sb.state_json("switcher.json");
        st["failed"].get(&bad_name).is_some()
            || st["held"][&bad_name]
                .as_str()
                .is_some_and(|why| why.contains("halted"))
    };
    group.converge(LIMIT, failed_or_halted);

    let failed: Vec<usize> = (0..5)
        .filter(|&i| {
            group
                .deploys(i)
                .iter()
                .any(|(_, _, a, outcome)| a == &bad_name && outcome == "rolled-back")
        })
        .collect();
    assert_eq!(failed.len(), 1, "exactly one VM tried it: {failed:?}");
    let canary = failed[0];
    for (i, pid) in pids.iter().enumerate() {
        assert_eq!(
            group.running(i, "backend").as_deref(),
            Some(v1.name().file_name()),
            "{} runs the previous release",
            group.vms[i].id
        );
        if i != canary {
            assert_eq!(
                group.vms[i].sb.backend_pid(),
                *pid,
                "{} never stopped its service",
                group.vms[i].id
            );
            let st = group.vms[i].sb.state_json("switcher.json");
            let why = st["held"][&bad_name]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                why.contains("halted") && why.contains(&group.vms[canary].id),
                "{} says where and why it halted: {why}",
                group.vms[i].id
            );
        }
    }
    // The page of a VM that did not try it says so too.
    let other = (canary + 1) % 5;
    let page = std::fs::read_to_string(group.root(other).join("state/deploy-status.html")).unwrap();
    assert!(page.contains("halted"), "{page}");
    // deliver --wait --group: the rollout halted, its own exit code, and
    // the per-VM table.
    let out = deliver.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("deliver --wait --group:\n{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(9), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains(&group.vms[canary].id),
        "it says where: {stdout}\n{stderr}"
    );
    // switcher fleet, on any VM: the table and the page say it halted.
    let fleet = group.run(other, "switcher", &["fleet"]);
    fleet.success();
    assert!(fleet.stdout().contains("halted"), "{fleet}");
    let page = std::fs::read_to_string(group.root(other).join("state/fleet.html")).unwrap();
    assert!(
        page.contains("halted") && page.contains(&group.vms[canary].id),
        "{page}"
    );
}

/// Whether process `pid` is stopped (state T), from /proc.
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

fn wait_stopped(child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !stopped(child.id()) {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.stdout.take().map(std::io::read_to_string);
            let err = child.stderr.take().map(std::io::read_to_string);
            panic!("the switcher ended ({status}) before its pause point\n{out:?}\n{err:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the switcher never paused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// When slot `slot`'s lease object was last written, by the store's clock.
fn lease_written(group: &Group, slot: u32) -> DateTime<Utc> {
    let out = group
        .store
        .curl()
        .arg("-I")
        .arg(group.store.url(&format!(
            "{}/fleet/{}/leases/{slot}.json",
            group.prefix, group.name
        )))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("last-modified"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Last-Modified for the lease:\n{text}"));
    DateTime::parse_from_rfc2822(&value)
        .unwrap_or_else(|e| panic!("{value:?}: {e}"))
        .with_timezone(&Utc)
}

/// VM `i`'s collector, then its switcher started with a pause at `point`
/// (fault injection): returned stopped there.
fn switcher_paused_at(group: &Group, i: usize, point: &str) -> std::process::Child {
    group.run(i, "collector", &[]).success();
    let mut child = group.spawn(i, "switcher", &[], &[("CUTOVER_FAULT_PAUSE", point)]);
    wait_stopped(&mut child);
    child
}

/// Sends `signal` to the child (a process this test started).
fn signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
}

#[test]
fn a_vm_killed_while_it_holds_a_slot_loses_it_and_converges_when_restarted() {
    let group = Group::start(5, "max_parallel = 1\nlease_ttl = \"4s\"", "");
    let v1 = runs_v1_everywhere(&group);
    let v2 = ArchiveBuilder::demo("full", "2.0.0").minute(2);
    let v2_name = v2.name().file_name().to_string();
    deliver(&group, &v2);

    // vm-0 takes the only slot and is killed -9 holding it.
    let mut child = switcher_paused_at(&group, 0, "switcher:fleet-after-lease");
    let taken = lease_written(&group, 0);
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    let status = child.wait().unwrap();
    println!("vm-0's switcher: {status}; its lease was written at {taken} (store's clock)");

    // The others go on once its lease expired (by the store's clock).
    let others = |g: &Group, i: usize| {
        i == 0 || g.running(i, "backend").as_deref() == Some(v2_name.as_str())
    };
    group.converge(LIMIT, others);
    assert_eq!(
        group.running(0, "backend").as_deref(),
        Some(v1.name().file_name()),
        "vm-0 was killed before it switched"
    );
    // ...and not before: the first to switch took the slot once vm-0's
    // lease (4 s) had expired, by the store's clock (Last-Modified is to
    // the second, so allow one).
    let first = intervals(&group, &v2_name)
        .into_iter()
        .map(|(_, start, _)| start)
        .min()
        .unwrap();
    assert!(
        first >= taken + chrono::Duration::seconds(3),
        "a VM switched at {first} while vm-0's lease (written {taken}, 4 s) held"
    );
    // vm-0, restarted, converges.
    group.converge(LIMIT, runs_everywhere(&v2_name));
    let spans = intervals(&group, &v2_name);
    for pair in spans.windows(2) {
        assert!(pair[0].2 <= pair[1].1, "overlap: {spans:?}");
    }
}

#[test]
fn the_store_stopped_mid_pass_loses_nothing_and_the_group_converges_after() {
    let mut group = Group::start(5, "max_parallel = 1\nlease_ttl = \"4s\"", "");
    let v1 = runs_v1_everywhere(&group);
    let v2 = ArchiveBuilder::demo("full", "2.0.0").minute(2);
    let v2_name = v2.name().file_name().to_string();
    deliver(&group, &v2);

    // vm-0 holds the slot, prepared; the store stops under it.
    let child = switcher_paused_at(&group, 0, "switcher:after-prepare");
    group.store.stop();
    signal(&child, nix::sys::signal::Signal::SIGCONT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("vm-0's switcher ({}):\n{stderr}", out.status);
    // The switch itself needs no store: vm-0 runs v2, and says the store
    // could not be told.
    assert_eq!(
        group.running(0, "backend").as_deref(),
        Some(v2_name.as_str()),
        "{stderr}"
    );
    assert!(
        stderr.contains("slot") || stderr.contains("store"),
        "{stderr}"
    );

    // The others, with the store down: nothing lost, nothing stopped.
    let pids = backend_pids(&group);
    for (i, pid) in pids.iter().enumerate().skip(1) {
        let (c, s) = group.pass(i);
        assert!(c.code() == 0 || c.code() == 1, "{c}");
        s.success();
        assert_eq!(
            group.running(i, "backend").as_deref(),
            Some(v1.name().file_name()),
            "{s}"
        );
        assert_eq!(group.vms[i].sb.backend_pid(), *pid, "{s}");
        assert!(
            s.stderr().contains("store"),
            "the pass says why it waits\n{s}"
        );
    }
    let st = group.vms[1].sb.state_json("switcher.json");
    assert!(
        st["held"][&v2_name]
            .as_str()
            .is_some_and(|w| w.contains("store")),
        "{st:#}"
    );

    group.store.start_again();
    group.converge(LIMIT, runs_everywhere(&v2_name));
}

#[test]
fn rolling_mode_refuses_a_store_that_ignores_conditional_writes() {
    let store = FakeS3::start();
    let sb = Sandbox::new();
    sb.write_demo_config(&format!(
        "{}\n[fleet]\ngroup = \"test\"\nid = \"vm-0\"\nmax_parallel = 1\n",
        store.config_snippet("builds")
    ));
    ArchiveBuilder::demo("full", "1.0.0")
        .minute(1)
        .drop_into(&sb.drop_dir());
    let run = |bin: &str, args: &[&str]| -> Run {
        let mut cmd = std::process::Command::new(cutover_tests::bins::fleet_bin(bin));
        cmd.args(args)
            .env("CUTOVER_CONFIG", &sb.config)
            .env_remove("RUST_LOG")
            .envs(store.env());
        Run::capture(&mut cmd, sb.dir())
    };
    run("collector", &[]).success();
    let pass = run("switcher", &[]);
    pass.code_is(10)
        .stderr_has("rolling mode")
        .stderr_has("ignores conditional writes");
    assert_eq!(sb.backend_pid(), None, "nothing was started\n{pass}");
    let st = sb.state_json("switcher.json");
    assert!(st["components"]["backend"]["running"].is_null(), "{st:#}");
    let page = std::fs::read_to_string(sb.path("state/deploy-status.html")).unwrap();
    assert!(page.contains("ignores conditional writes"), "{page}");
    let check = run("switcher", &["check"]);
    assert!(
        check.stdout().contains("FAIL  store")
            && check.stdout().contains("ignores conditional writes"),
        "{check}"
    );
}

#[test]
fn a_fleet_wide_freeze_holds_every_vm_until_lifted() {
    let group = Group::start(3, "", "");
    let v1 = runs_v1_everywhere(&group);

    // Set from any VM (vm-2 here), it holds all of them.
    let freeze = group.run(
        2,
        "switcher",
        &["freeze", "--fleet", "--reason", "release <b>week</b>"],
    );
    freeze.success().stdout_has("group test");
    let v2 = ArchiveBuilder::demo("full", "2.0.0").minute(2);
    let v2_name = v2.name().file_name().to_string();
    deliver(&group, &v2);
    for i in 0..3 {
        let (c, s) = group.pass(i);
        c.success();
        s.success();
        assert_eq!(
            group.running(i, "backend").as_deref(),
            Some(v1.name().file_name()),
            "frozen fleet-wide\n{s}"
        );
        let st = group.vms[i].sb.state_json("switcher.json");
        let page = std::fs::read_to_string(group.root(i).join("state/deploy-status.html")).unwrap();
        assert!(
            page.contains("fleet-wide") && page.contains("&lt;b&gt;week"),
            "the page says the hold is the group's, escaped\n{st:#}"
        );
    }
    // Lifted from another VM: every VM deploys at its next passes.
    group.run(0, "switcher", &["unfreeze", "--fleet"]).success();
    group.converge(LIMIT, runs_everywhere(&v2_name));
}
