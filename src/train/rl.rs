//! GRPO with verifier rewards (`dagmath train rl --config FILE --from CKPT`). One visible loop:
//! draw prompts from the pool → sample a group of rollouts per prompt with the engine → verify
//! each rollout against its gold graph and score it → group-normalised advantages (dynamic
//! sampling drops groups whose binary outcome is uniform) → clipped policy loss with a KL term
//! to the frozen starting policy → AdamW step → metrics, checkpoints.
//!
//! ```toml
//! seed = 0
//! device = "cpu"
//! out = "out/rl"
//!
//! [data]                    # the RL pool: problems of these splits (prompt + gold graph)
//! dir = "out/micro"
//! splits = ["rl_pool"]
//!
//! [rl]
//! steps = 100
//! prompts_per_step = 16     # SPEC §6: 1024
//! group_size = 6
//! reward = "mixed"          # outcome | process | mixed | strict | penalty
//! alpha = 0.2               # outcome weight of mixed / penalty
//! rule = "strict"           # verification rule: strict | interplay
//! dynamic_sampling = false    # max_sampling_rounds = 4: oversample for informative groups
//! micro_batch_rows = 32     # rows per forward/backward (gradient accumulation)
//! # flops = 1e15            # stop once RL has spent this much compute
//!
//! # [compute]               # one budget split with mid-training: RL gets (1 − beta)
//! # total_flops = 2e15
//! # beta = 0.2
//!
//! [rollout]
//! temperature = 1.0
//! max_new_tokens = 1024      # or stepped: { 0 = 256, 100 = 512 }
//!
//! [grpo]                    # see grpo.rs: eps_low/high 0.2, token_mean, kl_coef 0.001, k3
//! [optim]                   # lr 1e-6 constant (SPEC §6); schedule = "wsd" for a decay
//! [checkpoint]
//! every = 50
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, PhaseRecord};
use super::config::{CheckpointConfig, ComputeSplit, DeviceKind, Precision};
use super::grpo::{self, GrpoConfig};
use super::metrics::MetricsLog;
use super::optim::{clip_factor, AdamW, OptimConfig, Schedule};
use super::trainer::{latest, refuse_existing, TrainError};
use crate::composer::seed::{derive, str_key};
use crate::dataset::reader::{read_rows, Dataset};
use crate::engine::model::decoder_for;
use crate::engine::stops;
use crate::engine::{generate, Finish, GenConfig, Request, Sampling};
use crate::eval::audit::GoldItem;
use crate::model::{weights, ModelConfig, Qwen2};
use crate::tokenizer::Tokenizer;
use crate::trace::{Reward, Rule, Verifier};

/// `dagmath train rl`'s config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlConfig {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceKind,
    #[serde(default)]
    pub precision: Precision,
    pub out: PathBuf,
    pub data: PoolConfig,
    #[serde(default)]
    pub rl: RlSettings,
    #[serde(default = "default_rollout")]
    pub rollout: RolloutConfig,
    #[serde(default)]
    pub grpo: GrpoConfig,
    #[serde(default = "rl_optim")]
    pub optim: OptimConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// The mid-training/RL compute split; RL stops at (1 − β)·total_flops.
    #[serde(default)]
    pub compute: Option<ComputeSplit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub dir: PathBuf,
    pub splits: Vec<String>,
}

/// Which verifier reward the policy is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardKind {
    Outcome,
    Process,
    Mixed,
    Strict,
    Penalty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Strict,
    Interplay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlSettings {
    pub steps: u64,
    pub prompts_per_step: usize,
    pub group_size: usize,
    pub reward: RewardKind,
    pub alpha: f64,
    pub rule: RuleKind,
    /// Drop groups whose binary outcome (answer right) is the same for every rollout.
    pub dynamic_sampling: bool,
    /// With `dynamic_sampling`: sampling rounds per step at most. Each round after the first
    /// draws as many new prompts as groups are still missing, until `prompts_per_step`
    /// informative groups are in hand (DAPO's oversampling); 1 trains on what is left.
    pub max_sampling_rounds: usize,
    pub micro_batch_rows: usize,
    /// Stop once this phase has spent this many FLOPs (rollouts + reference + training).
    pub flops: Option<f64>,
}

impl Default for RlSettings {
    fn default() -> Self {
        RlSettings {
            steps: 100,
            prompts_per_step: 1024,
            group_size: 6,
            reward: RewardKind::Mixed,
            alpha: 0.2,
            rule: RuleKind::Strict,
            dynamic_sampling: false,
            max_sampling_rounds: 1,
            micro_batch_rows: 32,
            flops: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    /// New tokens per rollout: a number, or a schedule by step, `{ 0 = 256, 100 = 512 }`
    /// (the limit from each listed step on; OctoThinker's stepped maximum response length).
    pub max_new_tokens: MaxNewTokens,
    pub batch_rows: usize,
    /// `auto` (the host decoder on the CPU, burn's on CUDA), `host` or `burn`.
    pub decoder: crate::engine::DecoderKind,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        default_rollout()
    }
}

/// The rollouts' new-token limit: fixed, or stepped by GRPO step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxNewTokens {
    Fixed(usize),
    /// Step (a decimal string, as TOML keys are) → the limit from that step on.
    Steps(std::collections::BTreeMap<String, usize>),
}

impl MaxNewTokens {
    /// The schedule as (step, limit) pairs in step order, or why it is not one.
    fn steps(&self) -> Result<Vec<(u64, usize)>, String> {
        match self {
            MaxNewTokens::Fixed(n) => Ok(vec![(0, *n)]),
            MaxNewTokens::Steps(m) => {
                let mut v = m
                    .iter()
                    .map(|(k, &n)| {
                        k.parse::<u64>().map(|s| (s, n)).map_err(|_| {
                            format!("rollout.max_new_tokens: key {k:?} is not a step number")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                v.sort_unstable();
                Ok(v)
            }
        }
    }

    /// The limit at GRPO step `step` (0-based): the entry of the last listed step ≤ `step`.
    pub fn at(&self, step: u64) -> usize {
        let steps = self.steps().unwrap_or_default();
        steps
            .iter()
            .take_while(|(s, _)| *s <= step)
            .last()
            .or(steps.first())
            .map_or(0, |&(_, n)| n)
    }

    /// The largest limit of the schedule (what memory is sized for).
    pub fn max(&self) -> usize {
        self.steps()
            .unwrap_or_default()
            .iter()
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0)
    }

    fn validate(&self) -> Result<(), String> {
        let steps = self.steps()?;
        match steps.first() {
            None => return Err("rollout.max_new_tokens: an empty schedule".into()),
            Some(&(s, _)) if s != 0 => {
                return Err(format!(
                    "rollout.max_new_tokens: the schedule starts at step {s}; it must list step 0"
                ))
            }
            _ => {}
        }
        if let Some(&(s, _)) = steps.iter().find(|&&(_, n)| n == 0) {
            return Err(format!(
                "rollout.max_new_tokens: 0 at step {s}: must be ≥ 1"
            ));
        }
        Ok(())
    }
}

/// SPEC §6: temperature 1.0, ≤ 1024 new tokens.
fn default_rollout() -> RolloutConfig {
    RolloutConfig {
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: MaxNewTokens::Fixed(1024),
        batch_rows: 64,
        decoder: crate::engine::DecoderKind::Auto,
    }
}

/// SPEC §6: lr 1e-6, constant, no warmup.
fn rl_optim() -> OptimConfig {
    OptimConfig {
        lr: 1e-6,
        min_lr: 1e-6,
        warmup: 0.0,
        warmup_steps: None,
        schedule: Schedule::Constant,
        weight_decay: 0.0,
        ..OptimConfig::default()
    }
}

impl RlConfig {
    pub fn from_file(path: &Path) -> Result<RlConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c = Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(c)
    }

    /// Parses a config; an `[optim]` table overrides the RL defaults key by key (so giving
    /// `lr` alone keeps the constant schedule).
    pub fn from_toml(text: &str) -> Result<RlConfig, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(user) = table.remove("optim") {
            let user = user
                .as_table()
                .cloned()
                .ok_or_else(|| "optim: must be a table".to_string())?;
            let mut base = toml::Table::try_from(rl_optim()).expect("optim serialises");
            // Unknown keys are rejected by OptimConfig's deny_unknown_fields.
            base.extend(user);
            table.insert("optim".into(), toml::Value::Table(base));
        }
        let mut c: RlConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        // Dr. GRPO's constant normaliser defaults to the rollouts' token limit.
        if c.grpo.norm_tokens == 0 {
            c.grpo.norm_tokens = c.rollout.max_new_tokens.max();
        }
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.out.as_os_str().is_empty() {
            return Err(
                "out = \"\": give the run folder (checkpoints and metrics go there)".into(),
            );
        }
        if self.out.exists() && !self.out.is_dir() {
            return Err(format!("out = {:?}: is a file, not a folder", self.out));
        }
        let r = &self.rl;
        if r.steps == 0 {
            return Err("rl.steps: must be ≥ 1 (with a FLOP cap, the most steps to take)".into());
        }
        if r.prompts_per_step == 0 {
            return Err("rl.prompts_per_step: must be ≥ 1".into());
        }
        if r.group_size < 2 {
            return Err(format!(
                "rl.group_size = {}: GRPO needs at least 2 rollouts per prompt",
                r.group_size
            ));
        }
        if !(0.0..=1.0).contains(&r.alpha) {
            return Err(format!("rl.alpha = {}: must be in [0, 1]", r.alpha));
        }
        if r.max_sampling_rounds == 0 {
            return Err("rl.max_sampling_rounds = 0: must be ≥ 1".into());
        }
        if r.micro_batch_rows == 0 {
            return Err("rl.micro_batch_rows: must be ≥ 1".into());
        }
        self.rollout.max_new_tokens.validate()?;
        // A step's rollouts are held at once: their token ids and log-probs at the least.
        let rows = (r.prompts_per_step as u128).checked_mul(r.group_size as u128);
        crate::limits::check_fits(
            &format!(
                "rl.prompts_per_step = {} × rl.group_size = {} rollouts of rollout.max_new_tokens = {}",
                r.prompts_per_step,
                r.group_size,
                self.rollout.max_new_tokens.max()
            ),
            rows.and_then(|n| {
                n.checked_mul(self.rollout.max_new_tokens.max() as u128)?
                    .checked_mul(8)
            }),
        )?;
        self.sampling()
            .validate()
            .map_err(|e| format!("rollout.{e}"))?;
        self.grpo.validate()?;
        self.optim.validate()?;
        if self.data.splits.is_empty() {
            return Err("data.splits: name at least one split".into());
        }
        if let Some(c) = &self.compute {
            c.validate()?;
        }
        Ok(())
    }

    /// The phase's FLOP cap: `rl.flops` and the compute split's RL share, whichever is lower.
    pub fn flops_cap(&self) -> Option<f64> {
        let split = self.compute.map(|c| c.rl_flops());
        match (self.rl.flops, split) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.rollout.temperature,
            top_k: self.rollout.top_k,
            top_p: self.rollout.top_p,
        }
    }

    /// The reward the policy is trained on.
    pub fn reward(&self) -> Reward {
        let alpha = self.rl.alpha;
        match self.rl.reward {
            RewardKind::Outcome => Reward::Outcome,
            RewardKind::Process => Reward::Process,
            RewardKind::Mixed => Reward::Mixed { alpha },
            RewardKind::Strict => Reward::Strict,
            RewardKind::Penalty => Reward::Penalty { alpha },
        }
    }

    pub fn rule(&self) -> Rule {
        match self.rl.rule {
            RuleKind::Strict => Rule::Strict,
            RuleKind::Interplay => Rule::Interplay,
        }
    }
}

/// A pool problem.
#[derive(Debug, Clone)]
pub struct PoolItem {
    pub gold: GoldItem,
    pub prompt: Vec<u32>,
}

/// Loads the pool's problems and encodes their prompts.
pub fn load_pool(c: &PoolConfig, tok: &Tokenizer) -> Result<Vec<PoolItem>, TrainError> {
    let ds = Dataset::open(&c.dir).map_err(|e| TrainError::Config(e.to_string()))?;
    let mut out = Vec::new();
    for split in &c.splits {
        if !ds.manifest.splits.iter().any(|s| &s.name == split) {
            let have: Vec<&str> = ds.manifest.splits.iter().map(|s| s.name.as_str()).collect();
            return Err(TrainError::Config(format!(
                "data.splits: split \"{split}\" is not in {} (it has: {})",
                c.dir.display(),
                have.join(", ")
            )));
        }
        for path in ds.shard_paths(split) {
            for r in read_rows(&path).map_err(|e| TrainError::Config(e.to_string()))? {
                let prompt = tok
                    .encode(&r.prompt)
                    .map_err(|e| TrainError::Config(format!("{}: {e}", r.id)))?;
                out.push(PoolItem {
                    gold: GoldItem {
                        id: r.id,
                        split: r.split,
                        op: r.op,
                        template: r.template,
                        graph: r.graph,
                    },
                    prompt,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(TrainError::Config(format!(
            "data: splits [{}] of {} hold no problems",
            c.splits.join(", "),
            c.dir.display()
        )));
    }
    Ok(out)
}

/// Position in the pool: the epoch's shuffled order is a function of (seed, epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PoolCursor {
    pub epoch: u64,
    pub pos: usize,
}

fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(derive(&[seed, str_key("rl-pool"), epoch]));
    order.shuffle(&mut rng);
    order
}

/// The next `k` pool indices, advancing the cursor (wrapping into new epochs).
pub fn draw(n: usize, k: usize, seed: u64, cur: &mut PoolCursor) -> Vec<usize> {
    let mut out = Vec::with_capacity(k);
    let mut order = epoch_order(n, seed, cur.epoch);
    while out.len() < k {
        if cur.pos >= n {
            cur.epoch += 1;
            cur.pos = 0;
            order = epoch_order(n, seed, cur.epoch);
        }
        out.push(order[cur.pos]);
        cur.pos += 1;
    }
    out
}

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
                            seq: t,
                        };
                        let (loss, dlogp, st) = grpo::token_grads(&batch, &grpo_cfg, scale);
                        s = st;
                        (loss, dlogp)
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
                let lp = logp_all.inner();
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
                let (loss, s) = grpo::loss(
                    logp,
                    tensor(&old),
                    logp_ref.as_deref().map(tensor),
                    mask,
                    adv,
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

/// One line of the RL metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlMetrics {
    pub phase: String,
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    pub grad_norm: f64,
    /// Mean reward of every rollout under each variant (the trained one is `reward`).
    pub reward: f64,
    pub reward_outcome: f64,
    pub reward_process: f64,
    pub reward_mixed: f64,
    pub reward_strict: f64,
    /// Share of rollouts whose trace verifies (VerifiedCorrect) / whose answer is right.
    pub pass_rate: f64,
    pub answer_rate: f64,
    pub entropy: f64,
    pub clip_fraction: f64,
    pub kl: f64,
    /// |update's log-prob − sampler's| over completion tokens before the update: mean, max.
    #[serde(default)]
    pub logp_gap_mean: f64,
    #[serde(default)]
    pub logp_gap_max: f64,
    /// Optimiser steps this RL step took (ppo_epochs × mini_batches).
    #[serde(default)]
    pub optimizer_steps: usize,
    pub response_length: f64,
    pub truncated: f64,
    /// Share of groups whose trained reward is the same for every rollout.
    pub zero_variance_groups: f64,
    /// Groups dropped by dynamic sampling.
    pub dropped_groups: usize,
    /// Groups sampled this step (all rounds) and sampling rounds used.
    #[serde(default)]
    pub sampled_groups: usize,
    #[serde(default)]
    pub sampling_rounds: usize,
    /// Per op of the sampled problems: share of groups whose trained reward is the same for
    /// every rollout.
    #[serde(default)]
    pub zero_variance_by_op: std::collections::BTreeMap<String, f64>,
    pub rollout_tokens_per_s: f64,
    pub step_seconds: f64,
    /// Tokens and FLOPs of this phase so far, and of every phase.
    pub tokens: u64,
    pub flops: f64,
    pub cum_tokens: u64,
    pub cum_flops: f64,
}

/// `state.json` of an RL checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlState {
    pub dagmath_version: String,
    pub rl: RlProgress,
    pub phases: Vec<PhaseRecord>,
    pub config: RlConfig,
    pub model: ModelConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlProgress {
    pub step: u64,
    pub cursor: PoolCursor,
    /// The starting checkpoint: the KL reference, reloaded on resume.
    pub reference: PathBuf,
}

/// Where an RL run starts.
pub enum RlStart<'a> {
    From(&'a Path),
    Resume,
}

/// Observes the loop (progress bars live in the CLI).
pub trait RlObserver {
    fn start(&mut self, _start_step: u64, _total: u64) {}
    fn step(&mut self, _m: &RlMetrics) {}
}

impl RlObserver for super::Silent {}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RlSummary {
    pub metrics: Vec<RlMetrics>,
    pub final_checkpoint: PathBuf,
    pub phases: Vec<PhaseRecord>,
}

/// Mean of `f` over `xs` (0 for none).
fn mean<T>(xs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().map(f).sum::<f64>() / xs.len() as f64
    }
}

/// The RL loop.
pub fn train_rl<B: AutodiffBackend>(
    cfg: &RlConfig,
    start: RlStart<'_>,
    device: &B::Device,
    obs: &mut dyn RlObserver,
) -> Result<RlSummary, TrainError> {
    cfg.validate().map_err(TrainError::Config)?;
    let existing = checkpoint::list(&cfg.out)?;
    let (loaded, reference_dir, resumed) = match start {
        RlStart::From(dir) => {
            refuse_existing(&cfg.out, &existing)?;
            (checkpoint::load(dir)?, dir.to_path_buf(), None)
        }
        RlStart::Resume => {
            let dir = latest(&cfg.out, &existing)?;
            let l = checkpoint::load(dir)?;
            let state: RlState = l
                .rl_state
                .clone()
                .ok_or_else(|| {
                    TrainError::Config(format!("{}: not an RL checkpoint", dir.display()))
                })
                .and_then(|v| {
                    serde_json::from_value(v).map_err(|e| {
                        TrainError::Config(format!("{}/state.json: {e}", dir.display()))
                    })
                })?;
            if &state.config != cfg {
                return Err(TrainError::Config(format!(
                    "--resume: the config differs from the one in {}/state.json",
                    dir.display()
                )));
            }
            let reference = state.rl.reference.clone();
            (l, reference, Some(state))
        }
    };
    let tok =
        Tokenizer::from_file(&loaded.tokenizer).map_err(|e| TrainError::Config(e.to_string()))?;
    let eos = tok
        .token_id("[EOS]")
        .ok_or_else(|| TrainError::Config("the tokenizer has no [EOS] token".into()))?;
    let pad = tok.token_id("[PAD]").unwrap_or(eos);
    let pool = load_pool(&cfg.data, &tok)?;
    let model_cfg = loaded.model.clone();
    let model: Qwen2<B> = weights::to_model(&model_cfg, &loaded.weights, device)?;
    let reference = if cfg.grpo.kl_coef > 0.0 {
        let w = if resumed.is_some() {
            checkpoint::load(&reference_dir)?.weights
        } else {
            loaded.weights.clone()
        };
        Some(weights::to_model::<B::InnerBackend>(
            &model_cfg, &w, device,
        )?)
    } else {
        None
    };
    let mut policy = Policy {
        model,
        reference,
        optim: AdamW::<B>::new(cfg.optim.clone()),
        grpo: cfg.grpo.clone(),
        grad_clip: cfg.optim.grad_clip,
        micro_batch_rows: cfg.rl.micro_batch_rows,
        pad,
        temperature: cfg.rollout.temperature,
        autodiff: false,
    };
    let mut phases = loaded.phases.clone();
    let (mut step, mut cursor, mut current) = match &resumed {
        Some(state) => {
            let opt = loaded.optimizer.as_ref().ok_or_else(|| {
                TrainError::Config(format!(
                    "{}: no optimizer.safetensors",
                    loaded.dir.display()
                ))
            })?;
            policy
                .optim
                .load_state_dict(&policy.model, opt, state.rl.step, device)
                .map_err(TrainError::Config)?;
            policy.optim.steps = state.rl.step;
            let current = phases.pop().expect("an RL checkpoint records its phase");
            (state.rl.step, state.rl.cursor, current)
        }
        None => (
            0,
            PoolCursor::default(),
            PhaseRecord {
                name: "rl".into(),
                steps: 0,
                tokens: 0,
                flops: 0.0,
                from: Some(reference_dir.display().to_string()),
            },
        ),
    };
    let prior_tokens: u64 = phases.iter().map(|p| p.tokens).sum();
    let prior_flops: f64 = phases.iter().map(|p| p.flops).sum();
    std::fs::create_dir_all(&cfg.out).map_err(|source| TrainError::Io {
        path: cfg.out.display().to_string(),
        source,
    })?;
    let metrics_path = cfg.out.join("metrics.jsonl");
    let io_err = |source| TrainError::Io {
        path: metrics_path.display().to_string(),
        source,
    };
    let mut log =
        MetricsLog::open(&metrics_path, resumed.as_ref().map(|_| step)).map_err(io_err)?;
    let stops = stops(&tok).map_err(|e| TrainError::Config(e.to_string()))?;
    let reward = cfg.reward();
    let rule = cfg.rule();
    let alpha = cfg.rl.alpha;
    let n_params = model_cfg.n_params() as f64;
    let total = cfg.rl.steps;
    let mut verifier = Verifier::new();
    let mut all_metrics = Vec::new();
    let mut final_checkpoint = PathBuf::new();
    obs.start(step, total);
    let cap = cfg.flops_cap();
    while step < total && cap.is_none_or(|f| current.flops < f) {
        let t0 = Instant::now();
        // Sampling rounds: the first draws `prompts_per_step` prompts; with dynamic sampling
        // and `max_sampling_rounds` > 1, each further round draws as many as informative groups
        // are missing.
        let (mut groups, mut dropped) = (Vec::new(), 0usize);
        let mut scored = Vec::new(); // (outcome, process, mixed, strict, verified, len, truncated)
        let mut new_tokens = 0u64;
        let mut prompt_tokens = 0u64;
        let (mut roll_secs, mut rounds) = (0.0f64, 0usize);
        // Per op of the sampled problems: (groups with one reward for all, groups).
        let mut by_op: std::collections::BTreeMap<u32, (usize, usize)> = Default::default();
        while groups.len() < cfg.rl.prompts_per_step
            && (rounds == 0 || (cfg.rl.dynamic_sampling && rounds < cfg.rl.max_sampling_rounds))
        {
            let want = cfg.rl.prompts_per_step - groups.len();
            let picks = draw(pool.len(), want, cfg.seed, &mut cursor);
            let prompts: Vec<(&[u32], u64)> = picks
                .iter()
                .map(|&i| (pool[i].prompt.as_slice(), str_key(&pool[i].gold.id)))
                .collect();
            let seed = match rounds {
                0 => derive(&[cfg.seed, str_key("rl-rollout"), step]),
                r => derive(&[cfg.seed, str_key("rl-rollout"), step, r as u64]),
            };
            let gen = GenConfig {
                sampling: cfg.sampling(),
                max_new_tokens: cfg.rollout.max_new_tokens.at(step),
                seed,
                batch_rows: cfg.rollout.batch_rows,
                decoder: cfg.rollout.decoder,
            };
            let t_roll = Instant::now();
            let completions = policy.rollout(&prompts, cfg.rl.group_size, &gen, &stops, device);
            roll_secs += t_roll.elapsed().as_secs_f64();
            rounds += 1;
            // Verify and score.
            for (&i, comps) in picks.iter().zip(&completions) {
                let item = &pool[i];
                prompt_tokens += item.prompt.len() as u64;
                let mut rollouts = Vec::with_capacity(comps.len());
                let mut outcomes = Vec::with_capacity(comps.len());
                for c in comps {
                    new_tokens += c.tokens.len() as u64;
                    let text = tok
                        .decode(&c.tokens)
                        .map_err(|e| TrainError::Config(e.to_string()))?;
                    let v = verifier.verify(&item.gold.graph, &text, rule);
                    let r = reward.score(v);
                    scored.push([
                        Reward::Outcome.score(v),
                        Reward::Process.score(v),
                        Reward::Mixed { alpha }.score(v),
                        Reward::Strict.score(v),
                        v.verified_correct as u8 as f64,
                        c.tokens.len() as f64,
                        (c.finish == Finish::Length) as u8 as f64,
                    ]);
                    outcomes.push(v.answer_correct);
                    let mut tokens = item.prompt.clone();
                    tokens.extend(&c.tokens);
                    if c.finish == Finish::Eos {
                        tokens.push(eos);
                    }
                    let mut logprobs = c.logprobs.clone();
                    logprobs.extend(c.eos_logprob);
                    rollouts.push(Rollout {
                        tokens,
                        prompt_len: item.prompt.len(),
                        truncated: c.finish == Finish::Length,
                        reward: r,
                        logprobs,
                    });
                }
                let rewards: Vec<f64> = rollouts.iter().map(|r| r.reward).collect();
                let flat = rewards.iter().all(|&r| r == rewards[0]);
                let op = by_op.entry(item.gold.op).or_default();
                op.0 += flat as usize;
                op.1 += 1;
                if cfg.rl.dynamic_sampling && outcomes.iter().all(|&o| o == outcomes[0]) {
                    dropped += 1;
                    continue;
                }
                groups.push(Group {
                    rollouts,
                    advantages: Vec::new(),
                });
            }
        }
        // Advantages once the step's groups are in (`scale_rewards = "batch"` needs them all).
        let rewards: Vec<Vec<f64>> = groups
            .iter()
            .map(|g| g.rollouts.iter().map(|r| r.reward).collect())
            .collect();
        for (g, a) in groups
            .iter_mut()
            .zip(grpo::step_advantages(&rewards, &cfg.grpo))
        {
            g.advantages = a;
        }
        let lr = cfg.optim.lr_at(step, total);
        let s = policy.update(&groups, lr, device);
        if !s.loss.is_finite() {
            return Err(TrainError::Diverged {
                step,
                loss: s.loss,
                lr,
            });
        }
        step += 1;
        // Compute: rollouts (one prefill per prompt, one forward per new token), reference
        // forward and training forward + backward on every trained position.
        let fwd_per_token = 2.0 * n_params;
        let rollout_flops = fwd_per_token * (prompt_tokens + new_tokens) as f64;
        let ref_flops = if policy.reference.is_some() {
            fwd_per_token * s.tokens as f64
        } else {
            0.0
        };
        let train_flops = 3.0 * fwd_per_token * s.tokens as f64;
        current.steps = step;
        current.tokens += prompt_tokens + new_tokens;
        current.flops += rollout_flops + ref_flops + train_flops;
        let col = |k: usize| mean(&scored, |x| x[k]);
        let (zero_var, sampled) = by_op
            .values()
            .fold((0, 0), |(z, n), &(flat, groups)| (z + flat, n + groups));
        let m = RlMetrics {
            phase: "rl".into(),
            step,
            lr,
            loss: s.loss,
            grad_norm: s.grad_norm,
            reward: mean(
                &groups
                    .iter()
                    .flat_map(|g| g.rollouts.iter())
                    .collect::<Vec<_>>(),
                |r| r.reward,
            ),
            reward_outcome: col(0),
            reward_process: col(1),
            reward_mixed: col(2),
            reward_strict: col(3),
            pass_rate: col(4),
            answer_rate: col(0),
            entropy: s.entropy,
            clip_fraction: s.clip_fraction,
            kl: s.kl,
            logp_gap_mean: s.logp_gap_mean,
            logp_gap_max: s.logp_gap_max,
            optimizer_steps: s.optimizer_steps,
            response_length: col(5),
            truncated: col(6),
            zero_variance_groups: zero_var as f64 / sampled.max(1) as f64,
            dropped_groups: dropped,
            sampled_groups: sampled,
            sampling_rounds: rounds,
            zero_variance_by_op: by_op
                .iter()
                .map(|(op, &(flat, n))| (op.to_string(), flat as f64 / n as f64))
                .collect(),
            rollout_tokens_per_s: new_tokens as f64 / roll_secs.max(1e-9),
            step_seconds: t0.elapsed().as_secs_f64(),
            tokens: current.tokens,
            flops: current.flops,
            cum_tokens: prior_tokens + current.tokens,
            cum_flops: prior_flops + current.flops,
        };
        log.write_json(&m).map_err(io_err)?;
        obs.step(&m);
        all_metrics.push(m);
        let last = step == total || cap.is_some_and(|f| current.flops >= f);
        let due = cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0;
        if due || last {
            let mut all = phases.clone();
            all.push(current.clone());
            let state = RlState {
                dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
                rl: RlProgress {
                    step,
                    cursor,
                    reference: reference_dir.clone(),
                },
                phases: all,
                config: cfg.clone(),
                model: model_cfg.clone(),
            };
            let json = serde_json::to_string_pretty(&state).expect("state serialises");
            final_checkpoint = checkpoint::save_with_state(
                &cfg.out,
                step,
                &model_cfg,
                &weights::from_model(&policy.model.valid()),
                &policy.optim.state_dict(&policy.model),
                tok.json(),
                (pad, eos),
                &json,
                cfg.checkpoint.keep.max(1),
            )?;
        }
    }
    super::metrics::plot_rl(&metrics_path, &cfg.out.join("rl_curve.svg"))
        .map_err(|e| TrainError::Config(format!("plot: {e}")))?;
    phases.push(current);
    Ok(RlSummary {
        metrics: all_metrics,
        final_checkpoint,
        phases,
    })
}
