//! What a store request can end in, typed so that callers can tell a lost
//! race (`AlreadyExists`, `Precondition`) from a missing object and from a
//! store that cannot be reached: the first two are answers, the last is a
//! line on the page and a retry next pass.

use std::fmt;

/// A failed store request. Every variant names the object's key (relative
/// to the store's prefix) or the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create (`If-None-Match: *`) found the object already there.
    #[error("{key} already exists in the store (a create never overwrites)")]
    AlreadyExists {
        /// The object.
        key: String,
    },
    /// A conditional write (`If-Match`) found another version.
    #[error("{key} changed in the store since it was read (If-Match failed)")]
    Precondition {
        /// The object.
        key: String,
    },
    /// The object does not exist.
    #[error("{key} does not exist in the store")]
    NotFound {
        /// The object.
        key: String,
    },
    /// No answer: connection refused, a time limit, DNS, TLS.
    #[error("the store at {endpoint} cannot be reached ({op} {key}): {message}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The request.
        op: Op,
        /// The object, or the listed prefix.
        key: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The store answered with an error status.
    #[error("the store refused {op} {key}: HTTP {status}{}{}", code_part(.code), message_part(.message))]
    Status {
        /// The request.
        op: Op,
        /// The object, or the listed prefix.
        key: String,
        /// The HTTP status.
        status: u16,
        /// S3's error code (`AccessDenied`, `NoSuchBucket`, ...), if any.
        code: Option<String>,
        /// S3's message, if any.
        message: Option<String>,
    },
    /// The store answered something that is not S3.
    #[error("the store's answer to {op} {key} is not understood: {message}")]
    BadAnswer {
        /// The request.
        op: Op,
        /// The object, or the listed prefix.
        key: String,
        /// What was expected and found.
        message: String,
    },
    /// Reading or writing the local side of a transfer failed.
    #[error("{op} {key}: {source}")]
    Local {
        /// The request.
        op: Op,
        /// The object.
        key: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config or the credentials cannot be used.
    #[error("{0}")]
    Setup(String),
}

fn code_part(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
}

fn message_part(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

impl StoreError {
    /// Whether the store could not be reached or failed on its side (5xx):
    /// worth a retry next pass, never a fault of an artifact.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The kind of a request, for messages and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// ListObjectsV2 (one page).
    List,
    /// GetObject.
    Get,
    /// HeadObject.
    Head,
    /// PutObject.
    Put,
    /// DeleteObject.
    Delete,
}

impl Op {
    /// Every kind, in the order counts are shown.
    pub const ALL: [Op; 5] = [Op::List, Op::Get, Op::Head, Op::Put, Op::Delete];

    /// The name in capitals, as in "1 LIST, 1 PUT".
    pub fn name(self) -> &'static str {
        match self {
            Op::List => "LIST",
            Op::Get => "GET",
            Op::Head => "HEAD",
            Op::Put => "PUT",
            Op::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
