//! Supervised fine-tuning (`train sft`): the loss mask (prompt tokens weight 0, the completion
//! and its `[EOS]` weight 1) packed and padded, the masked loss of the fused step against burn
//! autodiff, a tiny pretrain → sft → rl chain with its compute record, an exact resume, and
//! bad configs named with exit 2.

use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use dagmath::model::{fused, weights, ModelConfig, Qwen2};
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;
use dagmath::train::batch::{autodiff_weighted_loss_and_grads, Batch};
use dagmath::train::config::Packing;
use dagmath::train::data::{Packer, Sequence};
use dagmath::train::device::{cpu_device, CpuBackend};
use dagmath::train::optim::param_paths;
use dagmath::train::{self, Silent, Start, TrainConfig};

use crate::cli::{assert_usage_error, dagmath};

const DATA: &str = r#"
name = "sft-it"
seed = 9
shard_size = 100

[[splits]]
name = "train"
size = 160
ops = "2-3"
templates = { zoo = 1.0 }
modes = { forward = 1.0 }

[[splits]]
name = "test_id"
held_out = true
size = 16
ops = "2-3"
templates = { zoo = 1.0 }
modes = { forward = 1.0 }

[[splits]]
name = "pool"
held_out = true
size = 8
ops = "2"
templates = { zoo = 1.0 }
modes = { forward = 1.0 }
"#;

fn dataset(dir: &Path) -> PathBuf {
    crate::dataset::generate_into(dir, DATA)
}

/// A pre-/mid-training config (`[model]` only when `model`), with `extra` appended.
fn config_text(data: &Path, out: &Path, seq_len: usize, model: bool, extra: &str) -> String {
    let model = if model {
        "[model]\nhidden_size = 32\nnum_hidden_layers = 2\nnum_attention_heads = 4\n\
         num_key_value_heads = 2\nintermediate_size = 64\n"
    } else {
        ""
    };
    format!(
        "seed = 5\nout = \"{out}\"\n{model}[data]\ndir = \"{data}\"\neval_split = \"test_id\"\n\
         seq_len = {seq_len}\nshuffle_block = 8\n[budget]\ntokens = {tokens}\nbatch_size = 4\n\
         [optim]\nlr = 3e-3\nmin_lr = 3e-4\nwarmup = 0.1\n[eval]\nbatches = 1\n{extra}\n",
        out = out.display(),
        data = data.display(),
        tokens = 4 * 4 * seq_len,
    )
}

fn config(text: &str) -> TrainConfig {
    let c: TrainConfig = toml::from_str(text).unwrap();
    c.validate().unwrap();
    c
}

fn tokenizer() -> Tokenizer {
    Tokenizer::domain(&TemplateSet::builtin())
}

/// The mask a row must have, read off its tokens: false from `<question>` through
/// `<solution>`, true after it through `[EOS]`; `None` before a row's first `<question>` or
/// `<solution>` (a packed row may start inside a document).
fn expected_mask(tok: &Tokenizer, ids: &[u32]) -> Vec<Option<bool>> {
    let id = |t: &str| tok.token_id(t).unwrap();
    let (q, s, eos) = (id("<question>"), id("<solution>"), id("[EOS]"));
    let mut state = None;
    let mut out = Vec::with_capacity(ids.len());
    for &t in ids {
        if t == q {
            state = Some(false);
        }
        out.push(state);
        if t == s {
            state = Some(true);
        } else if t == eos {
            state = None; // the next token starts a prompt
        }
    }
    out
}

fn check_mask(tok: &Tokenizer, row: &Sequence) -> (usize, usize) {
    assert_eq!(row.mask.len(), row.ids.len());
    let want = expected_mask(tok, &row.ids);
    let mut known = (0, 0);
    for (k, (m, w)) in row.mask.iter().zip(&want).enumerate() {
        if let Some(w) = w {
            assert_eq!(m, w, "token {k} of {:?}", row.ids);
            if *m {
                known.1 += 1;
            } else {
                known.0 += 1;
            }
        }
    }
    known
}

#[test]
fn the_mask_keeps_the_completion_and_eos_and_drops_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let tok = tokenizer();
    let eos = tok.token_id("[EOS]").unwrap();
    let cfg = config(&config_text(&data, &dir.path().join("x"), 96, true, ""));
    let splits = ["train".to_string()];

    // Packed: rows of seq_len + 1 tokens, the mask following the tokens across documents.
    let mut p = Packer::open(
        &cfg.data,
        &splits,
        tok.clone(),
        1,
        false,
        Some(Packing::Packed),
    );
    let p = p.as_mut().unwrap();
    let (mut prompt, mut completion) = (0, 0);
    for _ in 0..40 {
        let row = p.next_row().unwrap().unwrap();
        assert_eq!(row.ids.len(), 97);
        let (a, b) = check_mask(&tok, &row);
        (prompt, completion) = (prompt + a, completion + b);
    }
    assert!(prompt > 200 && completion > 200, "{prompt} {completion}");
    // The same tokens as pre-training's rows (the domain tokenizer splits at `<solution>`).
    let mut lm = Packer::new(&cfg.data, &splits, tok.clone(), 1, false).unwrap();
    let mut sft = Packer::open(
        &cfg.data,
        &splits,
        tok.clone(),
        1,
        false,
        Some(Packing::Packed),
    );
    for _ in 0..20 {
        let a = lm.next_sequence().unwrap().unwrap();
        let b = sft.as_mut().unwrap().next_row().unwrap().unwrap();
        assert_eq!(a, b.ids);
    }
    assert!(lm.next_row().unwrap().unwrap().mask.is_empty());

    // Padded: one whole document per row, `<question>` first and `[EOS]` last; documents
    // longer than a row are skipped and counted.
    let mut p = Packer::open(
        &cfg.data,
        &splits,
        tok.clone(),
        1,
        false,
        Some(Packing::Padded),
    );
    let p = p.as_mut().unwrap();
    let rows: Vec<Sequence> = (0..40).map(|_| p.next_row().unwrap().unwrap()).collect();
    for row in &rows {
        assert!(row.ids.len() <= 97);
        assert_eq!(row.ids[0], tok.token_id("<question>").unwrap());
        assert_eq!(*row.ids.last().unwrap(), eos);
        assert!(*row.mask.last().unwrap(), "[EOS] is trained on");
        let (a, b) = check_mask(&tok, row);
        assert_eq!(
            a + b,
            row.ids.len(),
            "every token of a whole document is known"
        );
    }
    assert!(p.skipped_docs() > 0, "some documents exceed 97 tokens");

    // A micro-batch: targets are the tokens shifted by one, each weighted by its own mask;
    // padding (the `[PAD]` id) weighs 0.
    let b = Batch::of(&rows[..3], 0);
    let longest = rows[..3].iter().map(|r| r.ids.len()).max().unwrap();
    assert_eq!((b.batch, b.seq), (3, longest - 1));
    for (r, row) in rows[..3].iter().enumerate() {
        let n = row.ids.len() - 1;
        let at = |v: &[u32], k| v[r * b.seq + k];
        for k in 0..b.seq {
            let w = b.weights[r * b.seq + k];
            if k < n {
                assert_eq!(
                    (at(&b.inputs, k), at(&b.targets, k)),
                    (row.ids[k], row.ids[k + 1])
                );
                assert_eq!(w, if row.mask[k + 1] { 1.0 } else { 0.0 });
            } else {
                assert_eq!((at(&b.inputs, k), at(&b.targets, k), w), (0, 0, 0.0));
            }
        }
    }
    let trained: usize = rows[..3]
        .iter()
        .map(|r| r.mask[1..].iter().filter(|&&m| m).count())
        .sum();
    assert_eq!(b.trained(), trained as u64);
}

fn micro_config(vocab: usize) -> ModelConfig {
    ModelConfig {
        vocab_size: vocab,
        hidden_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 80,
        ..ModelConfig::preset("tiny", vocab).unwrap()
    }
}

fn micro_model(vocab: usize) -> Qwen2<CpuBackend> {
    let c = micro_config(vocab);
    weights::to_model(&c, &weights::init(&c, 4), &cpu_device()).unwrap()
}

/// Every gradient as (path, values).
fn flat<B: AutodiffBackend>(model: &Qwen2<B>, g: &GradientsParams) -> Vec<(String, Vec<f32>)> {
    param_paths(model)
        .into_iter()
        .filter_map(|(path, id)| {
            let v = if path.ends_with("bias") || path.ends_with("gamma") {
                g.get::<B::InnerBackend, 1>(id).map(|t| t.into_data())
            } else {
                g.get::<B::InnerBackend, 2>(id).map(|t| t.into_data())
            };
            Some((path, v?.to_vec::<f32>().unwrap()))
        })
        .collect()
}

/// Inputs, targets and SFT weights `[3, 70]` over a vocabulary of `vocab`: each row a prompt
/// of 10 + 7·r tokens (weight 0), a completion (weight 1), then 5·r pad positions (weight 0).
fn masked_batch(vocab: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let (batch, seq) = (3, 70);
    let tokens = |salt: usize| -> Vec<u32> {
        (0..batch * seq)
            .map(|i| ((i * 7919 + salt * 104_729) % vocab) as u32)
            .collect()
    };
    let w = (0..batch * seq)
        .map(|i| {
            let (r, k) = (i / seq, i % seq);
            if k < 10 + 7 * r || k >= seq - 5 * r {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    (tokens(1), tokens(2), w)
}

#[test]
fn the_masked_loss_of_the_fused_step_matches_autodiff() {
    let vocab = 61;
    let m = micro_model(vocab);
    let (batch, seq) = (3, 70);
    let (x, y, w) = masked_batch(vocab);
    let scale = 1.0 / w.iter().sum::<f32>();
    let (fl, fg) = fused::weighted_loss_and_grads(&m, &x, &y, &w, (batch, seq), scale);
    let (al, ag) = autodiff_weighted_loss_and_grads(&m, &x, &y, &w, (batch, seq), scale);
    assert!((fl - al).abs() < 1e-5 * al, "loss {fl} vs {al}");
    let (fg, ag) = (flat(&m, &fg), flat(&m, &ag));
    assert_eq!(fg.len(), ag.len());
    assert_eq!(fg.len(), 2 + 12 * 2);
    for ((path, f), (_, a)) in fg.iter().zip(&ag) {
        let top = a.iter().fold(0.0f32, |t, v| t.max(v.abs()));
        assert!(top > 0.0, "{path}: zero gradient");
        let worst = f
            .iter()
            .zip(a)
            .fold(0.0f32, |t, (p, q)| t.max((p - q).abs()));
        assert!(worst <= 1e-3 * top, "{path}: {worst} against {top}");
    }
    // A masked target does not count: changing it leaves the loss and gradients bit for bit.
    let mut y2 = y.clone();
    for (t, &wt) in y2.iter_mut().zip(&w) {
        if wt == 0.0 {
            *t = (*t + 1) % vocab as u32;
        }
    }
    let (fl2, fg2) = fused::weighted_loss_and_grads(&m, &x, &y2, &w, (batch, seq), scale);
    assert_eq!(fl.to_bits(), fl2.to_bits());
    assert_eq!(flat(&m, &fg2), fg);
    // All weights 1 and scale 1/n: the plain mean loss.
    let ones = vec![1.0; batch * seq];
    let k = 1.0 / (batch * seq) as f32;
    let (sum, _) = fused::weighted_loss_and_grads(&m, &x, &y, &ones, (batch, seq), k);
    let (mean, _) = fused::loss_and_grads(&m, &x, &y, batch, seq, 1.0);
    assert!((sum / (batch * seq) as f64 - mean).abs() < 1e-6 * mean);
}

/// The masked loss through burn autodiff on CUDA equals the fused CPU step's (f32), and bf16's
/// stays within its rounding; skips, saying so, where no CUDA driver loads.
#[cfg(feature = "cuda")]
#[test]
fn the_masked_loss_on_cuda_equals_the_fused_cpu_step() {
    use dagmath::train::device::{probe_cuda, CudaBf16Backend, CudaF32Backend};
    if let Err(e) = probe_cuda() {
        eprintln!("skipped: {e}");
        return;
    }
    let dev = burn::backend::cuda::CudaDevice::default();
    let vocab = 61;
    let cpu = micro_model(vocab);
    let (c, w0) = (micro_config(vocab), weights::from_model(&cpu));
    let (x, y, w) = masked_batch(vocab);
    let scale = 1.0 / w.iter().sum::<f32>();
    let (cl, cg) = fused::weighted_loss_and_grads(&cpu, &x, &y, &w, (3, 70), scale);
    let gpu: Qwen2<CudaF32Backend> = weights::to_model(&c, &w0, &dev).unwrap();
    let (gl, gg) = autodiff_weighted_loss_and_grads(&gpu, &x, &y, &w, (3, 70), scale);
    eprintln!("masked loss: cuda f32 {gl}, fused cpu {cl}");
    assert!((gl - cl).abs() <= 1e-4 * cl, "{gl} vs {cl}");
    for ((path, g), (_, f)) in flat(&gpu, &gg).iter().zip(&flat(&cpu, &cg)) {
        let top = f.iter().fold(0.0f32, |t, v| t.max(v.abs()));
        let worst = g
            .iter()
            .zip(f)
            .fold(0.0f32, |t, (p, q)| t.max((p - q).abs()));
        assert!(worst <= 2e-3 * top, "{path}: {worst} against {top}");
    }
    let half: Qwen2<CudaBf16Backend> = weights::to_model(&c, &w0, &dev).unwrap();
    let (hl, _) = autodiff_weighted_loss_and_grads(&half, &x, &y, &w, (3, 70), scale);
    eprintln!("masked loss: cuda bf16 {hl}");
    assert!((hl - cl).abs() <= 0.02 * cl, "bf16 {hl} vs f32 {cl}");
}

fn run(cfg: &TrainConfig, phase: &str, start: Start<'_>) -> train::TrainSummary {
    train::train::<CpuBackend>(cfg, phase, start, &cpu_device(), &mut Silent).unwrap()
}

/// The metrics lines as JSON, without the timing.
fn lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v
        })
        .collect()
}

#[test]
fn pretrain_then_sft_then_rl_records_every_phase_and_sft_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let base = config(&config_text(&data, &dir.path().join("base"), 64, true, ""));
    let b = run(&base, "pretrain", Start::Fresh);
    let state = std::fs::read_to_string(b.final_checkpoint.join("state.json")).unwrap();
    for key in ["\"sft\"", "carry_mask", "skipped"] {
        assert!(!state.contains(key), "pre-training's state.json has {key}");
    }

    // SFT through the CLI, packed and padded.
    for packing in ["packed", "padded"] {
        let out = dir.path().join(format!("sft-{packing}"));
        let extra = format!("[checkpoint]\nevery = 2\nkeep = 4\n[sft]\npacking = \"{packing}\"");
        let file = dir.path().join(format!("sft-{packing}.toml"));
        std::fs::write(&file, config_text(&data, &out, 96, false, &extra)).unwrap();
        let (f, from) = (file.to_str().unwrap(), b.final_checkpoint.to_str().unwrap());
        let o = dagmath(&["train", "sft", "--config", f, "--from", from]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("phase sft"), "{stdout}");
        let rows = lines(&out);
        let steps: Vec<_> = rows.iter().filter(|r| r.get("loss").is_some()).collect();
        assert_eq!(steps.len(), 4);
        for r in &steps {
            assert_eq!(r["phase"], "sft");
            let trained = r["trained_tokens"].as_u64().unwrap();
            assert!(trained > 0 && trained < 4 * 96, "{r}");
        }
        let skipped = steps[3]["skipped_docs"].as_u64().unwrap();
        assert_eq!(
            skipped > 0,
            packing == "padded",
            "{packing}: {skipped} skipped"
        );
        assert!(rows.iter().any(|r| r.get("eval_loss").is_some()));
        assert!(out.join("curve.svg").exists());

        // Resume from step 2: steps 3 and 4 again, bit for bit.
        let cfg = TrainConfig::from_file(&file).unwrap();
        let ck = dagmath::train::checkpoint::list(&out).unwrap();
        assert_eq!(ck.iter().map(|c| c.0).collect::<Vec<_>>(), vec![2, 4]);
        std::fs::remove_dir_all(&ck[1].1).unwrap();
        let r = run(&cfg, "sft", Start::Resume);
        assert_eq!(r.losses.len(), 2);
        assert_eq!(lines(&out), rows, "{packing}: the resumed log differs");
    }

    // GRPO from the SFT checkpoint continues the compute record: pretrain, sft, rl.
    let sft = dagmath::train::checkpoint::list(&dir.path().join("sft-packed")).unwrap();
    let rl = dir.path().join("rl.toml");
    std::fs::write(
        &rl,
        format!(
            "seed = 4\nout = \"{}\"\n[data]\ndir = \"{}\"\nsplits = [\"pool\"]\n[rl]\nsteps = 2\n\
             prompts_per_step = 2\ngroup_size = 2\nmicro_batch_rows = 4\n[rollout]\n\
             max_new_tokens = 16\n[optim]\nlr = 1e-3\n",
            dir.path().join("rl").display(),
            data.display()
        ),
    )
    .unwrap();
    let (f, from) = (
        rl.to_str().unwrap(),
        sft.last().unwrap().1.to_str().unwrap(),
    );
    let o = dagmath(&["train", "rl", "--config", f, "--from", from]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = dagmath::train::checkpoint::list(&dir.path().join("rl")).unwrap();
    let l = dagmath::train::checkpoint::load(&ck.last().unwrap().1).unwrap();
    let names: Vec<&str> = l.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["pretrain", "sft", "rl"]);
    assert_eq!(l.phases[1].tokens, 4 * 4 * 96);
}

#[test]
fn bad_sft_configs_are_named_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let ckpt = dir.path().join("base");
    hf_checkpoint(&ckpt);
    let write = |name: &str, model: bool, extra: &str| {
        let file = dir.path().join(name);
        let out = dir.path().join(format!("out-{name}"));
        std::fs::write(&file, config_text(&data, &out, 64, model, extra)).unwrap();
        file
    };
    let sft = |file: &Path| {
        let (f, from) = (file.to_str().unwrap(), ckpt.to_str().unwrap());
        dagmath(&["train", "sft", "--config", f, "--from", from])
    };
    assert_usage_error(
        &sft(&write("a.toml", false, "[sft]\npacking = \"zigzag\"")),
        "zigzag",
    );
    assert_usage_error(&sft(&write("b.toml", false, "[sft]\nbogus = 1")), "bogus");
    // Pre-training does not read [sft].
    let f = write("c.toml", true, "[sft]\npacking = \"padded\"");
    let o = dagmath(&["train", "pretrain", "--config", f.to_str().unwrap()]);
    assert_usage_error(&o, "train sft");
    assert!(!dir.path().join("out-c.toml").exists(), "nothing written");
    // SFT starts from a checkpoint.
    let f = write("d.toml", false, "");
    assert_usage_error(
        &dagmath(&["train", "sft", "--config", f.to_str().unwrap()]),
        "--from",
    );
    // Padded rows that no document fits.
    let f = write("e.toml", true, "[sft]\npacking = \"padded\"");
    let mut cfg = TrainConfig::from_file(&f).unwrap();
    cfg.model = None;
    cfg.data.seq_len = 8;
    let e = train::train::<CpuBackend>(&cfg, "sft", Start::From(&ckpt), &cpu_device(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("seq_len + 1 = 9") && e.contains("padded"), "{e}");
    let o = dagmath(&["train", "sft", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("packing"));
}

/// Fresh micro weights with the domain tokenizer as a Hugging Face folder at `path`.
fn hf_checkpoint(path: &Path) {
    let tok = tokenizer();
    let c = ModelConfig {
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        ..ModelConfig::preset("tiny", tok.vocab_size()).unwrap()
    };
    dagmath::model::hf::export(path, &c, &weights::init(&c, 2), tok.json(), 0, 1).unwrap();
}
