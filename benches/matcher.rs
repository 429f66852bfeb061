//! The matcher at the size of a large tenant: 10,000 rules × 10 example questions.
//!
//! `cargo bench --bench matcher [-- --rules 10000 --examples 10 --queries 20000]`
//! (under `cargo test` it runs a small smoke version)
//!
//! Texts are generated from a Zipf-distributed vocabulary of 30,000 pseudo-words (so some
//! words are everywhere and most are rare, as in real questions); queries are examples
//! with a word dropped, a typo, word order changed, or unrelated words (out of scope).
//! Prints index build time, the index's approximate memory, and match latency
//! percentiles on one core.

mod common;
use common::arg;

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_core::matcher::{MatcherIndex, RuleSpec};
use switchboard_core::RuleId;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes --bench; under `cargo test` (an unoptimised build) a small run
    // only checks that the benchmark works.
    let full = common::full_run();
    let rules_n = arg("--rules", if full { 10_000 } else { 500 });
    let examples_n = arg("--examples", 10);
    let queries_n = arg("--queries", if full { 20_000 } else { 1_000 });
    let mut rng = StdRng::seed_from_u64(7);
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "ba", "po", "le", "an", "or", "en",
        "is", "tra", "pre", "con", "ment", "ing", "ex", "str", "ol", "ur", "ay",
    ];
    let vocab: Vec<String> = (0..30_000)
        .map(|_| {
            let n = rng.gen_range(2..=4);
            (0..n)
                .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
                .collect()
        })
        .collect();
    // Zipf-like: index = floor(N^u) - 1 skews toward small indexes.
    let word = |rng: &mut StdRng| -> String {
        let u: f64 = rng.gen();
        let i = ((vocab.len() as f64).powf(u) as usize).saturating_sub(1);
        vocab[i.min(vocab.len() - 1)].clone()
    };
    let rules: Vec<RuleSpec> = (0..rules_n)
        .map(|r| {
            // Each rule has a few topic words its examples share.
            let topic: Vec<String> = (0..3).map(|_| word(&mut rng)).collect();
            RuleSpec {
                id: RuleId::new(),
                title: format!("rule {r} {}", topic[0]),
                examples: (0..examples_n)
                    .map(|_| {
                        let mut words: Vec<String> =
                            (0..rng.gen_range(3..7)).map(|_| word(&mut rng)).collect();
                        words.push(topic[rng.gen_range(0..3)].clone());
                        words.push(topic[rng.gen_range(0..3)].clone());
                        words.join(" ")
                    })
                    .collect(),
                ..RuleSpec::default()
            }
        })
        .collect();

    let started = Instant::now();
    let index = MatcherIndex::build(&rules);
    let build = started.elapsed();

    let queries: Vec<String> = (0..queries_n)
        .map(|i| {
            if i % 5 == 4 {
                return (0..rng.gen_range(3..9))
                    .map(|_| word(&mut rng))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            let rule = &rules[rng.gen_range(0..rules.len())];
            let mut words: Vec<String> = rule.examples[rng.gen_range(0..rule.examples.len())]
                .split(' ')
                .map(String::from)
                .collect();
            match i % 4 {
                0 => {
                    words.remove(rng.gen_range(0..words.len()));
                }
                1 => {
                    let at = rng.gen_range(0..words.len());
                    let w = &mut words[at];
                    if w.len() > 4 {
                        w.remove(2);
                    }
                }
                2 => words.reverse(),
                _ => words.push(word(&mut rng)),
            }
            words.join(" ")
        })
        .collect();
    // Warm up the per-thread scratch space.
    for q in queries.iter().take(100) {
        std::hint::black_box(index.find(q));
    }
    let mut times: Vec<f64> = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        std::hint::black_box(index.find(q));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "matcher: {rules_n} rules × {examples_n} examples, {} queries (one core)",
        queries.len()
    );
    println!("  index build {:.0} ms", build.as_secs_f64() * 1000.0);
    println!(
        "  index memory ≈ {:.1} MB",
        index.approx_bytes() as f64 / 1_048_576.0
    );
    println!(
        "  match latency p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        p(0.5),
        p(0.9),
        p(0.99),
        times[times.len() - 1]
    );
}
