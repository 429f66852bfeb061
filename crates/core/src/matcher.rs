//! The answer matcher: finds the tenant's answer rule that best fits a user's message.
//!
//! Texts are normalised, split into words, stripped of stop words and stemmed (Snowball,
//! Russian or English by script). Each example question and each rule title is a document;
//! a message is scored against documents by TF-IDF cosine similarity, a rule's score is its
//! best document's, and admin keywords found in the message raise a rule's score. Unknown
//! words are matched to known ones within one edit, so small typos still count.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

use crate::ids::RuleId;
use crate::text::{is_cyrillic, normalize, words};

/// The score a rule gets when one of its keywords appears in the message.
const KEYWORD_SCORE: f32 = 0.8;
/// Weight of a query word that was only matched through typo tolerance.
const TYPO_WEIGHT: f32 = 0.8;
/// How many candidates a match keeps for explanation and suggestions.
const TOP_K: usize = 3;

/// What the matcher needs to know of a rule.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    pub id: RuleId,
    pub title: String,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub priority: i32,
}

/// A rule and how well it fits, in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub rule_id: RuleId,
    pub score: f32,
    /// Why: "example", "title" or "keyword".
    pub via: String,
}

/// The ranked candidates for one message, best first (at most three).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    pub candidates: Vec<Candidate>,
    /// The message's terms after normalisation and stemming (for explanation).
    pub terms: Vec<String>,
}

impl MatchResult {
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

struct Analyzer {
    ru: Stemmer,
    en: Stemmer,
}

impl Analyzer {
    fn new() -> Self {
        Self {
            ru: Stemmer::create(Algorithm::Russian),
            en: Stemmer::create(Algorithm::English),
        }
    }

    /// The stemmed content words of a text.
    fn terms(&self, text: &str) -> Vec<String> {
        let normalized = normalize(text);
        words(&normalized)
            .filter(|w| !is_stop_word(w))
            .map(|w| {
                if w.chars().any(is_cyrillic) {
                    self.ru.stem(w).into_owned()
                } else if w.chars().all(|c| c.is_ascii_digit()) {
                    w.to_string()
                } else {
                    self.en.stem(w).into_owned()
                }
            })
            .collect()
    }
}

fn is_stop_word(w: &str) -> bool {
    const STOP: &[&str] = &[
        // English
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
        "please",
        "with",
        "from",
        "by",
        "as",
        "we",
        "our",
        "us",
        "there",
        "here",
        "so",
        "just",
        "about",
        "hi",
        "hello",
        // Russian
        "и",
        "в",
        "во",
        "на",
        "с",
        "со",
        "к",
        "ко",
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
        "как",
        "что",
        "так",
        "уже",
        "пожалуйста",
        "здравствуйте",
        "привет",
        "подскажите",
        "скажите",
    ];
    STOP.contains(&w)
}

#[derive(Debug)]
struct Doc {
    rule: u32,
    is_title: bool,
    /// Distinct term ids.
    terms: Vec<u32>,
    /// Euclidean norm of the doc's idf vector.
    norm: f32,
}

#[derive(Debug)]
struct RuleEntry {
    id: RuleId,
    priority: i32,
    /// Each keyword as a list of term ids (all must appear in the message).
    keywords: Vec<Vec<u32>>,
}

/// A tenant's rules, indexed for matching. Immutable; rebuild when rules change.
pub struct MatcherIndex {
    analyzer: Analyzer,
    rules: Vec<RuleEntry>,
    docs: Vec<Doc>,
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    postings: Vec<Vec<u32>>,
    /// Every vocabulary term and each of its one-character deletions → term ids.
    deletions: HashMap<String, Vec<u32>>,
}

impl std::fmt::Debug for MatcherIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatcherIndex")
            .field("rules", &self.rules.len())
            .field("docs", &self.docs.len())
            .field("vocab", &self.vocab.len())
            .finish()
    }
}

impl MatcherIndex {
    pub fn build(rules: &[RuleSpec]) -> Self {
        let analyzer = Analyzer::new();
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let term_id = |t: String, vocab: &mut HashMap<String, u32>| -> u32 {
            let next = vocab.len() as u32;
            *vocab.entry(t).or_insert(next)
        };
        let mut docs = Vec::new();
        let mut entries = Vec::with_capacity(rules.len());
        for (ri, rule) in rules.iter().enumerate() {
            let texts = rule
                .examples
                .iter()
                .map(|e| (e.as_str(), false))
                .chain(std::iter::once((rule.title.as_str(), true)));
            for (text, is_title) in texts {
                let mut terms: Vec<u32> = analyzer
                    .terms(text)
                    .into_iter()
                    .map(|t| term_id(t, &mut vocab))
                    .collect();
                terms.sort_unstable();
                terms.dedup();
                if !terms.is_empty() {
                    docs.push(Doc {
                        rule: ri as u32,
                        is_title,
                        terms,
                        norm: 0.0,
                    });
                }
            }
            let keywords = rule
                .keywords
                .iter()
                .map(|k| {
                    analyzer
                        .terms(k)
                        .into_iter()
                        .map(|t| term_id(t, &mut vocab))
                        .collect::<Vec<_>>()
                })
                .filter(|k| !k.is_empty())
                .collect();
            entries.push(RuleEntry {
                id: rule.id,
                priority: rule.priority,
                keywords,
            });
        }

        let mut df = vec![0u32; vocab.len()];
        let mut postings = vec![Vec::new(); vocab.len()];
        for (di, doc) in docs.iter().enumerate() {
            for &t in &doc.terms {
                df[t as usize] += 1;
                postings[t as usize].push(di as u32);
            }
        }
        let n = docs.len().max(1) as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| (1.0 + n / (d.max(1) as f32)).ln())
            .collect();
        for doc in &mut docs {
            doc.norm = doc
                .terms
                .iter()
                .map(|&t| idf[t as usize].powi(2))
                .sum::<f32>()
                .sqrt();
        }

        let mut deletions: HashMap<String, Vec<u32>> = HashMap::new();
        for (term, &id) in &vocab {
            for variant in deletion_variants(term) {
                deletions.entry(variant).or_default().push(id);
            }
            deletions.entry(term.clone()).or_default().push(id);
        }

        Self {
            analyzer,
            rules: entries,
            docs,
            vocab,
            idf,
            postings,
            deletions,
        }
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Maps message terms to vocabulary ids with weights (1.0 exact, less for typo matches).
    fn resolve_terms(&self, terms: &[String]) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::new();
        for term in terms {
            let resolved = match self.vocab.get(term) {
                Some(&id) => Some((id, 1.0)),
                None if term.chars().count() >= 4 => self.typo_candidate(term),
                None => None,
            };
            if let Some((id, w)) = resolved {
                match out.iter_mut().find(|(t, _)| *t == id) {
                    Some(existing) => existing.1 = existing.1.max(w),
                    None => out.push((id, w)),
                }
            }
        }
        out
    }

    /// The known term within one edit (insert, delete, substitute) of `term`, preferring
    /// the rarest (most informative).
    fn typo_candidate(&self, term: &str) -> Option<(u32, f32)> {
        let mut best: Option<u32> = None;
        let variants = std::iter::once(term.to_string()).chain(deletion_variants(term));
        for v in variants {
            if let Some(ids) = self.deletions.get(&v) {
                for &id in ids {
                    let better = match best {
                        None => true,
                        Some(b) => self.idf[id as usize] > self.idf[b as usize],
                    };
                    if better {
                        best = Some(id);
                    }
                }
            }
        }
        best.map(|id| (id, TYPO_WEIGHT))
    }

    /// Ranks the rules for a message.
    pub fn find(&self, text: &str) -> MatchResult {
        let terms = self.analyzer.terms(text);
        let resolved = self.resolve_terms(&terms);
        let mut result = MatchResult {
            candidates: Vec::new(),
            terms,
        };
        if resolved.is_empty() {
            return result;
        }
        let query_norm = resolved
            .iter()
            .map(|&(t, w)| (self.idf[t as usize] * w).powi(2))
            .sum::<f32>()
            .sqrt();

        // Accumulate dot products per document through the postings.
        let mut dots: HashMap<u32, f32> = HashMap::new();
        for &(t, w) in &resolved {
            let idf = self.idf[t as usize];
            for &d in &self.postings[t as usize] {
                *dots.entry(d).or_insert(0.0) += idf * idf * w;
            }
        }
        let mut per_rule: HashMap<u32, (f32, &'static str)> = HashMap::new();
        for (d, dot) in dots {
            let doc = &self.docs[d as usize];
            let cosine = dot / (query_norm * doc.norm);
            let via = if doc.is_title { "title" } else { "example" };
            let entry = per_rule.entry(doc.rule).or_insert((0.0, via));
            if cosine > entry.0 {
                *entry = (cosine, via);
            }
        }
        let present: Vec<u32> = resolved.iter().map(|&(t, _)| t).collect();
        for (ri, rule) in self.rules.iter().enumerate() {
            let hit = rule
                .keywords
                .iter()
                .any(|k| k.iter().all(|t| present.contains(t)));
            if hit {
                let entry = per_rule.entry(ri as u32).or_insert((0.0, "keyword"));
                if KEYWORD_SCORE > entry.0 {
                    *entry = (KEYWORD_SCORE, "keyword");
                }
            }
        }
        let mut ranked: Vec<(u32, f32, &str)> = per_rule
            .into_iter()
            .map(|(r, (s, via))| (r, s.clamp(0.0, 1.0), via))
            .collect();
        ranked.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| {
                    self.rules[b.0 as usize]
                        .priority
                        .cmp(&self.rules[a.0 as usize].priority)
                })
                .then_with(|| a.0.cmp(&b.0))
        });
        result.candidates = ranked
            .into_iter()
            .take(TOP_K)
            .map(|(r, score, via)| Candidate {
                rule_id: self.rules[r as usize].id,
                score,
                via: via.to_string(),
            })
            .collect();
        result
    }
}

fn deletion_variants(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    if chars.len() < 4 {
        return Vec::new();
    }
    (0..chars.len())
        .map(|skip| {
            chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, c)| *c)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(title: &str, examples: &[&str], keywords: &[&str]) -> RuleSpec {
        RuleSpec {
            id: RuleId::new(),
            title: title.into(),
            examples: examples.iter().map(|s| s.to_string()).collect(),
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            priority: 0,
        }
    }

    fn fixture() -> (Vec<RuleSpec>, MatcherIndex) {
        let rules = vec![
            rule(
                "Opening hours",
                &[
                    "when are you open",
                    "what are your opening hours",
                    "working hours",
                ],
                &[],
            ),
            rule(
                "Доставка",
                &[
                    "сколько стоит доставка",
                    "как долго идет доставка",
                    "где мой заказ",
                ],
                &["курьер"],
            ),
            rule(
                "Интернет",
                &["не работает интернет", "пропал интернет"],
                &[],
            ),
            rule(
                "Refunds",
                &["how do I get a refund", "return my money"],
                &["refund"],
            ),
        ];
        let index = MatcherIndex::build(&rules);
        (rules, index)
    }

    #[test]
    fn exact_example_scores_one() {
        let (rules, index) = fixture();
        let m = index.find("When are you open?");
        assert_eq!(m.best().unwrap().rule_id, rules[0].id);
        assert!(m.best().unwrap().score > 0.99, "{m:?}");
    }

    #[test]
    fn russian_word_forms_match_through_stemming() {
        let (rules, index) = fixture();
        let m = index.find("Интернета нет, не работает");
        assert_eq!(m.best().unwrap().rule_id, rules[2].id, "{m:?}");
        assert!(m.best().unwrap().score > 0.5, "{m:?}");
        let m = index.find("доставку сколько стоят?");
        assert_eq!(m.best().unwrap().rule_id, rules[1].id, "{m:?}");
    }

    #[test]
    fn small_typos_are_tolerated() {
        let (rules, index) = fixture();
        let m = index.find("opning hours");
        assert_eq!(m.best().unwrap().rule_id, rules[0].id, "{m:?}");
        let m = index.find("интернет не работаит");
        assert_eq!(m.best().unwrap().rule_id, rules[2].id, "{m:?}");
    }

    #[test]
    fn keywords_raise_a_rule() {
        let (rules, index) = fixture();
        let m = index.find("когда приедет курьер");
        let best = m.best().unwrap();
        assert_eq!(best.rule_id, rules[1].id);
        assert_eq!(best.via, "keyword");
        assert!((best.score - KEYWORD_SCORE).abs() < 1e-6);
    }

    #[test]
    fn unrelated_text_has_no_strong_candidate() {
        let (_, index) = fixture();
        let m = index.find("can you sing me a song about penguins");
        assert!(m.best().map_or(0.0, |c| c.score) < 0.3, "{m:?}");
        let m = index.find("!!! ???");
        assert!(m.candidates.is_empty());
    }

    #[test]
    fn candidates_are_ranked_and_capped() {
        let (_, index) = fixture();
        let m = index.find("hours refund internet доставка интернет");
        assert!(m.candidates.len() <= TOP_K);
        for pair in m.candidates.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
    }

    #[test]
    fn empty_index_matches_nothing() {
        let index = MatcherIndex::build(&[]);
        assert!(index.find("hello there").candidates.is_empty());
    }
}
