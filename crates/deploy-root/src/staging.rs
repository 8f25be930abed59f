//! The staging folder's one policy, for the collector and the switcher alike:
//! what counts as staged, in which order, what is "newer than what runs",
//! and what must not be pruned.
//!
//! Both binaries used to list staging/ and judge "newer" each in its own
//! way, and they disagreed (a symlinked marker counted for one and not the
//! other; with nothing running, one called every artifact newer and the
//! other none). Everything that decides about staged artifacts lives here
//! so that it cannot drift apart again.
//!
//! - Staged: a file whose name is a valid artifact name, that is a regular
//!   file (not a symlink), whose `.sha256` marker is a regular file too (not
//!   a symlink: the collector writes markers itself, so a link is something
//!   else's doing and is not trusted). Hidden files are temporary writes.
//! - Order: build time, then file name ([`ArtifactName`]'s order).
//! - Newer than what runs: later in that order than the artifact the
//!   component runs; when nothing runs, anything is newer (a first deploy
//!   waits to happen).
//! - Protected from pruning: what runs or is the previous good release
//!   (the archive is the only copy left should its release folder be lost),
//!   and an artifact newer than what runs for a component it carries (the
//!   switcher may be about to deploy it, or it is the failed Last the status
//!   page shows).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use artifact_name::{ArtifactName, MARKER_SUFFIX};
use chrono::{DateTime, TimeZone, Utc};

use crate::state::{ArtifactInfo, SwitcherState};
use crate::Config;

/// One staged artifact: a valid name, a regular file, and its marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// Its parsed name.
    pub name: ArtifactName,
    /// The archive.
    pub path: PathBuf,
    /// Its marker.
    pub marker: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last renamed or changed (the rename into staging sets
    /// the ctime), a stand-in for "collected at" for files staged before
    /// the collector's state knew them.
    pub changed: DateTime<Utc>,
}

/// The marker's file name of the file `name`.
fn marker_name(name: &OsStr) -> std::ffi::OsString {
    let mut m = name.to_os_string();
    m.push(MARKER_SUFFIX);
    m
}

/// Whether the file `name` has its marker in `staging`, as a regular file
/// (a symlink does not count).
pub fn has_marker(staging: &Path, name: &OsStr) -> bool {
    fs::symlink_metadata(staging.join(marker_name(name))).is_ok_and(|m| m.is_file())
}

/// The staged artifacts, oldest first (build time, then name). A missing
/// staging folder is empty.
pub fn list(staging: &Path) -> io::Result<Vec<Staged>> {
    let rd = match fs::read_dir(staging) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry?;
        let file_name = entry.file_name();
        if file_name.as_bytes().starts_with(b".") {
            continue;
        }
        // A marker's name never parses as an artifact name (".sha256" is
        // not an extension), so markers fall out here too.
        let Ok(name) = ArtifactName::parse_bytes(file_name.as_bytes()) else {
            continue;
        };
        let path = entry.path();
        // symlink_metadata: a symlinked artifact is not staged.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || !has_marker(staging, &file_name) {
            continue;
        }
        out.push(Staged {
            marker: staging.join(marker_name(&file_name)),
            path,
            size: meta.len(),
            changed: Utc
                .timestamp_opt(meta.ctime(), 0)
                .single()
                .unwrap_or_else(Utc::now),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The ordering key of a recorded artifact: build time, then file name (the
/// same order as [`ArtifactName`]).
pub fn key(info: &ArtifactInfo) -> (DateTime<Utc>, &str) {
    (info.build_time, info.artifact.as_str())
}

/// Whether `name` comes after `running` in the artifact order; with
/// nothing running, anything is newer.
pub fn is_newer(name: &ArtifactName, running: Option<&ArtifactInfo>) -> bool {
    match running {
        Some(r) => (name.build_time(), name.file_name()) > key(r),
        None => true,
    }
}

/// Whether `name` is newer than what `component` runs, per the switcher's
/// state.
pub fn newer_than_running(state: &SwitcherState, component: &str, name: &ArtifactName) -> bool {
    let running = state
        .components
        .get(component)
        .and_then(|c| c.running.as_ref());
    is_newer(name, running.map(|r| &r.info))
}

/// Why a staged artifact must not be pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protected {
    /// It runs, or is the previous good release (a rollback target).
    Pinned,
    /// It is newer than what runs for this component, which it carries.
    Newer(String),
}

/// Whether (and why) `name` must stay in staging; `None`: it may go.
pub fn protected(config: &Config, state: &SwitcherState, name: &ArtifactName) -> Option<Protected> {
    if state.pinned_artifacts().contains(&name.file_name()) {
        return Some(Protected::Pinned);
    }
    // A kind the config no longer knows carries no component: nothing
    // could deploy it.
    let components = config.components_of(name.kind())?;
    components
        .iter()
        .find(|c| newer_than_running(state, c, name))
        .map(|c| Protected::Newer(c.clone()))
}

/// Whether `name` still waits to deploy to `component`: newer than what it
/// runs and never failed (a failed artifact is not retried by itself).
pub fn waits_for(state: &SwitcherState, component: &str, name: &ArtifactName) -> bool {
    !state.failed.contains_key(name.file_name()) && newer_than_running(state, component, name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::symlink;

    use artifact_name::Ext;
    use chrono::Duration;

    use super::*;
    use crate::state::{ComponentState, RunningRelease};

    fn name(kind: &str, minutes_ago: i64) -> ArtifactName {
        let t = Utc::now() - Duration::minutes(minutes_ago);
        ArtifactName::new(kind, t, "1.0", "master", Ext::TarGz).unwrap()
    }

    fn put(dir: &Path, file: &str) {
        fs::write(dir.join(file), b"x").unwrap();
    }

    fn runs(state: &mut SwitcherState, component: &str, n: &ArtifactName) {
        state.components.insert(
            component.into(),
            ComponentState {
                running: Some(RunningRelease {
                    info: ArtifactInfo::from(n),
                    release: n.stem().into(),
                    since: Utc::now(),
                }),
                ..ComponentState::default()
            },
        );
    }

    fn config() -> Config {
        Config::parse(
            Path::new("/etc/cutover.toml"),
            "root = \"/srv/cutover\"\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\
             frontend = [\"frontend\"]\n[components.backend]\nport = 8080\n\
             [components.frontend]\nport = 80\n",
        )
        .unwrap()
    }

    #[test]
    fn only_regular_files_with_a_regular_marker_count_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (old, new) = (name("full", 20), name("full", 10));
        for n in [&old, &new] {
            put(d, n.file_name());
            put(d, &n.marker_name());
        }
        // Without a marker: still arriving.
        let bare = name("full", 5);
        put(d, bare.file_name());
        // A symlinked marker (pointing at a real marker) does not count.
        let linked_marker = name("full", 4);
        put(d, linked_marker.file_name());
        symlink(
            d.join(old.marker_name()),
            d.join(linked_marker.marker_name()),
        )
        .unwrap();
        // A symlinked artifact (with a real marker) does not count either.
        let linked = name("full", 3);
        symlink(d.join(old.file_name()), d.join(linked.file_name())).unwrap();
        put(d, &linked.marker_name());
        // Not artifact names, and a hidden temporary write.
        put(d, "notes.txt");
        put(d, &format!(".tmp-{}", name("full", 2).file_name()));

        let got: Vec<String> = list(d)
            .unwrap()
            .into_iter()
            .map(|s| s.name.file_name().to_string())
            .collect();
        assert_eq!(got, [old.file_name(), new.file_name()]);
        assert!(list(&d.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn with_nothing_running_anything_is_newer() {
        let st = SwitcherState::default();
        let n = name("full", 1);
        assert!(is_newer(&n, None));
        assert!(newer_than_running(&st, "backend", &n));
        assert_eq!(
            protected(&config(), &st, &n),
            Some(Protected::Newer("backend".into()))
        );
        assert!(waits_for(&st, "backend", &n));
    }

    #[test]
    fn newer_is_by_build_time_then_name() {
        let mut st = SwitcherState::default();
        let running = name("full", 10);
        runs(&mut st, "backend", &running);
        assert!(!newer_than_running(&st, "backend", &running));
        assert!(!newer_than_running(&st, "backend", &name("full", 11)));
        assert!(newer_than_running(&st, "backend", &name("full", 9)));
        // Same build time: the name decides ("frontend" < "full").
        let t = running.build_time();
        let same = |kind| ArtifactName::new(kind, t, "1.0", "master", Ext::TarGz).unwrap();
        assert!(!newer_than_running(&st, "backend", &same("frontend")));
        assert!(newer_than_running(&st, "backend", &same("zzz")));
    }

    #[test]
    fn protection_pinned_newer_for_a_carried_component_or_nothing() {
        let c = config();
        let mut st = SwitcherState::default();
        let running = name("full", 10);
        runs(&mut st, "backend", &running);
        runs(&mut st, "frontend", &running);
        assert_eq!(protected(&c, &st, &running), Some(Protected::Pinned));
        assert_eq!(protected(&c, &st, &name("full", 20)), None);
        assert_eq!(
            protected(&c, &st, &name("frontend", 5)),
            Some(Protected::Newer("frontend".into()))
        );
        // A kind the config does not know carries nothing.
        assert_eq!(protected(&c, &st, &name("other", 5)), None);
        // A failed newer artifact stays protected (it is Last, shown
        // failed) but no longer waits to deploy.
        let failed = name("full", 5);
        st.failed.insert(
            failed.file_name().into(),
            crate::state::Failure {
                artifact: failed.file_name().into(),
                component: "backend".into(),
                step: "verify".into(),
                exit_code: None,
                reason: "no".into(),
                output_tail: Vec::new(),
                at: Utc::now(),
                running_instead: Default::default(),
                rollback_failed: false,
            },
        );
        assert!(protected(&c, &st, &failed).is_some());
        assert!(!waits_for(&st, "backend", &failed));
    }
}
