//! The version in the name: given, or read from where projects keep it.
//!
//! Looked up in order: `--version`; `[package] version` (or
//! `[workspace.package] version`) of Cargo.toml; `"version"` of
//! package.json (each in the build folder, then the current folder); else
//! `git describe --tags --always`, whose leading `v` is dropped (`v1.4.2-3-gabc`
//! becomes `1.4.2-3-gabc`). Whatever is found must fit the contract: it is
//! never rewritten into something else silently.

use std::path::Path;

use anyhow::{bail, Context};

use super::git;

/// A version and where it came from (for messages).
#[derive(Debug)]
pub struct Found {
    /// The version, valid by the contract.
    pub version: String,
    /// Where it was found, e.g. "Cargo.toml".
    pub source: String,
}

/// Checks a version against the contract, [0-9A-Za-z.+-]+.
pub fn check(version: &str, source: &str) -> anyhow::Result<Found> {
    let ok = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    if !ok {
        bail!(
            "the version {version:?} from {source} is not valid: expected one or more of \
             [0-9A-Za-z.+-], e.g. 1.5.0-rc.1 (give --version to override)"
        );
    }
    Ok(Found {
        version: version.to_string(),
        source: source.to_string(),
    })
}

/// Finds the version for a build in `from`, run from `cwd`.
pub fn detect(from: &Path, cwd: &Path) -> anyhow::Result<Found> {
    for dir in [from, cwd] {
        let cargo = dir.join("Cargo.toml");
        if let Some(v) = from_cargo_toml(&cargo)? {
            return check(&v, &cargo.display().to_string());
        }
        let npm = dir.join("package.json");
        if let Some(v) = from_package_json(&npm)? {
            return check(&v, &npm.display().to_string());
        }
    }
    match git::ask(&["describe", "--tags", "--always"], &[from, cwd]) {
        Ok(described) => check(strip_v(&described), "git describe --tags --always"),
        Err(why) => bail!(
            "no version found: expected --version, a [package] version in Cargo.toml, \
             a \"version\" in package.json, or a git repository ({why})"
        ),
    }
}

/// `v1.4.2` → `1.4.2`; a `v` not followed by a digit is part of the name.
pub fn strip_v(described: &str) -> &str {
    match described.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => described,
    }
}

/// The package's version from a Cargo.toml, if the file exists and says it
/// (a workspace without a root package has none of its own).
fn from_cargo_toml(path: &Path) -> anyhow::Result<Option<String>> {
    let Some(text) = read_if_exists(path)? else {
        return Ok(None);
    };
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let get = |table: &str, sub: Option<&str>| -> Option<String> {
        let mut t = doc.get(table)?.as_table()?;
        if let Some(sub) = sub {
            t = t.get(sub)?.as_table()?;
        }
        t.get("version")?.as_str().map(str::to_string)
    };
    // `version.workspace = true` is a table, not a string: fall through to
    // the workspace's version.
    Ok(get("package", None).or_else(|| get("workspace", Some("package"))))
}

/// `"version"` from a package.json, if the file exists and has one.
fn from_package_json(path: &Path) -> anyhow::Result<Option<String>> {
    let Some(text) = read_if_exists(path)? else {
        return Ok(None);
    };
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match doc.get("version") {
        None => Ok(None),
        Some(serde_json::Value::String(v)) => Ok(Some(v.clone())),
        Some(other) => bail!(
            "{}: \"version\" is {other}: expected a string",
            path.display()
        ),
    }
}

fn read_if_exists(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_a_leading_v_before_a_digit_only() {
        assert_eq!(strip_v("v1.4.2-3-gabc"), "1.4.2-3-gabc");
        assert_eq!(strip_v("V2"), "2");
        assert_eq!(strip_v("vnext"), "vnext");
        assert_eq!(strip_v("abc1234"), "abc1234");
    }

    #[test]
    fn rejects_versions_outside_the_contract() {
        for bad in ["", "1.0_rc", "release/1", "1 0", "1.0\n"] {
            let err = check(bad, "x").unwrap_err().to_string();
            assert!(err.contains("from x"), "{err}");
        }
    }

    #[test]
    fn reads_cargo_and_npm_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"x\"\nversion.workspace = true\n[workspace.package]\nversion = \"2.0.1\"\n",
        )
        .unwrap();
        let found = detect(dir.path(), empty.path()).unwrap();
        assert_eq!(found.version, "2.0.1");
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"version": "3.1.0-beta.2"}"#,
        )
        .unwrap();
        assert_eq!(
            detect(empty.path(), dir.path()).unwrap().version,
            "3.1.0-beta.2"
        );
        std::fs::write(dir.path().join("package.json"), r#"{"version": 3}"#).unwrap();
        assert!(detect(dir.path(), empty.path()).is_err());
    }
}
