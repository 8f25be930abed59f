//! The programs a `/bin/sh -c` command line runs, for `switcher check`.
//!
//! Not a shell: enough of its grammar to find the command word of every
//! simple command in a list or pipeline (`;`, `&&`, `||`, `|`, `&`,
//! newlines, `( )`), after variable assignments and redirections, and
//! behind `exec`, `command`, `nohup`, `env` and `sudo`. Words are unquoted
//! with `shlex`. A command word that the shell would compute (`$x`, `` ` ``)
//! or a construct this does not follow (`for`, `case`, here-documents,
//! functions) makes the whole line "not checked" rather than guessed.

/// One program a command line runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The command word, unquoted (`systemctl`, `/usr/sbin/lighttpd`).
    pub word: String,
    /// Where it runs behind `sudo`, the words after the program.
    pub sudo_args: Option<Vec<String>>,
}

/// What a command line runs, in order, or why it cannot be said.
pub fn programs(cmd: &str) -> Result<Vec<Program>, String> {
    let tokens = tokens(cmd)?;
    let mut out = Vec::new();
    let mut simple: Vec<String> = Vec::new();
    let mut target_next = false;
    for token in tokens {
        match token {
            Token::Word(w) if target_next => {
                target_next = false;
                let _ = w; // a redirection's target, not a command word
            }
            Token::Word(w) => simple.push(w),
            Token::Redirect => target_next = true,
            Token::Separator => {
                if target_next {
                    return Err("a redirection without its target".into());
                }
                simple_command(&simple, &mut out)?;
                simple.clear();
            }
        }
    }
    if target_next {
        return Err("a redirection without its target".into());
    }
    simple_command(&simple, &mut out)?;
    Ok(out)
}

/// Words that make the rest of the simple command a command again.
const PREFIX_KEYWORDS: [&str; 9] = [
    "if", "then", "else", "elif", "do", "while", "until", "!", "{",
];
/// Words that close a compound command.
const CLOSING_KEYWORDS: [&str; 3] = ["fi", "done", "}"];
/// Constructs whose words are not commands in the way this reads them.
const UNFOLLOWED: [&str; 5] = ["for", "case", "select", "function", "esac"];

fn simple_command(raw: &[String], out: &mut Vec<Program>) -> Result<(), String> {
    let mut words = raw.iter().map(String::as_str).peekable();
    // Assignments and keywords before the command word.
    while let Some(w) = words.peek() {
        if is_assignment(w) || PREFIX_KEYWORDS.contains(w) {
            words.next();
        } else {
            break;
        }
    }
    let Some(first) = words.next() else {
        return Ok(());
    };
    if CLOSING_KEYWORDS.contains(&first) {
        return if words.next().is_none() {
            Ok(())
        } else {
            Err(format!("words after {first:?}"))
        };
    }
    if UNFOLLOWED.contains(&first) {
        return Err(format!("{first:?} constructs are not followed"));
    }
    let mut word = unquote(first)?;
    let mut rest: Vec<&str> = words.collect();
    // Wrappers whose argument is the program that runs.
    loop {
        let skip = match word.as_str() {
            "exec" | "nohup" => 0,
            "command" => count_options(&rest, &[]),
            "env" => {
                count_options(&rest, &["-u", "-C", "-S"])
                    + rest
                        .iter()
                        .skip(count_options(&rest, &["-u", "-C", "-S"]))
                        .take_while(|w| is_assignment(w))
                        .count()
            }
            "sudo" => {
                let n = count_options(
                    &rest,
                    &["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T"],
                );
                if rest.len() <= n {
                    break; // `sudo -l` and the like: sudo itself
                }
                out.push(Program {
                    word: word.clone(),
                    sudo_args: None,
                });
                let program = unquote(rest[n])?;
                let args = rest[n + 1..]
                    .iter()
                    .map(|w| unquote(w))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Program {
                    word: program,
                    sudo_args: Some(args),
                });
                return Ok(());
            }
            _ => break,
        };
        if rest.len() <= skip {
            break; // `exec` alone, `env` printing the environment
        }
        word = unquote(rest[skip])?;
        rest.drain(..=skip);
    }
    out.push(Program {
        word,
        sudo_args: None,
    });
    Ok(())
}

/// How many leading words are options (`-x`, `-u user`, `--`).
fn count_options(words: &[&str], with_argument: &[&str]) -> usize {
    let mut n = 0;
    while let Some(w) = words.get(n) {
        if *w == "--" {
            return n + 1;
        }
        if !w.starts_with('-') || *w == "-" {
            break;
        }
        n += if with_argument.contains(w) { 2 } else { 1 };
    }
    n.min(words.len())
}

/// `NAME=value`, unquoted name.
fn is_assignment(raw: &str) -> bool {
    raw.split_once('=').is_some_and(|(name, _)| {
        name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// A raw word without its quotes; expansions cannot be said in advance.
fn unquote(raw: &str) -> Result<String, String> {
    if raw.contains(['$', '`']) {
        return Err(format!(
            "{raw:?} is computed when the command runs (an expansion)"
        ));
    }
    if raw.contains(['*', '?', '[']) && !raw.contains(['\'', '"']) && raw != "[" {
        return Err(format!("{raw:?} is a pattern the shell expands"));
    }
    match shlex::split(raw).as_deref() {
        Some([word]) => Ok(word.clone()),
        _ => Err(format!("{raw:?} is not one shell word")),
    }
}

#[derive(Debug)]
enum Token {
    /// A word as written, quotes included.
    Word(String),
    /// `;`, `&&`, `||`, `|`, `&`, a newline, `(`, `)`.
    Separator,
    /// `>`, `>>`, `<`, `>&`, `<&`, `&>`, `>|`, `<>`: the next word is its target.
    Redirect,
}

/// Splits a command line into words (quotes kept) and operators.
fn tokens(cmd: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = cmd.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                word.push(c);
                loop {
                    match chars.next() {
                        Some('\'') => break word.push('\''),
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                word.push(c);
                loop {
                    match chars.next() {
                        Some('"') => break word.push('"'),
                        Some('\\') => {
                            word.push('\\');
                            if let Some(c) = chars.next() {
                                word.push(c);
                            }
                        }
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    word.push('\\');
                    word.push(c);
                }
                None => word.push('\\'),
            },
            '#' if word.is_empty() => while chars.next_if(|c| *c != '\n').is_some() {},
            ' ' | '\t' => flush(&mut word, &mut out),
            '\n' | ';' | '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(Token::Separator);
            }
            '|' => {
                flush(&mut word, &mut out);
                chars.next_if_eq(&'|');
                out.push(Token::Separator);
            }
            '&' => {
                flush(&mut word, &mut out);
                if chars.next_if_eq(&'>').is_some() {
                    chars.next_if_eq(&'>');
                    out.push(Token::Redirect);
                } else {
                    chars.next_if_eq(&'&');
                    out.push(Token::Separator);
                }
            }
            '<' | '>' => {
                // A number right before it is the file descriptor.
                if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
                    word.clear();
                }
                flush(&mut word, &mut out);
                if c == '<' && chars.next_if_eq(&'<').is_some() {
                    return Err("here-documents are not followed".into());
                }
                let _ = chars.next_if(|n| matches!(n, '>' | '&' | '|')).or_else(|| {
                    if c == '<' {
                        chars.next_if_eq(&'>')
                    } else {
                        None
                    }
                });
                out.push(Token::Redirect);
            }
            _ => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cmd: &str) -> Vec<String> {
        programs(cmd)
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
            .into_iter()
            .map(|p| p.word)
            .collect()
    }

    #[test]
    fn every_command_word_of_a_list() {
        assert_eq!(
            words("cd /srv/x && /usr/sbin/lighttpd -f conf"),
            ["cd", "/usr/sbin/lighttpd"]
        );
        assert_eq!(
            words("a; b || c | d & e\nf"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(words("X=1 Y='a b' run --x"), ["run"]);
        assert_eq!(words("exec nohup env -u A B=2 prog"), ["prog"]);
        assert_eq!(
            words("prog >/dev/null 2>&1 </dev/null; next 2> log"),
            ["prog", "next"]
        );
        assert_eq!(words("(cd x; './my prog' a)"), ["cd", "./my prog"]);
        assert_eq!(words("if test -x a; then a; fi"), ["test", "a"]);
        assert_eq!(words("echo 'a && b'; c"), ["echo", "c"]);
        assert_eq!(words("a&&b"), ["a", "b"]);
    }

    #[test]
    fn sudo_names_the_program_and_its_words() {
        let p = programs("sudo -n -u root systemctl stop 'x y'").unwrap();
        assert_eq!(
            p,
            [
                Program {
                    word: "sudo".into(),
                    sudo_args: None,
                },
                Program {
                    word: "systemctl".into(),
                    sudo_args: Some(vec!["stop".into(), "x y".into()]),
                }
            ]
        );
    }

    #[test]
    fn what_cannot_be_said_in_advance() {
        for cmd in [
            "$APP start",
            "`which x`",
            "for i in 1 2; do x; done",
            "cat <<EOF",
            "echo 'open",
            "x >",
        ] {
            assert!(programs(cmd).is_err(), "{cmd}");
        }
    }
}
