//! Where the store's keys come from: a file readable only by the cutover
//! user, or the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//! AWS_SESSION_TOKEN, as every S3 tool reads them).
//!
//! The file is TOML:
//!
//! ```toml
//! access_key_id = "..."
//! secret_access_key = "..."
//! # session_token = "..."
//! ```
//!
//! A file that its group or others can read is refused rather than used:
//! the keys can publish builds that every VM of the group deploys.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rusty_s3::Credentials;
use serde::Deserialize;

use super::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

/// The credentials: from `file` when given, else from the environment.
pub fn load(file: Option<&Path>) -> Result<Credentials, StoreError> {
    match file {
        Some(path) => from_file(path),
        None => from_env(),
    }
}

fn from_env() -> Result<Credentials, StoreError> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => Ok(match get("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        }),
        _ => Err(StoreError::Setup(
            "no store credentials: expected [store] credentials_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into(),
        )),
    }
}

fn from_file(path: &Path) -> Result<Credentials, StoreError> {
    let setup =
        |m: String| StoreError::Setup(format!("store credentials file {}: {m}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| setup(format!("cannot be read: {e}")))?;
    if meta.mode() & 0o077 != 0 {
        return Err(setup(format!(
            "expected to be readable only by its owner (chmod 600), found mode {:o}",
            meta.mode() & 0o7777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| setup(format!("cannot be read: {e}")))?;
    // toml's message could quote a line of the file, a secret: say only where.
    let file: File = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        setup(format!(
            "expected TOML with access_key_id and secret_access_key (and optionally session_token), not valid{at}"
        ))
    })?;
    if file.access_key_id.is_empty() || file.secret_access_key.is_empty() {
        return Err(setup(
            "expected access_key_id and secret_access_key not empty".into(),
        ));
    }
    Ok(match file.session_token {
        Some(token) => {
            Credentials::new_with_token(file.access_key_id, file.secret_access_key, token)
        }
        None => Credentials::new(file.access_key_id, file.secret_access_key),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(&path, "access_key_id = \"k\"\nsecret_access_key = \"s\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("readable only by its owner") && e.contains("644"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load(Some(&path)).unwrap();
        assert_eq!(c.key(), "k");
    }

    #[test]
    fn a_bad_file_does_not_quote_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(&path, "secret_access_key = \"hunter2\"\nbogus = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("expected TOML") && !e.contains("hunter2"), "{e}");
    }
}
