//! Which artifact a pass takes into service, and why (the dry run prints
//! the same reasoning).
//!
//! The rule: the single newest staged artifact (by build time, then name)
//! whose kind the config knows, whose branch passes `switcher.branches`,
//! that has not failed before, and that is newer than what runs for *every*
//! component it carries (so a `full` artifact never takes a component back
//! to an older build than the one it runs). A `full` artifact is one unit
//! covering all its components.

use chrono::{DateTime, Utc};
use deploy_root::state::{ArtifactInfo, SwitcherState};
use deploy_root::Config;

use crate::staged::Staged;

/// The artifact a pass takes into service.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The artifact.
    pub staged: Staged,
    /// The components it carries (from `kinds`).
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
}

/// The ordering key of an artifact: build time, then file name (the same
/// order as [`artifact_name::ArtifactName`]).
pub fn key(info: &ArtifactInfo) -> (DateTime<Utc>, &str) {
    (info.build_time, info.artifact.as_str())
}

/// Chooses per the rule above. `staged` may be in any order.
pub fn choose(config: &Config, state: &SwitcherState, staged: &[Staged]) -> Plan {
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
        let info = ArtifactInfo::from(&s.name);
        let not_newer: Vec<String> = components
            .iter()
            .filter_map(|c| {
                let running = state.components.get(c)?.running.as_ref()?;
                (key(&info) <= key(&running.info))
                    .then(|| format!("{c} runs {}", running.info.artifact))
            })
            .collect();
        if !not_newer.is_empty() {
            // Older artifacts may still be newer for a component that runs
            // something older (after a rollback of one component): go on.
            plan.skipped.push((
                file,
                format!("it is not newer than what runs ({})", not_newer.join("; ")),
            ));
            continue;
        }
        plan.choice = Some(Choice {
            staged: s.clone(),
            components: components.to_vec(),
        });
        break;
    }
    plan
}
