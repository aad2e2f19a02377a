//! The training data pipeline: streams Parquet shards of chosen splits, draws documents from a
//! (context, op) token-budget mixture, renders `prompt + completion + [EOS]`, packs tokens into
//! fixed-length sequences and shuffles them in blocks, all deterministically.
//!
//! Supervised fine-tuning ([`Packing`], `train sft`) reads the same streams with a loss mask
//! that follows the tokens: the prompt (encoded alone, as RL and `eval` encode it) is masked,
//! the completion and its `[EOS]` are not. Packed, the documents are cut into rows exactly as
//! above; padded, each row is one document.
//!
//! Memory stays bounded whatever the dataset size: each mixture entry holds one window of at
//! most [`WINDOW_ROWS`] rows, and the shuffle holds one block of sequences. The [`Cursor`]
//! (stream positions, tokens per entry and the token carry at the start of the current block,
//! plus the position in the block) is all a checkpoint needs to continue exactly.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

mod error;
mod mix;

pub use self::error::DataError;
pub use self::mix::MixEntry;
use self::mix::{resolve_mix, Filter};
use crate::dataset::reader::{for_each_training_row, Dataset};
use crate::tokenizer::Tokenizer;
use crate::train::config::Packing;

/// Rows read from a shard at a time, per mixture entry.
pub const WINDOW_ROWS: usize = 1024;

/// Which data to train on and how to cut it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A dataset written by `dagmath generate`.
    pub dir: PathBuf,
    /// Splits to train on (their rows are streamed in shard order).
    #[serde(default = "default_splits")]
    pub splits: Vec<String>,
    /// Held-out split for the periodic evaluation loss (none: no evaluation).
    #[serde(default)]
    pub eval_split: Option<String>,
    /// Tokens per training sequence (inputs; each sequence holds one more token for the target).
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
    /// Sequences shuffled together.
    #[serde(default = "default_shuffle_block")]
    pub shuffle_block: usize,
    /// Token-budget mixture over (context, op); empty means the splits as written.
    #[serde(default)]
    pub mix: Vec<MixEntry>,
}

fn default_splits() -> Vec<String> {
    vec!["train".into()]
}
fn default_seq_len() -> usize {
    512
}
fn default_shuffle_block() -> usize {
    256
}

/// Position of one entry's stream: pass number, shard file, next row in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPos {
    pub epoch: u64,
    pub file: usize,
    pub row: u64,
}

/// Everything needed to continue the pipeline exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub block: u64,
    pub pos: usize,
    pub start: Snapshot,
}

/// Pipeline state at the start of a block. The SFT fields are left out of `state.json` when
/// empty, so pre-/mid-training checkpoints are as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub streams: Vec<StreamPos>,
    pub tokens: Vec<u64>,
    pub carry: Vec<u32>,
    /// SFT: the loss mask of `carry`'s tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry_mask: Vec<bool>,
    /// SFT, padded: documents skipped so far for being longer than a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One training row: `seq_len + 1` tokens (at most that many in padded SFT), and in SFT which
/// of them are trained on as targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    /// SFT: whether each token counts in the loss (the completion and its `[EOS]`); empty
    /// outside SFT.
    pub mask: Vec<bool>,
}

/// A tokenised document: `prompt` of its tokens are the prompt (counted in SFT only), and
/// `row_after` is its shard row + 1.
struct Doc {
    ids: Vec<u32>,
    prompt: usize,
    row_after: u64,
}

impl Doc {
    /// The loss mask of its tokens: false on the prompt, true on the completion and `[EOS]`.
    fn mask(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.ids.len()).map(|k| k >= self.prompt)
    }
}

/// One entry's stream over the shard files, a window of matching documents at a time.
struct Stream {
    pos: StreamPos,
    /// Tokenised documents of the current window.
    window: std::collections::VecDeque<Doc>,
}

/// The packer: mixture → documents → fixed-length sequences → shuffled blocks.
pub struct Packer {
    files: Vec<(PathBuf, u64)>,
    filters: Vec<Filter>,
    streams: Vec<Stream>,
    tokens: Vec<u64>,
    carry: Vec<u32>,
    /// SFT: how rows are cut, and the mask of `carry`; `None` outside SFT.
    sft: Option<Packing>,
    carry_mask: Vec<bool>,
    skipped: u64,
    tokenizer: Tokenizer,
    eos: u32,
    seq_len: usize,
    block_size: usize,
    seed: u64,
    /// Stop after one pass (evaluation data) instead of starting another epoch.
    single_pass: bool,
    block: Vec<Sequence>,
    block_index: u64,
    block_pos: usize,
    block_start: Snapshot,
    text: String,
}

impl Packer {
    /// A packer over `splits` of the dataset at `config.dir`.
    pub fn new(
        config: &DataConfig,
        splits: &[String],
        tokenizer: Tokenizer,
        seed: u64,
        single_pass: bool,
    ) -> Result<Packer, DataError> {
        Packer::open(config, splits, tokenizer, seed, single_pass, None)
    }

    /// [`Packer::new`], with SFT's loss mask and row cutting when `sft` is given.
    pub fn open(
        config: &DataConfig,
        splits: &[String],
        tokenizer: Tokenizer,
        seed: u64,
        single_pass: bool,
        sft: Option<Packing>,
    ) -> Result<Packer, DataError> {
        if config.seq_len < 2 {
            return Err(DataError::SeqLen(config.seq_len));
        }
        if config.shuffle_block == 0 {
            return Err(DataError::ShuffleBlock);
        }
        let ds = Dataset::open(&config.dir)?;
        let mut files = Vec::new();
        for split in splits {
            let s = ds
                .manifest
                .splits
                .iter()
                .find(|s| &s.name == split)
                .ok_or_else(|| {
                    let have: Vec<&str> =
                        ds.manifest.splits.iter().map(|s| s.name.as_str()).collect();
                    DataError::UnknownSplit {
                        split: split.clone(),
                        dir: config.dir.clone(),
                        have: have.join(", "),
                    }
                })?;
            for sh in &s.shards {
                let path = ds.root.join(&sh.file);
                if !path.exists() {
                    return Err(DataError::MissingShard { path });
                }
                files.push((path, sh.rows));
            }
        }
        if files.iter().all(|(_, rows)| *rows == 0) {
            return Err(DataError::NoRows {
                splits: splits.join(", "),
                dir: config.dir.clone(),
            });
        }
        let filters = resolve_mix(&config.mix)?;
        let eos = tokenizer.token_id("[EOS]").ok_or(DataError::NoEos)?;
        let start = StreamPos {
            epoch: 0,
            file: 0,
            row: 0,
        };
        let n = filters.len();
        let mut p = Packer {
            files,
            streams: (0..n)
                .map(|_| Stream {
                    pos: start,
                    window: Default::default(),
                })
                .collect(),
            filters,
            tokens: vec![0; n],
            carry: Vec::new(),
            sft,
            carry_mask: Vec::new(),
            skipped: 0,
            tokenizer,
            eos,
            seq_len: config.seq_len,
            block_size: if single_pass { 1 } else { config.shuffle_block },
            seed,
            single_pass,
            block: Vec::new(),
            block_index: 0,
            block_pos: 0,
            block_start: Snapshot {
                streams: vec![start; n],
                tokens: vec![0; n],
                carry: Vec::new(),
                carry_mask: Vec::new(),
                skipped: 0,
            },
            text: String::new(),
        };
        p.fill_block()?;
        Ok(p)
    }

    /// The next sequence of `seq_len + 1` tokens, or `None` at the end of a single pass.
    pub fn next_sequence(&mut self) -> Result<Option<Vec<u32>>, DataError> {
        Ok(self.next_row()?.map(|s| s.ids))
    }

    /// The next row with its SFT mask, or `None` at the end of a single pass.
    pub fn next_row(&mut self) -> Result<Option<Sequence>, DataError> {
        if self.block_pos == self.block.len() {
            self.block_index += 1;
            self.fill_block()?;
            if self.block.is_empty() {
                return Ok(None);
            }
        }
        let s = self.block[self.block_pos].clone();
        self.block_pos += 1;
        Ok(Some(s))
    }

    /// SFT, padded: documents skipped so far for being longer than `seq_len + 1` tokens (the
    /// pipeline reads a block ahead of the rows handed out).
    pub fn skipped_docs(&self) -> u64 {
        self.skipped
    }

    /// Where the pipeline stands (for checkpoints).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            block: self.block_index,
            pos: self.block_pos,
            start: self.block_start.clone(),
        }
    }

    /// Continues from a saved cursor.
    pub fn restore(&mut self, c: &Cursor) -> Result<(), DataError> {
        let n = self.filters.len();
        if c.start.streams.len() != n || c.start.tokens.len() != n {
            return Err(DataError::CursorEntries {
                found: c.start.streams.len(),
                expected: n,
            });
        }
        for (s, pos) in self.streams.iter_mut().zip(&c.start.streams) {
            if pos.file >= self.files.len().max(1) {
                return Err(DataError::CursorShard {
                    file: pos.file,
                    files: self.files.len(),
                });
            }
            let rows = self.files.get(pos.file).map_or(0, |f| f.1);
            if pos.row > rows {
                return Err(DataError::CursorRow {
                    row: pos.row,
                    file: pos.file,
                    rows,
                });
            }
            s.pos = *pos;
            s.window.clear();
        }
        self.tokens = c.start.tokens.clone();
        self.carry = c.start.carry.clone();
        self.carry_mask = c.start.carry_mask.clone();
        self.skipped = c.start.skipped;
        self.block_index = c.block;
        self.fill_block()?;
        if c.pos > self.block.len() {
            return Err(DataError::CursorPos {
                pos: c.pos,
                len: self.block.len(),
            });
        }
        self.block_pos = c.pos;
        Ok(())
    }

    /// Tokens drawn so far per mixture entry (documents, including the EOS).
    pub fn entry_tokens(&self) -> &[u64] {
        &self.tokens
    }

    fn fill_block(&mut self) -> Result<(), DataError> {
        self.block_start = Snapshot {
            streams: self
                .streams
                .iter()
                .map(|s| self.stream_resume_pos(s))
                .collect(),
            tokens: self.tokens.clone(),
            carry: self.carry.clone(),
            carry_mask: self.carry_mask.clone(),
            skipped: self.skipped,
        };
        self.block.clear();
        self.block_pos = 0;
        match self.sft {
            Some(Packing::Padded) => self.fill_padded()?,
            _ => self.fill_packed()?,
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ 0x5EED_DA7A ^ self.block_index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        self.block.shuffle(&mut rng);
        Ok(())
    }

    /// The entry furthest below its share of the tokens drawn so far.
    fn neediest(&self) -> usize {
        (0..self.filters.len())
            .min_by(|&a, &b| {
                let ra = self.tokens[a] as f64 / self.filters[a].share;
                let rb = self.tokens[b] as f64 / self.filters[b].share;
                ra.total_cmp(&rb)
            })
            .expect("at least one mixture entry")
    }

    /// A block of rows cut from the documents laid end to end (the mask, in SFT, follows).
    fn fill_packed(&mut self) -> Result<(), DataError> {
        let need = self.seq_len + 1;
        while self.block.len() < self.block_size {
            while self.carry.len() < need {
                let i = self.neediest();
                match self.next_document(i)? {
                    Some(doc) => {
                        self.tokens[i] += doc.ids.len() as u64;
                        if self.sft.is_some() {
                            self.carry_mask.extend(doc.mask());
                        }
                        self.carry.extend_from_slice(&doc.ids);
                    }
                    None => break,
                }
            }
            if self.carry.len() < need {
                break; // end of a single pass: the tail shorter than a sequence is dropped
            }
            let mask = match self.sft {
                Some(_) => self.carry_mask[..need].to_vec(),
                None => Vec::new(),
            };
            self.block.push(Sequence {
                ids: self.carry[..need].to_vec(),
                mask,
            });
            // Consecutive sequences share one token, so every token is a target once.
            self.carry.drain(..self.seq_len);
            if self.sft.is_some() {
                self.carry_mask.drain(..self.seq_len);
            }
        }
        Ok(())
    }

    /// A block of rows of one document each; a document longer than a row is skipped.
    fn fill_padded(&mut self) -> Result<(), DataError> {
        let need = self.seq_len + 1;
        // More skips in a row than a pass has rows: the neediest entry holds nothing that fits.
        let rows: u64 = self.files.iter().map(|(_, rows)| rows).sum();
        let mut skips = 0u64;
        while self.block.len() < self.block_size {
            let i = self.neediest();
            let Some(doc) = self.next_document(i)? else {
                break;
            };
            if doc.ids.len() > need {
                self.skipped += 1;
                skips += 1;
                if skips > rows {
                    return Err(DataError::TooLong {
                        entry: i + 1,
                        filter: self.filters[i].describe(),
                        tokens: need,
                    });
                }
                continue;
            }
            skips = 0;
            self.tokens[i] += doc.ids.len() as u64;
            let mask = doc.mask().collect();
            self.block.push(Sequence { ids: doc.ids, mask });
        }
        Ok(())
    }

    /// The position to resume a stream from: the row of its next unread document.
    fn stream_resume_pos(&self, s: &Stream) -> StreamPos {
        match s.window.front() {
            Some(doc) => StreamPos {
                row: doc.row_after - 1,
                ..s.pos
            },
            None => s.pos,
        }
    }

    /// The next document of entry `i`, or `None` when a single pass is exhausted.
    fn next_document(&mut self, i: usize) -> Result<Option<Doc>, DataError> {
        // Rows scanned without a match since the last document: more than a whole pass means
        // the entry matches nothing.
        let mut scanned = 0u64;
        let total: u64 = self.files.iter().map(|(_, rows)| rows).sum();
        loop {
            if let Some(doc) = self.streams[i].window.pop_front() {
                return Ok(Some(doc));
            }
            let pos = self.streams[i].pos;
            let (path, rows) = self.files[pos.file].clone();
            if pos.row >= rows {
                // Next file, or next pass.
                let mut next = StreamPos {
                    file: pos.file + 1,
                    row: 0,
                    ..pos
                };
                if next.file == self.files.len() {
                    if self.single_pass {
                        return Ok(None);
                    }
                    if scanned > total {
                        return Err(DataError::NoMatch {
                            entry: i + 1,
                            filter: self.filters[i].describe(),
                        });
                    }
                    next = StreamPos {
                        epoch: pos.epoch + 1,
                        file: 0,
                        row: 0,
                    };
                }
                self.streams[i].pos = next;
                continue;
            }
            let before = self.streams[i].pos.row;
            if self.read_window(i, &path, pos.row, rows)? == 0 {
                scanned += self.streams[i].pos.row - before;
                if scanned > total && !self.single_pass {
                    return Err(DataError::NoMatch {
                        entry: i + 1,
                        filter: self.filters[i].describe(),
                    });
                }
            }
        }
    }

    /// Reads rows `row ..` (up to a window) of one shard and queues the documents entry `i`
    /// accepts. Returns how many it queued.
    fn read_window(
        &mut self,
        i: usize,
        path: &Path,
        row: u64,
        rows: u64,
    ) -> Result<usize, DataError> {
        let take = (rows - row).min(WINDOW_ROWS as u64) as usize;
        let (filter, stream) = (&self.filters[i], &mut self.streams[i]);
        let (text, tokenizer, eos) = (&mut self.text, &self.tokenizer, self.eos);
        let sft = self.sft.is_some();
        let mut r = row;
        let mut found = 0;
        for_each_training_row(path, row as usize, take, |doc| {
            r += 1;
            if doc.op < 0 || !filter.accepts(doc.template, doc.op as u32) {
                return Ok(());
            }
            let encode = |t: &str| tokenizer.encode(t).map_err(DataError::Tokenizer);
            let (mut ids, prompt) = if sft {
                // The prompt alone, as RL and eval encode it, so the masked prefix is exactly
                // the prompt those phases will feed the model.
                let mut ids = encode(doc.prompt)?;
                let prompt = ids.len();
                ids.extend(encode(doc.completion)?);
                (ids, prompt)
            } else {
                text.clear();
                text.push_str(doc.prompt);
                text.push_str(doc.completion);
                (encode(text)?, 0)
            };
            ids.push(eos);
            stream.window.push_back(Doc {
                ids,
                prompt,
                row_after: r,
            });
            found += 1;
            Ok::<(), DataError>(())
        })?;
        stream.pos.row = r;
        Ok(found)
    }
}
