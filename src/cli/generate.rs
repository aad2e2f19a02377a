//! `dagmath generate`: write a dataset from a recipe, or from quick flags for one-off sets.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};

use dagmath::composer::Noise;
use dagmath::dataset::recipe::RecipeError;
use dagmath::dataset::recipe::{parse_op_range, Budget};
use dagmath::dataset::{generate, GenerateOptions, Observer, Recipe};
use dagmath::template::TemplateSet;
use dagmath::trace::TraceFormat;

use super::{load_templates, CliError};

/// Generate a dataset (Parquet shards, manifest.json, dataset card) from a recipe.
///
/// Either `--recipe FILE` or the quick flags (`--ops`, `--count`, ...) for a one-split set.
/// Output is byte-identical for the same recipe and seed, whatever `--threads` is.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Recipe keys: name, description, seed, shard_size, row_group_size, trace_format \
(full | terse | answer_only | long: how the solution and completion columns write the gold trace; \
the prompt is the same in every format), [[splits]] (see datasets/README.md).\n\n\
Examples:\n  dagmath generate --recipe datasets/quickstart.toml --out out/quickstart\n  \
dagmath generate --ops 11-14 --count 1000 --template zoo --mode forward --split ood_edge --held-out --out out/edge\n  \
dagmath generate --ops 2-10 --count 1000 --trace-format terse --out out/terse"
)]
pub struct Args {
    /// Recipe file (TOML), e.g. datasets/quickstart.toml.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ops", "count"])]
    recipe: Option<PathBuf>,
    /// Output directory (must be empty or absent unless --resume / --force).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Worker threads; 0 uses every core; at most 4 per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Override the recipe's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Trace format of the solution and completion columns: full (the default), terse,
    /// answer_only or long; overrides the recipe's `trace_format`.
    #[arg(long, value_name = "FORMAT", value_parser = parse_trace_format)]
    trace_format: Option<TraceFormat>,
    /// Continue an interrupted run in DIR; the result equals an uninterrupted run's.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace the dataset in DIR.
    #[arg(long)]
    force: bool,
    /// Extra template directory (*.toml), in addition to the built-in zoo, school, festival.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Quick set: op or op range, e.g. 11-14.
    #[arg(long, value_name = "RANGE", requires = "count")]
    ops: Option<String>,
    /// Quick set: number of problems.
    #[arg(long, value_name = "N", requires = "ops")]
    count: Option<u64>,
    /// Quick set: template id(s), comma-separated, equal shares.
    #[arg(
        long,
        value_name = "ID[,ID..]",
        default_value = "zoo",
        conflicts_with = "recipe"
    )]
    template: String,
    /// Quick set: forward, reverse, or mixed (50/50).
    #[arg(long, default_value = "forward", conflicts_with = "recipe")]
    mode: String,
    /// Quick set: split name.
    #[arg(long, default_value = "train", conflicts_with = "recipe")]
    split: String,
    /// Quick set: draw from the held-out id bucket (for evaluation sets).
    #[arg(long, conflicts_with = "recipe")]
    held_out: bool,
    /// Quick set: distractor sentences per problem: reference (the paper's distribution at
    /// each op), none, a count N, or a range A-B.
    #[arg(
        long,
        value_name = "SETTING",
        default_value = "reference",
        conflicts_with = "recipe"
    )]
    distractors: String,
    /// Quick set: rows per shard.
    #[arg(long, default_value_t = 100_000, conflicts_with = "recipe")]
    shard_size: u64,
}

/// `--trace-format`: a format name (a bad one is a usage error naming it).
fn parse_trace_format(s: &str) -> Result<TraceFormat, dagmath::trace::UnknownTraceFormat> {
    s.parse()
}

/// Build a recipe from the quick flags, checking each flag by name.
fn quick_recipe(
    a: &Args,
    ops: &str,
    count: u64,
    templates: &TemplateSet,
) -> Result<Recipe, CliError> {
    parse_op_range(ops).map_err(|p| CliError::usage(anyhow!("--ops: {p}")))?;
    if count == 0 {
        return Err(CliError::usage(anyhow!("--count: must be at least 1")));
    }
    let ids: Vec<&str> = a.template.split(',').map(str::trim).collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(CliError::usage(anyhow!(
                "--template: `{id}` is given twice (templates share equally; list each once)"
            )));
        }
        if templates.get(id).is_none() {
            let known: Vec<&str> = templates.ids().collect();
            return Err(CliError::usage(anyhow!(
                "--template: unknown template `{id}` (known: {})",
                known.join(", ")
            )));
        }
    }
    let modes: &[&str] = match a.mode.as_str() {
        "forward" => &["forward"],
        "reverse" => &["reverse"],
        "mixed" => &["forward", "reverse"],
        m => {
            return Err(CliError::usage(anyhow!(
                "--mode: unknown mode `{m}` (known: forward, reverse, mixed)"
            )))
        }
    };
    let noise =
        Noise::parse(&a.distractors).map_err(|e| CliError::usage(anyhow!("--distractors: {e}")))?;
    let (lo, hi) = parse_op_range(ops).expect("checked above");
    for id in &ids {
        let t = templates.get(id).expect("checked above");
        for op in lo..=hi {
            noise
                .check(t, op)
                .map_err(|e| CliError::usage(anyhow!("--distractors: {e}")))?;
        }
    }
    // The recipe is built as a value: flag text is never pasted into TOML source, so a
    // quote or a `#` in a flag is just part of the value, checked like a recipe's.
    use toml::{Table, Value};
    let weights = |keys: &[&str]| -> Value {
        Value::Table(
            keys.iter()
                .map(|k| (k.to_string(), Value::Integer(1)))
                .collect::<Table>(),
        )
    };
    let int = |flag: &str, v: u64| {
        i64::try_from(v)
            .map(Value::Integer)
            .map_err(|_| CliError::usage(anyhow!("{flag}: {v} is too large")))
    };
    let mut split = Table::new();
    split.insert("name".into(), Value::String(a.split.clone()));
    split.insert("size".into(), int("--count", count)?);
    split.insert("held_out".into(), Value::Boolean(a.held_out));
    split.insert("ops".into(), Value::String(ops.to_string()));
    split.insert("templates".into(), weights(&ids));
    split.insert("modes".into(), weights(modes));
    split.insert("distractors".into(), Value::String(noise.to_string()));
    let mut recipe = Table::new();
    recipe.insert("name".into(), Value::String(a.split.clone()));
    recipe.insert("seed".into(), int("--seed", a.seed.unwrap_or(0))?);
    recipe.insert("shard_size".into(), int("--shard-size", a.shard_size)?);
    recipe.insert("splits".into(), Value::Array(vec![Value::Table(split)]));
    Recipe::from_value(Path::new("<command line>"), recipe, templates).map_err(|e| match e {
        // Name the flag that set the key, not the recipe built from the flags.
        RecipeError::Invalid { key, problem, .. } => {
            let flag = match key.rsplit('.').next().unwrap_or(&key) {
                "name" => "--split",
                "size" => "--count",
                "ops" | "op_weights" => "--ops",
                "templates" => "--template",
                "modes" => "--mode",
                "distractors" => "--distractors",
                "shard_size" => "--shard-size",
                _ => "the quick flags",
            };
            CliError::usage(anyhow!("{flag}: {problem}"))
        }
        e => CliError::usage(e),
    })
}

/// Progress in rows. Splits with a token budget join the bar's length once sized; while one is
/// being sized the message counts its tokens.
struct Bar {
    bar: ProgressBar,
    token_splits: Vec<String>,
    /// The split being sized: name, tokens counted, budget.
    sizing: std::sync::Mutex<(String, u64, u64)>,
}

impl Observer for Bar {
    fn split_sizing(&self, split: &str, tokens: u64) {
        *self.sizing.lock().expect("not poisoned") = (split.to_string(), 0, tokens);
        self.bar
            .set_message(format!("{split} sizing 0/{tokens} tokens"));
    }
    fn tokens_sized(&self, tokens: u64) {
        let mut s = self.sizing.lock().expect("not poisoned");
        s.1 += tokens;
        self.bar
            .set_message(format!("{} sizing {}/{} tokens", s.0, s.1, s.2));
    }
    fn split_started(&self, split: &str, rows: u64) {
        if self.token_splits.iter().any(|s| s == split) {
            self.bar.inc_length(rows);
        }
        self.bar.set_message(split.to_string());
    }
    fn rows_done(&self, rows: u64) {
        self.bar.inc(rows);
    }
}

pub fn run(a: Args) -> Result<(), CliError> {
    super::check_threads(a.threads)?;
    let templates = load_templates(a.templates.as_deref())?;
    let mut recipe = match (&a.recipe, &a.ops, a.count) {
        (Some(path), _, _) => Recipe::load(path, &templates).map_err(CliError::usage)?,
        (None, Some(ops), Some(count)) => quick_recipe(&a, ops, count, &templates)?,
        _ => {
            return Err(CliError::usage(anyhow!(
                "give --recipe FILE, or --ops RANGE with --count N for a quick set"
            )))
        }
    };
    if let Some(s) = a.seed {
        recipe.seed = s;
    }
    if let Some(f) = a.trace_format {
        recipe.trace_format = f;
    }
    let bar = ProgressBar::new(recipe.sized_rows());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:10} [{bar:30}] {human_pos}/{human_len} problems  {per_sec}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let opts = GenerateOptions {
        out: a.out.clone(),
        threads: a.threads,
        resume: a.resume,
        force: a.force,
    };
    let started = std::time::Instant::now();
    let observer = Bar {
        bar: bar.clone(),
        token_splits: recipe
            .splits
            .iter()
            .filter(|s| matches!(s.budget, Budget::Tokens(_)))
            .map(|s| s.name.clone())
            .collect(),
        sizing: Default::default(),
    };
    let manifest = generate(&recipe, &templates, &opts, &observer).map_err(|e| {
        if e.is_users() {
            CliError::usage(e)
        } else {
            CliError::from(e)
        }
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let total: u64 = manifest.splits.iter().map(|s| s.rows).sum();
    println!(
        "wrote {} problems in {} splits to {} in {:.1}s ({:.0} problems/s)",
        total,
        manifest.splits.len(),
        a.out.display(),
        secs,
        total as f64 / secs.max(1e-9)
    );
    for s in &manifest.splits {
        let budget = match s.token_budget {
            Some(b) => format!(" (budget {b})"),
            None => String::new(),
        };
        println!(
            "  {:<12} {:>9} rows  {:>11} tokens{budget}  {} shard(s){}",
            s.name,
            s.rows,
            s.tokens,
            s.shards.len(),
            if s.held_out { "  held out" } else { "" }
        );
    }
    let shared: u64 = manifest.overlap.pairs.iter().map(|p| p.shared_ids).sum();
    println!(
        "  overlap check ({}): {} shared ids between splits, {} duplicate ids",
        if manifest.overlap.exact {
            "exact"
        } else {
            "by construction"
        },
        shared,
        manifest.overlap.duplicate_ids
    );
    Ok(())
}
