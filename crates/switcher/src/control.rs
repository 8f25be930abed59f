//! Control by hand: `switcher deploy`, `pin`/`unpin`, `freeze`/`unfreeze`,
//! `retry` and `follow`, and what a pass makes of them ([`for_pass`]).
//!
//! The holds live in `state/control.json` ([`deploy_root::control`]),
//! written atomically under the switcher's lock, so a hand command never
//! races a cron pass. Each command that changes something appends one
//! history line saying who ran it; with the global `--dry-run` (`switcher
//! --dry-run pin`, or `switcher pin --dry-run`) it reads the same files, takes
//! no lock and writes nothing. The control file is written before the
//! history line: a crash in between (fault point `after-control-write`)
//! leaves the hold in force without its line, never a line for a hold that
//! does not exist.
//!
//! Freeze, unfreeze, pin and unpin (and the pin of `switcher deploy`) are
//! notified: once their state is written, still under the lock, the event
//! goes to the outbox and this run sends it ([`crate::notify`]); a hold
//! that lapses by itself is notified by the pass that drops it.
//!
//! Holds only stop *automatic* deploys: `switcher deploy` and `switcher
//! rollback` still act, and the collector never reads the file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Subcommand};
use deploy_root::control::{self as ctl, AttributedEntry, ControlState, Follow, Hold, Pin};
use deploy_root::state::{HistoryEntry, SwitcherState};
use deploy_root::{fault, lock, state, Config, Layout};

use crate::notify::{self, Event, Kind};
use crate::plan::{Choice, Plan};
use crate::recover::{self, Recovery};
use crate::staged::{self, Staged};
use crate::{exit_codes, history, pass, release, status};

/// The control subcommands (flattened into `switcher`'s own).
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Deploy exactly this staged artifact now, and pin what it deployed.
    ///
    /// The same prepare, stop, flip, start, verify and rollback as a pass,
    /// even for an artifact older than what runs or from a branch passes do
    /// not follow. On success the components it deployed are pinned, so the
    /// next pass does not replace it; a failed deploy rolls back and pins
    /// nothing.
    Deploy {
        /// A staged file name, e.g. full_20261129T170000Z_1.5.0_feature~login.tar.gz.
        artifact: String,
        /// Only this component of the artifact (repeatable) [default: all it carries].
        #[arg(long = "component", value_name = "C")]
        components: Vec<String>,
        /// Why, recorded with the pin.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Keep components on what runs: automatic passes leave them alone.
    Pin {
        /// The components [default: all].
        components: Vec<String>,
        /// Why, shown on the status page.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Lapse by itself at this time (RFC 3339 with a zone) or after this
        /// long ("8h", "30m").
        #[arg(long, value_name = "TIME", value_parser = parse_until)]
        until: Option<Until>,
        /// For the whole group (`[fleet]`): written to the store, every VM
        /// of the group honours it (docs/fleet.md).
        #[arg(long)]
        fleet: bool,
    },
    /// Lift pins: automatic passes deploy these components again.
    Unpin {
        /// The components [default: all].
        components: Vec<String>,
        /// For the whole group (`[fleet]`): written to the store, every VM
        /// of the group honours it (docs/fleet.md).
        #[arg(long)]
        fleet: bool,
    },
    /// No automatic deploys for any component (the collector keeps collecting).
    Freeze {
        /// Why, shown on the status page.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Lapse by itself at this time (RFC 3339 with a zone) or after this
        /// long ("8h", "30m").
        #[arg(long, value_name = "TIME", value_parser = parse_until)]
        until: Option<Until>,
        /// For the whole group (`[fleet]`): written to the store, every VM
        /// of the group honours it (docs/fleet.md).
        #[arg(long)]
        fleet: bool,
    },
    /// Lift the freeze.
    Unfreeze {
        /// For the whole group (`[fleet]`): written to the store, every VM
        /// of the group honours it (docs/fleet.md).
        #[arg(long)]
        fleet: bool,
    },
    /// Clear an artifact's failure mark, so that the next pass may try it again.
    Retry {
        /// The artifact's file name, as `switcher releases` or the status page show it.
        artifact: String,
    },
    /// Which branches automatic passes deploy, from now on (overrides
    /// `switcher.branches` until `--default`).
    #[command(group(ArgGroup::new("which").required(true).args(["branches", "any", "default"])))]
    Follow {
        /// The branches, as git spells them (feature/login).
        branches: Vec<String>,
        /// Any branch.
        #[arg(long, conflicts_with_all = ["branches", "default"])]
        any: bool,
        /// Back to the config's `switcher.branches`.
        #[arg(long, conflicts_with_all = ["branches", "reason", "until"])]
        default: bool,
        /// Why, shown on the status page.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Go back to the config's branches by itself at this time (RFC
        /// 3339 with a zone) or after this long ("8h").
        #[arg(long, value_name = "TIME", value_parser = parse_until)]
        until: Option<Until>,
    },
}

/// `--until`: a time, or a span from when the command runs.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// RFC 3339 with a zone, converted to UTC.
    At(DateTime<Utc>),
    /// A humantime span ("8h", "30m").
    In(std::time::Duration),
}

impl Until {
    fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Until::At(t) => t,
            Until::In(d) => now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// The farthest `--until` accepted: control.json must stay readable as
/// RFC 3339 (four-digit years), and a hold longer than this is a typo.
const MAX_SPAN: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

fn parse_until(s: &str) -> Result<Until, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&Utc);
        if t > Utc::now() + chrono::Duration::days(100 * 365) {
            return Err("at most 100 years from now".into());
        }
        if t <= Utc::now() {
            return Err(format!(
                "{} is already past; expected a time to come (or a span: 8h, 30m)",
                deploy_root::time::human(t)
            ));
        }
        return Ok(Until::At(t));
    }
    // A date and time without a zone: say so (chrono's own message points
    // at a character, not at what is missing).
    if s.len() >= 16 && s.as_bytes().get(4) == Some(&b'-') && s.contains(['T', 't', ' ']) {
        return Err(format!(
            "{s:?} has no zone: expected RFC 3339 with a zone, like 2026-12-01T08:00:00Z (UTC) or 2026-12-01T09:00:00+01:00, or a span (8h, 30m)"
        ));
    }
    if humantime::parse_duration(s).is_ok_and(|d| d > MAX_SPAN) {
        return Err("at most 100 years".into());
    }
    humantime::parse_duration(s).map(Until::In).map_err(|e| {
        format!(
            "expected an RFC 3339 time with a zone (2026-12-01T08:00:00Z) or a span (8h, 30m): {e}"
        )
    })
}

/// The components a pass must leave on what runs, with why in words.
#[derive(Clone, Debug, Default)]
pub struct Held(pub BTreeMap<String, String>);

impl Held {
    /// What `control` holds at `now`, for the components of `config`.
    pub fn at(config: &Config, control: &ControlState, now: DateTime<Utc>) -> Held {
        Held(
            config
                .components
                .keys()
                .filter_map(|c| control.held(c, now).map(|w| (c.clone(), w)))
                .collect(),
        )
    }

    /// Of `newer` (the components an artifact would deploy), those not
    /// held. When some are held the plan says so; when all are, the
    /// artifact is passed over (`None`).
    pub fn unheld<'a>(
        &self,
        file: &str,
        newer: Vec<&'a String>,
        plan: &mut Plan,
    ) -> Option<Vec<&'a String>> {
        let (free, held): (Vec<&String>, Vec<&String>) =
            newer.into_iter().partition(|c| !self.0.contains_key(*c));
        if held.is_empty() {
            return Some(free);
        }
        let why: Vec<String> = held
            .iter()
            .map(|c| format!("{c} is held: {}", self.0[*c]))
            .collect();
        if free.is_empty() {
            plan.skipped.push((file.to_string(), why.join("; ")));
            return None;
        }
        let names: Vec<&str> = free.iter().map(|c| c.as_str()).collect();
        plan.partial = Some(format!(
            "only {} from it: {}",
            names.join(", "),
            why.join("; ")
        ));
        Some(free)
    }
}

/// For a pass, under its lock: drops lapsed holds (saved, with a history
/// line), and returns the config with the followed branches and what is held.
pub fn for_pass(config: &Config, layout: &Layout) -> anyhow::Result<(Config, Held)> {
    let now = Utc::now();
    let mut control = ctl::load(layout)?;
    let before = control.clone();
    let gone = control.drop_lapsed(now);
    if !gone.is_empty() {
        tracing::info!("lapsed by themselves: {}", gone.join("; "));
        commit(
            layout,
            &control,
            "lapse",
            Vec::new(),
            None,
            format!("lapsed by themselves: {}", gone.join("; ")),
            "switcher".into(),
        )?;
        // Sent at the end of the pass (notify::flush).
        for event in lapsed_events(config, &before, &control) {
            notify::emit(layout, event);
        }
    }
    Ok(effective(config, &control, now))
}

/// `unfrozen` and `unpinned` (by `automatic`) for the holds that lapsed
/// between `before` and `after`.
fn lapsed_events(config: &Config, before: &ControlState, after: &ControlState) -> Vec<Event> {
    let mut events = Vec::new();
    if let (Some(f), None) = (&before.freeze, &after.freeze) {
        events.push(
            Event::new(Kind::Unfrozen)
                .components(config.components.keys().cloned())
                .by("automatic")
                .reason(format!(
                    "the freeze lapsed by itself (frozen {})",
                    f.words()
                )),
        );
    }
    let unpinned: Vec<&String> = before
        .pins
        .keys()
        .filter(|c| !after.pins.contains_key(*c))
        .collect();
    if !unpinned.is_empty() {
        let words: Vec<String> = unpinned
            .iter()
            .map(|c| format!("{c} pinned {}", before.pins[*c].hold.words()))
            .collect();
        events.push(
            Event::new(Kind::Unpinned)
                .components(unpinned.into_iter().cloned())
                .by("automatic")
                .reason(format!("the pin lapsed by itself ({})", words.join("; "))),
        );
    }
    events
}

/// The same without writing anything, for `switcher --dry-run`.
pub fn for_dry_run(config: &Config, layout: &Layout) -> anyhow::Result<(Config, Held)> {
    Ok(effective(config, &ctl::load(layout)?, Utc::now()))
}

fn effective(config: &Config, control: &ControlState, now: DateTime<Utc>) -> (Config, Held) {
    let mut config = config.clone();
    config.switcher.branches = control.branches(&config.switcher.branches, now).to_vec();
    let held = Held::at(&config, control, now);
    (config, held)
}

/// Runs one control subcommand and returns the exit code.
/// With `dry_run` (the global `--dry-run`), says what it would do and
/// changes nothing.
pub fn run(config: &Config, layout: &Layout, verb: Verb, dry_run: bool) -> anyhow::Result<u8> {
    let now = Utc::now();
    let who = ctl::who();
    match verb {
        Verb::Deploy {
            artifact,
            components,
            reason,
        } => deploy(config, layout, &artifact, &components, reason, dry_run),
        Verb::Pin {
            components,
            reason,
            until,
            fleet,
        } => {
            let components = pick(config, &components)?;
            let hold = Hold {
                reason,
                who: who.clone(),
                since: now,
                until: until.map(|u| u.at(now)),
            };
            let st: SwitcherState = state::load(&layout.switcher_state())?;
            change(
                config,
                layout,
                Scope::of(fleet, dry_run),
                "pin",
                components.clone(),
                &who,
                |c| {
                    let mut ran = Vec::new();
                    for name in &components {
                        let artifact = st
                            .components
                            .get(name)
                            .and_then(|s| s.running.as_ref())
                            .map(|r| r.info.artifact.clone());
                        ran.push(artifact.clone());
                        c.pins.insert(
                            name.clone(),
                            Pin {
                                hold: hold.clone(),
                                artifact,
                            },
                        );
                    }
                    let mut event = hold_event(Kind::Pinned, components.clone(), &hold);
                    // The artifact, when every pinned component runs the same one.
                    ran.dedup();
                    if let [Some(artifact)] = ran.as_slice() {
                        event = event.artifact(artifact);
                    }
                    let words = format!(
                        "pin {} on what runs, {}",
                        components.join(", "),
                        hold.words()
                    );
                    Ok((words, Some(event)))
                },
            )
        }
        Verb::Unpin { components, fleet } => {
            let named = !components.is_empty();
            let components = pick(config, &components)?;
            change(
                config,
                layout,
                Scope::of(fleet, dry_run),
                "unpin",
                components.clone(),
                &who,
                |c| {
                    let lifted: Vec<String> = components
                        .iter()
                        .filter(|n| c.pins.remove(*n).is_some())
                        .cloned()
                        .collect();
                    if lifted.is_empty() && named {
                        bail!("{} is not pinned", components.join(", "));
                    }
                    if lifted.is_empty() {
                        bail!("nothing is pinned");
                    }
                    let words = format!("unpin {}", lifted.join(", "));
                    let event = Event::new(Kind::Unpinned).components(lifted).who(&who);
                    Ok((words, Some(event)))
                },
            )
        }
        Verb::Freeze {
            reason,
            until,
            fleet,
        } => {
            let hold = Hold {
                reason,
                who: who.clone(),
                since: now,
                until: until.map(|u| u.at(now)),
            };
            let all: Vec<String> = config.components.keys().cloned().collect();
            change(
                config,
                layout,
                Scope::of(fleet, dry_run),
                "freeze",
                Vec::new(),
                &who,
                |c| {
                    c.freeze = Some(hold.clone());
                    let words = format!(
                        "freeze: no automatic deploys for any component, {}",
                        hold.words()
                    );
                    Ok((words, Some(hold_event(Kind::Frozen, all.clone(), &hold))))
                },
            )
        }
        Verb::Unfreeze { fleet } => change(
            config,
            layout,
            Scope::of(fleet, dry_run),
            "unfreeze",
            Vec::new(),
            &who,
            |c| match c.freeze.take() {
                Some(f) => {
                    let event = Event::new(Kind::Unfrozen)
                        .components(config.components.keys().cloned())
                        .who(&who)
                        .reason(format!("was frozen {}", f.words()));
                    Ok((format!("unfreeze (frozen {})", f.words()), Some(event)))
                }
                None => bail!("the switcher is not frozen"),
            },
        ),
        Verb::Retry { artifact } => retry(config, layout, &artifact, dry_run, &who),
        Verb::Follow {
            branches,
            any,
            default,
            reason,
            until,
        } => {
            let hold = Hold {
                reason,
                who: who.clone(),
                since: now,
                until: until.map(|u| u.at(now)),
            };
            let configured = config.switcher.branches.clone();
            change(
                config,
                layout,
                Scope::of(false, dry_run),
                "follow",
                Vec::new(),
                &who,
                |c| {
                    if default {
                        c.follow = None;
                        let words = format!(
                            "follow the config's branches again ({})",
                            branch_words(&configured)
                        );
                        return Ok((words, None));
                    }
                    let branches = if any { Vec::new() } else { branches.clone() };
                    let words = format!("follow {}, {}", branch_words(&branches), hold.words());
                    c.follow = Some(Follow {
                        branches,
                        hold: hold.clone(),
                    });
                    Ok((words, None))
                },
            )
        }
    }
}

/// `frozen` or `pinned`: who, why and until when, from the hold.
fn hold_event(kind: Kind, components: Vec<String>, hold: &Hold) -> Event {
    let event = Event::new(kind)
        .components(components)
        .who(&hold.who)
        .until(hold.until);
    match &hold.reason {
        Some(r) => event.reason(r.clone()),
        None => event,
    }
}

fn branch_words(branches: &[String]) -> String {
    if branches.is_empty() {
        "any branch".to_string()
    } else {
        format!("branch(es) {}", branches.join(", "))
    }
}

/// The named components, checked against the config; none named: all.
fn pick(config: &Config, named: &[String]) -> anyhow::Result<Vec<String>> {
    if named.is_empty() {
        return Ok(config.components.keys().cloned().collect());
    }
    for c in named {
        if !config.components.contains_key(c) {
            let known: Vec<&str> = config.components.keys().map(String::as_str).collect();
            bail!(
                "no component {c:?} in the config (known: {})",
                known.join(", ")
            );
        }
    }
    Ok(named.to_vec())
}

/// Applies `edit` to control.json under the lock, or, with `dry_run`, to
/// a copy it then forgets. `edit` returns what it did, in words, and the
/// event to notify, if any: emitted once the change is written, still
/// under the lock, and sent by this run.
/// A change to the holds: what it did in words, and its event.
type Edit<'a> = dyn Fn(&mut ControlState) -> anyhow::Result<(String, Option<Event>)> + 'a;

/// Where a hold is set: this VM's state/control.json, or the group's in
/// the store (`--fleet`); and whether only to say what would change.
#[derive(Clone, Copy, Debug)]
struct Scope {
    fleet: bool,
    dry_run: bool,
}

impl Scope {
    fn of(fleet: bool, dry_run: bool) -> Scope {
        Scope { fleet, dry_run }
    }
}

fn change(
    config: &Config,
    layout: &Layout,
    scope: Scope,
    action: &str,
    components: Vec<String>,
    who: &str,
    edit: impl Fn(&mut ControlState) -> anyhow::Result<(String, Option<Event>)>,
) -> anyhow::Result<u8> {
    let dry_run = scope.dry_run;
    if scope.fleet {
        return change_fleet(config, dry_run, &edit);
    }
    if dry_run {
        let mut control = ctl::load(layout)?;
        let (words, _) = edit(&mut control)?;
        say(
            &format!("Dry run: nothing is changed. Would {words}."),
            true,
        )?;
        return Ok(exit_codes::OK);
    }
    layout.ensure()?;
    let _lock = take_lock(layout)?;
    let mut control = ctl::load(layout)?;
    let (words, event) = edit(&mut control)?;
    commit(
        layout,
        &control,
        action,
        components,
        None,
        words.clone(),
        who.to_string(),
    )?;
    // The page and its JSON say what is held at once: operators read it,
    // and `deliver --wait` decides on it.
    refresh(config, layout);
    if let Some(event) = event {
        notify::emit(layout, event);
        notify::flush(config, layout);
    }
    say(&format!("{}.", sentence(&words)), true)?;
    Ok(exit_codes::OK)
}

/// A hold for the whole group: `fleet/<group>/control.json` in the store,
/// read and written back with If-Match (or created with If-None-Match), so
/// that two operators' changes never overwrite each other; a lost race is
/// read again and retried.
#[cfg(feature = "s3")]
fn change_fleet(config: &Config, dry_run: bool, edit: &Edit<'_>) -> anyhow::Result<u8> {
    let Some(fleet) = crate::rolling::Fleet::open(config)? else {
        bail!(
            "--fleet needs [store] and [fleet] in {}: the group's holds live in its store",
            config.path.display()
        );
    };
    let key = fleet::layout::control(&fleet.config.group);
    for _ in 0..5 {
        let current = fleet.store.get(&key)?;
        let (mut control, condition) = match &current {
            Some((bytes, meta)) => (
                serde_json::from_slice::<ControlState>(bytes)
                    .with_context(|| format!("{key} in the store is not the group's holds"))?,
                fleet::Condition::Match(meta.etag.clone()),
            ),
            None => (ControlState::default(), fleet::Condition::Create),
        };
        let (words, _) = edit(&mut control)?;
        let group = &fleet.config.group;
        if dry_run {
            say(
                &format!("Dry run: nothing is changed. Would {words} for every VM of the group {group} (fleet-wide)."),
                true,
            )?;
            return Ok(exit_codes::OK);
        }
        control.schema = deploy_root::control::SCHEMA;
        let bytes = serde_json::to_vec_pretty(&control)?;
        match fleet.store.put_bytes(&key, &bytes, &condition) {
            Ok(_) => {
                tracing::info!("{words} (fleet-wide, group {group}): written to {key}");
                say(
                    &format!("{} for every VM of the group {group} (fleet-wide; each VM applies it at its next pass).", sentence(&words)),
                    true,
                )?;
                return Ok(exit_codes::OK);
            }
            Err(
                fleet::StoreError::Precondition { .. } | fleet::StoreError::AlreadyExists { .. },
            ) => {
                tracing::debug!("{key} changed meanwhile; reading it again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("the group's holds kept changing under this command; try again")
}

#[cfg(not(feature = "s3"))]
fn change_fleet(_config: &Config, _dry_run: bool, _edit: &Edit<'_>) -> anyhow::Result<u8> {
    bail!("--fleet needs a switcher built with the store (feature s3; the .deb has it)")
}

/// Prints to stdout (a line with `newline`).
fn say(text: &str, newline: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// `words` with a capital first letter.
fn sentence(words: &str) -> String {
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn take_lock(layout: &Layout) -> anyhow::Result<lock::LockGuard> {
    lock::try_lock(&layout.switcher_lock())?.with_context(|| {
        format!(
            "another switcher run holds {}; try again when it has finished",
            layout.switcher_lock().display()
        )
    })
}

/// Writes control.json, then the history line, then the status page.
fn commit(
    layout: &Layout,
    control: &ControlState,
    action: &str,
    components: Vec<String>,
    artifact: Option<String>,
    words: String,
    who: String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    ctl::save(layout, control)?;
    fault::point("switcher:after-control-write");
    record(layout, action, components, artifact, words, who, started)
}

fn record(
    layout: &Layout,
    action: &str,
    components: Vec<String>,
    artifact: Option<String>,
    words: String,
    who: String,
    started: Instant,
) -> anyhow::Result<()> {
    let entry = HistoryEntry {
        at: Utc::now(),
        action: action.to_string(),
        artifact,
        components,
        outcome: "done".into(),
        reason: Some(words),
        steps: Vec::new(),
        total_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        slot: None,
    };
    history::append_any(layout, &AttributedEntry { entry, who })
}

/// `switcher retry ARTIFACT`: forget the failure, so a pass may pick it.
fn retry(
    config: &Config,
    layout: &Layout,
    artifact: &str,
    dry_run: bool,
    who: &str,
) -> anyhow::Result<u8> {
    let check = |st: &SwitcherState| -> anyhow::Result<()> {
        if st.failed.contains_key(artifact) {
            return Ok(());
        }
        let failed: Vec<&str> = st.failed.keys().map(String::as_str).collect();
        if failed.is_empty() {
            bail!("{artifact} is not marked failed; no artifact is");
        }
        bail!(
            "{artifact} is not marked failed; these are: {}",
            failed.join(", ")
        )
    };
    if dry_run {
        check(&state::load(&layout.switcher_state())?)?;
        say(&format!(
            "Dry run: nothing is changed. Would clear the failure mark of {artifact}, so that the next pass may try it again."
        ), true)?;
        return Ok(exit_codes::OK);
    }
    layout.ensure()?;
    let _lock = take_lock(layout)?;
    let started = Instant::now();
    let mut st: SwitcherState = state::load(&layout.switcher_state())?;
    check(&st)?;
    st.failed.remove(artifact);
    for cs in st.components.values_mut() {
        if cs
            .last_failure
            .as_ref()
            .is_some_and(|f| f.artifact == artifact)
        {
            cs.last_failure = None;
        }
    }
    state::save(&layout.switcher_state(), &st)?;
    fault::point("switcher:after-control-write");
    record(
        layout,
        "retry",
        Vec::new(),
        Some(artifact.to_string()),
        format!("cleared the failure mark of {artifact}"),
        who.to_string(),
        started,
    )?;
    refresh(config, layout);
    say(
        &format!("Cleared the failure mark of {artifact}: the next pass may try it again."),
        true,
    )?;
    Ok(exit_codes::OK)
}

fn refresh(config: &Config, layout: &Layout) {
    if let Err(e) = status::refresh(config, layout) {
        tracing::warn!("refreshing the status page: {e:#}");
    }
}

/// The staged artifact named `artifact`, or an error naming what is staged.
fn find_staged(layout: &Layout, artifact: &str) -> anyhow::Result<Staged> {
    let staged = staged::list(layout)?;
    if let Some(s) = staged.iter().find(|s| s.name.file_name() == artifact) {
        return Ok(s.clone());
    }
    if staged.is_empty() {
        bail!("{artifact} is not staged: staging holds no artifact with its marker");
    }
    let names: Vec<&str> = staged.iter().map(|s| s.name.file_name()).collect();
    bail!(
        "{artifact} is not staged (with its marker); staged: {}",
        names.join(", ")
    )
}

/// `switcher deploy ARTIFACT [--component C]...`.
fn deploy(
    config: &Config,
    layout: &Layout,
    artifact: &str,
    only: &[String],
    reason: Option<String>,
    dry_run: bool,
) -> anyhow::Result<u8> {
    let s = find_staged(layout, artifact)?;
    let carried = config
        .components_of(s.name.kind())
        .with_context(|| format!("{artifact}: its kind {:?} is not in [kinds]", s.name.kind()))?;
    let mut components: Vec<String> = carried.to_vec();
    if !only.is_empty() {
        for c in only {
            if !carried.contains(c) {
                bail!(
                    "{artifact} does not carry {c:?} (its kind {} carries {})",
                    s.name.kind(),
                    carried.join(", ")
                );
            }
        }
        components.retain(|c| only.contains(c));
    }
    let id = s.name.stem().to_string();
    let pin_reason = match &reason {
        Some(r) => format!("deployed {artifact} by hand: {r}"),
        None => format!("deployed {artifact} by hand"),
    };
    if dry_run {
        let st: SwitcherState = state::load(&layout.switcher_state())?;
        let mut out = String::from("Dry run: nothing is changed.\n");
        let (already, todo) = split_running(&st, &components, &id);
        previous_check(&st, &todo, &id, artifact)?;
        for c in &already {
            let _ = writeln!(out, "{c} already runs {artifact}.");
        }
        if !todo.is_empty() {
            let runs: Vec<String> = todo
                .iter()
                .map(|c| {
                    let r = st.components.get(c).and_then(|s| s.running.as_ref());
                    format!(
                        "{c} runs {}",
                        r.map_or("nothing", |r| r.info.artifact.as_str())
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "Would deploy {artifact} to {} now ({}): prepare, stop, flip, start, verify, going back if any of it fails.",
                todo.join(", "),
                runs.join("; ")
            );
        }
        let _ = writeln!(
            out,
            "Then it would pin {} ({pin_reason}), so that passes leave {} alone until `switcher unpin`.",
            components.join(", "),
            if components.len() == 1 { "it" } else { "them" }
        );
        say(&out, false)?;
        return Ok(exit_codes::OK);
    }
    layout.ensure()?;
    let _lock = take_lock(layout)?;
    let result = deploy_locked(config, layout, &s, artifact, &components, &pin_reason);
    // Whatever the outcome, like a pass: the page, then the events (the
    // deploy's, and `pinned`) sent, still under the lock.
    refresh(config, layout);
    notify::flush(config, layout);
    result
}

/// `switcher deploy` under the lock, from recovery to the pin.
fn deploy_locked(
    config: &Config,
    layout: &Layout,
    s: &Staged,
    artifact: &str,
    components: &[String],
    pin_reason: &str,
) -> anyhow::Result<u8> {
    let who = ctl::who();
    let id = s.name.stem().to_string();
    let started = Instant::now();
    let mut st: SwitcherState = state::load(&layout.switcher_state())?;
    if let Recovery::Failed(why) = recover::recover(config, layout, &mut st)? {
        state::save(&layout.switcher_state(), &st)?;
        bail!("recovering from a cut-short pass failed first: {why}");
    }
    release::remove_temp_folders(layout)?;
    let (already, todo) = split_running(&st, components, &id);
    previous_check(&st, &todo, &id, artifact)?;
    let now = Utc::now();
    let hold = Hold {
        reason: Some(pin_reason.to_string()),
        who: who.clone(),
        since: now,
        until: None,
    };
    let pinned = || hold_event(Kind::Pinned, components.to_vec(), &hold).artifact(artifact);
    let pin_all = |st: &mut SwitcherState| -> anyhow::Result<()> {
        let mut control = ctl::load(layout)?;
        for c in components {
            control.pins.insert(
                c.clone(),
                Pin {
                    hold: hold.clone(),
                    artifact: Some(artifact.to_string()),
                },
            );
        }
        // It runs now: its old failure mark (if any) no longer holds.
        st.failed.remove(artifact);
        ctl::save(layout, &control)
    };
    let code = if todo.is_empty() {
        pin_all(&mut st)?;
        state::save(&layout.switcher_state(), &st)?;
        fault::point("switcher:after-control-write");
        record(
            layout,
            "pin",
            components.to_vec(),
            Some(artifact.to_string()),
            format!("{} already ran {artifact}; pinned", already.join(", ")),
            who.clone(),
            started,
        )?;
        notify::emit(layout, pinned());
        say(
            &format!("{} already runs {artifact}; pinned.", already.join(", ")),
            true,
        )?;
        exit_codes::OK
    } else {
        let choice = Choice {
            staged: s.clone(),
            components: todo.clone(),
        };
        let staged = staged::list(layout)?;
        let by_hand = pass::ByHand {
            who: who.clone(),
            on_deployed: &pin_all,
        };
        let code = pass::deploy(
            config,
            layout,
            &mut st,
            &choice,
            None,
            &staged,
            started,
            Some(&by_hand),
            None,
        )?;
        if code == exit_codes::OK {
            // The pin was written before the state (ByHand::on_deployed);
            // `deployed` is in the outbox already, `pinned` follows it.
            notify::emit(layout, pinned());
            say(
                &format!(
                    "{artifact} runs now ({}); pinned {}.",
                    todo.join(", "),
                    components.join(", ")
                ),
                true,
            )?;
        }
        code
    };
    Ok(code)
}

/// The components that already run release `id`, and the others.
fn split_running(
    st: &SwitcherState,
    components: &[String],
    id: &str,
) -> (Vec<String>, Vec<String>) {
    components.iter().cloned().partition(|c| {
        st.components
            .get(c)
            .and_then(|s| s.running.as_ref())
            .is_some_and(|r| r.release == id)
    })
}

/// The release a rollback returns to is never unpacked over (see
/// `release`), so deploying it again is `switcher rollback`'s job.
fn previous_check(
    st: &SwitcherState,
    todo: &[String],
    id: &str,
    artifact: &str,
) -> anyhow::Result<()> {
    for c in todo {
        let previous = st.components.get(c).and_then(|s| s.previous.as_ref());
        if previous.is_some_and(|p| p.release == id) {
            bail!(
                "{artifact} is {c}'s previous release: go back to it with `switcher rollback {c}`, then `switcher pin {c}`"
            );
        }
    }
    Ok(())
}

/// The holds as lines for `switcher --dry-run`: "backend: held: pinned by ...".
pub fn dry_run_lines(held: &Held) -> Vec<String> {
    held.0
        .iter()
        .map(|(c, why)| format!("{c}: held: {why}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lapsed_holds_become_unfrozen_and_unpinned_by_automatic() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = Config::parse(
            &dir.path().join("cutover.toml"),
            "root = \"root\"\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\
             [components.backend]\nport = 1\n[components.frontend]\nport = 2\n",
        )?;
        let now = Utc::now();
        let hold = |until: Option<DateTime<Utc>>| Hold {
            reason: Some("why".into()),
            who: "alice".into(),
            since: now - chrono::Duration::hours(1),
            until,
        };
        let past = Some(now - chrono::Duration::seconds(1));
        let mut before = ControlState {
            freeze: Some(hold(past)),
            ..ControlState::default()
        };
        for (c, until) in [("backend", past), ("frontend", None)] {
            let pin = Pin {
                hold: hold(until),
                artifact: None,
            };
            before.pins.insert(c.into(), pin);
        }
        let mut after = before.clone();
        after.drop_lapsed(now);
        let events = lapsed_events(&config, &before, &after);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["unfrozen", "unpinned"]);
        assert_eq!(events[0].components, ["backend", "frontend"]);
        assert_eq!(
            events[1].components,
            ["backend"],
            "the frontend's pin holds"
        );
        for e in &events {
            assert_eq!(e.by.as_deref(), Some("automatic"));
            assert!(e.reason.as_deref().is_some_and(|r| r.contains("by alice")));
        }
        assert!(lapsed_events(&config, &after, &after).is_empty());
        Ok(())
    }
}
