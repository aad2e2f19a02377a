//! GRPO: the loss against hand-computed values for each variant, verifier rewards wired (a
//! perfect trace scores 1 under every reward), a tiny model's reward rising on a toy task, and
//! the RL loop end to end with checkpoints, resume and the compute record.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use dagmath::engine::{GenConfig, Sampling, Stops};
use dagmath::model::{hf, weights, ModelConfig};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::train::device::{cpu_device, CpuBackend, CpuInference};
use dagmath::train::grpo::{self, Aggregation, GrpoConfig, HostRollout, KlEstimator, LossType};
use dagmath::train::optim::{AdamW, OptimConfig, Schedule};
use dagmath::train::rl::{self, Group, Policy, RlConfig, Rollout};
use dagmath::train::{Silent, Start as RlStart};

/// Two rollouts with known ratios: rollout 1 (A = +1) has ratios 1 and 2; rollout 2 (A = −1)
/// has ratios 0.5, 1, 1. The reference differs from the policy by a factor 2 at two tokens.
fn batch() -> Vec<HostRollout> {
    let l = |p: f64| p.ln();
    vec![
        HostRollout {
            logp: vec![l(0.5), l(0.5)],
            logp_old: vec![l(0.5), l(0.25)],
            logp_ref: vec![l(0.5), l(0.5)],
            mask: vec![1.0, 1.0],
            advantage: 1.0,
            entropy: vec![1.0, 0.5],
        },
        HostRollout {
            logp: vec![l(0.2), l(0.4), l(0.1)],
            logp_old: vec![l(0.4), l(0.4), l(0.1)],
            logp_ref: vec![l(0.4), l(0.4), l(0.2)],
            mask: vec![1.0, 1.0, 1.0],
            advantage: -1.0,
            entropy: vec![0.2, 0.3, 0.4],
        },
    ]
}

/// The burn loss on the same batch (rows padded to 3 with mask 0).
fn burn_loss(b: &[HostRollout], c: &GrpoConfig) -> f64 {
    type B = CpuInference;
    let dev = cpu_device();
    let pad = |v: &Vec<f64>| -> Vec<f32> {
        let mut x: Vec<f32> = v.iter().map(|&y| y as f32).collect();
        x.resize(3, 0.0);
        x
    };
    let t = |f: &dyn Fn(&HostRollout) -> &Vec<f64>| {
        let flat: Vec<f32> = b.iter().flat_map(|r| pad(f(r))).collect();
        Tensor::<B, 2>::from_data(TensorData::new(flat, [b.len(), 3]), &dev)
    };
    let adv: Vec<f32> = b.iter().map(|r| r.advantage as f32).collect();
    let (loss, _) = grpo::loss(
        t(&|r| &r.logp),
        t(&|r| &r.logp_old),
        Some(t(&|r| &r.logp_ref)),
        t(&|r| &r.mask),
        Tensor::from_data(TensorData::new(adv, [b.len()]), &dev),
        Some(t(&|r| &r.entropy)),
        c,
    );
    loss.into_scalar() as f64
}

/// The entropy bonus by hand: token mean of the five entropies is 2.4 / 5 = 0.48, so
/// c_H = 0.1 lowers the token-mean loss by 0.048; sequence mean: (0.75 + 0.3) / 2 = 0.525.
#[test]
fn entropy_bonus_lowers_the_loss_by_c_times_the_mean_entropy() {
    for (aggregation, mean_entropy) in [
        (Aggregation::TokenMean, 0.48),
        (Aggregation::SequenceMean, 0.525),
    ] {
        let plain = GrpoConfig {
            aggregation,
            ..GrpoConfig::default()
        };
        let bonus = GrpoConfig {
            entropy_coef: 0.1,
            ..plain.clone()
        };
        let b = batch();
        let want = grpo::loss_host(&b, &plain) - 0.1 * mean_entropy;
        let host = grpo::loss_host(&b, &bonus);
        assert!(
            (host - want).abs() < 1e-12,
            "{aggregation:?}: {host} vs {want}"
        );
        let burn = burn_loss(&b, &bonus);
        assert!(
            (burn - want).abs() < 1e-5,
            "{aggregation:?}: burn {burn} vs {want}"
        );
    }
}

#[test]
fn grpo_loss_matches_hand_computed_values() {
    let off = GrpoConfig {
        kl_coef: 0.0,
        ..GrpoConfig::default()
    };
    // Per-token policy terms −min(r·A, clip(r)·A), ε = 0.2:
    //   rollout 1: r = 1 → −1; r = 2 → clip 1.2 → −1.2
    //   rollout 2: r = 0.5 → min(−0.5, −0.8) → +0.8; r = 1 → +1; r = 1 → +1
    // token-mean: (−1 − 1.2 + 0.8 + 1 + 1) / 5 = 0.12
    // sequence-mean: (−1.1 + 2.8/3) / 2 = −0.0833…
    // k1, β = 0.1: KL terms 0, 0, −ln2, 0, −ln2 → 0.12 + 0.1·(−2 ln2)/5
    // k3, β = 0.1: d = ln2 at two tokens → 2 − ln2 − 1 each → 0.12 + 0.1·2(1 − ln2)/5
    // asymmetric ε_high = 0.5: r = 2 clips to 1.5 → (−1 − 1.5 + 2.8) / 5 = 0.06
    let ln2 = std::f64::consts::LN_2;
    let cases: Vec<(&str, GrpoConfig, f64)> = vec![
        ("token-mean, no KL", off.clone(), 0.12),
        (
            "sequence-mean, no KL",
            GrpoConfig {
                aggregation: Aggregation::SequenceMean,
                ..off.clone()
            },
            (-1.1 + 2.8 / 3.0) / 2.0,
        ),
        (
            "token-mean, k1",
            GrpoConfig {
                kl_coef: 0.1,
                kl_estimator: KlEstimator::K1,
                ..off.clone()
            },
            0.12 - 0.1 * 2.0 * ln2 / 5.0,
        ),
        (
            "token-mean, k3",
            GrpoConfig {
                kl_coef: 0.1,
                kl_estimator: KlEstimator::K3,
                ..off.clone()
            },
            0.12 + 0.1 * 2.0 * (1.0 - ln2) / 5.0,
        ),
        (
            "asymmetric clip",
            GrpoConfig {
                eps_high: 0.5,
                ..off.clone()
            },
            0.06,
        ),
    ];
    // GSPO: sequence ratios s1 = exp(ln2 / 2) = √2 → clip 1.2 → −1.2; s2 = 2^(−1/3) ≈ 0.794,
    // A = −1 → min(−0.794, −0.8) → +0.8. Sequence-mean (−1.2 + 0.8) / 2 = −0.2; token-mean
    // (2·(−1.2) + 3·0.8) / 5 = 0.
    // CISPO: −clip(r)·A·logp: row 1 clip(r) = 1, 1.2 at logp ln 0.5; row 2 (A = −1) 0.8, 1, 1.
    // Dr. GRPO (constant, 4 tokens a rollout): the policy terms' sum 0.6 / (2 · 4) = 0.075.
    let cispo = (ln2 + 1.2 * ln2 + 0.8 * 0.2f64.ln() + 0.4f64.ln() + 0.1f64.ln()) / 5.0;
    let mut cases = cases;
    cases.extend([
        (
            "gspo, sequence-mean",
            GrpoConfig {
                loss_type: LossType::Gspo,
                aggregation: Aggregation::SequenceMean,
                ..off.clone()
            },
            -0.2,
        ),
        (
            "gspo, token-mean",
            GrpoConfig {
                loss_type: LossType::Gspo,
                ..off.clone()
            },
            0.0,
        ),
        (
            "cispo",
            GrpoConfig {
                loss_type: LossType::Cispo,
                ..off.clone()
            },
            cispo,
        ),
        (
            "dr grpo",
            GrpoConfig {
                aggregation: Aggregation::Constant,
                norm_tokens: 4,
                ..off.clone()
            },
            0.075,
        ),
    ]);
    for (name, c, want) in cases {
        let host = grpo::loss_host(&batch(), &c);
        assert!((host - want).abs() < 1e-12, "{name}: host {host} vs {want}");
        let b = burn_loss(&batch(), &c);
        assert!((b - want).abs() < 1e-5, "{name}: burn {b} vs {want}");
    }
    // Without std scaling the advantages are centred only.
    assert_eq!(grpo::advantages(&[1.0, 0.0], false, 0.0), vec![0.5, -0.5]);
    assert_eq!(grpo::advantages(&[1.0, 0.0], true, 0.0), vec![1.0, -1.0]);
}

/// The toy task's groups for one step of `policy`: reward = share of token 5 in an 8-token
/// completion (every completion runs to the limit; they count as complete).
fn toy_groups(policy: &Policy<CpuBackend>, seed: u64) -> Vec<Group> {
    let dev = cpu_device();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![3, 2, 1, 4]];
    let gen = GenConfig {
        sampling: Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        },
        max_new_tokens: 8,
        seed,
        batch_rows: 32,
        decoder: Default::default(),
    };
    let p: Vec<(&[u32], u64)> = prompts
        .iter()
        .map(|p| (p.as_slice(), p.len() as u64))
        .collect();
    let out = policy.rollout(&p, 8, &gen, &Stops::default(), &dev);
    prompts
        .iter()
        .zip(&out)
        .map(|(prompt, comps)| {
            let rollouts: Vec<Rollout> = comps
                .iter()
                .map(|c| Rollout {
                    tokens: prompt.iter().chain(&c.tokens).copied().collect(),
                    prompt_len: prompt.len(),
                    truncated: false,
                    reward: c.tokens.iter().filter(|&&t| t == 5).count() as f64 / 8.0,
                    logprobs: c.logprobs.clone(),
                })
                .collect();
            let rs: Vec<f64> = rollouts.iter().map(|r| r.reward).collect();
            Group {
                advantages: grpo::advantages(&rs, true, 1e-6),
                rollouts,
            }
        })
        .collect()
}

fn toy_policy(ppo_epochs: usize, mini_batches: usize, lr: f64) -> Policy<CpuBackend> {
    let c = micro(12);
    let model = weights::to_model::<CpuBackend>(&c, &weights::init(&c, 1), &cpu_device()).unwrap();
    Policy::<CpuBackend> {
        model,
        reference: None,
        optim: AdamW::new(OptimConfig {
            lr,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup: 0.0,
            ..OptimConfig::default()
        }),
        grpo: GrpoConfig {
            kl_coef: 0.0,
            ppo_epochs,
            mini_batches,
            ..GrpoConfig::default()
        },
        grad_clip: 1.0,
        micro_batch_rows: 16,
        pad: 0,
        temperature: 1.0,
        autodiff: false,
    }
}

#[test]
fn ppo_epochs_reuse_rollouts_and_the_clip_acts() {
    let dev = cpu_device();
    // One pass: the ratio is 1 up to the sampler/trainer gap, so nothing is clipped.
    let mut one = toy_policy(1, 1, 5e-2);
    let groups = toy_groups(&one, 3);
    let s = one.update(&groups, 5e-2, &dev);
    assert_eq!(s.optimizer_steps, 1);
    assert_eq!(s.clip_fraction, 0.0);
    assert!(
        s.logp_gap_max < 1e-4,
        "sampler vs trainer log-probs: {}",
        s.logp_gap_max
    );
    // Two passes in two mini-batches at a large learning rate: four optimiser steps on the
    // same rollouts, and by the later ones the ratio has left [1 − ε, 1 + ε].
    let mut two = toy_policy(2, 2, 5e-2);
    let groups = toy_groups(&two, 3);
    let s = two.update(&groups, 5e-2, &dev);
    assert_eq!(s.optimizer_steps, 4);
    assert!(s.clip_fraction > 0.0, "clip fraction {}", s.clip_fraction);
    assert!(s.logp_gap_max < 1e-4);
}

/// Largest absolute difference between two models' parameters.
fn max_param_diff(a: &Policy<CpuBackend>, b: &Policy<CpuBackend>) -> f32 {
    let (wa, wb) = (weights::from_model(&a.model), weights::from_model(&b.model));
    wa.iter()
        .zip(&wb)
        .flat_map(|((_, x), (_, y))| x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// Rows of three lengths in every group, so that micro-batches grouped by length differ from
/// micro-batches taken in order.
fn uneven(groups: &mut [Group]) {
    for g in groups {
        for (i, r) in g.rollouts.iter_mut().enumerate() {
            let cut = i % 3 * 2;
            let keep = r.tokens.len() - cut;
            r.tokens.truncate(keep);
            r.logprobs.truncate(keep - r.prompt_len);
        }
    }
}

#[test]
fn micro_batches_grouped_by_length_leave_the_update_unchanged() {
    let dev = cpu_device();
    let mut whole = toy_policy(1, 1, 5e-2);
    let mut groups = toy_groups(&whole, 7);
    uneven(&mut groups);
    let mut split = toy_policy(1, 1, 5e-2);
    split.micro_batch_rows = 3;
    let (a, b) = (
        whole.update(&groups, 5e-2, &dev),
        split.update(&groups, 5e-2, &dev),
    );
    assert!(
        (a.loss - b.loss).abs() < 1e-5,
        "loss {} vs {}",
        a.loss,
        b.loss
    );
    assert!((a.grad_norm - b.grad_norm).abs() < 1e-5);
    assert_eq!(a.tokens, b.tokens);
    // AdamW's first step is ±lr wherever a gradient is well above its ε, so float noise in
    // a near-zero gradient can move a parameter by a fraction of lr: compare against lr.
    let diff = max_param_diff(&whole, &split);
    assert!(diff < 1e-3, "parameters differ by {diff}");
}

#[test]
fn stand_in_old_logprobs_follow_their_rows_through_the_length_grouping() {
    // Without the sampler's log-probs, the second pass's old log-probs are the stand-ins the
    // first pass recorded per row; they must land on the same rows as the sampler's would.
    let dev = cpu_device();
    let mut sampler = toy_policy(2, 1, 5e-2);
    sampler.micro_batch_rows = 3;
    let mut groups = toy_groups(&sampler, 5);
    uneven(&mut groups);
    let mut stand_in = toy_policy(2, 1, 5e-2);
    stand_in.micro_batch_rows = 3;
    let mut without = groups.clone();
    for g in &mut without {
        for r in &mut g.rollouts {
            r.logprobs.clear();
        }
    }
    let a = sampler.update(&groups, 5e-2, &dev);
    let b = stand_in.update(&without, 5e-2, &dev);
    assert_eq!((a.optimizer_steps, b.optimizer_steps), (2, 2));
    assert!(
        (a.loss - b.loss).abs() < 1e-4,
        "loss {} vs {}",
        a.loss,
        b.loss
    );
    assert!((a.clip_fraction - b.clip_fraction).abs() < 1e-6);
    let diff = max_param_diff(&sampler, &stand_in);
    assert!(diff < 5e-3, "parameters differ by {diff} (lr 5e-2)");
}

const DATA: &str = r#"
name = "rl-it"
seed = 3
[[splits]]
name = "pool"
held_out = true
size = 24
ops = "2-3"
templates = { zoo = 1.0 }
modes = { forward = 0.5, reverse = 0.5 }
"#;

fn dataset(dir: &Path) -> PathBuf {
    crate::dataset::generate_into(dir, DATA)
}

#[test]
fn a_perfect_trace_gets_reward_one_under_every_variant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let ds = dagmath::dataset::reader::Dataset::open(&data).unwrap();
    let rows = ds.read_split("pool").unwrap();
    for kind in ["outcome", "process", "mixed", "strict", "penalty"] {
        let text = format!(
            "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"pool\"]\n[rl]\nreward = \"{kind}\"\n"
        );
        let c = RlConfig::from_toml(&text).unwrap();
        for r in &rows {
            let v = dagmath::trace::verify(&r.graph, &r.completion, c.rule());
            assert_eq!(c.reward().score(&v), 1.0, "{kind}: {}", r.id);
        }
    }
    // An [optim] table overrides the RL defaults key by key: the schedule stays constant.
    let c = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[optim]\nlr = 1e-4\n",
    )
    .unwrap();
    assert_eq!((c.optim.lr, c.optim.schedule), (1e-4, Schedule::Constant));
    assert!(RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[optim]\nlr_max = 1\n"
    )
    .is_err());
}

fn micro(vocab: usize) -> ModelConfig {
    ModelConfig {
        vocab_size: vocab,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 64,
        ..ModelConfig::preset("tiny", vocab).unwrap()
    }
}

#[test]
fn reward_rises_under_grpo_on_a_toy_task() {
    // Toy task: the reward is the share of token 5 in an 8-token completion.
    let dev = cpu_device();
    let mut policy = toy_policy(1, 1, 1e-2);
    let mut rewards = Vec::new();
    for step in 0..25u64 {
        let groups = toy_groups(&policy, step);
        let total: f64 = groups
            .iter()
            .flat_map(|g| g.rollouts.iter().map(|r| r.reward))
            .sum();
        rewards.push(total / 16.0);
        policy.update(&groups, 1e-2, &dev);
    }
    let first: f64 = rewards[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = rewards[20..].iter().sum::<f64>() / 5.0;
    eprintln!("toy GRPO reward: first 5 steps {first:.3}, last 5 steps {last:.3}");
    assert!(
        last > first + 0.3,
        "reward did not rise: first {first:.3}, last {last:.3} ({rewards:?})"
    );
}

fn rl_config(data: &Path, out: &Path) -> RlConfig {
    let text = format!(
        r#"
seed = 4
out = "{out}"
[data]
dir = "{data}"
splits = ["pool"]
[rl]
steps = 3
prompts_per_step = 3
group_size = 3
micro_batch_rows = 4
[rollout]
max_new_tokens = 24
[optim]
lr = 1e-3
[checkpoint]
every = 1
keep = 5
"#,
        out = out.display(),
        data = data.display()
    );
    RlConfig::from_toml(&text).unwrap()
}

/// A starting checkpoint at `dir/name`: fresh weights of the micro model with the domain
/// tokenizer, as a Hugging Face folder; returns its path and the model's dimensions.
fn fresh_checkpoint(dir: &Path, name: &str) -> (PathBuf, ModelConfig) {
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let c = micro(tok.vocab_size());
    let path = dir.join(name);
    hf::export(&path, &c, &weights::init(&c, 2), tok.json(), 0, 1).unwrap();
    (path, c)
}

#[test]
fn rl_loop_checkpoints_resumes_and_records_compute() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");

    let cfg = rl_config(&data, &dir.path().join("run"));
    let full = rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
        .unwrap();
    assert_eq!(full.metrics.len(), 3);
    let phases = &full.phases;
    assert_eq!(phases.last().unwrap().name, "rl");
    assert_eq!(phases.last().unwrap().steps, 3);
    assert!(phases.last().unwrap().flops > 0.0);
    let m = full.metrics.last().unwrap();
    assert_eq!(m.cum_flops, m.flops, "no phase before RL here");
    assert!(cfg.out.join("rl_curve.svg").exists());
    // The checkpoint is an HF folder eval can load, with the RL state.
    let l = dagmath::train::checkpoint::load(&full.final_checkpoint).unwrap();
    assert!(l.rl_state.is_some() && l.state.is_none());
    assert_eq!(l.phases, full.phases);

    // Starting again without --resume is refused; resuming from step 2 redoes step 3.
    assert!(
        rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
            .is_err()
    );
    std::fs::remove_dir_all(cfg.out.join("checkpoints/step-00000003")).unwrap();
    let resumed =
        rl::train_rl::<CpuBackend>(&cfg, RlStart::Resume, &cpu_device(), &mut Silent).unwrap();
    assert_eq!(resumed.metrics.len(), 1);
    let (a, b) = (&full.metrics[2], &resumed.metrics[0]);
    assert_eq!(a.step, b.step);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.reward, b.reward);
    assert_eq!(a.response_length, b.response_length);
    assert!(
        (a.loss - b.loss).abs() <= 1e-5 * a.loss.abs().max(1.0),
        "{} vs {}",
        a.loss,
        b.loss
    );
    let lines = std::fs::read_to_string(cfg.out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        3,
        "the log is cut back to the checkpoint"
    );
}

#[test]
fn eval_and_select_cli_end_to_end() {
    use crate::cli::{assert_usage_error, dagmath};
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (ckpt, _) = fresh_checkpoint(dir.path(), "ckpt");
    let (ck, d) = (ckpt.to_str().unwrap(), data.to_str().unwrap());
    let eval = |out: &Path, batch_rows: &str| {
        dagmath(&[
            "eval",
            "--checkpoint",
            ck,
            "--data",
            d,
            "--splits",
            "pool",
            "--samples",
            "5",
            "--limit",
            "4",
            "--max-new-tokens",
            "16",
            "--batch-rows",
            batch_rows,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let out = dir.path().join("eval");
    let o = eval(&out, "64");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "samples.parquet",
        "verdicts.parquet",
        "summary.json",
        "passk_vs_op.svg",
        "passk_vs_k.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["samples"], 20);
    assert_eq!(summary["eval"]["samples"], 5);
    // pass@k for every k ≤ N, not only the powers of two printed.
    let ks: std::collections::BTreeSet<u64> = summary["pass_at_k"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["k"].as_u64().unwrap())
        .collect();
    assert_eq!(ks, (1..=5).collect());
    // Same seed, same samples, whatever the batching.
    let again = dir.path().join("eval2");
    let o = eval(&again, "5");
    assert!(o.status.success());
    let read = |p: &Path| {
        let f = std::fs::File::open(p.join("samples.parquet")).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        r.map(|b| format!("{:?}", b.unwrap().column(5)))
            .collect::<String>()
    };
    assert_eq!(read(&out), read(&again), "batching changed the samples");
    // Bad input is named.
    let o2 = dir.path().join("x");
    let x = o2.to_str().unwrap();
    assert_usage_error(
        &dagmath(&[
            "eval",
            "--checkpoint",
            ck,
            "--data",
            d,
            "--splits",
            "nope",
            "--out",
            x,
        ]),
        "nope",
    );
    assert_usage_error(
        &dagmath(&[
            "eval",
            "--checkpoint",
            ck,
            "--data",
            d,
            "--temperature=-1",
            "--out",
            x,
        ]),
        "temperature",
    );
    assert_usage_error(
        &dagmath(&[
            "select",
            "--checkpoint",
            ck,
            "--pool",
            d,
            "--band",
            "0.7-0.2",
            "--out",
            x,
        ]),
        "0.7-0.2",
    );
    assert!(!o2.exists(), "nothing written on bad input");
    // Select with the full band keeps every problem tried, as a dataset.
    let sel = dir.path().join("sel");
    let o = dagmath(&[
        "select",
        "--checkpoint",
        ck,
        "--pool",
        d,
        "--samples",
        "2",
        "--band",
        "0-1",
        "--limit",
        "5",
        "--max-new-tokens",
        "8",
        "--out",
        sel.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ds = dagmath::dataset::reader::Dataset::open(&sel).unwrap();
    assert_eq!(ds.read_split("pool").unwrap().len(), 5);
    assert!(sel.join("selection.parquet").exists());
}

#[test]
fn midtrain_from_a_run_folder_starts_from_its_latest_checkpoint() {
    // `train rl --from RUN` takes a run folder (its latest checkpoint); `train midtrain --from
    // RUN` failed on it with "RUN/config.json: No such file or directory", which stopped the
    // study's midtrain experiment (examples/study.sh passes the base model's run folder).
    use crate::cli::{assert_usage_error, dagmath};
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");
    let run = dir.path().join("run");
    let mut cfg = rl_config(&data, &run);
    cfg.rl.steps = 1;
    rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent).unwrap();
    assert!(
        !run.join("config.json").exists(),
        "a run folder, not a checkpoint"
    );
    let mid = dir.path().join("mid.toml");
    std::fs::write(
        &mid,
        format!(
            "out = \"{}\"\n[data]\ndir = \"{}\"\nsplits = [\"pool\"]\nseq_len = 32\n\
             [budget]\ntokens = 256\nbatch_size = 4\n",
            dir.path().join("mid").display(),
            data.display()
        ),
    )
    .unwrap();
    let midtrain = |from: &Path| {
        let (cfg, from) = (mid.to_str().unwrap(), from.to_str().unwrap());
        dagmath(&[
            "train", "midtrain", "--config", cfg, "--from", from, "--force",
        ])
    };
    let o = midtrain(&run);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.path().join("mid/checkpoints").is_dir());
    // A folder that is neither is still a usage error naming it.
    assert_usage_error(&midtrain(&dir.path().join("nowhere")), "nowhere");
}

#[test]
fn a_compute_split_stops_midtraining_and_rl_at_their_shares() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, c) = fresh_checkpoint(dir.path(), "start");
    // Mid-training: β·F is 3.5 steps' worth → 3 steps, whatever budget.tokens says.
    let seq = 32usize;
    let per_step = (4 * seq) as f64 * c.train_flops_per_token(seq);
    let total_flops = 7.0 * per_step;
    let mid: dagmath::train::TrainConfig = toml::from_str(&format!(
        r#"
out = "{out}"
[data]
dir = "{data}"
splits = ["pool"]
seq_len = {seq}
[budget]
tokens = 1_000_000
batch_size = 4
[compute]
total_flops = {total_flops}
beta = 0.5
"#,
        out = dir.path().join("mid").display(),
        data = data.display(),
    ))
    .unwrap();
    let s = dagmath::train::train::<CpuBackend>(
        &mid,
        "midtrain",
        dagmath::train::Start::From(&start),
        &cpu_device(),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(s.phases.last().unwrap().steps, 3);
    // RL: its share is (1 − β)·F; it stops once spent, well before rl.steps.
    let mut cfg = rl_config(&data, &dir.path().join("rl"));
    cfg.rl.steps = 50;
    let probe = rl::train_rl::<CpuBackend>(
        &RlConfig {
            rl: dagmath::train::rl::RlSettings {
                steps: 1,
                ..cfg.rl.clone()
            },
            out: dir.path().join("probe"),
            ..cfg.clone()
        },
        RlStart::From(&start),
        &cpu_device(),
        &mut Silent,
    )
    .unwrap();
    let one_step = probe.metrics[0].flops;
    cfg.compute = Some(dagmath::train::config::ComputeSplit {
        total_flops: 4.0 * one_step,
        beta: 0.5,
    });
    let s = rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
        .unwrap();
    let spent = s.phases.last().unwrap().flops;
    let steps = s.metrics.len();
    assert!((2..50).contains(&steps), "{steps} steps");
    assert!(spent >= 2.0 * one_step);
    assert!(
        s.metrics[steps - 2].flops < 2.0 * one_step,
        "it stopped at the first step past its share"
    );
}

#[test]
fn rollouts_follow_a_stepped_max_new_tokens() {
    let parse = |v: &str| {
        RlConfig::from_toml(&format!(
            "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[rollout]\nmax_new_tokens = {v}\n"
        ))
        .and_then(|c| c.validate().map(|_| c))
    };
    let c = parse("{ 0 = 256, 100 = 512 }").unwrap();
    let m = &c.rollout.max_new_tokens;
    assert_eq!(
        (m.at(0), m.at(99), m.at(100), m.at(5000)),
        (256, 256, 512, 512)
    );
    assert_eq!(m.max(), 512);
    assert_eq!(parse("300").unwrap().rollout.max_new_tokens.at(7), 300);
    for (bad, needle) in [
        ("{ 10 = 256 }", "must list step 0"),
        ("{ 0 = 256, x = 512 }", "\"x\" is not a step number"),
        ("{ 0 = 0 }", "0 at step 0"),
        ("0", "0 at step 0"),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }

    // End to end: 4 new tokens for steps 0-1, then 12 (the micro model rarely stops early).
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");
    let mut cfg = rl_config(&data, &dir.path().join("run"));
    cfg.rollout.max_new_tokens = parse("{ 0 = 4, 2 = 12 }").unwrap().rollout.max_new_tokens;
    let run = rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
        .unwrap();
    let lens: Vec<f64> = run.metrics.iter().map(|m| m.response_length).collect();
    assert!(lens[0] <= 4.0 && lens[1] <= 4.0, "{lens:?}");
    assert!(lens[2] > 4.0 && lens[2] <= 12.0, "{lens:?}");
}

#[test]
fn dynamic_sampling_oversamples_in_bounded_rounds_and_logs_them() {
    // The micro model never answers right, so every group's outcome is uniform: dynamic
    // sampling drops them all, and oversampling tries again up to `max_sampling_rounds`.
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");
    for (rounds, dynamic) in [(3, true), (1, true), (3, false)] {
        let mut cfg = rl_config(&data, &dir.path().join(format!("run-{rounds}-{dynamic}")));
        cfg.rl.steps = 1;
        cfg.rl.dynamic_sampling = dynamic;
        cfg.rl.max_sampling_rounds = rounds;
        let run =
            rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
                .unwrap();
        let m = &run.metrics[0];
        let used = if dynamic { rounds } else { 1 };
        assert_eq!(m.sampling_rounds, used, "{rounds} {dynamic}");
        assert_eq!(m.sampled_groups, used * cfg.rl.prompts_per_step);
        assert_eq!(m.dropped_groups, if dynamic { m.sampled_groups } else { 0 });
        assert!(!m.zero_variance_by_op.is_empty());
        assert!(m
            .zero_variance_by_op
            .values()
            .all(|s| (0.0..=1.0).contains(s)));
    }
    let bad = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[rl]\nmax_sampling_rounds = 0\n",
    )
    .and_then(|c| c.validate());
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("rl.max_sampling_rounds = 0"));
}

#[test]
fn grpo_variants_parse_and_dr_grpo_normalises_by_the_token_limit() {
    let c = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[rollout]\nmax_new_tokens = { 0 = 256, 50 = 512 }\n\
         [grpo]\nloss_type = \"gspo\"\naggregation = \"constant\"\nscale_std = false\n",
    )
    .unwrap();
    assert_eq!(c.grpo.loss_type, LossType::Gspo);
    assert_eq!(c.grpo.aggregation, Aggregation::Constant);
    assert_eq!(c.grpo.norm_tokens, 512);
    let c = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n\
         [grpo]\nscale_rewards = \"batch\"\nadvantage = \"passk\"\nentropy_coef = 0.01\n",
    )
    .unwrap();
    assert_eq!(c.grpo.entropy_coef, 0.01);
    assert_eq!(c.grpo.scaling(), grpo::ScaleRewards::Batch);
    assert_eq!(c.grpo.advantage, grpo::AdvantageKind::Passk);
    // Every variant runs through the loop (the micro model, two steps each).
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");
    for (i, (loss_type, aggregation, scale, advantage)) in [
        (
            LossType::Gspo,
            Aggregation::SequenceMean,
            grpo::ScaleRewards::Batch,
            grpo::AdvantageKind::Grpo,
        ),
        (
            LossType::Cispo,
            Aggregation::TokenMean,
            grpo::ScaleRewards::Group,
            grpo::AdvantageKind::Passk,
        ),
        (
            LossType::Grpo,
            Aggregation::Constant,
            grpo::ScaleRewards::None,
            grpo::AdvantageKind::Grpo,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = rl_config(&data, &dir.path().join(format!("run-{i}")));
        cfg.rl.steps = 2;
        cfg.grpo.loss_type = loss_type;
        cfg.grpo.aggregation = aggregation;
        cfg.grpo.norm_tokens = 24;
        cfg.grpo.scale_rewards = Some(scale);
        cfg.grpo.advantage = advantage;
        // DAPO's soft overlong punishment on the first variant: the last 16 of 24 tokens;
        // an entropy bonus on the second.
        if i == 0 {
            cfg.rl.overlong_buffer = 16;
            cfg.rl.overlong_penalty = 0.5;
        }
        if i == 1 {
            cfg.grpo.entropy_coef = 0.01;
        }
        let run =
            rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
                .unwrap();
        assert!(run.metrics.iter().all(|m| m.loss.is_finite()), "{i}");
        for m in &run.metrics {
            // Completions longer than 8 tokens pay; none pays more than the factor.
            assert!((-0.5..=0.0).contains(&m.overlong_penalty), "{i}: {m:?}");
            if i > 0 {
                assert_eq!(m.overlong_penalty, 0.0);
            } else if m.response_length > 8.0 {
                assert!(m.overlong_penalty < 0.0, "{m:?}");
            }
        }
    }
    let e = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[rollout]\nmax_new_tokens = 64\n\
         [rl]\noverlong_buffer = 65\n",
    )
    .and_then(|c| c.validate())
    .unwrap_err()
    .to_string();
    assert!(e.contains("rl.overlong_buffer = 65"), "{e}");
    let e = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[grpo]\nloss_type = \"ppo\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ppo"), "{e}");
}

#[test]
fn reference_sync_resets_the_kl_and_a_resume_keeps_the_synced_reference() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let (start, _) = fresh_checkpoint(dir.path(), "start");
    let run = |name: &str, sync_every: u64, alpha: f64| {
        let mut cfg = rl_config(&data, &dir.path().join(name));
        cfg.grpo.kl_coef = 0.1;
        cfg.rollout.max_new_tokens = rl::MaxNewTokens::Fixed(300);
        cfg.rollout.temperature = 3.0;
        // The random model never answers right; the soft overlong punishment gives each
        // group's rollouts different rewards, so the policy moves.
        cfg.rl.overlong_buffer = 300;
        cfg.reference.sync_every = sync_every;
        cfg.reference.mixup_alpha = alpha;
        let s = rl::train_rl::<CpuBackend>(&cfg, RlStart::From(&start), &cpu_device(), &mut Silent)
            .unwrap();
        (cfg, s)
    };
    // Frozen: by step 3 the policy has moved off its start. Reset every step: each update
    // starts at the reference, so its KL stays at rounding level.
    let (_, frozen) = run("frozen", 0, 1.0);
    let (_, reset) = run("reset", 1, 1.0);
    let (kf, kr) = (frozen.metrics[2].kl, reset.metrics[2].kl);
    assert!(
        kf > 0.0 && kr.abs() < kf / 100.0,
        "frozen {kf:e}, reset {kr:e}"
    );
    assert_eq!(
        frozen.metrics[0].kl, reset.metrics[0].kl,
        "no sync before step 1"
    );

    // Mix-up every 2 steps: step 2's checkpoint carries the mixed reference, step 1's none,
    // and a resume from step 2 redoes step 3 with it (its KL equals the uninterrupted run's).
    let (cfg, full) = run("mixup", 2, 0.5);
    let ckpt = |s: u64| cfg.out.join(format!("checkpoints/step-{s:08}"));
    assert!(!ckpt(1).join(rl::reference::REFERENCE_FILE).exists());
    let mixed = weights::load_safetensors(&ckpt(2).join(rl::reference::REFERENCE_FILE)).unwrap();
    let policy = dagmath::train::checkpoint::load(&ckpt(2)).unwrap().weights;
    let begin = dagmath::train::checkpoint::load(&start).unwrap().weights;
    let name = "model.layers.0.mlp.up_proj.weight";
    for ((m, p), b) in mixed[name]
        .data
        .iter()
        .zip(&policy[name].data)
        .zip(&begin[name].data)
    {
        assert!((m - (0.5 * p + 0.5 * b)).abs() <= 1e-6, "{m} {p} {b}");
    }
    std::fs::remove_dir_all(ckpt(3)).unwrap();
    let resumed =
        rl::train_rl::<CpuBackend>(&cfg, RlStart::Resume, &cpu_device(), &mut Silent).unwrap();
    let (a, b) = (full.metrics[2].kl, resumed.metrics[0].kl);
    assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-9), "{a:e} vs {b:e}");
    assert!(
        (a - frozen.metrics[2].kl).abs() > 0.0,
        "the mixed reference differs from the frozen one"
    );

    let bad = RlConfig::from_toml(
        "out = \"x\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[grpo]\nkl_coef = 0\n[reference]\nsync_every = 5\n",
    )
    .and_then(|c| c.validate());
    let e = bad.unwrap_err().to_string();
    assert!(e.contains("reference.sync_every = 5"), "{e}");
}
