//! Making untrusted text inert: for HTML, for terminals, for Prometheus
//! labels.
//!
//! Branch names, artifact names, reasons and command output come from CI or
//! from the programs the switcher runs, so any of them may hold markup,
//! quotes, terminal escape sequences or bidirectional overrides (U+202E can
//! make `gpj.exe` read as `exe.jpg`). Each output form gets one function
//! here, and every renderer passes untrusted text through it.

/// Whether `c` must never reach a reader as itself: control characters
/// (terminal escapes, NUL, ...) and the Unicode bidirectional controls that
/// reorder what follows them.
fn is_hidden_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The visible stand-in for a hidden control: `[U+202E]`.
fn visible(c: char) -> String {
    format!("[U+{:04X}]", u32::from(c))
}

/// Escapes text for HTML element content and quoted attribute values:
/// `& < > " '` become entities and hidden controls become visible text.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_hidden_control(c) => out.push_str(&visible(c)),
            c => out.push(c),
        }
    }
    out
}

/// Makes text safe to print on a terminal: hidden controls (ESC sequences,
/// bidi overrides, carriage returns) become visible text. With `one_line`,
/// newlines and tabs do too.
pub fn terminal(text: &str, one_line: bool) -> String {
    text.chars()
        .map(|c| {
            if is_hidden_control(c) || (one_line && (c == '\n' || c == '\t')) {
                visible(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
pub fn prom_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_quotes_and_bidi() {
        let branch = "x/<svg/onload=alert(1)>\"a'b&\u{202E}gpj.exe";
        let out = html(branch);
        assert_eq!(
            out,
            "x/&lt;svg/onload=alert(1)&gt;&quot;a&#39;b&amp;[U+202E]gpj.exe"
        );
        for bad in ['<', '>', '"', '\'', '\u{202E}'] {
            assert!(!out.contains(bad), "{out:?} holds {bad:?}");
        }
    }

    #[test]
    fn terminal_shows_escapes_instead_of_running_them() {
        assert_eq!(
            terminal("a\u{1b}[31mb\u{202E}c", true),
            "a[U+001B][31mb[U+202E]c"
        );
        assert_eq!(terminal("a\nb", true), "a[U+000A]b");
        assert_eq!(terminal("a\nb", false), "a\nb");
        assert_eq!(terminal("ветка/тест", true), "ветка/тест");
    }

    #[test]
    fn prometheus_labels() {
        assert_eq!(prom_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
