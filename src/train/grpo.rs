//! The GRPO objective (SPEC §6), apart from the loop that feeds it: group-normalised
//! advantages, the clipped policy loss with asymmetric ε, the KL penalty to a frozen reference
//! (k1 or k3), and token-mean or sequence-mean aggregation. [`loss`] is the burn version the
//! trainer differentiates; [`loss_host`] is the same formula in plain f64, the reference the
//! tests hold it to.
//!
//! For completion token t of rollout i, with r = exp(logp − logp_old) and advantage A_i:
//!
//! ```text
//! ℓ_it = −min(r·A_i, clip(r, 1 − ε_low, 1 + ε_high)·A_i) + β·KL_it
//! KL_it = logp − logp_ref                            (k1)
//!       = exp(logp_ref − logp) − (logp_ref − logp) − 1   (k3, ≥ 0)
//! token-mean:    L = Σ_i Σ_t m_it·ℓ_it / Σ_i Σ_t m_it
//! sequence-mean: L = mean over rollouts with any token of (Σ_t m_it·ℓ_it / Σ_t m_it)
//! ```
//!
//! where m_it masks prompt positions, padding, and every token of a truncated rollout.
//!
//! `loss_type` picks the policy term (the KL term and aggregation stay as above):
//!
//! ```text
//! grpo:  −min(r_t·A, clip(r_t)·A)                       per token (the default)
//! gspo:  −min(s·A, clip(s)·A), s = exp(Σ_t m_t (logp − logp_old) / Σ_t m_t)
//!        the sequence's ratio and clip, the same term on each of its tokens
//! cispo: −sg(clip(r_t))·A·logp_t                         a clipped, stop-gradient IS weight
//! ```
//!
//! With `entropy_coef = c_H > 0` each token's term gains −c_H·H_t, H_t the entropy of the
//! policy's distribution at that position (an entropy bonus, aggregated like the rest),
//! and `aggregation = "constant"` is Dr. GRPO's normaliser, L = Σ_i Σ_t m_it·ℓ_it /
//! (rollouts · `norm_tokens`) with `norm_tokens` the rollouts' token limit.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

/// Loss aggregation over tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    TokenMean,
    SequenceMean,
    /// Dr. GRPO: the sum over tokens divided by rollouts × `norm_tokens`.
    Constant,
}

/// What a reward is divided by after its group's mean is taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleRewards {
    /// The group's standard deviation (GRPO).
    Group,
    /// The standard deviation of every reward of the step (TRL's `batch`).
    Batch,
    /// Nothing (Dr. GRPO).
    None,
}

/// How a group's rewards become advantages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvantageKind {
    /// r − mean, scaled per `scale_rewards`.
    Grpo,
    /// verl's `grpo_passk`: only the group's best rollout gets an advantage, r_max − r_second
    /// (divided by the group's sample standard deviation unless `scale_rewards = "none"`);
    /// the rest get 0, which trains for pass@k rather than the mean reward.
    Passk,
}

/// The policy term (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossType {
    Grpo,
    Gspo,
    Cispo,
}

/// KL estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    K1,
    K3,
}

/// The objective's settings; defaults are SPEC §6's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    pub eps_low: f64,
    pub eps_high: f64,
    /// `grpo` (per-token ratio and clip), `gspo` (sequence-level) or `cispo`.
    pub loss_type: LossType,
    pub aggregation: Aggregation,
    /// `aggregation = "constant"`'s token count per rollout; 0 (the default) takes the
    /// rollouts' `max_new_tokens` (its largest, when stepped).
    pub norm_tokens: usize,
    /// KL coefficient β; 0 turns the KL term off and no reference model is kept.
    pub kl_coef: f64,
    pub kl_estimator: KlEstimator,
    /// Divide advantages by the group's standard deviation (off: Dr. GRPO's mean-only form).
    /// `scale_rewards`, when given, overrides it.
    pub scale_std: bool,
    /// `group`, `batch` or `none`; unset: `group` if `scale_std`, else `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_rewards: Option<ScaleRewards>,
    /// `grpo` or `passk`.
    pub advantage: AdvantageKind,
    /// ε in (r − mean) / (std + ε).
    pub adv_eps: f64,
    /// μ: passes over each step's rollouts (1: one update, ratio 1, the clip idle).
    pub ppo_epochs: usize,
    /// Optimiser steps per pass: the rollouts are cut into this many mini-batches, in order.
    pub mini_batches: usize,
    /// Entropy bonus c_H (verl's `entropy_coeff`): −c_H·H_t joins each token's term, so the
    /// policy is rewarded for keeping its distribution wide; 0 (the default) turns it off.
    pub entropy_coef: f64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            eps_low: 0.2,
            eps_high: 0.2,
            loss_type: LossType::Grpo,
            aggregation: Aggregation::TokenMean,
            norm_tokens: 0,
            kl_coef: 0.001,
            kl_estimator: KlEstimator::K3,
            scale_std: true,
            scale_rewards: None,
            advantage: AdvantageKind::Grpo,
            adv_eps: 1e-6,
            ppo_epochs: 1,
            mini_batches: 1,
            entropy_coef: 0.0,
        }
    }
}

impl GrpoConfig {
    pub fn validate(&self) -> Result<(), crate::train::config::ConfigError> {
        use crate::train::config::ConfigError;
        for (name, v) in [
            ("grpo.eps_low", self.eps_low),
            ("grpo.eps_high", self.eps_high),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(ConfigError::value(name, v, "must be in [0, 1)"));
            }
        }
        if !(self.entropy_coef >= 0.0 && self.entropy_coef.is_finite()) {
            return Err(ConfigError::value(
                "grpo.entropy_coef",
                self.entropy_coef,
                "must be ≥ 0",
            ));
        }
        if !(self.kl_coef >= 0.0 && self.kl_coef.is_finite()) {
            return Err(ConfigError::value(
                "grpo.kl_coef",
                self.kl_coef,
                "must be ≥ 0",
            ));
        }
        for (name, v) in [
            ("grpo.ppo_epochs", self.ppo_epochs),
            ("grpo.mini_batches", self.mini_batches),
        ] {
            if v == 0 {
                return Err(ConfigError::value(name, 0, "must be ≥ 1"));
            }
        }
        Ok(())
    }
}

impl GrpoConfig {
    /// The reward scaling in force (`scale_rewards`, else `scale_std`).
    pub fn scaling(&self) -> ScaleRewards {
        self.scale_rewards.unwrap_or(if self.scale_std {
            ScaleRewards::Group
        } else {
            ScaleRewards::None
        })
    }
}

/// Advantages of every group of a step (`groups[i]` the rewards of group i), per `advantage`
/// and `scale_rewards`.
pub fn step_advantages(groups: &[Vec<f64>], c: &GrpoConfig) -> Vec<Vec<f64>> {
    let eps = c.adv_eps;
    match (c.advantage, c.scaling()) {
        (AdvantageKind::Grpo, ScaleRewards::Batch) => {
            let all: Vec<f64> = groups.iter().flatten().copied().collect();
            let n = all.len().max(1) as f64;
            let mean = all.iter().sum::<f64>() / n;
            let std = (all.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
            groups
                .iter()
                .map(|g| {
                    advantages(g, false, eps)
                        .into_iter()
                        .map(|a| a / (std + eps))
                        .collect()
                })
                .collect()
        }
        (AdvantageKind::Grpo, s) => groups
            .iter()
            .map(|g| advantages(g, s == ScaleRewards::Group, eps))
            .collect(),
        (AdvantageKind::Passk, s) => groups
            .iter()
            .map(|g| passk_advantages(g, s != ScaleRewards::None, eps))
            .collect(),
    }
}

/// verl's `grpo_passk` advantages of one group (see [`AdvantageKind::Passk`]); the first
/// rollout with the best reward is the one that gets it.
pub fn passk_advantages(rewards: &[f64], scale: bool, eps: f64) -> Vec<f64> {
    let mut out = vec![0.0; rewards.len()];
    if rewards.len() < 2 {
        return out;
    }
    let best = (0..rewards.len()).fold(0, |b, i| if rewards[i] > rewards[b] { i } else { b });
    let second = (0..rewards.len())
        .filter(|&i| i != best)
        .map(|i| rewards[i])
        .fold(f64::NEG_INFINITY, f64::max);
    let mut a = rewards[best] - second;
    if scale {
        let n = rewards.len() as f64;
        let mean = rewards.iter().sum::<f64>() / n;
        let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        a /= var.sqrt() + eps;
    }
    out[best] = a;
    out
}

/// DAPO's soft overlong punishment: a reward term for a completion of `length` tokens under
/// a limit of `max_new_tokens`, with a buffer of `buffer` tokens before the limit and weight
/// `factor`:
///
/// ```text
/// 0                                      if length ≤ L − B
/// −factor · (length − (L − B)) / B       if L − B < length ≤ L   (−factor at the limit)
/// ```
///
/// `buffer = 0` turns it off. A completion cut at the limit gets −factor (and, with truncated
/// rollouts masked out of the loss, teaches through its group's advantages only).
pub fn overlong_penalty(length: usize, max_new_tokens: usize, buffer: usize, factor: f64) -> f64 {
    if buffer == 0 {
        return 0.0;
    }
    let free = max_new_tokens.saturating_sub(buffer);
    let over = length.saturating_sub(free).min(buffer);
    -factor * over as f64 / buffer as f64
}

/// Advantages of one group's rewards: (r − mean) / (std + ε), or r − mean without std scaling.
/// The standard deviation is the population one (divide by G), as in the reference code.
pub fn advantages(rewards: &[f64], scale_std: bool, eps: f64) -> Vec<f64> {
    let n = rewards.len().max(1) as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    rewards
        .iter()
        .map(|r| {
            if scale_std {
                (r - mean) / (std + eps)
            } else {
                r - mean
            }
        })
        .collect()
}

/// One rollout's per-token figures, for [`loss_host`].
#[derive(Debug, Clone)]
pub struct HostRollout {
    pub logp: Vec<f64>,
    pub logp_old: Vec<f64>,
    pub logp_ref: Vec<f64>,
    pub mask: Vec<f64>,
    pub advantage: f64,
    /// Each position's entropy (for the entropy bonus; may be empty when it is off).
    pub entropy: Vec<f64>,
}

fn kl_term(est: KlEstimator, logp: f64, logp_ref: f64) -> f64 {
    match est {
        KlEstimator::K1 => logp - logp_ref,
        KlEstimator::K3 => {
            let d = logp_ref - logp;
            d.exp() - d - 1.0
        }
    }
}

/// The loss in plain f64 (see the module docs).
pub fn loss_host(batch: &[HostRollout], c: &GrpoConfig) -> f64 {
    let clip = |x: f64| x.clamp(1.0 - c.eps_low, 1.0 + c.eps_high);
    let seq_ratio = |r: &HostRollout| {
        let m: f64 = r.mask.iter().sum();
        let s: f64 = (0..r.logp.len())
            .map(|t| r.mask[t] * (r.logp[t] - r.logp_old[t]))
            .sum();
        (s / m.max(1.0)).exp()
    };
    let token = |r: &HostRollout, t: usize| {
        let ratio = (r.logp[t] - r.logp_old[t]).exp();
        let a = r.advantage;
        let policy = match c.loss_type {
            LossType::Grpo => -(ratio * a).min(clip(ratio) * a),
            LossType::Gspo => {
                let s = seq_ratio(r);
                -(s * a).min(clip(s) * a)
            }
            LossType::Cispo => -clip(ratio) * a * r.logp[t],
        };
        let kl = if c.kl_coef > 0.0 {
            c.kl_coef * kl_term(c.kl_estimator, r.logp[t], r.logp_ref[t])
        } else {
            0.0
        };
        let bonus = if c.entropy_coef > 0.0 {
            -c.entropy_coef * r.entropy[t]
        } else {
            0.0
        };
        r.mask[t] * (policy + kl + bonus)
    };
    match c.aggregation {
        Aggregation::TokenMean => {
            let (mut sum, mut n) = (0.0f64, 0.0f64);
            for r in batch {
                for t in 0..r.logp.len() {
                    sum += token(r, t);
                    n += r.mask[t];
                }
            }
            sum / n.max(1.0)
        }
        Aggregation::SequenceMean => {
            let (mut sum, mut n) = (0.0f64, 0.0f64);
            for r in batch {
                let m: f64 = r.mask.iter().sum();
                if m > 0.0 {
                    sum += (0..r.logp.len()).map(|t| token(r, t)).sum::<f64>() / m;
                    n += 1.0;
                }
            }
            sum / n.max(1.0)
        }
        Aggregation::Constant => {
            let sum: f64 = batch
                .iter()
                .map(|r| (0..r.logp.len()).map(|t| token(r, t)).sum::<f64>())
                .sum();
            sum / (batch.len() * c.norm_tokens.max(1)) as f64
        }
    }
}

/// One micro-batch on the host, every slice `[rows, seq]` row-major except `advantages`.
pub struct TokenBatch<'a> {
    pub logp: &'a [f32],
    pub logp_old: &'a [f32],
    /// The frozen reference's log-probs (needed when the KL term is on).
    pub logp_ref: Option<&'a [f32]>,
    pub mask: &'a [f32],
    pub advantages: &'a [f32],
    /// Each position's entropy (needed when the entropy bonus is on).
    pub entropy: Option<&'a [f32]>,
    pub seq: usize,
}

/// The loss of [`loss`] on host values times `scale`, and its derivative by each token's
/// log-prob: the objective the fused CPU step trains on. Per token, with ratio
/// `r = exp(logp − logp_old)` and weight `w` (1/tokens, or 1/(tokens of the row · rows)):
/// the clipped term `−min(r·A, clip(r)·A)` has derivative `−A·r` where the unclipped side is
/// the smaller (always inside `[1 − ε_low, 1 + ε_high]`), else 0; k1's `logp − ref` has 1 and
/// k3's `e^d − d − 1` (`d = ref − logp`) has `1 − e^d`.
///
/// The third value is the derivative by each position's entropy, `−w·c_H` (empty when the
/// entropy bonus is off).
pub fn token_grads(
    b: &TokenBatch,
    c: &GrpoConfig,
    scale: f64,
) -> (f64, Vec<f32>, Vec<f32>, LossStats) {
    let n = b.logp.len();
    let rows = b.advantages.len();
    let t = b.seq;
    assert_eq!(n, rows * t, "token slices are [rows, seq]");
    let tokens: f64 = b.mask.iter().map(|&m| m as f64).sum();
    let row_tokens: Vec<f64> = (0..rows)
        .map(|r| b.mask[r * t..(r + 1) * t].iter().map(|&m| m as f64).sum())
        .collect();
    let seqs = row_tokens.iter().filter(|&&m| m > 0.0).count() as f64;
    let kl_on = c.kl_coef > 0.0 && b.logp_ref.is_some();
    let (mut loss, mut clipped, mut kl_sum) = (0.0f64, 0.0f64, 0.0f64);
    let mut grad = vec![0f32; n];
    let bonus = b.entropy.filter(|_| c.entropy_coef > 0.0);
    let mut dent = if bonus.is_some() {
        vec![0f32; n]
    } else {
        Vec::new()
    };
    for (r, (&adv, &m_row)) in b.advantages.iter().zip(&row_tokens).enumerate() {
        let a = adv as f64;
        let w_row = match c.aggregation {
            Aggregation::TokenMean => 1.0 / tokens.max(1.0),
            Aggregation::SequenceMean if m_row > 0.0 => 1.0 / (m_row * seqs.max(1.0)),
            Aggregation::SequenceMean => 0.0,
            Aggregation::Constant => 1.0 / (rows * c.norm_tokens.max(1)) as f64,
        };
        // GSPO: the row's ratio s and its term. Every token of the row carries the term, and a
        // token's log-prob moves log s by 1 / (the row's tokens), so the derivative of the
        // row's weighted terms by one token's log-prob is the token's weight times −s·A.
        let (seq_policy, seq_dlog, seq_clipped) = if c.loss_type == LossType::Gspo {
            let sum: f64 = (r * t..(r + 1) * t)
                .map(|i| b.mask[i] as f64 * (b.logp[i] as f64 - b.logp_old[i] as f64))
                .sum();
            let s = (sum / m_row.max(1.0)).exp();
            let cs = s.clamp(1.0 - c.eps_low, 1.0 + c.eps_high);
            let outside = s < 1.0 - c.eps_low || s > 1.0 + c.eps_high;
            if s * a <= cs * a {
                (-s * a, -s * a, outside)
            } else {
                (-cs * a, 0.0, outside)
            }
        } else {
            (0.0, 0.0, false)
        };
        for i in r * t..(r + 1) * t {
            let m = b.mask[i] as f64;
            if m == 0.0 {
                continue;
            }
            let lp = b.logp[i] as f64;
            let ratio = (lp - b.logp_old[i] as f64).exp();
            let clip = ratio.clamp(1.0 - c.eps_low, 1.0 + c.eps_high);
            let outside = match c.loss_type {
                LossType::Gspo => seq_clipped,
                _ => ratio < 1.0 - c.eps_low || ratio > 1.0 + c.eps_high,
            };
            if outside {
                clipped += m;
            }
            let (policy, dpolicy) = match c.loss_type {
                LossType::Grpo if ratio * a <= clip * a => (-ratio * a, -ratio * a),
                LossType::Grpo => (-clip * a, 0.0),
                LossType::Gspo => (seq_policy, seq_dlog),
                LossType::Cispo => (-clip * a * lp, -clip * a),
            };
            let (kl, dkl) = match (kl_on, b.logp_ref) {
                (true, Some(refs)) => {
                    let lr = refs[i] as f64;
                    let kl = kl_term(c.kl_estimator, lp, lr);
                    let d = match c.kl_estimator {
                        KlEstimator::K1 => 1.0,
                        KlEstimator::K3 => 1.0 - (lr - lp).exp(),
                    };
                    kl_sum += m * kl;
                    (kl, d)
                }
                _ => (0.0, 0.0),
            };
            let w = m * w_row * scale;
            loss += w * (policy + c.kl_coef * kl);
            grad[i] = (w * (dpolicy + c.kl_coef * dkl)) as f32;
            if let Some(h) = bonus {
                loss -= w * c.entropy_coef * h[i] as f64;
                dent[i] = (-w * c.entropy_coef) as f32;
            }
        }
    }
    let stats = LossStats {
        clip_fraction: clipped / tokens.max(1.0),
        kl: if kl_on { kl_sum / tokens.max(1.0) } else { 0.0 },
        tokens,
    };
    (loss, grad, dent, stats)
}

/// Diagnostics of one loss evaluation (means over unmasked tokens).
#[derive(Debug, Clone, Copy, Default)]
pub struct LossStats {
    pub clip_fraction: f64,
    pub kl: f64,
    pub tokens: f64,
}

/// The loss on tensors, all `[rows, t]` except `advantages` `[rows]`. `logp_old` and
/// `logp_ref` carry no gradient; `logp_ref` is ignored when the KL term is off.
pub fn loss<B: Backend>(
    logp: Tensor<B, 2>,
    logp_old: Tensor<B, 2>,
    logp_ref: Option<Tensor<B, 2>>,
    mask: Tensor<B, 2>,
    advantages: Tensor<B, 1>,
    entropy: Option<Tensor<B, 2>>,
    c: &GrpoConfig,
) -> (Tensor<B, 1>, LossStats) {
    let [rows, t] = logp.dims();
    let adv = advantages.reshape([rows, 1]);
    let ratio = match c.loss_type {
        LossType::Gspo => {
            // The sequence's ratio, on every one of its tokens.
            let per_row = mask.clone().sum_dim(1).clamp_min(1.0);
            let log_s = ((logp.clone() - logp_old) * mask.clone()).sum_dim(1) / per_row;
            log_s.exp().repeat_dim(1, t)
        }
        _ => (logp.clone() - logp_old).exp(),
    };
    let clipped = ratio.clone().clamp(1.0 - c.eps_low, 1.0 + c.eps_high);
    let policy = match c.loss_type {
        LossType::Cispo => (clipped.detach() * adv * logp.clone()).neg(),
        _ => (ratio.clone() * adv.clone()).min_pair(clipped * adv).neg(),
    };
    let tokens: f64 = mask.clone().sum().into_scalar().elem();
    let outside = ratio
        .clone()
        .lower_elem(1.0 - c.eps_low)
        .float()
        .add(ratio.greater_elem(1.0 + c.eps_high).float());
    let clip_fraction: f64 =
        (outside * mask.clone()).sum().into_scalar().elem::<f64>() / tokens.max(1.0);
    let (per_token, kl_mean) = match (c.kl_coef > 0.0, logp_ref) {
        (true, Some(r)) => {
            let kl = match c.kl_estimator {
                KlEstimator::K1 => logp - r,
                KlEstimator::K3 => {
                    let d = r - logp;
                    d.clone().exp() - d - 1.0
                }
            };
            let kl_mean: f64 = (kl.clone() * mask.clone())
                .sum()
                .into_scalar()
                .elem::<f64>()
                / tokens.max(1.0);
            (policy + kl * c.kl_coef, kl_mean)
        }
        _ => (policy, 0.0),
    };
    let per_token = match entropy.filter(|_| c.entropy_coef > 0.0) {
        Some(h) => per_token - h * c.entropy_coef,
        None => per_token,
    };
    let masked = per_token * mask.clone();
    let loss = match c.aggregation {
        Aggregation::TokenMean => masked.sum() / tokens.max(1.0),
        Aggregation::SequenceMean => {
            let per_row = mask.sum_dim(1); // [rows, 1]
            let has = per_row.clone().greater_elem(0.0).float();
            let n: f64 = has.clone().sum().into_scalar().elem();
            let row_mean = masked.sum_dim(1) / per_row.clamp_min(1.0);
            (row_mean * has).sum() / n.max(1.0)
        }
        Aggregation::Constant => masked.sum() / (rows * c.norm_tokens.max(1)) as f64,
    };
    (
        loss,
        LossStats {
            clip_fraction,
            kl: kl_mean,
            tokens,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_are_group_normalised() {
        let a = advantages(&[1.0, 0.0, 0.0, 1.0], true, 0.0);
        assert_eq!(a, vec![1.0, -1.0, -1.0, 1.0]);
        let a = advantages(&[1.0, 0.0, 0.0, 0.0], false, 0.0);
        assert_eq!(a, vec![0.75, -0.25, -0.25, -0.25]);
        // A group with one reward for all has zero advantages, not NaN.
        assert_eq!(advantages(&[0.5; 3], true, 1e-6), vec![0.0; 3]);
    }

    #[test]
    fn batch_scaling_and_passk_advantages_match_hand_computed_values() {
        let groups = vec![vec![1.0, 0.0], vec![1.0, 1.0]];
        let c = |scale, advantage| GrpoConfig {
            scale_std: scale == ScaleRewards::Group,
            scale_rewards: Some(scale),
            advantage,
            adv_eps: 0.0,
            ..GrpoConfig::default()
        };
        // Batch: centred per group (±0.5; 0, 0), divided by the std of all four rewards
        // (mean 0.75, variance 0.1875).
        let s = 0.1875f64.sqrt();
        assert_eq!(
            step_advantages(&groups, &c(ScaleRewards::Batch, AdvantageKind::Grpo)),
            vec![vec![0.5 / s, -0.5 / s], vec![0.0, 0.0]]
        );
        assert_eq!(
            step_advantages(&groups, &c(ScaleRewards::None, AdvantageKind::Grpo)),
            vec![vec![0.5, -0.5], vec![0.0, 0.0]]
        );
        // Pass@k: the best rollout gets r_max − r_second over the sample std, the rest 0.
        // [0.2, 0.9, 0.5]: 0.9 − 0.5 = 0.4; mean 0.5333, sample variance 0.1233.
        let r = [0.2, 0.9, 0.5];
        let var: f64 = r.iter().map(|x| (x - 1.6 / 3.0f64).powi(2)).sum::<f64>() / 2.0;
        let got = passk_advantages(&r, true, 0.0);
        assert!((got[1] - 0.4 / var.sqrt()).abs() < 1e-12 && got[0] == 0.0 && got[2] == 0.0);
        assert_eq!(passk_advantages(&r, false, 0.0)[1], 0.9 - 0.5);
        // Ties: the first best gets r_max − r_max = 0.
        assert_eq!(passk_advantages(&[1.0, 1.0, 0.0], false, 0.0), vec![0.0; 3]);
    }

    /// DAPO's soft overlong punishment, by hand: L = 100, B = 20, factor 0.5.
    #[test]
    fn overlong_penalty_is_dapos_linear_ramp() {
        assert_eq!(overlong_penalty(50, 100, 20, 0.5), 0.0);
        assert_eq!(overlong_penalty(80, 100, 20, 0.5), 0.0);
        assert_eq!(overlong_penalty(85, 100, 20, 0.5), -0.125);
        assert_eq!(overlong_penalty(90, 100, 20, 0.5), -0.25);
        assert_eq!(overlong_penalty(100, 100, 20, 0.5), -0.5);
        assert_eq!(overlong_penalty(100, 100, 0, 0.5), 0.0);
    }
}
