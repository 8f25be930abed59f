//! The fleet page: every VM of this VM's group, as the store has them
//! (`switcher fleet`, feature `s3`). Two files beside the status page,
//! renamed into place without fsync like it (derived, rewritten by every
//! run): `fleet.json` (the [`fleet::view::GroupView`], schema 1) and
//! `fleet.html`, which nginx serves at /fleet and /fleet.json.
//!
//! The page is built like /deploy-status, from its parts: every untrusted
//! text (VM ids, artifact names and branches, reasons: the VMs and CI wrote
//! them) goes through [`escape::html`], and the Content-Security-Policy of
//! [`csp::policy`] admits only the status page's own script and style
//! ([`html::SCRIPT`], [`html::STYLE`]), so local times on hover and the
//! not-renewed warning work the same.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deploy_root::atomic;
use deploy_root::time::{human, rfc3339};
use fleet::view::{GroupView, VmView, MISSING_AFTER_PERIODS};

use super::escape::html as esc;
use super::html::{self, badge, time};
use super::{csp, rules};

/// The page, in the output folder (state/ by default).
pub const HTML_FILE: &str = "fleet.html";
/// The JSON, beside it.
pub const JSON_FILE: &str = "fleet.json";

/// The JSON text of the view: pretty, newline-ended.
pub fn json(view: &GroupView) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(view).context("serializing the fleet view")?;
    text.push('\n');
    Ok(text)
}

/// Writes fleet.json, then fleet.html, into `dir`, each renamed into place.
pub fn write(dir: &Path, view: &GroupView, stale_after: std::time::Duration) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    atomic::write_unsynced(&dir.join(JSON_FILE), json(view)?.as_bytes())?;
    atomic::write_unsynced(&dir.join(HTML_FILE), render(view, stale_after).as_bytes())?;
    Ok(())
}

/// The Sync badge of a state word from a VM's report.
fn sync_badge(sync: &str) -> String {
    let class = match sync {
        "in-sync" => "ok",
        "switching" | "held" => "info",
        "out-of-sync" => "warn",
        "failed" => "bad",
        "rolled-back" => "hand",
        _ => "mute",
    };
    badge(class, sync)
}

/// The Status badge of a status word from a VM's report.
fn status_badge(status: &str) -> String {
    let class = if status.starts_with("DOWN") {
        "bad"
    } else if status.contains("unhealthy") {
        "warn"
    } else if status.starts_with("UP") {
        "ok"
    } else {
        "mute"
    };
    badge(class, status)
}

/// An artifact name in code, or a dash.
fn artifact(name: Option<&str>) -> String {
    name.map_or("-".to_string(), |n| format!("<code>{}</code>", esc(n)))
}

/// The whole page. `stale_after`: how old it may grow before, where
/// JavaScript runs, it says it has not been renewed.
pub fn render(view: &GroupView, stale_after: std::time::Duration) -> String {
    let now = view.now;
    let missing: Vec<&VmView> = view.missing().collect();
    let live = view.live().count();
    let trouble = missing.len() + view.halted.len();
    let title = if trouble == 0 {
        format!("Fleet {}: all reporting", view.group)
    } else {
        format!(
            "Fleet {}: {}",
            view.group,
            [
                (missing.len(), "missing VM"),
                (view.halted.len(), "halted rollout")
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, w)| rules::count(*n, w))
            .collect::<Vec<_>>()
            .join(", ")
        )
    };
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n<style>{style}</style>\n</head>\n<body>\n\
         <h1>Fleet: group {group}</h1>\n<p class=\"gen\" id=\"generated\" data-generated=\"{stamp}\" data-stale-after=\"{stale}\">Read from {store} at <span class=\"when\" data-utc=\"{stamp}\"><time datetime=\"{stamp}\">{gen}</time></span> by the store's clock: {vms}, {live} live. This page reloads itself every {refresh} s; <code>switcher fleet</code> renews it. Times are UTC; ages are by the store's clock. <a href=\"fleet.json\">JSON</a>.<span id=\"zone\"></span></p>\n",
        csp = esc(&csp::policy(html::SCRIPT, html::STYLE)),
        refresh = html::REFRESH_SECS,
        title = esc(&title),
        style = html::STYLE,
        group = esc(&view.group),
        store = esc(&view.store),
        stamp = rfc3339(now),
        gen = human(now),
        stale = stale_after.as_secs(),
        vms = rules::count(view.vms.len(), "VM"),
    );

    if trouble == 0 {
        h.push_str(
            "<div class=\"allgood\"><strong>All reporting:</strong> every VM was seen within two of its periods, and no rollout halted.</div>\n",
        );
    }
    if !view.halted.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"problems\" id=\"halted\"><strong>{}</strong> (no VM of the group tries these any more):<ul>",
            esc(&rules::count(view.halted.len(), "halted rollout"))
        );
        for halt in &view.halted {
            let _ = write!(
                h,
                "<li data-artifact=\"{a}\"><code>{a}</code>: recorded {when}",
                a = esc(&halt.artifact),
                when = time(halt.written, now)
            );
            match &halt.record {
                Some(r) => {
                    let _ = write!(
                        h,
                        "; [fleet] max_failures {} reached by {}:<ul>",
                        r.max_failures,
                        rules::count(r.failures.len(), "failed VM")
                    );
                    for f in &r.failures {
                        let _ = write!(
                            h,
                            "<li><strong>{vm}</strong>, step <code>{step}</code>: {reason} ({back}; at {at})</li>",
                            vm = esc(&f.vm),
                            step = esc(&f.step),
                            reason = esc(&f.reason),
                            back = if f.rolled_back {
                                "rolled back"
                            } else {
                                "NOT rolled back"
                            },
                            at = esc(&f.at),
                        );
                    }
                    h.push_str("</ul>");
                }
                None => {
                    let _ = write!(
                        h,
                        "; the record cannot be read: {}",
                        esc(halt.error.as_deref().unwrap_or("?"))
                    );
                }
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ul></div>\n");
    }
    if !missing.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"problems\" id=\"missing\"><strong>{}</strong>, not seen for {MISSING_AFTER_PERIODS} of their periods:<ul>",
            esc(&rules::count(missing.len(), "missing VM"))
        );
        for v in &missing {
            let _ = writeln!(
                h,
                "<li data-vm=\"{vm}\"><strong>{vm}</strong>: last seen {when}, passes every {p} s</li>",
                vm = esc(&v.vm),
                when = time(v.last_seen, now),
                p = v.period_seconds,
            );
        }
        h.push_str("</ul></div>\n");
    }

    summary(&mut h, view, now);

    let failed = view.failed_not_halted();
    if !failed.is_empty() {
        h.push_str("<div class=\"notes\" id=\"failures\"><strong>Failed on some VMs</strong> (fewer than [fleet] max_failures: the rollout goes on):<ul>");
        for (a, vms) in failed {
            let vms: Vec<String> = vms.iter().map(|v| esc(v)).collect();
            let _ = write!(h, "<li><code>{}</code>: {}</li>", esc(a), vms.join(", "));
        }
        h.push_str("</ul></div>\n");
    }
    let mut notes = Vec::new();
    for v in &view.vms {
        let Some(r) = &v.report else { continue };
        let vm = esc(&v.vm);
        if let Some(s) = &r.switching {
            notes.push(format!(
                "<li>{vm}: switching to <code>{}</code></li>",
                esc(s)
            ));
        }
        if let Some(s) = &r.rollout {
            notes.push(format!("<li>{vm}: {}</li>", esc(s)));
        }
        for p in &r.problems {
            notes.push(format!("<li>{vm}: problem: {}</li>", esc(p)));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"notes\" id=\"notes\"><strong>Notes from the VMs:</strong><ul>{}</ul></div>",
            notes.join("")
        );
    }
    let _ = write!(h, "<script>{}</script>\n</body>\n</html>\n", html::SCRIPT);
    h
}

/// The table: one row per VM and component.
fn summary(h: &mut String, view: &GroupView, now: DateTime<Utc>) {
    if view.vms.is_empty() {
        let _ = writeln!(
            h,
            "<p>No VM of group {} has reported yet.</p>",
            esc(&view.group)
        );
        return;
    }
    h.push_str(
        "<div class=\"scroll\"><table class=\"summary\" id=\"vms\"><thead><tr><th>VM</th><th>Component</th><th>Running</th><th>Last</th><th>Status</th><th>Sync</th><th>Last seen</th></tr></thead><tbody>\n",
    );
    for v in &view.vms {
        let seen = time(v.last_seen, now);
        let vm_cell = if v.live {
            format!("<strong>{}</strong>", esc(&v.vm))
        } else {
            format!(
                "<strong>{}</strong> {}",
                esc(&v.vm),
                badge("bad", "missing")
            )
        };
        let row_attrs = format!(
            "data-vm=\"{}\" data-live=\"{}\"",
            esc(&v.vm),
            if v.live { "yes" } else { "no" }
        );
        let Some(report) = &v.report else {
            let _ = writeln!(
                h,
                "<tr {row_attrs}><td>{vm_cell}</td><td colspan=\"5\">{} the report cannot be read: {}</td><td>{seen}</td></tr>",
                badge("bad", "unreadable"),
                esc(v.error.as_deref().unwrap_or("?"))
            );
            continue;
        };
        if report.components.is_empty() {
            let _ = writeln!(
                h,
                "<tr {row_attrs}><td>{vm_cell}</td><td colspan=\"5\">no components</td><td>{seen}</td></tr>"
            );
            continue;
        }
        for (i, (name, c)) in report.components.iter().enumerate() {
            let last = match (&c.last, &c.running) {
                (Some(l), Some(r)) if l == r => "<span class=\"sub\">same</span>".to_string(),
                (l, _) => artifact(l.as_deref()),
            };
            let reason = c
                .reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| format!("<span class=\"sub\">{}</span>", esc(r)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr {row_attrs} data-component=\"{cn}\"><td>{vm}</td><td>{cn}</td><td class=\"branch\">{running}</td><td class=\"branch\">{last}</td><td>{status}</td><td>{sync}{reason}</td><td>{seen}</td></tr>",
                vm = if i == 0 { vm_cell.as_str() } else { "" },
                cn = esc(name),
                running = artifact(c.running.as_deref()),
                status = status_badge(&c.status),
                sync = sync_badge(&c.sync),
                seen = if i == 0 { seen.as_str() } else { "" },
            );
        }
    }
    h.push_str("</tbody></table></div>\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use fleet::report::{VmComponent, VmReport};
    use fleet::rollout::{FailureRecord, HaltRecord};
    use fleet::view::{vm_view, Halt, SCHEMA};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn untrusted_text_is_escaped_and_the_csp_holds() {
        let now = at("2026-11-26T23:50:00Z");
        let evil = "full_20261126T234000Z_1.4.2_<script>alert(1)</script>.tar.zst";
        let mut components = BTreeMap::new();
        components.insert(
            "backend".to_string(),
            VmComponent {
                running: Some(evil.into()),
                last: Some(evil.into()),
                status: "UP".into(),
                sync: "in-sync".into(),
                reason: Some("\"<b>\"".into()),
            },
        );
        let report = VmReport {
            schema: 1,
            vm: "<i>vm</i>".into(),
            group: "g".into(),
            period_seconds: 60,
            components,
            ..Default::default()
        };
        let view = GroupView {
            schema: SCHEMA,
            group: "g".into(),
            store: "s3://b/p".into(),
            now,
            vms: vec![
                vm_view(
                    "<i>vm</i>",
                    Ok(report),
                    at("2026-11-26T23:49:50Z"),
                    Duration::from_secs(60),
                    now,
                ),
                vm_view(
                    "gone",
                    Err("expected JSON".into()),
                    at("2026-11-26T23:00:00Z"),
                    Duration::from_secs(60),
                    now,
                ),
            ],
            halted: vec![Halt {
                artifact: evil.into(),
                written: now,
                record: Some(HaltRecord {
                    artifact: evil.into(),
                    max_failures: 1,
                    failures: vec![FailureRecord {
                        vm: "<i>vm</i>".into(),
                        artifact: evil.into(),
                        at: "2026-11-26T23:45:00Z".into(),
                        step: "verify".into(),
                        reason: "<img src=x>".into(),
                        rolled_back: true,
                    }],
                    at: "2026-11-26T23:45:01Z".into(),
                }),
                error: None,
            }],
            failures: BTreeMap::new(),
        };
        let page = render(&view, Duration::from_secs(120));
        for bad in ["<script>alert", "<i>vm", "<b>", "<img"] {
            assert!(!page.contains(bad), "{bad} unescaped");
        }
        assert!(page.contains("&lt;i&gt;vm&lt;/i&gt;"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // Exactly the status page's script and style, named in the CSP.
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(page.contains(&csp::hash_source(html::SCRIPT)));
        assert!(page.contains(&csp::hash_source(html::STYLE)));
        assert!(page.contains("id=\"missing\"") && page.contains("data-vm=\"gone\""));
        assert!(page.contains("id=\"halted\"") && page.contains("rolled back"));
        assert!(page.contains("2026-11-26 23:49:50 UTC"));
        let json: serde_json::Value = serde_json::from_str(&json(&view).unwrap()).unwrap();
        assert_eq!(json["vms"][0]["vm"], "<i>vm</i>");
        assert_eq!(json["vms"][1]["live"], false);
    }
}
