//! Parse, don't validate: user input becomes typed values or an `invalid` error that
//! names the field and the limit.

use super::error::{Error, Result};

/// A username or guest name: 2–32 chars of `[A-Za-z0-9_.-]`.
pub fn username(field: &'static str, s: &str) -> Result<String> {
    let n = s.chars().count();
    if !(2..=32).contains(&n) {
        return Err(Error::invalid(
            field,
            format!("{field} must be 2 to 32 characters"),
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(Error::invalid(
            field,
            format!("{field} may contain only letters, digits, '_', '.' and '-'"),
        ));
    }
    Ok(s.to_string())
}

pub fn password(s: &str) -> Result<String> {
    if s.chars().count() < 8 {
        return Err(Error::invalid(
            "password",
            "password must be at least 8 characters",
        ));
    }
    if s.len() > 1024 {
        return Err(Error::invalid(
            "password",
            "password must be at most 1024 bytes",
        ));
    }
    Ok(s.to_string())
}

/// Free text with a maximum length in code points; control characters other than
/// newlines and tabs are refused.
pub fn text(field: &'static str, s: &str, max: usize, multiline: bool) -> Result<String> {
    if s.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
    {
        return Err(Error::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(s.to_string())
}

/// An optional display name: trimmed, ≤ 64 chars; empty means "none".
pub fn display_name(s: &str) -> Result<Option<String>> {
    let t = text("display_name", s.trim(), 64, false)?;
    Ok(if t.is_empty() { None } else { Some(t) })
}

/// A room name: 1–80 chars after trimming.
pub fn room_name(s: &str) -> Result<String> {
    let t = text("name", s.trim(), 80, false)?;
    if t.is_empty() {
        return Err(Error::invalid("name", "name must not be empty"));
    }
    Ok(t)
}

pub fn topic(s: &str) -> Result<String> {
    text("topic", s.trim(), 250, false)
}

/// A message body: not empty after trimming (unless attachments), ≤ max code points.
pub fn body(s: &str, max: usize, has_attachments: bool) -> Result<String> {
    if s.chars().count() > max {
        return Err(Error::invalid(
            "body",
            format!("body must be at most {max} characters"),
        ));
    }
    if s.trim().is_empty() && !has_attachments {
        return Err(Error::invalid("body", "body must not be empty"));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Error::invalid("body", "body contains control characters"));
    }
    Ok(s.to_string())
}

pub fn client_id(s: &str) -> Result<String> {
    if s.is_empty() || s.chars().count() > 64 {
        return Err(Error::invalid(
            "client_id",
            "client_id must be 1 to 64 characters",
        ));
    }
    Ok(s.to_string())
}

/// A reaction emoji: 1–32 bytes, no whitespace, and a known emoji (given as itself
/// or as a `:shortcode:`). Returns the fully-qualified emoji.
pub fn emoji(s: &str) -> Result<String> {
    if s.is_empty() || s.len() > 32 {
        return Err(Error::invalid("emoji", "emoji must be 1 to 32 bytes"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(Error::invalid("emoji", "emoji must not contain whitespace"));
    }
    let found = match s.strip_prefix(':').and_then(|r| r.strip_suffix(':')) {
        Some(code) => emojis::get_by_shortcode(code),
        None => emojis::get(s),
    };
    found
        .map(|e| e.as_str().to_string())
        .ok_or_else(|| Error::invalid("emoji", "not a known emoji"))
}

/// Search text → plain terms (letters, digits, and what joins them inside words),
/// so no query can be a syntax error for the full-text engine.
pub fn search_terms(q: &str) -> Result<Vec<String>> {
    if q.chars().count() > 256 {
        return Err(Error::invalid(
            "q",
            "search text must be at most 256 characters",
        ));
    }
    Ok(q.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("username", "al").is_ok());
        assert!(username("username", "a").is_err());
        assert!(username("username", &"a".repeat(33)).is_err());
        assert!(username("username", &"a".repeat(32)).is_ok());
        assert!(username("username", "bad name").is_err());
        assert!(username("username", "émile").is_err());
        assert!(username("username", "ok_.-9").is_ok());
    }

    #[test]
    fn bodies() {
        assert!(body("  ", 10, false).is_err());
        assert!(body("  ", 10, true).is_ok());
        assert!(body(&"é".repeat(10), 10, false).is_ok());
        assert!(body(&"é".repeat(11), 10, false).is_err());
        assert!(body("a\u{7}", 10, false).is_err());
        assert!(body("a\nb", 10, false).is_ok());
    }

    #[test]
    fn names_and_ids() {
        assert!(room_name("   ").is_err());
        assert_eq!(room_name(" x ").unwrap(), "x");
        assert!(client_id(&"c".repeat(65)).is_err());
        assert!(client_id("").is_err());
        assert_eq!(display_name("  ").unwrap(), None);
        assert!(password("1234567").is_err());
    }

    #[test]
    fn emojis() {
        assert_eq!(emoji("👍").unwrap(), "👍");
        assert_eq!(emoji(":rocket:").unwrap(), "🚀");
        assert_eq!(emoji("\u{1f43f}").unwrap(), "\u{1f43f}\u{fe0f}");
        assert!(emoji("").is_err());
        assert!(emoji("abc").is_err());
        assert!(emoji(":nope-not-one:").is_err());
        assert!(emoji("👍 ").is_err());
        assert!(emoji(&"👍".repeat(9)).is_err());
    }

    #[test]
    fn search_terms_are_plain() {
        assert_eq!(
            search_terms("Hello, \"world\" AND (x* OR").unwrap(),
            ["hello", "world", "and", "x", "or"]
        );
        assert!(search_terms("\"*)(:^").unwrap().is_empty());
    }
}
