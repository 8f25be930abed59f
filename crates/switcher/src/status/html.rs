//! The status page: one self-contained HTML file (no CDN, no external font
//! or script), readable on a phone, complete without JavaScript.
//!
//! At the top, a summary table (one row per component: Running, Last,
//! Status, Sync, one badge each) answers "is everything fine, and what
//! runs?"; then the problems, the timeline of the last days (inline SVG,
//! see [`super::svg`]), and the details per component.
//!
//! Every untrusted text goes through [`esc`]; the Content-Security-Policy
//! (see [`super::csp`]) lets only this file's own script and style run. The
//! one script puts the viewer's local time in each `data-utc` time's title
//! (on hover), and beside the times shown in full only where the viewer's
//! zone differs from UTC at that time; without it the page shows UTC and
//! the age, which is enough.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use deploy_root::state::{Failure, HandRollback, LastArtifact, RunningRelease};
use deploy_root::time::{age, human, rfc3339};

use super::escape::html as esc;
use super::model::{ComponentStatus, StatusDoc, SyncState, UpDown};
use super::svg;
use super::{csp, rules};

/// How often the page reloads itself, in seconds.
pub const REFRESH_SECS: u32 = 30;

/// The inline script: the viewer's local time in each UTC time's title
/// (hover), and beside the full times (`.when`) where that zone differs
/// from UTC; a word on the zone under the title; the stale-page warning.
/// Its SHA-256 is in the CSP, so any change here is picked up by itself.
pub(crate) const SCRIPT: &str = "(function(){var n=document.querySelectorAll('[data-utc]'),off=0;\
for(var i=0;i<n.length;i++){var e=n[i],d=new Date(e.getAttribute('data-utc'));\
if(isNaN(d.getTime()))continue;var l=d.toLocaleString(undefined,{timeZoneName:'short'});\
e.title=(e.title?e.title+' \\u00b7 ':'')+'your time: '+l;\
if(d.getTimezoneOffset()===0||!e.classList.contains('when'))continue;off++;\
var s=document.createElement('span');s.className='local';s.textContent=' \\u00b7 your time: '+l;\
e.parentNode.insertBefore(s,e.nextSibling);}\
var z=document.getElementById('zone');if(z){z.className='local';\
z.textContent=new Date().getTimezoneOffset()===0?' Your zone is UTC too.':\
' Your own time follows in grey; hover over any time for it.';}\
var g=document.getElementById('generated');if(!g)return;\
var age=Date.now()-new Date(g.getAttribute('data-generated')).getTime();\
if(age>1000*Number(g.getAttribute('data-stale-after'))){var p=document.createElement('p');\
p.id='stale';p.className='stale';p.textContent='This page was written '+Math.round(age/60000)+\
' min ago and not renewed since: the switcher, which writes it on every pass, has not run. \
Check its cron job or timer; the ages above are as of the writing.';\
g.parentNode.insertBefore(p,g.nextSibling);}})();";

/// The inline style. A colour for each state, and always the words too.
pub(crate) const STYLE: &str = "\
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00;--info:#0b5cad;--hand:#5a4fa3;--mute:#666}\
*{box-sizing:border-box}\
body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;padding:.8rem;max-width:64rem}\
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:.2rem 0 .5rem}\
.gen{color:var(--mute);margin:0 0 1rem}\
.card{border:1px solid #8884;border-radius:.5rem;padding:.7rem .9rem;margin:0 0 1rem}\
dl{display:grid;grid-template-columns:7rem 1fr;gap:.3rem .8rem;margin:0}\
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
.badge{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:#fff;font-weight:600;font-size:.9em}\
.ok{background:var(--ok)}.bad{background:var(--bad)}.warn{background:var(--warn)}.info{background:var(--info)}.hand{background:var(--hand)}.mute{background:var(--mute)}\
.problems{border-left:.35rem solid var(--bad);padding:.4rem .8rem;margin:0 0 1rem}\
.allgood{border-left:.35rem solid var(--ok);padding:.4rem .8rem;margin:0 0 1rem}\
.notes{border-left:.35rem solid var(--hand);padding:.4rem .8rem;margin:0 0 1rem}\
.problems li,.notes li{margin:.2rem 0;overflow-wrap:anywhere}.rule{font-family:ui-monospace,monospace;font-size:.85em;color:var(--mute)}\
.age,.local{color:var(--mute)}.stale{border-left:.35rem solid var(--bad);padding:.4rem .8rem;font-weight:600}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#8882;padding:.4rem;border-radius:.3rem;font-size:.85em}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}\
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #8884;vertical-align:top;overflow-wrap:anywhere}\
.summary{font-size:.95em;margin:0 0 1rem}.summary td,.summary th{padding:.35rem .4rem}.summary a{color:inherit}\
.summary .sub{display:block;font-size:.85em;color:var(--mute)}\
.summary td,.summary th{overflow-wrap:normal}.summary th{white-space:nowrap}.summary .branch{overflow-wrap:anywhere}\
code{overflow-wrap:anywhere}\
svg.tl{display:block;margin:.3rem 0 .4rem;font:11px system-ui,sans-serif;fill:currentColor;overflow:hidden}\
.tl-tick{fill:var(--mute)}.tl-grid{stroke:#8884;stroke-width:1}.tl-name{font-weight:600;font-size:12px}\
.tl-track{fill:#8881}.tl-seg{stroke:#fff;stroke-width:1}.tl-run0 .tl-seg{fill:#0b5cad55}.tl-run1 .tl-seg{fill:#1a7f3755}\
.tl-ver{font-size:11px}.tl-hatch-bg{fill:#c6282840}.tl-hatch-line{stroke:#c62828;stroke-width:3}\
.tl-maybe{opacity:.6}\
.tl-mark path,.tl-mark circle,.tl-mark rect{stroke-width:2.5}\
.tl-deploy path{stroke:var(--ok)}.tl-deploy circle{fill:var(--ok);stroke:#fff;stroke-width:1.5}\
.tl-failed path{stroke:var(--bad);stroke-width:3.5}.tl-wentback path{stroke:var(--bad);stroke-width:2;opacity:.7}\
.tl-rollback path{fill:var(--hand);stroke:#fff;stroke-width:1.5}.tl-recover rect{fill:var(--warn);stroke:#fff;stroke-width:1.5}\
.legend{font-size:.85em;color:var(--mute);margin:0}.legend>span{display:inline-block;margin-right:.8em}\
.lg-deploy{color:var(--ok)}.lg-failed{color:var(--bad)}.lg-rollback{color:var(--hand)}.lg-recover{color:var(--warn)}.lg-down{color:var(--bad)}\
@media (max-width:36rem){dl{grid-template-columns:1fr}dt{margin-top:.4rem}body{padding:.5rem}.summary{font-size:.85em}}";

/// The whole page. `stale_after` is how old the page may be before, where
/// JavaScript runs, it warns that it has not been renewed (its writer, the
/// switcher, has stopped): without that, a dead switcher would leave a
/// page that still says all is well.
pub fn render(doc: &StatusDoc, stale_after: std::time::Duration) -> String {
    let now = doc.generated_at;
    let problems = doc.all_problems();
    let title = if problems.is_empty() {
        "Deploy status: all good".to_string()
    } else {
        format!("Deploy status: {}", rules::count(problems.len(), "problem"))
    };
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Deploy status</h1>\n<p class=\"gen\" id=\"generated\" data-generated=\"{stamp}\" data-stale-after=\"{stale}\">Generated <span class=\"when\" data-utc=\"{stamp}\"><time datetime=\"{stamp}\">{gen}</time></span>. This page reloads itself every {REFRESH_SECS} s. Times are UTC; ages are as of the generation.<span id=\"zone\"></span></p>\n",
        csp = esc(&csp::policy(SCRIPT, STYLE)),
        title = esc(&title),
        gen = human(now),
        stamp = rfc3339(now),
        stale = stale_after.as_secs(),
    );

    summary(&mut h, doc, now);
    if problems.is_empty() {
        h.push_str("<div class=\"allgood\"><strong>All good:</strong> every rule passes.</div>\n");
    } else {
        let _ = writeln!(
            h,
            "<div class=\"problems\" id=\"problems\"><strong>{}:</strong><ul>",
            rules::count(problems.len(), "problem")
        );
        for (component, p) in &problems {
            let who = component
                .map(|c| format!("{}: ", esc(c)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<li data-rule=\"{rule}\">{who}{msg} <span class=\"rule\">[{rule}]</span></li>",
                rule = esc(p.rule),
                msg = esc(&p.message)
            );
        }
        h.push_str("</ul></div>\n");
    }

    notes(&mut h, doc, now);
    timeline(&mut h, doc);
    for (name, c) in &doc.components {
        component(&mut h, name, c, now);
    }
    h.push_str(&super::control::html(doc));
    runs(&mut h, doc, now);
    waiting(&mut h, doc, now);
    quarantine(&mut h, doc, now);
    history(&mut h, doc, now);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

/// A time: UTC with the letters UTC, its age, and (with JS) local time.
pub(crate) fn time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let stored = rfc3339(t);
    format!(
        "<span class=\"when\" data-utc=\"{stored}\"><time datetime=\"{stored}\">{}</time> <span class=\"age\">({})</span></span>",
        human(t),
        age(t, now)
    )
}

/// An age only ("3 h ago"), with the full UTC time (and, with JS, the
/// viewer's) on hover.
fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "<span class=\"ago\" data-utc=\"{}\" title=\"{}\">{}</span>",
        rfc3339(t),
        human(t),
        age(t, now)
    )
}

pub(crate) fn badge(class: &str, words: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", esc(words))
}

fn artifact(kind: &str, version: &str, branch: &str, name: &str, built: String) -> String {
    format!(
        "<strong>{}</strong> ({}) from branch <bdi class=\"branch\">{}</bdi>, built {built}<br><code>{}</code>",
        esc(version),
        esc(kind),
        esc(branch),
        esc(name)
    )
}

fn last(l: &LastArtifact, now: DateTime<Utc>) -> String {
    format!(
        "{}<br>collected {}",
        artifact(
            &l.info.kind,
            &l.info.version,
            &l.info.branch,
            &l.info.artifact,
            time(l.info.build_time, now)
        ),
        time(l.collected_at, now)
    )
}

fn running(r: &RunningRelease, now: DateTime<Utc>) -> String {
    format!(
        "{}<br>running since {}",
        artifact(
            &r.info.kind,
            &r.info.version,
            &r.info.branch,
            &r.info.artifact,
            time(r.info.build_time, now)
        ),
        time(r.since, now)
    )
}

/// The Status badge: UP, UP but not healthy, DOWN.
fn status_badge(c: &ComponentStatus) -> String {
    match (c.status, c.health.as_deref()) {
        (UpDown::Down, _) => badge("bad", "DOWN"),
        (UpDown::Up, Some(h)) if h != "healthy" => badge("warn", "UP but not healthy"),
        (UpDown::Up, _) => badge("ok", "UP"),
    }
}

fn sync_badge(state: SyncState, late: bool) -> String {
    let class = match state {
        SyncState::InSync => "ok",
        SyncState::Switching => "info",
        SyncState::OutOfSync if late => "bad",
        SyncState::OutOfSync => "warn",
        SyncState::Held => "info",
        SyncState::Failed => "bad",
        SyncState::RolledBack => "hand",
        SyncState::Unknown => "mute",
    };
    badge(class, state.words())
}

fn component(h: &mut String, name: &str, c: &ComponentStatus, now: DateTime<Utc>) {
    let late = c.problems.iter().any(|p| p.rule == "out-of-sync");
    let _ = write!(
        h,
        "<section class=\"card\" id=\"component-{id}\" data-status=\"{status}\" data-sync=\"{sync}\">\n\
         <h2>{id} {sb} {yb}</h2>\n<dl>\n",
        id = esc(name),
        status = c.status.word(),
        sync = c.sync.state.word(),
        sb = status_badge(c),
        yb = sync_badge(c.sync.state, late),
    );
    let _ = writeln!(
        h,
        "<dt>Last</dt><dd>{}</dd>",
        c.last
            .as_ref()
            .map_or("none collected yet".to_string(), |l| last(l, now))
    );
    let _ = writeln!(
        h,
        "<dt>Running</dt><dd>{}</dd>",
        c.running
            .as_ref()
            .map_or("nothing deployed yet".to_string(), |r| running(r, now))
    );
    if let Some(bg) = &c.blue_green {
        let _ = writeln!(h, "<dt>Slots</dt><dd>{}</dd>", esc(&bg.words()));
    }
    let status_words = match c.status {
        UpDown::Up => format!("listens on port {}", c.port),
        UpDown::Down => format!(
            "not listening on port {}: it has crashed or was stopped",
            c.port
        ),
    };
    let _ = writeln!(
        h,
        "<dt>Status</dt><dd>{} {status_words}, checked {}</dd>",
        status_badge(c),
        time(c.checked_at, now)
    );
    if let Some(url) = &c.health_url {
        let health = match (&c.health, c.status) {
            (Some(hl), _) if hl == "healthy" => format!("{} {}", badge("ok", "healthy"), esc(url)),
            (Some(hl), _) => format!("{} {}", badge("warn", "not healthy"), esc(hl)),
            (None, _) => "not checked: the port does not listen".to_string(),
        };
        let _ = writeln!(h, "<dt>Health</dt><dd>{health}</dd>");
    }
    let mut sync = sync_badge(c.sync.state, late);
    if let Some(since) = c.sync.since {
        let _ = write!(sync, " since {}", time(since, now));
    }
    if let Some(reason) = &c.sync.reason {
        let _ = write!(sync, "<br>{}", esc(reason));
    }
    let _ = writeln!(h, "<dt>Sync</dt><dd>{sync}</dd>");
    if let Some(r) = &c.rolled_back {
        let _ = writeln!(h, "<dt>Rollback</dt><dd>{}</dd>", rollback_words(r, c, now));
    }
    for f in &c.failures {
        let _ = writeln!(
            h,
            // No artifact text in attributes: the step is the switcher's word.
            "<dt>Failure</dt><dd data-failure=\"{}\">{}</dd>",
            esc(&f.step),
            failure(name, f, now)
        );
    }
    h.push_str("</dl>\n</section>\n");
}

fn failure(name: &str, f: &Failure, now: DateTime<Utc>) -> String {
    let others: Vec<String> = f
        .running_instead
        .keys()
        .filter(|c| *c != name)
        .map(|c| format!("the {}", esc(c)))
        .collect();
    let with = if others.is_empty() {
        String::new()
    } else {
        format!(" ({} went back with it)", others.join(", "))
    };
    let mut out = format!(
        "<code>{}</code>: the {} failed at step <strong>{}</strong>{} {}{with}: {}",
        esc(&f.artifact),
        esc(name),
        esc(&f.step),
        f.exit_code
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default(),
        time(f.at, now),
        esc(&f.reason)
    );
    if !f.running_instead.is_empty() {
        out.push_str("<br>Running instead: ");
        let list: Vec<String> = f
            .running_instead
            .iter()
            .map(|(c, a)| format!("{}: <code>{}</code>", esc(c), esc(a)))
            .collect();
        out.push_str(&list.join(", "));
    }
    if f.rollback_failed {
        out.push_str(&format!(
            "<br>{} the service may be down",
            badge("bad", "the rollback failed too:")
        ));
    }
    if !f.output_tail.is_empty() {
        out.push_str("<br>Last lines of its output:<pre>");
        let lines: Vec<String> = f.output_tail.iter().map(|l| esc(l)).collect();
        out.push_str(&lines.join("\n"));
        out.push_str("</pre>");
    }
    out
}

/// The summary: one row per component, one badge each for Status and
/// Sync, like `switcher status` prints.
fn summary(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    h.push_str("<div class=\"scroll\"><table class=\"summary\" id=\"summary\">\n<tr><th>Component</th><th>Running</th><th>Last</th><th>Status</th><th>Sync</th></tr>\n");
    for (name, c) in &doc.components {
        let late = c.problems.iter().any(|p| p.rule == "out-of-sync");
        let running = c.running.as_ref().map_or_else(
            || "<span class=\"sub\">nothing yet</span>".to_string(),
            |r| {
                format!(
                    "<strong>{}</strong> <bdi class=\"branch\">{}</bdi><span class=\"sub\">since {}</span>",
                    esc(&r.info.version),
                    esc(&r.info.branch),
                    ago(r.since, now)
                )
            },
        );
        let last = c.last.as_ref().map_or_else(
            || "<span class=\"sub\">none yet</span>".to_string(),
            |l| {
                let same = c
                    .running
                    .as_ref()
                    .is_some_and(|r| r.info.artifact == l.info.artifact);
                if same {
                    format!(
                        "<span class=\"sub\">the same, collected {}</span>",
                        ago(l.collected_at, now)
                    )
                } else {
                    format!(
                        "<strong>{}</strong> <bdi class=\"branch\">{}</bdi><span class=\"sub\">collected {}</span>",
                        esc(&l.info.version),
                        esc(&l.info.branch),
                        ago(l.collected_at, now)
                    )
                }
            },
        );
        let mut sync = sync_badge(c.sync.state, late);
        if let (Some(m), false) = (c.sync.minutes, c.sync.state == SyncState::InSync) {
            let _ = write!(sync, "<span class=\"sub\">for {m} min</span>");
        }
        let _ = writeln!(
            h,
            "<tr data-component=\"{n}\" data-status=\"{st}\" data-sync=\"{sy}\"><th scope=\"row\"><a href=\"#component-{n}\">{n}</a></th><td>{running}</td><td>{last}</td><td>{sb}</td><td>{sync}</td></tr>",
            n = esc(name),
            st = c.status.word(),
            sy = c.sync.state.word(),
            sb = status_badge(c),
        );
    }
    h.push_str("</table></div>\n");
}

/// Hand rollbacks: operator actions, said in their own words, neutral
/// (not problems). One line per rollback, naming its components.
fn notes(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    let mut seen: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for (name, c) in &doc.components {
        let Some(r) = &c.rolled_back else { continue };
        if seen.contains(&r.artifact.as_str()) {
            continue;
        }
        seen.push(&r.artifact);
        let _ = name;
        lines.push(format!(
            "<li data-rollback=\"{}\">{}</li>",
            esc(&r.components.join(" ")),
            rollback_words(r, c, now)
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<div class=\"notes\" id=\"notes\"><strong>Rolled back by hand:</strong><ul>{}</ul></div>",
        lines.join("")
    );
}

/// "alice rolled the backend and the frontend back by hand from 3
/// (artifact) at TIME; full_..._2 runs again. It is not deployed again by
/// itself: deploy it by hand, or deliver a newer build."
fn rollback_words(r: &HandRollback, c: &ComponentStatus, now: DateTime<Utc>) -> String {
    let who = r.by.as_deref().map_or_else(
        || "Someone (who was not recorded)".to_string(),
        |b| format!("<strong>{}</strong>", esc(b)),
    );
    let what: Vec<String> = r
        .components
        .iter()
        .map(|x| format!("the {}", esc(x)))
        .collect();
    let version = c
        .last
        .as_ref()
        .filter(|l| l.info.artifact == r.artifact)
        .map(|l| format!("{} ", esc(&l.info.version)))
        .unwrap_or_default();
    let to: Vec<String> =
        r.to.iter()
            .map(|(comp, rel)| format!("{}: <code>{}</code>", esc(comp), esc(rel)))
            .collect();
    format!(
        "{} {} rolled {} back by hand from {version}<code>{}</code> {} with <code>switcher rollback</code>; running again: {}. It is not deployed again by itself: deploy it by hand, or deliver a newer build.",
        badge("hand", "rollback by hand"),
        who,
        if what.is_empty() { "it".to_string() } else { what.join(" and ") },
        esc(&r.artifact),
        time(r.at, now),
        if to.is_empty() { "the previous release".to_string() } else { to.join(", ") }
    )
}

/// The timeline of the last days, with its legend.
fn timeline(h: &mut String, doc: &StatusDoc) {
    let drawn = svg::render(&doc.timeline);
    if drawn.is_empty() {
        return;
    }
    let span = match (doc.timeline.from, doc.timeline.to) {
        (Some(f), Some(t)) => {
            let hours = (t - f).num_hours();
            if hours >= 48 {
                format!("the last {} days", (hours + 12) / 24)
            } else if hours <= 1 {
                "the last hour".to_string()
            } else {
                format!("the last {} hours", hours.max(1))
            }
        }
        _ => "recently".to_string(),
    };
    let _ = writeln!(
        h,
        "<section class=\"card\" id=\"timeline\"><h2>Timeline: {span}</h2>{drawn}\
         <p class=\"legend\"><span><span class=\"lg-deploy\">&#x25CF;</span> deployed</span>\
         <span><span class=\"lg-failed\">&#x2715;</span> failed here</span>\
         <span><span class=\"lg-failed\">&#x00D7;</span> went back with another component</span>\
         <span><span class=\"lg-rollback\">&#x25C6;</span> rolled back by hand</span>\
         <span><span class=\"lg-recover\">&#x25A0;</span> recovered a cut-short pass</span>\
         <span><span class=\"lg-down\">&#x2592;</span> DOWN</span> (times UTC; hover for details). \
         DOWN is shaded as far as it is known: from the first check that found it DOWN (each pass checks), \
         and, paler, after a rollback or recovery that failed; DOWN stretches that have ended are not recorded.</p></section>"
    );
}

fn runs(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    let when = |t: Option<DateTime<Utc>>| t.map_or("never".to_string(), |t| time(t, now));
    h.push_str("<section class=\"card\" id=\"runs\"><h2>Runs</h2><dl>\n");
    let _ = write!(
        h,
        "<dt>Collector</dt><dd>last run {}",
        when(doc.collector.last_run)
    );
    if let Some(e) = &doc.collector.last_error {
        let _ = write!(h, "<br>{} {}", badge("bad", "last pass failed"), esc(e));
    }
    if let Some(e) = &doc.collector.state_error {
        let _ = write!(h, "<br>{} {}", badge("bad", "state unreadable"), esc(e));
    }
    if let Some(s) = &doc.collector.store {
        let _ = write!(h, "<br>store {}: ", esc(&s.url));
        match &s.last_error {
            Some(e) => {
                let _ = write!(h, "{} {}", badge("bad", "cannot be reached"), esc(e));
            }
            None => {
                let _ = write!(h, "last listed {}", when(s.last_ok));
            }
        }
    }
    let _ = write!(
        h,
        "</dd>\n<dt>Switcher</dt><dd>last run {}",
        when(doc.switcher.last_run)
    );
    if let Some(ms) = doc.switcher.last_pass_ms {
        let _ = write!(h, ", took {}", millis(ms));
    }
    let _ = write!(
        h,
        "; {} failed deploy(s) in all",
        doc.switcher.failures_total
    );
    if let Some(e) = &doc.switcher.state_error {
        let _ = write!(h, "<br>{} {}", badge("bad", "state unreadable"), esc(e));
    }
    h.push_str("</dd>\n</dl></section>\n");
}

fn waiting(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    if doc.waiting.is_empty() {
        return;
    }
    h.push_str("<section class=\"card\" id=\"waiting\"><h2>Uploads waiting for their marker</h2><div class=\"scroll\"><table>\n<tr><th>File</th><th>Size</th><th>Modified</th><th>State</th></tr>\n");
    for w in &doc.waiting {
        let state = if w.stale {
            badge("bad", "waiting too long")
        } else {
            badge("info", "waiting")
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{} B</td><td>{}</td><td>{state} {}</td></tr>",
            esc(&w.name),
            w.size,
            time(w.modified, now),
            esc(&w.reason)
        );
    }
    h.push_str("</table></div></section>\n");
}

fn quarantine(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    if doc.quarantined.is_empty() {
        return;
    }
    h.push_str("<section class=\"card\" id=\"quarantine\"><h2>Quarantined files</h2><div class=\"scroll\"><table>\n<tr><th>File</th><th>Since</th><th>Reason</th></tr>\n");
    for q in &doc.quarantined {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&q.name),
            q.modified.map_or("?".to_string(), |t| time(t, now)),
            esc(q.reason.as_deref().unwrap_or("no reason file"))
        );
    }
    h.push_str("</table></div></section>\n");
}

fn history(h: &mut String, doc: &StatusDoc, now: DateTime<Utc>) {
    h.push_str("<section class=\"card\" id=\"history\"><h2>Recent switcher passes</h2>\n");
    if doc.history.is_empty() {
        h.push_str("<p>None recorded yet.</p></section>\n");
        return;
    }
    h.push_str("<div class=\"scroll\"><table>\n<tr><th>When</th><th>Action</th><th>Artifact</th><th>Outcome</th><th>Took</th></tr>\n");
    for e in &doc.history {
        let class = match (e.action.as_str(), e.outcome.as_str()) {
            (_, "deployed" | "recovered" | "done") => "ok",
            // A hand rollback is an operator's action, not a failure.
            ("rollback", "rolled-back") => "hand",
            _ => "bad",
        };
        let steps: Vec<String> = e
            .steps
            .iter()
            .map(|(s, ms)| format!("{} {}", esc(s), millis(*ms)))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}{}</td><td>{}{}</td></tr>",
            time(e.at, now),
            esc(&e.action),
            esc(e.artifact.as_deref().unwrap_or("")),
            badge(class, &e.outcome),
            e.reason
                .as_ref()
                .map(|r| format!("<br>{}", esc(r)))
                .unwrap_or_default(),
            millis(e.total_ms),
            if steps.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"age\">{}</span>", steps.join(", "))
            }
        );
    }
    h.push_str("</table></div></section>\n");
}

/// "850 ms", "12.3 s".
fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
