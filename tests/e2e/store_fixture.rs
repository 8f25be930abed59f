//! The S3 fixtures the store tests stand on, checked with curl: the real
//! server (`seaweed`) refuses a second create (`If-None-Match: *`) and a
//! PUT with a stale `If-Match`, refuses unsigned requests, and keeps its
//! objects across a stop and a start; the double (`fake_s3`) takes every
//! PUT whatever its condition, and answers like S3 otherwise.
//!
//! The two Seaweed tests run side by side (each on its own ports), as the
//! fleet tests will.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cutover_tests::fake_s3::FakeS3;
use cutover_tests::net::listening;
use cutover_tests::packages;
use cutover_tests::seaweed::Seaweed;

/// What curl got: status, raw headers, body.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
    command: String,
}

impl Reply {
    /// The value of the last header `name` (the last response's, after a
    /// `100 Continue`).
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lines()
            .rev()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n{}{}",
            self.command,
            self.headers.trim_end(),
            if self.body.is_empty() {
                String::new()
            } else {
                format!("\n\n{}", self.text())
            }
        )
    }
}

/// Runs `cmd` (a curl) with `args` and `url`, headers and body to files in
/// `dir`, `stdin` written to it when given.
fn send(mut cmd: Command, dir: &Path, args: &[&str], url: &str, stdin: Option<&[u8]>) -> Reply {
    let (headers, body) = (dir.join("reply.headers"), dir.join("reply.body"));
    let _ = fs::remove_file(&headers);
    let _ = fs::remove_file(&body);
    cmd.args(args)
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}", "--max-time", "30"])
        .arg(url)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let mut child = cmd.spawn().expect("run curl");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("curl's stdin");
        pipe.write_all(data).expect("write to curl");
    }
    let out = child.wait_with_output().expect("wait for curl");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        out.status.success() && status != 0,
        "curl failed ({}): {}\n$ {command}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Reply {
        status,
        headers: fs::read_to_string(&headers).unwrap_or_default(),
        body: fs::read(&body).unwrap_or_default(),
        command,
    }
}

fn curl() -> Command {
    let mut cmd = Command::new(packages::ensure("curl", &["curl"]));
    cmd.arg("-sS");
    cmd
}

/// A file holding `content`, for `curl -T`.
fn file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

/// `-T <file> -H <header>`: a PUT of the file with one condition.
fn put_args<'a>(file: &'a Path, header: &'a str) -> Vec<&'a str> {
    vec!["-T", file.to_str().unwrap(), "-H", header]
}

#[test]
fn seaweed_refuses_a_second_create_and_a_stale_if_match() {
    let started = Instant::now();
    let s3 = Seaweed::start();
    println!("weed mini answered after {:?}", started.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = file(
        d,
        "first",
        "release v1 of the fleet, body of more than 64 bytes\n",
    );
    let second = file(d, "second", "release v2\n");
    let url = s3.url("fleet/pointer.json");
    let log = || format!("--- weed log tail\n{}", s3.log_tail());

    let r = send(
        s3.curl(),
        d,
        &put_args(&first, "If-None-Match: *"),
        &url,
        None,
    );
    assert_eq!(r.status, 200, "the first create:\n{r}\n{}", log());
    let etag = r.header("etag").expect("an ETag");
    let r = send(
        s3.curl(),
        d,
        &put_args(&second, "If-None-Match: *"),
        &url,
        None,
    );
    assert_eq!(r.status, 412, "the second create must be refused:\n{r}");

    let stale = format!("If-Match: \"{}\"", "0".repeat(32));
    let r = send(s3.curl(), d, &put_args(&second, &stale), &url, None);
    assert_eq!(
        r.status, 412,
        "a PUT with a stale If-Match must be refused:\n{r}"
    );
    let r = send(s3.curl(), d, &[], &url, None);
    assert_eq!(r.status, 200, "GET:\n{r}");
    assert_eq!(
        r.text(),
        fs::read_to_string(&first).unwrap(),
        "the first body stays:\n{r}"
    );

    let current = format!("If-Match: {etag}");
    let r = send(s3.curl(), d, &put_args(&second, &current), &url, None);
    assert_eq!(
        r.status,
        200,
        "a PUT with the current ETag:\n{r}\n{}",
        log()
    );
    let r = send(s3.curl(), d, &[], &url, None);
    assert_eq!(r.text(), "release v2\n", "the replaced body:\n{r}");

    let r = send(curl(), d, &[], &url, None);
    assert_eq!(r.status, 403, "an unsigned GET must be refused:\n{r}");
    let mut wrong = curl();
    wrong.args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "someone:else",
    ]);
    let r = send(wrong, d, &[], &url, None);
    assert_eq!(
        r.status, 403,
        "a GET signed with other keys must be refused:\n{r}"
    );

    // The double's ETags are weed's (and S3's): the MD5 of the body.
    let fake = FakeS3::start();
    let r = send(
        curl(),
        d,
        &["-T", first.to_str().unwrap()],
        &fake.url("x"),
        None,
    );
    assert_eq!(
        r.header("etag").as_deref(),
        Some(etag.as_str()),
        "FakeS3's ETag of the same body:\n{r}"
    );

    let snippet = s3.config_snippet("fleet-a");
    assert!(
        snippet.contains("url = \"s3://cutover/fleet-a\"")
            && snippet.contains(&format!("endpoint = \"{}\"", s3.endpoint()))
            && snippet.contains("path_style = true"),
        "{snippet}"
    );
    assert_eq!(
        s3.env(),
        [
            ("AWS_ACCESS_KEY_ID", s3.access_key()),
            ("AWS_SECRET_ACCESS_KEY", s3.secret_key())
        ]
    );
}

#[test]
fn seaweed_keeps_its_objects_across_stop_and_start_again() {
    let mut s3 = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = file(d, "body", "kept across a restart\n");
    let url = s3.url("fleet/kept");
    let r = send(
        s3.curl(),
        d,
        &put_args(&body, "If-None-Match: *"),
        &url,
        None,
    );
    assert_eq!(
        r.status,
        200,
        "create:\n{r}\n--- weed log tail\n{}",
        s3.log_tail()
    );

    let (pid, ports) = (s3.pid(), s3.ports());
    let stopping = Instant::now();
    s3.stop();
    println!("weed mini stopped in {:?}", stopping.elapsed());
    assert!(!s3.is_running());
    let raw = Pid::from_raw(i32::try_from(pid).unwrap());
    assert!(
        kill(raw, None).is_err(),
        "weed mini (pid {pid}) still exists after stop()"
    );
    assert!(
        !listening(ports.s3),
        "the S3 port {} still listens after stop()",
        ports.s3
    );

    let starting = Instant::now();
    s3.start_again();
    println!("weed mini answered again after {:?}", starting.elapsed());
    assert_eq!(s3.ports(), ports, "start_again keeps the ports");
    assert_ne!(s3.pid(), pid, "start_again starts a new process");
    let r = send(s3.curl(), d, &[], &url, None);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "kept across a restart\n"),
        "the object after start_again:\n{r}\n--- weed log tail\n{}",
        s3.log_tail()
    );
    let r = send(
        s3.curl(),
        d,
        &put_args(&body, "If-None-Match: *"),
        &url,
        None,
    );
    assert_eq!(r.status, 412, "a create over the kept object:\n{r}");

    // Killed by the test (a crash of the store): start_again takes it too,
    // and what was acknowledged is still there.
    let again = file(d, "again", "written just before a SIGKILL\n");
    let r = send(
        s3.curl(),
        d,
        &["-T", again.to_str().unwrap()],
        &s3.url("fleet/again"),
        None,
    );
    assert_eq!(r.status, 200, "PUT:\n{r}");
    let pid = s3.pid();
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
    let dead = Instant::now();
    while s3.is_running() {
        assert!(
            dead.elapsed() < Duration::from_secs(10),
            "pid {pid} outlived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s3.start_again();
    for (key, want) in [
        ("fleet/kept", "kept across a restart\n"),
        ("fleet/again", "written just before a SIGKILL\n"),
    ] {
        let r = send(s3.curl(), d, &[], &s3.url(key), None);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, want),
            "{key} after a SIGKILL and start_again:\n{r}\n--- weed log tail\n{}",
            s3.log_tail()
        );
    }
}

#[test]
fn fake_s3_takes_every_put_whatever_its_condition() {
    let s3 = FakeS3::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = file(d, "first", "first\n");
    let second = file(d, "second", "second\n");
    let url = s3.url("fleet/pointer.json");

    let r = send(curl(), d, &put_args(&first, "If-None-Match: *"), &url, None);
    assert_eq!(r.status, 200, "the first create:\n{r}");
    assert!(r.header("date").is_some(), "a Date header:\n{r}");
    // Signed or not, the same: the double checks no signature.
    let mut signed = curl();
    signed
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", s3.env()[0].1, s3.env()[1].1));
    let r = send(
        signed,
        d,
        &put_args(&second, "If-None-Match: *"),
        &url,
        None,
    );
    assert_eq!(r.status, 200, "the second create is taken too:\n{r}");
    let r = send(
        curl(),
        d,
        &put_args(&first, "If-Match: \"stale\""),
        &url,
        None,
    );
    assert_eq!(
        r.status, 200,
        "a PUT with a stale If-Match is taken too:\n{r}"
    );
    assert_eq!(
        s3.object("fleet/pointer.json").as_deref(),
        Some(&b"first\n"[..])
    );
    let conditions: Vec<(Option<String>, Option<String>)> = s3
        .requests()
        .into_iter()
        .map(|r| (r.if_none_match, r.if_match))
        .collect();
    assert_eq!(
        conditions,
        [
            (Some("*".to_string()), None),
            (Some("*".to_string()), None),
            (None, Some("\"stale\"".to_string()))
        ]
    );

    let r = send(curl(), d, &[], &url, None);
    assert_eq!((r.status, r.text().as_str()), (200, "first\n"), "GET:\n{r}");
    // The MD5 of "first\n", as S3 would say.
    assert_eq!(
        r.header("etag").as_deref(),
        Some("\"eb260e9ae827821beceeed4104f0ad89\""),
        "GET:\n{r}"
    );
    assert!(r.header("last-modified").is_some(), "{r}");
    let r = send(curl(), d, &["-I"], &url, None);
    assert_eq!(
        (r.status, r.header("content-length").as_deref()),
        (200, Some("6")),
        "HEAD:\n{r}"
    );

    // A body of unknown length: curl sends it chunked.
    let r = send(
        curl(),
        d,
        &["-T", "-"],
        &s3.url("fleet/a%20b%26c"),
        Some(b"streamed"),
    );
    assert_eq!(r.status, 200, "a chunked PUT:\n{r}");
    assert_eq!(s3.object("fleet/a b&c").as_deref(), Some(&b"streamed"[..]));
    let list = format!("{}/cutover?list-type=2&prefix=fleet%2F", s3.endpoint());
    let r = send(curl(), d, &[], &list, None);
    assert_eq!(r.status, 200, "list:\n{r}");
    let text = r.text();
    assert!(
        text.contains("<Key>fleet/a b&amp;c</Key>")
            && text.contains("<Key>fleet/pointer.json</Key>")
            && text.contains("<Size>6</Size>")
            && text.contains("<IsTruncated>false</IsTruncated>"),
        "{r}"
    );
    let r = send(curl(), d, &[], &format!("{list}&delimiter=%2F"), None);
    assert!(r.text().contains("<KeyCount>2</KeyCount>"), "{r}");
    let r = send(
        curl(),
        d,
        &[],
        &format!("{}/cutover?list-type=2&prefix=x", s3.endpoint()),
        None,
    );
    assert!(r.text().contains("<KeyCount>0</KeyCount>"), "{r}");

    let r = send(curl(), d, &["-X", "DELETE"], &url, None);
    assert_eq!(r.status, 204, "DELETE:\n{r}");
    let r = send(curl(), d, &[], &url, None);
    assert_eq!(r.status, 404, "GET after DELETE:\n{r}");
    assert!(r.text().contains("<Code>NoSuchKey</Code>"), "{r}");
    assert_eq!(s3.keys(), ["fleet/a b&c"]);
}
