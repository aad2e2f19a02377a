//! GRPO with verifier rewards (`dagmath train rl --config FILE --from CKPT`), a loop on the
//! run skeleton ([`super::run`]) read top to bottom, in nanochat's order: draw prompts from
//! the pool ([`pool`]) → roll out a group per prompt with the policy ([`policy`]) → verify
//! each rollout against its gold graph and score it → group-normalised advantages → the
//! update (backward and AdamW step) → log → save. The config is [`RlConfig`].
//!
//! Left out, and why: no value model (the group's mean reward is the baseline). The KL term
//! is to the starting policy, frozen unless `[reference]` syncs it ([`reference`]); dynamic
//! sampling drops groups whose binary outcome is uniform, as they carry no signal.

pub mod policy;
pub mod pool;
pub mod reference;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};

pub use self::policy::{Group, Policy, Rollout, UpdateStats};
pub use self::pool::{draw, load_pool, PoolCursor, PoolError, PoolItem};
pub use crate::train::config::rl::{MaxNewTokens, PoolConfig, RlConfig, RlSettings, RolloutConfig};

use super::checkpoint::{self, PhaseRecord};
use super::config::{DeviceKind, Precision};
use super::error::{RunError, TrainError};
use super::grpo;
use super::metrics::Chart;
use super::optim::AdamW;
use super::run::{self, Begin, Carried, Observer, Phase, Row, Run, Start, Summary};
use super::trainer::TrainBackend;
use crate::composer::seed::{derive, str_key};
use crate::engine::stops;
use crate::engine::{Finish, GenConfig};
use crate::model::{weights, ModelConfig, Qwen2};
use crate::tokenizer::Tokenizer;
use crate::trace::{Rewards, Verifier};

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
    /// Mean soft overlong punishment added to the trained reward (0 when it is off).
    #[serde(default)]
    pub overlong_penalty: f64,
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
    /// The last step the reference was synced at ([`reference::RefSync`]); from then on the
    /// checkpoint's [`reference::REFERENCE_FILE`] holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_synced: Option<u64>,
}

/// What an RL run did, beside [`Summary`]'s checkpoint and compute: every step's metrics.
#[derive(Debug, Clone)]
pub struct RlOutcome {
    pub metrics: Vec<RlMetrics>,
}

pub type RlSummary = Summary<RlOutcome>;

impl Phase for RlConfig {
    type Outcome = RlOutcome;
    fn device(&self) -> (DeviceKind, Precision) {
        (self.device, self.precision)
    }
    fn run<B: TrainBackend>(
        &self,
        start: Start<'_>,
        device: &B::Device,
        obs: &mut dyn Observer,
    ) -> Result<RlSummary, TrainError> {
        train_rl::<B>(self, start, device, obs)
    }
}

/// One rollout's verdict under every reward, for the step's means.
struct Scored {
    rewards: Rewards,
    verified: bool,
    length: usize,
    truncated: bool,
    /// The soft overlong punishment added to the trained reward.
    overlong: f64,
}

/// Mean of `f` over `xs` (0 for none).
fn mean<T>(xs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().map(f).sum::<f64>() / xs.len() as f64
    }
}

/// The checkpoint an RL run starts from, the KL reference's folder, and on a resume its state.
fn origin(
    cfg: &RlConfig,
    begin: Begin,
) -> Result<(checkpoint::Loaded, PathBuf, Option<RlState>), TrainError> {
    match begin {
        Begin::Fresh => Err(RunError::NoFrom { phase: "rl".into() }.into()),
        Begin::From(l) => {
            let reference = l.dir.clone();
            Ok((l, reference, None))
        }
        Begin::Resume(l) => {
            let v = l
                .rl_state
                .clone()
                .ok_or_else(|| RunError::NotRl { dir: l.dir.clone() })?;
            let state: RlState =
                serde_json::from_value(v).map_err(|source| RunError::BadState {
                    dir: l.dir.clone(),
                    source,
                })?;
            run::same_config(&state.config, cfg, &l.dir)?;
            let reference = state.rl.reference.clone();
            Ok((l, reference, Some(state)))
        }
    }
}

/// The RL loop.
pub fn train_rl<B: TrainBackend>(
    cfg: &RlConfig,
    start: Start<'_>,
    device: &B::Device,
    obs: &mut dyn Observer,
) -> Result<RlSummary, TrainError> {
    cfg.validate()?;
    let (loaded, reference_dir, resumed) = origin(cfg, run::begin(&cfg.out, start)?)?;
    let tok = Tokenizer::from_file(&loaded.tokenizer)?;
    let carried = Carried::new(&loaded.model, &tok)?;
    let (pad, eos) = (carried.pad, carried.eos);
    let (pool, trace_format) = load_pool(&cfg.data, &tok)?;
    let model_cfg = loaded.model.clone();
    let model: Qwen2<B> = weights::to_model(&model_cfg, &loaded.weights, device)?;
    let mut ref_synced = resumed.as_ref().and_then(|s| s.rl.reference_synced);
    let reference = if cfg.grpo.kl_coef > 0.0 {
        let w = match (&resumed, ref_synced) {
            (Some(_), Some(_)) => {
                let path = loaded.dir.join(reference::REFERENCE_FILE);
                weights::load_safetensors(&path).map_err(|source| RunError::Reference {
                    dir: loaded.dir.clone(),
                    source,
                })?
            }
            (Some(_), None) => checkpoint::load(&reference_dir)?.weights,
            (None, _) => loaded.weights.clone(),
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
    let mut earlier = loaded.phases.clone();
    let (mut step, mut cursor, current) = match &resumed {
        Some(state) => {
            let opt = loaded
                .optimizer
                .as_ref()
                .ok_or_else(|| RunError::NoOptimizer {
                    dir: loaded.dir.clone(),
                })?;
            policy
                .optim
                .load_state_dict(&policy.model, opt, state.rl.step, device)
                .map_err(|source| RunError::Optimizer {
                    dir: loaded.dir.clone(),
                    source,
                })?;
            policy.optim.steps = state.rl.step;
            let current = earlier.pop().expect("an RL checkpoint records its phase");
            (state.rl.step, state.rl.cursor, current)
        }
        None => (
            0,
            PoolCursor::default(),
            PhaseRecord::new("rl", Some(&reference_dir)),
        ),
    };
    let resumed_at = resumed.as_ref().map(|_| step);
    let checkpoints = &cfg.checkpoint;
    let mut run = Run::open(
        &cfg.out,
        earlier,
        current,
        resumed_at,
        checkpoints,
        carried,
        obs,
    )?;
    let stops = stops(&tok)?;
    let (reward, rule, alpha) = (cfg.reward(), cfg.rule(), cfg.rl.alpha);
    let fwd_per_token = 2.0 * model_cfg.n_params() as f64;
    let total = cfg.rl.steps;
    let cap = cfg.flops_cap();
    let mut verifier = Verifier::for_format(trace_format);
    let mut outcome = RlOutcome {
        metrics: Vec::new(),
    };
    run.start(step, total);
    while step < total && cap.is_none_or(|f| run.current.flops < f) {
        let t0 = Instant::now();
        // Rollouts, in sampling rounds: the first draws `prompts_per_step` prompts; with
        // dynamic sampling and `max_sampling_rounds` > 1, each further round draws as many as
        // informative groups are missing.
        let (mut groups, mut dropped) = (Vec::new(), 0usize);
        let mut scored = Vec::new();
        let (mut new_tokens, mut prompt_tokens) = (0u64, 0u64);
        let (mut roll_secs, mut rounds) = (0.0f64, 0usize);
        // Per op of the sampled problems: (groups with one reward for all, groups).
        let mut by_op: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
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
            // Verify and score every rollout against its problem's gold graph.
            for (&i, comps) in picks.iter().zip(&completions) {
                let item = &pool[i];
                prompt_tokens += item.prompt.len() as u64;
                let mut rollouts = Vec::with_capacity(comps.len());
                let mut outcomes = Vec::with_capacity(comps.len());
                for c in comps {
                    new_tokens += c.tokens.len() as u64;
                    let text = tok.decode(&c.tokens)?;
                    let v = verifier.verify(&item.gold.graph, &text, rule);
                    let truncated = c.finish == Finish::Length;
                    let overlong = grpo::overlong_penalty(
                        c.tokens.len(),
                        gen.max_new_tokens,
                        cfg.rl.overlong_buffer,
                        cfg.rl.overlong_penalty,
                    );
                    scored.push(Scored {
                        rewards: Rewards::of(v, alpha),
                        verified: v.verified_correct,
                        length: c.tokens.len(),
                        truncated,
                        overlong,
                    });
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
                        truncated,
                        reward: reward.score(v) + overlong,
                        logprobs,
                    });
                }
                let flat = rollouts.iter().all(|r| r.reward == rollouts[0].reward);
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
        // Backward and step.
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
        // The reference's sync, after the step's update (TRL's order).
        if cfg.reference.due(step) {
            if let Some(r) = &mut policy.reference {
                let mut w = weights::from_model(&*r);
                reference::mix(
                    &mut w,
                    &weights::from_model(&policy.model.valid()),
                    cfg.reference.mixup_alpha,
                );
                *r = weights::to_model(&model_cfg, &w, device)?;
                ref_synced = Some(step);
            }
        }
        // Compute: rollouts (one prefill per prompt, one forward per new token), reference
        // forward and training forward + backward on every trained position.
        let rollout_flops = fwd_per_token * (prompt_tokens + new_tokens) as f64;
        let ref_flops = if policy.reference.is_some() {
            fwd_per_token * s.tokens as f64
        } else {
            0.0
        };
        let train_flops = 3.0 * fwd_per_token * s.tokens as f64;
        let flops = rollout_flops + ref_flops + train_flops;
        run.account(step, prompt_tokens + new_tokens, flops);
        // Log.
        let (zero_var, sampled) = by_op
            .values()
            .fold((0, 0), |(z, n), &(flat, groups)| (z + flat, n + groups));
        let trained: Vec<&Rollout> = groups.iter().flat_map(|g| g.rollouts.iter()).collect();
        let m = RlMetrics {
            phase: "rl".into(),
            step,
            lr,
            loss: s.loss,
            grad_norm: s.grad_norm,
            reward: mean(&trained, |r| r.reward),
            reward_outcome: mean(&scored, |x| x.rewards.outcome),
            reward_process: mean(&scored, |x| x.rewards.process),
            reward_mixed: mean(&scored, |x| x.rewards.mixed),
            reward_strict: mean(&scored, |x| x.rewards.strict),
            pass_rate: mean(&scored, |x| x.verified as u8 as f64),
            answer_rate: mean(&scored, |x| x.rewards.outcome),
            entropy: s.entropy,
            clip_fraction: s.clip_fraction,
            kl: s.kl,
            logp_gap_mean: s.logp_gap_mean,
            logp_gap_max: s.logp_gap_max,
            optimizer_steps: s.optimizer_steps,
            response_length: mean(&scored, |x| x.length as f64),
            truncated: mean(&scored, |x| x.truncated as u8 as f64),
            overlong_penalty: mean(&scored, |x| x.overlong),
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
            tokens: run.current.tokens,
            flops: run.current.flops,
            cum_tokens: run.cum_tokens(),
            cum_flops: run.cum_flops(),
        };
        run.log(Row::Rl(&m))?;
        outcome.metrics.push(m);
        // Save.
        let last = step == total || cap.is_some_and(|f| run.current.flops >= f);
        if run.due(step, last) {
            let state = RlState {
                dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
                rl: RlProgress {
                    step,
                    cursor,
                    reference: reference_dir.clone(),
                    reference_synced: ref_synced,
                },
                phases: run.phases(),
                config: cfg.clone(),
                model: model_cfg.clone(),
            };
            let w = weights::from_model(&policy.model.valid());
            let opt = policy.optim.state_dict(&policy.model);
            // A synced reference is no longer the starting checkpoint: keep its weights.
            let synced = match (&policy.reference, ref_synced) {
                (Some(r), Some(_)) => Some(weights::from_model(r)),
                _ => None,
            };
            let extra: Vec<(&str, &crate::model::Weights)> = synced
                .iter()
                .map(|w| (reference::REFERENCE_FILE, w))
                .collect();
            run.save_with(step, &w, &opt, &extra, &state)?;
        }
    }
    run.finish("rl_curve.svg", &Chart::rl(), outcome)
}
