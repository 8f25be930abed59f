//! The status page end to end: real collector and switcher runs, a real
//! demo backend started through the configured commands, Debian's nginx
//! serving deploy/nginx/cutover.conf.in rendered for the sandbox, and
//! headless Chromium loading /deploy-status.
//!
//! v1 (`full`), then v2 (`frontend`, from a branch that holds markup), then
//! v3 (`full`, whose backend exits at once, from a branch that holds a
//! script), then the backend stopped by hand: at each step / and /api/
//! answer from the right release, /deploy-status.json says the right Last,
//! Running, Status, Sync and failure, and the page names the case.

use std::path::Path;

use cutover_tests::nginx::{self, Nginx, Response};
use cutover_tests::{bins, chromium, ArchiveBuilder, Run, Sandbox};
use serde_json::Value;

/// A branch whose name is markup with an event handler.
const SVG_BRANCH: &str = "x/<svg/onload=alert(1)>";
/// A branch whose name would retitle the page if it ever ran as script.
const SCRIPT_BRANCH: &str = "x/<script>document.title=\"pwned\"</script>";

/// The sandbox's config: the demo backend through start-stop-daemon, with
/// a health URL; the frontend is nginx's port (nginx follows the flipped
/// current/frontend link by itself, so it needs no command).
fn configure(sb: &Sandbox) {
    let (start, stop) = sb.demo_backend_commands();
    let text = format!(
        "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
         [components.backend]\nport = {bp}\nhealth_url = \"http://127.0.0.1:{bp}/api/health\"\n\
         start = {start:?}\nstop = {stop:?}\n\n[components.frontend]\nport = {fp}\n\n\
         [switcher]\nverify_timeout = \"5s\"\ncommand_timeout = \"30s\"\n\n\
         [status]\nout_of_sync_after = \"10m\"\nperiod = \"60s\"\n",
        root = sb.root.display().to_string(),
        bp = sb.backend_port,
        fp = sb.frontend_port,
    );
    sb.write_config_text(&text);
}

/// One collector pass then one switcher pass, as cron runs them; the
/// switcher's exit code is returned with its run.
fn cron(sb: &Sandbox) -> Run {
    sb.run("collector", &[]).success();
    sb.run("switcher", &[])
}

/// GET through nginx, asserting the status code; the whole story otherwise.
#[track_caller]
fn get(web: &Nginx, path: &str, status: u16) -> Response {
    let r = web.get(path);
    assert_eq!(
        r.status,
        status,
        "GET {path}\n{r}\n--- nginx error log\n{}",
        web.error_log()
    );
    r
}

/// /deploy-status.json, parsed.
#[track_caller]
fn status_json(web: &Nginx) -> Value {
    let r = get(web, "/deploy-status.json", 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{r}"
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}\n{r}"))
}

/// Asserts one component's Last, Running, Status and Sync.
#[track_caller]
fn expect(doc: &Value, component: &str, last: &str, running: &str, status: &str, sync: &str) {
    let c = &doc["components"][component];
    let pretty = serde_json::to_string_pretty(doc).unwrap_or_default();
    assert_eq!(c["last"]["version"], last, "{component} Last\n{pretty}");
    assert_eq!(
        c["running"]["version"], running,
        "{component} Running\n{pretty}"
    );
    assert_eq!(c["status"], status, "{component} Status\n{pretty}");
    assert_eq!(c["sync"]["state"], sync, "{component} Sync\n{pretty}");
}

/// Loads the page in Chromium: the rendered DOM, and a phone-sized
/// screenshot kept in target/test-output/.
fn browse(web: &Nginx, step: &str) -> String {
    let url = web.url("/deploy-status");
    let dom = chromium::dump_dom(&url);
    let shot = chromium::output_dir().join(format!("status-{step}.png"));
    chromium::screenshot(&url, &shot, 412, 2000);
    eprintln!("status page screenshot ({step}, phone): {}", shot.display());
    let wide = chromium::output_dir().join(format!("status-{step}-desktop.png"));
    chromium::screenshot(&url, &wide, 1280, 1400);
    eprintln!(
        "status page screenshot ({step}, desktop): {}",
        wide.display()
    );
    // The page's own script ran (its CSP hash is right) ...
    assert!(
        dom.contains("class=\"local\""),
        "the page's script did not run\n{dom}"
    );
    // ... and nothing else did: the title is the one the page was written with.
    let title = dom
        .split_once("<title>")
        .and_then(|(_, r)| r.split_once("</title>"))
        .map(|(t, _)| t);
    assert!(
        title.is_some_and(|t| t.starts_with("Deploy status: ")),
        "title {title:?}\n{dom}"
    );
    // The only SVG is the page's own timeline: none came from a branch.
    assert_eq!(
        dom.matches("<svg").count(),
        dom.matches("<svg class=\"tl").count(),
        "{dom}"
    );
    assert!(!dom.contains("pwned</title>"), "{dom}");
    // Just written: the page does not call itself stale.
    assert!(!dom.contains("id=\"stale\""), "{dom}");
    // Every time on it (builds included) is in the past of the clock that
    // wrote it: the tests build no instant of their own that is fixed.
    assert!(!dom.contains("in the future"), "{dom}");
    dom
}

#[test]
fn status_page_follows_deploys_failures_and_crashes_through_nginx() {
    // Fail now, with the install command, if a part is missing.
    nginx::binary();
    chromium::binary();
    // Build the binaries before the clock-sensitive steps.
    bins::bin("switcher");

    let sb = Sandbox::new();
    configure(&sb);
    let site = nginx::render_site(
        &sb.root,
        &format!("127.0.0.1:{}", sb.frontend_port),
        &format!("127.0.0.1:{}", sb.backend_port),
    );
    let web = Nginx::start(&site, sb.frontend_port);
    let drop = sb.drop_dir();

    // v1, full: both components switch to it.
    ArchiveBuilder::demo("full", "1").minute(1).drop_into(&drop);
    cron(&sb).success();
    let index = get(&web, "/", 200);
    assert!(index.body.contains("frontend 1"), "{index}");
    assert!(
        index
            .header("cache-control")
            .is_some_and(|v| v.contains("no-store")),
        "index.html must never be cached\n{index}"
    );
    let route = get(&web, "/some/app/route", 200);
    assert!(route.body.contains("frontend 1"), "SPA fallback\n{route}");
    assert!(get(&web, "/api/version", 200).body.contains("backend 1"));
    let doc = status_json(&web);
    expect(&doc, "backend", "1", "1", "UP", "in-sync");
    expect(&doc, "frontend", "1", "1", "UP", "in-sync");
    assert_eq!(doc["components"]["backend"]["health"], "healthy");
    let page = get(&web, "/deploy-status", 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{page}"
    );
    assert!(
        page.header("cache-control")
            .is_some_and(|v| v.contains("no-store")),
        "{page}"
    );
    assert!(page.body.contains("in sync"), "{}", page.body);
    browse(&web, "1-in-sync");

    // v2, frontend only, from a branch that is markup: the frontend
    // switches, the backend process is not touched, the branch is text.
    let backend_pid = sb.backend_pid();
    ArchiveBuilder::demo("frontend", "2")
        .minute(2)
        .branch(SVG_BRANCH)
        .drop_into(&drop);
    cron(&sb).success();
    assert!(get(&web, "/", 200).body.contains("frontend 2"));
    assert!(get(&web, "/api/version", 200).body.contains("backend 1"));
    assert_eq!(sb.backend_pid(), backend_pid, "the backend was restarted");
    let doc = status_json(&web);
    expect(&doc, "backend", "1", "1", "UP", "in-sync");
    expect(&doc, "frontend", "2", "2", "UP", "in-sync");
    assert_eq!(doc["components"]["frontend"]["last"]["branch"], SVG_BRANCH);
    let page = get(&web, "/deploy-status", 200).body;
    assert!(page.contains("x/&lt;svg/onload=alert(1)&gt;"), "{page}");
    let dom = browse(&web, "2-frontend-from-markup-branch");
    assert!(dom.contains("x/&lt;svg/onload=alert(1)&gt;"), "{dom}");

    // v3, full, whose backend exits at once: the switcher rolls back and
    // says why; the page names the failure.
    ArchiveBuilder::demo("full", "3")
        .minute(3)
        .branch(SCRIPT_BRANCH)
        .file("backend/BEHAVIOUR", "exit")
        .drop_into(&drop);
    let run = cron(&sb);
    run.code_is(3);
    assert!(get(&web, "/", 200).body.contains("frontend 2"), "{run}");
    assert!(get(&web, "/api/version", 200).body.contains("backend 1"));
    let doc = status_json(&web);
    expect(&doc, "backend", "3", "1", "UP", "failed");
    expect(&doc, "frontend", "3", "2", "UP", "failed");
    let failure = &doc["components"]["backend"]["last_failure"];
    assert_eq!(
        failure["artifact"], doc["components"]["backend"]["last"]["artifact"],
        "{doc:#}"
    );
    assert!(
        failure["step"].as_str().is_some_and(|s| !s.is_empty()),
        "{doc:#}"
    );
    let rules: Vec<&str> = doc["components"]["backend"]["problems"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["rule"].as_str()).collect())
        .unwrap_or_default();
    assert!(rules.contains(&"deploy-failed"), "{doc:#}");
    let page = get(&web, "/deploy-status", 200).body;
    assert!(
        page.contains("did not start: the backend failed at step"),
        "{page}"
    );
    assert!(!page.contains("<script>document"), "{page}");
    let dom = browse(&web, "3-failed-from-script-branch");
    assert!(
        dom.contains("x/&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;"),
        "{dom}"
    );

    // `switcher status` tells the same, as a table and as the JSON.
    let table = sb.run("switcher", &["status"]);
    table
        .success()
        .stdout_has("COMPONENT")
        .stdout_has("did not start: the backend failed at step")
        .stdout_has(SCRIPT_BRANCH);
    let live = sb.run("switcher", &["status", "--json"]);
    live.success();
    let live: Value =
        serde_json::from_str(&live.stdout()).unwrap_or_else(|e| panic!("{e}\n{live}"));
    expect(&live, "backend", "3", "1", "UP", "failed");
    expect(&live, "frontend", "3", "2", "UP", "failed");

    // The backend stopped by hand: DOWN, and the page says it crashed.
    let (_, stop) = sb.demo_backend_commands();
    let stopped = sb.run_cmd(std::process::Command::new("sh").args(["-c", &stop]));
    stopped.success();
    sb.run("switcher", &[]);
    assert_eq!(get(&web, "/api/version", 502).status, 502);
    let doc = status_json(&web);
    expect(&doc, "backend", "3", "1", "DOWN", "failed");
    expect(&doc, "frontend", "3", "2", "UP", "failed");
    assert!(get(&web, "/", 200).body.contains("frontend 2"));
    // The metrics say the same, for alerting.
    let prom = std::fs::read_to_string(sb.path("state/cutover.prom")).unwrap();
    for line in [
        "cutover_up{component=\"backend\"} 0",
        "cutover_up{component=\"frontend\"} 1",
        "cutover_healthy{component=\"backend\"} 0",
        "cutover_deploy_failures_total 1",
    ] {
        assert!(prom.lines().any(|l| l == line), "no {line:?} in\n{prom}");
    }
    let page = get(&web, "/deploy-status", 200).body;
    assert!(
        page.contains(&format!(
            "the backend is not listening on port {}: it has crashed",
            sb.backend_port
        )),
        "{page}"
    );
    browse(&web, "4-backend-down");
}

#[test]
fn nginx_site_example_is_the_template_and_passes_nginx_t() {
    let root = bins::workspace_root();
    let template = nginx::site_template();
    let example = std::fs::read_to_string(root.join("deploy/nginx/cutover.conf")).unwrap();
    let rendered = nginx::render_site(Path::new("/srv/cutover"), "80", "127.0.0.1:8080");
    let code = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        code(&example),
        code(&rendered),
        "deploy/nginx/cutover.conf is not cutover.conf.in rendered for the defaults"
    );
    assert!(!template.lines().all(|l| !l.contains("@ROOT@")));

    // Under Debian's own nginx.conf, as a site in sites-enabled would be.
    let debian = std::fs::read_to_string("/etc/nginx/nginx.conf").unwrap_or_else(|e| {
        nginx::binary();
        panic!("read /etc/nginx/nginx.conf (Debian's nginx package): {e}")
    });
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("cutover");
    std::fs::write(&site, &example).unwrap();
    let main = debian
        .replace("/etc/nginx/sites-enabled/*", &site.display().to_string())
        .replace("include /etc/nginx/conf.d/*.conf;", "");
    assert_ne!(
        main, debian,
        "Debian's nginx.conf has no sites-enabled include"
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let out = nginx::check(&conf, None, "");
    assert!(
        out.status.success(),
        "nginx -t failed with deploy/nginx/cutover.conf:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_names_a_stale_last_a_silent_collector_and_a_quarantined_upload() {
    let sb = Sandbox::new();
    let (start, stop) = sb.demo_backend_commands();
    // Short limits, so that "for long" and "two periods" pass in seconds.
    let text = format!(
        "root = {root:?}\n\n[kinds]\nfull = [\"backend\", \"frontend\"]\nfrontend = [\"frontend\"]\n\n\
         [components.backend]\nport = {bp}\nstart = {start:?}\nstop = {stop:?}\n\n\
         [components.frontend]\nport = {fp}\n\n\
         [switcher]\nbranches = [\"master\"]\nverify_timeout = \"5s\"\n\n\
         [status]\nout_of_sync_after = \"1s\"\nperiod = \"1s\"\n",
        root = sb.root.display().to_string(),
        bp = sb.backend_port,
        fp = sb.frontend_port,
    );
    sb.write_config_text(&text);
    let drop = sb.drop_dir();
    let json = |name: &str| sb.state_json(name);
    let page = || std::fs::read_to_string(sb.path("state/deploy-status.html")).unwrap();

    ArchiveBuilder::demo("full", "1").minute(1).drop_into(&drop);
    cron(&sb).success();
    let doc = json("deploy-status.json");
    expect(&doc, "backend", "1", "1", "UP", "in-sync");

    // v2 from a branch the switcher does not deploy, and an upload whose
    // marker does not match it.
    ArchiveBuilder::demo("frontend", "2")
        .minute(2)
        .branch("feature/x")
        .drop_into(&drop);
    let bad = ArchiveBuilder::demo("full", "9").minute(9);
    let bad_name = bad.name().file_name().to_string();
    std::fs::write(drop.join(&bad_name), bad.bytes()).unwrap();
    std::fs::write(
        drop.join(bad.name().marker_name()),
        cutover_tests::archive::marker(&bad_name, b"other bytes"),
    )
    .unwrap();
    cron(&sb).success();
    // Neither cron job runs for more than two periods; then the switcher
    // alone runs (and writes the page).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let run = sb.run("switcher", &[]);
    run.success();

    let doc = json("deploy-status.json");
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    // No web server in this test: the frontend's port is closed.
    expect(&doc, "frontend", "2", "1", "DOWN", "out-of-sync");
    let frontend_problems = doc["components"]["frontend"]["problems"].to_string();
    assert!(
        frontend_problems.contains("\"out-of-sync\"")
            && frontend_problems.contains("has not started for")
            && frontend_problems.contains("is not in switcher.branches (master)"),
        "{pretty}"
    );
    let problems = doc["problems"].to_string();
    assert!(
        problems.contains("collector-not-running")
            && problems.contains("the artifact receiver (collector) has not run since"),
        "{pretty}"
    );
    let quarantined = doc["quarantined"].as_array().cloned().unwrap_or_default();
    // One entry: the marker that came with it is part of it.
    assert_eq!(quarantined.len(), 1, "{pretty}");
    assert!(
        quarantined.iter().any(
            |q| q["name"].as_str().is_some_and(|n| n.starts_with(&bad_name))
                && q["reason"].as_str().is_some_and(|r| !r.is_empty())
        ),
        "{pretty}\n{run}"
    );
    assert!(problems.contains("\"quarantined\""), "{pretty}");
    let html = page();
    assert!(
        html.contains("has not started for")
            && html.contains("the artifact receiver (collector) has not run since")
            && html.contains("Quarantined files"),
        "{html}"
    );
}
