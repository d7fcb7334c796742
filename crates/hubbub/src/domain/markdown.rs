//! Markdown → sanitized HTML. pulldown-cmark renders, ammonia cleans with an
//! allow-list; the result is the only HTML a client ever inserts. Mentions of room
//! members become `<span class="mention" data-mention="…">` (never inside code).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "del",
        "s",
        "code",
        "pre",
        "p",
        "br",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "span",
        "input",
    ]
    .into_iter()
    .collect();
    let mut classes = HashMap::new();
    classes.insert("span", ["mention"].into_iter().collect::<HashSet<_>>());
    let mut b = ammonia::Builder::default();
    b.tags(tags)
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("span", ["data-mention"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("ol", ["start"])
        .allowed_classes(classes);
    b
});

/// Who an `@name` token refers to: a user id, `here` or `room`.
pub type MentionTarget = String;

/// Renders a message body without mentions.
pub fn render(body: &str) -> String {
    render_with(body, &HashMap::new())
}

/// Renders a message body; `mentions` maps lower-cased `@` names (and `here`/`room`)
/// to what they refer to. Raw HTML in the body is shown as text, never interpreted.
pub fn render_with(body: &str, mentions: &HashMap<String, MentionTarget>) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_TASKLISTS);
    let mut events: Vec<Event> = Vec::new();
    let mut in_code = 0usize;
    let mut in_link = 0usize;
    for ev in Parser::new_ext(body, opts) {
        match ev {
            // Inline and block HTML become text: a body cannot smuggle markup in.
            Event::Html(s) | Event::InlineHtml(s) => events.push(Event::Text(s)),
            // Chat messages keep their line breaks.
            Event::SoftBreak => events.push(Event::HardBreak),
            Event::Start(Tag::CodeBlock(k)) => {
                in_code += 1;
                events.push(Event::Start(Tag::CodeBlock(k)));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = in_code.saturating_sub(1);
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                in_link += 1;
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            Event::End(TagEnd::Link) => {
                in_link = in_link.saturating_sub(1);
                events.push(Event::End(TagEnd::Link));
            }
            Event::Text(t) if in_code == 0 && in_link == 0 && !mentions.is_empty() => {
                split_mentions(t, mentions, &mut events);
            }
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(body.len() + 16);
    html::push_html(&mut out, events.into_iter());
    CLEANER.clean(&out).to_string().trim_end().to_string()
}

fn split_mentions<'a>(
    t: CowStr<'a>,
    mentions: &HashMap<String, MentionTarget>,
    out: &mut Vec<Event<'a>>,
) {
    let text: &str = &t;
    let mut last = 0;
    for (start, end, name) in mention_tokens(text) {
        let Some(target) = mentions.get(&name.to_lowercase()) else {
            continue;
        };
        if start > last {
            out.push(Event::Text(CowStr::from(text[last..start].to_string())));
        }
        // `target` is a user id or here/room: [a-z0-9] only, safe in an attribute;
        // the visible name is escaped by the html writer as Text.
        out.push(Event::InlineHtml(CowStr::from(format!(
            "<span class=\"mention\" data-mention=\"{}\">",
            target
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        ))));
        out.push(Event::Text(CowStr::from(text[start..end].to_string())));
        out.push(Event::InlineHtml(CowStr::from("</span>")));
        last = end;
    }
    if last == 0 {
        out.push(Event::Text(t));
    } else if last < text.len() {
        out.push(Event::Text(CowStr::from(text[last..].to_string())));
    }
}

/// `@name` tokens in plain text: (byte start of '@', byte end, name). A mention starts
/// at the beginning or after a character that is not part of a name or an address.
pub fn mention_tokens(text: &str) -> Vec<(usize, usize, &str)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        if c == '@' && !prev.is_some_and(|p| is_name(p) || p == '@') {
            let rest = &text[i + 1..];
            let len = rest.find(|ch: char| !is_name(ch)).unwrap_or(rest.len());
            // Sentence punctuation after a name is not part of it ("@bob.").
            let name = rest[..len].trim_end_matches(['.', '-']);
            if (2..=32).contains(&name.len()) || name == "here" || name == "room" {
                out.push((i, i + 1 + name.len(), name));
            }
        }
        prev = Some(c);
    }
    out
}

/// The `@` names a body mentions outside code (lower-cased, deduplicated).
pub fn mentioned_names(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut in_code = 0usize;
    for ev in Parser::new_ext(body, Options::empty()) {
        match ev {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Text(t) if in_code == 0 => {
                for (_, _, n) in mention_tokens(&t) {
                    let n = n.to_lowercase();
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_basic_markdown() {
        assert_eq!(render("**hi**"), "<p><strong>hi</strong></p>");
        assert!(render("`x`").contains("<code>x</code>"));
    }

    #[test]
    fn neutralizes_html_and_scripts() {
        let h = render("<script>alert(1)</script>");
        assert!(!h.contains("<script"), "{h}");
        let h = render("<img src=x onerror=alert(1)>");
        assert!(!h.contains("<img"), "{h}");
        let h = render("[x](javascript:alert(1))");
        assert!(!h.contains("javascript:"), "{h}");
    }

    #[test]
    fn links_get_rel() {
        let h = render("[x](https://example.com)");
        assert!(h.contains(r#"rel="noopener noreferrer nofollow""#), "{h}");
    }

    #[test]
    fn finds_mentions_outside_code() {
        assert_eq!(
            mentioned_names("hi @Bob. and @al-ice, mail a@b.c `@carol`"),
            ["bob", "al-ice"]
        );
        assert_eq!(mentioned_names("```\n@dave\n```\n@here"), ["here"]);
        assert!(mentioned_names("@x").is_empty());
    }

    #[test]
    fn highlights_known_mentions_only() {
        let mut m = HashMap::new();
        m.insert("bob".to_string(), "u1".to_string());
        let h = render_with("hey @Bob and @nobody <b>", &m);
        assert!(
            h.contains(r#"<span class="mention" data-mention="u1">@Bob</span>"#),
            "{h}"
        );
        assert!(h.contains("@nobody"));
        assert!(h.contains("&lt;b&gt;"), "{h}");
        let h = render_with("`@bob`", &m);
        assert!(!h.contains("mention"), "{h}");
    }
}
