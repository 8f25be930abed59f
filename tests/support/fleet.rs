//! A group of VMs on one machine: one real S3 store ([`crate::seaweed`])
//! and several deploy roots ([`Sandbox`]), each with its own demo backend
//! and `[store]` + `[fleet]` config, run with the binaries built with the
//! store (`bins::fleet_bin`).
//!
//! Every VM runs its passes itself (collector, then switcher, as cron
//! would); [`Group::converge`] runs all of them side by side, each in its
//! own thread, until a condition holds or a time limit passes: nothing
//! depends on how many passes that took.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::bins::fleet_bin;
use crate::sandbox::{Run, Sandbox};
use crate::seaweed::Seaweed;

/// One VM: a sandbox and its id.
#[derive(Debug)]
pub struct Vm {
    /// Its deploy root and config.
    pub sb: Sandbox,
    /// Its `[fleet] id`.
    pub id: String,
}

/// A store and the VMs of one group.
#[derive(Debug)]
pub struct Group {
    /// The store.
    pub store: Seaweed,
    /// The VMs, `vm-0`, `vm-1`, ...
    pub vms: Vec<Vm>,
    /// The group's name.
    pub name: String,
    /// The store's prefix.
    pub prefix: String,
}

impl Group {
    /// `n` VMs with demo backends; `fleet` is extra `[fleet]` keys (e.g.
    /// `max_parallel = 1`), `extra` extra tables for every config.
    pub fn start(n: usize, fleet: &str, extra: &str) -> Group {
        let store = Seaweed::start();
        let prefix = "builds".to_string();
        let name = "test".to_string();
        let vms = (0..n)
            .map(|i| {
                let sb = Sandbox::new();
                let id = format!("vm-{i}");
                sb.write_demo_config(&format!(
                    "[switcher]\nverify_timeout = \"5s\"\n\n[status]\nperiod = \"2s\"\n\n{store}\n[fleet]\ngroup = {name:?}\nid = {id:?}\n{fleet}\n\n{extra}",
                    store = store.config_snippet(&prefix),
                ));
                Vm { sb, id }
            })
            .collect();
        Group {
            store,
            vms,
            name,
            prefix,
        }
    }

    /// A command for a binary built with the store, for VM `i` (config and
    /// store credentials set on the child only).
    pub fn cmd(&self, i: usize, bin: &str) -> Command {
        let mut cmd = Command::new(fleet_bin(bin));
        cmd.env("CUTOVER_CONFIG", &self.vms[i].sb.config)
            .env_remove("RUST_LOG")
            .envs(self.store.env());
        cmd
    }

    /// Runs `bin args` for VM `i` to completion.
    pub fn run(&self, i: usize, bin: &str, args: &[&str]) -> Run {
        let mut cmd = self.cmd(i, bin);
        cmd.args(args);
        Run::capture(&mut cmd, self.vms[i].sb.dir())
    }

    /// Starts `bin args` for VM `i` in the background (the caller ends it).
    pub fn spawn(&self, i: usize, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut cmd = self.cmd(i, bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    /// One pass of VM `i`: collector, then switcher. Returns both runs.
    pub fn pass(&self, i: usize) -> (Run, Run) {
        let c = self.run(i, "collector", &[]);
        let s = self.run(i, "switcher", &[]);
        (c, s)
    }

    /// Runs passes on every VM side by side, each VM in its own thread,
    /// until `done(i)` holds for VM `i` (checked after each of its passes)
    /// or `limit` passes. Returns every VM's passes, in order; panics on
    /// the limit with the last passes of the VMs not done.
    pub fn converge(
        &self,
        limit: Duration,
        done: impl Fn(&Group, usize) -> bool + Sync,
    ) -> Vec<Vec<(Run, Run)>> {
        let started = Instant::now();
        let done = &done;
        let runs: Vec<(bool, Vec<(Run, Run)>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.vms.len())
                .map(|i| {
                    scope.spawn(move || {
                        let mut runs = Vec::new();
                        loop {
                            if done(self, i) {
                                return (true, runs);
                            }
                            if started.elapsed() > limit {
                                return (false, runs);
                            }
                            runs.push(self.pass(i));
                            // A VM waiting for a slot: not a busy loop.
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stuck: Vec<String> = runs
            .iter()
            .enumerate()
            .filter(|(_, (ok, _))| !ok)
            .map(|(i, (_, passes))| match passes.last() {
                Some((c, s)) => format!("{} is not done; its last pass:\n{c}\n{s}", self.vms[i].id),
                None => format!("{} is not done and made no pass", self.vms[i].id),
            })
            .collect();
        assert!(
            stuck.is_empty(),
            "not converged within {limit:?}:\n{}\n--- store log\n{}",
            stuck.join("\n\n"),
            self.store.log_tail()
        );
        runs.into_iter().map(|(_, r)| r).collect()
    }

    /// The artifact VM `i`'s backend runs, from its switcher.json.
    pub fn running(&self, i: usize, component: &str) -> Option<String> {
        let path = self.vms[i].sb.root.join("state/switcher.json");
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["components"][component]["running"]["artifact"]
            .as_str()
            .map(str::to_string)
    }

    /// The deploy lines of VM `i`'s history: (start, end, artifact,
    /// outcome). In rolling mode, start and end are when the deploy took
    /// its slot and when it ended, to the millisecond; else the line's
    /// `at` (to the second) and its length.
    pub fn deploys(&self, i: usize) -> Vec<(DateTime<Utc>, DateTime<Utc>, String, String)> {
        let path = self.vms[i].sb.root.join("state/history.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let time = |v: &serde_json::Value| {
            DateTime::parse_from_rfc3339(v.as_str()?)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["action"] == "deploy")
            .filter_map(|v| {
                let (start, end) =
                    match (time(&v["slot"]["taken_at"]), time(&v["slot"]["ended_at"])) {
                        (Some(s), Some(e)) => (s, e),
                        _ => {
                            let at = time(&v["at"])?;
                            let ms = i64::try_from(v["total_ms"].as_u64()?).ok()?;
                            (at, at + chrono::Duration::milliseconds(ms))
                        }
                    };
                Some((
                    start,
                    end,
                    v["artifact"].as_str()?.to_string(),
                    v["outcome"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// `artifact-name deliver` of a demo build (`full`, `version`, built
    /// at `time`; `behaviour` written to backend/BEHAVIOUR when given) to
    /// the group's store, then `--wait --group` for the group (started in
    /// the background: the VMs' passes must run meanwhile).
    pub fn deliver(&self, version: &str, time: DateTime<Utc>, behaviour: Option<&str>) -> Child {
        let from = self.vms[0].sb.dir().join(format!("build-{version}"));
        std::fs::create_dir_all(from.join("backend")).unwrap();
        std::fs::create_dir_all(from.join("frontend")).unwrap();
        std::fs::write(from.join("backend/VERSION"), format!("{version}\n")).unwrap();
        std::fs::write(
            from.join("frontend/index.html"),
            format!("<!doctype html><title>demo</title><p>frontend {version}</p>\n"),
        )
        .unwrap();
        if let Some(b) = behaviour {
            std::fs::write(from.join("backend/BEHAVIOUR"), b).unwrap();
        }
        let mut cmd = Command::new(fleet_bin("artifact-name"));
        cmd.args(["deliver", "--from"])
            .arg(&from)
            .args(["--kind", "full", "--version", version, "--branch", "master"])
            .arg("--time")
            .arg(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .arg("--out")
            .arg(self.vms[0].sb.dir().join("dist"))
            .arg("--to")
            .arg(format!("s3://{}/{}", self.store.bucket(), self.prefix))
            .args(["--store-endpoint", &self.store.endpoint()])
            .args([
                "--group",
                &self.name,
                "--wait-timeout",
                "300s",
                "--wait-interval",
                "1s",
            ])
            .env_remove("RUST_LOG")
            .envs(self.store.env())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    /// The deploy root of VM `i`.
    pub fn root(&self, i: usize) -> PathBuf {
        self.vms[i].sb.root.clone()
    }
}
