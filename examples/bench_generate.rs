//! `cargo run --release --example bench_generate [ROWS] [--family]`
//!
//! Prints the family beside the reference generator for every op 2-20 in both modes (the
//! figures of `REFERENCE_STATS.md`, dagmath / reference and the relative difference, 1,000
//! problems per row; `--family` stops there), then problems/s per core for compose, canonical
//! id and render of problem, question, trace, prompt and completion (forward/reverse op 10 and
//! op 20, zoo), where one thread's time goes on the CLI's path (compose, render, token count,
//! Arrow, Parquet at zstd 1 / zstd 3 / none), the rate of the CLI's path (`generate` with one
//! pool thread, Parquet and token counts included) at op 10 forward, wall and per CPU-second, the end-to-end rate of `generate` into Parquet for an op 2-10
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
    stages(&set);
}

/// CPU seconds this process has used so far, all threads (from `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the command name.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Where one thread's time goes on the CLI's path, per row (zoo, op 10 forward): compose and
/// id, render, token count, Arrow batch, then Parquet encoding at zstd 1 (what shards use),
/// zstd 3 and uncompressed, into memory.
fn stages(set: &TemplateSet) {
    use dagmath::dataset::schema::{schema, BatchBuilder, TEXT_COLUMNS};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::schema::types::ColumnPath;

    let t = set.get("zoo").unwrap();
    let tok = dagmath::tokenizer::Tokenizer::domain(set);
    let n = 50_000u64;
    let per_row = |s: Instant| s.elapsed().as_secs_f64() * 1e6 / n as f64;
    let mut buf = Vec::new();
    let s = Instant::now();
    let ps: Vec<_> = (0..n)
        .map(|seed| {
            let p = compose_seeded(t, 10, Mode::Forward, seed).unwrap();
            let id = problem_id(&t.id, &p, &mut buf);
            (p, id)
        })
        .collect();
    let compose = per_row(s);
    let mut r = Rendered::default();
    let s = Instant::now();
    let mut sink = 0;
    for (p, _) in &ps {
        r.fill(t, p);
        sink += r.completion.len();
    }
    let render = per_row(s);
    let rs: Vec<Rendered> = ps.iter().map(|(p, _)| Rendered::of(t, p)).collect();
    let s = Instant::now();
    for r in &rs {
        sink += tok.count(&r.prompt).unwrap() + tok.count(&r.completion).unwrap();
    }
    let count = per_row(s);
    let s = Instant::now();
    let mut batches = Vec::new();
    for (part, rs) in ps.chunks(256).zip(rs.chunks(256)) {
        let mut b = BatchBuilder::with_rows(part.len());
        for ((p, id), r) in part.iter().zip(rs) {
            b.push("train", t, id, p, r);
        }
        batches.push(b.finish());
    }
    let arrow = per_row(s);
    assert!(sink > 0);
    println!(
        "one thread, per row (zoo, op 10 forward, {n} rows): compose + id {compose:.2} us, \
         render {render:.2} us, token count {count:.2} us, Arrow batch {arrow:.2} us"
    );
    for (name, c) in [
        ("zstd 1", Compression::ZSTD(ZstdLevel::try_new(1).unwrap())),
        ("zstd 3", Compression::ZSTD(ZstdLevel::try_new(3).unwrap())),
        ("none", Compression::UNCOMPRESSED),
    ] {
        let mut pb = WriterProperties::builder()
            .set_compression(c)
            .set_max_row_group_row_count(Some(8192));
        for col in TEXT_COLUMNS {
            pb = pb
                .set_column_dictionary_enabled(ColumnPath::from(col), false)
                .set_column_statistics_enabled(ColumnPath::from(col), EnabledStatistics::None);
        }
        let s = Instant::now();
        let mut w = ArrowWriter::try_new(Vec::new(), schema(), Some(pb.build())).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        let bytes = w.into_inner().unwrap().len();
        println!(
            "  Parquet encoding, {name:<6}: {:.2} us/row, {} bytes/row",
            per_row(s),
            bytes as u64 / n
        );
    }
}

/// What `dagmath generate --ops 10 --count 200000 --template zoo --mode forward --threads 1`
/// runs: the library's `generate` with one pool thread (plus the shard writer's thread),
/// Parquet and token counts included. Three rounds; medians of wall and CPU rates.
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
    let (mut wall, mut cpu, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..3 {
        let (start, cpu0) = (Instant::now(), cpu_seconds());
        generate(&recipe, set, &opts, &Quiet).unwrap();
        wall.push(rows as f64 / start.elapsed().as_secs_f64());
        cpu.push(rows as f64 / (cpu_seconds() - cpu0));
        bytes = std::fs::read_dir(out.join("data"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>();
    }
    println!(
        "CLI path (generate --threads 1, op 10 forward, zoo, {rows} problems, 3 rounds): \
         median {:.0} problems/s wall, {:.0} problems per CPU-second, {:.0} bytes/problem",
        median(&mut wall),
        median(&mut cpu),
        bytes as f64 / rows as f64
    );
    let _ = std::fs::remove_dir_all(&out);
}
