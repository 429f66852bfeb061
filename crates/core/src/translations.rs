//! Words an organization wrote in more than one language. A rule's answer and question, a
//! menu's text, a button's label, a command's description and reply are written once in
//! the organization's default language, and may be given again per language:
//! `{"ru": {"answer": "…"}}`. A Telegram user sees the words of their language where the
//! organization wrote them, and the default words everywhere else — never a built-in
//! text instead of the organization's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::text::Lang;
use crate::validate::{Invalid, Problem};

/// Per language, per field, a text. Stored as JSON (`jsonb`) beside the default words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Translations(BTreeMap<Lang, BTreeMap<String, String>>);

impl Translations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text of `field` in `lang`, when the organization wrote one.
    pub fn get(&self, lang: Option<Lang>, field: &str) -> Option<&str> {
        self.0
            .get(&lang?)?
            .get(field)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// The text of `field` in `lang`, else `base` (the default language's words).
    pub fn pick<'a>(&'a self, lang: Option<Lang>, field: &str, base: &'a str) -> &'a str {
        self.get(lang, field).unwrap_or(base)
    }

    /// Sets (or, with an empty text, removes) one text.
    pub fn set(&mut self, lang: Lang, field: &str, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            if let Some(fields) = self.0.get_mut(&lang) {
                fields.remove(field);
                if fields.is_empty() {
                    self.0.remove(&lang);
                }
            }
        } else {
            self.0
                .entry(lang)
                .or_default()
                .insert(field.to_string(), text.to_string());
        }
    }

    /// The languages that have at least one text.
    pub fn languages(&self) -> impl Iterator<Item = Lang> + '_ {
        self.0.keys().copied()
    }

    /// Every (language, field, text).
    pub fn iter(&self) -> impl Iterator<Item = (Lang, &str, &str)> + '_ {
        self.0.iter().flat_map(|(lang, fields)| {
            fields
                .iter()
                .map(move |(f, t)| (*lang, f.as_str(), t.as_str()))
        })
    }

    /// The translations as they are stored: texts trimmed, empty ones dropped. Each field
    /// must be one of `limits` (name, most characters); problems are reported as
    /// `{prefix}translations.{lang}.{field}`.
    pub fn cleaned(&self, limits: &[(&str, usize)], prefix: &str, errors: &mut Invalid) -> Self {
        let mut out = Translations::new();
        for (lang, field, text) in self.iter() {
            let name = field_name(prefix, lang, field);
            let Some((_, max)) = limits.iter().find(|(f, _)| *f == field) else {
                errors.add(&name, Problem::new("unknown_field").with("field", field));
                continue;
            };
            let len = text.trim().chars().count();
            if len > *max {
                errors.add(
                    &name,
                    Problem::new("too_long").with("max", *max).with("len", len),
                );
                continue;
            }
            out.set(lang, field, text);
        }
        out
    }

    /// Checks every text of `field` with `check`; problems are reported as
    /// `{prefix}translations.{lang}.{field}`, like [`Translations::cleaned`]'s.
    pub fn check(
        &self,
        field: &str,
        prefix: &str,
        errors: &mut Invalid,
        check: impl Fn(&str) -> Result<(), Problem>,
    ) {
        for (lang, f, text) in self.iter().filter(|(_, f, _)| *f == field) {
            errors.check(&field_name(prefix, lang, f), check(text));
        }
    }
}

/// Where a translated text's problem is reported.
fn field_name(prefix: &str, lang: Lang, field: &str) -> String {
    format!("{prefix}translations.{}.{field}", lang.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_language_where_written_else_the_default_words() {
        let mut t = Translations::new();
        t.set(Lang::Ru, "answer", " Доставка бесплатная ");
        assert_eq!(
            t.pick(Some(Lang::Ru), "answer", "Free"),
            "Доставка бесплатная"
        );
        assert_eq!(t.pick(Some(Lang::En), "answer", "Free"), "Free");
        assert_eq!(t.pick(None, "answer", "Free"), "Free");
        assert_eq!(t.pick(Some(Lang::Ru), "question", "Cost?"), "Cost?");
        t.set(Lang::Ru, "answer", "  ");
        assert!(t.is_empty(), "an emptied text leaves nothing behind");
    }

    #[test]
    fn cleaning_trims_drops_empty_and_refuses_unknown_or_long_fields() {
        let t: Translations = serde_json::from_str(
            r#"{"ru": {"answer": "  да ", "question": "", "colour": "x", "label": "ааааа"}}"#,
        )
        .unwrap();
        let mut errors = Invalid::new();
        let out = t.cleaned(
            &[("answer", 10), ("question", 64), ("label", 4)],
            "",
            &mut errors,
        );
        assert_eq!(out.get(Some(Lang::Ru), "answer"), Some("да"));
        assert_eq!(out.get(Some(Lang::Ru), "question"), None);
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["translations.ru.colour", "translations.ru.label"]);
        assert_eq!(errors.errors[1].problem.code, "too_long");
    }

    #[test]
    fn an_unknown_language_is_refused_when_read() {
        assert!(serde_json::from_str::<Translations>(r#"{"de": {"answer": "Ja"}}"#).is_err());
    }
}
