//! The host decoder: prefill and decode of a [`Qwen2`] over host buffers with a KV cache, on the
//! fused step's kernels (one `gemm` product per projection, the vectorised row kernels), with
//! no burn operation in the loop. It is the CPU's [`Decoder`].
//!
//! - Rows have their own lengths: a row's keys are its prompt's cached positions, then its own
//!   decoded ones, so there is no padding and no mask.
//! - A prompt's cache is computed once and shared by every row fanned out from it (an `Arc`);
//!   each row owns only the positions it decodes.
//! - `select` rebuilds the batch from any rows (repeats allowed), moving a row's own positions
//!   where it is taken once and copying them only where it is repeated.
//!
//! Layouts are the fused step's: linear weights `[in, out]`, activations `[rows, features]`;
//! the cache and the attention over it are in `kv_cache`.

use std::sync::Arc;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::attention::{self, Shape};
use super::kv_cache::{attend, HeadShape, Kv};
use super::mat::{matmul, Mat, Threads};
use super::ops;
use crate::engine::Decoder;
use crate::model::Qwen2;

fn host<B: Backend, const D: usize>(p: &Param<Tensor<B, D>>) -> Vec<f32> {
    crate::model::weights::host(p.val()).data
}

/// `[in, a] ++ [in, b] ++ …` side by side: `[in, Σ out]`.
fn concat_cols(parts: &[(Vec<f32>, usize)], rows: usize) -> Vec<f32> {
    let cols: usize = parts.iter().map(|p| p.1).sum();
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for (data, c) in parts {
            out.extend_from_slice(&data[r * c..(r + 1) * c]);
        }
    }
    out
}

struct Layer {
    ln1: Vec<f32>,
    /// `[Wq | Wk | Wv]`, `[d, w]`, and `[bq | bk | bv]` (zeros where the model has none).
    wqkv: Vec<f32>,
    bqkv: Vec<f32>,
    wo: Vec<f32>,
    ln2: Vec<f32>,
    /// `[Wg | Wu]`, `[d, 2·inter]`.
    wgu: Vec<f32>,
    wd: Vec<f32>,
}

/// The model's weights on the host.
struct Weights {
    vocab: usize,
    d: usize,
    inter: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
    eps: f32,
    rope_theta: f64,
    embed: Vec<f32>,
    norm: Vec<f32>,
    layers: Vec<Layer>,
}

impl Weights {
    fn of<B: Backend>(m: &Qwen2<B>) -> Weights {
        let embed = crate::model::weights::host(m.embed_tokens.weight.val());
        let (vocab, d) = (embed.shape[0], embed.shape[1]);
        let first = &m.layers[0];
        let (heads, kv_heads, hd) = (
            first.self_attn.n_heads,
            first.self_attn.n_kv_heads,
            first.self_attn.head_dim,
        );
        assert!(
            hd % 2 == 0,
            "head_dim {hd}: rotary embeddings need an even head size"
        );
        let layers = m
            .layers
            .iter()
            .map(|l| {
                let a = &l.self_attn;
                let lin = |x: &burn::nn::Linear<B>| {
                    let w = host(&x.weight);
                    let out = w.len() / d;
                    let b = x.bias.as_ref().map_or(vec![0.0; out], host);
                    (w, b, out)
                };
                let (wq, bq, nq) = lin(&a.q_proj);
                let (wk, bk, nk) = lin(&a.k_proj);
                let (wv, bv, nv) = lin(&a.v_proj);
                let wg = host(&l.mlp.gate_proj.weight);
                let inter = wg.len() / d;
                Layer {
                    ln1: host(&l.input_layernorm.gamma),
                    wqkv: concat_cols(&[(wq, nq), (wk, nk), (wv, nv)], d),
                    bqkv: [bq, bk, bv].concat(),
                    wo: host(&a.o_proj.weight),
                    ln2: host(&l.post_attention_layernorm.gamma),
                    wgu: concat_cols(&[(wg, inter), (host(&l.mlp.up_proj.weight), inter)], d),
                    wd: host(&l.mlp.down_proj.weight),
                }
            })
            .collect::<Vec<_>>();
        Weights {
            vocab,
            d,
            inter: layers[0].wd.len() / d,
            heads,
            kv_heads,
            hd,
            eps: first.input_layernorm.epsilon as f32,
            rope_theta: m.rope_theta,
            embed: embed.data,
            norm: host(&m.norm.gamma),
            layers,
        }
    }

    fn head_shape(&self) -> HeadShape {
        HeadShape {
            heads: self.heads,
            kv_heads: self.kv_heads,
            hd: self.hd,
        }
    }

    fn kvd(&self) -> usize {
        self.kv_heads * self.hd
    }

    fn width(&self) -> usize {
        self.d + 2 * self.kvd()
    }
}

/// One row of the batch: its prompt's shared cache and the positions it decoded itself.
#[derive(Clone)]
struct Row {
    prompt: Arc<Kv>,
    own: Kv,
    /// Position of the next token.
    pos: usize,
}

/// The CPU's decoder over host buffers (see the module docs).
pub struct HostDecoder {
    w: Weights,
    rows: Vec<Row>,
    /// Rotary tables (`ops::rope_tables`, the training step's) for every position the batch
    /// may reach, made at the prefill.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl HostDecoder {
    /// Copies the model's weights to the host once.
    pub fn new<B: Backend>(model: &Qwen2<B>) -> HostDecoder {
        HostDecoder {
            w: Weights::of(model),
            rows: Vec::new(),
            cos: Vec::new(),
            sin: Vec::new(),
        }
    }
}

/// Rotate the query and key heads of one `qkv` row to position `pos` (tables as
/// `ops::rope_tables` makes them).
fn rope(w: &Weights, row: &mut [f32], pos: usize, cos: &[f32], sin: &[f32]) {
    let (hd, cols) = (w.hd, w.d + w.kvd());
    let t = pos * hd / 2..(pos + 1) * hd / 2;
    ops::rope_row(&mut row[..cols], cols / hd, &cos[t.clone()], &sin[t], false);
}

impl Weights {
    /// The MLP half of a block and the attention output projection, on `n` rows: `x` holds the
    /// residual stream and leaves holding the block's output; `o` is the attention output.
    fn finish_block(&self, l: &Layer, x: &mut [f32], o: &[f32], n: usize, threads: Threads) {
        let (d, inter) = (self.d, self.inter);
        let mut proj = vec![0f32; n * d];
        matmul(
            &mut proj,
            d,
            Mat::new(o, n, d),
            Mat::new(&l.wo, d, d),
            false,
            threads,
        );
        let mut xmid = vec![0f32; n * d];
        ops::add(x, &proj, &mut xmid);
        let mut xn = vec![0f32; n * d];
        let mut rstd = vec![0f32; n];
        ops::rms_forward(&xmid, &l.ln2, self.eps, &mut xn, &mut rstd);
        let mut gu = vec![0f32; n * 2 * inter];
        matmul(
            &mut gu,
            2 * inter,
            Mat::new(&xn, n, d),
            Mat::new(&l.wgu, d, 2 * inter),
            false,
            threads,
        );
        let mut act = vec![0f32; n * inter];
        ops::swiglu(&gu, &mut act, inter);
        matmul(
            &mut proj,
            d,
            Mat::new(&act, n, inter),
            Mat::new(&l.wd, inter, d),
            false,
            threads,
        );
        ops::add(&xmid, &proj, x);
    }

    /// Normalised rows `x` (`[n, d]`) → logits `[n, vocab]` into `out` (of that length).
    fn logits(&self, x: &[f32], n: usize, out: &mut [f32], threads: Threads) {
        let (d, v) = (self.d, self.vocab);
        let mut xn = vec![0f32; n * d];
        let mut rstd = vec![0f32; n];
        ops::rms_forward(x, &self.norm, self.eps, &mut xn, &mut rstd);
        matmul(
            out,
            v,
            Mat::new(&xn, n, d),
            Mat::new(&self.embed, v, d).t(),
            false,
            threads,
        );
    }

    /// `qkv = rms(x) · Wqkv + b` for `n` rows.
    fn qkv(&self, l: &Layer, x: &[f32], n: usize, threads: Threads) -> Vec<f32> {
        let (d, wd) = (self.d, self.width());
        let mut xn = vec![0f32; n * d];
        let mut rstd = vec![0f32; n];
        ops::rms_forward(x, &l.ln1, self.eps, &mut xn, &mut rstd);
        let mut qkv = vec![0f32; n * wd];
        matmul(
            &mut qkv,
            wd,
            Mat::new(&xn, n, d),
            Mat::new(&l.wqkv, d, wd),
            false,
            threads,
        );
        ops::add_bias(&mut qkv, wd, &l.bqkv);
        qkv
    }

    fn embed(&self, tokens: impl Iterator<Item = u32>, out: &mut Vec<f32>) {
        let d = self.d;
        out.clear();
        for t in tokens {
            let t = t as usize;
            assert!(t < self.vocab, "token id {t} is outside the vocabulary");
            out.extend_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
    }
}

impl HostDecoder {
    /// The causal forward (none empty), back to back: the final residual
    /// stream of every position (`[Σ len, d]`), each prompt's cache and where each starts.
    fn forward_prompts(
        &self,
        prompts: &[Vec<u32>],
        (cos, sin): (&[f32], &[f32]),
    ) -> (Vec<f32>, Vec<Kv>, Vec<usize>) {
        let w = &self.w;
        let (d, kvd, wd) = (w.d, w.kvd(), w.width());
        let n_layers = w.layers.len();
        let starts: Vec<usize> = prompts
            .iter()
            .scan(0, |at, p| {
                let s = *at;
                *at += p.len();
                Some(s)
            })
            .collect();
        let n: usize = prompts.iter().map(|p| p.len()).sum();
        let positions: Vec<usize> = prompts.iter().flat_map(|p| 0..p.len()).collect();
        let mut x = Vec::new();
        self.w.embed(prompts.iter().flatten().copied(), &mut x);
        let mut caches: Vec<Kv> = prompts.iter().map(|p| Kv::new(n_layers, p.len())).collect();
        for (li, l) in self.w.layers.iter().enumerate() {
            let mut qkv = self.w.qkv(l, &x, n, Threads::Pool);
            qkv.par_chunks_mut(wd)
                .zip(&positions)
                .for_each(|(row, &pos)| rope(&self.w, row, pos, cos, sin));
            caches.par_iter_mut().zip(&starts).for_each(|(c, &s)| {
                for at in 0..c.cap {
                    let row = &qkv[(s + at) * wd..(s + at + 1) * wd];
                    c.put(li, at, &row[d..d + kvd], &row[d + kvd..]);
                }
            });
            // Causal attention within each prompt, one task per query position.
            let owner: Vec<usize> = prompts
                .iter()
                .enumerate()
                .flat_map(|(i, p)| std::iter::repeat_n(i, p.len()))
                .collect();
            let mut o = vec![0f32; n * d];
            o.par_chunks_mut(d)
                .enumerate()
                .for_each_init(Vec::new, |scores, (i, oi)| {
                    let (c, pos) = (&caches[owner[i]], positions[i]);
                    attend(
                        &qkv[i * wd..i * wd + d],
                        &[c.span(li, pos + 1)],
                        self.w.head_shape(),
                        scores,
                        oi,
                    );
                });
            self.w.finish_block(l, &mut x, &o, n, Threads::Pool);
        }
        (x, caches, starts)
    }

    /// The causal forward of `batch` rows of `seq` tokens (`inputs` row-major), all positions
    /// at once: the final residual stream `[batch·seq, d]`. Attention runs in query blocks
    /// through the training step's kernel, which is what makes this pass a product-bound one
    /// rather than one row kernel per position (`forward_prompts`).
    fn forward_batch(&self, inputs: &[u32], batch: usize, seq: usize) -> Vec<f32> {
        let w = &self.w;
        let (d, kvd, wd) = (w.d, w.kvd(), w.width());
        let sh = Shape {
            batch,
            seq,
            heads: w.heads,
            kv_heads: w.kv_heads,
            head_dim: w.hd,
        };
        let (cos, sin) = ops::rope_tables(w.hd, w.rope_theta, seq);
        let n = batch * seq;
        let mut x = Vec::new();
        self.w.embed(inputs.iter().copied(), &mut x);
        let mut o = vec![0f32; n * d];
        let mut lse = vec![0f32; batch * w.heads * seq];
        for l in &w.layers {
            let mut qkv = self.w.qkv(l, &x, n, Threads::Pool);
            ops::rope(&mut qkv, wd, d + kvd, w.hd, seq, &cos, &sin, false);
            attention::forward(&qkv, sh, &mut o, &mut lse);
            self.w.finish_block(l, &mut x, &o, n, Threads::Pool);
        }
        x
    }

    /// Log-probabilities of `targets` after each position of `inputs` (both `[rows, seq]`
    /// row-major), under the logits divided by `temperature`: the frozen reference's side of
    /// GRPO's KL term, without burn.
    pub fn target_logp(
        &self,
        inputs: &[u32],
        targets: &[u32],
        seq: usize,
        temperature: f32,
    ) -> Vec<f32> {
        let n = inputs.len();
        let x = self.forward_batch(inputs, n / seq, seq);
        let mut logits = vec![0f32; n * self.w.vocab];
        self.w.logits(&x, n, &mut logits, Threads::Pool);
        ops::target_logp(&mut logits, targets, self.w.vocab, 1.0 / temperature).0
    }
}

impl Decoder for HostDecoder {
    fn vocab_size(&self) -> usize {
        self.w.vocab
    }

    fn prefill(&mut self, prompts: &[&[u32]], capacity: usize, out: &mut Vec<f32>) {
        let (d, n_layers) = (self.w.d, self.w.layers.len());
        // An empty prompt decodes from token 0.
        let prompts: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| if p.is_empty() { vec![0] } else { p.to_vec() })
            .collect();
        let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(1);
        (self.cos, self.sin) =
            ops::rope_tables(self.w.hd, self.w.rope_theta, capacity.max(longest));
        let (x, caches, starts) = self.forward_prompts(&prompts, (&self.cos, &self.sin));
        // Logits of each prompt's last position only.
        let mut last = Vec::with_capacity(prompts.len() * d);
        for (p, &s) in prompts.iter().zip(&starts) {
            let i = s + p.len() - 1;
            last.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        out.clear();
        out.resize(prompts.len() * self.w.vocab, 0.0);
        self.w.logits(&last, prompts.len(), out, Threads::Pool);
        let own = capacity.saturating_sub(prompts.iter().map(|p| p.len()).min().unwrap_or(0));
        self.rows = caches
            .into_iter()
            .map(|mut c| {
                c.len = c.cap;
                Row {
                    pos: c.cap,
                    prompt: Arc::new(c),
                    own: Kv::new(n_layers, own.max(1)),
                }
            })
            .collect();
    }

    fn select(&mut self, rows: &[usize]) {
        let mut uses = vec![0usize; self.rows.len()];
        for &r in rows {
            uses[r] += 1;
        }
        let mut old: Vec<Option<Row>> = std::mem::take(&mut self.rows)
            .into_iter()
            .map(Some)
            .collect();
        self.rows = rows
            .iter()
            .map(|&r| {
                uses[r] -= 1;
                if uses[r] == 0 {
                    old[r]
                        .take()
                        .expect("a row is moved out once, at its last use")
                } else {
                    old[r].clone().expect("still present before its last use")
                }
            })
            .collect();
    }

    fn step(&mut self, tokens: &[u32], out: &mut Vec<f32>) {
        assert_eq!(tokens.len(), self.rows.len(), "one token per row");
        let n = tokens.len();
        let v = self.w.vocab;
        out.clear();
        out.resize(n * v, 0.0);
        // Rows never interact in a decode step, so the batch splits into one contiguous part
        // per thread, each running the whole step on its rows with serial products: no
        // fork-join per product or per layer, and small products that would not split well
        // anyway (a row's result does not depend on which rows share its part).
        let part = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let (w, rope_t) = (&self.w, (&self.cos[..], &self.sin[..]));
        self.rows
            .par_chunks_mut(part)
            .zip(tokens.par_chunks(part))
            .zip(out.par_chunks_mut(part * v))
            .for_each(|((rows, tokens), out)| w.step_rows(rows, tokens, rope_t, out));
    }
}

impl Weights {
    /// One decode step of `rows` on the calling thread: appends each row's new key and value,
    /// advances it one position and writes its logits into `out` (`[rows, vocab]`).
    fn step_rows(
        &self,
        rows: &mut [Row],
        tokens: &[u32],
        (cos, sin): (&[f32], &[f32]),
        out: &mut [f32],
    ) {
        let (d, kvd, wd) = (self.d, self.kvd(), self.width());
        let n = tokens.len();
        let mut x = Vec::new();
        self.embed(tokens.iter().copied(), &mut x);
        let mut scores = Vec::new();
        let mut o = vec![0f32; n * d];
        for (li, l) in self.layers.iter().enumerate() {
            let mut qkv = self.qkv(l, &x, n, Threads::Serial);
            for (row, r) in qkv.chunks_mut(wd).zip(rows.iter_mut()) {
                rope(self, row, r.pos, cos, sin);
                assert!(r.own.len < r.own.cap, "decoded past the prefill's capacity");
                r.own.put(li, r.own.len, &row[d..d + kvd], &row[d + kvd..]);
            }
            for (i, (oi, r)) in o.chunks_mut(d).zip(rows.iter()).enumerate() {
                let spans = [
                    r.prompt.span(li, r.prompt.len),
                    r.own.span(li, r.own.len + 1),
                ];
                attend(
                    &qkv[i * wd..i * wd + d],
                    &spans,
                    self.head_shape(),
                    &mut scores,
                    oi,
                );
            }
            self.finish_block(l, &mut x, &o, n, Threads::Serial);
        }
        for r in rows.iter_mut() {
            r.pos += 1;
            r.own.len += 1;
        }
        self.logits(&x, n, out, Threads::Serial);
    }
}
