//! The table (Markdown, also printed) and BENCHMARKS.md around it.

use std::time::Duration;

use crate::machine::Machine;
use crate::{Ctx, Row};

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
        "`benches/run` builds the release binaries (`cargo build --release --workspace`) and runs \
         `target/release/cutover-bench`; `--quick` uses smaller sizes. This run took {:.0} s \
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
    let missed: Vec<&Row> = ctx.rows.iter().filter(|r| r.met == Some(false)).collect();
    s.push_str("## Missed targets\n\n");
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
