//! A small synchronous S3 client: exactly the requests cutover makes.
//!
//! Requests are signed by `rusty-s3` (presigned URLs, SigV4, no I/O of its
//! own) and sent by `ureq` (blocking, streaming bodies both ways, response
//! headers at hand). docs/fleet.md, "Client", says why this pair rather
//! than `object_store`: no async runtime in a cron binary, creates that also
//! hold for files streamed from disk, and the store's `Date` header, which
//! the lease protocol needs as its clock.
//!
//! Every key given to or returned by [`Store`] is relative to the store's
//! prefix (`[store] url = "s3://bucket/<prefix>"`). Conditional writes are
//! typed: a create that finds the object is [`StoreError::AlreadyExists`],
//! an `If-Match` on another version is [`StoreError::Precondition`].

mod credentials;
mod error;
pub mod stats;

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use deploy_root::fleet_config::StoreConfig;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use ureq::http::Response;
use ureq::Body;

pub use error::{Op, StoreError};

/// How long a presigned URL is valid: the request is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);
/// The most a small object (marker, lease, status document) may weigh.
const SMALL_LIMIT: u64 = 16 << 20;
/// S3's limit for one PUT.
pub const MAX_SINGLE_PUT: u64 = 5 << 30;

/// One object as listed or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, quotes included (as If-Match wants it back).
    pub etag: String,
    /// When the store last wrote it, by the store's clock.
    pub last_modified: DateTime<Utc>,
}

/// The condition of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    Overwrite,
    /// `If-None-Match: *`: only if nothing is there.
    Create,
    /// `If-Match: <etag>`: only over this version.
    Match(String),
}

/// What a write returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The new version's ETag.
    pub etag: String,
    /// The store's clock when it answered (its `Date` header), if given.
    pub date: Option<DateTime<Utc>>,
}

/// A store: a bucket, a prefix, credentials and an HTTP agent.
#[derive(Debug)]
pub struct Store {
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
    prefix: String,
    label: String,
    endpoint: String,
    timeout: Duration,
    /// The `Date` of the last answer: the store's clock, for free.
    last_date: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl Store {
    /// Opens the store of a `[store]` config (no request is made).
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let credentials = credentials::load(config.credentials_file.as_deref())?;
        Store::with_credentials(config, credentials)
    }

    /// Opens the store with the given credentials.
    pub fn with_credentials(
        config: &StoreConfig,
        credentials: Credentials,
    ) -> Result<Store, StoreError> {
        let (bucket_name, prefix) = config
            .bucket_and_prefix()
            .map_err(|e| StoreError::Setup(format!("[store] url: {e}")))?;
        let endpoint = config.endpoint_or_aws();
        let url = endpoint
            .parse()
            .map_err(|e| StoreError::Setup(format!("[store] endpoint {endpoint:?}: {e}")))?;
        let style = if config.path_style() {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket =
            Bucket::new(url, style, bucket_name.clone(), config.region.clone()).map_err(|e| {
                StoreError::Setup(format!(
                    "[store] endpoint {endpoint:?} with bucket {bucket_name:?}: {e}"
                ))
            })?;
        let timeout = config.timeout;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Store {
            label: if prefix.is_empty() {
                format!("s3://{bucket_name}")
            } else {
                format!("s3://{bucket_name}/{prefix}")
            },
            bucket,
            credentials,
            agent,
            prefix,
            endpoint,
            timeout,
            last_date: std::sync::Mutex::new(None),
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(&self.prefix)?.strip_prefix('/')
        }
    }

    fn unreachable(&self, op: Op, key: &str, e: ureq::Error) -> StoreError {
        StoreError::Unreachable {
            endpoint: self.endpoint.clone(),
            op,
            key: key.to_string(),
            message: e.to_string(),
        }
    }

    /// Every object under `sub` (relative to the prefix; "" for all),
    /// following continuation pages.
    pub fn list(&self, sub: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full = self.full_key(sub);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(full.as_str());
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            stats::count(Op::List);
            let response = self
                .agent
                .get(url.as_str())
                .call()
                .map_err(|e| self.unreachable(Op::List, sub, e))?;
            let mut response = self.check(response, Op::List, sub)?;
            let text = response
                .body_mut()
                .with_config()
                .limit(SMALL_LIMIT)
                .read_to_string()
                .map_err(|e| self.unreachable(Op::List, sub, e))?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| StoreError::BadAnswer {
                op: Op::List,
                key: sub.to_string(),
                message: format!("expected a ListBucketResult: {e}"),
            })?;
            for item in page.contents {
                let Some(key) = self.relative(&item.key) else {
                    continue;
                };
                let last_modified = item
                    .last_modified
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| StoreError::BadAnswer {
                        op: Op::List,
                        key: item.key.clone(),
                        message: format!(
                            "expected LastModified as RFC 3339, found {:?}",
                            item.last_modified
                        ),
                    })?;
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: item.size.unwrap_or(0),
                    etag: item.etag.unwrap_or_default(),
                    last_modified,
                });
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// A small object whole (at most 16 MiB), or None when there is none.
    pub fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectMeta)>, StoreError> {
        let response = match self.get_response(key) {
            Err(StoreError::NotFound { .. }) => return Ok(None),
            r => r?,
        };
        let meta = self.meta_of(&response, Op::Get, key)?;
        let mut response = response;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(SMALL_LIMIT)
            .read_to_vec()
            .map_err(|e| self.unreachable(Op::Get, key, e))?;
        Ok(Some((bytes, meta)))
    }

    /// Streams an object into `out`; its metadata when it ends.
    pub fn get_to(&self, key: &str, out: &mut dyn Write) -> Result<ObjectMeta, StoreError> {
        let response = self.get_response(key)?;
        let meta = self.meta_of(&response, Op::Get, key)?;
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::Unreachable {
                        endpoint: self.endpoint.clone(),
                        op: Op::Get,
                        key: key.to_string(),
                        message: format!("the transfer broke after {got} bytes: {e}"),
                    })
                }
            };
            out.write_all(&buf[..n])
                .map_err(|source| StoreError::Local {
                    op: Op::Get,
                    key: key.to_string(),
                    source,
                })?;
            got += n as u64;
        }
        if got != meta.size {
            return Err(StoreError::Unreachable {
                endpoint: self.endpoint.clone(),
                op: Op::Get,
                key: key.to_string(),
                message: format!(
                    "expected {} bytes, the transfer ended after {got}",
                    meta.size
                ),
            });
        }
        Ok(meta)
    }

    fn get_response(&self, key: &str) -> Result<Response<Body>, StoreError> {
        let full = self.full_key(key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &full)
            .sign(SIGNED_FOR);
        stats::count(Op::Get);
        let response = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| self.unreachable(Op::Get, key, e))?;
        self.check(response, Op::Get, key)
    }

    /// An object's metadata, or None when there is none.
    pub fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let full = self.full_key(key);
        let url = self
            .bucket
            .head_object(Some(&self.credentials), &full)
            .sign(SIGNED_FOR);
        stats::count(Op::Head);
        let response = self
            .agent
            .head(url.as_str())
            .call()
            .map_err(|e| self.unreachable(Op::Head, key, e))?;
        match self.check(response, Op::Head, key) {
            Ok(r) => self.meta_of(&r, Op::Head, key).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a small object from memory.
    pub fn put_bytes(
        &self,
        key: &str,
        body: &[u8],
        condition: &Condition,
    ) -> Result<Written, StoreError> {
        self.put(key, condition, None, |request| request.send(body))
    }

    /// Streams a file (from its start, `len` bytes) into an object. With
    /// `sha256`, the store checks the body against it (x-amz-checksum-sha256)
    /// and refuses a body that does not match.
    pub fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        len: u64,
        sha256: Option<&[u8; 32]>,
        condition: &Condition,
    ) -> Result<Written, StoreError> {
        if len > MAX_SINGLE_PUT {
            return Err(StoreError::Setup(format!(
                "{key}: {len} bytes is more than one S3 PUT takes (5 GiB)"
            )));
        }
        let checksum = sha256.map(|d| base64::engine::general_purpose::STANDARD.encode(d));
        // From its start, whatever was read of it before (a retry, a
        // second PUT of one handle).
        let mut start = file;
        std::io::Seek::seek(&mut start, std::io::SeekFrom::Start(0)).map_err(|source| {
            StoreError::Local {
                op: Op::Put,
                key: key.to_string(),
                source,
            }
        })?;
        let mut reader = Exactly {
            inner: file.take(len),
            left: len,
        };
        self.put(key, condition, checksum.as_deref(), move |request| {
            request
                .header("Content-Length", len.to_string())
                .send(ureq::SendBody::from_reader(&mut reader))
        })
    }

    fn put(
        &self,
        key: &str,
        condition: &Condition,
        checksum: Option<&str>,
        send: impl FnOnce(
            ureq::RequestBuilder<ureq::typestate::WithBody>,
        ) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Written, StoreError> {
        let full = self.full_key(key);
        let mut action = self.bucket.put_object(Some(&self.credentials), &full);
        // Signed, so that nothing on the way can drop the condition.
        match condition {
            Condition::Overwrite => {}
            Condition::Create => {
                action.headers_mut().insert("if-none-match", "*");
            }
            Condition::Match(etag) => {
                action.headers_mut().insert("if-match", etag.clone());
            }
        }
        if let Some(c) = checksum {
            action
                .headers_mut()
                .insert("x-amz-checksum-sha256", c.to_string());
        }
        let url = action.sign(SIGNED_FOR);
        let mut request = self.agent.put(url.as_str());
        match condition {
            Condition::Overwrite => {}
            Condition::Create => request = request.header("If-None-Match", "*"),
            Condition::Match(etag) => request = request.header("If-Match", etag.as_str()),
        }
        if let Some(c) = checksum {
            request = request.header("x-amz-checksum-sha256", c);
        }
        stats::count(Op::Put);
        let response = send(request).map_err(|e| self.unreachable(Op::Put, key, e))?;
        let status = response.status().as_u16();
        // A create that lost: S3 answers 412; some stores 304 or 409.
        if *condition == Condition::Create && matches!(status, 304 | 409 | 412) {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        if matches!(condition, Condition::Match(_)) && matches!(status, 404 | 409 | 412) {
            // 409: a concurrent If-Match in flight on real S3; 404: gone.
            return Err(StoreError::Precondition {
                key: key.to_string(),
            });
        }
        let response = self.check(response, Op::Put, key)?;
        let etag = header(&response, "etag").unwrap_or_default();
        Ok(Written {
            etag,
            date: date_of(&response),
        })
    }

    /// Removes an object (no error when it is already gone).
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let full = self.full_key(key);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &full)
            .sign(SIGNED_FOR);
        stats::count(Op::Delete);
        let response = self
            .agent
            .delete(url.as_str())
            .call()
            .map_err(|e| self.unreachable(Op::Delete, key, e))?;
        match self.check(response, Op::Delete, key) {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The time limit of one request's connect and of each read or write.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The store's clock: the `Date` of the last answer, or of a HEAD of
    /// `key` made now (any answer, 404 included, carries one).
    pub fn now(&self, key: &str) -> Result<DateTime<Utc>, StoreError> {
        if let Some(d) = self.last_date() {
            return Ok(d);
        }
        self.head(key)?;
        self.last_date().ok_or_else(|| StoreError::BadAnswer {
            op: Op::Head,
            key: key.to_string(),
            message: "expected a Date header (the store's clock)".into(),
        })
    }

    /// The `Date` of the last answer, if any.
    pub fn last_date(&self) -> Option<DateTime<Utc>> {
        *self.last_date.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the last `Date`, so that [`Store::now`] asks again.
    pub fn forget_date(&self) {
        *self.last_date.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn check(
        &self,
        mut response: Response<Body>,
        op: Op,
        key: &str,
    ) -> Result<Response<Body>, StoreError> {
        if let Some(d) = date_of(&response) {
            *self.last_date.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
        }
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let code = xml_field(&text, "Code");
        if status == 404 && code.as_deref() != Some("NoSuchBucket") {
            return Err(StoreError::NotFound {
                key: key.to_string(),
            });
        }
        Err(StoreError::Status {
            op,
            key: key.to_string(),
            status,
            code,
            message: xml_field(&text, "Message"),
        })
    }

    fn meta_of(
        &self,
        response: &Response<Body>,
        op: Op,
        key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let bad = |m: String| StoreError::BadAnswer {
            op,
            key: key.to_string(),
            message: m,
        };
        let size = header(response, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("expected a Content-Length header".into()))?;
        let last_modified = header(response, "last-modified")
            .and_then(|v| DateTime::parse_from_rfc2822(&v).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| bad("expected a Last-Modified header (HTTP date)".into()))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            etag: header(response, "etag").unwrap_or_default(),
            last_modified,
        })
    }
}

/// A body of exactly `left` bytes: a file that ends early (it shrank) is
/// an error, not a short read that the HTTP client would wait on forever
/// for the rest of its Content-Length.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file ended {} bytes early (it shrank?)", self.left),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `Date` header: the store's clock.
fn date_of(response: &Response<Body>) -> Option<DateTime<Utc>> {
    header(response, "date")
        .and_then(|v| DateTime::parse_from_rfc2822(&v).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The text of the first `<name>...</name>` in an S3 error body.
fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    let value = text[start..end].trim();
    (!value.is_empty()).then(|| value.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_ends_early_is_an_error() {
        let mut short = Exactly {
            inner: &b"abc"[..],
            left: 5,
        };
        let mut got = Vec::new();
        let e = short.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(got, b"abc");
        let mut whole = Exactly {
            inner: &b"abc"[..],
            left: 3,
        };
        let mut got = Vec::new();
        whole.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn error_fields() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            xml_field(body, "Message").as_deref(),
            Some("Access Denied.")
        );
        assert_eq!(xml_field(body, "Key"), None);
    }
}
