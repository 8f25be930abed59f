//! `--to s3://bucket/prefix`: publishing to an S3-compatible store that
//! every VM of a fleet takes its builds from (feature `s3`).
//!
//! Two PUTs, both created with `If-None-Match: *`, so that nothing
//! published is ever overwritten: `drop/<name>`, streamed from the file
//! with its SHA-256 (`x-amz-checksum-sha256`: the store refuses a body
//! that does not match, where it checks), then `drop/<name>.sha256`, the
//! marker text the ssh path writes. A VM takes an artifact only with its
//! marker, so the marker going last is the completion, as in a drop folder.
//!
//! A create that finds the artifact already there is a retried delivery
//! when the object is byte for byte this build (same size, same SHA-256,
//! read back): the marker follows. Anything else under that name is
//! refused: a published artifact is never replaced. A cancel (SIGTERM,
//! SIGINT) ends the process, which drops the connection: the store keeps
//! nothing of a PUT cut short, and no marker is written after it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use deploy_root::fleet_config::{parse_store_url, StoreConfig};
use fleet::{layout, Condition, Store, StoreError};
use sha2::{Digest, Sha256};

use super::cancel;
use super::pack::Packed;
use super::progress::{self, Progress};
use super::{Failure, StoreArgs};
use artifact_name::exit_codes;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The store's settings from the command line (and their environment
/// variables), checked like the `[store]` section of a VM's config.
pub fn config(url: &str, flag: &str, args: &StoreArgs) -> anyhow::Result<StoreConfig> {
    parse_store_url(url).map_err(|e| anyhow!("{flag} {url:?}: {e}"))?;
    if let Some(e) = &args.store_endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.contains(['?', '#']) {
            bail!(
                "--store-endpoint {e:?}: expected an http:// or https:// URL without query, \
                 e.g. http://10.0.0.5:8333"
            );
        }
    }
    let region = &args.store_region;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !region_ok {
        bail!("--store-region {region:?}: expected a region name such as \"us-east-1\"");
    }
    if args.store_timeout.is_zero() {
        bail!("--store-timeout: expected more than 0 s");
    }
    Ok(StoreConfig {
        url: url.to_string(),
        endpoint: args.store_endpoint.clone(),
        region: region.clone(),
        path_style: args.store_path_style,
        credentials_file: args
            .store_credentials_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| PathBuf::from(p))),
        timeout: args.store_timeout,
    })
}

/// Opens the store of `url` (no request yet: a typo or missing keys fail
/// before the packing).
pub fn open(url: &str, flag: &str, args: &StoreArgs) -> anyhow::Result<Store> {
    let config = config(url, flag, args)?;
    if config.credentials_file.is_none() {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !(set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")) {
            bail!(
                "{flag} {url}: no store credentials: expected --store-credentials-file FILE \
                 (or CUTOVER_STORE_CREDENTIALS_FILE), or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY in the environment"
            );
        }
    }
    Store::open(&config).map_err(|e| anyhow!("{flag} {url}: {e}"))
}

/// How uploads behave.
#[derive(Debug)]
pub struct Options {
    /// Attempts after the first (only a store that cannot be reached or
    /// fails on its side is tried again).
    pub retries: u32,
}

/// Why one attempt failed, and whether another may do better.
struct AttemptError {
    error: anyhow::Error,
    transient: bool,
}

impl AttemptError {
    fn store(e: StoreError, what: &str) -> AttemptError {
        AttemptError {
            transient: e.is_transient(),
            error: anyhow::Error::new(e).context(what.to_string()),
        }
    }

    fn final_(error: anyhow::Error) -> AttemptError {
        AttemptError {
            error,
            transient: false,
        }
    }
}

/// Publishes the artifact and its marker, with retries.
pub fn publish(
    store: &Store,
    packed: &Packed,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<()> {
    let attempts = options.retries.saturating_add(1);
    let label = store.label();
    let mut attempt = 1;
    loop {
        progress.line(format_args!(
            "uploading {} ({}) to {label} (attempt {attempt} of {attempts})",
            packed.name,
            progress::size(packed.size)
        ));
        let started = Instant::now();
        let result = attempt_once(store, packed, progress);
        cancel::set_note(None);
        match result {
            Ok(()) => {
                progress.line(format_args!(
                    "delivered {} to {label} in {:.1}s",
                    packed.name,
                    started.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Err(e) if e.transient && attempt < attempts => {
                let pause = backoff(attempt);
                progress.line(format_args!(
                    "upload to {label} failed (attempt {attempt} of {attempts}): {:#}; \
                     trying again in {}s",
                    e.error,
                    pause.as_secs()
                ));
                std::thread::sleep(pause);
                attempt += 1;
            }
            Err(e) => {
                return Err(Failure::new(
                    exit_codes::UPLOAD_FAILED,
                    e.error.context(format!(
                        "upload to {label} failed after {attempt} attempt(s)"
                    )),
                )
                .into())
            }
        }
    }
}

/// 2s, 4s, 8s, ... up to [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempt.min(16))).min(MAX_BACKOFF)
}

/// One attempt: the artifact, then the marker.
fn attempt_once(store: &Store, packed: &Packed, progress: &Progress) -> Result<(), AttemptError> {
    let name = packed.name.file_name();
    let label = store.label();
    let key = layout::artifact(name);
    let digest = digest_bytes(&packed.sha256).map_err(AttemptError::final_)?;
    let file = std::fs::File::open(&packed.path)
        .with_context(|| format!("opening {}", packed.path.display()))
        .map_err(AttemptError::final_)?;
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", packed.path.display()))
        .map_err(AttemptError::final_)?
        .len();
    if len != packed.size {
        return Err(AttemptError::final_(anyhow!(
            "{} changed since it was packed ({} bytes, now {len})",
            packed.path.display(),
            packed.size
        )));
    }
    cancel::set_note(Some(format!(
        "stopped the upload of {key} to {label}: the store keeps nothing of a PUT cut short, \
         and no marker was written, so no VM takes it"
    )));
    match store.put_file(&key, &file, len, Some(&digest), &Condition::Create) {
        Ok(_) => {}
        Err(StoreError::AlreadyExists { .. }) => {
            same_object(store, &key, packed)?;
            progress.line(format_args!(
                "{key} is already in {label}, byte for byte this build (a delivery tried again): \
                 writing its marker"
            ));
        }
        Err(e) => return Err(AttemptError::store(e, &format!("PUT {key}"))),
    }
    // No marker once a cancel is under way: the artifact alone is nothing
    // a VM takes.
    cancel::checkpoint();
    let marker_key = layout::marker(name);
    let marker = std::fs::read(&packed.marker)
        .with_context(|| format!("reading {}", packed.marker.display()))
        .map_err(AttemptError::final_)?;
    match store.put_bytes(&marker_key, &marker, &Condition::Create) {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => {
            let existing = match store.get(&marker_key) {
                Ok(Some((bytes, _))) => bytes,
                // Gone again: the next attempt creates it.
                Ok(None) => {
                    return Err(AttemptError {
                        error: anyhow!("{marker_key} vanished right after a create found it"),
                        transient: true,
                    })
                }
                Err(e) => return Err(AttemptError::store(e, &format!("GET {marker_key}"))),
            };
            let text = String::from_utf8_lossy(&existing);
            match artifact_name::parse_marker(&text, name) {
                Ok(d) if d == packed.sha256 => Ok(()),
                _ => Err(AttemptError::final_(anyhow!(
                    "{marker_key} already exists in {label} and does not state this build's \
                     SHA-256 {}: a published marker is never overwritten",
                    packed.sha256
                ))),
            }
        }
        Err(e) => Err(AttemptError::store(e, &format!("PUT {marker_key}"))),
    }
}

/// Whether the object at `key` is byte for byte the packed file: same
/// size, and the same SHA-256 read back. Err(final) when it is not.
fn same_object(store: &Store, key: &str, packed: &Packed) -> Result<(), AttemptError> {
    let label = store.label();
    let never = |found: String| {
        AttemptError::final_(anyhow!(
            "{key} already exists in {label} with other content ({found}; this build is {} \
             bytes, SHA-256 {}): a published artifact is never overwritten; deliver this build \
             under another name (another --time or --version)",
            packed.size,
            packed.sha256
        ))
    };
    let meta = match store.head(key) {
        Ok(Some(m)) => m,
        // Gone since the create found it: the next attempt creates it.
        Ok(None) => {
            return Err(AttemptError {
                error: anyhow!("{key} vanished right after a create found it"),
                transient: true,
            })
        }
        Err(e) => return Err(AttemptError::store(e, &format!("HEAD {key}"))),
    };
    if meta.size != packed.size {
        return Err(never(format!("{} bytes", meta.size)));
    }
    let mut hasher = HashWriter(Sha256::new());
    store
        .get_to(key, &mut hasher)
        .map_err(|e| AttemptError::store(e, &format!("GET {key} (to compare it)")))?;
    let found = hex(&hasher.0.finalize());
    if found != packed.sha256 {
        return Err(never(format!("SHA-256 {found}")));
    }
    Ok(())
}

/// Feeds what is written into a hasher.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes of a hex SHA-256.
fn digest_bytes(hex: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        bail!("expected a SHA-256 of 64 hex digits, found {hex:?}");
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| anyhow!("expected a SHA-256 of 64 hex digits, found {hex:?}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> StoreArgs {
        StoreArgs {
            store_endpoint: Some("http://127.0.0.1:8333".into()),
            store_region: "us-east-1".into(),
            store_path_style: None,
            store_credentials_file: None,
            store_timeout: Duration::from_secs(30),
            store_url: None,
        }
    }

    #[test]
    fn digests() {
        let d = digest_bytes(&"0a".repeat(32)).unwrap();
        assert_eq!(d, [10u8; 32]);
        assert_eq!(hex(&d), "0a".repeat(32));
        assert!(digest_bytes("zz").is_err());
        assert!(digest_bytes(&"g".repeat(64)).is_err());
    }

    #[test]
    fn settings_are_checked() {
        let c = config("s3://builds/catalog", "--to", &args()).unwrap();
        assert!(c.path_style());
        assert_eq!(c.bucket_and_prefix().unwrap().1, "catalog");
        let e = config("s3://B/x", "--to", &args()).unwrap_err().to_string();
        assert!(e.contains("--to") && e.contains("expected s3://"), "{e}");
        let mut bad = args();
        bad.store_endpoint = Some("ftp://x".into());
        assert!(config("s3://builds/x", "--to", &bad).is_err());
        let mut bad = args();
        bad.store_region = "us east".into();
        assert!(config("s3://builds/x", "--to", &bad).is_err());
        let mut aws = args();
        aws.store_endpoint = None;
        assert!(!config("s3://builds/x", "--to", &aws).unwrap().path_style());
    }
}
