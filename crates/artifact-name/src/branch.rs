//! Branch names: git's rules, and the exact `/` ⇄ `~` mapping that lets a
//! branch live inside a file name.
//!
//! git forbids `~` in ref names, so writing every `/` as `~` is a bijection
//! between valid branch names and their encoded form. Everything else a
//! branch may hold (`_`, `<`, `>`, `&`, quotes, non-ASCII) is kept as it is,
//! which is why a branch is untrusted text wherever it is shown.

/// Why a branch name is not one that git accepts, or `None` when it is.
///
/// These are the rules of `git check-ref-format --branch`, plus git's refusal
/// of branch names that start with `-` or are `HEAD`.
pub fn validate_branch(branch: &str) -> Option<&'static str> {
    if branch.is_empty() {
        return Some("a non-empty git branch name");
    }
    if branch == "@" || branch == "HEAD" {
        return Some("a git branch name other than \"@\" or \"HEAD\"");
    }
    if branch.starts_with('-') {
        return Some("a git branch name that does not start with '-'");
    }
    if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        return Some("a git branch name with no empty path component ('/' at either end or '//')");
    }
    if branch.ends_with('.') {
        return Some("a git branch name that does not end with '.'");
    }
    if branch.contains("..") {
        return Some("a git branch name without '..'");
    }
    if branch.contains("@{") {
        return Some("a git branch name without '@{'");
    }
    if let Some(_bad) = branch.chars().find(|&c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Some(
            "a git branch name without control characters, space, '~', '^', ':', '?', '*', '[' or '\\'",
        );
    }
    for component in branch.split('/') {
        if component.starts_with('.') {
            return Some("a git branch name with no path component starting with '.'");
        }
        if component.ends_with(".lock") {
            return Some("a git branch name with no path component ending in \".lock\"");
        }
    }
    None
}

/// The branch as it appears in an artifact name: every `/` written as `~`.
pub fn encode_branch(branch: &str) -> String {
    branch.replace('/', "~")
}

/// The git branch that an encoded branch stands for: every `~` read as `/`.
pub fn decode_branch(encoded: &str) -> String {
    encoded.replace('~', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_git_accepts() {
        for ok in [
            "master",
            "feature/search_v2",
            "x/<svg/onload=alert(1)>",
            "a&b\"c'd",
            "ветка/тест",
            "release-1.4",
            "a.b",
        ] {
            assert_eq!(validate_branch(ok), None, "{ok:?}");
        }
    }

    #[test]
    fn rejects_what_git_rejects() {
        for bad in [
            "", "@", "HEAD", "-x", "/a", "a/", "a//b", "a.", "a..b", "a@{b", "a b", "a~b", "a^b",
            "a:b", "a?b", "a*b", "a[b", "a\\b", "a\nb", "a\u{7f}b", ".a", "a/.b", "a.lock",
            "a.lock/b",
        ] {
            assert!(validate_branch(bad).is_some(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn mapping_round_trips() {
        assert_eq!(encode_branch("feature/search_v2"), "feature~search_v2");
        assert_eq!(decode_branch("feature~search_v2"), "feature/search_v2");
    }
}
