//! Which component folders a kind carries.
//!
//! `full` and `frontend` are the seed's two pipelines and carry what they
//! always carried; any other kind must say what it carries, because a guess
//! would deliver the wrong folders.

use anyhow::bail;

/// The components for `kind`: `given` when not empty, else the default.
pub fn resolve(kind: &str, given: &[String]) -> anyhow::Result<Vec<String>> {
    let components: Vec<String> = if given.is_empty() {
        match kind {
            "full" => vec!["backend".into(), "frontend".into()],
            "frontend" => vec!["frontend".into()],
            _ => bail!(
                "--kind {kind:?} has no default components: expected --components \
                 (e.g. --components backend) for kinds other than full and frontend"
            ),
        }
    } else {
        given.to_vec()
    };
    let mut seen = Vec::new();
    for c in &components {
        if !is_identifier(c) {
            bail!(
                "--components: {c:?} is not a component name: expected [a-z][a-z0-9-]*, \
                 e.g. backend"
            );
        }
        if seen.contains(c) {
            bail!("--components: {c:?} is given twice: expected each component once");
        }
        seen.push(c.clone());
    }
    Ok(components)
}

/// `[a-z][a-z0-9-]*`: the shape of component names in the VM's config.
fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_kind() {
        assert_eq!(resolve("full", &[]).unwrap(), ["backend", "frontend"]);
        assert_eq!(resolve("frontend", &[]).unwrap(), ["frontend"]);
        let err = resolve("hotfix", &[]).unwrap_err().to_string();
        assert!(err.contains("--components"), "{err}");
        assert_eq!(resolve("hotfix", &["backend".into()]).unwrap(), ["backend"]);
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in ["", "../x", "Backend", "a/b", "-x", ".", "a b"] {
            assert!(resolve("x", &[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(resolve("x", &["a".into(), "a".into()]).is_err());
    }
}
