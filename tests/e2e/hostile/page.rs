//! Hostile branch names on the status page, in headless Chromium: a
//! right-to-left override (which would reverse how the rest of the line
//! reads), quotes that try to leave an attribute, and a 200-character name
//! with no place to break. They render as inert text: the page's own
//! script runs and no other, the DOM holds no element the names brought,
//! and at phone width the body does not overflow sideways.
//!
//! tests/e2e/status.rs covers markup and script in branch names through
//! nginx; this adds what it does not: bidi controls, attribute quotes, and
//! the layout with very long names.

use std::fs;

use cutover_tests::{chromium, ArchiveBuilder};

use super::{assert_serves, cron, demo_sandbox};

/// Bidi override: "gpj.exe" reads as "exe.jpg" after U+202E.
const RTL_BRANCH: &str = "fix/\u{202E}gpj.exe\u{202C}-then-\u{2067}isolate";
/// Quotes that would end an attribute value and add a handler.
const QUOTE_BRANCH: &str = "q/\"onmouseover=\"document.title='pwned'\"x='";

fn long_branch() -> String {
    let b = format!("feature/{}", "W".repeat(192));
    assert_eq!(b.chars().count(), 200);
    b
}

/// Runs headless Chromium on `url` in a `window_width`×900 window and
/// returns the DOM after load.
fn dom_at(url: &str, window_width: u32) -> String {
    chromium::dump_dom_at(url, window_width, None)
}

/// The tags (`<...>`) of a DOM dump that contain `needle`.
fn tags_with<'a>(dom: &'a str, needle: &str) -> Vec<&'a str> {
    dom.split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(tag, _)| tag))
        .filter(|tag| tag.contains(needle))
        .collect()
}

/// The `data-offenders` the measuring wrapper found (elements whose
/// content is wider than they are, with nothing to scroll or clip it).
fn offenders(dom: &str) -> String {
    let key = "data-offenders=\"";
    dom.find(key)
        .map(|i| &dom[i + key.len()..])
        .and_then(|rest| rest.split_once('"').map(|(v, _)| v.to_string()))
        .unwrap_or_default()
}

/// The value of `data-<name>="..."` in a DOM dump.
fn attr(dom: &str, name: &str) -> Option<i64> {
    let key = format!("data-{name}=\"");
    let rest = &dom[dom.find(&key)? + key.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// A wrapper page that shows the status page, unchanged (its own CSP
/// included), in an iframe `width` px wide, and measures it from outside
/// once it has loaded: `data-width` (the iframe's viewport) and
/// `data-overflow` (how much wider than that its document is). Headless
/// Chromium's window is at least 500 px wide; the iframe is as narrow as a
/// phone, and the page's own media queries apply to it.
fn measuring_wrapper(html: &str, width: u32, dir: &std::path::Path) -> std::path::PathBuf {
    let srcdoc = html
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let wrapper = format!(
        "<!doctype html><html><body style=\"margin:0\">\
         <iframe id=\"f\" width=\"{width}\" height=\"900\" style=\"border:0\" srcdoc=\"{srcdoc}\"></iframe>\
         <script>var f=document.getElementById('f');f.onload=function(){{\
         var d=f.contentDocument.documentElement;\
         document.body.setAttribute('data-width',String(d.clientWidth));\
         document.body.setAttribute('data-overflow',String(d.scrollWidth-d.clientWidth));\
         var w=f.contentWindow,out=[];f.contentDocument.querySelectorAll('body *').forEach(function(e){{\
         if(w.getComputedStyle(e).overflowX!='visible'||e.scrollWidth<=e.clientWidth+1)return;\
         for(var p=e.parentElement;p;p=p.parentElement)if(w.getComputedStyle(p).overflowX!='visible')return;\
         out.push(e.tagName+' '+(e.textContent||'').replace(/\\s+/g,' ').slice(0,80));}});\
         document.body.setAttribute('data-offenders',out.slice(0,5).join(' | '));}};</script>\
         </body></html>"
    );
    let path = dir.join("measure.html");
    fs::write(&path, wrapper).unwrap();
    path
}

#[test]
fn bidi_quotes_and_200_character_branches_are_inert_text_that_fits_a_phone() {
    chromium::binary();
    let sb = demo_sandbox("", "");
    let long = long_branch();
    ArchiveBuilder::demo("full", "1")
        .minute(1)
        .branch(RTL_BRANCH)
        .drop_into(&sb.drop_dir());
    let run = cron(&sb);
    run.success();
    assert_serves(&sb, &run, "1");
    ArchiveBuilder::demo("frontend", "2")
        .minute(2)
        .branch(&long)
        .drop_into(&sb.drop_dir());
    cron(&sb).success();
    // v3, from the quote branch, exits at once: rolled back, so the page
    // shows it as Last beside the Running v1 and v2.
    ArchiveBuilder::demo("full", "3")
        .minute(3)
        .branch(QUOTE_BRANCH)
        .file("backend/BEHAVIOUR", "exit")
        .drop_into(&sb.drop_dir());
    cron(&sb).code_is(3);

    let page = sb.path("state/deploy-status.html");
    let html = fs::read_to_string(&page).unwrap();
    // Escaped as text in the file: no raw quote from the branch in markup.
    assert!(!html.contains("\"onmouseover=\""), "{html}");
    assert!(html.contains(&long), "the long branch is shown whole");

    let url = format!("file://{}", page.display());
    let dom = dom_at(&url, 800);
    assert!(
        dom.contains("class=\"local\""),
        "the page's own script did not run\n{dom}"
    );
    let title = dom
        .split_once("<title>")
        .and_then(|(_, r)| r.split_once("</title>"))
        .map(|(t, _)| t.to_string());
    assert!(
        title
            .as_deref()
            .is_some_and(|t| t.starts_with("Deploy status: ")),
        "title {title:?}\n{dom}"
    );
    // Chromium writes quotes in text nodes as themselves: look for the
    // handler inside tags only (text has its '<' written as &lt;).
    let tags = tags_with(&dom, "onmouseover");
    assert!(
        tags.is_empty(),
        "a branch added an attribute: {tags:?}\n{dom}"
    );
    assert!(!dom.contains("pwned</title>"), "{dom}");
    assert!(dom.contains(&long), "{dom}");
    // The bidi controls are shown, not obeyed: none reaches the DOM as
    // itself, so nothing after a branch is reordered.
    for c in ['\u{202E}', '\u{202C}', '\u{2067}'] {
        assert!(!dom.contains(c), "{c:?} reached the page as itself\n{dom}");
    }
    assert!(dom.contains("[U+202E]gpj.exe"), "{dom}");
    assert!(dom.contains("<bdi class=\"branch\">fix/[U+202E]"), "{dom}");

    // Layout at phone width: nothing wider than the screen.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = measuring_wrapper(&html, 412, dir.path());
    let measured = dom_at(&format!("file://{}", wrapper.display()), 800);
    let width = attr(&measured, "width");
    let overflow = attr(&measured, "overflow");
    assert_eq!(
        width,
        Some(412),
        "the page was not laid out at phone width\n{measured}"
    );
    assert!(
        overflow.is_some_and(|o| o <= 0),
        "the body overflows sideways by {overflow:?} px at 412 px; too wide: {}",
        offenders(&measured)
    );
    let shot = chromium::output_dir().join("status-hostile-branches-phone.png");
    chromium::screenshot(&url, &shot, 412, 2000);
    eprintln!(
        "status page with hostile branches (phone): {}",
        shot.display()
    );
}
