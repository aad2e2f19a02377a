//! The default family has the reference's shape (issue 12's tolerances), and the noise axis
//! states exactly the distractors asked for, from the composer up to the written dataset.

use std::path::Path;

use dagmath::composer::{compose_noisy, max_distractors, Mode, Noise};
use dagmath::dataset::reader::Dataset;
use dagmath::dataset::{generate, GenerateOptions, Quiet, Recipe};
use dagmath::family::{measure, misses, reference};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;

use super::solver::solve;

#[test]
fn default_family_matches_the_reference_shape_at_op_2_10_20_both_modes() {
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    let mut all = Vec::new();
    for mode in Mode::ALL {
        for op in [2u32, 10, 20] {
            let r = reference::lookup(mode, op).expect("reference measured this op");
            let s = measure(zoo, op, mode, Noise::Reference, 4000, 2026).unwrap();
            all.extend(misses(&s, r));
        }
    }
    assert!(all.is_empty(), "out of tolerance:\n{}", all.join("\n"));
}

#[test]
fn none_and_counts_state_exactly_that_many_distractors_and_stay_well_posed() {
    let set = TemplateSet::builtin();
    for tid in ["zoo", "school", "festival"] {
        let t = set.get(tid).unwrap();
        for mode in Mode::ALL {
            for op in [1u32, 2, 5, 10, 14, 15, 20, 24, 25, 30] {
                let max = max_distractors(t, op);
                for n in [0, 1, max / 2, max] {
                    for seed in 0..12u64 {
                        let p = compose_noisy(t, op, mode, Noise::Exact(n), seed).unwrap();
                        let ctx = format!("{tid} {mode} op {op} N {n} seed {seed}");
                        assert_eq!(p.op, op, "{ctx}");
                        assert_eq!(p.n_distractors(), n as usize, "{ctx}");
                        let r = Rendered::of(t, &p);
                        assert_eq!(
                            solve(&r.problem, &r.question).unwrap_or_else(|e| panic!("{ctx}: {e}")),
                            p.answer() as i128,
                            "{ctx}"
                        );
                    }
                }
                let p = compose_noisy(t, op, mode, Noise::Range(0, max), 3).unwrap();
                assert!(p.n_distractors() <= max as usize);
            }
        }
    }
}

#[test]
fn none_states_only_the_needed_sentences() {
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    for mode in Mode::ALL {
        let s = measure(zoo, 10, mode, Noise::Exact(0), 500, 1).unwrap();
        assert_eq!(s.distractors, 0.0);
        let extra = (mode == Mode::Reverse) as u32 as f64;
        assert!(
            (s.sentences - s.needed_instances - extra).abs() < 1e-9,
            "{s:?}"
        );
    }
}

#[test]
fn too_many_distractors_is_an_error_naming_op_and_value() {
    let set = TemplateSet::builtin();
    let zoo = set.get("zoo").unwrap();
    let max = max_distractors(zoo, 20);
    let e = compose_noisy(zoo, 20, Mode::Forward, Noise::Exact(max + 1), 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("op 20") && e.contains(&format!("`{}`", max + 1)),
        "{e}"
    );
}

const NOISY: &str = r#"
name = "noisy"
seed = 5
[[splits]]
name = "train"
size = 120
distractors = "none"
[[splits.mix]]
share = 0.5
ops = "2-6"
[[splits.mix]]
share = 0.5
ops = "7-9"
distractors = "2-4"
[[splits]]
name = "test"
held_out = true
size = 40
ops = 10
distractors = 3
"#;

#[test]
fn recipe_distractors_per_split_and_per_component_reach_every_row() {
    let set = TemplateSet::builtin();
    let r = Recipe::from_toml(Path::new("noisy.toml"), NOISY, &set).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        out: dir.path().join("d"),
        threads: 2,
        resume: false,
        force: false,
    };
    generate(&r, &set, &opts, &Quiet).unwrap();
    let ds = Dataset::open(&opts.out).unwrap();
    for split in ["train", "test"] {
        for row in ds.read_split(split).unwrap() {
            let d = row.n_distractors;
            match (split, row.op) {
                ("train", 2..=6) => assert_eq!(d, 0),
                ("train", _) => assert!((2..=4).contains(&d), "op {} {d}", row.op),
                _ => assert_eq!(d, 3),
            }
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(opts.out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["splits"][0]["distractors"],
        serde_json::json!(["none", "2-4"])
    );
    assert_eq!(
        manifest["splits"][1]["distractor_hist"],
        serde_json::json!({"3": 40})
    );
    assert_eq!(
        manifest["recipe"]["splits"][1]["mix"][0]["distractors"],
        serde_json::json!("3")
    );
    let card = std::fs::read_to_string(opts.out.join("README.md")).unwrap();
    assert!(card.contains("| 3 (mean 3.00) |"), "{card}");
}

#[test]
fn recipe_distractors_errors_name_key_op_and_value_before_writing() {
    let set = TemplateSet::builtin();
    for (value, want) in [
        ("\"lots\"", "splits[0].distractors"),
        ("\"9-3\"", "splits[0].distractors"),
        ("-2", "splits[0].distractors"),
        ("16", "op 2"),
    ] {
        let text = format!(
            "seed = 1\n[[splits]]\nname = \"train\"\nsize = 10\nops = \"2-10\"\ndistractors = {value}\n"
        );
        let e = Recipe::from_toml(Path::new("bad.toml"), &text, &set)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains(want), "{value}: {e}");
    }
    let text = "seed = 1\n[[splits]]\nname = \"train\"\nsize = 10\n[[splits.mix]]\nshare = 1\nops = 20\ndistractors = 11\n";
    let e = Recipe::from_toml(Path::new("bad.toml"), text, &set)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("splits[0].mix[0].distractors") && e.contains("op 20") && e.contains("`11`"),
        "{e}"
    );
}
