//! Text ↔ token ids for the model-facing sequences (SPEC §3).
//!
//! The domain tokenizer is a Hugging Face `tokenizer.json` built deterministically from the
//! templates' names and the fixed phrases of the problem and trace grammars: a word-level
//! vocabulary over pieces that keep their leading space (so decoding is exact), one token per
//! digit, and the special tokens `[PAD] [EOS] <question> </question> <solution> </solution>
//! <answer> </answer>` with ids 0–7 (`[UNK]` is 8). Any other `tokenizer.json` (for example a
//! byte-level BPE) can be loaded instead with [`Tokenizer::from_file`]. Encoding and decoding go
//! through the `tokenizers` crate, so ids agree with Python's `tokenizers.Tokenizer.from_file`.

mod count;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::json;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use crate::template::TemplateSet;

/// Special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 8] = [
    "[PAD]",
    "[EOS]",
    "<question>",
    "</question>",
    "<solution>",
    "</solution>",
    "<answer>",
    "</answer>",
];
pub const PAD_ID: u32 = 0;
pub const EOS_ID: u32 = 1;
pub const UNK: &str = "[UNK]";

/// Pieces: an optional leading white-space character, then a word, one digit, or one
/// punctuation / symbol character; runs of white space stand alone.
pub const PIECE_REGEX: &str = r"\s?[^\s\d\p{P}\p{S}]+|\s?\d|\s?[\p{P}\p{S}]|\s+";

/// The fixed text of the problem, question and trace grammars (SPEC §1, §3).
const PHRASES: &[&str] = &[
    "The number of in the total number of equals plus times the sum of and the difference between",
    "exists, and its number is greater than 0.",
    "What is the total number of? How many does have?",
    "Define as; so = + - * / ( ) x X",
    "The question is difficult, so we use equations to solve it.",
    "we don't know its value yet but will find it out later.",
    "We know, so we have and we solve it through the following steps: Simplifying the equation:",
    "Move all terms to one side: Isolate the term with x: Divide both sides by: Solution: Answer:",
    ". , ; : ? ! = + - * / ( ) < > ' \"",
];

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: cannot load tokenizer: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: cannot write tokenizer: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tokenizer: {0}")]
    Encode(String),
}

/// A loaded tokenizer (the domain one or any Hugging Face `tokenizer.json`).
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    json: String,
    /// Built by [`Tokenizer::domain`], so [`Tokenizer::count`] may skip encoding.
    domain: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

/// The `tokenizer.json` document for a vocabulary (specials first, then `[UNK]`, then pieces).
fn document(pieces: &BTreeSet<String>) -> serde_json::Value {
    let added: Vec<serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .chain(std::iter::once(&UNK))
        .enumerate()
        .map(|(i, t)| {
            // Only [PAD], [EOS] and [UNK] are special: Hugging Face decoders drop special
            // tokens under `skip_special_tokens=True` (TRL decodes completions that way), and
            // the verifier needs the `<answer>` tags. The tags stay added tokens, never split.
            let special = t.starts_with('[');
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": special})
        })
        .collect();
    let mut vocab = serde_json::Map::new();
    for (i, t) in SPECIAL_TOKENS
        .iter()
        .chain(std::iter::once(&UNK))
        .enumerate()
    {
        vocab.insert(t.to_string(), json!(i));
    }
    for p in pieces {
        let id = vocab.len();
        vocab.entry(p.clone()).or_insert(json!(id));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": PIECE_REGEX}, "behavior": "Isolated", "invert": false},
        "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK},
    })
}

fn pieces_of(pre: &impl PreTokenizer, text: &str, out: &mut BTreeSet<String>) {
    let mut s = PreTokenizedString::from(text);
    pre.pre_tokenize(&mut s)
        .expect("the piece regex always splits");
    for (piece, _, _) in s.get_splits(OffsetReferential::Original, OffsetType::Byte) {
        let word = piece.trim_start();
        if word.is_empty() {
            out.insert(piece.to_string());
        } else {
            // Every piece may appear after a space or not (start of text, after a tag).
            out.insert(word.to_string());
            out.insert(format!(" {word}"));
        }
    }
}

impl Tokenizer {
    /// The domain tokenizer for these templates; the same templates always give the same file.
    pub fn domain(templates: &TemplateSet) -> Tokenizer {
        let empty = document(&BTreeSet::new()).to_string();
        let base = tokenizers::Tokenizer::from_str(&empty).expect("the empty document loads");
        let pre = base
            .get_pre_tokenizer()
            .expect("document has a pre-tokenizer");
        let mut pieces = BTreeSet::new();
        for p in PHRASES {
            pieces_of(pre, p, &mut pieces);
        }
        for c in ('A'..='Z').chain('a'..='z').chain('0'..='9') {
            pieces_of(pre, &c.to_string(), &mut pieces);
        }
        for id in templates.ids() {
            let t = templates.get(id).expect("listed id");
            pieces_of(pre, &t.category, &mut pieces);
            for g in t.location_groups.iter().chain(&t.item_groups) {
                for n in &g.names {
                    pieces_of(pre, n, &mut pieces);
                }
            }
        }
        for ws in [" ", "  ", "\n"] {
            pieces.insert(ws.to_string());
        }
        let json = serde_json::to_string_pretty(&document(&pieces)).expect("document serialises");
        let inner = tokenizers::Tokenizer::from_str(&json).expect("the domain document loads");
        Tokenizer {
            inner,
            json,
            domain: true,
        }
    }

    /// Load any Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Tokenizer, TokenizerError> {
        let err = |message: String| TokenizerError::Load {
            path: path.to_path_buf(),
            message,
        };
        let json = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let inner = tokenizers::Tokenizer::from_str(&json).map_err(|e| err(e.to_string()))?;
        Ok(Tokenizer {
            inner,
            json,
            domain: false,
        })
    }

    /// Write the `tokenizer.json` this tokenizer was built or loaded from.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        // Atomic: a full disk or a kill never leaves a truncated tokenizer.json behind.
        crate::fs::write_atomic(path, format!("{}\n", self.json.trim_end()).as_bytes())
            .map_err(|(path, source)| TokenizerError::Write { path, source })
    }

    /// The `tokenizer.json` text.
    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` (special tokens in the text are recognised; nothing is added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// How many ids `encode(text)` gives; for the domain tokenizer without encoding (a scan
    /// about a hundred times faster, see `count.rs`).
    pub fn count(&self, text: &str) -> Result<usize, TokenizerError> {
        match self.domain {
            true => Ok(count::domain_count(text)),
            false => Ok(self.encode(text)?.len()),
        }
    }

    /// Text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Id of a token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composer::{compose_seeded, Mode};
    use crate::render::Rendered;

    #[test]
    fn domain_tokenizer_round_trips_every_template_without_unknowns() {
        let set = TemplateSet::builtin();
        let tok = Tokenizer::domain(&set);
        assert_eq!(tok.token_id("[PAD]"), Some(PAD_ID));
        assert_eq!(tok.token_id("[EOS]"), Some(EOS_ID));
        assert_eq!(tok.token_id("</answer>"), Some(7));
        let unk = tok.token_id(UNK).unwrap();
        assert!(tok.vocab_size() < 600, "{}", tok.vocab_size());
        for tid in ["zoo", "school", "festival"] {
            let t = set.get(tid).unwrap();
            for mode in Mode::ALL {
                for op in [1, 5, 12, 20, 30] {
                    let p = compose_seeded(t, op, mode, op as u64).unwrap();
                    let r = Rendered::of(t, &p);
                    let text = format!("{}{}", r.prompt, r.completion);
                    let ids = tok.encode(&text).unwrap();
                    assert!(!ids.contains(&unk), "unknown piece in {text}");
                    assert_eq!(tok.decode(&ids).unwrap(), text);
                    // Digits are one token each.
                    let digit_tokens = ids
                        .iter()
                        .filter(|&&i| {
                            tok.decode(&[i])
                                .unwrap()
                                .trim_start()
                                .starts_with(|c: char| c.is_ascii_digit())
                        })
                        .count();
                    assert_eq!(
                        digit_tokens,
                        text.matches(|c: char| c.is_ascii_digit()).count()
                    );
                }
            }
        }
        // Deterministic: the same templates give the same file.
        assert_eq!(Tokenizer::domain(&set).json(), tok.json());
        let ids = tok.encode("so K = 120.").unwrap();
        let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i]).unwrap()).collect();
        assert_eq!(pieces, ["so", " K", " =", " 1", "2", "0", "."]);
    }

    #[test]
    fn exported_tags_survive_skip_special_tokens_decoding() {
        // TRL decodes completions with skip_special_tokens=True: the answer tags must stay.
        let tok = Tokenizer::domain(&TemplateSet::builtin());
        let ids = tok
            .encode(" </solution> <answer> 12 </answer>[EOS]")
            .unwrap();
        let kept = tok.inner.decode(&ids, true).unwrap();
        assert!(
            kept.contains("<answer>") && kept.contains("</answer>"),
            "{kept}"
        );
        assert!(!kept.contains("[EOS]"), "{kept}");
    }

    #[test]
    fn saved_file_loads_back_and_bad_files_are_errors() {
        let set = TemplateSet::builtin();
        let tok = Tokenizer::domain(&set);
        let dir = std::env::temp_dir().join(format!("dagmath-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        tok.save(&path).unwrap();
        let back = Tokenizer::from_file(&path).unwrap();
        let text =
            "<question> The number of adult owl in South Zoo equals 3. </question> <solution>";
        assert_eq!(back.encode(text).unwrap(), tok.encode(text).unwrap());
        std::fs::write(&path, "{ not json").unwrap();
        let e = Tokenizer::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_foreign_byte_level_bpe_file_loads() {
        let bpe = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,
            "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
            "post_processor":null,
            "decoder":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
            "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,
                     "end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,
                     "vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4},"merges":["a b","Ġ ab"]}}"#;
        let dir = std::env::temp_dir().join(format!("dagmath-bpe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, bpe).unwrap();
        let tok = Tokenizer::from_file(&path).unwrap();
        assert_eq!(tok.encode("ab ab").unwrap(), [2, 4]);
        assert_eq!(tok.decode(&[2, 4]).unwrap(), "ab ab");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
