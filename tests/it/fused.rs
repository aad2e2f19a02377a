//! The fused CPU training step against burn autodiff: the same loss and the same gradient for
//! every parameter, on shapes that exercise partial attention blocks, grouped KV heads, biases
//! and norm weights away from their initial values; and bit-identical results whatever the
//! thread count and from one step to the next on reused buffers.

use burn::optim::GradientsParams;
use dagmath::model::{fused, weights, ModelConfig, Qwen2};
use dagmath::train::device::{cpu_device, CpuBackend, CpuInference};
use dagmath::train::optim::param_paths;
use dagmath::train::trainer::autodiff_loss_and_grads;

fn config(vocab: usize, heads: usize, kv: usize) -> ModelConfig {
    ModelConfig {
        vocab_size: vocab,
        hidden_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        intermediate_size: 80,
        ..ModelConfig::preset("tiny", vocab).unwrap()
    }
}

/// A model whose biases and norm weights are not zeros and ones, so their gradients are
/// tested through non-trivial values.
fn model(c: &ModelConfig, seed: u64) -> Qwen2<CpuBackend> {
    let mut w = weights::init(c, seed);
    for (name, t) in w.iter_mut() {
        if name.ends_with(".bias") || name.ends_with("norm.weight") {
            let base = if name.ends_with(".bias") { 0.0 } else { 1.0 };
            for (i, v) in t.data.iter_mut().enumerate() {
                *v = base + 0.3 * ((i as f32 * 1.7 + seed as f32).sin());
            }
        }
    }
    weights::to_model(c, &w, &cpu_device()).unwrap()
}

fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729) % vocab) as u32)
        .collect()
}

/// Every gradient as (path, values).
fn flat(model: &Qwen2<CpuBackend>, g: &GradientsParams) -> Vec<(String, Vec<f32>)> {
    param_paths(model)
        .into_iter()
        .map(|(path, id)| {
            let vector = path.ends_with("bias") || path.ends_with("gamma");
            let v = if vector {
                g.get::<CpuInference, 1>(id).map(|t| t.into_data())
            } else {
                g.get::<CpuInference, 2>(id).map(|t| t.into_data())
            };
            let v = v.unwrap_or_else(|| panic!("no gradient for {path}"));
            (path, v.to_vec::<f32>().unwrap())
        })
        .collect()
}

fn check(c: &ModelConfig, batch: usize, seq: usize) {
    let m = model(c, 3);
    let x = tokens(batch * seq, c.vocab_size, 1);
    let y = tokens(batch * seq, c.vocab_size, 2);
    let (fl, fg) = fused::loss_and_grads(&m, &x, &y, batch, seq, 0.5);
    let (al, ag) = autodiff_loss_and_grads(&m, &x, &y, batch, seq, 0.5);
    assert!((fl - al).abs() < 1e-5 * al, "loss {fl} vs {al}");
    let (fg, ag) = (flat(&m, &fg), flat(&m, &ag));
    assert_eq!(fg.len(), 2 + 12 * c.num_hidden_layers);
    for ((path, f), (_, a)) in fg.iter().zip(&ag) {
        assert_eq!(f.len(), a.len(), "{path}");
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{path}: zero gradient");
        let worst = f
            .iter()
            .zip(a)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= 1e-3 * scale,
            "{path}: max abs diff {worst} against a largest gradient of {scale}"
        );
    }
}

#[test]
fn fused_step_matches_autodiff() {
    // 70 positions: a full 64-row attention block and a partial one; 2 query heads per KV head.
    check(&config(61, 4, 2), 2, 70);
    // One query head per KV head, and a sequence shorter than a block.
    check(&config(40, 2, 2), 3, 17);
}

#[test]
fn fused_step_is_bitwise_identical_across_thread_counts() {
    // 600 tokens: weight gradients sum over more than gemm's 512-deep chunks. Their products
    // split into blocks of rows: 208 MLP rows (48 wide) into blocks of 69 at least, 96
    // hidden rows (192 or 416 wide) into blocks of 32 at least.
    let c = ModelConfig {
        hidden_size: 96,
        intermediate_size: 208,
        ..config(61, 4, 2)
    };
    let m = model(&c, 5);
    let (b, t) = (3, 200);
    let x = tokens(b * t, c.vocab_size, 3);
    let y = tokens(b * t, c.vocab_size, 4);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (l, g) = fused::loss_and_grads(&m, &x, &y, b, t, 1.0);
            // Again, on buffers the first step left behind.
            let (l2, g2) = fused::loss_and_grads(&m, &x, &y, b, t, 1.0);
            let (g, g2) = (flat(&m, &g), flat(&m, &g2));
            assert_eq!(l.to_bits(), l2.to_bits(), "loss of a repeated step");
            for ((path, a), (_, b)) in g.iter().zip(&g2) {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{path} differs in a repeated step"
                );
            }
            (l, g)
        })
    };
    let one = run(1);
    for threads in [2, 3, 4] {
        let other = run(threads);
        assert_eq!(
            one.0.to_bits(),
            other.0.to_bits(),
            "loss, {threads} threads"
        );
        for ((path, a), (_, b)) in one.1.iter().zip(&other.1) {
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{path} differs with {threads} threads"
            );
        }
    }
}
