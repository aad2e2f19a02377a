//! AdamW with decoupled weight decay on matrices only, global gradient-norm clipping, and the
//! warmup + cosine schedule (SPEC §6). Written here rather than taken from burn because burn 0.21
//! decays every parameter, clips per tensor and has no sequential schedule, and because keying
//! the moments by parameter path lets a checkpoint store them by name.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::model::{HostTensor, Weights};

/// Optimiser and schedule settings; defaults are SPEC §6's pre-training values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Floor of the cosine decay.
    pub min_lr: f64,
    /// Warmup as a fraction of all steps (ignored when `warmup_steps` is set).
    pub warmup: f64,
    pub warmup_steps: Option<u64>,
    /// `cosine` (warmup, then cosine to `min_lr`), `constant` (warmup, then `lr`) or `wsd`
    /// (warmup-stable-decay: warmup, `lr` held, then a decay to `min_lr` over the last `decay`
    /// of the steps, shaped by `decay_shape`).
    pub schedule: Schedule,
    /// `wsd`: the decay phase as a fraction of all steps, in (0, 1] (ignored when `decay_steps`
    /// is set). A stable run (`constant`) forked into branches each continued with `wsd`,
    /// `decay = 1` and `warmup = 0` is Stable-then-Decay with one data mixture per branch.
    pub decay: f64,
    pub decay_steps: Option<u64>,
    /// `wsd`: `linear`, `cosine` or `sqrt` (1 − √progress, as in the WSD papers).
    pub decay_shape: DecayShape,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm clip; 0 disables clipping.
    pub grad_clip: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Constant,
    Wsd,
}

/// Shape of a `wsd` schedule's decay from `lr` to `min_lr`, as a function of the decay's
/// progress p in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecayShape {
    /// lr − (lr − min_lr)·p
    Linear,
    /// min_lr + (lr − min_lr)·(1 + cos πp)/2
    Cosine,
    /// min_lr + (lr − min_lr)·(1 − √p)
    Sqrt,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 2e-4,
            min_lr: 3e-5,
            warmup: 0.05,
            warmup_steps: None,
            schedule: Schedule::Cosine,
            decay: 0.1,
            decay_steps: None,
            decay_shape: DecayShape::Sqrt,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            grad_clip: 1.0,
        }
    }
}

impl OptimConfig {
    pub fn validate(&self) -> Result<(), crate::train::config::ConfigError> {
        let checks = [
            ("lr", self.lr > 0.0 && self.lr.is_finite()),
            ("min_lr", self.min_lr >= 0.0 && self.min_lr <= self.lr),
            ("warmup", (0.0..1.0).contains(&self.warmup)),
            ("decay", self.decay > 0.0 && self.decay <= 1.0),
            ("weight_decay", self.weight_decay >= 0.0),
            ("beta1", (0.0..1.0).contains(&self.beta1)),
            ("beta2", (0.0..1.0).contains(&self.beta2)),
            ("eps", self.eps > 0.0),
            ("grad_clip", self.grad_clip >= 0.0),
        ];
        for (name, ok) in checks {
            if !ok {
                let value = match name {
                    "lr" => self.lr,
                    "min_lr" => self.min_lr,
                    "warmup" => self.warmup,
                    "decay" => self.decay,
                    "weight_decay" => self.weight_decay,
                    "beta1" => self.beta1,
                    "beta2" => self.beta2,
                    "eps" => self.eps,
                    _ => self.grad_clip,
                };
                let rule = match name {
                    "min_lr" => "must lie in [0, lr]",
                    "warmup" | "beta1" | "beta2" => "must lie in [0, 1)",
                    "decay" => "must lie in (0, 1]",
                    _ => "must be positive",
                };
                return Err(crate::train::config::ConfigError::value(
                    format!("optim.{name}"),
                    value,
                    rule,
                ));
            }
        }
        Ok(())
    }

    /// Learning rate for optimiser step `step` (0-based) of `total`.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        let warmup = self
            .warmup_steps
            .unwrap_or_else(|| (self.warmup * total as f64).round() as u64);
        if step < warmup {
            return self.lr * (step + 1) as f64 / warmup as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.min_lr + (self.lr - self.min_lr) * cos
            }
            Schedule::Wsd => {
                let decay = self
                    .decay_steps
                    .unwrap_or_else(|| (self.decay * total as f64).round() as u64)
                    .max(1);
                let start = total.saturating_sub(decay).max(warmup);
                if step < start {
                    return self.lr;
                }
                let span = total.saturating_sub(start).max(1) as f64;
                let p = ((step - start) as f64 / span).min(1.0);
                let left = match self.decay_shape {
                    DecayShape::Linear => 1.0 - p,
                    DecayShape::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
                    DecayShape::Sqrt => 1.0 - p.sqrt(),
                };
                self.min_lr + (self.lr - self.min_lr) * left
            }
        }
    }
}

/// First and second moments of one parameter, flattened.
struct Moments<B: Backend> {
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
}

/// AdamW state: moments by parameter id, and the number of steps taken.
pub struct AdamW<B: AutodiffBackend> {
    config: OptimConfig,
    moments: HashMap<ParamId, Moments<B::InnerBackend>>,
    pub steps: u64,
}

impl<B: AutodiffBackend> AdamW<B> {
    pub fn new(config: OptimConfig) -> Self {
        AdamW {
            config,
            moments: HashMap::new(),
            steps: 0,
        }
    }

    /// One update of every parameter that has a gradient. `clip` scales the gradients first
    /// (the factor from [`clip_factor`]).
    pub fn step<M: AutodiffModule<B>>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: GradientsParams,
        clip: f64,
    ) -> M {
        self.steps += 1;
        let mut mapper = Update::<B> {
            config: &self.config,
            moments: &mut self.moments,
            grads: &mut grads,
            lr,
            clip,
            t: self.steps as i32,
        };
        module.map(&mut mapper)
    }

    /// The moments keyed by parameter path (`layers.0.mlp.up_proj.weight.m`, `... .v`).
    pub fn state_dict<M: AutodiffModule<B>>(&self, module: &M) -> Weights {
        let mut out = Weights::new();
        for (path, id) in param_paths(module) {
            if let Some(mo) = self.moments.get(&id) {
                out.insert(
                    format!("{path}.m"),
                    crate::model::weights::host(mo.m.clone()),
                );
                out.insert(
                    format!("{path}.v"),
                    crate::model::weights::host(mo.v.clone()),
                );
            }
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_dict`] onto `module`'s parameters.
    pub fn load_state_dict<M: AutodiffModule<B>>(
        &mut self,
        module: &M,
        state: &Weights,
        steps: u64,
        device: &B::Device,
    ) -> Result<(), MissingMoment> {
        self.moments.clear();
        for (path, id) in param_paths(module) {
            let get = |k: &str| -> Result<Tensor<B::InnerBackend, 1>, MissingMoment> {
                let key = format!("{path}.{k}");
                let t: &HostTensor = state.get(&key).ok_or(MissingMoment { key })?;
                let data = burn::tensor::TensorData::new(t.data.clone(), [t.data.len()]);
                Ok(Tensor::from_data(data, device))
            };
            if steps > 0 {
                self.moments.insert(
                    id,
                    Moments {
                        m: get("m")?,
                        v: get("v")?,
                    },
                );
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// A checkpoint's optimiser state lacks a parameter's moment.
#[derive(Debug, thiserror::Error)]
#[error("optimizer state: tensor {key} is missing")]
pub struct MissingMoment {
    pub key: String,
}

struct Update<'a, B: AutodiffBackend> {
    config: &'a OptimConfig,
    moments: &'a mut HashMap<ParamId, Moments<B::InnerBackend>>,
    grads: &'a mut GradientsParams,
    lr: f64,
    clip: f64,
    t: i32,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Update<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let c = self.config;
        let shape = grad.shape();
        let n = shape.num_elements();
        let mut g = grad.reshape([n]);
        if self.clip != 1.0 {
            g = g.mul_scalar(self.clip);
        }
        let (m, v) = match self.moments.remove(&id) {
            Some(mo) => (
                mo.m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1),
                mo.v.mul_scalar(c.beta2) + g.square().mul_scalar(1.0 - c.beta2),
            ),
            None => (
                g.clone().mul_scalar(1.0 - c.beta1),
                g.square().mul_scalar(1.0 - c.beta2),
            ),
        };
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        // PyTorch's form: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
        let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
        let update = m.clone().div(denom).mul_scalar(self.lr / bc1);
        let mut p = tensor.inner();
        // Decay matrices (projections, embedding) only; norms and biases are not decayed.
        if D >= 2 && c.weight_decay > 0.0 {
            p = p.mul_scalar(1.0 - self.lr * c.weight_decay);
        }
        let p = p - update.reshape(shape);
        self.moments.insert(id, Moments { m, v });
        let p = Tensor::<B, D>::from_inner(p).require_grad();
        Param::from_mapped_value(id, p, mapper)
    }
}

/// The factor that brings the global gradient norm down to `max_norm` (1 when it is below),
/// and the norm itself.
pub fn clip_factor<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
    max_norm: f64,
) -> (f64, f64) {
    let mut v = SquaredNorm::<B> { grads, total: None };
    module.visit(&mut v);
    let norm = match v.total {
        Some(t) => (t.into_scalar().elem::<f64>()).sqrt(),
        None => 0.0,
    };
    let factor = if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    };
    (factor, norm)
}

use burn::tensor::ElementConversion;

struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// `(path, id)` of every float parameter, paths joined with dots (`layers.0.mlp.up_proj.weight`).
pub fn param_paths<B: Backend, M: burn::module::Module<B>>(module: &M) -> Vec<(String, ParamId)> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<(String, ParamId)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out.push((self.stack.join("."), param.id));
        }
    }
    let mut p = Paths {
        stack: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut p);
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_min() {
        let c = OptimConfig {
            lr: 1.0,
            min_lr: 0.1,
            warmup: 0.1,
            ..OptimConfig::default()
        };
        assert!((c.lr_at(0, 100) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9, 100) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10, 100) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(55, 100) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(100, 100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn wsd_holds_the_peak_then_decays_over_its_last_steps() {
        let c = |shape| OptimConfig {
            lr: 1.0,
            min_lr: 0.2,
            warmup: 0.1,
            schedule: Schedule::Wsd,
            decay: 0.2,
            decay_shape: shape,
            ..OptimConfig::default()
        };
        for shape in [DecayShape::Linear, DecayShape::Cosine, DecayShape::Sqrt] {
            let c = c(shape);
            // Warmup over steps 0-9, stable 10-79, decay 80-99 (20 steps) to min_lr at 100.
            assert!((c.lr_at(0, 100) - 0.1).abs() < 1e-12);
            assert!((c.lr_at(10, 100) - 1.0).abs() < 1e-12);
            assert!((c.lr_at(79, 100) - 1.0).abs() < 1e-12);
            assert!((c.lr_at(80, 100) - 1.0).abs() < 1e-12);
            assert!((c.lr_at(100, 100) - 0.2).abs() < 1e-12);
        }
        // A quarter into the decay (step 85): p = 0.25.
        assert!((c(DecayShape::Linear).lr_at(85, 100) - (0.2 + 0.8 * 0.75)).abs() < 1e-12);
        let cos = 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos());
        assert!((c(DecayShape::Cosine).lr_at(85, 100) - (0.2 + 0.8 * cos)).abs() < 1e-12);
        assert!((c(DecayShape::Sqrt).lr_at(85, 100) - (0.2 + 0.8 * 0.5)).abs() < 1e-12);
        // A decay branch forked from a stable checkpoint: no warmup, the whole run decays.
        let branch = OptimConfig {
            warmup: 0.0,
            decay: 1.0,
            ..c(DecayShape::Linear)
        };
        assert!((branch.lr_at(0, 40) - 1.0).abs() < 1e-12);
        assert!((branch.lr_at(20, 40) - 0.6).abs() < 1e-12);
        assert!((branch.lr_at(40, 40) - 0.2).abs() < 1e-12);
        let bad = OptimConfig {
            decay: 0.0,
            ..OptimConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("optim.decay = 0"));
    }

    #[test]
    fn bad_values_are_named() {
        let c = OptimConfig {
            min_lr: 1.0,
            lr: 0.5,
            ..OptimConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("optim.min_lr = 1"));
    }
}
