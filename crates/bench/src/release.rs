//! Big releases: unpacking (the switcher's own safe reader, in process, and
//! a whole switcher pass) against GNU tar, the digest against `sha256sum`,
//! and peak memory at two sizes (it must not grow with the artifact).
//!
//! Every unpack goes into a fresh folder on the same disk as the archive,
//! after `sync`, so that one run's writeback does not slow the next; the
//! archive itself stays in the page cache (the switcher always unpacks
//! right after hashing the same file, so a cold read is not the real case).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use artifact_name::Ext;
use switcher::unpack::{unpack, Limits};

use crate::data::{free_port, make_release, marker_text, Release, Root};
use crate::measure::{fmt_dur, fmt_kib, fmt_rate, median, median_u64, sync, Cmd};
use crate::{Ctx, Row};

const GROUP: &str = "Releases: unpack, digest, memory";
const RSS_TARGET_KIB: u64 = 32 * 1024;
/// How much more memory the big artifact may take than the small one and
/// still count as constant (allocator noise, a deeper folder tree).
const RSS_FLAT_KIB: u64 = 2 * 1024;

/// The old switch script's prepare step: check, then unpack with GNU tar.
const REF_PASS: &str = r#"cd "$STAGING" && sha256sum --check --status "$MARKER" && mkdir -p "$REL" && tar "$TARFLAG" -xf "$ARTIFACT" -C "$REL""#;

/// The same, made durable as the switcher makes a release (`sync -f`, the
/// syncfs(2) of the filesystem): the like-for-like comparison.
const REF_PASS_DURABLE: &str = r#"cd "$STAGING" && sha256sum --check --status "$MARKER" && mkdir -p "$REL" && tar "$TARFLAG" -xf "$ARTIFACT" -C "$REL" && sync -f "$REL""#;

/// Measures the release rows.
pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mib = 1024 * 1024;
    let (big, small) = ctx.mode.pick(
        (1024 * mib, 100 * mib),
        (100 * mib, 10 * mib),
        (8 * mib, 2 * mib),
    );
    // Writing a 1 GiB tree takes tens of seconds on the reference machine
    // (see the notes), so the big passes run fewer times to keep the whole
    // run near 15 minutes.
    let (unpack_reps, pass_reps, big_pass_reps, digest_reps) =
        ctx.mode.pick((2, 3, 1, 5), (2, 2, 1, 3), (1, 1, 1, 1));
    let data = ctx.fresh("releases")?;
    let t = Instant::now();
    let big_rel = make_release(&data, &format!("1.0.{}", big / mib), big)?;
    let small_rel = make_release(&data, &format!("1.0.{}", small / mib), small)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    ctx.note(
        GROUP,
        format!(
            "The release ({} generated in {:.0} s): {} regular files, {} bytes of files: three \
             large files (75 %: half random 64 KiB blocks, half source-like text) and small \
             source-like files of 256 B to 16 KiB in folders of 100-150. As .tar {}, .tar.gz {} \
             (gzip level 6, as `artifact-name deliver`), .tar.zst {} (level 3). The small release \
             has the same shape: {} files, {} bytes.",
            label(big),
            t.elapsed().as_secs_f64(),
            big_rel.files,
            big_rel.file_bytes,
            human(size(&big_rel.tar.1)),
            human(size(&big_rel.gz.1)),
            human(size(&big_rel.zst.1)),
            small_rel.files,
            small_rel.file_bytes,
        ),
    );

    // In-process unpack against GNU tar.
    for ext in [Ext::TarGz, Ext::TarZst] {
        let art = big_rel.of(ext);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..unpack_reps {
            ours.push(unpack_in_process(ctx, &art.1, ext)?);
            let dest = ctx.fresh("unpack-tar")?;
            sync();
            theirs.push(Cmd::new("tar", &[&tar_flag(ext), &"-xf", &art.1, &"-C", &dest]).time()?);
            crate::remove(&dest)?;
        }
        let (o, r) = (median(&ours), median(&theirs));
        ctx.row(Row {
            what: format!(
                "unpack {} .{} (switcher::unpack, in process)",
                label(big),
                ext.as_str()
            ),
            ours: format!("{} ({})", fmt_dur(o), fmt_rate(big_rel.file_bytes, o)),
            reference: format!("{} (`tar {} -xf`)", fmt_dur(r), tar_flag(ext)),
            ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
            target: "ratio ≤ 1.0".into(),
            met: Some(o <= r),
        });
    }

    // Whole switcher passes (digest, unpack, rename, flip, no-op start) and
    // their memory, at both sizes.
    let mut pass_rss: Vec<(Ext, u64, u64, u64, u64)> = Vec::new();
    for ext in [Ext::TarGz, Ext::TarZst] {
        let mut by_size = Vec::new();
        for (rel, reps) in [(&small_rel, pass_reps), (&big_rel, big_pass_reps)] {
            let is_big = std::ptr::eq(rel, &big_rel);
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            let mut durable = Vec::new();
            for rep in 0..reps {
                ours.push(switcher_pass(ctx, rel, ext, rep)?);
                theirs.push(reference_pass(ctx, rel, ext, rep, REF_PASS)?);
                if is_big {
                    durable.push(reference_pass(ctx, rel, ext, rep, REF_PASS_DURABLE)?.0);
                }
            }
            let o = median(&ours.iter().map(|x| x.0).collect::<Vec<_>>());
            let r = median(&theirs.iter().map(|x| x.0).collect::<Vec<_>>());
            let om = median_u64(&ours.iter().map(|x| x.1).collect::<Vec<_>>());
            let rm = median_u64(&theirs.iter().map(|x| x.1).collect::<Vec<_>>());
            if is_big {
                let d = median(&durable);
                ctx.row(Row {
                    what: format!(
                        "whole switcher pass, {} .{}, like for like: both made durable",
                        label(big),
                        ext.as_str()
                    ),
                    ours: fmt_dur(o),
                    reference: format!("{} (`sha256sum --check && tar -x && sync -f`)", fmt_dur(d)),
                    ratio: Some(o.as_secs_f64() / d.as_secs_f64()),
                    target: "ratio ≤ 0.8".into(),
                    met: Some(o.as_secs_f64() <= 0.8 * d.as_secs_f64()),
                });
                ctx.row(Row {
                    what: format!(
                        "whole switcher pass, {} .{}: one read (digest while unpacking) + syncfs + switch (no-op start)",
                        label(big),
                        ext.as_str()
                    ),
                    ours: fmt_dur(o),
                    reference: format!("{} (`sha256sum --check && tar -x`)", fmt_dur(r)),
                    ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
                    target: "ratio ≤ 0.8".into(),
                    met: Some(o.as_secs_f64() <= 0.8 * r.as_secs_f64()),
                });
            }
            by_size.push((om, rm));
        }
        if let [(s_o, s_r), (b_o, b_r)] = by_size[..] {
            pass_rss.push((ext, s_o, s_r, b_o, b_r));
        }
    }

    durability_rows(ctx, &big_rel, big)?;

    // Digest of the big .tar against sha256sum, both from the page cache.
    let tar = &big_rel.tar.1;
    let len = size(tar);
    let hash = || -> anyhow::Result<Duration> {
        let t = Instant::now();
        let d = deploy_root::digest::sha256_reader(File::open(tar)?)?;
        let took = t.elapsed();
        anyhow::ensure!(
            d == big_rel.tar.2,
            "the digest differs from the one written"
        );
        Ok(took)
    };
    let sum = Cmd::new("sha256sum", &[tar]);
    hash()?;
    sum.time()?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..digest_reps {
        ours.push(hash()?);
        theirs.push(sum.time()?);
    }
    let (o, r) = (median(&ours), median(&theirs));
    ctx.row(Row {
        what: format!(
            "SHA-256 of a {} artifact (deploy_root::digest::sha256_reader)",
            human(len)
        ),
        ours: format!("{} ({})", fmt_dur(o), fmt_rate(len, o)),
        reference: format!("{} (`sha256sum`, {})", fmt_dur(r), fmt_rate(len, r)),
        ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
        target: "ratio ≤ 1.0".into(),
        met: Some(o <= r),
    });

    // The collector taking each artifact (the .tar: size is what matters).
    let mut coll = Vec::new();
    for rel in [&small_rel, &big_rel] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let reps = if std::ptr::eq(rel, &big_rel) {
            big_pass_reps
        } else {
            pass_reps
        };
        for rep in 0..reps {
            let dir = ctx.fresh(&format!("collect-{rep}"))?;
            let root = Root::new(&dir, free_port()?, free_port()?, "")?;
            // A copy, not a link: the collector refuses files with two links.
            let drop = root.path("drop");
            std::fs::copy(&rel.tar.1, drop.join(rel.tar.0.file_name()))?;
            std::fs::write(
                drop.join(rel.tar.0.marker_name()),
                marker_text(&rel.tar.2, rel.tar.0.file_name()),
            )?;
            sync();
            let cmd = Cmd::new(ctx.bin("collector"), &[]).env("CUTOVER_CONFIG", &root.config);
            ours.push(cmd.time_rss(&dir)?.1);
            anyhow::ensure!(
                root.path("staging").join(rel.tar.0.file_name()).is_file(),
                "the collector did not stage {}",
                rel.tar.0.file_name()
            );
            theirs.push(Cmd::new("sha256sum", &[&rel.tar.1]).time_rss(&dir)?.1);
            crate::remove(&dir)?;
        }
        coll.push((median_u64(&ours), median_u64(&theirs)));
    }
    if let [(s_o, s_r), (b_o, b_r)] = coll[..] {
        rss_rows(
            ctx,
            "collector taking",
            "tar",
            small,
            big,
            (s_o, s_r, b_o, b_r),
            "`sha256sum`",
        );
    }
    for (ext, s_o, s_r, b_o, b_r) in pass_rss {
        rss_rows(
            ctx,
            "switcher pass (digest + unpack)",
            ext.as_str(),
            small,
            big,
            (s_o, s_r, b_o, b_r),
            &format!("`sha256sum` then `tar {} -xf`", tar_flag(ext)),
        );
    }

    ctx.note(
        GROUP,
        format!(
            "In-process unpack: `switcher::unpack::unpack(BufReader::new(File), ext, dest, limits)` \
             exactly as the switcher calls it, into a fresh folder; reference `tar {{-z|--zstd}} -xf \
             ARCHIVE -C DEST` (GNU tar runs gzip or zstd as a second process, so it uses both \
             cores). Median of {unpack_reps}, alternating, `sync` before each, the tree removed \
             after each (not timed)."
        ),
    );
    ctx.note(
        GROUP,
        format!(
            "Whole switcher pass: the release binary on a fresh root with the artifact and marker \
             staged (hard link), backend `start = \"true\"` and a port the bench holds open, so \
             verify passes at once; it hashes, unpacks, renames into place, flips current/ and \
             writes state and the status page. Reference: `{REF_PASS}`. Median of {pass_reps} \
             at {} and {big_pass_reps} at {}, alternating with the reference; peak RSS from the \
             same runs.",
            label(small),
            label(big)
        ),
    );
    ctx.note(
        GROUP,
        format!(
            "Digest: the {} .tar read from the page cache (one unmeasured read first) by \
             `sha256_reader(File::open(..))` in process and by `sha256sum FILE`; median of \
             {digest_reps}.",
            human(len)
        ),
    );
    ctx.note(
        GROUP,
        format!(
            "Memory: `/usr/bin/time -f %M` of the collector staging the .tar from drop/ (a copy, \
             same filesystem: hash then rename) and of the whole switcher passes above, at {} and \
             {} ({pass_reps} and {big_pass_reps} runs). \"Constant\" allows {} of growth.",
            label(small),
            label(big),
            fmt_kib(RSS_FLAT_KIB)
        ),
    );
    crate::remove(&data)
}

#[allow(clippy::too_many_arguments)]
fn rss_rows(
    ctx: &mut Ctx,
    what: &str,
    ext: &str,
    small: u64,
    big: u64,
    (s_o, s_r, b_o, b_r): (u64, u64, u64, u64),
    reference: &str,
) {
    ctx.row(Row {
        what: format!("{what} a {} .{ext}: peak RSS", label(small)),
        ours: fmt_kib(s_o),
        reference: format!("{} ({reference})", fmt_kib(s_r)),
        ratio: Some(s_o as f64 / s_r as f64),
        target: "< 32 MiB".into(),
        met: Some(s_o < RSS_TARGET_KIB),
    });
    ctx.row(Row {
        what: format!("{what} a {} .{ext}: peak RSS", label(big)),
        ours: fmt_kib(b_o),
        reference: format!("{} ({reference})", fmt_kib(b_r)),
        ratio: Some(b_o as f64 / b_r as f64),
        target: format!("< 32 MiB and ≤ {} + 2 MiB", label(small)),
        met: Some(b_o < RSS_TARGET_KIB && b_o <= s_o + RSS_FLAT_KIB),
    });
}

/// The cost of making a freshly unpacked release durable: one syncfs(2)
/// of its filesystem (what the switcher does) against an fsync of every
/// file and folder, each timed right after an unmeasured unpack of the
/// big .tar.gz, so that the same amount of dirty data waits each time.
fn durability_rows(ctx: &mut Ctx, rel: &Release, big: u64) -> anyhow::Result<()> {
    let art = rel.of(Ext::TarGz);
    let reps = ctx.mode.pick(2, 1, 1);
    let mut syncfs = Vec::new();
    let mut per_file = Vec::new();
    for _ in 0..reps {
        let dest = unpacked(ctx, &art.1, Ext::TarGz)?;
        let t = Instant::now();
        deploy_root::atomic::sync_filesystem(&dest)?;
        syncfs.push(t.elapsed());
        crate::remove(&dest)?;

        let dest = unpacked(ctx, &art.1, Ext::TarGz)?;
        let t = Instant::now();
        fsync_tree(&dest)?;
        per_file.push(t.elapsed());
        crate::remove(&dest)?;
    }
    let (o, r) = (median(&syncfs), median(&per_file));
    ctx.row(Row {
        what: format!(
            "durability of a freshly unpacked {} release ({} files): one syncfs",
            label(big),
            rel.files
        ),
        ours: fmt_dur(o),
        reference: format!("{} (fsync of every file and folder)", fmt_dur(r)),
        ratio: Some(o.as_secs_f64() / r.as_secs_f64()),
        target: "the cheaper of the two".into(),
        met: Some(o <= r),
    });
    Ok(())
}

/// A fresh folder holding `archive` unpacked in process (after `sync`, so
/// that only this unpack's data is dirty).
fn unpacked(ctx: &Ctx, archive: &Path, ext: Ext) -> anyhow::Result<std::path::PathBuf> {
    let dest = ctx.fresh("durable")?;
    sync();
    unpack(
        BufReader::new(File::open(archive)?),
        ext,
        &dest,
        &limits(),
        |_| {},
    )?;
    Ok(dest)
}

/// fsync of every file and folder under `dir`, folders after their entries.
fn fsync_tree(dir: &Path) -> anyhow::Result<()> {
    fn walk(dir: &Path) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path())?;
            } else if kind.is_file() {
                File::open(entry.path())?.sync_all()?;
            }
        }
        File::open(dir)?.sync_all()?;
        Ok(())
    }
    walk(dir)
}

fn limits() -> Limits {
    Limits {
        max_unpacked_size: u64::MAX,
        max_entries: u64::MAX,
        top_level: ["backend", "frontend"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
    }
}

fn unpack_in_process(ctx: &Ctx, archive: &Path, ext: Ext) -> anyhow::Result<Duration> {
    let dest = ctx.fresh("unpack-ours")?;
    let limits = limits();
    sync();
    let t = Instant::now();
    let summary = unpack(
        BufReader::new(File::open(archive)?),
        ext,
        &dest,
        &limits,
        |_| {},
    )?;
    let took = t.elapsed();
    anyhow::ensure!(summary.entries > 0, "nothing unpacked");
    crate::remove(&dest)?;
    Ok(took)
}

/// One whole switcher pass: wall time and peak RSS.
fn switcher_pass(
    ctx: &Ctx,
    rel: &Release,
    ext: Ext,
    rep: usize,
) -> anyhow::Result<(Duration, u64)> {
    let dir = ctx.fresh(&format!("pass-{rep}"))?;
    // The bench holds the backend's port open, so verify passes at once.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let root = Root::new(
        &dir,
        port,
        free_port()?,
        "start = \"true\"\nstop = \"true\"",
    )?;
    root.stage(rel.of(ext), true)?;
    sync();
    let cmd = Cmd::new(ctx.bin("switcher"), &[]).env("CUTOVER_CONFIG", &root.config);
    let out = cmd.time_rss(&dir)?;
    let id = rel.of(ext).0.stem().to_string();
    anyhow::ensure!(
        root.path("releases/backend").join(&id).is_dir(),
        "the switcher pass did not make releases/backend/{id}"
    );
    drop(listener);
    crate::remove(&dir)?;
    Ok(out)
}

/// The shell equivalent on the same staged artifact.
fn reference_pass(
    ctx: &Ctx,
    rel: &Release,
    ext: Ext,
    rep: usize,
    script: &str,
) -> anyhow::Result<(Duration, u64)> {
    let dir = ctx.fresh(&format!("refpass-{rep}"))?;
    let root = Root::new(&dir, free_port()?, free_port()?, "")?;
    let art = rel.of(ext);
    root.stage(art, true)?;
    sync();
    let cmd = Cmd::sh(script)
        .env("STAGING", root.path("staging"))
        .env("MARKER", art.0.marker_name())
        .env("ARTIFACT", art.0.file_name())
        .env("REL", root.path("releases/ref"))
        .env("TARFLAG", tar_flag(ext));
    let out = cmd.time_rss(&dir)?;
    crate::remove(&dir)?;
    Ok(out)
}

fn tar_flag(ext: Ext) -> &'static str {
    match ext {
        Ext::TarZst => "--zstd",
        _ => "-z",
    }
}

fn label(bytes: u64) -> String {
    human(bytes)
}

fn human(bytes: u64) -> String {
    let mib = bytes as f64 / 1024.0 / 1024.0;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}
