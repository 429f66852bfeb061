//! Text utilities shared by the matcher and the bot: normalisation, tokens, language
//! guess, and splitting long replies to Telegram's message limit.

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Telegram's limit for a message text, in UTF-16 code units.
pub const TELEGRAM_TEXT_LIMIT: usize = 4096;

/// A language the bot understands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    /// Every language the bot and the panel speak.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub fn code(&self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// Maps a Telegram `language_code` (e.g. "ru", "en-US", "uk") to a supported language.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ru" | "uk" | "be" | "kk" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Unicode-normalises (NFKC), lower-cases, folds `ё` to `е` and turns everything that is
/// not a letter or digit into single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        let c = match c {
            'ё' => 'е',
            other => other,
        };
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Words of a normalised text.
pub fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.unicode_words()
}

/// Guesses the language of a text from its letters (Cyrillic → Russian, Latin → English).
pub fn detect_language(text: &str) -> Option<Lang> {
    let (mut cyr, mut lat) = (0usize, 0usize);
    for c in text.chars() {
        if is_cyrillic(c) {
            cyr += 1;
        } else if c.is_ascii_alphabetic() {
            lat += 1;
        }
    }
    if cyr == 0 && lat == 0 {
        None
    } else if cyr >= lat {
        Some(Lang::Ru)
    } else {
        Some(Lang::En)
    }
}

pub fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}' | '\u{0500}'..='\u{052F}')
}

/// Length as Telegram counts it (UTF-16 code units).
pub fn telegram_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits a reply into parts of at most `limit` UTF-16 units, preferring paragraph, line,
/// sentence and word boundaries, so that no part is cut mid-word unless a word is longer
/// than the limit.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    assert!(limit > 0);
    let mut parts = Vec::new();
    let mut rest = text;
    while telegram_len(rest) > limit {
        // The longest prefix (in chars) that fits.
        let mut units = 0;
        let mut fit_end = 0;
        for (i, c) in rest.char_indices() {
            units += c.len_utf16();
            if units > limit {
                break;
            }
            fit_end = i + c.len_utf8();
        }
        let window = &rest[..fit_end];
        let cut = ["\n\n", "\n", ". ", "! ", "? ", " "]
            .iter()
            .filter_map(|sep| window.rfind(sep).map(|p| p + sep.len()))
            .find(|&p| p > fit_end / 2)
            .unwrap_or(fit_end);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim_end();
        if !head.is_empty() {
            parts.push(head.to_string());
        }
        rest = tail.trim_start();
    }
    if parts.is_empty() {
        parts.push(rest.to_string());
    } else if !rest.trim_end().is_empty() {
        parts.push(rest.trim_end().to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_folds_case_yo_punctuation_and_width() {
        assert_eq!(normalize("  Ёлка, ЁЖИК!!  "), "елка ежик");
        assert_eq!(normalize("Hello,World…  ok?"), "hello world ok");
        assert_eq!(normalize("ＦＵＬＬ width"), "full width");
        assert_eq!(normalize("где мой заказ? 🙂"), "где мой заказ");
        assert_eq!(normalize("!!!"), "");
    }

    #[test]
    fn languages_are_guessed_from_letters() {
        assert_eq!(detect_language("Где мой заказ"), Some(Lang::Ru));
        assert_eq!(detect_language("where is my order"), Some(Lang::En));
        assert_eq!(detect_language("Wi-Fi не работает"), Some(Lang::Ru));
        assert_eq!(detect_language("12345 ?!"), None);
        assert_eq!(Lang::from_code("en-US"), Some(Lang::En));
        assert_eq!(Lang::from_code("ru"), Some(Lang::Ru));
        assert_eq!(Lang::from_code("de"), None);
    }

    #[test]
    fn short_texts_are_not_split() {
        assert_eq!(split_message("hi", 4096), vec!["hi".to_string()]);
        assert_eq!(split_message("", 4096), vec![String::new()]);
    }

    #[test]
    fn long_texts_split_on_boundaries_within_the_limit() {
        let para = "Слово ".repeat(500); // 3000 chars
        let text = format!("{para}\n\n{para}");
        let parts = split_message(&text, 4096);
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(telegram_len(p) <= 4096);
            assert!(!p.starts_with(' ') && !p.ends_with(' '));
        }
        assert_eq!(parts[0].trim(), para.trim());
    }

    #[test]
    fn splitting_counts_utf16_units_and_cuts_unbreakable_words() {
        let emoji = "😀".repeat(3000); // 6000 UTF-16 units, no spaces
        let parts = split_message(&emoji, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| telegram_len(p) <= 4096));
        assert_eq!(parts.concat(), emoji);
    }
}
