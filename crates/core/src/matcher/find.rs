//! Finding the best rule for a message: lexical ranking, the semantic blend and the
//! calibrated confidence.

use super::*;

impl MatcherIndex {
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
        // The model's calibration when its ranking takes part (a semantic index exists
        // whenever `semantic` is not empty).
        let calibration = self
            .semantic
            .as_ref()
            .filter(|_| !semantic.is_empty())
            .map(|s| s.calibration);
        let with_semantics = calibration.is_some();
        if let Some(c) = calibration {
            ranked = blend(
                &ranked,
                &semantic,
                vector.unwrap_or_default(),
                self,
                c.share,
            );
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
        let lone_rival = calibration.map_or(0.0, |c| c.lone_rival);
        // The organization's rule count as evidence: the same for every candidate.
        let z_rules = calibration.map_or(0.0, |c| {
            c.rules_weight * (self.rules.len().max(1) as f32).ln()
        });
        for (i, &(ri, sim, title)) in ranked.iter().enumerate() {
            let rule = &self.rules[ri as usize];
            if !gated(rule) {
                continue;
            }
            let next = ranked.get(i + 1).map_or(lone_rival, |r| r.1);
            let margin = if i == 0 { sim - next } else { sim - top_sim };
            let coverage = query_mass(rule);
            let confidence = if let Some(c) = calibration {
                calibrate_with(c.weights, z_rules, sim, margin, coverage, stems.len())
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
    /// Ranks the rules for a message.
    pub(super) fn rank(&self, query: &Vector, s: &mut Scratch) -> Vec<(u32, f32, bool)> {
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
