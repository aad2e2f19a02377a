//! Drawing one token from a row of logits: greedy, or temperature with optional top-k and
//! top-p (nucleus) truncation. Runs on the host in f64 with a per-row RNG, so the draw of a
//! row depends on its logits and its seed only, never on the rest of the batch.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Sampling settings. `temperature = 0` is greedy decoding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: all).
    pub top_p: f64,
}

impl Default for Sampling {
    /// The paper's evaluation setting: temperature 0.7, no truncation.
    fn default() -> Self {
        Sampling {
            temperature: 0.7,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

impl Sampling {
    pub fn greedy() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }

    pub fn validate(&self) -> Result<(), SamplingError> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(SamplingError::Temperature(self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SamplingError::TopP(self.top_p));
        }
        Ok(())
    }
}

/// A sampling setting out of its range (the message starts with the setting's key, so a
/// caller can prefix its section or `--`).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SamplingError {
    #[error("temperature = {0}: must be a finite number ≥ 0")]
    Temperature(f64),
    #[error("top_p = {0}: must be in (0, 1]")]
    TopP(f64),
}

/// Reusable scratch space for [`Sampler::draw`].
#[derive(Debug, Default)]
pub struct Sampler {
    order: Vec<u32>,
    probs: Vec<f64>,
}

impl Sampler {
    /// The token drawn from `logits` under `s`, and its log-probability under the distribution
    /// it was drawn from (0 for greedy).
    pub fn draw(&mut self, logits: &[f32], s: &Sampling, rng: &mut ChaCha8Rng) -> (u32, f64) {
        if s.temperature == 0.0 {
            return (argmax(logits), 0.0);
        }
        let inv_t = 1.0 / s.temperature;
        self.order.clear();
        self.order.extend(0..logits.len() as u32);
        // Most likely first; ties keep the lower id first, so the order is total.
        let truncating = s.top_k > 0 || s.top_p < 1.0;
        if truncating {
            self.order.sort_unstable_by(|&a, &b| {
                logits[b as usize]
                    .total_cmp(&logits[a as usize])
                    .then(a.cmp(&b))
            });
            if s.top_k > 0 {
                self.order.truncate(s.top_k.min(logits.len()));
            }
        }
        let max = self
            .order
            .iter()
            .map(|&i| logits[i as usize] as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        self.probs.clear();
        let mut total = 0.0;
        for &i in &self.order {
            let p = ((logits[i as usize] as f64 - max) * inv_t).exp();
            total += p;
            self.probs.push(p);
        }
        if s.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = self.probs.len();
            for (j, p) in self.probs.iter().enumerate() {
                acc += p / total;
                if acc >= s.top_p {
                    keep = j + 1;
                    break;
                }
            }
            self.probs.truncate(keep);
            self.order.truncate(keep);
            total = self.probs.iter().sum();
        }
        let u: f64 = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = self.probs.len() - 1;
        for (j, p) in self.probs.iter().enumerate() {
            acc += p;
            if u < acc {
                pick = j;
                break;
            }
        }
        (self.order[pick], (self.probs[pick] / total).ln())
    }
}

/// Index of the largest logit; the lowest index wins a tie. NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn freq(logits: &[f32], s: Sampling, n: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut sampler = Sampler::default();
        let mut counts = vec![0usize; logits.len()];
        for _ in 0..n {
            counts[sampler.draw(logits, &s, &mut rng).0 as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / n as f64).collect()
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 3.0, 3.0, -1.0]), 1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (t, lp) = Sampler::default().draw(&[0.0, 1.0, 5.0], &Sampling::greedy(), &mut rng);
        assert_eq!((t, lp), (2, 0.0));
    }

    #[test]
    fn temperature_one_follows_softmax() {
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()]; // probabilities 1/8, 2/8, 5/8
        let s = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        };
        let f = freq(&logits, s, 40_000);
        for (got, want) in f.iter().zip([0.125, 0.25, 0.625]) {
            assert!((got - want).abs() < 0.01, "{f:?}");
        }
    }

    #[test]
    fn top_k_and_top_p_truncate() {
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()];
        let k2 = Sampling {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
        };
        let f = freq(&logits, k2, 20_000);
        assert_eq!(f[0], 0.0);
        assert!((f[2] - 5.0 / 7.0).abs() < 0.015, "{f:?}");
        // 5/8 < 0.7 ≤ 7/8: the two most likely tokens survive.
        let p = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.7,
        };
        assert_eq!(freq(&logits, p, 5_000)[0], 0.0);
        // 0.6 ≤ 5/8: only the most likely.
        let p = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.6,
        };
        assert_eq!(freq(&logits, p, 1_000)[2], 1.0);
    }

    #[test]
    fn log_prob_is_of_the_truncated_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let s = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut sampler = Sampler::default();
        for _ in 0..20 {
            let (t, lp) = sampler.draw(&logits, &s, &mut rng);
            let want = if t == 1 { 0.75f64.ln() } else { 0.25f64.ln() };
            assert!((lp - want).abs() < 1e-6);
        }
    }
}
