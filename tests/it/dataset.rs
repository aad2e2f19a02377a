//! Datasets end to end: Parquet round trip, determinism across thread counts, resume after an
//! interruption, split disjointness and exact mixture counts.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use dagmath::composer::{compose_seeded, problem_id, Mode};
use dagmath::dataset::reader::{read_rows, Dataset};
use dagmath::dataset::recipe::Budget;
use dagmath::dataset::schema::BatchBuilder;
use dagmath::dataset::shard::{ShardMeta, ShardWriter};
use dagmath::dataset::split::HELD_OUT_BUCKETS;
use dagmath::dataset::{generate, GenerateOptions, Quiet, Recipe};
use dagmath::graph::GoldGraph;
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;

/// Generates the recipe `text` (TOML) into `dir/data` on one thread: the dataset fixture the
/// training tests (`train`, `sft`, `rl`) share.
#[cfg(feature = "train")]
pub fn generate_into(dir: &Path, text: &str) -> PathBuf {
    let out = dir.join("data");
    let set = TemplateSet::builtin();
    let recipe = Recipe::from_toml(Path::new("fixture.toml"), text, &set).unwrap();
    let opts = GenerateOptions {
        out: out.clone(),
        threads: 1,
        resume: false,
        force: false,
    };
    generate(&recipe, &set, &opts, &Quiet).unwrap();
    out
}

pub const RECIPE: &str = r#"
name = "it"
seed = 99
shard_size = 150
row_group_size = 64

[[splits]]
name = "train"
size = 400
templates = { zoo = 0.7, school = 0.2, festival = 0.1 }
modes = { forward = 0.5, reverse = 0.5 }
[[splits.mix]]
share = 0.8
ops = "2-6"
[[splits.mix]]
share = 0.2
ops = 1

[[splits]]
name = "test_id"
held_out = true
size = 120
ops = "2-6"
templates = { zoo = 1 }
modes = { forward = 0.5, reverse = 0.5 }

[[splits]]
name = "ood_edge"
held_out = true
size = 60
ops = "11-14"
"#;

pub fn recipe() -> Recipe {
    Recipe::from_toml(Path::new("it.toml"), RECIPE, &TemplateSet::builtin()).unwrap()
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

/// Every file under `dir` (relative path → bytes).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn parquet_round_trip_in_memory() {
    let set = TemplateSet::builtin();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-00000-of-00001.parquet");
    let meta = ShardMeta {
        recipe_sha256: "abc".into(),
        seed: 1,
        split: "x".into(),
        shard: 0,
        n_shards: 1,
    };
    let mut w = ShardWriter::create(&path, &meta, 16).unwrap();
    let mut b = BatchBuilder::new();
    let mut expected = Vec::new();
    let mut buf = Vec::new();
    for (i, tid) in ["zoo", "school", "festival"]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let t = set.get(tid).unwrap();
        let mode = if i % 2 == 0 {
            Mode::Forward
        } else {
            Mode::Reverse
        };
        let p = compose_seeded(t, 1 + i as u32 % 20, mode, i as u64).unwrap();
        let id = problem_id(tid, &p, &mut buf);
        let r = Rendered::of(t, &p);
        let g = GoldGraph::from_problem(t, &p);
        b.push("x", t, &id, &p, &r);
        expected.push((
            id.to_hex(),
            tid.to_string(),
            p.op,
            mode,
            r,
            g,
            p.n_distractors() as u32,
            p.depth(),
        ));
    }
    w.write(&b.finish()).unwrap();
    w.finish().unwrap();
    let rows = read_rows(&path).unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, (id, tid, op, mode, r, g, nd, depth)) in rows.iter().zip(expected) {
        assert_eq!(row.id, id);
        assert_eq!(
            (row.template.as_str(), row.op, row.mode),
            (tid.as_str(), op, mode)
        );
        assert_eq!(
            (&row.problem, &row.question, &row.solution),
            (&r.problem, &r.question, &r.solution)
        );
        assert_eq!(
            (&row.prompt, &row.completion, row.answer),
            (&r.prompt, &r.completion, r.answer)
        );
        assert_eq!(row.graph, g);
        assert_eq!((row.n_distractors, row.depth), (nd, depth));
    }
    // No temp file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["x-00000-of-00001.parquet"]);
}

#[test]
fn output_identical_across_thread_counts_and_runs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    run(a.path(), 1, false);
    run(b.path(), 2, false);
    run(c.path(), 3, false);
    let sa = snapshot(a.path());
    assert_eq!(sa, snapshot(b.path()));
    assert_eq!(sa, snapshot(c.path()));
    let files: Vec<String> = sa.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        files,
        [
            "README.md",
            "data/ood_edge-00000-of-00001.parquet",
            "data/test_id-00000-of-00001.parquet",
            "data/train-00000-of-00003.parquet",
            "data/train-00001-of-00003.parquet",
            "data/train-00002-of-00003.parquet",
            "manifest.json",
        ]
    );
}

#[test]
fn resume_after_interruption_equals_uninterrupted_run() {
    let full = tempfile::tempdir().unwrap();
    run(full.path(), 2, false);
    let want = snapshot(full.path());

    // Simulate a kill after the first two shards: later shards, manifest and card missing,
    // a half-written temp file and the run marker present.
    let cut = tempfile::tempdir().unwrap();
    run(cut.path(), 2, false);
    let data = cut.path().join("data");
    for f in [
        "train-00002-of-00003.parquet",
        "test_id-00000-of-00001.parquet",
        "ood_edge-00000-of-00001.parquet",
    ] {
        std::fs::remove_file(data.join(f)).unwrap();
    }
    std::fs::remove_file(cut.path().join("manifest.json")).unwrap();
    std::fs::remove_file(cut.path().join("README.md")).unwrap();
    std::fs::write(data.join(".train-00002-of-00003.parquet.tmp"), b"PAR1 half").unwrap();
    std::fs::write(
        cut.path().join(".dagmath-run.json"),
        format!("{{\"recipe_sha256\":\"{}\",\"seed\":99}}", recipe().hash()),
    )
    .unwrap();
    run(cut.path(), 1, true);
    assert_eq!(snapshot(cut.path()), want);

    // Resuming a finished dataset changes nothing.
    run(cut.path(), 2, true);
    assert_eq!(snapshot(cut.path()), want);
}

#[test]
fn splits_are_disjoint_held_out_by_bucket_and_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 2, false);
    let ds = Dataset::open(dir.path()).unwrap();
    let mut seen = HashSet::new();
    for s in &ds.manifest.splits {
        let rows = ds.read_split(&s.name).unwrap();
        assert_eq!(rows.len() as u64, s.rows);
        for r in &rows {
            assert!(seen.insert(r.id.clone()), "id {} appears twice", r.id);
            let bucket = u16::from_str_radix(&r.id[..4], 16).unwrap();
            assert_eq!(
                bucket < HELD_OUT_BUCKETS,
                s.held_out,
                "split {} id {}",
                s.name,
                r.id
            );
            assert_eq!(r.split, s.name);
        }
        let mut ops = BTreeMap::new();
        for r in &rows {
            *ops.entry(r.op).or_insert(0u64) += 1;
        }
        assert_eq!(ops, s.op_hist);
    }
    // The train mixture: 20% at op 1, 80% over op 2-6, exactly.
    let train = &ds.manifest.splits[0];
    assert_eq!(train.op_hist[&1], 80);
    assert_eq!(train.op_hist.values().sum::<u64>(), 400);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["overlap"]["exact"], true);
    for p in m["overlap"]["pairs"].as_array().unwrap() {
        assert_eq!(p["shared_ids"], 0);
    }
    // The card maps every split for `datasets.load_dataset`.
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    for s in ["train", "test_id", "ood_edge"] {
        assert!(
            card.contains(&format!("- split: {s}\n    path: data/{s}-*")),
            "{card}"
        );
    }
}

#[test]
fn shipped_recipes_parse_and_generate_scaled_down() {
    let set = TemplateSet::builtin();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for path in names {
        let mut r = Recipe::load(&path, &set).unwrap_or_else(|e| panic!("{e}"));
        for s in &mut r.splits {
            s.budget = match s.budget {
                Budget::Rows(n) => Budget::Rows(n.min(40)),
                Budget::Tokens(n) => Budget::Tokens(n.min(20_000)),
            };
        }
        let out = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            out: out.path().join("d"),
            threads: 2,
            resume: false,
            force: false,
        };
        generate(&r, &set, &opts, &Quiet).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
