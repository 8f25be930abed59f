//! A fake S3 server for ONE case: a store that ignores conditional writes.
//!
//! Some S3-compatible stores accept `If-None-Match: *` and `If-Match` on a
//! PUT and then overwrite anyway. The real server of the tests
//! ([`crate::seaweed`]) refuses such a PUT with 412, so this double is the
//! only way to show what cutover does on a store that does not: every PUT
//! is stored, whatever its conditions (GETs ignore them too). Everything
//! else is plain and small: path-style requests to the bucket `cutover` on
//! 127.0.0.1, the signature ignored (any keys do), objects in memory.
//!
//! It speaks HTTP/1.1 on a std `TcpListener`, one thread per connection,
//! one request per connection (`Connection: close`). It answers PUT (200,
//! `ETag` = quoted hex MD5 of the body, as S3 and weed give), GET and HEAD
//! (200 with `ETag`, `Last-Modified`, `Content-Length`; 404 `NoSuchKey`),
//! DELETE (204, present or not), ListObjectsV2 (`GET /cutover?list-type=2`,
//! with `prefix`, `delimiter`, `start-after`, `encoding-type=url`; never
//! truncated), HEAD and PUT of the bucket (200). Bodies come with a
//! `Content-Length` or `Transfer-Encoding: chunked`, and may be
//! `aws-chunked` inside (the SDKs' streaming signature); a PUT with
//! neither length nor chunks gets 411. `Expect: 100-continue` is answered.
//! Multipart uploads and copies get 501 `NotImplemented`, other buckets 404
//! `NoSuchBucket`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::seaweed::{credentials_env, store_snippet, BUCKET};

/// The keys [`FakeS3::env`] gives clients (the server checks none).
pub const ACCESS_KEY: &str = "FAKES3TESTACCESSKEY0";
/// The secret key that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "fake-s3-secret-key-ignored-0123456789abc";

/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 64 * 1024;

/// One stored object.
#[derive(Debug, Clone)]
struct Object {
    body: Vec<u8>,
    etag: String,
    modified: DateTime<Utc>,
}

/// A request the server answered, as the tests may want to check it (that
/// the client sent its condition, which was then ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PUT`...
    pub method: String,
    /// The path, percent-decoded (`/cutover/<key>`).
    pub path: String,
    /// The query string, as sent.
    pub query: String,
    /// The `If-None-Match` header, if any.
    pub if_none_match: Option<String>,
    /// The `If-Match` header, if any.
    pub if_match: Option<String>,
    /// The status code answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Store {
    objects: BTreeMap<String, Object>,
    requests: Vec<Request>,
}

/// A running fake S3 server; stopped when dropped.
#[derive(Debug)]
pub struct FakeS3 {
    port: u16,
    store: Arc<Mutex<Store>>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeS3 {
    /// Starts a server on a free port of 127.0.0.1, with an empty bucket
    /// `cutover`.
    pub fn start() -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let store = Arc::new(Mutex::new(Store::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let store = Arc::clone(&store);
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new()
                .name(format!("fake-s3-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let store = Arc::clone(&store);
                        // Detached: a connection ends with its one request
                        // (or its read timeout).
                        let _ = std::thread::Builder::new()
                            .name(format!("fake-s3-{port}-conn"))
                            .spawn(move || serve(stream, &store));
                    }
                })
                .expect("spawn the fake S3 thread")
        };
        FakeS3 {
            port,
            store,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `cutover`, the one bucket.
    pub fn bucket(&self) -> &'static str {
        BUCKET
    }

    /// The object's URL, path-style: `<endpoint>/cutover/<key>`.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.endpoint())
    }

    /// A `[store]` section for a deploy root's config that keeps its
    /// objects under `prefix` here (the same shape as
    /// [`crate::seaweed::Seaweed::config_snippet`]).
    pub fn config_snippet(&self, prefix: &str) -> String {
        store_snippet(&self.endpoint(), prefix)
    }

    /// Credentials for a client process (any would do: nothing is checked).
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        credentials_env(ACCESS_KEY, SECRET_KEY)
    }

    /// The stored object's body.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().objects.get(key).map(|o| o.body.clone())
    }

    /// Every stored key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// HEAD: the headers say the object's length, no body follows.
    head_only: bool,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            head_only: false,
        }
    }

    fn xml(status: u16, body: String) -> Response {
        let mut r = Response::new(status);
        r.headers.push(("Content-Type", "application/xml".into()));
        r.body = body.into_bytes();
        r
    }

    fn error(status: u16, code: &str, message: &str, resource: &str) -> Response {
        Response::xml(
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>{}</Message><Resource>{}</Resource><RequestId>fake-s3</RequestId></Error>",
                xml_escape(message),
                xml_escape(resource)
            ),
        )
    }
}

fn serve(stream: TcpStream, store: &Mutex<Store>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let (path, query) = match head.target.split_once('?') {
        Some((p, q)) => (percent_decode(p), q.to_string()),
        None => (percent_decode(&head.target), String::new()),
    };
    let response = match read_body(&mut reader, &head) {
        Ok(body) => {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            route(&head, &path, &query, body, &mut store.objects)
        }
        Err(response) => response,
    };
    store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push(Request {
            method: head.method.clone(),
            path,
            query,
            if_none_match: head.header("if-none-match").map(str::to_string),
            if_match: head.header("if-match").map(str::to_string),
            status: response.status,
        });
    let _ = write_response(reader.get_mut(), &response);
}

/// The request line and headers (names lower-cased); None on a broken or
/// oversized head.
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).ok()?;
        size += n;
        if n == 0 || size > MAX_HEAD {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut first = lines.first()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Head {
        method,
        target,
        headers,
    })
}

/// The request's body: by Content-Length or chunked, then aws-chunked
/// decoded when the client streamed it signed.
fn read_body(reader: &mut BufReader<TcpStream>, head: &Head) -> Result<Vec<u8>, Response> {
    let bad = |what: &str| Response::error(400, "IncompleteBody", what, &head.target);
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = match head.header("content-length") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| bad("Content-Length is not a number"))?,
        ),
        None => None,
    };
    if !chunked && length.is_none() {
        if head.method == "PUT" || head.method == "POST" {
            return Err(Response::error(
                411,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
                &head.target,
            ));
        }
        return Ok(Vec::new());
    }
    if head
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let body = if chunked {
        read_chunked(reader).ok_or_else(|| bad("a broken chunked body"))?
    } else {
        let mut body = Vec::new();
        let length = length.unwrap_or(0);
        reader
            .take(length)
            .read_to_end(&mut body)
            .map_err(|e| bad(&format!("reading the body: {e}")))?;
        if body.len() as u64 != length {
            return Err(bad("the body is shorter than its Content-Length"));
        }
        body
    };
    let aws_chunked = head
        .header("content-encoding")
        .is_some_and(|e| e.contains("aws-chunked"))
        || head
            .header("x-amz-content-sha256")
            .is_some_and(|s| s.starts_with("STREAMING-"));
    if aws_chunked {
        return read_chunked(&mut &body[..]).ok_or_else(|| bad("a broken aws-chunked body"));
    }
    Ok(body)
}

/// Chunks: `<hex size>[;extensions]\r\n<data>\r\n`... up to a chunk of size
/// 0, then trailers up to an empty line (HTTP chunked and aws-chunked
/// alike; the chunk signatures are extensions, ignored).
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let size = line.trim().split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            break;
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
        if &crlf != b"\r\n" {
            return None;
        }
    }
    // Trailers (aws-chunked puts its checksum there), up to an empty line
    // or the end.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
            return Some(body);
        }
    }
}

fn route(
    head: &Head,
    path: &str,
    query: &str,
    body: Vec<u8>,
    objects: &mut BTreeMap<String, Object>,
) -> Response {
    let params = parse_query(query);
    let param = |name: &str| param(&params, name);
    let rest = path.trim_start_matches('/');
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket != BUCKET {
        return Response::error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            path,
        );
    }
    if param("uploads").is_some() || param("uploadId").is_some() {
        return Response::error(501, "NotImplemented", "fake S3: no multipart uploads", path);
    }
    if key.is_empty() {
        return match head.method.as_str() {
            "GET" => list(objects, &params),
            "HEAD" | "PUT" => Response::new(200),
            _ => Response::error(405, "MethodNotAllowed", "not on a bucket here", path),
        };
    }
    match head.method.as_str() {
        "PUT" => {
            if head.header("x-amz-copy-source").is_some() {
                return Response::error(501, "NotImplemented", "fake S3: no copies", path);
            }
            // If-None-Match and If-Match are ignored: the point of this double.
            let etag = format!("\"{}\"", hex(&md5(&body)));
            let object = Object {
                body,
                etag: etag.clone(),
                modified: Utc::now(),
            };
            objects.insert(key.to_string(), object);
            let mut r = Response::new(200);
            r.headers.push(("ETag", etag));
            r
        }
        "GET" | "HEAD" => match objects.get(key) {
            Some(o) => {
                let mut r = Response::new(200);
                r.headers.push(("ETag", o.etag.clone()));
                r.headers.push((
                    "Last-Modified",
                    o.modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                ));
                r.headers
                    .push(("Content-Type", "application/octet-stream".into()));
                r.body = o.body.clone();
                r.head_only = head.method == "HEAD";
                r
            }
            None => {
                let mut r =
                    Response::error(404, "NoSuchKey", "The specified key does not exist.", path);
                r.head_only = head.method == "HEAD";
                if r.head_only {
                    r.body.clear();
                }
                r
            }
        },
        "DELETE" => {
            objects.remove(key);
            Response::new(204)
        }
        _ => Response::error(405, "MethodNotAllowed", "not on an object here", path),
    }
}

/// ListObjectsV2, all in one page.
fn list(objects: &BTreeMap<String, Object>, params: &[(String, String)]) -> Response {
    let param = |name: &str| param(params, name);
    let prefix = param("prefix").unwrap_or("");
    let delimiter = param("delimiter").filter(|d| !d.is_empty());
    let start_after = param("start-after").unwrap_or("");
    let url = param("encoding-type") == Some("url");
    let show = |s: &str| {
        if url {
            percent_encode(s)
        } else {
            xml_escape(s)
        }
    };
    let mut contents = String::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut count = 0;
    for (key, o) in objects.range(prefix.to_string()..) {
        if !key.starts_with(prefix) {
            break;
        }
        if key.as_str() <= start_after {
            continue;
        }
        if let Some(d) = delimiter {
            if let Some(i) = key[prefix.len()..].find(d) {
                let common = &key[..prefix.len() + i + d.len()];
                if prefixes.last().map(String::as_str) != Some(common) {
                    prefixes.push(common.to_string());
                    count += 1;
                }
                continue;
            }
        }
        count += 1;
        contents.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag>\
             <Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            show(key),
            o.modified.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            xml_escape(&o.etag),
            o.body.len()
        ));
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>{BUCKET}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount>\
         <MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>",
        show(prefix)
    );
    if let Some(d) = delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", show(d)));
    }
    if url {
        xml.push_str("<EncodingType>url</EncodingType>");
    }
    if !start_after.is_empty() {
        xml.push_str(&format!("<StartAfter>{}</StartAfter>", show(start_after)));
    }
    xml.push_str(&contents);
    for p in prefixes {
        xml.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            show(&p)
        ));
    }
    xml.push_str("</ListBucketResult>");
    Response::xml(200, xml)
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        501 => "Not Implemented",
        _ => "",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    out.push_str(&format!(
        "Date: {}\r\nServer: cutover-fake-s3\r\nConnection: close\r\n",
        Utc::now().format("%a, %d %b %Y %H:%M:%S GMT")
    ));
    if r.status != 204 {
        out.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    for (n, v) in &r.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if !r.head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}

/// `a=1&b=x%2Fy&flag` into decoded (name, value) pairs.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect()
}

/// The value of the query parameter `name`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| {
            bytes
                .get(j..j + 2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match (bytes[i], hex_at(i + 1)) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// S3's `encoding-type=url`: everything but unreserved characters and `/`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (RFC 1321), for ETags like S3's; the workspace has no MD5 crate and
/// this double needs no other.
fn md5(data: &[u8]) -> [u8; 16] {
    const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    // K[i] = floor(|sin(i + 1)| * 2^32), exact in f64 for these 64.
    let k: Vec<u32> = (0..64)
        .map(|i| (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in message.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(SHIFTS[(i / 16) * 4 + i % 4]));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut digest = [0u8; 16];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn chunked_bodies_decode() {
        let aws = b"5;chunk-signature=ab\r\nhello\r\n0;chunk-signature=cd\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(read_chunked(&mut &aws[..]).unwrap(), b"hello");
        assert_eq!(
            read_chunked(&mut &b"3\r\nabc\r\n0\r\n\r\n"[..]).unwrap(),
            b"abc"
        );
        assert!(read_chunked(&mut &b"3\r\nab"[..]).is_none());
    }
}
