//! `dagmath train rl`'s config: the pool, the GRPO step's sizes, the reward and verification
//! rule (the verifier's own [`Reward`] and [`Rule`]), rollouts, the objective, the optimiser.
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
//! [reference]               # KL reference sync: sync_every = 0 (frozen), mixup_alpha = 1.0
//! [optim]                   # lr 1e-6 constant (SPEC §6); schedule = "wsd" for a decay
//! [checkpoint]
//! every = 50
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check_out, read, CheckpointConfig, ComputeSplit, ConfigError, DeviceKind, Precision};
use crate::engine::Sampling;
use crate::trace::{Reward, Rule};
use crate::train::grpo::GrpoConfig;
use crate::train::optim::{OptimConfig, Schedule};
use crate::train::rl::reference::RefSync;

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
    /// The KL reference's sync (frozen by default).
    #[serde(default, skip_serializing_if = "RefSync::is_off")]
    pub reference: RefSync,
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

/// The `[rl]` table. Users write the reward as a name with its `alpha` beside it
/// (`reward = "mixed"`, `alpha = 0.2`); a private shim reads and writes that form, so the
/// TOML, and the config saved in every checkpoint, keep that shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RlSettingsToml", into = "RlSettingsToml")]
pub struct RlSettings {
    pub steps: u64,
    pub prompts_per_step: usize,
    pub group_size: usize,
    /// The reward the policy is trained on (`Mixed` and `Penalty` carry `alpha`).
    pub reward: Reward,
    /// The outcome weight of `mixed` and `penalty`; the logged `reward_mixed` uses it whatever
    /// reward is trained.
    pub alpha: f64,
    pub rule: Rule,
    /// Drop groups whose binary outcome (answer right) is the same for every rollout.
    pub dynamic_sampling: bool,
    /// With `dynamic_sampling`: sampling rounds per step at most. Each round after the first
    /// draws as many new prompts as groups are still missing, until `prompts_per_step`
    /// informative groups are in hand (DAPO's oversampling); 1 trains on what is left.
    pub max_sampling_rounds: usize,
    /// DAPO's soft overlong punishment ([`crate::train::grpo::overlong_penalty`]): the last
    /// `overlong_buffer` tokens before the rollout limit cost up to `overlong_penalty` of
    /// reward, linearly; 0 (the default) turns it off.
    pub overlong_buffer: usize,
    pub overlong_penalty: f64,
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
            reward: Reward::Mixed { alpha: 0.2 },
            alpha: 0.2,
            rule: Rule::Strict,
            dynamic_sampling: false,
            max_sampling_rounds: 1,
            overlong_buffer: 0,
            overlong_penalty: 1.0,
            micro_batch_rows: 32,
            flops: None,
        }
    }
}

/// `[rl]` as written: the reward by name, `alpha` beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RlSettingsToml {
    steps: u64,
    prompts_per_step: usize,
    group_size: usize,
    reward: String,
    alpha: f64,
    rule: Rule,
    dynamic_sampling: bool,
    max_sampling_rounds: usize,
    overlong_buffer: usize,
    overlong_penalty: f64,
    micro_batch_rows: usize,
    flops: Option<f64>,
}

impl Default for RlSettingsToml {
    fn default() -> Self {
        RlSettings::default().into()
    }
}

impl TryFrom<RlSettingsToml> for RlSettings {
    type Error = ConfigError;

    fn try_from(t: RlSettingsToml) -> Result<Self, ConfigError> {
        Ok(RlSettings {
            steps: t.steps,
            prompts_per_step: t.prompts_per_step,
            group_size: t.group_size,
            reward: reward_named(&t.reward, t.alpha)?,
            alpha: t.alpha,
            rule: t.rule,
            dynamic_sampling: t.dynamic_sampling,
            max_sampling_rounds: t.max_sampling_rounds,
            overlong_buffer: t.overlong_buffer,
            overlong_penalty: t.overlong_penalty,
            micro_batch_rows: t.micro_batch_rows,
            flops: t.flops,
        })
    }
}

impl From<RlSettings> for RlSettingsToml {
    fn from(s: RlSettings) -> Self {
        RlSettingsToml {
            steps: s.steps,
            prompts_per_step: s.prompts_per_step,
            group_size: s.group_size,
            reward: reward_name(s.reward),
            alpha: s.alpha,
            rule: s.rule,
            dynamic_sampling: s.dynamic_sampling,
            max_sampling_rounds: s.max_sampling_rounds,
            overlong_buffer: s.overlong_buffer,
            overlong_penalty: s.overlong_penalty,
            micro_batch_rows: s.micro_batch_rows,
            flops: s.flops,
        }
    }
}

/// The reward called `name` (its serde name: `outcome`, `mixed`, ...), with `alpha` where it
/// takes one. The names are [`Reward`]'s own, so there is no second list to keep in step.
fn reward_named(name: &str, alpha: f64) -> Result<Reward, ConfigError> {
    let unit = serde_json::Value::String(name.to_string());
    serde_json::from_value(unit).or_else(|source| {
        serde_json::from_value(serde_json::json!({ name: { "alpha": alpha } })).map_err(|_| {
            ConfigError::Reward {
                name: name.to_string(),
                source,
            }
        })
    })
}

/// [`reward_named`]'s inverse: the name of `reward` without its `alpha`.
fn reward_name(reward: Reward) -> String {
    match serde_json::to_value(reward).expect("a reward serialises") {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(m) => m.into_iter().next().map(|(k, _)| k).unwrap_or_default(),
        other => other.to_string(),
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
    Steps(BTreeMap<String, usize>),
}

impl MaxNewTokens {
    /// The schedule as (step, limit) pairs in step order, or why it is not one.
    fn steps(&self) -> Result<Vec<(u64, usize)>, ConfigError> {
        match self {
            MaxNewTokens::Fixed(n) => Ok(vec![(0, *n)]),
            MaxNewTokens::Steps(m) => {
                let mut v = m
                    .iter()
                    .map(|(k, &n)| {
                        k.parse::<u64>()
                            .map(|s| (s, n))
                            .map_err(|_| ConfigError::ScheduleKey { key: k.clone() })
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

    /// The smallest limit of the schedule.
    pub fn min(&self) -> usize {
        self.steps()
            .unwrap_or_default()
            .iter()
            .map(|&(_, n)| n)
            .min()
            .unwrap_or(0)
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

    fn validate(&self) -> Result<(), ConfigError> {
        let steps = self.steps()?;
        match steps.first() {
            None => {
                return Err(ConfigError::Missing {
                    key: "rollout.max_new_tokens",
                    rule: "an empty schedule",
                })
            }
            Some(&(step, _)) if step != 0 => return Err(ConfigError::ScheduleStart { step }),
            _ => {}
        }
        if let Some(&(step, _)) = steps.iter().find(|&&(_, n)| n == 0) {
            return Err(ConfigError::ScheduleZero { step });
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
    pub fn from_file(path: &Path) -> Result<RlConfig, ConfigError> {
        let c = Self::from_toml(&read(path)?).map_err(|e| e.in_file(path))?;
        c.validate().map_err(|e| e.in_file(path))?;
        Ok(c)
    }

    /// Parses a config; an `[optim]` table overrides the RL defaults key by key (so giving
    /// `lr` alone keeps the constant schedule).
    pub fn from_toml(text: &str) -> Result<RlConfig, ConfigError> {
        let mut table: toml::Table = toml::from_str(text)?;
        if let Some(user) = table.remove("optim") {
            let user = user.as_table().cloned().ok_or(ConfigError::Missing {
                key: "optim",
                rule: "must be a table",
            })?;
            let mut base = toml::Table::try_from(rl_optim()).expect("optim serialises");
            // Unknown keys are rejected by OptimConfig's deny_unknown_fields.
            base.extend(user);
            table.insert("optim".into(), toml::Value::Table(base));
        }
        let mut c: RlConfig = table.try_into()?;
        // Dr. GRPO's constant normaliser defaults to the rollouts' token limit.
        if c.grpo.norm_tokens == 0 {
            c.grpo.norm_tokens = c.rollout.max_new_tokens.max();
        }
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_out(&self.out)?;
        let r = &self.rl;
        let at_least_one = [
            (
                "rl.steps",
                r.steps == 0,
                "must be ≥ 1 (with a FLOP cap, the most steps to take)",
            ),
            (
                "rl.prompts_per_step",
                r.prompts_per_step == 0,
                "must be ≥ 1",
            ),
        ];
        if let Some(&(key, _, rule)) = at_least_one.iter().find(|c| c.1) {
            return Err(ConfigError::Missing { key, rule });
        }
        if r.group_size < 2 {
            return Err(ConfigError::value(
                "rl.group_size",
                r.group_size,
                "GRPO needs at least 2 rollouts per prompt",
            ));
        }
        if !(0.0..=1.0).contains(&r.alpha) {
            return Err(ConfigError::value("rl.alpha", r.alpha, "must be in [0, 1]"));
        }
        if r.max_sampling_rounds == 0 {
            return Err(ConfigError::value(
                "rl.max_sampling_rounds",
                0,
                "must be ≥ 1",
            ));
        }
        if r.micro_batch_rows == 0 {
            return Err(ConfigError::Missing {
                key: "rl.micro_batch_rows",
                rule: "must be ≥ 1",
            });
        }
        self.rollout.max_new_tokens.validate()?;
        if !(r.overlong_penalty.is_finite() && r.overlong_penalty >= 0.0) {
            return Err(ConfigError::value(
                "rl.overlong_penalty",
                r.overlong_penalty,
                "must be a finite number ≥ 0",
            ));
        }
        if r.overlong_buffer > self.rollout.max_new_tokens.min() {
            return Err(ConfigError::value(
                "rl.overlong_buffer",
                r.overlong_buffer,
                "must not exceed the smallest rollout.max_new_tokens",
            ));
        }
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
        )
        .map_err(ConfigError::Memory)?;
        self.sampling().validate().map_err(ConfigError::Sampling)?;
        self.grpo.validate()?;
        self.reference.validate(self.grpo.kl_coef)?;
        self.optim.validate()?;
        if self.data.splits.is_empty() {
            return Err(ConfigError::Missing {
                key: "data.splits",
                rule: "name at least one split",
            });
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

    /// The rollouts' sampling settings.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.rollout.temperature,
            top_k: self.rollout.top_k,
            top_p: self.rollout.top_p,
        }
    }

    /// The reward the policy is trained on.
    pub fn reward(&self) -> Reward {
        self.rl.reward
    }

    /// The verification rule.
    pub fn rule(&self) -> Rule {
        self.rl.rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rl(rl: &str) -> Result<RlConfig, ConfigError> {
        RlConfig::from_toml(&format!(
            "out = \"o\"\n[data]\ndir = \"d\"\nsplits = [\"p\"]\n[rl]\n{rl}"
        ))
    }

    #[test]
    fn reward_names_read_as_the_verifiers_rewards_and_write_back_unchanged() {
        for (name, want) in [
            ("outcome", Reward::Outcome),
            ("process", Reward::Process),
            ("mixed", Reward::Mixed { alpha: 0.3 }),
            ("strict", Reward::Strict),
            ("penalty", Reward::Penalty { alpha: 0.3 }),
        ] {
            let c = with_rl(&format!(
                "reward = \"{name}\"\nalpha = 0.3\nrule = \"interplay\"\n"
            ))
            .unwrap();
            assert_eq!((c.reward(), c.rule()), (want, Rule::Interplay), "{name}");
            let back = serde_json::to_value(&c.rl).unwrap();
            assert_eq!(
                (&back["reward"], &back["alpha"], &back["rule"]),
                (&name.into(), &0.3.into(), &"interplay".into())
            );
            let again: RlSettings = serde_json::from_value(back).unwrap();
            assert_eq!(again, c.rl);
        }
        let e = with_rl("reward = \"best\"\n").unwrap_err().to_string();
        assert!(e.contains("best") && e.contains("penalty"), "{e}");
    }

    #[test]
    fn the_rl_table_saved_in_checkpoints_keeps_its_shape() {
        // state.json of RL checkpoints written before the verifier's enums were used.
        let old = r#"{"steps":100,"prompts_per_step":1024,"group_size":6,"reward":"mixed","alpha":0.2,"rule":"strict","dynamic_sampling":false,"max_sampling_rounds":1,"micro_batch_rows":32,"flops":null}"#;
        let read: RlSettings = serde_json::from_str(old).unwrap();
        assert_eq!(read, RlSettings::default());
        // Today's shape: the same keys, plus the soft overlong punishment's two (absent in
        // older checkpoints, read as off).
        let now = r#"{"steps":100,"prompts_per_step":1024,"group_size":6,"reward":"mixed","alpha":0.2,"rule":"strict","dynamic_sampling":false,"max_sampling_rounds":1,"overlong_buffer":0,"overlong_penalty":1.0,"micro_batch_rows":32,"flops":null}"#;
        assert_eq!(serde_json::to_string(&RlSettings::default()).unwrap(), now);
    }

    #[test]
    fn shipped_rl_configs_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in [
            "examples/configs/rl_quickstart.toml",
            "examples/micro/rl_easy.toml",
            "examples/micro/rl_edge.toml",
        ] {
            let c = RlConfig::from_file(&root.join(f)).unwrap();
            assert_eq!(c.reward(), Reward::Mixed { alpha: c.rl.alpha }, "{f}");
        }
    }

    #[test]
    fn shipped_dapo_config_is_dapo() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = RlConfig::from_file(&root.join("examples/configs/dapo_micro.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.reward(), Reward::Outcome);
        assert!(c.rl.dynamic_sampling && c.rl.max_sampling_rounds > 1);
        assert!(c.grpo.eps_high > c.grpo.eps_low && c.grpo.kl_coef == 0.0);
        assert_eq!((c.rl.overlong_buffer, c.rl.overlong_penalty), (32, 1.0));
    }
}
