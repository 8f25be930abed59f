//! Notifications through the built binary, to real receivers on loopback
//! written here: one that records every POST, one that answers 500 first,
//! one that accepts and never answers, and a command target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_tests::Sandbox;
use serde_json::Value;

use crate::common::*;

/// One POST a receiver took: its path and body.
#[derive(Clone, Debug)]
struct Post {
    path: String,
    body: Vec<u8>,
    status: u16,
}

/// An HTTP receiver on 127.0.0.1 that records every POST and answers 500
/// to the first `fail_first` of them, 200 after.
struct Receiver {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&posts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut posts = shared.lock().unwrap();
                let status = if posts.len() < fail_first { 500 } else { 200 };
                if let Some((path, body)) = read_request(&stream) {
                    posts.push(Post { path, body, status });
                }
                drop(posts);
                let mut s = stream;
                let reason = if status == 200 {
                    "OK"
                } else {
                    "Internal Server Error"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, posts }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The bodies it answered 200 to, as JSON.
    fn delivered(&self) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.status == 200)
            .map(|p| serde_json::from_slice(&p.body).unwrap())
            .collect()
    }

    fn all(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

/// Reads one HTTP request: its path and its body (Content-Length).
fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((path, body))
}

/// A receiver that accepts connections and never answers; returns its port.
fn hanging_receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A sandbox with `[notify]` and its targets (TOML text) after [switcher].
fn sandbox_notify(notify: &str) -> Sandbox {
    sandbox_with("", &format!("\n[notify]\n{notify}"))
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn outbox_files(sb: &Sandbox) -> Vec<String> {
    sb.names("state/outbox")
}

#[test]
fn each_event_arrives_once_in_order_with_the_documented_fields() {
    let rx = Receiver::start(0);
    let sb = sandbox_notify(&format!("[[notify.target]]\nurl = {:?}\n", rx.url("/hook")));
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();

    let v2 = demo("full", "2.0.0", 2).file("backend/BEHAVIOUR", "exit");
    stage(&sb, &v2);
    switcher(&sb, &[]).code_is(3);

    let v3 = demo("full", "3.0.0", 3);
    stage(&sb, &v3);
    switcher(&sb, &[]).success();

    let run = switcher(&sb, &["rollback"]);
    run.success();
    assert_serves(&sb, &run, "1.0.0");

    // DOWN: the backend dies (by its pid); a pass sees it.
    let pid = sb.backend_pid().expect("the demo backend's pid");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", sb.backend_port)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    switcher(&sb, &[]).success();
    // A second pass while it stays down says nothing new.
    switcher(&sb, &[]).success();

    // Recovered: started again by hand, with the config's start command.
    let (start, _) = sb.demo_backend_commands();
    let status = Command::new("sh").args(["-c", &start]).status().unwrap();
    assert!(status.success());
    assert_eq!(served_eventually(&sb, "backend 1.0.0"), "backend 1.0.0");
    let run = switcher(&sb, &[]);
    run.success();

    let events = rx.delivered();
    assert_eq!(
        kinds(&events),
        [
            "deployed",
            "failed",
            "rolled-back",
            "deployed",
            "rolled-back",
            "down",
            "recovered"
        ],
        "{events:#?}\n{run}\n{:#}\n{:#}",
        sb.state_json("notify.json"),
        sb.state_json("deploy-status.json")["components"]["backend"]
    );
    assert!(rx.all().iter().all(|p| p.path == "/hook"));
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ids are unique: {events:#?}");
    for e in &events {
        assert_eq!(e["schema"], 1, "{e:#}");
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e:#}");
        assert!(!e["host"].as_str().unwrap().is_empty(), "{e:#}");
        assert_eq!(e["id"].as_str().unwrap().len(), 36, "{e:#}");
    }
    let deployed = &events[0];
    assert_eq!(deployed["artifact"], v1.name().file_name());
    assert_eq!(deployed["version"], "1.0.0");
    assert_eq!(deployed["branch"], v1.name().branch());
    assert_eq!(
        deployed["components"],
        serde_json::json!(["backend", "frontend"])
    );
    let failed = &events[1];
    assert_eq!(failed["artifact"], v2.name().file_name());
    assert_eq!(failed["step"], "verify", "{failed:#}");
    assert_eq!(failed["component"], "backend", "{failed:#}");
    assert!(
        failed["reason"].as_str().unwrap().contains("listened"),
        "{failed:#}"
    );
    assert!(failed["tail"].is_array(), "{failed:#}");
    assert_eq!(events[2]["by"], "automatic");
    assert_eq!(events[3]["version"], "3.0.0");
    assert_eq!(events[4]["by"], "hand");
    assert_eq!(events[4]["artifact"], v3.name().file_name());
    assert_eq!(events[5]["components"], serde_json::json!(["backend"]));
    assert_eq!(events[5]["version"], "1.0.0");
    assert_eq!(events[6]["components"], serde_json::json!(["backend"]));
    assert!(outbox_files(&sb).is_empty(), "{}", sb.listing());
}

/// Runs the switcher as `user` behind sudo (SUDO_USER wins over USER).
fn switcher_as(sb: &Sandbox, user: &str, args: &[&str]) -> cutover_tests::Run {
    sb.run_cmd(
        Command::new(switcher_bin())
            .args(args)
            .env("SUDO_USER", user)
            .env("USER", "root"),
    )
}

#[test]
fn control_verbs_arrive_once_in_order_and_a_dry_run_sends_nothing() {
    let rx = Receiver::start(0);
    let sb = sandbox_notify(&format!("[[notify.target]]\nurl = {:?}\n", rx.url("/hook")));
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    assert_eq!(kinds(&rx.delivered()), ["deployed"]);

    // --dry-run writes nothing, so it emits nothing.
    switcher_as(&sb, "alice", &["--dry-run", "freeze", "--reason", "review"]).success();
    switcher_as(&sb, "alice", &["pin", "backend", "--dry-run"]).success();
    assert_eq!(kinds(&rx.delivered()), ["deployed"]);

    // Each verb sends its event in its own run.
    switcher_as(
        &sb,
        "alice",
        &["freeze", "--reason", "release review", "--until", "8h"],
    )
    .success();
    assert_eq!(kinds(&rx.delivered()), ["deployed", "frozen"]);
    switcher_as(&sb, "bob", &["unfreeze"]).success();
    switcher_as(&sb, "carol", &["pin", "backend", "--reason", "load test"]).success();
    switcher_as(&sb, "dave", &["unpin", "backend"]).success();
    // Refused (nothing pinned): no state write, no event.
    switcher_as(&sb, "dave", &["unpin", "backend"]).code_is(1);
    // A pass in between sends nothing again.
    switcher(&sb, &[]).success();

    let events = rx.delivered();
    assert_eq!(
        kinds(&events),
        ["deployed", "frozen", "unfrozen", "pinned", "unpinned"],
        "{events:#?}"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "once each: {events:#?}");

    let frozen = &events[1];
    assert_eq!(frozen["by"], "hand", "{frozen:#}");
    assert_eq!(frozen["who"], "alice", "{frozen:#}");
    assert_eq!(frozen["reason"], "release review", "{frozen:#}");
    assert_eq!(
        frozen["components"],
        serde_json::json!(["backend", "frontend"]),
        "{frozen:#}"
    );
    assert!(
        frozen["until"].as_str().is_some_and(|u| u.ends_with('Z')),
        "{frozen:#}"
    );
    let unfrozen = &events[2];
    assert_eq!(unfrozen["who"], "bob", "{unfrozen:#}");
    assert!(unfrozen["until"].is_null(), "{unfrozen:#}");
    let pinned = &events[3];
    assert_eq!(pinned["who"], "carol", "{pinned:#}");
    assert_eq!(pinned["reason"], "load test", "{pinned:#}");
    assert_eq!(pinned["components"], serde_json::json!(["backend"]));
    assert_eq!(pinned["artifact"], v1.name().file_name(), "{pinned:#}");
    assert_eq!(pinned["version"], "1.0.0", "{pinned:#}");
    assert!(pinned["until"].is_null(), "{pinned:#}");
    let unpinned = &events[4];
    assert_eq!(unpinned["who"], "dave", "{unpinned:#}");
    assert_eq!(unpinned["components"], serde_json::json!(["backend"]));

    // `switcher deploy` pins what it deployed: `deployed`, then `pinned`,
    // both by hand, sent by its own run.
    let v2 = demo("full", "2.0.0", 2);
    stage(&sb, &v2);
    switcher_as(&sb, "erin", &["deploy", v2.name().file_name()]).success();
    let events = rx.delivered();
    assert_eq!(kinds(&events[5..]), ["deployed", "pinned"], "{events:#?}");
    for e in &events[5..] {
        assert_eq!(e["by"], "hand", "{e:#}");
        assert_eq!(e["who"], "erin", "{e:#}");
        assert_eq!(e["artifact"], v2.name().file_name(), "{e:#}");
    }
    assert!(outbox_files(&sb).is_empty(), "{:?}", outbox_files(&sb));
}

#[test]
fn a_failed_prepare_sends_its_step_exit_code_and_output_lines() {
    let rx = Receiver::start(0);
    let sb = sandbox_with(
        "prepare = \"echo boom-line; exit 7\"",
        &format!(
            "\n[notify]\n[[notify.target]]\nurl = {:?}\n",
            rx.url("/hook")
        ),
    );
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).code_is(3);
    let events = rx.delivered();
    assert_eq!(
        kinds(&events),
        ["failed"],
        "nothing ran, nothing to go back to"
    );
    let e = &events[0];
    assert_eq!(e["step"], "prepare", "{e:#}");
    assert_eq!(e["component"], "backend", "{e:#}");
    assert_eq!(e["exit_code"], 7, "{e:#}");
    assert_eq!(e["tail"], serde_json::json!(["boom-line"]), "{e:#}");
}

#[test]
fn a_hanging_receiver_delays_a_pass_by_no_more_than_its_time_limit() {
    let rx = Receiver::start(0);
    let hang = hanging_receiver();
    let limit = Duration::from_secs(2);
    let sb = sandbox_notify(&format!(
        "[[notify.target]]\nurl = \"http://127.0.0.1:{hang}/hook\"\ntimeout = \"{}s\"\n\
         [[notify.target]]\nurl = {:?}\n",
        limit.as_secs(),
        rx.url("/ok")
    ));
    stage(&sb, &demo("full", "1.0.0", 1));
    let t = Instant::now();
    let run = switcher(&sb, &[]);
    let wall = t.elapsed();
    run.success();
    assert_serves(&sb, &run, "1.0.0");
    // The pass's own work is in the state; what it waited beyond that is
    // the notifications' (and the page's, a local matter).
    let pass_ms = sb.state_json("switcher.json")["last_pass_ms"]
        .as_u64()
        .unwrap();
    let waited = wall.saturating_sub(Duration::from_millis(pass_ms));
    assert!(
        waited <= limit + Duration::from_secs(4),
        "waited {waited:?} after the pass for a {limit:?} limit\n{run}"
    );
    assert!(
        waited >= limit,
        "the hanging target was tried: {waited:?}\n{run}"
    );
    // The other target was not held up, and the hanging one keeps its event.
    assert_eq!(kinds(&rx.delivered()), ["deployed"]);
    assert_eq!(outbox_files(&sb).len(), 1, "{}", sb.listing());
    run.stderr_has("127.0.0.1");
}

#[test]
fn a_failing_receiver_gets_its_events_on_a_later_pass_in_order() {
    let rx = Receiver::start(1);
    let sb = sandbox_notify(&format!(
        "retry_after = \"0s\"\n[[notify.target]]\nurl = {:?}\n",
        rx.url("/hook")
    ));
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    let run = switcher(&sb, &[]);
    run.success().stderr_has("HTTP 500");
    assert!(rx.delivered().is_empty());
    let state: Value = sb.state_json("notify.json");
    assert_eq!(state["targets"].as_object().unwrap().len(), 1, "{state:#}");

    stage(&sb, &demo("full", "2.0.0", 2));
    switcher(&sb, &[]).success();
    let events = rx.delivered();
    assert_eq!(kinds(&events), ["deployed", "deployed"]);
    assert_eq!(events[0]["version"], "1.0.0");
    assert_eq!(events[1]["version"], "2.0.0");
    // The retry is the same event: a receiver can drop duplicates by id.
    let first: Value = serde_json::from_slice(&rx.all()[0].body).unwrap();
    assert_eq!(first["id"], events[0]["id"]);
    assert!(outbox_files(&sb).is_empty(), "{}", sb.listing());
}

#[test]
fn a_receiver_that_fails_waits_for_its_backoff() {
    let rx = Receiver::start(1);
    let sb = sandbox_notify(&format!(
        "retry_after = \"1h\"\n[[notify.target]]\nurl = {:?}\n",
        rx.url("/hook")
    ));
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    switcher(&sb, &[]).success();
    assert_eq!(rx.all().len(), 1, "not tried again before its time");
    let entry = sb.names("state/outbox");
    assert_eq!(entry.len(), 1);
    let text = std::fs::read_to_string(sb.root.join("state/outbox").join(&entry[0])).unwrap();
    assert!(text.contains("next_attempt_at"), "{text}");
}

#[test]
fn an_event_never_taken_is_dropped_after_the_bound_and_counted_on_the_page() {
    let rx = Receiver::start(usize::MAX);
    let sb = sandbox_notify(&format!(
        "retry_after = \"0s\"\ngive_up_after = \"1s\"\n[[notify.target]]\nurl = {:?}\n",
        rx.url("/hook")
    ));
    stage(&sb, &demo("full", "1.0.0", 1));
    switcher(&sb, &[]).success();
    assert_eq!(outbox_files(&sb).len(), 1);
    // Past the bound (a duration, not a date), the next failed try drops it.
    std::thread::sleep(Duration::from_millis(1100));
    let run = switcher(&sb, &[]);
    run.success().stderr_has("gave up sending deployed event");
    assert!(outbox_files(&sb).is_empty(), "{}", sb.listing());
    assert_eq!(rx.all().len(), 2);
    assert_eq!(sb.state_json("notify.json")["dropped_total"], 1);
    let status = switcher(&sb, &["status", "--json"]);
    let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
    let rules: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["rule"].as_str())
        .collect();
    assert!(rules.contains(&"notify-dropped"), "{doc:#}");
}

#[test]
fn killed_between_the_state_and_the_send_the_next_pass_sends() {
    let rx = Receiver::start(0);
    let sb = sandbox_notify(&format!("[[notify.target]]\nurl = {:?}\n", rx.url("/hook")));
    stage(&sb, &demo("full", "1.0.0", 1));
    let killed = switcher_killed_at(&sb, "before-notify-send");
    assert_eq!(killed.code(), -1, "{killed}");
    assert_eq!(
        sb.state_json("switcher.json")["components"]["backend"]["running"]["version"],
        "1.0.0"
    );
    assert!(rx.all().is_empty());
    assert_eq!(outbox_files(&sb).len(), 1, "{}", sb.listing());

    switcher(&sb, &[]).success();
    assert_eq!(kinds(&rx.delivered()), ["deployed"]);
    assert!(outbox_files(&sb).is_empty(), "{}", sb.listing());
}

#[test]
fn a_command_target_gets_the_json_on_stdin_and_the_environment() {
    let sb = sandbox();
    let out = sb.dir().join("cmd-out");
    std::fs::create_dir_all(&out).unwrap();
    let cmd = format!("cat > {o}/event.json; env > {o}/env.txt", o = out.display());
    let sb = {
        let text = std::fs::read_to_string(&sb.config).unwrap();
        sb.write_config_text(&format!(
            "{text}\n[notify]\n[[notify.target]]\ncommand = {cmd:?}\nevents = [\"deployed\"]\n"
        ));
        sb
    };
    let v1 = demo("full", "1.0.0", 1);
    stage(&sb, &v1);
    switcher(&sb, &[]).success();
    let event: Value =
        serde_json::from_slice(&std::fs::read(out.join("event.json")).unwrap()).unwrap();
    assert_eq!(event["kind"], "deployed");
    assert_eq!(event["artifact"], v1.name().file_name());
    let env = std::fs::read_to_string(out.join("env.txt")).unwrap();
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing:\n{env}"))
            .to_string()
    };
    assert_eq!(var("CUTOVER_EVENT_KIND"), "deployed");
    assert_eq!(var("CUTOVER_EVENT_ID"), event["id"].as_str().unwrap());
    assert_eq!(var("CUTOVER_EVENT_VERSION"), "1.0.0");
    assert_eq!(var("CUTOVER_EVENT_COMPONENTS"), "backend,frontend");
    assert_eq!(var("LANG"), "C.UTF-8");
    assert!(
        !env.contains("CUTOVER_CONFIG"),
        "a clean environment: {env}"
    );
}

#[test]
fn slack_gets_text_and_no_secret_reaches_logs_state_or_page() {
    let rx = Receiver::start(1);
    let secret_path = "/services/T0SECRET/B0SECRET/XXSECRETXX";
    let url = format!(
        "http://hookuser:PWSECRET@127.0.0.1:{}{secret_path}?token=QSECRET",
        rx.port
    );
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sb = sandbox_notify(&format!(
        "retry_after = \"0s\"\n[[notify.target]]\nurl = {url:?}\nformat = \"slack\"\n\
         [[notify.target]]\nurl = \"http://127.0.0.1:{closed}/x/CLOSEDSECRET?k=KSECRET\"\n"
    ));
    stage(&sb, &demo("full", "1.0.0", 1));
    let mut stderr = String::new();
    for _ in 0..2 {
        let run = switcher(&sb, &["-v"]);
        run.success();
        stderr.push_str(&run.stderr());
    }
    let status = switcher(&sb, &["status", "--json"]);
    stderr.push_str(&status.stdout());
    stderr.push_str(&status.stderr());

    let posts = rx.all();
    assert_eq!(posts.len(), 2, "a 500, then the retry");
    assert!(posts.iter().all(|p| p.path.starts_with(secret_path)));
    let body: Value = serde_json::from_slice(&posts[1].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("deployed"), "{text}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body:#}");

    assert!(stderr.contains("127.0.0.1"), "targets are named: {stderr}");
    let mut files = String::new();
    for entry in walk(&sb.root.join("state")) {
        files.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
    }
    for secret in ["SECRET", "PWSECRET", "hookuser"] {
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
        assert!(
            !files.contains(secret),
            "{secret} in state/:\n{}",
            sb.listing()
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}
