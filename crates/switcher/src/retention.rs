//! Pruning old releases and the staged archives no release needs.
//!
//! Releases: at most `switcher.keep_releases` per component. Never removed:
//! the release current/ points to, the running and the previous good one
//! (the rollback target), and one whose artifact is still waiting to deploy
//! (newer than what runs and not failed). Failed releases go first, then
//! the oldest. Folders whose name is not a release id are not ours: left
//! alone and not counted.
//!
//! Staging: an archive goes (marker first, so that it stops counting as
//! complete) only when [`deploy_root::staging::protected`] does not keep it
//! (not newer than what runs for any component it carries, neither running
//! nor previous) and no release folder of it is left. The collector prunes staging too, under its own lock; both only
//! remove what the other no longer needs, so the order does not matter.

use std::fs;

use artifact_name::ArtifactName;
use deploy_root::state::SwitcherState;
use deploy_root::{staging, Config, Layout};

use crate::release::remove_dir_if_exists;
use crate::staged::Staged;

/// The artifact a release id stands for (the extension is not part of the
/// id, so `.tar` stands in: only the name's other fields are used).
pub fn parse_id(id: &str) -> Option<ArtifactName> {
    ArtifactName::parse(&format!("{id}.tar")).ok()
}

/// Prunes releases and staging; problems are logged, never fatal (a pass
/// that deployed must not report failure because cleaning up did not work).
pub fn prune(config: &Config, layout: &Layout, state: &SwitcherState, staged: &[Staged]) {
    if let Err(e) = prune_releases(config, layout, state, staged) {
        tracing::warn!("pruning old releases: {e:#}");
    }
    if let Err(e) = prune_staging(config, layout, state, staged) {
        tracing::warn!("pruning staging: {e:#}");
    }
}

fn prune_releases(
    config: &Config,
    layout: &Layout,
    state: &SwitcherState,
    staged: &[Staged],
) -> anyhow::Result<()> {
    let failed_stems: Vec<String> = state
        .failed
        .keys()
        .filter_map(|a| ArtifactName::parse(a).ok())
        .map(|n| n.stem().to_string())
        .collect();
    for c in config.components.keys() {
        let dir = layout.releases_of(c);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut ids: Vec<(String, ArtifactName)> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|id| parse_id(&id).map(|n| (id, n)))
            .collect();
        let keep = config.switcher.keep_releases;
        if ids.len() <= keep {
            continue;
        }
        let cs = state.components.get(c);
        let mut protected: Vec<String> = Vec::new();
        protected.extend(layout.current_release(c));
        if let Some(cs) = cs {
            protected.extend(cs.running.iter().map(|r| r.release.clone()));
            protected.extend(cs.previous.iter().map(|r| r.release.clone()));
        }
        for s in staged {
            if staging::waits_for(state, c, &s.name) {
                protected.push(s.name.stem().to_string());
            }
        }
        // Failed first, then oldest first.
        ids.sort_by(|(a, an), (b, bn)| {
            let af = failed_stems.contains(a);
            let bf = failed_stems.contains(b);
            bf.cmp(&af).then_with(|| an.cmp(bn))
        });
        let mut count = ids.len();
        for (id, _) in &ids {
            if count <= keep {
                break;
            }
            if protected.contains(id) {
                continue;
            }
            tracing::info!("{c}: removing old release {id}");
            remove_dir_if_exists(&layout.release(c, id))?;
            count -= 1;
        }
    }
    Ok(())
}

fn prune_staging(
    config: &Config,
    layout: &Layout,
    state: &SwitcherState,
    staged: &[Staged],
) -> anyhow::Result<()> {
    for s in staged {
        let file = s.name.file_name();
        if config.components_of(s.name.kind()).is_none() {
            // Not ours to judge: the collector's staging_keep bounds it.
            continue;
        }
        if staging::protected(config, state, &s.name).is_some() {
            continue;
        }
        if config
            .components
            .keys()
            .any(|c| layout.release(c, s.name.stem()).exists())
        {
            continue;
        }
        tracing::info!("staging: removing {file}, which no release needs");
        for path in [&s.marker, &s.path] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("removing {}", path.display()))
                    )
                }
            }
        }
    }
    Ok(())
}
