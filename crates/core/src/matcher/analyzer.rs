//! Words into stems: normalised, split, stop words dropped, stemmed by script.

use super::*;

pub(super) struct Analyzer {
    pub(super) ru: Stemmer,
    pub(super) en: Stemmer,
    /// A tenant's synonyms: stem → the stem of its group's first word.
    pub(super) synonyms: HashMap<String, String>,
    /// Stems of function words (articles, pronouns, auxiliaries, prepositions).
    pub(super) function: std::collections::HashSet<String>,
}

/// A word of a message: its stem and the normalised word (for typo matching).
pub(super) struct Word {
    pub(super) stem: String,
}

impl Analyzer {
    pub(super) fn new() -> Self {
        let mut a = Self {
            ru: Stemmer::create(Algorithm::Russian),
            en: Stemmer::create(Algorithm::English),
            synonyms: HashMap::new(),
            function: Default::default(),
        };
        a.function = FUNCTION_WORDS.iter().map(|w| a.stem(w)).collect();
        a
    }

    /// How much a word counts: function words little, everything else fully. In a small
    /// tenant a word like "is" is rare among the examples, hence "informative" to the
    /// inverse document frequency; this keeps it from deciding a match.
    pub(super) fn weight(&self, stem: &str) -> f32 {
        if self.function.contains(stem) {
            FUNCTION_WEIGHT
        } else {
            1.0
        }
    }

    pub(super) fn stem(&self, w: &str) -> String {
        if w.chars().any(is_cyrillic) {
            self.ru.stem(w).into_owned()
        } else if w.chars().all(|c| c.is_ascii_digit()) {
            w.to_string()
        } else {
            self.en.stem(w).into_owned()
        }
    }

    /// Learns groups of words that mean the same (each group: words separated by commas;
    /// single words).
    pub(super) fn with_synonyms(mut self, groups: &[String]) -> Self {
        for group in groups {
            let stems: Vec<String> = group
                .split([',', ';'])
                .map(normalize)
                .filter(|w| !w.is_empty() && !w.contains(' '))
                .map(|w| self.stem(&w))
                .collect();
            if let Some((first, rest)) = stems.split_first() {
                for other in rest {
                    if other != first {
                        self.synonyms.insert(other.clone(), first.clone());
                        // Stemmers treat borrowed words unevenly ("вайфай" → "вайфа",
                        // "вайфая" → "вайф"): the stem without its last letter counts too.
                        if let Some(short) = shorter(other) {
                            self.synonyms.entry(short).or_insert_with(|| first.clone());
                        }
                    }
                }
            }
        }
        self
    }

    pub(super) fn words(&self, text: &str) -> Vec<Word> {
        let normalized = normalize(text);
        words(&normalized)
            .filter(|w| !is_stop_word(w))
            .map(|w| {
                let stem = self.stem(w);
                let stem = self
                    .synonyms
                    .get(&stem)
                    .or_else(|| shorter(&stem).and_then(|s| self.synonyms.get(&s)))
                    .cloned()
                    .unwrap_or(stem);
                Word { stem }
            })
            .collect()
    }

    /// The stemmed content words of a text.
    pub(super) fn terms(&self, text: &str) -> Vec<String> {
        self.words(text).into_iter().map(|w| w.stem).collect()
    }
}

/// Weight of a function word relative to a content word.
pub(super) const FUNCTION_WEIGHT: f32 = 0.3;

pub(super) const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "am",
    "was",
    "were",
    "be",
    "been",
    "to",
    "of",
    "in",
    "on",
    "at",
    "for",
    "and",
    "or",
    "i",
    "me",
    "my",
    "you",
    "your",
    "it",
    "its",
    "this",
    "that",
    "do",
    "does",
    "did",
    "can",
    "could",
    "would",
    "will",
    "with",
    "from",
    "by",
    "as",
    "we",
    "our",
    "us",
    "there",
    "so",
    "just",
    "about",
    "have",
    "has",
    "had",
    "some",
    "any",
    "и",
    "в",
    "во",
    "на",
    "с",
    "со",
    "к",
    "по",
    "о",
    "об",
    "от",
    "до",
    "за",
    "из",
    "у",
    "же",
    "ли",
    "бы",
    "а",
    "но",
    "или",
    "то",
    "это",
    "я",
    "мне",
    "меня",
    "мой",
    "моя",
    "мое",
    "мои",
    "вы",
    "вас",
    "вам",
    "ваш",
    "ты",
    "тебя",
    "он",
    "она",
    "оно",
    "они",
    "мы",
    "нас",
    "нам",
    "так",
    "уже",
    "есть",
    "был",
    "была",
    "было",
    "будет",
    "для",
    "при",
    "про",
];

/// Greetings and politeness: they say nothing about what a message is about, yet a tenant
/// with few rules would find them rare, hence "informative". Other function words are
/// left to the inverse document frequency (removing them costs accuracy: "how" and "what"
/// tell intents apart).
/// A stem without its last letter, when at least four letters remain.
pub(super) fn shorter(stem: &str) -> Option<String> {
    let n = stem.chars().count();
    (n > 4).then(|| stem.chars().take(n - 1).collect())
}

pub(super) fn is_stop_word(w: &str) -> bool {
    const STOP: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "please",
        "pls",
        "thanks",
        "thank",
        "thx",
        "ok",
        "okay",
        "здравствуйте",
        "здравствуй",
        "привет",
        "добрый",
        "день",
        "вечер",
        "утро",
        "пожалуйста",
        "спасибо",
        "благодарю",
        "ок",
    ];
    STOP.contains(&w)
}
