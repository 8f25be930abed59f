//! A real nginx for tests: Debian's binary, run as a child process (not a
//! daemon) with its own prefix and main config in a temp dir, serving the
//! site that `switcher nginx-site` renders for a sandbox's config.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::bins::{self, workspace_root};
use crate::net::wait_listening;
use crate::packages;

/// The nginx binary, installed when missing (see [`packages::ensure`]).
pub fn binary() -> PathBuf {
    packages::ensure("nginx", &["nginx-light", "nginx"])
}

/// The committed site template, deploy/nginx/cutover.conf.in.
pub fn site_template() -> String {
    let path = workspace_root().join("deploy/nginx/cutover.conf.in");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The site `switcher nginx-site` renders for the config file `config`.
pub fn site_for_config(config: &Path) -> String {
    let out = Command::new(bins::bin("switcher"))
        .arg("--config")
        .arg(config)
        .arg("nginx-site")
        .env_remove("RUST_LOG")
        .output()
        .expect("run switcher nginx-site");
    assert!(
        out.status.success(),
        "switcher --config {} nginx-site: {}\n{}",
        config.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the site is UTF-8")
}

/// The site for a deploy root, a listen address (`80`, `127.0.0.1:8081`)
/// and a backend (`127.0.0.1:8080`), rendered by `switcher nginx-site` for
/// a config with components `frontend` (on the listen port) and `backend`.
pub fn render_site(root: &Path, listen: &str, backend: &str) -> String {
    let port = |s: &str| s.rsplit_once(':').map_or(s, |(_, p)| p).to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cutover.toml");
    fs::write(
        &config,
        format!(
            "root = {root:?}\n[kinds]\nfull = [\"backend\", \"frontend\"]\n\
             [components.backend]\nport = {bp}\n[components.frontend]\nport = {fp}\n\
             [nginx]\nlisten = {listen:?}\n",
            root = root.display().to_string(),
            bp = port(backend),
            fp = port(listen),
        ),
    )
    .unwrap();
    site_for_config(&config)
}

/// The main config that includes `site`, with every path nginx writes
/// inside `dir`. As root, workers stay root so that they can read the
/// sandbox (a temp dir of mode 0700); elsewhere they run as the user.
fn main_config(dir: &Path, site: &Path) -> String {
    let user = if packages::is_root() {
        "user root;\n"
    } else {
        ""
    };
    let d = dir.display();
    format!(
        "{user}worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n\
         include /etc/nginx/mime.types;\ndefault_type application/octet-stream;\n\
         access_log {d}/access.log;\nclient_body_temp_path {d}/tmp/body;\nproxy_temp_path {d}/tmp/proxy;\n\
         fastcgi_temp_path {d}/tmp/fastcgi;\nuwsgi_temp_path {d}/tmp/uwsgi;\nscgi_temp_path {d}/tmp/scgi;\n\
         include {};\n}}\n",
        site.display()
    )
}

/// `nginx -t` on a main config file: the whole output. Without `prefix`,
/// nginx's own (Debian's module paths are relative to it).
pub fn check(conf: &Path, prefix: Option<&Path>, extra_globals: &str) -> Output {
    let mut cmd = Command::new(binary());
    cmd.arg("-t");
    if let Some(prefix) = prefix {
        cmd.arg("-p").arg(prefix);
    }
    cmd.arg("-c")
        .arg(conf)
        .arg("-g")
        .arg(format!("error_log stderr; {extra_globals}"))
        .output()
        .expect("run nginx -t")
}

/// A running nginx; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Nginx {
    /// Starts nginx serving `site` (a rendered site config listening on
    /// 127.0.0.1:`port`), checked with `nginx -t` first.
    pub fn start(site: &str, port: u16) -> Nginx {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("cutover-nginx-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        let site_path = dir.path().join("cutover.conf");
        fs::write(&site_path, site).unwrap();
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, main_config(dir.path(), &site_path)).unwrap();
        let pid = format!("pid {}/nginx.pid;", dir.path().display());
        let t = check(&conf, Some(dir.path()), &pid);
        assert!(
            t.status.success(),
            "nginx -t failed:\n{}\n--- site\n{site}",
            String::from_utf8_lossy(&t.stderr)
        );
        let log = fs::File::create(dir.path().join("error.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!("daemon off; {pid} error_log stderr;"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let nginx = Nginx { child, dir, port };
        assert!(
            wait_listening(port, true, Duration::from_secs(10)),
            "nginx did not listen on 127.0.0.1:{port}\n--- error log\n{}",
            nginx.error_log()
        );
        nginx
    }

    /// What nginx logged.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// GET `path` through nginx.
    pub fn get(&self, path: &str) -> Response {
        http_get(self.port, path)
    }

    /// A command that makes this nginx reload its config gracefully (what
    /// `nginx -s reload` does: SIGHUP to the master), for `nginx.reload`.
    pub fn reload_command(&self) -> String {
        format!("kill -HUP {}", self.child.id())
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to the master is enough: its workers exit when it does
        // (they watch the master), and nothing here needs a graceful stop.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .output();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status, headers (names in lower case), body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (0 when the response could not be read).
    pub status: u16,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (n, v) in &self.headers {
            writeln!(f, "{n}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

/// GET `http://127.0.0.1:<port><path>` with HTTP/1.0 (so the body is never
/// chunked), headers included.
pub fn http_get(port: u16, path: &str) -> Response {
    let fail = |e: std::io::Error| Response {
        status: 0,
        headers: Vec::new(),
        body: format!("(no response: {e})"),
    };
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    if let Err(e) = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n") {
        return fail(e);
    }
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        return fail(e);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}
