//! Idle passes: what cron pays every minute when nothing is new.
//!
//! The root is in its usual resting state: one release deployed and
//! running (components without commands, so nothing is probed for long),
//! its artifact in staging, an empty drop folder. The references are the
//! shell pipelines an ops person's two cron scripts would run for the same
//! "is there anything new?" question.

use std::time::Duration;

use cutover_tests::ArchiveBuilder;

use crate::data::{free_port, Root};
use crate::measure::{fmt_dur, fmt_kib, median, median_u64, repeat, Cmd};
use crate::{Ctx, Row};

/// The old "receive" script: check every marker, move what checks out.
pub const REF_COLLECT: &str = r#"cd "$DROP" && find . -maxdepth 1 -name '*.sha256' -print0 | xargs -0 -r sha256sum --check 2>/dev/null | sed -n 's/: OK$//p' | while IFS= read -r a; do printf '%s\0%s.sha256\0' "$a" "$a"; done | xargs -0 -r mv -t "$STAGING""#;

/// The old "switch" script's first step: is the newest staged marker the
/// one deployed?
pub const REF_SWITCH: &str = r#"newest=$(ls -1t "$STAGING" | grep '\.sha256$' | head -n 1); [ "$newest" = "$(cat "$DEPLOYED" 2>/dev/null)" ] || echo "new: $newest""#;

const GROUP: &str = "Idle passes";
const TARGET_MS: f64 = 5.0;
const TARGET_KIB: u64 = 8 * 1024;

/// Measures the idle rows.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let dir = ctx.fresh("idle")?;
    let root = Root::new(&dir, free_port()?, free_port()?, "")?;
    let art = ArchiveBuilder::demo("full", "1.0.0").minute(1);
    std::fs::create_dir_all(root.path("staging"))?;
    art.drop_into(&root.path("staging"));
    let collector = Cmd::new(ctx.bin("collector"), &[]).env("CUTOVER_CONFIG", &root.config);
    let switcher = Cmd::new(ctx.bin("switcher"), &[]).env("CUTOVER_CONFIG", &root.config);
    // Deploy once, so that the idle passes see a running release.
    switcher.time()?;
    collector.time()?;
    let deployed = dir.join("deployed");
    std::fs::write(&deployed, art.name().marker_name())?;

    let ref_collect = Cmd::sh(REF_COLLECT)
        .env("DROP", root.path("drop"))
        .env("STAGING", root.path("staging"));
    let ref_switch = Cmd::sh(REF_SWITCH)
        .env("STAGING", root.path("staging"))
        .env("DEPLOYED", &deployed)
        .any_exit();
    let truth = Cmd::new("/bin/true", &[]);

    let (warmup, runs, rss_runs) = ctx.mode.pick((5, 51, 9), (3, 21, 5), (1, 3, 1));
    let floor = median(&repeat(warmup, runs, || truth.time())?);
    for (name, ours, reference) in [
        ("collector", &collector, &ref_collect),
        ("switcher", &switcher, &ref_switch),
    ] {
        // Interleaved, so that a slow moment of the machine hits both.
        let mut ours_t = Vec::new();
        let mut ref_t = Vec::new();
        for _ in 0..warmup {
            ours.time()?;
            reference.time()?;
        }
        for _ in 0..runs {
            ours_t.push(ours.time()?);
            ref_t.push(reference.time()?);
        }
        let (o, r) = (median(&ours_t), median(&ref_t));
        ctx.row(Row {
            what: format!("{name} idle pass: wall"),
            ours: fmt_dur(o),
            reference: fmt_dur(r),
            ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
            target: format!("< {TARGET_MS} ms"),
            met: Some(o < Duration::from_secs_f64(TARGET_MS / 1000.0)),
        });
        let mut ours_m = Vec::new();
        let mut ref_m = Vec::new();
        for _ in 0..rss_runs {
            ours_m.push(ours.time_rss(&dir)?.1);
            ref_m.push(reference.time_rss(&dir)?.1);
        }
        let (o, r) = (median_u64(&ours_m), median_u64(&ref_m));
        ctx.row(Row {
            what: format!("{name} idle pass: peak RSS"),
            ours: fmt_kib(o),
            reference: fmt_kib(r),
            ratio: Some(o as f64 / r as f64),
            target: "< 8 MiB".into(),
            met: Some(o < TARGET_KIB),
        });
        let sorted = {
            let mut v = ours_t.clone();
            v.sort();
            v
        };
        ctx.note(
            GROUP,
            format!(
                "{name}: {runs} runs after {warmup} warm-up runs, interleaved with the reference; \
                 ours min {} / median {} / max {}",
                fmt_dur(sorted[0]),
                fmt_dur(median(&sorted)),
                fmt_dur(sorted[sorted.len() - 1])
            ),
        );
    }
    ctx.note(
        GROUP,
        "The root rests as it does between deliveries: one `full` release deployed (components \
         without stop/start, so no probe waits), its artifact in staging/, an empty drop/. \
         Wall time is spawn to reaped, measured by the bench process (like `hyperfine -N`).",
    );
    ctx.note(
        GROUP,
        format!(
            "Reference for the collector, the seed's \"receive\" cron script reduced to one \
             pipeline: `{REF_COLLECT}`"
        ),
    );
    ctx.note(
        GROUP,
        format!(
            "Reference for the switcher, the seed's \"switch\" cron script's check for something \
             new: `{REF_SWITCH}`"
        ),
    );
    // What one durable write costs here: the idle passes and the switch
    // are mostly made of these.
    let probe = root.path("state").join("bench-probe.json");
    let payload = vec![b'x'; 1024];
    let atomic = median(&repeat(3, runs, || {
        let t = std::time::Instant::now();
        deploy_root::atomic::write(&probe, &payload)?;
        Ok(t.elapsed())
    })?);
    ctx.note(
        GROUP,
        format!(
            "Floors on this machine (medians): spawning `/bin/true` {}; one \
             `deploy_root::atomic::write` of 1 KiB (temp file, fsync, rename, fsync of the folder) \
             {}. An idle collector pass makes one such write (collector.json); an idle switcher \
             pass one too (switcher.json), plus three renames without fsync \
             (`deploy_root::atomic::write_unsynced`: deploy-status.json, cutover.prom, \
             deploy-status.html).",
            fmt_dur(floor),
            fmt_dur(atomic)
        ),
    );
    crate::remove(&dir)
}
