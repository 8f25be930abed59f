//! "Last": per component, the newest artifact in staging that carries it.
//!
//! Recomputed from staging on every pass, so an artifact that was pruned
//! (or removed by hand) never stays "Last".

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deploy_root::state::{ArtifactInfo, LastArtifact};
use deploy_root::Config;

use crate::staging::Staged;

/// Computes "Last". `collected_now` holds the artifacts this pass took in;
/// for the others, the collection time comes from `previous` or, failing
/// that, from the staged file's ctime.
pub fn compute(
    config: &Config,
    staged: &[Staged],
    previous: &BTreeMap<String, LastArtifact>,
    collected_now: &BTreeMap<String, DateTime<Utc>>,
) -> BTreeMap<String, LastArtifact> {
    let mut newest: BTreeMap<&str, &Staged> = BTreeMap::new();
    for s in staged {
        // A kind the config no longer knows carries no component.
        let Some(components) = config.components_of(s.name.kind()) else {
            continue;
        };
        for c in components {
            let slot = newest.entry(c.as_str()).or_insert(s);
            if s.name > slot.name {
                *slot = s;
            }
        }
    }
    newest
        .into_iter()
        .map(|(component, s)| {
            let file = s.name.file_name();
            let collected_at = collected_now
                .get(file)
                .copied()
                .or_else(|| {
                    previous
                        .values()
                        .find(|l| l.info.artifact == file)
                        .map(|l| l.collected_at)
                })
                .unwrap_or(s.changed);
            let last = LastArtifact {
                info: ArtifactInfo::from(&s.name),
                size: s.size,
                collected_at,
            };
            (component.to_string(), last)
        })
        .collect()
}
