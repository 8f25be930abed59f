//! `switcher releases`: the release folders on disk per component, newest
//! first, marking the running one, the previous good one and failed ones.

use std::fmt::Write as _;
use std::fs;

use artifact_name::ArtifactName;
use deploy_root::state::SwitcherState;
use deploy_root::{state, time, Config, Layout};

use crate::release::TMP_PREFIX;
use crate::retention::parse_id;

/// The listing, as text for stdout.
pub fn render(config: &Config, layout: &Layout) -> anyhow::Result<String> {
    let st: SwitcherState = state::load(&layout.switcher_state())?;
    let failed_stems: Vec<(String, String)> = st
        .failed
        .iter()
        .filter_map(|(a, f)| {
            ArtifactName::parse(a)
                .ok()
                .map(|n| (n.stem().to_string(), format!("{}: {}", f.step, f.reason)))
        })
        .collect();
    let mut out = String::new();
    for c in config.components.keys() {
        writeln!(out, "{c}:")?;
        let mut ids: Vec<(String, Option<ArtifactName>)> = match fs::read_dir(layout.releases_of(c))
        {
            Ok(rd) => rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|id| !id.starts_with(TMP_PREFIX))
                .map(|id| {
                    let n = parse_id(&id);
                    (id, n)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        if ids.is_empty() {
            writeln!(out, "  (no releases)")?;
        }
        let cs = st.components.get(c);
        let current = layout.current_release(c);
        for (id, name) in ids {
            let mut marks = Vec::new();
            if current.as_deref() == Some(id.as_str()) {
                marks.push("current".to_string());
            }
            if let Some(r) = cs
                .and_then(|s| s.running.as_ref())
                .filter(|r| r.release == id)
            {
                marks.push(format!("running since {}", time::human(r.since)));
            }
            if cs
                .and_then(|s| s.previous.as_ref())
                .is_some_and(|r| r.release == id)
            {
                marks.push("previous".into());
            }
            if let Some((_, why)) = failed_stems.iter().find(|(s, _)| *s == id) {
                marks.push(format!("FAILED ({why})"));
            }
            let built = name
                .map(|n| format!("built {}", time::human(n.build_time())))
                .unwrap_or_else(|| "not a release id".into());
            let star = if current.as_deref() == Some(id.as_str()) {
                "*"
            } else {
                " "
            };
            if marks.is_empty() {
                writeln!(out, " {star} {id}  {built}")?;
            } else {
                writeln!(out, " {star} {id}  {built}  [{}]", marks.join("; "))?;
            }
        }
    }
    Ok(out)
}
