//! `dagmath inspect`: counts per split / op / template / mode and one rendered example.

use std::path::PathBuf;

use anyhow::anyhow;

use dagmath::dataset::reader::{read_rows, Dataset};

use super::CliError;

/// Print a dataset's counts per split, op, template and mode, and one rendered example.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset directory written by `dagmath generate`.
    dir: PathBuf,
    /// Split to take the example from (default: the first).
    #[arg(long)]
    split: Option<String>,
    /// Row of that split to show.
    #[arg(long, default_value_t = 0)]
    row: usize,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let ds = Dataset::open(&a.dir).map_err(CliError::usage)?;
    let m = &ds.manifest;
    println!(
        "{}: dagmath {}, recipe sha256 {}, seed {}, trace format {}",
        a.dir.display(),
        m.dagmath_version,
        &m.recipe_sha256[..16.min(m.recipe_sha256.len())],
        m.seed,
        m.trace_format
    );
    for s in &m.splits {
        let budget = match s.token_budget {
            Some(b) => format!(" of a {b}-token budget"),
            None => String::new(),
        };
        println!(
            "\nsplit {} ({} rows, {} tokens{budget}, {} shards{})",
            s.name,
            s.rows,
            s.tokens,
            s.shards.len(),
            if s.held_out { ", held out" } else { "" }
        );
        let ops: Vec<String> = s.op_hist.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        println!("  op        {}", ops.join(" "));
        let ts: Vec<String> = s
            .template_hist
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        println!("  template  {}", ts.join(" "));
        let ms: Vec<String> = s
            .mode_hist
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        println!("  mode      {}", ms.join(" "));
    }
    let split = match &a.split {
        Some(s) => m.splits.iter().find(|x| &x.name == s).ok_or_else(|| {
            let known: Vec<&str> = m.splits.iter().map(|x| x.name.as_str()).collect();
            CliError::usage(anyhow!(
                "--split: no split `{s}` (splits: {})",
                known.join(", ")
            ))
        })?,
        None => m
            .splits
            .first()
            .ok_or_else(|| CliError::usage(anyhow!("dataset has no splits")))?,
    };
    if a.row as u64 >= split.rows {
        return Err(CliError::usage(anyhow!(
            "--row: {} is out of range; split `{}` has {} rows",
            a.row,
            split.name,
            split.rows
        )));
    }
    // Find the shard holding the row.
    let mut skip = a.row as u64;
    for sh in &split.shards {
        if skip < sh.rows {
            // The dataset is input: a shard that is unreadable, or shorter than the manifest
            // says, is a bad dataset (exit 2), not a crash.
            let path = ds.root.join(&sh.file);
            let rows = read_rows(&path).map_err(CliError::usage)?;
            let r = rows.get(skip as usize).ok_or_else(|| {
                CliError::usage(anyhow!(
                    "{}: holds {} rows but manifest.json says {}",
                    path.display(),
                    rows.len(),
                    sh.rows
                ))
            })?;
            println!(
                "\nexample: split {} row {} (id {}, op {}, {}, {}, {} distractors, depth {})",
                split.name, a.row, r.id, r.op, r.template, r.mode, r.n_distractors, r.depth
            );
            println!(
                "\nproblem:  {}\nquestion: {}\n\nsolution: {}\n\nanswer:   {}",
                r.problem, r.question, r.solution, r.answer
            );
            return Ok(());
        }
        skip -= sh.rows;
    }
    Err(CliError::usage(anyhow!(
        "manifest.json: split `{}` lists {} rows but its shards hold fewer",
        split.name,
        split.rows
    )))
}
