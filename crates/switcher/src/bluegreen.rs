//! Blue-green switching: a unit with a `switch = "blue-green"` component
//! takes the new release into service without stopping the old one first.
//!
//! Each such component has two slots, blue and green (`ports`), and
//! switcher.json records which serves. A switch:
//!
//! 1. (journal: idle-start) stops whatever the idle slot holds, starts the
//!    new release there (`CUTOVER_SLOT`, `CUTOVER_PORT`) and verifies it on
//!    the slot's port. A failure stops it again: traffic never moved and
//!    the old release never stopped, so nothing was interrupted.
//! 2. (journal: route) points the upstream file at the new slot, reloads
//!    nginx (a graceful reload: requests in flight finish on the old
//!    workers), checks through nginx that a request reaches the new slot,
//!    and flips current/ for every component of the unit. A route that does
//!    not come goes back: upstream to the old slot, reload, new one stopped.
//! 3. (journal: drain) waits `drain` for the old release's last requests,
//!    then stops it.
//!
//! Going back ([`restore`]: after a failure, a crash at any of these steps,
//! or `switcher rollback`) is the same move the other way: the old release
//! is started again on its slot only if it no longer answers there (still
//! draining, it answers: going back is then one reload), traffic moves
//! back, current/ flips back, the other slot is stopped. Either way one
//! release is live and nginx routes to it.

use std::collections::BTreeMap;

use anyhow::Context;

use deploy_root::config::Component;
use deploy_root::state::{RunningRelease, Slot, SwitcherState};
use deploy_root::{config, fault, state, Config, Layout};

use crate::command::{self, CommandContext};
use crate::failure::StepFailure;
use crate::journal::{self, Journal, Step};
use crate::switch::{self, Outcome};
use crate::{probe, upstream};

/// Whether the unit made of `components` switches blue-green.
pub fn applies(config: &Config, components: &[String]) -> bool {
    components.iter().any(|c| {
        config
            .components
            .get(c)
            .is_some_and(Component::is_blue_green)
    })
}

/// The slot that serves `component` as switcher.json records it.
fn serving(st: &SwitcherState, component: &str) -> Option<Slot> {
    st.components.get(component).and_then(|s| s.slot)
}

/// The slot a new release of `component` starts on: the one that does not
/// serve (blue for the first).
pub fn idle(st: &SwitcherState, component: &str) -> Slot {
    serving(st, component).map_or(Slot::Blue, Slot::other)
}

/// The port `component` serves on now: its slot's for a blue-green one.
pub fn serving_port(comp: &Component, st: Option<&SwitcherState>, component: &str) -> u16 {
    if !comp.is_blue_green() {
        return comp.port;
    }
    let slot = st
        .and_then(|st| serving(st, component))
        .unwrap_or(Slot::Blue);
    slot.port(&comp.ports)
}

/// Writes the upstream file of every blue-green component that has none,
/// routed to the slot that serves, so that nginx can load the site.
pub fn ensure_upstreams(config: &Config, layout: &Layout) -> anyhow::Result<()> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    for (name, c) in config.components.iter().filter(|(_, c)| c.is_blue_green()) {
        upstream::ensure(layout, name, serving_port(c, Some(&st), name))?;
    }
    Ok(())
}

/// Records what a blue-green switch left: the slot that serves, and what
/// the other one held. `moved`: the to-releases took over.
pub fn record(st: &mut SwitcherState, j: &Journal, moved: bool) {
    for (c, &to_slot) in &j.slots {
        let cs = st.components.entry(c.clone()).or_default();
        let from = j.from.get(c).cloned().flatten().map(|r| r.release);
        if moved {
            cs.slot = Some(to_slot);
            cs.idle = from;
        } else {
            cs.slot = from.as_ref().map(|_| to_slot.other());
            cs.idle = j.to.get(c).map(|r| r.release.clone());
        }
    }
}

/// Switches the unit the journal describes, blue-green (see the module
/// documentation). `Err`: the journal could not be written before anything
/// was started; nothing was touched.
pub fn switch(config: &Config, layout: &Layout, j: &mut Journal) -> anyhow::Result<Outcome> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    j.slots = bg_components(config, &j.components)
        .map(|c| (c.to_string(), idle(&st, c)))
        .collect();
    journal::step(layout, j, Step::IdleStart)
        .context("before starting anything (nothing was stopped or changed)")?;
    let failure = match forward(config, layout, j) {
        Ok(Ok(())) => return Ok(Outcome::Done),
        Ok(Err(failure)) => failure,
        Err(e) => StepFailure::new(
            j.components.first().map(String::as_str).unwrap_or(""),
            j.step.as_str(),
            format!("{e:#}"),
        ),
    };
    let moved = j.step >= Step::Route;
    let mut failure = failure;
    if !moved {
        // Said where the failure is shown (the page, `switcher status`,
        // the JSON): this one cost no downtime.
        failure.reason = format!(
            "failed on the idle slot; nothing was interrupted: {}",
            failure.reason
        );
    }
    if moved {
        tracing::warn!("{}: {failure}; moving traffic back", j.artifact);
    } else {
        tracing::warn!(
            "{}: {failure}; it failed on the idle slot and never received traffic: nothing was interrupted",
            j.artifact
        );
    }
    j.failure = Some(failure.to_failure(&j.artifact, chrono::Utc::now()));
    if let Err(e) = journal::step(layout, j, Step::Rollback) {
        tracing::error!("writing the journal before going back: {e:#}");
    }
    let back = if moved {
        restore_with(config, layout, &j.components, &j.from, &j.slots)
    } else {
        stop_slots(config, layout, j).map(|()| Ok(()))
    };
    match back {
        Ok(Ok(())) => Ok(Outcome::RolledBack(failure)),
        Ok(Err(why)) => Ok(Outcome::RollbackFailed(failure, why)),
        Err(e) => Ok(Outcome::RollbackFailed(failure, format!("{e:#}"))),
    }
}

fn bg_components<'a>(
    config: &'a Config,
    components: &'a [String],
) -> impl Iterator<Item = &'a str> {
    components
        .iter()
        .filter(|c| {
            config
                .components
                .get(*c)
                .is_some_and(Component::is_blue_green)
        })
        .map(String::as_str)
}

/// A command's context for a slot.
fn slot_context(
    layout: &Layout,
    comp: &Component,
    c: &str,
    step: &str,
    r: &RunningRelease,
    slot: Slot,
) -> CommandContext {
    let mut ctx = switch::context(layout, c, step, r);
    ctx.slot = Some((slot, slot.port(&comp.ports)));
    ctx
}

fn forward(
    config: &Config,
    layout: &Layout,
    j: &mut Journal,
) -> anyhow::Result<Result<(), StepFailure>> {
    let timeout = config.switcher.command_timeout;
    for (c, &slot) in &j.slots.clone() {
        let comp = switch::component(config, c)?;
        let to =
            j.to.get(c)
                .ok_or_else(|| anyhow::anyhow!("journal: no to-release for {c}"))?;
        // Whatever a cut-short pass left on the idle slot goes first: a
        // start must never find its slot taken.
        for (step, cmd) in [("stop", &comp.stop), ("start", &comp.start)] {
            let Some(cmd) = cmd else { continue };
            let ctx = slot_context(layout, comp, c, step, to, slot);
            let out = command::run(layout, cmd, &ctx, timeout)?;
            if !out.success() {
                return Ok(Err(switch::command_failure(c, step, &out, timeout)));
            }
        }
        fault::point("switcher:bg-after-start");
        let port = slot.port(&comp.ports);
        let health = comp.health_url_on(port);
        if let Err(reason) =
            crate::verify::verify_at(port, health.as_deref(), config.switcher.verify_timeout)
        {
            return Ok(Err(StepFailure::new(
                c,
                "verify",
                format!("on the idle {} slot: {reason}", slot.as_str()),
            )));
        }
    }
    journal::step(layout, j, Step::Route)?;
    for (c, &slot) in &j.slots.clone() {
        let comp = switch::component(config, c)?;
        let port = slot.port(&comp.ports);
        if let Err(why) = route(config, layout, c, comp, port)? {
            return Ok(Err(StepFailure::new(c, "route", why)));
        }
    }
    let mut flips = Vec::with_capacity(j.components.len());
    for c in &j.components {
        let to =
            j.to.get(c)
                .ok_or_else(|| anyhow::anyhow!("journal: no to-release for {c}"))?;
        flips.push((c.as_str(), to.release.as_str()));
    }
    switch::flip_all(layout, &flips)?;
    // Files-only and reload-only components of the unit (the config allows
    // no other beside a blue-green one) follow the flip.
    for c in j.components.clone() {
        let comp = switch::component(config, &c)?;
        let (Some(cmd), false) = (&comp.reload, comp.is_blue_green()) else {
            continue;
        };
        let Some(to) = j.to.get(&c) else { continue };
        let out = command::run(
            layout,
            cmd,
            &switch::context(layout, &c, "reload", to),
            timeout,
        )?;
        if !out.success() {
            tracing::warn!(
                "{c}: the reload command {} after traffic moved",
                out.describe(timeout)
            );
        }
    }
    journal::step(layout, j, Step::Drain)?;
    fault::point("switcher:bg-mid-drain");
    let drain = bg_components(config, &j.components)
        .filter_map(|c| config.components.get(c).map(|c| c.drain))
        .max()
        .unwrap_or_default();
    std::thread::sleep(drain);
    for (c, &slot) in &j.slots {
        let comp = switch::component(config, c)?;
        let (Some(cmd), Some(Some(from))) = (&comp.stop, j.from.get(c)) else {
            continue;
        };
        let ctx = slot_context(layout, comp, c, "stop", from, slot.other());
        let out = command::run(layout, cmd, &ctx, timeout)?;
        if !out.success() {
            // The new release serves; the old one is a leftover that the
            // next switch stops before it starts there.
            tracing::warn!(
                "{c}: stopping the old release on the {} slot {} (see {})",
                slot.other().as_str(),
                out.describe(timeout),
                out.log.display()
            );
        }
    }
    fault::point("switcher:bg-after-drain");
    Ok(Ok(()))
}

/// Points nginx at `port` for `component`: the upstream file, the reload,
/// the check through nginx. `Ok(Err)`: the route did not come.
fn route(
    config: &Config,
    layout: &Layout,
    c: &str,
    comp: &Component,
    port: u16,
) -> anyhow::Result<Result<(), String>> {
    upstream::write(layout, c, port)?;
    fault::point("switcher:bg-after-upstream");
    let timeout = config.switcher.command_timeout;
    let Some(reload) = &config.nginx.reload else {
        return Ok(Err("nginx.reload is not set".into()));
    };
    let ctx = CommandContext {
        component: c.to_string(),
        step: "nginx-reload".into(),
        release: layout.root.clone(),
        version: String::new(),
        branch: String::new(),
        artifact: String::new(),
        slot: None,
    };
    let out = command::run(layout, reload, &ctx, timeout)?;
    if !out.success() {
        return Ok(Err(format!(
            "nginx.reload {} (output in {})",
            out.describe(timeout),
            out.log.display()
        )));
    }
    fault::point("switcher:bg-after-reload");
    let Some(nginx_port) = config
        .nginx_listen()
        .as_deref()
        .and_then(config::listen_port)
    else {
        return Ok(Err("no nginx.listen port to check the route through".into()));
    };
    let path = comp
        .health_url
        .as_deref()
        .map_or("/", upstream::url_path)
        .to_string();
    Ok(upstream::check_route(
        nginx_port,
        &path,
        port,
        config.switcher.verify_timeout,
    ))
}

/// Stops the to-slots of a switch that never moved traffic.
fn stop_slots(config: &Config, layout: &Layout, j: &Journal) -> anyhow::Result<()> {
    for (c, &slot) in &j.slots {
        let comp = switch::component(config, c)?;
        let (Some(cmd), Some(to)) = (&comp.stop, j.to.get(c)) else {
            continue;
        };
        let ctx = slot_context(layout, comp, c, "stop", to, slot);
        let out = command::run(layout, cmd, &ctx, config.switcher.command_timeout)?;
        if !out.success() {
            tracing::warn!(
                "{c}: stopping the failed release on the idle {} slot {}",
                slot.as_str(),
                out.describe(config.switcher.command_timeout)
            );
        }
    }
    Ok(())
}

/// Brings a blue-green unit back to `from` (see the module
/// documentation); the slots are read from switcher.json, which a switch
/// does not change before it is complete. Used by recovery and by
/// [`switch::restore`].
pub fn restore(
    config: &Config,
    layout: &Layout,
    components: &[String],
    from: &BTreeMap<String, Option<RunningRelease>>,
) -> anyhow::Result<Result<(), String>> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    let slots = bg_components(config, components)
        .map(|c| (c.to_string(), idle(&st, c)))
        .collect();
    restore_with(config, layout, components, from, &slots)
}

fn restore_with(
    config: &Config,
    layout: &Layout,
    components: &[String],
    from: &BTreeMap<String, Option<RunningRelease>>,
    slots: &BTreeMap<String, Slot>,
) -> anyhow::Result<Result<(), String>> {
    let timeout = config.switcher.command_timeout;
    let mut problems = Vec::new();
    // Components whose from-release cannot serve again: whatever serves
    // them now (the new slot, maybe) is left alone rather than stopped.
    let mut stuck = std::collections::BTreeSet::new();
    for (c, &to_slot) in slots {
        let comp = switch::component(config, c)?;
        let back = to_slot.other();
        let port = back.port(&comp.ports);
        let Some(Some(r)) = from.get(c) else {
            // Nothing served before: nothing to move back to.
            continue;
        };
        if !layout.release(c, &r.release).is_dir() {
            problems.push(format!(
                "{c}: the release to go back to, {}, is not on disk",
                layout.release(c, &r.release).display()
            ));
            stuck.insert(c.clone());
            continue;
        }
        let health = comp.health_url_on(port);
        let answers = probe::listening(port, std::time::Duration::from_millis(200))
            && health.as_deref().map_or(true, |u| {
                probe::health(u, std::time::Duration::from_secs(2)).is_healthy()
            });
        if !answers {
            // It was already stopped (the switch had drained it): start it
            // again on its slot before traffic goes there.
            for (step, cmd) in [("stop", &comp.stop), ("start", &comp.start)] {
                let Some(cmd) = cmd else { continue };
                let ctx = slot_context(layout, comp, c, step, r, back);
                let out = command::run(layout, cmd, &ctx, timeout)?;
                if !out.success() {
                    problems.push(format!(
                        "{c}: {step} of {} on the {} slot {} (see {})",
                        r.release,
                        back.as_str(),
                        out.describe(timeout),
                        out.log.display()
                    ));
                }
            }
            if let Err(why) =
                crate::verify::verify_at(port, health.as_deref(), config.switcher.verify_timeout)
            {
                problems.push(format!("{c}: {} {why}", r.release));
                stuck.insert(c.clone());
                continue;
            }
        }
        if let Err(why) = route(config, layout, c, comp, port)? {
            problems.push(format!("{c}: moving traffic back: {why}"));
            stuck.insert(c.clone());
        }
    }
    fault::point("switcher:bg-mid-rollback");
    // A unit moves as one: if one component stays where it is, so do the
    // links of all (current/ names what serves).
    for c in components.iter().filter(|_| stuck.is_empty()) {
        match from.get(c).cloned().flatten() {
            Some(r) if layout.current_release(c).as_deref() != Some(r.release.as_str()) => {
                switch::flip(layout, c, &r.release)?;
            }
            Some(_) => {}
            None => switch::remove_link(layout, c)?,
        }
    }
    // Only now that nginx routes to the from-slot (or nothing served
    // before) does the other one stop.
    for (c, &to_slot) in slots.iter().filter(|(c, _)| !stuck.contains(*c)) {
        let comp = switch::component(config, c)?;
        let Some(cmd) = &comp.stop else { continue };
        let mut ctx = switch::current_context(layout, c, "stop", None);
        ctx.slot = Some((to_slot, to_slot.port(&comp.ports)));
        let out = command::run(layout, cmd, &ctx, timeout)?;
        if !out.success() {
            problems.push(format!(
                "{c}: stopping the {} slot {}",
                to_slot.as_str(),
                out.describe(timeout)
            ));
        }
    }
    if problems.is_empty() {
        Ok(Ok(()))
    } else {
        Ok(Err(problems.join("; ")))
    }
}
