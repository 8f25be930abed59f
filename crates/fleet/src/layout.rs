//! Where everything lives in the store, under `[store] url`'s prefix.
//!
//! ```text
//! <prefix>/
//!   drop/<artifact>                     the artifact, created once (If-None-Match: *)
//!   drop/<artifact>.sha256              its marker, created after it: complete
//!   fleet/<group>/status/<vm>.json      each VM's report, rewritten every pass
//!   fleet/<group>/leases/<slot>.json    the rolling switch's slot leases
//!   fleet/<group>/failures/<artifact>/<vm>.json   a failed deploy, one per VM
//!   fleet/<group>/halted/<artifact>.json          the rollout halted (max_failures)
//!   fleet/<group>/control.json          fleet-wide holds (freeze, pins)
//!   probe/<vm>-<random>/...             `switcher check`'s conditional-write probe
//! ```
//!
//! Artifact names and VM ids are checked before they become part of a key
//! (the naming contract; `fleet_config::is_name`), so no key can climb out
//! of its folder.

/// The folder artifacts and their markers are published in.
pub const DROP: &str = "drop/";

/// The suffix of a marker.
pub const MARKER_SUFFIX: &str = ".sha256";

/// `drop/<artifact>`.
pub fn artifact(name: &str) -> String {
    format!("{DROP}{name}")
}

/// `drop/<artifact>.sha256`.
pub fn marker(name: &str) -> String {
    format!("{DROP}{name}{MARKER_SUFFIX}")
}

/// `fleet/<group>/`: everything of one group.
pub fn group(group: &str) -> String {
    format!("fleet/{group}/")
}

/// `fleet/<group>/status/`.
pub fn status_dir(group: &str) -> String {
    format!("fleet/{group}/status/")
}

/// `fleet/<group>/status/<vm>.json`.
pub fn status(group: &str, vm: &str) -> String {
    format!("fleet/{group}/status/{vm}.json")
}

/// `fleet/<group>/leases/`.
pub fn leases_dir(group: &str) -> String {
    format!("fleet/{group}/leases/")
}

/// `fleet/<group>/leases/<slot>.json`.
pub fn lease(group: &str, slot: u32) -> String {
    format!("fleet/{group}/leases/{slot}.json")
}

/// `fleet/<group>/failures/<artifact>/`.
pub fn failures_dir(group: &str, artifact: &str) -> String {
    format!("fleet/{group}/failures/{artifact}/")
}

/// `fleet/<group>/failures/<artifact>/<vm>.json`.
pub fn failure(group: &str, artifact: &str, vm: &str) -> String {
    format!("fleet/{group}/failures/{artifact}/{vm}.json")
}

/// `fleet/<group>/halted/`.
pub fn halted_dir(group: &str) -> String {
    format!("fleet/{group}/halted/")
}

/// `fleet/<group>/halted/<artifact>.json`.
pub fn halted(group: &str, artifact: &str) -> String {
    format!("fleet/{group}/halted/{artifact}.json")
}

/// `fleet/<group>/control.json`.
pub fn control(group: &str) -> String {
    format!("fleet/{group}/control.json")
}

/// `probe/`.
pub const PROBE: &str = "probe/";

/// The artifact name of a `drop/` key, if it is an artifact (not a marker).
pub fn artifact_of(key: &str) -> Option<&str> {
    let name = key.strip_prefix(DROP)?;
    (!name.contains('/') && !name.ends_with(MARKER_SUFFIX)).then_some(name)
}

/// The artifact name of a `drop/` marker key.
pub fn marker_of(key: &str) -> Option<&str> {
    let name = key.strip_prefix(DROP)?.strip_suffix(MARKER_SUFFIX)?;
    (!name.contains('/')).then_some(name)
}

/// The VM id of a status key of `group`.
pub fn vm_of_status<'a>(group: &str, key: &'a str) -> Option<&'a str> {
    let rest = key.strip_prefix("fleet/")?.strip_prefix(group)?;
    let vm = rest.strip_prefix("/status/")?.strip_suffix(".json")?;
    (!vm.contains('/')).then_some(vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let a = "full_20261126T235012Z_1.4.2_master.tar.zst";
        assert_eq!(artifact_of(&artifact(a)), Some(a));
        assert_eq!(artifact_of(&marker(a)), None);
        assert_eq!(marker_of(&marker(a)), Some(a));
        assert_eq!(vm_of_status("g", &status("g", "vm-1")), Some("vm-1"));
        assert_eq!(vm_of_status("g", &status("gx", "vm-1")), None);
        assert_eq!(artifact_of("drop/x/y"), None);
    }
}
