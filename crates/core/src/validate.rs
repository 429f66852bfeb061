//! Validation of what people type: each check returns a field-level error with a message
//! fit to show next to the field.

use serde::Serialize;

use crate::text::telegram_len;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
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
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.add(field, message);
        v
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Records the outcome of a check.
    pub fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.add(field, message);
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
pub fn text(value: &str, max: usize) -> Result<(), String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(format!("must be at most {max} characters (is {len})"));
    }
    Ok(())
}

/// A text the bot sends as one Telegram message.
pub fn message_text(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let len = telegram_len(value);
    if len > 4096 {
        return Err(format!(
            "must fit in one Telegram message (4096 characters, is {len})"
        ));
    }
    Ok(())
}

/// A list of short texts (examples, keywords): each non-empty and at most `max_len`.
pub fn text_list(values: &[String], max_items: usize, max_len: usize) -> Result<(), String> {
    if values.len() > max_items {
        return Err(format!("at most {max_items} items"));
    }
    for (i, v) in values.iter().enumerate() {
        text(v, max_len).map_err(|e| format!("item {}: {e}", i + 1))?;
    }
    Ok(())
}

/// The shape of a Telegram bot token: `<bot id>:<secret>`.
pub fn bot_token(value: &str) -> Result<(), String> {
    let Some((id, secret)) = value.split_once(':') else {
        return Err("is not a Telegram bot token (expected 123456789:AA…)".into());
    };
    let id_ok = !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit());
    let secret_ok = (20..=100).contains(&secret.len())
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if id_ok && secret_ok {
        Ok(())
    } else {
        Err("is not a Telegram bot token (expected 123456789:AA…)".into())
    }
}

/// Commands the bot handles itself; tenants cannot redefine them.
pub const BUILTIN_COMMANDS: &[&str] = &["start", "help", "operator"];

/// A command name as Telegram accepts it: 1–32 of `a-z`, `0-9`, `_`.
pub fn command_name(value: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err("must be 1–32 lowercase latin letters, digits or _ (without the /)".into());
    }
    if BUILTIN_COMMANDS.contains(&value) {
        return Err(format!(
            "/{value} is built in; change its text in the settings"
        ));
    }
    Ok(())
}

/// A canned response's shortcut, typed after `/` in the reply box: 1–32 of `a-z`, `0-9`,
/// `_`, `-`.
pub fn canned_shortcut(value: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err("must be 1–32 lowercase latin letters, digits, _ or - (without the /)".into())
    }
}

/// A link for a URL button.
pub fn button_url(value: &str) -> Result<(), String> {
    let ok = ["https://", "http://", "tg://"]
        .iter()
        .any(|p| value.starts_with(p) && value.len() > p.len())
        && !value.chars().any(char::is_whitespace)
        && value.len() <= 2048;
    if ok {
        Ok(())
    } else {
        Err("must be a link starting with https://, http:// or tg://".into())
    }
}

/// A plausible email address (the rest is the mail server's business).
pub fn email(value: &str) -> Result<(), String> {
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
        Err("is not a valid email address".into())
    }
}

pub fn password(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < 8 {
        return Err("must be at least 8 characters".into());
    }
    if len > 256 {
        return Err("must be at most 256 characters".into());
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
    }
}
