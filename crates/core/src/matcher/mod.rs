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

mod analyzer;
mod find;
mod index;

use analyzer::*;
use index::*;
pub use index::{MatcherIndex, SentenceEncoder};

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

/// How a sentence encoder's cosines enter the matcher: their share in a rule's similarity
/// (the rest is the lexical similarity) and the logistic calibration of the confidence
/// over that blend. Each model has its own, fitted on the development sets
/// (`scripts/fit-calibration.py`), because models spread their cosines differently.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SemanticCalibration {
    pub share: f32,
    pub weights: [f32; 5],
    /// How many examples a rule needs for the cosine of its nearest example to weigh as
    /// much as its centroid's in its semantic similarity (n examples: n / (n + this));
    /// 0: centroids only.
    pub nearest_example_half: f32,
    /// Weight of ln(the tenant's rule count) in the confidence. A lead over the next rule
    /// means less when there are few rules (three rules about different things leave a
    /// wide lead even for a question none covers); 0: the count does not enter.
    pub rules_weight: f32,
    /// The cosine that stands in for the next rule when there is none (an organization
    /// with one rule): what texts on other subjects typically score under this model.
    /// Without it the whole cosine would count as the lead, and the one rule would
    /// answer anything.
    pub lone_rival: f32,
}

impl SemanticCalibration {
    /// all-MiniLM-L6-v2: share 0.7 (0.5–0.9 tried; 0.7 best across English and Russian);
    /// the lead over the next rule says most.
    pub const MINILM: Self = Self {
        share: 0.7,
        weights: [-4.51, 1.00, 19.48, 2.82, 0.91],
        nearest_example_half: 0.0,
        rules_weight: 0.0,
        lone_rival: 0.0,
    };
}

impl Default for SemanticCalibration {
    fn default() -> Self {
        Self::MINILM
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The lexical ranking merged with the semantic one: every rule of either gets
/// (1 − share) × lexical + share × cosine (`share`: the model's calibration) (a rule missing from the lexical list has
/// lexical 0; one missing from the semantic list gets its cosine computed).
fn blend(
    lexical: &[(u32, f32, bool)],
    semantic: &[(u32, f32)],
    query: &[f32],
    index: &MatcherIndex,
    share: f32,
) -> Vec<(u32, f32, bool)> {
    // The query at unit length once, for the rules the semantic list left out.
    let unit = index
        .semantic
        .as_ref()
        .and_then(|sem| Some((sem, sem.unit(query)?)));
    let cosine = |ri: u32| -> f32 {
        if let Some(&(_, c)) = semantic.iter().find(|s| s.0 == ri) {
            return c;
        }
        unit.as_ref()
            .map_or(0.0, |(sem, unit)| sem.similarity(ri as usize, unit))
    };
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
    calibrate_with(CALIBRATION, 0.0, similarity, margin, coverage, words)
}

/// The logistic calibration with `weights`, and `shift` added to the logit (evidence
/// beyond the five, such as the tenant's rule count).
fn calibrate_with(
    weights: [f32; 5],
    shift: f32,
    similarity: f32,
    margin: f32,
    coverage: f32,
    words: usize,
) -> f32 {
    let [b, ws, wm, wc, wn] = weights;
    let z =
        b + shift + ws * similarity + wm * margin + wc * coverage + wn * (1.0 + words as f32).ln();
    1.0 / (1.0 + (-z).exp())
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
        let semantic =
            MatcherIndex::build(&rules).with_semantics(&vectors, SemanticCalibration::default());
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
