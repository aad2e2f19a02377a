//! The sampling engine: per-row seeds make completions independent of batching (checked with a
//! mock decoder and with the burn model), stop rules, and cached decoding against a full
//! forward pass.

use dagmath::engine::{generate, Completion, Decoder, Finish, GenConfig, Request, Sampling, Stops};

/// A decoder whose logits are a hash of each row's whole history, so any mix-up of rows,
/// positions or cache contents shows up as different samples.
struct Mock {
    vocab: usize,
    rows: Vec<Vec<u32>>,
    capacity: usize,
}

impl Mock {
    fn logits(&self, out: &mut Vec<f32>) {
        out.clear();
        for row in &self.rows {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &t in row {
                h = (h ^ t as u64).wrapping_mul(0x100_0000_01b3);
            }
            for v in 0..self.vocab {
                let x = (h ^ (v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .wrapping_mul(0xbf58_476d_1ce4_e5b9);
                // Token 0 (EOS) grows likelier with length.
                let bias = if v == 0 {
                    row.len() as f32 * 0.1 - 3.5
                } else {
                    0.0
                };
                out.push(((x >> 40) as f32 / (1u64 << 24) as f32) * 3.0 + bias);
            }
        }
    }
}

impl Decoder for Mock {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn prefill(&mut self, prompts: &[&[u32]], capacity: usize, out: &mut Vec<f32>) {
        self.rows = prompts.iter().map(|p| p.to_vec()).collect();
        self.capacity = capacity;
        self.logits(out);
    }
    fn select(&mut self, rows: &[usize]) {
        self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
    }
    fn step(&mut self, tokens: &[u32], out: &mut Vec<f32>) {
        assert_eq!(tokens.len(), self.rows.len());
        for (row, &t) in self.rows.iter_mut().zip(tokens) {
            row.push(t);
            assert!(row.len() <= self.capacity, "capacity exceeded");
        }
        self.logits(out);
    }
}

fn mock() -> Mock {
    Mock {
        vocab: 9,
        rows: Vec::new(),
        capacity: 0,
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![1, 2, 3],
        vec![4, 5, 6, 7, 8, 1],
        vec![2],
        vec![3, 3, 3, 3],
    ]
}

fn run(dec: &mut impl Decoder, batch_rows: usize, samples: usize) -> Vec<Vec<Completion>> {
    let p = prompts();
    let reqs: Vec<Request> = p
        .iter()
        .enumerate()
        .map(|(i, p)| Request {
            prompt: p,
            key: 100 + i as u64,
            samples,
        })
        .collect();
    let cfg = GenConfig {
        sampling: Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.95,
        },
        max_new_tokens: 24,
        seed: 5,
        batch_rows,
        decoder: Default::default(),
    };
    let stops = Stops {
        eos: Some(0),
        sequences: vec![vec![7, 7]],
    };
    let mut done = 0;
    let out = generate(dec, &reqs, &cfg, &stops, |n| done += n);
    assert_eq!(done, reqs.len() * samples);
    out
}

#[test]
fn samples_do_not_depend_on_batching() {
    let reference = run(&mut mock(), 1, 6);
    for rows in [2, 5, 6, 7, 64] {
        assert_eq!(run(&mut mock(), rows, 6), reference, "batch_rows {rows}");
    }
    // A request's samples do not depend on the other requests either.
    let p = prompts();
    let alone = generate(
        &mut mock(),
        &[Request {
            prompt: &p[1],
            key: 101,
            samples: 6,
        }],
        &GenConfig {
            sampling: Sampling {
                temperature: 1.0,
                top_k: 0,
                top_p: 0.95,
            },
            max_new_tokens: 24,
            seed: 5,
            batch_rows: 3,
            decoder: Default::default(),
        },
        &Stops {
            eos: Some(0),
            sequences: vec![vec![7, 7]],
        },
        |_| {},
    );
    assert_eq!(alone[0], reference[1]);
    // Samples of one prompt differ from each other.
    assert!(reference[0]
        .iter()
        .any(|c| c.tokens != reference[0][0].tokens));
}

#[test]
fn stop_rules() {
    let out = run(&mut mock(), 8, 16);
    let mut seen = [false; 3];
    for c in out.iter().flatten() {
        assert_eq!(c.tokens.len(), c.logprobs.len());
        match c.finish {
            Finish::Eos => {
                seen[0] = true;
                assert!(!c.tokens.contains(&0), "EOS is not kept");
            }
            Finish::Stop => {
                seen[1] = true;
                assert!(c.tokens.ends_with(&[7, 7]));
            }
            Finish::Length => {
                seen[2] = true;
                assert_eq!(c.tokens.len(), 24);
            }
        }
        // Nothing after the first stop: no earlier 7,7 and no EOS inside.
        let cut = c.tokens.len().saturating_sub(2);
        assert!(!c.tokens[..cut].windows(2).any(|w| w == [7, 7]));
    }
    assert_eq!(seen, [true, true, true], "every finish kind occurs");
}

#[test]
fn greedy_is_the_argmax_path() {
    let p = [vec![1u32, 2]];
    let cfg = GenConfig {
        sampling: Sampling::greedy(),
        max_new_tokens: 10,
        seed: 1,
        batch_rows: 4,
        decoder: Default::default(),
    };
    let reqs = [Request {
        prompt: &p[0],
        key: 9,
        samples: 3,
    }];
    let out = generate(&mut mock(), &reqs, &cfg, &Stops::default(), |_| {});
    // Every greedy sample is the same, and it follows the mock's argmax step by step.
    assert!(out[0].iter().all(|c| c.tokens == out[0][0].tokens));
    let mut m = mock();
    let mut logits = Vec::new();
    m.prefill(&[&p[0]], 20, &mut logits);
    for &t in &out[0][0].tokens {
        assert_eq!(dagmath::engine::argmax(&logits), t);
        m.step(&[t], &mut logits);
    }
}

#[cfg(feature = "train")]
mod model {
    use super::*;
    use burn::tensor::{Int, Tensor, TensorData};
    use dagmath::engine::model::ModelDecoder;
    use dagmath::model::fused::HostDecoder;
    use dagmath::model::{weights, ModelConfig, Qwen2};
    use dagmath::train::device::{cpu_device, CpuInference};

    type B = CpuInference;

    fn model() -> Qwen2<B> {
        let c = ModelConfig {
            vocab_size: 40,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            intermediate_size: 64,
            ..ModelConfig::preset("tiny", 40).unwrap()
        };
        weights::to_model(&c, &weights::init(&c, 3), &cpu_device()).unwrap()
    }

    fn full_logits(m: &Qwen2<B>, seq: &[u32]) -> Vec<f32> {
        let ids: Vec<i64> = seq.iter().map(|&t| t as i64).collect();
        let t = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, seq.len()]), &cpu_device());
        m.forward(t).into_data().to_vec::<f32>().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn cached_decoding_equals_full_forward() {
        let m = model();
        check_cached(&m, &mut ModelDecoder::new(&m, &cpu_device()));
    }

    #[test]
    fn host_decoding_equals_full_forward() {
        let m = model();
        check_cached(&m, &mut HostDecoder::new(&m));
    }

    /// The decoder's logits equal the full forward's at the prefill and at every decode step,
    /// for two prompts of different lengths, then after fanning rows out and dropping one.
    fn check_cached(m: &Qwen2<B>, dec: &mut impl Decoder) {
        let v = 40;
        let prompts: [Vec<u32>; 2] = [vec![3, 9, 14, 1, 22, 5, 7], vec![11, 2, 30]];
        let cont: [Vec<u32>; 2] = [vec![4, 8, 15, 16, 23, 42 % 40], vec![1, 1, 2, 3, 5, 8]];
        let mut logits = Vec::new();
        let refs: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
        dec.prefill(&refs, 16, &mut logits);
        let mut worst = 0.0f32;
        for step in 0..=cont[0].len() {
            for r in 0..2 {
                let seq: Vec<u32> = prompts[r].iter().chain(&cont[r][..step]).copied().collect();
                let full = full_logits(m, &seq);
                let last = &full[(seq.len() - 1) * v..seq.len() * v];
                worst = worst.max(max_diff(&logits[r * v..(r + 1) * v], last));
            }
            if step < cont[0].len() {
                dec.step(&[cont[0][step], cont[1][step]], &mut logits);
            }
        }
        assert!(worst <= 1e-4, "cached vs full: max abs diff {worst}");
        // Fanning rows out and dropping rows keeps each row's own cache.
        dec.select(&[1, 0, 1]);
        dec.step(&[5, 6, 7], &mut logits);
        for (j, (r, t)) in [(1usize, 5u32), (0, 6), (1, 7)].into_iter().enumerate() {
            let seq: Vec<u32> = prompts[r]
                .iter()
                .chain(&cont[r])
                .copied()
                .chain([t])
                .collect();
            let full = full_logits(m, &seq);
            let last = &full[(seq.len() - 1) * v..seq.len() * v];
            let d = max_diff(&logits[j * v..(j + 1) * v], last);
            assert!(d <= 1e-4, "row {j}: {d}");
        }
        // Then the middle row leaves and the others go on.
        dec.select(&[0, 2]);
        dec.step(&[9, 10], &mut logits);
        for (j, (r, t, u)) in [(1usize, 5u32, 9u32), (1, 7, 10)].into_iter().enumerate() {
            let seq: Vec<u32> = prompts[r]
                .iter()
                .chain(&cont[r])
                .copied()
                .chain([t, u])
                .collect();
            let full = full_logits(m, &seq);
            let last = &full[(seq.len() - 1) * v..seq.len() * v];
            let d = max_diff(&logits[j * v..(j + 1) * v], last);
            assert!(d <= 1e-4, "after dropping a row, row {j}: {d}");
        }
    }

    #[test]
    fn host_target_logp_equals_the_full_forward() {
        let m = model();
        let (b, t, v) = (2usize, 9usize, 40usize);
        let x: Vec<u32> = (0..b * t).map(|i| (i * 7 % v) as u32).collect();
        let y: Vec<u32> = (0..b * t).map(|i| (i * 11 % v) as u32).collect();
        for temp in [1.0f32, 0.7] {
            let got = HostDecoder::new(&m).target_logp(&x, &y, t, temp);
            for r in 0..b {
                let full = full_logits(&m, &x[r * t..(r + 1) * t]);
                for p in 0..t {
                    let z: Vec<f64> = full[p * v..(p + 1) * v]
                        .iter()
                        .map(|&a| a as f64 / temp as f64)
                        .collect();
                    let mx = z.iter().cloned().fold(f64::MIN, f64::max);
                    let lse = mx + z.iter().map(|a| (a - mx).exp()).sum::<f64>().ln();
                    let want = z[y[r * t + p] as usize] - lse;
                    let d = (got[r * t + p] as f64 - want).abs();
                    assert!(d <= 1e-4, "row {r} pos {p} T {temp}: {d}");
                }
            }
        }
    }

    #[test]
    fn host_samples_do_not_depend_on_batch_size() {
        let m = model();
        let reference = run(&mut HostDecoder::new(&m), 1, 3);
        for rows in [4, 12] {
            let got = run(&mut HostDecoder::new(&m), rows, 3);
            for (a, b) in got.iter().flatten().zip(reference.iter().flatten()) {
                assert_eq!(a.tokens, b.tokens, "batch_rows {rows}");
                assert_eq!(a.finish, b.finish);
            }
        }
    }

    #[test]
    fn host_and_burn_decoders_sample_alike() {
        // Same logits within float noise, so the same draws except at a near-tie.
        let m = model();
        let burn = run(&mut ModelDecoder::new(&m, &cpu_device()), 4, 3);
        let host = run(&mut HostDecoder::new(&m), 4, 3);
        let same = burn
            .iter()
            .flatten()
            .zip(host.iter().flatten())
            .filter(|(a, b)| a.tokens == b.tokens)
            .count();
        assert!(same >= 11, "{same} of 12 completions agree");
    }

    #[test]
    fn model_samples_do_not_depend_on_batch_size() {
        let m = model();
        let reference = run(&mut ModelDecoder::new(&m, &cpu_device()), 1, 3);
        for rows in [4, 12] {
            let got = run(&mut ModelDecoder::new(&m, &cpu_device()), rows, 3);
            for (a, b) in got.iter().flatten().zip(reference.iter().flatten()) {
                assert_eq!(a.tokens, b.tokens, "batch_rows {rows}");
                assert_eq!(a.finish, b.finish);
            }
        }
    }
}
