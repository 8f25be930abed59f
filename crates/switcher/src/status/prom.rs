//! `state/cutover.prom`: the status as Prometheus text (exposition format
//! 0.0.4) for node_exporter's textfile collector. Point
//! `--collector.textfile.directory` at state/, or link the file there.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::escape::prom_label;
use super::model::{StatusDoc, UpDown};

/// The metrics of `doc`. A metric whose value is unknown (no Last yet, no
/// health URL, never ran) is left out rather than given a made-up value.
pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::new();
    let per_component =
        |out: &mut String,
         name: &str,
         kind: &str,
         help: &str,
         value: &dyn Fn(&super::model::ComponentStatus) -> Option<f64>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (component, c) in &doc.components {
                if let Some(v) = value(c) {
                    let _ = writeln!(
                        out,
                        "{name}{{component=\"{}\"}} {}",
                        prom_label(component),
                        number(v)
                    );
                }
            }
        };
    per_component(
        &mut out,
        "cutover_up",
        "gauge",
        "Whether the component listens on its port on 127.0.0.1 (1) or not (0), at the last refresh.",
        &|c| Some(if c.status == UpDown::Up { 1.0 } else { 0.0 }),
    );
    per_component(
        &mut out,
        "cutover_healthy",
        "gauge",
        "Whether the component's health URL answered 2xx (1) or not (0); only for components with a health URL.",
        &|c| {
            c.health_url
                .as_ref()
                .map(|_| if c.health.as_deref() == Some("healthy") { 1.0 } else { 0.0 })
        },
    );
    per_component(
        &mut out,
        "cutover_last_build_timestamp_seconds",
        "gauge",
        "Build time (Unix seconds) of the newest artifact collected for the component (Last).",
        &|c| c.last.as_ref().map(|l| secs(l.info.build_time)),
    );
    per_component(
        &mut out,
        "cutover_running_build_timestamp_seconds",
        "gauge",
        "Build time (Unix seconds) of the artifact the component runs (Running).",
        &|c| c.running.as_ref().map(|r| secs(r.info.build_time)),
    );
    let single = |out: &mut String, name: &str, kind: &str, help: &str, value: Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(v) = value {
            let _ = writeln!(out, "{name} {}", number(v));
        }
    };
    single(
        &mut out,
        "cutover_deploy_failures_total",
        "counter",
        "Deploys that failed since the switcher's state began.",
        Some(doc.switcher.failures_total as f64),
    );
    single(
        &mut out,
        "cutover_last_pass_duration_seconds",
        "gauge",
        "How long the switcher's last pass took.",
        doc.switcher.last_pass_ms.map(|ms| ms as f64 / 1000.0),
    );
    single(
        &mut out,
        "cutover_collector_last_run_timestamp_seconds",
        "gauge",
        "When the collector's last pass ended (Unix seconds).",
        doc.collector.last_run.map(secs),
    );
    single(
        &mut out,
        "cutover_switcher_last_run_timestamp_seconds",
        "gauge",
        "When the switcher's last pass ended (Unix seconds).",
        doc.switcher.last_run.map(secs),
    );
    out
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64
}

/// Whole numbers without a fraction, others as Rust prints them.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
