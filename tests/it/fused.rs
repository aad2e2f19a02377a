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
    assert_grads_match("", &fg, &ag);
}

/// Every fused gradient within 1e-3 of its parameter's largest autodiff gradient (none zero).
fn assert_grads_match(name: &str, fused: &[(String, Vec<f32>)], autodiff: &[(String, Vec<f32>)]) {
    for ((path, f), (_, a)) in fused.iter().zip(autodiff) {
        assert_eq!(f.len(), a.len(), "{name} {path}");
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{name} {path}: zero gradient");
        let worst = f
            .iter()
            .zip(a)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= 1e-3 * scale,
            "{name} {path}: max abs diff {worst} against a largest gradient of {scale}"
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

/// GRPO's objective through the fused step against burn autodiff of `grpo::loss`: the same
/// loss and every parameter's gradient, for token- and sequence-mean, k1 and k3, asymmetric
/// clipping and a temperature, with old log-probs moved off the current ones so that some
/// ratios leave the clip range and masked positions (prompt and padding) in every row.
#[test]
fn fused_grpo_objective_matches_autodiff() {
    use burn::tensor::{Int, Tensor, TensorData};
    use dagmath::train::grpo::{self, Aggregation, GrpoConfig, KlEstimator, LossType, TokenBatch};
    type B = CpuBackend;
    let c = config(61, 4, 2);
    let m = model(&c, 7);
    let (b, t) = (3, 40);
    let dev = cpu_device();
    let x = tokens(b * t, c.vocab_size, 5);
    let y = tokens(b * t, c.vocab_size, 6);
    // Row r trains positions from 5 + 3r to t − 2r (a prompt, then padding).
    let mask: Vec<f32> = (0..b * t)
        .map(|i| {
            let (r, p) = (i / t, i % t);
            (p >= 5 + 3 * r && p < t - 2 * r) as u8 as f32
        })
        .collect();
    let adv = vec![1.3f32, -0.7, 0.4];
    let ints = |v: &[u32]| {
        Tensor::<B, 2, Int>::from_data(
            TensorData::new(v.iter().map(|&a| a as i64).collect::<Vec<_>>(), [b, t]),
            &dev,
        )
    };
    for (name, cfg, temp) in [
        ("token-mean k3", GrpoConfig::default(), 1.0f32),
        (
            "sequence-mean k1",
            GrpoConfig {
                aggregation: Aggregation::SequenceMean,
                kl_estimator: KlEstimator::K1,
                kl_coef: 0.05,
                ..GrpoConfig::default()
            },
            1.0,
        ),
        (
            "gspo, sequence-mean, k3",
            GrpoConfig {
                loss_type: LossType::Gspo,
                aggregation: Aggregation::SequenceMean,
                eps_low: 0.02,
                eps_high: 0.02,
                ..GrpoConfig::default()
            },
            1.0,
        ),
        (
            "cispo, k1",
            GrpoConfig {
                loss_type: LossType::Cispo,
                kl_estimator: KlEstimator::K1,
                kl_coef: 0.05,
                ..GrpoConfig::default()
            },
            1.0,
        ),
        (
            "dr grpo (constant normaliser), k3",
            GrpoConfig {
                aggregation: Aggregation::Constant,
                norm_tokens: 40,
                ..GrpoConfig::default()
            },
            1.0,
        ),
        (
            "asymmetric clip, no KL, T 0.7",
            GrpoConfig {
                eps_high: 0.28,
                kl_coef: 0.0,
                ..GrpoConfig::default()
            },
            0.7,
        ),
        (
            "entropy bonus, sequence mean, T 0.7",
            GrpoConfig {
                entropy_coef: 0.05,
                aggregation: Aggregation::SequenceMean,
                ..GrpoConfig::default()
            },
            0.7,
        ),
    ] {
        let k = 1.0 / temp;
        let logp_of = |model: &Qwen2<B>| {
            let z = model.forward(ints(&x)).mul_scalar(k);
            burn::tensor::activation::log_softmax(z, 2)
                .gather(2, ints(&y).reshape([b, t, 1]))
                .reshape([b, t])
        };
        let now: Vec<f32> = logp_of(&m).inner().into_data().to_vec().unwrap();
        // Old log-probs off by up to ±0.45, reference by up to ±0.3.
        let old: Vec<f32> = now
            .iter()
            .enumerate()
            .map(|(i, &v)| v + 0.45 * ((i as f32 * 0.37).sin()))
            .collect();
        let reference: Vec<f32> = now
            .iter()
            .enumerate()
            .map(|(i, &v)| v + 0.3 * ((i as f32 * 0.71).cos()))
            .collect();
        let host = |v: &[f32]| Tensor::<B, 2>::from_data(TensorData::new(v.to_vec(), [b, t]), &dev);
        let entropy_of = |model: &Qwen2<B>| {
            let lp =
                burn::tensor::activation::log_softmax(model.forward(ints(&x)).mul_scalar(k), 2);
            (lp.clone().exp() * lp).sum_dim(2).reshape([b, t]).neg()
        };
        let (burn_loss, s) = grpo::loss(
            logp_of(&m),
            host(&old),
            Some(host(&reference)),
            host(&mask),
            Tensor::<B, 1>::from_data(TensorData::new(adv.clone(), [b]), &dev),
            Some(entropy_of(&m)),
            &cfg,
        );
        assert!(
            s.clip_fraction > 0.05,
            "{name}: some ratios must be clipped"
        );
        let al: f64 = burn_loss.clone().into_scalar() as f64;
        let ag = GradientsParams::from_grads(burn_loss.backward(), &m);
        let (fl, fg) = fused::logp_objective_and_grads(&m, &x, &y, b, t, temp, |logp, entropy| {
            let batch = TokenBatch {
                logp,
                logp_old: &old,
                logp_ref: Some(&reference),
                mask: &mask,
                advantages: &adv,
                entropy: Some(entropy),
                seq: t,
            };
            let (loss, dlogp, dent, _) = grpo::token_grads(&batch, &cfg, 1.0);
            (loss, dlogp, dent)
        });
        assert!(
            (fl - al).abs() < 1e-4 * al.abs().max(1e-3),
            "{name}: loss {fl} vs {al}"
        );
        assert_grads_match(name, &flat(&m, &fg), &flat(&m, &ag));
    }
}
