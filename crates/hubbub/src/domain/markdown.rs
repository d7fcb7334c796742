//! Markdown → sanitized HTML. pulldown-cmark renders, ammonia cleans with an
//! allow-list; the result is the only HTML a client ever inserts.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a", "b", "strong", "i", "em", "del", "s", "code", "pre", "p", "br", "ul", "ol", "li",
        "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr",
        "th", "td", "span", "input",
    ]
    .into_iter()
    .collect();
    let mut b = ammonia::Builder::default();
    b.tags(tags)
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("ol", ["start"])
        .add_generic_attributes(Vec::<&str>::new());
    b
});

/// Renders a message body. Raw HTML in the body is shown as text, never interpreted.
pub fn render(body: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_TASKLISTS);
    // Inline and block HTML become text events: a body cannot smuggle markup in.
    let parser = Parser::new_ext(body, opts).map(|ev| match ev {
        pulldown_cmark::Event::Html(s) | pulldown_cmark::Event::InlineHtml(s) => {
            pulldown_cmark::Event::Text(s)
        }
        // Chat messages keep their line breaks.
        pulldown_cmark::Event::SoftBreak => pulldown_cmark::Event::HardBreak,
        other => other,
    });
    let mut out = String::with_capacity(body.len() + 16);
    html::push_html(&mut out, parser);
    let cleaned = CLEANER.clean(&out).to_string();
    cleaned.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

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
}
