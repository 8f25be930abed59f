//! The collector over a crowded drop folder, at 1,000, 10,000 and 100,000
//! files, in two situations:
//!
//! - first pass: a fresh tree each repetition (complete artifacts get moved
//!   and junk quarantined, so a tree serves once), with the mix described
//!   in [`crate::data::make_drop`];
//! - steady state: what stays after a pass (uploads still arriving, junk
//!   without a marker), passed over again and again: the cost cron pays
//!   every minute while a folder stays crowded.
//!
//! The reference is the seed's receive script ([`crate::idle::REF_COLLECT`])
//! on an identical tree.

use std::time::Duration;

use crate::data::{free_port, make_drop, Root};
use crate::idle::REF_COLLECT;
use crate::measure::{fmt_dur, median, sync, Cmd};
use crate::{Ctx, Row};

const GROUP: &str = "Collector over a crowded drop folder";
/// The steady state's target at [`TARGET_AT`] files.
const TARGET: Duration = Duration::from_millis(50);
/// The first pass's target at [`TARGET_AT`] files: at most this many times
/// the seed's script (which moves files and does nothing else).
const FIRST_PASS_RATIO: f64 = 3.0;
const TARGET_AT: usize = 10_000;

/// Measures the drop-folder rows.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let sizes: Vec<(usize, usize, usize)> = ctx.mode.pick(
        // (files, first-pass repetitions, steady repetitions)
        vec![(1_000, 5, 11), (10_000, 3, 7), (100_000, 1, 3)],
        vec![(1_000, 3, 5), (10_000, 1, 3)],
        vec![(100, 1, 1), (1_000, 1, 1)],
    );
    let mut per_file: Vec<(&str, usize, f64, f64)> = Vec::new();
    for &(n, first_reps, steady_reps) in &sizes {
        // First pass: a fresh tree per run, ours and the reference alternately.
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut mix = Default::default();
        for rep in 0..first_reps {
            let (o, m) = first_pass(ctx, n, rep, false)?;
            mix = m;
            ours.push(o);
            theirs.push(first_pass(ctx, n, rep, true)?.0);
        }
        let (o, r) = (median(&ours), median(&theirs));
        ctx.row(first_row(n, "first pass", o, r));
        per_file.push(("first pass", n, per_us(o, n), per_us(r, n)));
        ctx.note(
            GROUP,
            format!(
                "first pass at {n} files: {} incomplete uploads, {} complete artifacts (+ markers), \
                 {} junk files without a marker, {} junk files with a marker; median of {first_reps}",
                mix.incomplete, mix.complete, mix.junk, mix.junk_marked
            ),
        );

        // Steady state: one tree, passed over repeatedly.
        let dir = ctx.fresh(&format!("steady-{n}"))?;
        let root = Root::new(&dir, free_port()?, free_port()?, "")?;
        let mix = make_drop(&root.path("drop"), n, false)?;
        let collector = Cmd::new(ctx.bin("collector"), &[]).env("CUTOVER_CONFIG", &root.config);
        let reference = Cmd::sh(REF_COLLECT)
            .env("DROP", root.path("drop"))
            .env("STAGING", root.path("staging"));
        // The first pass records what waits; the ones after are steady.
        collector.time()?;
        sync();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..steady_reps {
            ours.push(collector.time()?);
            theirs.push(reference.time()?);
        }
        let (o, r) = (median(&ours), median(&theirs));
        ctx.row(first_row(n, "steady state", o, r));
        per_file.push(("steady state", n, per_us(o, n), per_us(r, n)));
        ctx.note(
            GROUP,
            format!(
                "steady state at {n} files: {} incomplete uploads and {} junk files, all reported \
                 waiting (none stale); median of {steady_reps} passes after one unmeasured pass",
                mix.incomplete, mix.junk
            ),
        );
        crate::remove(&dir)?;
    }
    for what in ["first pass", "steady state"] {
        let pts: Vec<&(&str, usize, f64, f64)> = per_file.iter().filter(|p| p.0 == what).collect();
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            continue;
        };
        let show = |f: fn(&(&str, usize, f64, f64)) -> f64| {
            pts.iter()
                .map(|p| format!("{:.1}", f(p)))
                .collect::<Vec<_>>()
                .join(" → ")
        };
        let sizes: Vec<String> = pts.iter().map(|p| p.1.to_string()).collect();
        let growth = last.2 / first.2;
        ctx.row(Row {
            what: format!(
                "collector {what}: µs per file at {} files",
                sizes.join(" / ")
            ),
            ours: show(|p| p.2),
            reference: show(|p| p.3),
            ratio: None,
            target: "linear: per-file time at the largest ≤ 2× at the smallest".into(),
            met: Some(growth <= 2.0),
        });
    }
    ctx.note(
        GROUP,
        "Each tree is written and `sync`ed before the timed pass; the collector runs as cron runs \
         it (the release binary, a fresh process, CUTOVER_CONFIG set). Junk files are named \
         outside the contract (`build-N-M.zip`, `release N M final.tgz`); artifacts are 400-byte \
         files under valid `full_…_1.0.N_master.tar.gz` names. The config keeps the defaults \
         (staging_keep 20, quarantine_keep 50, stale_upload_after 30 min).",
    );
    ctx.note(
        GROUP,
        "The reference script checks every marker with one `sha256sum --check` and moves what \
         checks out with one `mv`: no quarantine, no fsync, no record of what waits, no pruning. \
         It does less than the collector; it is what the collector replaces.",
    );
    Ok(())
}

/// One first pass over a fresh tree of `n` files: its wall time.
fn first_pass(
    ctx: &Ctx,
    n: usize,
    rep: usize,
    reference: bool,
) -> anyhow::Result<(Duration, crate::data::DropMix)> {
    let dir = ctx.fresh(&format!("first-{n}-{rep}-{}", u8::from(reference)))?;
    let root = Root::new(&dir, free_port()?, free_port()?, "")?;
    let mix = make_drop(&root.path("drop"), n, true)?;
    std::fs::create_dir_all(root.path("staging"))?;
    sync();
    let cmd = if reference {
        // sha256sum exits 1 for the junk markers that do not match.
        Cmd::sh(REF_COLLECT)
            .env("DROP", root.path("drop"))
            .env("STAGING", root.path("staging"))
            .any_exit()
    } else {
        Cmd::new(ctx.bin("collector"), &[]).env("CUTOVER_CONFIG", &root.config)
    };
    let took = cmd.time()?;
    crate::remove(&dir)?;
    Ok((took, mix))
}

fn per_us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn first_row(n: usize, what: &str, o: Duration, r: Duration) -> Row {
    let at_target = n == TARGET_AT;
    Row {
        what: format!("collector {what}, {n} files: wall"),
        ours: format!("{} ({:.1} µs/file)", fmt_dur(o), per_us(o, n)),
        reference: fmt_dur(r),
        ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
        target: match (at_target, what == "first pass") {
            (false, _) => "–".into(),
            (true, true) => format!("ratio ≤ {FIRST_PASS_RATIO}"),
            (true, false) => format!("< {} ms", TARGET.as_millis()),
        },
        met: at_target.then_some(if what == "first pass" {
            o.as_secs_f64() <= FIRST_PASS_RATIO * r.as_secs_f64()
        } else {
            o < TARGET
        }),
    }
}
