//! Measuring the matcher on labelled data: each intent of a dataset becomes a rule (its
//! examples the rule's example questions), every query goes through the same matching and
//! banding the bot uses, and the outcome is scored.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ids::RuleId;
use crate::matcher::{Bands, MatcherIndex, Outcome, RuleSpec, SentenceEncoder};

/// A dataset as in `../shared/data/matcher/` (see docs/matching.md).
#[derive(Clone, Debug, Deserialize)]
pub struct Dataset {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub language: String,
    pub intents: Vec<Intent>,
    pub queries: Vec<Query>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Intent {
    pub id: String,
    #[serde(default)]
    pub answer: String,
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Query {
    pub text: String,
    /// `None`: no rule covers it; the right outcome is a hand-over.
    pub intent: Option<String>,
}

/// The numbers of one evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub dataset: String,
    pub intents: usize,
    pub examples: usize,
    pub in_scope_queries: usize,
    pub oos_queries: usize,
    /// In-scope queries answered with the right rule.
    pub in_scope_accuracy: f64,
    /// In-scope queries whose right rule was answered or among the suggestions.
    pub suggestion_hit_rate: f64,
    /// Out-of-scope queries not answered (suggested or handed over).
    pub oos_recall: f64,
    /// Queries answered with a wrong rule, over all queries.
    pub wrong_answer_rate: f64,
    /// Top-1 rule right, whatever the confidence (the ranking alone).
    pub top1_accuracy: f64,
    /// Time to match one query, its encoding included when the semantic stage runs (µs).
    pub p50_us: f64,
    pub p99_us: f64,
    pub build_ms: f64,
    /// The sentence-embedding model of the semantic stage, when one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// Time to encode one query with it (µs), part of the match time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_p99_us: Option<f64>,
}

/// One query's evidence, for fitting the calibration (`eval-matcher --dump`).
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub similarity: f32,
    pub margin: f32,
    pub coverage: f32,
    pub confidence: f32,
    /// How many words the message had (after analysis).
    pub terms: usize,
    /// The top rule is the right one.
    pub right: bool,
    pub oos: bool,
    /// How many rules the index has.
    pub rules: usize,
}

/// Builds the index from the dataset's intents (the first `k` examples of each when given)
/// and runs every query. `sample` keeps every n-th query (for quick runs).
pub fn evaluate(
    data: &Dataset,
    k: Option<usize>,
    bands: Bands,
    every_nth: usize,
    mut evidence: Option<&mut Vec<Evidence>>,
    encoder: Option<&dyn SentenceEncoder>,
) -> Report {
    let ids: Vec<RuleId> = data.intents.iter().map(|_| RuleId::new()).collect();
    let specs: Vec<RuleSpec> = data
        .intents
        .iter()
        .zip(&ids)
        .map(|(intent, id)| RuleSpec {
            id: *id,
            title: String::new(),
            examples: intent
                .examples
                .iter()
                .take(k.unwrap_or(usize::MAX))
                .cloned()
                .collect(),
            ..RuleSpec::default()
        })
        .collect();
    let examples = specs.iter().map(|s| s.examples.len()).sum();
    let started = Instant::now();
    let mut index = MatcherIndex::build(&specs);
    if let Some(enc) = encoder {
        let vectors: Vec<Vec<Vec<f32>>> = specs
            .iter()
            .map(|s| enc.encode(&s.examples.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        index = index.with_semantics(&vectors, enc.calibration());
    }
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let queries: Vec<&Query> = data.queries.iter().step_by(every_nth.max(1)).collect();
    let mut encode_times = Vec::new();
    let query_vectors: Vec<Option<Vec<f32>>> = match encoder {
        Some(enc) => queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                let v = enc.encode(&[q.text.as_str()]).pop();
                encode_times.push(t.elapsed().as_secs_f64() * 1e6);
                v
            })
            .collect(),
        None => vec![None; queries.len()],
    };
    let rule_of = |intent: &str| -> Option<RuleId> {
        data.intents
            .iter()
            .position(|i| i.id == intent)
            .map(|p| ids[p])
    };

    let (mut in_scope, mut oos) = (0usize, 0usize);
    let (mut right, mut suggested_right, mut oos_kept, mut wrong, mut top1) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut times = Vec::with_capacity(data.queries.len());
    for (i, (q, vector)) in queries.iter().zip(&query_vectors).enumerate() {
        let expected = q.intent.as_deref().and_then(rule_of);
        let t = Instant::now();
        let result = index.find_with(&q.text, vector.as_deref());
        let outcome = bands.classify(&result);
        times.push(t.elapsed().as_secs_f64() * 1e6 + encode_times.get(i).copied().unwrap_or(0.0));
        let best = result.best();
        if let Some(ev) = evidence.as_deref_mut() {
            if let Some(b) = best {
                ev.push(Evidence {
                    similarity: b.similarity,
                    margin: b.margin,
                    coverage: b.coverage,
                    confidence: b.score,
                    terms: result.terms.len(),
                    right: Some(b.rule_id) == expected,
                    oos: expected.is_none(),
                    rules: data.intents.len(),
                });
            }
        }
        match expected {
            Some(rule) => {
                in_scope += 1;
                if best.map(|b| b.rule_id) == Some(rule) {
                    top1 += 1;
                }
                match &outcome {
                    Outcome::Answer(r) if *r == rule => {
                        right += 1;
                        suggested_right += 1;
                    }
                    Outcome::Answer(_) => wrong += 1,
                    Outcome::Suggest(rs) if rs.contains(&rule) => suggested_right += 1,
                    _ => {}
                }
            }
            None => {
                oos += 1;
                match outcome {
                    Outcome::Answer(_) => wrong += 1,
                    _ => oos_kept += 1,
                }
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Report {
        dataset: data.name.clone(),
        intents: data.intents.len(),
        examples,
        in_scope_queries: in_scope,
        oos_queries: oos,
        in_scope_accuracy: ratio(right, in_scope),
        suggestion_hit_rate: ratio(suggested_right, in_scope),
        oos_recall: ratio(oos_kept, oos),
        wrong_answer_rate: ratio(wrong, in_scope + oos),
        top1_accuracy: ratio(top1, in_scope),
        p50_us: percentile(&mut times, 0.5),
        p99_us: percentile(&mut times, 0.99),
        build_ms,
        encoder: encoder.map(|e| e.name().to_string()),
        encode_p50_us: encoder.map(|_| percentile(&mut encode_times, 0.5)),
        encode_p99_us: encoder.map(|_| percentile(&mut encode_times, 0.99)),
    }
}

/// The `p` percentile of `times` (sorted here); 0 when empty.
fn percentile(times: &mut [f64], p: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    if times.is_empty() {
        return 0.0;
    }
    times[((times.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_dataset_is_scored() {
        let data: Dataset = serde_json::from_value(serde_json::json!({
            "name": "tiny",
            "intents": [
                {"id": "hours", "examples": ["when are you open", "opening hours"]},
                {"id": "refund", "examples": ["i want my money back", "how do i get a refund"]}
            ],
            "queries": [
                {"text": "what are your opening hours", "intent": "hours"},
                {"text": "refund please", "intent": "refund"},
                {"text": "tell me a joke about penguins", "intent": null}
            ]
        }))
        .unwrap();
        let r = evaluate(&data, None, Bands::default(), 1, None, None);
        assert_eq!((r.in_scope_queries, r.oos_queries), (2, 1));
        assert_eq!(r.in_scope_accuracy, 1.0, "{r:?}");
        assert_eq!(r.oos_recall, 1.0, "{r:?}");
        assert_eq!(r.wrong_answer_rate, 0.0);
        let r = evaluate(&data, Some(1), Bands::default(), 1, None, None);
        assert_eq!(r.examples, 2);
    }
}
