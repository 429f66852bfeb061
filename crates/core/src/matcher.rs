//! The answer matcher: finds the tenant's answer rule that best fits a user's message and
//! says how sure it is.
//!
//! Texts are normalised (NFKC, case, `ё`→`е`), split into words, stripped of stop words
//! and stemmed (Snowball, Russian or English by script); adjacent stems also form bigram
//! terms. Every example question and the rule's title is a document, weighted by inverse
//! document frequency. A message is compared with each document (cosine; the rule keeps
//! its best) and with each rule's centroid (all its examples together), and unknown words
//! are matched to known ones within one edit so typos still count. The evidence — best
//! example, centroid, the share of the message the rule explains, and the margin over the
//! next rule — is calibrated into a confidence in [0, 1] (a logistic model fitted on the
//! development sets, see docs/matching.md). Admin keywords (any of) raise a rule, required
//! words (all of) gate it, and regular expressions answer outright.

use std::cell::RefCell;
use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

use crate::ids::RuleId;
use crate::text::{is_cyrillic, normalize, words};

/// The confidence a rule gets when one of its keywords appears in the message.
const KEYWORD_SCORE: f32 = 0.8;
/// Weight of a query word that was only matched through typo tolerance.
const TYPO_WEIGHT: f32 = 0.7;
/// Weight of bigram terms relative to single words.
const BIGRAM_WEIGHT: f32 = 0.6;
/// Weight of a word's character trigrams (spread over them), for typos and word forms
/// the stemmer misses.
const CHAR_WEIGHT: f32 = 0.6;
/// How many candidates a match keeps for explanation and suggestions.
pub const TOP_K: usize = 3;
/// Blend of the best example and the centroid in a rule's similarity.
const BEST_SHARE: f32 = 0.2;

/// The logistic calibration: confidence = σ(b + w·[similarity, margin, coverage,
/// ln(1 + words)]) — a longer message that fits is stronger evidence.
const CALIBRATION: [f32; 5] = [-7.87, 3.33, 7.74, 4.35, 1.80];

/// The calibration when the semantic stage is on (the similarity is then the blend of
/// lexical similarity and sentence-vector cosine), fitted the same way on the development
/// sets with all-MiniLM-L6-v2 (`scripts/fit-calibration.py`): the lead over the next rule
/// says most.
const SEMANTIC_CALIBRATION: [f32; 5] = [-4.51, 1.00, 19.48, 2.82, 0.91];
/// Share of the sentence-vector cosine in a rule's similarity when the semantic stage is on
/// (0.5–0.9 tried on the development sets; 0.7 is best across English and Russian).
const SEMANTIC_SHARE: f32 = 0.7;

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The lexical ranking merged with the semantic one: every rule of either gets
/// (1 − share) × lexical + share × cosine (a rule missing from the lexical list has
/// lexical 0; one missing from the semantic list gets its cosine computed).
fn blend(
    lexical: &[(u32, f32, bool)],
    semantic: &[(u32, f32)],
    query: &[f32],
    index: &MatcherIndex,
) -> Vec<(u32, f32, bool)> {
    let cosine = |ri: u32| -> f32 {
        if let Some(&(_, c)) = semantic.iter().find(|s| s.0 == ri) {
            return c;
        }
        let Some(sem) = &index.semantic else {
            return 0.0;
        };
        let row = &sem.centroids[ri as usize * sem.dim..(ri as usize + 1) * sem.dim];
        let qn = norm(query);
        if qn == 0.0 {
            0.0
        } else {
            row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / qn
        }
    };
    let share = SEMANTIC_SHARE;
    let mut out: Vec<(u32, f32, bool)> = lexical
        .iter()
        .map(|&(ri, lex, title)| (ri, (1.0 - share) * lex + share * cosine(ri), title))
        .collect();
    for &(ri, cos) in semantic {
        if !out.iter().any(|o| o.0 == ri) {
            out.push((ri, share * cos, false));
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(TOP_K + 3);
    out
}

/// What the matcher needs to know of a rule.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    pub id: RuleId,
    pub title: String,
    pub examples: Vec<String>,
    /// Any of these words or phrases in a message points to the rule.
    pub keywords: Vec<String>,
    /// All of these words must be in a message for the rule to answer it.
    pub required: Vec<String>,
    /// Regular expressions (case-insensitive); a match answers with the rule.
    pub patterns: Vec<String>,
    pub priority: i32,
}

/// A rule and how well it fits: `score` is the confidence in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub rule_id: RuleId,
    pub score: f32,
    /// Why: "example", "title", "keyword" or "pattern".
    pub via: String,
    /// The evidence behind the confidence (for explanations): similarity to the rule's
    /// examples, lead over the next rule, and share of the message the rule explains.
    #[serde(default)]
    pub similarity: f32,
    #[serde(default)]
    pub margin: f32,
    #[serde(default)]
    pub coverage: f32,
}

/// The ranked candidates for one message, best first (at most [`TOP_K`]).
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

/// The confidence bands of a tenant: answer at or above `answer`, suggest the top rules at
/// or above `suggest`, hand over below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    pub answer: f32,
    pub suggest: f32,
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            answer: 0.5,
            suggest: 0.2,
        }
    }
}

/// What to do with a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Answer(RuleId),
    /// "Did you mean …?" with these rules (best first).
    Suggest(Vec<RuleId>),
    Handover,
}

impl Bands {
    pub fn classify(&self, result: &MatchResult) -> Outcome {
        let Some(best) = result.best() else {
            return Outcome::Handover;
        };
        if best.score >= self.answer {
            return Outcome::Answer(best.rule_id);
        }
        if best.score >= self.suggest {
            return Outcome::Suggest(
                result
                    .candidates
                    .iter()
                    .filter(|c| c.score >= self.suggest / 2.0)
                    .map(|c| c.rule_id)
                    .collect(),
            );
        }
        Outcome::Handover
    }
}

struct Analyzer {
    ru: Stemmer,
    en: Stemmer,
    /// A tenant's synonyms: stem → the stem of its group's first word.
    synonyms: HashMap<String, String>,
    /// Stems of function words (articles, pronouns, auxiliaries, prepositions).
    function: std::collections::HashSet<String>,
}

/// A word of a message: its stem and the normalised word (for typo matching).
struct Word {
    stem: String,
}

impl Analyzer {
    fn new() -> Self {
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
    fn weight(&self, stem: &str) -> f32 {
        if self.function.contains(stem) {
            FUNCTION_WEIGHT
        } else {
            1.0
        }
    }

    fn stem(&self, w: &str) -> String {
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
    fn with_synonyms(mut self, groups: &[String]) -> Self {
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

    fn words(&self, text: &str) -> Vec<Word> {
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
    fn terms(&self, text: &str) -> Vec<String> {
        self.words(text).into_iter().map(|w| w.stem).collect()
    }
}

/// Weight of a function word relative to a content word.
const FUNCTION_WEIGHT: f32 = 0.3;

const FUNCTION_WORDS: &[&str] = &[
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
fn shorter(stem: &str) -> Option<String> {
    let n = stem.chars().count();
    (n > 4).then(|| stem.chars().take(n - 1).collect())
}

fn is_stop_word(w: &str) -> bool {
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

#[derive(Debug)]
struct Doc {
    rule: u32,
    is_title: bool,
}

#[derive(Debug)]
struct RuleEntry {
    id: RuleId,
    priority: i32,
    /// Each keyword as a list of term ids (all must appear in the message).
    keywords: Vec<Vec<u32>>,
    /// Words that must all appear (term ids; empty: no condition).
    required: Vec<u32>,
    patterns: Vec<regex_lite::Regex>,
    /// Every term of the rule's documents, sorted (for coverage).
    terms: Vec<u32>,
}

/// Per-thread scratch space for accumulating scores.
#[derive(Default)]
struct Scratch {
    doc_scores: Vec<f32>,
    rule_scores: Vec<f32>,
    best: Vec<(f32, bool)>,
    touched_docs: Vec<u32>,
    touched_rules: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A tenant's rules, indexed for matching. Immutable; rebuild when rules change.
pub struct MatcherIndex {
    analyzer: Analyzer,
    rules: Vec<RuleEntry>,
    docs: Vec<Doc>,
    vocab: HashMap<String, u32>,
    /// id → term
    words: Vec<String>,
    idf: Vec<f32>,
    /// term → (doc, weight in the doc's unit vector)
    postings: Vec<Vec<(u32, f32)>>,
    /// term → (rule, weight in the rule centroid's unit vector)
    centroid_postings: Vec<Vec<(u32, f32)>>,
    /// Every single-word vocabulary term and each of its one-character deletions → ids.
    deletions: HashMap<String, Vec<u32>>,
    max_idf: f32,
    /// The optional semantic stage: each rule's centroid in a sentence-embedding space.
    semantic: Option<SemanticIndex>,
}

/// Rules' centroids in a sentence-embedding space (unit vectors, row per rule; a rule
/// without vectors has a zero row and never matches semantically).
#[derive(Debug)]
struct SemanticIndex {
    dim: usize,
    centroids: Vec<f32>,
}

/// Something that turns texts into sentence vectors (the optional semantic stage). The
/// model runs outside `core`; this is only its shape, so the matcher stays pure.
pub trait SentenceEncoder: Send + Sync {
    /// One vector per text, all of the same length.
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>>;
    /// A name for the model (logs, explanations).
    fn name(&self) -> &str;
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

/// A weighted term vector: (term id, weight), sorted by id, unit length.
type Vector = Vec<(u32, f32)>;

fn unit(mut v: Vector) -> Vector {
    let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in &mut v {
            *w /= norm;
        }
    }
    v
}

fn bigram(a: &str, b: &str) -> String {
    format!("{a}\u{1}{b}")
}

/// Character trigrams of a stem with boundary marks (`#ab`, `abc`, …, `yz#`).
fn grams(stem: &str) -> Vec<String> {
    let chars: Vec<char> = std::iter::once('#')
        .chain(stem.chars())
        .chain(std::iter::once('#'))
        .collect();
    if chars.len() < 5 {
        return Vec::new();
    }
    chars
        .windows(3)
        .map(|w| {
            let mut g = String::from("\u{2}");
            g.extend(w);
            g
        })
        .collect()
}

impl MatcherIndex {
    pub fn build(rules: &[RuleSpec]) -> Self {
        Self::build_with(rules, &[])
    }

    /// Builds the index with the tenant's synonyms (groups of words, comma-separated).
    pub fn build_with(rules: &[RuleSpec], synonyms: &[String]) -> Self {
        let analyzer = Analyzer::new().with_synonyms(synonyms);
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut term_id = |t: String| -> u32 {
            let next = vocab.len() as u32;
            *vocab.entry(t).or_insert(next)
        };
        // (doc, its terms with raw weights: 1 for words, BIGRAM_WEIGHT for bigrams)
        let mut docs = Vec::new();
        let mut doc_terms: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut entries = Vec::with_capacity(rules.len());
        for (ri, rule) in rules.iter().enumerate() {
            let texts = rule
                .examples
                .iter()
                .map(|e| (e.as_str(), false))
                .chain(std::iter::once((rule.title.as_str(), true)));
            let mut rule_terms = Vec::new();
            for (text, is_title) in texts {
                let stems = analyzer.terms(text);
                let mut terms: Vec<(u32, f32)> = Vec::with_capacity(stems.len() * 2);
                for s in &stems {
                    terms.push((term_id(s.clone()), analyzer.weight(s)));
                }
                for p in stems.windows(2) {
                    terms.push((term_id(bigram(&p[0], &p[1])), BIGRAM_WEIGHT));
                }
                for s in &stems {
                    let g = grams(s);
                    let w = CHAR_WEIGHT / (g.len().max(1) as f32).sqrt();
                    for g in g {
                        terms.push((term_id(g), w));
                    }
                }
                terms.sort_unstable_by_key(|t| t.0);
                terms.dedup_by_key(|t| t.0);
                if !terms.is_empty() {
                    rule_terms.extend(terms.iter().map(|t| t.0));
                    docs.push(Doc {
                        rule: ri as u32,
                        is_title,
                    });
                    doc_terms.push(terms);
                }
            }
            let keywords = rule
                .keywords
                .iter()
                .map(|k| {
                    analyzer
                        .terms(k)
                        .into_iter()
                        .map(&mut term_id)
                        .collect::<Vec<_>>()
                })
                .filter(|k| !k.is_empty())
                .collect();
            let required = rule
                .required
                .iter()
                .flat_map(|k| analyzer.terms(k))
                .map(&mut term_id)
                .collect();
            let patterns = rule
                .patterns
                .iter()
                .filter_map(|p| {
                    regex_lite::RegexBuilder::new(p)
                        .case_insensitive(true)
                        .build()
                        .ok()
                })
                .collect();
            rule_terms.sort_unstable();
            rule_terms.dedup();
            entries.push(RuleEntry {
                id: rule.id,
                priority: rule.priority,
                keywords,
                required,
                patterns,
                terms: rule_terms,
            });
        }

        let mut df = vec![0u32; vocab.len()];
        for terms in &doc_terms {
            for &(t, _) in terms {
                df[t as usize] += 1;
            }
        }
        let n = docs.len().max(1) as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| (1.0 + n / (d.max(1) as f32)).ln())
            .collect();
        let max_idf = (1.0 + n).ln();

        // Terms in the examples of a large share of rules say little and would make every match
        // walk long lists: they count in the vectors' lengths and in coverage, but are
        // not indexed.
        let mut rf = vec![0u32; vocab.len()];
        let mut last_rule = vec![u32::MAX; vocab.len()];
        for (di, terms) in doc_terms.iter().enumerate() {
            for &(t, _) in terms {
                if last_rule[t as usize] != docs[di].rule {
                    last_rule[t as usize] = docs[di].rule;
                    rf[t as usize] += 1;
                }
            }
        }
        let cap = (entries.len() / 20).max(100) as u32;
        let indexed = |t: u32| rf[t as usize] <= cap;
        let mut postings = vec![Vec::new(); vocab.len()];
        let mut centroids: Vec<HashMap<u32, f32>> = vec![HashMap::new(); entries.len()];
        for (di, terms) in doc_terms.into_iter().enumerate() {
            let v = unit(
                terms
                    .into_iter()
                    .map(|(t, w)| (t, w * idf[t as usize]))
                    .collect(),
            );
            let rule = docs[di].rule as usize;
            for &(t, w) in &v {
                *centroids[rule].entry(t).or_insert(0.0) += w;
                if indexed(t) {
                    postings[t as usize].push((di as u32, w));
                }
            }
        }
        let mut centroid_postings = vec![Vec::new(); vocab.len()];
        for (ri, c) in centroids.into_iter().enumerate() {
            let mut v: Vector = c.into_iter().collect();
            v.sort_unstable_by_key(|t| t.0);
            for (t, w) in unit(v) {
                if indexed(t) {
                    centroid_postings[t as usize].push((ri as u32, w));
                }
            }
        }

        let mut deletions: HashMap<String, Vec<u32>> = HashMap::new();
        for (term, &id) in &vocab {
            if term.contains('\u{1}') || term.starts_with('\u{2}') {
                continue;
            }
            for variant in deletion_variants(term) {
                deletions.entry(variant).or_default().push(id);
            }
            deletions.entry(term.clone()).or_default().push(id);
        }

        let mut words = vec![String::new(); vocab.len()];
        for (term, &id) in &vocab {
            words[id as usize] = term.clone();
        }
        Self {
            analyzer,
            rules: entries,
            docs,
            vocab,
            words,
            idf,
            postings,
            centroid_postings,
            deletions,
            max_idf,
            semantic: None,
        }
    }

    /// Adds the semantic stage: `vectors[i]` are the sentence vectors of rule `i`'s
    /// examples (and title), in the order the rules were given to [`Self::build_with`].
    /// Rules without vectors take part lexically only.
    pub fn with_semantics(mut self, vectors: &[Vec<Vec<f32>>]) -> Self {
        let Some(dim) = vectors.iter().flatten().map(|v| v.len()).find(|&d| d > 0) else {
            return self;
        };
        let mut centroids = vec![0.0f32; self.rules.len() * dim];
        for (ri, vs) in vectors.iter().enumerate().take(self.rules.len()) {
            let row = &mut centroids[ri * dim..(ri + 1) * dim];
            for v in vs.iter().filter(|v| v.len() == dim) {
                let n = norm(v);
                if n > 0.0 {
                    for (r, x) in row.iter_mut().zip(v) {
                        *r += x / n;
                    }
                }
            }
            let n = norm(row);
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
        }
        self.semantic = Some(SemanticIndex { dim, centroids });
        self
    }

    /// Whether the semantic stage is on (a query vector is then worth computing).
    pub fn is_semantic(&self) -> bool {
        self.semantic.is_some()
    }

    /// Cosine of the query vector with each rule's semantic centroid, best first (at most
    /// `keep`).
    fn semantic_rank(&self, query: &[f32], keep: usize) -> Vec<(u32, f32)> {
        let Some(sem) = &self.semantic else {
            return Vec::new();
        };
        if query.len() != sem.dim {
            return Vec::new();
        }
        let qn = norm(query);
        if qn == 0.0 {
            return Vec::new();
        }
        let mut all: Vec<(u32, f32)> = sem
            .centroids
            .chunks_exact(sem.dim)
            .enumerate()
            .map(|(ri, row)| {
                (
                    ri as u32,
                    row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / qn,
                )
            })
            .collect();
        if all.len() > keep {
            all.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            all.truncate(keep);
        }
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// A rough size of the index in memory, in bytes.
    pub fn approx_bytes(&self) -> usize {
        let postings: usize = self.postings.iter().map(|p| p.capacity() * 8 + 24).sum();
        let centroids: usize = self
            .centroid_postings
            .iter()
            .map(|p| p.capacity() * 8 + 24)
            .sum();
        let vocab: usize = self.vocab.keys().map(|k| k.len() + 40).sum();
        let deletions: usize = self
            .deletions
            .iter()
            .map(|(k, v)| k.len() + 48 + v.capacity() * 4)
            .sum();
        let rules: usize = self.rules.iter().map(|r| 96 + r.terms.capacity() * 4).sum();
        postings + centroids + vocab + deletions + rules + self.idf.len() * 4 + self.docs.len() * 8
    }

    /// The message's terms as vocabulary ids with weights (typo matches weigh less), and
    /// the total idf mass of the message including words the index does not know.
    fn resolve(&self, stems: &[String]) -> (Vec<(u32, f32)>, Vec<u32>, f32) {
        let mut out: Vec<(u32, f32)> = Vec::new();
        let mut mass = 0.0;
        let push = |id: u32, w: f32, out: &mut Vec<(u32, f32)>| match out
            .iter_mut()
            .find(|(t, _)| *t == id)
        {
            Some(existing) => existing.1 = existing.1.max(w),
            None => out.push((id, w)),
        };
        let mut resolved_stems: Vec<Option<String>> = Vec::with_capacity(stems.len());
        for stem in stems {
            let found = match self.vocab.get(stem) {
                Some(&id) => Some((id, self.analyzer.weight(stem))),
                None if stem.chars().count() >= 4 => self.typo_candidate(stem),
                None => None,
            };
            match found {
                Some((id, w)) => {
                    mass += self.idf[id as usize] * self.analyzer.weight(stem);
                    push(id, w, &mut out);
                    resolved_stems.push(Some(self.words[id as usize].clone()));
                }
                None => {
                    mass += self.max_idf * self.analyzer.weight(stem);
                    resolved_stems.push(None);
                }
            }
        }
        let unigrams = out.iter().map(|&(t, _)| t).collect();
        for stem in stems {
            let g = grams(stem);
            let w = CHAR_WEIGHT / (g.len().max(1) as f32).sqrt();
            for g in g {
                if let Some(&id) = self.vocab.get(&g) {
                    push(id, w, &mut out);
                }
            }
        }
        for pair in resolved_stems.windows(2) {
            if let (Some(a), Some(b)) = (&pair[0], &pair[1]) {
                if let Some(&id) = self.vocab.get(&bigram(a, b)) {
                    push(id, BIGRAM_WEIGHT, &mut out);
                }
            }
        }
        (out, unigrams, mass)
    }

    /// The known word within one edit (insert, delete, substitute) of `term`, preferring
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
        self.find_with(text, None)
    }

    /// Ranks the rules for a message, with the message's sentence vector when the
    /// semantic stage is on: a rule's similarity then blends its lexical similarity with
    /// the cosine of the vectors, calibrated separately.
    pub fn find_with(&self, text: &str, vector: Option<&[f32]>) -> MatchResult {
        let stems = self.analyzer.terms(text);
        let mut result = MatchResult {
            candidates: Vec::new(),
            terms: stems.clone(),
        };
        // Regular expressions answer outright.
        for rule in &self.rules {
            if rule.patterns.iter().any(|p| p.is_match(text)) {
                result.candidates.push(Candidate {
                    rule_id: rule.id,
                    score: 1.0,
                    via: "pattern".into(),
                    similarity: 1.0,
                    margin: 1.0,
                    coverage: 1.0,
                });
                if result.candidates.len() == TOP_K {
                    return result;
                }
            }
        }
        let (query, present, mass) = self.resolve(&stems);
        let semantic = match vector {
            Some(v) => self.semantic_rank(v, TOP_K + 3),
            None => Vec::new(),
        };
        if query.is_empty() && semantic.is_empty() {
            return result;
        }
        let query = unit(
            query
                .into_iter()
                .map(|(t, w)| (t, w * self.idf[t as usize]))
                .collect(),
        );
        let mut ranked = SCRATCH.with(|s| self.rank(&query, &mut s.borrow_mut()));
        let with_semantics = !semantic.is_empty();
        if with_semantics {
            ranked = blend(&ranked, &semantic, vector.unwrap_or_default(), self);
        }

        let all_terms: Vec<u32> = query.iter().map(|&(t, _)| t).collect();
        let query_mass = |rule: &RuleEntry| -> f32 {
            if mass <= 0.0 {
                return 0.0;
            }
            present
                .iter()
                .filter(|t| rule.terms.binary_search(t).is_ok())
                .map(|&t| self.idf[t as usize] * self.analyzer.weight(&self.words[t as usize]))
                .sum::<f32>()
                / mass
        };
        let gated = |rule: &RuleEntry| rule.required.iter().all(|t| all_terms.contains(t));

        // rule, confidence, similarity, margin, coverage, via
        let mut scored: Vec<(u32, f32, f32, f32, f32, &str)> = Vec::new();
        let top_sim = ranked.first().map_or(0.0, |r| r.1);
        for (i, &(ri, sim, title)) in ranked.iter().enumerate() {
            let rule = &self.rules[ri as usize];
            if !gated(rule) {
                continue;
            }
            let next = ranked.get(i + 1).map_or(0.0, |r| r.1);
            let margin = if i == 0 { sim - next } else { sim - top_sim };
            let coverage = query_mass(rule);
            let confidence = if with_semantics {
                calibrate_with(SEMANTIC_CALIBRATION, sim, margin, coverage, stems.len())
            } else {
                calibrate(sim, margin, coverage, stems.len())
            };
            let via = match (title, with_semantics) {
                (true, _) => "title",
                (false, true) => "meaning",
                (false, false) => "example",
            };
            scored.push((ri, confidence, sim, margin, coverage, via));
        }
        for (ri, rule) in self.rules.iter().enumerate() {
            let hit = rule
                .keywords
                .iter()
                .any(|k| k.iter().all(|t| all_terms.contains(t)));
            if hit && gated(rule) {
                match scored.iter_mut().find(|s| s.0 == ri as u32) {
                    Some(s) if s.1 < KEYWORD_SCORE => {
                        s.1 = KEYWORD_SCORE;
                        s.5 = "keyword";
                    }
                    Some(_) => {}
                    None => scored.push((ri as u32, KEYWORD_SCORE, 0.0, 0.0, 0.0, "keyword")),
                }
            }
        }
        scored.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| {
                    self.rules[b.0 as usize]
                        .priority
                        .cmp(&self.rules[a.0 as usize].priority)
                })
                .then_with(|| a.0.cmp(&b.0))
        });
        for (ri, confidence, similarity, margin, coverage, via) in scored {
            if result.candidates.len() == TOP_K {
                break;
            }
            let id = self.rules[ri as usize].id;
            if result.candidates.iter().any(|c| c.rule_id == id) {
                continue;
            }
            result.candidates.push(Candidate {
                rule_id: id,
                score: confidence.clamp(0.0, 1.0),
                via: via.to_string(),
                similarity,
                margin,
                coverage,
            });
        }
        result
    }

    /// The rules by similarity (best example blended with the centroid), best first, at
    /// most a few more than [`TOP_K`] (the runner-up's margin matters).
    fn rank(&self, query: &Vector, s: &mut Scratch) -> Vec<(u32, f32, bool)> {
        if s.doc_scores.len() < self.docs.len() {
            s.doc_scores.resize(self.docs.len(), 0.0);
        }
        if s.rule_scores.len() < self.rules.len() {
            s.rule_scores.resize(self.rules.len(), 0.0);
            s.best.resize(self.rules.len(), (0.0, false));
        }
        for &(t, qw) in query {
            for &(d, w) in &self.postings[t as usize] {
                let slot = &mut s.doc_scores[d as usize];
                if *slot == 0.0 {
                    s.touched_docs.push(d);
                }
                *slot += qw * w;
            }
            for &(r, w) in &self.centroid_postings[t as usize] {
                let slot = &mut s.rule_scores[r as usize];
                if *slot == 0.0 {
                    s.touched_rules.push(r);
                }
                *slot += qw * w;
            }
        }
        for &d in &s.touched_docs {
            let doc = &self.docs[d as usize];
            let score = s.doc_scores[d as usize];
            let best = &mut s.best[doc.rule as usize];
            if score > best.0 {
                *best = (score, doc.is_title);
            }
            s.doc_scores[d as usize] = 0.0;
        }
        s.touched_docs.clear();
        let mut ranked: Vec<(u32, f32, bool)> = s
            .touched_rules
            .iter()
            .map(|&r| {
                let (best, title) = s.best[r as usize];
                let centroid = s.rule_scores[r as usize];
                (r, BEST_SHARE * best + (1.0 - BEST_SHARE) * centroid, title)
            })
            .collect();
        for &r in &s.touched_rules {
            s.rule_scores[r as usize] = 0.0;
            s.best[r as usize] = (0.0, false);
        }
        s.touched_rules.clear();
        let keep = TOP_K + 3;
        if ranked.len() > keep {
            ranked.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            ranked.truncate(keep);
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked
    }
}

/// Groups questions that say nearly the same thing (for the admins' list of what the bot
/// could not answer): greedy, each question joins the first group whose first question is
/// alike (over stems: half of all their words shared, or nearly all of the shorter one's),
/// else starts a group.
/// Returns groups of indexes into `texts`, largest first.
pub fn cluster(texts: &[&str]) -> Vec<Vec<usize>> {
    let analyzer = Analyzer::new();
    let sets: Vec<Vec<String>> = texts
        .iter()
        .map(|t| {
            let mut s = analyzer.terms(t);
            s.sort();
            s.dedup();
            s
        })
        .collect();
    // Alike: half of all their words shared, or nearly all of the shorter one's (at least
    // two words).
    let alike = |a: &[String], b: &[String]| -> bool {
        if a.is_empty() || b.is_empty() {
            return a.is_empty() && b.is_empty();
        }
        let common = a.iter().filter(|t| b.binary_search(t).is_ok()).count();
        let jaccard = common as f32 / (a.len() + b.len() - common) as f32;
        let overlap = common as f32 / a.len().min(b.len()) as f32;
        jaccard >= 0.5 || (common >= 2 && overlap >= 0.8)
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        match groups.iter_mut().find(|g| alike(&sets[g[0]], set)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a[0].cmp(&b[0])));
    groups
}

/// Turns the evidence into a confidence in [0, 1].
fn calibrate(similarity: f32, margin: f32, coverage: f32, words: usize) -> f32 {
    calibrate_with(CALIBRATION, similarity, margin, coverage, words)
}

fn calibrate_with(
    weights: [f32; 5],
    similarity: f32,
    margin: f32,
    coverage: f32,
    words: usize,
) -> f32 {
    let [b, ws, wm, wc, wn] = weights;
    let z = b + ws * similarity + wm * margin + wc * coverage + wn * (1.0 + words as f32).ln();
    1.0 / (1.0 + (-z).exp())
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
            ..RuleSpec::default()
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
    fn an_example_asked_as_written_is_answered_confidently() {
        let (rules, index) = fixture();
        let m = index.find("When are you open?");
        assert_eq!(m.best().unwrap().rule_id, rules[0].id);
        assert!(m.best().unwrap().score > 0.8, "{m:?}");
        assert_eq!(Bands::default().classify(&m), Outcome::Answer(rules[0].id));
    }

    #[test]
    fn russian_word_forms_match_through_stemming() {
        let (rules, index) = fixture();
        let m = index.find("Интернета нет, не работает");
        assert_eq!(m.best().unwrap().rule_id, rules[2].id, "{m:?}");
        assert!(m.best().unwrap().score > 0.5, "{m:?}");
        let m = index.find("доставку сколько стоят?");
        assert_eq!(m.best().unwrap().rule_id, rules[1].id, "{m:?}");
        // ё and case do not matter.
        let m = index.find("ДОСТАВКА, сколько ещё ждать?");
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
    fn required_words_gate_a_rule_and_patterns_answer_outright() {
        let mut rules = fixture().0;
        rules[3].required = vec!["money".into()];
        rules[0].patterns = vec![r"\b(9|nine)\s*(am|:00)".into(), "([".into()];
        let index = MatcherIndex::build(&rules);
        let m = index.find("how do I get a refund");
        assert!(
            m.candidates.iter().all(|c| c.rule_id != rules[3].id),
            "{m:?}"
        );
        let m = index.find("refund my money");
        assert_eq!(m.best().unwrap().rule_id, rules[3].id, "{m:?}");
        let m = index.find("Are you there at 9 AM?");
        let best = m.best().unwrap();
        assert_eq!(
            (best.rule_id, best.via.as_str(), best.score),
            (rules[0].id, "pattern", 1.0)
        );
    }

    #[test]
    fn unrelated_text_is_handed_over() {
        let (_, index) = fixture();
        let m = index.find("can you sing me a song about penguins");
        assert!(m.best().map_or(0.0, |c| c.score) < 0.25, "{m:?}");
        assert_eq!(Bands::default().classify(&m), Outcome::Handover);
        let m = index.find("!!! ???");
        assert!(m.candidates.is_empty());
    }

    #[test]
    fn the_middle_band_suggests() {
        // A message that fits two rules equally well: neither is answered, both offered.
        let (rules, index) = fixture();
        let m = index.find("open money");
        assert!(m.best().unwrap().score < 0.5, "{m:?}");
        let bands = Bands {
            answer: 0.5,
            suggest: 0.05,
        };
        match bands.classify(&m) {
            Outcome::Suggest(ids) => {
                assert!(
                    ids.contains(&rules[0].id) && ids.contains(&rules[3].id),
                    "{m:?}"
                )
            }
            other => panic!("expected a suggestion, got {other:?} for {m:?}"),
        }
    }

    #[test]
    fn candidates_are_ranked_capped_and_explained() {
        let (_, index) = fixture();
        let m = index.find("hours refund internet доставка интернет");
        assert!(m.candidates.len() <= TOP_K);
        for pair in m.candidates.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        assert!(m.terms.contains(&"интернет".to_string()), "{m:?}");
        assert!(m.candidates.iter().all(|c| !c.via.is_empty()));
    }

    #[test]
    fn synonyms_of_the_tenant_count_as_the_same_word() {
        let (rules, _) = fixture();
        let plain = MatcherIndex::build(&rules);
        let m = plain.find("wifi broken");
        assert!(
            m.candidates.iter().all(|c| c.rule_id != rules[2].id),
            "{m:?}"
        );
        let index = MatcherIndex::build_with(&rules, &["интернет, wifi, вайфай".into()]);
        let m = index.find("вайфай не работает");
        assert_eq!(m.best().unwrap().rule_id, rules[2].id, "{m:?}");
        let m = index.find("wifi не работает");
        assert_eq!(m.best().unwrap().rule_id, rules[2].id, "{m:?}");
    }

    #[test]
    fn similar_questions_are_grouped() {
        let texts = [
            "интернет не работает",
            "how do I reset my password",
            "не работает интернет!!!",
            "Интернета нет, не работает",
            "reset password please",
            "something else entirely",
        ];
        let groups = cluster(&texts);
        assert_eq!(groups[0], vec![0, 2, 3], "{groups:?}");
        assert!(groups.contains(&vec![1, 4]), "{groups:?}");
        assert!(groups.contains(&vec![5]), "{groups:?}");
    }

    #[test]
    fn empty_index_matches_nothing() {
        let index = MatcherIndex::build(&[]);
        assert!(index.find("hello there").candidates.is_empty());
    }

    /// A stand-in for a sentence-embedding model: texts about money point one way, texts
    /// about time another, anything else a third.
    struct Topics;

    impl SentenceEncoder for Topics {
        fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
            texts
                .iter()
                .map(|t| {
                    let t = t.to_lowercase();
                    if ["money", "balance", "account", "funds"]
                        .iter()
                        .any(|w| t.contains(w))
                    {
                        vec![1.0, 0.1, 0.0]
                    } else if ["open", "hours", "close"].iter().any(|w| t.contains(w)) {
                        vec![0.0, 1.0, 0.1]
                    } else {
                        vec![0.1, 0.0, 1.0]
                    }
                })
                .collect()
        }
        fn name(&self) -> &str {
            "topics"
        }
    }

    #[test]
    fn the_semantic_stage_finds_paraphrases_without_shared_words() {
        let rules = vec![
            rule(
                "Balance",
                &["what is my balance", "check my account balance"],
                &[],
            ),
            rule("Hours", &["when are you open", "opening hours"], &[]),
        ];
        let lexical = MatcherIndex::build(&rules);
        let query = "how much money do i have";
        assert!(
            lexical.find(query).best().is_none_or(|b| b.score < 0.5),
            "no shared words: lexically nothing fits well"
        );
        let vectors: Vec<Vec<Vec<f32>>> = rules
            .iter()
            .map(|r| Topics.encode(&r.examples.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        let semantic = MatcherIndex::build(&rules).with_semantics(&vectors);
        assert!(semantic.is_semantic() && !lexical.is_semantic());
        let v = Topics.encode(&[query]).pop().unwrap();
        let found = semantic.find_with(query, Some(&v));
        let best = found.best().expect("a candidate");
        assert_eq!(best.rule_id, rules[0].id);
        assert_eq!(best.via, "meaning");
        assert!(best.margin > 0.0);
        // Lexical evidence still counts: the words of the hours rule win for an hours question.
        let q = "what are your opening hours";
        let v = Topics.encode(&[q]).pop().unwrap();
        assert_eq!(
            semantic.find_with(q, Some(&v)).best().unwrap().rule_id,
            rules[1].id
        );
        // A vector of another length is ignored (a model changed under the index).
        assert_eq!(
            semantic
                .find_with(q, Some(&[1.0, 0.0]))
                .best()
                .unwrap()
                .rule_id,
            rules[1].id
        );
        // No vector: the lexical matcher as before.
        assert_eq!(semantic.find(q), lexical.find(q));
    }
}
