//! The trainer end to end on the CPU: model shapes and causality, export → import, the loss
//! falling on a tiny dataset, exact resume, mid-training's compute record, bad configs, and
//! (where Python with transformers is available) logits against transformers.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use dagmath::model::{hf, weights, ModelConfig, Qwen2};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::train::device::{cpu_device, CpuBackend, CpuInference};
use dagmath::train::{self, Silent, Start, TrainConfig};

type B = CpuInference;

fn micro(vocab: usize) -> ModelConfig {
    ModelConfig {
        vocab_size: vocab,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 64,
        ..ModelConfig::preset("tiny", vocab).unwrap()
    }
}

fn ids(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let (b, t) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [b, t]), &cpu_device())
}

fn logits_vec(m: &Qwen2<B>, rows: &[Vec<i64>]) -> Vec<f32> {
    m.forward(ids(rows)).into_data().to_vec::<f32>().unwrap()
}

#[test]
fn model_shapes_and_causal_mask() {
    let c = micro(50);
    let m: Qwen2<B> = weights::to_model(&c, &weights::init(&c, 7), &cpu_device()).unwrap();
    let a: Vec<i64> = (0..12).map(|i| (i * 7 + 3) % 50).collect();
    let out = m.forward(ids(&[a.clone(), a.clone()]));
    assert_eq!(out.dims(), [2, 12, 50]);
    // Changing token 8 never changes logits at positions 0..8, and does change position 8.
    let mut b = a.clone();
    b[8] = (b[8] + 1) % 50;
    let la = logits_vec(&m, &[a]);
    let lb = logits_vec(&m, &[b]);
    let v = 50;
    for pos in 0..8 {
        assert_eq!(
            la[pos * v..(pos + 1) * v],
            lb[pos * v..(pos + 1) * v],
            "position {pos}"
        );
    }
    assert_ne!(la[8 * v..9 * v], lb[8 * v..9 * v]);
    assert_eq!(weights::init(&c, 7), weights::init(&c, 7));
    assert_ne!(weights::init(&c, 7), weights::init(&c, 8));
    let n: usize = weights::init(&c, 7).values().map(|t| t.data.len()).sum();
    assert_eq!(n, c.n_params());
}

#[test]
fn host_copies_are_row_major_for_shared_and_strided_tensors() {
    let dev = cpu_device();
    let values: Vec<f32> = (0..6).map(|i| i as f32 - 2.5).collect();
    let t = Tensor::<B, 2>::from_data(TensorData::new(values.clone(), [2, 3]), &dev);
    // Shared (a clone is alive): the one-copy path of the ndarray backend.
    let keep = t.clone();
    let h = weights::host(t);
    assert_eq!((h.shape, h.data), (vec![2, 3], values.clone()));
    let tracked = Tensor::<CpuBackend, 2>::from_data(TensorData::new(values.clone(), [2, 3]), &dev);
    let h = weights::host(tracked.clone().inner());
    assert_eq!(h.data, values);
    // Transposed (not row-major in memory): burn's own conversion.
    let h = weights::host(keep.transpose());
    assert_eq!(h.shape, vec![3, 2]);
    assert_eq!(h.data, vec![-2.5, 0.5, -1.5, 1.5, -0.5, 2.5]);
}

#[test]
fn export_import_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let c = micro(tok.vocab_size());
    let w = weights::init(&c, 3);
    let m: Qwen2<B> = weights::to_model(&c, &w, &cpu_device()).unwrap();
    assert_eq!(weights::from_model(&m), w);
    let out = dir.path().join("hf");
    hf::export(&out, &c, &w, tok.json(), 0, 1).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let back = hf::import(&out).unwrap();
    assert_eq!(back.config, c);
    assert_eq!(back.weights, w);
    let m2: Qwen2<B> = weights::to_model(&back.config, &back.weights, &cpu_device()).unwrap();
    let x = vec![(0..9).map(|i| i as i64 * 3).collect::<Vec<_>>()];
    assert_eq!(logits_vec(&m, &x), logits_vec(&m2, &x));
    // A wrong shape is named.
    let mut bad = w.clone();
    bad.get_mut("model.norm.weight").unwrap().shape = vec![31];
    let e = weights::to_model::<B>(&c, &bad, &cpu_device())
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.norm.weight"), "{e}");
}

const DATA: &str = r#"
name = "train-it"
seed = 5
shard_size = 300

[[splits]]
name = "train"
size = 600
ops = "2-4"
templates = { zoo = 1.0 }
modes = { forward = 1.0 }

[[splits]]
name = "test_id"
held_out = true
size = 60
ops = "2-4"
templates = { zoo = 1.0 }
modes = { forward = 1.0 }
"#;

fn dataset(dir: &Path) -> PathBuf {
    crate::dataset::generate_into(dir, DATA)
}

fn config(data: &Path, out: &Path, tokens: u64, extra: &str) -> TrainConfig {
    let text = format!(
        r#"
seed = 11
out = "{out}"
[model]
hidden_size = 48
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
intermediate_size = 96
[data]
dir = "{data}"
eval_split = "test_id"
seq_len = 64
shuffle_block = 16
[budget]
tokens = {tokens}
batch_size = 4
[optim]
lr = 3e-3
min_lr = 3e-4
warmup = 0.1
{extra}
"#,
        out = out.display(),
        data = data.display(),
    );
    let mut c: TrainConfig = toml::from_str(&text).unwrap();
    c.validate().unwrap();
    if extra.is_empty() {
        c.eval.every = 0;
    }
    c
}

fn run(cfg: &TrainConfig, phase: &str, start: Start<'_>) -> train::TrainSummary {
    train::train::<CpuBackend>(cfg, phase, start, &cpu_device(), &mut Silent).unwrap()
}

#[test]
fn loss_falls_resume_is_exact_and_midtrain_adds_compute() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());

    // Loss falls clearly on a tiny dataset: 60 steps of 4 × 64 tokens.
    let cfg = config(
        &data,
        &dir.path().join("a"),
        60 * 256,
        "[checkpoint]\nevery = 30",
    );
    let s = run(&cfg, "pretrain", Start::Fresh);
    let first: f64 = s.losses[..5].iter().map(|l| l.1).sum::<f64>() / 5.0;
    let last: f64 = s.losses[s.losses.len() - 5..]
        .iter()
        .map(|l| l.1)
        .sum::<f64>()
        / 5.0;
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(
        s.eval_loss.unwrap() < 0.6 * first,
        "held-out {:?}",
        s.eval_loss
    );
    assert!(cfg.out.join("curve.svg").exists());
    let lines = dagmath::train::metrics::read(&cfg.out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.iter().filter(|m| m.loss.is_some()).count(), 60);

    // Resume: drop the final checkpoint, continue from step 30, same losses bit for bit.
    let ck = dagmath::train::checkpoint::list(&cfg.out).unwrap();
    assert_eq!(ck.iter().map(|c| c.0).collect::<Vec<_>>(), vec![30, 60]);
    std::fs::remove_dir_all(&ck[1].1).unwrap();
    let r = run(&cfg, "pretrain", Start::Resume);
    assert_identical(&r.losses, &s.losses[30..]);
    let lines2 = dagmath::train::metrics::read(&cfg.out.join("metrics.jsonl")).unwrap();
    let losses = |v: &[dagmath::train::metrics::Metrics]| {
        v.iter().filter_map(|m| m.loss).collect::<Vec<_>>()
    };
    assert_eq!(losses(&lines2).len(), losses(&lines).len());

    // A second start without --resume is refused; the message says what to do.
    let e = train::train::<CpuBackend>(&cfg, "pretrain", Start::Fresh, &cpu_device(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--resume"), "{e}");

    // Mid-training continues from the checkpoint and carries the compute of both phases.
    let mut mid = config(&data, &dir.path().join("mid"), 8 * 256, "");
    mid.model = None;
    let from = r.final_checkpoint.clone();
    let m = run(&mid, "midtrain", Start::From(&from));
    assert_eq!(m.phases.len(), 2);
    assert_eq!(m.phases[0].name, "pretrain");
    assert_eq!(m.phases[0].tokens, 60 * 256);
    assert_eq!(m.phases[1].name, "midtrain");
    assert_eq!(m.phases[1].tokens, 8 * 256);
    let ml = dagmath::train::metrics::read(&mid.out.join("metrics.jsonl")).unwrap();
    assert_eq!(ml.last().unwrap().cum_tokens, 68 * 256);
    // It starts where pre-training ended, not from scratch.
    assert!(m.losses[0].1 < 0.7 * first, "{:?} vs {first}", m.losses[0]);
}

#[test]
fn two_fresh_runs_give_identical_losses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let a = run(
        &config(&data, &dir.path().join("r1"), 40 * 256, ""),
        "pretrain",
        Start::Fresh,
    );
    let b = run(
        &config(&data, &dir.path().join("r2"), 40 * 256, ""),
        "pretrain",
        Start::Fresh,
    );
    assert_identical(&a.losses, &b.losses);
}

/// Same steps, bit-identical losses: the fused CPU step is deterministic, and a checkpoint
/// restores the data order, weights and optimiser state exactly.
fn assert_identical(a: &[(u64, f64)], b: &[(u64, f64)]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0);
        assert_eq!(
            x.1.to_bits(),
            y.1.to_bits(),
            "step {}: {} vs {}",
            x.0,
            x.1,
            y.1
        );
    }
}

#[test]
fn bad_training_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let mut c = config(&data, &dir.path().join("x"), 1024, "");
    c.data.splits = vec!["nope".into()];
    let e = train::train::<CpuBackend>(&c, "pretrain", Start::Fresh, &cpu_device(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"nope\"") && e.contains("train"), "{e}");

    let mut c = config(&data, &dir.path().join("y"), 1024, "");
    c.model.as_mut().unwrap().preset = Some("huge".into());
    let e = train::train::<CpuBackend>(&c, "pretrain", Start::Fresh, &cpu_device(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge"), "{e}");

    let mut c = config(&data, &dir.path().join("z"), 1024, "");
    c.data.mix = vec![dagmath::train::data::MixEntry {
        contexts: vec!["festival".into()],
        ops: None,
        share: 1.0,
    }];
    let e = train::train::<CpuBackend>(&c, "pretrain", Start::Fresh, &cpu_device(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("matches no rows"), "{e}");

    let text = "out = \"o\"\n[data]\ndir = \"d\"\n[budget]\ntokens = 10\nbogus = 1\n";
    assert!(toml::from_str::<TrainConfig>(text)
        .unwrap_err()
        .to_string()
        .contains("bogus"));
}

#[test]
fn mixture_shares_tokens_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let mut c = config(&data, &dir.path().join("m"), 1024, "");
    c.data.mix = vec![
        dagmath::train::data::MixEntry {
            contexts: vec![],
            ops: Some("2".into()),
            share: 0.75,
        },
        dagmath::train::data::MixEntry {
            contexts: vec!["zoo".into()],
            ops: Some("3-4".into()),
            share: 0.25,
        },
    ];
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let mut p =
        dagmath::train::data::Packer::new(&c.data, &c.data.splits, tok.clone(), 1, false).unwrap();
    for _ in 0..200 {
        p.next_sequence().unwrap().unwrap();
    }
    let t = p.entry_tokens();
    let share = t[0] as f64 / (t[0] + t[1]) as f64;
    assert!((share - 0.75).abs() < 0.01, "{t:?}");
    // The cursor restores the exact stream.
    let cur = p.cursor();
    let next: Vec<Vec<u32>> = (0..40)
        .map(|_| p.next_sequence().unwrap().unwrap())
        .collect();
    let mut q = dagmath::train::data::Packer::new(&c.data, &c.data.splits, tok, 1, false).unwrap();
    q.restore(&cur).unwrap();
    let again: Vec<Vec<u32>> = (0..40)
        .map(|_| q.next_sequence().unwrap().unwrap())
        .collect();
    assert_eq!(next, again);
}

/// Logits against transformers: runs when `DAGMATH_PYTHON` names a Python with torch and
/// transformers (see examples/setup_torch.sh).
#[test]
fn logits_match_transformers_when_python_is_available() {
    let Ok(python) = std::env::var("DAGMATH_PYTHON") else {
        eprintln!("DAGMATH_PYTHON not set: transformers check skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tok = Tokenizer::domain(&TemplateSet::builtin());
    let c = ModelConfig::preset("tiny", tok.vocab_size()).unwrap();
    let w = weights::init(&c, 21);
    let out = dir.path().join("hf");
    hf::export(&out, &c, &w, tok.json(), 0, 1).unwrap();
    let m: Qwen2<B> = weights::to_model(&c, &w, &cpu_device()).unwrap();
    let text =
        "<question> Define adult owl in Jefferson Circus as K; so K = 2. </question> <solution>";
    let row: Vec<i64> = tok
        .encode(text)
        .unwrap()
        .iter()
        .map(|&t| t as i64)
        .collect();
    let rows = vec![row.clone(), row.iter().rev().copied().collect()];
    let logits = m.forward(ids(&rows));
    let [b, t, v] = logits.dims();
    let flat = logits.into_data().to_vec::<f32>().unwrap();
    let nested: Vec<Vec<Vec<f32>>> = (0..b)
        .map(|i| {
            (0..t)
                .map(|j| flat[(i * t + j) * v..(i * t + j + 1) * v].to_vec())
                .collect()
        })
        .collect();
    let json = serde_json::json!({"input_ids": rows, "logits": nested});
    let file = dir.path().join("logits.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let o = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hf_check.py"))
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!("hf_check: {stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}");
}

#[test]
fn shipped_training_configs_parse_and_validate() {
    // Every config in examples/configs is a pre-/mid-training/SFT config or an RL config
    // (RL configs have an [rl] table); each must load and validate as shipped.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        if text.lines().any(|l| l.trim() == "[rl]") {
            let c = dagmath::train::rl::RlConfig::from_file(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            c.validate()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        } else {
            TrainConfig::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
        n += 1;
    }
    assert!(n >= 12, "{n} configs");
}
