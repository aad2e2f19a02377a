//! Why a training config is refused. Every variant names the key (and the value) at fault, and
//! every one is the user's input: the CLI exits 2 on all of them.

use std::path::PathBuf;

use crate::model::config::ModelConfigError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A config file refused: the reason, prefixed with the file's name.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<ConfigError>,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A key's value outside the range it accepts.
    #[error("{key} = {value}: {rule}")]
    Value {
        key: String,
        value: String,
        rule: &'static str,
    },
    /// A key that is missing, empty or zero where it must not be.
    #[error("{key}: {rule}")]
    Missing {
        key: &'static str,
        rule: &'static str,
    },
    /// Settings whose product overflows (`what` lists them with their values).
    #[error("{what}: the tokens per step overflow")]
    Overflow { what: String },
    /// What the config sizes does not fit in memory ([`crate::limits::check_fits`]; names the
    /// keys and the sizes).
    #[error("{0}")]
    Memory(crate::limits::TooBig),
    #[error("model.preset = \"{preset}\" is not a preset (use one of: {known})")]
    Preset { preset: String, known: String },
    #[error("model.{key} is required when no preset is given")]
    Dimension { key: &'static str },
    #[error("model: {0}")]
    Model(#[from] ModelConfigError),
    /// `[rollout]`'s sampling settings ([`crate::engine::Sampling::validate`]).
    #[error("rollout.{0}")]
    Sampling(crate::engine::SamplingError),
    /// `rl.reward` names no reward of the verifier's ([`crate::trace::Reward`]).
    #[error("rl.reward = \"{name}\": {source}")]
    Reward {
        name: String,
        source: serde_json::Error,
    },
    #[error("rollout.max_new_tokens: key {key:?} is not a step number")]
    ScheduleKey { key: String },
    #[error("rollout.max_new_tokens: the schedule starts at step {step}; it must list step 0")]
    ScheduleStart { step: u64 },
    #[error("rollout.max_new_tokens: 0 at step {step}: must be ≥ 1")]
    ScheduleZero { step: u64 },
}

impl ConfigError {
    /// A value error for `key`, showing `value` as the config would.
    pub fn value(
        key: impl Into<String>,
        value: impl std::fmt::Display,
        rule: &'static str,
    ) -> Self {
        ConfigError::Value {
            key: key.into(),
            value: value.to_string(),
            rule,
        }
    }

    /// This error, naming the file it came from.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        ConfigError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}
