//! The Qwen2-style decoder, bottom-up: rotary embedding → attention → MLP → block → model.
//! Field names are Hugging Face's (`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, ...),
//! so import and export are a name map (see [`super::weights`]).

use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, linear};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData};

use super::ModelConfig;

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
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| {
                let exponent = (2 * i) as f32 / head_dim as f32;
                1.0f32 / (theta.powf(exponent as f64) as f32)
            })
            .collect();
        let mut cos = Vec::with_capacity(len * head_dim);
        let mut sin = Vec::with_capacity(len * head_dim);
        for pos in start..start + len {
            for _ in 0..2 {
                for &f in &inv_freq {
                    let angle = (pos as f32 * f) as f64;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let shape = [1, 1, len, head_dim];
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
        let q = rope.apply(q);
        let k = repeat_kv(rope.apply(k), h / kv);
        let v = repeat_kv(v, h / kv);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: true,
        };
        let o = attention(q, k, v, None, None, options);
        // [b, heads, t, hd] → [b, t, hidden]
        self.o_proj
            .forward(o.swap_dims(1, 2).reshape([b, t, h * hd]))
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
