//! The status page at a glance (issue 15), through the real binaries and
//! headless Chromium: a hand `switcher rollback` said as an operator's
//! action with who and when, a `full` artifact whose backend fails listed
//! once under the backend, the summary table first, local time only where
//! the viewer's zone differs from UTC, and the timeline (inline SVG) with
//! its lanes and markers, fitting a 390 px phone and a 1280 px desktop.
//!
//! No web server here: the frontend's port is closed, so the frontend is
//! DOWN throughout (its lane is shaded), and the backend is stopped by
//! hand at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_tests::{bins, chromium, ArchiveBuilder, Sandbox};
use serde_json::Value;

use crate::hostile::{cron, demo_sandbox};

/// A branch that is markup.
const SVG_BRANCH: &str = "x/<svg/onload=alert(1)>";

/// Headless Chromium's DOM of `url` after load, in the zone `tz`, in a
/// `width`×900 window.
fn dom_in(url: &str, tz: &str, width: u32) -> String {
    chromium::dump_dom_at(url, width, Some(tz))
}

/// A wrapper page showing the status page unchanged (its CSP included) in
/// an iframe `width` px wide, which measures it once loaded: the iframe's
/// viewport (`data-width`), how much wider the document is
/// (`data-overflow`), the timeline's rendered width (`data-svg`), and
/// its lanes and markers as Chromium laid them out.
fn measuring_wrapper(html: &str, width: u32, dir: &Path) -> PathBuf {
    let srcdoc = html
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let wrapper = format!(
        "<!doctype html><html><body style=\"margin:0\">\
         <iframe id=\"f\" width=\"{width}\" height=\"1800\" style=\"border:0\" srcdoc=\"{srcdoc}\"></iframe>\
         <script>var f=document.getElementById('f');f.onload=function(){{\
         var d=f.contentDocument,e=d.documentElement,b=document.body,s=d.querySelector('svg.tl');\
         b.setAttribute('data-width',String(e.clientWidth));\
         b.setAttribute('data-overflow',String(e.scrollWidth-e.clientWidth));\
         b.setAttribute('data-svg',s?String(Math.round(s.getBoundingClientRect().width)):'none');\
         b.setAttribute('data-svg-right',s?String(Math.round(s.getBoundingClientRect().right)):'none');\
         b.setAttribute('data-lanes',String(d.querySelectorAll('svg.tl .tl-lane').length));\
         b.setAttribute('data-marks',String(d.querySelectorAll('svg.tl .tl-mark').length));}};</script>\
         </body></html>"
    );
    let path = dir.join(format!("measure-{width}.html"));
    fs::write(&path, wrapper).unwrap();
    path
}

/// The value of `data-<name>="..."` in a DOM dump.
fn attr(dom: &str, name: &str) -> Option<i64> {
    let key = format!("data-{name}=\"");
    let rest = &dom[dom.find(&key)? + key.len()..];
    rest[..rest.find('"')?].parse().ok()
}

fn status(sb: &Sandbox) -> Value {
    sb.state_json("deploy-status.json")
}

#[track_caller]
fn sync_of(doc: &Value, c: &str) -> String {
    doc["components"][c]["sync"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn rollback_failure_summary_and_timeline_at_a_glance_in_chromium() {
    chromium::binary();
    bins::bin("switcher");
    let sb = demo_sandbox("", "");
    let page = || fs::read_to_string(sb.path("state/deploy-status.html")).unwrap();

    // v1 then v2, full: both run.
    ArchiveBuilder::demo("full", "1")
        .minute(1)
        .drop_into(&sb.drop_dir());
    cron(&sb).success();
    // History is to the second: let v1 run for one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ArchiveBuilder::demo("full", "2")
        .minute(2)
        .drop_into(&sb.drop_dir());
    cron(&sb).success();
    assert_eq!(
        status(&sb)["components"]["backend"]["running"]["version"],
        "2"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // 1. A rollback by hand, by alice through sudo: neutral, with who.
    let mut rollback = Command::new(bins::bin("switcher"));
    rollback
        .arg("rollback")
        .env("SUDO_USER", "alice")
        .env("USER", "cutover");
    sb.run_cmd(&mut rollback).success();
    let doc = status(&sb);
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    for c in ["backend", "frontend"] {
        assert_eq!(sync_of(&doc, c), "rolled-back", "{pretty}");
        assert_eq!(doc["components"][c]["running"]["version"], "1", "{pretty}");
        assert_eq!(
            doc["components"][c]["rolled_back"]["by"], "alice",
            "{pretty}"
        );
        let rules = doc["components"][c]["problems"].to_string();
        assert!(!rules.contains("deploy-failed"), "{pretty}");
    }
    assert_eq!(doc["switcher"]["failures_total"], 0, "{pretty}");
    let html = page();
    assert!(
        html.contains("<strong>alice</strong> rolled the backend and the frontend back by hand"),
        "{html}"
    );
    assert!(
        !html.contains("has not started") && !html.contains("did not start"),
        "{html}"
    );

    // 2. v3, full, from a markup branch, whose backend exits at once: the
    // failure is the backend's, listed once; the frontend went back with it.
    ArchiveBuilder::demo("full", "3")
        .minute(3)
        .branch(SVG_BRANCH)
        .file("backend/BEHAVIOUR", "exit")
        .drop_into(&sb.drop_dir());
    cron(&sb).code_is(3);
    let doc = status(&sb);
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    assert_eq!(sync_of(&doc, "backend"), "failed", "{pretty}");
    assert_eq!(sync_of(&doc, "frontend"), "failed", "{pretty}");
    let failed: Vec<String> = ["backend", "frontend"]
        .iter()
        .flat_map(|c| {
            doc["components"][*c]["problems"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p["rule"] == "deploy-failed")
                .map(move |p| format!("{c}: {}", p["message"].as_str().unwrap_or("")))
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("backend: the new version 3 (")
            && failed[0].contains("did not start: the backend failed at step")
            && failed[0].contains("the frontend went back with it"),
        "{failed:?}"
    );
    assert_eq!(
        doc["components"]["backend"]["failures"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{pretty}"
    );
    assert_eq!(
        doc["components"]["frontend"]["failures"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "{pretty}"
    );
    let html = page();
    assert_eq!(html.matches("data-failure=").count(), 1, "{html}");
    assert!(!html.contains("the new frontend version"), "{html}");

    // The backend stopped by hand: DOWN over two passes, since the first.
    let (_, stop) = sb.demo_backend_commands();
    sb.run_cmd(Command::new("sh").args(["-c", &stop])).success();
    sb.run("switcher", &[]).success();
    let first = status(&sb)["components"]["backend"]["down_since"].clone();
    assert!(first.is_string(), "{first}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.run("switcher", &[]).success();
    let doc = status(&sb);
    assert_eq!(doc["components"]["backend"]["status"], "DOWN");
    assert_eq!(doc["components"]["backend"]["down_since"], first);
    let lanes = &doc["timeline"]["lanes"];
    let kinds = |c: &str| -> Vec<String> {
        lanes[c]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        kinds("backend"),
        ["deploy", "deploy", "rollback", "failed"],
        "{lanes:#}"
    );
    assert_eq!(
        kinds("frontend"),
        ["deploy", "deploy", "rollback", "went-back"],
        "{lanes:#}"
    );
    let versions: Vec<&str> = lanes["backend"]["runs"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["version"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(versions, ["1", "2", "1"], "{lanes:#}");
    assert_eq!(lanes["backend"]["events"][2]["by"], "alice");

    // The page in Chromium.
    let html = page();
    let path = sb.path("state/deploy-status.html");
    let url = format!("file://{}", path.display());
    let kept = chromium::output_dir().join("status-glance.html");
    fs::write(&kept, &html).unwrap();
    eprintln!("status page at a glance (HTML): {}", kept.display());
    let dom = dom_in(&url, "Asia/Kolkata", 1280);
    let title = dom
        .split_once("<title>")
        .and_then(|(_, r)| r.split_once("</title>"))
        .map(|(t, _)| t.to_string())
        .unwrap_or_default();
    assert!(title.starts_with("Deploy status: "), "{title}\n{dom}");
    // Only the timeline's own SVG: none from the branch.
    assert_eq!(
        dom.matches("<svg").count(),
        dom.matches("<svg class=\"tl").count(),
        "{dom}"
    );
    assert!(dom.contains("x/&lt;svg/onload=alert(1)&gt;"), "{dom}");
    for needle in [
        "<table class=\"summary\" id=\"summary\">",
        "<svg class=\"tl\" id=\"timeline-svg\"",
        "class=\"tl-lane\" data-component=\"backend\"",
        "class=\"tl-lane\" data-component=\"frontend\"",
        "class=\"tl-mark tl-deploy\"",
        "class=\"tl-mark tl-rollback\"",
        "class=\"tl-mark tl-failed\"",
        "class=\"tl-mark tl-wentback\"",
        "class=\"tl-down\"",
        "class=\"tl-run tl-run0\"",
    ] {
        assert!(dom.contains(needle), "the DOM lacks {needle:?}\n{dom}");
    }
    // The summary table is above the details.
    assert!(dom.find("id=\"summary\"") < dom.find("id=\"component-backend\""));
    // A viewer east of UTC sees their own time beside the full times, and
    // on hover.
    assert!(dom.contains("class=\"local\"> · your time: "), "{dom}");
    assert!(
        dom.contains("title=\"2026") || dom.contains("title=\"20"),
        "{dom}"
    );
    // A viewer in UTC sees no second time, only the title on hover.
    let utc = dom_in(&url, "UTC", 1280);
    assert!(
        !utc.contains("class=\"local\"> · your time: "),
        "a local time was added in UTC\n{utc}"
    );
    assert!(utc.contains("Your zone is UTC too."), "{utc}");
    assert!(utc.contains("title=\"your time: "), "{utc}");

    // Phone and desktop: no sideways overflow, the SVG as wide as the page,
    // its lanes and markers laid out; screenshots kept to look at.
    let dir = tempfile::tempdir().unwrap();
    for width in [390u32, 1280] {
        let wrapper = measuring_wrapper(&html, width, dir.path());
        let measured = dom_in(
            &format!("file://{}", wrapper.display()),
            "UTC",
            width.max(800),
        );
        let got = |k: &str| attr(&measured, k);
        assert_eq!(got("width"), Some(i64::from(width)), "{measured}");
        assert!(
            got("overflow").is_some_and(|o| o <= 0),
            "the page overflows sideways by {:?} px at {width} px",
            got("overflow")
        );
        let svg = got("svg").unwrap_or(0);
        assert!(
            svg > i64::from(width) / 2 && got("svg-right").unwrap_or(i64::MAX) <= i64::from(width),
            "the timeline is {svg} px wide, right edge {:?}, at {width} px",
            got("svg-right")
        );
        assert_eq!(got("lanes"), Some(2), "{measured}");
        assert!(got("marks").is_some_and(|m| m >= 8), "{measured}");

        let shot = chromium::output_dir().join(format!("status-glance-{width}.png"));
        if width < 500 {
            // Headless windows are at least 500 px wide: shoot the wrapper,
            // whose iframe is the phone.
            chromium::screenshot(&format!("file://{}", wrapper.display()), &shot, 500, 1800);
        } else {
            chromium::screenshot(&url, &shot, width, 1800);
        }
        eprintln!("status page at a glance ({width} px): {}", shot.display());
    }
}
