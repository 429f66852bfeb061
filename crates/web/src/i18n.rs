//! Interface languages: one message catalogue per language (`locales/*.json`, flat keys),
//! with `{name}` placeholders and plural forms (`key.one`, `key.few`, `key.many`,
//! `key.other`) chosen by each language's rules.

use std::collections::HashMap;

use serde_json::Value;

/// A language of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum UiLang {
    En,
    Ru,
}

impl UiLang {
    pub const ALL: [UiLang; 2] = [UiLang::En, UiLang::Ru];

    pub fn code(&self) -> &'static str {
        match self {
            UiLang::En => "en",
            UiLang::Ru => "ru",
        }
    }

    pub fn parse(code: &str) -> Option<UiLang> {
        match code
            .split(['-', '_'])
            .next()?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "en" => Some(UiLang::En),
            "ru" | "uk" | "be" | "kk" => Some(UiLang::Ru),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<UiLang> {
        let mut langs: Vec<(f32, UiLang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let lang = UiLang::parse(it.next()?)?;
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        langs.sort_by(|a, b| b.0.total_cmp(&a.0));
        langs.first().map(|(_, l)| *l)
    }

    /// Plural category of `n` in this language.
    fn plural(&self, n: i64) -> &'static str {
        let n = n.unsigned_abs();
        match self {
            UiLang::En => {
                if n == 1 {
                    "one"
                } else {
                    "other"
                }
            }
            UiLang::Ru => {
                let (m10, m100) = (n % 10, n % 100);
                if m10 == 1 && m100 != 11 {
                    "one"
                } else if (2..=4).contains(&m10) && !(12..=14).contains(&m100) {
                    "few"
                } else {
                    "many"
                }
            }
        }
    }
}

pub struct Catalogs {
    by_lang: HashMap<UiLang, HashMap<String, String>>,
}

fn load(text: &str) -> HashMap<String, String> {
    let value: Value = serde_json::from_str(text).expect("a locale catalogue is valid JSON");
    value
        .as_object()
        .expect("a locale catalogue is an object")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .expect("catalogue values are strings")
                    .to_string(),
            )
        })
        .collect()
}

impl Catalogs {
    pub fn embedded() -> Self {
        let mut by_lang = HashMap::new();
        by_lang.insert(UiLang::En, load(include_str!("../../../locales/en.json")));
        by_lang.insert(UiLang::Ru, load(include_str!("../../../locales/ru.json")));
        Self { by_lang }
    }

    pub fn keys(&self, lang: UiLang) -> impl Iterator<Item = &String> {
        self.by_lang[&lang].keys()
    }

    /// True when the catalogues have `key` (in `lang`, or in English).
    pub fn has(&self, lang: UiLang, key: &str) -> bool {
        self.lookup(lang, key).is_some()
    }

    fn lookup(&self, lang: UiLang, key: &str) -> Option<&str> {
        self.by_lang
            .get(&lang)
            .and_then(|c| c.get(key))
            .or_else(|| self.by_lang[&UiLang::En].get(key))
            .map(String::as_str)
    }

    /// The message `key` in `lang`, with `{name}` placeholders filled from `args`; a
    /// numeric `n` argument selects the plural form.
    pub fn t(&self, lang: UiLang, key: &str, args: &[(&str, String)]) -> String {
        let n = args
            .iter()
            .find(|(k, _)| *k == "n")
            .and_then(|(_, v)| v.parse::<i64>().ok());
        let template = n
            .and_then(|n| {
                self.lookup(lang, &format!("{key}.{}", lang.plural(n)))
                    .or_else(|| self.lookup(lang, &format!("{key}.other")))
            })
            .or_else(|| self.lookup(lang, key))
            .unwrap_or(key);
        let mut out = template.to_string();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_plurals_follow_the_rules() {
        let l = UiLang::Ru;
        assert_eq!(l.plural(1), "one");
        assert_eq!(l.plural(21), "one");
        assert_eq!(l.plural(11), "many");
        assert_eq!(l.plural(2), "few");
        assert_eq!(l.plural(24), "few");
        assert_eq!(l.plural(12), "many");
        assert_eq!(l.plural(5), "many");
        assert_eq!(l.plural(0), "many");
        assert_eq!(UiLang::En.plural(1), "one");
        assert_eq!(UiLang::En.plural(2), "other");
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            UiLang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Some(UiLang::Ru)
        );
        assert_eq!(
            UiLang::from_accept_language("de;q=1.0, en;q=0.5"),
            Some(UiLang::En)
        );
        assert_eq!(
            UiLang::from_accept_language("en;q=0.2, ru;q=0.7"),
            Some(UiLang::Ru)
        );
        assert_eq!(UiLang::from_accept_language("fr"), None);
    }

    /// Every problem code the crates can give (`Problem::coded("…"`, `Problem::new("…"`)
    /// has its words in the catalogues (`err.<code>`), so a page never shows an English
    /// message to a reader of another language.
    #[test]
    fn every_problem_code_is_translated() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let c = Catalogs::embedded();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut codes = std::collections::BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for call in ["Problem::coded(", "Problem::new("] {
                for (at, _) in text.match_indices(call) {
                    let rest = text[at + call.len()..].trim_start();
                    if let Some(quoted) = rest.strip_prefix('"') {
                        let code = &quoted[..quoted.find('"').unwrap()];
                        // Only codes: this test's own text and comments quote other things.
                        let is_code = !code.is_empty()
                            && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                        if is_code {
                            codes.insert(code.to_string());
                        }
                    }
                }
            }
        }
        assert!(codes.len() > 50, "found only {codes:?}");
        for lang in [UiLang::En, UiLang::Ru] {
            let missing: Vec<_> = codes
                .iter()
                .filter(|code| !c.has(lang, &format!("err.{code}")))
                .collect();
            assert!(
                missing.is_empty(),
                "{lang:?}: no err.<code> for {missing:?}"
            );
        }
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let c = Catalogs::embedded();
        let mut en: Vec<&String> = c.keys(UiLang::En).collect();
        let mut ru: Vec<&String> = c.keys(UiLang::Ru).collect();
        en.sort();
        ru.sort();
        let missing_ru: Vec<_> = en
            .iter()
            .filter(|k| {
                !ru.contains(k)
                    && !k.ends_with(".few")
                    && !k.ends_with(".many")
                    && !k.ends_with(".other")
                    && !k.ends_with(".one")
            })
            .collect();
        let missing_en: Vec<_> = ru
            .iter()
            .filter(|k| {
                !en.contains(k)
                    && !k.ends_with(".few")
                    && !k.ends_with(".many")
                    && !k.ends_with(".other")
                    && !k.ends_with(".one")
            })
            .collect();
        assert!(missing_ru.is_empty(), "missing in ru.json: {missing_ru:?}");
        assert!(missing_en.is_empty(), "missing in en.json: {missing_en:?}");
    }

    #[test]
    fn every_key_used_in_templates_exists() {
        let c = Catalogs::embedded();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut missing = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let uses = text
                    .match_indices("t('")
                    .map(|(i, _)| (i, '\''))
                    .chain(text.match_indices("t(\"").map(|(i, _)| (i, '"')));
                for (i, quote) in uses {
                    // `input('…')` and friends end in "t(" too: only a standalone t( counts.
                    let before = text[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let rest = &text[i + 3..];
                    let key = &rest[..rest.find(quote).unwrap()];
                    // Keys built at render time ('role.' ~ r) are checked by their pages' tests.
                    if key.ends_with('.') {
                        continue;
                    }
                    for lang in UiLang::ALL {
                        let known = c.by_lang[&lang].contains_key(key)
                            || c.by_lang[&lang]
                                .keys()
                                .any(|k| k.starts_with(&format!("{key}.")));
                        if !known {
                            missing.push(format!("{} {key} ({})", path.display(), lang.code()));
                        }
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from the catalogues:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn placeholders_and_plurals_are_filled() {
        let c = Catalogs::embedded();
        let s = c.t(UiLang::Ru, "test.messages", &[("n", "3".into())]);
        assert_eq!(s, "3 сообщения");
        let s = c.t(UiLang::En, "test.messages", &[("n", "1".into())]);
        assert_eq!(s, "1 message");
        assert_eq!(c.t(UiLang::En, "no.such.key", &[]), "no.such.key");
    }
}
