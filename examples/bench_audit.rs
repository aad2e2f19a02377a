//! Verifier throughput: gold completions of the zoo template, half forward and half reverse
//! (alternating, as in the paper's corpus), verified under `Rule::Strict`.
//!
//! `cargo run --release --example bench_audit` prints traces verified per second at op 10 and
//! op 20, on one core and on all cores (rayon, one `Verifier` per worker). Each figure is the
//! median of `TRIALS` timed trials (with the slowest and fastest), because single runs on a
//! shared 2-core VM vary by ±30%. The reference Python verifier manages about 3,700 traces/s per
//! core.

use std::time::Instant;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::graph::GoldGraph;
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::trace::{Rule, Verifier};
use rayon::prelude::*;

/// Distinct problems per op; each trial verifies every one `ROUNDS` times.
const PROBLEMS: u64 = 2000;
const ROUNDS: usize = 40;
const TRIALS: usize = 9;

/// (median, min, max) of per-trial rates.
fn stats(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn main() {
    let set = TemplateSet::builtin();
    let t = set.get("zoo").expect("builtin zoo template");
    println!("bench_audit: zoo template, modes alternating forward/reverse, Rule::Strict, gold completions");
    println!(
        "threads available to rayon: {}",
        rayon::current_num_threads()
    );
    for op in [10u32, 20] {
        let mut cases: Vec<(GoldGraph, String)> = Vec::new();
        for i in 0..PROBLEMS {
            let mode = if i % 2 == 0 {
                Mode::Forward
            } else {
                Mode::Reverse
            };
            if let Ok(p) = compose_seeded(t, op, mode, i) {
                let r = Rendered::of(t, &p);
                cases.push((GoldGraph::from_problem(t, &p), r.completion));
            }
        }
        let bytes: usize = cases.iter().map(|c| c.1.len()).sum();
        let n = cases.len() * ROUNDS;

        let mut ver = Verifier::new();
        let mut one = Vec::new();
        let mut all = Vec::new();
        for _ in 0..TRIALS {
            let mut ok = 0usize;
            let t0 = Instant::now();
            for _ in 0..ROUNDS {
                for (g, c) in &cases {
                    ok += ver.verify(g, c, Rule::Strict).verified_correct as usize;
                }
            }
            one.push(n as f64 / t0.elapsed().as_secs_f64());
            assert_eq!(ok, n, "a gold completion failed verification");

            let t0 = Instant::now();
            let ok: usize = (0..ROUNDS)
                .into_par_iter()
                .map_init(Verifier::new, |ver, _| {
                    cases
                        .iter()
                        .map(|(g, c)| ver.verify(g, c, Rule::Strict).verified_correct as usize)
                        .sum::<usize>()
                })
                .sum();
            all.push(n as f64 / t0.elapsed().as_secs_f64());
            assert_eq!(ok, n);
        }
        let mean = bytes / cases.len().max(1);
        let (o, o_lo, o_hi) = stats(one);
        let (a, a_lo, a_hi) = stats(all);
        println!(
            "op {op:2}: {} problems, mean completion {mean} bytes, median of {TRIALS} trials [min-max]:\n  \
             1 core    {o:>10.0} traces/s [{o_lo:.0}-{o_hi:.0}] ({:.0} MB/s)\n  \
             all cores {a:>10.0} traces/s [{a_lo:.0}-{a_hi:.0}]",
            cases.len(),
            o * mean as f64 / 1e6,
        );
    }
}
