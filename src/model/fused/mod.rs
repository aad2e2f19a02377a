//! The fused training step on the CPU: forward, mean (or, for SFT, weighted) next-token
//! cross-entropy and backward of
//! the [`Qwen2`] model written out by hand over host buffers, returning burn gradients that the
//! optimiser consumes as it consumes autodiff's.
//!
//! Why: burn's CPU autodiff runs every operation as its own pass over memory, materialises the
//! `[batch, heads, seq, seq]` attention scores and allocates on each step; for the small models
//! trained here that made a step 5–7× slower than PyTorch's. This step does what a hand-written
//! trainer does (llm.c, nanoGPT's fused kernels): row-wise kernels that read each activation
//! once, attention in query blocks that skips the masked half and keeps only a log-sum-exp for
//! the backward, and every product through one well-tuned matrix multiply. The math is the
//! model's own — tests hold its loss and every gradient to burn autodiff's — and it is
//! deterministic: the same inputs give bit-identical gradients whatever the thread count.
//!
//! Layouts are burn's: linear weights `[in, out]`, activations row-major `[batch·seq, features]`.

mod attention;
mod decode;
mod kv_cache;
mod mat;
mod ops;
mod scratch;

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use self::attention::Shape;
pub use self::decode::HostDecoder;
use self::mat::{matmul, Mat, Threads};
pub use self::scratch::release as release_buffers;
use self::scratch::Scratch;
use super::Qwen2;

/// One parameter copied to the host.
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Slot {
    fn of<B: AutodiffBackend, const D: usize>(p: &Param<Tensor<B, D>>) -> Slot {
        let super::HostTensor { shape, data } = super::weights::host(p.val().inner());
        Slot {
            id: p.id,
            shape,
            data,
        }
    }
}

/// Linear weights with a common input, side by side (`[in, Σ out]`), so that one product
/// computes all of them and one gives all their gradients.
struct Concat {
    parts: Vec<(ParamId, Vec<usize>)>,
    data: Vec<f32>,
    cols: usize,
}

impl Concat {
    fn of(slots: Vec<Slot>) -> Concat {
        let rows = slots[0].shape[0];
        let cols: usize = slots.iter().map(|s| s.shape[1]).sum();
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for s in &slots {
                let c = s.shape[1];
                data.extend_from_slice(&s.data[r * c..(r + 1) * c]);
            }
        }
        Concat {
            parts: slots.into_iter().map(|s| (s.id, s.shape)).collect(),
            data,
            cols,
        }
    }

    fn mat(&self) -> Mat<'_> {
        Mat::new(&self.data, self.data.len() / self.cols, self.cols)
    }

    /// Splits the gradient of the concatenation into its parts' gradients.
    fn add_grads(&self, g: &[f32], grads: &mut Grads) {
        let mut col = 0;
        for (id, shape) in &self.parts {
            let (rows, c) = (shape[0], shape[1]);
            let mut part = Vec::with_capacity(rows * c);
            for r in 0..rows {
                part.extend_from_slice(&g[r * self.cols + col..r * self.cols + col + c]);
            }
            grads.0.push((*id, shape.clone(), part));
            col += c;
        }
    }
}

struct Layer {
    ln1: Slot,
    /// `[Wq | Wk | Wv]`, `[d, d + 2·kv·hd]`.
    wqkv: Concat,
    /// `[bq | bk | bv]` (zeros where the model has no bias), and which of the three exist.
    bqkv: Vec<f32>,
    biases: [Option<ParamId>; 3],
    wo: Slot,
    ln2: Slot,
    /// `[Wg | Wu]`, `[d, 2·inter]`.
    wgu: Concat,
    wd: Slot,
}

/// The dimensions the kernels need.
#[derive(Debug, Clone, Copy)]
struct Dims {
    hidden: usize,
    inter: usize,
    eps: f32,
    attn: Shape,
}

/// Activations of one layer kept for the backward pass.
struct Saved {
    x: Vec<f32>,
    rstd1: Vec<f32>,
    xn1: Vec<f32>,
    qkv: Vec<f32>,
    o: Vec<f32>,
    lse: Vec<f32>,
    xmid: Vec<f32>,
    rstd2: Vec<f32>,
    xn2: Vec<f32>,
    gu: Vec<f32>,
    act: Vec<f32>,
}

impl Saved {
    /// Hands every buffer back once the layer's backward is done.
    fn recycle(self, ws: &mut Scratch) {
        let bufs = [
            self.x, self.rstd1, self.xn1, self.qkv, self.o, self.lse, self.xmid, self.rstd2,
            self.xn2, self.gu, self.act,
        ];
        for buf in bufs {
            ws.give(buf);
        }
    }
}

/// Parameter gradients in the order they are produced.
#[derive(Default)]
struct Grads(Vec<(ParamId, Vec<usize>, Vec<f32>)>);

impl Grads {
    fn add(&mut self, slot: &Slot, g: Vec<f32>) {
        debug_assert_eq!(g.len(), slot.data.len());
        self.0.push((slot.id, slot.shape.clone(), g));
    }
    fn add_vector(&mut self, id: ParamId, g: Vec<f32>) {
        self.0.push((id, vec![g.len()], g));
    }
}

/// Mean next-token cross-entropy of `inputs` → `targets` (both `[batch, seq]` row-major) and
/// its gradients times `grad_scale`, for every parameter of `model`, ready for the optimiser.
pub fn loss_and_grads<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
    grad_scale: f32,
) -> (f64, GradientsParams) {
    let n = batch * seq;
    let c = grad_scale / n as f32;
    let (nll, grads) = step(model, inputs, targets, batch, seq, |logits, vocab| {
        ops::cross_entropy(logits, targets, vocab, c)
    });
    (nll / n as f64, grads)
}

/// Weighted next-token cross-entropy `Σ_t w_t·nll_t` of `inputs` → `targets` (`weights`,
/// like both, `[batch, seq]` row-major; SFT's loss mask) and the gradients of `grad_scale ·`
/// that sum. A position of weight 0 adds nothing to the loss or the gradients.
pub fn weighted_loss_and_grads<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    weights: &[f32],
    (batch, seq): (usize, usize),
    grad_scale: f32,
) -> (f64, GradientsParams) {
    assert_eq!(weights.len(), batch * seq, "weights are [batch, seq]");
    step(model, inputs, targets, batch, seq, |logits, vocab| {
        ops::weighted_cross_entropy(logits, targets, weights, vocab, grad_scale)
    })
}

/// A per-token objective on the log-probabilities of `targets` (`[batch, seq]` row-major)
/// under the model's logits divided by `temperature`: `objective(logp, entropy)` returns the
/// loss, its derivative by each token's log-prob (0 where a token does not count) and by each
/// position's entropy (empty when the loss does not use it), and this returns the loss and
/// every parameter's gradient. GRPO's clipped-ratio loss with its
/// KL term is such an objective (`train::grpo::token_grads`).
pub fn logp_objective_and_grads<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
    temperature: f32,
    objective: impl FnOnce(&[f32], &[f32]) -> (f64, Vec<f32>, Vec<f32>),
) -> (f64, GradientsParams) {
    let k = 1.0 / temperature;
    step(model, inputs, targets, batch, seq, |logits, vocab| {
        let (logp, entropy) = ops::target_logp(logits, targets, vocab, k);
        let (loss, dlogp, dent) = objective(&logp, &entropy);
        assert_eq!(dlogp.len(), logp.len(), "one derivative per token");
        assert!(
            dent.is_empty() || dent.len() == logp.len(),
            "one entropy derivative per token"
        );
        ops::target_logp_backward(logits, targets, &dlogp, (&dent, &entropy), vocab, k);
        loss
    })
}

/// Forward, `head` (logits `[n, vocab]` → their gradient in place, returning the loss), then
/// backward.
fn step<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
    head: impl FnOnce(&mut [f32], usize) -> f64,
) -> (f64, GradientsParams) {
    assert_eq!(inputs.len(), batch * seq, "inputs are [batch, seq]");
    assert_eq!(targets.len(), batch * seq, "targets are [batch, seq]");
    let device = model.embed_tokens.weight.val().device();
    let embed = Slot::of(&model.embed_tokens.weight);
    let norm = Slot::of(&model.norm.gamma);
    let layers: Vec<Layer> = model.layers.iter().map(host_layer).collect();
    let first = &model.layers[0];
    let (vocab, hidden) = (embed.shape[0], embed.shape[1]);
    let dims = Dims {
        hidden,
        inter: layers[0].wgu.cols / 2,
        eps: first.input_layernorm.epsilon as f32,
        attn: Shape {
            batch,
            seq,
            heads: first.self_attn.n_heads,
            kv_heads: first.self_attn.n_kv_heads,
            head_dim: first.self_attn.head_dim,
        },
    };
    assert!(
        inputs.iter().chain(targets).all(|&t| (t as usize) < vocab),
        "token ids must be below the vocabulary size {vocab}"
    );
    let (cos, sin) = ops::rope_tables(dims.attn.head_dim, model.rope_theta, seq);

    let n = batch * seq;
    let d = hidden;
    let mut ws = Scratch::begin();
    // Forward.
    let mut x = ws.take(n * d);
    for (row, &tok) in x.chunks_mut(d).zip(inputs) {
        let t = tok as usize;
        row.copy_from_slice(&embed.data[t * d..(t + 1) * d]);
    }
    let mut saved = Vec::with_capacity(layers.len());
    for layer in &layers {
        let (next, s) = layer_forward(layer, &dims, x, &cos, &sin, &mut ws);
        saved.push(s);
        x = next;
    }
    let mut rstdf = ws.take(n);
    let mut xnf = ws.take(n * d);
    ops::rms_forward(&x, &norm.data, dims.eps, &mut xnf, &mut rstdf);
    let mut logits = ws.take(n * vocab);
    matmul(
        &mut logits,
        vocab,
        Mat::new(&xnf, n, d),
        Mat::new(&embed.data, vocab, d).t(),
        false,
        Threads::Pool,
    );
    let loss = head(&mut logits, vocab);
    let dlogits = logits;

    // Backward.
    let mut grads = Grads::default();
    let mut dembed = ws.take(vocab * d);
    let dl = Mat::new(&dlogits, n, vocab);
    matmul(
        &mut dembed,
        d,
        dl.t(),
        Mat::new(&xnf, n, d),
        false,
        Threads::Pool,
    );
    let mut dxn = ws.take(n * d);
    matmul(
        &mut dxn,
        d,
        dl,
        Mat::new(&embed.data, vocab, d),
        false,
        Threads::Pool,
    );
    ws.give(dlogits);
    let mut dx = ws.take(n * d);
    let dnorm = ops::rms_backward(&x, &norm.data, &rstdf, &dxn, &mut dx, false);
    grads.add(&norm, dnorm);
    for buf in [x, xnf, rstdf, dxn] {
        ws.give(buf);
    }
    for (layer, s) in layers.iter().zip(saved).rev() {
        layer_backward(layer, &dims, s, &mut dx, (&cos, &sin), &mut grads, &mut ws);
    }
    for (row, &tok) in dx.chunks(d).zip(inputs) {
        let t = tok as usize;
        for (g, &v) in dembed[t * d..(t + 1) * d].iter_mut().zip(row) {
            *g += v;
        }
    }
    grads.add(&embed, dembed);
    ws.give(dx);

    let mut out = GradientsParams::new();
    for (id, shape, data) in grads.0 {
        match shape.len() {
            1 => out.register::<B::InnerBackend, 1>(
                id,
                Tensor::from_data(TensorData::new(data, [shape[0]]), &device),
            ),
            2 => out.register::<B::InnerBackend, 2>(
                id,
                Tensor::from_data(TensorData::new(data, [shape[0], shape[1]]), &device),
            ),
            r => unreachable!("parameters are vectors or matrices, not rank {r}"),
        }
    }
    (loss, out)
}

fn host_layer<B: AutodiffBackend>(l: &super::qwen2::DecoderLayer<B>) -> Layer {
    let a = &l.self_attn;
    let bias = |lin: &burn::nn::Linear<B>, width: usize| match &lin.bias {
        Some(p) => (Slot::of(p).data, Some(p.id)),
        None => (vec![0.0; width], None),
    };
    let wq = Slot::of(&a.q_proj.weight);
    let wk = Slot::of(&a.k_proj.weight);
    let wv = Slot::of(&a.v_proj.weight);
    let (bq, iq) = bias(&a.q_proj, wq.shape[1]);
    let (bk, ik) = bias(&a.k_proj, wk.shape[1]);
    let (bv, iv) = bias(&a.v_proj, wv.shape[1]);
    Layer {
        ln1: Slot::of(&l.input_layernorm.gamma),
        wqkv: Concat::of(vec![wq, wk, wv]),
        bqkv: [bq, bk, bv].concat(),
        biases: [iq, ik, iv],
        wo: Slot::of(&a.o_proj.weight),
        ln2: Slot::of(&l.post_attention_layernorm.gamma),
        wgu: Concat::of(vec![
            Slot::of(&l.mlp.gate_proj.weight),
            Slot::of(&l.mlp.up_proj.weight),
        ]),
        wd: Slot::of(&l.mlp.down_proj.weight),
    }
}

/// One decoder block: `x` (`[n, d]`) → the next residual stream, and what the backward needs.
fn layer_forward(
    l: &Layer,
    dims: &Dims,
    x: Vec<f32>,
    cos: &[f32],
    sin: &[f32],
    ws: &mut Scratch,
) -> (Vec<f32>, Saved) {
    let sh = dims.attn;
    let (d, inter) = (dims.hidden, dims.inter);
    let n = sh.batch * sh.seq;
    let kvd = sh.kv_heads * sh.head_dim;
    let w = sh.qkv_width();
    let pool = Threads::Pool;

    let mut rstd1 = ws.take(n);
    let mut xn1 = ws.take(n * d);
    ops::rms_forward(&x, &l.ln1.data, dims.eps, &mut xn1, &mut rstd1);
    // [n, d] · [d, d + 2·kvd] → qkv [n, w], then the bias and the rotation of q and k.
    let mut qkv = ws.take(n * w);
    matmul(&mut qkv, w, Mat::new(&xn1, n, d), l.wqkv.mat(), false, pool);
    ops::add_bias(&mut qkv, w, &l.bqkv);
    ops::rope(&mut qkv, w, d + kvd, sh.head_dim, sh.seq, cos, sin, false);

    let mut o = ws.take(n * d);
    let mut lse = ws.take(sh.batch * sh.heads * sh.seq);
    attention::forward(&qkv, sh, &mut o, &mut lse);
    let mut proj = ws.take(n * d);
    let wo = Mat::new(&l.wo.data, d, d);
    matmul(&mut proj, d, Mat::new(&o, n, d), wo, false, pool);
    let mut xmid = ws.take(n * d);
    ops::add(&x, &proj, &mut xmid);

    let mut rstd2 = ws.take(n);
    let mut xn2 = ws.take(n * d);
    ops::rms_forward(&xmid, &l.ln2.data, dims.eps, &mut xn2, &mut rstd2);
    // [n, d] · [d, 2·inter] → gu [n, 2·inter]
    let mut gu = ws.take(n * 2 * inter);
    matmul(
        &mut gu,
        2 * inter,
        Mat::new(&xn2, n, d),
        l.wgu.mat(),
        false,
        pool,
    );
    let mut act = ws.take(n * inter);
    ops::swiglu(&gu, &mut act, inter);
    let wd = Mat::new(&l.wd.data, inter, d);
    matmul(&mut proj, d, Mat::new(&act, n, inter), wd, false, pool);
    let mut next = ws.take(n * d);
    ops::add(&xmid, &proj, &mut next);
    ws.give(proj);
    let saved = Saved {
        x,
        rstd1,
        xn1,
        qkv,
        o,
        lse,
        xmid,
        rstd2,
        xn2,
        gu,
        act,
    };
    (next, saved)
}

/// Backward of one block: `dx` holds the gradient of the block's output and leaves holding
/// that of its input; parameter gradients are pushed onto `grads`.
fn layer_backward(
    l: &Layer,
    dims: &Dims,
    s: Saved,
    dx: &mut [f32],
    rope: (&[f32], &[f32]),
    grads: &mut Grads,
    ws: &mut Scratch,
) {
    let sh = dims.attn;
    let (d, inter) = (dims.hidden, dims.inter);
    let n = sh.batch * sh.seq;
    let kvd = sh.kv_heads * sh.head_dim;
    let w = sh.qkv_width();
    let pool = Threads::Pool;

    // MLP: next = xmid + act · Wd, act = silu(g) · u, [g | u] = xn2 · [Wg | Wu].
    let dxm = Mat::new(dx, n, d);
    grads.add(&l.wd, weight_grad(Mat::new(&s.act, n, inter), dxm));
    let mut dact = ws.take(n * inter);
    let wd = Mat::new(&l.wd.data, inter, d);
    matmul(&mut dact, inter, dxm, wd.t(), false, pool);
    let mut dgu = ws.take(n * 2 * inter);
    ops::swiglu_backward(&s.gu, &dact, &mut dgu, inter);
    ws.give(dact);
    let dgu_m = Mat::new(&dgu, n, 2 * inter);
    l.wgu
        .add_grads(&weight_grad(Mat::new(&s.xn2, n, d), dgu_m), grads);
    let mut dxn = ws.take(n * d);
    matmul(&mut dxn, d, dgu_m, l.wgu.mat().t(), false, pool);
    ws.give(dgu);
    let dln2 = ops::rms_backward(&s.xmid, &l.ln2.data, &s.rstd2, &dxn, dx, true);
    grads.add(&l.ln2, dln2);

    // Attention: xmid = x + o · Wo, o = attention(rope(q), rope(k), v), qkv = xn1 · W + b.
    let dxm = Mat::new(dx, n, d);
    grads.add(&l.wo, weight_grad(Mat::new(&s.o, n, d), dxm));
    let mut dout = ws.take(n * d);
    let wo = Mat::new(&l.wo.data, d, d);
    matmul(&mut dout, d, dxm, wo.t(), false, pool);
    let mut dqkv = ws.take(n * w);
    attention::backward(&s.qkv, &s.o, &s.lse, &dout, sh, &mut dqkv);
    ws.give(dout);
    ops::rope(
        &mut dqkv,
        w,
        d + kvd,
        sh.head_dim,
        sh.seq,
        rope.0,
        rope.1,
        true,
    );
    let dbias = ops::col_sums(&dqkv, w, w);
    let spans = [0..d, d..d + kvd, d + kvd..w];
    for (id, span) in l.biases.iter().zip(spans) {
        if let Some(id) = id {
            grads.add_vector(*id, dbias[span].to_vec());
        }
    }
    let dqkv_m = Mat::new(&dqkv, n, w);
    l.wqkv
        .add_grads(&weight_grad(Mat::new(&s.xn1, n, d), dqkv_m), grads);
    matmul(&mut dxn, d, dqkv_m, l.wqkv.mat().t(), false, pool);
    let dln1 = ops::rms_backward(&s.x, &l.ln1.data, &s.rstd1, &dxn, dx, true);
    grads.add(&l.ln1, dln1);
    ws.give(dqkv);
    ws.give(dxn);
    s.recycle(ws);
}

/// `aᵀ · b` for activations `a` `[n, in]` and output gradients `b` `[n, out]`: `[in, out]`.
fn weight_grad(a: Mat, b: Mat) -> Vec<f32> {
    let (inputs, outputs) = (a.shape().1, b.shape().1);
    let mut g = vec![0.0f32; inputs * outputs];
    matmul(&mut g, outputs, a.t(), b, false, Threads::Pool);
    g
}
