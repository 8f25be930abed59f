//! `switcher check`: the config and the machine, checked before the first
//! deploy (and whenever something seems off).
//!
//! The config has already loaded when this runs (a config error exits 78
//! before). This checks what the config cannot say about itself: the root's
//! folders, their owners and modes, the drop folder's group, ports, whether
//! each command resolves, the nginx site, and the state files. Every problem
//! is printed with how to fix it; the caller exits non-zero if there is one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use deploy_root::state::{self, CollectorState, SwitcherState};
use deploy_root::{Config, Layout};
use nix::unistd::{Gid, Group, Uid, User};

use crate::command::PATH;

/// What `switcher check` looks at besides the config.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The user that runs collector and switcher (owns the root's folders).
    pub user: String,
    /// Debian's nginx configuration folder (sites-enabled/, conf.d/).
    pub nginx_dir: PathBuf,
}

impl CheckOptions {
    /// The defaults: the `cutover` user where it exists and we run as root,
    /// else the user running the check; /etc/nginx.
    pub fn defaults() -> CheckOptions {
        let current = User::from_uid(Uid::effective())
            .ok()
            .flatten()
            .map_or_else(|| Uid::effective().to_string(), |u| u.name);
        let user =
            if Uid::effective().is_root() && User::from_name("cutover").ok().flatten().is_some() {
                "cutover".to_string()
            } else {
                current
            };
        CheckOptions {
            user,
            nginx_dir: PathBuf::from("/etc/nginx"),
        }
    }
}

/// The findings of a check.
#[derive(Debug, Default)]
struct Report {
    lines: Vec<String>,
    problems: usize,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.lines.push(format!("ok    {}", what.into()));
    }

    fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.problems += 1;
        self.lines
            .push(format!("FAIL  {}\n      fix: {}", what.into(), fix.into()));
    }

    fn note(&mut self, what: impl Into<String>) {
        self.lines.push(format!("note  {}", what.into()));
    }
}

/// Runs every check, prints the findings to `out`, and returns how many
/// problems there are.
pub fn run(
    config: &Config,
    layout: &Layout,
    opts: &CheckOptions,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut report = Report::default();
    report.ok(format!("config {} loads", config.path.display()));
    let owner = User::from_name(&opts.user).ok().flatten();
    if owner.is_none() {
        report.problem(
            format!("user {:?} does not exist", opts.user),
            "install the cutover package (it creates the user), or pass --user NAME",
        );
    }
    check_folders(layout, owner.as_ref(), &mut report);
    check_drop(layout, owner.as_ref(), &mut report);
    check_ports(config, &mut report);
    check_commands(config, &mut report);
    check_nginx(config, layout, opts, &mut report);
    check_state(layout, &mut report);

    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    match report.problems {
        0 => writeln!(out, "\nno problems found")?,
        1 => writeln!(out, "\n1 problem found")?,
        n => writeln!(out, "\n{n} problems found")?,
    }
    Ok(report.problems)
}

fn check_folders(layout: &Layout, owner: Option<&User>, report: &mut Report) {
    let logs = layout.logs();
    let folders: [(&str, &Path); 8] = [
        ("root", &layout.root),
        ("staging", &layout.staging),
        ("quarantine", &layout.quarantine),
        ("releases", &layout.releases),
        ("current", &layout.current),
        ("shared", &layout.shared),
        ("state", &layout.state),
        ("state/logs", &logs),
    ];
    for (name, path) in folders {
        let Some(meta) = folder_meta(name, path, report) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let mut fine = true;
        if let Some(user) = owner {
            if meta.uid() != user.uid.as_raw() {
                fine = false;
                report.problem(
                    format!(
                        "{name} {} belongs to {}, not to {}",
                        path.display(),
                        user_name(meta.uid()),
                        user.name
                    ),
                    format!("chown {}: {}", user.name, path.display()),
                );
            }
        }
        if mode & 0o022 != 0 {
            fine = false;
            report.problem(
                format!(
                    "{name} {} is writable by group or others (mode {mode:04o})",
                    path.display()
                ),
                format!("chmod go-w {}", path.display()),
            );
        }
        if fine {
            report.ok(format!(
                "{name} {}: owned by {}, mode {mode:04o}",
                path.display(),
                user_name(meta.uid())
            ));
        }
    }
}

fn check_drop(layout: &Layout, owner: Option<&User>, report: &mut Report) {
    let path = &layout.drop;
    let Some(meta) = folder_meta("drop", path, report) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    let group = group_name(meta.gid());
    let fix_group = format!(
        "chgrp cutover-upload {p} && chmod 3775 {p}",
        p = path.display()
    );
    if mode & 0o002 != 0 {
        report.problem(
            format!(
                "drop {} is writable by everyone (mode {mode:04o})",
                path.display()
            ),
            fix_group.clone(),
        );
    }
    if mode & 0o020 == 0 {
        report.problem(
            format!("drop {} is not writable by its group {group} (mode {mode:04o}): CI's upload user cannot write it", path.display()),
            fix_group,
        );
    } else if owner.is_some_and(|u| u.gid.as_raw() == meta.gid()) {
        report.problem(
            format!("drop {} is group-writable by {group}, the cutover user's own group: CI's upload user should be in a group of its own", path.display()),
            fix_group,
        );
    } else {
        report.ok(format!(
            "drop {} is writable by group {group} (mode {mode:04o})",
            path.display()
        ));
        if mode & 0o2000 == 0 {
            report.note(format!(
                "drop {} has no setgid bit: uploads keep the uploader's own group (chmod g+s to keep {group})",
                path.display()
            ));
        }
    }
    if let Some(user) = owner {
        if meta.uid() != user.uid.as_raw() {
            report.problem(
                format!("drop {} belongs to {}, not to {}: the collector cannot move uploads out of a sticky folder it does not own", path.display(), user_name(meta.uid()), user.name),
                format!("chown {}: {}", user.name, path.display()),
            );
        }
    }
}

fn folder_meta(name: &str, path: &Path, report: &mut Report) -> Option<fs::Metadata> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Some(meta),
        Ok(_) => {
            report.problem(
                format!("{name} {} is not a folder", path.display()),
                format!(
                    "move it aside and run: install -d -m 0755 {}",
                    path.display()
                ),
            );
            None
        }
        Err(e) => {
            report.problem(
                format!("{name} {} cannot be read: {e}", path.display()),
                format!("install -d -o cutover -g cutover -m 0755 {} (the package's postinst does this)", path.display()),
            );
            None
        }
    }
}

fn check_ports(config: &Config, report: &mut Report) {
    let mut seen: Vec<(u16, &str)> = Vec::new();
    for (name, c) in &config.components {
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == c.port) {
            report.problem(
                format!("components {other} and {name} both use port {}: Status could not tell them apart", c.port),
                format!("give components.{name}.port its own port"),
            );
        } else {
            report.ok(format!("component {name} listens on port {}", c.port));
        }
        seen.push((c.port, name));
    }
}

/// Shell words that are not programs to look up.
const BUILTINS: [&str; 12] = [
    ":", ".", "cd", "exit", "test", "[", "echo", "printf", "set", "export", "true", "false",
];

fn check_commands(config: &Config, report: &mut Report) {
    for (name, c) in &config.components {
        for (step, cmd) in [
            ("stop", &c.stop),
            ("start", &c.start),
            ("reload", &c.reload),
            ("prepare", &c.prepare),
        ] {
            let Some(cmd) = cmd else { continue };
            let key = format!("components.{name}.{step}");
            match program_of(cmd) {
                None => report.note(format!(
                    "{key}: {cmd:?} starts with shell syntax; not checked"
                )),
                Some(Program::Builtin(word)) => {
                    report.ok(format!("{key}: {word} is a shell builtin"))
                }
                Some(Program::Path(word)) => {
                    // prepare runs in the release folder, where a relative
                    // path is resolved only at deploy time.
                    if step == "prepare" && !word.starts_with('/') && word.contains('/') {
                        report.note(format!(
                            "{key}: {word} is resolved in the release folder at deploy time"
                        ));
                        continue;
                    }
                    match resolve(&word) {
                        Some(found) => report.ok(format!("{key}: {word} is {}", found.display())),
                        None => report.problem(
                            format!("{key}: {word:?} is not an executable file on the switcher's PATH ({PATH})"),
                            format!("install it, or write its absolute path in {key}"),
                        ),
                    }
                    if word == "sudo" || word.ends_with("/sudo") {
                        report.note(format!(
                            "{key} uses sudo: /etc/sudoers.d/cutover must allow exactly {:?} (see deploy/sudoers/cutover)",
                            cmd.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
                        ));
                    }
                }
            }
        }
    }
}

enum Program {
    Builtin(String),
    Path(String),
}

/// The program a simple shell command runs: the first word after variable
/// assignments (and after `exec`), or `None` for anything more complex.
fn program_of(cmd: &str) -> Option<Program> {
    let mut words = cmd.split_whitespace().skip_while(|w| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    });
    let mut word = words.next()?;
    if word == "exec" {
        word = words.next()?;
    }
    if word.starts_with(['(', '{', '$', '`', '"', '\'']) {
        return None;
    }
    if BUILTINS.contains(&word) {
        return Some(Program::Builtin(word.to_string()));
    }
    Some(Program::Path(word.to_string()))
}

/// Where `word` resolves on the switcher's PATH, if it is an executable file.
fn resolve(word: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if word.contains('/') {
        let p = PathBuf::from(word);
        return executable(&p).then_some(p);
    }
    PATH.split(':')
        .map(|dir| Path::new(dir).join(word))
        .find(|p| executable(p))
}

fn check_nginx(config: &Config, layout: &Layout, opts: &CheckOptions, report: &mut Report) {
    if !config.components.contains_key("frontend") {
        return;
    }
    let needle = layout.current_link("frontend").display().to_string();
    let mut sites = Vec::new();
    for sub in ["sites-enabled", "conf.d"] {
        if let Ok(rd) = fs::read_dir(opts.nginx_dir.join(sub)) {
            sites.extend(rd.flatten().map(|e| e.path()));
        }
    }
    let serving = sites
        .iter()
        .find(|p| fs::read_to_string(p).is_ok_and(|t| t.contains(&needle)));
    match serving {
        Some(site) => report.ok(format!("nginx site {} serves {needle}", site.display())),
        None => report.problem(
            format!("no nginx site under {} serves {needle}", opts.nginx_dir.display()),
            format!(
                "install deploy/nginx/cutover.conf (in the package: /usr/share/doc/cutover/examples/nginx-cutover.conf) as {}/sites-available/cutover with root {needle}, link it into sites-enabled/, then nginx -t && systemctl reload nginx",
                opts.nginx_dir.display()
            ),
        ),
    }
}

fn check_state(layout: &Layout, report: &mut Report) {
    let collector = layout.collector_state();
    match state::load::<CollectorState>(&collector) {
        Ok(_) => report.ok(format!("state file {} reads", collector.display())),
        Err(e) => report.problem(
            format!("{e:#}"),
            format!(
                "move {} aside; the next collector run writes it anew",
                collector.display()
            ),
        ),
    }
    let switcher = layout.switcher_state();
    match state::load::<SwitcherState>(&switcher) {
        Ok(_) => report.ok(format!("state file {} reads", switcher.display())),
        Err(e) => report.problem(
            format!("{e:#}"),
            format!(
                "move {} aside (the switcher then no longer knows what runs or failed)",
                switcher.display()
            ),
        ),
    }
    // Passes refuse to guess that nothing is held: an unreadable
    // control.json stops them, so it is a problem here too.
    let control = deploy_root::control::path(layout);
    match deploy_root::control::load(layout) {
        Ok(_) => report.ok(format!("state file {} reads", control.display())),
        Err(e) => report.problem(
            format!("{e:#}"),
            format!(
                "move {} aside (its pins, freeze and follow are then lifted; set them again with switcher pin/freeze/follow)",
                control.display()
            ),
        ),
    }
}

fn user_name(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}
