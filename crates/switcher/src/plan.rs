//! Which artifact a pass takes into service, and why (the dry run prints
//! the same reasoning).
//!
//! The rule, per component: the newest staged artifact (by build time, then
//! name) that carries it, whose kind the config knows, whose branch passes
//! `switcher.branches`, that has not failed before, and that is newer than
//! what the component runs. A pass takes the newest such artifact into
//! service for every component it is the choice of, as one unit (if one
//! fails, all go back). So a `full` artifact never takes a component back
//! to an older build: when a newer `frontend` artifact already runs, the
//! `full` one deploys its backend only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::SwitcherState;
use deploy_root::{staging, Config};

use crate::control::Held;
use crate::staged::Staged;

/// The artifact a pass takes into service.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The artifact.
    pub staged: Staged,
    /// The components it deploys: those it carries (from `kinds`) for which
    /// it is newer than what runs.
    pub components: Vec<String>,
}

/// The outcome of choosing: maybe a choice, and why each newer artifact was
/// passed over.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// What to deploy, if anything.
    pub choice: Option<Choice>,
    /// Artifacts passed over, newest first, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Why the choice deploys only some of the components it carries.
    pub partial: Option<String>,
    /// Artifacts held because their build time is ahead of this machine's
    /// clock by more than `switcher.max_clock_skew`, with the reason (also
    /// in `skipped`). The pass records them in `switcher.json` (`held`).
    pub held: BTreeMap<String, String>,
}

pub use deploy_root::staging::key;

/// Why an artifact built at `built` is held at `now`, if it is: its build
/// time is ahead of the clock by more than `switcher.max_clock_skew`.
/// Deployed, it would stay "newer" than every build CI makes until the
/// clock catches up, blocking them all.
pub fn built_in_future(
    config: &Config,
    built: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<String> {
    let ahead = built.signed_duration_since(now);
    let skew = chrono::Duration::from_std(config.switcher.max_clock_skew).ok()?;
    if ahead <= skew {
        return None;
    }
    // Whole minutes, rounded up: "0 min ahead" would read as no reason.
    let minutes = (ahead.num_seconds() + 59) / 60;
    Some(format!(
        "built in the future: {} is {minutes} min ahead of this VM's clock (more than switcher.max_clock_skew, {}); held until the clock catches up or a correctly dated build arrives",
        deploy_root::time::human(built),
        humantime_short(config.switcher.max_clock_skew),
    ))
}

fn humantime_short(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Chooses per the rule above, at time `now`. `staged` may be in any order.
pub fn choose(
    config: &Config,
    state: &SwitcherState,
    staged: &[Staged],
    now: DateTime<Utc>,
) -> Plan {
    choose_held(config, state, &Held::default(), staged, now)
}

/// [`choose`], leaving the components `held` holds (pinned, frozen) on
/// what runs.
pub fn choose_held(
    config: &Config,
    state: &SwitcherState,
    held: &Held,
    staged: &[Staged],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let mut sorted: Vec<&Staged> = staged.iter().collect();
    sorted.sort_by(|a, b| b.name.cmp(&a.name));
    for s in sorted {
        let file = s.name.file_name().to_string();
        let Some(components) = config.components_of(s.name.kind()) else {
            let known: Vec<&str> = config.kinds.keys().map(String::as_str).collect();
            plan.skipped.push((
                file,
                format!(
                    "its kind {:?} is not in [kinds] (known: {})",
                    s.name.kind(),
                    known.join(", ")
                ),
            ));
            continue;
        };
        if !config.switcher.branches.is_empty()
            && !config
                .switcher
                .branches
                .iter()
                .any(|b| b == s.name.branch())
        {
            plan.skipped.push((
                file,
                format!(
                    "its branch {:?} is not in switcher.branches ({})",
                    s.name.branch(),
                    config.switcher.branches.join(", ")
                ),
            ));
            continue;
        }
        if let Some(f) = state.failed.get(&file) {
            plan.skipped.push((
                file,
                format!(
                    "it failed before ({} at {}: {})",
                    f.step,
                    deploy_root::time::human(f.at),
                    f.reason
                ),
            ));
            continue;
        }
        if let Some(why) = built_in_future(config, s.name.build_time(), now) {
            plan.held.insert(file.clone(), why.clone());
            plan.skipped.push((file, why));
            continue;
        }
        let (newer, not_newer): (Vec<&String>, Vec<&String>) = components
            .iter()
            .partition(|c| staging::newer_than_running(state, c, &s.name));
        let runs = |c: &String| {
            let running = state.components.get(c).and_then(|s| s.running.as_ref());
            format!(
                "{c} runs {}",
                running.map_or("nothing", |r| r.info.artifact.as_str())
            )
        };
        if newer.is_empty() {
            // Older artifacts may still be newer for a component that runs
            // something older (after a rollback of one component): go on.
            let runs: Vec<String> = not_newer.into_iter().map(runs).collect();
            plan.skipped.push((
                file,
                format!("it is not newer than what runs ({})", runs.join("; ")),
            ));
            continue;
        }
        let Some(newer) = held.unheld(&file, newer, &mut plan) else {
            continue;
        };
        if !not_newer.is_empty() {
            let runs: Vec<String> = not_newer.into_iter().map(runs).collect();
            plan.partial = Some(format!(
                "only {} from it: it is not newer than what runs ({})",
                newer
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                runs.join("; ")
            ));
        }
        plan.choice = Some(Choice {
            staged: s.clone(),
            components: newer.into_iter().cloned().collect(),
        });
        break;
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use artifact_name::{ArtifactName, Ext};
    use chrono::TimeZone;
    use deploy_root::state::{ArtifactInfo, ComponentState, Failure, RunningRelease};

    use super::*;

    const CONFIG: &str = r#"
root = "/srv/cutover"
[kinds]
full = ["backend", "frontend"]
frontend = ["frontend"]
[components.backend]
port = 8080
[components.frontend]
port = 80
"#;

    fn config(extra: &str) -> Config {
        Config::parse(Path::new("/etc/cutover.toml"), &format!("{CONFIG}{extra}"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn staged(kind: &str, minute: u32, branch: &str) -> Staged {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 26, 0, minute, 0)
            .single()
            .unwrap_or_default();
        let name =
            ArtifactName::new(kind, t, "1.0", branch, Ext::TarGz).unwrap_or_else(|e| panic!("{e}"));
        Staged {
            path: PathBuf::from(name.file_name()),
            marker: PathBuf::from(name.marker_name()),
            size: 0,
            changed: t,
            name,
        }
    }

    /// The clock of these tests: a day after their artifacts' build times
    /// (injected, so that they never depend on today's date).
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn running(s: &Staged) -> ComponentState {
        ComponentState {
            running: Some(RunningRelease {
                info: ArtifactInfo::from(&s.name),
                release: s.name.stem().to_string(),
                since: Utc::now(),
            }),
            ..ComponentState::default()
        }
    }

    fn chosen(plan: &Plan) -> Option<&str> {
        plan.choice.as_ref().map(|c| c.staged.name.file_name())
    }

    #[test]
    fn the_newest_eligible_artifact_wins_as_one_unit() {
        let c = config("");
        let old = staged("full", 1, "master");
        let new = staged("frontend", 2, "master");
        let plan = choose(
            &c,
            &SwitcherState::default(),
            &[new.clone(), old.clone()],
            now(),
        );
        assert_eq!(chosen(&plan), Some(new.name.file_name()));
        assert_eq!(
            plan.choice.map(|c| c.components),
            Some(vec!["frontend".to_string()])
        );
    }

    #[test]
    fn failed_foreign_branch_and_older_artifacts_are_passed_over_with_reasons() {
        let c = config("[switcher]\nbranches = [\"master\"]\n");
        let runs = staged("full", 2, "master");
        let mut st = SwitcherState::default();
        st.components.insert("backend".into(), running(&runs));
        st.components.insert("frontend".into(), running(&runs));
        let failed = staged("full", 5, "master");
        st.failed.insert(
            failed.name.file_name().to_string(),
            Failure {
                artifact: failed.name.file_name().to_string(),
                component: "backend".into(),
                step: "verify".into(),
                exit_code: None,
                reason: "nothing listened".into(),
                output_tail: Vec::new(),
                at: Utc::now(),
                running_instead: Default::default(),
                rollback_failed: false,
            },
        );
        let feature = staged("full", 4, "feature/x");
        let older = staged("full", 1, "master");
        let good = staged("frontend", 3, "master");
        let all = [failed, feature, good.clone(), runs, older];
        let plan = choose(&c, &st, &all, now());
        assert_eq!(chosen(&plan), Some(good.name.file_name()));
        let reasons: Vec<&str> = plan.skipped.iter().map(|(_, r)| r.as_str()).collect();
        assert!(reasons[0].contains("failed before"), "{reasons:?}");
        assert!(reasons[1].contains("switcher.branches"), "{reasons:?}");

        // Without the good one, nothing: the running one is not newer.
        let plan = choose(&c, &st, &all[..1], now());
        assert!(plan.choice.is_none());
        let plan = choose(&c, &st, &all[3..], now());
        assert!(plan.choice.is_none());
        assert!(
            plan.skipped[0].1.contains("not newer"),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn a_full_artifact_older_than_a_running_frontend_deploys_its_backend_only() {
        let c = config("");
        let full1 = staged("full", 1, "master");
        let front3 = staged("frontend", 3, "master");
        let full2 = staged("full", 2, "master");
        let mut st = SwitcherState::default();
        st.components.insert("backend".into(), running(&full1));
        st.components.insert("frontend".into(), running(&front3));
        let plan = choose(&c, &st, std::slice::from_ref(&full2), now());
        assert_eq!(chosen(&plan), Some(full2.name.file_name()));
        assert_eq!(
            plan.choice.as_ref().map(|c| c.components.clone()),
            Some(vec!["backend".to_string()])
        );
        let partial = plan.partial.unwrap_or_default();
        assert!(
            partial.contains("only backend") && partial.contains("frontend runs"),
            "{partial}"
        );
        // Once the backend runs it, nothing is newer for either component.
        st.components.insert("backend".into(), running(&full2));
        let plan = choose(&c, &st, &[full2], now());
        assert!(plan.choice.is_none(), "{plan:?}");
        assert!(
            plan.skipped[0].1.contains("not newer"),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn a_build_dated_in_the_future_is_held_and_an_older_one_deploys() {
        let c = config("[switcher]\nmax_clock_skew = \"5m\"\n");
        let old = staged("full", 1, "master");
        let ahead = staged("full", 30, "master");
        // The clock reads 00:10: the 00:30 build is 20 min ahead.
        let at = |minute| {
            Utc.with_ymd_and_hms(2026, 11, 26, 0, minute, 0)
                .single()
                .unwrap_or_default()
        };
        let plan = choose(
            &c,
            &SwitcherState::default(),
            &[ahead.clone(), old.clone()],
            at(10),
        );
        assert_eq!(chosen(&plan), Some(old.name.file_name()));
        let why = &plan.held[ahead.name.file_name()];
        assert!(
            why.contains(
                "built in the future: 2026-11-26 00:30:00 UTC is 20 min ahead of this VM's clock"
            ),
            "{why}"
        );
        assert_eq!(plan.skipped[0].1, *why);
        // Within the allowed skew (4 min ahead) it deploys.
        let plan = choose(&c, &SwitcherState::default(), &[ahead.clone(), old], at(26));
        assert_eq!(chosen(&plan), Some(ahead.name.file_name()));
        assert!(plan.held.is_empty());
    }
}
