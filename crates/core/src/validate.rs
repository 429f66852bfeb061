//! Validation of what people type. Each check returns a [`Problem`]: a stable code with
//! the numbers its message needs, so the API can show it in English (and to programs, by
//! code) and the panel in the reader's language (the catalogue's `err.<code>` keys).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::text::telegram_len;

/// Why a value is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Stable, for programs and the catalogue: `required`, `too_long`, `email`, …
    pub code: &'static str,
    /// What the message names: `max`, `len`, `item`, …
    pub params: Vec<(&'static str, String)>,
}

impl Problem {
    pub fn new(code: &'static str) -> Self {
        Self {
            code,
            params: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.params.push((name, value.to_string()));
        self
    }

    /// A message already written for people (in their language): shown as it is.
    pub fn said(message: impl Into<String>) -> Self {
        Self::new("custom").with("message", message.into())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A problem with a code of the caller's, and its message in English.
    pub fn coded(code: &'static str, english: impl Into<String>) -> Self {
        Self::new(code).with("message", english.into())
    }

    /// The message in English, without the item or button it names.
    pub fn message_without_names(&self) -> String {
        Problem {
            code: self.code,
            params: self
                .params
                .iter()
                .filter(|(k, _)| !matches!(*k, "item" | "button"))
                .cloned()
                .collect(),
        }
        .message()
    }

    /// The message in English (the API's `message`; the panel translates the code).
    pub fn message(&self) -> String {
        let p = |name: &str| self.param(name).unwrap_or_default().to_string();
        let text = match self.code {
            "required" => "must not be empty".to_string(),
            "too_long" => format!("must be at most {} characters (is {})", p("max"), p("len")),
            "too_long_message" => format!(
                "must fit in one Telegram message ({} characters, is {})",
                p("max"),
                p("len")
            ),
            "too_many" => format!("at most {} items", p("max")),
            "bot_token" => "is not a Telegram bot token (expected 123456789:AA…)".to_string(),
            "command_format" => {
                "must be 1–32 lowercase latin letters, digits or _ (without the /)".to_string()
            }
            "command_builtin" => format!(
                "/{} is built in; change its text in the settings",
                p("command")
            ),
            "shortcut_format" => {
                "must be 1–32 lowercase latin letters, digits, _ or - (without the /)".to_string()
            }
            "url_format" => "must be a link starting with https://, http:// or tg://".to_string(),
            "email" => "is not a valid email address".to_string(),
            "password_short" => format!("must be at least {} characters", p("min")),
            "password_long" => format!("must be at most {} characters", p("max")),
            "hours_time" => format!("{:?} is not a time (HH:MM)", p("time")),
            "hours_backwards" => {
                format!("{}–{}: the end must be after the start", p("from"), p("to"))
            }
            "timezone" => format!("unknown time zone {:?}", p("zone")),
            "unknown_field" => format!("{} is not a text that can be translated here", p("field")),
            _ => match self.param("message") {
                Some(m) => m.to_string(),
                None => self.code.replace('_', " "),
            },
        };
        let text = match self.param("item") {
            Some(item) => format!("item {item}: {text}"),
            None => text,
        };
        match self.param("button") {
            Some(label) => format!("“{label}”: {text}"),
            None => text,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem::said(message)
    }
}

impl From<&str> for Problem {
    fn from(message: &str) -> Self {
        Problem::said(message)
    }
}

/// One invalid field. Serialised as `{"field", "code", "message", <params>…}` (numbers as
/// numbers), e.g. `{"field": "password", "code": "password_short", "message": "…", "min": 8}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: Problem,
}

impl FieldError {
    pub fn message(&self) -> String {
        self.problem.message()
    }
}

impl Serialize for FieldError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("field", &self.field)?;
        map.serialize_entry("code", self.problem.code)?;
        map.serialize_entry("message", &self.problem.message())?;
        for (name, value) in &self.problem.params {
            if matches!(*name, "field" | "code" | "message") {
                continue;
            }
            match value.parse::<i64>() {
                Ok(n) => map.serialize_entry(name, &n)?,
                Err(_) => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

/// All invalid fields of one input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub errors: Vec<FieldError>,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message()))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, problem: impl Into<Problem>) -> Self {
        let mut v = Self::new();
        v.add(field, problem);
        v
    }

    pub fn add(&mut self, field: &str, problem: impl Into<Problem>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            problem: problem.into(),
        });
    }

    /// Records the outcome of a check.
    pub fn check(&mut self, field: &str, result: Result<(), Problem>) {
        if let Err(problem) = result {
            self.add(field, problem);
        }
    }

    pub fn into_result(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// A required text between 1 and `max` characters (after trimming).
pub fn text(value: &str, max: usize) -> Result<(), Problem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Problem::new("required"));
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(Problem::new("too_long").with("max", max).with("len", len));
    }
    Ok(())
}

/// A text the bot sends as one Telegram message.
pub fn message_text(value: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        return Err(Problem::new("required"));
    }
    let len = telegram_len(value);
    if len > 4096 {
        return Err(Problem::new("too_long_message")
            .with("max", 4096)
            .with("len", len));
    }
    Ok(())
}

/// A list of short texts (examples, keywords): each non-empty and at most `max_len`.
pub fn text_list(values: &[String], max_items: usize, max_len: usize) -> Result<(), Problem> {
    if values.len() > max_items {
        return Err(Problem::new("too_many").with("max", max_items));
    }
    for (i, v) in values.iter().enumerate() {
        text(v, max_len).map_err(|e| e.with("item", i + 1))?;
    }
    Ok(())
}

/// The shape of a Telegram bot token: `<bot id>:<secret>`.
pub fn bot_token(value: &str) -> Result<(), Problem> {
    let Some((id, secret)) = value.split_once(':') else {
        return Err(Problem::new("bot_token"));
    };
    let id_ok = !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit());
    let secret_ok = (20..=100).contains(&secret.len())
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if id_ok && secret_ok {
        Ok(())
    } else {
        Err(Problem::new("bot_token"))
    }
}

/// Commands the bot handles itself; tenants cannot redefine them.
pub const BUILTIN_COMMANDS: &[&str] = &["start", "help", "operator"];

/// A command name as Telegram accepts it: 1–32 of `a-z`, `0-9`, `_`.
pub fn command_name(value: &str) -> Result<(), Problem> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(Problem::new("command_format"));
    }
    if BUILTIN_COMMANDS.contains(&value) {
        return Err(Problem::new("command_builtin").with("command", value));
    }
    Ok(())
}

/// A canned response's shortcut, typed after `/` in the reply box: 1–32 of `a-z`, `0-9`,
/// `_`, `-`.
pub fn canned_shortcut(value: &str) -> Result<(), Problem> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Problem::new("shortcut_format"))
    }
}

/// A link for a URL button.
pub fn button_url(value: &str) -> Result<(), Problem> {
    let ok = ["https://", "http://", "tg://"]
        .iter()
        .any(|p| value.starts_with(p) && value.len() > p.len())
        && !value.chars().any(char::is_whitespace)
        && value.len() <= 2048;
    if ok {
        Ok(())
    } else {
        Err(Problem::new("url_format"))
    }
}

/// A plausible email address (the rest is the mail server's business).
pub fn email(value: &str) -> Result<(), Problem> {
    let v = value.trim();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !v.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Problem::new("email"))
    }
}

pub fn password(value: &str) -> Result<(), Problem> {
    let len = value.chars().count();
    if len < 8 {
        return Err(Problem::new("password_short").with("min", 8));
    }
    if len > 256 {
        return Err(Problem::new("password_long").with("max", 256));
    }
    Ok(())
}

/// A URL-friendly slug made from an organization's name (Cyrillic transliterated).
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let piece: &str = match c {
            'a'..='z' | '0'..='9' => {
                out.push(c);
                continue;
            }
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'ё' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "h",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "sch",
            'ы' => "y",
            'э' => "e",
            'ю' => "yu",
            'я' => "ya",
            'ъ' | 'ь' => "",
            _ => "-",
        };
        out.push_str(piece);
    }
    let mut slug = String::new();
    for part in out.split('-').filter(|p| !p.is_empty()) {
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(part);
    }
    slug.truncate(48);
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "org".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_must_be_present_and_bounded() {
        assert!(text("  ", 10).is_err());
        assert!(text("hello", 10).is_ok());
        assert!(text("привет мир!", 10).is_err());
        assert!(message_text(&"я".repeat(4096)).is_ok());
        assert!(message_text(&"я".repeat(4097)).is_err());
        assert!(text_list(&["a".into(), "".into()], 10, 5).is_err());
        assert!(text_list(&vec!["a".to_string(); 11], 10, 5).is_err());
    }

    #[test]
    fn bot_tokens_have_telegrams_shape() {
        assert!(bot_token("123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0").is_ok());
        assert!(bot_token("123456789").is_err());
        assert!(bot_token("abc:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0").is_err());
        assert!(bot_token("123:short").is_err());
        assert!(bot_token("123:AAHfiqksKZ8WmR2zSjiQ7 v4TMAKdiHm9T0").is_err());
    }

    #[test]
    fn command_names_follow_telegram_and_spare_builtins() {
        assert!(command_name("prices").is_ok());
        assert!(command_name("order_status2").is_ok());
        assert!(command_name("Prices").is_err());
        assert!(command_name("/prices").is_err());
        assert!(command_name(&"a".repeat(33)).is_err());
        assert!(command_name("start").is_err());
    }

    #[test]
    fn urls_emails_and_passwords() {
        assert!(button_url("https://example.com/x").is_ok());
        assert!(button_url("tg://resolve?domain=x").is_ok());
        assert!(button_url("javascript:alert(1)").is_err());
        assert!(button_url("https://").is_err());
        assert!(email("a@b.co").is_ok());
        assert!(email("a@b").is_err());
        assert!(email("a b@c.d").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
    }

    #[test]
    fn slugs_transliterate_and_clean() {
        assert_eq!(slugify("Acme Inc."), "acme-inc");
        assert_eq!(slugify("Ромашка и Ко"), "romashka-i-ko");
        assert_eq!(slugify("!!!"), "org");
    }

    #[test]
    fn invalid_collects_fields() {
        let mut v = Invalid::new();
        v.check("title", text("", 10));
        v.check("answer", text("ok", 10));
        let err = v.into_result().unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].field, "title");
        assert_eq!(err.to_string(), "title: must not be empty");
        assert_eq!(err.errors[0].problem.code, "required");
    }

    #[test]
    fn field_errors_carry_a_code_and_their_numbers() {
        let mut v = Invalid::new();
        v.check("password", password("short"));
        v.check("examples", text_list(&["ok".into(), "".into()], 10, 5));
        let json = serde_json::to_value(&v.errors).unwrap();
        assert_eq!(
            json[0],
            serde_json::json!({"field": "password", "code": "password_short",
                               "message": "must be at least 8 characters", "min": 8})
        );
        assert_eq!(json[1]["code"], "required");
        assert_eq!(json[1]["item"], 2);
        assert_eq!(json[1]["message"], "item 2: must not be empty");
    }
}
