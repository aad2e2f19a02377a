//! The Qwen2-style decoder, bottom-up: rotary embedding → attention → MLP → block → model.
//! Field names are Hugging Face's (`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, ...),
//! so import and export are a name map (see [`super::weights`]).

use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, linear};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData};

use super::cache::{KvCache, LayerCache};
use super::ModelConfig;

/// Rotary inverse frequencies `[head_dim / 2]`, rounded to f32 as Hugging Face's Qwen2 rounds
/// them; the angle of pair `i` at position `p` is `(p as f32 · inv_freq[i]) as f64`.
pub fn rope_inv_freq(head_dim: usize, theta: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0f32 / (theta.powf(exponent as f64) as f32)
        })
        .collect()
}

/// Rotary position embedding in Hugging Face's rotate-half layout: the first and second halves
/// of each head are the two coordinates of a rotating pair.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    /// `[1, 1, seq, head_dim]`
    cos: Tensor<B, 4>,
    /// `[1, 1, seq, head_dim]`
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rope<B> {
    /// Tables for positions `start .. start + len`, computed the way Hugging Face's Qwen2 does
    /// (inverse frequencies and angles rounded to f32, then cos/sin), so exported models give
    /// the same logits there; computed on the host, so every backend sees the same angles.
    pub fn new(head_dim: usize, theta: f64, start: usize, len: usize, device: &B::Device) -> Self {
        let positions: Vec<usize> = (start..start + len).collect();
        Self::at_positions(head_dim, theta, &positions, 1, device)
    }

    /// Tables for one position per (row, step): `positions` is `[batch, len]` row-major, so
    /// rows of a left-padded batch can each start at 0; the tables are `[batch, 1, len, hd]`.
    pub fn at_positions(
        head_dim: usize,
        theta: f64,
        positions: &[usize],
        batch: usize,
        device: &B::Device,
    ) -> Self {
        let inv_freq = rope_inv_freq(head_dim, theta);
        let len = positions.len() / batch.max(1);
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        for &pos in positions {
            for _ in 0..2 {
                for &f in &inv_freq {
                    let angle = (pos as f32 * f) as f64;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let shape = [batch, 1, len, head_dim];
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// `x`: `[batch, heads, seq, head_dim]` → same shape, rotated.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, _, d] = x.dims();
        let x1 = x.clone().narrow(3, 0, d / 2);
        let x2 = x.clone().narrow(3, d / 2, d / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

/// Grouped-query self-attention with q/k/v bias and no output bias.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

impl<B: Backend> Attention<B> {
    /// `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`, causal.
    pub fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let rep = self.n_heads / self.n_kv_heads;
        let (q, k, v) = self.project(x, rope);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: true,
        };
        let o = attention(q, repeat_kv(k, rep), repeat_kv(v, rep), None, None, options);
        self.output(o, b, t)
    }

    /// Attention of `x` (`[batch, t, hidden]`, the `t` positions after the `cache.len` cached
    /// ones) over the cache and itself; the new keys and values are written into `cache`.
    /// `mask` (additive, `[batch, 1, t, cache.len + t]`) hides left padding and, when `t > 1`,
    /// later positions; `None` means nothing is hidden (one new token, no padding).
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4>>,
        cache: &mut LayerCache<B>,
        start: usize,
    ) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let (kv, hd) = (self.n_kv_heads, self.head_dim);
        let rep = self.n_heads / kv;
        let (q, k, v) = self.project(x, rope);
        let end = start + t;
        cache.k = cache
            .k
            .clone()
            .slice_assign([0..b, 0..kv, start..end, 0..hd], k);
        cache.v = cache
            .v
            .clone()
            .slice_assign([0..b, 0..kv, start..end, 0..hd], v);
        // The `rep` query heads of one KV head attend as one block of `rep·t` rows, so the
        // cache is read in place instead of being copied `rep` times.
        let k = cache.k.clone().narrow(2, 0, end);
        let v = cache.v.clone().narrow(2, 0, end);
        let q = q.reshape([b, kv, rep * t, hd]);
        // [b, kv, rep·t, hd] · [b, kv, hd, end] → [b, kv, rep·t, end]
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
        let scores =
            match mask {
                Some(m) => (scores.reshape([b, kv, rep, t, end]) + m.unsqueeze_dim::<5>(1))
                    .reshape([b, kv, rep * t, end]),
                None => scores,
            };
        // [b, kv, rep·t, end] · [b, kv, end, hd] → [b, heads, t, hd]
        let o = softmax(scores, 3).matmul(v).reshape([b, kv * rep, t, hd]);
        self.output(o, b, t)
    }

    /// q `[b, heads, t, hd]` and k, v `[b, kv_heads, t, hd]`, rotated.
    fn project(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let [b, t, _] = x.dims();
        let (h, kv, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        // [b, t, heads * hd] → [b, heads, t, hd]
        let q = self
            .q_proj
            .forward(x.clone())
            .reshape([b, t, h, hd])
            .swap_dims(1, 2);
        let k = self
            .k_proj
            .forward(x.clone())
            .reshape([b, t, kv, hd])
            .swap_dims(1, 2);
        let v = self
            .v_proj
            .forward(x)
            .reshape([b, t, kv, hd])
            .swap_dims(1, 2);
        (rope.apply(q), rope.apply(k), v)
    }

    /// `[b, heads, t, hd]` → `[b, t, hidden]` through the output projection.
    fn output(&self, o: Tensor<B, 4>, b: usize, t: usize) -> Tensor<B, 3> {
        let hidden = self.n_heads * self.head_dim;
        self.o_proj
            .forward(o.swap_dims(1, 2).reshape([b, t, hidden]))
    }
}

/// `[b, kv, t, hd]` → `[b, kv * rep, t, hd]`, each KV head shared by `rep` query heads.
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, rep: usize) -> Tensor<B, 4> {
    if rep == 1 {
        return x;
    }
    let [b, kv, t, hd] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, rep, t, hd])
        .reshape([b, kv * rep, t, hd])
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// Pre-norm decoder block.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> DecoderLayer<B> {
    pub fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), rope);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }

    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        mask: Option<Tensor<B, 4>>,
        cache: &mut LayerCache<B>,
        start: usize,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward_cached(
            self.input_layernorm.forward(x.clone()),
            rope,
            mask,
            cache,
            start,
        );
        let h = x + attn;
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}

/// The decoder with its tied output projection.
#[derive(Module, Debug)]
pub struct Qwen2<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    pub head_dim: usize,
    pub rope_theta: f64,
}

impl<B: Backend> Qwen2<B> {
    /// `tokens`: `[batch, seq]` → logits `[batch, seq, vocab]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [_, t] = tokens.dims();
        let rope = Rope::new(self.head_dim, self.rope_theta, 0, t, &tokens.device());
        let mut h = self.embed_tokens.forward(tokens);
        for layer in &self.layers {
            h = layer.forward(h, &rope);
        }
        self.logits(self.norm.forward(h))
    }

    /// Logits `[batch, t, vocab]` of `tokens` (`[batch, t]`) placed after the `cache.len()`
    /// cached positions; `positions` (`[batch, t]`, row-major) are the rotary positions (a
    /// left-padded row starts at 0 after its padding) and `mask` is as in
    /// [`Attention::forward_cached`]. The cache advances by `t`. With `last_only`, only the
    /// last position's logits are computed (`[batch, 1, vocab]`).
    pub fn forward_cached(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: &[usize],
        mask: Option<Tensor<B, 4>>,
        cache: &mut KvCache<B>,
        last_only: bool,
    ) -> Tensor<B, 3> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let rope = Rope::at_positions(self.head_dim, self.rope_theta, positions, b, &device);
        let start = cache.len();
        let mut h = self.embed_tokens.forward(tokens);
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            h = layer.forward_cached(h, &rope, mask.clone(), lc, start);
        }
        cache.advance(t);
        let h = if last_only && t > 1 {
            h.narrow(1, t - 1, 1)
        } else {
            h
        };
        self.logits(self.norm.forward(h))
    }

    /// Output projection tied to the embedding: `[.., hidden]` → `[.., vocab]`.
    fn logits(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        linear(h, self.embed_tokens.weight.val().transpose(), None)
    }

    /// Mean next-token cross-entropy of `logits` `[b, t, v]` against `targets` `[b, t]`.
    pub fn loss(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
        token_nll(logits, targets).mean()
    }

    pub fn config_dims(&self) -> (usize, usize) {
        let [v, d] = self.embed_tokens.weight.dims();
        (v, d)
    }
}

/// Per-token negative log-likelihood `[b, t]` of `targets` under `logits` `[b, t, v]`.
pub fn token_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [b, t, _] = logits.dims();
    let logp = burn::tensor::activation::log_softmax(logits, 2);
    let picked = logp.gather(2, targets.reshape([b, t, 1]));
    picked.reshape([b, t]).neg()
}

/// Shapes of the model's tensors in Hugging Face layout, in a fixed order.
pub fn hf_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let d = c.hidden_size;
    let kv = c.num_key_value_heads * c.head_dim();
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![c.vocab_size, d],
    )];
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let entries: [(&str, Vec<usize>); 12] = [
            ("self_attn.q_proj.weight", vec![d, d]),
            ("self_attn.q_proj.bias", vec![d]),
            ("self_attn.k_proj.weight", vec![kv, d]),
            ("self_attn.k_proj.bias", vec![kv]),
            ("self_attn.v_proj.weight", vec![kv, d]),
            ("self_attn.v_proj.bias", vec![kv]),
            ("self_attn.o_proj.weight", vec![d, d]),
            ("mlp.gate_proj.weight", vec![c.intermediate_size, d]),
            ("mlp.up_proj.weight", vec![c.intermediate_size, d]),
            ("mlp.down_proj.weight", vec![d, c.intermediate_size]),
            ("input_layernorm.weight", vec![d]),
            ("post_attention_layernorm.weight", vec![d]),
        ];
        for (name, shape) in entries {
            out.push((format!("{p}.{name}"), shape));
        }
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    out
}
