//! The table (Markdown, also printed) and BENCHMARKS.md around it.
//!
//! A group with a [`Section`] of its own is written between two HTML
//! comments naming it, before "Missed targets"; [`update`] replaces just
//! that part (and the analysis copied at the end) in an existing file, and
//! [`carry_over`] keeps the sections of groups that did not run when the
//! rest is written afresh.

use std::time::Duration;

use crate::machine::Machine;
use crate::{Ctx, Mode, Row, Section};

/// The hand-written analysis of missed targets, kept beside the code so that
/// a rerun does not lose it (it is reviewed when the figures change).
const ANALYSIS: &str = include_str!("../analysis.md");

/// The table as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| what | ours | reference | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let ratio = r
            .ratio
            .map_or_else(|| "–".to_string(), |x| format!("{x:.2}"));
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**NO**",
            None => "–",
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what, r.ours, r.reference, ratio, r.target, met
        ));
    }
    t
}

/// The whole BENCHMARKS.md.
pub fn markdown(
    m: &Machine,
    ctx: &Ctx,
    table: &str,
    command: &str,
    took: Duration,
    load_after: &str,
) -> String {
    let mut s = String::new();
    s.push_str("# Benchmarks\n\n");
    s.push_str(
        "Written by `cutover-bench` (crates/bench); do not edit the figures by hand, rerun:\n\n",
    );
    s.push_str(&format!("```sh\n{command}\n```\n\n"));
    s.push_str(&format!(
        "`benches/run` builds the release binaries with the store (`cargo build --release \
         --workspace --features collector/s3,switcher/s3,deliver/s3`, the .deb's features) and \
         runs `target/release/cutover-bench`; `--quick` uses smaller sizes. This run took {:.0} s \
         ({:?} mode).\n\n",
        took.as_secs_f64(),
        ctx.mode
    ));
    s.push_str("## Machine\n\n");
    s.push_str(&format!(
        "| | |\n| --- | --- |\n| date | {} |\n| CPU | {} |\n| cores | {} |\n| RAM | {} |\n\
         | disk | {} |\n| kernel | {} |\n| rustc | {} |\n| reference tools | {} |\n\
         | load average (1/5/15 min) at start, at end | {}; {} |\n\n",
        m.date, m.cpu, m.cores, m.ram, m.disk, m.kernel, m.rustc, m.tools, m.load, load_after
    ));
    s.push_str(
        "The machine is shared: other work (builds, test suites) may run at the same time, \
         which the load average shows. Ours and the reference run alternately, so a busy \
         moment hits both; the ratios are steadier than the absolute figures.\n\n",
    );
    s.push_str("## Results\n\n");
    s.push_str(
        "Times are medians of the repetitions noted below; \"ratio\" is ours divided by the \
         reference (below 1.0: we are faster or smaller). Peak RSS is `/usr/bin/time -f %M` \
         (for a shell script: its largest process).\n\n",
    );
    s.push_str(table);
    s.push_str("\n## What each row measures\n\n");
    for (group, lines) in &ctx.notes {
        s.push_str(&format!("### {group}\n\n"));
        for l in lines {
            s.push_str(&format!("- {l}\n"));
        }
        s.push('\n');
    }
    for sec in &ctx.sections {
        s.push_str(&section(sec, ctx.mode));
    }
    let missed: Vec<&Row> = ctx.rows.iter().filter(|r| r.met == Some(false)).collect();
    s.push_str(MISSED_HEADING);
    if missed.is_empty() {
        s.push_str("None in this run.\n\n");
    } else {
        for r in &missed {
            s.push_str(&format!(
                "- {}: {} against a target of {}\n",
                r.what, r.ours, r.target
            ));
        }
        s.push('\n');
    }
    s.push_str(ANALYSIS);
    s
}

/// The heading sections are placed before.
const MISSED_HEADING: &str = "## Missed targets\n\n";

/// What every begin marker starts with.
const BEGIN: &str = "<!-- cutover-bench section ";

fn begin_marker(id: &str) -> String {
    format!("{BEGIN}{id}: written by `benches/run --only {id}` or a whole run -->\n")
}

fn end_marker(id: &str) -> String {
    format!("<!-- end of cutover-bench section {id} -->\n")
}

/// A section, markers included, ending with a blank line.
pub fn section(sec: &Section, mode: Mode) -> String {
    let mut s = begin_marker(&sec.id);
    s.push_str(&format!("## {}\n\n", sec.title));
    if !sec.about.is_empty() {
        s.push_str(&sec.about);
        s.push_str("\n\n");
    }
    let quick = if mode == Mode::Quick { " --quick" } else { "" };
    s.push_str(&format!(
        "Measured {} ({:?} mode, {:.0} s; load average (1/5/15 min) at start, at end: {}; {}). \
         The machine is the one described above when this section ran with the rest; this \
         section alone is rerun with the command below, which keeps the rest of this file:\n\n\
         ```sh\nbenches/run{quick} --only {}\n```\n\n",
        sec.started.0,
        mode,
        sec.ended.0.as_secs_f64(),
        sec.started.1,
        sec.ended.1,
        sec.id
    ));
    s.push_str(&table(&sec.rows));
    s.push_str(&format!("\n### What each row measures ({})\n\n", sec.id));
    for l in &sec.notes {
        s.push_str(&format!("- {l}\n"));
    }
    s.push_str(&format!("\n### Missed targets ({})\n\n", sec.id));
    let missed: Vec<&Row> = sec.rows.iter().filter(|r| r.met == Some(false)).collect();
    if missed.is_empty() {
        s.push_str("None in this run.\n");
    } else {
        for r in &missed {
            s.push_str(&format!(
                "- {}: {} against a target of {}\n",
                r.what, r.ours, r.target
            ));
        }
        s.push_str("\nWhy, and what would reach them: the analysis at the end of this file.\n");
    }
    s.push('\n');
    s.push_str(&end_marker(&sec.id));
    s.push('\n');
    s
}

/// Where section `id` is in `doc`: from its begin marker to the end of its
/// end marker's line and the blank line after it.
fn find_section(doc: &str, id: &str) -> Option<std::ops::Range<usize>> {
    let begin = doc.find(&begin_marker(id))?;
    let end_marker = end_marker(id);
    let mut end = begin + doc[begin..].find(&end_marker)? + end_marker.len();
    if doc[end..].starts_with('\n') {
        end += 1;
    }
    Some(begin..end)
}

/// The ids of the sections in `doc`, in order.
fn section_ids(doc: &str) -> Vec<String> {
    doc.match_indices(BEGIN)
        .filter_map(|(at, _)| {
            let rest = &doc[at + BEGIN.len()..];
            rest.split(':').next().map(str::to_string)
        })
        .collect()
}

/// Puts `text` (a rendered section) in place of section `id` of `doc`, or
/// before "Missed targets" (else at the end) when it has none.
fn put_section(doc: &mut String, id: &str, text: &str) {
    if let Some(range) = find_section(doc, id) {
        doc.replace_range(range, text);
    } else if let Some(at) = doc.find(&format!("\n{MISSED_HEADING}")) {
        doc.insert_str(at + 1, text);
    } else {
        if !doc.ends_with("\n\n") {
            doc.push('\n');
        }
        doc.push_str(text);
    }
}

/// An existing BENCHMARKS.md with the sections of `fresh` (id, rendered)
/// replaced or added, and the analysis at its end replaced by the current
/// one; every other byte is kept.
pub fn update(existing: &str, fresh: &[(String, String)]) -> String {
    let mut doc = existing.to_string();
    for (id, text) in fresh {
        put_section(&mut doc, id, text);
    }
    let heading = ANALYSIS.lines().next().unwrap_or_default();
    match doc.find(&format!("\n{heading}\n")) {
        Some(at) => doc.replace_range(at + 1.., ANALYSIS),
        None => {
            if !doc.ends_with("\n\n") {
                doc.push('\n');
            }
            doc.push_str(ANALYSIS);
        }
    }
    doc
}

/// A freshly written BENCHMARKS.md (`fresh`) with the sections of
/// `existing` that it lacks (groups that did not run) added.
pub fn carry_over(fresh: &str, existing: &str) -> String {
    let mut doc = fresh.to_string();
    for id in section_ids(existing) {
        if find_section(&doc, &id).is_some() {
            continue;
        }
        if let Some(range) = find_section(existing, &id) {
            put_section(&mut doc, &id, &existing[range]);
        }
    }
    doc
}
