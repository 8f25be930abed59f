//! Quoting for the two shells a delivery passes through: the remote login
//! shell that runs `mv`, and rsync's own splitting of its `-e` command.
//!
//! Branch names may hold quotes, `&`, `;`, `$` and the like, and the drop
//! path comes from a CI variable: both are quoted, never pasted.

use anyhow::bail;

/// `s` as one word for a POSIX shell: single-quoted, with each `'` written
/// as `'\''`.
pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `word` as one word of rsync's `-e` command, which rsync splits at spaces
/// and where single or double quotes (not backslashes) keep spaces.
pub fn rsync_word(word: &str) -> anyhow::Result<String> {
    let plain = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if plain {
        Ok(word.to_string())
    } else if !word.contains('\'') && !word.contains('\n') {
        Ok(format!("'{word}'"))
    } else if !word.contains('"') && !word.contains('\n') {
        Ok(format!("\"{word}\""))
    } else {
        bail!(
            "the ssh argument {word:?} cannot be passed through rsync -e: expected no \
             newline and not both kinds of quotes"
        )
    }
}

/// Splits a command line such as $CUTOVER_SSH into words, the way rsync
/// splits `-e`: at spaces, with single or double quotes keeping spaces.
pub fn split(command: &str, what: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        bail!("{what} {command:?} has an unclosed {q}: expected balanced quotes");
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        bail!("{what} is empty: expected an ssh command, e.g. \"ssh -F /path/to/config\"");
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quotes_everything() {
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$(rm -rf /);&"), "'$(rm -rf /);&'");
    }

    #[test]
    fn rsync_words_round_trip_through_split() {
        for word in ["ssh", "/tmp/a b/key", "UserKnownHostsFile=\"/x y\"", "it's"] {
            let quoted = rsync_word(word).unwrap();
            assert_eq!(split(&quoted, "x").unwrap(), [word], "{quoted}");
        }
        assert!(rsync_word("a'b\"c").is_err());
    }

    #[test]
    fn splits_like_rsync() {
        assert_eq!(
            split(" ssh  -F '/a b' -o \"X=1\" ", "x").unwrap(),
            ["ssh", "-F", "/a b", "-o", "X=1"]
        );
        assert!(split("ssh 'x", "x").is_err());
        assert!(split("  ", "x").is_err());
    }
}
