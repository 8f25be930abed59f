//! The store client, the leases and the probe against a real S3 server
//! (SeaweedFS `weed mini`, started per test by `cutover_tests::seaweed`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cutover_tests::fake_s3::FakeS3;
use cutover_tests::seaweed::{self, Seaweed};
use deploy_root::fleet_config::StoreConfig;
use fleet::lease::{self, Acquired};
use fleet::store::Store;
use fleet::{Condition, StoreError};
use rusty_s3::Credentials;

fn store_at(endpoint: &str, prefix: &str) -> Store {
    let config: StoreConfig = toml::from_str(&format!(
        "url = \"s3://{}/{prefix}\"\nendpoint = \"{endpoint}\"\ntimeout = \"5s\"\n",
        seaweed::BUCKET
    ))
    .unwrap();
    Store::with_credentials(
        &config,
        Credentials::new(seaweed::ACCESS_KEY, seaweed::SECRET_KEY),
    )
    .unwrap()
}

#[test]
fn creates_never_overwrite_and_if_match_needs_the_current_version() {
    let sw = Seaweed::start();
    let store = store_at(&sw.endpoint(), "t");
    let first = store.put_bytes("k", b"one", &Condition::Create).unwrap();
    assert!(matches!(
        store.put_bytes("k", b"two", &Condition::Create),
        Err(StoreError::AlreadyExists { .. })
    ));
    let second = store
        .put_bytes("k", b"two", &Condition::Match(first.etag.clone()))
        .unwrap();
    assert!(matches!(
        store.put_bytes("k", b"three", &Condition::Match(first.etag)),
        Err(StoreError::Precondition { .. })
    ));
    let (bytes, meta) = store.get("k").unwrap().unwrap();
    assert_eq!(bytes, b"two");
    assert_eq!(meta.etag, second.etag);
    assert!(store.last_date().is_some(), "the store's clock is known");
    let listed = store.list("").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "k", "keys are relative to the prefix");
    store.delete("k").unwrap();
    assert!(store.get("k").unwrap().is_none());
}

#[test]
fn a_file_is_streamed_and_the_store_checks_its_sha256() {
    let sw = Seaweed::start();
    let store = store_at(&sw.endpoint(), "t");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        &data,
    ))
    .into();
    let file = std::fs::File::open(&path).unwrap();
    let mut wrong = digest;
    wrong[0] ^= 1;
    let refused = store.put_file(
        "bad",
        &file,
        data.len() as u64,
        Some(&wrong),
        &Condition::Create,
    );
    assert!(
        matches!(refused, Err(StoreError::Status { status: 400, .. })),
        "{refused:?}"
    );
    assert!(
        store.head("bad").unwrap().is_none(),
        "nothing was published"
    );
    let file = std::fs::File::open(&path).unwrap();
    store
        .put_file(
            "good",
            &file,
            data.len() as u64,
            Some(&digest),
            &Condition::Create,
        )
        .unwrap();
    let mut out = Vec::new();
    let meta = store.get_to("good", &mut out).unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert!(out == data, "byte for byte");
}

#[test]
fn one_slot_goes_to_exactly_one_of_many_racers() {
    let sw = Seaweed::start();
    let endpoint = sw.endpoint();
    let winners: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let endpoint = endpoint.clone();
                s.spawn(move || {
                    let store = store_at(&endpoint, "t");
                    let vm = format!("vm-{i}");
                    matches!(
                        lease::acquire(&store, "g", &vm, "a", 1, Duration::from_secs(60)).unwrap(),
                        Acquired::Got(_)
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
}

#[test]
fn an_expired_lease_is_taken_over_and_its_holder_cannot_undo_that() {
    let sw = Seaweed::start();
    let a = store_at(&sw.endpoint(), "t");
    let b = store_at(&sw.endpoint(), "t");
    let ttl = Duration::from_secs(3);
    let Acquired::Got(mut held) = lease::acquire(&a, "g", "vm-a", "x", 1, ttl).unwrap() else {
        panic!("the first VM gets the free slot");
    };
    // Held and fresh: busy for another VM, free again for its own holder.
    match lease::acquire(&b, "g", "vm-b", "x", 1, ttl).unwrap() {
        Acquired::Busy(busy) => assert_eq!(busy[0].holder, "vm-a"),
        got => panic!("{got:?}"),
    }
    lease::renew(&a, &mut held).unwrap();
    // Not renewed for longer than its TTL (by the store's clock: its
    // Last-Modified is to the second, so wait a second more).
    std::thread::sleep(ttl + Duration::from_millis(1_500));
    let Acquired::Got(taken) = lease::acquire(&b, "g", "vm-b", "x", 1, ttl).unwrap() else {
        panic!("an expired lease is free");
    };
    // The old holder's renewal and release now fail on If-Match: the
    // release leaves the new holder's lease alone.
    assert!(matches!(
        lease::renew(&a, &mut held.clone()),
        Err(StoreError::Precondition { .. })
    ));
    lease::release(&a, &held).unwrap();
    let (bytes, _) = b.get(&taken.key).unwrap().unwrap();
    let body: lease::LeaseBody = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body.holder.as_deref(), Some("vm-b"));
    lease::release(&b, &taken).unwrap();
    let (bytes, _) = b.get(&taken.key).unwrap().unwrap();
    let body: lease::LeaseBody = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body.holder, None, "released");
}

#[test]
fn the_probe_passes_seaweedfs_and_fails_a_store_that_ignores_conditions() {
    let sw = Seaweed::start();
    let good = Arc::new(store_at(&sw.endpoint(), "t"));
    let findings = fleet::probe::probe(&good, "vm-0").unwrap();
    assert_eq!(findings.len(), 3);
    assert!(findings.iter().all(|f| f.problem.is_none()), "{findings:?}");
    assert!(
        good.list("probe/").unwrap().is_empty(),
        "the probe cleans up"
    );

    let fake = FakeS3::start();
    let bad = Arc::new(store_at(&fake.endpoint(), "t"));
    let findings = fleet::probe::probe(&bad, "vm-0").unwrap();
    let problems: Vec<_> = findings.iter().filter_map(|f| f.problem.clone()).collect();
    assert_eq!(problems.len(), 3, "{findings:?}");
}

#[test]
fn an_unreachable_store_is_transient_and_names_the_endpoint() {
    let port = cutover_tests::net::free_port();
    let store = store_at(&format!("http://127.0.0.1:{port}"), "t");
    let e = store.list("drop/").unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}
