//! The plan of a run, fixed before the first byte is written: each split's cells with their
//! shares of its budget (checked to compose), and the seeds every candidate derives from
//! (recipe seed, split, template, op, mode, distractors, index), so no choice depends on
//! threads or order.

use super::GenerateError;
use crate::composer::{compose_noisy, seed, Mode, Noise};
use crate::dataset::recipe::Recipe;
use crate::dataset::split::{apportion, Share};
use crate::render::Rendered;
use crate::template::TemplateSet;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Each split's cells with their shares of its budget (rows or tokens), every cell checked to
/// compose, so that bad input is refused before anything is written.
pub(super) fn plan_shares(
    recipe: &Recipe,
    templates: &TemplateSet,
) -> Result<Vec<Vec<Share>>, GenerateError> {
    let shares: Vec<Vec<Share>> = recipe
        .splits
        .iter()
        .map(|s| apportion(s, s.budget.units()))
        .collect();
    for (split, cells) in recipe.splits.iter().zip(&shares) {
        for c in cells {
            let t = templates
                .get(&c.template)
                .expect("recipe templates were validated");
            compose_noisy(t, c.op, c.mode, c.noise, 0).map_err(|source| {
                GenerateError::Compose {
                    split: split.name.clone(),
                    template: c.template.clone(),
                    op: c.op,
                    mode: c.mode,
                    source,
                }
            })?;
        }
    }
    Ok(shares)
}

/// Derived seed of candidate `i` of a cell.
pub(super) fn candidate_seed(base: &[u64; 4], i: u64) -> u64 {
    seed::derive(&[base[0], base[1], base[2], base[3], i])
}

/// Seed base of a cell: (recipe seed, split, template, op, mode and, unless it is the
/// reference default, the distractor setting).
pub(super) fn cell_seed_base(
    recipe_seed: u64,
    split: &str,
    template: &str,
    op: u32,
    mode: Mode,
    noise: Noise,
) -> [u64; 4] {
    let mut t = seed::str_key(template);
    if noise != Noise::Reference {
        t = seed::derive(&[t, seed::str_key(&noise.to_string())]);
    }
    [
        recipe_seed,
        seed::str_key(split),
        t,
        (op as u64) << 8 | mode_key(mode),
    ]
}

fn mode_key(m: Mode) -> u64 {
    match m {
        Mode::Forward => 0,
        Mode::Reverse => 1,
    }
}

/// Tokens a row costs in training: its prompt + completion, then one EOS. The prompt ends
/// with a special token, where the tokenizer's pieces start afresh, so the two parts are
/// counted apart (`row_tokens_are_the_count_of_the_joined_sequence` holds this).
pub(super) fn row_tokens(tok: &Tokenizer, r: &Rendered) -> Result<u64, TokenizerError> {
    debug_assert!(r.prompt.ends_with("<solution>"));
    Ok((tok.count(&r.prompt)? + tok.count(&r.completion)?) as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composer::compose_seeded;

    #[test]
    fn row_tokens_are_the_count_of_the_joined_sequence() {
        let set = TemplateSet::builtin();
        let tok = Tokenizer::domain(&set);
        let mut r = Rendered::default();
        for id in set.ids() {
            let t = set.get(id).unwrap();
            for (i, mode) in [Mode::Forward, Mode::Reverse].into_iter().enumerate() {
                for op in [1, 2, 5, 10, 20, 30] {
                    let p = compose_seeded(t, op, mode, 100 + i as u64).unwrap();
                    r.fill(t, &p);
                    let joined = format!("{}{}", r.prompt, r.completion);
                    assert_eq!(
                        row_tokens(&tok, &r).unwrap(),
                        tok.count(&joined).unwrap() as u64 + 1,
                        "{id} op {op} {mode}"
                    );
                }
            }
        }
    }
}
