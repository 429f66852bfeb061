//! The index of a tenant's rules: documents, inverse document frequencies, centroids,
//! typo variants and, optionally, sentence vectors.

use super::*;

#[derive(Debug)]
pub(super) struct Doc {
    pub(super) rule: u32,
    pub(super) is_title: bool,
}

#[derive(Debug)]
pub(super) struct RuleEntry {
    pub(super) id: RuleId,
    pub(super) priority: i32,
    /// Each keyword as a list of term ids (all must appear in the message).
    pub(super) keywords: Vec<Vec<u32>>,
    /// Words that must all appear (term ids; empty: no condition).
    pub(super) required: Vec<u32>,
    pub(super) patterns: Vec<regex_lite::Regex>,
    /// Every term of the rule's documents, sorted (for coverage).
    pub(super) terms: Vec<u32>,
}

/// Per-thread scratch space for accumulating scores.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) doc_scores: Vec<f32>,
    pub(super) rule_scores: Vec<f32>,
    pub(super) best: Vec<(f32, bool)>,
    pub(super) touched_docs: Vec<u32>,
    pub(super) touched_rules: Vec<u32>,
}

thread_local! {
    pub(super) static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A tenant's rules, indexed for matching. Immutable; rebuild when rules change.
pub struct MatcherIndex {
    pub(super) analyzer: Analyzer,
    pub(super) rules: Vec<RuleEntry>,
    pub(super) docs: Vec<Doc>,
    pub(super) vocab: HashMap<String, u32>,
    /// id → term
    pub(super) words: Vec<String>,
    pub(super) idf: Vec<f32>,
    /// term → (doc, weight in the doc's unit vector)
    pub(super) postings: Vec<Vec<(u32, f32)>>,
    /// term → (rule, weight in the rule centroid's unit vector)
    pub(super) centroid_postings: Vec<Vec<(u32, f32)>>,
    /// Every single-word vocabulary term and each of its one-character deletions → ids.
    pub(super) deletions: HashMap<String, Vec<u32>>,
    pub(super) max_idf: f32,
    /// The optional semantic stage: each rule's centroid in a sentence-embedding space.
    pub(super) semantic: Option<SemanticIndex>,
}

/// Rules' centroids in a sentence-embedding space (unit vectors, row per rule; a rule
/// without vectors has a zero row and never matches semantically).
#[derive(Debug)]
pub(super) struct SemanticIndex {
    pub(super) dim: usize,
    pub(super) centroids: Vec<f32>,
    /// Every example's unit vector, rule after rule (kept only when the calibration gives
    /// the nearest example a say).
    pub(super) examples: Vec<f32>,
    /// Each rule's examples in `examples`: `example_ends[ri - 1]..example_ends[ri]`.
    pub(super) example_ends: Vec<u32>,
    pub(super) calibration: super::SemanticCalibration,
}

impl SemanticIndex {
    /// The query vector at unit length, or `None` if it cannot be compared (another
    /// length than the index's vectors, or zero).
    pub(super) fn unit(&self, query: &[f32]) -> Option<Vec<f32>> {
        let n = norm(query);
        (query.len() == self.dim && n > 0.0).then(|| query.iter().map(|x| x / n).collect())
    }

    /// A rule's semantic similarity to a unit query vector: the cosine with its centroid,
    /// blended with the cosine of its nearest example, whose share grows with the rule's
    /// examples: n / (n + `nearest_example_half`). A few examples are best summed up by
    /// their mean; many, phrased many ways, are not only their average (Banking77 with ~100
    /// per intent: 84% with centroids, 91% with the nearest example weighing 0.7).
    pub(super) fn similarity(&self, ri: usize, query: &[f32]) -> f32 {
        let dot = |row: &[f32]| row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
        let centroid = dot(&self.centroids[ri * self.dim..(ri + 1) * self.dim]);
        let half = self.calibration.nearest_example_half;
        if half <= 0.0 || self.example_ends.is_empty() {
            return centroid;
        }
        let start = if ri == 0 {
            0
        } else {
            self.example_ends[ri - 1] as usize
        };
        let end = self.example_ends[ri] as usize;
        let n = (end - start) as f32;
        let share = n / (n + half);
        let nearest = self.examples[start * self.dim..end * self.dim]
            .chunks_exact(self.dim)
            .map(dot)
            .fold(f32::NEG_INFINITY, f32::max);
        if nearest.is_finite() {
            (1.0 - share) * centroid + share * nearest
        } else {
            centroid
        }
    }
}

/// Something that turns texts into sentence vectors (the optional semantic stage). The
/// model runs outside `core`; this is only its shape, so the matcher stays pure.
pub trait SentenceEncoder: Send + Sync {
    /// One vector per text, all of the same length.
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>>;
    /// A name for the model (logs, explanations).
    fn name(&self) -> &str;
    /// How its cosines are weighed and calibrated (see [`super::SemanticCalibration`]).
    fn calibration(&self) -> super::SemanticCalibration {
        super::SemanticCalibration::default()
    }
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
pub(super) type Vector = Vec<(u32, f32)>;

pub(super) fn unit(mut v: Vector) -> Vector {
    let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in &mut v {
            *w /= norm;
        }
    }
    v
}

pub(super) fn bigram(a: &str, b: &str) -> String {
    format!("{a}\u{1}{b}")
}

/// Character trigrams of a stem with boundary marks (`#ab`, `abc`, …, `yz#`).
pub(super) fn grams(stem: &str) -> Vec<String> {
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
    pub fn with_semantics(
        mut self,
        vectors: &[Vec<Vec<f32>>],
        calibration: super::SemanticCalibration,
    ) -> Self {
        let Some(dim) = vectors.iter().flatten().map(|v| v.len()).find(|&d| d > 0) else {
            return self;
        };
        let mut centroids = vec![0.0f32; self.rules.len() * dim];
        let keep_examples = calibration.nearest_example_half > 0.0;
        let mut examples = Vec::new();
        let mut example_ends = Vec::new();
        for ri in 0..self.rules.len() {
            let vs = vectors.get(ri).map_or(&[][..], Vec::as_slice);
            let row = &mut centroids[ri * dim..(ri + 1) * dim];
            for v in vs.iter().filter(|v| v.len() == dim) {
                let n = norm(v);
                if n > 0.0 {
                    for (r, x) in row.iter_mut().zip(v) {
                        *r += x / n;
                    }
                    if keep_examples {
                        examples.extend(v.iter().map(|x| x / n));
                    }
                }
            }
            if keep_examples {
                example_ends.push((examples.len() / dim) as u32);
            }
            let n = norm(row);
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
        }
        self.semantic = Some(SemanticIndex {
            dim,
            centroids,
            examples,
            example_ends,
            calibration,
        });
        self
    }

    /// Whether the semantic stage is on (a query vector is then worth computing).
    pub fn is_semantic(&self) -> bool {
        self.semantic.is_some()
    }

    /// Cosine of the query vector with each rule's semantic centroid, best first (at most
    /// `keep`).
    pub(super) fn semantic_rank(&self, query: &[f32], keep: usize) -> Vec<(u32, f32)> {
        let Some((sem, unit)) = self
            .semantic
            .as_ref()
            .and_then(|sem| Some((sem, sem.unit(query)?)))
        else {
            return Vec::new();
        };
        let mut all: Vec<(u32, f32)> = (0..self.rules.len())
            .map(|ri| (ri as u32, sem.similarity(ri, &unit)))
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
    pub(super) fn resolve(&self, stems: &[String]) -> (Vec<(u32, f32)>, Vec<u32>, f32) {
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
    pub(super) fn typo_candidate(&self, term: &str) -> Option<(u32, f32)> {
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
}

pub(super) fn deletion_variants(term: &str) -> Vec<String> {
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
