//! The policy being trained: rollouts with the engine, and the GRPO update over a step's
//! groups (`ppo_epochs` passes of `mini_batches` optimiser steps, each micro-batched), through
//! the fused host step on the CPU and burn autodiff elsewhere. The clipped ratio is taken
//! against the sampler's own log-probs, and the frozen reference gives the KL term's.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use crate::engine::model::decoder_for;
use crate::engine::{generate, GenConfig, Request};
use crate::model::Qwen2;
use crate::train::grpo::{self, GrpoConfig};
use crate::train::optim::{clip_factor, AdamW};

/// One rollout ready for the update: its tokens, where the completion starts, its reward.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Prompt followed by the completion (with EOS when it stopped there).
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub truncated: bool,
    pub reward: f64,
    /// The sampler's log-probability of each completion token (EOS included): the "old"
    /// policy of the clipped ratio. Empty: unknown, and the policy's own (detached) log-probs
    /// at the update's first pass stand in for it.
    pub logprobs: Vec<f32>,
}

/// A prompt's group of rollouts and their advantages.
#[derive(Debug, Clone)]
pub struct Group {
    pub rollouts: Vec<Rollout>,
    pub advantages: Vec<f64>,
}

/// What one update measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateStats {
    pub loss: f64,
    pub grad_norm: f64,
    pub clip_fraction: f64,
    pub kl: f64,
    pub entropy: f64,
    /// Positions the model was run on (prompt and completion, padding excluded).
    pub tokens: u64,
    /// |training log-prob − sampler log-prob| over the completion tokens of the first
    /// mini-batch, before any update: mean and max. On the CPU both come from the same model
    /// and kernels of the same math, so ~0; a real gap means the old log-probs are stale or
    /// renormalised (top-k / top-p), or the decoder and the trainer disagree.
    pub logp_gap_mean: f64,
    pub logp_gap_max: f64,
    /// Optimiser steps taken (ppo_epochs × mini-batches that had tokens).
    pub optimizer_steps: usize,
}

/// The policy being trained, the frozen reference and the optimiser.
pub struct Policy<B: AutodiffBackend> {
    pub model: Qwen2<B>,
    pub reference: Option<Qwen2<B::InnerBackend>>,
    pub optim: AdamW<B>,
    pub grpo: GrpoConfig,
    pub grad_clip: f64,
    pub micro_batch_rows: usize,
    pub pad: u32,
    /// The rollouts' sampling temperature: the update's logits are divided by it, so its
    /// log-probs are those of the distribution the rollouts were drawn from.
    pub temperature: f64,
    /// Update through burn autodiff even on the CPU (default false: the fused step there).
    pub autodiff: bool,
}

impl<B: AutodiffBackend> Policy<B> {
    /// Samples `group` completions for each prompt with the current policy.
    pub fn rollout(
        &self,
        prompts: &[(&[u32], u64)],
        group: usize,
        gen: &GenConfig,
        stops: &crate::engine::Stops,
        device: &B::Device,
    ) -> Vec<Vec<crate::engine::Completion>> {
        let inference = self.model.valid();
        let requests: Vec<Request> = prompts
            .iter()
            .map(|&(prompt, key)| Request {
                prompt,
                key,
                samples: group,
            })
            .collect();
        let mut dec = decoder_for(&inference, device, gen.decoder);
        generate(&mut *dec, &requests, gen, stops, |_| {})
    }

    /// `ppo_epochs` passes over `groups`, each cut into `mini_batches` optimiser steps at
    /// learning rate `lr`. The clipped ratio is taken against the sampler's log-probs.
    pub fn update(&mut self, groups: &[Group], lr: f64, device: &B::Device) -> UpdateStats {
        let rows: Vec<(&Rollout, f64)> = groups
            .iter()
            .flat_map(|g| g.rollouts.iter().zip(g.advantages.iter().copied()))
            .collect();
        let mut stats = UpdateStats::default();
        if rows.is_empty() {
            return stats;
        }
        let epochs = self.grpo.ppo_epochs.max(1);
        let n_mb = self.grpo.mini_batches.clamp(1, rows.len());
        let per = rows.len().div_ceil(n_mb);
        // Old log-probs where the rollout lacks the sampler's: the policy's own, taken when the
        // row's mini-batch first runs (after the earlier mini-batches' steps, if any).
        let mut stand_in: Vec<Option<Vec<f32>>> = vec![None; rows.len()];
        let mut gaps = (0.0f64, 0.0f64, 0usize);
        let mut steps = 0usize;
        for epoch in 0..epochs {
            for (m, chunk) in rows.chunks(per).enumerate() {
                let lo = m * per;
                let s = self.optimizer_step(
                    chunk,
                    &mut stand_in[lo..lo + chunk.len()],
                    epoch == 0 && m == 0,
                    lr,
                    device,
                    &mut gaps,
                );
                if let Some(s) = s {
                    steps += 1;
                    stats.loss += s.loss;
                    stats.grad_norm += s.grad_norm;
                    stats.clip_fraction += s.clip_fraction;
                    stats.kl += s.kl;
                    stats.entropy += s.entropy;
                    stats.tokens += s.tokens;
                }
            }
        }
        if steps > 0 {
            let k = steps as f64;
            stats.loss /= k;
            stats.grad_norm /= k;
            stats.clip_fraction /= k;
            stats.kl /= k;
            stats.entropy /= k;
        }
        stats.optimizer_steps = steps;
        stats.logp_gap_mean = gaps.0 / (gaps.2.max(1)) as f64;
        stats.logp_gap_max = gaps.1;
        stats
    }

    /// One optimiser step on `rows` (micro-batched); `None` when they hold no trained token.
    fn optimizer_step(
        &mut self,
        rows: &[(&Rollout, f64)],
        stand_in: &mut [Option<Vec<f32>>],
        first_pass: bool,
        lr: f64,
        device: &B::Device,
        gaps: &mut (f64, f64, usize),
    ) -> Option<UpdateStats> {
        let mut stats = UpdateStats::default();
        // Normalisers over the whole mini-batch, so micro-batching does not change the loss.
        let weight = |r: &Rollout| -> f64 {
            if r.truncated {
                0.0
            } else {
                (r.tokens.len() - r.prompt_len) as f64
            }
        };
        let total_tokens: f64 = rows.iter().map(|(r, _)| weight(r)).sum();
        let total_seqs = rows.iter().filter(|(r, _)| weight(r) > 0.0).count() as f64;
        if total_tokens == 0.0 {
            return None;
        }
        let inv_t = 1.0 / self.temperature.max(1e-6);
        // On the CPU the update runs through the fused step (forward, GRPO objective and
        // backward over host buffers); elsewhere through burn autodiff.
        let fused = !self.autodiff
            && std::any::TypeId::of::<B>()
                == std::any::TypeId::of::<crate::train::device::CpuBackend>();
        // The frozen reference's log-probs: on the CPU from the host forward, without burn.
        let ref_host = match (fused, &self.reference) {
            (true, Some(r)) => Some(crate::model::fused::HostDecoder::new(r)),
            _ => None,
        };
        // Micro-batches of rows of similar length: each is padded to its longest row, so
        // grouping by length (a stable sort) keeps the padding small. Every row's loss is
        // normalised over the whole mini-batch, so the grouping changes only the order in
        // which the gradient sums.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].0.tokens.len());
        let sorted: Vec<(&Rollout, f64)> = order.iter().map(|&i| rows[i]).collect();
        let mut slots: Vec<Option<Vec<f32>>> = order.iter().map(|&i| stand_in[i].take()).collect();
        let mut acc = GradientsAccumulator::<Qwen2<B>>::new();
        let mb = self.micro_batch_rows.max(1);
        for (ci, chunk) in sorted.chunks(mb).enumerate() {
            let mb_tokens: f64 = chunk.iter().map(|(r, _)| weight(r)).sum();
            let mb_seqs = chunk.iter().filter(|(r, _)| weight(r) > 0.0).count() as f64;
            stats.tokens += chunk
                .iter()
                .map(|(r, _)| r.tokens.len() as u64 - 1)
                .sum::<u64>();
            if mb_tokens == 0.0 {
                continue;
            }
            let host = batch_host(chunk, self.pad);
            let (b, t) = (chunk.len(), host.seq);
            let scale = match self.grpo.aggregation {
                grpo::Aggregation::TokenMean => mb_tokens / total_tokens,
                grpo::Aggregation::SequenceMean => mb_seqs / total_seqs.max(1.0),
                grpo::Aggregation::Constant => b as f64 / rows.len() as f64,
            };
            let logp_ref: Option<Vec<f32>> = if let Some(h) = &ref_host {
                Some(h.target_logp(&host.inputs, &host.targets, t, self.temperature as f32))
            } else {
                self.reference.as_ref().map(|r| {
                    let inputs = int_tensor::<B::InnerBackend>(&host.inputs, [b, t], device);
                    let targets = int_tensor::<B::InnerBackend>(&host.targets, [b, t], device);
                    let mut z = r.forward(inputs);
                    if inv_t != 1.0 {
                        z = z.mul_scalar(inv_t);
                    }
                    burn::tensor::activation::log_softmax(z, 2)
                        .gather(2, targets.reshape([b, t, 1]))
                        .reshape([b, t])
                        .into_data()
                        .convert::<f32>()
                        .into_vec()
                        .expect("f32 log-probs")
                })
            };
            let stand_in = &mut slots[ci * mb..ci * mb + chunk.len()];
            let grads = if fused {
                let mut s = grpo::LossStats::default();
                let mut ent_sum = 0.0f64;
                let grpo_cfg = self.grpo.clone();
                let (loss, grads) = crate::model::fused::logp_objective_and_grads(
                    &self.model,
                    &host.inputs,
                    &host.targets,
                    b,
                    t,
                    self.temperature as f32,
                    |logp, entropy| {
                        ent_sum = entropy
                            .iter()
                            .zip(&host.mask)
                            .map(|(&e, &m)| (e * m) as f64)
                            .sum();
                        let old = old_logprobs(chunk, t, logp, stand_in, first_pass, gaps);
                        let batch = grpo::TokenBatch {
                            logp,
                            logp_old: &old,
                            logp_ref: logp_ref.as_deref(),
                            mask: &host.mask,
                            advantages: &host.advantages,
                            entropy: Some(entropy),
                            seq: t,
                        };
                        let (loss, dlogp, dent, st) = grpo::token_grads(&batch, &grpo_cfg, scale);
                        s = st;
                        (loss, dlogp, dent)
                    },
                );
                stats.entropy += ent_sum;
                stats.loss += loss;
                stats.clip_fraction += s.clip_fraction * mb_tokens;
                stats.kl += s.kl * mb_tokens;
                grads
            } else {
                let tensor = |v: &[f32]| {
                    Tensor::<B, 2>::from_data(TensorData::new(v.to_vec(), [b, t]), device)
                };
                let inputs = int_tensor::<B>(&host.inputs, [b, t], device);
                let targets = int_tensor::<B>(&host.targets, [b, t], device);
                let mask = tensor(&host.mask);
                let adv = Tensor::<B, 1>::from_data(
                    TensorData::new(host.advantages.clone(), [b]),
                    device,
                );
                let mut logits = self.model.forward(inputs);
                if inv_t != 1.0 {
                    logits = logits.mul_scalar(inv_t);
                }
                let logp_all = burn::tensor::activation::log_softmax(logits, 2);
                let logp = logp_all
                    .clone()
                    .gather(2, targets.reshape([b, t, 1]))
                    .reshape([b, t]);
                // Entropy of the policy at the trained positions (a diagnostic; no gradient).
                let lp = logp_all.clone().inner();
                let ent = (lp.clone().exp() * lp).sum_dim(2).reshape([b, t]).neg();
                let ent_sum: f64 = (ent * mask.clone().inner()).sum().into_scalar().elem();
                stats.entropy += ent_sum;
                let now: Vec<f32> = logp
                    .clone()
                    .inner()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("f32 log-probs");
                let old = old_logprobs(chunk, t, &now, stand_in, first_pass, gaps);
                // With the entropy bonus on, the entropy joins the loss (with its gradient).
                let bonus = (self.grpo.entropy_coef > 0.0).then(|| {
                    (logp_all.clone().exp() * logp_all.clone())
                        .sum_dim(2)
                        .reshape([b, t])
                        .neg()
                });
                let (loss, s) = grpo::loss(
                    logp,
                    tensor(&old),
                    logp_ref.as_deref().map(tensor),
                    mask,
                    adv,
                    bonus,
                    &self.grpo,
                );
                stats.loss += loss.clone().into_scalar().elem::<f64>() * scale;
                stats.clip_fraction += s.clip_fraction * mb_tokens;
                stats.kl += s.kl * mb_tokens;
                GradientsParams::from_grads((loss * scale).backward(), &self.model)
            };
            acc.accumulate(&self.model, grads);
        }
        for (slot, &i) in slots.into_iter().zip(&order) {
            stand_in[i] = slot;
        }
        stats.clip_fraction /= total_tokens;
        stats.kl /= total_tokens;
        stats.entropy /= total_tokens;
        let grads = acc.grads();
        let (clip, norm) = clip_factor(&self.model, &grads, self.grad_clip);
        stats.grad_norm = norm;
        // burn's modules are moved through the optimiser; the clone is cheap (shared tensor
        // handles) and is replaced at once.
        let placeholder = self.model.clone();
        let model = std::mem::replace(&mut self.model, placeholder);
        self.model = self.optim.step(lr, model, grads, clip);
        Some(stats)
    }
}

/// One micro-batch on the host: right-padded inputs and targets `[rows, seq]` (seq = the
/// longest rollout − 1), the completion mask (0 on prompt, padding and truncated rollouts)
/// and the advantages.
struct HostBatch {
    inputs: Vec<u32>,
    targets: Vec<u32>,
    mask: Vec<f32>,
    advantages: Vec<f32>,
    seq: usize,
}

/// Token ids `[rows, seq]` as a burn integer tensor.
fn int_tensor<B: burn::tensor::backend::Backend>(
    ids: &[u32],
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let ids: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(ids, shape), device)
}

fn batch_host(rows: &[(&Rollout, f64)], pad: u32) -> HostBatch {
    let t = rows.iter().map(|(r, _)| r.tokens.len()).max().unwrap_or(2) - 1;
    let n = rows.len();
    let (mut x, mut y, mut m) = (
        Vec::with_capacity(n * t),
        Vec::with_capacity(n * t),
        Vec::with_capacity(n * t),
    );
    for (r, _) in rows {
        let len = r.tokens.len() - 1;
        for i in 0..t {
            if i < len {
                x.push(r.tokens[i]);
                y.push(r.tokens[i + 1]);
                // Position i predicts token i+1: a completion token when i+1 ≥ prompt_len.
                let on = !r.truncated && i + 1 >= r.prompt_len;
                m.push(if on { 1.0f32 } else { 0.0 });
            } else {
                x.push(pad);
                y.push(pad);
                m.push(0.0);
            }
        }
    }
    HostBatch {
        inputs: x,
        targets: y,
        mask: m,
        advantages: rows.iter().map(|(_, a)| *a as f32).collect(),
        seq: t,
    }
}

/// The old log-probs of a micro-batch laid out as its targets (`[rows, t]`): the sampler's
/// where the rollout has them, else a stand-in taken from `now` (the policy's, detached) the
/// first time. On the first pass, adds |now − sampler| to `gaps` (sum, max, count).
fn old_logprobs(
    chunk: &[(&Rollout, f64)],
    t: usize,
    now: &[f32],
    stand_in: &mut [Option<Vec<f32>>],
    first_pass: bool,
    gaps: &mut (f64, f64, usize),
) -> Vec<f32> {
    let mut old = vec![0f32; chunk.len() * t];
    for (j, (r, _)) in chunk.iter().enumerate() {
        let slot = &mut stand_in[j];
        let n = r.tokens.len() - r.prompt_len;
        let sampler = (r.logprobs.len() == n).then_some(&r.logprobs);
        if sampler.is_none() && slot.is_none() {
            *slot = Some((0..n).map(|k| now[j * t + r.prompt_len - 1 + k]).collect());
        }
        let src = sampler.or(slot.as_ref()).expect("old log-probs are set");
        for (k, &o) in src.iter().enumerate().take(n) {
            let i = j * t + r.prompt_len - 1 + k;
            old[i] = o;
            if first_pass && sampler.is_some() && !r.truncated {
                let g = (now[i] - o).abs() as f64;
                gaps.0 += g;
                gaps.1 = gaps.1.max(g);
                gaps.2 += 1;
            }
        }
    }
    old
}
