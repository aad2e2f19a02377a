//! Evaluation runs with a model: load a dataset's problems and a checkpoint, encode each
//! problem's prompt, sample completions with the [engine](crate::engine) on the chosen device,
//! decode them, and verify them (the same path RL rollouts take) in the dataset's trace format. `dagmath eval` and
//! `dagmath select` are this module plus their flags and printouts; progress is reported
//! through a callback, never printed here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use super::audit::{audit, AuditConfig, AuditError};
use crate::composer::seed::str_key;
use crate::dataset::predictions::Prediction;
use crate::dataset::reader::{read_rows, Dataset, ReadError};
use crate::dataset::verdicts::SampleVerdict;
use crate::engine::model::decoder_for;
use crate::engine::{generate, stops, Finish, GenConfig, Request};
use crate::graph::GoldItem;
use crate::model::{weights, Qwen2, WeightsError};
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::trace::TraceFormat;
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::config::DeviceKind;

/// Why an evaluation run could not load its inputs or sample.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("split `{split}` is not in {} (it has: {have})", dir.display())]
    UnknownSplit {
        dir: PathBuf,
        split: String,
        /// The dataset's splits, comma-separated.
        have: String,
    },
    #[error("{}: the chosen splits hold no problems", dir.display())]
    NoProblems { dir: PathBuf },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Tokenizer(TokenizerError),
    #[error("{}: tokenizer has {tokenizer} tokens but the model's vocab_size is {model}", dir.display())]
    Vocab {
        dir: PathBuf,
        tokenizer: usize,
        model: usize,
    },
    /// The device cannot be used (no driver, or a build without it).
    #[error("{0}")]
    Device(String),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Encoding a prompt or decoding a completion failed.
    #[error(transparent)]
    Sample(TokenizerError),
}

/// A problem to sample for: its gold item and its prompt (text through `<solution>`).
#[derive(Debug, Clone)]
pub struct EvalProblem {
    pub gold: GoldItem,
    pub prompt: String,
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub text: String,
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub finish: Finish,
}

/// The problems of `splits`, at most `limit` per split, taken round-robin over ops in stored
/// order (so a limit keeps every op represented), and the trace format their completions are
/// read in: the one the gold traces were written in (the manifest's `trace_format`).
pub fn load_problems(
    data: &Path,
    splits: &[String],
    limit: Option<usize>,
) -> Result<(Vec<EvalProblem>, TraceFormat), RunError> {
    let ds = Dataset::open(data)?;
    let mut out = Vec::new();
    for split in splits {
        if !ds.manifest.splits.iter().any(|s| &s.name == split) {
            let have: Vec<&str> = ds.manifest.splits.iter().map(|s| s.name.as_str()).collect();
            return Err(RunError::UnknownSplit {
                dir: data.to_path_buf(),
                split: split.clone(),
                have: have.join(", "),
            });
        }
        let mut by_op: BTreeMap<u32, Vec<EvalProblem>> = BTreeMap::new();
        for path in ds.shard_paths(split) {
            for r in read_rows(&path)? {
                let (gold, prompt) = r.into_gold();
                by_op
                    .entry(gold.op)
                    .or_default()
                    .push(EvalProblem { gold, prompt });
            }
        }
        let total: usize = by_op.values().map(|v| v.len()).sum();
        let want = limit.unwrap_or(total).min(total);
        let mut iters: Vec<std::vec::IntoIter<EvalProblem>> =
            by_op.into_values().map(|v| v.into_iter()).collect();
        let mut taken = Vec::with_capacity(want);
        while taken.len() < want {
            for it in iters.iter_mut() {
                if taken.len() < want {
                    if let Some(p) = it.next() {
                        taken.push(p);
                    }
                }
            }
        }
        taken.sort_by_key(|p| p.gold.op);
        out.extend(taken);
    }
    if out.is_empty() {
        return Err(RunError::NoProblems {
            dir: data.to_path_buf(),
        });
    }
    Ok((out, ds.manifest.trace_format))
}

/// Loads the weights and tokenizer of the checkpoint (or Hugging Face) folder `dir`.
pub fn load_checkpoint(dir: &Path) -> Result<(checkpoint::Loaded, Tokenizer), RunError> {
    let loaded = checkpoint::load(dir)?;
    let tok = Tokenizer::from_file(&loaded.tokenizer).map_err(RunError::Tokenizer)?;
    if tok.vocab_size() != loaded.model.vocab_size {
        return Err(RunError::Vocab {
            dir: dir.to_path_buf(),
            tokenizer: tok.vocab_size(),
            model: loaded.model.vocab_size,
        });
    }
    Ok((loaded, tok))
}

/// What to sample: `samples` completions for each of `problems` from a loaded checkpoint.
#[derive(Clone, Copy)]
pub struct SampleJob<'a> {
    pub loaded: &'a checkpoint::Loaded,
    pub tok: &'a Tokenizer,
    pub problems: &'a [EvalProblem],
    pub samples: usize,
    pub gen: &'a GenConfig,
}

impl<'a> SampleJob<'a> {
    pub fn new(
        loaded: &'a checkpoint::Loaded,
        tok: &'a Tokenizer,
        problems: &'a [EvalProblem],
        samples: usize,
        gen: &'a GenConfig,
    ) -> Self {
        SampleJob {
            loaded,
            tok,
            problems,
            samples,
            gen,
        }
    }
}

/// Run `job` on `device` (CUDA needs the `cuda` feature and a driver); `on_done` hears of
/// finished completions as they finish.
pub fn sample_all(
    job: &SampleJob<'_>,
    device: DeviceKind,
    on_done: impl FnMut(usize),
) -> Result<Vec<Vec<Sampled>>, RunError> {
    match device {
        DeviceKind::Cuda => {
            crate::train::device::probe_cuda().map_err(|e| RunError::Device(e.to_string()))?;
            #[cfg(feature = "cuda")]
            {
                let dev = burn::backend::cuda::CudaDevice::default();
                sample_on::<burn::backend::Cuda<f32>>(job, &dev, on_done)
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = on_done;
                unreachable!("probe_cuda fails without the cuda feature")
            }
        }
        DeviceKind::Cpu => {
            let dev = crate::train::device::cpu_device();
            sample_on::<crate::train::device::CpuInference>(job, &dev, on_done)
        }
    }
}

fn sample_on<B: Backend>(
    job: &SampleJob<'_>,
    device: &B::Device,
    on_done: impl FnMut(usize),
) -> Result<Vec<Vec<Sampled>>, RunError> {
    let model: Qwen2<B> = weights::to_model(&job.loaded.model, &job.loaded.weights, device)?;
    sample(
        &model,
        device,
        job.tok,
        job.problems,
        job.samples,
        job.gen,
        on_done,
    )
    .map_err(RunError::Sample)
}

/// `samples` completions for each problem; a problem's samples are seeded by (seed, its id,
/// sample index), so they do not depend on batching or on the other problems.
pub fn sample<B: Backend>(
    model: &Qwen2<B>,
    device: &B::Device,
    tok: &Tokenizer,
    problems: &[EvalProblem],
    samples: usize,
    gen: &GenConfig,
    on_done: impl FnMut(usize),
) -> Result<Vec<Vec<Sampled>>, TokenizerError> {
    let prompts: Vec<Vec<u32>> = problems
        .iter()
        .map(|p| tok.encode(&p.prompt))
        .collect::<Result<_, _>>()?;
    let requests: Vec<Request> = prompts
        .iter()
        .zip(problems)
        .map(|(ids, p)| Request {
            prompt: ids,
            key: str_key(&p.gold.id),
            samples,
        })
        .collect();
    let stops = stops(tok)?;
    let mut dec = decoder_for(model, device, gen.decoder);
    let out = generate(&mut *dec, &requests, gen, &stops, on_done);
    out.into_iter()
        .map(|completions| {
            completions
                .into_iter()
                .map(|c| {
                    Ok(Sampled {
                        text: tok.decode(&c.tokens)?,
                        tokens: c.tokens,
                        logprobs: c.logprobs,
                        finish: c.finish,
                    })
                })
                .collect()
        })
        .collect()
}

/// Verify sampled completions against their problems (verdicts in problem-major order).
pub fn verify(
    problems: &[EvalProblem],
    sampled: &[Vec<Sampled>],
    cfg: AuditConfig,
) -> Result<(Vec<GoldItem>, Vec<SampleVerdict>), AuditError> {
    let gold: Vec<GoldItem> = problems.iter().map(|p| p.gold.clone()).collect();
    let preds: Vec<Prediction> = problems
        .iter()
        .zip(sampled)
        .flat_map(|(p, s)| {
            s.iter().enumerate().map(|(i, c)| Prediction {
                id: p.gold.id.clone(),
                sample: i as u32,
                completion: c.text.clone(),
            })
        })
        .collect();
    let verdicts = audit(&gold, &preds, cfg, &|_| {})?;
    Ok((gold, verdicts))
}
