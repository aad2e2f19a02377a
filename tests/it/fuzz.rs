//! Fuzz targets, one per parser, as bounded `proptest` runs inside `cargo test`: the trace
//! reader, recipes, templates, training configs, predictions JSONL, reference gold, and
//! Hugging Face `config.json` / safetensors headers. Inputs are arbitrary text and
//! structure-aware soups of the format's own pieces (keys, extreme numbers, quotes, multi-byte
//! letters). The property is always the same: the parser returns `Ok` or an error, never
//! panics, hangs or allocates without bound. The runs are deterministic (fixed seed) and each
//! prints how many cases it ran.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `cases` cases of `strategy` through `check`; panics inside `check` fail the test with
/// the (shrunk) input.
fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let ran = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        check(v);
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} cases run (incl. shrinking), {}",
        ran.into_inner(),
        if result.is_ok() {
            "no failure"
        } else {
            "FAILED"
        }
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// Text from the format's own pieces, joined by `sep`, with arbitrary strings mixed in.
fn soup(
    pieces: &'static [&'static str],
    sep: &'static str,
    max: usize,
) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => proptest::sample::select(pieces).prop_map(String::from),
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(move |v| v.join(sep))
}

/// Extreme and awkward numbers, as TOML/JSON text.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "7",
    "60",
    "61",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "1e-320",
    "inf",
    "-inf",
    "nan",
    "0.5",
    "1_000_000",
    "\"3\"",
    "100000000000",
    "1000000000000",
];

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(NUMBERS).prop_map(String::from),
        1 => any::<i64>().prop_map(|x| x.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:?}")),
    ]
}

#[test]
fn fuzz_trace_reader() {
    use dagmath::composer::{compose_seeded, Mode};
    use dagmath::graph::GoldGraph;
    use dagmath::trace::{Rule, Verifier};
    let set = dagmath::template::TemplateSet::builtin();
    let t = set.get("zoo").unwrap();
    let golds: Vec<GoldGraph> = [
        (3, Mode::Forward, 1),
        (5, Mode::Reverse, 2),
        (1, Mode::Forward, 3),
    ]
    .into_iter()
    .map(|(op, mode, seed)| GoldGraph::from_problem(t, &compose_seeded(t, op, mode, seed).unwrap()))
    .collect();
    const PIECES: &[&str] = &[
        "Define",
        "adult owl in Jefferson Circus",
        "as",
        "K;",
        "so",
        "K",
        "=",
        "2",
        "+",
        "-",
        "*",
        "(",
        ")",
        "x",
        "x;",
        "we don't know its value yet;",
        "We know",
        "Answer:",
        "Answer: 20.",
        "<answer>",
        "</answer>",
        "<solution>",
        "</solution>",
        ".",
        ";",
        "é",
        "Ω",
        "99999999999999999999",
        "-0",
        "1.5",
        "t",
        "Q",
        "U",
        "total number of adult animals",
        "\n",
        "",
    ];
    let mut ver = Verifier::new();
    let ver = std::cell::RefCell::new(&mut ver);
    fuzz(
        "trace reader",
        3000,
        (soup(PIECES, " ", 60), 0..golds.len()),
        |(text, g)| {
            let mut v = ver.borrow_mut();
            v.verify(&golds[g], &text, Rule::Strict);
            v.verify(&golds[g], &text, Rule::Interplay);
        },
    );
}

#[test]
fn fuzz_reference_gold() {
    use dagmath::dataset::reference::{graph_from_gold_trace, read_reference_jsonl};
    const PIECES: &[&str] = &[
        "Define",
        "adult owl",
        "as",
        "K;",
        "é;",
        "x; we don't know its value yet;",
        "so",
        "K",
        "é",
        "=",
        "2",
        "3*x",
        "-x",
        "+",
        "-",
        "9223372036854775807",
        "-9223372036854775808",
        "*x",
        "We know",
        "Answer:",
        "Answer: 2.",
        "Answer: 9223372036854775807.",
        ";",
        ".",
        "total number of ",
        "a",
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ref.jsonl");
    fuzz("reference gold", 3000, soup(PIECES, " ", 40), |text| {
        let _ = graph_from_gold_trace(&text);
        let rec = serde_json::json!({"problem": "p", "question": "q", "solution": text, "op": 2, "template": "zoo"});
        std::fs::write(&file, format!("{rec}\n{text}\n")).unwrap();
        let _ = read_reference_jsonl(&file);
    });
}

#[test]
fn fuzz_recipe() {
    use dagmath::dataset::Recipe;
    const PIECES: &[&str] = &[
        "seed = ",
        "shard_size = ",
        "row_group_size = ",
        "name = \"x\"",
        "[[splits]]",
        "[[splits.mix]]",
        "name = \"train\"",
        "name = \"a\\\" #\"",
        "size = ",
        "tokens = ",
        "held_out = true",
        "ops = \"2-10\"",
        "ops = \"60\"",
        "ops = \"0-3\"",
        "ops = \"61\"",
        "ops = 7",
        "share = ",
        "op_weights = { \"2-4\" = ",
        "templates = { zoo = ",
        "templates = { zoo = 1, school = ",
        "modes = { forward = ",
        "modes = { reverse = 1 }",
        "distractors = \"none\"",
        "distractors = \"reference\"",
        "distractors = \"3-99\"",
        "distractors = ",
        " }",
        "\"",
        "#",
    ];
    let set = dagmath::template::TemplateSet::builtin();
    let line = prop_oneof![
        3 => (proptest::sample::select(PIECES), number()).prop_map(|(k, n)| {
            if k.ends_with("= ") { format!("{k}{n}") } else { k.to_string() }
        }),
        1 => any::<String>(),
    ];
    let text = proptest::collection::vec(line, 0..14).prop_map(|v| v.join("\n"));
    fuzz("recipe", 4000, text, |text| {
        if let Ok(r) = Recipe::from_toml(Path::new("fuzz.toml"), &text, &set) {
            let _ = (r.hash(), r.sized_rows());
            for s in &r.splits {
                let _ = dagmath::dataset::split::apportion(s, s.budget.units().min(1_000_000));
            }
        }
    });
}

#[test]
fn fuzz_template() {
    use dagmath::template::Template;
    const PIECES: &[&str] = &[
        "id = \"t\"",
        "id = \"\"",
        "description = \"d\"",
        "category = \"animals\"",
        "category = \"movies\"",
        "[[location_groups]]",
        "[[item_groups]]",
        "name = \"g\"",
        "names = [\"A\", \"B\"]",
        "names = []",
        "names = [\"é\", \"\"]",
        "names = [\"A\", \"A\"]",
        "names = [\"x y z\"]",
        "unit = \"\"",
        "\"",
        "[",
        "]",
    ];
    fuzz("template", 3000, soup(PIECES, "\n", 16), |text| {
        let _ = Template::from_toml(Path::new("fuzz.toml"), &text);
    });
}

#[test]
fn fuzz_predictions_jsonl() {
    use dagmath::dataset::predictions::read_predictions;
    const PIECES: &[&str] = &[
        "{\"id\": \"a\", \"completion\": \"x\"}",
        "{\"id\": 3, \"response\": \"y\"}",
        "{\"id\": \"a\", \"output\": \"z\", \"sample\": 4294967296}",
        "{\"id\": \"a\", \"sample\": -1, \"completion\": \"\"}",
        "{\"id\": null}",
        "{\"id\": 1e308, \"completion\": \"é\"}",
        "{}",
        "[]",
        "not json",
        "",
        "{\"id\": \"a\"",
        "{\"id\": \"a\", \"completion\": 3}",
        "{\"id\": 18446744073709551616, \"completion\": \"c\"}",
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.jsonl");
    fuzz("predictions jsonl", 2000, soup(PIECES, "\n", 12), |text| {
        std::fs::write(&file, &text).unwrap();
        let _ = read_predictions(&file);
    });
}

#[cfg(feature = "train")]
#[test]
fn fuzz_train_config() {
    use dagmath::train::TrainConfig;
    const PIECES: &[&str] = &[
        "seed = ",
        "out = \"o\"",
        "out = \"\"",
        "device = \"cpu\"",
        "precision = \"bf16\"",
        "[model]",
        "preset = \"tiny\"",
        "preset = \"huge\"",
        "hidden_size = ",
        "num_hidden_layers = ",
        "num_attention_heads = ",
        "num_key_value_heads = ",
        "intermediate_size = ",
        "max_position_embeddings = ",
        "rope_theta = ",
        "rms_norm_eps = ",
        "[data]",
        "dir = \"d\"",
        "seq_len = ",
        "shuffle_block = ",
        "[budget]",
        "tokens = ",
        "batch_size = ",
        "grad_accum = ",
        "[optim]",
        "lr = ",
        "min_lr = ",
        "warmup = ",
        "[checkpoint]",
        "every = ",
        "keep = ",
        "[eval]",
        "batches = ",
        "[compute]",
        "total_flops = ",
        "beta = ",
    ];
    let line = prop_oneof![
        6 => (proptest::sample::select(PIECES), number()).prop_map(|(k, n)| {
            if k.ends_with("= ") { format!("{k}{n}") } else { k.to_string() }
        }),
        1 => any::<String>(),
    ];
    // Start from a valid skeleton so most cases reach validation.
    let text = proptest::collection::vec(line, 0..16).prop_map(|v| {
        format!(
            "out = \"o\"\n[data]\ndir = \"d\"\n[budget]\ntokens = 1000\n{}",
            v.join("\n")
        )
    });
    fuzz("train config", 4000, text, |text| {
        let Ok(c) = toml::from_str::<TrainConfig>(&text) else {
            return;
        };
        if c.validate().is_err() {
            return;
        }
        let _ = (c.tokens_per_step(), c.total_steps());
        if let Some(m) = &c.model {
            if let Ok(mc) = m.resolve(476) {
                let _ = (c.check_memory(&mc), mc.n_params_checked());
            }
        }
    });
}

#[cfg(feature = "train")]
#[test]
fn fuzz_hf_config_and_safetensors_header() {
    use dagmath::model::ModelConfig;
    const KEYS: &[&str] = &[
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "max_position_embeddings",
        "rope_theta",
        "rms_norm_eps",
        "head_dim",
        "model_type",
        "tie_word_embeddings",
        "hidden_act",
        "use_sliding_window",
        "layer_types",
        "rope_parameters",
        "rope_scaling",
    ];
    let value = prop_oneof![
        4 => number().prop_map(|n| serde_json::from_str::<serde_json::Value>(&n).unwrap_or(serde_json::Value::Null)),
        1 => Just(serde_json::json!("qwen2")),
        1 => Just(serde_json::json!("silu")),
        1 => Just(serde_json::json!(true)),
        1 => Just(serde_json::json!({"rope_theta": 10000.0, "rope_type": "default"})),
        1 => Just(serde_json::json!({"rope_type": "yarn", "factor": 2})),
        1 => Just(serde_json::json!(["full_attention", "sliding_attention"])),
        1 => Just(serde_json::Value::Null),
        1 => Just(serde_json::json!(4)),
        1 => Just(serde_json::json!(64)),
    ];
    let config = proptest::collection::vec((proptest::sample::select(KEYS), value), 0..20);
    fuzz("hf config.json", 4000, config, |kv| {
        let mut v = serde_json::json!({
            "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 32, "rope_theta": 10000.0,
        });
        for (k, x) in kv {
            v[k] = x;
        }
        if let Ok(c) = ModelConfig::from_hf_config(&v) {
            let _ = (c.n_params_checked(), c.check_fits(8));
        }
    });

    // Safetensors: an 8-byte header length, a JSON header from the format's pieces, data.
    use dagmath::model::weights::load_safetensors;
    const DTYPES: &[&str] = &["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64", "x"];
    let entry = (
        "[a-z.]{1,12}",
        proptest::sample::select(DTYPES),
        proptest::collection::vec(
            prop_oneof![0usize..5, Just(1usize << 40), Just(usize::MAX)],
            0..3,
        ),
        (0usize..64, 0usize..64),
    );
    let file = (
        proptest::collection::vec(entry, 0..4),
        proptest::collection::vec(any::<u8>(), 0..128),
        any::<bool>(),
        proptest::option::of(any::<u64>()),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    fuzz(
        "safetensors header",
        2000,
        file,
        |(entries, data, metadata, len_override)| {
            let mut header = serde_json::Map::new();
            for (name, dtype, shape, (a, b)) in entries {
                header.insert(
                name,
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [a.min(b), a.max(b)]}),
            );
            }
            if metadata {
                header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
            }
            let h = serde_json::Value::Object(header).to_string();
            let len = len_override.unwrap_or(h.len() as u64);
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend_from_slice(&data);
            std::fs::write(&path, &bytes).unwrap();
            let _ = load_safetensors(&path);
        },
    );
}
