//! Uploads into a VM's drop folder that the collector can never read half
//! of.
//!
//! For each target: rsync the artifact to a temporary name (see
//! [`temp_name`]; the collector ignores dotfiles and `*.part`), rename it
//! with `ssh host mv -f`, then the marker the same way. The marker appears only after the artifact is in
//! place under its final name, and a rename within one folder is atomic, so
//! a killed upload leaves at most a dotfile behind. A failed attempt is
//! retried from the start, with growing pauses.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::cancel;
use super::pack::Packed;
use super::progress::{self, Progress};
use super::quote;

/// rsync's I/O timeout: a connection that moves nothing for this long is
/// dead, and the attempt is retried instead of hanging the CI job.
const RSYNC_IO_TIMEOUT_SECS: u32 = 120;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `user@host:/path/to/drop`, checked.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given, for messages.
    raw: String,
    /// `user@host` as ssh wants it (IPv6 without brackets).
    ssh_dest: String,
    /// `user@host` as rsync wants it (IPv6 in brackets).
    rsync_dest: String,
    /// The drop folder on the host, without trailing '/' ("" = the home).
    dir: String,
}

impl Target {
    /// Parses and checks `user@host:/path` (the user is optional).
    pub fn parse(raw: &str) -> anyhow::Result<Target> {
        let expected =
            "expected USER@HOST:/PATH/TO/DROP, e.g. deploy@vm1.example:/srv/cutover/drop";
        let (user, rest) = match raw.split_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, raw),
        };
        let (host, path) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((addr, after)) = v6.split_once(']') else {
                bail!("--target {raw:?} has an unclosed '[': {expected}");
            };
            let Some(path) = after.strip_prefix(':') else {
                bail!("--target {raw:?} has no ':' after the host: {expected}");
            };
            if addr.is_empty()
                || !addr
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                bail!("--target {raw:?}: {addr:?} is not an IPv6 address: {expected}");
            }
            (format!("[{addr}]"), path)
        } else {
            let Some((host, path)) = rest.split_once(':') else {
                bail!("--target {raw:?} has no ':' between host and path: {expected}");
            };
            let ok = !host.is_empty()
                && !host.starts_with(['-', '.'])
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                bail!(
                    "--target {raw:?}: the host {host:?} is not a host name or address: {expected}"
                );
            }
            (host.to_string(), path)
        };
        if let Some(user) = user {
            let ok = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                bail!("--target {raw:?}: the user {user:?} is not a user name: {expected}");
            }
        }
        if path.is_empty() {
            bail!("--target {raw:?} has an empty path: {expected}");
        }
        if path.chars().any(|c| c.is_control()) {
            bail!("--target {raw:?}: the path holds control characters: {expected}");
        }
        // Both rsync and ssh start in the home folder, so `~/x` is `x`; a
        // quoted `~` would not expand, and `~user` is not supported.
        let path = if path == "~" {
            ""
        } else if let Some(rest) = path.strip_prefix("~/") {
            rest
        } else if path.starts_with('~') {
            bail!("--target {raw:?}: ~user paths are not supported: {expected}");
        } else {
            path
        };
        let trimmed = path.trim_end_matches('/');
        let dir = if trimmed.is_empty() && path.starts_with('/') {
            "/"
        } else {
            trimmed
        };
        let at = user.map(|u| format!("{u}@")).unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Target {
            raw: raw.to_string(),
            ssh_dest: format!("{at}{bare}"),
            rsync_dest: format!("{at}{host}"),
            dir: dir.to_string(),
        })
    }

    /// The path of `file` in the drop folder.
    fn remote(&self, file: &str) -> String {
        match self.dir.as_str() {
            "" => file.to_string(),
            "/" => format!("/{file}"),
            dir => format!("{dir}/{file}"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The ssh command line, shared by rsync (`-e`) and the renames.
#[derive(Debug)]
pub struct Ssh {
    words: Vec<String>,
}

impl Ssh {
    /// `cutover_ssh` ($CUTOVER_SSH) or `ssh`, plus the options: never
    /// prompting (a CI job has nobody to answer), and the given port, key,
    /// known_hosts file and `-o` options.
    pub fn new(
        cutover_ssh: Option<&str>,
        port: Option<u16>,
        identity: Option<&Path>,
        known_hosts: Option<&Path>,
        options: &[String],
    ) -> anyhow::Result<Ssh> {
        let mut words = match cutover_ssh.filter(|s| !s.trim().is_empty()) {
            Some(cmd) => quote::split(cmd, "$CUTOVER_SSH")?,
            None => vec!["ssh".to_string()],
        };
        let mut opt = |o: String| {
            words.push("-o".into());
            words.push(o);
        };
        opt("BatchMode=yes".into());
        opt("ConnectTimeout=30".into());
        opt("ServerAliveInterval=15".into());
        if let Some(known_hosts) = known_hosts {
            let file = path_str(known_hosts, "--known-hosts")?;
            if file.contains('"') {
                bail!("--known-hosts {file:?}: expected a path without '\"'");
            }
            if !known_hosts.is_file() {
                bail!("--known-hosts {file:?} is not a file: expected a known_hosts file with the VMs' host keys");
            }
            // Quoted: ssh reads several files from a value with spaces.
            opt(format!("UserKnownHostsFile=\"{file}\""));
            opt("StrictHostKeyChecking=yes".into());
        }
        for o in options {
            if o.is_empty() || o.starts_with('-') || o.contains('\n') {
                bail!("--ssh-option {o:?}: expected an ssh -o option such as ProxyJump=bastion");
            }
            opt(o.clone());
        }
        if let Some(port) = port {
            words.push("-p".into());
            words.push(port.to_string());
        }
        if let Some(identity) = identity {
            let file = path_str(identity, "--identity")?;
            if !identity.is_file() {
                bail!("--identity {file:?} is not a file: expected an ssh private key");
            }
            words.push("-i".into());
            words.push(file.to_string());
            words.push("-o".into());
            words.push("IdentitiesOnly=yes".into());
        }
        // Each word must survive rsync's own splitting of -e.
        for w in &words {
            quote::rsync_word(w)?;
        }
        Ok(Ssh { words })
    }

    /// The `-e` value for rsync.
    fn rsync_e(&self) -> anyhow::Result<String> {
        let words = self
            .words
            .iter()
            .map(|w| quote::rsync_word(w))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(words.join(" "))
    }

    /// `ssh ... -- dest <remote command>`.
    fn command(&self, dest: &str, remote: &str) -> Command {
        let mut cmd = Command::new(&self.words[0]);
        cmd.args(&self.words[1..]).arg("--").arg(dest).arg(remote);
        cmd
    }
}

fn path_str<'a>(path: &'a Path, flag: &str) -> anyhow::Result<&'a str> {
    path.to_str()
        .with_context(|| format!("{flag} {}: expected a UTF-8 path", path.display()))
}

/// How uploads behave.
#[derive(Debug)]
pub struct Options {
    /// Attempts after the first.
    pub retries: u32,
    /// rsync --bwlimit, KiB/s.
    pub bwlimit: Option<u32>,
}

/// Delivers the artifact and its marker to one target, with retries.
pub fn deliver(
    ssh: &Ssh,
    target: &Target,
    packed: &Packed,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<()> {
    let attempts = options.retries.saturating_add(1);
    let mut attempt = 1;
    loop {
        progress.line(format_args!(
            "uploading {} ({}) to {target} (attempt {attempt} of {attempts})",
            packed.name,
            progress::size(packed.size)
        ));
        let started = Instant::now();
        match attempt_once(ssh, target, packed, options, progress) {
            Ok(()) => {
                progress.line(format_args!(
                    "delivered {} to {target} in {:.1}s",
                    packed.name,
                    started.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Err(err) if attempt < attempts => {
                let pause = backoff(attempt);
                progress.line(format_args!(
                    "upload to {target} failed (attempt {attempt} of {attempts}): {err:#}; \
                     trying again in {}s",
                    pause.as_secs()
                ));
                std::thread::sleep(pause);
                attempt += 1;
            }
            Err(err) => {
                return Err(err.context(format!(
                    "upload to {target} failed after {attempts} attempt(s)"
                )))
            }
        }
    }
}

/// 2s, 4s, 8s, ... up to [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    let secs = 2u64.saturating_pow(attempt.min(16));
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// One attempt: artifact, rename, marker, rename.
fn attempt_once(
    ssh: &Ssh,
    target: &Target,
    packed: &Packed,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<()> {
    let name = packed.name.file_name();
    let marker = packed.name.marker_name();
    put(ssh, target, &packed.path, name, options, progress)?;
    put(ssh, target, &packed.marker, &marker, options, progress)?;
    Ok(())
}

/// The name `name` is uploaded under before it is renamed into place:
/// `.cutover-<16 hex digits>.part`, the digits from the SHA-256 of `name`.
///
/// Fixed at 30 bytes, so it fits whatever the name's length: a name may be
/// 248 bytes, and `.<name>.sha256.part` would be 261, over the 255 bytes a
/// file name may have (rsync's own temporary file, `.<temp name>.XXXXXX`,
/// fits too). A dotfile ending in `.part`, which the collector never takes;
/// the same for every attempt at one name, so a retry overwrites it.
pub fn temp_name(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(".cutover-{hex}.part")
}

/// Uploads `local` under its [`temp_name`], then renames it to `name`.
fn put(
    ssh: &Ssh,
    target: &Target,
    local: &Path,
    name: &str,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<()> {
    let temp = temp_name(name);
    let part = target.remote(&temp);
    // On cancel: the temp file, and rsync's own `<temp>.XXXXXX` (the remote
    // rsync removes that itself once the connection drops, in its own time).
    let rm = format!(
        "rm -f -- {} {}{temp}.??????",
        quote::sh(&part),
        quote::sh(&target.remote(""))
    );
    cancel::set_remote(
        format!("{part} on {target}"),
        ssh.command(&target.ssh_dest, &rm),
    );
    let mut rsync = Command::new("rsync");
    // -s: the remote path goes to the remote rsync verbatim, not through
    // its shell (branch names may hold quotes and '&').
    rsync
        .arg("-s")
        .arg(format!("--timeout={RSYNC_IO_TIMEOUT_SECS}"))
        .args(progress.rsync_args());
    if let Some(kib) = options.bwlimit {
        rsync.arg(format!("--bwlimit={kib}"));
    }
    rsync
        .arg("-e")
        .arg(ssh.rsync_e()?)
        // An absolute local path: rsync would read "a:b" as a remote.
        .arg(std::path::absolute(local).with_context(|| format!("resolving {}", local.display()))?)
        .arg(format!("{}:{part}", target.rsync_dest));
    run(&mut rsync, &format!("rsync of {name} to {}", part))?;
    let rename = format!(
        "mv -f -- {} {}",
        quote::sh(&part),
        quote::sh(&target.remote(name))
    );
    run(
        &mut ssh.command(&target.ssh_dest, &rename),
        &format!("renaming {temp} to {name}"),
    )?;
    cancel::clear_remote();
    Ok(())
}

/// Runs a command whose stdout is progress (sent to our stderr); fails
/// with the step, the exit status and the end of its stderr.
fn run(cmd: &mut Command, step: &str) -> anyhow::Result<()> {
    cmd.stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cancel::spawn(cmd)
        .with_context(|| format!("{step}: cannot run {program} (is it installed?)"))?;
    let mut err = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_end(&mut err);
    }
    let status = child.wait();
    cancel::ended();
    let status = status.with_context(|| format!("{step}: waiting for {program}"))?;
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&err);
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!(
        "{step}: {program} exited with {status}: {}",
        tail.join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_short_dotfiles_ending_in_part() {
        let long = format!(
            "frontend_20261126T235012Z_1.4.2_{}.tar.zst",
            "b".repeat(208)
        );
        let marker = format!("{long}.sha256");
        assert_eq!(long.len(), 248);
        for name in [long.as_str(), marker.as_str(), "a.tar"] {
            let temp = temp_name(name);
            assert_eq!(temp.len(), 30, "{temp}");
            assert!(temp.starts_with(".cutover-") && temp.ends_with(".part"));
        }
        assert_ne!(temp_name(&long), temp_name(&marker));
        assert_eq!(temp_name("a.tar"), temp_name("a.tar"));
    }

    #[test]
    fn parses_targets() {
        let t = Target::parse("deploy@vm1.example:/srv/drop/").unwrap();
        assert_eq!(t.ssh_dest, "deploy@vm1.example");
        assert_eq!(t.remote("a"), "/srv/drop/a");
        let t = Target::parse("vm1:~/drop").unwrap();
        assert_eq!(t.remote("a"), "drop/a");
        let t = Target::parse("root@[::1]:/").unwrap();
        assert_eq!(
            (t.ssh_dest.as_str(), t.rsync_dest.as_str()),
            ("root@::1", "root@[::1]")
        );
        assert_eq!(t.remote("a"), "/a");
    }

    #[test]
    fn rejects_hostile_targets() {
        for bad in [
            "",
            "host",
            "host:",
            "-oProxyCommand=x:/d",
            "u@-x:/d",
            "-u@h:/d",
            "u@h;rm:/d",
            "u@[zz]:/d",
            "u@h:/d\nx",
            "u@h:~bob/d",
            "u@:/d",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_words_never_prompt() {
        let ssh = Ssh::new(
            Some("ssh -F '/x y'"),
            Some(2222),
            None,
            None,
            &["ProxyJump=b".into()],
        )
        .unwrap();
        let e = ssh.rsync_e().unwrap();
        assert!(e.starts_with("ssh -F '/x y' -o BatchMode=yes"), "{e}");
        assert!(
            e.contains("-o ProxyJump=b") && e.ends_with("-p 2222"),
            "{e}"
        );
        assert!(Ssh::new(None, None, None, None, &["-x".into()]).is_err());
    }
}
