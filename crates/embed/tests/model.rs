//! The semantic stage with the real model (all-MiniLM-L6-v2, put in place by
//! `scripts/fetch-model`, which `./test` runs): vectors, and the measured gain on a sample
//! of CLINC150 over the lexical matcher alone (a regression fails the build).

use std::path::PathBuf;

use switchboard_core::eval::{evaluate, Dataset};
use switchboard_core::matcher::{Bands, SentenceEncoder};
use switchboard_embed::Encoder;

fn model() -> Encoder {
    let dir = std::env::var("SWITCHBOARD_TEST_EMBEDDINGS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/all-minilm-l6-v2")
        });
    Encoder::load(&dir).unwrap_or_else(|e| {
        panic!("{e} — run scripts/fetch-model (./test does) or set SWITCHBOARD_TEST_EMBEDDINGS_DIR")
    })
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_are_unit_length_and_paraphrases_are_close() {
    let m = model();
    let v = m.encode(&[
        "how much money do I have left",
        "what is my account balance",
        "when does the shop open",
        "",
    ]);
    assert_eq!(v.len(), 4);
    for x in &v {
        assert_eq!(x.len(), 384);
        assert!((cos(x, x) - 1.0).abs() < 1e-4);
    }
    assert!(
        cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2,
        "{} vs {}",
        cos(&v[0], &v[1]),
        cos(&v[0], &v[2])
    );
    // The cache gives the same vector again.
    let again = m.encode(&["what is my account balance"]);
    assert_eq!(again[0], v[1]);
}

#[test]
fn the_semantic_stage_answers_more_on_public_data_without_more_wrong_answers() {
    let data: Dataset = serde_json::from_str(include_str!(
        "../../../tests/data/matcher-clinc150-sample.en.json"
    ))
    .unwrap();
    let m = model();
    let lexical = evaluate(&data, Some(10), Bands::default(), 2, None, None);
    let semantic = evaluate(&data, Some(10), Bands::default(), 2, None, Some(&m));
    println!("lexical {lexical:?}\nsemantic {semantic:?}");
    assert!(
        semantic.top1_accuracy >= lexical.top1_accuracy + 0.05,
        "{semantic:?}"
    );
    assert!(
        semantic.in_scope_accuracy >= lexical.in_scope_accuracy + 0.05,
        "{semantic:?}"
    );
    assert!(semantic.in_scope_accuracy >= 0.70, "{semantic:?}");
    assert!(semantic.wrong_answer_rate <= 0.10, "{semantic:?}");
    assert!(semantic.oos_recall >= 0.40, "{semantic:?}");
}
