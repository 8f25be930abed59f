//! `switcher check`: the config and the machine, checked before the first
//! deploy (and whenever something seems off).
//!
//! The config has already loaded when this runs (a config error exits 78
//! before). This checks what the config cannot say about itself: the root's
//! folders, their owners and modes (a folder the binaries create is fine
//! when its parent is writable by the user that runs them), the drop
//! folder's group, ports, whether every program each command runs
//! resolves, the nginx site nginx really loads (`nginx -T`) against
//! `switcher nginx-site`, the systemd unit's paths against the config, and
//! the state files. Every problem is printed with how to fix it; the caller
//! exits non-zero if there is one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use deploy_root::state::{self, CollectorState, SwitcherState};
use deploy_root::{Config, Layout};
use nix::unistd::{Gid, Group, Uid, User};

use crate::command::PATH;
use crate::{nginx_site, shell, systemd_dropin};

/// What `switcher check` looks at besides the config.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The user that runs collector and switcher (owns the root's folders).
    pub user: String,
    /// nginx's main config file; `None`: nginx's own (asked with
    /// `nginx -T`, else /etc/nginx/nginx.conf read with its includes).
    pub nginx_conf: Option<PathBuf>,
    /// The folders systemd reads cutover.service and its drop-ins from.
    pub systemd_dirs: Vec<PathBuf>,
}

impl CheckOptions {
    /// The defaults: the `cutover` user where it exists and we run as root,
    /// else the user running the check; nginx's own config; systemd's
    /// unit folders.
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
            nginx_conf: None,
            systemd_dirs: systemd_dropin::UNIT_DIRS.map(PathBuf::from).to_vec(),
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
    check_commands(config, &opts.user, &mut report);
    check_nginx(config, opts, &mut report);
    check_systemd(config, layout, opts, &mut report);
    check_state(layout, &mut report);
    check_store(config, layout, &mut report);

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

/// `[store]`: reachable with these credentials, and (with `[fleet]`) fit
/// for leases: the probe's answer is recorded (state/store-probe.json), so
/// that rolling mode starts, or keeps refusing, by what was found here.
#[cfg(feature = "s3")]
fn check_store(config: &Config, layout: &Layout, report: &mut Report) {
    let Some(store_config) = &config.store else {
        return;
    };
    let store = match fleet::Store::open(store_config) {
        Ok(s) => s,
        Err(e) => {
            report.problem(
                format!("[store] cannot be used: {e}"),
                "set [store] credentials_file (a file only the cutover user can read), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment of cron and cutover-watch",
            );
            return;
        }
    };
    match store.list(fleet::layout::DROP) {
        Ok(objects) => report.ok(format!(
            "store {} at {} answers ({} objects under drop/)",
            store.label(),
            store.endpoint(),
            objects.len()
        )),
        Err(e) => {
            report.problem(
                format!("store {}: {e}", store.label()),
                "check [store] url, endpoint, region and path_style, the credentials, and that the bucket exists",
            );
            return;
        }
    }
    let vm = match &config.fleet {
        Some(f) => match f.vm_id() {
            Ok(id) => id,
            Err(e) => {
                report.problem(format!("[fleet] id: {e}"), "set [fleet] id");
                return;
            }
        },
        None => "check".to_string(),
    };
    let fleet = crate::rolling::Fleet {
        store: std::sync::Arc::new(store),
        config: config
            .fleet
            .clone()
            .unwrap_or(deploy_root::fleet_config::FleetConfig {
                group: "default".into(),
                id: None,
                max_parallel: None,
                max_failures: 1,
                lease_ttl: std::time::Duration::from_secs(120),
            }),
        vm,
    };
    match crate::rolling::probe_and_record(&fleet, layout) {
        Ok(r) if r.problems.is_empty() => report.ok(format!(
            "store {} honours conditional writes (create twice, stale If-Match, a race of concurrent creates)",
            fleet.store.label()
        )),
        Ok(r) => {
            let rolling = config.fleet.as_ref().is_some_and(|f| f.max_parallel.is_some());
            report.problem(
                format!(
                    "store {} ignores conditional writes: {}{}",
                    fleet.store.label(),
                    r.problems.join("; "),
                    if rolling {
                        "; rolling mode ([fleet] max_parallel) refuses to start on it"
                    } else {
                        ""
                    }
                ),
                "use a store that honours If-None-Match and If-Match (AWS S3, SeaweedFS, Ceph RGW; docs/fleet.md), or do without [fleet] max_parallel",
            );
        }
        Err(e) => report.problem(
            format!("probing store {} for conditional writes: {e:#}", fleet.store.label()),
            "check that the credentials may write and delete under the store's prefix (probe/)",
        ),
    }
}

#[cfg(not(feature = "s3"))]
fn check_store(config: &Config, _layout: &Layout, report: &mut Report) {
    if config.store.is_some() {
        report.problem(
            "[store] is set, but this switcher was built without the store (feature s3)",
            "install the cutover .deb (it has it), or build with --features collector/s3,switcher/s3,deliver/s3",
        );
    }
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
    let mut missing = Vec::new();
    for (name, path) in folders {
        if fs::symlink_metadata(path).is_err() {
            missing.push((name, path));
            continue;
        }
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
    missing_folders(&missing, owner, report);
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

/// Folders that are not there: collector and switcher create them on their
/// first run (`Layout::ensure`), so they are a problem only when the user
/// that runs them cannot write the nearest folder that exists above them
/// (one problem per such folder).
fn missing_folders(missing: &[(&str, &Path)], owner: Option<&User>, report: &mut Report) {
    let who = owner.map_or_else(|| "the current user".to_string(), |u| u.name.clone());
    let mut blocked: Vec<(PathBuf, Vec<&Path>)> = Vec::new();
    for (name, path) in missing {
        let Some(parent) = path.ancestors().skip(1).find(|p| fs::metadata(p).is_ok()) else {
            continue;
        };
        let can = match owner {
            Some(user) => fs::metadata(parent).is_ok_and(|m| m.is_dir() && writable_by(&m, user)),
            None => nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK).is_ok(),
        };
        if can {
            report.ok(format!(
                "{name} {} is not there yet: the first collector or switcher run creates it ({who} can write {})",
                path.display(),
                parent.display()
            ));
        } else if let Some((_, paths)) = blocked.iter_mut().find(|(p, _)| p == parent) {
            paths.push(path);
        } else {
            blocked.push((parent.to_path_buf(), vec![path]));
        }
    }
    let user = owner.map_or("cutover", |u| u.name.as_str());
    for (parent, paths) in blocked {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        report.problem(
            format!(
                "{} {} missing, and {who} cannot create {}: {} is not writable by {who}",
                shown.join(", "),
                if paths.len() == 1 { "is" } else { "are" },
                if paths.len() == 1 { "it" } else { "them" },
                parent.display()
            ),
            format!(
                "install -d -o {user} -g {user} -m 0755 {} (the package's postinst does this for the config's root)",
                shown.join(" ")
            ),
        );
    }
}

/// Whether `user` may create entries in the folder `meta` describes (by
/// its mode bits and the user's groups; root may).
fn writable_by(meta: &fs::Metadata, user: &User) -> bool {
    if user.uid.is_root() {
        return true;
    }
    let mode = meta.mode();
    if meta.uid() == user.uid.as_raw() {
        return mode & 0o300 == 0o300;
    }
    let in_group = user.gid.as_raw() == meta.gid()
        || std::ffi::CString::new(user.name.as_str())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
            .is_some_and(|groups| groups.iter().any(|g| g.as_raw() == meta.gid()));
    if in_group {
        return mode & 0o030 == 0o030;
    }
    mode & 0o003 == 0o003
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
        Err(e) if name == "drop" => {
            report.problem(
                format!("{name} {} cannot be read: {e}", path.display()),
                format!("install -d -o cutover -g cutover-upload -m 3775 {} (the package's postinst does this): CI's upload user must be able to write it", path.display()),
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
            // Only the config is judged here: whether something listens is
            // Status's business (switcher status), not a setup problem.
            report.ok(format!(
                "component {name} has a port of its own ({})",
                c.port
            ));
        }
        seen.push((c.port, name));
    }
}

/// Shell builtins (dash's, and POSIX's regular ones): nothing to look up.
const BUILTINS: [&str; 37] = [
    ":", ".", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval", "exec",
    "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill", "local", "printf", "pwd",
    "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type",
    "ulimit", "umask", "unset", "wait",
];

fn check_commands(config: &Config, user: &str, report: &mut Report) {
    for (name, c) in &config.components {
        for (step, cmd) in [
            ("stop", &c.stop),
            ("start", &c.start),
            ("reload", &c.reload),
            ("prepare", &c.prepare),
        ] {
            let Some(cmd) = cmd else { continue };
            let key = format!("components.{name}.{step}");
            let programs = match shell::programs(cmd) {
                Ok(programs) => programs,
                Err(why) => {
                    report.note(format!("{key}: {cmd:?} not checked: {why}"));
                    continue;
                }
            };
            for program in programs {
                check_program(&key, step, &program, user, report);
            }
        }
    }
}

fn check_program(key: &str, step: &str, program: &shell::Program, user: &str, report: &mut Report) {
    let word = &program.word;
    if program.sudo_args.is_none() && BUILTINS.contains(&word.as_str()) {
        report.ok(format!("{key}: {word} is a shell builtin"));
        return;
    }
    if !word.starts_with('/') && word.contains('/') {
        // Relative to the folder it runs in: prepare runs in the release
        // folder, and a `cd` before it moves elsewhere.
        let when = if step == "prepare" {
            "in the release folder at deploy time"
        } else {
            "in the folder it runs in"
        };
        report.note(format!("{key}: {word} is resolved {when}"));
        return;
    }
    let Some(found) = resolve(word) else {
        report.problem(
            format!("{key}: {word:?} is not an executable file on the switcher's PATH ({PATH})"),
            format!("install it, or write its absolute path in {key}"),
        );
        return;
    };
    report.ok(format!("{key}: {word} is {}", found.display()));
    if let Some(args) = &program.sudo_args {
        // sudoers matches the absolute path and the words as written.
        let line = std::iter::once(found.display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        report.note(format!(
            "{key} runs sudo: /etc/sudoers.d/cutover must allow exactly \"{line}\" (deploy/sudoers/cutover is the template; ask sudo itself: sudo -l -U {user} {line})"
        ));
    }
}

/// Where `word` resolves on the switcher's PATH, if it is an executable file.
fn resolve(word: &str) -> Option<PathBuf> {
    if word.is_empty() {
        return None;
    }
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

/// The files nginx loads, by asking it (`nginx -T`, which needs root), or
/// else by reading the main config and following its `include`s; with
/// the way they were found.
fn nginx_files(opts: &CheckOptions) -> Result<(String, Vec<(PathBuf, String)>), String> {
    let main = opts
        .nginx_conf
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/nginx/nginx.conf"));
    let mut asked = "nginx is not installed".to_string();
    if let Some(bin) = resolve("nginx") {
        let mut cmd = Command::new(&bin);
        cmd.args(["-T", "-q"]);
        if let Some(conf) = &opts.nginx_conf {
            cmd.arg("-c").arg(conf);
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {
                let files = parse_dump(&String::from_utf8_lossy(&out.stdout));
                return Ok((format!("`{} -T`", bin.display()), files));
            }
            Ok(out) => {
                asked = format!(
                    "`nginx -T` failed ({})",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("no message")
                        .trim()
                )
            }
            Err(e) => asked = format!("`nginx -T` did not run ({e})"),
        }
    }
    let mut files = Vec::new();
    read_with_includes(
        &main,
        main.parent().unwrap_or(Path::new("/")),
        &mut files,
        0,
    );
    if files.is_empty() {
        return Err(format!("{asked}, and {} cannot be read", main.display()));
    }
    Ok((
        format!("{} and its includes ({asked})", main.display()),
        files,
    ))
}

/// `nginx -T`'s output: each file after "# configuration file PATH:".
fn parse_dump(text: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line
            .strip_prefix("# configuration file ")
            .and_then(|l| l.strip_suffix(':'))
        {
            files.push((PathBuf::from(path), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    files
}

/// The directives of an nginx file: words up to `;` or `{`, comments out.
fn directives(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        let line = line.split_once('#').map_or(line, |(code, _)| code);
        for part in line.split_inclusive([';', '{', '}']) {
            let end = part.ends_with([';', '{', '}']);
            let body = part.trim_end_matches([';', '{', '}']);
            current.extend(
                body.split_whitespace()
                    .map(|w| w.trim_matches(['"', '\'']).to_string()),
            );
            if end && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

fn read_with_includes(path: &Path, base: &Path, files: &mut Vec<(PathBuf, String)>, depth: u8) {
    if depth > 8 || files.iter().any(|(p, _)| p == path) {
        return;
    }
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let includes: Vec<String> = directives(&text)
        .into_iter()
        .filter(|d| d.len() == 2 && d[0] == "include")
        .map(|d| d[1].clone())
        .collect();
    files.push((path.to_path_buf(), text));
    for include in includes {
        let pattern = base.join(include);
        for file in glob(&pattern) {
            read_with_includes(&file, base, files, depth + 1);
        }
    }
}

/// The files a pattern with `*` in its last part names, sorted (as nginx).
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return vec![pattern.to_path_buf()];
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let parts: Vec<&str> = name.split('*').collect();
    let matches = |n: &str| {
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if !n.starts_with(first) || !n.ends_with(last) || n.len() < first.len() + last.len() {
            return false;
        }
        let mut rest = &n[first.len()..n.len() - last.len()];
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    };
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    !n.starts_with('.') && matches(&n)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn check_nginx(config: &Config, opts: &CheckOptions, report: &mut Report) {
    let Some((frontend, _)) = config.nginx_frontend() else {
        report.note("no frontend component (nginx.frontend): the nginx site is not checked");
        return;
    };
    let site = match nginx_site::render(config) {
        Ok(site) => site,
        Err(why) => {
            report.problem(
                format!("the nginx site cannot be rendered: {why}"),
                "change the config as it says, then: switcher nginx-site",
            );
            return;
        }
    };
    let fix_new = "switcher nginx-site > /etc/nginx/sites-available/cutover (the package writes it), ln -s ../sites-available/cutover /etc/nginx/sites-enabled/cutover, then nginx -t && systemctl reload nginx";
    let (how, files) = match nginx_files(opts) {
        Ok(found) => found,
        Err(why) => {
            report.problem(
                format!("cannot tell which site nginx serves: {why}"),
                format!("apt install nginx-light, then {fix_new}; or run the check as root, or pass --nginx-conf PATH"),
            );
            return;
        }
    };
    let root = config.root.join("current").join(frontend);
    let needle = root.display().to_string();
    let serving = files.iter().find(|(_, text)| {
        directives(text)
            .iter()
            .any(|d| d.len() == 2 && d[0] == "root" && Path::new(&d[1]) == root)
    });
    let Some((path, text)) = serving else {
        report.problem(
            format!(
                "no nginx site serves {needle} (read {} files: {how})",
                files.len()
            ),
            fix_new.to_string(),
        );
        return;
    };
    if let Some((name, backend)) = config.nginx_backend().filter(|(_, c)| c.is_blue_green()) {
        check_upstream(config, name, backend, path, text, report);
    }
    if *text == site || text.trim_end() == site.trim_end() {
        report.ok(format!(
            "nginx site {} serves {needle}: it is `switcher nginx-site` as is",
            path.display()
        ));
        return;
    }
    // Edited by hand: what the config needs must still be there.
    let ds = directives(text);
    let has = |name: &str, value: &dyn Fn(&str) -> bool| {
        ds.iter()
            .any(|d| d.len() >= 2 && d[0] == name && value(&d[1]))
    };
    let mut wrong = Vec::new();
    let port = config
        .nginx_listen()
        .and_then(|l| deploy_root::config::listen_port(&l));
    if let Some(port) = port {
        if !has("listen", &|v| {
            deploy_root::config::listen_port(v) == Some(port)
        }) {
            wrong.push(format!("it does not listen on port {port}"));
        }
    }
    if let Some((name, backend)) = config.nginx_backend() {
        let want = if backend.is_blue_green() {
            format!("http://{}", crate::upstream::name(name))
        } else {
            format!("http://127.0.0.1:{}", backend.port)
        };
        if !has("proxy_pass", &|v| v.trim_end_matches('/') == want) {
            wrong.push(format!("it does not proxy to {want} (component {name})"));
        }
    }
    let status = config.root.join("state/deploy-status.html");
    if !has("alias", &|v| Path::new(v) == status) {
        wrong.push(format!("it does not serve {}", status.display()));
    }
    if wrong.is_empty() {
        report.ok(format!(
            "nginx site {} serves {needle} (edited: it differs from `switcher nginx-site`)",
            path.display()
        ));
    } else {
        report.problem(
            format!(
                "nginx site {} serves {needle}, but {}",
                path.display(),
                wrong.join("; ")
            ),
            format!(
                "switcher nginx-site > {} (or edit it to match), then nginx -t && systemctl reload nginx",
                path.display()
            ),
        );
    }
}

/// A blue-green backend: the site nginx loads includes the upstream file
/// the switcher rewrites, and that file routes to one of the slots.
fn check_upstream(
    config: &Config,
    name: &str,
    backend: &deploy_root::config::Component,
    site: &Path,
    text: &str,
    report: &mut Report,
) {
    let layout = Layout::new(config);
    let file = crate::upstream::path(&layout, name);
    let included = directives(text)
        .iter()
        .any(|d| d.len() == 2 && d[0] == "include" && Path::new(&d[1]) == file);
    if !included {
        report.problem(
            format!(
                "nginx site {} does not include {}: the blue-green switch of {name} would not move nginx's traffic",
                site.display(),
                file.display()
            ),
            format!(
                "switcher nginx-site > {} (it includes the file), then nginx -t && systemctl reload nginx",
                site.display()
            ),
        );
        return;
    }
    match crate::upstream::routed_port(&layout, name) {
        Some(port) if backend.ports.contains(&port) => report.ok(format!(
            "nginx site {} includes {}, which routes {name} to 127.0.0.1:{port}",
            site.display(),
            file.display()
        )),
        Some(port) => report.problem(
            format!(
                "{} routes {name} to port {port}, which is not one of its ports {:?}",
                file.display(),
                backend.ports
            ),
            "run the switcher once (a pass that deploys rewrites it), or rollback".to_string(),
        ),
        None => report.problem(
            format!("{} is missing or not the switcher's", file.display()),
            "run the switcher once: every pass writes it when it is missing".to_string(),
        ),
    }
}

fn check_systemd(config: &Config, layout: &Layout, opts: &CheckOptions, report: &mut Report) {
    let Some(unit) = systemd_dropin::installed(&opts.systemd_dirs) else {
        return; // not installed: cron runs the binaries
    };
    let files = unit
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut fine = true;
    for path in systemd_dropin::writable(layout) {
        if let Some(why) = unit.blocks(&path) {
            fine = false;
            report.problem(
                format!(
                    "{} cannot write {} ({files}): {why}; cutover.timer's passes would fail",
                    systemd_dropin::UNIT,
                    path.display()
                ),
                format!(
                    "mkdir -p {dir} && switcher --config {config} systemd-dropin > {dropin} && systemctl daemon-reload (the package's postinst does this)",
                    dir = Path::new(systemd_dropin::PATH).parent().unwrap_or(Path::new("/")).display(),
                    config = config.path.display(),
                    dropin = systemd_dropin::PATH,
                ),
            );
        }
    }
    if fine {
        report.ok(format!(
            "{} may write the root and the drop folder ({files})",
            systemd_dropin::UNIT
        ));
    }
}

/// The finding for a state file that loads: it reads, or it is not there
/// yet (the binaries write it on their first run).
fn state_found(path: &Path) -> String {
    if path.exists() {
        format!("state file {} reads", path.display())
    } else {
        format!(
            "state file {} does not exist yet (the first run writes it)",
            path.display()
        )
    }
}

fn check_state(layout: &Layout, report: &mut Report) {
    let collector = layout.collector_state();
    match state::load::<CollectorState>(&collector) {
        Ok(_) => report.ok(state_found(&collector)),
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
        Ok(_) => report.ok(state_found(&switcher)),
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
        Ok(_) => report.ok(state_found(&control)),
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
