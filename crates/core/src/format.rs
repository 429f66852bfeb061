//! Telegram's HTML formatting: checking that a text will parse, and turning it into safe
//! HTML for previews in the browser (only the tags Telegram knows survive; everything else
//! is escaped).

/// Tags Telegram's HTML parse mode accepts.
const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("unknown tag <{0}> (allowed: b, i, u, s, a, code, pre, blockquote, tg-spoiler)")]
    UnknownTag(String),
    #[error("<{0}> is not closed")]
    Unclosed(String),
    #[error("</{0}> closes a tag that is not open")]
    UnexpectedClose(String),
    #[error("a tag is not finished (missing >)")]
    Unfinished,
}

impl FormatError {
    /// The problem as a validation check reports it (a code the panel translates).
    pub fn problem(&self) -> crate::validate::Problem {
        use crate::validate::Problem;
        let english = self.to_string();
        match self {
            FormatError::UnknownTag(tag) => {
                Problem::coded("html_unknown_tag", english).with("tag", tag)
            }
            FormatError::Unclosed(tag) => Problem::coded("html_unclosed", english).with("tag", tag),
            FormatError::UnexpectedClose(tag) => {
                Problem::coded("html_unexpected_close", english).with("tag", tag)
            }
            FormatError::Unfinished => Problem::coded("html_unfinished", english),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Open { name: String, attrs: &'a str },
    Close(String),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, FormatError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push(Piece::Text(&rest[..start]));
        let end = rest[start..].find('>').ok_or(FormatError::Unfinished)? + start;
        let inner = &rest[start + 1..end];
        if let Some(name) = inner.strip_prefix('/') {
            out.push(Piece::Close(name.trim().to_ascii_lowercase()));
        } else {
            let name = inner
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let attrs = inner[name.len().min(inner.len())..].trim();
            out.push(Piece::Open { name, attrs });
        }
        rest = &rest[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Checks that Telegram will accept the text in HTML parse mode.
pub fn check_telegram_html(text: &str) -> Result<(), FormatError> {
    let mut stack: Vec<String> = Vec::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text(_) => {}
            Piece::Open { name, .. } => {
                if !TAGS.contains(&name.as_str()) {
                    return Err(FormatError::UnknownTag(name));
                }
                stack.push(name);
            }
            Piece::Close(name) => {
                if stack.pop().as_deref() != Some(name.as_str()) {
                    return Err(FormatError::UnexpectedClose(name));
                }
            }
        }
    }
    match stack.pop() {
        Some(open) => Err(FormatError::Unclosed(open)),
        None => Ok(()),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text already escaped by the author (Telegram's HTML wants `&lt;` etc.) stays escaped once.
fn escape_text(s: &str) -> String {
    let unescaped = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    escape(&unescaped)
}

fn href_of(attrs: &str) -> Option<String> {
    let rest = attrs.split_once("href=")?.1.trim();
    let value = if let Some(r) = rest.strip_prefix('"') {
        r.split('"').next()?
    } else if let Some(r) = rest.strip_prefix('\'') {
        r.split('\'').next()?
    } else {
        rest.split_whitespace().next()?
    };
    let ok = ["https://", "http://", "tg://", "mailto:"]
        .iter()
        .any(|p| value.starts_with(p));
    ok.then(|| escape(value))
}

/// Safe HTML showing how Telegram will render `text`: in `html` mode the known tags are
/// kept (links only to http(s)/tg/mailto), in plain mode everything is text. Line breaks
/// become `<br>`.
pub fn preview_html(text: &str, html: bool) -> String {
    let body = if !html {
        escape(text)
    } else {
        match pieces(text) {
            Err(_) => escape(text),
            Ok(pieces) => {
                // Tags are emitted balanced whatever the text holds: a preview is placed in
                // the page, and an unclosed <b> must not make the rest of the page bold.
                let mut out = String::new();
                let mut open: Vec<&'static str> = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(&escape_text(t)),
                        Piece::Open { name, attrs } if TAGS.contains(&name.as_str()) => {
                            let closer = match name.as_str() {
                                "a" => {
                                    match href_of(attrs) {
                                        Some(href) => out.push_str(&format!(
                                            "<a href=\"{href}\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">"
                                        )),
                                        None => out.push_str("<a>"),
                                    }
                                    "a"
                                }
                                "tg-spoiler" => {
                                    out.push_str("<span class=\"tg-spoiler\">");
                                    "span"
                                }
                                other => {
                                    let tag = TAGS
                                        .iter()
                                        .find(|t| **t == other)
                                        .copied()
                                        .unwrap_or("span");
                                    let shown = if tag == "tg-spoiler" { "span" } else { tag };
                                    out.push_str(&format!("<{shown}>"));
                                    shown
                                }
                            };
                            open.push(closer);
                        }
                        Piece::Close(name) if TAGS.contains(&name.as_str()) => {
                            let name = if name == "tg-spoiler" {
                                "span"
                            } else {
                                name.as_str()
                            };
                            if let Some(at) = open.iter().rposition(|t| *t == name) {
                                for tag in open.drain(at..).rev() {
                                    out.push_str(&format!("</{tag}>"));
                                }
                            } else {
                                out.push_str(&escape(&format!("</{name}>")));
                            }
                        }
                        Piece::Open { name, .. } => out.push_str(&escape(&format!("<{name}>"))),
                        Piece::Close(name) => out.push_str(&escape(&format!("</{name}>"))),
                    }
                }
                for tag in open.drain(..).rev() {
                    out.push_str(&format!("</{tag}>"));
                }
                out
            }
        }
    };
    body.replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_balanced_whatever_the_text() {
        assert_eq!(preview_html("<b>broken", true), "<b>broken</b>");
        assert_eq!(preview_html("x</i>y", true), "x&lt;/i&gt;y");
        assert_eq!(
            preview_html("<b><i>both</b> after", true),
            "<b><i>both</i></b> after"
        );
        assert_eq!(preview_html("<b>fine</b>", true), "<b>fine</b>");
    }

    #[test]
    fn checks_tags_like_telegram() {
        assert!(check_telegram_html("<b>bold</b> <a href=\"https://x.y\">link</a>").is_ok());
        assert!(check_telegram_html("plain &lt;3").is_ok());
        assert_eq!(
            check_telegram_html("<b>open"),
            Err(FormatError::Unclosed("b".into()))
        );
        assert_eq!(
            check_telegram_html("<div>x</div>"),
            Err(FormatError::UnknownTag("div".into()))
        );
        assert_eq!(
            check_telegram_html("<b><i>x</b></i>"),
            Err(FormatError::UnexpectedClose("b".into()))
        );
        assert_eq!(check_telegram_html("a < b"), Err(FormatError::Unfinished));
    }

    #[test]
    fn previews_keep_known_tags_and_escape_the_rest() {
        assert_eq!(preview_html("<b>hi</b>\nthere", true), "<b>hi</b><br>there");
        assert_eq!(preview_html("<b>hi</b>", false), "&lt;b&gt;hi&lt;/b&gt;");
        assert_eq!(
            preview_html("<a href=\"javascript:alert(1)\">x</a>", true),
            "<a>x</a>"
        );
        assert!(preview_html("<a href=\"https://e.com\">x</a>", true)
            .contains("href=\"https://e.com\""));
        assert_eq!(
            preview_html("<script>alert(1)</script>", true),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            preview_html("<img src=x onerror=alert(1)>", true),
            "&lt;img&gt;"
        );
        assert_eq!(preview_html("1 &lt; 2", true), "1 &lt; 2");
    }
}
