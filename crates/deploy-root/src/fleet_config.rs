//! `[store]` and `[fleet]`: many VMs fed from one S3-compatible store,
//! checked key by key (docs/fleet.md).
//!
//! ```toml
//! [store]
//! url = "s3://cutover-builds/catalog"     # bucket, then a prefix
//! endpoint = "http://10.0.0.5:8333"       # not set: AWS S3 in `region`
//! region = "us-east-1"
//! path_style = true                       # default: true with an endpoint
//! credentials_file = "/etc/cutover/store.credentials"  # else AWS_* env
//! timeout = "30s"
//!
//! [fleet]
//! group = "staging"
//! id = "vm-1"                             # default: the hostname
//! max_parallel = 1                        # or "25%": rolling switch
//! max_failures = 1                        # this many failed VMs halt a rollout
//! lease_ttl = "2m"
//! ```
//!
//! Without `[store]` nothing changes: the drop folder works as before, and
//! both may be used at once. The store client itself lives in the `fleet`
//! crate, behind the binaries' `s3` feature, so that this crate (which every
//! binary links) stays light.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[store]`: where artifacts, leases and status documents live.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3://<bucket>/<prefix>`; the prefix may be empty.
    pub url: String,
    /// The S3 endpoint (`http://` or `https://`); not set: AWS S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`) rather than virtual
    /// hosts (`bucket.endpoint/key`). Default: true when `endpoint` is set
    /// (SeaweedFS, Ceph RGW, MinIO), false for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// A file with `access_key_id` and `secret_access_key` (TOML), readable
    /// only by its owner. Not set: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    /// (and AWS_SESSION_TOKEN) from the environment.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// The time limit of one request's connect and of each read or write.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl StoreConfig {
    /// The bucket and the prefix (without slashes at either end) of `url`.
    pub fn bucket_and_prefix(&self) -> Result<(String, String), String> {
        parse_store_url(&self.url)
    }

    /// Whether requests use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }

    /// The endpoint requests go to.
    pub fn endpoint_or_aws(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        parse_store_url(&self.url).map_err(|e| ("store.url".to_string(), e))?;
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) || e.contains(['?', '#']) {
                return Err((
                    "store.endpoint".into(),
                    format!("expected an http:// or https:// URL without query, found {e:?}"),
                ));
            }
        }
        let region_ok = !self.region.is_empty()
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !region_ok {
            return Err((
                "store.region".into(),
                format!(
                    "expected a region name such as \"us-east-1\", found {:?}",
                    self.region
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(("store.timeout".into(), "expected more than 0 s".into()));
        }
        Ok(())
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix, checked.
pub fn parse_store_url(url: &str) -> Result<(String, String), String> {
    let expected = "expected s3://<bucket>/<prefix> (bucket: 3 to 63 of a-z 0-9 . -; prefix: folders without '.', '..' or empty parts)";
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(format!("{expected}, found {url:?}"));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if !bucket_ok {
        return Err(format!("{expected}, found bucket {bucket:?} in {url:?}"));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        for part in prefix.split('/') {
            let ok = !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(format!("{expected}, found prefix part {part:?} in {url:?}"));
            }
        }
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// `[fleet] max_parallel`: how many VMs of the group may switch at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxParallel {
    /// At most this many.
    Count(u32),
    /// This share of the VMs that reported recently (rounded down, at least 1).
    Percent(u32),
}

impl MaxParallel {
    /// The number of slots for a group where `live` VMs reported recently.
    pub fn slots(self, live: usize) -> u32 {
        match self {
            MaxParallel::Count(n) => n,
            MaxParallel::Percent(p) => {
                let live = u32::try_from(live).unwrap_or(u32::MAX);
                (live.saturating_mul(p) / 100).max(1)
            }
        }
    }
}

impl std::fmt::Display for MaxParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxParallel::Count(n) => write!(f, "{n}"),
            MaxParallel::Percent(p) => write!(f, "{p}%"),
        }
    }
}

fn max_parallel<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<MaxParallel>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Count(i64),
        Text(String),
    }
    let expected = "expected a count of VMs (1, 2, ...) or a percentage (\"25%\")";
    let raw = Raw::deserialize(d).map_err(|_| serde::de::Error::custom(expected))?;
    let value = match raw {
        Raw::Count(n) if (1..=i64::from(u32::MAX)).contains(&n) => {
            MaxParallel::Count(u32::try_from(n).unwrap_or(u32::MAX))
        }
        Raw::Count(n) => return Err(serde::de::Error::custom(format!("{expected}, found {n}"))),
        Raw::Text(t) => match t
            .trim()
            .strip_suffix('%')
            .map(str::trim)
            .map(str::parse::<u32>)
        {
            Some(Ok(p)) if (1..=100).contains(&p) => MaxParallel::Percent(p),
            _ => return Err(serde::de::Error::custom(format!("{expected}, found {t:?}"))),
        },
    };
    Ok(Some(value))
}

/// `[fleet]`: this VM's group and the rolling switch's limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The group's name: VMs of one group share leases, failures and holds.
    #[serde(default = "default_group")]
    pub group: String,
    /// This VM's id in the group; default: the hostname.
    #[serde(default)]
    pub id: Option<String>,
    /// Rolling switch: at most this many VMs switch at once. Not set: every
    /// VM switches when it is ready (no leases).
    #[serde(default, deserialize_with = "max_parallel")]
    pub max_parallel: Option<MaxParallel>,
    /// Once this many VMs failed an artifact, no VM of the group tries it.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// A slot lease not renewed for this long (by the store's clock) is
    /// free to take; the holder renews it every third of it.
    #[serde(
        default = "default_lease_ttl",
        deserialize_with = "crate::config::duration"
    )]
    pub lease_ttl: Duration,
}

fn default_group() -> String {
    "default".into()
}

fn default_max_failures() -> u32 {
    1
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(120)
}

impl FleetConfig {
    /// This VM's id: `id`, else the hostname (checked like `id`).
    pub fn vm_id(&self) -> Result<String, String> {
        let id = match &self.id {
            Some(id) => id.clone(),
            None => nix::unistd::gethostname()
                .map_err(|e| format!("the hostname cannot be read ({e}); set [fleet] id"))?
                .to_string_lossy()
                .into_owned(),
        };
        check_vm_id(&id).map(|()| id)
    }

    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        if !is_name(&self.group) {
            return Err((
                "fleet.group".into(),
                format!(
                    "expected a group name of 1 to 64 of A-Z a-z 0-9 . _ -, found {:?}",
                    self.group
                ),
            ));
        }
        if let Some(id) = &self.id {
            check_vm_id(id).map_err(|e| ("fleet.id".to_string(), e))?;
        }
        if self.max_failures == 0 {
            return Err((
                "fleet.max_failures".into(),
                "expected at least 1 (the number of failed VMs that halts a rollout)".into(),
            ));
        }
        if self.lease_ttl < Duration::from_secs(3) {
            return Err((
                "fleet.lease_ttl".into(),
                format!(
                    "expected at least 3 s (it is renewed every third of it), found {}",
                    humantime::format_duration(self.lease_ttl)
                ),
            ));
        }
        Ok(())
    }
}

fn check_vm_id(id: &str) -> Result<(), String> {
    if is_name(id) && id != "." && id != ".." {
        Ok(())
    } else {
        Err(format!(
            "expected a VM id of 1 to 64 of A-Z a-z 0-9 . _ -, found {id:?}"
        ))
    }
}

/// 1 to 64 of `A-Z a-z 0-9 . _ -`: safe as one part of an object key.
pub fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            parse_store_url("s3://cutover/a/b/").unwrap(),
            ("cutover".into(), "a/b".into())
        );
        assert_eq!(
            parse_store_url("s3://cutover").unwrap(),
            ("cutover".into(), String::new())
        );
        for bad in [
            "http://x/y",
            "s3://Up/x",
            "s3://ab/x",
            "s3://cutover/a/../b",
            "s3://cutover//a",
            "s3://cutover/a b",
        ] {
            let e = parse_store_url(bad).unwrap_err();
            assert!(e.contains("expected s3://"), "{bad}: {e}");
        }
    }

    #[test]
    fn slots() {
        assert_eq!(MaxParallel::Count(3).slots(100), 3);
        assert_eq!(MaxParallel::Percent(10).slots(100), 10);
        assert_eq!(MaxParallel::Percent(10).slots(5), 1);
        assert_eq!(MaxParallel::Percent(50).slots(0), 1);
    }
}
