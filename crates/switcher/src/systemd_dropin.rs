//! `switcher systemd-dropin`: the drop-in that lets cutover.service write
//! the config's deploy root and drop folder, and what `switcher check` reads
//! of the installed unit.
//!
//! cutover.service is hardened (`ProtectSystem=strict`, `ProtectHome=`,
//! `PrivateTmp=`) for the default root /srv/cutover. The package's postinst
//! writes this rendering to /etc/systemd/system/cutover.service.d/paths.conf
//! so that the unit follows the config: `ReadWritePaths=` the root and the
//! drop folder, `ProtectHome=no` when one lies under /home, /root or
//! /run/user (ProtectSystem=strict still keeps everything else read-only),
//! and `PrivateTmp=no` when one lies under /tmp or /var/tmp (a private /tmp
//! would hide it).

use std::fs;
use std::path::{Path, PathBuf};

use deploy_root::{Config, Layout};

/// Where postinst writes the drop-in.
pub const PATH: &str = "/etc/systemd/system/cutover.service.d/paths.conf";

/// The folders systemd reads units from, most important first.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The unit.
pub const UNIT: &str = "cutover.service";

const HOMES: [&str; 3] = ["/home", "/root", "/run/user"];
const TMPS: [&str; 2] = ["/tmp", "/var/tmp"];

fn under(path: &Path, dirs: &[&str]) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

/// The folders the service writes: the root, and the drop folder when it
/// is outside the root.
pub fn writable(layout: &Layout) -> Vec<PathBuf> {
    let mut paths = vec![layout.root.clone()];
    if !layout.drop.starts_with(&layout.root) {
        paths.push(layout.drop.clone());
    }
    paths
}

/// A path as a systemd unit-file word: `%` doubled, quoted when it holds
/// a space; refused when it holds what a unit file cannot say plainly.
fn unit_word(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{path:?} is not UTF-8: a unit file cannot name it"))?;
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(format!(
            "{text:?} holds {c:?}, which a unit file would read as syntax"
        ));
    }
    let text = text.replace('%', "%%");
    Ok(if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    })
}

/// The drop-in for `config`.
pub fn render(config: &Config, layout: &Layout) -> Result<String, String> {
    let paths = writable(layout);
    let words = paths
        .iter()
        .map(|p| unit_word(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = format!(
        "# {PATH}\n\
         {mark} the package rewrites this file from the config; delete this line to keep your edits.\n\
         #\n\
         # Written by `switcher systemd-dropin` from {config}: cutover.service\n\
         # (ProtectSystem=strict) may write the deploy root and the drop folder.\n\
         [Service]\n\
         ReadWritePaths=\n\
         ReadWritePaths={words}\n",
        mark = crate::nginx_site::GENERATED_MARK,
        config = config.path.display(),
        words = words.join(" "),
    );
    if paths.iter().any(|p| under(p, &HOMES)) {
        out.push_str(
            "# A folder lies under /home, /root or /run/user; ProtectSystem=strict\n\
             # still keeps the rest of them read-only.\n\
             ProtectHome=no\n",
        );
    }
    if paths.iter().any(|p| under(p, &TMPS)) {
        out.push_str("# A folder lies under /tmp or /var/tmp: a private /tmp would hide it.\nPrivateTmp=no\n");
    }
    Ok(out)
}

/// What the installed unit and its drop-ins say, as far as the paths go.
#[derive(Debug, Default)]
pub struct Installed {
    /// The unit file and its drop-ins, in the order systemd applies them.
    pub files: Vec<PathBuf>,
    /// `ReadWritePaths=` after every reset.
    pub read_write: Vec<PathBuf>,
    /// `ProtectSystem=`.
    pub protect_system: String,
    /// `ProtectHome=`.
    pub protect_home: String,
    /// `PrivateTmp=`.
    pub private_tmp: String,
}

/// Reads cutover.service and its drop-ins from `dirs` (the first folder
/// that has the unit wins; drop-ins of every folder apply, by file name, a
/// name in an earlier folder hiding the same name in later ones). `None`
/// when the unit is not installed.
pub fn installed(dirs: &[PathBuf]) -> Option<Installed> {
    let unit = dirs.iter().map(|d| d.join(UNIT)).find(|p| p.is_file())?;
    let mut dropins: Vec<(std::ffi::OsString, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir.join(format!("{UNIT}.d"))) else {
            continue;
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".conf") && !dropins.iter().any(|(n, _)| *n == name)
            {
                dropins.push((name, entry.path()));
            }
        }
    }
    dropins.sort();
    let mut found = Installed {
        protect_system: "no".into(),
        protect_home: "no".into(),
        private_tmp: "no".into(),
        ..Installed::default()
    };
    for file in std::iter::once(unit).chain(dropins.into_iter().map(|(_, p)| p)) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let mut service = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                service = line == "[Service]";
                continue;
            }
            let Some((key, value)) = line.split_once('=').filter(|_| service) else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "ReadWritePaths" if value.is_empty() => found.read_write.clear(),
                "ReadWritePaths" => found.read_write.extend(
                    shlex::split(value)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|w| {
                            PathBuf::from(w.trim_start_matches(['-', '+']).replace("%%", "%"))
                        }),
                ),
                "ProtectSystem" => found.protect_system = value.into(),
                "ProtectHome" => found.protect_home = value.into(),
                "PrivateTmp" => found.private_tmp = value.into(),
                _ => {}
            }
        }
        found.files.push(file);
    }
    Some(found)
}

impl Installed {
    /// Why the service could not write `path`, if it could not.
    pub fn blocks(&self, path: &Path) -> Option<String> {
        let yes = |v: &str| matches!(v, "yes" | "true" | "on" | "1");
        if under(path, &TMPS) && yes(&self.private_tmp) {
            return Some("PrivateTmp=yes gives the service a /tmp of its own".into());
        }
        if under(path, &HOMES) && (yes(&self.protect_home) || self.protect_home == "tmpfs") {
            return Some(format!(
                "ProtectHome={} hides /home, /root and /run/user",
                self.protect_home
            ));
        }
        let covered = self.read_write.iter().any(|rw| path.starts_with(rw));
        if covered {
            return None;
        }
        if self.protect_system == "strict" {
            return Some("ProtectSystem=strict, and no ReadWritePaths= covers it".into());
        }
        if under(path, &HOMES) && self.protect_home == "read-only" {
            return Some("ProtectHome=read-only, and no ReadWritePaths= covers it".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &str, drop: Option<&str>) -> (Config, Layout) {
        let text = format!(
            "root = {root:?}\n{}[kinds]\nfull = [\"backend\"]\n[components.backend]\nport = 8080\n",
            drop.map(|d| format!("drop = {d:?}\n")).unwrap_or_default()
        );
        let config = Config::parse(Path::new("/etc/cutover/cutover.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}"));
        let layout = Layout::new(&config);
        (config, layout)
    }

    #[test]
    fn root_under_tmp_and_drop_under_home() {
        let (c, l) = config("/tmp/deploy root", Some("/home/ci/drop"));
        let text = render(&c, &l).unwrap();
        assert!(
            text.contains("ReadWritePaths=\nReadWritePaths=\"/tmp/deploy root\" /home/ci/drop\n"),
            "{text}"
        );
        assert!(text.contains("\nProtectHome=no\n"), "{text}");
        assert!(text.contains("\nPrivateTmp=no\n"), "{text}");
    }

    #[test]
    fn the_default_root_needs_only_itself() {
        let (c, l) = config("/srv/cutover", None);
        let text = render(&c, &l).unwrap();
        assert!(text.contains("ReadWritePaths=/srv/cutover\n"), "{text}");
        assert!(
            !text.contains("ProtectHome") && !text.contains("PrivateTmp"),
            "{text}"
        );
    }
}
