//! Token budgets end to end: every cell reaches its share of a split's tokens and overshoots by
//! less than one row, counts agree with the tokenizer, output is identical across thread counts
//! and after a resume, and bad budgets are usage errors naming the split and the file.

use std::collections::BTreeMap;
use std::path::Path;

use dagmath::dataset::reader::Dataset;
use dagmath::dataset::{generate, GenerateOptions, Quiet, Recipe};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;

use super::cli::{assert_usage_error, dagmath};
use super::dataset::snapshot;

/// A token-budget train split (with festival rows, whose names are not ASCII, and op-1 cells
/// whose budget is smaller than one row), a size split after it, then a held-out token split.
const RECIPE: &str = r#"
name = "tok"
seed = 7
shard_size = 100
row_group_size = 64

[[splits]]
name = "train"
tokens = 60_000
op_weights = { "1" = 0.001, "2-3" = 0.3, "5-6" = 0.699 }
templates = { zoo = 0.8, festival = 0.2 }
modes = { forward = 0.5, reverse = 0.5 }

[[splits]]
name = "test_id"
held_out = true
size = 40
ops = "2-6"

[[splits]]
name = "ood"
held_out = true
tokens = 9_000
ops = "11-12"
modes = { forward = 0.5, reverse = 0.5 }
"#;

fn recipe() -> Recipe {
    Recipe::from_toml(Path::new("tok.toml"), RECIPE, &TemplateSet::builtin()).unwrap()
}

fn run(out: &Path, threads: usize, resume: bool) {
    let opts = GenerateOptions {
        out: out.to_path_buf(),
        threads,
        resume,
        force: false,
    };
    generate(&recipe(), &TemplateSet::builtin(), &opts, &Quiet).unwrap();
}

#[test]
fn token_budget_cells_reach_their_share_within_one_row() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 2, false);
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let ds = Dataset::open(dir.path()).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    for (si, s) in ds.manifest.splits.iter().enumerate() {
        let jm = &m["splits"][si];
        // Per cell, in file order: rows and the tokens of each row (counted by encoding).
        let mut cells: BTreeMap<(String, u32, String), Vec<u64>> = BTreeMap::new();
        let mut total = 0;
        for r in ds.read_split(&s.name).unwrap() {
            let n = tok
                .encode(&format!("{}{}", r.prompt, r.completion))
                .unwrap()
                .len() as u64
                + 1;
            total += n;
            cells
                .entry((r.template, r.op, r.mode.as_str().to_string()))
                .or_default()
                .push(n);
        }
        assert_eq!(s.tokens, total, "split {}", s.name);
        let shard_tokens: u64 = jm["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sh| sh["tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(shard_tokens, total, "split {}", s.name);
        let Some(budget) = s.token_budget else {
            assert_eq!(s.name, "test_id");
            assert!(jm.get("cells").is_none());
            continue;
        };
        assert!(total >= budget, "split {}: {total} < {budget}", s.name);
        let listed = jm["cells"].as_array().unwrap();
        assert_eq!(listed.len(), cells.len(), "split {}", s.name);
        let mut budgets = 0;
        for c in listed {
            let key = (
                c["template"].as_str().unwrap().to_string(),
                c["op"].as_u64().unwrap() as u32,
                c["mode"].as_str().unwrap().to_string(),
            );
            let rows = &cells[&key];
            let cell_budget = c["token_budget"].as_u64().unwrap();
            let tokens: u64 = rows.iter().sum();
            assert_eq!(c["rows"].as_u64().unwrap(), rows.len() as u64, "{key:?}");
            assert_eq!(c["tokens"].as_u64().unwrap(), tokens, "{key:?}");
            // The cell stopped at the first row that reached its budget.
            let last = *rows.last().unwrap();
            assert!(
                tokens >= cell_budget && tokens - last < cell_budget,
                "{key:?}: {tokens} tokens (last row {last}) for a budget of {cell_budget}"
            );
            budgets += cell_budget;
        }
        assert_eq!(budgets, budget, "split {}", s.name);
    }

    // The mixture shares tokens, not rows: op 5-6 gets 0.699 of the budget and holds about that
    // share of the tokens (cells overshoot by part of a row; op 1 by far the most), while its
    // longer rows make a smaller share of the rows.
    let train = &m["splits"][0];
    let (mut budget, mut tokens, mut rows) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    for c in train["cells"].as_array().unwrap() {
        let hard = (c["op"].as_u64().unwrap() >= 5) as usize;
        budget[hard] += c["token_budget"].as_f64().unwrap();
        tokens[hard] += c["tokens"].as_f64().unwrap();
        rows[hard] += c["rows"].as_f64().unwrap();
    }
    let share = |x: [f64; 2]| x[1] / (x[0] + x[1]);
    assert!((share(budget) - 0.699).abs() < 1e-3, "{}", share(budget));
    assert!((share(tokens) - 0.699).abs() < 0.02, "{}", share(tokens));
    assert!(share(rows) < share(tokens) - 0.02, "{}", share(rows));
    // Op-1 cells have budgets below one row and take exactly one.
    for c in train["cells"].as_array().unwrap() {
        if c["op"] == 1 {
            assert_eq!(c["rows"], 1, "{c}");
        }
    }
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(
        card.contains(&format!(
            "| train | {} | {} (budget 60000) |",
            ds.manifest.splits[0].rows, ds.manifest.splits[0].tokens
        )),
        "{card}"
    );
}

#[test]
fn token_budget_output_identical_across_thread_counts() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    run(a.path(), 1, false);
    run(b.path(), 2, false);
    run(c.path(), 3, false);
    let sa = snapshot(a.path());
    assert_eq!(sa, snapshot(b.path()));
    assert_eq!(sa, snapshot(c.path()));
}

#[test]
fn token_budget_resume_equals_uninterrupted_run() {
    let full = tempfile::tempdir().unwrap();
    run(full.path(), 2, false);
    let want = snapshot(full.path());

    // Kill after the first train shard: every later shard, the manifest and the card missing.
    let cut = tempfile::tempdir().unwrap();
    run(cut.path(), 2, false);
    let data = cut.path().join("data");
    let mut shards: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shards.sort();
    let kept = shards
        .iter()
        .filter(|f| f.starts_with("train-00000-"))
        .count();
    let train_shards = shards.iter().filter(|f| f.starts_with("train-")).count();
    assert!(kept == 1 && train_shards >= 2, "{shards:?}");
    for f in shards.iter().filter(|f| !f.starts_with("train-00000-")) {
        std::fs::remove_file(data.join(f)).unwrap();
    }
    std::fs::remove_file(cut.path().join("manifest.json")).unwrap();
    std::fs::remove_file(cut.path().join("README.md")).unwrap();
    std::fs::write(
        cut.path().join(".dagmath-run.json"),
        format!("{{\"recipe_sha256\":\"{}\",\"seed\":7}}", recipe().hash()),
    )
    .unwrap();
    run(cut.path(), 1, true);
    assert_eq!(snapshot(cut.path()), want);

    // Resuming a finished dataset changes nothing.
    run(cut.path(), 3, true);
    assert_eq!(snapshot(cut.path()), want);
}

#[test]
fn bad_budgets_exit_2_naming_the_split_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recipe = tmp.path().join("budgets.toml");
    for (budget, needle) in [
        (
            "tokens = 0",
            "`splits[1].tokens`: split `pretrain`: 0 tokens: must be at least 1",
        ),
        ("tokens = -2000", "split `pretrain`: -2000 tokens"),
        (
            "tokens = 2.5e6",
            "split `pretrain`: 2500000.0 is not a whole number of tokens",
        ),
        (
            "tokens = '2M'",
            "split `pretrain`: \"2M\" is not a whole number of tokens",
        ),
        (
            "size = 10\ntokens = 100",
            "split `pretrain`: give `size` (rows) or `tokens`, not both",
        ),
        ("held_out = false", "split `pretrain`: missing budget"),
    ] {
        std::fs::write(
            &recipe,
            format!(
                "seed = 1\n[[splits]]\nname = 'train'\nsize = 5\nops = '2-3'\n\
                 [[splits]]\nname = 'pretrain'\n{budget}\nops = '2-3'\n"
            ),
        )
        .unwrap();
        let o = dagmath(&[
            "generate",
            "--recipe",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_usage_error(&o, needle);
        assert_usage_error(&o, "budgets.toml");
    }
    assert!(!out.exists(), "nothing may be written on bad input");
}
