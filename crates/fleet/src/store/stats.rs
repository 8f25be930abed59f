//! How many requests of each kind this process made to the store.
//!
//! The scale bench (BENCHMARKS.md, "fleet") counts an idle pass's traffic
//! from these: each binary logs them at debug level when it ends, and, when
//! the environment variable `CUTOVER_STORE_STATS` names a file, appends one
//! JSON line to it (`{"bin":"collector","LIST":1,"PUT":0,...}`).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Op;

static COUNTS: [AtomicU64; 5] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

fn index(op: Op) -> usize {
    match op {
        Op::List => 0,
        Op::Get => 1,
        Op::Head => 2,
        Op::Put => 3,
        Op::Delete => 4,
    }
}

/// Counts one request.
pub(crate) fn count(op: Op) {
    COUNTS[index(op)].fetch_add(1, Ordering::Relaxed);
}

/// The requests so far, per kind.
pub fn snapshot() -> Vec<(Op, u64)> {
    Op::ALL
        .iter()
        .map(|&op| (op, COUNTS[index(op)].load(Ordering::Relaxed)))
        .collect()
}

/// The total number of requests so far.
pub fn total() -> u64 {
    snapshot().iter().map(|(_, n)| n).sum()
}

/// "1 LIST, 1 PUT" (kinds with none left out; "none" when idle).
pub fn summary() -> String {
    let parts: Vec<String> = snapshot()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| format!("{n} {op}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Logs the counts and, with `CUTOVER_STORE_STATS` set, appends them to
/// that file. Called once when a binary ends; a failure to append is
/// logged, never fatal.
pub fn report(bin: &str) {
    if total() == 0 {
        return;
    }
    tracing::debug!("store requests: {}", summary());
    let Some(path) = std::env::var_os("CUTOVER_STORE_STATS") else {
        return;
    };
    let mut line = serde_json::Map::new();
    line.insert("bin".into(), bin.into());
    for (op, n) in snapshot() {
        line.insert(op.name().into(), n.into());
    }
    let text = format!("{}\n", serde_json::Value::Object(line));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(
            "cannot append store counts to {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}
