//! The optional semantic stage of the matcher: sentence vectors from a small BERT-family
//! sentence-embedding model (e.g. all-MiniLM-L6-v2) run on the CPU with candle. The model
//! is a directory with `config.json`, `model.safetensors` and `tokenizer.json` (a WordPiece
//! vocabulary), installed from a package registry — nothing is downloaded at run time.
//! Vectors are the mean of the last layer over the tokens, normalised.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use parking_lot::Mutex;
use switchboard_core::matcher::SentenceEncoder;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} is not a model configuration: {1}")]
    Config(String, serde_json::Error),
    #[error("{0} has no WordPiece vocabulary (model.vocab)")]
    Vocabulary(String),
    #[error("the model could not be loaded: {0}")]
    Model(#[from] candle_core::Error),
    #[error("not a model file: {0}")]
    Format(String),
}

pub mod e5;

/// Loads the model in `dir`: multilingual-e5-small (`e5-small-q4.bin`) if it is there,
/// else a BERT-family model (`config.json`, `model.safetensors`, `tokenizer.json`).
pub fn load(dir: &Path) -> Result<Box<dyn SentenceEncoder>, EmbedError> {
    if dir.join(e5::FILE).is_file() {
        Ok(Box::new(e5::E5::load(dir)?))
    } else {
        Ok(Box::new(Encoder::load(dir)?))
    }
}

/// Vectors of texts seen before, by text (rule examples are encoded again on every index
/// rebuild; a message seen twice is encoded once). Emptied when it passes 200,000 texts.
#[derive(Default)]
pub(crate) struct VectorCache(Mutex<HashMap<String, Vec<f32>>>, Lanes);

/// Threads that run forward passes, one pass each at a time. candle hands each
/// element-wise operation to rayon; from a thread outside rayon's pool, every one of them
/// (hundreds per text) wakes a pool thread and sleeps until it is done — measured, a
/// quarter of a short message's encoding went to those two context switches. Inside a
/// pool of one thread the operations run inline, so a pass costs one hand-over and runs
/// on one core (the callers decide how many run at once: at most one per core).
#[derive(Default)]
struct Lanes(Mutex<Vec<rayon::ThreadPool>>);

impl Lanes {
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let idle = self.0.lock().pop();
        let lane = idle.or_else(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "encoder".into())
                .build()
                .ok()
        });
        match lane {
            Some(lane) => {
                let out = lane.install(f);
                self.0.lock().push(lane);
                out
            }
            None => f(),
        }
    }
}

impl VectorCache {
    /// The vectors of `texts`: cached ones as they are, the others from `forward`, in
    /// batches of [`BATCH`] texts of similar length. A failed batch leaves its texts
    /// without vectors (empty): the matcher then uses its lexical stage alone for them.
    pub(crate) fn encode<F>(&self, texts: &[&str], forward: F) -> Vec<Vec<f32>>
    where
        F: Fn(&[&str]) -> Result<Vec<Vec<f32>>, candle_core::Error> + Sync,
    {
        let mut out: Vec<Option<Vec<f32>>> = {
            let cache = self.0.lock();
            texts.iter().map(|t| cache.get(*t).cloned()).collect()
        };
        let mut order: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        // Similar lengths together: less padding per batch.
        order.sort_by_key(|&i| texts[i].len());
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            match self.1.run(|| forward(&batch)) {
                Ok(vectors) => {
                    let mut cache = self.0.lock();
                    if cache.len() > 200_000 {
                        cache.clear();
                    }
                    for (&i, v) in chunk.iter().zip(vectors) {
                        cache.insert(texts[i].to_string(), v.clone());
                        out[i] = Some(v);
                    }
                }
                Err(e) => eprintln!("sentence encoder failed: {e}"),
            }
        }
        out.into_iter().map(Option::unwrap_or_default).collect()
    }
}

/// Longest input in tokens (longer messages are cut; questions are short).
const MAX_TOKENS: usize = 128;
/// Texts encoded together in one forward pass.
const BATCH: usize = 32;

/// BERT's uncased WordPiece: lower case, accents stripped, split at white space and
/// punctuation, then greedy longest-match sub-words (`##` continues a word).
struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

impl WordPiece {
    fn from_tokenizer_json(path: &Path) -> Result<Self, EmbedError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| EmbedError::Io(name.clone(), e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| EmbedError::Config(name.clone(), e))?;
        let vocab: HashMap<String, u32> = json["model"]["vocab"]
            .as_object()
            .ok_or_else(|| EmbedError::Vocabulary(name.clone()))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
            .collect();
        let id = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| EmbedError::Vocabulary(name.clone()))
        };
        Ok(WordPiece {
            unk: id("[UNK]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            vocab,
        })
    }

    fn words(text: &str) -> Vec<String> {
        let folded: String = text
            .to_lowercase()
            .nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect();
        let mut words = Vec::new();
        let mut current = String::new();
        for c in folded.chars() {
            if c.is_whitespace() || c.is_control() {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            } else if is_punctuation(c) {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        words
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.cls];
        for word in Self::words(text) {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() > 100 {
                ids.push(self.unk);
                continue;
            }
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while start < end {
                    let piece: String = chars[start..end].iter().collect();
                    let piece = if start > 0 {
                        format!("##{piece}")
                    } else {
                        piece
                    };
                    if let Some(&id) = self.vocab.get(&piece) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => {
                        pieces.push(id);
                        start = end;
                    }
                    None => {
                        pieces = vec![self.unk];
                        break;
                    }
                }
            }
            ids.extend(pieces);
        }
        ids.truncate(MAX_TOKENS - 1);
        ids.push(self.sep);
        ids
    }
}

/// A loaded model. Encoding runs on the calling thread (CPU-bound: call it from a
/// blocking context in async code).
pub struct Encoder {
    model: BertModel,
    tokenizer: WordPiece,
    device: Device,
    name: String,
    cache: VectorCache,
}

impl Encoder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let name = config_path.display().to_string();
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(&config_path).map_err(|e| EmbedError::Io(name.clone(), e))?,
        )
        .map_err(|e| EmbedError::Config(name, e))?;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // Read, not memory-mapped: no unsafe code (the model is ~90 MB).
        let bytes = std::fs::read(&weights)
            .map_err(|e| EmbedError::Io(weights.display().to_string(), e))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        let tokenizer = WordPiece::from_tokenizer_json(&dir.join("tokenizer.json"))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(Encoder {
            model,
            tokenizer,
            device,
            name,
            cache: VectorCache::default(),
        })
    }

    fn forward(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, candle_core::Error> {
        let encoded: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        let width = encoded.iter().map(Vec::len).max().unwrap_or(2);
        let mut ids = Vec::with_capacity(texts.len() * width);
        let mut mask = Vec::with_capacity(texts.len() * width);
        for e in &encoded {
            ids.extend(e.iter().copied());
            ids.extend(std::iter::repeat_n(0u32, width - e.len()));
            mask.extend(std::iter::repeat_n(1u32, e.len()));
            mask.extend(std::iter::repeat_n(0u32, width - e.len()));
        }
        let ids = Tensor::from_vec(ids, (texts.len(), width), &self.device)?;
        let mask = Tensor::from_vec(mask, (texts.len(), width), &self.device)?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&weights)?.sum(1)?;
        let mean = summed.broadcast_div(&weights.sum(1)?)?;
        let rows: Vec<Vec<f32>> = mean.to_vec2()?;
        Ok(rows
            .into_iter()
            .map(|mut v| {
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if n > 0.0 {
                    v.iter_mut().for_each(|x| *x /= n);
                }
                v
            })
            .collect())
    }
}

impl SentenceEncoder for Encoder {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.cache.encode(texts, |batch| self.forward(batch))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_split_at_punctuation() {
        assert_eq!(
            WordPiece::words("Where's my  CAFÉ-order?"),
            ["where", "'", "s", "my", "cafe", "-", "order", "?"]
        );
    }

    #[test]
    fn wordpiece_takes_the_longest_known_pieces() {
        let vocab: HashMap<String, u32> =
            ["[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "aff"]
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect();
        let wp = WordPiece {
            vocab,
            unk: 0,
            cls: 1,
            sep: 2,
        };
        assert_eq!(wp.encode("unaffable"), [1, 3, 4, 5, 2]);
        assert_eq!(wp.encode("xyz unaffable"), [1, 0, 3, 4, 5, 2]);
    }
}
