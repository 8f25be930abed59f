//! Switching a unit (one artifact's components) from one release to
//! another: stop, flip, start, verify, and going back when any of it fails.
//!
//! Each step runs for every component of the unit before the next step
//! starts, so a `full` artifact is one unit: if either component fails,
//! both go back. The journal is written before the stop and before the
//! verify (see [`crate::journal`]), but not between stop and start: the
//! service is down there, and recovery treats a pass cut short at stop,
//! flip or start alike (back to the from-release with [`restore`]), so
//! writing that the step moved on would change nothing but the time the
//! service stays down. For the same reason every component's link is
//! flipped first and current/ fsynced once. [`restore`] is the way back,
//! shared by the rollback after a failure, `switcher rollback` and crash
//! recovery.

use anyhow::Context;
use deploy_root::config::Component;
use deploy_root::state::RunningRelease;
use deploy_root::{atomic, fault, Config, Layout};

use crate::command::{self, CommandContext};
use crate::failure::StepFailure;
use crate::journal::{self, Journal, Step};
use crate::{bluegreen, verify};

/// How a switch ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The new releases run and passed verify.
    Done,
    /// A step failed; the from-releases run again and passed verify.
    RolledBack(StepFailure),
    /// A step failed, and going back failed too (the reason of each).
    RollbackFailed(StepFailure, String),
}

/// Switches the unit the journal describes from `from` to `to`.
///
/// `Err` means the journal could not be written before stop (a full disk):
/// nothing was stopped, so nothing is started again and the artifact is not
/// to blame; the caller reports the error and the next pass tries again.
/// An error of the machine itself once stop has begun (a journal that
/// cannot be written before verify, a command that cannot be spawned) is
/// treated like a failed step: the service must not be left stopped
/// because of it.
pub fn switch(config: &Config, layout: &Layout, j: &mut Journal) -> anyhow::Result<Outcome> {
    if bluegreen::applies(config, &j.components) {
        return bluegreen::switch(config, layout, j);
    }
    journal::step(layout, j, Step::Stop)
        .context("before stopping anything (nothing was stopped or changed)")?;
    let failure = match forward(config, layout, j) {
        Ok(Ok(())) => return Ok(Outcome::Done),
        Ok(Err(failure)) => failure,
        Err(e) => StepFailure::new(
            j.components.first().map(String::as_str).unwrap_or(""),
            j.step.as_str(),
            format!("{e:#}"),
        ),
    };
    tracing::warn!("{}: {failure}; going back", j.artifact);
    j.failure = Some(failure.to_failure(&j.artifact, chrono::Utc::now()));
    if let Err(e) = journal::step(layout, j, Step::Rollback) {
        // Going back matters more than the journal saying so.
        tracing::error!("writing the journal before going back: {e:#}");
    }
    match restore(config, layout, &j.components, &j.from) {
        Ok(Ok(())) => Ok(Outcome::RolledBack(failure)),
        Ok(Err(why)) => Ok(Outcome::RollbackFailed(failure, why)),
        Err(e) => Ok(Outcome::RollbackFailed(failure, format!("{e:#}"))),
    }
}

fn forward(
    config: &Config,
    layout: &Layout,
    j: &mut Journal,
) -> anyhow::Result<Result<(), StepFailure>> {
    let timeout = config.switcher.command_timeout;
    for c in j.components.clone() {
        let comp = component(config, &c)?;
        if let (Some(cmd), Some(Some(from))) = (&comp.stop, j.from.get(&c)) {
            let ctx = context(layout, &c, "stop", from);
            let out = command::run(layout, cmd, &ctx, timeout)?;
            if !out.success() {
                return Ok(Err(command_failure(&c, "stop", &out, timeout)));
            }
        }
    }
    fault::point("switcher:after-stop");
    // The journal on disk still says stop, which recovery undoes exactly as
    // it would flip or start; the step moves on in memory only, so that a
    // machine error here is reported at the step it happened in.
    j.step = Step::Flip;
    let mut flips = Vec::with_capacity(j.components.len());
    for c in &j.components {
        let to =
            j.to.get(c)
                .ok_or_else(|| anyhow::anyhow!("journal: no to-release for {c}"))?;
        flips.push((c.as_str(), to.release.as_str()));
    }
    flip_all(layout, &flips)?;
    fault::point("switcher:after-flip");
    j.step = Step::Start;
    for c in j.components.clone() {
        let comp = component(config, &c)?;
        let Some(to) = j.to.get(&c) else { continue };
        if let Some((step, cmd)) = start_command(comp) {
            let ctx = context(layout, &c, step, to);
            let out = command::run(layout, cmd, &ctx, timeout)?;
            if !out.success() {
                return Ok(Err(command_failure(&c, step, &out, timeout)));
            }
        }
    }
    fault::point("switcher:after-start");
    journal::step(layout, j, Step::Verify)?;
    for c in &j.components {
        let comp = component(config, c)?;
        if !verify::applies(comp) {
            continue;
        }
        if let Err(reason) = verify::verify(comp, config.switcher.verify_timeout) {
            return Ok(Err(StepFailure::new(c, "verify", reason)));
        }
    }
    fault::point("switcher:after-verify");
    Ok(Ok(()))
}

/// Brings `components` back to `from`: stop whatever runs, point current/
/// at the from-release (or remove the link where there was none: a failed
/// first deploy leaves the component stopped), start it, verify it.
///
/// Every component is tried even when one fails; `Ok(Err(_))` lists what
/// failed.
pub fn restore(
    config: &Config,
    layout: &Layout,
    components: &[String],
    from: &std::collections::BTreeMap<String, Option<RunningRelease>>,
) -> anyhow::Result<Result<(), String>> {
    if bluegreen::applies(config, components) {
        return bluegreen::restore(config, layout, components, from);
    }
    let mut problems = Vec::new();
    for c in components {
        let from = from.get(c).cloned().flatten();
        // A machine error on one component (a command that cannot be
        // spawned, a link that cannot be made) must not keep the others
        // stopped: note it and go on to the next.
        if let Err(e) = restore_one(config, layout, c, from, &mut problems) {
            problems.push(format!("{c}: {e:#}"));
        }
    }
    if problems.is_empty() {
        Ok(Ok(()))
    } else {
        Ok(Err(problems.join("; ")))
    }
}

/// [`restore`] for one component; problems that are the releases' own go
/// into `problems`, machine errors are returned.
fn restore_one(
    config: &Config,
    layout: &Layout,
    c: &str,
    from: Option<RunningRelease>,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let timeout = config.switcher.command_timeout;
    let comp = component(config, c)?;
    // A failed stop matters only if the from-release then does not come
    // up (e.g. a release that exited at once has nothing left to stop).
    let mut stop_problem = None;
    if let Some(cmd) = &comp.stop {
        // Stop what current/ points to now, whichever release that is.
        let ctx = current_context(layout, c, "stop", from.as_ref());
        let out = command::run(layout, cmd, &ctx, timeout)?;
        if !out.success() {
            tracing::warn!(
                "{c}: the stop command {} while going back",
                out.describe(timeout)
            );
            stop_problem = Some(format!("{c}: stop {}", out.describe(timeout)));
        }
    }
    match &from {
        Some(from) => {
            if !layout.release(c, &from.release).is_dir() {
                problems.push(format!(
                    "{c}: the release to go back to, {}, is not on disk",
                    layout.release(c, &from.release).display()
                ));
                return Ok(());
            }
            if layout.current_release(c).as_deref() != Some(from.release.as_str()) {
                flip(layout, c, &from.release)?;
            }
        }
        None => remove_link(layout, c)?,
    }
    fault::point("switcher:mid-rollback");
    let Some(from) = from else {
        problems.extend(stop_problem.take());
        tracing::warn!(
            "{c}: there was no release before; it is left stopped and current/{c} is removed"
        );
        return Ok(());
    };
    if let Some((step, cmd)) = start_command(comp) {
        let ctx = context(layout, c, step, &from);
        let out = command::run(layout, cmd, &ctx, timeout)?;
        if !out.success() {
            problems.extend(stop_problem.take());
            problems.push(format!(
                "{c}: {step} of {} {} (see {})",
                from.release,
                out.describe(timeout),
                out.log.display()
            ));
            return Ok(());
        }
    }
    if verify::applies(comp) {
        if let Err(why) = verify::verify(comp, config.switcher.verify_timeout) {
            problems.extend(stop_problem.take());
            problems.push(format!("{c}: {} {why}", from.release));
        }
    }
    Ok(())
}

/// Points current/<component> at release `id` (rename of a new link).
pub fn flip(layout: &Layout, component: &str, id: &str) -> anyhow::Result<()> {
    flip_all(layout, &[(component, id)])
}

/// Points each current/<component> at its release `id` (a rename of a new
/// link each), then fsyncs current/ once: every link lives in that one
/// folder, so one fsync makes all the renames durable.
pub fn flip_all(layout: &Layout, flips: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(&layout.current)?;
    for &(component, id) in flips {
        atomic::replace_symlink_unsynced(
            &layout.current_link(component),
            &Layout::current_target(component, id),
        )?;
        tracing::info!("{component}: current/{component} -> {id}");
    }
    atomic::fsync_dir(&layout.current)
}

pub(crate) fn remove_link(layout: &Layout, component: &str) -> anyhow::Result<()> {
    let link = layout.current_link(component);
    match std::fs::remove_file(&link) {
        Ok(()) => atomic::fsync_dir(&layout.current),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("removing {}", link.display()))),
    }
}

/// The command that brings a component up: start, or reload for one that
/// has reload and no start.
pub fn start_command(comp: &Component) -> Option<(&'static str, &str)> {
    match (&comp.start, &comp.reload) {
        (Some(s), _) => Some(("start", s.as_str())),
        (None, Some(r)) => Some(("reload", r.as_str())),
        (None, None) => None,
    }
}

/// The config of a component the journal or state names.
pub fn component<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a Component> {
    config.components.get(name).ok_or_else(|| {
        anyhow::anyhow!(
            "component {name:?} is not in the config (known: {})",
            config
                .components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The environment of a command about release `r`.
pub fn context(layout: &Layout, component: &str, step: &str, r: &RunningRelease) -> CommandContext {
    CommandContext {
        component: component.to_string(),
        step: step.to_string(),
        release: layout.release(component, &r.release),
        version: r.info.version.clone(),
        branch: r.info.branch.clone(),
        artifact: r.info.artifact.clone(),
        slot: None,
    }
}

/// The environment of a command about whatever current/ points to (the
/// release `fallback` describes when that is the same, else names only).
pub(crate) fn current_context(
    layout: &Layout,
    component: &str,
    step: &str,
    fallback: Option<&RunningRelease>,
) -> CommandContext {
    let current = layout.current_release(component);
    match (current, fallback) {
        (Some(id), Some(r)) if id == r.release => context(layout, component, step, r),
        (Some(id), _) => {
            // Not the recorded release (the one being left): its name
            // still says version and branch; the extension is not known.
            let name = crate::retention::parse_id(&id);
            CommandContext {
                component: component.to_string(),
                step: step.to_string(),
                release: layout.release(component, &id),
                version: name
                    .as_ref()
                    .map(|n| n.version().to_string())
                    .unwrap_or_default(),
                branch: name
                    .as_ref()
                    .map(|n| n.branch().to_string())
                    .unwrap_or_default(),
                artifact: id.clone(),
                slot: None,
            }
        }
        (None, Some(r)) => context(layout, component, step, r),
        (None, None) => CommandContext {
            component: component.to_string(),
            step: step.to_string(),
            release: layout.current_link(component),
            version: String::new(),
            branch: String::new(),
            artifact: String::new(),
            slot: None,
        },
    }
}

pub(crate) fn command_failure(
    component: &str,
    step: &str,
    out: &command::Outcome,
    timeout: std::time::Duration,
) -> StepFailure {
    StepFailure {
        component: component.to_string(),
        step: step.to_string(),
        exit_code: out.code,
        reason: format!(
            "the {step} command {} (output in {})",
            out.describe(timeout),
            out.log.display()
        ),
        tail: out.tail.clone(),
    }
}
