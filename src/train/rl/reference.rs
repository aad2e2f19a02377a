//! The KL reference's sync (TRL's `sync_ref_model`, `ref_model_sync_steps`,
//! `ref_model_mixup_alpha`): every `sync_every` RL steps the reference moves towards the
//! policy, π_ref ← α·π_θ + (1 − α)·π_ref, parameter by parameter. α = 1 resets it to the
//! policy (the KL then restarts from zero); α < 1 is TRL's mix-up.
//!
//! Why: with a frozen reference the KL term holds the policy near its start for the whole run,
//! which long runs (or runs whose start is weak) may not want; a moving reference bounds each
//! stretch's drift instead. Once a sync has happened the reference is no longer the starting
//! checkpoint, so each later checkpoint carries its weights in [`REFERENCE_FILE`] and a resume
//! continues from them exactly.
//!
//! ```toml
//! [reference]
//! sync_every = 0       # RL steps between syncs; 0 (the default): the reference stays frozen
//! mixup_alpha = 1.0    # α; 1: reset to the policy (TRL's default mix-up is 0.6)
//! ```

use serde::{Deserialize, Serialize};

use crate::model::Weights;
use crate::train::config::ConfigError;

/// The safetensors file of an RL checkpoint holding the synced reference's weights.
pub const REFERENCE_FILE: &str = "reference.safetensors";

/// The `[reference]` table of an RL config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefSync {
    /// RL steps between syncs (after steps N, 2N, …); 0 keeps the reference frozen.
    pub sync_every: u64,
    /// α of π_ref ← α·π_θ + (1 − α)·π_ref, in (0, 1].
    pub mixup_alpha: f64,
}

impl Default for RefSync {
    fn default() -> Self {
        RefSync {
            sync_every: 0,
            mixup_alpha: 1.0,
        }
    }
}

impl RefSync {
    /// The frozen reference (nothing to record in a config: old configs read the same).
    pub fn is_off(&self) -> bool {
        *self == RefSync::default()
    }

    /// Rejects an α outside (0, 1] and a sync with no reference to sync (`kl_coef = 0`).
    pub fn validate(&self, kl_coef: f64) -> Result<(), ConfigError> {
        if !(self.mixup_alpha > 0.0 && self.mixup_alpha <= 1.0) {
            return Err(ConfigError::value(
                "reference.mixup_alpha",
                self.mixup_alpha,
                "must be in (0, 1]",
            ));
        }
        if self.sync_every > 0 && kl_coef == 0.0 {
            return Err(ConfigError::value(
                "reference.sync_every",
                self.sync_every,
                "needs a KL term: with grpo.kl_coef = 0 no reference model is kept",
            ));
        }
        Ok(())
    }

    /// Whether the reference syncs after RL step `step` (counted from 1).
    pub fn due(&self, step: u64) -> bool {
        self.sync_every > 0 && step > 0 && step % self.sync_every == 0
    }
}

/// π_ref ← α·π_θ + (1 − α)·π_ref over every tensor; α = 1 copies the policy exactly.
///
/// Both sides come from the same model config, so names and shapes agree; a mismatch is a bug.
pub fn mix(reference: &mut Weights, policy: &Weights, alpha: f64) {
    assert_eq!(
        reference.len(),
        policy.len(),
        "reference and policy share one model config"
    );
    let a = alpha as f32;
    for (name, r) in reference.iter_mut() {
        let p = &policy[name];
        assert_eq!(
            r.shape, p.shape,
            "{name}: reference and policy shapes differ"
        );
        if alpha == 1.0 {
            r.data.copy_from_slice(&p.data);
        } else {
            for (x, &y) in r.data.iter_mut().zip(&p.data) {
                *x = a * y + (1.0 - a) * *x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::weights::HostTensor;

    fn w(v: &[f32]) -> Weights {
        let mut m = Weights::new();
        m.insert(
            "t".into(),
            HostTensor {
                shape: vec![v.len()],
                data: v.to_vec(),
            },
        );
        m
    }

    #[test]
    fn mix_is_the_convex_combination_and_alpha_one_copies() {
        let mut r = w(&[1.0, -2.0, 4.0]);
        mix(&mut r, &w(&[3.0, 2.0, 0.0]), 0.25);
        // 0.25·p + 0.75·r, by hand.
        assert_eq!(r["t"].data, vec![1.5, -1.0, 3.0]);
        mix(&mut r, &w(&[7.0, 8.0, 9.0]), 1.0);
        assert_eq!(r["t"].data, vec![7.0, 8.0, 9.0]);
    }

    #[test]
    fn due_every_n_steps_and_never_when_off() {
        let s = RefSync {
            sync_every: 3,
            mixup_alpha: 1.0,
        };
        let due: Vec<u64> = (0..10).filter(|&k| s.due(k)).collect();
        assert_eq!(due, vec![3, 6, 9]);
        assert!(!(1..10).any(|k| RefSync::default().due(k)));
    }

    #[test]
    fn validate_names_the_bad_value() {
        let bad = RefSync {
            sync_every: 2,
            mixup_alpha: 0.0,
        };
        assert!(bad
            .validate(0.001)
            .unwrap_err()
            .to_string()
            .contains("mixup_alpha"));
        let no_kl = RefSync {
            sync_every: 2,
            mixup_alpha: 0.6,
        };
        let e = no_kl.validate(0.0).unwrap_err().to_string();
        assert!(
            e.contains("reference.sync_every") && e.contains("kl_coef"),
            "{e}"
        );
        assert!(no_kl.validate(0.001).is_ok());
    }
}
