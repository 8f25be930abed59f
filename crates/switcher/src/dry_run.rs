//! `switcher --dry-run` and `switcher rollback --dry-run`: the plan in
//! plain words, changing nothing.
//!
//! It reads the config, the state, the journal and staging, and writes
//! only to stdout: no lock file is created or taken (a run in progress may
//! change things meanwhile; the plan says what a pass would do now), no
//! state file, no status page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use deploy_root::state::{RunningRelease, SwitcherState};
use deploy_root::{state, time, Config, Layout};

use crate::journal::{self, Step};
use crate::{control, plan, rollback, staged, switch, verify};

/// The plan, as text for stdout.
pub fn render(config: &Config, layout: &Layout) -> anyhow::Result<String> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    // Holds set by hand, and the followed branches (as a pass sees them).
    let (config, held) = &control::for_dry_run(config, layout)?;
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "Dry run: nothing is changed. Deploy root {}.",
        layout.root.display()
    )?;
    for c in config.components.keys() {
        match st.components.get(c).and_then(|s| s.running.as_ref()) {
            Some(r) => writeln!(
                w,
                "{c}: runs {} (since {})",
                r.info.artifact,
                time::human(r.since)
            )?,
            None => writeln!(w, "{c}: runs nothing the switcher deployed")?,
        }
    }
    for line in control::dry_run_lines(held) {
        writeln!(w, "{line}")?;
    }
    if let Some(j) = journal::load(layout)? {
        writeln!(
            w,
            "A pass was cut short at step {} while taking {} into service (or one is under way now): a real run would first {}.",
            j.step.as_str(),
            j.artifact,
            if j.step == Step::Prepare {
                "remove its half-made folders".to_string()
            } else {
                format!("go back to what ran before it ({})", from_words(&j.from))
            }
        )?;
    }
    let staged = staged::list(layout)?;
    let plan = plan::choose_held(config, &st, held, &staged, chrono::Utc::now());
    for (artifact, why) in &plan.skipped {
        writeln!(w, "Passed over {artifact}: {why}.")?;
    }
    let Some(choice) = plan.choice else {
        if staged.is_empty() {
            writeln!(
                w,
                "Nothing to deploy: staging holds no artifact with its marker."
            )?;
        } else {
            writeln!(
                w,
                "Nothing to deploy: no staged artifact is newer than what runs and eligible."
            )?;
        }
        return Ok(out);
    };
    let name = &choice.staged.name;
    let id = name.stem();
    writeln!(
        w,
        "Would deploy {} (kind {}, version {}, branch {}, built {}) to {}: the newest eligible staged artifact.",
        name.file_name(),
        name.kind(),
        name.version(),
        name.branch(),
        time::human(name.build_time()),
        choice.components.join(", ")
    )?;
    if let Some(partial) = &plan.partial {
        writeln!(w, "It deploys {partial}.")?;
    }
    // The store is not asked: a dry run makes no request.
    if let Some(f) = &config.fleet {
        let slot = match f.max_parallel {
            Some(p) => format!(
                ", then wait for one of the group's switch slots (max_parallel = {p}) if none is free"
            ),
            None => String::new(),
        };
        writeln!(
            w,
            "In the fleet group {:?}, a real run would first read the group's holds and skip it if its rollout halted ({} failed VM{} halt it){slot}; `switcher fleet` shows the group.",
            f.group,
            f.max_failures,
            if f.max_failures == 1 { "" } else { "s" }
        )?;
    }
    let mut n = 0;
    let mut step = |w: &mut String, text: String| -> std::fmt::Result {
        n += 1;
        writeln!(w, "  {n}. {text}")
    };
    let folders: Vec<String> = choice
        .components
        .iter()
        .map(|c| layout.release(c, id).display().to_string())
        .collect();
    step(
        w,
        format!(
            "check {} against its marker and unpack it into {}",
            choice.staged.path.display(),
            folders.join(" and ")
        ),
    )?;
    for c in &choice.components {
        let comp = switch::component(config, c)?;
        for p in comp.linked_dirs.iter().chain(&comp.linked_files) {
            step(
                w,
                format!(
                    "link {} to {}",
                    layout.release(c, id).join(p).display(),
                    layout.shared.join(c).join(p).display()
                ),
            )?;
        }
        if let Some(cmd) = &comp.prepare {
            step(
                w,
                format!(
                    "run the {c} prepare command in {}: {cmd}",
                    layout.release(c, id).display()
                ),
            )?;
        }
    }
    let from: BTreeMap<String, Option<RunningRelease>> = choice
        .components
        .iter()
        .map(|c| {
            (
                c.clone(),
                st.components.get(c).and_then(|s| s.running.clone()),
            )
        })
        .collect();
    let to: BTreeMap<String, String> = choice
        .components
        .iter()
        .map(|c| (c.clone(), id.to_string()))
        .collect();
    if crate::bluegreen::applies(config, &choice.components) {
        blue_green_steps(config, layout, &st, &to, &mut step, w)?;
    } else {
        switch_steps(config, layout, &from, &to, &mut step, w)?;
    }
    step(
        w,
        format!(
            "record the outcome in {} and {}, then keep at most {} releases per component",
            layout.switcher_state().display(),
            layout.history().display(),
            config.switcher.keep_releases
        ),
    )?;
    writeln!(
        w,
        "If a step from stop on fails, it would go back to {} and mark {} failed.",
        from_words(&from),
        name.file_name()
    )?;
    Ok(out)
}

/// The steps of a switch from `from` to the release ids `to` (stop, flip,
/// start or reload, verify), as [`crate::switch`] runs them: each step for
/// every component before the next.
fn switch_steps(
    config: &Config,
    layout: &Layout,
    from: &BTreeMap<String, Option<RunningRelease>>,
    to: &BTreeMap<String, String>,
    step: &mut impl FnMut(&mut String, String) -> std::fmt::Result,
    w: &mut String,
) -> anyhow::Result<()> {
    for (c, running) in from {
        let comp = switch::component(config, c)?;
        if let (Some(cmd), Some(_)) = (&comp.stop, running) {
            step(w, format!("run the {c} stop command: {cmd}"))?;
        }
    }
    for (c, id) in to {
        let now = match std::fs::read_link(layout.current_link(c)) {
            Ok(t) => format!("now -> {}", t.display()),
            Err(_) => "now missing".to_string(),
        };
        step(
            w,
            format!(
                "flip {} -> {} ({now})",
                layout.current_link(c).display(),
                Layout::current_target(c, id).display()
            ),
        )?;
    }
    for c in to.keys() {
        let comp = switch::component(config, c)?;
        if let Some((what, cmd)) = switch::start_command(comp) {
            step(w, format!("run the {c} {what} command: {cmd}"))?;
        }
    }
    for c in to.keys() {
        let comp = switch::component(config, c)?;
        if !verify::applies(comp) {
            continue;
        }
        let mut text = format!(
            "verify {c}: 127.0.0.1:{} listens within {} s",
            comp.port,
            config.switcher.verify_timeout.as_secs_f64()
        );
        if let Some(url) = &comp.health_url {
            let _ = write!(text, " and {url} answers 2xx");
        }
        step(w, text)?;
    }
    Ok(())
}

/// The steps of a blue-green switch (see [`crate::bluegreen`]): the new
/// release starts beside the old one on the idle slot, traffic moves only
/// once it is verified there, the old slot drains and stops. Components of
/// the unit that are files only are flipped.
fn blue_green_steps(
    config: &Config,
    layout: &Layout,
    st: &SwitcherState,
    to: &BTreeMap<String, String>,
    step: &mut impl FnMut(&mut String, String) -> std::fmt::Result,
    w: &mut String,
) -> anyhow::Result<()> {
    for (c, id) in to {
        let comp = switch::component(config, c)?;
        if !comp.is_blue_green() {
            step(
                w,
                format!(
                    "flip {} -> {}",
                    layout.current_link(c).display(),
                    Layout::current_target(c, id).display()
                ),
            )?;
            continue;
        }
        let idle = crate::bluegreen::idle(st, c);
        let port = idle.port(&comp.ports);
        let old = idle.other();
        if let Some((what, cmd)) = switch::start_command(comp) {
            step(
                w,
                format!(
                    "run the {c} {what} command on the idle {} slot (CUTOVER_SLOT={}, CUTOVER_PORT={port}): {cmd}",
                    idle.as_str(),
                    idle.as_str()
                ),
            )?;
        }
        let mut text = format!(
            "verify {c} there: 127.0.0.1:{port} listens within {} s",
            config.switcher.verify_timeout.as_secs_f64()
        );
        if let Some(url) = comp.health_url_on(port) {
            let _ = write!(text, " and {url} answers 2xx");
        }
        step(w, text)?;
        step(
            w,
            format!(
                "point nginx's upstream {} at port {port}, run `{}`, and check that the route through nginx reaches it",
                crate::upstream::path(layout, c).display(),
                config.nginx.reload.as_deref().unwrap_or("(no [nginx] reload set)")
            ),
        )?;
        step(
            w,
            format!(
                "flip {} -> {}",
                layout.current_link(c).display(),
                Layout::current_target(c, id).display()
            ),
        )?;
        let stop = comp.stop.as_deref().unwrap_or("(no stop command)");
        step(
            w,
            format!(
                "wait {} s for requests in flight, then stop the {} slot (port {}): {stop}",
                comp.drain.as_secs_f64(),
                old.as_str(),
                old.port(&comp.ports)
            ),
        )?;
    }
    Ok(())
}

/// `switcher rollback [COMPONENT] --dry-run`: what the rollback would do,
/// or why it would refuse (an error, as the rollback itself would exit).
/// Reads only, like [`render`].
pub fn render_rollback(
    config: &Config,
    layout: &Layout,
    component: Option<&str>,
) -> anyhow::Result<String> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "Dry run: nothing is changed. Deploy root {}.",
        layout.root.display()
    )?;
    if let Some(j) = journal::load(layout)? {
        writeln!(
            w,
            "A pass was cut short at step {} while taking {} into service (or one is under way now): the rollback would first finish or undo it, and then decide again.",
            j.step.as_str(),
            j.artifact
        )?;
    }
    let unit = rollback::plan(config, layout, &st, component)?;
    let to: BTreeMap<String, String> = unit
        .to
        .iter()
        .map(|(c, r)| (c.clone(), r.release.clone()))
        .collect();
    let back: Vec<String> = unit
        .to
        .iter()
        .map(|(c, r)| format!("{c} to {}", r.info.artifact))
        .collect();
    writeln!(
        w,
        "Would roll back {} (from {}): back to the previous good release{}.",
        unit.components.join(", "),
        unit.artifact,
        if back.is_empty() {
            String::new()
        } else {
            format!(", {}", back.join(", "))
        }
    )?;
    let mut n = 0;
    let mut step = |w: &mut String, text: String| -> std::fmt::Result {
        n += 1;
        writeln!(w, "  {n}. {text}")
    };
    switch_steps(config, layout, &unit.from, &to, &mut step, w)?;
    step(
        w,
        format!(
            "mark {} failed (\"rolled back by hand\") so that no pass deploys it again by itself, and record it in {} and {}",
            unit.artifact,
            layout.switcher_state().display(),
            layout.history().display()
        ),
    )?;
    writeln!(
        w,
        "If a step fails, it would go forward again to {}.",
        from_words(&unit.from)
    )?;
    Ok(out)
}

fn from_words(from: &BTreeMap<String, Option<RunningRelease>>) -> String {
    from.iter()
        .map(|(c, r)| match r {
            Some(r) => format!("{c} {}", r.release),
            None => format!("{c} stopped, with no current link"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
