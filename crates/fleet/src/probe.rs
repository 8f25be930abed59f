//! Does the store honour conditional writes? Leases mean nothing on one
//! that does not (measured: Garage 2.5 overwrites on `If-None-Match: *`,
//! s3rver ignores both headers), so `switcher check` asks, and rolling mode
//! refuses to start on a store that fails (docs/fleet.md).
//!
//! Three questions, under `probe/<vm>-<random>/`, all cleaned up after:
//! 1. a create twice: the second must be refused;
//! 2. a write with a stale `If-Match`: it must be refused;
//! 3. a race: several threads create one object at once; exactly one may win.

use std::sync::Arc;

use crate::store::{Condition, Store, StoreError};

/// The outcome of one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was asked, in words.
    pub question: &'static str,
    /// None: the store behaved; Some: what it did instead.
    pub problem: Option<String>,
}

/// How many threads race in the third question.
const RACERS: usize = 6;

/// Asks the three questions. Err only when the store cannot be reached or
/// refuses the probe's requests (then nothing is known).
pub fn probe(store: &Arc<Store>, vm: &str) -> Result<Vec<Finding>, StoreError> {
    let base = format!("{}{vm}-{:016x}/", crate::layout::PROBE, rand_u64());
    let result = questions(store, &base);
    // Clean up whatever was written, whatever happened.
    if let Ok(objects) = store.list(&base) {
        for o in objects {
            let _ = store.delete(&o.key);
        }
    }
    result
}

fn questions(store: &Arc<Store>, base: &str) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();

    let key = format!("{base}create");
    store.put_bytes(&key, b"first", &Condition::Create)?;
    let problem = match store.put_bytes(&key, b"second", &Condition::Create) {
        Err(StoreError::AlreadyExists { .. }) => None,
        Ok(_) => Some("a second create with If-None-Match: * overwrote the object".to_string()),
        Err(e) => return Err(e),
    };
    findings.push(Finding {
        question: "a create (If-None-Match: *) of an object that exists is refused",
        problem,
    });

    let key = format!("{base}match");
    let first = store.put_bytes(&key, b"v1", &Condition::Overwrite)?;
    store.put_bytes(&key, b"v2", &Condition::Match(first.etag.clone()))?;
    let problem = match store.put_bytes(&key, b"v3", &Condition::Match(first.etag)) {
        Err(StoreError::Precondition { .. }) => None,
        Ok(_) => Some("a write with a stale If-Match was accepted".to_string()),
        Err(e) => return Err(e),
    };
    findings.push(Finding {
        question: "a write with a stale If-Match is refused",
        problem,
    });

    let key = format!("{base}race");
    let handles: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(store);
            let key = key.clone();
            std::thread::spawn(move || {
                store.put_bytes(&key, format!("racer {i}").as_bytes(), &Condition::Create)
            })
        })
        .collect();
    let mut won = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(_)) => won += 1,
            Ok(Err(StoreError::AlreadyExists { .. })) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(StoreError::Setup("a probe thread panicked".to_string())),
        }
    }
    findings.push(Finding {
        question: "of concurrent creates of one object, exactly one wins",
        problem: (won != 1).then(|| format!("{won} of {RACERS} concurrent creates won")),
    });
    Ok(findings)
}

/// A random number for the probe's folder (no new dependency: the clock's
/// nanoseconds and the pid, hashed).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}
