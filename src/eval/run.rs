//! Evaluation runs with a model: encode each problem's prompt, sample completions with the
//! [engine](crate::engine), decode them, and verify them (the same path RL rollouts take).

use burn::tensor::backend::Backend;

use super::audit::{audit, AuditConfig, AuditError, GoldItem, SampleVerdict};
use crate::composer::seed::str_key;
use crate::dataset::predictions::Prediction;
use crate::engine::model::decoder_for;
use crate::engine::{generate, Finish, GenConfig, Request, Stops};
use crate::model::Qwen2;
use crate::tokenizer::{Tokenizer, TokenizerError};

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

/// Stop at `</answer>` (however the tokenizer splits it) or at `[EOS]`.
pub fn stops(tok: &Tokenizer) -> Result<Stops, TokenizerError> {
    Ok(Stops {
        eos: tok.token_id("[EOS]"),
        sequences: vec![tok.encode("</answer>")?],
    })
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
