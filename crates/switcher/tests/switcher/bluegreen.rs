//! Blue-green: real nginx in front of the demo backend on two slots. A
//! client hammers nginx while releases switch and fail; crash rows for the
//! new steps; `switcher rollback` moves traffic back.

use std::collections::BTreeSet;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cutover_tests::nginx::{self, http_get, Nginx};
use cutover_tests::{bins, net, Sandbox};

use crate::common::*;

/// A sandbox whose backend is blue-green on two free ports, behind a real
/// nginx on the frontend's port. `blue_green: false` gives the same
/// sandbox with today's restart on one port, for comparison.
struct Site {
    sb: Sandbox,
    web: Nginx,
    ports: [u16; 2],
}

/// The sandbox's config, blue-green or restart, with `nginx.reload`.
pub fn config_text(sb: &Sandbox, blue_green: bool, ports: [u16; 2], reload: &str) -> String {
    let app = bins::bin("cutover-demo-app");
    let backend = if blue_green {
        // One instance per slot: the pidfile and the port are the slot's,
        // and the app runs from its release folder, not current/ (which
        // flips only when traffic moves).
        let pid = "\"$CUTOVER_ROOT/state/backend-$CUTOVER_SLOT.pid\"";
        let start = format!(
            "start-stop-daemon --start --background --make-pidfile --pidfile {pid} \
             --chdir \"$CUTOVER_RELEASE\" --output \"$CUTOVER_ROOT/state/logs/backend-$CUTOVER_SLOT.out\" \
             --exec {app} -- serve --release .",
            app = app.display()
        );
        let stop = format!(
            "start-stop-daemon --stop --pidfile {pid} --remove-pidfile --oknodo --retry TERM/5/KILL/5"
        );
        format!(
            "switch = \"blue-green\"\nports = [{}, {}]\ndrain = \"1s\"\n\
             health_url = \"http://127.0.0.1:{{port}}/api/health\"\nstart = {start:?}\nstop = {stop:?}\n",
            ports[0], ports[1]
        )
    } else {
        let (start, stop) = sb.demo_backend_commands();
        format!(
            "port = {}\nhealth_url = \"http://127.0.0.1:{}/api/health\"\nstart = {start:?}\nstop = {stop:?}\n",
            sb.backend_port, sb.backend_port
        )
    };
    format!(
        "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\n\
         [components.backend]\n{backend}\n\
         [components.frontend]\nport = {fp}\n\n\
         [switcher]\nverify_timeout = \"3s\"\ncommand_timeout = \"30s\"\n\n\
         [nginx]\nlisten = \"127.0.0.1:{fp}\"\nreload = {reload:?}\n",
        root = sb.root.display().to_string(),
        fp = sb.frontend_port,
    )
}

impl Site {
    fn new(blue_green: bool) -> Site {
        nginx::binary();
        let sb = Sandbox::new();
        let ports = [net::free_port(), net::free_port()];
        // nginx must run before its reload command can name it, and the
        // site it loads must exist before: a placeholder reload first.
        sb.write_config_text(&config_text(&sb, blue_green, ports, "true"));
        // A pass with nothing staged writes the upstream include.
        switcher(&sb, &[]).success();
        let web = Nginx::start(&nginx::site_for_config(&sb.config), sb.frontend_port);
        sb.write_config_text(&config_text(&sb, blue_green, ports, &web.reload_command()));
        Site { sb, web, ports }
    }

    fn serves(&self) -> String {
        let r = self.web.get("/api/version");
        format!("{} {}", r.status, r.body.trim())
    }

    /// Whether each slot's port listens (blue, green).
    fn listening(&self) -> [bool; 2] {
        self.ports.map(net::listening)
    }
}

/// What the client saw.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    failed: u64,
    wrong_version: u64,
    examples: Vec<String>,
}

/// Sends requests through nginx, one after the other, until `stop`; each
/// must be a 200 from a version in `allowed`.
fn client(
    port: u16,
    stop: Arc<AtomicBool>,
    allowed: Arc<Mutex<BTreeSet<String>>>,
) -> thread::JoinHandle<Tally> {
    thread::spawn(move || {
        let mut t = Tally::default();
        // Bounded whatever happens: a test must end.
        let deadline = Instant::now() + Duration::from_secs(600);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let r = http_get(port, "/api/version");
            let body = r.body.trim().to_string();
            if r.status != 200 || !body.starts_with("backend ") {
                t.failed += 1;
                if t.examples.len() < 5 {
                    t.examples.push(format!("HTTP {}: {body:.120}", r.status));
                }
            } else if !allowed.lock().unwrap().contains(&body) {
                t.wrong_version += 1;
                if t.examples.len() < 5 {
                    t.examples.push(format!("not allowed: {body}"));
                }
            } else {
                t.ok += 1;
            }
        }
        t
    })
}

/// 20 switches and 5 failed deploys under load; returns what the client saw.
fn switches_under_load(blue_green: bool) -> Tally {
    let site = Site::new(blue_green);
    let sb = &site.sb;
    stage(sb, &demo("full", "1.0.0", 1));
    switcher(sb, &[]).success();
    assert_eq!(
        site.serves(),
        "200 backend 1.0.0",
        "{}",
        site.web.error_log()
    );
    let allowed = Arc::new(Mutex::new(BTreeSet::from(["backend 1.0.0".to_string()])));
    let stop = Arc::new(AtomicBool::new(false));
    let load = client(site.web.port, stop.clone(), allowed.clone());
    let mut good = "1.0.0".to_string();
    for i in 1..=25 {
        let version = format!("1.{i}.0");
        let broken = i % 5 == 0;
        let mut b = demo("full", &version, 1 + i);
        if broken {
            // Never listens, or listens but is not healthy: either way it
            // must never see a request.
            b = b.file(
                "backend/BEHAVIOUR",
                if i % 10 == 0 { "unhealthy" } else { "exit" },
            );
        } else {
            allowed.lock().unwrap().insert(format!("backend {version}"));
        }
        stage(sb, &b);
        let run = switcher(sb, &[]);
        if broken {
            run.code_is(3);
        } else {
            run.success();
            // Only once the switch is over is the old version no longer
            // an acceptable answer.
            allowed.lock().unwrap().remove(&format!("backend {good}"));
            good = version;
        }
        assert_eq!(
            site.serves(),
            format!("200 backend {good}"),
            "{run}\n{}",
            site.web.error_log()
        );
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap()
}

#[test]
fn blue_green_switches_drop_no_request_and_restart_does() {
    let bg = switches_under_load(true);
    let restart = switches_under_load(false);
    eprintln!(
        "20 switches + 5 failed deploys under load: blue-green {} ok / {} failed / {} wrong version; restart {} ok / {} failed / {} wrong version",
        bg.ok, bg.failed, bg.wrong_version, restart.ok, restart.failed, restart.wrong_version
    );
    assert!(bg.ok > 0 && restart.ok > 0, "{bg:?} {restart:?}");
    assert_eq!(
        (bg.failed, bg.wrong_version),
        (0, 0),
        "blue-green must not fail a request: {bg:?}"
    );
    assert!(
        restart.failed > 0,
        "restart stops the backend: some requests fail ({restart:?})"
    );
}

#[test]
fn the_dry_run_describes_the_blue_green_steps_and_changes_nothing() {
    let site = Site::new(true);
    let sb = &site.sb;
    stage(sb, &demo("full", "1.0.0", 1));
    switcher(sb, &[]).success();
    stage(sb, &demo("full", "2.0.0", 2));
    let before = sb.listing();
    let dry = switcher(sb, &["--dry-run"]);
    dry.success()
        .stdout_has("on the idle green slot (CUTOVER_SLOT=green")
        .stdout_has(&format!("CUTOVER_PORT={})", site.ports[1]))
        .stdout_has("point nginx's upstream")
        .stdout_has(&format!("then stop the blue slot (port {})", site.ports[0]));
    assert!(
        !dry.stdout().contains("run the backend stop command"),
        "a blue-green dry run does not stop first:\n{dry}"
    );
    assert_eq!(sb.listing(), before, "the dry run changed the tree\n{dry}");
    assert_eq!(site.serves(), "200 backend 1.0.0");
}

#[test]
fn a_release_that_fails_on_the_idle_slot_interrupts_nothing() {
    let site = Site::new(true);
    let sb = &site.sb;
    stage(sb, &demo("full", "1.0.0", 1));
    switcher(sb, &[]).success();
    let state = sb.state_json("switcher.json");
    assert_eq!(state["components"]["backend"]["slot"], "blue", "{state:#}");
    let pid = fs::read_to_string(sb.path("state/backend-blue.pid")).unwrap();
    let bad = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "no-listen");
    stage(sb, &bad);
    let run = switcher(sb, &[]);
    run.code_is(3).stderr_has("nothing was interrupted");
    assert_eq!(site.serves(), "200 backend 1.0.0", "{run}");
    assert_eq!(
        fs::read_to_string(sb.path("state/backend-blue.pid")).unwrap(),
        pid,
        "the old release never stopped\n{run}"
    );
    assert_eq!(site.listening(), [true, false], "{run}");
    let state = sb.state_json("switcher.json");
    assert_eq!(state["components"]["backend"]["slot"], "blue", "{state:#}");
    assert_eq!(
        state["components"]["backend"]["idle"],
        bad.name().stem(),
        "{state:#}"
    );
    let status = switcher(sb, &["status"]);
    status
        .stdout_has("failed on the idle slot; nothing was interrupted")
        .stdout_has(&format!(
            "blue slot serves (port {}); green slot (port {}): {}, stopped",
            site.ports[0],
            site.ports[1],
            bad.name().stem()
        ));
    let json = sb.state_json("deploy-status.json");
    assert_eq!(
        json["components"]["backend"]["blue_green"]["slot"], "blue",
        "{json:#}"
    );
}

#[test]
fn a_route_that_never_comes_moves_traffic_back_without_restarting_the_old_release() {
    let site = Site::new(true);
    let sb = &site.sb;
    stage(sb, &demo("full", "1.0.0", 1));
    switcher(sb, &[]).success();
    let pid = fs::read_to_string(sb.path("state/backend-blue.pid")).unwrap();
    // A reload that does nothing: nginx keeps routing to blue, so the
    // check through nginx never sees green.
    sb.write_config_text(&config_text(sb, true, site.ports, "true"));
    let v2 = demo("full", "2.0.0", 2);
    stage(sb, &v2);
    let run = switcher(sb, &[]);
    run.code_is(3).stderr_has("moving traffic back");
    assert_eq!(site.serves(), "200 backend 1.0.0", "{run}");
    assert_eq!(
        fs::read_to_string(sb.path("state/backend-blue.pid")).unwrap(),
        pid,
        "the old release was still running: going back needs no start\n{run}"
    );
    assert_eq!(site.listening(), [true, false], "{run}");
    let state = sb.state_json("switcher.json");
    assert_eq!(
        state["failed"][v2.name().file_name()]["step"],
        "route",
        "{state:#}"
    );
    assert_eq!(state["components"]["backend"]["slot"], "blue", "{state:#}");
    assert_eq!(
        current(sb, "backend").as_deref(),
        Some(demo("full", "1.0.0", 1).name().stem())
    );
}

#[test]
fn switcher_rollback_moves_traffic_back() {
    let site = Site::new(true);
    let sb = &site.sb;
    stage(sb, &demo("full", "1.0.0", 1));
    switcher(sb, &[]).success();
    stage(sb, &demo("full", "2.0.0", 2));
    switcher(sb, &[]).success();
    assert_eq!(site.serves(), "200 backend 2.0.0");
    assert_eq!(site.listening(), [false, true]);
    let run = switcher(sb, &["rollback"]);
    run.success();
    assert_eq!(site.serves(), "200 backend 1.0.0", "{run}");
    assert_eq!(site.listening(), [true, false], "{run}");
    let state = sb.state_json("switcher.json");
    assert_eq!(state["components"]["backend"]["slot"], "blue", "{state:#}");
    assert_eq!(
        current(sb, "backend").as_deref(),
        Some(demo("full", "1.0.0", 1).name().stem())
    );
    let text = fs::read_to_string(sb.path("state/nginx/backend-upstream.conf")).unwrap();
    assert!(
        text.contains(&format!("127.0.0.1:{};", site.ports[0])),
        "{text}"
    );
}

/// (fault point, whether v2 is broken, the version nginx must route to
/// after the normal run that follows the kill).
const POINTS: &[(&str, bool, &str)] = &[
    ("bg-after-start", false, "2.0.0"),
    ("bg-after-upstream", false, "2.0.0"),
    ("bg-after-reload", false, "2.0.0"),
    ("bg-mid-drain", false, "2.0.0"),
    ("bg-after-drain", false, "2.0.0"),
    ("before-state-write", false, "2.0.0"),
    ("bg-after-start", true, "1.0.0"),
];

#[test]
fn killed_at_every_blue_green_step_then_one_normal_run_converges() {
    let mut table = vec![format!(
        "{:<20} {:<8} {:<10} {:<8} {:<8} {}",
        "stop point", "v2", "next exit", "routes", "slot", "listening (blue, green)"
    )];
    for &(point, broken, want) in POINTS {
        let site = Site::new(true);
        let sb = &site.sb;
        stage(sb, &demo("full", "1.0.0", 1));
        switcher(sb, &[]).success();
        let mut v2 = demo("full", "2.0.0", 2);
        if broken {
            v2 = v2.file("backend/BEHAVIOUR", "exit");
        }
        stage(sb, &v2);
        let killed = switcher_killed_at(sb, point);
        assert_eq!(killed.code(), -1, "should die at {point}\n{killed}");

        let run = switcher(sb, &[]);
        let code = run.code();
        assert_eq!(code, if broken { 3 } else { 0 }, "({point})\n{run}");
        assert_eq!(
            site.serves(),
            format!("200 backend {want}"),
            "({point})\n{run}\n{}",
            site.web.error_log()
        );
        let state = sb.state_json("switcher.json");
        let slot = state["components"]["backend"]["slot"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let i = usize::from(slot == "green");
        let listening = site.listening();
        let mut only = [false, false];
        only[i] = true;
        assert_eq!(
            listening, only,
            "exactly one live release, on the recorded slot ({point})\n{run}"
        );
        let text = fs::read_to_string(sb.path("state/nginx/backend-upstream.conf")).unwrap();
        assert!(
            text.contains(&format!("127.0.0.1:{};", site.ports[i])),
            "nginx routes to the recorded slot ({point}): {text}"
        );
        assert_eq!(
            state["components"]["backend"]["running"]["version"], want,
            "({point})"
        );
        assert!(!sb.path("state/journal.json").exists(), "({point})\n{run}");
        let cur = current(sb, "backend").unwrap_or_default();
        assert!(cur.contains(want), "current/backend -> {cur} ({point})");
        table.push(format!(
            "{:<20} {:<8} {:<10} {:<8} {:<8} {:?}",
            point,
            if broken { "broken" } else { "good" },
            code,
            want,
            slot,
            listening
        ));
    }
    println!("{}", table.join("\n"));
}
