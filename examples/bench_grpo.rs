//! Seconds per GRPO step at the micro experiment's settings, split into rollout, verification
//! and update: after (host decoder, update through the fused step) and before (burn decoder,
//! update through burn autodiff, what the CPU ran until issue 13), in interleaved rounds with
//! medians.
//!
//! Settings: `tiny` with random weights, 8 prompts (zoo, op 2-6, both modes) × 6 rollouts,
//! T = 1.0, ≤ 256 new tokens, stop at `</answer>`; the update is one AdamW step (micro-batches
//! of 16 rows), KL to the frozen start (k3, β 0.001).
//!
//! cargo run --release --example bench_grpo [-- --rounds 3]

use std::time::Instant;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::engine::{DecoderKind, GenConfig, Sampling};
use dagmath::graph::GoldGraph;
use dagmath::model::{weights, ModelConfig};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::trace::{Reward, Rule, Verifier};
use dagmath::train::device::{cpu_device, CpuBackend};
use dagmath::train::grpo::{self, GrpoConfig};
use dagmath::train::optim::{AdamW, OptimConfig, Schedule};
use dagmath::train::rl::{Group, Policy, Rollout};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    dagmath::train::device::tune_allocator();
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(3, |v| v.parse().expect("--rounds N"));
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    let tok = Tokenizer::domain(&set);
    let eos = tok.token_id("[EOS]").expect("EOS");
    let stops = dagmath::engine::stops(&tok).unwrap();
    let items: Vec<(Vec<u32>, GoldGraph)> = (0..8u64)
        .map(|i| {
            let mode = if i % 2 == 0 {
                Mode::Forward
            } else {
                Mode::Reverse
            };
            let p = compose_seeded(zoo, 2 + (i % 5) as u32, mode, 500 + i).unwrap();
            let prompt = tok.encode(&Rendered::of(zoo, &p).prompt).unwrap();
            (prompt, GoldGraph::from_problem(zoo, &p))
        })
        .collect();
    let c = ModelConfig::preset("tiny", tok.vocab_size()).unwrap();
    let dev = cpu_device();
    let init = weights::init(&c, 0);
    let mut verifier = Verifier::new();
    let (mut t_host, mut t_burn, mut t_verify) = (vec![], vec![], vec![]);
    let (mut t_fused, mut t_autodiff) = (vec![], vec![]);
    for round in 0..rounds {
        for decoder in [DecoderKind::Host, DecoderKind::Burn] {
            let model = weights::to_model::<CpuBackend>(&c, &init, &dev).unwrap();
            let reference = Some(weights::to_model(&c, &init, &dev).unwrap());
            let mut policy = Policy::<CpuBackend> {
                model,
                reference,
                optim: AdamW::new(OptimConfig {
                    lr: 1e-4,
                    schedule: Schedule::Constant,
                    warmup: 0.0,
                    ..OptimConfig::default()
                }),
                grpo: GrpoConfig::default(),
                grad_clip: 1.0,
                micro_batch_rows: 16,
                pad: 0,
                temperature: 1.0,
                // Before: burn decoder and burn autodiff; after: host decoder and fused step.
                autodiff: decoder == DecoderKind::Burn,
            };
            let gen = GenConfig {
                sampling: Sampling {
                    temperature: 1.0,
                    top_k: 0,
                    top_p: 1.0,
                },
                max_new_tokens: 256,
                seed: round as u64,
                batch_rows: 64,
                decoder,
            };
            let prompts: Vec<(&[u32], u64)> = items
                .iter()
                .enumerate()
                .map(|(i, (p, _))| (p.as_slice(), i as u64))
                .collect();
            let t0 = Instant::now();
            let out = policy.rollout(&prompts, 6, &gen, &stops, &dev);
            let roll = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let mut groups = Vec::new();
            for ((prompt, gold), comps) in items.iter().zip(&out) {
                let rollouts: Vec<Rollout> = comps
                    .iter()
                    .map(|comp| {
                        let text = tok.decode(&comp.tokens).unwrap();
                        let v = verifier.verify(gold, &text, Rule::Strict);
                        let mut tokens = prompt.clone();
                        tokens.extend(&comp.tokens);
                        let mut logprobs = comp.logprobs.clone();
                        if let Some(lp) = comp.eos_logprob {
                            tokens.push(eos);
                            logprobs.push(lp);
                        }
                        // Random weights never verify: score by length so groups vary.
                        let reward = Reward::Mixed { alpha: 0.2 }.score(v)
                            + comp.tokens.len() as f64 / 256.0;
                        Rollout {
                            tokens,
                            prompt_len: prompt.len(),
                            truncated: false,
                            reward,
                            logprobs,
                        }
                    })
                    .collect();
                let rs: Vec<f64> = rollouts.iter().map(|r| r.reward).collect();
                groups.push(Group {
                    advantages: grpo::advantages(&rs, true, 1e-6),
                    rollouts,
                });
            }
            let verify = t1.elapsed().as_secs_f64();
            let t2 = Instant::now();
            let s = policy.update(&groups, 1e-4, &dev);
            let update = t2.elapsed().as_secs_f64();
            assert!(s.optimizer_steps == 1);
            match decoder {
                DecoderKind::Host => {
                    t_host.push(roll);
                    t_fused.push(update);
                }
                _ => {
                    t_burn.push(roll);
                    t_autodiff.push(update);
                }
            }
            t_verify.push(verify);
        }
    }
    let (h, b) = (median(&mut t_host), median(&mut t_burn));
    let (f, a) = (median(&mut t_fused), median(&mut t_autodiff));
    let v = median(&mut t_verify);
    println!(
        "GRPO step, tiny, 8 prompts x 6 rollouts, <= 256 new tokens, T 1.0, {rounds} rounds (medians):"
    );
    println!(
        "  rollout: host decoder {h:.2} s, burn decoder {b:.2} s ({:.1}x)",
        b / h
    );
    println!("  verification: {v:.3} s");
    println!(
        "  update (1 AdamW step): fused step {f:.2} s, burn autodiff {a:.2} s ({:.1}x)",
        a / f
    );
    println!(
        "  step: after (host decoder + fused) {:.2} s, before (burn decoder + autodiff) {:.2} s ({:.1}x)",
        h + v + f,
        b + v + a,
        (b + v + a) / (h + v + f)
    );
}
