//! Verifier throughput: gold completions of the zoo template, half forward and half reverse
//! (alternating, as in the paper's corpus), verified under `Rule::Strict`.
//!
//! `cargo run --release --example bench_audit` prints traces verified per second at op 10 and
//! op 20, on one core and on all cores (rayon, one `Verifier` per worker). The reference Python
//! verifier manages about 3,700 traces/s per core.

use std::time::Instant;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::graph::GoldGraph;
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::trace::{Rule, Verifier};
use rayon::prelude::*;

/// Distinct problems per op; each is verified `ROUNDS` times per measurement.
const PROBLEMS: u64 = 2000;
const ROUNDS: usize = 200;

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
        let mut ok = 0usize;
        let t0 = Instant::now();
        for _ in 0..ROUNDS {
            for (g, c) in &cases {
                ok += ver.verify(g, c, Rule::Strict).verified_correct as usize;
            }
        }
        let one = n as f64 / t0.elapsed().as_secs_f64();
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
        let all = n as f64 / t0.elapsed().as_secs_f64();
        assert_eq!(ok, n);
        println!(
            "op {op:2}: {} problems, mean completion {} bytes: 1 core {:>10.0} traces/s ({:.0} MB/s), all cores {:>10.0} traces/s",
            cases.len(),
            bytes / cases.len().max(1),
            one,
            one * (bytes / cases.len().max(1)) as f64 / 1e6,
            all
        );
    }
}
