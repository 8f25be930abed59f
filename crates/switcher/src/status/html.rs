//! The status page: one self-contained HTML file (no CDN, no external font
//! or script), readable on a phone, complete without JavaScript.
//!
//! Every untrusted text goes through [`esc`]; the Content-Security-Policy
//! (see [`super::csp`]) lets only this file's own script and style run. The
//! one script adds the viewer's local time next to every `data-utc` time;
//! without it the page shows UTC and the age, which is enough.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use deploy_root::state::{Failure, LastArtifact, RunningRelease};
use deploy_root::time::{age, human, rfc3339};

use super::csp;
use super::escape::html as esc;
use super::model::{ComponentStatus, StatusDoc, SyncState, UpDown};

/// How often the page reloads itself, in seconds.
pub const REFRESH_SECS: u32 = 30;

/// The inline script: local time beside each UTC time. Its SHA-256 is in
/// the CSP, so any change here is picked up by itself.
const SCRIPT: &str = "(function(){var n=document.querySelectorAll('[data-utc]');\
for(var i=0;i<n.length;i++){var e=n[i],d=new Date(e.getAttribute('data-utc'));\
if(isNaN(d.getTime()))continue;var s=document.createElement('span');s.className='local';\
s.textContent=' \\u00b7 your time: '+d.toLocaleString(undefined,{timeZoneName:'short'});\
e.parentNode.insertBefore(s,e.nextSibling);}\
var g=document.getElementById('generated');if(!g)return;\
var age=Date.now()-new Date(g.getAttribute('data-generated')).getTime();\
if(age>1000*Number(g.getAttribute('data-stale-after'))){var p=document.createElement('p');\
p.id='stale';p.className='stale';p.textContent='This page was written '+Math.round(age/60000)+\
' min ago and not renewed since: the switcher, which writes it on every pass, has not run. \
Check its cron job or timer; the ages above are as of the writing.';\
g.parentNode.insertBefore(p,g.nextSibling);}})();";

/// The inline style. A colour for each state, and always the words too.
const STYLE: &str = "\
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00;--info:#0b5cad;--mute:#666}\
*{box-sizing:border-box}\
body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;padding:.8rem;max-width:64rem}\
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:.2rem 0 .5rem}\
.gen{color:var(--mute);margin:0 0 1rem}\
.card{border:1px solid #8884;border-radius:.5rem;padding:.7rem .9rem;margin:0 0 1rem}\
dl{display:grid;grid-template-columns:7rem 1fr;gap:.3rem .8rem;margin:0}\
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
.badge{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:#fff;font-weight:600;font-size:.9em}\
.ok{background:var(--ok)}.bad{background:var(--bad)}.warn{background:var(--warn)}.info{background:var(--info)}.mute{background:var(--mute)}\
.problems{border-left:.35rem solid var(--bad);padding:.4rem .8rem;margin:0 0 1rem}\
.allgood{border-left:.35rem solid var(--ok);padding:.4rem .8rem;margin:0 0 1rem}\
.problems li{margin:.2rem 0;overflow-wrap:anywhere}.rule{font-family:ui-monospace,monospace;font-size:.85em;color:var(--mute)}\
.age,.local{color:var(--mute)}.stale{border-left:.35rem solid var(--bad);padding:.4rem .8rem;font-weight:600}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#8882;padding:.4rem;border-radius:.3rem;font-size:.85em}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}\
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #8884;vertical-align:top}\
code{overflow-wrap:anywhere}\
@media (max-width:36rem){dl{grid-template-columns:1fr}dt{margin-top:.4rem}body{padding:.5rem}}";

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
        format!("Deploy status: {} problem(s)", problems.len())
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
         <h1>Deploy status</h1>\n<p class=\"gen\" id=\"generated\" data-generated=\"{stamp}\" data-stale-after=\"{stale}\">Generated <span class=\"when\" data-utc=\"{stamp}\"><time datetime=\"{stamp}\">{gen}</time></span>. This page reloads itself every {REFRESH_SECS} s. Times are UTC; ages are as of the generation.</p>\n",
        csp = esc(&csp::policy(SCRIPT, STYLE)),
        title = esc(&title),
        gen = human(now),
        stamp = rfc3339(now),
        stale = stale_after.as_secs(),
    );

    if problems.is_empty() {
        h.push_str("<div class=\"allgood\"><strong>All good:</strong> every rule passes.</div>\n");
    } else {
        let _ = writeln!(
            h,
            "<div class=\"problems\" id=\"problems\"><strong>{} problem(s):</strong><ul>",
            problems.len()
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
fn time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let stored = rfc3339(t);
    format!(
        "<span class=\"when\" data-utc=\"{stored}\"><time datetime=\"{stored}\">{}</time> <span class=\"age\">({})</span></span>",
        human(t),
        age(t, now)
    )
}

fn badge(class: &str, words: &str) -> String {
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
    if let Some(f) = &c.last_failure {
        let _ = writeln!(h, "<dt>Failure</dt><dd>{}</dd>", failure(f, now));
    }
    h.push_str("</dl>\n</section>\n");
}

fn failure(f: &Failure, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "<code>{}</code> failed at step <strong>{}</strong>{} {}: {}",
        esc(&f.artifact),
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
        let class = if e.outcome == "deployed" || e.outcome == "recovered" || e.outcome == "done" {
            "ok"
        } else {
            "bad"
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
