//! Batched autoregressive sampling. The engine sees token ids only: a [`Decoder`] turns tokens
//! into next-token logits (the burn model with its KV cache in [`model`], or a mock in tests),
//! and [`generate`] runs the loop: prefill each prompt once, fan its cache out to the prompt's
//! samples, draw one token per row per step, stop rows at a stop sequence, EOS or the length
//! limit, and drop finished rows from the batch.
//!
//! Every (prompt, sample) row draws from its own RNG, seeded from (seed, prompt key, sample
//! index), so a completion does not depend on which other rows share its batch.

#[cfg(feature = "train")]
pub mod model;
pub mod sample;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::composer::seed::derive;
use crate::tokenizer::{Tokenizer, TokenizerError};
pub use sample::{argmax, Sampler, Sampling, SamplingError};

/// Something that extends a batch of token rows by one position at a time.
pub trait Decoder {
    fn vocab_size(&self) -> usize;

    /// Start a batch with one row per prompt, room for `capacity` positions per row, and write
    /// the logits of each prompt's last position into `out` (`[prompts × vocab]`).
    fn prefill(&mut self, prompts: &[&[u32]], capacity: usize, out: &mut Vec<f32>);

    /// Rebuild the batch from the rows `rows` of the current one (an index may repeat).
    fn select(&mut self, rows: &[usize]);

    /// Append one token per row and write each row's next-token logits into `out`.
    fn step(&mut self, tokens: &[u32], out: &mut Vec<f32>);
}

/// How a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// It produced a stop sequence (kept in the tokens).
    Stop,
    /// It produced EOS (not kept).
    Eos,
    /// It reached `max_new_tokens` (truncated).
    Length,
}

/// One prompt and how many completions to draw for it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub prompt: &'a [u32],
    /// Folded into every sample's seed (e.g. the problem id's hash), so a prompt's samples are
    /// the same whatever batch or order it is generated in.
    pub key: u64,
    pub samples: usize,
}

/// One completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub tokens: Vec<u32>,
    /// Log-probability of each token under the distribution it was drawn from.
    pub logprobs: Vec<f32>,
    /// The log-probability of the EOS it ended with (EOS itself is not in `tokens`).
    pub eos_logprob: Option<f32>,
    pub finish: Finish,
}

/// Generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenConfig {
    #[serde(flatten)]
    pub sampling: Sampling,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Rows decoded together (prompts × samples); bounds memory.
    pub batch_rows: usize,
    /// Which decoder runs the model: `auto` (the host decoder on the CPU, burn's elsewhere),
    /// `host` or `burn`.
    pub decoder: DecoderKind,
}

/// Which [`Decoder`] runs a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// The host decoder on the CPU backend, the burn decoder on any other.
    #[default]
    Auto,
    /// The host decoder (the model's weights are copied to the host).
    Host,
    /// The burn model with its KV cache.
    Burn,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            sampling: Sampling::default(),
            max_new_tokens: 1024,
            seed: 0,
            batch_rows: 64,
            decoder: DecoderKind::Auto,
        }
    }
}

/// Stop conditions: the EOS id and stop sequences (e.g. the ids of `</answer>`).
#[derive(Debug, Clone, Default)]
pub struct Stops {
    pub eos: Option<u32>,
    pub sequences: Vec<Vec<u32>>,
}

impl Stops {
    fn check(&self, tokens: &[u32]) -> Option<Finish> {
        let last = *tokens.last()?;
        if Some(last) == self.eos {
            return Some(Finish::Eos);
        }
        self.sequences
            .iter()
            .any(|s| !s.is_empty() && tokens.ends_with(s))
            .then_some(Finish::Stop)
    }
}

/// Stop at `</answer>` (however the tokenizer splits it) or at `[EOS]`: where a dagmath
/// completion ends, for evaluation and RL rollouts alike.
pub fn stops(tok: &Tokenizer) -> Result<Stops, TokenizerError> {
    Ok(Stops {
        eos: tok.token_id("[EOS]"),
        sequences: vec![tok.encode("</answer>")?],
    })
}

/// The seed of sample `index` of the prompt with key `key`.
pub fn sample_seed(seed: u64, key: u64, index: usize) -> u64 {
    derive(&[seed, key, index as u64])
}

/// Completions for every request, `out[r][s]` for request `r`, sample `s`. `on_done` is called
/// with the number of finished completions as they finish (for progress bars).
pub fn generate<D: Decoder + ?Sized>(
    dec: &mut D,
    requests: &[Request],
    cfg: &GenConfig,
    stops: &Stops,
    mut on_done: impl FnMut(usize),
) -> Vec<Vec<Completion>> {
    let mut out: Vec<Vec<Completion>> = requests
        .iter()
        .map(|r| Vec::with_capacity(r.samples))
        .collect();
    // Work units: (request, first sample, samples), packed into batches of ≤ batch_rows rows.
    let rows_cap = cfg.batch_rows.max(1);
    let mut units = Vec::new();
    for (r, req) in requests.iter().enumerate() {
        let mut s = 0;
        while s < req.samples {
            let n = (req.samples - s).min(rows_cap);
            units.push((r, s, n));
            s += n;
        }
    }
    let mut batches: Vec<Vec<(usize, usize, usize)>> = Vec::new();
    let mut rows = 0;
    for unit in units {
        match batches.last_mut() {
            Some(batch) if rows + unit.2 <= rows_cap => batch.push(unit),
            _ => {
                batches.push(vec![unit]);
                rows = 0;
            }
        }
        rows += unit.2;
    }
    let mut state = Scratch::default();
    for batch in &batches {
        run_batch(
            dec,
            requests,
            batch,
            cfg,
            stops,
            &mut state,
            &mut out,
            &mut on_done,
        );
    }
    out
}

#[derive(Default)]
struct Scratch {
    logits: Vec<f32>,
    sampler: Sampler,
}

/// A row being decoded.
struct Row {
    request: usize,
    sample: usize,
    rng: ChaCha8Rng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    eos_logprob: Option<f32>,
    finish: Option<Finish>,
}

#[allow(clippy::too_many_arguments)]
fn run_batch<D: Decoder + ?Sized>(
    dec: &mut D,
    requests: &[Request],
    units: &[(usize, usize, usize)],
    cfg: &GenConfig,
    stops: &Stops,
    st: &mut Scratch,
    out: &mut [Vec<Completion>],
    on_done: &mut impl FnMut(usize),
) {
    let v = dec.vocab_size();
    let prompts: Vec<&[u32]> = units.iter().map(|u| requests[u.0].prompt).collect();
    let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    dec.prefill(&prompts, longest + cfg.max_new_tokens, &mut st.logits);
    let prompt_logits = std::mem::take(&mut st.logits);
    // Fan each prompt out to its samples, and draw every row's first token.
    let mut fan = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    for (u, &(r, first, n)) in units.iter().enumerate() {
        for s in first..first + n {
            fan.push(u);
            let mut row = Row {
                request: r,
                sample: s,
                rng: ChaCha8Rng::seed_from_u64(sample_seed(cfg.seed, requests[r].key, s)),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                eos_logprob: None,
                finish: None,
            };
            if cfg.max_new_tokens == 0 {
                row.finish = Some(Finish::Length);
            } else {
                let l = &prompt_logits[u * v..(u + 1) * v];
                push_token(&mut row, l, cfg, stops, &mut st.sampler);
            }
            rows.push(row);
        }
    }
    st.logits = prompt_logits;
    dec.select(&fan);
    for row in &rows {
        if row.finish.is_some() {
            on_done(1);
        }
    }
    // Decoder row j is rows[active[j]]. Finished rows ride along (their logits unused) until
    // a quarter of the batch has finished; then the batch is compacted, which copies the cache.
    let mut active: Vec<usize> = (0..rows.len()).collect();
    let mut fed = Vec::new();
    loop {
        let keep: Vec<usize> = (0..active.len())
            .filter(|&j| rows[active[j]].finish.is_none())
            .collect();
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() && 4 * (active.len() - keep.len()) >= active.len() {
            dec.select(&keep);
            active = keep.iter().map(|&j| active[j]).collect();
        }
        fed.clear();
        fed.extend(active.iter().map(|&i| *rows[i].tokens.last().unwrap_or(&0)));
        dec.step(&fed, &mut st.logits);
        for (j, &i) in active.iter().enumerate() {
            if rows[i].finish.is_some() {
                continue;
            }
            let logits = &st.logits[j * v..(j + 1) * v];
            push_token(&mut rows[i], logits, cfg, stops, &mut st.sampler);
            if rows[i].finish.is_some() {
                on_done(1);
            }
        }
    }
    for row in rows {
        debug_assert_eq!(out[row.request].len(), row.sample);
        out[row.request].push(Completion {
            tokens: row.tokens,
            logprobs: row.logprobs,
            eos_logprob: row.eos_logprob,
            finish: row.finish.unwrap_or(Finish::Length),
        });
    }
}

fn push_token(row: &mut Row, logits: &[f32], cfg: &GenConfig, stops: &Stops, s: &mut Sampler) {
    let (t, lp) = s.draw(logits, &cfg.sampling, &mut row.rng);
    row.tokens.push(t);
    row.logprobs.push(lp as f32);
    if let Some(f) = stops.check(&row.tokens) {
        if f == Finish::Eos {
            row.tokens.pop();
            row.eos_logprob = row.logprobs.pop();
        }
        row.finish = Some(f);
    } else if row.tokens.len() >= cfg.max_new_tokens {
        row.finish = Some(Finish::Length);
    }
}
