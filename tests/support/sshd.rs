//! A real OpenSSH server on a loopback port, for delivery tests.
//!
//! Debian's `/usr/sbin/sshd` runs in the foreground (`-D -e`) with a config,
//! host key and client key made fresh in a temp dir: nothing of the
//! machine's own ssh setup is read or changed. It accepts only the test's
//! key, for the user running the tests (root in CI containers; StrictModes
//! is off because the temp dir's owner and modes are the test's). When
//! sshd or rsync is missing, it is installed with apt-get; if that is not
//! possible the test fails and says so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use crate::net::{free_port, wait_listening};

/// The sshd binary Debian installs.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd, stopped when dropped.
#[derive(Debug)]
pub struct Sshd {
    dir: TempDir,
    child: Child,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The user the key logs in as.
    pub user: String,
    /// The client's private key.
    pub identity: PathBuf,
    /// A known_hosts file holding this server's host key.
    pub known_hosts: PathBuf,
}

impl Sshd {
    /// Installs what is missing, then starts a server.
    pub fn start() -> Sshd {
        ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("cutover-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("id_ed25519"));
        fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
        // sshd refuses to start without its privilege separation folder.
        fs::create_dir_all("/run/sshd").unwrap();
        let user = run_text(Command::new("id").arg("-un"));
        let host_pub = fs::read_to_string(d.join("host_key.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        // A port that was free may be taken by the time sshd binds: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = d.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}\n\
                     HostKey {d}/host_key\n\
                     PidFile none\n\
                     AuthorizedKeysFile {d}/authorized_keys\n\
                     StrictModes no\n\
                     UsePAM no\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\n\
                     AllowUsers {user}\n\
                     LogLevel VERBOSE\n",
                    d = d.display()
                ),
            )
            .unwrap();
            let log = fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            if wait_listening(port, true, Duration::from_secs(10)) {
                fs::write(
                    d.join("known_hosts"),
                    format!("[127.0.0.1]:{port} {} {}\n", host_pub[0], host_pub[1]),
                )
                .unwrap();
                return Sshd {
                    identity: d.join("id_ed25519"),
                    known_hosts: d.join("known_hosts"),
                    child,
                    port,
                    user,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not start listening on 127.0.0.1; its log:\n{last}");
    }

    /// `user@127.0.0.1:<dir>`, a `--target` for a folder on this server.
    pub fn target(&self, dir: &Path) -> String {
        format!("{}@127.0.0.1:{}", self.user, dir.display())
    }

    /// The ssh options `artifact-name deliver` needs to reach this server.
    pub fn deliver_args(&self) -> Vec<String> {
        vec![
            "--port".into(),
            self.port.to_string(),
            "--identity".into(),
            self.identity.display().to_string(),
            "--known-hosts".into(),
            self.known_hosts.display().to_string(),
        ]
    }

    /// `$CUTOVER_SSH` for this server: ssh that ignores the machine's
    /// and the user's ssh config.
    pub fn ssh_command(&self) -> &'static str {
        "ssh -F /dev/null"
    }

    /// The server's pid: its sessions (and the remote rsync they run) are
    /// its descendants.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cutover-test", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}"));
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

fn run_text(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Installs openssh-server, openssh-client and rsync with apt-get when
/// sshd, ssh, ssh-keygen or rsync is missing; panics if that fails.
pub fn ensure_installed() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let have = |bin: &str| {
        Path::new(bin).is_file()
            || Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    if !(have(SSHD) && have("ssh") && have("ssh-keygen") && have("rsync")) {
        let script = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                      apt-get install -y -qq openssh-server openssh-client rsync";
        let out = Command::new("sh").args(["-c", script]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "these tests need a real sshd, ssh and rsync, and `{script}` failed:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => {
                panic!("these tests need a real sshd, ssh and rsync; cannot run `{script}`: {e}")
            }
        }
        assert!(
            have(SSHD) && have("rsync"),
            "apt-get ran but {SSHD} or rsync is still missing"
        );
    }
    *done = true;
}
