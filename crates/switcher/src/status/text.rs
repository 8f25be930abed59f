//! `switcher status`: the same facts as the page, as plain text for a
//! terminal. Untrusted text is shown with its control characters made
//! visible, so a branch name cannot move the cursor or reorder the line.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use deploy_root::time::{age, human};

use super::escape::terminal;
use super::model::{StatusDoc, SyncState, UpDown};

/// The text form of `doc`.
pub fn render(doc: &StatusDoc) -> String {
    let now = doc.generated_at;
    let t = |x: DateTime<Utc>| format!("{} ({})", human(x), age(x, now));
    let s = |x: &str| terminal(x, true);
    let mut out = String::new();
    let _ = writeln!(out, "Deploy status, generated {}\n", t(now));

    // The summary table: one row per component.
    let mut rows = vec![[
        "COMPONENT".to_string(),
        "LAST".to_string(),
        "RUNNING".to_string(),
        "STATUS".to_string(),
        "HEALTH".to_string(),
        "SYNC".to_string(),
    ]];
    for (name, c) in &doc.components {
        let version = |v: Option<(&str, &str)>| {
            v.map_or("-".to_string(), |(version, branch)| {
                format!("{} ({})", s(version), s(branch))
            })
        };
        let sync = match c.sync.minutes {
            Some(m) if c.sync.state != SyncState::InSync => {
                format!("{} {m} min", c.sync.state.words())
            }
            _ => c.sync.state.words().to_string(),
        };
        rows.push([
            s(name),
            version(
                c.last
                    .as_ref()
                    .map(|l| (l.info.version.as_str(), l.info.branch.as_str())),
            ),
            version(
                c.running
                    .as_ref()
                    .map(|r| (r.info.version.as_str(), r.info.branch.as_str())),
            ),
            format!("{} :{}", c.status.word(), c.port),
            match (&c.health, c.status) {
                (Some(h), _) if h == "healthy" => "healthy".into(),
                (Some(_), _) => "NOT healthy".into(),
                (None, UpDown::Down) if c.health_url.is_some() => "not checked".into(),
                (None, _) => "-".into(),
            },
            sync,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }

    // The details, per component.
    for (name, c) in &doc.components {
        let _ = writeln!(out, "\n{} (port {})", s(name), c.port);
        if let Some(bg) = &c.blue_green {
            let _ = writeln!(out, "  Slots    {}", s(&bg.words()));
        }
        match &c.last {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  Last     {} {} from {}, built {}, collected {}\n           {}",
                    s(&l.info.kind),
                    s(&l.info.version),
                    s(&l.info.branch),
                    t(l.info.build_time),
                    t(l.collected_at),
                    s(&l.info.artifact)
                );
            }
            None => out.push_str("  Last     none collected yet\n"),
        }
        match &c.running {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  Running  {} {} from {}, built {}, since {}\n           {}",
                    s(&r.info.kind),
                    s(&r.info.version),
                    s(&r.info.branch),
                    t(r.info.build_time),
                    t(r.since),
                    s(&r.info.artifact)
                );
            }
            None => out.push_str("  Running  nothing deployed yet\n"),
        }
        let _ = writeln!(
            out,
            "  Status   {}, checked {}",
            c.status.word(),
            t(c.checked_at)
        );
        if let Some(h) = &c.health {
            let _ = writeln!(out, "  Health   {}", s(h));
        }
        let _ = write!(out, "  Sync     {}", c.sync.state.words());
        if let Some(since) = c.sync.since {
            let _ = write!(out, " since {}", t(since));
        }
        if let Some(r) = &c.sync.reason {
            let _ = write!(out, "; {}", s(r));
        }
        out.push('\n');
        if let Some(r) = &c.rolled_back {
            let _ = writeln!(
                out,
                "  Rollback by hand: {} rolled {} back from {} {}; running again: {}",
                r.by.as_deref()
                    .map_or("someone (not recorded)".to_string(), s),
                if r.components.is_empty() {
                    "it".to_string()
                } else {
                    s(&r.components.join(", "))
                },
                s(&r.artifact),
                t(r.at),
                r.to.iter()
                    .map(|(comp, rel)| format!("{}: {}", s(comp), s(rel)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for f in &c.failures {
            let _ = writeln!(
                out,
                "  Failure  {}: the {} failed at step {}{} {}: {}",
                s(&f.artifact),
                s(name),
                s(&f.step),
                f.exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default(),
                t(f.at),
                s(&f.reason)
            );
            for (comp, a) in &f.running_instead {
                let _ = writeln!(out, "           running instead: {}: {}", s(comp), s(a));
            }
            for line in &f.output_tail {
                let _ = writeln!(out, "           | {}", s(line));
            }
        }
    }

    out.push_str(&super::control::text(doc));
    let _ = writeln!(
        out,
        "\nCollector last run: {}",
        doc.collector.last_run.map_or("never".into(), t)
    );
    let _ = writeln!(
        out,
        "Switcher last run:  {}",
        doc.switcher.last_run.map_or("never".into(), t)
    );
    for w in &doc.waiting {
        let _ = writeln!(
            out,
            "Waiting: {} ({} B, since {}){}: {}",
            s(&w.name),
            w.size,
            t(w.modified),
            if w.stale { " TOO LONG" } else { "" },
            s(&w.reason)
        );
    }
    for q in &doc.quarantined {
        let _ = writeln!(
            out,
            "Quarantined: {}: {}",
            s(&q.name),
            s(q.reason.as_deref().unwrap_or("no reason file"))
        );
    }
    if !doc.history.is_empty() {
        out.push_str("\nRecent passes (newest first):\n");
        for e in &doc.history {
            let _ = writeln!(
                out,
                "  {}  {} {} -> {} in {} ms{}",
                human(e.at),
                s(&e.action),
                s(e.artifact.as_deref().unwrap_or("-")),
                s(&e.outcome),
                e.total_ms,
                e.reason
                    .as_ref()
                    .map(|r| format!(": {}", s(r)))
                    .unwrap_or_default()
            );
        }
    }

    let problems = doc.all_problems();
    if problems.is_empty() {
        out.push_str("\nAll good: every rule passes.\n");
    } else {
        let _ = writeln!(out, "\n{}:", super::rules::count(problems.len(), "problem"));
        for (component, p) in problems {
            let who = component.map(|c| format!("{}: ", s(c))).unwrap_or_default();
            let _ = writeln!(out, "  - {who}{} [{}]", s(&p.message), p.rule);
        }
    }
    out
}
