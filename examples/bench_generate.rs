//! `cargo run --release --example bench_generate [ROWS] [--family]`
//!
//! Prints the family beside the reference generator for every op 2-20 in both modes (the
//! figures of `REFERENCE_STATS.md`, dagmath / reference and the relative difference, 1,000
//! problems per row; `--family` stops there), then problems/s per core for compose, canonical
//! id and render of problem, question, trace, prompt and completion (forward/reverse op 10 and
//! op 20, zoo), the rate of the CLI's path (`generate` with one thread, Parquet and token counts
//! included) at op 10 forward, the end-to-end rate of `generate` into Parquet for an op 2-10
//! mixture on all cores, and the process's peak RSS.

use std::time::Instant;

use dagmath::composer::{compose_seeded, problem_id, Mode};
use dagmath::dataset::{generate, GenerateOptions, Quiet, Recipe};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;

fn per_core(t: &dagmath::template::Template, op: u32, mode: Mode, n: u64) -> f64 {
    let mut r = Rendered::default();
    let mut buf = Vec::new();
    let mut sink = 0usize;
    let start = Instant::now();
    for seed in 0..n {
        let p = compose_seeded(t, op, mode, seed).expect("composes");
        let id = problem_id(&t.id, &p, &mut buf);
        r.fill(t, &p);
        sink += r.completion.len() + id.0[0] as usize;
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(sink > 0);
    n as f64 / secs
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    let (table, misses) = dagmath::family::comparison(zoo, 1000, 12).expect("composes");
    println!("zoo, dagmath / reference (relative difference), 1,000 problems per row:\n\n{table}");
    println!("out of tolerance: {}", misses.len());
    for m in &misses {
        println!("  {m}");
    }
    if std::env::args().any(|a| a == "--family") {
        return;
    }
    let n = 200_000;
    println!("compose + id + render, one core (zoo, {n} problems each):");
    for (mode, op) in [
        (Mode::Forward, 10),
        (Mode::Forward, 20),
        (Mode::Reverse, 10),
        (Mode::Reverse, 20),
    ] {
        let rate = per_core(zoo, op, mode, n);
        println!("  {mode:<8} op {op:>2}: {rate:>10.0} problems/s per core");
    }

    cli_path(&set);

    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let recipe_text = format!(
        "name = \"bench\"\nseed = 7\nshard_size = 100000\n[[splits]]\nname = \"train\"\nsize = {rows}\n\
         op_weights = {{ \"2-4\" = 0.2, \"5-7\" = 0.3, \"8-10\" = 0.5 }}\n\
         templates = {{ zoo = 0.9, school = 0.1 }}\nmodes = {{ forward = 0.5, reverse = 0.5 }}\n"
    );
    let recipe = Recipe::from_toml(std::path::Path::new("bench.toml"), &recipe_text, &set).unwrap();
    let out = std::env::temp_dir().join(format!("dagmath-bench-{}", std::process::id()));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let opts = GenerateOptions {
        out: out.clone(),
        threads: 0,
        resume: false,
        force: true,
    };
    let start = Instant::now();
    generate(&recipe, &set, &opts, &Quiet).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "end to end into Parquet (op 2-10, 0.2/0.3/0.5 tiers, zoo 0.9 / school 0.1, 50% reverse), {threads} threads:\n  \
         {rows} problems in {secs:.2}s = {:.0} problems/s, {:.1} MB of shards ({:.0} bytes/problem)",
        rows as f64 / secs,
        bytes as f64 / 1e6,
        bytes as f64 / rows as f64
    );
    let _ = std::fs::remove_dir_all(&out);
    println!("peak RSS: {:.1} MB", peak_rss_mb());
}

/// What `dagmath generate --ops 10 --count 200000 --template zoo --mode forward --threads 1`
/// runs: the library's `generate` on one thread, Parquet and token counts included.
fn cli_path(set: &TemplateSet) {
    let rows = 200_000u64;
    let text = format!(
        "name = \"train\"\nseed = 0\nshard_size = 100000\n[[splits]]\nname = \"train\"\n\
         size = {rows}\nops = \"10\"\ntemplates = {{ zoo = 1 }}\nmodes = {{ forward = 1 }}\n"
    );
    let recipe = Recipe::from_toml(std::path::Path::new("cli.toml"), &text, set).unwrap();
    let out = std::env::temp_dir().join(format!("dagmath-bench-cli-{}", std::process::id()));
    let opts = GenerateOptions {
        out: out.clone(),
        threads: 1,
        resume: false,
        force: true,
    };
    let start = Instant::now();
    generate(&recipe, set, &opts, &Quiet).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "CLI path (generate, 1 thread, op 10 forward, zoo): {rows} problems in {secs:.2}s = \
         {:.0} problems/s, {:.1} MB/s of Parquet",
        rows as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    let _ = std::fs::remove_dir_all(&out);
}
