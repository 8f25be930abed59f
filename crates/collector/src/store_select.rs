//! Which of the store's complete artifacts a pass takes into staging.
//!
//! The store is shared: every build of every branch and kind lands there,
//! and a pass that downloaded each one would move gigabytes a minute. So
//! the collector takes only what the switcher could deploy next: per
//! component, the artifact the switcher's plan would choose
//! (`switcher::plan`: the newest that carries the component, whose branch
//! passes the branch filter, that has not failed, newer than what runs) if
//! every complete artifact of the store were staged beside what is. It is
//! taken when it is in the store and not in staging.
//!
//! The same order decides everywhere: the contract's (build time, then
//! name), through [`deploy_root::staging`]. The branch filter counts here,
//! not only in the switcher: taking the newest build of a kind whatever its
//! branch would let a feature branch's build shadow, for good, an older
//! master build that the switcher would have deployed.
//!
//! Older builds are never taken, nor builds of other branches: `switcher
//! deploy` of such a build needs it staged (deliver it to the drop folder,
//! or `switcher follow` its branch for a pass). Nor is an artifact the
//! pass must refuse ([`Refused`]): its name is quarantined already (so a
//! bad object is not downloaded every minute), its release id is a
//! release folder or the stem of another staged artifact (the drop
//! folder's clash rule).

use std::collections::BTreeSet;

use artifact_name::ArtifactName;
use deploy_root::state::SwitcherState;
use deploy_root::Config;

/// Whether an offered artifact must not be taken, and why (for the debug
/// log); `None`: it may be.
pub type Refused<'a> = dyn Fn(&ArtifactName) -> Option<String> + 'a;

/// What the switcher decides by, as this pass reads it.
#[derive(Debug)]
pub struct Judge<'a> {
    /// The config (kinds and components).
    pub config: &'a Config,
    /// The branches automatic deploys take (`switcher follow`, else
    /// `switcher.branches`); empty: any.
    pub branches: &'a [String],
    /// The switcher's state: what runs, what failed.
    pub switcher: &'a SwitcherState,
}

impl Judge<'_> {
    /// Whether the switcher could choose `name` for `component` at all:
    /// it carries the component, its branch passes, it never failed.
    fn may_choose(&self, component: &str, name: &ArtifactName) -> bool {
        self.config
            .components_of(name.kind())
            .is_some_and(|cs| cs.iter().any(|c| c == component))
            && (self.branches.is_empty() || self.branches.iter().any(|b| b == name.branch()))
            && !self.switcher.failed.contains_key(name.file_name())
    }
}

/// The artifacts to take from `offered` (the store's complete artifacts),
/// given what is `staged`; oldest first, each once.
pub fn select(
    judge: &Judge<'_>,
    staged: &[ArtifactName],
    offered: &[ArtifactName],
    refused: &Refused<'_>,
) -> Vec<ArtifactName> {
    let staged_names: BTreeSet<&str> = staged.iter().map(ArtifactName::file_name).collect();
    let mut picks = BTreeSet::new();
    for component in judge.config.components.keys() {
        let best_staged = staged
            .iter()
            .filter(|n| judge.may_choose(component, n))
            .max();
        // Newest first, so that a refused one gives way to the next.
        let mut candidates: Vec<&ArtifactName> = offered
            .iter()
            .filter(|n| !staged_names.contains(n.file_name()))
            .filter(|n| judge.may_choose(component, n))
            .filter(|n| best_staged.map_or(true, |s| *n > s))
            .filter(|n| deploy_root::staging::newer_than_running(judge.switcher, component, n))
            .collect();
        candidates.sort_by(|a, b| b.cmp(a));
        for n in candidates {
            match refused(n) {
                None => {
                    picks.insert(n.clone());
                    break;
                }
                Some(why) => tracing::debug!(
                    "not taking {} from the store for the {component}: {why}",
                    n.file_name()
                ),
            }
        }
    }
    picks.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use artifact_name::Ext;
    use chrono::{TimeZone, Utc};
    use deploy_root::state::{ArtifactInfo, ComponentState, RunningRelease};

    use super::*;

    fn config() -> Config {
        Config::parse(
            Path::new("/etc/cutover.toml"),
            "root = \"/srv/cutover\"\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\
             frontend = [\"frontend\"]\n[components.backend]\nport = 8080\n\
             [components.frontend]\nport = 80\n",
        )
        .unwrap()
    }

    /// An artifact built `hour` hours into 2026-11-27.
    fn n(kind: &str, hour: u32, branch: &str) -> ArtifactName {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap();
        ArtifactName::new(kind, t, &format!("1.{hour}"), branch, Ext::TarGz).unwrap()
    }

    fn runs(state: &mut SwitcherState, component: &str, name: &ArtifactName) {
        state.components.insert(
            component.into(),
            ComponentState {
                running: Some(RunningRelease {
                    info: ArtifactInfo::from(name),
                    release: name.stem().into(),
                    since: Utc::now(),
                }),
                ..ComponentState::default()
            },
        );
    }

    fn files(names: &[ArtifactName]) -> Vec<&str> {
        names.iter().map(ArtifactName::file_name).collect()
    }

    fn none(_: &ArtifactName) -> Option<String> {
        None
    }

    #[test]
    fn only_the_newest_that_could_deploy_and_only_once() {
        let config = config();
        let switcher = SwitcherState::default();
        let judge = Judge {
            config: &config,
            branches: &[],
            switcher: &switcher,
        };
        let offered = [
            n("full", 1, "master"),
            n("full", 3, "master"),
            n("full", 2, "master"),
        ];
        // Both components choose full@3: taken once.
        assert_eq!(
            files(&select(&judge, &[], &offered, &none)),
            [n("full", 3, "master").file_name()]
        );
        // Staged already: nothing; a newer one staged: nothing older.
        assert!(select(&judge, &[n("full", 3, "master")], &offered, &none).is_empty());
        assert!(select(&judge, &[n("full", 4, "master")], &offered, &none).is_empty());
        // Kinds the config does not know are never offered to anyone.
        assert!(select(&judge, &[], &[n("docs", 9, "master")], &none).is_empty());
    }

    #[test]
    fn per_component_a_newer_frontend_beside_an_older_full() {
        let config = config();
        let mut switcher = SwitcherState::default();
        let old = n("full", 1, "master");
        runs(&mut switcher, "backend", &old);
        runs(&mut switcher, "frontend", &old);
        let judge = Judge {
            config: &config,
            branches: &[],
            switcher: &switcher,
        };
        // The frontend would take frontend@5, the backend full@3.
        let offered = [
            n("full", 3, "master"),
            n("frontend", 5, "master"),
            old.clone(),
        ];
        assert_eq!(
            files(&select(&judge, &[], &offered, &none)),
            [
                n("full", 3, "master").file_name(),
                n("frontend", 5, "master").file_name()
            ]
        );
        // What runs is not taken again, nor anything older.
        assert!(select(&judge, &[], &[old, n("full", 0, "master")], &none).is_empty());
    }

    #[test]
    fn the_branch_filter_and_failures_count() {
        let config = config();
        let mut switcher = SwitcherState::default();
        let master = n("full", 2, "master");
        let feature = n("full", 3, "feature/x");
        let offered = [master.clone(), feature.clone()];
        let branches = ["master".to_string()];
        let judge = Judge {
            config: &config,
            branches: &branches,
            switcher: &switcher,
        };
        // A newer feature build does not shadow master's.
        assert_eq!(
            files(&select(&judge, &[], &offered, &none)),
            [master.file_name()]
        );
        // A failed newer build does not shadow an older good one, staged
        // or not.
        let failed = n("full", 4, "master");
        switcher.failed.insert(
            failed.file_name().into(),
            deploy_root::state::Failure {
                artifact: failed.file_name().into(),
                component: "backend".into(),
                step: "start".into(),
                exit_code: Some(1),
                reason: "no".into(),
                output_tail: Vec::new(),
                at: Utc::now(),
                running_instead: Default::default(),
                rollback_failed: false,
            },
        );
        let judge = Judge {
            config: &config,
            branches: &[],
            switcher: &switcher,
        };
        assert_eq!(
            files(&select(
                &judge,
                std::slice::from_ref(&failed),
                &offered,
                &none
            )),
            [feature.file_name()]
        );
        assert_eq!(
            files(&select(&judge, &[], &[failed, master.clone()], &none)),
            [master.file_name()]
        );
    }

    #[test]
    fn a_refused_newest_gives_way_to_the_next() {
        let config = config();
        let switcher = SwitcherState::default();
        let judge = Judge {
            config: &config,
            branches: &[],
            switcher: &switcher,
        };
        let bad = n("full", 3, "master");
        let good = n("full", 2, "master");
        let refused = |x: &ArtifactName| (x == &bad).then(|| "quarantined".to_string());
        assert_eq!(
            files(&select(&judge, &[], &[bad.clone(), good.clone()], &refused)),
            [good.file_name()]
        );
        // But never one older than what is staged.
        assert!(select(
            &judge,
            std::slice::from_ref(&good),
            &[bad.clone(), good.clone()],
            &refused
        )
        .is_empty());
    }
}
