//! The hostile world: what can go wrong on the VM, through the real
//! collector and switcher binaries, a real demo backend started and stopped
//! by the configured commands, and real filesystems.
//!
//! Each topic proves that nothing is lost, that the service is not left down
//! while an older release could run, and that nothing is written outside
//! the release's temporary folder:
//!
//! - [`crash`]: both binaries killed at every fault point, one combined table.
//! - [`uploads`]: slow, partial and markerless uploads; stale ones reported.
//! - [`archives`]: hostile archives refused with a reason naming the entry.
//! - [`names`]: hostile file names never stop the others from deploying.
//! - [`overlap`]: 50 overlapping runs; at most one switch at a time.
//! - [`disk_full`]: staging and releases on a tiny tmpfs that fills up.
//! - [`drop_owner`]: links planted by the upload user are never followed.
//! - [`page`]: hostile branch names on the status page in Chromium.
//! - [`stems`]: two artifacts with one release id (`x.tar.gz`, `x.tgz`).

mod archives;
mod crash;
mod disk_full;
mod drop_owner;
mod names;
mod overlap;
mod page;
mod stems;
mod uploads;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_tests::net::get;
use cutover_tests::{ArchiveBuilder, Run, Sandbox};

/// A sandbox whose backend is the demo app, with `extra` TOML appended
/// (after a `[switcher]` table with short timeouts, so `extra` may add
/// `[collector]` or `[status]` tables but not another `[switcher]`).
pub fn demo_sandbox(switcher_extra: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_demo_config(&format!(
        "[switcher]\nverify_timeout = \"5s\"\ncommand_timeout = \"30s\"\n{switcher_extra}\n{extra}"
    ));
    sb
}

/// One cron minute: the collector (which must exit 0), then the switcher.
pub fn cron(sb: &Sandbox) -> Run {
    sb.run("collector", &[]).success();
    sb.run("switcher", &[])
}

/// What the demo backend answers at /api/version ("backend 1.0.0"), waiting
/// a little for it to come up (start-stop-daemon returns before it listens;
/// the switcher's verify already waited, so this is only a margin).
pub fn served(sb: &Sandbox, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..30 {
        got = match get(sb.backend_port, "/api/version") {
            Ok((200, body)) => body.trim().to_string(),
            Ok((code, body)) => format!("HTTP {code}: {}", body.trim()),
            Err(e) => format!("no answer: {e}"),
        };
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

/// Asserts that the backend answers with `version`.
#[track_caller]
pub fn assert_serves(sb: &Sandbox, run: &Run, version: &str) {
    let want = format!("backend {version}");
    let got = served(sb, &want);
    assert_eq!(got, want, "the service must answer\n{run}");
}

/// A demo artifact built `minute` minutes after the test epoch.
pub fn demo(kind: &str, version: &str, minute: i64) -> ArchiveBuilder {
    ArchiveBuilder::demo(kind, version).minute(minute)
}

/// Asserts the tree is consistent: each current/<component> points to a
/// complete release (its VERSION file is there), both state files parse,
/// no journal and no temporary folder is left. Returns the release ids.
#[track_caller]
pub fn assert_consistent(sb: &Sandbox, run: &Run) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in ["backend", "frontend"] {
        let link = sb.path("current").join(c);
        let Ok(target) = fs::read_link(&link) else {
            continue;
        };
        let release = sb.path("current").join(&target);
        let version = fs::read_to_string(release.join("VERSION")).unwrap_or_else(|e| {
            panic!(
                "current/{c} -> {} is not complete ({e})\n{run}",
                target.display()
            )
        });
        out.push((c.to_string(), version.trim().to_string()));
    }
    for state in ["collector.json", "switcher.json"] {
        sb.state_json(state);
    }
    assert!(
        !sb.path("state/journal.json").exists(),
        "a journal is left after a whole pass\n{run}"
    );
    assert!(
        !sb.names("releases").iter().any(|n| n.starts_with(".tmp")),
        "a temporary release folder is left\n{run}"
    );
    out
}

/// A folder outside the deploy root with a file in it, to check that no
/// archive or upload wrote, removed or changed anything there.
#[derive(Debug)]
pub struct Sentinel {
    /// The folder.
    pub dir: PathBuf,
    before: String,
}

impl Sentinel {
    /// Makes `<sandbox>/sentinel/` holding `secret`.
    pub fn new(sb: &Sandbox) -> Sentinel {
        let dir = sb.dir().join("sentinel");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("secret"), b"sentinel: must never change\n").unwrap();
        let before = cutover_tests::sandbox::listing(&dir);
        Sentinel { dir, before }
    }

    /// Panics with the whole story unless the folder is as it was.
    #[track_caller]
    pub fn assert_untouched(&self, context: &str) {
        let now = cutover_tests::sandbox::listing(&self.dir);
        assert_eq!(
            now,
            self.before,
            "the sentinel folder {} changed ({context})",
            self.dir.display()
        );
        let secret = fs::read(self.dir.join("secret")).unwrap();
        assert_eq!(secret, b"sentinel: must never change\n", "{context}");
        assert_eq!(
            fs::metadata(self.dir.join("secret")).unwrap().nlink(),
            1,
            "the sentinel gained a hard link ({context})"
        );
    }
}

/// The paths under `dir` (not following links), relative, sorted.
pub fn paths(dir: &Path) -> Vec<String> {
    walkdir(dir, dir)
}

fn walkdir(base: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.push(p.strip_prefix(base).unwrap().display().to_string());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walkdir(base, &p));
        }
    }
    out.sort();
    out
}
