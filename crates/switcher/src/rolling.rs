//! The pass's side of the fleet (`[store]` + `[fleet]`, docs/fleet.md):
//! before a deploy, the group's holds, the rollout's standing (halted once
//! `max_failures` VMs failed the artifact) and, in rolling mode
//! (`max_parallel`), a slot lease kept renewed during the switch; after
//! it, this VM's failure written to the store and the lease released; at
//! the end of every pass, this VM's report.
//!
//! The store is never needed to keep what runs running: a store that
//! cannot be reached only means "not deploying now" (a held reason on the
//! page) and a warning; the next pass asks again.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use deploy_root::control::ControlState;
use deploy_root::fleet_config::FleetConfig;
use deploy_root::state::SwitcherState;
use deploy_root::{atomic, Config, Layout};
use fleet::lease::{self, Acquired, Keeper};
use fleet::report::{VmComponent, VmReport};
use fleet::rollout::{self, FailureRecord};
use fleet::{layout as keys, Store, StoreError};
use serde::{Deserialize, Serialize};

/// This VM's membership of its group.
#[derive(Debug)]
pub struct Fleet {
    /// The store, shared with the lease's renewal thread.
    pub store: Arc<Store>,
    /// `[fleet]`.
    pub config: FleetConfig,
    /// This VM's id.
    pub vm: String,
}

impl Fleet {
    /// The fleet of `config`, or None without `[fleet]`.
    pub fn open(config: &Config) -> anyhow::Result<Option<Fleet>> {
        let (Some(store), Some(fleet)) = (&config.store, &config.fleet) else {
            return Ok(None);
        };
        let vm = fleet
            .vm_id()
            .map_err(|e| anyhow::anyhow!("[fleet] id: {e}"))?;
        let store = Store::open(store).context("opening the store of [store]")?;
        Ok(Some(Fleet {
            store: Arc::new(store),
            config: fleet.clone(),
            vm,
        }))
    }

    fn group(&self) -> &str {
        &self.config.group
    }

    /// The group's holds (`switcher freeze --fleet`, `pin --fleet`), as
    /// state/control.json's type; empty when none were set.
    pub fn holds(&self) -> Result<ControlState, StoreError> {
        let key = keys::control(self.group());
        match self.store.get(&key)? {
            None => Ok(ControlState::default()),
            Some((bytes, _)) => serde_json::from_slice(&bytes).map_err(|e| StoreError::BadAnswer {
                op: fleet::store::Op::Get,
                key,
                message: format!("expected the group's holds as JSON: {e}"),
            }),
        }
    }
}

/// What the fleet says about deploying an artifact now.
#[derive(Debug)]
pub enum Gate {
    /// Go: with the slot lease (rolling mode), kept renewed until
    /// [`after`] releases it.
    Go(Option<Keeper>),
    /// The group's rollout of it halted: skip it as if it had failed here.
    Halted(String),
    /// Not now (waiting for a slot, or for the store): why, in words.
    Wait(String),
}

/// The rollout's standing, then (rolling mode) a slot. `period` is how
/// often VMs run a pass (`[status] period`): a VM not seen for two of them
/// does not count towards a percentage.
pub fn gate(
    fleet: &Fleet,
    layout: &Layout,
    artifact: &str,
    period: std::time::Duration,
) -> anyhow::Result<Gate> {
    let max_failures = fleet.config.max_failures;
    let standing = match rollout::standing(&fleet.store, fleet.group(), artifact, max_failures) {
        Ok(s) => s,
        Err(e) => return Ok(wait_for_store(&e)),
    };
    if let Some(halt) = standing.halted {
        return Ok(Gate::Halted(format!(
            "the group {}'s rollout of it {}",
            fleet.group(),
            halt.summary()
        )));
    }
    let Some(max_parallel) = fleet.config.max_parallel else {
        return Ok(Gate::Go(None));
    };
    ensure_fit(fleet, layout)?;
    let slots = match max_parallel {
        deploy_root::fleet_config::MaxParallel::Count(n) => n,
        p => match live_vms(fleet, period) {
            Ok(live) => p.slots(live),
            Err(e) => return Ok(wait_for_store(&e)),
        },
    };
    match lease::acquire(
        &fleet.store,
        fleet.group(),
        &fleet.vm,
        artifact,
        slots,
        fleet.config.lease_ttl,
    ) {
        Ok(Acquired::Got(l)) => Ok(Gate::Go(Some(Keeper::start(Arc::clone(&fleet.store), l)))),
        Ok(Acquired::Busy(busy)) => {
            let who: Vec<String> = busy
                .iter()
                .map(|b| {
                    format!(
                        "{} switches to {} (slot {}, since {} UTC)",
                        b.holder,
                        b.artifact.as_deref().unwrap_or("?"),
                        b.slot,
                        b.since.format("%Y-%m-%d %H:%M:%S")
                    )
                })
                .collect();
            Ok(Gate::Wait(format!(
                "waiting for one of the group {}'s {slots} switch slot{} (max_parallel = {max_parallel}): {}",
                fleet.group(),
                if slots == 1 { "" } else { "s" },
                who.join("; ")
            )))
        }
        Err(e) => Ok(wait_for_store(&e)),
    }
}

fn wait_for_store(e: &StoreError) -> Gate {
    tracing::warn!("the fleet's store: {e}; not deploying now");
    Gate::Wait(format!("waiting for the store: {e}"))
}

/// How many VMs of the group reported within two of their periods, by
/// the store's clock (this one included, at least 1).
fn live_vms(fleet: &Fleet, period: std::time::Duration) -> Result<usize, StoreError> {
    let listed = fleet.store.list(&keys::status_dir(fleet.group()))?;
    let now = fleet.store.last_date().unwrap_or_else(Utc::now);
    let window = chrono::Duration::from_std(period * 2).unwrap_or(chrono::Duration::MAX);
    let live = listed
        .iter()
        .filter(|o| keys::vm_of_status(fleet.group(), &o.key).is_some_and(|vm| vm != fleet.vm))
        .filter(|o| now - o.last_modified <= window)
        .count();
    Ok(live + 1)
}

/// After a deploy attempt: this VM's failure (when the artifact failed
/// here) goes to the store, the halt record if it reached the limit, and
/// the lease is released. Errors are logged: the deploy's outcome stands.
pub fn after(fleet: &Fleet, keeper: Option<Keeper>, artifact: &str, st: &SwitcherState) {
    if let Some(f) = st.failed.get(artifact) {
        let record = FailureRecord {
            vm: fleet.vm.clone(),
            artifact: artifact.to_string(),
            at: deploy_root::time::rfc3339(f.at),
            step: f.step.clone(),
            reason: f.reason.clone(),
            rolled_back: !f.rollback_failed,
        };
        let written =
            rollout::record_failure(&fleet.store, fleet.group(), &record).and_then(|()| {
                rollout::standing(
                    &fleet.store,
                    fleet.group(),
                    artifact,
                    fleet.config.max_failures,
                )
            });
        match written {
            Ok(s) if s.halted.is_some() => tracing::error!(
                "the group {}'s rollout of {artifact} halted: {} VM(s) failed it (max_failures = {})",
                fleet.group(),
                s.failed_vms.len(),
                fleet.config.max_failures
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(
                "recording this VM's failure of {artifact} in the store: {e}; other VMs may try it"
            ),
        }
    }
    if let Some(keeper) = keeper {
        if let Some(l) = keeper.stop() {
            if let Err(e) = lease::release(&fleet.store, &l) {
                tracing::warn!(
                    "releasing fleet slot {}: {e}; it frees itself when its lease expires",
                    l.slot
                );
            }
        }
    }
}

/// state/store-probe.json: the last answer of the conditional-write probe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The store it was asked of (label and endpoint).
    pub store: String,
    /// When.
    pub at: String,
    /// What it did wrong; empty: fit for leases.
    pub problems: Vec<String>,
}

/// The probe record's path.
pub fn probe_path(layout: &Layout) -> PathBuf {
    layout.state.join("store-probe.json")
}

fn store_id(store: &Store) -> String {
    format!("{} at {}", store.label(), store.endpoint())
}

/// Runs the probe and records its answer.
pub fn probe_and_record(fleet: &Fleet, layout: &Layout) -> anyhow::Result<ProbeRecord> {
    let findings = fleet::probe::probe(&fleet.store, &fleet.vm)
        .with_context(|| format!("probing {} for conditional writes", store_id(&fleet.store)))?;
    let record = ProbeRecord {
        store: store_id(&fleet.store),
        at: deploy_root::time::rfc3339(Utc::now()),
        problems: findings
            .into_iter()
            .filter_map(|f| f.problem.map(|p| format!("{}: {p}", f.question)))
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&record)?;
    atomic::write(&probe_path(layout), &bytes)?;
    Ok(record)
}

/// The error rolling mode stops with on a store that ignores conditional
/// writes (exit code STORE_UNFIT).
#[derive(Debug)]
pub struct StoreUnfit(pub String);

impl std::fmt::Display for StoreUnfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreUnfit {}

/// Rolling mode starts only on a store the probe found fit: asked once
/// per store (state/store-probe.json), again after `switcher check`.
fn ensure_fit(fleet: &Fleet, layout: &Layout) -> anyhow::Result<()> {
    let id = store_id(&fleet.store);
    let cached: Option<ProbeRecord> = std::fs::read(probe_path(layout))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|r: &ProbeRecord| r.store == id);
    let record = match cached {
        Some(r) => r,
        None => probe_and_record(fleet, layout)?,
    };
    if record.problems.is_empty() {
        return Ok(());
    }
    Err(anyhow::Error::new(StoreUnfit(format!(
        "rolling mode ([fleet] max_parallel) refuses to start: the store {id} ignores conditional writes, so slot leases would mean nothing ({}); use a store that honours If-None-Match and If-Match (AWS S3, SeaweedFS, Ceph RGW: docs/fleet.md), or remove max_parallel; `switcher check` asks again",
        record.problems.join("; ")
    ))))
}

/// Writes this VM's report from the status page just written. Errors are
/// logged: the page on the VM stands.
pub fn publish_report(
    fleet: &Fleet,
    config: &Config,
    layout: &Layout,
    rollout: Option<String>,
    switching: Option<String>,
) {
    let page_path = layout.state.join(crate::status::JSON_FILE);
    let page: serde_json::Value = std::fs::read(&page_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let report = report_of(fleet, config, &page, Utc::now(), rollout, switching);
    let bytes = match serde_json::to_vec(&report) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("this VM's fleet report: {e}");
            return;
        }
    };
    let key = keys::status(&fleet.config.group, &fleet.vm);
    if let Err(e) = fleet
        .store
        .put_bytes(&key, &bytes, &fleet::Condition::Overwrite)
    {
        tracing::warn!("writing this VM's fleet report {key}: {e}");
    }
}

/// The report, from the page's JSON (schema 2).
pub fn report_of(
    fleet: &Fleet,
    config: &Config,
    page: &serde_json::Value,
    now: DateTime<Utc>,
    rollout: Option<String>,
    switching: Option<String>,
) -> VmReport {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let components = config
        .components
        .keys()
        .map(|name| {
            let c = &page["components"][name];
            let mut status = text(&c["status"]).unwrap_or_else(|| "unknown".into());
            if c["health"].as_str().is_some_and(|h| h != "healthy") {
                status.push_str(", unhealthy");
            }
            (
                name.clone(),
                VmComponent {
                    running: text(&c["running"]["artifact"]),
                    last: text(&c["last"]["artifact"]),
                    status,
                    sync: text(&c["sync"]["state"]).unwrap_or_else(|| "unknown".into()),
                    reason: text(&c["sync"]["reason"]),
                },
            )
        })
        .collect();
    let problems = page["problems"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| text(&p["message"])).collect())
        .unwrap_or_default();
    VmReport {
        schema: fleet::report::SCHEMA,
        vm: fleet.vm.clone(),
        group: fleet.config.group.clone(),
        written_at: deploy_root::time::rfc3339(now),
        period_seconds: config.status.period.as_secs(),
        components,
        rollout,
        switching,
        problems,
        page: slim(page),
    }
}

/// The page's facts a reader of the group needs (what runs, what was
/// collected, sync, the failure that matters, holds, problems), without
/// its history, timeline, queue and failure lists: every VM writes this
/// every pass, so it stays small (BENCHMARKS.md, "fleet").
fn slim(page: &serde_json::Value) -> serde_json::Value {
    const TOP: [&str; 7] = [
        "schema",
        "generated_at",
        "components",
        "collector",
        "switcher",
        "control",
        "problems",
    ];
    let Some(obj) = page.as_object() else {
        return serde_json::Value::Null;
    };
    let mut out: serde_json::Map<String, serde_json::Value> = TOP
        .iter()
        .filter_map(|k| obj.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect();
    if let Some(components) = out.get_mut("components").and_then(|c| c.as_object_mut()) {
        for c in components.values_mut() {
            if let Some(c) = c.as_object_mut() {
                c.remove("failures");
            }
        }
    }
    serde_json::Value::Object(out)
}
