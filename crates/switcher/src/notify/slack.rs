//! `format = "slack"`: an incoming-webhook message, `{"text": "..."}`,
//! which Slack, Mattermost and Rocket.Chat all accept.

use super::event::Event;

/// The message body for `event`.
pub fn payload(event: &Event) -> serde_json::Value {
    let mut text = escape(&event.summary());
    if !event.tail.is_empty() {
        // A code block keeps the command's output as it was printed.
        text.push_str("\n```\n");
        text.push_str(&escape(&event.tail.join("\n")).replace("```", "'''"));
        text.push_str("\n```");
    }
    serde_json::json!({ "text": text })
}

/// Slack's three control characters (`&`, `<`, `>`), so that a branch
/// name or a reason cannot mention @channel or forge a link.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::Kind;

    #[test]
    fn text_is_escaped_and_the_tail_is_a_code_block() {
        let mut e = Event::new(Kind::Failed)
            .components(["backend"])
            .artifact("catalog_full_1.0.0_2026-11-26T23-50-12Z_feat~<!channel>.tar.gz")
            .reason("exit 1");
        e.tail = vec!["line <1>".into()];
        let v = payload(&e);
        let text = v["text"].as_str().unwrap_or_default();
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("```\nline &lt;1&gt;\n```"), "{text}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1));
    }
}
